//! Raw transport pieces for Geyser's own tests, benches and harness: a connection without the
//! handshake, SCM_RIGHTS sends of arbitrary FDs, shared-memory regions. Hidden from the docs and
//! not a stable API; applications use [`super::Producer`] and [`super::Consumer`].

pub use super::transport::shm::SharedRegion;
#[cfg(unix)]
pub use super::transport::unix::{runtime_dir, socket_path, Connection, Listener};

/// SCM_RIGHTS sends and receives of raw frames, with the checks the transport applies.
#[cfg(unix)]
pub mod fd_passing {
    pub use crate::ipc::transport::fd_passing::{check_fd_is_memory, recv, send};
}
