//! IPC endpoints for GL applications: [`GlConsumer`] yields frames as [`GlTexture`]s,
//! [`GlProducer`] lets GL fill the ring. Both speak the same protocol as the Vulkan and wgpu
//! endpoints. The protocol side runs on a Vulkan device Geyser opens on the GL context's GPU
//! (matched by `GL_DEVICE_UUID_EXT`), which also makes host-ring copies; GL reads and writes
//! the shared memory itself. Sync: GL waits for and signals the shared timelines on the GPU
//! where GL has `GL_EXT_semaphore_fd` + `GL_NV_timeline_semaphore`; otherwise the handoff is
//! host-synchronized (`glFinish` before a release or present).

use std::sync::Arc;
use std::time::Duration;

use super::egl::GlContext;
use super::sync::GlSemaphore;
use super::texture::GlTexture;
use crate::common::{ExportedTexture, TextureDescriptor};
use crate::ipc::{
    Consumer, ConsumerOptions, Frame, Producer, ProducerOptions, SyncMode, WriteSlot,
};
use crate::vulkan::{
    ContextOptions, DeviceSelector, TimelinePoint, TransferPath, Validation,
    VulkanTextureShareManager, SUBMIT_TIMEOUT,
};
use crate::{Error, Result};

/// A Vulkan device on the GL context's GPU: the one whose `deviceUUID` GL reports, else the
/// one `GEYSER_DEVICE` selects (then only DMA-BUF rings can be shared with GL).
fn vulkan_for(gl: &GlContext) -> Result<Arc<VulkanTextureShareManager>> {
    let device = match gl.caps().device_uuids.first() {
        Some(uuid) => DeviceSelector::Uuid(*uuid),
        None => ContextOptions::from_env().device,
    };
    Ok(Arc::new(VulkanTextureShareManager::create(
        &ContextOptions {
            device,
            validation: Validation::from_env(),
        },
    )?))
}

/// GL's semaphores for the two timelines of a connection: waits for "ready", signals
/// "released" (consumer) or signals "ready" (producer).
struct GlTimelines {
    wait: Option<GlSemaphore>,
    signal: GlSemaphore,
}

/// A consumer whose frames are GL textures on a [`GlContext`]. The ring is imported into GL
/// once, at connection: as memory objects (opaque FDs, same GPU and driver) or EGLImages
/// (DMA-BUF rings, `ProducerOptions::ring_memory`). Frames a producer sends through a host
/// ring are copied into textures of Geyser's Vulkan device first, which GL imports once.
pub struct GlConsumer {
    textures: Vec<GlTexture>,
    timelines: Option<GlTimelines>,
    consumer: Consumer,
    gl: GlContext,
    _vulkan: Arc<VulkanTextureShareManager>,
}

impl std::fmt::Debug for GlConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlConsumer")
            .field("slots", &self.textures.len())
            .field("sync", &self.consumer.sync_mode())
            .field("gl_semaphores", &self.timelines.is_some())
            .finish()
    }
}

impl GlConsumer {
    /// Connects to the producer at `name`; `gl` must be current on this thread. Fails like
    /// [`Consumer::connect_with`], and with [`Error::Unsupported`] / [`Error::DeviceMismatch`]
    /// when GL cannot import the ring. Without GL timeline semaphores, and with the sync mode
    /// left to negotiation, it asks for host sync.
    pub fn connect(name: &str, gl: &GlContext, options: ConsumerOptions) -> Result<Self> {
        Self::connect_importing(name, gl, options, &mut |e| gl.import(e))
    }

