//! Vulkan <-> wgpu in one process, validation layer on: every format with a wgpu equivalent
//! round-trips pixel for pixel in both directions (or is refused with `Unsupported` naming the
//! reason), and descriptors wgpu cannot represent are typed errors, not panics in wgpu.
#![cfg(feature = "webgpu")]

mod common;

use common::shapes::{compare_packed, packed_pattern, SHAPES};
use common::wgpu_copy::{wgpu_can_copy, wgpu_read, wgpu_read_level, wgpu_write, wgpu_write_level};
use common::{assert_validation_clean, manager, pattern, same_texels};
use geyser::common::{
    TextureAspect, TextureDescriptor, TextureExtent, TextureFormat, TextureLayout, TextureUsage,
};
use geyser::vulkan::{aspect_size, ContextOptions, DeviceSelector, Validation, VulkanTexture};
use geyser::webgpu::{wgpu, WgpuTextureShareManager};
use geyser::{Error, TextureShareManager};

/// The live-object check counts process-wide: the tests of this file run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const COPY: [TextureUsage; 3] = [
    TextureUsage::CopySrc,
    TextureUsage::CopyDst,
    TextureUsage::TextureBinding,
];

fn wgpu_manager() -> WgpuTextureShareManager {
    let options = ContextOptions {
        device: DeviceSelector::from_env(),
        validation: Validation::Required,
    };
    WgpuTextureShareManager::create(&options).expect("create a wgpu device through Geyser")
}

/// Vulkan writes, wgpu reads; then wgpu writes, Vulkan reads. Returns the aspects verified.
fn round_trip(
    v: &geyser::vulkan::VulkanTextureShareManager,
    w: &WgpuTextureShareManager,
    format: TextureFormat,
) -> geyser::Result<Vec<String>> {
    // WebGPU sizes compressed textures in whole blocks (8x8 covers every family here).
    let (w_, h_) = if format.is_compressed() {
        (64, 40)
    } else {
        (61, 37)
    };
    let desc =
        TextureDescriptor::new(w_, h_, format, &COPY).with_label(format!("wgpu-rt-{format}"));
    let mut checked = Vec::new();
    // Vulkan -> wgpu.
    let vt: VulkanTexture = v.create_texture(&desc)?;
    let aspects = TextureAspect::all_of(format);
    let mut written = Vec::new();
    for (i, aspect) in aspects.iter().enumerate() {
        let data = pattern(
            format,
            *aspect,
            aspect_size(&vt, *aspect) as usize,
            5 + i as u32,
        );
        v.write_texture(&vt, *aspect, &data)?;
        written.push((*aspect, data));
    }
    let wt = w.import_with(v.export(&vt)?, &desc)?;
    for (aspect, want) in &written {
        if wgpu_can_copy(format, *aspect, false) {
            let got = wgpu_read(w, &wt, *aspect);
            assert!(
                same_texels(format, *aspect, want, &got),
                "{format} {aspect:?}: Vulkan -> wgpu texels differ"
            );
            checked.push(format!("vk->wgpu {aspect:?}"));
        }
    }
    // wgpu -> Vulkan, on a texture wgpu's manager created.
    let wt2 = w.create_texture(&desc)?;
    let mut written = Vec::new();
    for (i, aspect) in aspects.iter().enumerate() {
        if wgpu_can_copy(format, *aspect, true) {
            let data = pattern(
                format,
                *aspect,
                aspect_size(wt2.vulkan(), *aspect) as usize,
                40 + i as u32,
            );
            wgpu_write(w, &wt2, *aspect, &data);
            written.push((*aspect, data));
        }
    }
    let vt2 = v.import_with(w.export(&wt2)?, &desc)?;
    for (aspect, want) in &written {
        let got = v.read_texture(&vt2, *aspect)?;
        assert!(
            same_texels(format, *aspect, want, &got),
            "{format} {aspect:?}: wgpu -> Vulkan texels differ"
        );
        checked.push(format!("wgpu->vk {aspect:?}"));
    }
    Ok(checked)
}

