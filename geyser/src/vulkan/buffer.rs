//! [`Buffer`]: a `VkBuffer` with its own memory, destroyed on drop; host-visible buffers stay
//! mapped for their lifetime. The backend's staging buffers use it, and so can applications
//! that record their own copies with a [`super::Submitter`].

use ash::vk;

use super::device::SharedDevice;
use super::manager::VulkanTextureShareManager;
use crate::{Error, Result};

/// Which memory a [`Buffer`] gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Memory {
    /// Device-local (any type where there is none).
    Device,
    /// Host-visible and coherent: the first such type (often write-combined).
    Host,
    /// Host-visible and coherent, CPU-cached where offered.
    Readback,
}

/// A buffer with its own memory on one manager's device. Host buffers are persistently mapped.
/// Dropping it frees both: wait for GPU work that uses it first.
pub struct Buffer {
    pub(super) dev: SharedDevice,
    pub(crate) buffer: vk::Buffer,
    pub(super) memory: vk::DeviceMemory,
    pub(super) mapped: *mut u8,
    pub(crate) size: u64,
}

// SAFETY: the mapped pointer is only dereferenced through `&self`/`&mut self` methods while the
// memory is mapped; the Vulkan handles are plain identifiers.
unsafe impl Send for Buffer {}
// SAFETY: as above; readers only read the mapping after waiting for the GPU.
unsafe impl Sync for Buffer {}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("size", &self.size)
            .field("mapped", &!self.mapped.is_null())
            .finish_non_exhaustive()
    }
}

impl Buffer {
    /// A host-visible, coherent buffer of `size` bytes on `manager`'s device, mapped for its
    /// lifetime ([`Self::bytes`]), for data the CPU writes and the GPU reads (uploads): the
    /// first such memory type, often write-combined, which the CPU reads only slowly. For data
    /// the CPU reads back, use [`Self::readback`].
    pub fn host(
        manager: &VulkanTextureShareManager,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        Self::host_on(&manager.dev, size, usage)
    }

    /// A host-visible, coherent buffer like [`Self::host`], in CPU-cached memory where the
    /// device offers it (`HOST_CACHED`), for data the GPU writes and the CPU reads (readbacks):
    /// reading write-combined memory runs at a fraction of memory speed. Falls back to
    /// [`Self::host`]'s memory.
    pub fn readback(
        manager: &VulkanTextureShareManager,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        Self::readback_on(&manager.dev, size, usage)
    }

    /// A device-local buffer of `size` bytes on `manager`'s device (any memory type when the
    /// device has no device-local one).
    pub fn device_local(
        manager: &VulkanTextureShareManager,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        Self::device_local_on(&manager.dev, size, usage)
    }

    /// The alignment that pointer and size need for [`Self::import_host_memory`] on
    /// `manager`'s device, or `None` when that device cannot import host memory
    /// (`VK_EXT_external_memory_host` absent or not enabled).
    pub fn host_import_alignment(manager: &VulkanTextureShareManager) -> Option<u64> {
        let offered = manager.caps().is_ok_and(|c| c.external_memory_host);
        (offered && manager.dev.external_memory_host_enabled())
            .then(|| Self::host_pointer_alignment(&manager.dev))
    }

    /// A buffer over `size` bytes of host memory at `ptr` that the caller owns, imported
    /// with `VK_EXT_external_memory_host`: the GPU copies to and from that memory directly,
    /// with no staging copy. [`Self::bytes`] reads it. Fails with [`Error::Unsupported`] when
    /// the device cannot import host memory, and [`Error::InvalidArgument`] when `ptr` or
    /// `size` is not a multiple of [`Self::host_import_alignment`].
    ///
    /// # Safety
    /// - `ptr` points to `size` bytes of ordinary host memory (heap, anonymous or file-backed
    ///   shared mapping; not a mapping of device memory), readable and writable.
    /// - That memory stays allocated and mapped at `ptr` until the returned buffer is dropped.
    /// - Nothing else accesses it while GPU work that uses the buffer runs.
    pub unsafe fn import_host_memory(
        manager: &VulkanTextureShareManager,
        ptr: *mut u8,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        let align = Self::host_import_alignment(manager).ok_or_else(|| {
            Error::unsupported(
                "host memory import",
                format!(
                    "{} has no VK_EXT_external_memory_host",
                    manager.identity().name
                ),
            )
        })?;
        if !(ptr as u64).is_multiple_of(align) || !size.is_multiple_of(align) || size == 0 {
            return Err(Error::InvalidArgument {
                what: "host memory",
                reason: format!(
                    "pointer {ptr:p} and size {size} must be non-zero multiples of {align}"
                ),
            });
        }
        // SAFETY: alignment checked above; the rest is this function's contract.
        unsafe { Self::import_host(&manager.dev, ptr, size, usage) }
    }

