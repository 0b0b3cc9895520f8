//! What a Python consumer runs on: [`Backend::Host`] (a Vulkan consumer; frames are copied
//! to host memory on request) or [`Backend::Cuda`] (a [`CudaConsumer`]; frames are CUDA
//! memory, exported zero-copy). Every operation on a held frame attaches it, works, and
//! detaches it again ([`DetachedFrame`]), so Python objects never borrow the consumer.

use std::sync::Arc;
use std::time::Duration;

use geyser::cuda::{
    copy_2d, synchronize, CudaConsumer, CudaDevice, CudaStream, DeviceBuffer, FrameMemory,
    Region2D, StreamHandle,
};
use geyser::ipc::{Consumer, ConsumerOptions, DetachedFrame, FrameLayout, LinearLayout};
use geyser::vulkan::ash::vk;
use geyser::vulkan::{
    Buffer, ContextOptions, SharedBuffer, SharedTimelineSemaphore, StagingBuffer, Submitter,
    VulkanTextureShareManager, SUBMIT_TIMEOUT,
};
use geyser::{Error, Result};

/// Linear frames read on the host: the buffer imported into Vulkan (read in place when
/// host-visible, else copied into `staging` first) and, in timeline mode, their timeline.
pub struct HostLinear {
    layout: LinearLayout,
    buffer: SharedBuffer,
    staging: Option<(Buffer, Submitter)>,
    ready: Option<SharedTimelineSemaphore>,
}

/// A consumer and what reading its frames needs.
pub enum Backend {
    /// Vulkan; frames reach Python as host copies.
    Host {
        consumer: Consumer,
        /// Texture layout: copies frames out of their texture.
        staging: StagingBuffer,
        linear: Option<HostLinear>,
    },
    /// CUDA; frames are device memory.
    Cuda {
        consumer: CudaConsumer,
        /// Geyser's own stream (host copies, waits no caller asked for).
        stream: CudaStream,
        /// Texture layout: per slot, linear device memory frames are copied into for DLPack.
        copies: Vec<Option<Arc<DeviceBuffer>>>,
    },
}

/// Where a frame's bytes are, for a host copy or a DLPack export.
pub enum DeviceFrame {
    /// Linear frames: a pointer into the mapped buffer, its row pitch, and what keeps the
    /// mapping alive.
    Linear(u64, u64, Arc<FrameMemory>),
    /// Texture layout: copied into linear device memory on the given stream.
    Copied(Arc<DeviceBuffer>),
}

impl Backend {
    /// Connects on the host path: a Vulkan context from the environment (`GEYSER_DEVICE`,
    /// `GEYSER_VALIDATION`).
    pub fn host(name: &str, options: ConsumerOptions) -> Result<Self> {
        let manager = Arc::new(VulkanTextureShareManager::create(
            &ContextOptions::from_env(),
        )?);
        let layout = options.layout;
        let mut consumer = Consumer::connect_with(name, manager.clone(), options)?;
        let desc = consumer.descriptor().clone();
        let staging = StagingBuffer::new(&manager, desc.tight_size())?;
        let linear = match layout {
            FrameLayout::Texture => None,
            FrameLayout::Linear => {
                let frames = consumer.take_linear_frames().ok_or_else(|| {
                    Error::Internal("linear frames were set up without their handles".into())
                })?;
                let usage = vk::BufferUsageFlags::TRANSFER_SRC
                    | vk::BufferUsageFlags::TRANSFER_DST
                    | vk::BufferUsageFlags::STORAGE_BUFFER;
                let size = frames.layout.offset(frames.layout.slots);
                let buffer = SharedBuffer::import(
                    &manager,
                    frames.memory,
                    size,
                    frames.allocation_size,
                    frames.memory_type_index,
                    usage,
                )?;
                let staging = if buffer.buffer().bytes().is_empty() {
                    let bytes = frames.layout.slot_bytes;
                    Some((
                        Buffer::readback(&manager, bytes, vk::BufferUsageFlags::TRANSFER_DST)?,
                        Submitter::new(&manager, 1)?,
                    ))
                } else {
                    None
                };
                let ready = frames
                    .ready
                    .map(|fd| SharedTimelineSemaphore::import(&manager, fd))
                    .transpose()?;
                Some(HostLinear {
                    layout: frames.layout,
                    buffer,
                    staging,
                    ready,
                })
            }
        };
        Ok(Backend::Host {
            consumer,
            staging,
            linear,
        })
    }

