//! The Vulkan device a manager works on: either the caller's (borrowed, never destroyed) or one
//! Geyser creates with the extensions sharing needs, chosen by [`DeviceSelector`].

use std::ffi::{c_char, c_void, CStr};
use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;

use super::caps::{self, DeviceIdentity};
use super::diagnostics;
use super::os;
use crate::common::{parse_uuid, uuid_string};
use crate::{Error, Result};

/// Whether to enable `VK_LAYER_KHRONOS_validation` on an instance Geyser creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Validation {
    /// No validation layer.
    Off,
    /// Enable it when installed; continue without it (with a warning) otherwise.
    #[default]
    IfAvailable,
    /// Enable it, or fail with [`Error::Unsupported`] when it is not installed.
    Required,
}

impl Validation {
    /// From `GEYSER_VALIDATION`: `1`/`on`/`required` → Required, `auto` → IfAvailable,
    /// unset or anything else → Off.
    pub fn from_env() -> Self {
        match std::env::var("GEYSER_VALIDATION").as_deref() {
            Ok("1" | "on" | "required" | "true") => Validation::Required,
            Ok("auto") => Validation::IfAvailable,
            _ => Validation::Off,
        }
    }
}

/// Which physical device to use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DeviceSelector {
    /// The first discrete GPU, else integrated, else virtual, else CPU (lavapipe).
    #[default]
    Best,
    /// By position in `vkEnumeratePhysicalDevices` order (as `geyser info` lists them).
    Index(usize),
    /// By `deviceUUID`.
    Uuid([u8; 16]),
    /// By PCI address `domain:bus:device.function` (needs `VK_EXT_pci_bus_info`).
    PciBus(String),
    /// By case-insensitive substring of the device name.
    Name(String),
}

impl DeviceSelector {
    /// Parses `GEYSER_DEVICE`-style text: a number is an index, 32 hex digits (dashes allowed)
    /// a UUID, `pci:0000:01:00.0` a PCI address, anything else a name substring.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if let Ok(i) = s.parse::<usize>() {
            DeviceSelector::Index(i)
        } else if let Some(uuid) = parse_uuid(s) {
            DeviceSelector::Uuid(uuid)
        } else if let Some(pci) = s.strip_prefix("pci:") {
            DeviceSelector::PciBus(pci.to_ascii_lowercase())
        } else if s.is_empty() {
            DeviceSelector::Best
        } else {
            DeviceSelector::Name(s.to_string())
        }
    }

    /// The selector named by `GEYSER_DEVICE`, or [`DeviceSelector::Best`] when it is unset.
    pub fn from_env() -> Self {
        std::env::var("GEYSER_DEVICE")
            .map(|s| Self::parse(&s))
            .unwrap_or_default()
    }

    fn describe(&self) -> String {
        match self {
            DeviceSelector::Best => "best device".into(),
            DeviceSelector::Index(i) => format!("index {i}"),
            DeviceSelector::Uuid(u) => format!("uuid {}", uuid_string(u)),
            DeviceSelector::PciBus(p) => format!("pci {p}"),
            DeviceSelector::Name(n) => format!("name containing `{n}`"),
        }
    }

    /// Picks a device from `devices` (in enumeration order).
    pub fn select<'a>(&self, devices: &'a [DeviceIdentity]) -> Result<&'a DeviceIdentity> {
        let found = match self {
            DeviceSelector::Best => devices.iter().min_by_key(|d| d.type_rank()),
            DeviceSelector::Index(i) => devices.get(*i),
            DeviceSelector::Uuid(u) => devices.iter().find(|d| &d.device_uuid == u),
            DeviceSelector::PciBus(p) => devices
                .iter()
                .find(|d| d.pci_bus.as_deref() == Some(p.as_str())),
            DeviceSelector::Name(n) => {
                let n = n.to_lowercase();
                devices.iter().find(|d| d.name.to_lowercase().contains(&n))
            }
        };
        found.ok_or_else(|| Error::NoDevice {
            request: self.describe(),
            available: devices.iter().map(|d| d.summary()).collect(),
        })
    }
}

