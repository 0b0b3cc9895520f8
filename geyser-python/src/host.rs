//! Frames copied to host memory: [`HostFrame`] owns the bytes and exports them through
//! DLPack, so `numpy.from_dlpack` wraps them without a second copy (and the array keeps them
//! alive). Works with the stable ABI, which has no buffer protocol before Python 3.11.

use std::sync::Arc;

use geyser::common::ElementType;
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::dlpack::{self, DLDevice, Export, DEVICE_CPU};

/// Host bytes of one frame, tightly packed rows.
pub struct HostBytes {
    pub bytes: Vec<u8>,
    pub element: ElementType,
    pub shape: Vec<i64>,
}

/// A frame in host memory (what `Frame.numpy()` wraps); exports itself to DLPack (CPU).
#[pyclass(frozen, module = "geyser._native")]
pub struct HostFrame {
    data: Arc<HostBytes>,
}

impl HostFrame {
    /// Wraps `data` as a NumPy array (`numpy.from_dlpack`, no copy).
    pub fn into_numpy(py: Python<'_>, data: HostBytes) -> PyResult<Bound<'_, PyAny>> {
        let frame = Bound::new(
            py,
            HostFrame {
                data: Arc::new(data),
            },
        )?;
        py.import("numpy")?.call_method1("from_dlpack", (frame,))
    }
}

#[pymethods]
impl HostFrame {
    fn __dlpack_device__(&self) -> (i32, i32) {
        (DEVICE_CPU, 0)
    }

    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<Bound<'py, PyAny>>,
        max_version: Option<(u32, u32)>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = (stream, copy);
        if dl_device.is_some_and(|d| d != (DEVICE_CPU, 0)) {
            return Err(PyBufferError::new_err(
                "a host frame exports to the CPU only",
            ));
        }
        let row_stride = self.data.shape.get(1..).map_or(1, |s| s.iter().product());
        let owner: Arc<dyn std::any::Any + Send + Sync> = self.data.clone();
        dlpack::export(
            py,
            Export {
                data: self.data.bytes.as_ptr().cast_mut(),
                device: DLDevice {
                    device_type: DEVICE_CPU,
                    device_id: 0,
                },
                element: self.data.element,
                shape: self.data.shape.clone(),
                row_stride,
                read_only: false,
                owner,
            },
            max_version,
        )
    }
}
