//! In-process sharing between two Vulkan contexts (separate VkDevices on one GPU), with the
//! validation layer on: pixel round trips for every format, and the error paths.

mod common;

use common::{assert_validation_clean, manager, pattern, same_texels};
use geyser::common::{
    ApiTextureHandle, TextureAspect, TextureDescriptor, TextureExtent, TextureFormat, TextureUsage,
    MAX_DIMENSION,
};
use geyser::vulkan::{aspect_size, VulkanTextureShareManager};
use geyser::{Error, SharedTexture, TextureShareManager};

const COPY: [TextureUsage; 3] = [
    TextureUsage::CopySrc,
    TextureUsage::CopyDst,
    TextureUsage::TextureBinding,
];

fn round_trip(
    a: &VulkanTextureShareManager,
    b: &VulkanTextureShareManager,
    format: TextureFormat,
) -> geyser::Result<()> {
    let desc = TextureDescriptor::new(61, 37, format, &COPY).with_label(format!("rt-{format}"));
    let texture = a.create_texture(&desc)?;
    let mut written = Vec::new();
    for (i, aspect) in TextureAspect::all_of(format).iter().enumerate() {
        let data = pattern(
            format,
            *aspect,
            aspect_size(&texture, *aspect) as usize,
            11 + i as u32,
        );
        a.write_texture(&texture, *aspect, &data)?;
        written.push((*aspect, data));
    }
    let imported = b.import_with(a.export(&texture)?, &desc)?;
    assert!(imported.is_imported());
    for (aspect, want) in &written {
        let got = b.read_texture(&imported, *aspect)?;
        assert!(
            same_texels(format, *aspect, want, &got),
            "{format} {aspect:?}: texels differ after import"
        );
    }
    // And back: context B writes, context A sees it.
    let aspect = TextureAspect::all_of(format)[0];
    let data = pattern(format, aspect, aspect_size(&imported, aspect) as usize, 99);
    b.write_texture(&imported, aspect, &data)?;
    let got = a.read_texture(&texture, aspect)?;
    assert!(
        same_texels(format, aspect, &data, &got),
        "{format} {aspect:?}: write from B not seen in A"
    );
    Ok(())
}

