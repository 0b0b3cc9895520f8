//! Shared memory into GL textures: Vulkan exports as memory objects (`GL_EXT_memory_object_fd`,
//! opaque FDs, same device and driver), DMA-BUFs as EGLImages
//! (`EGL_EXT_image_dma_buf_import(_modifiers)`), into a new texture or one an engine made.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use glow::HasContext;
use khronos_egl as egl;

use super::egl::GlContext;
use super::ext;
use super::texture::{GlTexture, Source};
use crate::common::{
    uuid_string, DmaBuf, DrmModifier, ExportedTexture, ExternalHandleType, GlFormat, MemoryLayout,
    TextureDescriptor, TextureDimension, DRM_FORMAT_MOD_LINEAR,
};
use crate::{Error, Result};

/// `GL_BGRA`: reads the bytes of an EGL-imported BGRA buffer in memory order.
const GL_BGRA: u32 = 0x80E1;

fn gl_format(desc: &TextureDescriptor) -> Result<GlFormat> {
    desc.format.info().gl.ok_or_else(|| {
        Error::unsupported(
            format!("{} in OpenGL", desc.format),
            "the format table has no GL column for it (depth/stencil formats are not shared with GL)",
        )
    })
}

fn check_plain_2d(exported: &crate::common::ExportInfo) -> Result<()> {
    let e = &exported.extent;
    if e.dimension != TextureDimension::D2 || e.depth_or_array_layers != 1 || e.sample_count != 1 {
        return Err(Error::unsupported(
            format!(
                "{:?} texture with {} layers and {} samples in OpenGL",
                e.dimension, e.depth_or_array_layers, e.sample_count
            ),
            "Geyser imports single-layer, single-sample 2D textures into GL",
        ));
    }
    Ok(())
}

impl GlContext {
    /// Imports a Geyser export as a GL texture: opaque FDs through a memory object (the GL
    /// context must run on the exporter's device and driver: [`Error::DeviceMismatch`]
    /// otherwise), DMA-BUFs through an EGLImage ([`Self::import_dma_buf`]). The export's FD
    /// is duplicated; the export stays the caller's.
    pub fn import(&self, exported: &ExportedTexture) -> Result<GlTexture> {
        self.import_to(exported, None)
    }

    /// [`Self::import`] into the texture bound to `GL_TEXTURE_2D` now, for engines that make
    /// their own texture objects (three-d's `Texture2D::new_unchecked` runs its callback with
    /// the new texture bound). The texture must have no storage yet. The returned
    /// [`GlTexture`] releases the memory object or EGLImage when dropped but leaves the
    /// texture name to the engine; drop it before the engine deletes the texture.
    pub fn import_into_bound(&self, exported: &ExportedTexture) -> Result<GlTexture> {
        // SAFETY: a plain query on the current context.
        let bound = unsafe { self.shared.gl.get_parameter_i32(glow::TEXTURE_BINDING_2D) };
        let name =
            std::num::NonZeroU32::new(bound as u32).ok_or_else(|| Error::InvalidArgument {
                what: "bound texture",
                reason: "no texture is bound to GL_TEXTURE_2D".into(),
            })?;
        self.import_to(exported, Some(glow::NativeTexture(name)))
    }

    fn import_to(
        &self,
        exported: &ExportedTexture,
        target: Option<glow::Texture>,
    ) -> Result<GlTexture> {
        check_plain_2d(&exported.info)?;
        if exported.info.handle_type == ExternalHandleType::DmaBuf {
            let buf = exported.to_dma_buf()?;
            return self.import_dma_buf_to(&buf, &exported.info.descriptor, target);
        }
        self.import_memory_object(exported, target)
    }

    /// A texture name: `target` (an engine's, not ours to delete) or a new one.
    fn texture_name(&self, target: Option<glow::Texture>) -> Result<(glow::Texture, bool)> {
        if let Some(t) = target {
            return Ok((t, false));
        }
        // SAFETY: creating a texture on the current context.
        unsafe { self.shared.gl.create_texture() }
            .map(|t| (t, true))
            .map_err(|e| Error::Gl {
                call: format!("glGenTextures: {e}"),
                code: 0,
            })
    }

