//! [`Error`]: one error type for the whole crate. Each variant says what went wrong and, where
//! there is one, what to do about it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why a producer refused a consumer (`Reject` on the wire, [`Error::Rejected`] at the
/// consumer): tells a consumer whether to retry ([`Self::is_retryable`]) or give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RejectReason {
    /// The producer serves as many consumers as it may, or is busy with handshakes: retry
    /// later.
    Busy,
    /// The producer's peer policy does not admit this process (another user, a uid not
    /// listed): fatal for this process.
    Policy,
    /// This consumer's device cannot import the producer's textures, and the producer cannot
    /// serve it through a host ring: fatal on this device.
    Device,
    /// The two ends share no synchronization mode (e.g. one was forced): fatal with these
    /// options.
    Sync,
    /// The consumer hit a limit of the producer (held a frame too long, too many connections
    /// of its user, too many messages): it may retry, later and behaving.
    Limit,
}

impl RejectReason {
    /// Whether trying again later may succeed ([`Self::Busy`], [`Self::Limit`]).
    pub fn is_retryable(self) -> bool {
        matches!(self, RejectReason::Busy | RejectReason::Limit)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RejectReason::Busy => "busy",
            RejectReason::Policy => "policy",
            RejectReason::Device => "device",
            RejectReason::Sync => "sync",
            RejectReason::Limit => "limit",
        })
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Geyser. Bad input and peer failures come back as one of
/// these, never as a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device, driver or platform lacks something the operation needs.
    #[error("unsupported: {feature}: {reason}")]
    Unsupported {
        /// What is missing (an extension, a handle type, a format/usage combination).
        feature: String,
        /// Why, and what to try instead.
        reason: String,
    },

    /// A descriptor failed validation before any GPU call.
    #[error("invalid texture descriptor{}: {reason}", label.as_ref().map(|l| format!(" `{l}`")).unwrap_or_default())]
    InvalidDescriptor {
        /// The descriptor's label, if any.
        label: Option<String>,
        /// What is wrong with it.
        reason: String,
    },

    /// An argument other than a descriptor is wrong.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A DMA-BUF's planes do not describe an image this format, modifier and device can
    /// take: a missing or extra plane, a stride shorter than a row, a plane past the end of
    /// its buffer, an offset or stride the device cannot bind.
    #[error("invalid DMA-BUF{}: {reason}", plane.map(|p| format!(" (plane {p})")).unwrap_or_default())]
    InvalidDmaBuf {
        /// The plane at fault, when one is.
        plane: Option<usize>,
        /// What is wrong, and what the device expects instead.
        reason: String,
    },

    /// The importer's descriptor differs from the one the texture was exported with.
    #[error("descriptor mismatch on import: {field} is {got} but the texture was exported with {expected}; import with the exporter's descriptor")]
    DescriptorMismatch {
        /// The first field that differs.
        field: &'static str,
        /// The exporter's value.
        expected: String,
        /// The importer's value.
        got: String,
    },

    /// The export comes from a device or driver this device cannot import from.
    #[error("device mismatch: {reason} (exported by device {exporter}, importing on {importer}); opaque handles only work on the same GPU and driver")]
    DeviceMismatch {
        /// Exporting device/driver UUIDs.
        exporter: String,
        /// Importing device/driver UUIDs.
        importer: String,
        /// Which UUID differs.
        reason: String,
    },

    /// An export handle this manager does not know (never issued, already released, or from
    /// another manager).
    #[error("unknown texture handle: {handle} {reason}")]
    UnknownHandle {
        /// The handle.
        handle: crate::common::ApiTextureHandle,
        /// Why it is unknown.
        reason: &'static str,
    },

    /// A texture from another backend or manager was passed in.
    #[error("wrong texture: {0}")]
    WrongTexture(String),

    /// No device matches the selection.
    #[error("no device matches `{request}`; devices present: {}", if available.is_empty() { "none".to_string() } else { available.join("; ") })]
    NoDevice {
        /// The selection (`GEYSER_DEVICE` or an explicit one).
        request: String,
        /// The devices that are there, one line each.
        available: Vec<String>,
    },

    /// The Vulkan loader or driver could not be loaded.
    #[error("cannot load Vulkan: {0}; install the Vulkan loader (libvulkan.so.1) and a Vulkan driver (an ICD; on Debian/Ubuntu the packages libvulkan1 and mesa-vulkan-drivers)")]
    Loader(String),

    /// A Vulkan call failed.
    #[cfg(feature = "vulkan")]
    #[error("Vulkan call {call} failed: {result}")]
    Vulkan {
        /// The Vulkan function that failed.
        call: &'static str,
        /// Its result code.
        result: ash::vk::Result,
    },

    /// A CUDA driver call failed (feature `cuda`).
    #[error("CUDA call {call} failed: {name} ({code})")]
    Cuda {
        /// The driver function that failed.
        call: &'static str,
        /// Its `CUresult`.
        code: i32,
        /// The result's name (`CUDA_ERROR_…`).
        name: String,
    },

    /// An OpenGL call failed (`glGetError` after it).
    #[error("GL call {call} failed with GL error {code:#06x}")]
    Gl {
        /// The GL function (or step) that failed.
        call: String,
        /// The `glGetError` code.
        code: u32,
    },

    /// The peer process closed the connection or died.
    #[error("peer gone: {0}")]
    PeerGone(String),

    /// The peer sent something that breaks the wire protocol; the connection is closed.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: peer speaks version {peer}, we speak {ours}; run the same Geyser version on both sides")]
    VersionMismatch {
        /// The peer's version.
        peer: u32,
        /// Ours.
        ours: u32,
    },

    /// No producer listens at this endpoint.
    #[error("no producer at {}: start the producer first, or check the name and $XDG_RUNTIME_DIR", path.display())]
    NotFound {
        /// The socket path that was tried.
        path: PathBuf,
    },

    /// A live producer already owns this endpoint.
    #[error("endpoint {} is in use by a running producer; pick another name or stop that producer", path.display())]
    AddressInUse {
        /// The socket path.
        path: PathBuf,
    },

    /// The peer is not allowed (other user, failed credential check).
    #[error("permission denied: {0}")]
    PermissionDenied(String),

    /// The producer refused this consumer, or dropped it, and said why.
    #[error("producer refused ({reason}{}): {detail}", if reason.is_retryable() { ", may succeed later" } else { "" })]
    Rejected {
        /// What kind of refusal: [`RejectReason::is_retryable`] tells retry from fatal.
        reason: RejectReason,
        /// The producer's explanation.
        detail: String,
    },

    /// A broken invariant inside Geyser (a bug, not the peer's or the caller's fault).
    #[error("internal error in Geyser (please report it): {0}")]
    Internal(String),

    /// An operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),

    /// An OS call failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(feature = "vulkan")]
impl Error {
    /// Wraps a failed Vulkan call.
    pub fn vk(call: &'static str) -> impl FnOnce(ash::vk::Result) -> Error {
        move |result| Error::Vulkan { call, result }
    }
}

impl Error {
    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(feature: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            feature: feature.into(),
            reason: reason.into(),
        }
    }
}
