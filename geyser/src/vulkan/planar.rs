//! Two-plane 4:2:0 video frames (NV12, P010: what V4L2 and VA-API decoders and cameras hand
//! out) imported from DMA-BUFs as multi-planar Vulkan images ([`PlanarTexture`]): planes in
//! one buffer or in one buffer each (a disjoint image), the layout checked against what the
//! device lays out or takes explicitly.

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;

use ash::vk;

use super::buffer::Buffer;
use super::caps::{ShareSupport, Tiling};
use super::conv::ImageParams;
use super::device::SharedDevice;
use super::diagnostics::{LIVE_IMAGES, LIVE_MEMORIES};
use super::dmabuf::{file_size, import_memory};
use super::modifier::{create_image, device_modifiers, modifier_fns, support, Layout};
use super::submit::{Submitter, SUBMIT_TIMEOUT};
use crate::common::{
    modifier_name, plane_formats, usage_column, DmaBuf, DrmFourcc, PlaneLayout, TextureUsage,
    DRM_FORMAT_MOD_LINEAR,
};
use crate::{Error, Result};

const PLANES: [vk::ImageAspectFlags; 2] =
    [vk::ImageAspectFlags::PLANE_0, vk::ImageAspectFlags::PLANE_1];

/// The multi-planar `VkFormat` of a two-plane DRM fourcc.
pub fn planar_format(fourcc: DrmFourcc) -> Option<vk::Format> {
    match fourcc {
        DrmFourcc::Nv12 => Some(vk::Format::G8_B8R8_2PLANE_420_UNORM),
        DrmFourcc::P010 => Some(vk::Format::G10X6_B10X6R10X6_2PLANE_420_UNORM_3PACK16),
        _ => None,
    }
}

/// A multi-planar image over an imported NV12 or P010 DMA-BUF (made by
/// [`super::VulkanTextureShareManager::import_dma_buf_planar`]). Sample it through a
/// `VkSamplerYcbcrConversion`, or copy a plane (`PLANE_0` luma, `PLANE_1` interleaved
/// chroma). Created `MUTABLE_FORMAT | EXTENDED_USAGE`, so per-plane views (R8/RG8, R16/RG16)
/// work, as wgpu's NV12/P010 textures need. The image and memory are destroyed on drop,
/// after Geyser's queue is idle.
pub struct PlanarTexture {
    dev: SharedDevice,
    image: vk::Image,
    memories: Vec<vk::DeviceMemory>,
    format: vk::Format,
    fourcc: DrmFourcc,
    extent: (u32, u32),
}

impl std::fmt::Debug for PlanarTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanarTexture")
            .field("fourcc", &self.fourcc)
            .field("extent", &self.extent)
            .field("disjoint", &(self.memories.len() > 1))
            .finish()
    }
}

impl Drop for PlanarTexture {
    fn drop(&mut self) {
        if let Err(e) = self.dev.wait_queue_idle() {
            tracing::warn!("vkQueueWaitIdle before destroying a planar texture failed: {e}");
        }
        // SAFETY: image and memories were made on this device, are owned here alone, and no
        // Geyser submission uses them any more (the queue is idle).
        unsafe {
            self.dev.device.destroy_image(self.image, None);
            for m in &self.memories {
                self.dev.device.free_memory(*m, None);
            }
        }
        LIVE_IMAGES.fetch_sub(1, Ordering::Relaxed);
        LIVE_MEMORIES.fetch_sub(self.memories.len(), Ordering::Relaxed);
    }
}

impl PlanarTexture {
    /// The `VkImage`.
    pub fn image(&self) -> vk::Image {
        self.image
    }

    /// Its multi-planar `VkFormat`.
    pub fn vk_format(&self) -> vk::Format {
        self.format
    }

    /// The buffer's DRM fourcc.
    pub fn fourcc(&self) -> DrmFourcc {
        self.fourcc
    }

    /// Width and height in luma texels.
    pub fn extent(&self) -> (u32, u32) {
        self.extent
    }

    /// Whether each plane has its own memory (the planes came in separate buffers).
    pub fn is_disjoint(&self) -> bool {
        self.memories.len() > 1
    }