/// How to create Geyser's own Vulkan instance and device.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Which device.
    pub device: DeviceSelector,
    /// Validation layer policy.
    pub validation: Validation,
}

impl ContextOptions {
    /// `GEYSER_DEVICE` and `GEYSER_VALIDATION` from the environment.
    pub fn from_env() -> Self {
        Self {
            device: DeviceSelector::from_env(),
            validation: Validation::from_env(),
        }
    }
}

/// Raw handles of timeline semaphores whose payload is shared with other objects (exported or
/// imported). The validation layer cannot see signals made through the other objects, and
/// Debian's 1.3.239 layer reports `VUID-VkSemaphoreSignalInfo-value-03259` for host signals on
/// them even with no submission pending; that one VUID is downgraded to a warning for these
/// handles only. [`super::SharedTimelineSemaphore::signal`] checks the value itself.
pub(crate) static EXTERNAL_TIMELINES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn is_external_timeline_false_positive(data: &vk::DebugUtilsMessengerCallbackDataEXT<'_>) -> bool {
    // SAFETY: the layer passes valid strings and object arrays for the duration of the call.
    let id = unsafe { data.message_id_name_as_c_str() };
    if id != Some(c"VUID-VkSemaphoreSignalInfo-value-03259") {
        return false;
    }
    // SAFETY: as above.
    let objects: &[vk::DebugUtilsObjectNameInfoEXT<'_>] = if data.p_objects.is_null() {
        &[]
    } else {
        // SAFETY: the layer guarantees `p_objects` points at `object_count` valid entries.
        unsafe { std::slice::from_raw_parts(data.p_objects, data.object_count as usize) }
    };
    let external = EXTERNAL_TIMELINES
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    !objects.is_empty() && objects.iter().all(|o| external.contains(&o.object_handle))
}
unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    kind: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    _user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: the layer passes a valid callback-data pointer for the duration of the call;
    // `p_message` is a NUL-terminated string or null.
    let message = unsafe {
        data.as_ref()
            .and_then(|d| (!d.p_message.is_null()).then(|| CStr::from_ptr(d.p_message)))
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    // SAFETY: as above.
    let known_false_positive =
        unsafe { data.as_ref() }.is_some_and(is_external_timeline_false_positive);
    if known_false_positive {
        tracing::warn!(target: "geyser::vulkan::validation", "ignored for an external timeline (the layer cannot see its other users): {message}");
    } else if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
        diagnostics::record_validation_error(&message);
        tracing::error!(target: "geyser::vulkan::validation", ?kind, "{message}");
    } else if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::WARNING) {
        tracing::warn!(target: "geyser::vulkan::validation", ?kind, "{message}");
    } else {
        tracing::debug!(target: "geyser::vulkan::validation", ?kind, "{message}");
    }
    vk::FALSE
}

/// Device extensions Geyser enables when the device offers them (besides the required
/// `VK_KHR_external_memory_fd`).
pub(crate) const OPTIONAL_DEVICE_EXTENSIONS: &[&CStr] = &[
    ash::ext::external_memory_dma_buf::NAME,
    ash::ext::image_drm_format_modifier::NAME,
    os::SEMAPHORE_EXTENSION,
    os::FENCE_EXTENSION,
    ash::ext::external_memory_host::NAME,
    ash::ext::queue_family_foreign::NAME,
];

/// The queue Geyser submits to, behind one lock (Vulkan queues are externally synchronized).
pub(crate) struct QueueState {
    pub(crate) queue: vk::Queue,
}

/// Objects Geyser created and so destroys (in this order: device, messenger, instance).
pub(crate) struct Owned {
    _entry: ash::Entry,
    debug_utils: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
}

