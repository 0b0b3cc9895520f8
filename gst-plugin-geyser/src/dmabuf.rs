//! `geysersrc`'s DMA-BUF output (`video/x-raw(memory:DMABuf)`): a few linear buffers on the
//! GPU, exported as DMA-BUFs once and wrapped as GStreamer buffers once. Each frame is one GPU
//! copy from the shared texture into a buffer no downstream element holds, and no CPU copy.
//! (The shared textures themselves are opaque-FD images, not DMA-BUFs: see the README.)

use std::sync::Arc;

use geyser::vulkan::ash::vk;
use geyser::vulkan::{Buffer, VulkanTextureShareManager};
use geyser::{Error, Result};
use gst_allocators::prelude::*;

use crate::hostmem::Plane;

/// One output buffer: the Vulkan buffer the GPU writes and the GStreamer buffer around its
/// DMA-BUF. Free when this is the only reference to the GStreamer buffer.
pub(crate) struct Slot {
    pub vk: Buffer,
    pub gst: gst::Buffer,
}

/// The output buffers of one negotiated format.
pub(crate) struct DmaBufSlots {
    slots: Vec<Slot>,
    pub plane: Plane,
}

/// Whether `manager`'s device can export the buffers this output needs as DMA-BUF.
pub(crate) fn possible(manager: &VulkanTextureShareManager) -> bool {
    Buffer::dma_buf_exportable(manager, vk::BufferUsageFlags::TRANSFER_DST)
}

impl DmaBufSlots {
    /// `count` buffers for frames of `info` (tightly packed, one plane).
    pub fn new(
        manager: &Arc<VulkanTextureShareManager>,
        info: &gst_video::VideoInfo,
        count: usize,
    ) -> Result<Self> {
        let texel_bytes = info.format_info().pixel_stride()[0].max(1) as u32;
        let stride = info.width() as usize * texel_bytes as usize;
        let bytes = stride * info.height() as usize;
        let size = bytes.div_ceil(4096) * 4096;
        let allocator = gst_allocators::DmaBufAllocator::new();
        let mut slots = Vec::with_capacity(count);
        for _ in 0..count {
            let (vk, fd) =
                Buffer::export_dma_buf(manager, size as u64, vk::BufferUsageFlags::TRANSFER_DST)?;
            // SAFETY: the memory takes the DMA-BUF descriptor we own; `size` is its size.
            let memory = unsafe { allocator.alloc_dmabuf(fd, size) }
                .map_err(|e| Error::Internal(format!("wrapping a DMA-BUF: {e}")))?;
            let mut gst = gst::Buffer::new();
            {
                let b = gst
                    .get_mut()
                    .ok_or_else(|| Error::Internal("a new buffer is not writable".into()))?;
                b.append_memory(memory);
                b.set_size(bytes);
                gst_video::VideoMeta::add_full(
                    b,
                    gst_video::VideoFrameFlags::empty(),
                    info.format(),
                    info.width(),
                    info.height(),
                    &[0],
                    &[stride as i32],
                )
                .map_err(|e| Error::Internal(format!("video meta: {e}")))?;
            }
            slots.push(Slot { vk, gst });
        }
        Ok(Self {
            slots,
            plane: Plane {
                offset: 0,
                stride,
                width: info.width(),
                height: info.height(),
                texel_bytes,
            },
        })
    }

    /// The index of a slot no downstream element holds, if any.
    pub fn free_index(&self) -> Option<usize> {
        self.slots.iter().position(|s| s.gst.is_writable())
    }

    /// Slot `i`.
    pub fn slot(&mut self, i: usize) -> &mut Slot {
        &mut self.slots[i]
    }
}
