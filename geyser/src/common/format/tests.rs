//! The format table's consistency: row order, the formats it has, each column's values.

use super::*;

#[test]
fn table_rows_follow_enum_order() {
    for (i, row) in FORMAT_TABLE.iter().enumerate() {
        assert_eq!(row.format as usize, i, "{:?}", row.format);
        assert_eq!(row.format.info(), row);
    }
}

#[test]
fn table_has_the_seed_formats() {
    assert!(
        FORMAT_TABLE
            .iter()
            .filter(|r| r.compression.is_none())
            .count()
            >= 21,
        "only {} formats",
        FORMAT_TABLE.len()
    );
}

#[test]
fn vk_values_are_unique_and_round_trip() {
    for row in FORMAT_TABLE {
        assert_eq!(TextureFormat::from_vk_raw(row.vk_format), Some(row.format));
        if let Some(mtl) = row.mtl_pixel_format {
            assert_eq!(TextureFormat::from_mtl_pixel_format(mtl), Some(row.format));
        }
        #[cfg(feature = "webgpu")]
        if let Some(wgpu) = row.wgpu {
            assert_eq!(TextureFormat::from_wgpu(wgpu), Some(row.format));
        }
    }
}

#[test]
fn names_parse_back() {
    for f in TextureFormat::all() {
        assert_eq!(f.name().parse::<TextureFormat>().unwrap(), f);
    }
    assert_eq!(
        "rgba8-unorm".parse::<TextureFormat>().unwrap(),
        TextureFormat::Rgba8Unorm
    );
    assert!("rgba9".parse::<TextureFormat>().is_err());
}

#[test]
fn dxgi_values_are_the_known_ones() {
    // From dxgiformat.h (DXGI_FORMAT enumeration).
    let known = [
        (TextureFormat::Rgba32Float, 2),
        (TextureFormat::Rgba16Float, 10),
        (TextureFormat::Depth32FloatStencil8, 20),
        (TextureFormat::Rgb10a2Unorm, 24),
        (TextureFormat::Rg11b10Float, 26),
        (TextureFormat::Rgba8Unorm, 28),
        (TextureFormat::Rgba8UnormSrgb, 29),
        (TextureFormat::Depth32Float, 40),
        (TextureFormat::Depth24UnormStencil8, 45),
        (TextureFormat::Depth16Unorm, 55),
        (TextureFormat::R8Unorm, 61),
        (TextureFormat::Bgra8Unorm, 87),
        (TextureFormat::Bgra8UnormSrgb, 91),
    ];
    for (f, dxgi) in known {
        assert_eq!(f.info().dxgi_format, Some(dxgi), "{f:?}");
    }
    // DXGI_FORMAT_BC1_UNORM .. DXGI_FORMAT_BC7_UNORM_SRGB.
    let bc = [
        (TextureFormat::Bc1RgbaUnorm, 71),
        (TextureFormat::Bc1RgbaUnormSrgb, 72),
        (TextureFormat::Bc2RgbaUnorm, 74),
        (TextureFormat::Bc2RgbaUnormSrgb, 75),
        (TextureFormat::Bc3RgbaUnorm, 77),
        (TextureFormat::Bc3RgbaUnormSrgb, 78),
        (TextureFormat::Bc4RUnorm, 80),
        (TextureFormat::Bc4RSnorm, 81),
        (TextureFormat::Bc5RgUnorm, 83),
        (TextureFormat::Bc5RgSnorm, 84),
        (TextureFormat::Bc6hRgbUfloat, 95),
        (TextureFormat::Bc6hRgbFloat, 96),
        (TextureFormat::Bc7RgbaUnorm, 98),
        (TextureFormat::Bc7RgbaUnormSrgb, 99),
    ];
    for (f, dxgi) in bc {
        assert_eq!(f.info().dxgi_format, Some(dxgi), "{f:?}");
    }
}

#[test]
fn dxgi_values_are_unique_and_round_trip() {
    for row in FORMAT_TABLE {
        match row.dxgi_format {
            Some(dxgi) => {
                assert_ne!(dxgi, 0, "{:?} has DXGI_FORMAT_UNKNOWN", row.format);
                assert_eq!(TextureFormat::from_dxgi_format(dxgi), Some(row.format));
            }
            // DXGI has every format but ETC2 and ASTC.
            None => assert!(
                matches!(
                    row.compression,
                    Some(Compression::Etc2 | Compression::AstcLdr)
                ),
                "{:?} lacks its DXGI format",
                row.format
            ),
        }
    }
    assert_eq!(TextureFormat::from_dxgi_format(0), None);
}

