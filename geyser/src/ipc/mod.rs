//! Cross-process sharing: a [`Producer`] owns a ring of textures and serves any number of
//! [`Consumer`]s in other processes over a named endpoint; textures are exported and imported
//! once, then each frame is a few-byte message each way.
//!
//! Platforms: Linux and Android over Unix sockets (tested); Windows over a named pipe (the
//! same [`wire`] protocol, NT handles duplicated into the peer), which compiles in CI and whose
//! transport tests run under Wine, but has never run on Windows. The transport and the shared
//! memory of host rings are the only platform-specific parts: the producer and the consumer
//! are the same code everywhere. macOS and iOS have no `ipc` (no `SOCK_SEQPACKET`, and no
//! peer-credential call in rustix); Metal has its own mach-port transport.
//!
//! Rooms (ARCHITECTURE.md has the map):
//! - the roles: `producer` ([`Producer`]; its service thread and its host rings in
//!   `producer/`), `consumer` ([`Consumer`], [`Frame`]), `host_ring` (the host-memory ring
//!   that serves consumers on another device), `binary` (the binary-semaphore sync mode: its
//!   per-slot semaphores, relays, and why reusing them is valid), [`linear`] (frames also as
//!   row-major copies in a shared buffer, for CUDA and DLPack);
//! - [`wire`]: the versioned messages and their checks, and sync-mode negotiation;
//! - `transport` (crate-private): the Unix socket with SCM_RIGHTS, the Windows pipe, shared
//!   memory; [`testing`] re-exports raw pieces for Geyser's own tests;
//! - `peer`: who is at the other end ([`PeerCredentials`]) and who may be ([`PeerPolicy`]);
//! - [`clock`]: the clock frame messages are stamped with.

mod binary;
pub mod clock;
mod consumer;
mod host_ring;
pub mod linear;
mod peer;
mod producer;
#[doc(hidden)]
pub mod testing;
mod transport;
pub mod wire;

pub use consumer::{
    Consumer, ConsumerCounters, ConsumerOptions, DetachedFrame, ExpectedFrame, Frame,
};
pub use linear::{FrameLayout, LinearFrames, LinearLayout};
pub use peer::{PeerCredentials, PeerPolicy};
pub use producer::{
    ConsumerStats, HostRingSharing, Producer, ProducerOptions, ProducerStats, RemoteRing,
    RemoteRings, WriteSlot,
};
pub use wire::negotiate::supported_sync_modes;
pub use wire::protocol::{FrameId, SyncMode};
