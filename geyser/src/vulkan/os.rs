//! The OS side of Vulkan external objects: which extensions carry handles on this platform
//! (file descriptors on Unix, NT handles on Windows) and how a handle leaves or enters Vulkan.
//! The rest of the backend is platform-independent and calls only what this file exports.
//!
//! Ownership differs by platform and is hidden here: a successful FD import gives the FD to
//! Vulkan, while an NT-handle import never does (the handle is closed after the call). Every
//! function takes an [`OwnedOsHandle`](crate::common::OwnedOsHandle) by value and leaves
//! nothing open on any path.

use ash::vk;

use super::conv;
use crate::common::ExternalHandleType;
use crate::{Error, Result};

pub(crate) use imp::*;

/// The Vulkan handle type of a memory handle type this platform carries ([`NATIVE_MEMORY`]);
/// [`Error::Unsupported`] for the others.
pub(crate) fn memory_handle_type(
    t: ExternalHandleType,
) -> Result<vk::ExternalMemoryHandleTypeFlags> {
    let dma_buf = cfg!(unix) && t == ExternalHandleType::DmaBuf;
    if t != NATIVE_MEMORY && !dma_buf {
        return Err(Error::unsupported(
            format!("{t:?} external memory"),
            format!(
                "this build shares textures through {NATIVE_MEMORY:?} handles (and DMA-BUFs on Linux) on this platform",
            ),
        ));
    }
    Ok(conv::memory_handle_type(t))
}

/// Parameters of an imported dedicated allocation.
pub(crate) struct ImportTarget {
    /// The image the allocation is dedicated to.
    pub(crate) image: vk::Image,
    /// `allocationSize` from the export.
    pub(crate) size: u64,
    /// `memoryTypeIndex` from the export.
    pub(crate) memory_type_index: u32,
    /// The external handle type.
    pub(crate) handle_type: vk::ExternalMemoryHandleTypeFlags,
}

#[cfg(unix)]
mod imp {
    use std::ffi::CStr;
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

    use ash::vk;

    use super::ImportTarget;
    use crate::common::{ExternalHandleType, OwnedOsHandle};
    use crate::{Error, Result};

    /// Device functions for exporting/importing memory.
    pub(crate) type MemoryFns = ash::khr::external_memory_fd::Device;
    /// Device functions for exporting/importing semaphore payloads.
    pub(crate) type SemaphoreFns = ash::khr::external_semaphore_fd::Device;
    /// Device functions for exporting/importing fence payloads.
    pub(crate) type FenceFns = ash::khr::external_fence_fd::Device;

    /// The extension every share needs on this platform.
    pub(crate) const MEMORY_EXTENSION: &CStr = ash::khr::external_memory_fd::NAME;
    /// The extension for exportable semaphores.
    pub(crate) const SEMAPHORE_EXTENSION: &CStr = ash::khr::external_semaphore_fd::NAME;
    /// The extension for exportable fences.
    pub(crate) const FENCE_EXTENSION: &CStr = ash::khr::external_fence_fd::NAME;
    /// A command of [`MEMORY_EXTENSION`]: present exactly when it is enabled.
    pub(crate) const GET_MEMORY_COMMAND: &CStr = c"vkGetMemoryFdKHR";
    /// A command of [`SEMAPHORE_EXTENSION`].
    pub(crate) const GET_SEMAPHORE_COMMAND: &CStr = c"vkGetSemaphoreFdKHR";
    /// A command of [`FENCE_EXTENSION`].
    pub(crate) const GET_FENCE_COMMAND: &CStr = c"vkGetFenceFdKHR";
    /// The memory handle type textures are created with on this platform.
    pub(crate) const NATIVE_MEMORY: ExternalHandleType = ExternalHandleType::OpaqueFd;

