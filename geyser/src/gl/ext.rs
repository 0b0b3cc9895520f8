//! The GL and EGL extension entry points glow does not have (memory objects, semaphores,
//! EGLImage targets, DMA-BUF queries and export, a few GL 4.4/4.5 calls), loaded through
//! `eglGetProcAddress`, and their enums. Only this file transmutes function pointers.

use std::ffi::c_void;

/// `GL_TEXTURE_TILING_EXT`.
pub(crate) const TEXTURE_TILING: u32 = 0x9580;
/// `GL_DEDICATED_MEMORY_OBJECT_EXT`.
pub(crate) const DEDICATED_MEMORY_OBJECT: u32 = 0x9581;
/// `GL_OPTIMAL_TILING_EXT`.
pub(crate) const OPTIMAL_TILING: i32 = 0x9584;
/// `GL_LINEAR_TILING_EXT`.
pub(crate) const LINEAR_TILING: i32 = 0x9585;
/// `GL_HANDLE_TYPE_OPAQUE_FD_EXT` (memory objects and semaphores).
pub(crate) const HANDLE_TYPE_OPAQUE_FD: u32 = 0x9586;
/// `GL_NUM_DEVICE_UUIDS_EXT`.
pub(crate) const NUM_DEVICE_UUIDS: u32 = 0x9596;
/// `GL_DEVICE_UUID_EXT`.
pub(crate) const DEVICE_UUID: u32 = 0x9597;
/// `GL_DRIVER_UUID_EXT`.
pub(crate) const DRIVER_UUID: u32 = 0x9598;
/// `GL_LAYOUT_GENERAL_EXT`: Vulkan's `GENERAL`, Geyser's layout between accesses.
pub(crate) const LAYOUT_GENERAL: u32 = 0x958D;
/// `GL_SEMAPHORE_TYPE_NV`.
pub(crate) const SEMAPHORE_TYPE_NV: u32 = 0x95B3;
/// `GL_SEMAPHORE_TYPE_TIMELINE_NV`.
pub(crate) const SEMAPHORE_TYPE_TIMELINE_NV: i32 = 0x95B5;
/// `GL_TIMELINE_SEMAPHORE_VALUE_NV`.
pub(crate) const TIMELINE_SEMAPHORE_VALUE_NV: u32 = 0x9595;

/// `EGL_PLATFORM_SURFACELESS_MESA`.
pub(crate) const PLATFORM_SURFACELESS_MESA: khronos_egl::Enum = 0x31DD;
/// `EGL_PLATFORM_DEVICE_EXT`.
pub(crate) const PLATFORM_DEVICE: khronos_egl::Enum = 0x313F;
/// `EGL_LINUX_DMA_BUF_EXT`.
pub(crate) const LINUX_DMA_BUF: khronos_egl::Enum = 0x3270;
/// `EGL_LINUX_DRM_FOURCC_EXT`.
pub(crate) const LINUX_DRM_FOURCC: khronos_egl::Attrib = 0x3271;
/// `EGL_GL_TEXTURE_2D_KHR`.
pub(crate) const GL_TEXTURE_2D_KHR: khronos_egl::Enum = 0x30B1;
/// Per plane: `EGL_DMA_BUF_PLANEi_FD_EXT`, `_OFFSET_EXT`, `_PITCH_EXT`, `_MODIFIER_LO_EXT`,
/// `_MODIFIER_HI_EXT`.
pub(crate) const PLANE_ATTRIBS: [[khronos_egl::Attrib; 5]; 4] = [
    [0x3272, 0x3273, 0x3274, 0x3443, 0x3444],
    [0x3275, 0x3276, 0x3277, 0x3445, 0x3446],
    [0x3278, 0x3279, 0x327A, 0x3447, 0x3448],
    [0x3440, 0x3441, 0x3442, 0x3449, 0x344A],
];

