//! `geyser::Error` as Python exceptions: each variant raises its own class from
//! `geyser._errors` (defined in Python, so classes can also derive from the matching built-in
//! exception: `TimeoutError`, `ValueError`, `ConnectionError`…), with the variant's name in
//! `kind` and, for refusals, `reason` and `retryable`.

use geyser::Error;
use pyo3::prelude::*;

/// The exception class name of a variant.
fn class_of(e: &Error) -> (&'static str, &'static str) {
    match e {
        Error::Unsupported { .. } => ("UnsupportedError", "Unsupported"),
        Error::InvalidDescriptor { .. } => ("InvalidDescriptorError", "InvalidDescriptor"),
        Error::InvalidArgument { .. } => ("InvalidArgumentError", "InvalidArgument"),
        Error::DescriptorMismatch { .. } => ("DescriptorMismatchError", "DescriptorMismatch"),
        Error::DeviceMismatch { .. } => ("DeviceMismatchError", "DeviceMismatch"),
        Error::UnknownHandle { .. } => ("UnknownHandleError", "UnknownHandle"),
        Error::WrongTexture(_) => ("WrongTextureError", "WrongTexture"),
        Error::NoDevice { .. } => ("NoDeviceError", "NoDevice"),
        Error::Loader(_) => ("LoaderError", "Loader"),
        Error::Vulkan { .. } => ("VulkanError", "Vulkan"),
        Error::Cuda { .. } => ("CudaError", "Cuda"),
        Error::PeerGone(_) => ("PeerGoneError", "PeerGone"),
        Error::Protocol(_) => ("ProtocolError", "Protocol"),
        Error::VersionMismatch { .. } => ("VersionMismatchError", "VersionMismatch"),
        Error::NotFound { .. } => ("NotFoundError", "NotFound"),
        Error::AddressInUse { .. } => ("AddressInUseError", "AddressInUse"),
        Error::PermissionDenied(_) => ("PermissionDeniedError", "PermissionDenied"),
        Error::Rejected { .. } => ("RejectedError", "Rejected"),
        Error::Internal(_) => ("InternalError", "Internal"),
        Error::Timeout(_) => ("TimeoutError", "Timeout"),
        Error::Io(_) => ("IoError", "Io"),
        _ => ("GeyserError", "Other"),
    }
}

/// The Python exception for `e`.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let (class, kind) = class_of(&e);
    let build = || -> PyResult<PyErr> {
        let module = py.import("geyser._errors")?;
        let exc = module.getattr(class)?.call1((e.to_string(),))?;
        exc.setattr("kind", kind)?;
        if let Error::Rejected { reason, detail } = &e {
            exc.setattr("reason", reason.to_string())?;
            exc.setattr("retryable", reason.is_retryable())?;
            exc.setattr("detail", detail.as_str())?;
        }
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|lookup| lookup)
}

/// Converts a `geyser::Result` (with the GIL held).
pub trait IntoPy<T> {
    /// `Ok` as is, `Err` as its Python exception.
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for geyser::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

/// An invalid argument, as `InvalidArgumentError` (a `ValueError`).
pub fn invalid(py: Python<'_>, what: &'static str, reason: impl Into<String>) -> PyErr {
    to_py(
        py,
        Error::InvalidArgument {
            what,
            reason: reason.into(),
        },
    )
}
