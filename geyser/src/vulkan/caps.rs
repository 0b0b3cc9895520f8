//! What a device can share: external memory handle types, which formats can be created
//! exportable for which usages, exportable semaphores and fences, timeline support.

use ash::vk;
use serde::Serialize;

use super::conv::{self, ImageParams};
use super::identity::{device_extensions, enumerate_identities, offers_timelines, DeviceIdentity};
use crate::common::{ExternalHandleType, TextureFormat, TextureUsage, FORMAT_TABLE};
use crate::{Error, Result};

/// Whether a format can be shared with one handle type, and for which usages.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FormatShareSupport {
    /// Usages for which the format can be created exportable and imported again (each tested
    /// alone, optimal tiling, 2D).
    pub usages: Vec<TextureUsage>,
    /// Whether the driver requires a dedicated allocation (Geyser always uses one).
    pub dedicated_only: bool,
    /// Why no usage is supported, when none is.
    pub reason: Option<String>,
}

impl FormatShareSupport {
    /// Whether every usage in `usages` is supported.
    pub fn supports(&self, usages: &[TextureUsage]) -> bool {
        usages.iter().all(|u| self.usages.contains(u))
    }
}

/// Sharing support of one format.
#[derive(Clone, Debug, Serialize)]
pub struct FormatCaps {
    /// The format.
    pub format: TextureFormat,
    /// With opaque FDs (same device and driver).
    pub opaque_fd: FormatShareSupport,
    /// Importable as a LINEAR DMA-BUF (where the device has `VK_EXT_external_memory_dma_buf`):
    /// what a foreign or another driver's buffer can be taken as.
    pub dma_buf: Option<FormatShareSupport>,
    /// With Windows NT handles (`OPAQUE_WIN32`; same device and driver).
    #[cfg(windows)]
    pub opaque_win32: FormatShareSupport,
}

/// What a device does with DMA-BUFs (`VK_EXT_external_memory_dma_buf`), checked on an RGBA8
/// texture that is copied and sampled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DmaBufCaps {
    /// Imports DMA-BUFs (LINEAR, or any modifier it lists with `modifiers`).
    pub import: bool,
    /// Exports its own memory as DMA-BUFs (lavapipe only with `/dev/udmabuf`).
    pub export: bool,
    /// `VK_EXT_image_drm_format_modifier`: explicit modifiers and plane layouts, so buffers of
    /// other drivers' tiled layouts (and any LINEAR stride) can be imported.
    pub modifiers: bool,
}

/// Export/import support for one semaphore or fence handle type.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncExportCaps {
    /// Opaque FD export and import.
    pub opaque_fd: bool,
    /// Sync FD (a Linux sync_file) export and import.
    pub sync_fd: bool,
    /// Windows NT handle (`OPAQUE_WIN32`) export and import.
    #[cfg(windows)]
    pub opaque_win32: bool,
}

impl SyncExportCaps {
    /// Whether any handle type is exportable.
    pub fn any(&self) -> bool {
        #[cfg(windows)]
        if self.opaque_win32 {
            return true;
        }
        self.opaque_fd || self.sync_fd
    }

    /// Whether this platform's opaque handle type is exportable: an opaque FD on Unix, an NT
    /// handle (`OPAQUE_WIN32`) on Windows. What IPC timeline sync needs.
    pub fn opaque(&self) -> bool {
        #[cfg(windows)]
        return self.opaque_win32;
        #[cfg(not(windows))]
        return self.opaque_fd;
    }
}

/// Everything Geyser needs to know about a device before sharing with it; what `geyser info`
/// prints.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceCaps {
    /// Who the device is.
    pub identity: DeviceIdentity,
    /// External memory handle types the device's extensions offer.
    pub memory_handle_types: Vec<ExternalHandleType>,
    /// `VK_EXT_image_drm_format_modifier` is present.
    pub drm_format_modifiers: bool,
    /// DMA-BUF import and export.
    pub dma_buf: DmaBufCaps,
    /// `VK_EXT_external_memory_host` is present (host memory imported as device memory).
    pub external_memory_host: bool,
    /// Timeline semaphores (Vulkan 1.2 feature).
    pub timeline_semaphores: bool,
    /// Binary semaphore export (needs `VK_KHR_external_semaphore_fd`).
    pub binary_semaphore_export: SyncExportCaps,
    /// Timeline semaphore export.
    pub timeline_semaphore_export: SyncExportCaps,
    /// Fence export (needs `VK_KHR_external_fence_fd`).
    pub fence_export: SyncExportCaps,
    /// Largest 2D image side.
    pub max_image_dimension_2d: u32,
    /// Per format support.
    pub formats: Vec<FormatCaps>,
    /// What a process holding one of this device's exported memory FDs can do with it.
    pub memory_exposure: MemoryExposure,
}

