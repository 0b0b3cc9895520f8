//! The producer's linear frames ([`crate::ipc::linear`]): one exportable buffer with a region
//! per ring slot, made when the first consumer asks for linear frames; while any such
//! consumer is connected, each presented frame is copied into its slot's region on this GPU.
//! In timeline mode the copy waits for the frame's "ready" point and signals the "linear
//! ready" timeline at the same value; in host mode it is waited for before the frame is
//! announced.

use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;

use super::state::{Peer, Shared};
use crate::common::{borrow_os_handle, OwnedOsHandle, TextureUsage};
use crate::ipc::linear::LinearLayout;
use crate::ipc::wire::{FrameId, Message, SyncMode};
use crate::vulkan::{
    record_copy, CopyDirection, SharedBuffer, SharedTimelineSemaphore, Submitter, TimelinePoint,
    VulkanTexture,
};
use crate::{Error, Result};

/// The buffer, its export, the "linear ready" timeline (timeline mode) and the submitter
/// that records the copies.
pub(super) struct LinearRing {
    layout: LinearLayout,
    /// Declared before the buffer: its submissions finish (drop waits) before the buffer goes.
    submit: Submitter,
    buffer: SharedBuffer,
    /// Exported once; each consumer is sent a duplicate of it.
    memory: OwnedOsHandle,
    /// Timeline mode: frame `f`'s copy is done when it reaches `f + 1`; and its export.
    ready: Option<(Arc<SharedTimelineSemaphore>, OwnedOsHandle)>,
}

impl LinearRing {
    fn create(shared: &Shared) -> Result<Self> {
        let info = &shared.exports[0].info;
        let desc = &info.descriptor;
        if desc.format.texel_elements().is_none()
            || info.extent.depth_or_array_layers != 1
            || info.extent.mip_level_count != 1
            || info.extent.sample_count != 1
        {
            return Err(Error::unsupported(
                format!("linear frames of {} textures", desc.format),
                "linear frames are single-layer, single-mip, single-sample colour frames",
            ));
        }
        if !desc.has_usage(TextureUsage::CopySrc) {
            return Err(Error::unsupported(
                "linear frames",
                "the frames lack TextureUsage::CopySrc, which the copy into the buffer needs",
            ));
        }
        let layout = LinearLayout::tight(desc, shared.exports.len());
        let usage = vk::BufferUsageFlags::TRANSFER_DST
            | vk::BufferUsageFlags::TRANSFER_SRC
            | vk::BufferUsageFlags::STORAGE_BUFFER;
        let buffer = SharedBuffer::new(&shared.manager, layout.offset(layout.slots), usage)?;
        let memory = buffer.export()?;
        let ready = match &shared.ready {
            Some(_) => {
                let t = SharedTimelineSemaphore::new(&shared.manager, 0)?;
                let fd = t.export()?;
                Some((Arc::new(t), fd))
            }
            None => None,
        };
        tracing::info!(bytes = buffer.allocation_size(), "linear frames");
        Ok(Self {
            layout,
            submit: Submitter::new(&shared.manager, shared.exports.len())?,
            buffer,
            memory,
            ready,
        })
    }

    /// Copies `texture` (frame `id`) into its region. `ready` is the frame's "ready" point in
    /// timeline mode (the copy waits for it on the GPU and signals ours at the same value);
    /// with `block` (or without `ready`) it returns once the copy is done.
    pub(super) fn copy(
        &self,
        id: FrameId,
        texture: &VulkanTexture,
        ready: Option<&TimelinePoint>,
        block: bool,
    ) -> Result<()> {
        let bpp = u64::from(texture.export_info().descriptor.format.block_bytes());
        let region = vk::BufferImageCopy::default()
            .buffer_offset(self.layout.offset(id.slot_index()))
            .buffer_row_length((self.layout.row_pitch / bpp) as u32)
            .image_subresource(vk::ImageSubresourceLayers {
                aspect_mask: vk::ImageAspectFlags::COLOR,
                mip_level: 0,
                base_array_layer: 0,
                layer_count: 1,
            })
            .image_extent(texture.vk_extent());
        let waits: &[TimelinePoint] = ready.map(std::slice::from_ref).unwrap_or_default();
        let signal = match (&self.ready, ready) {
            (Some((timeline, _)), Some(point)) => Some(TimelinePoint {
                semaphore: timeline.clone(),
                value: point.value,
            }),
            _ => None,
        };
        let family = self.submit.queue_family();
        let buffer = self.buffer.buffer();
        self.submit.submit(
            // SAFETY: recording on the submitter's command buffer of the texture's device; the
            // region is mip 0 of the texture and lies inside the buffer (the layout gives each
            // slot a region that holds a whole frame); the texture and buffer outlive the
            // submission (the producer holds both; the ring drains its submitter first).
            |device, cmd| unsafe {
                record_copy(
                    device,
                    cmd,
                    family,
                    texture,
                    &[region],
                    buffer,
                    CopyDirection::Download,
                )
            },
            waits,
            signal.as_slice(),
            block || ready.is_none(),
        )
    }
}

/// The linear ring, made on first use (lock order: the state, then this).
#[derive(Default)]
pub(super) struct LinearFrames(Mutex<Option<LinearRing>>);

impl LinearFrames {
    pub(super) fn lock(&self) -> MutexGuard<'_, Option<LinearRing>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sends a consumer that asked for linear frames its `LinearSetup` (after `PoolSetup`),
/// making the ring on first use.
pub(super) fn setup_linear(shared: &Shared, peer: &Peer, sync: SyncMode) -> Result<()> {
    if !shared.options.linear_frames {
        return Err(Error::unsupported(
            "linear frames",
            "the producer was started with ProducerOptions::linear_frames = false",
        ));
    }
    let mut linear = shared.linear.lock();
    let ring = match linear.take() {
        Some(ring) => linear.insert(ring),
        None => linear.insert(LinearRing::create(shared)?),
    };
    let timeline = match (&ring.ready, sync) {
        (Some((_, fd)), SyncMode::Timeline) => Some(borrow_os_handle(fd)),
        _ => None,
    };
    let setup = Message::LinearSetup {
        slots: ring.layout.slots as u32,
        row_pitch: ring.layout.row_pitch,
        slot_bytes: ring.layout.slot_bytes,
        allocation_size: ring.buffer.allocation_size(),
        memory_type_index: ring.buffer.memory_type_index(),
        timeline: timeline.is_some(),
    };
    let mut fds = vec![borrow_os_handle(&ring.memory)];
    fds.extend(timeline);
    peer.send(&setup, &fds)
}
