//! Synchronous host ↔ texture copies through a staging buffer: how tests and tools put known
//! texels into a shared texture and read them back on another context. Not a per-frame path.

use std::sync::atomic::Ordering;

use ash::vk;

use super::buffer::Buffer;
use super::context::DeviceShared;
use super::image::{vk_aspect, VulkanTexture};
use super::manager::VulkanTextureShareManager;
use crate::common::{TextureAspect, TextureUsage};
use crate::{Error, Result};

/// Size in bytes of one aspect of mip level 0, all layers, tightly packed.
pub fn aspect_size(texture: &VulkanTexture, aspect: TextureAspect) -> u64 {
    let d = &texture.inner.info.descriptor;
    let p = &texture.inner.params;
    u64::from(d.width)
        * u64::from(d.height)
        * u64::from(p.extent.depth)
        * u64::from(p.array_layers)
        * u64::from(d.format.aspect_copy_bytes(aspect))
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

enum Direction {
    Upload,
    Download,
}

/// Records acquire → copy → release on the manager's command buffer, submits, waits.
fn copy(
    dev: &DeviceShared,
    texture: &VulkanTexture,
    aspect: TextureAspect,
    staging: &Buffer,
    dir: Direction,
) -> Result<()> {
    let device = &dev.device;
    let family = dev.queue_family;
    let p = &texture.inner.params;
    let (layout, access) = match dir {
        Direction::Upload => (
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            vk::AccessFlags::TRANSFER_WRITE,
        ),
        Direction::Download => (
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            vk::AccessFlags::TRANSFER_READ,
        ),
    };
    // An upload of every aspect could discard old contents, but a single-aspect upload of a
    // depth/stencil texture must keep the other aspect, so keep contents whenever there are any.
    let initialized = texture.is_initialized();
    let [acquire, release] = texture.access_barriers(family, initialized, layout, access);
    let region = vk::BufferImageCopy::default()
        .image_subresource(vk::ImageSubresourceLayers {
            aspect_mask: vk_aspect(aspect),
            mip_level: 0,
            base_array_layer: 0,
            layer_count: p.array_layers,
        })
        .image_extent(p.extent);

    let q = dev.lock_queue();
    let begin =
        vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
    // SAFETY: the command buffer, fence and queue are used only under the queue lock we hold;
    // the previous use of the command buffer completed (we waited on its fence); all handles
    // recorded belong to this device and outlive the wait below.
    unsafe {
        device
            .begin_command_buffer(q.cmd, &begin)
            .map_err(Error::vk("vkBeginCommandBuffer"))?;
        device.cmd_pipeline_barrier(
            q.cmd,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[acquire],
        );
        match dir {
            Direction::Upload => device.cmd_copy_buffer_to_image(
                q.cmd,
                staging.buffer,
                texture.image(),
                layout,
                &[region],
            ),
            Direction::Download => device.cmd_copy_image_to_buffer(
                q.cmd,
                texture.image(),
                layout,
                staging.buffer,
                &[region],
            ),
        }
        let host = vk::BufferMemoryBarrier::default()
            .buffer(staging.buffer)
            .size(vk::WHOLE_SIZE)
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::HOST_READ)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED);
        let buffers: &[vk::BufferMemoryBarrier] = match dir {
            Direction::Download => std::slice::from_ref(&host),
            Direction::Upload => &[],
        };
        device.cmd_pipeline_barrier(
            q.cmd,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE | vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &[],
            buffers,
            &[release],
        );
        device
            .end_command_buffer(q.cmd)
            .map_err(Error::vk("vkEndCommandBuffer"))?;
        let cmds = [q.cmd];
        let submit = vk::SubmitInfo::default().command_buffers(&cmds);
        device
            .queue_submit(q.queue, &[submit], q.fence)
            .map_err(Error::vk("vkQueueSubmit"))?;
        let waited = device
            .wait_for_fences(&[q.fence], true, u64::MAX)
            .map_err(Error::vk("vkWaitForFences"));
        // Reset even after a failed wait so the next use starts from an unsignaled fence.
        let reset = device
            .reset_fences(&[q.fence])
            .map_err(Error::vk("vkResetFences"));
        waited?;
        reset?;
    }
    texture.inner.initialized.store(true, Ordering::Release);
    Ok(())
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
        self.check_same_device(texture)?;
        check_aspect(texture, aspect)?;
        require_usage(texture, TextureUsage::CopyDst, "write_texture")?;
        let size = aspect_size(texture, aspect);
        if data.len() as u64 != size {
            return Err(Error::InvalidArgument {
                what: "texel data",
                reason: format!(
                    "{} bytes given, {aspect:?} aspect of this texture takes {size}",
                    data.len()
                ),
            });
        }
        let mut staging = Buffer::host(&self.dev, size, vk::BufferUsageFlags::TRANSFER_SRC)?;
        staging.bytes_mut().copy_from_slice(data);
        copy(&self.dev, texture, aspect, &staging, Direction::Upload)
    }

    /// Reads one aspect of mip 0 (all layers, tightly packed) of `texture`, acquiring it from
    /// `VK_QUEUE_FAMILY_EXTERNAL` and releasing it back. Blocks. Needs
    /// [`TextureUsage::CopySrc`].
    pub fn read_texture(&self, texture: &VulkanTexture, aspect: TextureAspect) -> Result<Vec<u8>> {
        self.check_same_device(texture)?;
        check_aspect(texture, aspect)?;
        require_usage(texture, TextureUsage::CopySrc, "read_texture")?;
        let size = aspect_size(texture, aspect);
        let staging = Buffer::host(&self.dev, size, vk::BufferUsageFlags::TRANSFER_DST)?;
        copy(&self.dev, texture, aspect, &staging, Direction::Download)?;
        Ok(staging.bytes().to_vec())
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
