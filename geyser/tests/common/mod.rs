//! Helpers shared by the GPU tests: managers with the validation layer required, and test
//! patterns that are valid for each format's aspects.
#![allow(dead_code)]

#[cfg(target_os = "linux")]
pub mod child;
pub mod shapes;
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