/// What a process that holds one of a device's exported memory FDs (a trusted consumer, see
/// `ipc::ProducerOptions::trusted`) can do to the exporter and to other importers, as far as
/// Geyser knows for the driver. SECURITY.md has the details and how each was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MemoryExposure {
    /// The FD is a writable memfd whose first page holds metadata (size, data offset) the
    /// driver trusts when the memory is imported and freed (lavapipe: Mesa's `os_memory_fd`).
    /// A peer that writes it can corrupt frames and crash the exporter and later importers;
    /// this driver offers no exportable handle type without it.
    TrustedInBandMetadata,
    /// Not established for this driver: assume a peer holding the FD can write the memory.
    Unknown,
}

impl MemoryExposure {
    /// What is known for a driver, by its `driverID`.
    pub(crate) fn of_driver(driver: vk::DriverId) -> Self {
        match driver {
            vk::DriverId::MESA_LLVMPIPE => MemoryExposure::TrustedInBandMetadata,
            _ => MemoryExposure::Unknown,
        }
    }

    /// One line for `geyser info`.
    pub fn describe(self) -> &'static str {
        match self {
            MemoryExposure::TrustedInBandMetadata => {
                "writable memfd with in-band metadata the driver trusts: a peer holding it can \
                 crash the exporter (trust such peers only)"
            }
            MemoryExposure::Unknown => {
                "not established for this driver: assume a peer holding it can write the memory"
            }
        }
    }
}

impl DeviceCaps {
    /// Support of one format.
    pub fn format(&self, format: TextureFormat) -> Option<&FormatCaps> {
        self.formats.iter().find(|f| f.format == format)
    }
}

/// The driver's answer to "can this image be created exportable and imported again?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ShareSupport {
    /// Yes; `dedicated_only` when the driver requires a dedicated allocation.
    Supported { dedicated_only: bool },
    /// No, for this reason (the driver does not support the combination, or the image
    /// exceeds the format's limits).
    Unsupported(String),
}

/// How an image's texels are laid out, for support queries and image creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) enum Tiling {
    /// `VK_IMAGE_TILING_OPTIMAL`.
    Optimal,
    /// `VK_IMAGE_TILING_LINEAR`.
    Linear,
    /// `VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT` with this modifier.
    Modifier(u64),
}

impl Tiling {
    pub(crate) fn vk(self) -> vk::ImageTiling {
        match self {
            Tiling::Optimal => vk::ImageTiling::OPTIMAL,
            Tiling::Linear => vk::ImageTiling::LINEAR,
            Tiling::Modifier(_) => vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT,
        }
    }
}

/// Whether an image with `info` can be created exportable and importable with `handle_type`
/// (optimal tiling). `ERROR_FORMAT_NOT_SUPPORTED` is a "no", not an error; other failures of
/// the query are errors.
pub(crate) fn external_image_support(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    info: &ImageParams,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
) -> Result<ShareSupport> {
    let both =
        vk::ExternalMemoryFeatureFlags::EXPORTABLE | vk::ExternalMemoryFeatureFlags::IMPORTABLE;
    external_image_support_with(instance, physical, info, handle_type, Tiling::Optimal, both)
}

