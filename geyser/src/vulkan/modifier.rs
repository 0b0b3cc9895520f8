//! DRM format modifiers on Vulkan (`VK_EXT_image_drm_format_modifier`): what a device offers
//! for a format, negotiation against an importer's list, and creation of images tiled LINEAR or
//! by a modifier (chosen by the driver from a list, or explicit with plane layouts).

use ash::vk;

use super::caps::{self, ShareSupport, Tiling};
use super::conv::{self, ImageParams};
use super::device::SharedDevice;
use super::memory::Partial;
use crate::common::{
    modifier_name, negotiate_modifiers, PlaneLayout, TextureDescriptor, TextureExtent,
    TextureFormat, DRM_FORMAT_MOD_LINEAR, MAX_PLANES,
};
use crate::{Error, Result};

/// One DRM format modifier a device offers for a format
/// (`VkDrmFormatModifierPropertiesEXT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModifierSupport {
    /// The modifier.
    pub modifier: u64,
    /// Memory planes an image with it has (more than the format's for compressed layouts).
    pub plane_count: u32,
    /// `VkFormatFeatureFlags` of images with it.
    pub features: u32,
}

/// The device's functions of `VK_EXT_image_drm_format_modifier`, when it is enabled.
pub(super) fn modifier_fns(
    dev: &SharedDevice,
) -> Option<ash::ext::image_drm_format_modifier::Device> {
    // SAFETY: looking up a command of a live device; null means "not enabled".
    let enabled = unsafe {
        dev.instance.get_device_proc_addr(
            dev.device.handle(),
            c"vkGetImageDrmFormatModifierPropertiesEXT".as_ptr(),
        )
    }
    .is_some();
    enabled.then(|| ash::ext::image_drm_format_modifier::Device::new(&dev.instance, &dev.device))
}

/// The modifiers a device offers for `format` (empty without the extension).
pub(crate) fn device_modifiers(dev: &SharedDevice, format: vk::Format) -> Vec<ModifierSupport> {
    if modifier_fns(dev).is_none() {
        return Vec::new();
    }
    let mut list = vk::DrmFormatModifierPropertiesListEXT::default();
    let mut props = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: the physical device belongs to the instance; the first call only counts.
    unsafe {
        dev.instance
            .get_physical_device_format_properties2(dev.physical, format, &mut props)
    };
    let count = list.drm_format_modifier_count as usize;
    let mut entries = vec![vk::DrmFormatModifierPropertiesEXT::default(); count];
    let mut list = vk::DrmFormatModifierPropertiesListEXT::default()
        .drm_format_modifier_properties(&mut entries);
    let mut props = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: as above; `entries` has room for `count` entries and outlives the call.
    unsafe {
        dev.instance
            .get_physical_device_format_properties2(dev.physical, format, &mut props)
    };
    let filled = list.drm_format_modifier_count as usize;
    entries.truncate(filled.min(count));
    entries
        .iter()
        .map(|e| ModifierSupport {
            modifier: e.drm_format_modifier,
            plane_count: e.drm_format_modifier_plane_count,
            features: e.drm_format_modifier_tiling_features.as_raw(),
        })
        .collect()
}

pub(super) fn support(
    dev: &SharedDevice,
    params: &ImageParams,
    handle: vk::ExternalMemoryHandleTypeFlags,
    tiling: Tiling,
    needed: vk::ExternalMemoryFeatureFlags,
) -> Result<ShareSupport> {
    caps::external_image_support_with(&dev.instance, dev.physical, params, handle, tiling, needed)
}