macro_rules! entry_points {
    ($( $(#[$doc:meta])* $field:ident: $name:literal => fn($($arg:ty),*) $(-> $ret:ty)?; )*) => {
        /// Entry points loaded through `eglGetProcAddress`; `None` where the loader had none.
        /// Whether an extension may be used is decided from the extension strings, never from
        /// a pointer being there (Mesa returns pointers for every name).
        #[allow(clippy::type_complexity)]
        pub(crate) struct EntryPoints {
            $( $(#[$doc])* pub(crate) $field: Option<unsafe extern "system" fn($($arg),*) $(-> $ret)?>, )*
        }

        impl EntryPoints {
            /// Looks every entry point up.
            pub(crate) fn load(egl: &super::egl::EglLib) -> Self {
                Self {
                    $( $field: egl.get_proc_address($name).map(|f| {
                        // SAFETY: `f` is the address EGL returns for `$name`, whose C
                        // signature (from the Khronos registry) is the one declared here;
                        // both are `extern "system"` function pointers of the same size.
                        unsafe {
                            std::mem::transmute::<extern "system" fn(), unsafe extern "system" fn($($arg),*) $(-> $ret)?>(f)
                        }
                    }), )*
                }
            }
        }
    };
}

entry_points! {
    /// `glCreateMemoryObjectsEXT(n, memoryObjects)`.
    create_memory_objects: "glCreateMemoryObjectsEXT" => fn(i32, *mut u32);
    /// `glDeleteMemoryObjectsEXT(n, memoryObjects)`.
    delete_memory_objects: "glDeleteMemoryObjectsEXT" => fn(i32, *const u32);
    /// `glMemoryObjectParameterivEXT(memoryObject, pname, params)`.
    memory_object_parameteriv: "glMemoryObjectParameterivEXT" => fn(u32, u32, *const i32);
    /// `glImportMemoryFdEXT(memory, size, handleType, fd)`: GL owns `fd` on success.
    import_memory_fd: "glImportMemoryFdEXT" => fn(u32, u64, u32, i32);
    /// `glTexStorageMem2DEXT(target, levels, internalFormat, width, height, memory, offset)`.
    tex_storage_mem_2d: "glTexStorageMem2DEXT" => fn(u32, i32, u32, i32, i32, u32, u64);
    /// `glGetUnsignedBytevEXT(pname, data)`.
    get_unsigned_bytev: "glGetUnsignedBytevEXT" => fn(u32, *mut u8);
    /// `glGetUnsignedBytei_vEXT(target, index, data)`.
    get_unsigned_bytei_v: "glGetUnsignedBytei_vEXT" => fn(u32, u32, *mut u8);
    /// `glGenSemaphoresEXT(n, semaphores)`.
    gen_semaphores: "glGenSemaphoresEXT" => fn(i32, *mut u32);
    /// `glDeleteSemaphoresEXT(n, semaphores)`.
    delete_semaphores: "glDeleteSemaphoresEXT" => fn(i32, *const u32);
    /// `glImportSemaphoreFdEXT(semaphore, handleType, fd)`: GL owns `fd` on success.
    import_semaphore_fd: "glImportSemaphoreFdEXT" => fn(u32, u32, i32);
    /// `glWaitSemaphoreEXT(semaphore, numBuffers, buffers, numTextures, textures, srcLayouts)`.
    wait_semaphore: "glWaitSemaphoreEXT" => fn(u32, u32, *const u32, u32, *const u32, *const u32);
    /// `glSignalSemaphoreEXT(semaphore, numBuffers, buffers, numTextures, textures, dstLayouts)`.
    signal_semaphore: "glSignalSemaphoreEXT" => fn(u32, u32, *const u32, u32, *const u32, *const u32);
    /// `glSemaphoreParameterui64vEXT(semaphore, pname, params)`.
    semaphore_parameterui64v: "glSemaphoreParameterui64vEXT" => fn(u32, u32, *const u64);
    /// `glCreateSemaphoresNV(n, semaphores)` (GL_NV_timeline_semaphore).
    create_semaphores_nv: "glCreateSemaphoresNV" => fn(i32, *mut u32);
    /// `glSemaphoreParameterivNV(semaphore, pname, params)`.
    semaphore_parameteriv_nv: "glSemaphoreParameterivNV" => fn(u32, u32, *const i32);
    /// `glEGLImageTargetTexStorageEXT(target, image, attribs)` (GL_EXT_EGL_image_storage).
    egl_image_target_tex_storage: "glEGLImageTargetTexStorageEXT" => fn(u32, *const c_void, *const i32);
    /// `glEGLImageTargetTexture2DOES(target, image)` (GL_OES_EGL_image).
    egl_image_target_texture_2d: "glEGLImageTargetTexture2DOES" => fn(u32, *const c_void);
    /// `glGetTextureSubImage(texture, level, x, y, z, w, h, d, format, type, bufSize, pixels)` (GL 4.5).
    get_texture_sub_image: "glGetTextureSubImage" => fn(u32, i32, i32, i32, i32, i32, i32, i32, u32, u32, i32, *mut c_void);
    /// `glClearTexImage(texture, level, format, type, data)` (GL 4.4).
    clear_tex_image: "glClearTexImage" => fn(u32, i32, u32, u32, *const c_void);
    /// `eglQueryDmaBufModifiersEXT(dpy, format, max, modifiers, externalOnly, num)`.
    query_dma_buf_modifiers: "eglQueryDmaBufModifiersEXT" => fn(*mut c_void, i32, i32, *mut u64, *mut u32, *mut i32) -> u32;
    /// `eglExportDMABUFImageQueryMESA(dpy, image, fourcc, numPlanes, modifiers)`.
    export_dma_buf_query: "eglExportDMABUFImageQueryMESA" => fn(*mut c_void, *mut c_void, *mut i32, *mut i32, *mut u64) -> u32;
    /// `eglExportDMABUFImageMESA(dpy, image, fds, strides, offsets)`.
    export_dma_buf: "eglExportDMABUFImageMESA" => fn(*mut c_void, *mut c_void, *mut i32, *mut i32, *mut i32) -> u32;
    /// `eglQueryDevicesEXT(max, devices, num)`.
    query_devices: "eglQueryDevicesEXT" => fn(i32, *mut *mut c_void, *mut i32) -> u32;
}

/// Names of EGL error codes, for messages.
pub(crate) fn egl_error_name(e: khronos_egl::Error) -> String {
    format!("{e:?} ({e})")
}