#[test]
fn compressed_rows_have_blocks_and_a_family() {
    let families = |c| {
        FORMAT_TABLE
            .iter()
            .filter(|r| r.compression == Some(c))
            .count()
    };
    assert_eq!(families(Compression::Bc), 14);
    assert_eq!(families(Compression::Etc2), 6);
    assert_eq!(families(Compression::AstcLdr), 4);
    for row in FORMAT_TABLE {
        let compressed = row.compression.is_some();
        assert_eq!(compressed, row.block_size != (1, 1), "{:?}", row.format);
        if compressed {
            assert!(matches!(row.block_bytes, 8 | 16), "{:?}", row.format);
            assert_eq!(row.aspect, FormatAspect::Color);
            assert!(row.iosurface_fourcc.is_none() && row.drm_fourcc.is_none());
        }
    }
    assert_eq!(TextureFormat::Astc8x8Unorm.block_size(), (8, 8));
    assert_eq!(TextureFormat::Bc1RgbaUnorm.blocks(61, 37), (16, 10));
    assert_eq!(TextureFormat::Rgba8Unorm.blocks(61, 37), (61, 37));
}

#[test]
fn metal_compressed_values_are_the_known_ones() {
    // MTLPixelFormat values (objc2-metal's MTLPixelFormat constants).
    let known = [
        (TextureFormat::Bc1RgbaUnorm, 130),
        (TextureFormat::Bc3RgbaUnormSrgb, 135),
        (TextureFormat::Bc4RUnorm, 140),
        (TextureFormat::Bc6hRgbFloat, 150),
        (TextureFormat::Bc6hRgbUfloat, 151),
        (TextureFormat::Bc7RgbaUnormSrgb, 153),
        (TextureFormat::Etc2Rgba8Unorm, 178),
        (TextureFormat::Etc2Rgb8Unorm, 180),
        (TextureFormat::Astc4x4UnormSrgb, 186),
        (TextureFormat::Astc8x8UnormSrgb, 194),
        (TextureFormat::Astc4x4Unorm, 204),
        (TextureFormat::Astc8x8Unorm, 212),
    ];
    for (f, mtl) in known {
        assert_eq!(f.info().mtl_pixel_format, Some(mtl), "{f:?}");
    }
}

#[test]
fn iosurface_fourccs_are_the_known_ones() {
    // kCVPixelFormatType_32BGRA is 'BGRA' = 0x42475241; the half-float RGBA one 'RGhA'.
    assert_eq!(
        TextureFormat::Bgra8Unorm.info().iosurface_fourcc,
        Some(0x4247_5241)
    );
    assert_eq!(
        TextureFormat::Rgba16Float.info().iosurface_fourcc,
        Some(0x5247_6841)
    );
    assert_eq!(
        TextureFormat::from_iosurface_fourcc(0x4247_5241),
        Some(TextureFormat::Bgra8Unorm)
    );
    for row in FORMAT_TABLE {
        if let Some(code) = row.iosurface_fourcc {
            // Only formats Metal can also name, and no depth: IOSurfaces back colour.
            assert!(row.mtl_pixel_format.is_some(), "{:?}", row.format);
            assert_eq!(row.aspect, FormatAspect::Color, "{:?}", row.format);
            let linear = TextureFormat::from_iosurface_fourcc(code).unwrap();
            assert_eq!(linear.block_bytes(), row.block_bytes, "{:?}", row.format);
        }
    }
}

#[test]
fn drm_fourcc_prefers_linear() {
    use drm_fourcc::DrmFourcc;
    assert_eq!(
        TextureFormat::from_drm_fourcc(DrmFourcc::Abgr8888),
        Some(TextureFormat::Rgba8Unorm)
    );
    assert_eq!(
        TextureFormat::from_drm_fourcc(DrmFourcc::Argb8888),
        Some(TextureFormat::Bgra8Unorm)
    );
}

#[test]
fn texel_elements_fill_each_colour_texel_exactly() {
    for row in FORMAT_TABLE {
        match row.texels {
            Some(t) => {
                assert_eq!(row.aspect, FormatAspect::Color, "{:?}", row.format);
                assert!(matches!(t.count, 1 | 2 | 4), "{:?}", row.format);
                assert_eq!(t.element.bytes() * u32::from(t.count), row.block_bytes);
            }
            None => assert!(
                row.aspect != FormatAspect::Color || row.compression.is_some(),
                "{:?}",
                row.format
            ),
        }
    }
}