#[test]
fn every_format_round_trips_between_vulkan_and_wgpu_or_is_unsupported() {
    let _serial = serial();
    let v = manager();
    let w = wgpu_manager();
    let (mut passed, mut unsupported) = (Vec::new(), Vec::new());
    for format in TextureFormat::all() {
        match round_trip(&v, &w, format) {
            Ok(checked) => {
                assert!(!checked.is_empty(), "{format}: nothing verified");
                passed.push(format!("{format} [{}]", checked.join(", ")));
            }
            Err(Error::Unsupported { feature, reason }) => {
                unsupported.push(format!("{feature}: {reason}"))
            }
            Err(e) => panic!("{format}: {e}"),
        }
    }
    println!(
        "Vulkan <-> wgpu on {}: {} formats, {} passed",
        w.identity().name,
        TextureFormat::all().len(),
        passed.len()
    );
    for p in &passed {
        println!("  pass: {p}");
    }
    for u in &unsupported {
        println!("  unsupported: {u}");
    }
    assert!(
        passed.iter().any(|p| p.starts_with("Rgba8Unorm ")),
        "RGBA8 must work"
    );
    assert!(passed.len() >= 20, "only {} formats passed", passed.len());
    assert_validation_clean();
}

/// Vulkan writes every level; wgpu reads every level; wgpu writes every level; Vulkan reads
/// them all back.
fn share_shape(
    v: &geyser::vulkan::VulkanTextureShareManager,
    w: &WgpuTextureShareManager,
    shape: &common::shapes::Shape,
    format: TextureFormat,
) -> geyser::Result<()> {
    let desc = shape.descriptor(format, &COPY);
    let extent = shape.extent;
    let vt = v.create_texture_with(&desc, &extent)?;
    let want = packed_pattern(&desc, &extent, 21);
    v.write_packed(&vt, &want)?;
    let wt = w.import_with(v.export(&vt)?, &desc)?;
    let layout = TextureLayout::new(&desc, &extent);
    let mut back = want.clone();
    let fresh = packed_pattern(&desc, &extent, 22);
    for r in layout.regions() {
        if wgpu_can_copy(format, r.aspect, false) {
            let got = wgpu_read_level(w, &wt, r.aspect, r.mip);
            assert!(
                same_texels(format, r.aspect, &want[r.range()], &got),
                "{} {format}: Vulkan -> wgpu {:?} level {} differs",
                shape.name,
                r.aspect,
                r.mip
            );
        }
        if wgpu_can_copy(format, r.aspect, true) {
            wgpu_write_level(w, &wt, r.aspect, r.mip, &fresh[r.range()]);
            back[r.range()].copy_from_slice(&fresh[r.range()]);
        }
    }
    let got = v.read_packed(&vt)?;
    compare_packed(&desc, &extent, &back, &got)
        .unwrap_or_else(|e| panic!("{} {format}, wgpu -> Vulkan: {e}", shape.name));
    Ok(())
}

#[test]
fn arrays_cubes_3d_and_mips_share_every_subresource_with_wgpu() {
    let _serial = serial();
    let v = manager();
    let w = wgpu_manager();
    let mut passed = Vec::new();
    for shape in &SHAPES {
        for format in [
            TextureFormat::Rgba8Unorm,
            TextureFormat::Rgba16Float,
            TextureFormat::Depth32Float,
            TextureFormat::Bc1RgbaUnorm,
        ] {
            match share_shape(&v, &w, shape, format) {
                Ok(()) => passed.push(format!("{} {format}", shape.name)),
                Err(Error::Unsupported { feature, reason }) => {
                    println!(
                        "  unsupported: {} {format}: {feature}: {reason}",
                        shape.name
                    )
                }
                Err(e) => panic!("{} {format}: {e}", shape.name),
            }
        }
    }
    println!(
        "Vulkan <-> wgpu shapes on {}: {passed:?}",
        w.identity().name
    );
    for shape in &SHAPES {
        let name = format!("{} Rgba8Unorm", shape.name);
        assert!(passed.contains(&name), "{name} must share with wgpu");
    }
    assert_validation_clean();
}

