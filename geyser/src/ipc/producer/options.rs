//! [`ProducerOptions`]: how a producer behaves (ring, limits, who is trusted, which consumers
//! it serves and how), and their defaults.

use std::sync::Arc;
use std::time::Duration;

use super::host_ring::HostRingSharing;
use super::remote::RemoteRings;
use crate::common::TextureExtent;
use crate::ipc::peer::PeerPolicy;
use crate::ipc::wire::SyncMode;

/// How a [`Producer`](super::Producer) behaves.
#[derive(Clone, Debug)]
pub struct ProducerOptions {
    /// Textures in the ring (2..=16, default 3). The producer writes a slot no consumer holds.
    pub slots: usize,
    /// Most consumers served at once (default: `slots - 1`, which guarantees that the producer
    /// always finds a free slot even if every consumer holds a frame; at most 63). Counted at
    /// Hello: more are refused with [`crate::common::RejectReason::Busy`]. Connections that
    /// have not said Hello yet are counted apart ([`Self::max_pending_handshakes`]).
    pub max_consumers: Option<usize>,
    /// Every consumer gets every frame and the producer blocks until one is free (recording).
    /// Default `false`: a busy consumer skips frames and gets the latest when it is ready.
    pub lossless: bool,
    /// Who may connect (default: same user).
    pub peer_policy: PeerPolicy,
    /// Who, of those `peer_policy` admits, is trusted with zero-copy: the ring's memory and the
    /// timeline semaphores (default: same user). Anyone else gets only its own host ring, whose
    /// memory it can harm only for itself; the producer imports nothing from it. A trusted peer
    /// can change texels every consumer reads, and on some drivers crash the producer through
    /// the memory (SECURITY.md): trust only processes you would let touch your memory.
    pub trusted: PeerPolicy,
    /// A consumer that connects and does not finish its handshake in this time is dropped.
    pub handshake_timeout: Duration,
    /// Force a synchronization mode; `None` picks the best both sides support.
    pub sync: Option<SyncMode>,
    /// Offer this mode first when the device supports it, keeping the others for consumers
    /// that lack it (default `None`: timeline, then binary semaphores, then host).
    pub prefer_sync: Option<SyncMode>,
    /// Largest message accepted from a consumer (theirs are tiny; default 4 KiB, at most
    /// [`crate::ipc::wire::MAX_MESSAGE_BYTES`]). A larger one drops that consumer.
    pub max_message_bytes: usize,
    /// Lossless mode: most frames one consumer may hold (received, not released) before the
    /// producer skips it (default: the whole ring). Lossy mode always caps at one.
    pub max_held_frames: Option<usize>,
    /// A consumer that holds a frame longer than this is dropped and its slots reclaimed, so a
    /// stuck or malicious consumer cannot stall a lossless producer forever (default 10 s).
    pub max_hold: Duration,
    /// Lossless mode: a hold longer than this counts as stalling the ring (default 2.5 s);
    /// holds that pass it within this long of each other are one stall (one pause of the
    /// consumer, e.g. loading CUDA on its first frame, holds every slot at once).
    pub stall_hold: Duration,
    /// Lossless mode: a consumer that stalls the ring this many times is dropped with
    /// [`crate::common::RejectReason::Limit`], and its process's reconnects are refused for a
    /// while (1 s, doubling per repeat, at most 60 s). Default 3; 0 never drops.
    pub max_stalls: u32,
    /// Connections that have not completed their first handshake step, at most (default 16);
    /// a new one beyond makes room by dropping the oldest, so silent connections cannot lock
    /// consumers out.
    pub max_pending_handshakes: usize,
    /// The same per user (default 8): one user's flood evicts its own pending connections
    /// first.
    pub max_pending_per_user: usize,
    /// Serve consumers that cannot import this ring (another GPU or driver), and those that
    /// ask for one, through a host ring: each frame they get costs one GPU copy here and one
    /// there, host-synchronized (default `true`; needs `CopySrc` on the frames). `false`
    /// refuses them.
    pub host_ring_consumers: bool,
    /// Whether host-ring consumers share one ring or each get their own (default
    /// [`HostRingSharing::Auto`]).
    pub host_rings: HostRingSharing,
    /// The ring textures' dimensions beyond width and height: array layers, cube faces, 3D
    /// depth, mip levels (default: one 2D level). Consumers import the same shape; host-ring
    /// consumers get every layer and level too.
    pub extent: TextureExtent,
    /// Write frame `f` always into slot `f % slots` ([`super::Producer::acquire`] waits for that
    /// slot to be free), and tell consumers so: what consumers that submit their GPU work
    /// before the frame arrives need ([`crate::ipc::Consumer::expect_next`]). Default `false`:
    /// any free slot, which never waits for one consumer while another slot is free.
    pub ordered_slots: bool,
    /// Serve consumers that ask for linear frames ([`crate::ipc::FrameLayout::Linear`]): while
    /// any is connected, each frame costs one more GPU copy here, into a shared buffer
    /// (default `true`; needs `CopySrc` on the frames). `false` refuses them.
    pub linear_frames: bool,
    /// Reaches trusted consumers on another GPU with GPU-to-GPU copies into a ring on their
    /// device, where this provider can (with the `cuda` feature,
    /// `geyser::cuda::PeerRings::new()`: NVLink or PCIe peer copies); consumers it cannot
    /// reach get a host ring. Default `None`: host rings only.
    pub remote_rings: Option<Arc<dyn RemoteRings>>,
    /// What memory the ring's textures get (default [`crate::vulkan::TextureMemory::Opaque`]):
    /// a DMA-BUF ring serves consumers that import DMA-BUFs (EGL, other APIs) directly.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub ring_memory: crate::vulkan::TextureMemory,
    /// Take the ring's textures from this pool (on the producer's device) and give them back
    /// when the producer is dropped, so a producer bound again with the same descriptor (a
    /// stream restarted, a resolution changed back) allocates nothing (default `None`: a new
    /// ring each time). Opaque ring memory only. The textures go back while consumers of the
    /// dropped producer may still hold imports of them, and those see what the next producer
    /// writes: share a pool between producers whose consumers you would let see each other's
    /// frames.
    pub texture_pool: Option<crate::vulkan::TexturePool>,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        Self {
            slots: 3,
            max_consumers: None,
            lossless: false,
            peer_policy: PeerPolicy::default(),
            trusted: PeerPolicy::SameUser,
            handshake_timeout: Duration::from_secs(2),
            sync: None,
            prefer_sync: None,
            max_message_bytes: 4096,
            max_held_frames: None,
            max_hold: Duration::from_secs(10),
            stall_hold: Duration::from_millis(2500),
            max_stalls: 3,
            max_pending_handshakes: 16,
            max_pending_per_user: 8,
            host_ring_consumers: true,
            host_rings: HostRingSharing::Auto,
            extent: TextureExtent::default(),
            ordered_slots: false,
            linear_frames: true,
            remote_rings: None,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            ring_memory: crate::vulkan::TextureMemory::Opaque,
            texture_pool: None,
        }
    }
}

/// Checks [`ProducerOptions::texture_pool`] against the producer's manager and ring memory.
pub(super) fn check_pool(
    options: &ProducerOptions,
    manager: &crate::vulkan::VulkanTextureShareManager,
) -> crate::Result<()> {
    let Some(pool) = &options.texture_pool else {
        return Ok(());
    };
    let invalid = |reason: &str| crate::Error::InvalidArgument {
        what: "texture_pool",
        reason: reason.into(),
    };
    if pool.manager().device().handle() != manager.device().handle() {
        return Err(invalid(
            "the pool's textures are on another device (manager) than the producer's",
        ));
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if options.ring_memory != crate::vulkan::TextureMemory::Opaque {
        return Err(invalid(
            "a pool holds opaque-memory textures; a DMA-BUF ring cannot come from it",
        ));
    }
    Ok(())
}
