//! DMA-BUF and DRM format modifiers on Vulkan (Linux): textures whose memory is a DMA-BUF
//! (exported by the driver, or host memory Geyser allocates), modifier-tiled textures over
//! opaque FDs, and import of DMA-BUFs Geyser did not make, with the plane layout checked
//! against what the device can take before any image is bound.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use ash::vk;

use super::caps::{ShareSupport, Tiling};
use super::conv::{self, ImageParams};
use super::device::SharedDevice;
use super::image::VulkanTexture;
use super::memory::{self, Partial};
use super::modifier::{
    chosen_layout, create_image, device_modifiers, modifier_fns, modifiers_for, support, Layout,
};
use crate::common::{
    check_linear_plane, modifier_name, DmaBuf, ExportInfo, ExternalHandleType, MemoryLayout,
    PlaneFormat, PlaneLayout, TextureDescriptor, TextureExtent, DRM_FORMAT_MOD_LINEAR,
};
use crate::{Error, Result};

/// What memory a new shareable texture gets
/// ([`super::VulkanTextureShareManager::create_texture_in`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TextureMemory {
    /// The platform's opaque handle (an opaque FD; NT handle on Windows), optimal tiling:
    /// for importers on the same device and driver (Vulkan, wgpu, GL memory objects). The
    /// default.
    #[default]
    Opaque,
    /// A DMA-BUF the driver exports (`VK_EXT_external_memory_dma_buf`). With
    /// `VK_EXT_image_drm_format_modifier` the image is laid out by a DRM format modifier:
    /// `modifiers` lists what the importer can take (empty: whatever this device offers); the
    /// driver picks among those it shares with the device, preferring tiled ones over LINEAR
    /// ([`crate::common::negotiate_modifiers`]). Without the extension it is LINEAR.
    DmaBuf {
        /// Modifiers the importer supports (EGL's `eglQueryDmaBufModifiersEXT`, another
        /// device's [`super::VulkanTextureShareManager::drm_modifiers`]); empty for any.
        modifiers: Vec<u64>,
    },
    /// An opaque FD with the image laid out by a DRM format modifier (tiling
    /// `DRM_FORMAT_MODIFIER_EXT`), for devices that tile by modifier but export no DMA-BUF:
    /// the explicit plane layout travels with the export. Same device and driver only.
    OpaqueModifier {
        /// Modifiers the importer supports; empty for any the device offers.
        modifiers: Vec<u64>,
    },
    /// Host memory Geyser allocates (a memfd sealed against resizing), imported into the
    /// device as a LINEAR DMA-BUF and exported as that DMA-BUF. A memfd is not a real
    /// dma-buf: drivers that import DMA-BUFs by mapping them (Mesa's lavapipe and llvmpipe)
    /// take it, GPU drivers refuse it ([`Error::Vulkan`] at import). For CPU drivers, tests,
    /// and GL↔Vulkan on machines whose driver exports no DMA-BUF. Unlike lavapipe's opaque
    /// FDs, the memory carries no driver metadata.
    HostDmaBuf,
}

impl TextureMemory {
    /// The OS handle type textures of this memory are exported as.
    pub fn handle_type(&self) -> ExternalHandleType {
        match self {
            TextureMemory::Opaque | TextureMemory::OpaqueModifier { .. } => {
                super::os::NATIVE_MEMORY
            }
            TextureMemory::DmaBuf { .. } | TextureMemory::HostDmaBuf => ExternalHandleType::DmaBuf,
        }
    }
}

fn unsupported(dev: &SharedDevice, desc: &TextureDescriptor, what: &str, reason: String) -> Error {
    Error::unsupported(
        format!("{} with usages {:?} as {what}", desc.format, desc.usage),
        format!("{reason} on {}", dev.identity.name),
    )
}

