//! [`CudaProducer`]: a producer whose frames CUDA writes: the ring's textures are imported
//! into CUDA as arrays, a slot is written with CUDA copies (or kernels) on a stream, and in
//! timeline mode that stream signals the frame's "ready" point, so consumers' GPUs wait for
//! CUDA's write without a host wait in between.

use std::sync::Arc;
use std::time::Duration;

use super::consumer::{check_same_gpu, vulkan_for};
use super::device::CudaDevice;
use super::memory::{CudaArray, ExternalMemory};
use super::semaphore::CudaTimeline;
use super::stream::{synchronize, StreamHandle};
use crate::common::TextureDescriptor;
use crate::ipc::wire::FrameId;
use crate::ipc::{Producer, ProducerOptions, WriteSlot};
use crate::vulkan::{VulkanTextureShareManager, SUBMIT_TIMEOUT};
use crate::Result;

/// A producer whose frames are written by CUDA on one device.
pub struct CudaProducer {
    // Field order is drop order: CUDA's imports go before the producer that owns the memory.
    arrays: Vec<CudaArray>,
    ready: Option<CudaTimeline>,
    producer: Producer,
    device: Arc<CudaDevice>,
    vulkan: Arc<VulkanTextureShareManager>,
}

impl std::fmt::Debug for CudaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaProducer")
            .field("device", &self.device)
            .field("producer", &self.producer)
            .finish_non_exhaustive()
    }
}

impl CudaProducer {
    /// Binds endpoint `name` with a ring of textures like `desc` on `device`'s GPU (through
    /// a Vulkan context of its own there), imported into CUDA.
    pub fn bind(
        name: &str,
        device: &Arc<CudaDevice>,
        desc: &TextureDescriptor,
        options: ProducerOptions,
    ) -> Result<Self> {
        Self::bind_with(name, device, vulkan_for(device)?, desc, options)
    }

    /// [`Self::bind`] through the application's Vulkan context (on `device`'s GPU).
    pub fn bind_with(
        name: &str,
        device: &Arc<CudaDevice>,
        vulkan: Arc<VulkanTextureShareManager>,
        desc: &TextureDescriptor,
        options: ProducerOptions,
    ) -> Result<Self> {
        check_same_gpu(device, &vulkan)?;
        let producer = Producer::bind(name, vulkan.clone(), desc, options)?;
        let arrays = producer
            .textures()
            .iter()
            .map(|t| {
                let exported = vulkan.export(t)?;
                let info = exported.info.clone();
                ExternalMemory::import_texture(device, exported)?.map_array(&info)
            })
            .collect::<Result<Vec<_>>>()?;
        let ready = producer
            .ready_timeline()
            .map(|t| CudaTimeline::from_vulkan(device, t))
            .transpose()?;
        Ok(Self {
            arrays,
            ready,
            producer,
            device: device.clone(),
            vulkan,
        })
    }

    /// Waits for a free slot ([`Producer::acquire`]) and for the consumers' GPU work that
    /// last read it (a host wait, usually already over: the slot is the ring's oldest).
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<CudaWriteSlot<'_>> {
        let slot = self.producer.acquire(timeout)?;
        let released = slot
            .waits
            .iter()
            .try_for_each(|w| w.semaphore.wait(w.value, SUBMIT_TIMEOUT));
        if let Err(e) = released {
            self.producer.abandon(slot);
            return Err(e);
        }
        let array = &self.arrays[slot.id.slot_index()];
        Ok(CudaWriteSlot {
            slot: Some(slot),
            array,
            owner: self,
        })
    }

    /// The underlying producer (stats, consumers).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The CUDA device.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.device
    }

    /// The Vulkan context it speaks through.
    pub fn vulkan(&self) -> &Arc<VulkanTextureShareManager> {
        &self.vulkan
    }
}

/// A slot CUDA may write now; hand it back with [`Self::present`]. Dropped without that, it
/// goes back unpresented ([`Producer::abandon`]).
#[derive(Debug)]
pub struct CudaWriteSlot<'a> {
    /// `None` once presented.
    slot: Option<WriteSlot>,
    array: &'a CudaArray,
    owner: &'a CudaProducer,
}

impl Drop for CudaWriteSlot<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.owner.producer.abandon(slot);
        }
    }
}

impl CudaWriteSlot<'_> {
    /// The slot and the frame number it will carry.
    pub fn id(&self) -> FrameId {
        self.slot
            .as_ref()
            .map_or(FrameId { slot: 0, frame: 0 }, |s| s.id)
    }

    /// The slot's texture as a CUDA array (write it with [`super::copy_2d`] or a surface).
    pub fn array(&self) -> &CudaArray {
        self.array
    }

    /// Publishes the frame once the work queued on `stream` has run: in timeline mode
    /// `stream` signals the frame's ready point (consumers' GPUs wait for it); in host mode
    /// this waits for `stream` on the host first. Returns the frame number.
    ///
    /// # Safety
    /// `stream` is a stream of the producer's device context, or a default-stream value, and
    /// every write of the slot was queued on it (or finished) before this call.
    pub unsafe fn present(mut self, stream: StreamHandle) -> Result<u64> {
        let slot = self
            .slot
            .take()
            .ok_or_else(|| crate::Error::Internal("slot presented twice".into()))?;
        let written = match (&self.owner.ready, &slot.signal) {
            // SAFETY: the caller's contract on `stream`.
            (Some(ready), Some(point)) => unsafe { ready.signal(point.value, stream) },
            _ => synchronize(&self.owner.device, stream),
        };
        if let Err(e) = written {
            self.owner.producer.abandon(slot);
            return Err(e);
        }
        slot.texture.mark_initialized();
        self.owner.producer.present(slot)
    }
}