    fn import_memory_object(
        &self,
        exported: &ExportedTexture,
        target: Option<glow::Texture>,
    ) -> Result<GlTexture> {
        let s = &self.shared;
        let info = &exported.info;
        let caps = &s.caps;
        if !caps.memory_object_fd {
            return Err(Error::unsupported(
                "GL_EXT_memory_object_fd",
                format!("{} cannot import opaque FDs; share a DMA-BUF instead (TextureMemory::DmaBuf / HostDmaBuf)", caps.renderer),
            ));
        }
        if !caps.device_uuids.contains(&info.device_uuid)
            || caps.driver_uuid != Some(info.driver_uuid)
        {
            return Err(Error::DeviceMismatch {
                exporter: format!("{}/{}", uuid_string(&info.device_uuid), uuid_string(&info.driver_uuid)),
                importer: format!(
                    "GL {} ({}/{})",
                    caps.renderer,
                    caps.device_uuids.iter().map(uuid_string).collect::<Vec<_>>().join(","),
                    caps.driver_uuid.as_ref().map(uuid_string).unwrap_or_default()
                ),
                reason: "GL_DEVICE_UUID_EXT / GL_DRIVER_UUID_EXT differ from the exporter's Vulkan UUIDs".into(),
            });
        }
        let tiling = match info.layout {
            MemoryLayout::Optimal => ext::OPTIMAL_TILING,
            MemoryLayout::DrmModifier(DRM_FORMAT_MOD_LINEAR)
                if info.planes.len() == 1 && info.planes[0].offset == 0 =>
            {
                ext::LINEAR_TILING
            }
            other => {
                return Err(Error::unsupported(
                    format!("{other:?} memory as a GL memory object"),
                    "GL memory objects take optimal or offset-0 LINEAR tiling only",
                ))
            }
        };
        let fmt = gl_format(&info.descriptor)?;
        let (Some(create), Some(param), Some(import), Some(storage), Some(delete)) = (
            s.fns.create_memory_objects,
            s.fns.memory_object_parameteriv,
            s.fns.import_memory_fd,
            s.fns.tex_storage_mem_2d,
            s.fns.delete_memory_objects,
        ) else {
            return Err(Error::unsupported(
                "GL_EXT_memory_object entry points",
                "eglGetProcAddress returned none",
            ));
        };
        let d = &info.descriptor;
        let levels = i32::try_from(info.extent.mip_level_count).unwrap_or(1);
        let fd = exported.os_handle().try_clone()?;
        let mut mo = 0u32;
        // SAFETY: GL_EXT_memory_object(_fd) is supported (checked); `mo` receives one name;
        // the dedicated flag matches the exporter's allocation.
        unsafe {
            create(1, &mut mo);
            let dedicated = i32::from(info.dedicated);
            param(mo, ext::DEDICATED_MEMORY_OBJECT, &dedicated);
        }
        let raw_fd = fd.into_raw_fd();
        // SAFETY: `raw_fd` is an FD we own of the exporter's allocation of `allocation_size`
        // bytes; a successful import gives it to GL.
        unsafe { import(mo, info.allocation_size, ext::HANDLE_TYPE_OPAQUE_FD, raw_fd) };
        if let Err(e) = self.check_error("glImportMemoryFdEXT") {
            // SAFETY: a failed import leaves the FD with us; the memory object is ours.
            unsafe {
                drop(OwnedFd::from_raw_fd(raw_fd));
                delete(1, &mo);
            }
            return Err(e);
        }
        let gl = &s.gl;
        let (raw, owns_name) = match self.texture_name(target) {
            Ok(t) => t,
            Err(e) => {
                // SAFETY: the memory object is ours.
                unsafe { delete(1, &mo) };
                return Err(e);
            }
        };
        // SAFETY: the texture is bound before its parameters and storage are set; the tiling
        // must be set before the storage call; the memory object holds the image at offset 0.
        unsafe {
            gl.bind_texture(glow::TEXTURE_2D, Some(raw));
            gl.tex_parameter_i32(glow::TEXTURE_2D, ext::TEXTURE_TILING, tiling);
            storage(
                glow::TEXTURE_2D,
                levels,
                fmt.internal,
                d.width as i32,
                d.height as i32,
                mo,
                0,
            );
        }
        let texture = GlTexture {
            ctx: self.clone(),
            raw,
            owns_name,
            source: Source::MemoryObject(mo),
            desc: d.clone(),
            read: (fmt.format, fmt.ty),
        };
        self.check_error("glTexStorageMem2DEXT")?;
        texture.set_sampling(fmt.swap_rb);
        Ok(texture)
    }

