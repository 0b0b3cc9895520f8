//! `geyser.Producer`: publishes arrays (NumPy, or anything with `__dlpack__`: PyTorch, CuPy)
//! as frames on an endpoint any Geyser consumer reads (Vulkan, wgpu, CUDA, Python). On the
//! CPU a frame is uploaded through a staging buffer; on CUDA an array on the GPU is copied
//! into the slot by CUDA on the GPU, and in timeline mode consumers' GPUs wait for that copy.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use geyser::common::{ElementType, TextureDescriptor, TextureFormat, TextureUsage};
use geyser::cuda::{copy_2d, synchronize, CudaDevice, CudaProducer, CudaStream, Region2D};
use geyser::ipc::{Producer as IpcProducer, ProducerOptions};
use geyser::vulkan::ash::vk;
use geyser::vulkan::{
    record_copy, Buffer, ContextOptions, CopyDirection, Submitter, VulkanTextureShareManager,
};
use geyser::{Error, Result};
use pyo3::prelude::*;
use pyo3::types::IntoPyDict;

use crate::convert::{dtype_name, format_for, frame_shape, parse_device, parse_dtype, Device};
use crate::dlpack::{Imported, DEVICE_CPU, DEVICE_CUDA};
use crate::errors::{invalid, IntoPy};
use crate::sync_mode;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Usages of published frames: written by copy, readable by copy and sampling, renderable.
const USAGES: [TextureUsage; 4] = [
    TextureUsage::CopyDst,
    TextureUsage::CopySrc,
    TextureUsage::TextureBinding,
    TextureUsage::RenderAttachment,
];

enum Backend {
    Host {
        producer: IpcProducer,
        staging: Buffer,
        submit: Submitter,
    },
    Cuda {
        producer: CudaProducer,
        stream: CudaStream,
    },
}

/// Where a published array's rows are.
#[derive(Clone, Copy)]
struct Source {
    /// Address of the first element (device or host).
    ptr: usize,
    on_device: bool,
    /// Bytes from one row to the next.
    pitch: usize,
}

/// Publishes arrays as frames to consumers in other processes.
///
/// ``Producer(name, shape, dtype="uint8", format=None, device="cpu", slots=3,
/// lossless=False, sync=None)`` binds endpoint ``name`` for frames of ``shape``
/// (``(height, width)`` or ``(height, width, channels)``, channels 1, 2 or 4) and ``dtype``;
/// ``format`` names the texture format instead (e.g. ``"bgra8unorm"``). ``publish(array)``
/// sends one frame.
#[pyclass(module = "geyser._native")]
pub struct Producer {
    backend: Mutex<Option<Backend>>,
    name: String,
    desc: TextureDescriptor,
    element: ElementType,
    shape: Vec<i64>,
    device: Device,
}

