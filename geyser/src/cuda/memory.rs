//! Shared memory in CUDA: [`ExternalMemory`] (a Vulkan allocation exported as an opaque FD,
//! imported with `cuImportExternalMemory`, its device UUID checked), mapped as a
//! [`CudaArray`] (optimal-tiled images: a mipmapped array's level 0) or a [`MappedBuffer`]
//! (linear buffers: a device pointer); [`DeviceBuffer`], CUDA's own memory; 2D copies between
//! any of them and the host.

use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::Arc;

use cudarc::driver::sys;

use super::device::CudaDevice;
use super::driver::{check, zeroed_then};
use super::stream::StreamHandle;
use crate::common::{
    uuid_string, ElementType, ExportInfo, ExportedTexture, ExternalHandleType, MemoryLayout,
    TextureUsage,
};
use crate::{Error, Result};

/// A Vulkan allocation imported into CUDA. Mappings ([`CudaArray`], [`MappedBuffer`]) hold
/// it; it is destroyed after the last of them.
pub struct ExternalMemory {
    device: Arc<CudaDevice>,
    raw: sys::CUexternalMemory,
    size: u64,
}

// SAFETY: a CUexternalMemory is a driver handle, used only with its device's context current.
unsafe impl Send for ExternalMemory {}
// SAFETY: as above; it is never mutated after the import.
unsafe impl Sync for ExternalMemory {}

impl std::fmt::Debug for ExternalMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalMemory")
            .field("device", &self.device.ordinal())
            .field("size", &self.size)
            .finish()
    }
}

