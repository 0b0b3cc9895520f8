//! IPC endpoints for wgpu applications: [`WgpuConsumer`] yields frames as `wgpu::Texture`s,
//! [`WgpuProducer`] lets a wgpu application fill the ring. Both speak the same protocol as the
//! Vulkan endpoints, so any mix of Vulkan and wgpu producers and consumers works, and both use
//! the sync mode negotiated with the peer: GPU-side timeline waits where the device exports
//! timelines, otherwise the host fallback (wait for the one submission, then message).

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::Duration;

use super::manager::WgpuTextureShareManager;
use super::texture::{self, WgpuTexture};
use crate::common::TextureDescriptor;
use crate::ipc::{Consumer, ConsumerOptions, Frame, Producer, ProducerOptions, WriteSlot};
use crate::vulkan::{ContextOptions, DeviceSelector, Validation, VulkanTextureShareManager};
use crate::{Result, SharedTexture};

fn wrap_all(
    manager: &WgpuTextureShareManager,
    textures: &[crate::vulkan::VulkanTexture],
) -> Result<Vec<WgpuTexture>> {
    textures
        .iter()
        .map(|t| texture::wrap(manager, t.clone()))
        .collect()
}

/// A consumer whose frames are `wgpu::Texture`s on the manager's wgpu device. The ring's
/// textures are imported and wrapped once, at connection.
pub struct WgpuConsumer {
    textures: Vec<WgpuTexture>,
    consumer: Consumer,
    manager: Arc<WgpuTextureShareManager>,
}

impl std::fmt::Debug for WgpuConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuConsumer")
            .field("slots", &self.textures.len())
            .field("sync", &self.consumer.sync_mode())
            .finish()
    }
}

impl WgpuConsumer {
    /// Connects to the producer at `name` with default options.
    pub fn connect(name: &str, manager: Arc<WgpuTextureShareManager>) -> Result<Self> {
        Self::connect_with(name, manager, ConsumerOptions::default())
    }

    /// Connects to the producer at `name`. Fails like [`Consumer::connect_with`], and with
    /// [`crate::Error::Unsupported`] when wgpu cannot represent the producer's descriptor.
    ///
    /// A producer on another GPU or driver (or `options.host_ring`) sends frames through a
    /// host ring. Geyser never submits to wgpu's queue, so those frames are copied
    /// by a second Vulkan device that Geyser opens on the same GPU (same `deviceUUID`,
    /// validation from `GEYSER_VALIDATION`), into textures that wgpu's device imports once:
    /// the GPU copies out of host memory, wgpu reads the result with no further copy, and the
    /// handoff is host-synchronized.
    pub fn connect_with(
        name: &str,
        manager: Arc<WgpuTextureShareManager>,
        options: ConsumerOptions,
    ) -> Result<Self> {
        let wgpu_device = manager.vulkan().clone();
        let copier: OnceCell<Arc<VulkanTextureShareManager>> = OnceCell::new();
        let make_copier = || -> Result<Arc<VulkanTextureShareManager>> {
            if let Some(c) = copier.get() {
                return Ok(c.clone());
            }
            let made = Arc::new(VulkanTextureShareManager::create(&ContextOptions {
                device: DeviceSelector::Uuid(wgpu_device.identity().device_uuid),
                validation: Validation::from_env(),
            })?);
            Ok(copier.get_or_init(|| made).clone())
        };
        let consumer =
            Consumer::connect_with_copier(name, wgpu_device.clone(), options, &make_copier)?;
        let first = consumer.textures().first().map(|t| *t.extent());
        if let Some(extent) = first {
            texture::check_representable(&manager, consumer.descriptor(), &extent)?;
        }
        let textures = match copier.get() {
            // Frames arrive in the ring's textures, on wgpu's device.
            None => wrap_all(&manager, consumer.textures())?,
            // Frames arrive in the copier's textures: wgpu's device imports them.
            Some(copier) => consumer
                .textures()
                .iter()
                .map(|t| texture::wrap(&manager, wgpu_device.import(copier.export(t)?)?))
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(Self {
            textures,
            consumer,
            manager,
        })
    }

    /// The underlying consumer (descriptor, sync mode, counters, producer credentials).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// The ring's textures, by slot.
    pub fn textures(&self) -> &[WgpuTexture] {
        &self.textures
    }

    /// The next frame (see [`Consumer::next_frame`]).
    pub fn next_frame(&mut self, timeout: Option<Duration>) -> Result<WgpuFrame<'_>> {
        let frame = self.consumer.next_frame(timeout)?;
        let texture = &self.textures[frame.slot()];
        Ok(WgpuFrame {
            frame,
            texture,
            manager: &self.manager,
        })
    }
}

/// One frame held by a [`WgpuConsumer`]. Call [`Self::begin`], record and submit wgpu work
/// reading [`Self::texture`], then [`Self::end`]. Dropping it without `end` releases the slot
/// at once, which is only right when no GPU work read it.
pub struct WgpuFrame<'a> {
    frame: Frame<'a>,
    texture: &'a WgpuTexture,
    manager: &'a WgpuTextureShareManager,
}

impl std::fmt::Debug for WgpuFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuFrame")
            .field("frame", &self.frame)
            .finish()
    }
}

impl WgpuFrame<'_> {
    /// The frame's texture.
    pub fn texture(&self) -> &wgpu::Texture {
        self.texture.texture()
    }

    /// Frame number, slot, latency and the rest of the frame's metadata.
    pub fn frame(&self) -> &Frame<'_> {
        &self.frame
    }

    /// Acquires the texture for wgpu; in timeline mode wgpu's next submission waits on the
    /// GPU for the producer's write.
    pub fn begin(&self) -> Result<()> {
        let wait = self.frame.wait_point();
        self.manager.begin_access(self.texture, wait.as_slice())
    }

    /// Releases the texture after the wgpu work submitted so far, and the slot to the
    /// producer: in timeline mode the release submission signals the consumer's release
    /// point (no host wait); in host mode this waits for that submission first.
    pub fn end(mut self) -> Result<()> {
        let release = self.frame.release_point();
        let index = self.manager.end_access(self.texture, release.as_ref())?;
        if release.is_none() {
            self.manager.wait_for_submission(index)?;
        }
        self.frame.release()
    }
}