    /// [`Self::connect`], with each slot of the ring imported by `import` (called once per
    /// slot, in slot order): for engines that make their own texture objects, e.g. a three-d
    /// `Texture2D` whose creation callback calls [`GlContext::import_into_bound`].
    pub fn connect_importing(
        name: &str,
        gl: &GlContext,
        mut options: ConsumerOptions,
        import: &mut dyn FnMut(&ExportedTexture) -> Result<GlTexture>,
    ) -> Result<Self> {
        gl.make_current()?;
        let gl_timelines = GlSemaphore::supported(gl, true);
        if options.sync.is_none() && !gl_timelines {
            options.sync = Some(SyncMode::Host);
        }
        let vulkan = vulkan_for(gl)?;
        let mut consumer = Consumer::connect_retaining(name, vulkan.clone(), options)?;
        let mut retained = consumer.take_retained().unwrap_or_default();
        let shared = matches!(
            consumer.transfer_path(),
            TransferPath::Direct | TransferPath::DmaBuf
        );
        let exports: Vec<ExportedTexture> = if shared {
            // The producer's own memory (DMA-BUF also from another driver): GL imports it.
            std::mem::take(&mut retained.memory)
        } else {
            // Host ring: frames land in our own Vulkan textures; GL imports those.
            consumer
                .textures()
                .iter()
                .map(|t| vulkan.export(t))
                .collect::<Result<_>>()?
        };
        let textures = exports.iter().map(import).collect::<Result<Vec<_>>>()?;
        let ready = retained.ready.take();
        let timelines = match (consumer.sync_mode(), ready, gl_timelines) {
            (SyncMode::Timeline, Some(ready), true) => {
                let released = consumer
                    .release_timeline()
                    .ok_or_else(|| {
                        Error::Internal("timeline mode without a release timeline".into())
                    })?
                    .export()?;
                Some(GlTimelines {
                    wait: Some(GlSemaphore::import(gl, ready, true)?),
                    signal: GlSemaphore::import(gl, released, true)?,
                })
            }
            _ => None,
        };
        Ok(Self {
            textures,
            timelines,
            consumer,
            gl: gl.clone(),
            _vulkan: vulkan,
        })
    }

    /// The underlying consumer (descriptor, sync mode, counters, transfer path).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// The ring's GL textures, by slot.
    pub fn textures(&self) -> &[GlTexture] {
        &self.textures
    }

    /// Whether frames are handed over with GL semaphores (GPU waits) rather than on the host.
    pub fn gpu_sync(&self) -> bool {
        self.timelines.is_some()
    }

    /// The next frame (see [`Consumer::next_frame`]).
    pub fn next_frame(&mut self, timeout: Option<Duration>) -> Result<GlFrame<'_>> {
        let frame = self.consumer.next_frame(timeout)?;
        let texture = &self.textures[frame.slot()];
        Ok(GlFrame {
            frame,
            texture,
            timelines: self.timelines.as_ref(),
            gl: &self.gl,
        })
    }
}

/// One frame held by a [`GlConsumer`]: [`Self::begin`], issue GL commands reading
/// [`Self::texture`], then [`Self::end`]. Dropping it without `end` releases the slot at once,
/// which is only right when GL did not read it.
pub struct GlFrame<'a> {
    frame: Frame<'a>,
    texture: &'a GlTexture,
    timelines: Option<&'a GlTimelines>,
    gl: &'a GlContext,
}

impl std::fmt::Debug for GlFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlFrame")
            .field("frame", &self.frame)
            .finish()
    }
}

impl GlFrame<'_> {
    /// The frame's GL texture.
    pub fn texture(&self) -> &GlTexture {
        self.texture
    }

    /// Frame number, slot, latency and the rest of the frame's metadata.
    pub fn frame(&self) -> &Frame<'_> {
        &self.frame
    }

    /// Makes the frame readable by GL: with GL semaphores GL's next commands wait on the GPU
    /// for the producer's write; in timeline mode without them the host waits; in host mode
    /// the write was complete before the frame was announced.
    pub fn begin(&self) -> Result<()> {
        match (self.timelines, self.frame.wait_point()) {
            (Some(t), Some(point)) => match &t.wait {
                Some(ready) => ready.wait(Some(point.value), &[self.texture]),
                None => Err(Error::Internal(
                    "GL timelines without a wait semaphore".into(),
                )),
            },
            (None, Some(_)) => self.frame.wait_ready(SUBMIT_TIMEOUT),
            (_, None) => Ok(()),
        }
    }

    /// Ends GL's reading and releases the slot to the producer: with GL semaphores GL signals
    /// the release point after its commands (no host wait); otherwise `glFinish`, then the
    /// release (signaled on the host in timeline mode).
    pub fn end(mut self) -> Result<()> {
        let release = self.frame.release_point();
        match (self.timelines, release) {
            (Some(t), Some(point)) => t.signal.signal(Some(point.value), &[self.texture])?,
            (None, Some(point)) => {
                self.gl.finish_all();
                point.semaphore.signal(point.value)?;
            }
            (_, None) => self.gl.finish_all(),
        }
        self.frame.release()
    }
}