impl ExternalMemory {
    /// Imports `size` bytes of memory that a Vulkan device with `device_uuid` exported as an
    /// opaque FD (`dedicated`: allocated with `VkMemoryDedicatedAllocateInfo`). The UUID
    /// must be `device`'s ([`Error::DeviceMismatch`] otherwise). The FD is consumed: the
    /// driver owns it after a successful import; it is closed when the import fails.
    pub fn import_fd(
        device: &Arc<CudaDevice>,
        fd: OwnedFd,
        size: u64,
        dedicated: bool,
        device_uuid: &[u8; 16],
    ) -> Result<Arc<Self>> {
        if device_uuid != device.uuid() {
            return Err(Error::DeviceMismatch {
                exporter: uuid_string(device_uuid),
                importer: format!("cuda:{} {}", device.ordinal(), uuid_string(device.uuid())),
                reason: "the memory belongs to another GPU than this CUDA device".into(),
            });
        }
        if size == 0 {
            return Err(Error::InvalidArgument {
                what: "external memory size",
                reason: "0 bytes".into(),
            });
        }
        let _ctx = device.enter()?;
        // SAFETY: the handle type (an enum without a zero value) is written first; every other
        // field defaults to zero (reserved fields must be zero).
        let mut desc: sys::CUDA_EXTERNAL_MEMORY_HANDLE_DESC = unsafe {
            zeroed_then(|d: *mut sys::CUDA_EXTERNAL_MEMORY_HANDLE_DESC| {
                (&raw mut (*d).type_).write(
                    sys::CUexternalMemoryHandleType::CU_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD,
                )
            })
        };
        desc.handle.fd = std::os::fd::AsRawFd::as_raw_fd(&fd);
        desc.size = size;
        desc.flags = if dedicated {
            sys::CUDA_EXTERNAL_MEMORY_DEDICATED
        } else {
            0
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: the context is current; `desc` names a live FD and the allocation's size.
        check("cuImportExternalMemory", unsafe {
            sys::cuImportExternalMemory(&mut raw, &desc)
        })?;
        // The driver owns the FD now (it closes it with the import); on failure above the
        // OwnedFd closed it.
        let _ = fd.into_raw_fd();
        Ok(Arc::new(Self {
            device: device.clone(),
            raw,
            size,
        }))
    }

    /// Imports a texture's export (opaque FD, dedicated, on `device`'s GPU).
    pub fn import_texture(
        device: &Arc<CudaDevice>,
        exported: ExportedTexture,
    ) -> Result<Arc<Self>> {
        let (info, fd) = exported.into_parts();
        if info.handle_type != ExternalHandleType::OpaqueFd {
            return Err(Error::unsupported(
                format!("{:?} memory in CUDA", info.handle_type),
                "Geyser imports opaque FDs into CUDA",
            ));
        }
        Self::import_fd(
            device,
            fd,
            info.allocation_size,
            info.dedicated,
            &info.device_uuid,
        )
    }

    /// The device it was imported into.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.device
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Maps it as a 2D CUDA array laid out like the optimal-tiled image `info` describes
    /// (level 0 of a one-level mipmapped array). Single-layer, single-mip, single-sample
    /// colour textures only.
    pub fn map_array(self: &Arc<Self>, info: &ExportInfo) -> Result<CudaArray> {
        let d = &info.descriptor;
        let texels = d.format.texel_elements().ok_or_else(|| {
            Error::unsupported(
                format!("{} textures in CUDA", d.format),
                "CUDA arrays hold colour formats",
            )
        })?;
        if info.layout != MemoryLayout::Optimal {
            return Err(Error::InvalidArgument {
                what: "CUDA array",
                reason: format!("{:?} memory maps as a buffer, not an array", info.layout),
            });
        }
        let e = &info.extent;
        if e.depth_or_array_layers != 1 || e.mip_level_count != 1 || e.sample_count != 1 {
            return Err(Error::unsupported(
                "layered, 3D, mipmapped or multisampled textures in CUDA",
                "Geyser maps single-layer, single-mip, single-sample 2D textures into CUDA",
            ));
        }
        let mut flags = 0;
        if d.has_usage(TextureUsage::RenderAttachment) {
            flags |= sys::CUDA_ARRAY3D_COLOR_ATTACHMENT;
        }
        if d.has_usage(TextureUsage::StorageBinding) {
            flags |= sys::CUDA_ARRAY3D_SURFACE_LDST;
        }
        let _ctx = self.device.enter()?;
        // SAFETY: the array format (an enum without a zero value) is written first; every other
        // field defaults to zero.
        let mut desc: sys::CUDA_EXTERNAL_MEMORY_MIPMAPPED_ARRAY_DESC = unsafe {
            zeroed_then(|d: *mut sys::CUDA_EXTERNAL_MEMORY_MIPMAPPED_ARRAY_DESC| {
                (&raw mut (*d).arrayDesc.Format).write(array_format(texels.element))
            })
        };
        desc.offset = 0;
        desc.numLevels = 1;
        desc.arrayDesc = sys::CUDA_ARRAY3D_DESCRIPTOR {
            Width: d.width as usize,
            Height: d.height as usize,
            Depth: 0,
            Format: array_format(texels.element),
            NumChannels: u32::from(texels.count),
            Flags: flags,
        };
        let mut mipmapped = std::ptr::null_mut();
        // SAFETY: the context is current; the memory is a live import of an image of this
        // size and format.
        check("cuExternalMemoryGetMappedMipmappedArray", unsafe {
            sys::cuExternalMemoryGetMappedMipmappedArray(&mut mipmapped, self.raw, &desc)
        })?;
        let mut level0 = std::ptr::null_mut();
        // SAFETY: `mipmapped` was just mapped with one level.
        let r = unsafe { sys::cuMipmappedArrayGetLevel(&mut level0, mipmapped, 0) };
        if let Err(e) = check("cuMipmappedArrayGetLevel", r) {
            // SAFETY: mapped above, not handed out.
            unsafe { sys::cuMipmappedArrayDestroy(mipmapped) };
            return Err(e);
        }
        Ok(CudaArray {
            memory: self.clone(),
            mipmapped,
            level0,
            width: d.width,
            height: d.height,
            texel_bytes: d.format.block_bytes(),
        })
    }

    /// Maps `size` bytes at `offset` as a device pointer (a linear buffer's memory).
    pub fn map_buffer(self: &Arc<Self>, offset: u64, size: u64) -> Result<MappedBuffer> {
        if size == 0 || offset.checked_add(size).is_none_or(|end| end > self.size) {
            return Err(Error::InvalidArgument {
                what: "mapped range",
                reason: format!(
                    "{size} bytes at {offset} of a {}-byte allocation",
                    self.size
                ),
            });
        }
        let _ctx = self.device.enter()?;
        // SAFETY: a plain C struct; zero is the default (flags must be 0).
        let mut desc: sys::CUDA_EXTERNAL_MEMORY_BUFFER_DESC = unsafe { std::mem::zeroed() };
        desc.offset = offset;
        desc.size = size;
        let mut ptr = 0;
        // SAFETY: the context is current; the range lies inside the import (checked).
        check("cuExternalMemoryGetMappedBuffer", unsafe {
            sys::cuExternalMemoryGetMappedBuffer(&mut ptr, self.raw, &desc)
        })?;
        Ok(MappedBuffer {
            memory: self.clone(),
            ptr,
            size,
        })
    }
}

impl Drop for ExternalMemory {
    fn drop(&mut self) {
        let result = self.device.enter().and_then(|_ctx| {
            // SAFETY: every mapping holds an Arc of this import, so all are gone; destroyed
            // once.
            check("cuDestroyExternalMemory", unsafe {
                sys::cuDestroyExternalMemory(self.raw)
            })
        });
        if let Err(e) = result {
            tracing::warn!("{e}");
        }
    }
}

/// The CUDA array format of an element type.
fn array_format(element: ElementType) -> sys::CUarray_format {
    use sys::CUarray_format::*;
    match element {
        ElementType::U8 => CU_AD_FORMAT_UNSIGNED_INT8,
        ElementType::I8 => CU_AD_FORMAT_SIGNED_INT8,
        ElementType::U16 => CU_AD_FORMAT_UNSIGNED_INT16,
        ElementType::U32 => CU_AD_FORMAT_UNSIGNED_INT32,
        ElementType::F16 => CU_AD_FORMAT_HALF,
        ElementType::F32 => CU_AD_FORMAT_FLOAT,
    }
}

/// An optimal-tiled image's memory as a CUDA array (not addressable by pointer: copy it with
/// [`copy_2d`], or bind it as a texture/surface in your own kernels).
pub struct CudaArray {
    memory: Arc<ExternalMemory>,
    mipmapped: sys::CUmipmappedArray,
    level0: sys::CUarray,
    width: u32,
    height: u32,
    texel_bytes: u32,
}

// SAFETY: driver handles, used with the device's context current.
unsafe impl Send for CudaArray {}
// SAFETY: as above; the handles never change.
unsafe impl Sync for CudaArray {}

impl std::fmt::Debug for CudaArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaArray")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl CudaArray {
    /// Level 0 (`CUarray`).
    pub fn raw(&self) -> sys::CUarray {
        self.level0
    }

