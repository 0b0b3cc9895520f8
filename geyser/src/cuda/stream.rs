//! CUDA streams: [`CudaStream`], one Geyser owns, and [`StreamHandle`], any stream given as
//! the integer the CUDA runtime, DLPack and the CUDA Array Interface use.

use std::sync::Arc;

use cudarc::driver::sys;

use super::device::CudaDevice;
use super::driver::check;
use crate::Result;

/// A stream as an integer: `1` the legacy default stream, `2` the per-thread default stream,
/// anything else a `CUstream`/`cudaStream_t` (the values DLPack's `__dlpack__(stream=…)` and
/// the CUDA Array Interface use; `0` means the legacy default stream too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamHandle(pub usize);

impl StreamHandle {
    /// The legacy default stream (`CU_STREAM_LEGACY`): orders against every blocking stream.
    pub const LEGACY: StreamHandle = StreamHandle(1);
    /// The calling thread's default stream (`CU_STREAM_PER_THREAD`).
    pub const PER_THREAD: StreamHandle = StreamHandle(2);

    /// The driver's handle (`0` becomes the legacy default stream).
    pub fn raw(self) -> sys::CUstream {
        match self.0 {
            0 => 1usize as sys::CUstream,
            n => n as sys::CUstream,
        }
    }
}

/// A non-blocking stream on one device, synchronized and destroyed on drop.
pub struct CudaStream {
    device: Arc<CudaDevice>,
    raw: sys::CUstream,
}

// SAFETY: a CUstream is a driver handle usable from any thread with its context current
// (every use enters the device's context).
unsafe impl Send for CudaStream {}
// SAFETY: as above; the driver serializes work submitted to one stream.
unsafe impl Sync for CudaStream {}

impl std::fmt::Debug for CudaStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaStream")
            .field("device", &self.device.ordinal())
            .finish_non_exhaustive()
    }
}

impl CudaStream {
    /// A new non-blocking stream on `device` (it does not order against the legacy default
    /// stream).
    pub fn new(device: &Arc<CudaDevice>) -> Result<Self> {
        let _ctx = device.enter()?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: the device's context is current; `raw` is a valid out pointer.
        check("cuStreamCreate", unsafe {
            sys::cuStreamCreate(&mut raw, sys::CUstream_flags::CU_STREAM_NON_BLOCKING as u32)
        })?;
        Ok(Self {
            device: device.clone(),
            raw,
        })
    }

    /// Its handle.
    pub fn handle(&self) -> StreamHandle {
        StreamHandle(self.raw as usize)
    }

    /// The device it runs on.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.device
    }

    /// Waits on the host until everything queued on it has run.
    pub fn synchronize(&self) -> Result<()> {
        synchronize(&self.device, self.handle())
    }
}

/// Waits on the host until everything queued on `stream` (a stream of `device`'s context, or
/// a default-stream value) has run.
pub fn synchronize(device: &CudaDevice, stream: StreamHandle) -> Result<()> {
    let _ctx = device.enter()?;
    // SAFETY: the context is current; the handle names a stream of it or a default stream
    // (an invalid one is an error result).
    check("cuStreamSynchronize", unsafe {
        sys::cuStreamSynchronize(stream.raw())
    })
}

impl Drop for CudaStream {
    fn drop(&mut self) {
        let result = self.device.enter().and_then(|_ctx| {
            // SAFETY: our stream, in the current context; its work finishes before it goes.
            check("cuStreamSynchronize", unsafe {
                sys::cuStreamSynchronize(self.raw)
            })?;
            // SAFETY: as above, destroyed once.
            check("cuStreamDestroy_v2", unsafe {
                sys::cuStreamDestroy_v2(self.raw)
            })
        });
        if let Err(e) = result {
            tracing::warn!("destroying a CUDA stream: {e}");
        }
    }
}
