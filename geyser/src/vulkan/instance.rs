//! Geyser's own Vulkan instance: what it enables ([`InstanceRecipe`]: the API version, the
//! validation layer per [`Validation`], extensions) and [`OwnedInstance`], which destroys it;
//! and the instance that is never destroyed ([`keep_drivers_loaded`]).

use std::ffi::{c_char, CStr};
use std::sync::OnceLock;

use ash::vk;

use super::options::{ContextOptions, Validation};
use super::validation;
use crate::{Error, Result};

const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// Loads the system's Vulkan loader.
pub(crate) fn load_entry() -> Result<ash::Entry> {
    // SAFETY: loading the Vulkan loader library runs its initialisers; we rely on the
    // system's loader being a conforming one.
    unsafe { ash::Entry::load() }.map_err(|e| Error::Loader(e.to_string()))
}

/// What an instance Geyser creates enables, decided against the loader before it is created.
pub(crate) struct InstanceRecipe {
    /// The loader's Vulkan version, 1.1 to 1.3 (capped at 1.3).
    pub(crate) api_version: u32,
    /// Whether `VK_LAYER_KHRONOS_validation` and Geyser's validation messenger are enabled.
    pub(crate) validation: bool,
    /// Every instance extension to enable: the caller's, and `VK_EXT_debug_utils` when
    /// validation is on.
    pub(crate) extensions: Vec<&'static CStr>,
}

impl InstanceRecipe {
    /// The layers to enable: the validation layer or none.
    fn layer_names(&self) -> Vec<*const c_char> {
        if self.validation {
            vec![VALIDATION_LAYER.as_ptr()]
        } else {
            vec![]
        }
    }

    /// Checks the loader's version (1.1 at least) and the validation layer against `options`,
    /// and adds `extensions`, which the caller has checked the loader offers.
    pub(crate) fn new(
        entry: &ash::Entry,
        options: &ContextOptions,
        mut extensions: Vec<&'static CStr>,
    ) -> Result<Self> {
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
        // SAFETY: as above.
        let layers = unsafe { entry.enumerate_instance_layer_properties() }
            .map_err(Error::vk("vkEnumerateInstanceLayerProperties"))?;
        let has_validation = layers
            .iter()
            .any(|l| l.layer_name_as_c_str().ok() == Some(VALIDATION_LAYER));
        let validation = match options.validation {
            Validation::Off => false,
            Validation::IfAvailable if !has_validation => {
                tracing::warn!(
                    "VK_LAYER_KHRONOS_validation is not installed; continuing without it"
                );
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
        if validation && !extensions.contains(&ash::ext::debug_utils::NAME) {
            extensions.push(ash::ext::debug_utils::NAME);
        }
        Ok(Self {
            api_version: instance_version.min(vk::API_VERSION_1_3),
            validation,
            extensions,
        })
    }
}

/// An instance Geyser created, with the loader and the validation messenger it needs.
/// Dropping it destroys the messenger, then the instance: every object made from the instance
/// must be gone by then.
pub(crate) struct OwnedInstance {
    instance: ash::Instance,
    messenger: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    /// Keeps the loader library loaded while the instance lives.
    _entry: ash::Entry,
}

impl OwnedInstance {
    /// Creates the instance `recipe` describes, with Geyser's validation messenger when it
    /// enables validation.
    pub(crate) fn create(entry: ash::Entry, recipe: &InstanceRecipe) -> Result<Self> {
        keep_drivers_loaded(&entry, recipe);
        let app_info = vk::ApplicationInfo::default()
            .application_name(c"geyser")
            .engine_name(c"geyser")
            .api_version(recipe.api_version);
        let layer_names = recipe.layer_names();
        let ext_names: Vec<*const c_char> = recipe.extensions.iter().map(|e| e.as_ptr()).collect();
        let mut messenger_info = validation::messenger_info();
        let mut create_info = vk::InstanceCreateInfo::default()
            .application_info(&app_info)
            .enabled_layer_names(&layer_names)
            .enabled_extension_names(&ext_names);
        if recipe.validation {
            // Also catches messages from vkCreateInstance/vkDestroyInstance themselves.
            create_info = create_info.push_next(&mut messenger_info);
        }
        // SAFETY: every pointer in `create_info` points into locals that outlive the call.
        let instance = unsafe { entry.create_instance(&create_info, None) }
            .map_err(Error::vk("vkCreateInstance"))?;
        // From here on, an early return destroys the instance.
        let mut owned = Self {
            instance,
            messenger: None,
            _entry: entry,
        };
        if recipe.validation {
            let du = ash::ext::debug_utils::Instance::new(&owned._entry, &owned.instance);
            // SAFETY: the instance was created with VK_EXT_debug_utils enabled.
            let messenger = unsafe { du.create_debug_utils_messenger(&messenger_info, None) }
                .map_err(Error::vk("vkCreateDebugUtilsMessengerEXT"))?;
            owned.messenger = Some((du, messenger));
        }
        Ok(owned)
    }

    /// The instance, valid while `self` lives.
    pub(crate) fn raw(&self) -> &ash::Instance {
        &self.instance
    }
}

/// Creates, once per process, an instance with the layers of the first `recipe` that is never
/// destroyed (nor its loader library unloaded), so the loader keeps the drivers and layers
/// loaded for the life of the process. Otherwise destroying the last instance unloads them,
/// and a thread that called into the driver and exits later (a GStreamer streaming thread,
/// say) runs the driver's thread-local destructors from unmapped code: NVIDIA's driver
/// crashed `geysersrc`'s tests that way (SIGSEGV at thread exit; with the driver kept loaded
/// they passed). Failing to create it only logs.
fn keep_drivers_loaded(entry: &ash::Entry, recipe: &InstanceRecipe) {
    static KEPT: OnceLock<()> = OnceLock::new();
    KEPT.get_or_init(|| {
        let app_info = vk::ApplicationInfo::default()
            .application_name(c"geyser (keeps the drivers loaded)")
            .api_version(recipe.api_version);
        let layer_names = recipe.layer_names();
        let create_info = vk::InstanceCreateInfo::default()
            .application_info(&app_info)
            .enabled_layer_names(&layer_names);
        // SAFETY: every pointer in `create_info` points into locals that outlive the call.
        match unsafe { entry.create_instance(&create_info, None) } {
            // Never destroyed (ash's `Instance` has no destructor), and the loader library
            // it came from never unloaded (a forgotten clone of the entry holds it).
            Ok(_never_destroyed) => std::mem::forget(entry.clone()),
            Err(e) => tracing::debug!("the instance that keeps the drivers loaded: {e}"),
        }
    });
}

impl Drop for OwnedInstance {
    fn drop(&mut self) {
        if let Some((du, messenger)) = self.messenger.take() {
            // SAFETY: the messenger was created from this instance and is destroyed once.
            unsafe { du.destroy_debug_utils_messenger(messenger, None) };
        }
        // SAFETY: we created the instance; its owner destroyed every object made from it
        // before dropping this (see the type's docs).
        unsafe { self.instance.destroy_instance(None) };
    }
}