#[test]
fn every_format_round_trips_between_two_contexts_or_is_unsupported() {
    let a = manager();
    let b = manager();
    let caps = a.caps().unwrap();
    let (mut tested, mut unsupported) = (Vec::new(), Vec::new());
    for format in TextureFormat::all() {
        match round_trip(&a, &b, format) {
            Ok(()) => tested.push(format),
            Err(Error::Unsupported { feature, reason }) => {
                // The capability query must agree that these usages are not exportable.
                let support = &caps.format(format).unwrap().opaque_fd;
                assert!(
                    !support.supports(&COPY),
                    "{format}: caps claim support but creation said: {reason}"
                );
                unsupported.push(format!("{format}: {feature}: {reason}"));
            }
            Err(e) => panic!("{format}: {e}"),
        }
    }
    println!(
        "round trip on {}: {} formats tested, {} passed:",
        a.identity().name,
        TextureFormat::all().len(),
        tested.len()
    );
    println!(
        "  passed: {}",
        tested
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  unsupported ({}):", unsupported.len());
    for u in &unsupported {
        println!("    {u}");
    }
    assert!(TextureFormat::all().len() >= 21);
    assert!(
        tested.contains(&TextureFormat::Rgba8Unorm),
        "RGBA8 must be shareable on any Vulkan device"
    );
    assert_validation_clean();
}

#[test]
fn seed_api_shares_through_handles_in_one_manager() {
    let m = manager();
    let desc = TextureDescriptor {
        width: 64,
        height: 32,
        format: TextureFormat::Rgba8Unorm,
        usage: vec![
            TextureUsage::RenderAttachment,
            TextureUsage::TextureBinding,
            TextureUsage::CopySrc,
            TextureUsage::CopyDst,
        ],
        label: Some("MyTexture".to_string()),
    };
    let texture = m.create_shareable_texture(&desc).unwrap();
    let handle = m.export_texture(texture.as_ref()).unwrap();
    let imported = m.import_texture(handle, &desc).unwrap();
    m.release_texture_handle(handle).unwrap();
    assert_eq!(m.open_handles(), 0);
    // The import outlives the released handle and aliases the original's memory.
    let (t, i) = (
        texture
            .as_any()
            .downcast_ref::<geyser::vulkan::VulkanTexture>()
            .unwrap(),
        imported
            .as_any()
            .downcast_ref::<geyser::vulkan::VulkanTexture>()
            .unwrap(),
    );
    let data = pattern(
        desc.format,
        TextureAspect::Color,
        aspect_size(t, TextureAspect::Color) as usize,
        5,
    );
    m.write_texture(t, TextureAspect::Color, &data).unwrap();
    assert_eq!(m.read_texture(i, TextureAspect::Color).unwrap(), data);
    assert_validation_clean();
}

#[test]
fn mismatched_descriptor_on_import_is_rejected() {
    let a = manager();
    let desc = TextureDescriptor::new(32, 32, TextureFormat::Rgba8Unorm, &COPY);
    let t = a.create_texture(&desc).unwrap();
    let cases: [(&str, TextureDescriptor); 3] = [
        (
            "extent",
            TextureDescriptor {
                width: 33,
                ..desc.clone()
            },
        ),
        (
            "format",
            TextureDescriptor {
                format: TextureFormat::Bgra8Unorm,
                ..desc.clone()
            },
        ),
        (
            "usage",
            TextureDescriptor {
                usage: vec![TextureUsage::CopySrc],
                ..desc.clone()
            },
        ),
    ];
    for (field, wrong) in cases {
        match a.import_with(a.export(&t).unwrap(), &wrong) {
            Err(Error::DescriptorMismatch { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected DescriptorMismatch, got {other:?}"),
        }
    }
    // Through the trait too.
    let h = a.export_texture(&t).unwrap();
    let wrong = TextureDescriptor {
        height: 31,
        ..desc.clone()
    };
    assert!(matches!(
        a.import_texture(h, &wrong),
        Err(Error::DescriptorMismatch { .. })
    ));
    a.release_texture_handle(h).unwrap();
    assert_validation_clean();
}

#[test]
fn bad_extents_fail_before_any_vulkan_call() {
    let a = manager();
    for (w, h) in [(0, 16), (16, 0), (MAX_DIMENSION + 1, 16)] {
        let desc = TextureDescriptor::new(w, h, TextureFormat::Rgba8Unorm, &COPY);
        match a.create_texture(&desc) {
            Err(Error::InvalidDescriptor { reason, .. }) => {
                assert!(reason.contains("extent"), "{reason}")
            }
            other => panic!("{w}x{h}: expected InvalidDescriptor, got {other:?}"),
        }
    }
    // Within our bound but over the device's limit: refused before any object is created.
    let max = a.caps().unwrap().max_image_dimension_2d;
    if max < MAX_DIMENSION {
        let desc = TextureDescriptor::new(max + 1, 16, TextureFormat::Rgba8Unorm, &COPY);
        match a.create_texture(&desc) {
            Err(Error::InvalidDescriptor { reason, .. }) => {
                assert!(reason.contains("limit"), "{reason}")
            }
            other => panic!("expected InvalidDescriptor, got {other:?}"),
        }
    }
    assert_validation_clean();
}

#[test]
fn unknown_and_foreign_handles_are_errors_not_panics() {
    let a = manager();
    let b = manager();
    let desc = TextureDescriptor::new(8, 8, TextureFormat::Rgba8Unorm, &COPY);
    let t = a.create_shareable_texture(&desc).unwrap();
    let h = a.export_texture(t.as_ref()).unwrap();
    assert!(matches!(
        b.release_texture_handle(h),
        Err(Error::UnknownHandle { .. })
    ));
    assert!(matches!(
        b.import_texture(h, &desc),
        Err(Error::UnknownHandle { .. })
    ));
    a.release_texture_handle(h).unwrap();
    assert!(matches!(
        a.release_texture_handle(h),
        Err(Error::UnknownHandle { .. })
    ));
    let never = ApiTextureHandle {
        manager: h.manager,
        id: 9999,
    };
    assert!(matches!(
        a.import_texture(never, &desc),
        Err(Error::UnknownHandle { .. })
    ));
    // A texture of another context cannot be exported through this one.
    assert!(matches!(
        b.export_texture(t.as_ref()),
        Err(Error::WrongTexture(_))
    ));
    assert_validation_clean();
}

#[test]
fn exports_from_another_device_are_refused() {
    let a = manager();
    let desc = TextureDescriptor::new(8, 8, TextureFormat::Rgba8Unorm, &COPY);
    let t = a.create_texture(&desc).unwrap();
    let mut e = a.export(&t).unwrap();
    e.info.device_uuid[0] ^= 0xff;
    assert!(matches!(a.import(e), Err(Error::DeviceMismatch { .. })));
    let mut e = a.export(&t).unwrap();
    e.info.allocation_size = 16; // claims less memory than the image needs
    assert!(matches!(a.import(e), Err(Error::InvalidArgument { .. })));
    assert_validation_clean();
}

#[test]
fn gpu_pattern_written_in_one_context_is_probed_in_another() {
    use geyser_harness::pattern::{PatternWriter, ProbeReader};
    let a = manager();
    let b = manager();
    for format in [
        TextureFormat::Rgba8Unorm,
        TextureFormat::R8Unorm,
        TextureFormat::Rgba16Float,
        TextureFormat::Rgba32Float,
    ] {
        let desc = TextureDescriptor::new(67, 45, format, &COPY);
        let t = a.create_texture(&desc).unwrap();
        let imported = b.import(a.export(&t).unwrap()).unwrap();
        let writer = PatternWriter::new(&a, desc.tight_size()).unwrap();
        let reader = ProbeReader::new(&b).unwrap();
        for frame in [0u64, 1, 2, 1_000_003] {
            writer.write(&t, frame).unwrap();
            assert!(
                reader.check(&imported, frame).unwrap().ok(),
                "{format} frame {frame}"
            );
            // The probe must be able to fail: the previous frame's word does not match.
            assert!(
                !reader.check(&imported, frame + 1).unwrap().ok(),
                "{format} frame {frame} vs {}",
                frame + 1
            );
        }
        // Depth formats and missing usages are refused, not mis-written.
        let no_copy = TextureDescriptor::new(8, 8, format, &[TextureUsage::TextureBinding]);
        let t2 = a.create_texture(&no_copy).unwrap();
        assert!(matches!(
            writer.write(&t2, 0),
            Err(Error::InvalidArgument { .. })
        ));
    }
    assert_validation_clean();
}

#[test]
fn pattern_writer_draws_every_texel_of_the_picture_not_only_the_probes() {
    use geyser_harness::frame_image::frame_image;
    use geyser_harness::pattern::PatternWriter;
    let a = manager();
    for (w, h, format) in [
        (1920u32, 1080u32, TextureFormat::Rgba8Unorm),
        (333, 170, TextureFormat::Rgba16Float),
        (31, 7, TextureFormat::R8Unorm),
        (5, 3, TextureFormat::Bgra8Unorm),
    ] {
        let desc = TextureDescriptor::new(w, h, format, &COPY);
        let t = a.create_texture(&desc).unwrap();
        let writer = PatternWriter::picture(&a, desc.tight_size()).unwrap();
        for frame in [5u64, 6, 12_345_678] {
            let start = std::time::Instant::now();
            writer.write(&t, frame).unwrap();
            let took = start.elapsed();
            let bytes = a.read_texture(&t, TextureAspect::Color).unwrap();
            let want = frame_image(frame, w, h, format.block_bytes());
            assert!(
                bytes == want,
                "{w}x{h} {format} frame {frame}: texels differ from the picture"
            );
            println!("{w}x{h} {format}: pattern write {took:?}");
        }
    }
    // Every layer of an array gets the picture.
    let shape = TextureExtent {
        depth_or_array_layers: 3,
        ..Default::default()
    };
    let desc = TextureDescriptor::new(64, 48, TextureFormat::Rgba8Unorm, &COPY);
    let t = a.create_texture_with(&desc, &shape).unwrap();
    let writer = PatternWriter::picture(&a, desc.tight_size()).unwrap();
    writer.write(&t, 9).unwrap();
    let bytes = a.read_texture(&t, TextureAspect::Color).unwrap();
    let one = frame_image(9, 64, 48, 4);
    assert!(bytes.chunks(one.len()).all(|layer| layer == one));
    assert_validation_clean();
}

#[test]
fn devices_are_selected_by_index_name_uuid_or_pci_and_a_missing_one_lists_the_present() {
    use geyser::common::uuid_string;
    use geyser::vulkan::{enumerate_devices, ContextOptions, DeviceSelector, Validation};
    let devices = enumerate_devices().unwrap();
    assert!(!devices.is_empty());
    let first = &devices[0].identity;
    let open = |sel: DeviceSelector| {
        VulkanTextureShareManager::create(&ContextOptions {
            device: sel,
            validation: Validation::Required,
        })
    };
    let by_index = open(DeviceSelector::parse("0")).unwrap();
    assert_eq!(by_index.identity().device_uuid, first.device_uuid);
    let name_part = first.name.split_whitespace().next().unwrap().to_uppercase(); // case-insensitive
    assert_eq!(
        open(DeviceSelector::parse(&name_part))
            .unwrap()
            .identity()
            .name,
        first.name
    );
    let by_uuid = open(DeviceSelector::parse(&uuid_string(&first.device_uuid))).unwrap();
    assert_eq!(by_uuid.identity().device_uuid, first.device_uuid);
    if let Some(pci) = &first.pci_bus {
        assert_eq!(
            open(DeviceSelector::parse(&format!("pci:{pci}")))
                .unwrap()
                .identity()
                .pci_bus
                .as_ref(),
            Some(pci)
        );
    }
    for missing in [
        "99",
        "no-such-gpu",
        "pci:ffff:ff:1f.7",
        "00000000-0000-0000-0000-000000000001",
    ] {
        match open(DeviceSelector::parse(missing)) {
            Err(e @ Error::NoDevice { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&first.name),
                    "the error lists the devices present: {msg}"
                );
            }
            other => panic!("{missing}: expected NoDevice, got {other:?}"),
        }
    }
    assert_validation_clean();
}