/// [`external_image_support`] with any tiling (a DRM modifier is queried with
/// `VkPhysicalDeviceImageDrmFormatModifierInfoEXT`; the device must offer
/// `VK_EXT_image_drm_format_modifier`), needing the external memory features `needed`
/// (exportable, importable or both).
pub(crate) fn external_image_support_with(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    info: &ImageParams,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
    tiling: Tiling,
    needed: vk::ExternalMemoryFeatureFlags,
) -> Result<ShareSupport> {
    let mut external_info =
        vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(handle_type);
    let mut modifier_info = vk::PhysicalDeviceImageDrmFormatModifierInfoEXT::default()
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    let mut format_info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(info.format)
        .ty(info.image_type)
        .tiling(tiling.vk())
        .usage(info.usage)
        .flags(info.flags)
        .push_next(&mut external_info);
    if let Tiling::Modifier(m) = tiling {
        modifier_info = modifier_info.drm_format_modifier(m);
        format_info = format_info.push_next(&mut modifier_info);
    }
    let mut external_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut external_props);
    // SAFETY: valid chained structs; `physical` belongs to `instance`.
    let r = unsafe {
        instance.get_physical_device_image_format_properties2(physical, &format_info, &mut props)
    };
    match r {
        Ok(()) => {}
        Err(vk::Result::ERROR_FORMAT_NOT_SUPPORTED) => {
            return Ok(ShareSupport::Unsupported(
                "the driver does not support this format/usage combination as an external image"
                    .into(),
            ))
        }
        Err(e) => return Err(Error::vk("vkGetPhysicalDeviceImageFormatProperties2")(e)),
    }
    let limits = props.image_format_properties;
    if limits.max_extent.width < info.extent.width
        || limits.max_extent.height < info.extent.height
        || limits.max_extent.depth < info.extent.depth
        || limits.max_array_layers < info.array_layers
        || limits.max_mip_levels < info.mip_levels
        || !limits.sample_counts.contains(info.samples)
    {
        return Ok(ShareSupport::Unsupported(format!(
            "exceeds the device's limits for this format (max extent {}x{}x{}, {} layers, {} mips, samples {:?})",
            limits.max_extent.width,
            limits.max_extent.height,
            limits.max_extent.depth,
            limits.max_array_layers,
            limits.max_mip_levels,
            limits.sample_counts
        )));
    }
    let features = external_props
        .external_memory_properties
        .external_memory_features;
    if !features.contains(needed) {
        return Ok(ShareSupport::Unsupported(format!(
            "external memory features are {features:?}, need {needed:?}"
        )));
    }
    Ok(ShareSupport::Supported {
        dedicated_only: features.contains(vk::ExternalMemoryFeatureFlags::DEDICATED_ONLY),
    })
}

fn format_support(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    format: TextureFormat,
    handle_type: ExternalHandleType,
) -> Result<FormatShareSupport> {
    let (tiling, needed) = match handle_type {
        // DMA-BUFs cross drivers LINEAR: what matters is whether one can be taken.
        ExternalHandleType::DmaBuf => (Tiling::Linear, vk::ExternalMemoryFeatureFlags::IMPORTABLE),
        _ => (
            Tiling::Optimal,
            vk::ExternalMemoryFeatureFlags::EXPORTABLE | vk::ExternalMemoryFeatureFlags::IMPORTABLE,
        ),
    };
    let handle_type = conv::memory_handle_type(handle_type);
    let mut out = FormatShareSupport::default();
    let mut reasons = Vec::new();
    for usage in TextureUsage::ALL {
        let desc = crate::common::TextureDescriptor::new(64, 64, format, &[usage]);
        let params = ImageParams::new(&desc, &Default::default());
        match external_image_support_with(instance, physical, &params, handle_type, tiling, needed)?
        {
            ShareSupport::Supported { dedicated_only } => {
                out.usages.push(usage);
                out.dedicated_only |= dedicated_only;
            }
            ShareSupport::Unsupported(reason) => reasons.push(format!("{usage:?}: {reason}")),
        }
    }
    if out.usages.is_empty() {
        out.reason = reasons.into_iter().next();
    }
    Ok(out)
}

