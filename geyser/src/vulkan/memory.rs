//! External memory: dedicated exportable allocations, export as the platform's opaque handle
//! (FD on Unix, NT handle on Windows: see `os.rs`), and import of an [`ExportedTexture`] into
//! another device context, with every object freed on error paths.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ash::vk;

use super::caps::{self, ShareSupport};
use super::conv::ImageParams;
use super::device::SharedDevice;
use super::diagnostics::{LIVE_IMAGES, LIVE_MEMORIES, LIVE_TEXTURES};
use super::image::{TextureInner, VulkanTexture};
use super::os;
use crate::common::{
    uuid_string, ExportInfo, ExportedTexture, ExternalHandleType, MemoryLayout, OwnedOsHandle,
    TextureDescriptor, TextureExtent,
};
use crate::{Error, Result};

/// Destroys an image (and memory) unless disarmed: keeps error paths leak-free.
pub(super) struct Partial<'a> {
    device: &'a ash::Device,
    pub(super) image: vk::Image,
    pub(super) memory: vk::DeviceMemory,
}

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        // SAFETY: both handles were created on `device`, are unused by any submission (the
        // texture was never returned) and are destroyed only here.
        unsafe {
            if self.memory != vk::DeviceMemory::null() {
                self.device.free_memory(self.memory, None);
                LIVE_MEMORIES.fetch_sub(1, Ordering::Relaxed);
            }
            if self.image != vk::Image::null() {
                self.device.destroy_image(self.image, None);
                LIVE_IMAGES.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl<'a> Partial<'a> {
    /// Takes ownership of an image the caller just created on `device` (counted live here).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn from_image(device: &'a ash::Device, image: vk::Image) -> Self {
        LIVE_IMAGES.fetch_add(1, Ordering::Relaxed);
        Partial {
            device,
            image,
            memory: vk::DeviceMemory::null(),
        }
    }

    /// Records that `memory` (allocated or imported on the device) belongs to the image.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn set_memory(&mut self, memory: vk::DeviceMemory) {
        LIVE_MEMORIES.fetch_add(1, Ordering::Relaxed);
        self.memory = memory;
    }

    /// Creates the image with external-memory info for `handle` chained; it is destroyed on
    /// drop until [`Self::disarm`].
    fn new(
        device: &'a ash::Device,
        params: &ImageParams,
        handle: vk::ExternalMemoryHandleTypeFlags,
    ) -> Result<Self> {
        let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(handle);
        let info = vk::ImageCreateInfo::default()
            .flags(params.flags)
            .image_type(params.image_type)
            .format(params.format)
            .extent(params.extent)
            .mip_levels(params.mip_levels)
            .array_layers(params.array_layers)
            .samples(params.samples)
            .tiling(vk::ImageTiling::OPTIMAL)
            .usage(params.usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .initial_layout(vk::ImageLayout::UNDEFINED)
            .push_next(&mut external);
        // SAFETY: the parameters were checked against the device's external image format
        // properties by the caller; the chain points at a local that outlives the call.
        let image =
            unsafe { device.create_image(&info, None) }.map_err(Error::vk("vkCreateImage"))?;
        LIVE_IMAGES.fetch_add(1, Ordering::Relaxed);
        Ok(Partial {
            device,
            image,
            memory: vk::DeviceMemory::null(),
        })
    }

    fn disarm(mut self) -> (vk::Image, vk::DeviceMemory) {
        let out = (self.image, self.memory);
        self.image = vk::Image::null();
        self.memory = vk::DeviceMemory::null();
        out
    }
}

/// Memory requirements with the dedicated-allocation query chained.
pub(super) fn requirements(
    device: &ash::Device,
    image: vk::Image,
) -> (vk::MemoryRequirements, bool) {
    let mut dedicated = vk::MemoryDedicatedRequirements::default();
    let mut reqs = vk::MemoryRequirements2::default().push_next(&mut dedicated);
    let info = vk::ImageMemoryRequirementsInfo2::default().image(image);
    // SAFETY: `image` is a live image of `device`.
    unsafe { device.get_image_memory_requirements2(&info, &mut reqs) };
    (
        reqs.memory_requirements,
        dedicated.requires_dedicated_allocation == vk::TRUE,
    )
}

/// The first device-local memory type among `type_bits`, else the first of them.
pub(super) fn memory_type(dev: &SharedDevice, type_bits: u32) -> Option<u32> {
    let props = &dev.memory_properties;
    let candidates = (0..props.memory_type_count).filter(|i| type_bits & (1 << i) != 0);
    let device_local = |i: &u32| {
        props.memory_types[*i as usize]
            .property_flags
            .contains(vk::MemoryPropertyFlags::DEVICE_LOCAL)
    };
    candidates
        .clone()
        .find(device_local)
        .or_else(|| candidates.clone().next())
}

/// Binds the memory at `offset` and wraps image and memory as a texture. `backing` is an FD
/// Geyser keeps for memory Vulkan imported (a host DMA-BUF, a foreign DMA-BUF): exports
/// duplicate it, since Vulkan cannot export memory it imported.
pub(super) fn finish(
    dev: &SharedDevice,
    partial: Partial<'_>,
    bind: (ImageParams, u64),
    info: ExportInfo,
    imported: bool,
    backing: Option<OwnedOsHandle>,
) -> Result<VulkanTexture> {
    let (params, offset) = bind;
    // SAFETY: image and memory are live objects of this device; the memory was allocated
    // or imported for this image with a size covering its requirements from `offset`, which
    // the caller aligned (and which is 0 for a dedicated allocation).
    unsafe {
        dev.device
            .bind_image_memory(partial.image, partial.memory, offset)
    }
    .map_err(Error::vk("vkBindImageMemory"))?;
    let (image, memory) = partial.disarm();
    LIVE_TEXTURES.fetch_add(1, Ordering::Relaxed);
    Ok(VulkanTexture {
        inner: Arc::new(TextureInner {
            dev: dev.clone(),
            image,
            memory,
            params,
            info,
            imported,
            initialized: AtomicBool::new(imported),
            backing,
        }),
    })
}

/// Checks that the device can create this image exportable with `handle_type`; returns
/// `Unsupported` with the driver's answer otherwise.
fn check_format_support(
    dev: &SharedDevice,
    params: &ImageParams,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
    desc: &TextureDescriptor,
) -> Result<()> {
    // SAFETY: `physical` belongs to `instance`.
    let features = unsafe { dev.instance.get_physical_device_features(dev.physical) };
    if let (false, Some(family)) = (
        super::conv::has_compression(&features, desc.format),
        desc.format.compression(),
    ) {
        return Err(Error::unsupported(
            format!("{} (compressed)", desc.format),
            format!(
                "{} lacks the {} feature, which this format family needs; use an \
                 uncompressed format or a device that has it (`geyser info` lists them)",
                dev.identity.name,
                family.vulkan_feature()
            ),
        ));
    }
    match caps::external_image_support(&dev.instance, dev.physical, params, handle_type)? {
        ShareSupport::Supported { .. } => Ok(()),
        ShareSupport::Unsupported(reason) => Err(Error::unsupported(
            format!(
                "{} with usages {:?} as a shareable ({handle_type:?}) image",
                desc.format, desc.usage
            ),
            format!("{reason} on {}", dev.identity.name),
        )),
    }
}

/// Creates an image and a dedicated allocation it can export with `handle_type`, after
/// checking that the device supports that ([`Error::Unsupported`] otherwise).
pub(crate) fn create_exportable(
    dev: &SharedDevice,
    desc: &TextureDescriptor,
    extent: &TextureExtent,
    handle_type: ExternalHandleType,
) -> Result<VulkanTexture> {
    let vk_type = os::memory_handle_type(handle_type)?;
    let params = ImageParams::new(desc, extent);
    check_format_support(dev, &params, vk_type, desc)?;
    let device = &dev.device;
    let mut partial = Partial::new(device, &params, vk_type)?;
    let (reqs, _) = requirements(device, partial.image);
    let type_index = memory_type(dev, reqs.memory_type_bits)
        .ok_or_else(|| Error::unsupported("memory type", "no memory type fits the image"))?;
    let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(vk_type);
    let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().image(partial.image);
    let alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(reqs.size)
        .memory_type_index(type_index)
        .push_next(&mut export)
        .push_next(&mut dedicated);
    // SAFETY: valid chain pointing at locals; the image is live.
    partial.memory =
        unsafe { device.allocate_memory(&alloc, None) }.map_err(Error::vk("vkAllocateMemory"))?;
    LIVE_MEMORIES.fetch_add(1, Ordering::Relaxed);
    let info = ExportInfo {
        descriptor: desc.clone(),
        extent: *extent,
        handle_type,
        layout: MemoryLayout::Optimal,
        allocation_size: reqs.size,
        memory_type_index: type_index,
        dedicated: true,
        planes: Vec::new(),
        device_uuid: dev.identity.device_uuid,
        driver_uuid: dev.identity.driver_uuid,
    };
    finish(dev, partial, (params, 0), info, false, None)
}

/// Exports a texture's memory as a new OS handle.
pub(crate) fn export(texture: &VulkanTexture) -> Result<ExportedTexture> {
    let inner = &texture.inner;
    if let Some(backing) = &inner.backing {
        return Ok(ExportedTexture::new(
            inner.info.clone(),
            backing.try_clone()?,
        ));
    }
    let vk_type = os::memory_handle_type(inner.info.handle_type)?;
    let handle = os::export_memory(&inner.dev.external_memory, inner.memory, vk_type)?;
    Ok(ExportedTexture::new(inner.info.clone(), handle))
}

/// Checks what can be checked of an export before any Vulkan call.
pub(crate) fn check_importable(
    dev: &SharedDevice,
    info: &ExportInfo,
    desc: Option<&TextureDescriptor>,
) -> Result<()> {
    if let Some(desc) = desc {
        desc.check_matches(&info.descriptor)?;
    }
    info.descriptor.validate_with(&info.extent)?;
    let ours = &dev.identity;
    if info.handle_type == os::NATIVE_MEMORY
        && (info.device_uuid != ours.device_uuid || info.driver_uuid != ours.driver_uuid)
    {
        let which = if info.device_uuid != ours.device_uuid {
            "deviceUUID differs"
        } else {
            "driverUUID differs"
        };
        return Err(Error::DeviceMismatch {
            exporter: format!(
                "{}/{}",
                uuid_string(&info.device_uuid),
                uuid_string(&info.driver_uuid)
            ),
            importer: format!(
                "{}/{}",
                uuid_string(&ours.device_uuid),
                uuid_string(&ours.driver_uuid)
            ),
            reason: which.into(),
        });
    }
    if info.layout == MemoryLayout::Linear {
        return Err(Error::unsupported(
            "Linear layout",
            "LINEAR exports travel as MemoryLayout::DrmModifier(DRM_FORMAT_MOD_LINEAR) with their plane layout",
        ));
    }
    if !info.dedicated {
        return Err(Error::InvalidArgument {
            what: "exported texture",
            reason: "the export is not a dedicated allocation; Geyser imports dedicated allocations only".into(),
        });
    }
    // A DMA-BUF's memory type is chosen by the importer (`vkGetMemoryFdPropertiesKHR`).
    if info.handle_type != ExternalHandleType::DmaBuf
        && info.memory_type_index >= dev.memory_properties.memory_type_count
    {
        return Err(Error::InvalidArgument {
            what: "exported texture",
            reason: format!(
                "memory type {} does not exist on this device ({} types)",
                info.memory_type_index, dev.memory_properties.memory_type_count
            ),
        });
    }
    Ok(())
}

/// Imports an export into this device as a new image aliasing the exporter's memory. The OS
/// handle is consumed: Vulkan owns an FD after a successful import; an NT handle (which
/// Vulkan never takes) and an FD whose import failed are closed.
pub(crate) fn import(
    dev: &SharedDevice,
    exported: ExportedTexture,
    desc: Option<&TextureDescriptor>,
) -> Result<VulkanTexture> {
    let (info, handle) = exported.into_parts();
    check_importable(dev, &info, desc)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if info.handle_type == ExternalHandleType::DmaBuf
        || matches!(info.layout, MemoryLayout::DrmModifier(_))
    {
        return super::dmabuf::import_export(dev, info, handle);
    }
    let vk_type = os::memory_handle_type(info.handle_type)?;
    let params = ImageParams::new(&info.descriptor, &info.extent);
    check_format_support(dev, &params, vk_type, &info.descriptor)?;
    let device = &dev.device;
    let mut partial = Partial::new(device, &params, vk_type)?;
    let (reqs, _) = requirements(device, partial.image);
    if reqs.size > info.allocation_size {
        return Err(Error::InvalidArgument {
            what: "exported texture",
            reason: format!(
                "the export claims {} bytes but this image needs {}; the descriptor does not describe that memory",
                info.allocation_size, reqs.size
            ),
        });
    }
    if reqs.memory_type_bits & (1 << info.memory_type_index) == 0 {
        return Err(Error::InvalidArgument {
            what: "exported texture",
            reason: format!(
                "memory type {} is not allowed for this image (allowed bits {:#b})",
                info.memory_type_index, reqs.memory_type_bits
            ),
        });
    }
    let target = os::ImportTarget {
        image: partial.image,
        size: info.allocation_size,
        memory_type_index: info.memory_type_index,
        handle_type: vk_type,
    };
    partial.memory = os::import_memory(device, &target, handle)?;
    LIVE_MEMORIES.fetch_add(1, Ordering::Relaxed);
    finish(dev, partial, (params, 0), info, true, None)
}
