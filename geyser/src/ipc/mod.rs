//! Cross-process sharing (Unix): a [`Producer`] owns a ring of textures and serves any number of
//! [`Consumer`]s in other processes over a named Unix socket; textures are exported and imported
//! once, then each frame is a few-byte message each way.
//!
//! - [`protocol`]: versioned, length-prefixed postcard messages with hard caps.
//! - [`fd_passing`]: SCM_RIGHTS over `SOCK_SEQPACKET`.
//! - [`endpoint`]: names → sockets in a private runtime directory, peer credentials.
//! - [`producer`] / [`consumer`]: the ring, the handshake, frame handoff, fault handling.
//! - [`demo`]: the verifying loops `geyser demo` and the examples run.
//! - [`bench`](mod@bench): the in-process and CPU-copy paths `geyser bench` compares the IPC path with.

pub mod bench;
pub mod consumer;
pub mod demo;
pub mod endpoint;
pub mod fd_passing;
pub mod negotiate;
pub mod producer;
pub mod protocol;

pub use consumer::{Consumer, ConsumerCounters, ConsumerOptions, Frame};
pub use endpoint::{PeerCredentials, PeerPolicy};
pub use producer::{ConsumerStats, Producer, ProducerOptions, ProducerStats, WriteSlot};
pub use protocol::SyncMode;
