//! Helpers shared by the GPU tests: managers with the validation layer required, and test
//! patterns that are valid for each format's aspects.
#![allow(dead_code)]

#[cfg(target_os = "linux")]
pub mod child;
pub mod shapes;
#[cfg(all(feature = "ipc", target_os = "linux"))]
pub mod stream;
#[cfg(feature = "webgpu")]
pub mod wgpu_copy;

use geyser::common::{TextureAspect, TextureFormat};
use geyser::vulkan::{ContextOptions, DeviceSelector, Validation, VulkanTextureShareManager};

/// A manager on its own VkDevice (a separate "context"), validation layer required.
pub fn manager() -> VulkanTextureShareManager {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("geyser=warn")
        .with_test_writer()
        .try_init();
    let options = ContextOptions {
        device: DeviceSelector::from_env(),
        validation: Validation::Required,
    };
    VulkanTextureShareManager::create(&options)
        .expect("create a Vulkan context (is lavapipe installed? run scripts/ensure-vulkan.sh)")
}

/// Fails the test if any validation layer error was reported in this process so far.
pub fn assert_validation_clean() {
    let n = geyser::vulkan::diagnostics::validation_error_count();
    assert_eq!(
        n,
        0,
        "validation errors: {:#?}",
        geyser::vulkan::diagnostics::validation_messages()
    );
}

/// Ends a test child process with `code`, or 4 if the validation layer reported an error.
pub fn exit_child(code: i32) -> ! {
    let code = if geyser::vulkan::diagnostics::validation_error_count() > 0 {
        eprintln!(
            "validation errors: {:#?}",
            geyser::vulkan::diagnostics::validation_messages()
        );
        4
    } else {
        code
    };
    std::process::exit(code)
}

/// A deterministic pattern for one aspect, `len` bytes, valid for the format (depth values in
/// [0, 1], D24's unused top byte zero).
pub fn pattern(format: TextureFormat, aspect: TextureAspect, len: usize, seed: u32) -> Vec<u8> {
    match (format, aspect) {
        (
            TextureFormat::Depth32Float | TextureFormat::Depth32FloatStencil8,
            TextureAspect::Depth,
        ) => (0..len / 4)
            .flat_map(|i| (((i as u32 * 7 + seed) % 1000) as f32 / 1000.0).to_le_bytes())
            .collect(),
        (TextureFormat::Depth24UnormStencil8, TextureAspect::Depth) => (0..len / 4)
            .flat_map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) & 0x00ff_ffff).to_le_bytes()
            })
            .collect(),
        _ => (0..len)
            .map(|i| ((i as u32).wrapping_mul(31).wrapping_add(seed) ^ (i as u32 >> 7)) as u8)
            .collect(),
    }
}

/// Compares read-back bytes with what was written, masking bits Vulkan leaves undefined
/// (the top byte of D24 depth in a buffer).
pub fn same_texels(format: TextureFormat, aspect: TextureAspect, want: &[u8], got: &[u8]) -> bool {
    if want.len() != got.len() {
        return false;
    }
    match (format, aspect) {
        (TextureFormat::Depth24UnormStencil8, TextureAspect::Depth) => want
            .chunks_exact(4)
            .zip(got.chunks_exact(4))
            .all(|(a, b)| a[..3] == b[..3]),
        _ => want == got,
    }
}

/// A memfd holding `height` rows of `stride` bytes of RGBA8 texels (x, y, x^y, 255) from
/// `offset` on: a buffer Geyser did not make, standing in for a foreign DMA-BUF (this machine
/// has no render node and no /dev/udmabuf; lavapipe and llvmpipe import any mappable FD).
#[cfg(target_os = "linux")]
pub fn foreign_rgba(width: u32, height: u32, stride: u32, offset: u32) -> std::os::fd::OwnedFd {
    use std::io::Write;
    let fd = rustix::fs::memfd_create(
        "test-foreign",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .unwrap();
    let mut bytes = vec![0u8; (offset + stride * height) as usize];
    for y in 0..height {
        for x in 0..width {
            let o = (offset + y * stride + x * 4) as usize;
            bytes[o..o + 4].copy_from_slice(&[x as u8, y as u8, (x ^ y) as u8, 255]);
        }
    }
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes).unwrap();
    seal(file.into())
}

/// The texels of [`foreign_rgba`], tightly packed.
pub fn expected_rgba(width: u32, height: u32) -> Vec<u8> {
    (0..height)
        .flat_map(|y| (0..width).flat_map(move |x| [x as u8, y as u8, (x ^ y) as u8, 255]))
        .collect()
}

/// Seals a memfd against resizing, as Geyser requires of memfds passed as DMA-BUFs.
#[cfg(target_os = "linux")]
pub fn seal(fd: std::os::fd::OwnedFd) -> std::os::fd::OwnedFd {
    use rustix::fs::SealFlags;
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
        .unwrap();
    fd
}