/// One Vulkan device as Geyser uses it; shared by the manager and every texture made on it, so
/// the device outlives all its textures.
pub(crate) struct DeviceShared {
    pub(crate) instance: ash::Instance,
    pub(crate) device: ash::Device,
    pub(crate) physical: vk::PhysicalDevice,
    pub(crate) queue_family: u32,
    pub(crate) identity: DeviceIdentity,
    pub(crate) memory_properties: vk::PhysicalDeviceMemoryProperties,
    /// `VK_KHR_external_memory_fd` (`_win32` on Windows).
    pub(crate) external_memory: os::MemoryFns,
    /// `VK_KHR_external_semaphore_fd` (`_win32` on Windows), when enabled on the device.
    pub(crate) external_semaphore: Option<os::SemaphoreFns>,
    /// `VK_KHR_external_fence_fd` (`_win32` on Windows), when enabled on the device.
    pub(crate) external_fence: Option<os::FenceFns>,
    /// Whether timeline semaphores are enabled (Vulkan 1.2 `timelineSemaphore` feature).
    pub(crate) timeline: bool,
    queue: Mutex<QueueState>,
    /// Another API (wgpu) owns queue 0 and serializes its submissions without Geyser's lock:
    /// Geyser must never touch that queue (no submissions, no idle waits).
    foreign_queue: bool,
    owned: Option<Owned>,
}

impl std::fmt::Debug for DeviceShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceShared")
            .field("device", &self.identity.name)
            .field("queue_family", &self.queue_family)
            .field("owned", &self.owned.is_some())
            .finish()
    }
}