/// Creates a texture in `memory` ([`TextureMemory::Opaque`] goes to `memory.rs`).
pub(crate) fn create(
    dev: &SharedDevice,
    desc: &TextureDescriptor,
    extent: &TextureExtent,
    memory: &TextureMemory,
) -> Result<VulkanTexture> {
    let params = ImageParams::new(desc, extent);
    let both =
        vk::ExternalMemoryFeatureFlags::EXPORTABLE | vk::ExternalMemoryFeatureFlags::IMPORTABLE;
    let (handle, needed, modifiers) = match memory {
        TextureMemory::Opaque => {
            return memory::create_exportable(dev, desc, extent, super::os::NATIVE_MEMORY)
        }
        TextureMemory::HostDmaBuf => return create_host_dma_buf(dev, desc, extent, params),
        TextureMemory::DmaBuf { modifiers } => (
            vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
            vk::ExternalMemoryFeatureFlags::EXPORTABLE,
            modifiers,
        ),
        TextureMemory::OpaqueModifier { modifiers } => {
            if modifier_fns(dev).is_none() {
                return Err(unsupported(
                    dev,
                    desc,
                    "a modifier-tiled image",
                    "VK_EXT_image_drm_format_modifier is not enabled".into(),
                ));
            }
            (
                conv::memory_handle_type(super::os::NATIVE_MEMORY),
                both,
                modifiers,
            )
        }
    };
    let chosen;
    let layout = if modifier_fns(dev).is_some() {
        chosen = modifiers_for(dev, &params, handle, needed, modifiers)?;
        Layout::Choose(&chosen)
    } else {
        if !modifiers.is_empty() && !modifiers.contains(&DRM_FORMAT_MOD_LINEAR) {
            return Err(unsupported(dev, desc, "a DMA-BUF", "the device has no VK_EXT_image_drm_format_modifier, so it exports LINEAR only, which the importer does not take".into()));
        }
        if let ShareSupport::Unsupported(r) = support(dev, &params, handle, Tiling::Linear, needed)?
        {
            return Err(unsupported(dev, desc, "an exportable LINEAR DMA-BUF", r));
        }
        Layout::Linear
    };
    let mut partial = create_image(dev, &params, handle, &layout)?;
    let (reqs, _) = memory::requirements(&dev.device, partial.image);
    let type_index = memory::memory_type(dev, reqs.memory_type_bits)
        .ok_or_else(|| Error::unsupported("memory type", "no memory type fits the image"))?;
    let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(handle);
    let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().image(partial.image);
    let alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(reqs.size)
        .memory_type_index(type_index)
        .push_next(&mut export)
        .push_next(&mut dedicated);
    // SAFETY: valid chain pointing at locals; the image is live.
    let mem = unsafe { dev.device.allocate_memory(&alloc, None) }
        .map_err(Error::vk("vkAllocateMemory (exportable DMA-BUF)"))?;
    partial.set_memory(mem);
    let (modifier, planes) = chosen_layout(dev, partial.image, params.format)?;
    let info = ExportInfo {
        descriptor: desc.clone(),
        extent: *extent,
        handle_type: memory.handle_type(),
        layout: MemoryLayout::DrmModifier(modifier),
        allocation_size: reqs.size,
        memory_type_index: type_index,
        dedicated: true,
        device_uuid: dev.identity.device_uuid,
        driver_uuid: dev.identity.driver_uuid,
        planes,
    };
    memory::finish(dev, partial, (params, 0), info, false, None)
}

/// A memfd of `size` bytes sealed against resizing.
fn sealed_memfd(size: u64) -> Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create(
        "geyser-dmabuf",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| Error::Io(e.into()))?;
    rustix::fs::ftruncate(&fd, size).map_err(|e| Error::Io(e.into()))?;
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
        .map_err(|e| Error::Io(e.into()))?;
    Ok(fd)
}

