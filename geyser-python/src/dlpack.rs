//! DLPack (dlpack.h v1.1) both ways: [`export`] wraps memory Geyser owns in a capsule
//! (legacy `dltensor`, or `dltensor_versioned` when the consumer asks for version 1), kept
//! alive by an `Arc` until the consumer's deleter runs; [`Imported`] reads a capsule another
//! library made (a torch/CuPy/NumPy array to publish) and calls its deleter when dropped.

use std::any::Any;
use std::ffi::{c_void, CStr};
use std::ptr::NonNull;
use std::sync::Arc;

use geyser::common::ElementType;
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

/// `kDLCPU`.
pub const DEVICE_CPU: i32 = 1;
/// `kDLCUDA`.
pub const DEVICE_CUDA: i32 = 2;
const READ_ONLY: u64 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLDevice {
    pub device_type: i32,
    pub device_id: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLDataType {
    pub code: u8,
    pub bits: u8,
    pub lanes: u16,
}

#[repr(C)]
pub struct DLTensor {
    pub data: *mut c_void,
    pub device: DLDevice,
    pub ndim: i32,
    pub dtype: DLDataType,
    pub shape: *mut i64,
    /// In elements; null means C-contiguous.
    pub strides: *mut i64,
    pub byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

#[repr(C)]
struct DLPackVersion {
    major: u32,
    minor: u32,
}

#[repr(C)]
struct DLManagedTensorVersioned {
    version: DLPackVersion,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    flags: u64,
    dl_tensor: DLTensor,
}

const _: () = assert!(std::mem::size_of::<DLTensor>() == 48);
const _: () = assert!(std::mem::size_of::<DLManagedTensor>() == 64);
const _: () = assert!(std::mem::size_of::<DLManagedTensorVersioned>() == 80);

const DLTENSOR: &CStr = c"dltensor";
const DLTENSOR_VERSIONED: &CStr = c"dltensor_versioned";
const USED_DLTENSOR: &CStr = c"used_dltensor";
const USED_DLTENSOR_VERSIONED: &CStr = c"used_dltensor_versioned";

/// The DLPack type of an element type.
pub fn data_type(element: ElementType) -> DLDataType {
    let (code, bits) = match element {
        ElementType::U8 => (1, 8),
        ElementType::I8 => (0, 8),
        ElementType::U16 => (1, 16),
        ElementType::U32 => (1, 32),
        ElementType::F16 => (2, 16),
        ElementType::F32 => (2, 32),
    };
    DLDataType {
        code,
        bits,
        lanes: 1,
    }
}

/// The element type of a DLPack type, if Geyser has one like it.
pub fn element_type(t: DLDataType) -> Option<ElementType> {
    [
        ElementType::U8,
        ElementType::I8,
        ElementType::U16,
        ElementType::U32,
        ElementType::F16,
        ElementType::F32,
    ]
    .into_iter()
    .find(|e| data_type(*e) == t)
}

/// What a capsule describes: memory, its device, shape and element strides (up to 3 dims).
pub struct Tensor {
    pub data: *mut u8,
    pub device: DLDevice,
    pub element: ElementType,
    pub shape: Vec<i64>,
    /// In elements (DLPack's unit).
    pub strides: Vec<i64>,
}

/// One heap block per export: the managed tensor first (its address is the block's), the
/// shape and strides it points into, and what keeps the memory alive. The deleter may run on
/// any thread without the GIL: the owner is Rust data.
#[repr(C)]
struct Holder<M> {
    managed: M,
    shape: [i64; 3],
    strides: [i64; 3],
    _owner: Arc<dyn Any + Send + Sync>,
}

unsafe extern "C" fn delete_legacy(m: *mut DLManagedTensor) {
    if !m.is_null() {
        // SAFETY: `m` is the start of a Box<Holder<DLManagedTensor>> made by `export`, and
        // DLPack calls the deleter once.
        drop(unsafe { Box::from_raw(m.cast::<Holder<DLManagedTensor>>()) });
    }
}

unsafe extern "C" fn delete_versioned(m: *mut DLManagedTensorVersioned) {
    if !m.is_null() {
        // SAFETY: as in `delete_legacy`, for the versioned block.
        drop(unsafe { Box::from_raw(m.cast::<Holder<DLManagedTensorVersioned>>()) });
    }
}

/// Frees an export nobody consumed: only while the capsule still has its unconsumed name (a
/// consumer renames it to `used_*` and calls the deleter itself).
unsafe extern "C" fn capsule_destructor(cap: *mut ffi::PyObject) {
    // SAFETY: `cap` is a capsule (the interpreter calls this for ours only); IsValid and
    // GetPointer check the name and set no exception when it differs.
    unsafe {
        if ffi::PyCapsule_IsValid(cap, DLTENSOR.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(cap, DLTENSOR.as_ptr()).cast::<DLManagedTensor>();
            if let Some(d) = (*m).deleter {
                d(m);
            }
        } else if ffi::PyCapsule_IsValid(cap, DLTENSOR_VERSIONED.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(cap, DLTENSOR_VERSIONED.as_ptr())
                .cast::<DLManagedTensorVersioned>();
            if let Some(d) = (*m).deleter {
                d(m);
            }
        }
    }
}

/// Memory to export: where, on which device, and what it holds.
pub struct Export {
    pub data: *mut u8,
    pub device: DLDevice,
    pub element: ElementType,
    /// `[h, w]` or `[h, w, c]`.
    pub shape: Vec<i64>,
    /// Row stride in elements (texel and channel strides follow from the shape).
    pub row_stride: i64,
    pub read_only: bool,
    /// Kept alive until the consumer is done with the tensor.
    pub owner: Arc<dyn Any + Send + Sync>,
}

/// Wraps `e` in a DLPack capsule: versioned when `max_version` allows version 1.
pub fn export<'py>(
    py: Python<'py>,
    e: Export,
    max_version: Option<(u32, u32)>,
) -> PyResult<Bound<'py, PyCapsule>> {
    let ndim = e.shape.len();
    if !(2..=3).contains(&ndim) {
        return Err(PyBufferError::new_err("frames have 2 or 3 dimensions"));
    }
    let mut shape = [0i64; 3];
    shape[..ndim].copy_from_slice(&e.shape);
    let channels = if ndim == 3 { e.shape[2] } else { 1 };
    let mut strides = [0i64; 3];
    strides[0] = e.row_stride;
    strides[1] = channels;
    strides[2] = 1;
    let tensor = DLTensor {
        data: e.data.cast(),
        device: e.device,
        ndim: ndim as i32,
        dtype: data_type(e.element),
        shape: std::ptr::null_mut(),
        strides: std::ptr::null_mut(),
        byte_offset: 0,
    };
    if max_version.is_some_and(|(major, _)| major >= 1) {
        let holder = Box::into_raw(Box::new(Holder {
            managed: DLManagedTensorVersioned {
                version: DLPackVersion { major: 1, minor: 1 },
                manager_ctx: std::ptr::null_mut(),
                deleter: Some(delete_versioned),
                flags: if e.read_only { READ_ONLY } else { 0 },
                dl_tensor: tensor,
            },
            shape,
            strides,
            _owner: e.owner,
        }));
        // SAFETY: `holder` is a fresh, valid box; its managed tensor points into itself (the
        // block never moves); the capsule's destructor frees it unless consumed, and on
        // failure to make the capsule it is freed here.
        unsafe {
            (*holder).managed.manager_ctx = holder.cast();
            (*holder).managed.dl_tensor.shape = (*holder).shape.as_mut_ptr();
            (*holder).managed.dl_tensor.strides = (*holder).strides.as_mut_ptr();
            PyCapsule::new_with_pointer_and_destructor(
                py,
                NonNull::new_unchecked(holder.cast()),
                DLTENSOR_VERSIONED,
                Some(capsule_destructor),
            )
            .inspect_err(|_| delete_versioned(holder.cast()))
        }
    } else {
        let holder = Box::into_raw(Box::new(Holder {
            managed: DLManagedTensor {
                dl_tensor: tensor,
                manager_ctx: std::ptr::null_mut(),
                deleter: Some(delete_legacy),
            },
            shape,
            strides,
            _owner: e.owner,
        }));
        // SAFETY: as above, for the legacy block.
        unsafe {
            (*holder).managed.manager_ctx = holder.cast();
            (*holder).managed.dl_tensor.shape = (*holder).shape.as_mut_ptr();
            (*holder).managed.dl_tensor.strides = (*holder).strides.as_mut_ptr();
            PyCapsule::new_with_pointer_and_destructor(
                py,
                NonNull::new_unchecked(holder.cast()),
                DLTENSOR,
                Some(capsule_destructor),
            )
            .inspect_err(|_| delete_legacy(holder.cast()))
        }
    }
}