impl DeviceShared {
    /// Wraps the caller's device. Checks that `VK_KHR_external_memory_fd` (`_win32` on
    /// Windows) is enabled on it.
    pub(crate) fn borrowed(
        instance: ash::Instance,
        device: ash::Device,
        physical: vk::PhysicalDevice,
        queue_family: u32,
    ) -> Result<Self> {
        // SAFETY: `device` is a live device created from `instance`; looking up a command
        // pointer has no other requirement. A null result means the extension is not enabled.
        let get_fd = unsafe {
            instance.get_device_proc_addr(device.handle(), os::GET_MEMORY_COMMAND.as_ptr())
        };
        if get_fd.is_none() {
            let ext = os::MEMORY_EXTENSION.to_string_lossy();
            return Err(Error::unsupported(
                ext.clone(),
                format!("the device was created without {ext}; enable it (and VK_KHR_external_memory) in VkDeviceCreateInfo"),
            ));
        }
        // Timeline semaphores: the caller must have enabled the feature; we can only see that
        // the device is Vulkan 1.2+ and offers it.
        // SAFETY: `physical` belongs to `instance`.
        let api = unsafe { instance.get_physical_device_properties(physical) }.api_version;
        let mut f12 = vk::PhysicalDeviceVulkan12Features::default();
        let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut f12);
        let timeline = api >= vk::API_VERSION_1_2 && {
            // SAFETY: Vulkan 1.2 structs on a 1.2 device.
            unsafe { instance.get_physical_device_features2(physical, &mut f2) };
            f12.timeline_semaphore == vk::TRUE
        };
        Self::finish(instance, device, physical, queue_family, timeline, None)
    }

    /// Creates Geyser's own instance and device.
    pub(crate) fn create(options: &ContextOptions) -> Result<Self> {
        let CreatedInstance {
            instance,
            api_version,
            mut owned,
            ..
        } = create_instance(options, |_| Ok(Vec::new()))?;
        match Self::create_device(&instance, options, api_version) {
            Ok((device, physical, queue_family, timeline)) => Self::finish(
                instance,
                device,
                physical,
                queue_family,
                timeline,
                Some(owned),
            ),
            Err(e) => {
                destroy_owned(&instance, &mut owned);
                Err(e)
            }
        }
    }

    fn create_device(
        instance: &ash::Instance,
        options: &ContextOptions,
        api_version: u32,
    ) -> Result<(ash::Device, vk::PhysicalDevice, u32, bool)> {
        let devices = caps::enumerate_identities(instance)?;
        let chosen = options.device.select(&devices)?;
        let physical = chosen.physical;
        tracing::info!(device = %chosen.name, driver = %chosen.driver_name, "using Vulkan device");

        // SAFETY: `physical` was enumerated from `instance`.
        let families = unsafe { instance.get_physical_device_queue_family_properties(physical) };
        let queue_family = families
            .iter()
            .position(|f| {
                f.queue_flags
                    .contains(vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE)
            })
            .or_else(|| {
                families
                    .iter()
                    .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            })
            .ok_or_else(|| {
                Error::unsupported(
                    "compute queue",
                    format!("{} has no compute queue", chosen.name),
                )
            })? as u32;

        let available = caps::device_extensions(instance, physical)?;
        let required = [os::MEMORY_EXTENSION];
        for ext in required {
            if !available.iter().any(|e| e.as_c_str() == ext) {
                return Err(Error::unsupported(
                    ext.to_string_lossy(),
                    format!(
                        "{} does not offer {}, which every share needs",
                        chosen.name,
                        ext.to_string_lossy()
                    ),
                ));
            }
        }
        let mut enabled: Vec<*const c_char> = required.iter().map(|e| e.as_ptr()).collect();
        for ext in OPTIONAL_DEVICE_EXTENSIONS {
            if available.iter().any(|e| e.as_c_str() == ext) {
                enabled.push(ext.as_ptr());
            }
        }
        // SAFETY: as above.
        let props = unsafe { instance.get_physical_device_properties(physical) };
        let device_api = props.api_version.min(api_version);
        let mut features12 = vk::PhysicalDeviceVulkan12Features::default();
        let mut features2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut features12);
        if device_api >= vk::API_VERSION_1_2 {
            // SAFETY: as above; the chain holds only structs from Vulkan 1.2.
            unsafe { instance.get_physical_device_features2(physical, &mut features2) };
        }
        let timeline =
            device_api >= vk::API_VERSION_1_2 && features12.timeline_semaphore == vk::TRUE;
        let mut enable12 =
            vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(timeline);

        let priorities = [1.0f32];
        let queue_infos = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(queue_family)
            .queue_priorities(&priorities)];
        let mut create_info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_infos)
            .enabled_extension_names(&enabled);
        if device_api >= vk::API_VERSION_1_2 {
            create_info = create_info.push_next(&mut enable12);
        }
        // SAFETY: all pointers point into locals that outlive the call; the extensions were
        // checked to be available.
        let device = unsafe { instance.create_device(physical, &create_info, None) }
            .map_err(Error::vk("vkCreateDevice"))?;
        Ok((device, physical, queue_family, timeline))
    }

    fn finish(
        instance: ash::Instance,
        device: ash::Device,
        physical: vk::PhysicalDevice,
        queue_family: u32,
        timeline: bool,
        mut owned: Option<Owned>,
    ) -> Result<Self> {
        let cleanup = |owned: &mut Option<Owned>| {
            if let Some(o) = owned.as_mut() {
                // SAFETY: on this error path nothing else has used the device we created.
                unsafe { device.destroy_device(None) };
                destroy_owned(&instance, o);
            }
        };
        let identity = match caps::identity(&instance, physical, 0) {
            Ok(id) => id,
            Err(e) => {
                cleanup(&mut owned);
                return Err(e);
            }
        };
        // SAFETY: `queue_family` was used to create the device with at least one queue.
        let queue = QueueState {
            queue: unsafe { device.get_device_queue(queue_family, 0) },
        };
        // SAFETY: `physical` belongs to `instance`.
        let memory_properties = unsafe { instance.get_physical_device_memory_properties(physical) };
        let external_memory = os::MemoryFns::new(&instance, &device);
        let enabled = |name: &CStr| {
            // SAFETY: looking up a command of a live device; null means "not enabled".
            unsafe { instance.get_device_proc_addr(device.handle(), name.as_ptr()) }.is_some()
        };
        let external_semaphore =
            enabled(os::GET_SEMAPHORE_COMMAND).then(|| os::SemaphoreFns::new(&instance, &device));
        let external_fence =
            enabled(os::GET_FENCE_COMMAND).then(|| os::FenceFns::new(&instance, &device));
        Ok(Self {
            instance,
            device,
            physical,
            queue_family,
            identity,
            memory_properties,
            external_memory,
            external_semaphore,
            external_fence,
            timeline,
            queue: Mutex::new(queue),
            foreign_queue: false,
            owned,
        })
    }

    /// Locks the queue for a submission. Poisoning is ignored: the state is plain handles.
    pub(crate) fn lock_queue(&self) -> MutexGuard<'_, QueueState> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks queue 0 as owned by another API (see [`Self::queue_is_foreign`]).
    #[cfg(feature = "webgpu")]
    pub(crate) fn with_foreign_queue(mut self) -> Self {
        self.foreign_queue = true;
        self
    }

    /// Whether another API owns the queue; then Geyser submits nothing and waits for nothing
    /// on it: that API destroys resources only after its GPU work with them is done.
    pub(crate) fn queue_is_foreign(&self) -> bool {
        self.foreign_queue
    }

    /// Waits until the queue has finished all work submitted to it. Does nothing when the
    /// queue belongs to another API, which then guarantees completion itself.
    pub(crate) fn wait_queue_idle(&self) -> Result<()> {
        if self.foreign_queue {
            return Ok(());
        }
        let q = self.lock_queue();
        // SAFETY: the queue is externally synchronized by the lock we hold.
        unsafe { self.device.queue_wait_idle(q.queue) }.map_err(Error::vk("vkQueueWaitIdle"))
    }

    /// Whether `VK_EXT_external_memory_host` is enabled on the device.
    pub(crate) fn external_memory_host_enabled(&self) -> bool {
        // SAFETY: looking up a command of a live device; null means "not enabled".
        unsafe {
            self.instance.get_device_proc_addr(
                self.device.handle(),
                c"vkGetMemoryHostPointerPropertiesEXT".as_ptr(),
            )
        }
        .is_some()
    }

    /// Whether Geyser created (and so will destroy) this device.
    pub(crate) fn is_owned(&self) -> bool {
        self.owned.is_some()
    }
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

