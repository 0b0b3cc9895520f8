//! Texture arrays, cube maps, 3D textures and mip chains shared between two Vulkan contexts
//! (separate VkDevices), validation layer on: every layer, face, slice and level is written in
//! one context and read back in the other, both ways, for colour, depth/stencil and
//! compressed formats. Shapes or formats the device cannot share must be refused with
//! `Unsupported` saying why, and only those.

mod common;

use common::shapes::{compare_packed, packed_pattern, SHAPES};
use common::{assert_validation_clean, manager, pattern, same_texels};
use geyser::common::{TextureAspect, TextureFormat, TextureLayout, TextureUsage};
use geyser::vulkan::VulkanTextureShareManager;
use geyser::Error;

const COPY: [TextureUsage; 3] = [
    TextureUsage::CopySrc,
    TextureUsage::CopyDst,
    TextureUsage::TextureBinding,
];

/// Formats covering each kind: 8-bit and float colour, single-channel, depth, depth/stencil,
/// and two compressed families.
const FORMATS: [TextureFormat; 9] = [
    TextureFormat::Rgba8Unorm,
    TextureFormat::Rgba16Float,
    TextureFormat::R8Unorm,
    TextureFormat::Depth32Float,
    TextureFormat::Depth24UnormStencil8,
    TextureFormat::Bc1RgbaUnorm,
    TextureFormat::Bc7RgbaUnormSrgb,
    TextureFormat::Etc2Rgb8Unorm,
    TextureFormat::Astc4x4Unorm,
];

/// A writes every level (level by level), B imports and reads all at once; then B writes
/// everything at once and A reads it level by level.
fn share(
    a: &VulkanTextureShareManager,
    b: &VulkanTextureShareManager,
    shape: &common::shapes::Shape,
    format: TextureFormat,
) -> geyser::Result<()> {
    let desc = shape.descriptor(format, &COPY);
    let extent = shape.extent;
    let texture = a.create_texture_with(&desc, &extent)?;
    let want = packed_pattern(&desc, &extent, 7);
    let layout = TextureLayout::new(&desc, &extent);
    for r in layout.regions() {
        a.write_texture_level(&texture, r.aspect, r.mip, &want[r.range()])?;
    }
    let imported = b.import_with(a.export(&texture)?, &desc)?;
    let got = b.read_packed(&imported)?;
    compare_packed(&desc, &extent, &want, &got)
        .unwrap_or_else(|e| panic!("{} {format}, A -> B: {e}", shape.name));
    let back = packed_pattern(&desc, &extent, 8);
    b.write_packed(&imported, &back)?;
    for r in layout.regions() {
        let level = a.read_texture_level(&texture, r.aspect, r.mip)?;
        assert!(
            same_texels(format, r.aspect, &back[r.range()], &level),
            "{} {format}, B -> A: {:?} level {} differs",
            shape.name,
            r.aspect,
            r.mip
        );
    }
    Ok(())
}

#[test]
fn arrays_cubes_3d_and_mip_chains_share_every_subresource_between_two_contexts() {
    let a = manager();
    let b = manager();
    let (mut passed, mut unsupported) = (Vec::new(), Vec::new());
    for shape in &SHAPES {
        for format in FORMATS {
            match share(&a, &b, shape, format) {
                Ok(()) => passed.push(format!("{} {format}", shape.name)),
                Err(Error::Unsupported { feature, reason }) => {
                    unsupported.push(format!("{} {format}: {feature}: {reason}", shape.name))
                }
                Err(e) => panic!("{} {format}: {e}", shape.name),
            }
        }
    }
    println!("on {}: {} passed", a.identity().name, passed.len());
    for p in &passed {
        println!("  passed: {p}");
    }
    for u in &unsupported {
        println!("  unsupported: {u}");
    }
    // Every Vulkan device shares colour arrays, cubes, 3D textures and mip chains.
    for shape in &SHAPES {
        for format in [TextureFormat::Rgba8Unorm, TextureFormat::R8Unorm] {
            let name = format!("{} {format}", shape.name);
            assert!(passed.contains(&name), "{name} must share");
        }
    }
    assert_validation_clean();
}

#[test]
fn compressed_formats_round_trip_block_data_or_say_which_feature_is_missing() {
    let a = manager();
    let b = manager();
    let caps = a.caps().unwrap();
    let (mut passed, mut missing) = (Vec::new(), Vec::new());
    for format in TextureFormat::all().filter(|f| f.is_compressed()) {
        // 4x4 blocks; 70x42 is not a multiple of 8 either, so edge blocks are partial.
        let desc = geyser::common::TextureDescriptor::new(70, 42, format, &COPY);
        let blocks = pattern(
            format,
            TextureAspect::Color,
            desc.tight_size() as usize,
            format as u32,
        );
        let result = a.create_texture(&desc).and_then(|t| {
            a.write_texture(&t, TextureAspect::Color, &blocks)?;
            let i = b.import_with(a.export(&t)?, &desc)?;
            b.read_texture(&i, TextureAspect::Color)
        });
        let family = format.compression().unwrap();
        match result {
            Ok(got) => {
                assert_eq!(got, blocks, "{format}: block data changed");
                passed.push(format);
            }
            Err(Error::Unsupported { reason, .. }) => {
                let offered = &caps.format(format).unwrap().opaque_fd;
                assert!(!offered.supports(&COPY), "{format}: caps say yes: {reason}");
                missing.push(format!("{format}: {reason}"));
            }
            Err(e) => panic!("{format} ({family:?}): {e}"),
        }
    }
    println!(
        "compressed on {}: {} passed ({}), {} unsupported",
        a.identity().name,
        passed.len(),
        passed
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        missing.len()
    );
    for m in &missing {
        println!("  {m}");
    }
    assert_validation_clean();
}

#[test]
fn a_mip_level_past_the_chain_is_an_argument_error() {
    let a = manager();
    let shape = &SHAPES[0];
    let desc = shape.descriptor(TextureFormat::Rgba8Unorm, &COPY);
    let t = a.create_texture_with(&desc, &shape.extent).unwrap();
    let levels = shape.extent.mip_level_count;
    assert!(matches!(
        a.read_texture_level(&t, TextureAspect::Color, levels),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        a.write_texture_level(&t, TextureAspect::Color, 0, &[0; 3]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        a.write_packed(&t, &[0; 3]),
        Err(Error::InvalidArgument { .. })
    ));
    assert_validation_clean();
}