fn create_host_dma_buf(
    dev: &SharedDevice,
    desc: &TextureDescriptor,
    extent: &TextureExtent,
    params: ImageParams,
) -> Result<VulkanTexture> {
    let handle = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    if let ShareSupport::Unsupported(r) = support(
        dev,
        &params,
        handle,
        Tiling::Linear,
        vk::ExternalMemoryFeatureFlags::IMPORTABLE,
    )? {
        return Err(unsupported(dev, desc, "a LINEAR DMA-BUF import", r));
    }
    let partial = create_image(dev, &params, handle, &Layout::Linear)?;
    let (reqs, _) = memory::requirements(&dev.device, partial.image);
    let sub = vk::ImageSubresource {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        mip_level: 0,
        array_layer: 0,
    };
    // SAFETY: a live LINEAR image of this device with a colour aspect.
    let l = unsafe { dev.device.get_image_subresource_layout(partial.image, sub) };
    let size = reqs.size.div_ceil(4096) * 4096;
    let fd = sealed_memfd(size)?;
    let planes = vec![PlaneLayout {
        offset: l.offset,
        stride: l.row_pitch,
    }];
    let info = ExportInfo {
        descriptor: desc.clone(),
        extent: *extent,
        handle_type: ExternalHandleType::DmaBuf,
        layout: MemoryLayout::DrmModifier(DRM_FORMAT_MOD_LINEAR),
        allocation_size: size,
        memory_type_index: 0,
        dedicated: true,
        device_uuid: dev.identity.device_uuid,
        driver_uuid: dev.identity.driver_uuid,
        planes,
    };
    bind_dma_buf(dev, partial, params, info, fd, 0, false)
}

/// Imports `fd` as the DMA-BUF memory of `partial`'s image at `offset`, and wraps both as a
/// texture that keeps a duplicate of the FD for exports. `info.memory_type_index` and
/// `info.dedicated` are filled in here.
fn bind_dma_buf(
    dev: &SharedDevice,
    mut partial: Partial<'_>,
    params: ImageParams,
    mut info: ExportInfo,
    fd: OwnedFd,
    offset: u64,
    imported: bool,
) -> Result<VulkanTexture> {
    let (reqs, needs_dedicated) = memory::requirements(&dev.device, partial.image);
    let size = file_size(&fd)?;
    if !offset.is_multiple_of(reqs.alignment.max(1)) {
        return Err(Error::InvalidDmaBuf {
            plane: Some(0),
            reason: format!(
                "offset {offset} is not a multiple of the {}-byte alignment {} needs for this image",
                reqs.alignment, dev.identity.name
            ),
        });
    }
    if offset.checked_add(reqs.size).is_none_or(|end| end > size) {
        return Err(Error::InvalidDmaBuf {
            plane: Some(0),
            reason: format!(
                "{} needs {} bytes from offset {offset} for this image, the buffer holds {size}",
                dev.identity.name, reqs.size
            ),
        });
    }
    let dedicated = offset == 0;
    if needs_dedicated && !dedicated {
        return Err(Error::InvalidDmaBuf {
            plane: Some(0),
            reason: format!("{} needs a dedicated allocation for this image, which must start at offset 0 (the plane starts at {offset})", dev.identity.name),
        });
    }
    let keep = fd.try_clone()?;
    // A dedicated allocation is exactly the image's size (the buffer may be larger); a
    // shared one spans the buffer, the image bound at `offset`.
    let (alloc_size, dedicated_image) = if dedicated {
        (reqs.size, Some(partial.image))
    } else {
        (size, None)
    };
    let (mem, type_index) =
        import_memory(dev, fd, alloc_size, reqs.memory_type_bits, dedicated_image)?;
    partial.set_memory(mem);
    info.allocation_size = size;
    info.memory_type_index = type_index;
    info.dedicated = dedicated;
    memory::finish(dev, partial, (params, offset), info, imported, Some(keep))
}

