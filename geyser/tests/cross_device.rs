//! Cross-device transfers (for devices that cannot share memory), exercised here between two
//! VkDevices on lavapipe with each copying path forced, validation on: pixel round trips in
//! both directions for colour, depth and depth/stencil formats and odd sizes, and bad input.
#![cfg(target_os = "linux")]

mod common;

use common::{assert_validation_clean, manager, pattern, same_texels};
use geyser::common::{TextureAspect, TextureDescriptor, TextureFormat, TextureUsage};
use geyser::vulkan::{aspect_size, CrossDeviceTransfer, TransferPath, VulkanTextureShareManager};
use geyser::Error;

const USAGE: [TextureUsage; 2] = [TextureUsage::CopySrc, TextureUsage::CopyDst];

fn round_trip(
    a: &VulkanTextureShareManager,
    b: &VulkanTextureShareManager,
    path: TransferPath,
    format: TextureFormat,
    (w, h): (u32, u32),
) {
    let desc =
        TextureDescriptor::new(w, h, format, &USAGE).with_label(format!("x-{format}-{w}x{h}"));
    let ta = a.create_texture(&desc).unwrap();
    let tb = b.create_texture(&desc).unwrap();
    let mut ab = CrossDeviceTransfer::with_path(a, b, &desc, path).unwrap();
    let mut ba = CrossDeviceTransfer::with_path(b, a, &desc, path).unwrap();
    assert_eq!(ab.path(), path);
    for (seed, (from_m, from, to_m, to, t)) in
        [(a, &ta, b, &tb, &mut ab), (b, &tb, a, &ta, &mut ba)]
            .into_iter()
            .enumerate()
    {
        let mut written = Vec::new();
        for (i, aspect) in TextureAspect::all_of(format).iter().enumerate() {
            let data = pattern(
                format,
                *aspect,
                aspect_size(from, *aspect) as usize,
                17 * seed as u32 + i as u32,
            );
            from_m.write_texture(from, *aspect, &data).unwrap();
            written.push((*aspect, data));
        }
        let timing = t.transfer(from, to).unwrap();
        assert!(timing.total() > std::time::Duration::ZERO);
        if path == TransferPath::HostMemory {
            assert!(
                timing.cpu_copy < std::time::Duration::from_millis(1),
                "no CPU copy on the host-memory path"
            );
        }
        for (aspect, want) in &written {
            let got = to_m.read_texture(to, *aspect).unwrap();
            assert!(
                same_texels(format, *aspect, want, &got),
                "{path:?} {format} {w}x{h} {aspect:?}: texels differ (direction {seed})"
            );
        }
    }
}

#[test]
fn host_memory_and_cpu_copy_paths_move_every_texel_both_ways() {
    let a = manager();
    let b = manager();
    // Two contexts on one device could share directly; the copying paths are forced.
    assert_eq!(
        TransferPath::between(a.caps().unwrap(), b.caps().unwrap()),
        TransferPath::Direct
    );
    let best = TransferPath::best_copy(a.caps().unwrap(), b.caps().unwrap());
    println!("best copying path on {}: {best}", a.identity().name);
    assert_eq!(
        best,
        TransferPath::HostMemory,
        "lavapipe imports host memory"
    );
    for path in [TransferPath::HostMemory, TransferPath::CpuCopy] {
        for format in [
            TextureFormat::Rgba8Unorm,
            TextureFormat::R8Unorm,
            TextureFormat::Rgba16Float,
            TextureFormat::Rgba32Float,
            TextureFormat::Depth32Float,
            TextureFormat::Depth24UnormStencil8,
        ] {
            for size in [(61, 37), (1, 1), (257, 3)] {
                round_trip(&a, &b, path, format, size);
            }
        }
    }
    // A 4K RGBA8 frame through host memory: 33 MB, not a multiple of anything in particular.
    round_trip(
        &a,
        &b,
        TransferPath::HostMemory,
        TextureFormat::Rgba8Unorm,
        (3840, 2161),
    );
    assert_validation_clean();
}

#[test]
fn bad_transfers_are_typed_errors() {
    let a = manager();
    let b = manager();
    let desc = TextureDescriptor::new(16, 16, TextureFormat::Rgba8Unorm, &USAGE);
    assert!(matches!(
        CrossDeviceTransfer::with_path(&a, &b, &desc, TransferPath::Direct),
        Err(Error::InvalidArgument { .. })
    ));
    let no_copy = TextureDescriptor::new(
        16,
        16,
        TextureFormat::Rgba8Unorm,
        &[TextureUsage::TextureBinding],
    );
    assert!(matches!(
        CrossDeviceTransfer::new(&a, &b, &no_copy),
        Err(Error::InvalidArgument { .. })
    ));
    let mut t = CrossDeviceTransfer::new(&a, &b, &desc).unwrap();
    let ta = a.create_texture(&desc).unwrap();
    let tb = b.create_texture(&desc).unwrap();
    // Source and destination swapped: each belongs to the other device.
    assert!(matches!(t.transfer(&tb, &ta), Err(Error::WrongTexture(_))));
    // A texture of another size.
    let other = a
        .create_texture(&TextureDescriptor::new(
            8,
            16,
            TextureFormat::Rgba8Unorm,
            &USAGE,
        ))
        .unwrap();
    assert!(matches!(
        t.transfer(&other, &tb),
        Err(Error::DescriptorMismatch { .. })
    ));
    t.transfer(&ta, &tb).unwrap();
    assert_validation_clean();
}
