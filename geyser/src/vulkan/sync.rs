//! GPU synchronization that crosses contexts and processes: [`SharedTimelineSemaphore`]
//! (opaque FD), [`SharedSemaphore`] (binary; opaque or sync FD) and [`SharedFence`]. Each checks
//! the device's export capability first and says what is missing.
//!
//! "Events": Metal's `MTLSharedEvent`, D3D12 fences and CUDA external semaphores are all
//! monotonic 64-bit counters, which is what a Vulkan timeline semaphore is. Geyser exposes the
//! concept once, as [`SharedTimelineSemaphore`]; backends for those APIs map their event type
//! onto it instead of adding a separate event type.

use std::time::Duration;

use ash::vk;

use super::caps::SyncExportCaps;
use super::device::SharedDevice;
use super::manager::VulkanTextureShareManager;
use super::os;
use super::validation;
use crate::common::OwnedOsHandle;
use crate::{Error, Result};

/// The kind of OS handle a semaphore or fence travels as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SyncHandleType {
    /// Opaque FD: the same driver and device on both sides; export once, reuse.
    OpaqueFd,
    /// A Linux sync_file: one signal operation, exported per submission.
    SyncFd,
    /// Windows NT handle (`OPAQUE_WIN32`): the same driver and device on both sides; export
    /// once, reuse. Compiles in CI; never run on real hardware.
    #[cfg(windows)]
    OpaqueWin32,
}

impl SyncHandleType {
    fn semaphore(self) -> vk::ExternalSemaphoreHandleTypeFlags {
        match self {
            SyncHandleType::OpaqueFd => vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD,
            SyncHandleType::SyncFd => vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD,
            #[cfg(windows)]
            SyncHandleType::OpaqueWin32 => vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_WIN32,
        }
    }

    fn fence(self) -> vk::ExternalFenceHandleTypeFlags {
        match self {
            SyncHandleType::OpaqueFd => vk::ExternalFenceHandleTypeFlags::OPAQUE_FD,
            SyncHandleType::SyncFd => vk::ExternalFenceHandleTypeFlags::SYNC_FD,
            #[cfg(windows)]
            SyncHandleType::OpaqueWin32 => vk::ExternalFenceHandleTypeFlags::OPAQUE_WIN32,
        }
    }

    /// The handle type shared timelines travel as on this platform.
    fn native() -> Self {
        #[cfg(windows)]
        return SyncHandleType::OpaqueWin32;
        #[cfg(not(windows))]
        return SyncHandleType::OpaqueFd;
    }

    /// Whether `caps` reports export and import of this handle type.
    fn supported_by(self, caps: &SyncExportCaps) -> bool {
        match self {
            SyncHandleType::OpaqueFd => caps.opaque_fd,
            SyncHandleType::SyncFd => caps.sync_fd,
            #[cfg(windows)]
            SyncHandleType::OpaqueWin32 => caps.opaque_win32,
        }
    }
}

fn semaphore_fns(dev: &SharedDevice) -> Result<&os::SemaphoreFns> {
    dev.external_semaphore.as_ref().ok_or_else(|| {
        Error::unsupported(
            os::SEMAPHORE_EXTENSION.to_string_lossy(),
            format!(
                "not enabled on {} (not offered by the driver, or not enabled by the application)",
                dev.identity.name
            ),
        )
    })
}

fn fence_fns(dev: &SharedDevice) -> Result<&os::FenceFns> {
    dev.external_fence.as_ref().ok_or_else(|| {
        Error::unsupported(
            os::FENCE_EXTENSION.to_string_lossy(),
            format!(
                "not enabled on {} (not offered by the driver, or not enabled by the application)",
                dev.identity.name
            ),
        )
    })
}

fn check_semaphore_export(
    manager: &VulkanTextureShareManager,
    handle: SyncHandleType,
    timeline: bool,
) -> Result<()> {
    let caps = manager.caps()?;
    let c = if timeline {
        &caps.timeline_semaphore_export
    } else {
        &caps.binary_semaphore_export
    };
    let ok = handle.supported_by(c);
    if !ok {
        let what = if timeline { "timeline" } else { "binary" };
        return Err(Error::unsupported(
            format!("{what} semaphore export as {handle:?}"),
            format!(
                "{} reports no exportable+importable {what} semaphores of this handle type \
                 (vkGetPhysicalDeviceExternalSemaphoreProperties); use host synchronization",
                manager.identity().name
            ),
        ));
    }
    semaphore_fns(&manager.dev).map(|_| ())
}

