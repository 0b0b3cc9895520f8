//! Synchronous host ↔ texture copies through a staging buffer: how tests and tools put known
//! texels into a shared texture and read them back on another context. Not a per-frame path.

use std::sync::atomic::Ordering;

use ash::vk;

use super::buffer::Buffer;
use super::conv;
use super::image::VulkanTexture;
use super::manager::VulkanTextureShareManager;
use super::submit::Submitter;
use crate::common::{Subresource, TextureAspect, TextureLayout, TextureUsage};
use crate::{Error, Result};

/// Size in bytes of one aspect of mip level 0, all layers (or depth slices), tightly packed
/// (whole blocks for compressed formats).
pub fn aspect_size(texture: &VulkanTexture, aspect: TextureAspect) -> u64 {
    // Computed directly (no layout): callers run it every frame and must not allocate.
    let d = &texture.inner.info.descriptor;
    let p = &texture.inner.params;
    let (bx, by) = d.format.blocks(d.width, d.height);
    u64::from(bx)
        * u64::from(by)
        * u64::from(p.extent.depth)
        * u64::from(p.array_layers)
        * u64::from(d.format.aspect_copy_bytes(aspect))
}

/// The packed layout of every aspect, mip level and layer of `texture` (what
/// [`VulkanTextureShareManager::read_packed`] returns).
pub fn packed_layout(texture: &VulkanTexture) -> TextureLayout {
    let info = &texture.inner.info;
    TextureLayout::new(&info.descriptor, &info.extent)
}

/// One aspect of one mip level, packed from offset 0.
fn level(texture: &VulkanTexture, aspect: TextureAspect, mip: u32) -> Option<Subresource> {
    let info = &texture.inner.info;
    let layout = TextureLayout::with_aspects(&info.descriptor, &info.extent, &[aspect]);
    layout.find(aspect, mip).copied()
}

/// The Vulkan copy of one packed region: every layer (or depth slice) of one aspect and level.
fn region(texture: &VulkanTexture, r: &Subresource) -> vk::BufferImageCopy {
    vk::BufferImageCopy::default()
        .buffer_offset(r.offset)
        .image_subresource(vk::ImageSubresourceLayers {
            aspect_mask: conv::aspect(r.aspect),
            mip_level: r.mip,
            base_array_layer: 0,
            layer_count: texture.inner.params.array_layers,
        })
        .image_extent(vk::Extent3D {
            width: r.width,
            height: r.height,
            depth: r.depth,
        })
}

fn check_mip(texture: &VulkanTexture, mip: u32) -> Result<()> {
    let levels = texture.inner.params.mip_levels;
    if mip >= levels {
        return Err(Error::InvalidArgument {
            what: "mip level",
            reason: format!("level {mip} of a texture with {levels} levels"),
        });
    }
    Ok(())
}

fn check_aspect(texture: &VulkanTexture, aspect: TextureAspect) -> Result<()> {
    let format = texture.inner.info.descriptor.format;
    if !TextureAspect::all_of(format).contains(&aspect) {
        return Err(Error::InvalidArgument {
            what: "aspect",
            reason: format!(
                "{format} has no {aspect:?} aspect (it has {:?})",
                TextureAspect::all_of(format)
            ),
        });
    }
    Ok(())
}

fn require_usage(texture: &VulkanTexture, usage: TextureUsage, why: &str) -> Result<()> {
    if !texture.inner.info.descriptor.has_usage(usage) {
        return Err(Error::InvalidArgument {
            what: "texture usage",
            reason: format!("{why} needs TextureUsage::{usage:?} in the texture's descriptor"),
        });
    }
    Ok(())
}

/// Which way a copy between a texture and a buffer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyDirection {
    /// Buffer → texture.
    Upload,
    /// Texture → buffer (made visible to the host).
    Download,
}