    /// Whether [`Self::export_dma_buf`] can make buffers with `usage` on `manager`'s device
    /// (the driver's answer for `VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT`; lavapipe
    /// exports DMA-BUF only where the kernel offers udmabuf).
    #[cfg(target_os = "linux")]
    pub fn dma_buf_exportable(
        manager: &VulkanTextureShareManager,
        usage: vk::BufferUsageFlags,
    ) -> bool {
        let dev = &manager.dev;
        let offered = manager.caps().is_ok_and(|c| {
            c.memory_handle_types
                .contains(&crate::common::ExternalHandleType::DmaBuf)
        });
        if !offered {
            return false;
        }
        let query = vk::PhysicalDeviceExternalBufferInfo::default()
            .usage(usage)
            .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
        let mut props = vk::ExternalBufferProperties::default();
        // SAFETY: `physical` belongs to `instance`; the structs are plain locals.
        unsafe {
            dev.instance.get_physical_device_external_buffer_properties(
                dev.physical,
                &query,
                &mut props,
            )
        };
        props
            .external_memory_properties
            .external_memory_features
            .contains(vk::ExternalMemoryFeatureFlags::EXPORTABLE)
    }

    /// A buffer of `size` bytes whose memory is exported as a DMA-BUF, and that DMA-BUF: a new
    /// file descriptor the caller owns (the memory lives while the buffer or any descriptor of
    /// it is open). Its bytes are linear, for DMA-BUF consumers (GStreamer's
    /// `memory:DMABuf`, EGL, V4L2, PipeWire). Prefers device-local memory. Fails with
    /// [`Error::Unsupported`] when the device cannot export such a buffer
    /// (`VK_EXT_external_memory_dma_buf`).
    #[cfg(target_os = "linux")]
    pub fn export_dma_buf(
        manager: &VulkanTextureShareManager,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<(Self, std::os::fd::OwnedFd)> {
        let handle_type = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
        let dev = &manager.dev;
        let unsupported = |why: String| {
            Error::unsupported(
                "DMA-BUF buffer export",
                format!("{why} on {}", dev.identity.name),
            )
        };
        if !Self::dma_buf_exportable(manager, usage) {
            return Err(unsupported(format!(
                "buffers with usage {usage:?} are not exportable as DMA-BUF"
            )));
        }
        let device = &dev.device;
        let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(handle_type);
        let info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .push_next(&mut external);
        // SAFETY: valid create info on a live device; the chain points at a local.
        let buffer =
            unsafe { device.create_buffer(&info, None) }.map_err(Error::vk("vkCreateBuffer"))?;
        // From here on, Drop frees whatever was made, also on the error paths below.
        let mut b = Buffer {
            dev: dev.clone(),
            buffer,
            memory: vk::DeviceMemory::null(),
            mapped: std::ptr::null_mut(),
            size,
        };
        // SAFETY: `buffer` is live.
        let reqs = unsafe { device.get_buffer_memory_requirements(buffer) };
        let props = &dev.memory_properties;
        let fits = |i: &u32| reqs.memory_type_bits & (1 << i) != 0;
        let type_index = (0..props.memory_type_count)
            .filter(fits)
            .find(|i| {
                props.memory_types[*i as usize]
                    .property_flags
                    .contains(vk::MemoryPropertyFlags::DEVICE_LOCAL)
            })
            .or_else(|| (0..props.memory_type_count).find(fits))
            .ok_or_else(|| unsupported("no memory type for an exportable buffer".into()))?;
        let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(handle_type);
        let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().buffer(buffer);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(reqs.size)
            .memory_type_index(type_index)
            .push_next(&mut export)
            .push_next(&mut dedicated);
        // SAFETY: valid chain pointing at locals; the buffer is live.
        b.memory = unsafe { device.allocate_memory(&alloc, None) }
            .map_err(Error::vk("vkAllocateMemory (DMA-BUF export)"))?;
        // SAFETY: memory and buffer are from this device; the memory covers the requirements.
        unsafe { device.bind_buffer_memory(buffer, b.memory, 0) }
            .map_err(Error::vk("vkBindBufferMemory"))?;
        let fd = super::os::export_memory(&dev.external_memory, b.memory, handle_type)?;
        Ok((b, fd))
    }

    /// The `VkBuffer`, for recording.
    pub fn raw(&self) -> vk::Buffer {
        self.buffer
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn host_on(
        dev: &SharedDevice,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        Self::new(dev, size, usage, Memory::Host)
    }

    pub(crate) fn readback_on(
        dev: &SharedDevice,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        Self::new(dev, size, usage, Memory::Readback)
    }

    pub(crate) fn device_local_on(
        dev: &SharedDevice,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        Self::new(dev, size, usage, Memory::Device)
    }

    fn new(
        dev: &SharedDevice,
        size: u64,
        usage: vk::BufferUsageFlags,
        kind: Memory,
    ) -> Result<Self> {
        let device = &dev.device;
        let info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        // SAFETY: valid create info on a live device.
        let buffer =
            unsafe { device.create_buffer(&info, None) }.map_err(Error::vk("vkCreateBuffer"))?;
        // From here on, Drop frees whatever was made, also on the error paths below.
        let mut b = Buffer {
            dev: dev.clone(),
            buffer,
            memory: vk::DeviceMemory::null(),
            mapped: std::ptr::null_mut(),
            size,
        };
        // SAFETY: `buffer` is live.
        let reqs = unsafe { device.get_buffer_memory_requirements(buffer) };
        let coherent =
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        // Memory properties in order of preference. A device without device-local memory (a
        // CPU renderer) takes any type for a device buffer (`empty()`: every type has it).
        let wanted: &[vk::MemoryPropertyFlags] = match kind {
            Memory::Device => &[
                vk::MemoryPropertyFlags::DEVICE_LOCAL,
                vk::MemoryPropertyFlags::empty(),
            ],
            Memory::Host => &[coherent],
            Memory::Readback => &[coherent | vk::MemoryPropertyFlags::HOST_CACHED, coherent],
        };
        let props = &dev.memory_properties;
        let fits = |i: &u32| reqs.memory_type_bits & (1 << i) != 0;
        let with = |flags: vk::MemoryPropertyFlags| {
            (0..props.memory_type_count).filter(fits).find(|i| {
                props.memory_types[*i as usize]
                    .property_flags
                    .contains(flags)
            })
        };
        let type_index = wanted
            .iter()
            .find_map(|&flags| with(flags))
            .ok_or_else(|| {
                Error::unsupported(
                    "buffer memory",
                    format!("no {coherent:?} memory type for a buffer"),
                )
            })?;
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(reqs.size)
            .memory_type_index(type_index);
        // SAFETY: valid allocate info.
        b.memory = unsafe { device.allocate_memory(&alloc, None) }
            .map_err(Error::vk("vkAllocateMemory"))?;
        // SAFETY: fresh objects of this device; the memory is large enough.
        unsafe { device.bind_buffer_memory(buffer, b.memory, 0) }
            .map_err(Error::vk("vkBindBufferMemory"))?;
        if kind != Memory::Device {
            // SAFETY: host-visible memory, mapped once for the buffer's lifetime.
            b.mapped = unsafe { device.map_memory(b.memory, 0, size, vk::MemoryMapFlags::empty()) }
                .map_err(Error::vk("vkMapMemory"))?
                .cast();
        }
        Ok(b)
    }

    /// `VkPhysicalDeviceExternalMemoryHostPropertiesEXT::minImportedHostPointerAlignment`
    /// (at least 4 KiB): what [`Self::import_host`] needs of its pointer and size. Only for a
    /// device that offers `VK_EXT_external_memory_host`.
    pub(crate) fn host_pointer_alignment(dev: &SharedDevice) -> u64 {
        let mut host = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
        let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut host);
        // SAFETY: `physical` belongs to `instance`; the chained struct is the extension's,
        // which the device offers (the caller's precondition).
        unsafe {
            dev.instance
                .get_physical_device_properties2(dev.physical, &mut props)
        };
        host.min_imported_host_pointer_alignment.max(4096)
    }

    /// A buffer over `size` bytes of host memory at `ptr`, imported with
    /// `VK_EXT_external_memory_host` (the device never copies it: its GPU reads and writes
    /// that memory). [`Self::bytes`] reads it.
    ///
    /// # Safety
    /// `ptr` must be aligned to the device's `minImportedHostPointerAlignment`, `size` a
    /// multiple of it, and the memory must stay allocated until this buffer is dropped.
    pub(crate) unsafe fn import_host(
        dev: &SharedDevice,
        ptr: *mut u8,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        let handle_type = vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT;
        let fns = ash::ext::external_memory_host::Device::new(&dev.instance, &dev.device);
        let mut host_props = vk::MemoryHostPointerPropertiesEXT::default();
        // SAFETY: the extension is enabled (checked by the caller); `ptr` is a host
        // allocation per this function's contract.
        unsafe {
            (fns.fp().get_memory_host_pointer_properties_ext)(
                dev.device.handle(),
                handle_type,
                ptr.cast(),
                &mut host_props,
            )
        }
        .result()
        .map_err(Error::vk("vkGetMemoryHostPointerPropertiesEXT"))?;
        let device = &dev.device;
        let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(handle_type);
        let info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .push_next(&mut external);
        // SAFETY: valid create info on a live device; the chain points at a local.
        let buffer =
            unsafe { device.create_buffer(&info, None) }.map_err(Error::vk("vkCreateBuffer"))?;
        let mut b = Buffer {
            dev: dev.clone(),
            buffer,
            memory: vk::DeviceMemory::null(),
            mapped: ptr,
            size,
        };
        // SAFETY: `buffer` was just created on this device.
        let reqs = unsafe { device.get_buffer_memory_requirements(buffer) };
        let props = &dev.memory_properties;
        let bits = reqs.memory_type_bits & host_props.memory_type_bits;
        let fits = |i: &u32| bits & (1 << i) != 0;
        let coherent =
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let type_index = (0..props.memory_type_count)
            .filter(fits)
            .find(|i| {
                props.memory_types[*i as usize]
                    .property_flags
                    .contains(coherent)
            })
            .or_else(|| (0..props.memory_type_count).find(fits))
            .ok_or_else(|| {
                Error::unsupported(
                    "host memory import",
                    format!(
                        "{} offers no memory type for this host allocation",
                        dev.identity.name
                    ),
                )
            })?;
        if reqs.size > size {
            return Err(Error::unsupported(
                "host memory import",
                format!(
                    "the buffer needs {} bytes, the allocation has {size}",
                    reqs.size
                ),
            ));
        }
        let mut import = vk::ImportMemoryHostPointerInfoEXT::default()
            .handle_type(handle_type)
            .host_pointer(ptr.cast());
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(size)
            .memory_type_index(type_index)
            .push_next(&mut import);
        // SAFETY: the pointer and size satisfy this function's contract; on error `b` drops
        // and destroys the buffer.
        b.memory = unsafe { device.allocate_memory(&alloc, None) }
            .map_err(Error::vk("vkAllocateMemory (host pointer import)"))?;
        // SAFETY: memory and buffer are from this device; the memory is large enough.
        unsafe { device.bind_buffer_memory(buffer, b.memory, 0) }
            .map_err(Error::vk("vkBindBufferMemory"))?;
        Ok(b)
    }

    /// A whole-buffer memory barrier from `src` to `dst` accesses, no ownership transfer.
    pub fn barrier(
        &self,
        src: vk::AccessFlags,
        dst: vk::AccessFlags,
    ) -> vk::BufferMemoryBarrier<'static> {
        vk::BufferMemoryBarrier::default()
            .buffer(self.buffer)
            .size(vk::WHOLE_SIZE)
            .src_access_mask(src)
            .dst_access_mask(dst)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
    }

    /// The mapped bytes (empty for a device-local buffer). Read them after the GPU work that
    /// wrote them has finished.
    pub fn bytes(&self) -> &[u8] {
        if self.mapped.is_null() {
            return &[];
        }
        // SAFETY: `mapped` covers `size` bytes for the buffer's lifetime.
        unsafe { std::slice::from_raw_parts(self.mapped, self.size as usize) }
    }

    /// The mapped bytes, writable (empty for a device-local buffer).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if self.mapped.is_null() {
            return &mut [];
        }
        // SAFETY: as above, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.mapped, self.size as usize) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: owners wait for their submissions before dropping; the handles are ours and
        // freeing memory unmaps it.
        unsafe {
            self.dev.device.destroy_buffer(self.buffer, None);
            if self.memory != vk::DeviceMemory::null() {
                self.dev.device.free_memory(self.memory, None);
            }
        }
    }
}