fn create_semaphore(
    dev: &SharedDevice,
    handle: Option<SyncHandleType>,
    timeline: Option<u64>,
) -> Result<vk::Semaphore> {
    let mut export = vk::ExportSemaphoreCreateInfo::default();
    let mut kind = vk::SemaphoreTypeCreateInfo::default();
    let mut info = vk::SemaphoreCreateInfo::default();
    if let Some(h) = handle {
        export = export.handle_types(h.semaphore());
        info = info.push_next(&mut export);
    }
    if let Some(initial) = timeline {
        kind = kind
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(initial);
        info = info.push_next(&mut kind);
    }
    // SAFETY: valid chain pointing at locals; support was checked by the caller.
    unsafe { dev.device.create_semaphore(&info, None) }.map_err(Error::vk("vkCreateSemaphore"))
}

fn export_semaphore(
    dev: &SharedDevice,
    semaphore: vk::Semaphore,
    handle: SyncHandleType,
) -> Result<OwnedOsHandle> {
    os::export_semaphore(semaphore_fns(dev)?, semaphore, handle.semaphore())
}

fn import_semaphore(
    dev: &SharedDevice,
    semaphore: vk::Semaphore,
    fd: OwnedOsHandle,
    handle: SyncHandleType,
    temporary: bool,
) -> Result<()> {
    let fns = semaphore_fns(dev)?;
    let flags = if temporary {
        vk::SemaphoreImportFlags::TEMPORARY
    } else {
        vk::SemaphoreImportFlags::empty()
    };
    os::import_semaphore(fns, semaphore, handle.semaphore(), flags, fd)
}

/// A timeline semaphore whose payload is shared with other contexts or processes (opaque FD;
/// an NT handle on Windows):
/// a 64-bit counter that GPU submissions and the host signal and wait on. Values only grow.
pub struct SharedTimelineSemaphore {
    dev: SharedDevice,
    semaphore: vk::Semaphore,
    imported: bool,
}

impl std::fmt::Debug for SharedTimelineSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTimelineSemaphore")
            .field("semaphore", &self.semaphore)
            .field("imported", &self.imported)
            .finish()
    }
}

impl SharedTimelineSemaphore {
    /// Creates an exportable timeline starting at `initial`. [`Error::Unsupported`] when the
    /// device cannot export timelines as opaque FDs (e.g. lavapipe).
    pub fn new(manager: &VulkanTextureShareManager, initial: u64) -> Result<Self> {
        check_timeline(manager)?;
        check_semaphore_export(manager, SyncHandleType::native(), true)?;
        let dev = manager.dev.clone();
        let semaphore = create_semaphore(&dev, Some(SyncHandleType::native()), Some(initial))?;
        validation::register_external_timeline(semaphore);
        Ok(Self {
            dev,
            semaphore,
            imported: false,
        })
    }

    /// A timeline of this context only (not exportable), starting at `initial`: what the
    /// binary-semaphore IPC mode converts each peer's binary semaphores into, so the rest of the
    /// frame path keeps using timeline points. Needs the timeline feature, not its export.
    pub fn local(manager: &VulkanTextureShareManager, initial: u64) -> Result<Self> {
        check_timeline(manager)?;
        let dev = manager.dev.clone();
        let semaphore = create_semaphore(&dev, None, Some(initial))?;
        Ok(Self {
            dev,
            semaphore,
            imported: false,
        })
    }

    /// Imports a timeline exported by another context or process (same device and driver).
    /// Consumes the FD.
    pub fn import(manager: &VulkanTextureShareManager, fd: OwnedOsHandle) -> Result<Self> {
        check_timeline(manager)?;
        check_semaphore_export(manager, SyncHandleType::native(), true)?;
        let dev = manager.dev.clone();
        let semaphore = create_semaphore(&dev, None, Some(0))?;
        validation::register_external_timeline(semaphore);
        let this = Self {
            dev,
            semaphore,
            imported: true,
        };
        import_semaphore(&this.dev, semaphore, fd, SyncHandleType::native(), false)?;
        Ok(this)
    }

    /// A new FD for the payload (send it to a peer, which imports it once).
    pub fn export(&self) -> Result<OwnedOsHandle> {
        export_semaphore(&self.dev, self.semaphore, SyncHandleType::native())
    }

    /// The `VkSemaphore`, for `VkTimelineSemaphoreSubmitInfo` waits and signals.
    pub fn raw(&self) -> vk::Semaphore {
        self.semaphore
    }

    /// Whether this object was imported.
    pub fn is_imported(&self) -> bool {
        self.imported
    }

    /// The current value.
    pub fn value(&self) -> Result<u64> {
        // SAFETY: a live timeline semaphore of this device.
        unsafe { self.dev.device.get_semaphore_counter_value(self.semaphore) }
            .map_err(Error::vk("vkGetSemaphoreCounterValue"))
    }