#[pymethods]
impl Producer {
    #[new]
    #[pyo3(signature = (name, shape, dtype=None, format=None, device=None, slots=3, lossless=false, sync=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: &str,
        shape: Vec<i64>,
        dtype: Option<&Bound<'_, PyAny>>,
        format: Option<&str>,
        device: Option<&Bound<'_, PyAny>>,
        slots: usize,
        lossless: bool,
        sync: Option<&str>,
    ) -> PyResult<Self> {
        let device = parse_device(py, device)?;
        let (h, w, c) = match shape.as_slice() {
            [h, w] => (*h, *w, 1),
            [h, w, c] => (*h, *w, *c),
            _ => {
                return Err(invalid(
                    py,
                    "shape",
                    format!("{shape:?}; use (height, width) or (height, width, channels)"),
                ))
            }
        };
        let dims = |v: i64, what| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| invalid(py, "shape", format!("{what} {v} is not a positive size")))
        };
        let (h, w) = (dims(h, "height")?, dims(w, "width")?);
        let channels = u8::try_from(c)
            .ok()
            .filter(|c| matches!(c, 1 | 2 | 4))
            .ok_or_else(|| invalid(py, "shape", format!("{c} channels; frames have 1, 2 or 4")))?;
        let format = match (format, dtype) {
            (Some(f), _) => {
                let f: TextureFormat = f.parse().py_err(py)?;
                let t = f.texel_elements().ok_or_else(|| {
                    invalid(
                        py,
                        "format",
                        format!("{f} has no array form (depth/stencil)"),
                    )
                })?;
                if t.count != channels {
                    return Err(invalid(
                        py,
                        "shape",
                        format!("{f} has {} channels, the shape {channels}", t.count),
                    ));
                }
                if let Some(d) = dtype {
                    if parse_dtype(py, d)? != t.element {
                        return Err(invalid(
                            py,
                            "dtype",
                            format!("{f} holds {}", dtype_name(t.element)),
                        ));
                    }
                }
                f
            }
            (None, dtype) => {
                let element = match dtype {
                    Some(d) => parse_dtype(py, d)?,
                    None => ElementType::U8,
                };
                format_for(element, channels).ok_or_else(|| {
                    invalid(
                        py,
                        "dtype",
                        format!(
                            "no texture format holds {channels} × {}",
                            dtype_name(element)
                        ),
                    )
                })?
            }
        };
        let element = format
            .texel_elements()
            .map(|t| t.element)
            .unwrap_or(ElementType::U8);
        let desc = TextureDescriptor::new(w, h, format, &USAGES).with_label(name);
        let options = ProducerOptions {
            slots,
            lossless,
            sync: sync_mode(py, sync)?,
            ..Default::default()
        };
        let name_owned = name.to_string();
        let d = desc.clone();
        let backend = py
            .detach(move || -> Result<Backend> {
                match device {
                    Device::Cpu => {
                        let manager = Arc::new(VulkanTextureShareManager::create(
                            &ContextOptions::from_env(),
                        )?);
                        let producer =
                            IpcProducer::bind(&name_owned, manager.clone(), &d, options)?;
                        Ok(Backend::Host {
                            staging: Buffer::host(
                                &manager,
                                d.tight_size(),
                                vk::BufferUsageFlags::TRANSFER_SRC,
                            )?,
                            submit: Submitter::new(&manager, 1)?,
                            producer,
                        })
                    }
                    Device::Cuda(n) => {
                        let cuda = CudaDevice::new(n)?;
                        Ok(Backend::Cuda {
                            stream: CudaStream::new(&cuda)?,
                            producer: CudaProducer::bind(&name_owned, &cuda, &d, options)?,
                        })
                    }
                }
            })
            .py_err(py)?;
        Ok(Producer {
            backend: Mutex::new(Some(backend)),
            name: name.to_string(),
            shape: frame_shape(&desc),
            desc,
            element,
            device,
        })
    }

    /// Publishes ``array`` (NumPy, or any array with ``__dlpack__``: PyTorch, CuPy) as the
    /// next frame and returns its number. Its shape and dtype must be the producer's; rows
    /// may be padded but texels must be contiguous. A CUDA array needs
    /// ``Producer(device="cuda")`` on its device; host arrays work on either. Waits at most
    /// ``timeout`` seconds for a free slot (forever with ``None``).
    #[pyo3(signature = (array, timeout=None))]
    fn publish(
        &self,
        py: Python<'_>,
        array: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let timeout = timeout.map(|t| {
            if t.is_finite() && t >= 0.0 {
                Ok(Duration::from_secs_f64(t))
            } else {
                Err(invalid(
                    py,
                    "timeout",
                    format!("{t}; use seconds ≥ 0 or None"),
                ))
            }
        });
        let timeout = timeout.transpose()?;
        let (dev_type, dev_id): (i32, i32) = array
            .call_method0("__dlpack_device__")
            .and_then(|d| d.extract())
            .map_err(|_| {
                invalid(
                    py,
                    "array",
                    format!(
                        "{} has no __dlpack__; publish NumPy, PyTorch or CuPy arrays",
                        array
                            .get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ),
                )
            })?;
        let on_device = match (dev_type, self.device) {
            (DEVICE_CPU, _) => false,
            (DEVICE_CUDA, Device::Cuda(n)) if dev_id as usize == n => true,
            (DEVICE_CUDA, _) => {
                return Err(invalid(
                    py,
                    "array",
                    format!(
                        "it is on cuda:{dev_id}; this producer runs on {} (Producer(device=\"cuda:{dev_id}\") publishes it without a host copy)",
                        self.device.name()
                    ),
                ))
            }
            (t, _) => {
                return Err(invalid(
                    py,
                    "array",
                    format!("DLPack device type {t} is neither the CPU nor CUDA"),
                ))
            }
        };
        let mut backend = lock(&self.backend);
        let backend_ref = backend
            .as_mut()
            .ok_or_else(|| invalid(py, "producer", "it is closed"))?;
        let capsule = match (on_device, &*backend_ref) {
            (true, Backend::Cuda { stream, .. }) => {
                // The array's producer makes our stream wait for its pending writes.
                array.call_method(
                    "__dlpack__",
                    (),
                    Some(&[("stream", stream.handle().0)].into_py_dict(py)?),
                )?
            }
            _ => array.call_method0("__dlpack__")?,
        };
        let imported = Imported::take(&capsule)?;
        let source = self.check(py, &imported)?;
        drop(capsule);
        py.detach(|| publish(backend_ref, &self.desc, source, timeout))
            .py_err(py)
        // `imported` drops here: the array's deleter runs once the copy is done.
    }

    /// Waits until at least ``n`` consumers are connected (``TimeoutError`` after
    /// ``timeout`` seconds).
    #[pyo3(signature = (n=1, timeout=30.0))]
    fn wait_for_consumers(&self, py: Python<'_>, n: usize, timeout: f64) -> PyResult<()> {
        if !timeout.is_finite() || timeout < 0.0 {
            return Err(invalid(
                py,
                "timeout",
                format!("{timeout}; use seconds ≥ 0"),
            ));
        }
        let backend = lock(&self.backend);
        let b = backend
            .as_ref()
            .ok_or_else(|| invalid(py, "producer", "it is closed"))?;
        let p = ipc_producer(b);
        py.detach(|| p.wait_for_consumers(n, Duration::from_secs_f64(timeout)))
            .py_err(py)
    }

    /// Consumers connected now.
    #[getter]
    fn consumer_count(&self) -> usize {
        lock(&self.backend)
            .as_ref()
            .map_or(0, |b| ipc_producer(b).consumer_count())
    }

    /// Frames published so far.
    #[getter]
    fn frames(&self) -> u64 {
        lock(&self.backend)
            .as_ref()
            .map_or(0, |b| ipc_producer(b).stats().presented)
    }

    /// The synchronization offered: ``"timeline"`` or ``"host"``.
    #[getter]
    fn sync(&self, py: Python<'_>) -> PyResult<String> {
        let backend = lock(&self.backend);
        let b = backend
            .as_ref()
            .ok_or_else(|| invalid(py, "producer", "it is closed"))?;
        Ok(format!("{:?}", ipc_producer(b).sync_mode()).to_lowercase())
    }

    /// The endpoint name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Frame shape.
    #[getter]
    fn shape(&self) -> Vec<i64> {
        self.shape.clone()
    }

    /// Element type (NumPy name).
    #[getter]
    fn dtype(&self) -> &'static str {
        dtype_name(self.element)
    }

    /// Texture format of the frames.
    #[getter]
    fn format(&self) -> String {
        self.desc.format.name()
    }

    /// ``"cpu"`` or ``"cuda:N"``.
    #[getter]
    fn device(&self) -> String {
        self.device.name()
    }

    /// Ends the stream (consumers get a clean end) and frees the endpoint.
    fn close(&self, py: Python<'_>) {
        let taken = lock(&self.backend).take();
        py.detach(move || drop(taken));
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "geyser.Producer({:?}, shape={:?}, dtype={:?}, format={:?}, device={:?})",
            self.name,
            self.shape,
            dtype_name(self.element),
            self.desc.format.name(),
            self.device.name()
        )
    }
}