#[test]
fn descriptors_wgpu_cannot_represent_are_typed_errors() {
    let _serial = serial();
    let v = manager();
    let w = wgpu_manager();
    // Multisampled with copy usages: Vulkan can share it, WebGPU cannot represent it.
    let ms_usage = [
        TextureUsage::TextureBinding,
        TextureUsage::CopySrc,
        TextureUsage::RenderAttachment,
    ];
    let ms_desc = TextureDescriptor::new(16, 16, TextureFormat::Rgba8Unorm, &ms_usage);
    let ms = TextureExtent {
        sample_count: 4,
        ..Default::default()
    };
    let created = w.create_texture_with(&ms_desc, &ms);
    assert!(
        matches!(created, Err(Error::Unsupported { .. })),
        "{:?}",
        created.err()
    );
    if let Ok(vt) = v.create_texture_with(&ms_desc, &ms) {
        let imported = w.import_with(v.export(&vt).unwrap(), &ms_desc);
        assert!(
            matches!(imported, Err(Error::Unsupported { .. })),
            "{:?}",
            imported.err()
        );
    }
    // The same texture as a single-sample render target is fine.
    w.create_texture(&ms_desc).unwrap();
    // Storage on every format: wherever Vulkan can export it, wgpu either represents it or
    // refuses with `Unsupported` (never a wgpu validation error or panic).
    let storage = [TextureUsage::CopySrc, TextureUsage::StorageBinding];
    for format in TextureFormat::all() {
        let desc = TextureDescriptor::new(16, 16, format, &storage);
        let Ok(vt) = v.create_texture(&desc) else {
            continue;
        };
        match w.import_with(v.export(&vt).unwrap(), &desc) {
            Ok(t) => assert_eq!(t.texture().format(), format.to_wgpu().unwrap()),
            Err(Error::Unsupported { reason, .. }) => {
                println!("{format} storage refused: {reason}")
            }
            Err(e) => panic!("{format}: unexpected error {e}"),
        }
    }

    // A mismatched descriptor on import is a DescriptorMismatch, as for Vulkan.
    let desc = TextureDescriptor::new(32, 32, TextureFormat::Rgba8Unorm, &COPY);
    let vt = v.create_texture(&desc).unwrap();
    let other = TextureDescriptor::new(32, 16, TextureFormat::Rgba8Unorm, &COPY);
    assert!(matches!(
        w.import_with(v.export(&vt).unwrap(), &other),
        Err(Error::DescriptorMismatch { .. })
    ));
    // A Vulkan texture handed to the wgpu manager is a WrongTexture.
    assert!(matches!(w.export_texture(&vt), Err(Error::WrongTexture(_))));
    assert_validation_clean();
}

#[test]
fn seed_api_works_on_the_wgpu_manager_and_textures_are_freed() {
    let _serial = serial();
    let w = wgpu_manager();
    let before = geyser::vulkan::diagnostics::live_objects();
    {
        let desc = TextureDescriptor {
            width: 64,
            height: 64,
            format: TextureFormat::Rgba8Unorm,
            usage: vec![TextureUsage::RenderAttachment, TextureUsage::TextureBinding],
            label: Some("seed".to_string()),
        };
        let texture = w.create_shareable_texture(&desc).unwrap();
        assert_eq!(texture.backend(), geyser::common::Backend::WebGpu);
        let handle = w.export_texture(texture.as_ref()).unwrap();
        let imported = w.import_texture(handle, &desc).unwrap();
        w.release_texture_handle(handle).unwrap();
        assert!(imported.is_imported());
        // Render into the created texture and clear it through wgpu, bracketed.
        let t = texture
            .as_any()
            .downcast_ref::<geyser::webgpu::WgpuTexture>()
            .unwrap();
        w.begin_access(t, &[]).unwrap();
        let view = t.texture().create_view(&Default::default());
        let mut enc = w.device().create_command_encoder(&Default::default());
        drop(enc.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: None,
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::RED),
                    store: wgpu::StoreOp::Store,
                },
            })],
            ..Default::default()
        }));
        w.queue().submit([enc.finish()]);
        let done = w.end_access(t, None).unwrap();
        w.wait_for_submission(done).unwrap();
    }
    w.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    assert_eq!(
        geyser::vulkan::diagnostics::live_objects(),
        before,
        "wgpu textures leaked Vulkan objects"
    );
    assert_validation_clean();
}