    /// Connects on CUDA device `ordinal`.
    pub fn cuda(name: &str, ordinal: usize, options: ConsumerOptions) -> Result<Self> {
        let device = CudaDevice::new(ordinal)?;
        let consumer = CudaConsumer::connect(name, &device, options)?;
        let slots = consumer.consumer().textures().len();
        Ok(Backend::Cuda {
            stream: CudaStream::new(&device)?,
            consumer,
            copies: vec![None; slots],
        })
    }

    /// The IPC consumer.
    pub fn consumer(&self) -> &Consumer {
        match self {
            Backend::Host { consumer, .. } => consumer,
            Backend::Cuda { consumer, .. } => consumer.consumer(),
        }
    }

    /// The next frame, detached; with its number, slot, latency and age.
    pub fn next_frame(&mut self, timeout: Option<Duration>) -> Result<(DetachedFrame, FrameTimes)> {
        let frame = match self {
            Backend::Host { consumer, .. } => consumer.next_frame(timeout)?,
            Backend::Cuda { consumer, .. } => {
                let f = consumer.next_frame(timeout)?;
                let times = FrameTimes::of(f.frame());
                return Ok((f.detach(), times));
            }
        };
        let times = FrameTimes::of(&frame);
        Ok((frame.detach(), times))
    }

    /// Releases `frame` once the work queued on `stream` has run (CUDA; the legacy default
    /// stream when `None`). Host frames were read synchronously: released at once.
    pub fn release(&mut self, frame: DetachedFrame, stream: Option<StreamHandle>) -> Result<()> {
        match self {
            Backend::Host { consumer, .. } => consumer.attach(frame)?.release(),
            Backend::Cuda { consumer, .. } => {
                let f = consumer.attach(frame)?;
                // SAFETY: streams come from the application (DLPack/CUDA Array Interface
                // callers, or `release(stream=)`), which name streams of the primary context
                // the CUDA runtime uses, the one this consumer's device works in.
                unsafe { f.release(stream.unwrap_or(StreamHandle::LEGACY)) }
            }
        }
    }

    /// Copies `frame` into host memory (tightly packed rows), waiting for it first.
    pub fn read_host(&mut self, frame: &mut Option<DetachedFrame>) -> Result<Vec<u8>> {
        let held = frame.take().ok_or_else(released)?;
        match self {
            Backend::Host {
                consumer,
                staging,
                linear,
            } => {
                let f = consumer.attach(held)?;
                let result = (|| match linear {
                    None => {
                        f.wait_ready(SUBMIT_TIMEOUT)?;
                        Ok(staging.download(f.texture())?.to_vec())
                    }
                    Some(l) => l.read(f.number(), f.slot(), f.texture().export_info()),
                })();
                *frame = Some(f.detach());
                result
            }
            Backend::Cuda {
                consumer, stream, ..
            } => {
                let desc = consumer.descriptor().clone();
                let row = desc.width as usize * desc.format.block_bytes() as usize;
                let height = desc.height as usize;
                let device = consumer.device().clone();
                let f = consumer.attach(held)?;
                let mut out = vec![0u8; row * height];
                let own = stream.handle();
                let result = (|| {
                    // SAFETY: our own stream, of the consumer's device.
                    unsafe { f.wait(own)? };
                    let src = match (f.array(), f.device_ptr()) {
                        (Some(a), _) => a.region(),
                        (None, Some((ptr, pitch))) => Region2D::Device(ptr, pitch as usize),
                        (None, None) => return Err(Error::Internal("frame without memory".into())),
                    };
                    let dst = Region2D::Host(out.as_mut_ptr(), row);
                    // SAFETY: the frame's memory is mapped while the consumer lives, `out`
                    // holds `height` rows of `row` bytes, and we wait for the copy below.
                    unsafe { copy_2d(&device, src, dst, row, height, own)? };
                    synchronize(&device, own)
                })();
                *frame = Some(f.detach());
                result.map(|()| out)
            }
        }
    }

