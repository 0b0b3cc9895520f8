//! Remote rings: a faster way than a host ring to reach a consumer on another GPU. The
//! producer keeps a ring of textures on the consumer's device and copies each frame into it
//! GPU to GPU; the consumer imports that ring as if it were the producer's own
//! ([`crate::vulkan::TransferPath::Peer`]). This layer only defines the extension point:
//! `geyser::cuda::PeerRings` (feature `cuda`) implements it with CUDA peer copies (NVLink or
//! PCIe) between devices with peer access.

use std::sync::Arc;

use crate::common::ExportedTexture;
use crate::ipc::wire::FrameId;
use crate::vulkan::SharedTimelineSemaphore;
use crate::Result;

/// Makes remote rings: set [`super::ProducerOptions::remote_rings`] to one, and consumers on
/// devices it reaches get frames through a ring on their own device instead of a host ring.
pub trait RemoteRings: Send + Sync + std::fmt::Debug {
    /// A ring on the device with these UUIDs for frames like the producer's `ring` (its
    /// exports, in slot order; `ready` is its "frame ready" timeline in timeline mode), or
    /// `Ok(None)` when this provider cannot reach that device (then the consumer gets a host
    /// ring).
    fn open(
        &self,
        ring: &[ExportedTexture],
        ready: Option<&Arc<SharedTimelineSemaphore>>,
        device_uuid: [u8; 16],
        driver_uuid: [u8; 16],
    ) -> Result<Option<Box<dyn RemoteRing>>>;
}

/// One ring on a consumer's device, filled by GPU copies from the producer's ring.
pub trait RemoteRing: Send {
    /// The ring's textures, exported (new handles each call), in slot order: what the
    /// consumer imports.
    fn exports(&self) -> Result<Vec<ExportedTexture>>;

    /// Copies frame `id` from the producer's slot into this ring's slot of the same index,
    /// after the producer's write (in timeline mode: once its ready timeline reaches
    /// `ready_value`, waited for on the GPU); returns when the copy is done.
    fn copy(&mut self, id: FrameId, ready_value: Option<u64>) -> Result<()>;
}
