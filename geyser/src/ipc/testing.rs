//! Raw transport pieces for Geyser's own tests, benches and harness: a connection without the
//! handshake, SCM_RIGHTS sends of arbitrary FDs, shared-memory regions. Hidden from the docs and
//! not a stable API; applications use [`super::Producer`] and [`super::Consumer`].

#[cfg(unix)]
pub use super::endpoint::{runtime_dir, socket_path, Connection, Listener};
#[cfg(unix)]
pub use super::fd_passing;
pub use super::shm::SharedRegion;
