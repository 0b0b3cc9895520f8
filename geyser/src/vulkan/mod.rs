//! Vulkan backend (ash): exportable images with dedicated external memory, export as opaque
//! FDs, import into other `VkDevice`s on the same GPU and driver, capability queries.
//!
//! Every shared texture is in [`SHARED_LAYOUT`] and owned by `VK_QUEUE_FAMILY_EXTERNAL`
//! between accesses: a user acquires it with [`VulkanTexture::begin_access_barrier`], works,
//! and releases it with [`VulkanTexture::end_access_barrier`], whatever context, process or
//! API used it before.
//!
//! Files, in layers: each uses only files above it (no circles).
//! - `conv.rs`: Geyser's types in Vulkan terms; the only reader of the tables' Vulkan columns.
//! - `diagnostics.rs`: live object and validation error counts (test instruments).
//! - `os.rs`: the platform's external handles (FDs or NT handles) and their extensions.
//! - `identity.rs`: what a device is ([`DeviceIdentity`]), its extensions, timeline support.
//! - `caps.rs`: what a device can share ([`DeviceCaps`]).
//! - `options.rs`: how Geyser makes its own context ([`ContextOptions`], [`DeviceSelector`]).
//! - `validation.rs`: the validation messenger and its one filtered false positive.
//! - `instance.rs`: Geyser's own instance: what it enables, and its owner.
//! - `recipe.rs`: the device recipe: extensions and features sharing needs or uses.
//! - `device.rs`: the device a manager works on (created or borrowed), and its queue lock.
//! - `image.rs`: [`VulkanTexture`] and its access barriers.
//! - `memory.rs`: exportable images with dedicated memory; export and import.
//! - `modifier.rs` (Linux, Android): DRM format modifiers: what the device offers,
//!   negotiation, images tiled LINEAR or by a modifier.
//! - `dmabuf.rs` (Linux, Android): DMA-BUF and DRM-modifier textures ([`TextureMemory`]),
//!   import of foreign DMA-BUFs with their plane layout checked.
//! - `planar.rs` (Linux, Android): NV12/P010 DMA-BUFs as multi-planar images
//!   ([`PlanarTexture`]).
//! - `manager.rs`: [`VulkanTextureShareManager`] and its table of exports.
//! - `sync.rs`: shared semaphores and fences ([`SharedTimelineSemaphore`] and the others).
//! - `submit.rs`: [`Submitter`] and [`TimelinePoint`].
//! - `buffer.rs`: [`Buffer`], a buffer with its own memory.
//! - `shared_buffer.rs`: [`SharedBuffer`], an exportable buffer (linear frames).
//! - `transfer.rs`: host ↔ texture copies through a staging buffer.
//! - `cross.rs`: texture copies between devices ([`CrossDeviceTransfer`]).
//! - `timestamps.rs`: GPU timestamp queries on the host's clock ([`GpuTimestamps`]).
//! - `pool.rs`: exportable textures reused by descriptor ([`TexturePool`]).

mod buffer;
mod caps;
pub mod conv;
mod cross;
pub(crate) mod device;
pub mod diagnostics;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod dmabuf;
mod identity;
mod image;
pub(crate) mod instance;
mod manager;
mod memory;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod modifier;
mod options;
mod os;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod planar;
mod pool;
pub(crate) mod recipe;
mod shared_buffer;
mod submit;
mod sync;
mod timestamps;
pub(crate) mod transfer;
mod validation;

pub use buffer::Buffer;
pub use caps::{
    enumerate_devices, DeviceCaps, DmaBufCaps, FormatCaps, FormatShareSupport, MemoryExposure,
    SyncExportCaps,
};
pub use cross::{CrossDeviceTransfer, TransferPath, TransferTiming};
#[cfg(all(feature = "gl", any(target_os = "linux", target_os = "android")))]
pub(crate) use dmabuf::check_sealed;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use dmabuf::TextureMemory;
pub use identity::DeviceIdentity;
pub use image::{VulkanTexture, SHARED_LAYOUT};
pub use manager::VulkanTextureShareManager;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use modifier::ModifierSupport;
pub use options::{ContextOptions, DeviceSelector, Validation};
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use planar::{planar_format, PlanarTexture};
pub use pool::{PoolStats, PooledTexture, TexturePool};
pub use shared_buffer::SharedBuffer;
pub use submit::{Submitter, TimelinePoint, MAX_POINTS, SUBMIT_TIMEOUT};
pub use sync::{SharedFence, SharedSemaphore, SharedTimelineSemaphore, SyncHandleType};
pub use timestamps::{Calibration, GpuTimestamps};
pub use transfer::{aspect_size, packed_layout, record_copy, CopyDirection, StagingBuffer};

/// The ash crate Geyser is built against, so applications use the same version.
pub use ash;