/// Records acquire (from `VK_QUEUE_FAMILY_EXTERNAL`) → copy of `regions` → release (back to
/// it) between `texture` and `staging`, plus the barrier that makes a download visible to the
/// host. The texture keeps its contents (an upload of some regions leaves the rest as is).
///
/// # Safety
/// - `cmd` is a command buffer of `device` in the recording state, for `queue_family`
///   (a [`Submitter`]'s record closure gives both).
/// - `device` is the device of `texture` and `staging`, and both outlive the submission.
/// - Every region lies inside the texture's subresources and the buffer.
pub unsafe fn record_copy(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    queue_family: u32,
    texture: &VulkanTexture,
    regions: &[vk::BufferImageCopy],
    staging: &Buffer,
    dir: CopyDirection,
) {
    let (layout, access) = match dir {
        CopyDirection::Upload => (
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            vk::AccessFlags::TRANSFER_WRITE,
        ),
        CopyDirection::Download => (
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            vk::AccessFlags::TRANSFER_READ,
        ),
    };
    // An upload of every aspect could discard old contents, but a single-aspect upload of a
    // depth/stencil texture must keep the other aspect, so keep contents whenever there are any.
    let initialized = texture.is_initialized();
    let [acquire, release] = texture.access_barriers(queue_family, initialized, layout, access);
    let host = staging.barrier(vk::AccessFlags::TRANSFER_WRITE, vk::AccessFlags::HOST_READ);
    let buffers: &[vk::BufferMemoryBarrier] = match dir {
        CopyDirection::Download => std::slice::from_ref(&host),
        CopyDirection::Upload => &[],
    };
    // SAFETY: the caller's contract: `cmd` is recording on this device, every handle recorded
    // belongs to it and outlives the submission, and the regions are in bounds.
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[acquire],
        );
        match dir {
            CopyDirection::Upload => device.cmd_copy_buffer_to_image(
                cmd,
                staging.buffer,
                texture.image(),
                layout,
                regions,
            ),
            CopyDirection::Download => device.cmd_copy_image_to_buffer(
                cmd,
                texture.image(),
                layout,
                staging.buffer,
                regions,
            ),
        }
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE | vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &[],
            buffers,
            &[release],
        );
    }
}

/// Submits a copy of mip 0 of one aspect (all layers) between `texture` and the start of
/// `staging`, and waits for it.
pub(crate) fn copy(
    submit: &Submitter,
    texture: &VulkanTexture,
    aspect: TextureAspect,
    staging: &Buffer,
    dir: CopyDirection,
) -> Result<()> {
    // Level 0 of the aspect at offset 0, computed without a layout (this runs every frame).
    let d = &texture.inner.info.descriptor;
    let p = &texture.inner.params;
    let bytes = aspect_size(texture, aspect);
    let r = Subresource {
        aspect,
        mip: 0,
        offset: 0,
        width: d.width,
        height: d.height,
        depth: p.extent.depth,
        layers: p.array_layers,
        row_bytes: 0,
        slice_bytes: 0,
        bytes,
    };
    copy_regions(submit, texture, &[r], staging, dir)
}

/// Submits a copy of every subresource of `texture` in its packed `layout` (all aspects,
/// levels and layers: [`packed_layout`], which a caller copying every frame computes once),
/// and waits for it. `staging` holds at least the layout's size.
pub(crate) fn copy_packed(
    submit: &Submitter,
    texture: &VulkanTexture,
    layout: &TextureLayout,
    staging: &Buffer,
    dir: CopyDirection,
) -> Result<()> {
    copy_regions(submit, texture, layout.regions(), staging, dir)
}

/// Most regions one copy records: two aspects of up to 17 levels (a 65536-texel side).
const MAX_REGIONS: usize = 34;

fn copy_regions(
    submit: &Submitter,
    texture: &VulkanTexture,
    regions: &[Subresource],
    staging: &Buffer,
    dir: CopyDirection,
) -> Result<()> {
    let end = regions
        .iter()
        .map(|r| r.offset + r.bytes)
        .max()
        .unwrap_or(0);
    if end > staging.size {
        return Err(Error::Internal(format!(
            "a {}-byte staging buffer for a {end}-byte copy",
            staging.size
        )));
    }
    if regions.len() > MAX_REGIONS {
        return Err(Error::Internal(format!("{} copy regions", regions.len())));
    }
    let family = submit.dev.queue_family;
    // On the stack: the host ring copies every frame and must not allocate.
    let mut copies = [vk::BufferImageCopy::default(); MAX_REGIONS];
    for (c, r) in copies.iter_mut().zip(regions) {
        *c = region(texture, r);
    }
    let copies = &copies[..regions.len()];
    submit.submit(
        // SAFETY: the submitter's command buffer is recording on the texture's device; each
        // region is one level of one aspect of the texture (from its own layout), inside the
        // staging buffer (checked above); the call blocks until the GPU is done.
        |device, cmd| unsafe { record_copy(device, cmd, family, texture, copies, staging, dir) },
        &[],
        &[],
        true,
    )?;
    texture.inner.initialized.store(true, Ordering::Release);
    Ok(())
}

