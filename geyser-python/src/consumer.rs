//! `geyser.Consumer`: connects to a producer's endpoint and yields [`Frame`]s. It holds one
//! frame at a time: asking for the next releases the previous one (a consumer that held on
//! would stall a producer that waits for releases).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use geyser::common::{ElementType, TextureDescriptor};
use geyser::cuda::StreamHandle;
use geyser::ipc::{ConsumerOptions, DetachedFrame, FrameLayout};
use geyser::Error;
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

use crate::backend::Backend;
use crate::convert::{dtype_name, frame_shape, parse_device, Device};
use crate::errors::{invalid, to_py, IntoPy};
use crate::frame::{Frame, FrameState};
use crate::sync_mode;

/// What a consumer's frames are and where they go.
pub struct Layout {
    pub name: String,
    pub desc: TextureDescriptor,
    pub element: ElementType,
    pub shape: Vec<i64>,
    pub device: Device,
    pub layout: FrameLayout,
}

/// A consumer shared by its Python object and its frames.
pub struct Shared {
    /// `None` once closed.
    pub backend: Mutex<Option<Backend>>,
    /// Frames garbage-collected while another thread held `backend`: released by the next
    /// operation.
    pub pending: Mutex<Vec<(DetachedFrame, Option<StreamHandle>)>>,
    /// The frame handed out last (released when the next one is asked for).
    pub current: Mutex<Option<Arc<FrameState>>>,
    pub layout: Layout,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn closed() -> Error {
    Error::InvalidArgument {
        what: "consumer",
        reason: "it is closed".into(),
    }
}

impl Shared {
    /// Runs `f` on the open backend, after releasing frames collected meanwhile.
    pub fn with_backend<T>(
        &self,
        f: impl FnOnce(&mut Backend) -> geyser::Result<T>,
    ) -> geyser::Result<T> {
        let mut guard = lock(&self.backend);
        let backend = guard.as_mut().ok_or_else(closed)?;
        for (frame, stream) in std::mem::take(&mut *lock(&self.pending)) {
            if let Err(e) = backend.release(frame, stream) {
                tracing::debug!("releasing a collected frame: {e}");
            }
        }
        f(backend)
    }

    /// Releases a frame: at once when `wait` (reporting errors), or, when the consumer is
    /// busy on another thread (a garbage-collected frame), by its next operation.
    pub fn release(
        &self,
        frame: DetachedFrame,
        stream: Option<StreamHandle>,
        wait: bool,
    ) -> geyser::Result<()> {
        let guard = if wait {
            Some(lock(&self.backend))
        } else {
            match self.backend.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        };
        match guard {
            Some(mut g) => match g.as_mut() {
                Some(backend) => backend.release(frame, stream),
                // Closed: the connection is gone, nothing to tell.
                None => Ok(()),
            },
            None => {
                lock(&self.pending).push((frame, stream));
                Ok(())
            }
        }
    }
}

/// Receives frames from a producer in another process.
///
/// ``Consumer(name, device="cpu", layout=None, lossless=False, sync=None, host_ring=False)``
/// connects to the producer's endpoint ``name``. ``device="cpu"`` reads frames into host
/// memory (``frame.numpy()``); ``device="cuda"``/``"cuda:N"`` imports them into CUDA and
/// exports them zero-copy (``torch.from_dlpack(frame)``, ``cupy.from_dlpack(frame)``).
/// ``layout`` is ``"linear"`` (the producer also copies each frame into a shared buffer
/// on its GPU: what zero-copy tensors need; the default on CUDA) or ``"texture"`` (the
/// producer's textures; CUDA frames are then copied once into linear memory when exported;
/// the default on the CPU).
///
/// Iterating yields frames until the producer ends the stream; each frame is released when
/// the next is requested, at the end of its ``with`` block, by ``frame.release()``, or when
/// it is garbage-collected.
#[pyclass(module = "geyser._native")]
pub struct Consumer {
    shared: Arc<Shared>,
}

#[pymethods]
impl Consumer {
    #[new]
    #[pyo3(signature = (name, device=None, layout=None, lossless=false, sync=None, host_ring=false, timeout=5.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: &str,
        device: Option<&Bound<'_, PyAny>>,
        layout: Option<&str>,
        lossless: bool,
        sync: Option<&str>,
        host_ring: bool,
        timeout: f64,
    ) -> PyResult<Self> {
        let device = parse_device(py, device)?;
        let layout = match layout {
            Some(l) => l.parse::<FrameLayout>().py_err(py)?,
            None if matches!(device, Device::Cuda(_)) => FrameLayout::Linear,
            None => FrameLayout::Texture,
        };
        if !timeout.is_finite() || timeout <= 0.0 {
            return Err(invalid(
                py,
                "timeout",
                format!("{timeout}; use a positive number of seconds"),
            ));
        }
        let options = ConsumerOptions {
            handshake_timeout: Duration::from_secs_f64(timeout),
            lossless,
            host_ring,
            layout,
            sync: sync_mode(py, sync)?,
            name: format!("python-{}", std::process::id()),
            ..Default::default()
        };
        let name_owned = name.to_string();
        let backend = py
            .detach(|| match device {
                Device::Cpu => Backend::host(&name_owned, options),
                Device::Cuda(n) => Backend::cuda(&name_owned, n, options),
            })
            .py_err(py)?;
        let desc = backend.consumer().descriptor().clone();
        let element = desc
            .format
            .texel_elements()
            .map(|t| t.element)
            .ok_or_else(|| {
                to_py(
                    py,
                    Error::unsupported(
                        format!("{} frames in Python", desc.format),
                        "depth and stencil frames have no array form",
                    ),
                )
            })?;
        Ok(Consumer {
            shared: Arc::new(Shared {
                backend: Mutex::new(Some(backend)),
                pending: Mutex::new(Vec::new()),
                current: Mutex::new(None),
                layout: Layout {
                    name: name.to_string(),
                    shape: frame_shape(&desc),
                    desc,
                    element,
                    device,
                    layout,
                },
            }),
        })
    }

