//! [`VulkanTextureShareManager`]: creates exportable textures on one device, keeps the table of
//! exported handles, and imports exports from the same or another context.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ash::vk;

use super::caps::{self, DeviceCaps};
use super::device::{DeviceShared, SharedDevice};
use super::identity::DeviceIdentity;
use super::image::VulkanTexture;
use super::memory;
use super::options::ContextOptions;
use super::os;
use crate::common::{
    self, ApiTextureHandle, Backend, ExportedTexture, TextureDescriptor, TextureExtent,
};
use crate::{Error, Result, SharedTexture, TextureShareManager};

static NEXT_MANAGER_ID: AtomicU32 = AtomicU32::new(1);

/// Shares textures on one Vulkan device. `Send + Sync`; cheap to share behind an `Arc`.
///
/// Two ways to make one:
/// - [`Self::new`] over the application's own ash objects. The manager never destroys the
///   caller's instance or device; the caller must keep them alive until the manager and every
///   texture it made are dropped, and must have enabled `VK_KHR_external_memory_fd` on the
///   device. The manager submits its own copies to queue 0 of `queue_family`; the caller
///   serializes its own submissions to that queue with [`Self::with_queue`].
/// - [`Self::create`] / [`Self::create_default`]: Geyser creates an instance and device with
///   every sharing extension the device offers, picking the device by `GEYSER_DEVICE`.
pub struct VulkanTextureShareManager {
    pub(crate) dev: SharedDevice,
    id: u32,
    next_handle: AtomicU64,
    exports: Mutex<HashMap<u64, ExportedTexture>>,
    caps: OnceLock<DeviceCaps>,
}

impl std::fmt::Debug for VulkanTextureShareManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VulkanTextureShareManager")
            .field("id", &self.id)
            .field("device", &self.dev.identity.name)
            .finish()
    }
}

impl VulkanTextureShareManager {
    /// Wraps the application's Vulkan objects (see the type's docs for the ownership rules).
    /// Fails with [`Error::Unsupported`] when `VK_KHR_external_memory_fd` is not enabled.
    pub fn new(
        instance: ash::Instance,
        device: ash::Device,
        physical_device: vk::PhysicalDevice,
        queue_family: u32,
    ) -> Result<Self> {
        Ok(Self::from_device(DeviceShared::borrowed(
            instance,
            device,
            physical_device,
            queue_family,
            false,
        )?))
    }

    /// Creates Geyser's own instance and device as `options` says.
    pub fn create(options: &ContextOptions) -> Result<Self> {
        Ok(Self::from_device(DeviceShared::create(options)?))
    }

    /// [`Self::create`] with [`ContextOptions::from_env`] (`GEYSER_DEVICE`,
    /// `GEYSER_VALIDATION`).
    pub fn create_default() -> Result<Self> {
        Self::create(&ContextOptions::from_env())
    }

    /// A manager on `dev`: Geyser's own device, or a borrowed one (see
    /// [`DeviceShared::borrowed`]).
    pub(crate) fn from_device(dev: DeviceShared) -> Self {
        Self {
            dev: Arc::new(dev),
            id: NEXT_MANAGER_ID.fetch_add(1, Ordering::Relaxed),
            next_handle: AtomicU64::new(1),
            exports: Mutex::new(HashMap::new()),
            caps: OnceLock::new(),
        }
    }

