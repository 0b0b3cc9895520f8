//! [`CudaConsumer`]: a consumer whose frames are CUDA memory: a [`CudaArray`] per ring slot
//! ([`FrameLayout::Texture`]) or device pointers into the producer's linear frames
//! ([`FrameLayout::Linear`], what tensors need), with each frame's wait and release enqueued on
//! a CUDA stream: on the GPU in timeline mode, on the host in host mode.
//!
//! It speaks the same protocol as every consumer: a Vulkan device on the same GPU (matched by
//! UUID) does the handshake and keeps the timelines; CUDA imports the same memory and
//! semaphores again.

use std::sync::Arc;
use std::time::Duration;

use super::device::CudaDevice;
use super::memory::{CudaArray, ExternalMemory, MappedBuffer};
use super::semaphore::CudaTimeline;
use super::stream::{synchronize, StreamHandle};
use crate::common::{uuid_string, TextureDescriptor};
use crate::ipc::{
    Consumer, ConsumerOptions, DetachedFrame, Frame, FrameLayout, LinearLayout, SyncMode,
};
use crate::vulkan::{ContextOptions, DeviceSelector, Validation, VulkanTextureShareManager};
use crate::{Error, Result};

/// Where a [`CudaConsumer`]'s frames are in CUDA.
#[derive(Debug)]
pub enum FrameMemory {
    /// One array per ring slot (the producer's textures, or a host ring's copies of them).
    Texture(Vec<CudaArray>),
    /// The linear frames' buffer, mapped once.
    Linear {
        /// The whole buffer.
        buffer: MappedBuffer,
        /// Where each slot's frame lies in it.
        layout: LinearLayout,
    },
}

/// A consumer whose frames are CUDA memory on one device.
pub struct CudaConsumer {
    // Field order is drop order: CUDA's imports go before the consumer that holds their
    // Vulkan originals. (Imported memory stays valid without them: exports that outlive the
    // consumer, such as DLPack tensors, hold the `Arc`.)
    memory: Arc<FrameMemory>,
    /// Timeline mode: "frame `f` is readable" at `f + 1` (the producer's ready timeline, or
    /// the linear copy's).
    ready: Option<CudaTimeline>,
    /// Timeline mode: our release timeline.
    released: Option<CudaTimeline>,
    consumer: Consumer,
    device: Arc<CudaDevice>,
    vulkan: Arc<VulkanTextureShareManager>,
}

impl std::fmt::Debug for CudaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaConsumer")
            .field("device", &self.device)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

/// The Vulkan context on `device`'s GPU that a CUDA consumer or producer speaks through
/// (`GEYSER_VALIDATION` applies).
pub(super) fn vulkan_for(device: &CudaDevice) -> Result<Arc<VulkanTextureShareManager>> {
    let options = ContextOptions {
        device: DeviceSelector::Uuid(*device.uuid()),
        validation: Validation::from_env(),
    };
    Ok(Arc::new(VulkanTextureShareManager::create(&options)?))
}

/// [`Error::DeviceMismatch`] unless `vulkan` runs on `device`'s GPU.
pub(super) fn check_same_gpu(
    device: &CudaDevice,
    vulkan: &VulkanTextureShareManager,
) -> Result<()> {
    let id = vulkan.identity();
    if &id.device_uuid != device.uuid() {
        return Err(Error::DeviceMismatch {
            exporter: format!("Vulkan {} {}", id.name, uuid_string(&id.device_uuid)),
            importer: format!("cuda:{} {}", device.ordinal(), uuid_string(device.uuid())),
            reason: "the Vulkan context and the CUDA device are different GPUs".into(),
        });
    }
    Ok(())
}

impl CudaConsumer {
    /// Connects to the producer at `name` for frames on `device`, through a Vulkan context
    /// of its own on the same GPU.
    pub fn connect(name: &str, device: &Arc<CudaDevice>, options: ConsumerOptions) -> Result<Self> {
        Self::connect_with(name, device, vulkan_for(device)?, options)
    }