    /// Signals `value` from the host. It must be greater than the current value and than
    /// every pending GPU signal; otherwise [`Error::InvalidArgument`].
    pub fn signal(&self, value: u64) -> Result<()> {
        let current = self.value()?;
        if value <= current {
            return Err(Error::InvalidArgument {
                what: "timeline value",
                reason: format!("signal {value} does not exceed the current value {current}; timeline values only grow"),
            });
        }
        let info = vk::SemaphoreSignalInfo::default()
            .semaphore(self.semaphore)
            .value(value);
        // SAFETY: a live timeline semaphore; the value grows (checked above).
        unsafe { self.dev.device.signal_semaphore(&info) }.map_err(Error::vk("vkSignalSemaphore"))
    }

    /// Waits on the host until the value reaches `value`; [`Error::Timeout`] after `timeout`
    /// (a peer that died before signaling never hangs the caller).
    pub fn wait(&self, value: u64, timeout: Duration) -> Result<()> {
        let semaphores = [self.semaphore];
        let values = [value];
        let info = vk::SemaphoreWaitInfo::default()
            .semaphores(&semaphores)
            .values(&values);
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: a live timeline semaphore; arrays of equal length.
        match unsafe { self.dev.device.wait_semaphores(&info, ns) } {
            Ok(()) => Ok(()),
            Err(vk::Result::TIMEOUT) => Err(Error::Timeout(format!(
                "timeline semaphore did not reach {value} within {timeout:?} (it is at {})",
                self.value()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| "?".into())
            ))),
            Err(e) => Err(Error::vk("vkWaitSemaphores")(e)),
        }
    }
}

fn check_timeline(manager: &VulkanTextureShareManager) -> Result<()> {
    if !manager.dev.timeline {
        return Err(Error::unsupported(
            "timeline semaphores",
            format!(
                "{} has no Vulkan 1.2 timelineSemaphore feature enabled",
                manager.identity().name
            ),
        ));
    }
    Ok(())
}

impl Drop for SharedTimelineSemaphore {
    fn drop(&mut self) {
        validation::forget_external_timeline(self.semaphore);
        // SAFETY: owners keep the semaphore alive while submissions that use it are pending
        // (Geyser's submitters hold a reference until their fence signals).
        unsafe { self.dev.device.destroy_semaphore(self.semaphore, None) };
    }
}

/// A binary semaphore shared with another context or process, as an opaque FD (export once,
/// import permanently) or a sync FD (export after each signal submission, import temporarily
/// for one wait).
pub struct SharedSemaphore {
    dev: SharedDevice,
    semaphore: vk::Semaphore,
    handle: SyncHandleType,
}

impl std::fmt::Debug for SharedSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSemaphore")
            .field("semaphore", &self.semaphore)
            .field("handle", &self.handle)
            .finish()
    }
}

impl SharedSemaphore {
    /// Creates an exportable binary semaphore. [`Error::Unsupported`] naming the handle type
    /// when the device cannot export it.
    pub fn new(manager: &VulkanTextureShareManager, handle: SyncHandleType) -> Result<Self> {
        check_semaphore_export(manager, handle, false)?;
        let dev = manager.dev.clone();
        let semaphore = create_semaphore(&dev, Some(handle), None)?;
        Ok(Self {
            dev,
            semaphore,
            handle,
        })
    }

    /// A binary semaphore that is never exported, for tests of the code that uses shared ones
    /// within one context (the validation layer then tracks every signal and wait).
    #[cfg(test)]
    #[cfg_attr(not(feature = "ipc"), allow(dead_code))]
    pub(crate) fn local(manager: &VulkanTextureShareManager) -> Result<Self> {
        let dev = manager.dev.clone();
        let semaphore = create_semaphore(&dev, None, None)?;
        Ok(Self {
            dev,
            semaphore,
            handle: SyncHandleType::native(),
        })
    }

    /// Creates a semaphore and imports `fd` into it: permanently for an opaque FD, temporarily
    /// (for the next wait only) for a sync FD. Consumes the FD.
    pub fn import(
        manager: &VulkanTextureShareManager,
        fd: OwnedOsHandle,
        handle: SyncHandleType,
    ) -> Result<Self> {
        check_semaphore_export(manager, handle, false)?;
        let dev = manager.dev.clone();
        let semaphore = create_semaphore(&dev, None, None)?;
        let this = Self {
            dev,
            semaphore,
            handle,
        };
        import_semaphore(
            &this.dev,
            semaphore,
            fd,
            handle,
            handle == SyncHandleType::SyncFd,
        )?;
        Ok(this)
    }