    /// Reads plane `plane` (0: luma, 1: chroma) back to the host, rows tightly packed:
    /// acquires the image from `VK_QUEUE_FAMILY_EXTERNAL`, copies, releases it back. Blocks.
    /// Needs `CopySrc`.
    pub fn read_plane(&self, plane: usize) -> Result<Vec<u8>> {
        let formats = plane_formats(self.fourcc).unwrap_or_default();
        let (Some(fmt), Some(aspect)) = (formats.get(plane), PLANES.get(plane)) else {
            return Err(Error::InvalidArgument {
                what: "plane",
                reason: format!("{} has planes 0 and 1, not {plane}", self.fourcc),
            });
        };
        let (w, h) = fmt.extent(self.extent.0, self.extent.1);
        let size = fmt.row_bytes(self.extent.0) * u64::from(h);
        let buffer = Buffer::readback_on(&self.dev, size, vk::BufferUsageFlags::TRANSFER_DST)?;
        let submit = Submitter::on_device(&self.dev, 1)?;
        let family = self.dev.queue_family;
        let range = vk::ImageSubresourceRange {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            base_mip_level: 0,
            level_count: 1,
            base_array_layer: 0,
            layer_count: 1,
        };
        let src = vk::ImageLayout::TRANSFER_SRC_OPTIMAL;
        let acquire = vk::ImageMemoryBarrier::default()
            .image(self.image)
            .subresource_range(range)
            .old_layout(super::SHARED_LAYOUT)
            .new_layout(src)
            .src_queue_family_index(vk::QUEUE_FAMILY_EXTERNAL)
            .dst_queue_family_index(family)
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ);
        let release = vk::ImageMemoryBarrier::default()
            .image(self.image)
            .subresource_range(range)
            .old_layout(src)
            .new_layout(super::SHARED_LAYOUT)
            .src_queue_family_index(family)
            .dst_queue_family_index(vk::QUEUE_FAMILY_EXTERNAL)
            .src_access_mask(vk::AccessFlags::TRANSFER_READ);
        let host = buffer.barrier(vk::AccessFlags::TRANSFER_WRITE, vk::AccessFlags::HOST_READ);
        let region = vk::BufferImageCopy::default()
            .image_subresource(vk::ImageSubresourceLayers {
                aspect_mask: *aspect,
                mip_level: 0,
                base_array_layer: 0,
                layer_count: 1,
            })
            .image_extent(vk::Extent3D {
                width: w,
                height: h,
                depth: 1,
            });
        submit.submit(
            // SAFETY: recording on the submitter's command buffer of this device; the image
            // and buffer are live and outlive the blocking submission; the region is the
            // plane's full extent and the buffer holds it.
            |device, cmd| unsafe {
                let all = vk::PipelineStageFlags::ALL_COMMANDS;
                let none = vk::DependencyFlags::empty();
                device.cmd_pipeline_barrier(cmd, all, all, none, &[], &[], &[acquire]);
                device.cmd_copy_image_to_buffer(cmd, self.image, src, buffer.raw(), &[region]);
                device.cmd_pipeline_barrier(cmd, all, all, none, &[], &[host], &[release]);
            },
            &[],
            &[],
            true,
        )?;
        submit.drain(SUBMIT_TIMEOUT)?;
        Ok(buffer.bytes()[..size as usize].to_vec())
    }
}

/// The driver's layout of each plane of a LINEAR multi-planar image.
fn plane_layouts(dev: &SharedDevice, image: vk::Image) -> Vec<PlaneLayout> {
    PLANES
        .iter()
        .map(|aspect| {
            let sub = vk::ImageSubresource {
                aspect_mask: *aspect,
                mip_level: 0,
                array_layer: 0,
            };
            // SAFETY: a live multi-planar image of this device.
            let l = unsafe { dev.device.get_image_subresource_layout(image, sub) };
            PlaneLayout {
                offset: l.offset,
                stride: l.row_pitch,
            }
        })
        .collect()
}

/// Where each plane binds: its FD and the offset of the image's plane in it.
struct Binding {
    fd: OwnedFd,
    offset: u64,
}

