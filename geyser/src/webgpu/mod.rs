//! wgpu interop (feature `webgpu`): shared textures as [`wgpu::Texture`]s on wgpu's own Vulkan
//! device, in the same process as a Vulkan context or across processes through [`crate::ipc`].
//!
//! Supported: wgpu and wgpu-hal **30.x** (the versions whose Vulkan HAL is built on the same
//! ash 0.38 as Geyser), Vulkan backend only.
//!
//! - [`WgpuTextureShareManager::create`] makes the wgpu device: Geyser creates the Vulkan
//!   instance (with its validation messenger), picks the physical device with
//!   [`crate::vulkan::DeviceSelector`], and opens it through wgpu-hal's `open_with_callback`,
//!   adding the external memory / semaphore / fence extensions the device offers.
//!   [`WgpuTextureShareManager::from_wgpu`] wraps an application's device instead; that device
//!   must have `VK_KHR_external_memory_fd` enabled (request
//!   `wgpu::Features::VULKAN_EXTERNAL_MEMORY_FD`).
//! - Textures are Geyser's exportable `VkImage`s wrapped with wgpu-hal's `texture_from_raw`
//!   and `Device::create_texture_from_hal`: the [`wgpu::Texture`] keeps the image and memory
//!   alive, and wgpu frees them once its GPU work with them is done.
//! - Every use is bracketed like the rest of Geyser:
//!   [`WgpuTextureShareManager::begin_access`] acquires the texture from
//!   `VK_QUEUE_FAMILY_EXTERNAL` (waiting on timeline points when given),
//!   [`WgpuTextureShareManager::end_access`] releases it (signalling a timeline point when
//!   given). Without exportable semaphores the host fallback is
//!   [`WgpuTextureShareManager::wait_for_submission`], which waits on that one submission
//!   index, never on the whole device.
//!
//! - DMA-BUFs Geyser did not make: [`WgpuTextureShareManager::import_dma_buf`] (Geyser's
//!   import, any device that imports DMA-BUFs) or
//!   [`WgpuTextureShareManager::import_dma_buf_with_wgpu`] (wgpu's own
//!   `texture_from_dmabuf_fd`, devices with DRM format modifiers).
//!
//! wgpu owns queue 0 of the device; Geyser submits nothing to it except through wgpu.

mod conv;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod dmabuf;
mod manager;
mod texture;

#[cfg(all(feature = "ipc", any(target_os = "linux", target_os = "android")))]
mod ipc;

#[cfg(all(feature = "ipc", any(target_os = "linux", target_os = "android")))]
pub use ipc::{WgpuConsumer, WgpuFrame, WgpuProducer, WgpuWriteSlot};
pub use manager::WgpuTextureShareManager;
pub use texture::WgpuTexture;

/// The wgpu crate Geyser is built against, so applications use the same version.
pub use wgpu;

/// The Vulkan device extensions Geyser uses on a wgpu device: the external-memory extension
/// (required; wgpu 30 enables it by itself where offered), then the optional ones (external
/// semaphores and fences for GPU-side handoff, DMA-BUF, DRM modifiers, host memory, the foreign
/// queue family): the device recipe Geyser's own devices use. For applications that open the
/// device themselves, e.g. through wgpu-hal's `open_with_callback` or Bevy's `raw_vulkan_init`
/// device callback: add each one the physical device offers, then wrap the device with
/// [`WgpuTextureShareManager::from_wgpu`]. ([`WgpuTextureShareManager::create`] adds them
/// itself.)
pub fn sharing_extensions() -> impl Iterator<Item = &'static std::ffi::CStr> {
    let recipe = &crate::vulkan::recipe::SHARING;
    recipe.required.iter().chain(recipe.optional).copied()
}