/// A persistently mapped staging buffer with its own command buffer, for moving whole frames
/// between a texture and host memory every frame without allocating: the CPU-copy baseline
/// that benchmarks compare zero-copy sharing against.
pub struct StagingBuffer {
    submit: Submitter,
    buffer: Buffer,
}

impl StagingBuffer {
    /// A staging buffer of `bytes` on `manager`'s device.
    pub fn new(manager: &VulkanTextureShareManager, bytes: u64) -> Result<Self> {
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        Ok(Self {
            submit: Submitter::on_device(&manager.dev, 1)?,
            buffer: Buffer::host_on(&manager.dev, bytes, usage)?,
        })
    }

    fn check(&self, texture: &VulkanTexture, usage: TextureUsage, what: &str) -> Result<usize> {
        require_usage(texture, usage, what)?;
        let size = aspect_size(texture, TextureAspect::Color);
        if texture.inner.info.descriptor.format.is_depth_stencil() || size > self.buffer.size {
            return Err(Error::InvalidArgument {
                what: "texture",
                reason: format!(
                    "{what}: a colour texture of at most {} bytes is needed, got {size}",
                    self.buffer.size
                ),
            });
        }
        Ok(size as usize)
    }

    /// Copies `texture` (colour, mip 0) into the buffer and returns its bytes. Blocks.
    pub fn download(&mut self, texture: &VulkanTexture) -> Result<&[u8]> {
        let size = self.check(texture, TextureUsage::CopySrc, "StagingBuffer::download")?;
        copy(
            &self.submit,
            texture,
            TextureAspect::Color,
            &self.buffer,
            CopyDirection::Download,
        )?;
        Ok(&self.buffer.bytes()[..size])
    }

    /// The buffer's bytes for writing, then [`Self::upload`] them.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.bytes_mut()
    }

    /// Copies the buffer's first bytes into `texture` (colour, mip 0). Blocks.
    pub fn upload(&mut self, texture: &VulkanTexture) -> Result<()> {
        self.check(texture, TextureUsage::CopyDst, "StagingBuffer::upload")?;
        copy(
            &self.submit,
            texture,
            TextureAspect::Color,
            &self.buffer,
            CopyDirection::Upload,
        )
    }
}

impl VulkanTextureShareManager {
    /// Writes `data` (tightly packed rows of mip 0, all layers) into one aspect of `texture`,
    /// and releases the texture to `VK_QUEUE_FAMILY_EXTERNAL` for the next user. Blocks until
    /// the copy is done. Needs [`TextureUsage::CopyDst`].
    pub fn write_texture(
        &self,
        texture: &VulkanTexture,
        aspect: TextureAspect,
        data: &[u8],
    ) -> Result<()> {
        self.write_texture_level(texture, aspect, 0, data)
    }

    /// Reads one aspect of mip 0 (all layers, tightly packed) of `texture`, acquiring it from
    /// `VK_QUEUE_FAMILY_EXTERNAL` and releasing it back. Blocks. Needs
    /// [`TextureUsage::CopySrc`].
    pub fn read_texture(&self, texture: &VulkanTexture, aspect: TextureAspect) -> Result<Vec<u8>> {
        self.read_texture_level(texture, aspect, 0)
    }

