//! [`VulkanTexture`]: a reference-counted shareable image + dedicated memory, destroyed
//! exactly once, and the barriers that hand it to and from `VK_QUEUE_FAMILY_EXTERNAL`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ash::vk;

use super::conv::{self, ImageParams};
use super::device::SharedDevice;
use super::diagnostics::{LIVE_IMAGES, LIVE_MEMORIES, LIVE_TEXTURES};
use crate::common::{Backend, ExportInfo, TextureDescriptor, TextureExtent};
use crate::SharedTexture;

pub(crate) struct TextureInner {
    pub(crate) dev: SharedDevice,
    pub(crate) image: vk::Image,
    pub(crate) memory: vk::DeviceMemory,
    pub(crate) params: ImageParams,
    pub(crate) info: ExportInfo,
    pub(crate) imported: bool,
    /// Whether the texels hold data (a write happened here or the texture was imported).
    pub(crate) initialized: AtomicBool,
    /// The FD of memory Vulkan imported and Geyser re-exports (host or foreign DMA-BUFs);
    /// closed with the texture.
    pub(crate) backing: Option<crate::common::OwnedOsHandle>,
}

impl Drop for TextureInner {
    fn drop(&mut self) {
        // The manager's queue is the only one Geyser submits to; waiting for it makes every
        // Geyser submission that used this image complete. Work the application submitted on
        // its own queues must be finished by the application before the last handle drops.
        if let Err(e) = self.dev.wait_queue_idle() {
            tracing::warn!("vkQueueWaitIdle before destroying a texture failed: {e}");
        }
        // SAFETY: the image and memory were created on this device, are owned by this struct
        // alone, and no Geyser submission uses them any more (see above).
        unsafe {
            self.dev.device.destroy_image(self.image, None);
            self.dev.device.free_memory(self.memory, None);
        }
        LIVE_IMAGES.fetch_sub(1, Ordering::Relaxed);
        LIVE_MEMORIES.fetch_sub(1, Ordering::Relaxed);
        LIVE_TEXTURES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A shareable Vulkan image with its dedicated memory. Cloning is cheap (reference counted);
/// the image and memory are destroyed once, when the last clone drops, after Geyser's queue
/// has finished with them.
#[derive(Clone)]
pub struct VulkanTexture {
    pub(crate) inner: Arc<TextureInner>,
}

impl std::fmt::Debug for VulkanTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VulkanTexture")
            .field("label", &self.inner.info.descriptor.label)
            .field("image", &self.inner.image)
            .field("format", &self.inner.info.descriptor.format)
            .field(
                "extent",
                &(
                    self.inner.info.descriptor.width,
                    self.inner.info.descriptor.height,
                ),
            )
            .field("imported", &self.inner.imported)
            .finish()
    }
}

impl VulkanTexture {
    /// The `VkImage`. Valid while this texture (or a clone) lives.
    pub fn image(&self) -> vk::Image {
        self.inner.image
    }

    /// The dedicated `VkDeviceMemory` bound to the image.
    pub fn memory(&self) -> vk::DeviceMemory {
        self.inner.memory
    }

    /// The `VkFormat`.
    pub fn vk_format(&self) -> vk::Format {
        self.inner.params.format
    }

    /// The `VkImageUsageFlags` the image was created with.
    pub fn vk_usage(&self) -> vk::ImageUsageFlags {
        self.inner.params.usage
    }

    /// All aspects of the image's format.
    pub fn vk_aspect(&self) -> vk::ImageAspectFlags {
        conv::full_aspect(self.inner.info.descriptor.format)
    }

    /// What an importer needs to know besides the OS handle.
    pub fn export_info(&self) -> &ExportInfo {
        &self.inner.info
    }

    /// Whether the texels hold data: the texture was imported, or written through Geyser, or
    /// marked with [`Self::mark_initialized`].
    pub fn is_initialized(&self) -> bool {
        self.inner.initialized.load(Ordering::Acquire)
    }

    /// Records that the application wrote the texture (so the next access keeps its contents).
    pub fn mark_initialized(&self) {
        self.inner.initialized.store(true, Ordering::Release);
    }