    /// Exports the payload. For a sync FD, a signal operation must have been submitted (the
    /// FD then stands for that signal, and the semaphore is unsignaled again).
    pub fn export(&self) -> Result<OwnedOsHandle> {
        export_semaphore(&self.dev, self.semaphore, self.handle)
    }

    /// The `VkSemaphore`.
    pub fn raw(&self) -> vk::Semaphore {
        self.semaphore
    }

    /// The handle type it travels as.
    pub fn handle_type(&self) -> SyncHandleType {
        self.handle
    }
}

impl Drop for SharedSemaphore {
    fn drop(&mut self) {
        // SAFETY: owners keep it alive while submissions that use it are pending.
        unsafe { self.dev.device.destroy_semaphore(self.semaphore, None) };
    }
}

/// A fence whose payload can be exported (to let a peer's host wait for our submission) or
/// imported (to wait on the host for a peer's).
pub struct SharedFence {
    dev: SharedDevice,
    fence: vk::Fence,
    handle: SyncHandleType,
}

impl std::fmt::Debug for SharedFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFence")
            .field("fence", &self.fence)
            .field("handle", &self.handle)
            .finish()
    }
}

impl SharedFence {
    /// Creates an exportable, unsignaled fence. [`Error::Unsupported`] when the device cannot
    /// export fences of this handle type.
    pub fn new(manager: &VulkanTextureShareManager, handle: SyncHandleType) -> Result<Self> {
        check_fence_export(manager, handle)?;
        let dev = manager.dev.clone();
        let mut export = vk::ExportFenceCreateInfo::default().handle_types(handle.fence());
        let info = vk::FenceCreateInfo::default().push_next(&mut export);
        // SAFETY: valid chain; support checked above.
        let fence =
            unsafe { dev.device.create_fence(&info, None) }.map_err(Error::vk("vkCreateFence"))?;
        Ok(Self { dev, fence, handle })
    }

    /// Creates a fence and imports `fd` into it (a sync FD temporarily). Consumes the FD.
    pub fn import(
        manager: &VulkanTextureShareManager,
        fd: OwnedOsHandle,
        handle: SyncHandleType,
    ) -> Result<Self> {
        check_fence_export(manager, handle)?;
        let dev = manager.dev.clone();
        // SAFETY: valid create info.
        let fence = unsafe {
            dev.device
                .create_fence(&vk::FenceCreateInfo::default(), None)
        }
        .map_err(Error::vk("vkCreateFence"))?;
        let this = Self { dev, fence, handle };
        let fns = fence_fns(&this.dev)?;
        let flags = if handle == SyncHandleType::SyncFd {
            vk::FenceImportFlags::TEMPORARY
        } else {
            vk::FenceImportFlags::empty()
        };
        os::import_fence(fns, fence, handle.fence(), flags, fd)?;
        Ok(this)
    }

    /// Exports the payload (for a sync FD: after the fence's submission).
    pub fn export(&self) -> Result<OwnedOsHandle> {
        os::export_fence(fence_fns(&self.dev)?, self.fence, self.handle.fence())
    }

    /// The `VkFence` (pass it to `vkQueueSubmit`).
    pub fn raw(&self) -> vk::Fence {
        self.fence
    }

    /// Waits on the host; [`Error::Timeout`] after `timeout`.
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: a live fence of this device.
        match unsafe { self.dev.device.wait_for_fences(&[self.fence], true, ns) } {
            Ok(()) => Ok(()),
            Err(vk::Result::TIMEOUT) => Err(Error::Timeout(format!(
                "fence not signaled within {timeout:?}"
            ))),
            Err(e) => Err(Error::vk("vkWaitForFences")(e)),
        }
    }

    /// Resets to unsignaled.
    pub fn reset(&self) -> Result<()> {
        // SAFETY: a live fence, not in use by a pending submission (caller's contract).
        unsafe { self.dev.device.reset_fences(&[self.fence]) }.map_err(Error::vk("vkResetFences"))
    }
}

fn check_fence_export(manager: &VulkanTextureShareManager, handle: SyncHandleType) -> Result<()> {
    let c = &manager.caps()?.fence_export;
    let ok = handle.supported_by(c);
    if !ok {
        return Err(Error::unsupported(
            format!("fence export as {handle:?}"),
            format!(
                "{} reports no exportable+importable fences of this handle type",
                manager.identity().name
            ),
        ));
    }
    fence_fns(&manager.dev).map(|_| ())
}

impl Drop for SharedFence {
    fn drop(&mut self) {
        // SAFETY: owners do not drop a fence whose submission is pending.
        unsafe { self.dev.device.destroy_fence(self.fence, None) };
    }
}