    /// Writes `data` into one aspect of mip level `mip` (all layers or depth slices, rows of
    /// texel blocks tightly packed: the level's [`Subresource`] in [`TextureLayout`]), like
    /// [`Self::write_texture`].
    pub fn write_texture_level(
        &self,
        texture: &VulkanTexture,
        aspect: TextureAspect,
        mip: u32,
        data: &[u8],
    ) -> Result<()> {
        self.check_same_device(texture)?;
        check_aspect(texture, aspect)?;
        check_mip(texture, mip)?;
        require_usage(texture, TextureUsage::CopyDst, "write_texture")?;
        let mut r = level(texture, aspect, mip).ok_or_else(|| {
            Error::Internal(format!("no {aspect:?} level {mip} in the texture's layout"))
        })?;
        if data.len() as u64 != r.bytes {
            return Err(Error::InvalidArgument {
                what: "texel data",
                reason: format!(
                    "{} bytes given, {aspect:?} aspect of level {mip} of this texture takes {}",
                    data.len(),
                    r.bytes
                ),
            });
        }
        r.offset = 0;
        let mut staging = Buffer::host_on(&self.dev, r.bytes, vk::BufferUsageFlags::TRANSFER_SRC)?;
        staging.bytes_mut().copy_from_slice(data);
        let submit = Submitter::on_device(&self.dev, 1)?;
        copy_regions(&submit, texture, &[r], &staging, CopyDirection::Upload)
    }

    /// Reads one aspect of mip level `mip` (all layers or depth slices, tightly packed), like
    /// [`Self::read_texture`].
    pub fn read_texture_level(
        &self,
        texture: &VulkanTexture,
        aspect: TextureAspect,
        mip: u32,
    ) -> Result<Vec<u8>> {
        self.check_same_device(texture)?;
        check_aspect(texture, aspect)?;
        check_mip(texture, mip)?;
        require_usage(texture, TextureUsage::CopySrc, "read_texture")?;
        let mut r = level(texture, aspect, mip).ok_or_else(|| {
            Error::Internal(format!("no {aspect:?} level {mip} in the texture's layout"))
        })?;
        r.offset = 0;
        let staging = Buffer::readback_on(&self.dev, r.bytes, vk::BufferUsageFlags::TRANSFER_DST)?;
        let submit = Submitter::on_device(&self.dev, 1)?;
        copy_regions(&submit, texture, &[r], &staging, CopyDirection::Download)?;
        Ok(staging.bytes()[..r.bytes as usize].to_vec())
    }

    /// Reads every aspect, mip level and layer of `texture` into one buffer laid out as
    /// [`packed_layout`] says. Blocks. Needs [`TextureUsage::CopySrc`].
    pub fn read_packed(&self, texture: &VulkanTexture) -> Result<Vec<u8>> {
        self.check_same_device(texture)?;
        require_usage(texture, TextureUsage::CopySrc, "read_packed")?;
        let size = packed_layout(texture).size();
        let staging = Buffer::readback_on(&self.dev, size, vk::BufferUsageFlags::TRANSFER_DST)?;
        let submit = Submitter::on_device(&self.dev, 1)?;
        let layout = packed_layout(texture);
        copy_packed(&submit, texture, &layout, &staging, CopyDirection::Download)?;
        Ok(staging.bytes()[..size as usize].to_vec())
    }

    /// Writes every aspect, mip level and layer of `texture` from `data`, laid out as
    /// [`packed_layout`] says (its size exactly). Blocks. Needs [`TextureUsage::CopyDst`].
    pub fn write_packed(&self, texture: &VulkanTexture, data: &[u8]) -> Result<()> {
        self.check_same_device(texture)?;
        require_usage(texture, TextureUsage::CopyDst, "write_packed")?;
        let size = packed_layout(texture).size();
        if data.len() as u64 != size {
            return Err(Error::InvalidArgument {
                what: "texel data",
                reason: format!(
                    "{} bytes given, the packed texture takes {size}",
                    data.len()
                ),
            });
        }
        let mut staging = Buffer::host_on(&self.dev, size, vk::BufferUsageFlags::TRANSFER_SRC)?;
        staging.bytes_mut()[..data.len()].copy_from_slice(data);
        let submit = Submitter::on_device(&self.dev, 1)?;
        let layout = packed_layout(texture);
        copy_packed(&submit, texture, &layout, &staging, CopyDirection::Upload)
    }

    fn check_same_device(&self, texture: &VulkanTexture) -> Result<()> {
        if !std::sync::Arc::ptr_eq(&texture.inner.dev, &self.dev) {
            return Err(Error::WrongTexture(
                "the texture belongs to another device context; import it into this one first"
                    .into(),
            ));
        }
        Ok(())
    }
}