    fn owned(raw: i32, call: &'static str) -> Result<OwnedOsHandle> {
        if raw < 0 {
            // A sync FD of an already-signaled payload may be -1 ("signaled"); make it explicit.
            return Err(Error::Vulkan {
                call,
                result: vk::Result::ERROR_INVALID_EXTERNAL_HANDLE,
            });
        }
        // SAFETY: the vkGet*FdKHR commands return a new FD that the caller owns, and `raw` is
        // not negative (checked above).
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    /// Exports `memory` as a new FD.
    pub(crate) fn export_memory(
        fns: &MemoryFns,
        memory: vk::DeviceMemory,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
    ) -> Result<OwnedOsHandle> {
        let info = vk::MemoryGetFdInfoKHR::default()
            .memory(memory)
            .handle_type(handle_type);
        // SAFETY: the caller passes memory allocated exportable with this handle type.
        let raw = unsafe { fns.get_memory_fd(&info) }.map_err(Error::vk("vkGetMemoryFdKHR"))?;
        owned(raw, "vkGetMemoryFdKHR")
    }

    /// Allocates dedicated memory for `target.image` from `handle`. Vulkan owns the FD after
    /// a successful import; on failure it is closed here.
    pub(crate) fn import_memory(
        device: &ash::Device,
        target: &ImportTarget,
        handle: OwnedOsHandle,
    ) -> Result<vk::DeviceMemory> {
        let raw = handle.into_raw_fd();
        let mut import_info = vk::ImportMemoryFdInfoKHR::default()
            .handle_type(target.handle_type)
            .fd(raw);
        let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().image(target.image);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(target.size)
            .memory_type_index(target.memory_type_index)
            .push_next(&mut import_info)
            .push_next(&mut dedicated);
        // SAFETY: valid chain pointing at locals; `raw` is an FD we own, of the declared
        // handle type; the caller checked that the exporter's device and driver match ours.
        match unsafe { device.allocate_memory(&alloc, None) } {
            Ok(memory) => Ok(memory),
            Err(e) => {
                // SAFETY: a failed import did not take ownership of `raw`, which we still own.
                drop(unsafe { OwnedFd::from_raw_fd(raw) });
                Err(Error::vk("vkAllocateMemory (import)")(e))
            }
        }
    }

    /// Exports a semaphore's payload as a new FD.
    pub(crate) fn export_semaphore(
        fns: &SemaphoreFns,
        semaphore: vk::Semaphore,
        handle_type: vk::ExternalSemaphoreHandleTypeFlags,
    ) -> Result<OwnedOsHandle> {
        let info = vk::SemaphoreGetFdInfoKHR::default()
            .semaphore(semaphore)
            .handle_type(handle_type);
        // SAFETY: the caller passes a semaphore created exportable with this handle type.
        let raw =
            unsafe { fns.get_semaphore_fd(&info) }.map_err(Error::vk("vkGetSemaphoreFdKHR"))?;
        owned(raw, "vkGetSemaphoreFdKHR")
    }

    /// Imports `handle` into `semaphore`. Consumes the FD on every path.
    pub(crate) fn import_semaphore(
        fns: &SemaphoreFns,
        semaphore: vk::Semaphore,
        handle_type: vk::ExternalSemaphoreHandleTypeFlags,
        flags: vk::SemaphoreImportFlags,
        handle: OwnedOsHandle,
    ) -> Result<()> {
        let raw = handle.into_raw_fd();
        let info = vk::ImportSemaphoreFdInfoKHR::default()
            .semaphore(semaphore)
            .handle_type(handle_type)
            .flags(flags)
            .fd(raw);
        // SAFETY: `raw` is an FD we own of the declared type; on success Vulkan owns it.
        match unsafe { fns.import_semaphore_fd(&info) } {
            Ok(()) => Ok(()),
            Err(e) => {
                // SAFETY: a failed import leaves the FD with us; close it.
                drop(unsafe { OwnedFd::from_raw_fd(raw) });
                Err(Error::vk("vkImportSemaphoreFdKHR")(e))
            }
        }
    }

    /// Exports a fence's payload as a new FD.
    pub(crate) fn export_fence(
        fns: &FenceFns,
        fence: vk::Fence,
        handle_type: vk::ExternalFenceHandleTypeFlags,
    ) -> Result<OwnedOsHandle> {
        let info = vk::FenceGetFdInfoKHR::default()
            .fence(fence)
            .handle_type(handle_type);
        // SAFETY: the caller passes a fence created exportable with this handle type.
        let raw = unsafe { fns.get_fence_fd(&info) }.map_err(Error::vk("vkGetFenceFdKHR"))?;
        owned(raw, "vkGetFenceFdKHR")
    }

    /// Imports `handle` into `fence`. Consumes the FD on every path.
    pub(crate) fn import_fence(
        fns: &FenceFns,
        fence: vk::Fence,
        handle_type: vk::ExternalFenceHandleTypeFlags,
        flags: vk::FenceImportFlags,
        handle: OwnedOsHandle,
    ) -> Result<()> {
        let raw = handle.into_raw_fd();
        let info = vk::ImportFenceFdInfoKHR::default()
            .fence(fence)
            .handle_type(handle_type)
            .flags(flags)
            .fd(raw);
        // SAFETY: `raw` is ours and of the declared type; on success Vulkan owns it.
        if let Err(e) = unsafe { fns.import_fence_fd(&info) } {
            // SAFETY: a failed import leaves the FD with us.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
            return Err(Error::vk("vkImportFenceFdKHR")(e));
        }
        Ok(())
    }
}

/// Windows: NT handles (`OPAQUE_WIN32`). Compiles in CI for `x86_64-pc-windows-msvc`; never
/// run on real hardware.
#[cfg(windows)]
mod imp {
    use std::ffi::CStr;
    use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};

