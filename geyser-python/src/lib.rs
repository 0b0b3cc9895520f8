//! The `geyser` Python module (`geyser._native`; the `geyser` package re-exports it):
//! frames from other processes as NumPy arrays anywhere and as zero-copy PyTorch/CuPy tensors
//! on CUDA, and arrays published as frames.
//!
//! Files: `errors.rs` (geyser::Error as exceptions), `convert.rs` (devices, dtypes, formats),
//! `dlpack.rs` (DLPack both ways), `host.rs` (host copies as NumPy arrays), `backend.rs` (the
//! Vulkan or CUDA consumer behind a Python consumer), `consumer.rs`, `frame.rs`,
//! `producer.rs` (the classes).

use pyo3::prelude::*;

mod backend;
mod consumer;
mod convert;
mod dlpack;
mod errors;
mod frame;
mod host;
mod producer;

use errors::IntoPy;

/// Parses a sync mode argument: `None`/`"auto"`, `"timeline"`, `"host"`.
pub(crate) fn sync_mode(
    py: Python<'_>,
    s: Option<&str>,
) -> PyResult<Option<geyser::ipc::SyncMode>> {
    use geyser::ipc::SyncMode;
    match s.map(|s| s.to_ascii_lowercase()) {
        None => Ok(None),
        Some(s) if s == "auto" => Ok(None),
        Some(s) if s == "timeline" => Ok(Some(SyncMode::Timeline)),
        Some(s) if s == "host" => Ok(Some(SyncMode::Host)),
        Some(s) => Err(errors::invalid(
            py,
            "sync",
            format!("`{s}`; use \"auto\", \"timeline\" or \"host\""),
        )),
    }
}

/// The CUDA devices of this machine: a list of ``{"ordinal", "name", "uuid"}`` dicts.
/// Raises ``UnsupportedError`` where there is no CUDA driver.
#[pyfunction]
fn cuda_devices(
    py: Python<'_>,
) -> PyResult<Vec<std::collections::HashMap<&'static str, Py<PyAny>>>> {
    let devices = py.detach(geyser::cuda::devices).py_err(py)?;
    devices
        .into_iter()
        .map(|d| {
            Ok([
                ("ordinal", d.ordinal.into_pyobject(py)?.into_any().unbind()),
                ("name", d.name.into_pyobject(py)?.into_any().unbind()),
                (
                    "uuid",
                    geyser::common::uuid_string(&d.uuid)
                        .into_pyobject(py)?
                        .into_any()
                        .unbind(),
                ),
            ]
            .into_iter()
            .collect())
        })
        .collect()
}

/// Validation-layer errors reported to Geyser's Vulkan instances in this process so far (with
/// ``GEYSER_VALIDATION=1``): their count and first messages. Geyser's tests assert none.
#[pyfunction]
fn _validation_errors() -> (usize, Vec<String>) {
    use geyser::vulkan::diagnostics::{validation_error_count, validation_messages};
    (validation_error_count(), validation_messages())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<consumer::Consumer>()?;
    m.add_class::<frame::Frame>()?;
    m.add_class::<producer::Producer>()?;
    m.add_class::<host::HostFrame>()?;
    m.add_function(wrap_pyfunction!(cuda_devices, m)?)?;
    m.add_function(wrap_pyfunction!(_validation_errors, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