    /// Waits for the next frame (at most ``timeout`` seconds; forever with ``None``) and
    /// returns it, releasing the previous one. Raises ``PeerGoneError`` when the producer
    /// ends the stream or dies, ``TimeoutError`` when no frame comes in time.
    #[pyo3(signature = (timeout=None))]
    fn next_frame(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Frame> {
        let timeout = match timeout {
            Some(t) if !t.is_finite() || t < 0.0 => {
                return Err(invalid(
                    py,
                    "timeout",
                    format!("{t}; use seconds ≥ 0 or None"),
                ))
            }
            t => t.map(Duration::from_secs_f64),
        };
        let shared = self.shared.clone();
        let (frame, times) = py
            .detach(|| {
                let previous = lock(&shared.current).take();
                shared.with_backend(|backend| {
                    if let Some(prev) = previous {
                        if let Some((frame, stream)) = prev.take() {
                            backend.release(frame, stream)?;
                        }
                    }
                    backend.next_frame(timeout)
                })
            })
            .py_err(py)?;
        let state = Arc::new(FrameState::new(frame));
        *lock(&self.shared.current) = Some(state.clone());
        Ok(Frame::new(self.shared.clone(), state, times))
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Frame> {
        match self.next_frame(py, None) {
            Ok(f) => Ok(f),
            Err(e) if self.ended() => {
                let _ = e;
                Err(PyStopIteration::new_err(()))
            }
            Err(e) => Err(e),
        }
    }

    /// Disconnects (releasing the held frame). Tensors exported from frames stay valid
    /// memory, no longer updated.
    fn close(&self, py: Python<'_>) {
        let shared = self.shared.clone();
        py.detach(|| {
            let current = lock(&shared.current).take();
            let mut backend = lock(&shared.backend);
            if let (Some(b), Some(frame)) = (backend.as_mut(), current) {
                if let Some((f, stream)) = frame.take() {
                    let _ = b.release(f, stream);
                }
            }
            *backend = None;
        });
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    /// The endpoint name.
    #[getter]
    fn name(&self) -> String {
        self.shared.layout.name.clone()
    }

    /// Frame shape: ``(height, width)`` or ``(height, width, channels)``.
    #[getter]
    fn shape(&self) -> Vec<i64> {
        self.shared.layout.shape.clone()
    }

    /// Element type (NumPy name).
    #[getter]
    fn dtype(&self) -> &'static str {
        dtype_name(self.shared.layout.element)
    }

    /// The frames' texture format (e.g. ``"rgba8unorm"``).
    #[getter]
    fn format(&self) -> String {
        self.shared.layout.desc.format.name()
    }

    /// ``"cpu"`` or ``"cuda:N"``.
    #[getter]
    fn device(&self) -> String {
        self.shared.layout.device.name()
    }

    /// ``"linear"`` or ``"texture"``.
    #[getter]
    fn layout(&self) -> &'static str {
        match self.shared.layout.layout {
            FrameLayout::Texture => "texture",
            FrameLayout::Linear => "linear",
        }
    }

    /// The synchronization negotiated with the producer: ``"timeline"`` (GPU waits) or
    /// ``"host"``.
    #[getter]
    fn sync(&self, py: Python<'_>) -> PyResult<String> {
        self.shared
            .with_backend(|b| Ok(format!("{:?}", b.consumer().sync_mode()).to_lowercase()))
            .py_err(py)
    }

    /// How frames reach this process: ``"Direct"``, ``"HostMemory"`` or ``"CpuCopy"``.
    #[getter]
    fn transfer_path(&self, py: Python<'_>) -> PyResult<String> {
        self.shared
            .with_backend(|b| Ok(format!("{:?}", b.consumer().transfer_path())))
            .py_err(py)
    }

    /// Counters: ``frames`` handed out, ``skipped`` (never seen), ``superseded`` (released
    /// unseen because a newer one was queued).
    #[getter]
    fn counters(&self, py: Python<'_>) -> PyResult<std::collections::HashMap<&'static str, u64>> {
        let c = self
            .shared
            .with_backend(|b| Ok(b.consumer().counters()))
            .py_err(py)?;
        Ok([
            ("frames", c.frames),
            ("skipped", c.skipped),
            ("superseded", c.superseded),
        ]
        .into_iter()
        .collect())
    }

    fn __repr__(&self) -> String {
        let l = &self.shared.layout;
        format!(
            "geyser.Consumer({:?}, device={:?}, layout={:?}, shape={:?}, dtype={:?})",
            l.name,
            l.device.name(),
            self.layout(),
            l.shape,
            dtype_name(l.element)
        )
    }
}

impl Consumer {
    /// Whether the producer ended the stream (rather than dying).
    fn ended(&self) -> bool {
        let backend = lock(&self.shared.backend);
        backend.as_ref().is_none_or(|b| b.consumer().stream_ended())
    }
}
