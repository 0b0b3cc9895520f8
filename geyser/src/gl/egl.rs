//! [`GlContext`]: an OpenGL context reached through EGL — a headless one Geyser makes
//! (surfaceless or device platform, GL 4.5 core, no window) or the application's current one —
//! with what it can share ([`GlCaps`]) and the extension entry points glow lacks.

use std::ffi::c_void;
use std::rc::Rc;

use glow::HasContext;
use khronos_egl as egl;
use serde::Serialize;

use super::ext::{self, EntryPoints};
use crate::common::uuid_string;
use crate::{Error, Result};

/// libEGL, loaded at run time (`libEGL.so.1`): building needs no EGL, and a machine without it
/// gets [`Error::Unsupported`].
pub(crate) struct EglLib(egl::DynamicInstance<egl::EGL1_5>);

impl EglLib {
    pub(crate) fn load() -> Result<Self> {
        // SAFETY: loads the system's libEGL; khronos-egl checks that every EGL 1.5 symbol it
        // binds exists.
        unsafe { egl::DynamicInstance::<egl::EGL1_5>::load_required() }
            .map(EglLib)
            .map_err(|e| {
                Error::unsupported(
                    "EGL 1.5",
                    format!("cannot load libEGL.so.1 ({e}); install it (Debian/Ubuntu: libegl1 and a driver, e.g. libegl-mesa0)"),
                )
            })
    }

    pub(crate) fn api(&self) -> &egl::DynamicInstance<egl::EGL1_5> {
        &self.0
    }

    pub(crate) fn get_proc_address(&self, name: &str) -> Option<extern "system" fn()> {
        self.0.get_proc_address(name)
    }
}

/// What a GL context can share, from its GL and EGL extension strings and UUIDs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GlCaps {
    /// How the context was reached: `surfaceless`, `device` or `current`.
    pub platform: String,
    /// `GL_VENDOR`.
    pub vendor: String,
    /// `GL_RENDERER`.
    pub renderer: String,
    /// `GL_VERSION`.
    pub version: String,
    /// `GL_EXT_memory_object_fd`: opaque-FD memory (Vulkan's exports) as GL textures.
    pub memory_object_fd: bool,
    /// `GL_EXT_semaphore_fd`: Vulkan semaphores waited on and signaled by GL.
    pub semaphore_fd: bool,
    /// `GL_NV_timeline_semaphore`: those semaphores may be timelines.
    pub timeline_semaphore: bool,
    /// `EGL_EXT_image_dma_buf_import` on the context's display.
    pub dma_buf_import: bool,
    /// `EGL_EXT_image_dma_buf_import_modifiers`.
    pub dma_buf_import_modifiers: bool,
    /// `EGL_MESA_image_dma_buf_export`: GL textures exported as DMA-BUFs.
    pub dma_buf_export: bool,
    /// `GL_EXT_EGL_image_storage` (immutable storage from an EGLImage), else
    /// `GL_OES_EGL_image` is used.
    pub egl_image_storage: bool,
    /// `GL_DEVICE_UUID_EXT` for each device the context runs on (memory objects).
    #[serde(serialize_with = "ser_uuids")]
    pub device_uuids: Vec<[u8; 16]>,
    /// `GL_DRIVER_UUID_EXT`.
    #[serde(serialize_with = "ser_uuid_opt")]
    pub driver_uuid: Option<[u8; 16]>,
}

fn ser_uuids<S: serde::Serializer>(u: &[[u8; 16]], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(u.iter().map(uuid_string))
}

fn ser_uuid_opt<S: serde::Serializer>(
    u: &Option<[u8; 16]>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match u {
        Some(u) => s.serialize_str(&uuid_string(u)),
        None => s.serialize_none(),
    }
}

/// The state every GL object of one context shares: GL and EGL function tables, the display
/// and context, and whether Geyser made the context (and destroys it).
pub(crate) struct GlShared {
    pub(crate) gl: glow::Context,
    pub(crate) egl: EglLib,
    pub(crate) display: egl::Display,
    pub(crate) context: egl::Context,
    pub(crate) fns: EntryPoints,
    pub(crate) caps: GlCaps,
    owned: bool,
}