    use ash::vk;

    use super::ImportTarget;
    use crate::common::{ExternalHandleType, OwnedOsHandle};
    use crate::{Error, Result};

    /// Device functions for exporting/importing memory.
    pub(crate) type MemoryFns = ash::khr::external_memory_win32::Device;
    /// Device functions for exporting/importing semaphore payloads.
    pub(crate) type SemaphoreFns = ash::khr::external_semaphore_win32::Device;
    /// Device functions for exporting/importing fence payloads.
    pub(crate) type FenceFns = ash::khr::external_fence_win32::Device;

    /// The extension every share needs on this platform.
    pub(crate) const MEMORY_EXTENSION: &CStr = ash::khr::external_memory_win32::NAME;
    /// The extension for exportable semaphores.
    pub(crate) const SEMAPHORE_EXTENSION: &CStr = ash::khr::external_semaphore_win32::NAME;
    /// The extension for exportable fences.
    pub(crate) const FENCE_EXTENSION: &CStr = ash::khr::external_fence_win32::NAME;
    /// A command of [`MEMORY_EXTENSION`]: present exactly when it is enabled.
    pub(crate) const GET_MEMORY_COMMAND: &CStr = c"vkGetMemoryWin32HandleKHR";
    /// A command of [`SEMAPHORE_EXTENSION`].
    pub(crate) const GET_SEMAPHORE_COMMAND: &CStr = c"vkGetSemaphoreWin32HandleKHR";
    /// A command of [`FENCE_EXTENSION`].
    pub(crate) const GET_FENCE_COMMAND: &CStr = c"vkGetFenceWin32HandleKHR";
    /// The memory handle type textures are created with on this platform.
    pub(crate) const NATIVE_MEMORY: ExternalHandleType = ExternalHandleType::OpaqueWin32;

    fn owned(raw: vk::HANDLE, call: &'static str) -> Result<OwnedOsHandle> {
        if raw == 0 || raw == -1 {
            return Err(Error::Vulkan {
                call,
                result: vk::Result::ERROR_INVALID_EXTERNAL_HANDLE,
            });
        }
        // SAFETY: for NT handle types (`OPAQUE_WIN32`) the vkGet*Win32HandleKHR commands
        // return a new handle that the caller owns and must close; it is neither null nor
        // INVALID_HANDLE_VALUE (checked above).
        Ok(unsafe { OwnedHandle::from_raw_handle(raw as RawHandle) })
    }

    fn raw(handle: &OwnedOsHandle) -> vk::HANDLE {
        handle.as_raw_handle() as vk::HANDLE
    }

    /// Exports `memory` as a new NT handle.
    pub(crate) fn export_memory(
        fns: &MemoryFns,
        memory: vk::DeviceMemory,
        handle_type: vk::ExternalMemoryHandleTypeFlags,
    ) -> Result<OwnedOsHandle> {
        let info = vk::MemoryGetWin32HandleInfoKHR::default()
            .memory(memory)
            .handle_type(handle_type);
        // SAFETY: the caller passes memory allocated exportable with this handle type.
        let h = unsafe { fns.get_memory_win32_handle(&info) }
            .map_err(Error::vk("vkGetMemoryWin32HandleKHR"))?;
        owned(h, "vkGetMemoryWin32HandleKHR")
    }

