//! CUDA interop (feature `cuda`, Linux): shared textures and linear frames imported into
//! CUDA, shared timeline semaphores as CUDA external semaphores, and peer copies between GPUs.
//!
//! The CUDA driver is loaded at run time through cudarc (no toolkit at build time); every
//! entry point is checked before the first call, so a machine without CUDA, or with a driver
//! too old, gets [`crate::Error::Unsupported`] from the first call that needs it
//! ([`init`], [`devices`], [`CudaDevice::new`]), never a panic.
//!
//! Files, in layers:
//! - `driver.rs`: loading the driver, errors.
//! - `device.rs`: [`CudaDevice`] (primary context, UUID, peer access), [`devices`].
//! - `stream.rs`: [`CudaStream`], [`StreamHandle`].
//! - `memory.rs`: [`ExternalMemory`] (`cuImportExternalMemory`, opaque FD, dedicated, device
//!   UUID checked) mapped as a [`CudaArray`] (optimal-tiled images) or a [`MappedBuffer`]
//!   (linear frames); [`DeviceBuffer`]; [`copy_2d`].
//! - `semaphore.rs`: [`CudaTimeline`], a timeline semaphore CUDA streams wait for and signal.
//! - `consumer.rs`, `producer.rs`: [`CudaConsumer`] and [`CudaProducer`], the IPC endpoints
//!   with frames in CUDA memory (the same protocol as every consumer and producer).
//! - `peer.rs`: GPU-to-GPU copies between devices with peer access: [`PeerTransfer`]
//!   in-process, [`PeerRings`] for a producer's consumers on another GPU,
//!   [`transfer_path_between`].

mod consumer;
mod device;
mod driver;
mod memory;
mod peer;
mod producer;
mod semaphore;
mod stream;

pub use consumer::{CudaConsumer, CudaFrame, FrameMemory};
pub use device::{devices, CudaDevice, CudaDeviceInfo};
pub use driver::{init, DRIVER_SYMBOLS};
pub use memory::{copy_2d, CudaArray, DeviceBuffer, ExternalMemory, MappedBuffer, Region2D};
pub use peer::{copy_peer, peer_devices, transfer_path_between, PeerRings, PeerTransfer};
pub use producer::{CudaProducer, CudaWriteSlot};
pub use semaphore::CudaTimeline;
pub use stream::{synchronize, CudaStream, StreamHandle};

/// The cudarc crate Geyser is built against (its `driver::sys` types appear in this API).
pub use cudarc;