impl Drop for GlShared {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let api = self.egl.api();
        if api.get_current_context() == Some(self.context) {
            let _ = api.make_current(self.display, None, None, None);
        }
        // The display is shared by every context of the process on this platform and is
        // never terminated: other contexts may still use it.
        if let Err(e) = api.destroy_context(self.display, self.context) {
            tracing::warn!("eglDestroyContext: {e}");
        }
    }
}

/// An OpenGL context Geyser imports textures into. Not `Send`: GL work happens on the thread
/// where the context is current (make it current with [`Self::make_current`] after using
/// another context on that thread). Cloning is cheap; the context is destroyed (if Geyser made
/// it) when the last clone and the last texture made on it are gone.
#[derive(Clone)]
pub struct GlContext {
    pub(crate) shared: Rc<GlShared>,
}

impl std::fmt::Debug for GlContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlContext")
            .field("platform", &self.shared.caps.platform)
            .field("renderer", &self.shared.caps.renderer)
            .finish()
    }
}

fn display_extensions(
    api: &egl::DynamicInstance<egl::EGL1_5>,
    dpy: Option<egl::Display>,
) -> String {
    api.query_string(dpy, egl::EXTENSIONS)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn has(list: &str, name: &str) -> bool {
    list.split_ascii_whitespace().any(|e| e == name)
}

impl GlContext {
    /// A headless GL 4.5 core context of Geyser's own, current on this thread: on the
    /// surfaceless platform (`EGL_MESA_platform_surfaceless`) where EGL offers it, else on the
    /// first device of `EGL_EXT_platform_device` (the NVIDIA driver's way). No window, no
    /// display server.
    pub fn headless() -> Result<Self> {
        let lib = EglLib::load()?;
        let api = lib.api();
        let client = display_extensions(api, None);
        let fns = EntryPoints::load(&lib);
        let mut tried = Vec::new();
        let mut displays = Vec::new();
        if has(&client, "EGL_MESA_platform_surfaceless") {
            // SAFETY: the surfaceless platform takes EGL_DEFAULT_DISPLAY and no attributes.
            match unsafe {
                api.get_platform_display(
                    ext::PLATFORM_SURFACELESS_MESA,
                    egl::DEFAULT_DISPLAY,
                    &[egl::ATTRIB_NONE],
                )
            } {
                Ok(d) => displays.push(("surfaceless", d)),
                Err(e) => tried.push(format!("surfaceless: {e}")),
            }
        }
        if has(&client, "EGL_EXT_platform_device") && has(&client, "EGL_EXT_device_enumeration") {
            if let Some(query) = fns.query_devices {
                let mut devices = [std::ptr::null_mut::<c_void>(); 8];
                let mut n = 0;
                // SAFETY: the array has room for 8 devices; `n` receives the count.
                let ok = unsafe { query(8, devices.as_mut_ptr(), &mut n) };
                for dev in devices
                    .iter()
                    .take(if ok != 0 { n.max(0) as usize } else { 0 })
                {
                    // SAFETY: `dev` is an EGLDeviceEXT EGL returned; the device platform takes
                    // no attributes.
                    match unsafe {
                        api.get_platform_display(ext::PLATFORM_DEVICE, *dev, &[egl::ATTRIB_NONE])
                    } {
                        Ok(d) => displays.push(("device", d)),
                        Err(e) => tried.push(format!("device: {e}")),
                    }
                }
            }
        }
        for (platform, display) in displays {
            match Self::create_on(EglLib::load()?, display, platform) {
                Ok(ctx) => return Ok(ctx),
                Err(e) => tried.push(format!("{platform}: {e}")),
            }
        }
        Err(Error::unsupported(
            "headless EGL context (GL 4.5 core)",
            if tried.is_empty() {
                format!("EGL offers neither EGL_MESA_platform_surfaceless nor EGL_EXT_platform_device (client extensions: {client})")
            } else {
                tried.join("; ")
            },
        ))
    }

    fn create_on(lib: EglLib, display: egl::Display, platform: &str) -> Result<Self> {
        let api = lib.api();
        api.initialize(display)
            .map_err(|e| Error::unsupported("eglInitialize", ext::egl_error_name(e)))?;
        let exts = display_extensions(api, Some(display));
        for needed in ["EGL_KHR_surfaceless_context", "EGL_KHR_no_config_context"] {
            if !has(&exts, needed) {
                return Err(Error::unsupported(needed, "the EGL display lacks it"));
            }
        }
        api.bind_api(egl::OPENGL_API).map_err(|e| {
            Error::unsupported("desktop OpenGL through EGL", ext::egl_error_name(e))
        })?;
        // SAFETY: EGL_KHR_no_config_context (checked) accepts EGL_NO_CONFIG_KHR, a null config.
        let no_config = unsafe { egl::Config::from_ptr(std::ptr::null_mut()) };
        let attrs = [
            egl::CONTEXT_MAJOR_VERSION,
            4,
            egl::CONTEXT_MINOR_VERSION,
            5,
            egl::CONTEXT_OPENGL_PROFILE_MASK,
            egl::CONTEXT_OPENGL_CORE_PROFILE_BIT,
            egl::NONE,
        ];
        let context = api
            .create_context(display, no_config, None, &attrs)
            .map_err(|e| Error::unsupported("a GL 4.5 core context", ext::egl_error_name(e)))?;
        if let Err(e) = api.make_current(display, None, None, Some(context)) {
            let _ = api.destroy_context(display, context);
            return Err(Error::unsupported(
                "a surfaceless current context",
                ext::egl_error_name(e),
            ));
        }
        Ok(Self::finish(lib, display, context, platform, true))
    }

    /// The application's GL context that is current on this thread through EGL (three-d,
    /// glutin with EGL, SDL with EGL, a compositor). Geyser never destroys it. GLX contexts are
    /// not supported ([`Error::Unsupported`]: no current EGL context).
    pub fn current() -> Result<Self> {
        let lib = EglLib::load()?;
        let api = lib.api();
        let (Some(display), Some(context)) = (api.get_current_display(), api.get_current_context())
        else {
            return Err(Error::unsupported(
                "the current GL context",
                "no EGL context is current on this thread (GLX contexts are not supported; create the context with EGL)",
            ));
        };
        Ok(Self::finish(lib, display, context, "current", false))
    }

    fn finish(
        lib: EglLib,
        display: egl::Display,
        context: egl::Context,
        platform: &str,
        owned: bool,
    ) -> Self {
        // SAFETY: the context is current on this thread; glow only stores the pointers.
        let gl = unsafe {
            glow::Context::from_loader_function(|name| {
                lib.get_proc_address(name)
                    .map_or(std::ptr::null(), |f| f as *const c_void)
            })
        };
        let fns = EntryPoints::load(&lib);
        let caps = query_caps(&gl, &lib, display, &fns, platform);
        GlContext {
            shared: Rc::new(GlShared {
                gl,
                egl: lib,
                display,
                context,
                fns,
                caps,
                owned,
            }),
        }
    }

    /// Makes the context current on this thread (again).
    pub fn make_current(&self) -> Result<()> {
        let s = &self.shared;
        let api = s.egl.api();
        if api.get_current_context() == Some(s.context) {
            return Ok(());
        }
        api.make_current(s.display, None, None, Some(s.context))
            .map_err(|e| Error::unsupported("eglMakeCurrent", ext::egl_error_name(e)))
    }

    /// What the context can share.
    pub fn caps(&self) -> &GlCaps {
        &self.shared.caps
    }

    /// glow's view of the context, for the application's own GL calls.
    pub fn gl(&self) -> &glow::Context {
        &self.shared.gl
    }

    /// `glFinish`: waits until every GL command issued so far has completed (the host-sync
    /// handoff where GL has no shared semaphores).
    pub fn finish_all(&self) {
        // SAFETY: a plain GL call on the current context.
        unsafe { self.shared.gl.finish() }
    }

    /// `glFlush`.
    pub fn flush(&self) {
        // SAFETY: a plain GL call on the current context.
        unsafe { self.shared.gl.flush() }
    }

    /// The DRM format modifiers EGL imports `fourcc` with (`eglQueryDmaBufModifiersEXT`;
    /// empty without `EGL_EXT_image_dma_buf_import_modifiers`), external-only ones left out:
    /// what an exporter negotiates against ([`crate::vulkan::TextureMemory::DmaBuf`]).
    pub fn importable_modifiers(&self, fourcc: crate::common::DrmFourcc) -> Vec<u64> {
        let s = &self.shared;
        let Some(query) = s
            .fns
            .query_dma_buf_modifiers
            .filter(|_| s.caps.dma_buf_import_modifiers)
        else {
            return Vec::new();
        };
        let mut n = 0;
        // SAFETY: a count query (max 0, null arrays) on our display.
        let ok = unsafe {
            query(
                s.display.as_ptr(),
                fourcc as i32,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut n,
            )
        };
        if ok == 0 || n <= 0 {
            return Vec::new();
        }
        let mut modifiers = vec![0u64; n as usize];
        let mut external = vec![0u32; n as usize];
        // SAFETY: both arrays hold `n` entries.
        let ok = unsafe {
            query(
                s.display.as_ptr(),
                fourcc as i32,
                n,
                modifiers.as_mut_ptr(),
                external.as_mut_ptr(),
                &mut n,
            )
        };
        if ok == 0 {
            return Vec::new();
        }
        modifiers
            .into_iter()
            .zip(external)
            .take(n.max(0) as usize)
            .filter(|(_, ext_only)| *ext_only == 0)
            .map(|(m, _)| m)
            .collect()
    }

    /// A GL error left by the last calls, as [`Error::Unsupported`] naming `what`.
    pub(crate) fn check_error(&self, what: &str) -> Result<()> {
        // SAFETY: a plain GL call on the current context.
        let e = unsafe { self.shared.gl.get_error() };
        if e == glow::NO_ERROR {
            return Ok(());
        }
        // Drain the rest of the queue so the next check starts clean.
        // SAFETY: as above.
        while unsafe { self.shared.gl.get_error() } != glow::NO_ERROR {}
        Err(Error::Gl {
            call: what.to_string(),
            code: e,
        })
    }
}

fn query_caps(
    gl: &glow::Context,
    lib: &EglLib,
    display: egl::Display,
    fns: &EntryPoints,
    platform: &str,
) -> GlCaps {
    let api = lib.api();
    let egl_exts = display_extensions(api, Some(display));
    let gl_has = |e: &str| gl.supported_extensions().contains(e);
    // SAFETY: plain queries on the current context.
    let (vendor, renderer, version) = unsafe {
        (
            gl.get_parameter_string(glow::VENDOR),
            gl.get_parameter_string(glow::RENDERER),
            gl.get_parameter_string(glow::VERSION),
        )
    };
    let memory_object_fd = gl_has("GL_EXT_memory_object") && gl_has("GL_EXT_memory_object_fd");
    let mut device_uuids = Vec::new();
    let mut driver_uuid = None;
    if memory_object_fd {
        if let (Some(bytei), Some(bytev)) = (fns.get_unsigned_bytei_v, fns.get_unsigned_bytev) {
            // SAFETY: GL_EXT_memory_object is supported; each query writes GL_UUID_SIZE_EXT
            // (16) bytes into a 16-byte array.
            unsafe {
                let n = gl.get_parameter_i32(ext::NUM_DEVICE_UUIDS).clamp(0, 8);
                for i in 0..n {
                    let mut u = [0u8; 16];
                    bytei(ext::DEVICE_UUID, i as u32, u.as_mut_ptr());
                    device_uuids.push(u);
                }
                let mut u = [0u8; 16];
                bytev(ext::DRIVER_UUID, u.as_mut_ptr());
                driver_uuid = Some(u);
            }
        }
    }
    GlCaps {
        platform: platform.to_string(),
        vendor,
        renderer,
        version,
        memory_object_fd,
        semaphore_fd: gl_has("GL_EXT_semaphore") && gl_has("GL_EXT_semaphore_fd"),
        timeline_semaphore: gl_has("GL_NV_timeline_semaphore"),
        dma_buf_import: has(&egl_exts, "EGL_EXT_image_dma_buf_import")
            && (gl_has("GL_OES_EGL_image") || gl_has("GL_EXT_EGL_image_storage")),
        dma_buf_import_modifiers: has(&egl_exts, "EGL_EXT_image_dma_buf_import_modifiers"),
        dma_buf_export: has(&egl_exts, "EGL_MESA_image_dma_buf_export")
            && has(&egl_exts, "EGL_KHR_gl_texture_2D_image"),
        egl_image_storage: gl_has("GL_EXT_EGL_image_storage"),
        device_uuids,
        driver_uuid,
    }
}