    /// CUDA: makes `stream` wait for `frame` and returns where its bytes are (texture layout:
    /// copied, on `stream`, into this slot's linear memory; `fresh` copies into new memory
    /// instead).
    pub fn device_frame(
        &mut self,
        frame: &mut Option<DetachedFrame>,
        stream: StreamHandle,
        fresh: bool,
    ) -> Result<DeviceFrame> {
        let Backend::Cuda {
            consumer, copies, ..
        } = self
        else {
            return Err(Error::unsupported(
                "device frames",
                "this consumer reads frames on the host (device=\"cpu\")",
            ));
        };
        let held = frame.take().ok_or_else(released)?;
        let desc = consumer.descriptor().clone();
        let row = desc.width as usize * desc.format.block_bytes() as usize;
        let height = desc.height as usize;
        let device = consumer.device().clone();
        let memory = consumer.memory().clone();
        let f = consumer.attach(held)?;
        let result = (|| {
            // SAFETY: `stream` is the application's, of the primary context (see `release`).
            unsafe { f.wait(stream)? };
            let src = match (f.array(), f.device_ptr()) {
                (None, Some((ptr, pitch))) if !fresh => {
                    return Ok(DeviceFrame::Linear(ptr, pitch, memory.clone()));
                }
                (None, Some((ptr, pitch))) => Region2D::Device(ptr, pitch as usize),
                (Some(a), _) => a.region(),
                (None, None) => return Err(Error::Internal("frame without memory".into())),
            };
            let slot = f.frame().slot();
            let target = match (&copies[slot], fresh) {
                (Some(b), false) => b.clone(),
                _ => {
                    let b = Arc::new(DeviceBuffer::new(&device, (row * height) as u64)?);
                    if !fresh {
                        copies[slot] = Some(b.clone());
                    }
                    b
                }
            };
            // SAFETY: source mapped while the consumer lives, target alive (an Arc the export
            // holds), both `height` rows of `row` bytes; the stream is the caller's.
            unsafe {
                copy_2d(
                    &device,
                    src,
                    Region2D::Device(target.ptr(), row),
                    row,
                    height,
                    stream,
                )?
            };
            Ok(DeviceFrame::Copied(target))
        })();
        *frame = Some(f.detach());
        result
    }
}

impl Backend {
    /// Waits on the host for `stream` (CUDA; nothing to wait for on the host path).
    pub fn synchronize(&self, stream: StreamHandle) -> Result<()> {
        match self {
            Backend::Host { .. } => Ok(()),
            Backend::Cuda { consumer, .. } => synchronize(consumer.device(), stream),
        }
    }
}

/// The error for a frame used after its release.
pub fn released() -> Error {
    Error::InvalidArgument {
        what: "frame",
        reason: "it was released (by release(), the end of its `with` block, or the next frame); copy what you keep (numpy(), tensor.clone())".into(),
    }
}

impl HostLinear {
    /// The linear copy of frame `number` in `slot`, tightly packed.
    fn read(
        &mut self,
        number: u64,
        slot: usize,
        info: &geyser::common::ExportInfo,
    ) -> Result<Vec<u8>> {
        if let Some(ready) = &self.ready {
            ready.wait(number + 1, SUBMIT_TIMEOUT)?;
        }
        let d = &info.descriptor;
        let row = d.width as usize * d.format.block_bytes() as usize;
        let pitch = self.layout.row_pitch as usize;
        let start = self.layout.offset(slot);
        let frame_bytes = pitch * (d.height as usize - 1) + row;
        let bytes: &[u8] = match &mut self.staging {
            None => {
                let all = self.buffer.buffer().bytes();
                &all[start as usize..start as usize + frame_bytes]
            }
            Some((staging, submit)) => {
                let copy = vk::BufferCopy::default()
                    .src_offset(start)
                    .size(frame_bytes as u64);
                let src = self.buffer.buffer().raw();
                let dst = staging.raw();
                let host =
                    staging.barrier(vk::AccessFlags::TRANSFER_WRITE, vk::AccessFlags::HOST_READ);
                submit.submit(
                    // SAFETY: recording on the submitter's command buffer of this device; the
                    // range lies inside both buffers; the call blocks until the GPU is done.
                    |device, cmd| unsafe {
                        device.cmd_copy_buffer(cmd, src, dst, &[copy]);
                        device.cmd_pipeline_barrier(
                            cmd,
                            vk::PipelineStageFlags::TRANSFER,
                            vk::PipelineStageFlags::HOST,
                            vk::DependencyFlags::empty(),
                            &[],
                            &[host],
                            &[],
                        );
                    },
                    &[],
                    &[],
                    true,
                )?;
                &staging.bytes()[..frame_bytes]
            }
        };
        let mut out = Vec::with_capacity(row * d.height as usize);
        for y in 0..d.height as usize {
            out.extend_from_slice(&bytes[y * pitch..y * pitch + row]);
        }
        Ok(out)
    }
}

/// A frame's number, slot and timings, taken when it arrives.
#[derive(Clone, Copy, Debug)]
pub struct FrameTimes {
    pub number: u64,
    pub slot: usize,
    pub latency: Duration,
    pub age: Duration,
    /// `CLOCK_MONOTONIC` nanoseconds of the producer's present.
    pub present_ns: u64,
}

impl FrameTimes {
    fn of(f: &geyser::ipc::Frame<'_>) -> Self {
        Self {
            number: f.number(),
            slot: f.slot(),
            latency: f.latency(),
            age: f.age(),
            present_ns: f.present_ns(),
        }
    }
}
