//! The CUDA driver (libcuda), loaded at run time: found, every entry point Geyser calls
//! checked, and `cuInit` run once, before the first call; results turned into [`Error`]s.
//!
//! cudarc resolves each symbol lazily and panics when the library or a symbol is missing, so
//! nothing here calls into it before [`init`] has proven both present: a machine without CUDA,
//! or with an older driver, gets [`Error::Unsupported`], never a panic.

use std::sync::OnceLock;

use cudarc::driver::sys;

use crate::{Error, Result};

/// Every driver entry point `geyser::cuda` calls (cudarc's names: the `_v2` ABI where one
/// exists). [`init`] checks them all before the first call.
pub const DRIVER_SYMBOLS: &[&str] = &[
    "cuInit",
    "cuDriverGetVersion",
    "cuGetErrorName",
    "cuDeviceGetCount",
    "cuDeviceGet",
    "cuDeviceGetName",
    "cuDeviceGetUuid_v2",
    "cuDeviceCanAccessPeer",
    "cuDevicePrimaryCtxRetain",
    "cuDevicePrimaryCtxRelease_v2",
    "cuCtxPushCurrent_v2",
    "cuCtxPopCurrent_v2",
    "cuCtxSynchronize",
    "cuCtxEnablePeerAccess",
    "cuImportExternalMemory",
    "cuExternalMemoryGetMappedBuffer",
    "cuExternalMemoryGetMappedMipmappedArray",
    "cuMipmappedArrayGetLevel",
    "cuMipmappedArrayDestroy",
    "cuDestroyExternalMemory",
    "cuImportExternalSemaphore",
    "cuDestroyExternalSemaphore",
    "cuWaitExternalSemaphoresAsync",
    "cuSignalExternalSemaphoresAsync",
    "cuMemAlloc_v2",
    "cuMemFree_v2",
    "cuMemcpy2DAsync_v2",
    "cuMemcpy3DPeerAsync",
    "cuStreamCreate",
    "cuStreamSynchronize",
    "cuStreamDestroy_v2",
];

/// The outcome of loading the driver, once per process.
static LOADED: OnceLock<std::result::Result<i32, String>> = OnceLock::new();

/// Loads libcuda, checks every entry point in [`DRIVER_SYMBOLS`] and calls `cuInit(0)`, once;
/// returns the driver's CUDA version (e.g. 13000). [`Error::Unsupported`] (feature "CUDA")
/// says what is missing: the library, an entry point, or a device.
pub fn init() -> Result<i32> {
    LOADED
        .get_or_init(load)
        .clone()
        .map_err(|reason| Error::unsupported("CUDA", reason))
}

fn load() -> std::result::Result<i32, String> {
    // SAFETY: only dlopens the candidate library names and closes them again.
    if !unsafe { sys::is_culib_present() } {
        return Err(
            "the CUDA driver library (libcuda.so.1) is not installed or not on the library \
             path; install the NVIDIA driver, or use Geyser's Vulkan paths"
                .into(),
        );
    }
    // SAFETY: a candidate loaded just above, so cudarc finds one again and cannot panic.
    let lib = unsafe { sys::culib() };
    for name in DRIVER_SYMBOLS {
        // SAFETY: looks a symbol up without calling it; the type is never used.
        if unsafe { lib.get::<unsafe extern "C" fn()>(name.as_bytes()) }.is_err() {
            return Err(format!(
                "the CUDA driver lacks {name} (too old? Geyser needs CUDA 11.4 or later)"
            ));
        }
    }
    // SAFETY: every symbol exists (checked above); cuInit has no other precondition.
    let r = unsafe { sys::cuInit(0) };
    if r != sys::CUresult::CUDA_SUCCESS {
        let hint = match r {
            sys::CUresult::CUDA_ERROR_NO_DEVICE => ": no CUDA device on this machine",
            sys::CUresult::CUDA_ERROR_STUB_LIBRARY => {
                ": the CUDA toolkit's stub libcuda comes first on the library path; put the \
                 driver's libcuda.so.1 before it"
            }
            _ => "",
        };
        return Err(format!("cuInit failed with {r:?}{hint}"));
    }
    let mut version = 0;
    // SAFETY: the driver is initialized; `version` is a valid out pointer.
    check("cuDriverGetVersion", unsafe {
        sys::cuDriverGetVersion(&mut version)
    })
    .map_err(|e| e.to_string())?;
    Ok(version)
}

/// A CUDA driver struct with every byte zero except what `fill` writes first. Some of the
/// driver's C structs hold enums without a zero value (handle types, memory types, array
/// formats), which `std::mem::zeroed` refuses (it panics); everything else in them defaults to
/// zero.
///
/// # Safety
/// - `fill` must write a valid value into every field of `T` for which all-zero bytes are not
///   valid (through the raw pointer, without reading or creating references to them first).
pub(crate) unsafe fn zeroed_then<T>(fill: impl FnOnce(*mut T)) -> T {
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    fill(value.as_mut_ptr());
    // SAFETY: all bytes are initialised (zeroed), and the caller's `fill` made the fields that
    // zero is not valid for valid.
    unsafe { value.assume_init() }
}

/// [`Error::Cuda`] for a failed `call`, or `Ok`.
pub(crate) fn check(call: &'static str, r: sys::CUresult) -> Result<()> {
    if r == sys::CUresult::CUDA_SUCCESS {
        Ok(())
    } else {
        Err(Error::Cuda {
            call,
            code: r as i32,
            name: format!("{r:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_call_and_the_result() {
        let e = check("cuMemAlloc_v2", sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("cuMemAlloc_v2") && s.contains("CUDA_ERROR_OUT_OF_MEMORY"),
            "{s}"
        );
        assert!(check("cuInit", sys::CUresult::CUDA_SUCCESS).is_ok());
    }
}
