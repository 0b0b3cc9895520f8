//! Geyser's types in Vulkan terms, like wgpu-hal's `conv.rs`: the only reader of the format and
//! usage tables' Vulkan columns, and the image create parameters a descriptor determines.

use ash::vk;

use crate::common::{
    usage_column, Compression, ExternalHandleType, TextureAspect, TextureDescriptor,
    TextureDimension, TextureExtent, TextureFormat,
};

/// The `VkFormat` of a format (the format table's Vulkan column).
pub fn format(format: TextureFormat) -> vk::Format {
    vk::Format::from_raw(format.info().vk_format)
}

/// The `VkImageUsageFlags` of a descriptor's usages: the usage table's colour column, or its
/// depth/stencil column for depth/stencil formats.
pub fn image_usage(desc: &TextureDescriptor) -> vk::ImageUsageFlags {
    let depth = desc.format.is_depth_stencil();
    vk::ImageUsageFlags::from_raw(usage_column(&desc.usage, |u| {
        if depth {
            u.vk_depth_stencil
        } else {
            u.vk
        }
    }))
}

/// Whether a device's features (`VkPhysicalDeviceFeatures`) include the compression family of
/// a compressed format (`textureCompressionBC` / `ETC2` / `ASTC_LDR`); `true` for uncompressed
/// formats.
pub(crate) fn has_compression(
    features: &vk::PhysicalDeviceFeatures,
    format: TextureFormat,
) -> bool {
    match format.compression() {
        None => true,
        Some(Compression::Bc) => features.texture_compression_bc == vk::TRUE,
        Some(Compression::Etc2) => features.texture_compression_etc2 == vk::TRUE,
        Some(Compression::AstcLdr) => features.texture_compression_astc_ldr == vk::TRUE,
    }
}

/// The Vulkan aspect flag of one copy aspect.
pub fn aspect(aspect: TextureAspect) -> vk::ImageAspectFlags {
    match aspect {
        TextureAspect::Color => vk::ImageAspectFlags::COLOR,
        TextureAspect::Depth => vk::ImageAspectFlags::DEPTH,
        TextureAspect::Stencil => vk::ImageAspectFlags::STENCIL,
    }
}

/// All aspects of a format, for barriers and subresource ranges.
pub fn full_aspect(format: TextureFormat) -> vk::ImageAspectFlags {
    TextureAspect::all_of(format)
        .iter()
        .fold(vk::ImageAspectFlags::empty(), |acc, a| acc | aspect(*a))
}

/// The Vulkan flag of a memory handle type (which ones this platform carries is `os.rs`'s
/// answer).
pub(crate) fn memory_handle_type(t: ExternalHandleType) -> vk::ExternalMemoryHandleTypeFlags {
    match t {
        ExternalHandleType::OpaqueFd => vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD,
        ExternalHandleType::DmaBuf => vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
        ExternalHandleType::OpaqueWin32 => vk::ExternalMemoryHandleTypeFlags::OPAQUE_WIN32,
    }
}

/// The `VkImageCreateInfo` fields a descriptor determines. Exporter and importer compute them
/// the same way, which is what makes an import alias the exporter's texels correctly.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ImageParams {
    pub format: vk::Format,
    pub image_type: vk::ImageType,
    pub extent: vk::Extent3D,
    pub array_layers: u32,
    pub mip_levels: u32,
    pub samples: vk::SampleCountFlags,
    pub usage: vk::ImageUsageFlags,
    pub flags: vk::ImageCreateFlags,
}