/// Imports `fd` (a DMA-BUF, or a memfd the driver maps as one) as `size` bytes of memory of a
/// type allowed by `type_bits` and by the FD, dedicated to `dedicated` when given. Vulkan owns
/// the FD on success; it is closed here otherwise. Returns the memory and its type.
pub(super) fn import_memory(
    dev: &SharedDevice,
    fd: OwnedFd,
    size: u64,
    type_bits: u32,
    dedicated: Option<vk::Image>,
) -> Result<(vk::DeviceMemory, u32)> {
    let handle = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    let mut fd_props = vk::MemoryFdPropertiesKHR::default();
    // SAFETY: `fd` is a live FD we own; the call only inspects it.
    unsafe {
        dev.external_memory
            .get_memory_fd_properties(handle, fd.as_raw_fd(), &mut fd_props)
    }
    .map_err(Error::vk("vkGetMemoryFdPropertiesKHR (DMA-BUF)"))?;
    let type_index = memory::memory_type(dev, fd_props.memory_type_bits & type_bits)
        .ok_or_else(|| {
            Error::unsupported(
                "DMA-BUF import",
                format!(
                    "no memory type of {} fits both the buffer (bits {:#b}) and the image (bits {type_bits:#b})",
                    dev.identity.name, fd_props.memory_type_bits
                ),
            )
        })?;
    let raw = fd.into_raw_fd();
    let mut import = vk::ImportMemoryFdInfoKHR::default()
        .handle_type(handle)
        .fd(raw);
    let mut dedicated_info = vk::MemoryDedicatedAllocateInfo::default();
    let mut alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(type_index)
        .push_next(&mut import);
    if let Some(image) = dedicated {
        dedicated_info = dedicated_info.image(image);
        alloc = alloc.push_next(&mut dedicated_info);
    }
    // SAFETY: valid chain of locals; `raw` is an FD we own covering at least `size` bytes.
    match unsafe { dev.device.allocate_memory(&alloc, None) } {
        Ok(mem) => Ok((mem, type_index)),
        Err(e) => {
            // SAFETY: a failed import leaves the FD with us; close it.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
            Err(Error::vk("vkAllocateMemory (DMA-BUF import)")(e))
        }
    }
}

/// Refuses a memfd that is not sealed against shrinking among `buf`'s planes: drivers that
/// import a DMA-BUF by mapping it (lavapipe, llvmpipe) would fault (SIGBUS) if the peer that
/// sent it truncated it later. Real dma-bufs cannot be resized (they have no seals at all).
pub(crate) fn check_sealed(buf: &DmaBuf) -> Result<()> {
    for (i, plane) in buf.planes().iter().enumerate() {
        if let Ok(seals) = rustix::fs::fcntl_get_seals(&plane.fd) {
            if !seals.contains(rustix::fs::SealFlags::SHRINK) {
                return Err(Error::InvalidDmaBuf {
                    plane: Some(i),
                    reason: "the FD is a memfd not sealed against shrinking (F_SEAL_SHRINK): whoever holds it could truncate it under the importer; seal it first".into(),
                });
            }
        }
    }
    Ok(())
}

/// `lseek(fd, 0, SEEK_END)`: the size DMA-BUF importers take.
pub(super) fn file_size(fd: &OwnedFd) -> Result<u64> {
    use std::io::Seek;
    let mut file = std::fs::File::from(fd.try_clone()?);
    let size = file.seek(std::io::SeekFrom::End(0))?;
    file.rewind()?;
    Ok(size)
}