fn ipc_producer(b: &Backend) -> &IpcProducer {
    match b {
        Backend::Host { producer, .. } => producer,
        Backend::Cuda { producer, .. } => producer.producer(),
    }
}

impl Producer {
    /// Checks an imported array against the frames; where its rows are.
    fn check(&self, py: Python<'_>, imported: &Imported) -> PyResult<Source> {
        let t = imported.tensor();
        let want = &self.shape;
        let shape_ok = t.shape == *want
            || (want.len() == 2
                && t.shape.len() == 3
                && t.shape[..2] == want[..]
                && t.shape[2] == 1);
        if !shape_ok {
            return Err(invalid(
                py,
                "array",
                format!("shape {:?}; this producer publishes {want:?}", t.shape),
            ));
        }
        if t.element != self.element {
            return Err(invalid(
                py,
                "array",
                format!(
                    "dtype {}; this producer publishes {}",
                    dtype_name(t.element),
                    dtype_name(self.element)
                ),
            ));
        }
        let channels = want.get(2).copied().unwrap_or(1);
        let texel_ok = match t.strides.len() {
            2 => t.strides[1] == 1,
            _ => t.strides[1] == channels && t.strides[2] == 1,
        };
        let row = i64::from(self.desc.width) * channels;
        if !texel_ok || t.strides[0] < row {
            return Err(invalid(
                py,
                "array",
                format!(
                    "strides {:?} (elements): texels must be contiguous and rows must not overlap; use numpy.ascontiguousarray() or .contiguous()",
                    t.strides
                ),
            ));
        }
        Ok(Source {
            ptr: t.data as usize,
            on_device: t.device.device_type == DEVICE_CUDA,
            pitch: (t.strides[0] * i64::from(self.element.bytes())) as usize,
        })
    }
}

