//! `geyser.Frame`: one frame held by a consumer, as a NumPy copy (`numpy()`, any device) or
//! zero-copy on CUDA (`__dlpack__`, `__cuda_array_interface__`), with the wait for the
//! producer's write enqueued on the caller's stream. Released by `release()`, the end of a
//! `with` block, the consumer's next frame, or garbage collection.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};

use geyser::cuda::StreamHandle;
use geyser::ipc::DetachedFrame;
use pyo3::exceptions::{PyAttributeError, PyBufferError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

use crate::backend::{DeviceFrame, FrameTimes};
use crate::consumer::Shared;
use crate::convert::{dtype_name, typestr, Device};
use crate::dlpack::{self, DLDevice, Export, DEVICE_CPU, DEVICE_CUDA};
use crate::errors::{invalid, IntoPy};
use crate::host::{HostBytes, HostFrame};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A held frame (until released) and the stream its last export was made for.
pub struct FrameState {
    held: Mutex<Option<DetachedFrame>>,
    stream: Mutex<Option<StreamHandle>>,
}

impl FrameState {
    pub fn new(frame: DetachedFrame) -> Self {
        Self {
            held: Mutex::new(Some(frame)),
            stream: Mutex::new(None),
        }
    }

    /// Takes the frame for release (once), with the stream to release it on.
    pub fn take(&self) -> Option<(DetachedFrame, Option<StreamHandle>)> {
        let frame = lock(&self.held).take()?;
        Some((frame, *lock(&self.stream)))
    }
}

/// One frame from a :class:`Consumer`.
///
/// ``frame.numpy()`` copies it into a new NumPy array (every device). On CUDA it is also a
/// DLPack producer and has ``__cuda_array_interface__``: ``torch.from_dlpack(frame)`` and
/// ``cupy.from_dlpack(frame)`` alias the frame's GPU memory without a copy, and the consumer's
/// stream waits on the GPU for the producer's write. Such tensors alias the frame until it
/// is released: clone what you keep.
#[pyclass(module = "geyser._native")]
pub struct Frame {
    shared: Arc<Shared>,
    state: Arc<FrameState>,
    times: FrameTimes,
    /// Memory the CUDA Array Interface's pointers point into, kept while this object lives.
    keep: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

impl Frame {
    pub fn new(shared: Arc<Shared>, state: Arc<FrameState>, times: FrameTimes) -> Self {
        Self {
            shared,
            state,
            times,
            keep: Mutex::new(Vec::new()),
        }
    }

    fn ordinal(&self) -> Option<usize> {
        match self.shared.layout.device {
            Device::Cuda(n) => Some(n),
            Device::Cpu => None,
        }
    }

    /// A host copy of the frame's bytes.
    fn host_bytes(&self, py: Python<'_>) -> PyResult<HostBytes> {
        let (shared, state) = (self.shared.clone(), self.state.clone());
        let bytes = py
            .detach(|| {
                shared.with_backend(|b| {
                    let mut held = lock(&state.held);
                    b.read_host(&mut held)
                })
            })
            .py_err(py)?;
        Ok(HostBytes {
            bytes,
            element: self.shared.layout.element,
            shape: self.shared.layout.shape.clone(),
        })
    }

    /// Makes `stream` wait for the frame; where its bytes are on the GPU.
    fn device_frame(
        &self,
        py: Python<'_>,
        stream: StreamHandle,
        fresh: bool,
    ) -> PyResult<DeviceFrame> {
        let (shared, state) = (self.shared.clone(), self.state.clone());
        let frame = py
            .detach(|| {
                shared.with_backend(|b| {
                    let mut held = lock(&state.held);
                    b.device_frame(&mut held, stream, fresh)
                })
            })
            .py_err(py)?;
        *lock(&self.state.stream) = Some(stream);
        Ok(frame)
    }

    /// What a DLPack or CUDA Array Interface export of `frame` describes.
    fn export_of(&self, frame: DeviceFrame, ordinal: usize) -> Export {
        let l = &self.shared.layout;
        let element_bytes = i64::from(l.element.bytes());
        let row_elements = l.shape[1] * l.shape.get(2).copied().unwrap_or(1);
        let (ptr, row_stride, owner): (u64, i64, Arc<dyn Any + Send + Sync>) = match frame {
            DeviceFrame::Linear(ptr, pitch, memory) => (ptr, pitch as i64 / element_bytes, memory),
            DeviceFrame::Copied(buffer) => (buffer.ptr(), row_elements, buffer),
        };
        Export {
            data: ptr as *mut u8,
            device: DLDevice {
                device_type: DEVICE_CUDA,
                device_id: ordinal as i32,
            },
            element: l.element,
            shape: l.shape.clone(),
            row_stride,
            read_only: false,
            owner,
        }
    }
}

/// Turns a DLPack/CAI stream argument into a stream: `None` (and 0) the legacy default
/// stream, `-1` none (Geyser waits on the host instead), else the handle.
fn stream_arg(py: Python<'_>, stream: Option<i64>) -> PyResult<Option<StreamHandle>> {
    match stream {
        None | Some(0) => Ok(Some(StreamHandle::LEGACY)),
        Some(-1) => Ok(None),
        Some(s) if s > 0 => Ok(Some(StreamHandle(s as usize))),
        Some(s) => Err(invalid(
            py,
            "stream",
            format!("{s}; use None, -1, 1, 2 or a CUDA stream handle"),
        )),
    }
}

#[pymethods]
impl Frame {
    /// The producer's frame number (0, 1, 2, … with gaps where frames were skipped).
    #[getter]
    fn number(&self) -> u64 {
        self.times.number
    }

    /// The ring slot holding it.
    #[getter]
    fn slot(&self) -> usize {
        self.times.slot
    }

    /// ``(height, width)`` or ``(height, width, channels)``.
    #[getter]
    fn shape(&self) -> Vec<i64> {
        self.shared.layout.shape.clone()
    }

    /// Element type (NumPy name).
    #[getter]
    fn dtype(&self) -> &'static str {
        dtype_name(self.shared.layout.element)
    }

    /// The texture format, e.g. ``"rgba8unorm"``.
    #[getter]
    fn format(&self) -> String {
        self.shared.layout.desc.format.name()
    }

    /// ``"cpu"`` or ``"cuda:N"``.
    #[getter]
    fn device(&self) -> String {
        self.shared.layout.device.name()
    }

    /// Seconds from the producer sending the frame message to this process receiving it.
    #[getter]
    fn latency(&self) -> f64 {
        self.times.latency.as_secs_f64()
    }

    /// Seconds from the producer presenting the frame to this process receiving it.
    #[getter]
    fn age(&self) -> f64 {
        self.times.age.as_secs_f64()
    }

    /// When the producer sent the frame message: ``CLOCK_MONOTONIC`` nanoseconds (the clock
    /// of ``time.monotonic_ns()``, shared by every process of the machine).
    #[getter]
    fn sent_ns(&self) -> u64 {
        self.received_ns()
            .saturating_sub(self.times.latency.as_nanos() as u64)
    }

    /// When this process received the frame message (``CLOCK_MONOTONIC`` nanoseconds).
    #[getter]
    fn received_ns(&self) -> u64 {
        self.times.present_ns + self.times.age.as_nanos() as u64
    }

    /// Whether it was released.
    #[getter]
    fn released(&self) -> bool {
        lock(&self.state.held).is_none()
    }

    /// A copy of the frame in a new NumPy array (waits for the producer's write).
    fn numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.host_bytes(py)?;
        HostFrame::into_numpy(py, bytes)
    }

    /// Releases the frame to the producer. On CUDA, once the work queued on ``stream`` (by
    /// default the stream of its last ``__dlpack__`` export, else the legacy default stream)
    /// has run: the producer's GPU waits for it, not the host.
    #[pyo3(signature = (stream=None))]
    fn release(&self, py: Python<'_>, stream: Option<i64>) -> PyResult<()> {
        let stream = match stream {
            Some(_) => stream_arg(py, stream)?,
            None => None,
        };
        let Some((frame, last)) = self.state.take() else {
            return Ok(());
        };
        let shared = self.shared.clone();
        py.detach(|| shared.release(frame, stream.or(last), true))
            .py_err(py)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.release(py, None)?;
        Ok(false)
    }

    fn __dlpack_device__(&self) -> (i32, i32) {
        match self.ordinal() {
            Some(n) => (DEVICE_CUDA, n as i32),
            None => (DEVICE_CPU, 0),
        }
    }

    /// DLPack export. CUDA: zero-copy (linear layout; texture layout copies once into linear
    /// memory), after making ``stream`` wait for the producer's write. CPU: a host copy.
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<i64>,
        max_version: Option<(u32, u32)>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let ours = self.__dlpack_device__();
        let to_host = match dl_device {
            None => ours.0 == DEVICE_CPU,
            Some(d) if d == ours => ours.0 == DEVICE_CPU,
            Some((DEVICE_CPU, 0)) if copy != Some(false) => true,
            Some(d) => {
                return Err(PyBufferError::new_err(format!(
                "this frame is on device {ours:?} and cannot be exported to {d:?} without a copy"
            )))
            }
        };
        if to_host {
            let data = Arc::new(self.host_bytes(py)?);
            let row_stride = data.shape.get(1..).map_or(1, |s| s.iter().product());
            return dlpack::export(
                py,
                Export {
                    data: data.bytes.as_ptr().cast_mut(),
                    device: DLDevice {
                        device_type: DEVICE_CPU,
                        device_id: 0,
                    },
                    element: data.element,
                    shape: data.shape.clone(),
                    row_stride,
                    read_only: false,
                    owner: data,
                },
                max_version,
            );
        }
        let ordinal = self.ordinal().unwrap_or(0);
        let frame = match stream_arg(py, stream)? {
            Some(s) => self.device_frame(py, s, copy == Some(true))?,
            None => {
                // No synchronization wanted: make the frame ready on the legacy default
                // stream and wait for it here.
                let f = self.device_frame(py, StreamHandle::LEGACY, copy == Some(true))?;
                let shared = self.shared.clone();
                py.detach(|| shared.with_backend(|b| b.synchronize(StreamHandle::LEGACY)))
                    .py_err(py)?;
                f
            }
        };
        dlpack::export(py, self.export_of(frame, ordinal), max_version)
    }

    /// CUDA Array Interface (version 3), CUDA frames only: the legacy default stream waits
    /// for the producer's write (``stream`` is 1). The pointer stays valid while this frame
    /// object lives; its contents until it is released.
    #[getter]
    fn __cuda_array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let Some(ordinal) = self.ordinal() else {
            return Err(PyAttributeError::new_err(
                "__cuda_array_interface__: this frame is in host memory (Consumer(device=\"cpu\"))",
            ));
        };
        let frame = self.device_frame(py, StreamHandle::LEGACY, false)?;
        let e = self.export_of(frame, ordinal);
        let element_bytes = i64::from(e.element.bytes());
        let row_bytes = e.row_stride * element_bytes;
        let channels = e.shape.get(2).copied().unwrap_or(1);
        let d = PyDict::new(py);
        d.set_item("shape", pyo3::types::PyTuple::new(py, &e.shape)?)?;
        d.set_item("typestr", typestr(e.element))?;
        d.set_item("data", (e.data as usize, false))?;
        d.set_item("version", 3)?;
        let tight = e.shape[1] * channels * element_bytes;
        if row_bytes == tight {
            d.set_item("strides", py.None())?;
        } else if e.shape.len() == 3 {
            d.set_item(
                "strides",
                (row_bytes, channels * element_bytes, element_bytes),
            )?;
        } else {
            d.set_item("strides", (row_bytes, element_bytes))?;
        }
        d.set_item("stream", 1)?;
        lock(&self.keep).push(e.owner);
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "geyser.Frame(number={}, slot={}, shape={:?}, dtype={:?}, device={:?}{})",
            self.times.number,
            self.times.slot,
            self.shared.layout.shape,
            self.dtype(),
            self.device(),
            if self.released() { ", released" } else { "" }
        )
    }
}

impl Drop for Frame {
    /// Garbage collection releases a frame nobody released.
    fn drop(&mut self) {
        if let Some((frame, stream)) = self.state.take() {
            if let Err(e) = self.shared.release(frame, stream, false) {
                tracing::debug!("releasing a collected frame: {e}");
            }
        }
    }
}