/// Imports a DMA-BUF as a texture described by `desc` (same width and height; a format whose
/// DRM fourcc is the buffer's). Single-plane formats; [`Error::InvalidDmaBuf`] for layouts the
/// device cannot take.
pub(crate) fn import_dma_buf(
    dev: &SharedDevice,
    buf: &DmaBuf,
    desc: &TextureDescriptor,
) -> Result<VulkanTexture> {
    desc.validate()?;
    let fourcc = desc.format.info().drm_fourcc;
    if fourcc != Some(buf.fourcc()) || desc.width != buf.width() || desc.height != buf.height() {
        return Err(Error::InvalidArgument {
            what: "DMA-BUF descriptor",
            reason: format!(
                "the buffer is {}x{} {} but the descriptor says {}x{} {} (DRM fourcc {:?})",
                buf.width(),
                buf.height(),
                buf.fourcc(),
                desc.width,
                desc.height,
                desc.format,
                fourcc
            ),
        });
    }
    if buf.planes().len() != 1 {
        return Err(Error::unsupported(
            format!("{}-plane DMA-BUF as a texture", buf.planes().len()),
            "import multi-plane buffers (NV12, P010, compressed modifiers) with import_dma_buf_planar",
        ));
    }
    buf.check_layout()?;
    check_sealed(buf)?;
    let info = ExportInfo {
        descriptor: desc.clone(),
        extent: TextureExtent::default(),
        handle_type: ExternalHandleType::DmaBuf,
        layout: MemoryLayout::DrmModifier(buf.modifier().into()),
        allocation_size: 0,
        memory_type_index: 0,
        dedicated: false,
        device_uuid: [0; 16],
        driver_uuid: [0; 16],
        planes: buf.layouts(),
    };
    let fd = buf.planes()[0].fd.try_clone()?;
    import_layout(dev, info, fd)
}

/// Imports an [`ExportedTexture`](crate::common::ExportedTexture) that is a DMA-BUF or
/// modifier-tiled (its info was checked by `memory::check_importable`).
pub(crate) fn import_export(
    dev: &SharedDevice,
    info: ExportInfo,
    fd: OwnedFd,
) -> Result<VulkanTexture> {
    if info.handle_type == ExternalHandleType::DmaBuf {
        if let Ok(seals) = rustix::fs::fcntl_get_seals(&fd) {
            if !seals.contains(rustix::fs::SealFlags::SHRINK) {
                return Err(Error::InvalidDmaBuf {
                    plane: Some(0),
                    reason: "the export is a memfd not sealed against shrinking (F_SEAL_SHRINK)"
                        .into(),
                });
            }
        }
        return import_layout(dev, info, fd);
    }
    // An opaque FD with modifier tiling: the exporter's allocation, explicit layout.
    let MemoryLayout::DrmModifier(modifier) = info.layout else {
        return Err(Error::Internal("import_export of an optimal export".into()));
    };
    if modifier_fns(dev).is_none() {
        return Err(Error::unsupported(
            "a modifier-tiled import",
            format!(
                "{} has no VK_EXT_image_drm_format_modifier enabled",
                dev.identity.name
            ),
        ));
    }
    let params = ImageParams::new(&info.descriptor, &info.extent);
    let handle = conv::memory_handle_type(info.handle_type);
    let mut partial = create_image(
        dev,
        &params,
        handle,
        &Layout::Explicit(modifier, &info.planes),
    )?;
    let (reqs, _) = memory::requirements(&dev.device, partial.image);
    if reqs.size > info.allocation_size
        || reqs.memory_type_bits & (1 << info.memory_type_index) == 0
    {
        return Err(Error::InvalidArgument {
            what: "exported texture",
            reason: format!(
                "the export ({} bytes, memory type {}) does not fit this image ({} bytes, types {:#b})",
                info.allocation_size, info.memory_type_index, reqs.size, reqs.memory_type_bits
            ),
        });
    }
    let target = super::os::ImportTarget {
        image: partial.image,
        size: info.allocation_size,
        memory_type_index: info.memory_type_index,
        handle_type: handle,
    };
    let mem = super::os::import_memory(&dev.device, &target, fd)?;
    partial.set_memory(mem);
    memory::finish(dev, partial, (params, 0), info, true, None)
}

