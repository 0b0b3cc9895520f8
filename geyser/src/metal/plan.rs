//! What an IOSurface-backed Metal texture needs, decided without Metal: the pixel format of
//! both APIs (from [`FORMAT_TABLE`](crate::common::FORMAT_TABLE)), the surface's row pitch and
//! size, and the `MTLTextureUsage` bits. Pure logic, compiled and unit-tested on every platform.

use crate::common::{
    usage_column, TextureDescriptor, TextureDimension, TextureExtent, TextureUsage,
};
use crate::{Error, Result};

/// Row alignment used for IOSurface rows (the platform may raise it; the Apple backend asks
/// `IOSurfaceAlignProperty`). 64 bytes satisfies every Apple GPU's linear-texture alignment.
pub const ROW_ALIGNMENT: u64 = 64;

/// The IOSurface and Metal parameters for one descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SurfacePlan {
    /// `MTLPixelFormat` raw value.
    pub mtl_pixel_format: u64,
    /// `kIOSurfacePixelFormat` fourcc.
    pub iosurface_fourcc: u32,
    /// `kIOSurfaceBytesPerElement`.
    pub bytes_per_element: u32,
    /// `kIOSurfaceBytesPerRow` (before the platform's own alignment).
    pub bytes_per_row: u64,
    /// Bytes the surface needs at that row pitch.
    pub alloc_size: u64,
    /// `MTLTextureUsage` bits for the descriptor's usages.
    pub mtl_usage: u64,
}

/// Plans an IOSurface-backed texture: [`Error::InvalidDescriptor`] when the descriptor is bad,
/// [`Error::Unsupported`] when IOSurface cannot back it (depth/stencil and integer formats,
/// anything but a single-level, single-sample 2D texture).
pub fn plan(desc: &TextureDescriptor, extent: &TextureExtent) -> Result<SurfacePlan> {
    desc.validate_with(extent)?;
    let info = desc.format.info();
    let (Some(mtl_pixel_format), Some(iosurface_fourcc)) =
        (info.mtl_pixel_format, info.iosurface_fourcc)
    else {
        return Err(Error::unsupported(
            format!("{} in an IOSurface", desc.format),
            "IOSurface backs colour formats with a CoreVideo pixel format only (no depth/stencil \
             or integer formats); use a format with an IOSurface fourcc in the format table",
        ));
    };
    let plain = *extent == TextureExtent::default();
    if !plain || extent.dimension != TextureDimension::D2 {
        return Err(Error::unsupported(
            "IOSurface texture extent",
            format!(
                "an IOSurface backs one 2D level with one sample and one layer; got {extent:?}"
            ),
        ));
    }
    let bytes_per_element = info.block_bytes;
    let row = u64::from(desc.width) * u64::from(bytes_per_element);
    let bytes_per_row = row.div_ceil(ROW_ALIGNMENT) * ROW_ALIGNMENT;
    let alloc_size = bytes_per_row * u64::from(desc.height);
    Ok(SurfacePlan {
        mtl_pixel_format,
        iosurface_fourcc,
        bytes_per_element,
        bytes_per_row,
        alloc_size,
        mtl_usage: mtl_usage(&desc.usage),
    })
}

/// `MTLTextureUsage` bits for Geyser usages (the `metal` column of
/// [`USAGE_TABLE`](crate::common::USAGE_TABLE); copies need no bit in Metal).
pub fn mtl_usage(usages: &[TextureUsage]) -> u64 {
    usage_column(usages, |u| u.metal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::TextureFormat;

    fn desc(format: TextureFormat, usage: &[TextureUsage]) -> TextureDescriptor {
        TextureDescriptor::new(100, 10, format, usage)
    }

    #[test]
    fn bgra8_plan_has_aligned_rows_and_the_known_values() {
        let p = plan(
            &desc(TextureFormat::Bgra8Unorm, &[TextureUsage::RenderAttachment]),
            &TextureExtent::default(),
        )
        .unwrap();
        assert_eq!(p.mtl_pixel_format, 80); // MTLPixelFormatBGRA8Unorm
        assert_eq!(p.iosurface_fourcc, u32::from_be_bytes(*b"BGRA"));
        assert_eq!(p.bytes_per_element, 4);
        assert_eq!(p.bytes_per_row, 448); // 400 rounded up to 64
        assert_eq!(p.alloc_size, 4480);
        assert_eq!(p.mtl_usage, 4); // MTLTextureUsageRenderTarget
    }

    #[test]
    fn depth_and_integer_formats_are_unsupported() {
        for f in [TextureFormat::Depth32Float, TextureFormat::Rgba8Uint] {
            let err = plan(
                &desc(f, &[TextureUsage::TextureBinding]),
                &TextureExtent::default(),
            )
            .unwrap_err();
            assert!(matches!(err, Error::Unsupported { .. }), "{f:?}: {err}");
        }
    }

    #[test]
    fn layered_or_mipmapped_extents_are_unsupported() {
        let extent = TextureExtent {
            mip_level_count: 2,
            ..TextureExtent::default()
        };
        let err = plan(
            &desc(TextureFormat::Rgba8Unorm, &[TextureUsage::TextureBinding]),
            &extent,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    }

    #[test]
    fn bad_descriptors_fail_before_any_platform_call() {
        let mut d = desc(TextureFormat::Rgba8Unorm, &[TextureUsage::TextureBinding]);
        d.width = 0;
        assert!(matches!(
            plan(&d, &TextureExtent::default()),
            Err(Error::InvalidDescriptor { .. })
        ));
    }

    #[test]
    fn usages_map_to_metal_bits() {
        assert_eq!(
            mtl_usage(&[TextureUsage::StorageBinding, TextureUsage::CopySrc]),
            1 | 2 // MTLTextureUsageShaderRead | MTLTextureUsageShaderWrite
        );
        assert_eq!(mtl_usage(&[TextureUsage::CopyDst]), 0);
    }

    #[cfg(all(feature = "metal", target_vendor = "apple"))]
    #[test]
    fn usage_column_matches_objc2_metal() {
        use objc2_metal::MTLTextureUsage as M;
        let bits = |m: M| m.bits() as u64;
        assert_eq!(
            mtl_usage(&[TextureUsage::TextureBinding]),
            bits(M::ShaderRead)
        );
        assert_eq!(
            mtl_usage(&[TextureUsage::StorageBinding]),
            bits(M::ShaderRead | M::ShaderWrite)
        );
        assert_eq!(
            mtl_usage(&[TextureUsage::RenderAttachment]),
            bits(M::RenderTarget)
        );
        assert_eq!(
            mtl_usage(&[TextureUsage::CopySrc, TextureUsage::CopyDst]),
            0
        );
    }
}
