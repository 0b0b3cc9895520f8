//! Geyser's own Vulkan instance: the loader, the API version, the validation layer and
//! messenger per [`super::Validation`], and what destroys them.

use std::ffi::{c_char, CStr};

use ash::vk;

use super::options::{ContextOptions, Validation};
use super::validation::debug_callback;
use crate::{Error, Result};

/// Objects Geyser created and so destroys (in this order: device, messenger, instance).
pub(crate) struct Owned {
    _entry: ash::Entry,
    debug_utils: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
}

/// An instance Geyser created, with what destroys it.
pub(crate) struct CreatedInstance {
    #[cfg_attr(not(feature = "webgpu"), allow(dead_code))]
    pub(crate) entry: ash::Entry,
    pub(crate) instance: ash::Instance,
    pub(crate) api_version: u32,
    /// The instance extensions it was created with.
    #[cfg_attr(not(feature = "webgpu"), allow(dead_code))]
    pub(crate) extensions: Vec<&'static CStr>,
    pub(crate) owned: Owned,
}

/// Creates an instance (Vulkan 1.1 to 1.3) with the validation layer and Geyser's validation
/// messenger per `options`, and the instance extensions `extra_extensions` returns for the
/// loaded entry enabled (the caller checks they exist).
pub(crate) fn create_instance(
    options: &ContextOptions,
    extra_extensions: impl FnOnce(&ash::Entry) -> Result<Vec<&'static CStr>>,
) -> Result<CreatedInstance> {
    // SAFETY: loading the Vulkan loader library runs its initialisers; we rely on the
    // system's loader being a conforming one.
    let entry = unsafe { ash::Entry::load() }.map_err(|e| Error::Loader(e.to_string()))?;
    // SAFETY: `entry` is a loaded Vulkan entry point table.
    let instance_version = unsafe { entry.try_enumerate_instance_version() }
        .map_err(Error::vk("vkEnumerateInstanceVersion"))?
        .unwrap_or(vk::API_VERSION_1_0);
    if instance_version < vk::API_VERSION_1_1 {
        return Err(Error::unsupported(
            "Vulkan 1.1",
            "the Vulkan loader is older than 1.1",
        ));
    }
    let api_version = instance_version.min(vk::API_VERSION_1_3);

    // SAFETY: as above.
    let layers = unsafe { entry.enumerate_instance_layer_properties() }
        .map_err(Error::vk("vkEnumerateInstanceLayerProperties"))?;
    let has_validation = layers
        .iter()
        .any(|l| l.layer_name_as_c_str().ok() == Some(c"VK_LAYER_KHRONOS_validation"));
    let validation = match options.validation {
        Validation::Off => false,
        Validation::IfAvailable if !has_validation => {
            tracing::warn!("VK_LAYER_KHRONOS_validation is not installed; continuing without it");
            false
        }
        Validation::Required if !has_validation => {
            return Err(Error::unsupported(
                "VK_LAYER_KHRONOS_validation",
                "validation was required but the layer is not installed (Debian/Ubuntu: apt-get install vulkan-validationlayers)",
            ))
        }
        _ => true,
    };

    let app_info = vk::ApplicationInfo::default()
        .application_name(c"geyser")
        .engine_name(c"geyser")
        .api_version(api_version);
    let layer_names: Vec<*const c_char> = if validation {
        vec![c"VK_LAYER_KHRONOS_validation".as_ptr()]
    } else {
        vec![]
    };
    let mut ext_list: Vec<&'static CStr> = extra_extensions(&entry)?;
    if validation && !ext_list.contains(&ash::ext::debug_utils::NAME) {
        ext_list.push(ash::ext::debug_utils::NAME);
    }
    let ext_names: Vec<*const c_char> = ext_list.iter().map(|e| e.as_ptr()).collect();
    let mut messenger_info = vk::DebugUtilsMessengerCreateInfoEXT::default()
        .message_severity(
            vk::DebugUtilsMessageSeverityFlagsEXT::ERROR
                | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
        )
        .message_type(
            vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                | vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
        )
        .pfn_user_callback(Some(debug_callback));
    let mut create_info = vk::InstanceCreateInfo::default()
        .application_info(&app_info)
        .enabled_layer_names(&layer_names)
        .enabled_extension_names(&ext_names);
    if validation {
        // Also catches messages from vkCreateInstance/vkDestroyInstance themselves.
        create_info = create_info.push_next(&mut messenger_info);
    }
    // SAFETY: every pointer in `create_info` points into locals that outlive the call.
    let instance = unsafe { entry.create_instance(&create_info, None) }
        .map_err(Error::vk("vkCreateInstance"))?;
    let instance = InstanceGuard(Some(instance));

    let debug_utils = if validation {
        let du = ash::ext::debug_utils::Instance::new(&entry, instance.get());
        // SAFETY: the instance was created with VK_EXT_debug_utils enabled.
        let messenger = unsafe { du.create_debug_utils_messenger(&messenger_info, None) }
            .map_err(Error::vk("vkCreateDebugUtilsMessengerEXT"))?;
        Some((du, messenger))
    } else {
        None
    };
    let owned = Owned {
        _entry: entry,
        debug_utils,
    };
    Ok(CreatedInstance {
        entry: owned._entry.clone(),
        instance: instance.into_inner(),
        api_version,
        extensions: ext_list,
        owned,
    })
}

pub(crate) fn destroy_owned(instance: &ash::Instance, owned: &mut Owned) {
    if let Some((du, messenger)) = owned.debug_utils.take() {
        // SAFETY: the messenger was created from this instance and is destroyed once.
        unsafe { du.destroy_debug_utils_messenger(messenger, None) };
    }
    // SAFETY: every child object of the instance has been destroyed by now.
    unsafe { instance.destroy_instance(None) };
}

/// Destroys an instance on early return from [`DeviceShared::create`].
struct InstanceGuard(Option<ash::Instance>);

impl InstanceGuard {
    fn get(&self) -> &ash::Instance {
        self.0.as_ref().expect("instance taken")
    }
    fn into_inner(mut self) -> ash::Instance {
        self.0.take().expect("instance taken")
    }
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        if let Some(instance) = self.0.take() {
            // SAFETY: reached only on an error path before any child object outlived it.
            unsafe { instance.destroy_instance(None) };
        }
    }
}