#[test]
fn wgpu_pattern_and_probe_agree_with_the_vulkan_ones_and_can_fail() {
    let _serial = serial();
    use geyser_harness::pattern::ProbeReader;
    use geyser_harness::wgpu_pattern::{WgpuPatternWriter, WgpuProbe};
    let v = manager();
    let w = wgpu_manager();
    let desc = geyser_harness::demo::demo_descriptor(53, 29, TextureFormat::Rgba8Unorm);
    let t = w.create_texture(&desc).unwrap();
    let probe = WgpuProbe::new(&w, std::slice::from_ref(&t)).unwrap();
    let reader = ProbeReader::new(&v).unwrap();
    let imported = v.import_with(w.export(&t).unwrap(), &desc).unwrap();
    for frame in [0u64, 7, 1_000_003] {
        w.begin_access(&t, &[]).unwrap();
        let mut enc = w.device().create_command_encoder(&Default::default());
        WgpuPatternWriter
            .record(&mut enc, t.texture(), frame)
            .unwrap();
        w.queue().submit([enc.finish()]);
        let sub = probe.submit(&w, 0).unwrap();
        let done = w.end_access(&t, None).unwrap();
        w.wait_for_submission(done).unwrap();
        assert!(
            probe.result(&w, sub, frame).unwrap().ok(),
            "wgpu probe, frame {frame}"
        );
        // The same submission checked against the next frame's word must fail.
        w.begin_access(&t, &[]).unwrap();
        let sub = probe.submit(&w, 0).unwrap();
        let done = w.end_access(&t, None).unwrap();
        w.wait_for_submission(done).unwrap();
        assert!(
            !probe.result(&w, sub, frame + 1).unwrap().ok(),
            "wgpu probe must fail on frame {}",
            frame + 1
        );
        // Vulkan sees what wgpu rendered.
        assert!(
            reader.check(&imported, frame).unwrap().ok(),
            "Vulkan probe, frame {frame}"
        );
    }
    assert!(
        probe.submit(&w, 1).is_err(),
        "out-of-range probe index is an error"
    );
    assert_validation_clean();
}

/// Resolves a future that native wgpu completes immediately.
fn now<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("wgpu future did not complete at once"),
    }
}

#[test]
fn an_application_wgpu_device_is_wrapped_when_it_has_external_memory() {
    let _serial = serial();
    let v = manager();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN;
    let instance = wgpu::Instance::new(desc);
    let adapter = now(instance.request_adapter(&Default::default())).expect("a Vulkan adapter");
    // wgpu 30 enables VK_KHR_external_memory_fd whenever the device offers it, so even a
    // device requested without the feature can share.
    let (plain, plain_queue) = now(adapter.request_device(&Default::default())).unwrap();
    WgpuTextureShareManager::from_wgpu(&adapter, &plain, &plain_queue).unwrap();
    // Textures from a Vulkan context arrive as wgpu textures with their texels.
    let (device, queue) = now(adapter.request_device(&wgpu::DeviceDescriptor {
        required_features: wgpu::Features::VULKAN_EXTERNAL_MEMORY_FD,
        ..Default::default()
    }))
    .expect("a device with VULKAN_EXTERNAL_MEMORY_FD");
    let w = WgpuTextureShareManager::from_wgpu(&adapter, &device, &queue).unwrap();
    let desc = TextureDescriptor::new(40, 24, TextureFormat::Rgba8Unorm, &COPY);
    let vt = v.create_texture(&desc).unwrap();
    let data = pattern(
        desc.format,
        TextureAspect::Color,
        aspect_size(&vt, TextureAspect::Color) as usize,
        3,
    );
    v.write_texture(&vt, TextureAspect::Color, &data).unwrap();
    let wt = w.import_with(v.export(&vt).unwrap(), &desc).unwrap();
    assert_eq!(wgpu_read(&w, &wt, TextureAspect::Color), data);
    assert_validation_clean();
}
