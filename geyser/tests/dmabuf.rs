//! DMA-BUFs Geyser did not make, into Vulkan and wgpu: single-plane RGBA, NV12 and P010 (one
//! buffer, and one buffer per plane), read back plane by plane and compared byte for byte, and
//! the typed errors for layouts the device cannot take.
//!
//! What "foreign" means here: this machine has no render node (no GBM) and no /dev/udmabuf,
//! so the buffers are memfds written by the test, handed over as DMA-BUF FDs. lavapipe (and
//! llvmpipe's EGL) import a DMA-BUF by mapping it, so they take a memfd; that proves Geyser's
//! plane bookkeeping, layout checks and the import calls, not that a GPU driver accepts a
//! given buffer (the device script runs the GPU side).
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::os::fd::OwnedFd;

use common::{assert_validation_clean, expected_rgba, foreign_rgba, manager};
use geyser::common::{DmaBuf, DrmFourcc, DrmModifier, TextureUsage};
use geyser::Error;

fn memfd(bytes: &[u8]) -> OwnedFd {
    let fd = rustix::fs::memfd_create(
        "test-foreign",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .unwrap();
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).unwrap();
    common::seal(file.into())
}

/// A 4:2:0 frame of `bpc` bytes per component: luma rows of `w` texels, then chroma rows of
/// `w/2` interleaved pairs, each plane a distinct pattern.
fn yuv_planes(w: u32, h: u32, bpc: u32) -> (Vec<u8>, Vec<u8>) {
    let y: Vec<u8> = (0..w * h * bpc).map(|i| (i * 7 + 3) as u8).collect();
    let uv: Vec<u8> = (0..(w / 2) * 2 * (h / 2) * bpc)
        .map(|i| (i * 13 + 5) as u8)
        .collect();
    (y, uv)
}

#[test]
fn nv12_and_p010_import_with_planes_in_one_buffer_and_in_two() {
    let m = manager();
    // 64x64: lavapipe pads a linear plane's height to 64 rows, so this is the size where its
    // NV12 layout is the tightly packed one a decoder hands out.
    let (w, h) = (64, 64);
    for (fourcc, bpc) in [(DrmFourcc::Nv12, 1), (DrmFourcc::P010, 2)] {
        let (y, uv) = yuv_planes(w, h, bpc);
        let stride = w * bpc;
        // One buffer: luma, then chroma right after it.
        let mut both = y.clone();
        both.extend_from_slice(&uv);
        let fd = memfd(&both);
        let one = DmaBuf::builder(w, h, fourcc, DrmModifier::Linear)
            .add_plane(fd.try_clone().unwrap(), 0, 0, stride)
            .add_plane(fd, 1, y.len() as u32, stride)
            .build()
            .unwrap();
        // Two buffers, one per plane. lavapipe states the whole image's size as each plane's
        // memory requirement (it ignores VkImagePlaneMemoryRequirementsInfo), and Geyser holds
        // the device to what it states: each buffer here is as large as it asks.
        let padded = |plane: &[u8]| {
            let mut v = plane.to_vec();
            v.resize(both.len().next_multiple_of(4096), 0);
            v
        };
        let two = DmaBuf::builder(w, h, fourcc, DrmModifier::Linear)
            .add_plane(memfd(&padded(&y)), 0, 0, stride)
            .add_plane(memfd(&padded(&uv)), 1, 0, stride)
            .build()
            .unwrap();
        for (what, buf) in [("one buffer", &one), ("two buffers", &two)] {
            let t = m
                .import_dma_buf_planar(buf, &[TextureUsage::CopySrc])
                .unwrap_or_else(|e| panic!("{fourcc} {what}: {e}"));
            assert_eq!(t.is_disjoint(), what == "two buffers");
            assert_eq!(t.read_plane(0).unwrap(), y, "{fourcc} {what}: luma");
            assert_eq!(t.read_plane(1).unwrap(), uv, "{fourcc} {what}: chroma");
        }
    }
    assert_validation_clean();
}