/// Imports a single-plane DMA-BUF described by `info` (its descriptor, modifier and plane
/// layout): with `VK_EXT_image_drm_format_modifier` through an explicit layout; without it
/// only LINEAR buffers laid out exactly as the device lays out a linear image.
fn import_layout(dev: &SharedDevice, info: ExportInfo, fd: OwnedFd) -> Result<VulkanTexture> {
    let MemoryLayout::DrmModifier(modifier) = info.layout else {
        return Err(Error::InvalidDmaBuf {
            plane: None,
            reason: format!(
                "a DMA-BUF needs a DRM modifier, the export says {:?}",
                info.layout
            ),
        });
    };
    let plane = *info.planes.first().ok_or(Error::InvalidDmaBuf {
        plane: None,
        reason: "no plane layout".into(),
    })?;
    let desc = info.descriptor.clone();
    let params = ImageParams::new(&desc, &info.extent);
    let handle = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    let importable = vk::ExternalMemoryFeatureFlags::IMPORTABLE;
    if modifier == DRM_FORMAT_MOD_LINEAR {
        let texel = PlaneFormat {
            bytes_per_texel: desc.format.block_bytes(),
            subsampling: (1, 1),
        };
        check_linear_plane(0, &texel, desc.width, desc.height, plane)?;
    }
    if modifier_fns(dev).is_some() {
        let offered = device_modifiers(dev, params.format);
        let Some(entry) = offered.iter().find(|m| m.modifier == modifier) else {
            return Err(Error::InvalidDmaBuf {
                plane: None,
                reason: format!(
                    "{} does not offer modifier {} for {} (it offers {})",
                    dev.identity.name,
                    modifier_name(modifier),
                    desc.format,
                    offered
                        .iter()
                        .map(|m| modifier_name(m.modifier))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        };
        if entry.plane_count as usize != info.planes.len() {
            return Err(Error::InvalidDmaBuf {
                plane: None,
                reason: format!(
                    "modifier {} has {} memory plane(s) on {}, the buffer gives {}",
                    modifier_name(modifier),
                    entry.plane_count,
                    dev.identity.name,
                    info.planes.len()
                ),
            });
        }
        if let ShareSupport::Unsupported(r) =
            support(dev, &params, handle, Tiling::Modifier(modifier), importable)?
        {
            return Err(unsupported(
                dev,
                &desc,
                &format!("a DMA-BUF with modifier {}", modifier_name(modifier)),
                r,
            ));
        }
        let partial = create_image(
            dev,
            &params,
            handle,
            &Layout::Explicit(modifier, &info.planes),
        )?;
        return bind_dma_buf(dev, partial, params, info, fd, 0, true);
    }
    if modifier != DRM_FORMAT_MOD_LINEAR {
        return Err(Error::InvalidDmaBuf {
            plane: None,
            reason: format!(
                "modifier {} needs VK_EXT_image_drm_format_modifier, which {} does not have: it imports LINEAR buffers only",
                modifier_name(modifier),
                dev.identity.name
            ),
        });
    }
    if let ShareSupport::Unsupported(r) = support(dev, &params, handle, Tiling::Linear, importable)?
    {
        return Err(unsupported(dev, &desc, "a LINEAR DMA-BUF import", r));
    }
    let partial = create_image(dev, &params, handle, &Layout::Linear)?;
    let (_, driver) = chosen_layout(dev, partial.image, params.format)?;
    let driver = driver[0];
    if driver.stride != plane.stride || plane.offset < driver.offset {
        return Err(Error::InvalidDmaBuf {
            plane: Some(0),
            reason: format!(
                "stride {} at offset {}: {} lays out a linear {}x{} {} with stride {} (offset {}) and, without VK_EXT_image_drm_format_modifier, cannot take another layout",
                plane.stride, plane.offset, dev.identity.name, desc.width, desc.height, desc.format, driver.stride, driver.offset
            ),
        });
    }
    bind_dma_buf(
        dev,
        partial,
        params,
        info,
        fd,
        plane.offset - driver.offset,
        true,
    )
}
