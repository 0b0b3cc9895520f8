//! [`CudaDevice`]: one CUDA device and its primary context (the one the CUDA runtime, and so
//! PyTorch and CuPy, use), matched to Vulkan devices by UUID; peer access between devices.

use std::sync::Arc;

use cudarc::driver::sys;

use super::driver::{check, init};
use crate::common::uuid_string;
use crate::{Error, Result};

/// A CUDA device as listed by the driver.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CudaDeviceInfo {
    /// Its ordinal (`cuDeviceGet`; the runtime's numbering, `cuda:N`, under the same
    /// `CUDA_VISIBLE_DEVICES`).
    pub ordinal: usize,
    /// Its name.
    pub name: String,
    /// `cuDeviceGetUuid`: equal to the Vulkan `deviceUUID` of the same GPU.
    pub uuid: [u8; 16],
}

/// The CUDA devices present, in ordinal order. [`Error::Unsupported`] without a CUDA driver.
pub fn devices() -> Result<Vec<CudaDeviceInfo>> {
    init()?;
    let mut count = 0;
    // SAFETY: the driver is initialized; `count` is a valid out pointer.
    check("cuDeviceGetCount", unsafe {
        sys::cuDeviceGetCount(&mut count)
    })?;
    (0..count.max(0) as usize).map(device_info).collect()
}

fn device_handle(ordinal: usize) -> Result<sys::CUdevice> {
    let mut dev = 0;
    let index = i32::try_from(ordinal).unwrap_or(i32::MAX);
    // SAFETY: the driver is initialized (callers ran `init`); an ordinal out of range is an
    // error result, not undefined behaviour.
    check("cuDeviceGet", unsafe { sys::cuDeviceGet(&mut dev, index) })?;
    Ok(dev)
}

fn device_info(ordinal: usize) -> Result<CudaDeviceInfo> {
    let dev = device_handle(ordinal)?;
    let mut name = [0 as std::ffi::c_char; 256];
    // SAFETY: `name` holds 256 chars and the length says so; the driver NUL-terminates.
    check("cuDeviceGetName", unsafe {
        sys::cuDeviceGetName(name.as_mut_ptr(), name.len() as i32, dev)
    })?;
    // SAFETY: NUL-terminated within the buffer (above).
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let mut uuid = sys::CUuuid { bytes: [0; 16] };
    // SAFETY: `uuid` is a valid out pointer; `dev` came from cuDeviceGet.
    check("cuDeviceGetUuid_v2", unsafe {
        sys::cuDeviceGetUuid_v2(&mut uuid, dev)
    })?;
    Ok(CudaDeviceInfo {
        ordinal,
        name,
        uuid: uuid.bytes.map(|b| b as u8),
    })
}

/// A CUDA device with its primary context retained (released on drop). Every CUDA call
/// Geyser makes for this device runs with that context current ([`Self::enter`]), on
/// whichever thread, so pointers and streams it hands out are valid in the CUDA runtime's
/// context (PyTorch's and CuPy's) of the same device.
pub struct CudaDevice {
    info: CudaDeviceInfo,
    device: sys::CUdevice,
    context: sys::CUcontext,
}

// SAFETY: a CUcontext and CUdevice are driver handles usable from any thread (the driver API
// is thread-safe; every use pushes the context on the calling thread first).
unsafe impl Send for CudaDevice {}
// SAFETY: as above; nothing in the struct is mutated after creation.
unsafe impl Sync for CudaDevice {}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaDevice")
            .field("ordinal", &self.info.ordinal)
            .field("name", &self.info.name)
            .finish()
    }
}

impl CudaDevice {
    /// The device with this ordinal. [`Error::Unsupported`] without a CUDA driver,
    /// [`Error::NoDevice`] when there is no such ordinal.
    pub fn new(ordinal: usize) -> Result<Arc<Self>> {
        let all = devices()?;
        let info = all
            .get(ordinal)
            .cloned()
            .ok_or_else(|| no_device(&all, format!("cuda:{ordinal}")))?;
        Self::open(info)
    }