impl ImageParams {
    pub(crate) fn new(desc: &TextureDescriptor, extent: &TextureExtent) -> Self {
        let layers = extent.depth_or_array_layers;
        let (image_type, depth, array_layers, flags) = match extent.dimension {
            TextureDimension::D2 => (
                vk::ImageType::TYPE_2D,
                1,
                layers,
                vk::ImageCreateFlags::empty(),
            ),
            TextureDimension::D3 => (
                vk::ImageType::TYPE_3D,
                layers,
                1,
                vk::ImageCreateFlags::empty(),
            ),
            TextureDimension::Cube => (
                vk::ImageType::TYPE_2D,
                1,
                layers,
                vk::ImageCreateFlags::CUBE_COMPATIBLE,
            ),
        };
        Self {
            format: format(desc.format),
            image_type,
            extent: vk::Extent3D {
                width: desc.width,
                height: desc.height,
                depth,
            },
            array_layers,
            mip_levels: extent.mip_level_count,
            samples: vk::SampleCountFlags::from_raw(extent.sample_count),
            usage: image_usage(desc),
            flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{TextureUsage, FORMAT_TABLE};

    #[test]
    fn format_column_matches_ash() {
        use ash::vk::Format as F;
        let expect = [
            (TextureFormat::Rgba8Unorm, F::R8G8B8A8_UNORM),
            (TextureFormat::Rgba8UnormSrgb, F::R8G8B8A8_SRGB),
            (TextureFormat::Rgba8Snorm, F::R8G8B8A8_SNORM),
            (TextureFormat::Rgba8Uint, F::R8G8B8A8_UINT),
            (TextureFormat::Bgra8Unorm, F::B8G8R8A8_UNORM),
            (TextureFormat::Bgra8UnormSrgb, F::B8G8R8A8_SRGB),
            (TextureFormat::R8Unorm, F::R8_UNORM),
            (TextureFormat::R8Uint, F::R8_UINT),
            (TextureFormat::Rg8Unorm, F::R8G8_UNORM),
            (TextureFormat::R16Unorm, F::R16_UNORM),
            (TextureFormat::R16Uint, F::R16_UINT),
            (TextureFormat::R16Float, F::R16_SFLOAT),
            (TextureFormat::Rg16Unorm, F::R16G16_UNORM),
            (TextureFormat::Rg16Float, F::R16G16_SFLOAT),
            (TextureFormat::Rgba16Unorm, F::R16G16B16A16_UNORM),
            (TextureFormat::Rgba16Uint, F::R16G16B16A16_UINT),
            (TextureFormat::Rgba16Float, F::R16G16B16A16_SFLOAT),
            (TextureFormat::R32Uint, F::R32_UINT),
            (TextureFormat::R32Float, F::R32_SFLOAT),
            (TextureFormat::Rg32Float, F::R32G32_SFLOAT),
            (TextureFormat::Rgba32Float, F::R32G32B32A32_SFLOAT),
            (TextureFormat::Rgba32Uint, F::R32G32B32A32_UINT),
            (TextureFormat::Rgb10a2Unorm, F::A2B10G10R10_UNORM_PACK32),
            (TextureFormat::Rg11b10Float, F::B10G11R11_UFLOAT_PACK32),
            (TextureFormat::Depth16Unorm, F::D16_UNORM),
            (TextureFormat::Depth24UnormStencil8, F::D24_UNORM_S8_UINT),
            (TextureFormat::Depth32Float, F::D32_SFLOAT),
            (TextureFormat::Depth32FloatStencil8, F::D32_SFLOAT_S8_UINT),
            (TextureFormat::Bc1RgbaUnorm, F::BC1_RGBA_UNORM_BLOCK),
            (TextureFormat::Bc1RgbaUnormSrgb, F::BC1_RGBA_SRGB_BLOCK),
            (TextureFormat::Bc2RgbaUnorm, F::BC2_UNORM_BLOCK),
            (TextureFormat::Bc2RgbaUnormSrgb, F::BC2_SRGB_BLOCK),
            (TextureFormat::Bc3RgbaUnorm, F::BC3_UNORM_BLOCK),
            (TextureFormat::Bc3RgbaUnormSrgb, F::BC3_SRGB_BLOCK),
            (TextureFormat::Bc4RUnorm, F::BC4_UNORM_BLOCK),
            (TextureFormat::Bc4RSnorm, F::BC4_SNORM_BLOCK),
            (TextureFormat::Bc5RgUnorm, F::BC5_UNORM_BLOCK),
            (TextureFormat::Bc5RgSnorm, F::BC5_SNORM_BLOCK),
            (TextureFormat::Bc6hRgbUfloat, F::BC6H_UFLOAT_BLOCK),
            (TextureFormat::Bc6hRgbFloat, F::BC6H_SFLOAT_BLOCK),
            (TextureFormat::Bc7RgbaUnorm, F::BC7_UNORM_BLOCK),
            (TextureFormat::Bc7RgbaUnormSrgb, F::BC7_SRGB_BLOCK),
            (TextureFormat::Etc2Rgb8Unorm, F::ETC2_R8G8B8_UNORM_BLOCK),
            (TextureFormat::Etc2Rgb8UnormSrgb, F::ETC2_R8G8B8_SRGB_BLOCK),
            (TextureFormat::Etc2Rgb8A1Unorm, F::ETC2_R8G8B8A1_UNORM_BLOCK),
            (
                TextureFormat::Etc2Rgb8A1UnormSrgb,
                F::ETC2_R8G8B8A1_SRGB_BLOCK,
            ),
            (TextureFormat::Etc2Rgba8Unorm, F::ETC2_R8G8B8A8_UNORM_BLOCK),
            (
                TextureFormat::Etc2Rgba8UnormSrgb,
                F::ETC2_R8G8B8A8_SRGB_BLOCK,
            ),
            (TextureFormat::Astc4x4Unorm, F::ASTC_4X4_UNORM_BLOCK),
            (TextureFormat::Astc4x4UnormSrgb, F::ASTC_4X4_SRGB_BLOCK),
            (TextureFormat::Astc8x8Unorm, F::ASTC_8X8_UNORM_BLOCK),
            (TextureFormat::Astc8x8UnormSrgb, F::ASTC_8X8_SRGB_BLOCK),
        ];
        assert_eq!(expect.len(), FORMAT_TABLE.len());
        for (f, vk) in expect {
            assert_eq!(format(f), vk, "{f:?}");
        }
    }

    #[test]
    fn usage_columns_match_ash() {
        use ash::vk::ImageUsageFlags as F;
        let expect = [
            (TextureUsage::CopySrc, F::TRANSFER_SRC, F::TRANSFER_SRC),
            (TextureUsage::CopyDst, F::TRANSFER_DST, F::TRANSFER_DST),
            (TextureUsage::TextureBinding, F::SAMPLED, F::SAMPLED),
            (TextureUsage::StorageBinding, F::STORAGE, F::STORAGE),
            (
                TextureUsage::RenderAttachment,
                F::COLOR_ATTACHMENT,
                F::DEPTH_STENCIL_ATTACHMENT,
            ),
        ];
        for (u, colour, depth) in expect {
            let on = |f| image_usage(&TextureDescriptor::new(1, 1, f, &[u]));
            assert_eq!(on(TextureFormat::Rgba8Unorm), colour, "{u:?}");
            assert_eq!(on(TextureFormat::Depth32Float), depth, "{u:?}");
        }
    }

    #[test]
    fn full_aspect_covers_depth_and_stencil() {
        assert_eq!(
            full_aspect(TextureFormat::Depth24UnormStencil8),
            vk::ImageAspectFlags::DEPTH | vk::ImageAspectFlags::STENCIL
        );
        assert_eq!(
            full_aspect(TextureFormat::Bgra8Unorm),
            vk::ImageAspectFlags::COLOR
        );
    }
}