    /// Width and height in texels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Bytes of one row of texels.
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.texel_bytes as usize
    }

    /// The device it lives on.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.memory.device
    }

    /// As a copy endpoint.
    pub fn region(&self) -> Region2D {
        Region2D::Array(self.level0)
    }
}

impl Drop for CudaArray {
    fn drop(&mut self) {
        let result = self.memory.device.enter().and_then(|_ctx| {
            // SAFETY: mapped in `map_array`, destroyed once; level 0 goes with it.
            check("cuMipmappedArrayDestroy", unsafe {
                sys::cuMipmappedArrayDestroy(self.mipmapped)
            })
        });
        if let Err(e) = result {
            tracing::warn!("{e}");
        }
    }
}

/// A linear range of imported memory as a device pointer.
#[derive(Debug)]
pub struct MappedBuffer {
    memory: Arc<ExternalMemory>,
    ptr: sys::CUdeviceptr,
    size: u64,
}

impl MappedBuffer {
    /// The device pointer.
    pub fn ptr(&self) -> sys::CUdeviceptr {
        self.ptr
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The device it lives on.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.memory.device
    }
}

impl Drop for MappedBuffer {
    fn drop(&mut self) {
        let result = self.memory.device.enter().and_then(|_ctx| {
            // SAFETY: mapped in `map_buffer`, freed once (before the import, which this
            // mapping holds).
            check("cuMemFree_v2", unsafe { sys::cuMemFree_v2(self.ptr) })
        });
        if let Err(e) = result {
            tracing::warn!("{e}");
        }
    }
}

/// Device memory CUDA allocated (`cuMemAlloc`), freed on drop.
pub struct DeviceBuffer {
    device: Arc<CudaDevice>,
    ptr: sys::CUdeviceptr,
    size: u64,
}

impl std::fmt::Debug for DeviceBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBuffer")
            .field("size", &self.size)
            .finish()
    }
}