fn sync_caps(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    has_extension: bool,
    timeline: Option<bool>,
) -> SyncExportCaps {
    if !has_extension {
        return SyncExportCaps::default();
    }
    let query = |handle: vk::ExternalSemaphoreHandleTypeFlags| -> bool {
        let needed = vk::ExternalSemaphoreFeatureFlags::EXPORTABLE
            | vk::ExternalSemaphoreFeatureFlags::IMPORTABLE;
        let mut type_info =
            vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
        let mut info = vk::PhysicalDeviceExternalSemaphoreInfo::default().handle_type(handle);
        if timeline == Some(true) {
            info = info.push_next(&mut type_info);
        }
        let mut props = vk::ExternalSemaphoreProperties::default();
        // SAFETY: valid structs; `physical` belongs to `instance`.
        unsafe {
            instance.get_physical_device_external_semaphore_properties(physical, &info, &mut props)
        };
        props.external_semaphore_features.contains(needed)
    };
    SyncExportCaps {
        opaque_fd: cfg!(unix) && query(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD),
        // Timelines cannot be sync FDs.
        sync_fd: cfg!(unix)
            && timeline != Some(true)
            && query(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD),
        #[cfg(windows)]
        opaque_win32: query(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_WIN32),
    }
}

fn fence_caps(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    has_extension: bool,
) -> SyncExportCaps {
    if !has_extension {
        return SyncExportCaps::default();
    }
    let query = |handle: vk::ExternalFenceHandleTypeFlags| -> bool {
        let needed =
            vk::ExternalFenceFeatureFlags::EXPORTABLE | vk::ExternalFenceFeatureFlags::IMPORTABLE;
        let info = vk::PhysicalDeviceExternalFenceInfo::default().handle_type(handle);
        let mut props = vk::ExternalFenceProperties::default();
        // SAFETY: valid structs; `physical` belongs to `instance`.
        unsafe {
            instance.get_physical_device_external_fence_properties(physical, &info, &mut props)
        };
        props.external_fence_features.contains(needed)
    };
    SyncExportCaps {
        opaque_fd: cfg!(unix) && query(vk::ExternalFenceHandleTypeFlags::OPAQUE_FD),
        sync_fd: cfg!(unix) && query(vk::ExternalFenceHandleTypeFlags::SYNC_FD),
        #[cfg(windows)]
        opaque_win32: query(vk::ExternalFenceHandleTypeFlags::OPAQUE_WIN32),
    }
}

/// DMA-BUF import and export of a LINEAR RGBA8 texture that is copied and sampled.
fn dma_buf_caps(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    modifiers: bool,
) -> Result<DmaBufCaps> {
    let desc = crate::common::TextureDescriptor::new(
        64,
        64,
        TextureFormat::Rgba8Unorm,
        &[
            TextureUsage::CopySrc,
            TextureUsage::CopyDst,
            TextureUsage::TextureBinding,
        ],
    );
    let params = ImageParams::new(&desc, &Default::default());
    let query = |needed| {
        external_image_support_with(
            instance,
            physical,
            &params,
            vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
            Tiling::Linear,
            needed,
        )
        .map(|s| matches!(s, ShareSupport::Supported { .. }))
    };
    Ok(DmaBufCaps {
        import: query(vk::ExternalMemoryFeatureFlags::IMPORTABLE)?,
        export: query(vk::ExternalMemoryFeatureFlags::EXPORTABLE)?,
        modifiers,
    })
}

