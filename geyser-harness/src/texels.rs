//! Texels of a texture read back to the host at given points, with one small copy on the GPU:
//! what [`crate::pattern::ProbeReader`] checks frame patterns with, and what checks of other
//! known content (a rendered scene's colours) use. Built on Geyser's public Vulkan API only.

use geyser::common::TextureUsage;
use geyser::vulkan::ash::vk;
use geyser::vulkan::{
    record_copy, Buffer, CopyDirection, Submitter, TimelinePoint, VulkanTexture,
    VulkanTextureShareManager, SUBMIT_TIMEOUT,
};
use geyser::{Error, Result};

use crate::pattern::check_color;

/// Reads texels of a texture back to the host: copies up to [`TexelReader::MAX_TEXELS`] texels
/// at given points into a small host buffer. What [`ProbeReader`] checks patterns with, and what
/// checks of other known content (e.g. a rendered scene's colours) use.
pub struct TexelReader {
    submit: Submitter,
    buffer: Buffer,
}

impl TexelReader {
    /// Most texels per read.
    pub const MAX_TEXELS: usize = 16;

    /// A reader on `manager`'s device.
    pub fn new(manager: &VulkanTextureShareManager) -> Result<Self> {
        let buffer = Buffer::readback(
            manager,
            (Self::MAX_TEXELS * 16) as u64,
            vk::BufferUsageFlags::TRANSFER_DST,
        )?;
        Ok(Self {
            submit: Submitter::new(manager, 1)?,
            buffer,
        })
    }

    /// Copies the texels at `points` of `texture` (acquired from and released back to
    /// `VK_QUEUE_FAMILY_EXTERNAL`; needs `CopySrc`), the GPU waiting for `waits` first and
    /// signaling `signals` after. `submitted` runs right after the submission, before the host
    /// waits for the copy (e.g. to release the frame to its producer at once). Returns each
    /// texel's bytes, in the order of `points`. Allocates nothing.
    pub fn read(
        &self,
        texture: &VulkanTexture,
        points: &[(u32, u32)],
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        submitted: impl FnOnce() -> Result<()>,
    ) -> Result<Texels> {
        self.submit(texture, points, waits, signals, |_, _| {})?;
        let sent = submitted();
        let texels = self.result(texture, points.len());
        sent?;
        texels
    }

    /// Submits the copy of [`Self::read`] without waiting for it; `first` records commands at
    /// the start of the command buffer (e.g. a timestamp: when the read started).
    /// [`Self::result`] waits for it; callers keep the texture until then.
    pub fn submit(
        &self,
        texture: &VulkanTexture,
        points: &[(u32, u32)],
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        first: impl FnOnce(&geyser::vulkan::ash::Device, vk::CommandBuffer),
    ) -> Result<()> {
        check_color(texture, TextureUsage::CopySrc, "TexelReader::read")?;
        let d = &texture.export_info().descriptor;
        let outside = points.iter().find(|(x, y)| *x >= d.width || *y >= d.height);
        if points.len() > Self::MAX_TEXELS || outside.is_some() {
            return Err(Error::InvalidArgument {
                what: "points",
                reason: format!(
                    "at most {} points inside {}x{} (got {}, outside: {outside:?})",
                    Self::MAX_TEXELS,
                    d.width,
                    d.height,
                    points.len()
                ),
            });
        }
        let family = self.submit.queue_family();
        let regions: [vk::BufferImageCopy; Self::MAX_TEXELS] = std::array::from_fn(|i| {
            let (x, y) = points.get(i).copied().unwrap_or_default();
            vk::BufferImageCopy::default()
                .buffer_offset((i * 16) as u64)
                .image_subresource(vk::ImageSubresourceLayers {
                    aspect_mask: vk::ImageAspectFlags::COLOR,
                    mip_level: 0,
                    base_array_layer: 0,
                    layer_count: 1,
                })
                .image_offset(vk::Offset3D {
                    x: x as i32,
                    y: y as i32,
                    z: 0,
                })
                .image_extent(vk::Extent3D {
                    width: 1,
                    height: 1,
                    depth: 1,
                })
        });
        let regions = &regions[..points.len()];
        self.submit.submit(
            // SAFETY: the submitter's command buffer is recording on the texture's device; the
            // points are inside the image (checked above) and each region fits its 16-byte
            // slot of the buffer (texels are at most 16 bytes); `result` waits for the GPU
            // before the buffer is read, and callers keep the texture until then.
            |device, cmd| unsafe {
                first(device, cmd);
                // Earlier writes on this queue (an upload just before) are visible to the copy.
                let written = vk::MemoryBarrier::default()
                    .src_access_mask(vk::AccessFlags::MEMORY_WRITE)
                    .dst_access_mask(vk::AccessFlags::TRANSFER_READ);
                device.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::ALL_COMMANDS,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::DependencyFlags::empty(),
                    &[written],
                    &[],
                    &[],
                );
                record_copy(
                    device,
                    cmd,
                    family,
                    texture,
                    regions,
                    &self.buffer,
                    CopyDirection::Download,
                )
            },
            waits,
            signals,
            false,
        )
    }

    /// Waits for the last [`Self::submit`] (of `texture`, `count` points) and returns the
    /// texels it copied.
    pub fn result(&self, texture: &VulkanTexture, count: usize) -> Result<Texels> {
        self.submit.drain(SUBMIT_TIMEOUT)?;
        let bpp = texture.export_info().descriptor.format.block_bytes();
        let count = count.min(Self::MAX_TEXELS);
        let bytes = self.buffer.bytes();
        Ok(Texels {
            bytes: std::array::from_fn(|i| {
                let mut texel = [0; 16];
                if i < count {
                    texel.copy_from_slice(&bytes[i * 16..i * 16 + 16]);
                }
                texel
            }),
            len: count,
            texel_bytes: bpp as usize,
        })
    }
}

/// Texels read by [`TexelReader::read`], in the order of the points asked for.
#[derive(Clone, Copy, Debug)]
pub struct Texels {
    bytes: [[u8; 16]; TexelReader::MAX_TEXELS],
    len: usize,
    texel_bytes: usize,
}

impl Texels {
    /// Number of texels.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no texel was read.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of texel `i` (its format's size); empty past the end.
    pub fn get(&self, i: usize) -> &[u8] {
        match self.bytes.get(i).filter(|_| i < self.len) {
            Some(texel) => &texel[..self.texel_bytes],
            None => &[],
        }
    }

    /// Each texel's bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len).map(|i| self.get(i))
    }
}