    /// The image's extent in texels at mip 0 (`depth` > 1 only for 3D textures).
    pub fn vk_extent(&self) -> vk::Extent3D {
        self.inner.params.extent
    }

    /// The full subresource range (all mips, layers and aspects).
    pub fn subresource_range(&self) -> vk::ImageSubresourceRange {
        vk::ImageSubresourceRange {
            aspect_mask: self.vk_aspect(),
            base_mip_level: 0,
            level_count: self.inner.params.mip_levels,
            base_array_layer: 0,
            layer_count: self.inner.params.array_layers,
        }
    }

    /// The barrier that begins an access on queue family `queue_family`: acquires the image
    /// from `VK_QUEUE_FAMILY_EXTERNAL` in [`SHARED_LAYOUT`] and moves it to `new_layout`.
    /// With `initialized = false` the old contents are discarded (layout `UNDEFINED`, no
    /// ownership transfer), which is also what the very first access of a new texture does.
    /// Set `dst_access_mask` on the result for the access that follows.
    pub fn begin_access_barrier(
        &self,
        queue_family: u32,
        initialized: bool,
        new_layout: vk::ImageLayout,
    ) -> vk::ImageMemoryBarrier<'static> {
        let (old_layout, src, dst) = if initialized {
            (SHARED_LAYOUT, vk::QUEUE_FAMILY_EXTERNAL, queue_family)
        } else {
            (
                vk::ImageLayout::UNDEFINED,
                vk::QUEUE_FAMILY_IGNORED,
                vk::QUEUE_FAMILY_IGNORED,
            )
        };
        vk::ImageMemoryBarrier::default()
            .image(self.image())
            .subresource_range(self.subresource_range())
            .old_layout(old_layout)
            .new_layout(new_layout)
            .src_queue_family_index(src)
            .dst_queue_family_index(dst)
            .src_access_mask(vk::AccessFlags::empty())
    }

    /// The two barriers around one access in `layout` with `access` on `queue_family`:
    /// [`Self::begin_access_barrier`] and [`Self::end_access_barrier`] with their access masks
    /// set.
    pub fn access_barriers(
        &self,
        queue_family: u32,
        initialized: bool,
        layout: vk::ImageLayout,
        access: vk::AccessFlags,
    ) -> [vk::ImageMemoryBarrier<'static>; 2] {
        [
            self.begin_access_barrier(queue_family, initialized, layout)
                .dst_access_mask(access),
            self.end_access_barrier(queue_family, layout)
                .src_access_mask(access),
        ]
    }

    /// The barrier that ends an access: moves the image from `old_layout` to
    /// [`SHARED_LAYOUT`] and releases it to `VK_QUEUE_FAMILY_EXTERNAL`, so the next user (any
    /// context, process or API) can acquire it. Set `src_access_mask` on the result for the
    /// access that precedes it.
    pub fn end_access_barrier(
        &self,
        queue_family: u32,
        old_layout: vk::ImageLayout,
    ) -> vk::ImageMemoryBarrier<'static> {
        vk::ImageMemoryBarrier::default()
            .image(self.image())
            .subresource_range(self.subresource_range())
            .old_layout(old_layout)
            .new_layout(SHARED_LAYOUT)
            .src_queue_family_index(queue_family)
            .dst_queue_family_index(vk::QUEUE_FAMILY_EXTERNAL)
            .dst_access_mask(vk::AccessFlags::empty())
    }
}

/// The layout a shared texture is in between accesses, when it is owned by
/// `VK_QUEUE_FAMILY_EXTERNAL`. Every Geyser side releases into and acquires from this layout.
pub const SHARED_LAYOUT: vk::ImageLayout = vk::ImageLayout::GENERAL;

impl SharedTexture for VulkanTexture {
    fn descriptor(&self) -> &TextureDescriptor {
        &self.inner.info.descriptor
    }

    fn extent(&self) -> &TextureExtent {
        &self.inner.info.extent
    }

    fn backend(&self) -> Backend {
        Backend::Vulkan
    }

    fn is_imported(&self) -> bool {
        self.inner.imported
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