impl DeviceBuffer {
    /// `size` bytes on `device`.
    pub fn new(device: &Arc<CudaDevice>, size: u64) -> Result<Self> {
        let _ctx = device.enter()?;
        let mut ptr = 0;
        // SAFETY: the context is current; `ptr` is a valid out pointer.
        check("cuMemAlloc_v2", unsafe {
            sys::cuMemAlloc_v2(&mut ptr, size.max(1) as usize)
        })?;
        Ok(Self {
            device: device.clone(),
            ptr,
            size,
        })
    }

    /// The device pointer.
    pub fn ptr(&self) -> sys::CUdeviceptr {
        self.ptr
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        let result = self.device.enter().and_then(|_ctx| {
            // SAFETY: allocated in `new`, freed once; users synchronize their work first.
            check("cuMemFree_v2", unsafe { sys::cuMemFree_v2(self.ptr) })
        });
        if let Err(e) = result {
            tracing::warn!("{e}");
        }
    }
}

/// One end of a 2D copy ([`copy_2d`]).
#[derive(Clone, Copy, Debug)]
pub enum Region2D {
    /// A CUDA array's level 0.
    Array(sys::CUarray),
    /// Device memory: pointer and row pitch in bytes.
    Device(sys::CUdeviceptr, usize),
    /// Host memory: pointer and row pitch in bytes.
    Host(*mut u8, usize),
}

/// Enqueues a copy of `height` rows of `row_bytes` from `src` to `dst` on `stream` (in
/// `device`'s context).
///
/// # Safety
/// - Both regions are live for the whole copy (until `stream` has run it): arrays of
///   `device`, device pointers valid in its context, host memory that stays allocated.
/// - Each region holds `height` rows of at least `row_bytes` at its pitch.
/// - `stream` is a stream of `device`'s context or a default-stream value.
pub unsafe fn copy_2d(
    device: &CudaDevice,
    src: Region2D,
    dst: Region2D,
    row_bytes: usize,
    height: usize,
    stream: StreamHandle,
) -> Result<()> {
    // SAFETY: the two memory types (enums without a zero value) are written first (and set
    // below); every other field defaults to zero.
    let mut c: sys::CUDA_MEMCPY2D = unsafe {
        zeroed_then(|c: *mut sys::CUDA_MEMCPY2D| {
            (&raw mut (*c).srcMemoryType).write(sys::CUmemorytype::CU_MEMORYTYPE_DEVICE);
            (&raw mut (*c).dstMemoryType).write(sys::CUmemorytype::CU_MEMORYTYPE_DEVICE);
        })
    };
    match src {
        Region2D::Array(a) => {
            c.srcMemoryType = sys::CUmemorytype::CU_MEMORYTYPE_ARRAY;
            c.srcArray = a;
        }
        Region2D::Device(p, pitch) => {
            c.srcMemoryType = sys::CUmemorytype::CU_MEMORYTYPE_DEVICE;
            c.srcDevice = p;
            c.srcPitch = pitch;
        }
        Region2D::Host(p, pitch) => {
            c.srcMemoryType = sys::CUmemorytype::CU_MEMORYTYPE_HOST;
            c.srcHost = p.cast();
            c.srcPitch = pitch;
        }
    }
    match dst {
        Region2D::Array(a) => {
            c.dstMemoryType = sys::CUmemorytype::CU_MEMORYTYPE_ARRAY;
            c.dstArray = a;
        }
        Region2D::Device(p, pitch) => {
            c.dstMemoryType = sys::CUmemorytype::CU_MEMORYTYPE_DEVICE;
            c.dstDevice = p;
            c.dstPitch = pitch;
        }
        Region2D::Host(p, pitch) => {
            c.dstMemoryType = sys::CUmemorytype::CU_MEMORYTYPE_HOST;
            c.dstHost = p.cast();
            c.dstPitch = pitch;
        }
    }
    c.WidthInBytes = row_bytes;
    c.Height = height;
    let _ctx = device.enter()?;
    // SAFETY: the caller's contract: live regions of this context, in bounds.
    check("cuMemcpy2DAsync_v2", unsafe {
        sys::cuMemcpy2DAsync_v2(&c, stream.raw())
    })
}
