//! [`GlTexture`]: a GL texture over shared memory (made by `import.rs`) or GL's own; texel
//! reads and writes for tools and tests, and export as a DMA-BUF
//! (`EGL_MESA_image_dma_buf_export`).

use std::ffi::c_void;
use std::os::fd::{FromRawFd, OwnedFd};

use glow::HasContext;
use khronos_egl as egl;

use super::egl::GlContext;
use super::ext;
use crate::common::{DmaBuf, TextureDescriptor};
use crate::{Error, Result};

/// Where a texture's storage comes from; what its drop releases.
pub(super) enum Source {
    /// A memory object (deleted with the texture).
    MemoryObject(u32),
    /// An EGLImage over a DMA-BUF (destroyed with the texture).
    EglImage(egl::Image),
    /// GL's own storage.
    Own,
}

/// A 2D GL texture on a [`GlContext`], usually over memory shared with Vulkan or another
/// process. GL row 0 is the first row in memory, which is Vulkan's top row: GL's texture
/// coordinate t = 0 samples the image's top, so draw it with V flipped. Not `Send`; drop it
/// with its context current (the texture, memory object or EGLImage is released then).
pub struct GlTexture {
    pub(super) ctx: GlContext,
    pub(super) raw: glow::Texture,
    /// Whether the texture name is ours to delete (not when an engine made it:
    /// [`GlContext::import_into_bound`]).
    pub(super) owns_name: bool,
    pub(super) source: Source,
    pub(super) desc: TextureDescriptor,
    /// GL format and type that read texels in memory order.
    pub(super) read: (u32, u32),
}

impl std::fmt::Debug for GlTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlTexture")
            .field("name", &self.name())
            .field("format", &self.desc.format)
            .field("size", &(self.desc.width, self.desc.height))
            .field(
                "source",
                &match self.source {
                    Source::MemoryObject(_) => "memory object",
                    Source::EglImage(_) => "EGLImage (DMA-BUF)",
                    Source::Own => "GL storage",
                },
            )
            .finish()
    }
}

impl Drop for GlTexture {
    fn drop(&mut self) {
        let s = &self.ctx.shared;
        // SAFETY: the texture, memory object and image were made on this context, are owned
        // by this value alone and released once; GL keeps storage alive until pending
        // commands that use it complete.
        unsafe {
            if self.owns_name {
                s.gl.delete_texture(self.raw);
            }
            match self.source {
                Source::MemoryObject(mo) => {
                    if let Some(delete) = s.fns.delete_memory_objects {
                        delete(1, &mo);
                    }
                }
                Source::EglImage(image) => {
                    if let Err(e) = s.egl.api().destroy_image(s.display, image) {
                        tracing::warn!("eglDestroyImage: {e}");
                    }
                }
                Source::Own => {}
            }
        }
    }
}