/// A producer whose ring textures are GL textures on a [`GlContext`]. The ring is made on a
/// Vulkan device on GL's GPU (in `options.ring_memory`) and imported into GL once.
pub struct GlProducer {
    textures: Vec<GlTexture>,
    signal: Option<GlTimelines>,
    producer: Producer,
    gl: GlContext,
    _vulkan: Arc<VulkanTextureShareManager>,
}

impl std::fmt::Debug for GlProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlProducer")
            .field("slots", &self.textures.len())
            .field("sync", &self.producer.sync_mode())
            .finish()
    }
}

impl GlProducer {
    /// Binds the endpoint `name` with a ring GL can write; `gl` must be current on this
    /// thread. Without GL timeline semaphores, and with the sync mode left to negotiation, it
    /// offers host sync only.
    pub fn bind(
        name: &str,
        gl: &GlContext,
        desc: &TextureDescriptor,
        mut options: ProducerOptions,
    ) -> Result<Self> {
        gl.make_current()?;
        let gl_timelines = GlSemaphore::supported(gl, true);
        if options.sync.is_none() && !gl_timelines {
            options.sync = Some(SyncMode::Host);
        }
        let vulkan = vulkan_for(gl)?;
        let producer = Producer::bind(name, vulkan.clone(), desc, options)?;
        let textures = producer
            .textures()
            .iter()
            .map(|t| gl.import(&vulkan.export(t)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            textures,
            signal: None,
            producer,
            gl: gl.clone(),
            _vulkan: vulkan,
        })
    }

    /// The underlying producer (consumers, stats, sync mode).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The ring's GL textures, by slot.
    pub fn textures(&self) -> &[GlTexture] {
        &self.textures
    }

    /// The next slot to write (see [`Producer::acquire`]).
    pub fn acquire(&mut self, timeout: Option<Duration>) -> Result<GlWriteSlot<'_>> {
        let slot = self.producer.acquire(timeout)?;
        if let (Some(point), None) = (&slot.signal, &self.signal) {
            if GlSemaphore::supported(&self.gl, true) {
                let sem = GlSemaphore::import(&self.gl, point.semaphore.export()?, true)?;
                self.signal = Some(GlTimelines {
                    wait: None,
                    signal: sem,
                });
            }
        }
        Ok(GlWriteSlot {
            producer: self,
            slot,
        })
    }
}

/// A ring slot GL writes now: [`Self::begin`], issue GL commands writing [`Self::texture`],
/// then [`Self::present`].
pub struct GlWriteSlot<'a> {
    producer: &'a GlProducer,
    slot: WriteSlot,
}

impl std::fmt::Debug for GlWriteSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlWriteSlot")
            .field("slot", &self.slot)
            .finish()
    }
}

impl GlWriteSlot<'_> {
    /// The slot's GL texture.
    pub fn texture(&self) -> &GlTexture {
        &self.producer.textures[self.slot.id.slot_index()]
    }

    /// The frame number it will carry.
    pub fn frame(&self) -> u64 {
        self.slot.id.frame
    }

    /// Waits until every consumer released the slot's previous frame (timeline mode; on the
    /// host: GL would need each consumer's timeline imported). Host mode: nothing to wait for.
    pub fn begin(&self) -> Result<()> {
        self.slot
            .waits
            .iter()
            .try_for_each(|TimelinePoint { semaphore, value }| {
                semaphore.wait(*value, SUBMIT_TIMEOUT)
            })
    }

    /// Announces the frame after GL's commands so far: with GL semaphores GL signals the
    /// frame's ready point on the GPU; otherwise `glFinish` first (and a host signal in
    /// timeline mode). Returns the frame number.
    pub fn present(self) -> Result<u64> {
        let texture = self.texture();
        match (&self.slot.signal, &self.producer.signal) {
            (Some(point), Some(t)) => t.signal.signal(Some(point.value), &[texture])?,
            (Some(point), None) => {
                self.producer.gl.finish_all();
                point.semaphore.signal(point.value)?;
            }
            (None, _) => self.producer.gl.finish_all(),
        }
        self.producer.producer.present(self.slot)
    }
}