#[test]
fn planar_layouts_the_device_cannot_take_are_typed_errors() {
    let m = manager();
    let (w, h) = (64, 48);
    let (y, uv) = yuv_planes(w, h, 1);
    let mut both = y.clone();
    both.extend_from_slice(&uv);
    let fd = memfd(&both);
    // A chroma plane that starts before the luma plane ends.
    let overlap = DmaBuf::builder(w, h, DrmFourcc::Nv12, DrmModifier::Linear)
        .add_plane(fd.try_clone().unwrap(), 0, 0, w)
        .add_plane(fd.try_clone().unwrap(), 1, 100, w)
        .build()
        .unwrap();
    let r = m.import_dma_buf_planar(&overlap, &[TextureUsage::CopySrc]);
    assert!(
        matches!(r, Err(Error::InvalidDmaBuf { .. })) || m.caps().unwrap().drm_format_modifiers,
        "{r:?}"
    );
    // A chroma stride shorter than its row.
    let short = DmaBuf::builder(w, h, DrmFourcc::Nv12, DrmModifier::Linear)
        .add_plane(fd.try_clone().unwrap(), 0, 0, w)
        .add_plane(fd, 1, y.len() as u32, w / 2)
        .build()
        .unwrap();
    assert!(matches!(
        m.import_dma_buf_planar(&short, &[TextureUsage::CopySrc]),
        Err(Error::InvalidDmaBuf { plane: Some(1), .. })
    ));
    // RGBA is not planar.
    let rgba = DmaBuf::builder(w, h, DrmFourcc::Abgr8888, DrmModifier::Linear)
        .add_plane(foreign_rgba(w, h, w * 4, 0), 0, 0, w * 4)
        .build()
        .unwrap();
    assert!(matches!(
        m.import_dma_buf_planar(&rgba, &[TextureUsage::CopySrc]),
        Err(Error::Unsupported { .. })
    ));
    assert_validation_clean();
}

#[cfg(feature = "webgpu")]
mod wgpu_import {
    use super::*;
    use geyser::common::{TextureDescriptor, TextureFormat};
    use geyser::vulkan::{ContextOptions, DeviceSelector, Validation};
    use geyser::webgpu::{wgpu, WgpuTextureShareManager};

    fn wgpu_manager() -> WgpuTextureShareManager {
        WgpuTextureShareManager::create(&ContextOptions {
            device: DeviceSelector::from_env(),
            validation: Validation::Required,
        })
        .expect("wgpu device")
    }

    /// Reads an RGBA8 wgpu texture back through a wgpu copy.
    fn read(w: &WgpuTextureShareManager, t: &wgpu::Texture) -> Vec<u8> {
        let size = t.size();
        let row = size.width * 4;
        let padded = row.div_ceil(256) * 256;
        let buffer = w.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: u64::from(padded * size.height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut enc = w.device().create_command_encoder(&Default::default());
        enc.copy_texture_to_buffer(
            t.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded),
                    rows_per_image: Some(size.height),
                },
            },
            size,
        );
        w.queue().submit([enc.finish()]);
        buffer
            .slice(..)
            .map_async(wgpu::MapMode::Read, |r| r.unwrap());
        w.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap();
        let data = buffer.slice(..).get_mapped_range().unwrap();
        (0..size.height as usize)
            .flat_map(|r| data[r * padded as usize..r * padded as usize + row as usize].to_vec())
            .collect()
    }

    #[test]
    fn a_foreign_dma_buf_imports_into_wgpu() {
        let w = wgpu_manager();
        let (width, height) = (64, 32);
        let desc = TextureDescriptor::new(
            width,
            height,
            TextureFormat::Rgba8Unorm,
            &[TextureUsage::CopySrc, TextureUsage::TextureBinding],
        );
        let buf = DmaBuf::builder(width, height, DrmFourcc::Abgr8888, DrmModifier::Linear)
            .add_plane(foreign_rgba(width, height, width * 4, 0), 0, 0, width * 4)
            .build()
            .unwrap();
        // Geyser's path: any device that imports DMA-BUFs, with the access bracket.
        let t = w.import_dma_buf(&buf, &desc).unwrap();
        w.begin_access(&t, &[]).unwrap();
        let got = read(&w, t.texture());
        let done = w.end_access(&t, None).unwrap();
        w.wait_for_submission(done).unwrap();
        assert_eq!(got, expected_rgba(width, height));
        // wgpu's own texture_from_dmabuf_fd needs DRM format modifiers (lavapipe has none).
        match w.import_dma_buf_with_wgpu(&buf, &desc) {
            Ok(t) => assert_eq!(read(&w, &t), expected_rgba(width, height)),
            Err(e) => {
                assert!(
                    !w.device()
                        .features()
                        .contains(wgpu::Features::VULKAN_EXTERNAL_MEMORY_DMA_BUF)
                        && matches!(e, Error::Unsupported { .. }),
                    "{e}"
                );
            }
        }
        // A stride shorter than a row: typed, on both paths.
        let bad = DmaBuf::builder(width, height, DrmFourcc::Abgr8888, DrmModifier::Linear)
            .add_plane(foreign_rgba(width, height, width * 4, 0), 0, 0, 100)
            .build()
            .unwrap();
        assert!(matches!(
            w.import_dma_buf(&bad, &desc),
            Err(Error::InvalidDmaBuf { .. })
        ));
        assert!(w.import_dma_buf_with_wgpu(&bad, &desc).is_err());
        assert_validation_clean();
    }
}