    /// [`Self::connect`] through the application's Vulkan context (on `device`'s GPU).
    pub fn connect_with(
        name: &str,
        device: &Arc<CudaDevice>,
        vulkan: Arc<VulkanTextureShareManager>,
        options: ConsumerOptions,
    ) -> Result<Self> {
        check_same_gpu(device, &vulkan)?;
        let layout = options.layout;
        let mut consumer = Consumer::connect_retaining(name, vulkan.clone(), options)?;
        let retained = consumer.take_retained().unwrap_or_default();
        let (memory, ready) = match layout {
            FrameLayout::Linear => {
                let linear = consumer.take_linear_frames().ok_or_else(|| {
                    Error::Internal("linear frames were set up without their handles".into())
                })?;
                let layout = linear.layout;
                let imported = ExternalMemory::import_fd(
                    device,
                    linear.memory,
                    linear.allocation_size,
                    true,
                    &linear.device_uuid,
                )?;
                let buffer = imported.map_buffer(0, layout.offset(layout.slots))?;
                let ready = linear
                    .ready
                    .map(|fd| CudaTimeline::import_fd(device, fd))
                    .transpose()?;
                (FrameMemory::Linear { buffer, layout }, ready)
            }
            FrameLayout::Texture => {
                // The producer's textures (duplicates of what the consumer imported), or, for
                // frames that come through a host ring, the consumer's own copies of them.
                let exports = if retained.memory.is_empty() {
                    consumer
                        .textures()
                        .iter()
                        .map(|t| vulkan.export(t))
                        .collect::<Result<Vec<_>>>()?
                } else {
                    retained.memory
                };
                let arrays = exports
                    .into_iter()
                    .map(|e| {
                        let info = e.info.clone();
                        ExternalMemory::import_texture(device, e)?.map_array(&info)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let ready = retained
                    .ready
                    .map(|fd| CudaTimeline::import_fd(device, fd))
                    .transpose()?;
                (FrameMemory::Texture(arrays), ready)
            }
        };
        let released = consumer
            .release_timeline()
            .map(|t| CudaTimeline::from_vulkan(device, t))
            .transpose()?;
        if consumer.sync_mode() == SyncMode::Timeline && (ready.is_none() || released.is_none()) {
            return Err(Error::Internal(
                "timeline sync without both timelines in CUDA".into(),
            ));
        }
        Ok(Self {
            memory: Arc::new(memory),
            ready,
            released,
            consumer,
            device: device.clone(),
            vulkan,
        })
    }

    /// Waits for the next frame (see [`Consumer::next_frame`]).
    pub fn next_frame(&mut self, timeout: Option<Duration>) -> Result<CudaFrame<'_>> {
        let frame = self.consumer.next_frame(timeout)?;
        Ok(CudaFrame {
            frame,
            memory: &self.memory,
            ready: self.ready.as_ref(),
            released: self.released.as_ref(),
            device: &self.device,
        })
    }

    /// Puts a detached frame back into a guard ([`Consumer::attach`]).
    pub fn attach(&mut self, frame: DetachedFrame) -> Result<CudaFrame<'_>> {
        let frame = self.consumer.attach(frame)?;
        Ok(CudaFrame {
            frame,
            memory: &self.memory,
            ready: self.ready.as_ref(),
            released: self.released.as_ref(),
            device: &self.device,
        })
    }

    /// The underlying consumer (counters, sync mode, transfer path).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// The CUDA device.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.device
    }

    /// The Vulkan context it speaks through.
    pub fn vulkan(&self) -> &Arc<VulkanTextureShareManager> {
        &self.vulkan
    }

    /// Where the frames are (hold the `Arc` to keep the mappings alive, e.g. while a tensor
    /// made from a frame lives).
    pub fn memory(&self) -> &Arc<FrameMemory> {
        &self.memory
    }

    /// The frames' descriptor.
    pub fn descriptor(&self) -> &TextureDescriptor {
        self.consumer.descriptor()
    }
}

/// One frame held by a [`CudaConsumer`]. Before reading it on a stream, enqueue
/// [`Self::wait`] on that stream; when done, [`Self::release`] on the same stream. Dropping it
/// without `release` releases it at once, which is only right when no CUDA work still reads
/// it.
pub struct CudaFrame<'a> {
    frame: Frame<'a>,
    memory: &'a FrameMemory,
    ready: Option<&'a CudaTimeline>,
    released: Option<&'a CudaTimeline>,
    device: &'a Arc<CudaDevice>,
}

impl std::fmt::Debug for CudaFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaFrame")
            .field("frame", &self.frame)
            .finish()
    }
}

impl<'a> CudaFrame<'a> {
    /// The frame as the IPC layer sees it (number, slot, latency).
    pub fn frame(&self) -> &Frame<'a> {
        &self.frame
    }

    /// Texture layout: the array holding it.
    pub fn array(&self) -> Option<&'a CudaArray> {
        match self.memory {
            FrameMemory::Texture(arrays) => arrays.get(self.frame.slot()),
            FrameMemory::Linear { .. } => None,
        }
    }

    /// Linear layout: the device pointer of its first row, and the row pitch in bytes.
    pub fn device_ptr(&self) -> Option<(u64, u64)> {
        match self.memory {
            FrameMemory::Linear { buffer, layout } => Some((
                buffer.ptr() + layout.offset(self.frame.slot()),
                layout.row_pitch,
            )),
            FrameMemory::Texture(_) => None,
        }
    }

    /// Whether waits and releases are GPU-side (timeline mode).
    pub fn is_gpu_synchronized(&self) -> bool {
        self.ready.is_some()
    }

    /// Makes `stream` wait (on the GPU) until the frame is written; nothing to wait for in
    /// host mode, where it was written before it was announced.
    ///
    /// # Safety
    /// `stream` is a stream of this consumer's device context, or a default-stream value.
    pub unsafe fn wait(&self, stream: StreamHandle) -> Result<()> {
        match self.ready {
            // SAFETY: the caller's contract on `stream`.
            Some(ready) => unsafe { ready.wait(self.frame.number() + 1, stream) },
            None => Ok(()),
        }
    }

    /// Releases the frame once the work queued on `stream` so far has run: in timeline mode
    /// `stream` signals our release timeline and the producer's GPU waits for it; in host mode
    /// this waits for `stream` on the host first.
    ///
    /// # Safety
    /// As [`Self::wait`].
    pub unsafe fn release(mut self, stream: StreamHandle) -> Result<()> {
        match (self.released, self.frame.release_point()) {
            (Some(released), Some(point)) => {
                // SAFETY: the caller's contract on `stream`.
                unsafe { released.signal(point.value, stream)? };
            }
            _ => synchronize(self.device, stream)?,
        }
        self.frame.release()
    }

    /// Takes the frame out of its guard ([`crate::ipc::Frame::detach`]).
    pub fn detach(self) -> DetachedFrame {
        self.frame.detach()
    }
}
