//! The Vulkan device a manager works on: either borrowed (never destroyed; the caller's, or one
//! opened through another API) or one Geyser creates with the device recipe's extensions.

use std::ffi::{c_char, CStr};
use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;

use super::identity::{self, DeviceIdentity};
use super::instance::{load_entry, InstanceRecipe, OwnedInstance};
use super::options::ContextOptions;
use super::os;
use super::recipe;
use crate::{Error, Result};

/// The queue Geyser submits to, behind one lock (Vulkan queues are externally synchronized).
pub(crate) struct QueueState {
    pub(crate) queue: vk::Queue,
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
    /// Another API owns queue 0 and serializes its submissions without Geyser's lock: Geyser
    /// must never touch that queue (no submissions, no idle waits).
    foreign_queue: bool,
    /// The instance Geyser created for a device it created (destroyed after the device).
    owned: Option<OwnedInstance>,
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
    /// Wraps a device Geyser did not create and never destroys. Checks that
    /// `VK_KHR_external_memory_fd` (`_win32` on Windows) is enabled on it. With
    /// `foreign_queue`, the device was opened through another API that owns queue 0 of
    /// `queue_family` (see [`Self::queue_is_foreign`]).
    pub(crate) fn borrowed(
        instance: ash::Instance,
        device: ash::Device,
        physical: vk::PhysicalDevice,
        queue_family: u32,
        foreign_queue: bool,
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
        let timeline = identity::offers_timelines(&instance, physical, api);
        let mut shared = Self::finish(instance, device, physical, queue_family, timeline, None)?;
        shared.foreign_queue = foreign_queue;
        Ok(shared)
    }

    /// Creates Geyser's own instance and device.
    pub(crate) fn create(options: &ContextOptions) -> Result<Self> {
        let entry = load_entry()?;
        let recipe = InstanceRecipe::new(&entry, options, Vec::new())?;
        // Dropped (destroying the instance) on every early return below.
        let owned = OwnedInstance::create(entry, &recipe)?;
        let instance = owned.raw().clone();
        let (device, physical, queue_family, timeline) =
            Self::create_device(&instance, options, recipe.api_version)?;
        Self::finish(
            instance,
            device,
            physical,
            queue_family,
            timeline,
            Some(owned),
        )
    }

    fn create_device(
        instance: &ash::Instance,
        options: &ContextOptions,
        api_version: u32,
    ) -> Result<(ash::Device, vk::PhysicalDevice, u32, bool)> {
        let chosen = options.device.pick(instance)?;
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

        let setup = recipe::SHARING.check(instance, &chosen, api_version)?;
        let enabled: Vec<*const c_char> = setup.extensions.iter().map(|e| e.as_ptr()).collect();
        let mut enable12 = vk::PhysicalDeviceVulkan12Features::default()
            .timeline_semaphore(setup.timeline_semaphore);

        let priorities = [1.0f32];
        let queue_infos = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(queue_family)
            .queue_priorities(&priorities)];
        let mut create_info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_infos)
            .enabled_extension_names(&enabled)
            .enabled_features(&setup.features);
        if setup.api_version >= vk::API_VERSION_1_2 {
            create_info = create_info.push_next(&mut enable12);
        }
        // SAFETY: all pointers point into locals that outlive the call; the extensions were
        // checked to be available.
        let device = unsafe { instance.create_device(physical, &create_info, None) }
            .map_err(Error::vk("vkCreateDevice"))?;
        Ok((device, physical, queue_family, setup.timeline_semaphore))
    }

    fn finish(
        instance: ash::Instance,
        device: ash::Device,
        physical: vk::PhysicalDevice,
        queue_family: u32,
        timeline: bool,
        owned: Option<OwnedInstance>,
    ) -> Result<Self> {
        let identity = match identity::identity(&instance, physical, 0) {
            Ok(id) => id,
            Err(e) => {
                if owned.is_some() {
                    // SAFETY: on this error path nothing else has used the device we created.
                    unsafe { device.destroy_device(None) };
                }
                // Dropping `owned` destroys the instance we created.
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
        if let Some(owned) = self.owned.take() {
            // SAFETY: we created the device; all its children are gone.
            unsafe {
                let _ = self.device.device_wait_idle();
                self.device.destroy_device(None);
            }
            // Destroys the messenger and the instance, whose last child was the device.
            drop(owned);
        }
    }
}

/// Keeps the [`Arc`] type visible for the rest of the backend.
pub(crate) type SharedDevice = Arc<DeviceShared>;