/// The GPU machine (scripts/device/issue20.sh): textures laid out by a DRM format modifier,
/// exported by one VkDevice and imported by another — over an opaque FD with modifier tiling,
/// and as a DMA-BUF where the driver exports them — each negotiated against the importer's
/// modifiers, pixel-verified, with one `RESULT` line per case.
#[test]
#[ignore = "needs VK_EXT_image_drm_format_modifier (a GPU driver); scripts/device/issue20.sh runs it"]
fn drm_modifier_textures_cross_two_vk_devices() {
    use geyser::common::{modifier_name, TextureAspect, TextureDescriptor, TextureFormat};
    use geyser::vulkan::TextureMemory;
    let (a, b) = (manager(), manager());
    assert!(
        a.caps().unwrap().drm_format_modifiers,
        "{} has no VK_EXT_image_drm_format_modifier",
        a.identity().name
    );
    let mut verified = 0;
    for format in [
        TextureFormat::Rgba8Unorm,
        TextureFormat::Bgra8Unorm,
        TextureFormat::Rgba16Float,
    ] {
        let desc = TextureDescriptor::new(
            1920,
            1080,
            format,
            &[
                TextureUsage::CopySrc,
                TextureUsage::CopyDst,
                TextureUsage::TextureBinding,
            ],
        );
        let offered = a.drm_modifiers(format).len();
        let importer = b.importable_modifiers(format);
        for (kind, memory) in [
            (
                "opaque-fd+modifier",
                TextureMemory::OpaqueModifier {
                    modifiers: importer.clone(),
                },
            ),
            (
                "dma-buf",
                TextureMemory::DmaBuf {
                    modifiers: importer.clone(),
                },
            ),
        ] {
            let texture = match a.create_texture_in(&desc, &Default::default(), &memory) {
                Ok(t) => t,
                Err(e) => {
                    println!("RESULT modifiers {format} {kind}: unsupported ({e})");
                    continue;
                }
            };
            let bytes = common::pattern(
                format,
                TextureAspect::Color,
                (1920 * 1080 * format.block_bytes()) as usize,
                9,
            );
            a.write_texture(&texture, TextureAspect::Color, &bytes)
                .unwrap();
            let exported = a.export(&texture).unwrap();
            let geyser::common::MemoryLayout::DrmModifier(chosen) = exported.info.layout else {
                panic!("{kind}: no modifier in the export")
            };
            let imported = b
                .import(exported.try_clone().unwrap())
                .unwrap_or_else(|e| panic!("{format} {kind}: {e}"));
            let same = b.read_texture(&imported, TextureAspect::Color).unwrap() == bytes;
            println!(
                "RESULT modifiers {format} {kind}: modifier {} of {offered} offered, {} plane(s) {:?}, imported on a second VkDevice: {}",
                modifier_name(chosen),
                exported.info.planes.len(),
                exported.info.planes,
                if same { "verified" } else { "MISMATCH" }
            );
            assert!(same, "{format} {kind}");
            verified += 1;
        }
    }
    assert!(verified > 0, "no modifier-tiled texture could be made");
    assert_validation_clean();
}
