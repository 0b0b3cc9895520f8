//! Vulkan backend (ash): exportable images with dedicated external memory, export as opaque
//! FDs, import into other `VkDevice`s on the same GPU and driver, capability queries.
//!
//! Every shared texture is in [`SHARED_LAYOUT`] and owned by `VK_QUEUE_FAMILY_EXTERNAL`
//! between accesses: a user acquires it with [`VulkanTexture::begin_access_barrier`], works,
//! and releases it with [`VulkanTexture::end_access_barrier`], whatever context, process or
//! API used it before.

mod buffer;
mod caps;
pub mod conv;
mod cross;
pub(crate) mod device;
pub mod diagnostics;
mod image;
pub(crate) mod instance;
mod manager;
mod memory;
mod options;
mod os;
pub(crate) mod recipe;
mod submit;
mod sync;
pub(crate) mod transfer;
mod validation;

pub use buffer::Buffer;
pub use caps::{
    enumerate_devices, DeviceCaps, DeviceIdentity, FormatCaps, FormatShareSupport, SyncExportCaps,
};
pub use cross::{CrossDeviceTransfer, TransferPath, TransferTiming};
pub use image::{VulkanTexture, SHARED_LAYOUT};
pub use manager::VulkanTextureShareManager;
pub use options::{ContextOptions, DeviceSelector, Validation};
pub use submit::{Submitter, TimelinePoint, MAX_POINTS, SUBMIT_TIMEOUT};
pub use sync::{SharedFence, SharedSemaphore, SharedTimelineSemaphore, SyncHandleType};
pub use transfer::{aspect_size, record_copy, CopyDirection, StagingBuffer};

/// The ash crate Geyser is built against, so applications use the same version.
pub use ash;