    /// The device this manager works on.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.dev.identity
    }

    /// What the device can share (queried once, then cached).
    pub fn caps(&self) -> Result<&DeviceCaps> {
        if let Some(c) = self.caps.get() {
            return Ok(c);
        }
        let c = caps::query(&self.dev.instance, &self.dev.identity)?;
        Ok(self.caps.get_or_init(|| c))
    }

    /// The ash instance.
    pub fn instance(&self) -> &ash::Instance {
        &self.dev.instance
    }

    /// The ash device.
    pub fn device(&self) -> &ash::Device {
        &self.dev.device
    }

    /// The physical device.
    pub fn physical_device(&self) -> vk::PhysicalDevice {
        self.dev.physical
    }

    /// The queue family Geyser submits to.
    pub fn queue_family(&self) -> u32 {
        self.dev.queue_family
    }

    /// Whether this context can create, export and import timeline semaphores (the device
    /// exports them and the context enabled `VK_KHR_external_semaphore_fd` and timelines).
    pub fn can_share_timelines(&self) -> bool {
        self.dev.timeline && self.dev.external_semaphore.is_some()
    }

    /// Whether Geyser created the device (and so destroys it when the last user is gone).
    pub fn owns_device(&self) -> bool {
        self.dev.is_owned()
    }

    /// Runs `f` with exclusive access to the queue Geyser submits to.
    pub fn with_queue<R>(&self, f: impl FnOnce(vk::Queue) -> R) -> R {
        let q = self.dev.lock_queue();
        f(q.queue)
    }

    /// Waits until Geyser's queue has finished all submitted work.
    pub fn wait_idle(&self) -> Result<()> {
        self.dev.wait_queue_idle()
    }

    /// Creates a 2D texture with one layer and mip level that can be exported.
    pub fn create_texture(&self, desc: &TextureDescriptor) -> Result<VulkanTexture> {
        self.create_texture_with(desc, &TextureExtent::default())
    }

    /// Creates a texture with the given extent (layers, mips, 3D, cube) that can be exported.
    /// The descriptor is validated before any Vulkan call; the device's support for the format
    /// and usages as an external image is checked before the image is created.
    pub fn create_texture_with(
        &self,
        desc: &TextureDescriptor,
        extent: &TextureExtent,
    ) -> Result<VulkanTexture> {
        desc.validate_with(extent)?;
        let max = self.caps()?.max_image_dimension_2d;
        if desc.width > max || desc.height > max {
            return Err(Error::InvalidDescriptor {
                label: desc.label.clone(),
                reason: format!(
                    "extent {}x{} exceeds {}'s limit of {max} texels per side",
                    desc.width,
                    desc.height,
                    self.identity().name
                ),
            });
        }
        memory::create_exportable(&self.dev, desc, extent, os::NATIVE_MEMORY)
    }

    /// Creates a texture in the given kind of memory ([`TextureMemory`]): a DMA-BUF (with a
    /// DRM format modifier negotiated against `modifiers` the importer supports, or LINEAR),
    /// an opaque FD with modifier tiling, host memory imported as a DMA-BUF, or the default
    /// opaque FD. Checked like [`Self::create_texture_with`]; [`Error::Unsupported`] when the
    /// device cannot make this kind of memory for the format and usages.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn create_texture_in(
        &self,
        desc: &TextureDescriptor,
        extent: &TextureExtent,
        memory: &super::TextureMemory,
    ) -> Result<VulkanTexture> {
        desc.validate_with(extent)?;
        super::dmabuf::create(&self.dev, desc, extent, memory)
    }

    /// Imports a DMA-BUF this manager did not make (from GBM, a V4L2/VA-API decoder, a
    /// compositor, another process or API) as a texture described by `desc`: same size, a
    /// format whose DRM fourcc is the buffer's (`Rgba8UnormSrgb` for an `AB24` buffer read as
    /// sRGB), the usages the application needs. Single-plane buffers; the plane layout is
    /// checked first (against the buffer's size, the format, and what this device can bind),
    /// and a layout the device cannot take is [`Error::InvalidDmaBuf`]. The buffer's FD is
    /// duplicated, the [`crate::common::DmaBuf`] stays the caller's.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn import_dma_buf(
        &self,
        buf: &crate::common::DmaBuf,
        desc: &TextureDescriptor,
    ) -> Result<VulkanTexture> {
        super::dmabuf::import_dma_buf(&self.dev, buf, desc)
    }

    /// Imports a two-plane 4:2:0 DMA-BUF (NV12, P010: a decoder's or camera's frame; planes
    /// in one buffer or one buffer each) as a multi-planar image with `usages`. The layout is
    /// checked like [`Self::import_dma_buf`]'s. The buffer stays the caller's.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn import_dma_buf_planar(
        &self,
        buf: &crate::common::DmaBuf,
        usages: &[crate::common::TextureUsage],
    ) -> Result<super::PlanarTexture> {
        super::planar::import_planar(&self.dev, buf, usages, true)
    }

    /// The DRM format modifiers this device offers for `format`
    /// (`VK_EXT_image_drm_format_modifier`; empty without it).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn drm_modifiers(
        &self,
        format: crate::common::TextureFormat,
    ) -> Vec<super::ModifierSupport> {
        super::modifier::device_modifiers(&self.dev, super::conv::format(format))
    }

    /// The modifiers this device can import `format` with, to hand to an exporter's
    /// negotiation ([`super::TextureMemory::DmaBuf`]): its modifiers, or LINEAR alone on a
    /// device without `VK_EXT_image_drm_format_modifier` that imports LINEAR DMA-BUFs.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn importable_modifiers(&self, format: crate::common::TextureFormat) -> Vec<u64> {
        super::modifier::importable_modifiers(&self.dev, format)
    }

    /// Exports a texture as an owned, transferable handle: give it to another context
    /// ([`Self::import`]) or send it to another process. Each call makes a new OS handle.
    pub fn export(&self, texture: &VulkanTexture) -> Result<ExportedTexture> {
        memory::export(texture)
    }

    /// Imports an export (from this or another context on the same device and driver) with
    /// the descriptor it carries. Consumes the OS handle.
    pub fn import(&self, exported: ExportedTexture) -> Result<VulkanTexture> {
        memory::import(&self.dev, exported, None)
    }

    /// Imports an export after checking that `desc` matches the one it was exported with
    /// ([`Error::DescriptorMismatch`] otherwise). Consumes the OS handle, also on error.
    pub fn import_with(
        &self,
        exported: ExportedTexture,
        desc: &TextureDescriptor,
    ) -> Result<VulkanTexture> {
        memory::import(&self.dev, exported, Some(desc))
    }

    /// A new owned copy (duplicated FD) of an export in this manager's table, for importing
    /// it in another context.
    pub fn exported(&self, handle: ApiTextureHandle) -> Result<ExportedTexture> {
        self.check_handle_owner(handle)?;
        let table = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        let entry = table.get(&handle.id).ok_or(Error::UnknownHandle {
            handle,
            reason: "was never issued or was already released",
        })?;
        Ok(entry.try_clone()?)
    }

    /// Number of exports in the table (handles not yet released).
    pub fn open_handles(&self) -> usize {
        self.exports.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn check_handle_owner(&self, handle: ApiTextureHandle) -> Result<()> {
        if handle.manager != self.id {
            return Err(Error::UnknownHandle {
                handle,
                reason: "belongs to another manager",
            });
        }
        Ok(())
    }

    /// `texture` as a texture of this manager's device ([`Error::WrongTexture`] otherwise).
    fn own_texture<'a>(&self, texture: &'a dyn SharedTexture) -> Result<&'a VulkanTexture> {
        let tex = common::downcast::<VulkanTexture>(texture, Backend::Vulkan)?;
        if !Arc::ptr_eq(&tex.inner.dev, &self.dev) {
            return Err(Error::WrongTexture(
                "the texture belongs to another device context".into(),
            ));
        }
        Ok(tex)
    }
}

