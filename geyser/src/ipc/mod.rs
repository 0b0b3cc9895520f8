//! Cross-process sharing: a `Producer` owns a ring of textures and serves any number of
//! `Consumer`s in other processes over a named Unix socket; textures are exported and imported
//! once, then each frame is a few-byte message each way.
//!
//! Platforms: Linux and Android over Unix sockets (tested); Windows over a named pipe
//! (`pipe`: the same [`protocol`], NT handles duplicated into the peer), which compiles in CI
//! and whose transport tests run under Wine, but has never run on Windows. The transport and
//! the shared memory of the host-memory ring (`shm`: a sealed memfd, or a section) are the
//! only platform-specific parts: the producer, the consumer and the demo loops are the same
//! code. macOS and iOS have no `ipc` (no
//! `SOCK_SEQPACKET`, and no peer-credential call in rustix); Metal has its own mach-port
//! transport.
//!
//! - [`protocol`]: versioned, length-prefixed postcard messages with hard caps.
//! - `fd_passing` (Unix): SCM_RIGHTS over `SOCK_SEQPACKET`.
//! - `endpoint` (Unix): names → sockets in a private runtime directory, peer credentials.
//! - `pipe` (Windows): names → named pipes restricted to the current user, overlapped I/O.
//! - [`peer`]: who is at the other end, and who may be.
//! - `shm`: shared memory regions (host-memory ring, CPU-copy path).
//! - [`producer`] / [`consumer`]: the ring, the handshake, frame handoff, fault handling.
//! - [`clock`]: the clock frame messages are stamped with.

pub mod clock;
pub mod consumer;
#[cfg(unix)]
pub mod endpoint;
#[cfg(unix)]
pub mod fd_passing;
pub mod handle_block;
pub mod negotiate;
pub mod peer;
#[cfg(windows)]
pub mod pipe;
pub mod producer;
pub mod protocol;
mod shm;
mod staging;
#[doc(hidden)]
pub mod testing;
mod transport;

pub use consumer::{Consumer, ConsumerCounters, ConsumerOptions, Frame};
pub use peer::{PeerCredentials, PeerPolicy};
pub use producer::{
    ConsumerStats, HostRingSharing, Producer, ProducerOptions, ProducerStats, WriteSlot,
};
pub use protocol::SyncMode;