impl GlTexture {
    /// Nearest filtering, clamped, and the red/blue swizzle BGRA memory needs as `GL_RGBA8`.
    pub(super) fn set_sampling(&self, swap_rb: bool) {
        let gl = &self.ctx.shared.gl;
        // SAFETY: parameters of a live texture, bound here.
        unsafe {
            gl.bind_texture(glow::TEXTURE_2D, Some(self.raw));
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MIN_FILTER,
                glow::NEAREST as i32,
            );
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MAG_FILTER,
                glow::NEAREST as i32,
            );
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_WRAP_S,
                glow::CLAMP_TO_EDGE as i32,
            );
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_WRAP_T,
                glow::CLAMP_TO_EDGE as i32,
            );
            if swap_rb {
                gl.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_SWIZZLE_R, glow::BLUE as i32);
                gl.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_SWIZZLE_B, glow::RED as i32);
            }
            gl.bind_texture(glow::TEXTURE_2D, None);
        }
    }

    /// The glow texture, for the application's GL calls (bind, attach to a framebuffer).
    pub fn raw(&self) -> glow::Texture {
        self.raw
    }

    /// The GL texture name.
    pub fn name(&self) -> u32 {
        self.raw.0.get()
    }

    /// The descriptor of the shared texture.
    pub fn descriptor(&self) -> &TextureDescriptor {
        &self.desc
    }

    /// The context the texture belongs to.
    pub fn context(&self) -> &GlContext {
        &self.ctx
    }

    /// Reads a `w` x `h` rectangle of mip 0 at (`x`, `y`) (rows in memory order, tightly
    /// packed; `glGetTextureSubImage`): the bytes Vulkan sees there.
    pub fn read_texels(&self, x: u32, y: u32, w: u32, h: u32) -> Result<Vec<u8>> {
        let s = &self.ctx.shared;
        let d = &self.desc;
        if x.checked_add(w).is_none_or(|r| r > d.width)
            || y.checked_add(h).is_none_or(|b| b > d.height)
        {
            return Err(Error::InvalidArgument {
                what: "texel rectangle",
                reason: format!(
                    "{w}x{h} at ({x},{y}) is outside the {}x{} texture",
                    d.width, d.height
                ),
            });
        }
        let get = s
            .fns
            .get_texture_sub_image
            .ok_or_else(|| Error::unsupported("glGetTextureSubImage", "GL 4.5 is needed"))?;
        let len = w as usize * h as usize * d.format.block_bytes() as usize;
        let mut out = vec![0u8; len];
        // SAFETY: `out` holds exactly the rectangle at the table's texel size with pack
        // alignment 1; the texture is live and 2D.
        unsafe {
            s.gl.pixel_store_i32(glow::PACK_ALIGNMENT, 1);
            get(
                self.name(),
                0,
                x as i32,
                y as i32,
                0,
                w as i32,
                h as i32,
                1,
                self.read.0,
                self.read.1,
                len as i32,
                out.as_mut_ptr().cast::<c_void>(),
            );
        }
        self.ctx.check_error("glGetTextureSubImage")?;
        Ok(out)
    }

    /// Fills mip 0 with one texel's bytes (`texel`, in memory order, the format's texel size;
    /// `glClearTexImage`).
    pub fn clear(&self, texel: &[u8]) -> Result<()> {
        let s = &self.ctx.shared;
        if texel.len() != self.desc.format.block_bytes() as usize {
            return Err(Error::InvalidArgument {
                what: "clear texel",
                reason: format!(
                    "{} bytes given, {} has {}-byte texels",
                    texel.len(),
                    self.desc.format,
                    self.desc.format.block_bytes()
                ),
            });
        }
        let clear = s
            .fns
            .clear_tex_image
            .ok_or_else(|| Error::unsupported("glClearTexImage", "GL 4.4 is needed"))?;
        // SAFETY: `texel` is one texel of the read format and type.
        unsafe {
            clear(
                self.name(),
                0,
                self.read.0,
                self.read.1,
                texel.as_ptr().cast(),
            )
        };
        self.ctx.check_error("glClearTexImage")
    }

    /// Replaces mip 0 with `bytes` (rows in memory order, tightly packed;
    /// `glTextureSubImage2D`).
    pub fn upload(&self, bytes: &[u8]) -> Result<()> {
        let d = &self.desc;
        let len = d.width as usize * d.height as usize * d.format.block_bytes() as usize;
        if bytes.len() != len {
            return Err(Error::InvalidArgument {
                what: "texel data",
                reason: format!("{} bytes given, the texture holds {len}", bytes.len()),
            });
        }
        let gl = &self.ctx.shared.gl;
        // SAFETY: `bytes` holds the whole mip 0 tightly packed with unpack alignment 1.
        unsafe {
            gl.pixel_store_i32(glow::UNPACK_ALIGNMENT, 1);
            gl.texture_sub_image_2d(
                self.raw,
                0,
                0,
                0,
                d.width as i32,
                d.height as i32,
                self.read.0,
                self.read.1,
                glow::PixelUnpackData::Slice(Some(bytes)),
            );
        }
        self.ctx.check_error("glTextureSubImage2D")
    }

    /// Exports the texture as a DMA-BUF (`EGL_MESA_image_dma_buf_export`) for Vulkan, another
    /// API or process ([`Error::Unsupported`] where EGL does not offer it, e.g. Mesa's llvmpipe
    /// without `/dev/udmabuf`).
    pub fn export_dma_buf(&self) -> Result<DmaBuf> {
        let s = &self.ctx.shared;
        let (true, Some(query), Some(export)) = (
            s.caps.dma_buf_export,
            s.fns.export_dma_buf_query,
            s.fns.export_dma_buf,
        ) else {
            return Err(Error::unsupported(
                "EGL_MESA_image_dma_buf_export",
                format!("EGL on {} does not export GL textures as DMA-BUFs; render into Geyser-created memory instead (GlContext::import of a Vulkan export)", s.caps.renderer),
            ));
        };
        let api = s.egl.api();
        // SAFETY: EGL_KHR_gl_texture_2D_image: the client buffer is the name of a live 2D
        // texture of `context`, passed as a pointer-sized integer.
        let image = unsafe {
            api.create_image(
                s.display,
                s.context,
                ext::GL_TEXTURE_2D_KHR,
                egl::ClientBuffer::from_ptr(self.name() as usize as *mut c_void),
                &[egl::ATTRIB_NONE],
            )
        }
        .map_err(|e| {
            Error::unsupported(
                "eglCreateImage(EGL_GL_TEXTURE_2D_KHR)",
                ext::egl_error_name(e),
            )
        })?;
        let result = (|| {
            let (mut fourcc, mut planes, mut modifier) = (0i32, 0i32, 0u64);
            let (mut fds, mut strides, mut offsets) = ([-1i32; 4], [0i32; 4], [0i32; 4]);
            // SAFETY: a live image of our display; the MESA export writes at most 4 planes
            // (one modifier per plane; we pass room for the first only when there is one).
            unsafe {
                if query(
                    s.display.as_ptr(),
                    image.as_ptr(),
                    &mut fourcc,
                    &mut planes,
                    &mut modifier,
                ) == 0
                {
                    return Err(Error::unsupported(
                        "eglExportDMABUFImageQueryMESA",
                        "EGL refused the query",
                    ));
                }
                if !(1..=4).contains(&planes) {
                    return Err(Error::Internal(format!("EGL exported {planes} planes")));
                }
                if export(
                    s.display.as_ptr(),
                    image.as_ptr(),
                    fds.as_mut_ptr(),
                    strides.as_mut_ptr(),
                    offsets.as_mut_ptr(),
                ) == 0
                {
                    return Err(Error::unsupported(
                        "eglExportDMABUFImageMESA",
                        "EGL refused the export",
                    ));
                }
            }
            // Own every FD EGL returned before any check can fail.
            let owned: Vec<Option<OwnedFd>> = fds
                .iter()
                .map(|&fd| {
                    (fd >= 0).then(|| {
                        // SAFETY: EGL returns new FDs the caller owns (-1 for planes sharing the first).
                        unsafe { OwnedFd::from_raw_fd(fd) }
                    })
                })
                .collect();
            let fourcc = crate::common::DrmFourcc::try_from(fourcc as u32)
                .map_err(|e| Error::unsupported("exported DRM fourcc", e.to_string()))?;
            let d = &self.desc;
            let mut builder = DmaBuf::builder(d.width, d.height, fourcc, modifier.into());
            let first = owned[0]
                .as_ref()
                .ok_or_else(|| Error::Internal("EGL exported no FD".into()))?;
            for i in 0..planes as usize {
                let fd = match &owned[i] {
                    Some(fd) => fd.try_clone()?,
                    None => first.try_clone()?,
                };
                builder = builder.add_plane(fd, i as u32, offsets[i] as u32, strides[i] as u32);
            }
            builder.build()
        })();
        let _ = api.destroy_image(s.display, image);
        result
    }
}
