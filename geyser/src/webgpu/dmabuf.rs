//! DMA-BUFs Geyser did not make, as wgpu textures: through Geyser's own import (any device that
//! imports DMA-BUFs; explicit modifier where the device has `VK_EXT_image_drm_format_modifier`,
//! LINEAR otherwise; the usual access bracket), or through wgpu 30's own
//! `texture_from_dmabuf_fd` (single plane, devices with both DMA-BUF extensions).

use wgpu_hal::api::Vulkan;

use super::conv;
use super::manager::WgpuTextureShareManager;
use super::texture::{self, WgpuTexture};
use crate::common::{DmaBuf, TextureDescriptor, TextureExtent};
use crate::{Error, Result};

impl WgpuTextureShareManager {
    /// Imports a DMA-BUF (from GBM, a decoder, a compositor, another process) as a texture
    /// described by `desc` (same size, a format whose DRM fourcc is the buffer's, the usages
    /// the application needs): the plane layout is checked first, and what the device cannot
    /// take is [`Error::InvalidDmaBuf`] / [`Error::Unsupported`]. Bracket every use with
    /// [`Self::begin_access`] / [`Self::end_access`] like any shared texture. The buffer's FD
    /// is duplicated.
    pub fn import_dma_buf(&self, buf: &DmaBuf, desc: &TextureDescriptor) -> Result<WgpuTexture> {
        texture::check_representable(self, desc, &TextureExtent::default())?;
        let vk = self.vulkan().import_dma_buf(buf, desc)?;
        texture::wrap(self, vk)
    }

    /// Imports a single-plane DMA-BUF with wgpu's own `texture_from_dmabuf_fd` (wgpu-hal
    /// 30): the wgpu device must have `wgpu::Features::VULKAN_EXTERNAL_MEMORY_DMA_BUF`, which
    /// wgpu grants only with both `VK_EXT_external_memory_dma_buf` and
    /// `VK_EXT_image_drm_format_modifier` ([`Error::Unsupported`] otherwise; use
    /// [`Self::import_dma_buf`], which also takes LINEAR buffers on devices without
    /// modifiers). The texture is wgpu's alone (no access bracket; its first use starts from
    /// an undefined layout, as wgpu does for such imports). The layout is checked like
    /// [`Self::import_dma_buf`] before wgpu sees it.
    pub fn import_dma_buf_with_wgpu(
        &self,
        buf: &DmaBuf,
        desc: &TextureDescriptor,
    ) -> Result<wgpu::Texture> {
        texture::check_representable(self, desc, &TextureExtent::default())?;
        if !self
            .device()
            .features()
            .contains(wgpu::Features::VULKAN_EXTERNAL_MEMORY_DMA_BUF)
        {
            return Err(Error::unsupported(
                "wgpu::Features::VULKAN_EXTERNAL_MEMORY_DMA_BUF",
                format!(
                    "the wgpu device on {} lacks it (wgpu needs VK_EXT_external_memory_dma_buf and VK_EXT_image_drm_format_modifier); use import_dma_buf",
                    self.identity().name
                ),
            ));
        }
        if desc.format.info().drm_fourcc != Some(buf.fourcc())
            || (desc.width, desc.height) != (buf.width(), buf.height())
        {
            return Err(Error::InvalidArgument {
                what: "DMA-BUF descriptor",
                reason: format!(
                    "the buffer is {}x{} {} but the descriptor says {}x{} {}",
                    buf.width(),
                    buf.height(),
                    buf.fourcc(),
                    desc.width,
                    desc.height,
                    desc.format
                ),
            });
        }
        let [plane] = buf.planes() else {
            return Err(Error::unsupported(
                format!("{}-plane DMA-BUF through wgpu", buf.planes().len()),
                "wgpu's texture_from_dmabuf_fd takes one plane",
            ));
        };
        buf.check_layout()?;
        let format = desc.format.to_wgpu().ok_or_else(|| {
            Error::unsupported(desc.format.to_string(), "wgpu has no equivalent format")
        })?;
        let usage = conv::usages(desc);
        let (size, dimension) = conv::size(desc, &TextureExtent::default());
        let hal_desc = wgpu_hal::TextureDescriptor {
            label: desc.label.as_deref(),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension,
            format,
            usage: conv::hal_uses(usage, desc.format),
            memory_flags: wgpu_hal::MemoryFlags::empty(),
            view_formats: Vec::new(),
        };
        let fd = plane.fd.try_clone()?;
        let hal_texture = {
            // SAFETY: used only to create a texture on this device.
            let hal = unsafe { self.device().as_hal::<Vulkan>() }.ok_or_else(|| {
                Error::unsupported("wgpu interop", "the wgpu device does not use Vulkan")
            })?;
            // SAFETY: `fd` is a DMA-BUF FD we own (wgpu takes it); the descriptor is the
            // buffer's size and format; the plane layout was checked against the buffer.
            unsafe {
                hal.texture_from_dmabuf_fd(
                    fd,
                    &hal_desc,
                    u64::from(buf.modifier()),
                    plane.layout.stride,
                    plane.layout.offset,
                )
            }
            .map_err(|e| Error::InvalidDmaBuf {
                plane: Some(0),
                reason: format!("wgpu's texture_from_dmabuf_fd refused it: {e}"),
            })?
        };
        let wgpu_desc = wgpu::TextureDescriptor {
            label: desc.label.as_deref(),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension,
            format,
            usage,
            view_formats: &[],
        };
        self.scoped(
            // SAFETY: `hal_texture` was made on this device from `hal_desc`, which matches
            // `wgpu_desc`; it has never been used, so its state is UNINITIALIZED.
            || unsafe {
                self.device().create_texture_from_hal::<Vulkan>(
                    hal_texture,
                    &wgpu_desc,
                    wgpu::TextureUses::UNINITIALIZED,
                )
            },
            |e| Error::unsupported(format!("{} DMA-BUF as a wgpu texture", desc.format), e),
        )
    }
}