    /// Allocates dedicated memory for `target.image` from `handle`. Importing an NT handle
    /// never transfers it to Vulkan, so it is closed here when the call returns, on every path.
    pub(crate) fn import_memory(
        device: &ash::Device,
        target: &ImportTarget,
        handle: OwnedOsHandle,
    ) -> Result<vk::DeviceMemory> {
        let mut import_info = vk::ImportMemoryWin32HandleInfoKHR::default()
            .handle_type(target.handle_type)
            .handle(raw(&handle));
        let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().image(target.image);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(target.size)
            .memory_type_index(target.memory_type_index)
            .push_next(&mut import_info)
            .push_next(&mut dedicated);
        // SAFETY: valid chain pointing at locals; `handle` is a live NT handle of the declared
        // type that outlives the call; the caller checked that the exporter's device and
        // driver match ours.
        let result = unsafe { device.allocate_memory(&alloc, None) };
        drop(handle);
        result.map_err(Error::vk("vkAllocateMemory (import)"))
    }

    /// Exports a semaphore's payload as a new NT handle.
    pub(crate) fn export_semaphore(
        fns: &SemaphoreFns,
        semaphore: vk::Semaphore,
        handle_type: vk::ExternalSemaphoreHandleTypeFlags,
    ) -> Result<OwnedOsHandle> {
        let info = vk::SemaphoreGetWin32HandleInfoKHR::default()
            .semaphore(semaphore)
            .handle_type(handle_type);
        // SAFETY: the caller passes a semaphore created exportable with this handle type.
        let h = unsafe { fns.get_semaphore_win32_handle(&info) }
            .map_err(Error::vk("vkGetSemaphoreWin32HandleKHR"))?;
        owned(h, "vkGetSemaphoreWin32HandleKHR")
    }

    /// Imports `handle` into `semaphore`; the NT handle is closed when the call returns.
    pub(crate) fn import_semaphore(
        fns: &SemaphoreFns,
        semaphore: vk::Semaphore,
        handle_type: vk::ExternalSemaphoreHandleTypeFlags,
        flags: vk::SemaphoreImportFlags,
        handle: OwnedOsHandle,
    ) -> Result<()> {
        let info = vk::ImportSemaphoreWin32HandleInfoKHR::default()
            .semaphore(semaphore)
            .handle_type(handle_type)
            .flags(flags)
            .handle(raw(&handle));
        // SAFETY: `handle` is a live NT handle of the declared type for the whole call; NT
        // handle imports do not take ownership, so we keep and close it.
        let result = unsafe { fns.import_semaphore_win32_handle(&info) };
        drop(handle);
        result.map_err(Error::vk("vkImportSemaphoreWin32HandleKHR"))
    }

    /// Exports a fence's payload as a new NT handle.
    pub(crate) fn export_fence(
        fns: &FenceFns,
        fence: vk::Fence,
        handle_type: vk::ExternalFenceHandleTypeFlags,
    ) -> Result<OwnedOsHandle> {
        let info = vk::FenceGetWin32HandleInfoKHR::default()
            .fence(fence)
            .handle_type(handle_type);
        // SAFETY: the caller passes a fence created exportable with this handle type.
        let h = unsafe { fns.get_fence_win32_handle(&info) }
            .map_err(Error::vk("vkGetFenceWin32HandleKHR"))?;
        owned(h, "vkGetFenceWin32HandleKHR")
    }

    /// Imports `handle` into `fence`; the NT handle is closed when the call returns.
    pub(crate) fn import_fence(
        fns: &FenceFns,
        fence: vk::Fence,
        handle_type: vk::ExternalFenceHandleTypeFlags,
        flags: vk::FenceImportFlags,
        handle: OwnedOsHandle,
    ) -> Result<()> {
        let info = vk::ImportFenceWin32HandleInfoKHR::default()
            .fence(fence)
            .handle_type(handle_type)
            .flags(flags)
            .handle(raw(&handle));
        // SAFETY: `handle` is a live NT handle of the declared type for the whole call; NT
        // handle imports do not take ownership, so we keep and close it.
        let result = unsafe { fns.import_fence_win32_handle(&info) };
        drop(handle);
        result.map_err(Error::vk("vkImportFenceWin32HandleKHR"))
    }
}
