//! OpenGL interop through EGL (feature `gl`, Linux): shared textures as GL textures, GL
//! semaphores, and GL producers and consumers over the same IPC endpoints.
//!
//! - [`GlContext`]: a headless GL 4.5 core context Geyser makes (EGL surfaceless or device
//!   platform), or the application's current EGL context ([`GlContext::current`], e.g. a
//!   three-d or glutin window). libEGL is loaded at run time.
//! - [`GlTexture`]: a Vulkan export imported as a memory object (`GL_EXT_memory_object_fd`,
//!   same device and driver, checked by UUID), a DMA-BUF imported as an EGLImage
//!   (`EGL_EXT_image_dma_buf_import(_modifiers)`, any driver), or a GL texture exported as a
//!   DMA-BUF (`EGL_MESA_image_dma_buf_export`).
//! - [`GlSemaphore`]: Vulkan semaphores in GL (`GL_EXT_semaphore_fd`, timelines with
//!   `GL_NV_timeline_semaphore`); where GL has none (Mesa), the handoff is host-synchronized.
//! - `GlConsumer`, `GlProducer` (feature `ipc`): the IPC endpoints with GL textures.
//!
//! GL row 0 is the first row in memory, Vulkan's top row: GL's t = 0 is the image's top, so
//! draw shared textures with V flipped. Every GL object here is `!Send`: use it on the thread
//! where its context is current.
//!
//! Files: `ext.rs` (entry points glow lacks, loaded through EGL), `egl.rs` (contexts and
//! caps), `import.rs` (memory objects, EGLImages), `texture.rs` (the texture, reads, writes,
//! DMA-BUF export), `sync.rs`, `ipc.rs`.

mod egl;
mod ext;
mod import;
#[cfg(all(feature = "ipc", any(target_os = "linux", target_os = "android")))]
mod ipc;
mod sync;
mod texture;

pub use egl::{GlCaps, GlContext};
#[cfg(all(feature = "ipc", any(target_os = "linux", target_os = "android")))]
pub use ipc::{GlConsumer, GlFrame, GlProducer, GlWriteSlot};
pub use sync::GlSemaphore;
pub use texture::GlTexture;

/// The glow crate Geyser is built against (0.17, three-d 0.19's), so applications use the
/// same version.
pub use glow;

#[cfg(test)]
mod tests {
    use crate::common::FORMAT_TABLE;

    #[test]
    fn gl_column_matches_glow() {
        use glow::*;
        let known = [
            RGBA8,
            SRGB8_ALPHA8,
            RGBA8_SNORM,
            RGBA8UI,
            R8,
            R8UI,
            RG8,
            R16,
            R16UI,
            R16F,
            RG16,
            RG16F,
            RGBA16,
            RGBA16UI,
            RGBA16F,
            R32UI,
            R32F,
            RG32F,
            RGBA32F,
            RGBA32UI,
            RGB10_A2,
            R11F_G11F_B10F,
            RGBA,
            RGB,
            RED,
            RG,
            RGBA_INTEGER,
            RED_INTEGER,
            UNSIGNED_BYTE,
            BYTE,
            UNSIGNED_SHORT,
            UNSIGNED_INT,
            HALF_FLOAT,
            FLOAT,
            UNSIGNED_INT_2_10_10_10_REV,
            UNSIGNED_INT_10F_11F_11F_REV,
        ];
        for row in FORMAT_TABLE {
            if let Some(gl) = row.gl {
                for v in [gl.internal, gl.format, gl.ty] {
                    assert!(
                        known.contains(&v),
                        "{:?}: {v:#x} is not a GL enum we know",
                        row.format
                    );
                }
                assert_eq!(
                    gl.swap_rb,
                    row.drm_fourcc == Some(drm_fourcc::DrmFourcc::Argb8888)
                );
            } else {
                // Depth/stencil and block-compressed formats are not shared with GL (yet).
                assert!(
                    row.format.is_depth_stencil() || row.format.is_compressed(),
                    "{:?} has no GL column",
                    row.format
                );
            }
        }
        let rgba8 = crate::common::TextureFormat::Rgba8Unorm.info().gl.unwrap();
        assert_eq!(
            (rgba8.internal, rgba8.format, rgba8.ty),
            (RGBA8, RGBA, UNSIGNED_BYTE)
        );
        let rg11 = crate::common::TextureFormat::Rg11b10Float
            .info()
            .gl
            .unwrap();
        assert_eq!(
            (rg11.internal, rg11.ty),
            (R11F_G11F_B10F, UNSIGNED_INT_10F_11F_11F_REV)
        );
    }
}