/// Queries everything in [`DeviceCaps`] for one device.
pub(crate) fn query(instance: &ash::Instance, identity: &DeviceIdentity) -> Result<DeviceCaps> {
    let physical = identity.physical;
    let exts = device_extensions(instance, physical)?;
    let has = |name: &std::ffi::CStr| exts.iter().any(|e| e.as_c_str() == name);
    let mut memory_handle_types = Vec::new();
    if has(ash::khr::external_memory_fd::NAME) {
        memory_handle_types.push(ExternalHandleType::OpaqueFd);
    }
    if has(ash::khr::external_memory_win32::NAME) {
        memory_handle_types.push(ExternalHandleType::OpaqueWin32);
    }
    let dma_buf = has(ash::ext::external_memory_dma_buf::NAME);
    if dma_buf {
        memory_handle_types.push(ExternalHandleType::DmaBuf);
    }
    // SAFETY: `physical` belongs to `instance`.
    let props = unsafe { instance.get_physical_device_properties(physical) };
    let timeline_semaphores = offers_timelines(instance, physical, props.api_version);
    let sem_ext = has(super::os::SEMAPHORE_EXTENSION);
    // SAFETY: `physical` belongs to `instance`.
    let features = unsafe { instance.get_physical_device_features(physical) };
    let mut formats = Vec::with_capacity(FORMAT_TABLE.len());
    for row in FORMAT_TABLE {
        if !conv::has_compression(&features, row.format) {
            // The driver would refuse each query; say why once, for every handle type.
            let why = |_| FormatShareSupport {
                reason: row.compression.map(|c| {
                    format!(
                        "{} is compressed and {} lacks {}",
                        row.format,
                        identity.name,
                        c.vulkan_feature()
                    )
                }),
                ..Default::default()
            };
            formats.push(FormatCaps {
                format: row.format,
                opaque_fd: why(()),
                dma_buf: dma_buf.then(|| why(())),
                #[cfg(windows)]
                opaque_win32: why(()),
            });
            continue;
        }
        let opaque_fd = if has(ash::khr::external_memory_fd::NAME) {
            format_support(instance, physical, row.format, ExternalHandleType::OpaqueFd)?
        } else {
            FormatShareSupport {
                reason: Some("VK_KHR_external_memory_fd is missing".into()),
                ..Default::default()
            }
        };
        let dma = if dma_buf {
            Some(format_support(
                instance,
                physical,
                row.format,
                ExternalHandleType::DmaBuf,
            )?)
        } else {
            None
        };
        #[cfg(windows)]
        let opaque_win32 = if has(ash::khr::external_memory_win32::NAME) {
            format_support(
                instance,
                physical,
                row.format,
                ExternalHandleType::OpaqueWin32,
            )?
        } else {
            FormatShareSupport {
                reason: Some("VK_KHR_external_memory_win32 is missing".into()),
                ..Default::default()
            }
        };
        formats.push(FormatCaps {
            format: row.format,
            opaque_fd,
            dma_buf: dma,
            #[cfg(windows)]
            opaque_win32,
        });
    }
    let drm_format_modifiers = has(ash::ext::image_drm_format_modifier::NAME);
    let dma_buf = if dma_buf {
        dma_buf_caps(instance, physical, drm_format_modifiers)?
    } else {
        DmaBufCaps::default()
    };
    Ok(DeviceCaps {
        identity: identity.clone(),
        memory_handle_types,
        drm_format_modifiers,
        dma_buf,
        external_memory_host: has(ash::ext::external_memory_host::NAME),
        timeline_semaphores,
        binary_semaphore_export: sync_caps(instance, physical, sem_ext, Some(false)),
        timeline_semaphore_export: if timeline_semaphores {
            sync_caps(instance, physical, sem_ext, Some(true))
        } else {
            SyncExportCaps::default()
        },
        fence_export: fence_caps(instance, physical, has(super::os::FENCE_EXTENSION)),
        max_image_dimension_2d: props.limits.max_image_dimension2_d,
        formats,
        memory_exposure: MemoryExposure::of_driver(identity.driver_id),
    })
}

/// Capabilities of every Vulkan device on this machine, in enumeration order. Creates a
/// temporary instance (no device).
pub fn enumerate_devices() -> Result<Vec<DeviceCaps>> {
    // SAFETY: loading the system's Vulkan loader.
    let entry = unsafe { ash::Entry::load() }.map_err(|e| Error::Loader(e.to_string()))?;
    // SAFETY: `entry` is loaded.
    let version = unsafe { entry.try_enumerate_instance_version() }
        .map_err(Error::vk("vkEnumerateInstanceVersion"))?
        .unwrap_or(vk::API_VERSION_1_0)
        .min(vk::API_VERSION_1_3);
    if version < vk::API_VERSION_1_1 {
        return Err(Error::unsupported(
            "Vulkan 1.1",
            "the Vulkan loader is older than 1.1",
        ));
    }
    let app = vk::ApplicationInfo::default()
        .application_name(c"geyser-info")
        .api_version(version);
    let info = vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: valid create info pointing at locals.
    let instance =
        unsafe { entry.create_instance(&info, None) }.map_err(Error::vk("vkCreateInstance"))?;
    let result = enumerate_identities(&instance)
        .and_then(|ids| ids.iter().map(|id| query(&instance, id)).collect());
    // SAFETY: no child objects were created.
    unsafe { instance.destroy_instance(None) };
    result
}