/// How the image to create is tiled.
pub(super) enum Layout<'a> {
    /// `VK_IMAGE_TILING_LINEAR`.
    Linear,
    /// Let the driver pick one of these modifiers.
    Choose(&'a [u64]),
    /// This modifier with these plane layouts (an import).
    Explicit(u64, &'a [PlaneLayout]),
}

pub(super) fn create_image<'d>(
    dev: &'d SharedDevice,
    params: &ImageParams,
    handle: vk::ExternalMemoryHandleTypeFlags,
    layout: &Layout<'_>,
) -> Result<Partial<'d>> {
    let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(handle);
    let planes: Vec<vk::SubresourceLayout> = match layout {
        Layout::Explicit(_, planes) => planes
            .iter()
            .map(|p| vk::SubresourceLayout {
                offset: p.offset,
                row_pitch: p.stride,
                ..Default::default()
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut list = vk::ImageDrmFormatModifierListCreateInfoEXT::default();
    let mut explicit = vk::ImageDrmFormatModifierExplicitCreateInfoEXT::default();
    let tiling = match layout {
        Layout::Linear => vk::ImageTiling::LINEAR,
        _ => vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT,
    };
    let mut info = vk::ImageCreateInfo::default()
        .flags(params.flags)
        .image_type(params.image_type)
        .format(params.format)
        .extent(params.extent)
        .mip_levels(params.mip_levels)
        .array_layers(params.array_layers)
        .samples(params.samples)
        .tiling(tiling)
        .usage(params.usage)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .initial_layout(vk::ImageLayout::UNDEFINED)
        .push_next(&mut external);
    match layout {
        Layout::Linear => {}
        Layout::Choose(modifiers) => {
            list = list.drm_format_modifiers(modifiers);
            info = info.push_next(&mut list);
        }
        Layout::Explicit(modifier, _) => {
            explicit = explicit
                .drm_format_modifier(*modifier)
                .plane_layouts(&planes);
            info = info.push_next(&mut explicit);
        }
    }
    // SAFETY: the caller checked the parameters with the device's external image format
    // properties for this tiling; every chained struct is a local that outlives the call.
    let image = unsafe { dev.device.create_image(&info, None) }
        .map_err(Error::vk("vkCreateImage (DMA-BUF or modifier-tiled image)"))?;
    Ok(Partial::from_image(&dev.device, image))
}

/// The modifier the driver chose for `image` and the layout of each of its memory planes.
pub(super) fn chosen_layout(
    dev: &SharedDevice,
    image: vk::Image,
    format: vk::Format,
) -> Result<(u64, Vec<PlaneLayout>)> {
    let Some(fns) = modifier_fns(dev) else {
        // LINEAR: one plane, the colour aspect's layout.
        let sub = vk::ImageSubresource {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            mip_level: 0,
            array_layer: 0,
        };
        // SAFETY: `image` is a live LINEAR image of the device with a colour aspect.
        let l = unsafe { dev.device.get_image_subresource_layout(image, sub) };
        return Ok((
            DRM_FORMAT_MOD_LINEAR,
            vec![PlaneLayout {
                offset: l.offset,
                stride: l.row_pitch,
            }],
        ));
    };
    let mut props = vk::ImageDrmFormatModifierPropertiesEXT::default();
    // SAFETY: `image` was created with DRM format modifier tiling on this device.
    unsafe { fns.get_image_drm_format_modifier_properties(image, &mut props) }
        .map_err(Error::vk("vkGetImageDrmFormatModifierPropertiesEXT"))?;
    let modifier = props.drm_format_modifier;
    let count = device_modifiers(dev, format)
        .iter()
        .find(|m| m.modifier == modifier)
        .map_or(1, |m| m.plane_count as usize)
        .min(MAX_PLANES);
    let aspects = [
        vk::ImageAspectFlags::MEMORY_PLANE_0_EXT,
        vk::ImageAspectFlags::MEMORY_PLANE_1_EXT,
        vk::ImageAspectFlags::MEMORY_PLANE_2_EXT,
        vk::ImageAspectFlags::MEMORY_PLANE_3_EXT,
    ];
    let planes = aspects[..count]
        .iter()
        .map(|aspect| {
            let sub = vk::ImageSubresource {
                aspect_mask: *aspect,
                mip_level: 0,
                array_layer: 0,
            };
            // SAFETY: the image is modifier-tiled with `count` memory planes.
            let l = unsafe { dev.device.get_image_subresource_layout(image, sub) };
            PlaneLayout {
                offset: l.offset,
                stride: l.row_pitch,
            }
        })
        .collect();
    Ok((modifier, planes))
}

/// The modifiers to offer the driver for a new image: those the device offers for this
/// image with this handle type, negotiated with what the importer takes.
pub(super) fn modifiers_for(
    dev: &SharedDevice,
    params: &ImageParams,
    handle: vk::ExternalMemoryHandleTypeFlags,
    needed: vk::ExternalMemoryFeatureFlags,
    importer: &[u64],
) -> Result<Vec<u64>> {
    let mut ours = Vec::new();
    let mut reasons = Vec::new();
    for m in device_modifiers(dev, params.format) {
        match support(dev, params, handle, Tiling::Modifier(m.modifier), needed)? {
            ShareSupport::Supported { .. } => ours.push(m.modifier),
            ShareSupport::Unsupported(r) => {
                reasons.push(format!("{}: {r}", modifier_name(m.modifier)))
            }
        }
    }
    let wanted: &[u64] = if importer.is_empty() { &ours } else { importer };
    negotiate_modifiers(&ours, wanted).ok_or_else(|| {
        Error::unsupported(
            "a DRM format modifier both sides support",
            format!(
                "{} offers [{}] for this image{}; the importer takes [{}]",
                dev.identity.name,
                ours.iter()
                    .map(|m| modifier_name(*m))
                    .collect::<Vec<_>>()
                    .join(", "),
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" (refused: {})", reasons.join("; "))
                },
                importer
                    .iter()
                    .map(|m| modifier_name(*m))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// The modifiers `format` can be imported with on this device, for the exporter's
/// negotiation: what the device offers with `VK_EXT_image_drm_format_modifier`, else LINEAR
/// alone when it imports LINEAR DMA-BUFs of the format, else none.
pub(crate) fn importable_modifiers(dev: &SharedDevice, format: TextureFormat) -> Vec<u64> {
    let vk_format = conv::format(format);
    if modifier_fns(dev).is_some() {
        return device_modifiers(dev, vk_format)
            .iter()
            .map(|m| m.modifier)
            .collect();
    }
    let desc = TextureDescriptor::new(64, 64, format, &[crate::common::TextureUsage::CopySrc]);
    let params = ImageParams::new(&desc, &TextureExtent::default());
    match support(
        dev,
        &params,
        vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
        Tiling::Linear,
        vk::ExternalMemoryFeatureFlags::IMPORTABLE,
    ) {
        Ok(ShareSupport::Supported { .. }) => vec![DRM_FORMAT_MOD_LINEAR],
        _ => Vec::new(),
    }
}