impl TextureShareManager for VulkanTextureShareManager {
    fn create_shareable_texture(&self, desc: &TextureDescriptor) -> Result<Box<dyn SharedTexture>> {
        Ok(Box::new(self.create_texture(desc)?))
    }

    fn export_texture(&self, texture: &dyn SharedTexture) -> Result<ApiTextureHandle> {
        let tex = self.own_texture(texture)?;
        let exported = self.export(tex)?;
        let handle = ApiTextureHandle {
            manager: self.id,
            id: self.next_handle.fetch_add(1, Ordering::Relaxed),
        };
        self.exports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(handle.id, exported);
        Ok(handle)
    }

    fn import_texture(
        &self,
        handle: ApiTextureHandle,
        desc: &TextureDescriptor,
    ) -> Result<Box<dyn SharedTexture>> {
        let exported = self.exported(handle)?;
        Ok(Box::new(self.import_with(exported, desc)?))
    }

    fn release_texture_handle(&self, handle: ApiTextureHandle) -> Result<()> {
        self.check_handle_owner(handle)?;
        let removed = self
            .exports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&handle.id);
        match removed {
            Some(exported) => {
                drop(exported); // closes the FD
                Ok(())
            }
            None => Err(Error::UnknownHandle {
                handle,
                reason: "was never issued or was already released",
            }),
        }
    }
}

impl Drop for VulkanTextureShareManager {
    fn drop(&mut self) {
        // Exports still in the table own FDs; dropping the table closes them.
        let n = self.exports.get_mut().map(|t| t.len()).unwrap_or(0);
        if n > 0 {
            tracing::debug!(
                "manager {} dropped with {n} unreleased export handles; closing them",
                self.id
            );
        }
    }
}