    /// Imports a DMA-BUF (Geyser's or foreign) as a GL texture through an EGLImage, described
    /// by `desc` (same size; a format whose DRM fourcc is the buffer's). Needs
    /// `EGL_EXT_image_dma_buf_import` on the context's display ([`Error::Unsupported`]
    /// naming what is missing: e.g. an X11 display without DRI3, such as Xvfb); modifiers
    /// other than LINEAR need `EGL_EXT_image_dma_buf_import_modifiers` and must be among
    /// [`Self::importable_modifiers`]. Single-plane formats; a layout EGL refuses is
    /// [`Error::InvalidDmaBuf`]. The buffer stays the caller's (EGL duplicates what it keeps).
    pub fn import_dma_buf(&self, buf: &DmaBuf, desc: &TextureDescriptor) -> Result<GlTexture> {
        self.import_dma_buf_to(buf, desc, None)
    }

    fn import_dma_buf_to(
        &self,
        buf: &DmaBuf,
        desc: &TextureDescriptor,
        target: Option<glow::Texture>,
    ) -> Result<GlTexture> {
        let s = &self.shared;
        if !s.caps.dma_buf_import {
            return Err(Error::unsupported(
                "EGL_EXT_image_dma_buf_import",
                format!("the EGL display of this {} context does not import DMA-BUFs (an X11 display needs DRI3; a headless GlContext has it on Mesa); share through memory objects instead", s.caps.platform),
            ));
        }
        let fmt = gl_format(desc)?;
        if desc.format.info().drm_fourcc != Some(buf.fourcc())
            || desc.width != buf.width()
            || desc.height != buf.height()
        {
            return Err(Error::InvalidArgument {
                what: "DMA-BUF descriptor",
                reason: format!(
                    "the buffer is {}x{} {} but the descriptor says {}x{} {}",
                    buf.width(),
                    buf.height(),
                    buf.fourcc(),
                    desc.width,
                    desc.height,
                    desc.format
                ),
            });
        }
        if buf.planes().len() != 1 {
            return Err(Error::unsupported(
                format!("{}-plane DMA-BUF in OpenGL", buf.planes().len()),
                "GL core profiles sample single-plane DMA-BUFs only (multi-plane needs GL_OES_EGL_image_external)",
            ));
        }
        buf.check_layout()?;
        crate::vulkan::check_sealed(buf)?;
        let modifier = u64::from(buf.modifier());
        let explicit = buf.modifier() != DrmModifier::Invalid;
        if explicit && modifier != DRM_FORMAT_MOD_LINEAR {
            let offered = self.importable_modifiers(buf.fourcc());
            if !offered.contains(&modifier) {
                return Err(Error::InvalidDmaBuf {
                    plane: None,
                    reason: format!(
                        "EGL on {} does not import {} with modifier {} (it offers {})",
                        s.caps.renderer,
                        buf.fourcc(),
                        crate::common::modifier_name(modifier),
                        offered
                            .iter()
                            .map(|m| crate::common::modifier_name(*m))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        let mut attrs: Vec<egl::Attrib> = vec![
            egl::WIDTH as egl::Attrib,
            buf.width() as egl::Attrib,
            egl::HEIGHT as egl::Attrib,
            buf.height() as egl::Attrib,
            ext::LINUX_DRM_FOURCC,
            buf.fourcc() as u32 as egl::Attrib,
        ];
        for (plane, names) in buf.planes().iter().zip(ext::PLANE_ATTRIBS) {
            attrs.extend([
                names[0],
                plane.fd.as_raw_fd() as egl::Attrib,
                names[1],
                plane.layout.offset as egl::Attrib,
                names[2],
                plane.layout.stride as egl::Attrib,
            ]);
            if explicit && s.caps.dma_buf_import_modifiers {
                attrs.extend([
                    names[3],
                    (modifier & 0xffff_ffff) as egl::Attrib,
                    names[4],
                    (modifier >> 32) as egl::Attrib,
                ]);
            }
        }
        attrs.push(egl::ATTRIB_NONE);
        let api = s.egl.api();
        // SAFETY: EGL_EXT_image_dma_buf_import takes EGL_NO_CONTEXT and a null client buffer;
        // the attribute list names live FDs that EGL duplicates if it keeps them.
        let image = unsafe {
            api.create_image(
                s.display,
                egl::Context::from_ptr(egl::NO_CONTEXT),
                ext::LINUX_DMA_BUF,
                egl::ClientBuffer::from_ptr(std::ptr::null_mut()),
                &attrs,
            )
        }
        .map_err(|e| Error::InvalidDmaBuf {
            plane: None,
            reason: format!(
                "eglCreateImage(EGL_LINUX_DMA_BUF_EXT) refused {} {}x{} (offset {}, stride {}, modifier {}): {}",
                buf.fourcc(),
                buf.width(),
                buf.height(),
                buf.planes()[0].layout.offset,
                buf.planes()[0].layout.stride,
                crate::common::modifier_name(modifier),
                ext::egl_error_name(e)
            ),
        })?;
        let gl = &s.gl;
        let (raw, owns_name) = match self.texture_name(target) {
            Ok(t) => t,
            Err(e) => {
                let _ = api.destroy_image(s.display, image);
                return Err(e);
            }
        };
        let read = if fmt.swap_rb {
            (GL_BGRA, fmt.ty)
        } else {
            (fmt.format, fmt.ty)
        };
        let texture = GlTexture {
            ctx: self.clone(),
            raw,
            owns_name,
            source: Source::EglImage(image),
            desc: desc.clone(),
            read,
        };
        // SAFETY: the texture is bound; the image is a live EGLImage of this display; the
        // entry point matching the available extension is used.
        unsafe {
            gl.bind_texture(glow::TEXTURE_2D, Some(raw));
            match (
                s.caps.egl_image_storage,
                s.fns.egl_image_target_tex_storage,
                s.fns.egl_image_target_texture_2d,
            ) {
                (true, Some(f), _) => f(glow::TEXTURE_2D, image.as_ptr(), std::ptr::null()),
                (_, _, Some(f)) => f(glow::TEXTURE_2D, image.as_ptr()),
                _ => {
                    return Err(Error::unsupported(
                        "GL_OES_EGL_image",
                        "no EGLImage target entry point",
                    ))
                }
            }
        }
        self.check_error("glEGLImageTargetTexStorageEXT")?;
        texture.set_sampling(false);
        Ok(texture)
    }

    /// A texture in GL's own storage (`glTexStorage2D`), e.g. to render into and export with
    /// [`GlTexture::export_dma_buf`].
    pub fn create_texture(&self, desc: &TextureDescriptor) -> Result<GlTexture> {
        desc.validate()?;
        let fmt = gl_format(desc)?;
        let gl = &self.shared.gl;
        // SAFETY: creating, binding and allocating a texture on the current context.
        let raw = unsafe { gl.create_texture() }.map_err(|e| Error::Gl {
            call: format!("glGenTextures: {e}"),
            code: 0,
        })?;
        let texture = GlTexture {
            ctx: self.clone(),
            raw,
            owns_name: true,
            source: Source::Own,
            desc: desc.clone(),
            read: (fmt.format, fmt.ty),
        };
        // SAFETY: as above.
        unsafe {
            gl.bind_texture(glow::TEXTURE_2D, Some(raw));
            gl.tex_storage_2d(
                glow::TEXTURE_2D,
                1,
                fmt.internal,
                desc.width as i32,
                desc.height as i32,
            );
        }
        self.check_error("glTexStorage2D")?;
        texture.set_sampling(false);
        Ok(texture)
    }
}