impl Drop for DeviceShared {
    fn drop(&mut self) {
        let q = self.queue.get_mut().unwrap_or_else(|p| p.into_inner());
        if !self.foreign_queue {
            // SAFETY: every texture and submitter holds an Arc to this struct, so none is
            // alive now; the wait is for work an application may still have on Geyser's queue.
            unsafe {
                let _ = self.device.queue_wait_idle(q.queue);
            }
        }
        if let Some(mut owned) = self.owned.take() {
            // SAFETY: we created the device and instance; all their children are gone.
            unsafe {
                let _ = self.device.device_wait_idle();
                self.device.destroy_device(None);
            }
            destroy_owned(&self.instance, &mut owned);
        }
    }
}

/// Keeps the [`Arc`] type visible for the rest of the backend.
pub(crate) type SharedDevice = Arc<DeviceShared>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_parses_each_key() {
        assert_eq!(DeviceSelector::parse("1"), DeviceSelector::Index(1));
        assert_eq!(
            DeviceSelector::parse("pci:0000:01:00.0"),
            DeviceSelector::PciBus("0000:01:00.0".into())
        );
        assert_eq!(
            DeviceSelector::parse("llvmpipe"),
            DeviceSelector::Name("llvmpipe".into())
        );
        let u = "00112233-4455-6677-8899-aabbccddeeff";
        assert!(matches!(DeviceSelector::parse(u), DeviceSelector::Uuid(_)));
        assert_eq!(DeviceSelector::parse(""), DeviceSelector::Best);
    }
}