/// Writes `src` into the next slot and presents it.
fn publish(
    backend: &mut Backend,
    desc: &TextureDescriptor,
    src: Source,
    timeout: Option<Duration>,
) -> Result<u64> {
    let row = desc.width as usize * desc.format.block_bytes() as usize;
    let height = desc.height as usize;
    match backend {
        Backend::Host {
            producer,
            staging,
            submit,
        } => {
            if src.on_device {
                return Err(Error::Internal(
                    "a device array reached the host producer".into(),
                ));
            }
            let slot = producer.acquire(timeout)?;
            let bytes = staging.bytes_mut();
            for y in 0..height {
                // SAFETY: the array holds `height` rows of at least `row` bytes, `pitch` apart
                // (checked against its DLPack shape and strides), and lives until this returns.
                let from = unsafe {
                    std::slice::from_raw_parts((src.ptr + y * src.pitch) as *const u8, row)
                };
                bytes[y * row..(y + 1) * row].copy_from_slice(from);
            }
            let family = submit.queue_family();
            let region = vk::BufferImageCopy::default()
                .image_subresource(vk::ImageSubresourceLayers {
                    aspect_mask: vk::ImageAspectFlags::COLOR,
                    mip_level: 0,
                    base_array_layer: 0,
                    layer_count: 1,
                })
                .image_extent(slot.texture.vk_extent());
            let signals: Vec<_> = slot.signal.iter().cloned().collect();
            let texture = slot.texture.clone();
            let written = submit.submit(
                // SAFETY: recording on the submitter's command buffer of the slot's device;
                // the region is the whole of mip 0, which the staging buffer holds tightly
                // packed; the call blocks until the copy is done.
                |device, cmd| unsafe {
                    record_copy(
                        device,
                        cmd,
                        family,
                        &texture,
                        &[region],
                        staging,
                        CopyDirection::Upload,
                    )
                },
                &slot.waits,
                &signals,
                true,
            );
            if let Err(e) = written {
                producer.abandon(slot);
                return Err(e);
            }
            texture.mark_initialized();
            producer.present(slot)
        }
        Backend::Cuda { producer, stream } => {
            let slot = producer.acquire(timeout)?;
            let from = if src.on_device {
                Region2D::Device(src.ptr as u64, src.pitch)
            } else {
                Region2D::Host(src.ptr as *mut u8, src.pitch)
            };
            // SAFETY: the source holds `height` rows of `row` bytes at `pitch` and lives
            // until this returns (the stream is synchronized below); the slot's array is the
            // frame's size; our own stream.
            unsafe {
                copy_2d(
                    producer.device(),
                    from,
                    slot.array().region(),
                    row,
                    height,
                    stream.handle(),
                )?
            };
            // SAFETY: our own stream, which queued the slot's write.
            let frame = unsafe { slot.present(stream.handle())? };
            // The source may be freed once this returns: wait for the copy.
            synchronize(producer.device(), stream.handle())?;
            Ok(frame)
        }
    }
}