/// Waits (bounded) until wgpu's queue has finished everything submitted so far: the
/// endpoint's timeline semaphores, which wgpu submissions wait on and signal, are destroyed
/// right after. Geyser cannot wait on wgpu's queue itself, so the endpoints do it here, once.
fn wait_wgpu_idle(manager: &WgpuTextureShareManager) {
    if let Err(e) = manager.poll_wait(None, crate::vulkan::SUBMIT_TIMEOUT) {
        tracing::warn!("waiting for wgpu before closing an endpoint: {e}");
    }
}

impl Drop for WgpuConsumer {
    fn drop(&mut self) {
        wait_wgpu_idle(&self.manager);
    }
}

impl Drop for WgpuProducer {
    fn drop(&mut self) {
        wait_wgpu_idle(&self.manager);
    }
}

/// A producer whose ring textures are `wgpu::Texture`s on the manager's wgpu device.
pub struct WgpuProducer {
    textures: Vec<WgpuTexture>,
    producer: Producer,
    manager: Arc<WgpuTextureShareManager>,
}

impl std::fmt::Debug for WgpuProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuProducer")
            .field("slots", &self.textures.len())
            .field("sync", &self.producer.sync_mode())
            .finish()
    }
}

impl WgpuProducer {
    /// Binds the endpoint `name` with a ring of textures made on the wgpu device. Checks first
    /// that wgpu can represent `desc` ([`crate::Error::Unsupported`]).
    pub fn bind(
        name: &str,
        manager: Arc<WgpuTextureShareManager>,
        desc: &TextureDescriptor,
        options: ProducerOptions,
    ) -> Result<Self> {
        texture::check_representable(&manager, desc, &Default::default())?;
        let producer = Producer::bind(name, manager.vulkan().clone(), desc, options)?;
        let textures = wrap_all(&manager, producer.textures())?;
        Ok(Self {
            textures,
            producer,
            manager,
        })
    }

    /// The underlying producer (consumers, stats, sync mode).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The ring's textures, by slot.
    pub fn textures(&self) -> &[WgpuTexture] {
        &self.textures
    }

    /// The next slot to write (see [`Producer::acquire`]).
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<WgpuWriteSlot<'_>> {
        let slot = self.producer.acquire(timeout)?;
        Ok(WgpuWriteSlot {
            producer: self,
            slot,
        })
    }

    /// Takes back a slot [`WgpuWriteSlot::detach`]ed from this producer, to begin or present
    /// it. [`crate::Error::InvalidArgument`] when the slot is not one of this producer's (its
    /// texture is not this ring's); presenting a slot that was not acquired from this
    /// producer fails like [`Producer::present`].
    pub fn resume(&self, slot: WriteSlot) -> Result<WgpuWriteSlot<'_>> {
        let ours = self
            .textures
            .get(slot.id.slot_index())
            .is_some_and(|t| t.vulkan().image() == slot.texture.image());
        if !ours {
            return Err(crate::Error::InvalidArgument {
                what: "resume",
                reason: format!("{} is not a slot of this producer's ring", slot.id),
            });
        }
        Ok(WgpuWriteSlot {
            producer: self,
            slot,
        })
    }
}

/// A ring slot a wgpu producer writes now: [`Self::begin`], record and submit wgpu work
/// writing [`Self::texture`], then [`Self::present`]. The producer hands out no other slot
/// until this one is presented.
///
/// It borrows its producer. Where the slot must outlive the borrow (acquired in one system of
/// a render schedule, presented in a later one), [`Self::detach`] it into the owned
/// [`WriteSlot`] and [`WgpuProducer::resume`] it later.
#[derive(Debug)]
pub struct WgpuWriteSlot<'a> {
    producer: &'a WgpuProducer,
    slot: WriteSlot,
}

impl WgpuWriteSlot<'_> {
    /// The slot's texture.
    pub fn texture(&self) -> &wgpu::Texture {
        self.producer.textures[self.slot.id.slot_index()].texture()
    }

    /// The frame number it will carry.
    pub fn frame(&self) -> u64 {
        self.slot.id.frame
    }

    /// The slot without the borrow of its producer; [`WgpuProducer::resume`] takes it back.
    /// An access begun with [`Self::begin`] stays begun.
    pub fn detach(self) -> WriteSlot {
        self.slot
    }

    /// Acquires the texture for wgpu; in timeline mode wgpu's next submission waits on the
    /// GPU until every consumer released the slot's previous frame.
    pub fn begin(&self) -> Result<()> {
        let texture = &self.producer.textures[self.slot.id.slot_index()];
        self.producer
            .manager
            .begin_access(texture, &self.slot.waits)
    }

    /// Releases the texture after the wgpu work submitted so far and announces the frame:
    /// in timeline mode the release submission signals the frame's ready point (consumers
    /// wait on the GPU); in host mode this waits for that submission first. Returns the frame
    /// number.
    pub fn present(self) -> Result<u64> {
        let texture = &self.producer.textures[self.slot.id.slot_index()];
        let manager = &self.producer.manager;
        let index = manager.end_access(texture, self.slot.signal.as_ref())?;
        if self.slot.signal.is_none() {
            manager.wait_for_submission(index)?;
        }
        self.producer.producer.present(self.slot)
    }
}