/// A capsule from another library, consumed: its tensor is readable until this drops, which
/// calls the producer's deleter.
pub struct Imported {
    capsule: Py<PyAny>,
    tensor: Tensor,
    versioned: bool,
}

impl Imported {
    /// Consumes `capsule` (renamed `used_*`, as DLPack asks).
    pub fn take(capsule: &Bound<'_, PyAny>) -> PyResult<Self> {
        let cap = capsule.as_ptr();
        // SAFETY: IsValid accepts any object and sets no exception.
        let (name, used, versioned) = unsafe {
            if ffi::PyCapsule_IsValid(cap, DLTENSOR_VERSIONED.as_ptr()) == 1 {
                (DLTENSOR_VERSIONED, USED_DLTENSOR_VERSIONED, true)
            } else if ffi::PyCapsule_IsValid(cap, DLTENSOR.as_ptr()) == 1 {
                (DLTENSOR, USED_DLTENSOR, false)
            } else {
                return Err(PyBufferError::new_err(
                    "__dlpack__ returned no unconsumed DLPack capsule",
                ));
            }
        };
        // SAFETY: a valid capsule of this name (checked above) holds a managed tensor of the
        // matching layout, alive until its deleter runs.
        let tensor = unsafe {
            let ptr = ffi::PyCapsule_GetPointer(cap, name.as_ptr());
            let t = if versioned {
                &(*ptr.cast::<DLManagedTensorVersioned>()).dl_tensor
            } else {
                &(*ptr.cast::<DLManagedTensor>()).dl_tensor
            };
            read_tensor(t)?
        };
        // SAFETY: renaming our reference's capsule; the name is static.
        if unsafe { ffi::PyCapsule_SetName(cap, used.as_ptr()) } != 0 {
            return Err(PyErr::fetch(capsule.py()));
        }
        Ok(Self {
            capsule: capsule.clone().unbind(),
            tensor,
            versioned,
        })
    }