/// Imports a two-plane DMA-BUF (see [`PlanarTexture`]). `mutable` adds `MUTABLE_FORMAT |
/// EXTENDED_USAGE` (per-plane views).
pub(crate) fn import_planar(
    dev: &SharedDevice,
    buf: &DmaBuf,
    usages: &[TextureUsage],
    mutable: bool,
) -> Result<PlanarTexture> {
    let fourcc = buf.fourcc();
    let format = planar_format(fourcc).ok_or_else(|| {
        Error::unsupported(
            format!("{fourcc} as a planar texture"),
            "Geyser imports NV12 and P010 as multi-planar images",
        )
    })?;
    buf.check_layout()?;
    super::dmabuf::check_sealed(buf)?;
    if buf.planes().len() != 2 {
        return Err(Error::InvalidDmaBuf {
            plane: None,
            reason: format!("{fourcc} has 2 planes, {} given", buf.planes().len()),
        });
    }
    let disjoint = !buf.single_buffer();
    let mut flags = vk::ImageCreateFlags::empty();
    if mutable {
        flags |= vk::ImageCreateFlags::MUTABLE_FORMAT | vk::ImageCreateFlags::EXTENDED_USAGE;
    }
    if disjoint {
        flags |= vk::ImageCreateFlags::DISJOINT;
    }
    let params = ImageParams {
        format,
        image_type: vk::ImageType::TYPE_2D,
        extent: vk::Extent3D {
            width: buf.width(),
            height: buf.height(),
            depth: 1,
        },
        array_layers: 1,
        mip_levels: 1,
        samples: vk::SampleCountFlags::TYPE_1,
        usage: vk::ImageUsageFlags::from_raw(usage_column(usages, |u| u.vk)),
        flags,
    };
    let handle = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    let importable = vk::ExternalMemoryFeatureFlags::IMPORTABLE;
    let modifier = u64::from(buf.modifier());
    let layouts = buf.layouts();
    let refuse = |reason: String| Error::InvalidDmaBuf {
        plane: None,
        reason,
    };
    let (tiling, layout) = if modifier_fns(dev).is_some() {
        let offered = device_modifiers(dev, format);
        if !offered.iter().any(|m| m.modifier == modifier) {
            return Err(refuse(format!(
                "{} does not offer modifier {} for {fourcc}",
                dev.identity.name,
                modifier_name(modifier)
            )));
        }
        (
            Tiling::Modifier(modifier),
            Layout::Explicit(modifier, &layouts),
        )
    } else if modifier == DRM_FORMAT_MOD_LINEAR {
        (Tiling::Linear, Layout::Linear)
    } else {
        return Err(refuse(format!(
            "modifier {} needs VK_EXT_image_drm_format_modifier, which {} does not have",
            modifier_name(modifier),
            dev.identity.name
        )));
    };
    if let ShareSupport::Unsupported(r) = support(dev, &params, handle, tiling, importable)? {
        return Err(Error::unsupported(
            format!(
                "{fourcc} ({}) with usages {usages:?} as an imported multi-planar image",
                if disjoint { "disjoint" } else { "one buffer" }
            ),
            format!("{r} on {}", dev.identity.name),
        ));
    }
    let mut partial = create_image(dev, &params, handle, &layout)?;
    let image = partial.image;
    // Plane offsets: explicit layouts bind each plane's memory at 0; a LINEAR image is laid
    // out by the driver and must match the buffer. For one buffer only plane 0's offset is
    // checked here, the others once the memory is bound (lavapipe reports them only then).
    let driver = plane_layouts(dev, image);
    let explicit = matches!(tiling, Tiling::Modifier(_));
    let mut bindings = Vec::with_capacity(2);
    for (i, (given, drv)) in layouts.iter().zip(&driver).enumerate() {
        if explicit {
            bindings.push(Binding {
                fd: buf.planes()[i].fd.try_clone()?,
                offset: 0,
            });
            continue;
        }
        let shift = if disjoint || i == 0 {
            given.offset.checked_sub(drv.offset)
        } else {
            // One buffer: one bind offset for the whole image, checked after binding.
            Some(0)
        };
        if given.stride != drv.stride || shift.is_none() {
            return Err(Error::InvalidDmaBuf {
                plane: Some(i),
                reason: format!(
                    "offset {} stride {}: {} lays out this plane of a linear {}x{} {fourcc} at offset {} stride {}{}, and without VK_EXT_image_drm_format_modifier cannot take another layout",
                    given.offset,
                    given.stride,
                    dev.identity.name,
                    buf.width(),
                    buf.height(),
                    drv.offset,
                    drv.stride,
                    if disjoint { "" } else { " (from the image's start)" }
                ),
            });
        }
        if disjoint || i == 0 {
            bindings.push(Binding {
                fd: buf.planes()[i].fd.try_clone()?,
                offset: shift.unwrap_or(0),
            });
        }
    }
    let bind_offset = bindings.first().map_or(0, |b| b.offset);
    let mut memories = Vec::with_capacity(bindings.len());
    let mut result = bind(dev, image, disjoint, bindings, &mut memories);
    if result.is_ok() && !explicit && !disjoint {
        // Where the driver put the other planes, relative to the image's memory.
        let bound = plane_layouts(dev, image);
        if let Some(i) =
            (1..layouts.len()).find(|&i| layouts[i].offset != bind_offset + bound[i].offset)
        {
            result = Err(Error::InvalidDmaBuf {
                plane: Some(i),
                reason: format!(
                    "the plane starts at {} of the buffer; {} lays out a linear {}x{} {fourcc} with it at {} from the image's start ({} here), and without VK_EXT_image_drm_format_modifier cannot take another layout",
                    layouts[i].offset,
                    dev.identity.name,
                    buf.width(),
                    buf.height(),
                    bound[i].offset,
                    bind_offset + bound[i].offset
                ),
            });
        }
    }
    if let Err(e) = result {
        for m in memories {
            // SAFETY: imported above for this image and never bound or used.
            unsafe { dev.device.free_memory(m, None) };
        }
        return Err(e);
    }
    // The image is now owned by the texture (its memories are counted there).
    let image = {
        partial.image = vk::Image::null();
        image
    };
    // `Partial` counted the image when it was created; the memories are counted now.
    LIVE_MEMORIES.fetch_add(memories.len(), Ordering::Relaxed);
    drop(partial);
    Ok(PlanarTexture {
        dev: dev.clone(),
        image,
        memories,
        format,
        fourcc,
        extent: (buf.width(), buf.height()),
    })
}

