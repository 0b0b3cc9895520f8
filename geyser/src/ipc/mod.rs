//! Cross-process sharing: a `Producer` owns a ring of textures and serves any number of
//! `Consumer`s in other processes over a named Unix socket; textures are exported and imported
//! once, then each frame is a few-byte message each way.
//!
//! Platforms: the producer and consumer run on Linux and Android. On Windows only the
//! transport exists so far (`pipe`: a named pipe speaking the same [`protocol`], with
//! NT handles duplicated into the peer); it compiles in CI and has never run. macOS and iOS
//! have no `ipc` (no `SOCK_SEQPACKET`, and no peer-credential call in rustix).
//!
//! - [`protocol`]: versioned, length-prefixed postcard messages with hard caps.
//! - [`fd_passing`]: SCM_RIGHTS over `SOCK_SEQPACKET`.
//! - [`endpoint`]: names → sockets in a private runtime directory, peer credentials.
//! - [`producer`] / [`consumer`]: the ring, the handshake, frame handoff, fault handling.
//! - [`demo`]: the verifying loops `geyser demo` and the examples run.
//! - [`bench`](mod@bench): the in-process and CPU-copy paths `geyser bench` compares the IPC path with.

#[cfg(unix)]
pub mod bench;
#[cfg(unix)]
pub mod consumer;
#[cfg(unix)]
pub mod demo;
#[cfg(unix)]
pub mod endpoint;
#[cfg(unix)]
pub mod fd_passing;
pub mod handle_block;
pub mod negotiate;
#[cfg(windows)]
pub mod pipe;
#[cfg(unix)]
pub mod producer;
pub mod protocol;
#[cfg(unix)]
mod staging;

#[cfg(unix)]
pub use consumer::{Consumer, ConsumerCounters, ConsumerOptions, Frame};
#[cfg(unix)]
pub use endpoint::{PeerCredentials, PeerPolicy};
#[cfg(unix)]
pub use producer::{ConsumerStats, Producer, ProducerOptions, ProducerStats, WriteSlot};
pub use protocol::SyncMode;
