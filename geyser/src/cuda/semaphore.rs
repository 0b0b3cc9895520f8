//! [`CudaTimeline`]: a shared Vulkan timeline semaphore imported into CUDA
//! (`cuImportExternalSemaphore`, timeline FD), so CUDA streams wait for and signal the same
//! counter Vulkan queues do: CUDA work waits on the GPU, never on the host.

use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::Arc;

use cudarc::driver::sys;

use super::device::CudaDevice;
use super::driver::{check, zeroed_then};
use super::stream::StreamHandle;
use crate::vulkan::SharedTimelineSemaphore;
use crate::Result;

/// A timeline semaphore imported into one device's context.
pub struct CudaTimeline {
    device: Arc<CudaDevice>,
    raw: sys::CUexternalSemaphore,
}

// SAFETY: a CUexternalSemaphore is a driver handle, used with its device's context current.
unsafe impl Send for CudaTimeline {}
// SAFETY: as above; the handle never changes.
unsafe impl Sync for CudaTimeline {}

impl std::fmt::Debug for CudaTimeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaTimeline")
            .field("device", &self.device.ordinal())
            .finish_non_exhaustive()
    }
}

impl CudaTimeline {
    /// Imports a Vulkan timeline semaphore exported as an opaque FD by a device on the same
    /// GPU. The FD is consumed (owned by the driver after a successful import, closed
    /// otherwise).
    pub fn import_fd(device: &Arc<CudaDevice>, fd: OwnedFd) -> Result<Self> {
        let _ctx = device.enter()?;
        // SAFETY: the handle type (an enum without a zero value) is written first; every other
        // field defaults to zero (flags must be 0).
        let mut desc: sys::CUDA_EXTERNAL_SEMAPHORE_HANDLE_DESC = unsafe {
            zeroed_then(|d: *mut sys::CUDA_EXTERNAL_SEMAPHORE_HANDLE_DESC| {
                (&raw mut (*d).type_).write(
                    sys::CUexternalSemaphoreHandleType::CU_EXTERNAL_SEMAPHORE_HANDLE_TYPE_TIMELINE_SEMAPHORE_FD,
                )
            })
        };
        desc.handle.fd = std::os::fd::AsRawFd::as_raw_fd(&fd);
        let mut raw = std::ptr::null_mut();
        // SAFETY: the context is current; `desc` names a live FD.
        check("cuImportExternalSemaphore", unsafe {
            sys::cuImportExternalSemaphore(&mut raw, &desc)
        })?;
        // The driver owns the FD now.
        let _ = fd.into_raw_fd();
        Ok(Self {
            device: device.clone(),
            raw,
        })
    }

    /// Imports `semaphore` (exported once more for CUDA; it must have been created
    /// exportable, as [`SharedTimelineSemaphore::new`] does, on `device`'s GPU).
    pub fn from_vulkan(
        device: &Arc<CudaDevice>,
        semaphore: &SharedTimelineSemaphore,
    ) -> Result<Self> {
        Self::import_fd(device, semaphore.export()?)
    }

    /// Makes `stream` wait until the timeline reaches `value` (work queued after this runs
    /// once it has).
    ///
    /// # Safety
    /// `stream` is a stream of this timeline's device context, or a default-stream value.
    pub unsafe fn wait(&self, value: u64, stream: StreamHandle) -> Result<()> {
        let _ctx = self.device.enter()?;
        // SAFETY: a plain C struct with unions; zero is the default (flags must be 0).
        let mut params: sys::CUDA_EXTERNAL_SEMAPHORE_WAIT_PARAMS = unsafe { std::mem::zeroed() };
        params.params.fence.value = value;
        // SAFETY: one semaphore and one parameter block; the stream is the caller's contract.
        check("cuWaitExternalSemaphoresAsync", unsafe {
            sys::cuWaitExternalSemaphoresAsync(&self.raw, &params, 1, stream.raw())
        })
    }

    /// Signals `value` from `stream` once the work queued before it has run.
    ///
    /// # Safety
    /// As [`Self::wait`].
    pub unsafe fn signal(&self, value: u64, stream: StreamHandle) -> Result<()> {
        let _ctx = self.device.enter()?;
        // SAFETY: a plain C struct with unions; zero is the default (flags must be 0).
        let mut params: sys::CUDA_EXTERNAL_SEMAPHORE_SIGNAL_PARAMS = unsafe { std::mem::zeroed() };
        params.params.fence.value = value;
        // SAFETY: one semaphore and one parameter block; the stream is the caller's contract.
        check("cuSignalExternalSemaphoresAsync", unsafe {
            sys::cuSignalExternalSemaphoresAsync(&self.raw, &params, 1, stream.raw())
        })
    }
}

impl Drop for CudaTimeline {
    fn drop(&mut self) {
        let result = self.device.enter().and_then(|_ctx| {
            // Waits and signals queued on any stream (an application's too) must have run
            // before the semaphore goes.
            // SAFETY: the context is current.
            check("cuCtxSynchronize", unsafe { sys::cuCtxSynchronize() })?;
            // SAFETY: imported in `import_fd`, destroyed once, nothing pending (above).
            check("cuDestroyExternalSemaphore", unsafe {
                sys::cuDestroyExternalSemaphore(self.raw)
            })
        });
        if let Err(e) = result {
            tracing::warn!("{e}");
        }
    }
}
