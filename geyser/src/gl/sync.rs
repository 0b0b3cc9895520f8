//! [`GlSemaphore`]: a Vulkan semaphore's payload (opaque FD) imported into GL
//! (`GL_EXT_semaphore_fd`; timelines with `GL_NV_timeline_semaphore`), so GL work waits for
//! and signals Vulkan work on the GPU. Where GL has no semaphores (Mesa's llvmpipe) the
//! handoff is host-synchronized instead: the producer's fence before the frame message,
//! `glFinish` before the release.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use super::egl::GlContext;
use super::ext;
use super::texture::GlTexture;
use crate::{Error, Result};

/// A semaphore shared between Vulkan and GL. Not `Send`; drop it with its context current.
pub struct GlSemaphore {
    ctx: GlContext,
    name: u32,
    timeline: bool,
}

impl std::fmt::Debug for GlSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlSemaphore")
            .field("name", &self.name)
            .field("timeline", &self.timeline)
            .finish()
    }
}

impl Drop for GlSemaphore {
    fn drop(&mut self) {
        if let Some(delete) = self.ctx.shared.fns.delete_semaphores {
            // SAFETY: the name was made on this context and is released once.
            unsafe { delete(1, &self.name) };
        }
    }
}

/// GL names and the layout (`GL_LAYOUT_GENERAL_EXT`, Geyser's shared layout) of textures a
/// wait or signal hands over.
fn barriers(textures: &[&GlTexture]) -> (Vec<u32>, Vec<u32>) {
    let names = textures.iter().map(|t| t.name()).collect::<Vec<_>>();
    let layouts = vec![ext::LAYOUT_GENERAL; names.len()];
    (names, layouts)
}

impl GlSemaphore {
    /// Whether `ctx` can import semaphores (and timelines, with `timeline`).
    pub fn supported(ctx: &GlContext, timeline: bool) -> bool {
        let caps = ctx.caps();
        caps.semaphore_fd && (!timeline || caps.timeline_semaphore)
    }

    /// Imports an opaque-FD semaphore payload exported by Vulkan (a binary semaphore, or a
    /// timeline with `timeline`; GL then needs `GL_NV_timeline_semaphore`). GL owns the FD
    /// after a successful import; it is closed otherwise. [`Error::Unsupported`] where GL has
    /// no semaphores: use host synchronization there.
    pub fn import(ctx: &GlContext, fd: OwnedFd, timeline: bool) -> Result<Self> {
        let s = &ctx.shared;
        if !Self::supported(ctx, timeline) {
            return Err(Error::unsupported(
                if timeline { "GL_NV_timeline_semaphore" } else { "GL_EXT_semaphore_fd" },
                format!("{} cannot import Vulkan semaphores; synchronize on the host (glFinish, then release)", s.caps.renderer),
            ));
        }
        let fns = &s.fns;
        let (Some(import), Some(delete)) = (fns.import_semaphore_fd, fns.delete_semaphores) else {
            return Err(Error::unsupported(
                "GL_EXT_semaphore_fd entry points",
                "eglGetProcAddress returned none",
            ));
        };
        let mut name = 0u32;
        // SAFETY: the semaphore extensions are supported (checked); one name is written. A
        // timeline's type must be set before its payload is imported.
        unsafe {
            if timeline {
                let (Some(create), Some(param)) =
                    (fns.create_semaphores_nv, fns.semaphore_parameteriv_nv)
                else {
                    return Err(Error::unsupported(
                        "GL_NV_timeline_semaphore entry points",
                        "eglGetProcAddress returned none",
                    ));
                };
                create(1, &mut name);
                param(
                    name,
                    ext::SEMAPHORE_TYPE_NV,
                    &ext::SEMAPHORE_TYPE_TIMELINE_NV,
                );
            } else if let Some(gen) = fns.gen_semaphores {
                gen(1, &mut name);
            }
        }
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` is an opaque-FD semaphore payload we own; GL owns it on success.
        unsafe { import(name, ext::HANDLE_TYPE_OPAQUE_FD, raw) };
        if let Err(e) = ctx.check_error("glImportSemaphoreFdEXT") {
            // SAFETY: a failed import leaves the FD with us; the name is ours.
            unsafe {
                drop(OwnedFd::from_raw_fd(raw));
                delete(1, &name);
            }
            return Err(e);
        }
        Ok(Self {
            ctx: ctx.clone(),
            name,
            timeline,
        })
    }

    fn set_value(&self, value: Option<u64>) -> Result<()> {
        match (self.timeline, value) {
            (true, Some(v)) => {
                let set = self
                    .ctx
                    .shared
                    .fns
                    .semaphore_parameterui64v
                    .ok_or_else(|| {
                        Error::unsupported(
                            "glSemaphoreParameterui64vEXT",
                            "eglGetProcAddress returned none",
                        )
                    })?;
                // SAFETY: a live timeline semaphore of this context; one 64-bit value.
                unsafe { set(self.name, ext::TIMELINE_SEMAPHORE_VALUE_NV, &v) };
                Ok(())
            }
            (false, None) => Ok(()),
            (true, None) => Err(Error::InvalidArgument {
                what: "semaphore value",
                reason: "a timeline wait or signal needs a value".into(),
            }),
            (false, Some(_)) => Err(Error::InvalidArgument {
                what: "semaphore value",
                reason: "a binary semaphore takes no value".into(),
            }),
        }
    }

    /// Makes GL's next commands wait on the GPU until the semaphore is signaled (a timeline:
    /// reaches `value`); `textures` are acquired in Geyser's shared layout.
    pub fn wait(&self, value: Option<u64>, textures: &[&GlTexture]) -> Result<()> {
        self.set_value(value)?;
        let wait = self.ctx.shared.fns.wait_semaphore.ok_or_else(|| {
            Error::unsupported("glWaitSemaphoreEXT", "eglGetProcAddress returned none")
        })?;
        let (names, layouts) = barriers(textures);
        // SAFETY: a live semaphore; the arrays hold one entry per texture.
        unsafe {
            wait(
                self.name,
                0,
                std::ptr::null(),
                names.len() as u32,
                names.as_ptr(),
                layouts.as_ptr(),
            )
        };
        self.ctx.check_error("glWaitSemaphoreEXT")
    }

    /// Signals the semaphore (a timeline: to `value`) after GL's commands so far, releasing
    /// `textures` in Geyser's shared layout; flushes so the signal reaches the GPU.
    pub fn signal(&self, value: Option<u64>, textures: &[&GlTexture]) -> Result<()> {
        self.set_value(value)?;
        let signal = self.ctx.shared.fns.signal_semaphore.ok_or_else(|| {
            Error::unsupported("glSignalSemaphoreEXT", "eglGetProcAddress returned none")
        })?;
        let (names, layouts) = barriers(textures);
        // SAFETY: a live semaphore; the arrays hold one entry per texture.
        unsafe {
            signal(
                self.name,
                0,
                std::ptr::null(),
                names.len() as u32,
                names.as_ptr(),
                layouts.as_ptr(),
            )
        };
        self.ctx.flush();
        self.ctx.check_error("glSignalSemaphoreEXT")
    }
}