    /// The CUDA device whose UUID is `uuid` (a Vulkan `deviceUUID`).
    pub fn with_uuid(uuid: &[u8; 16]) -> Result<Arc<Self>> {
        let all = devices()?;
        let info = all
            .iter()
            .find(|d| &d.uuid == uuid)
            .cloned()
            .ok_or_else(|| {
                no_device(&all, format!("CUDA device with UUID {}", uuid_string(uuid)))
            })?;
        Self::open(info)
    }

    fn open(info: CudaDeviceInfo) -> Result<Arc<Self>> {
        let device = device_handle(info.ordinal)?;
        let mut context = std::ptr::null_mut();
        // SAFETY: `device` is valid; the retained context is released in Drop.
        check("cuDevicePrimaryCtxRetain", unsafe {
            sys::cuDevicePrimaryCtxRetain(&mut context, device)
        })?;
        Ok(Arc::new(Self {
            info,
            device,
            context,
        }))
    }

    /// Its ordinal, name and UUID.
    pub fn info(&self) -> &CudaDeviceInfo {
        &self.info
    }

    /// Its ordinal (`cuda:N`).
    pub fn ordinal(&self) -> usize {
        self.info.ordinal
    }

    /// Its UUID (the Vulkan `deviceUUID` of the same GPU).
    pub fn uuid(&self) -> &[u8; 16] {
        &self.info.uuid
    }

    /// The primary context.
    pub fn raw_context(&self) -> sys::CUcontext {
        self.context
    }

    /// Makes the primary context current on this thread until the guard drops (push/pop, so
    /// an application's own current context is restored).
    pub(crate) fn enter(&self) -> Result<ContextGuard> {
        // SAFETY: a retained primary context; popped by the guard.
        check("cuCtxPushCurrent_v2", unsafe {
            sys::cuCtxPushCurrent_v2(self.context)
        })?;
        Ok(ContextGuard(std::marker::PhantomData))
    }

    /// Whether this device can read and write `peer`'s memory directly
    /// (`cuDeviceCanAccessPeer`: NVLink or PCIe peer-to-peer).
    pub fn can_access_peer(&self, peer: &CudaDevice) -> Result<bool> {
        if self.device == peer.device {
            return Ok(false);
        }
        let mut can = 0;
        // SAFETY: both handles are valid devices; `can` is a valid out pointer.
        check("cuDeviceCanAccessPeer", unsafe {
            sys::cuDeviceCanAccessPeer(&mut can, self.device, peer.device)
        })?;
        Ok(can != 0)
    }

    /// Lets this device's context access `peer`'s memory (`cuCtxEnablePeerAccess`); already
    /// enabled is fine.
    pub fn enable_peer_access(&self, peer: &CudaDevice) -> Result<()> {
        let _ctx = self.enter()?;
        // SAFETY: our context is current; `peer.context` is a retained primary context.
        let r = unsafe { sys::cuCtxEnablePeerAccess(peer.context, 0) };
        if r == sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED {
            return Ok(());
        }
        check("cuCtxEnablePeerAccess", r)
    }
}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        // SAFETY: retained in `open`, released once here; everything made in this context
        // holds an `Arc` of this device, so it is gone by now.
        let r = unsafe { sys::cuDevicePrimaryCtxRelease_v2(self.device) };
        if let Err(e) = check("cuDevicePrimaryCtxRelease_v2", r) {
            tracing::warn!("{e}");
        }
    }
}

/// A context made current by [`CudaDevice::enter`]; pops it on drop.
pub(crate) struct ContextGuard(std::marker::PhantomData<*const ()>);

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let mut popped = std::ptr::null_mut();
        // SAFETY: pops the context the matching `enter` pushed on this thread (the guard is
        // neither Send nor Sync: it drops on the thread that made it).
        let r = unsafe { sys::cuCtxPopCurrent_v2(&mut popped) };
        if let Err(e) = check("cuCtxPopCurrent_v2", r) {
            tracing::warn!("{e}");
        }
    }
}

fn no_device(all: &[CudaDeviceInfo], request: String) -> Error {
    Error::NoDevice {
        request,
        available: all
            .iter()
            .map(|d| format!("cuda:{} {} ({})", d.ordinal, d.name, uuid_string(&d.uuid)))
            .collect(),
    }
}