/// Imports each binding's FD and binds it (to one plane of a disjoint image, or the whole
/// image), pushing each memory to `memories` as soon as it exists.
fn bind(
    dev: &SharedDevice,
    image: vk::Image,
    disjoint: bool,
    bindings: Vec<Binding>,
    memories: &mut Vec<vk::DeviceMemory>,
) -> Result<()> {
    let mut plane_infos = Vec::with_capacity(bindings.len());
    for (i, b) in bindings.into_iter().enumerate() {
        let mut plane_req = vk::ImagePlaneMemoryRequirementsInfo::default().plane_aspect(PLANES[i]);
        let mut info = vk::ImageMemoryRequirementsInfo2::default().image(image);
        if disjoint {
            info = info.push_next(&mut plane_req);
        }
        let mut reqs = vk::MemoryRequirements2::default();
        // SAFETY: a live image of this device; a plane query only for disjoint images.
        unsafe { dev.device.get_image_memory_requirements2(&info, &mut reqs) };
        let reqs = reqs.memory_requirements;
        let size = file_size(&b.fd)?;
        if !b.offset.is_multiple_of(reqs.alignment.max(1)) || b.offset + reqs.size > size {
            return Err(Error::InvalidDmaBuf {
                plane: Some(i),
                reason: format!(
                    "{} needs {} bytes aligned to {} from offset {}, the buffer holds {size}",
                    dev.identity.name, reqs.size, reqs.alignment, b.offset
                ),
            });
        }
        let (mem, _) = import_memory(dev, b.fd, size, reqs.memory_type_bits, None)?;
        memories.push(mem);
        plane_infos.push((mem, b.offset));
    }
    let mut plane_bind: Vec<vk::BindImagePlaneMemoryInfo> = (0..plane_infos.len())
        .map(|i| vk::BindImagePlaneMemoryInfo::default().plane_aspect(PLANES[i]))
        .collect();
    let infos: Vec<vk::BindImageMemoryInfo> = plane_infos
        .iter()
        .zip(plane_bind.iter_mut())
        .map(|((mem, offset), plane)| {
            let info = vk::BindImageMemoryInfo::default()
                .image(image)
                .memory(*mem)
                .memory_offset(*offset);
            if disjoint {
                info.push_next(plane)
            } else {
                info
            }
        })
        .collect();
    // SAFETY: each memory was imported for this image with room for it at its offset.
    unsafe { dev.device.bind_image_memory2(&infos) }
        .map_err(Error::vk("vkBindImageMemory2 (planar DMA-BUF)"))
}