    /// The tensor it describes.
    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }
}

/// Copies what a `DLTensor` says into owned form; refuses what frames cannot be.
///
/// # Safety
/// `t` is a live tensor whose `shape` (and `strides`, when not null) hold `ndim` values.
unsafe fn read_tensor(t: &DLTensor) -> PyResult<Tensor> {
    if !(1..=3).contains(&t.ndim) {
        return Err(PyBufferError::new_err(format!(
            "a frame has 2 or 3 dimensions (height, width[, channels]), the array has {}",
            t.ndim
        )));
    }
    let n = t.ndim as usize;
    // SAFETY: the caller's contract: `shape` holds `ndim` values.
    let shape = unsafe { std::slice::from_raw_parts(t.shape, n) }.to_vec();
    let strides = if t.strides.is_null() {
        let mut s = vec![1i64; n];
        for i in (0..n - 1).rev() {
            s[i] = s[i + 1] * shape[i + 1];
        }
        s
    } else {
        // SAFETY: as above for `strides`.
        unsafe { std::slice::from_raw_parts(t.strides, n) }.to_vec()
    };
    let element = element_type(t.dtype).ok_or_else(|| {
        PyBufferError::new_err(format!(
            "unsupported element type (DLPack code {}, {} bits, {} lanes); use uint8, int8, uint16, uint32, float16 or float32",
            t.dtype.code, t.dtype.bits, t.dtype.lanes
        ))
    })?;
    Ok(Tensor {
        // SAFETY: DLPack's data pointer plus its byte offset is the first element.
        data: unsafe { t.data.cast::<u8>().add(t.byte_offset as usize) },
        device: t.device,
        element,
        shape,
        strides,
    })
}

impl Drop for Imported {
    fn drop(&mut self) {
        Python::attach(|py| {
            let cap = self.capsule.bind(py).as_ptr();
            let name = if self.versioned {
                USED_DLTENSOR_VERSIONED
            } else {
                USED_DLTENSOR
            };
            // SAFETY: we renamed this capsule to `name` when consuming it; its pointer is the
            // producer's managed tensor, whose deleter we call once, as the consumer must.
            unsafe {
                let ptr = ffi::PyCapsule_GetPointer(cap, name.as_ptr());
                if ptr.is_null() {
                    ffi::PyErr_Clear();
                    return;
                }
                if self.versioned {
                    let m = ptr.cast::<DLManagedTensorVersioned>();
                    if let Some(d) = (*m).deleter {
                        d(m);
                    }
                } else {
                    let m = ptr.cast::<DLManagedTensor>();
                    if let Some(d) = (*m).deleter {
                        d(m);
                    }
                }
            }
        });
    }
}
