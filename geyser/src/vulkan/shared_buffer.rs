//! [`SharedBuffer`]: a buffer with its own dedicated memory that is exported (opaque FD; an
//! NT handle on Windows) and imported into another context, process or API: the linear frames
//! of `ipc`, which CUDA maps as a device pointer and DLPack tensors address.

use ash::vk;

use super::buffer::Buffer;
use super::device::SharedDevice;
use super::manager::VulkanTextureShareManager;
use super::os;
use crate::common::OwnedOsHandle;
use crate::{Error, Result};

/// A buffer whose memory can be shared: dedicated, exportable as this platform's opaque
/// handle, persistently mapped when its memory type is host-visible.
#[derive(Debug)]
pub struct SharedBuffer {
    buffer: Buffer,
    allocation_size: u64,
    memory_type_index: u32,
}

fn handle_type() -> vk::ExternalMemoryHandleTypeFlags {
    crate::vulkan::conv::memory_handle_type(os::NATIVE_MEMORY)
}

/// Creates the `VkBuffer` with external-memory info chained.
fn create_buffer(dev: &SharedDevice, size: u64, usage: vk::BufferUsageFlags) -> Result<Buffer> {
    let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(handle_type());
    let info = vk::BufferCreateInfo::default()
        .size(size)
        .usage(usage)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .push_next(&mut external);
    // SAFETY: valid create info on a live device; the chain points at a local.
    let buffer =
        unsafe { dev.device.create_buffer(&info, None) }.map_err(Error::vk("vkCreateBuffer"))?;
    // Drop frees what is made from here on, also on the error paths of the callers.
    Ok(Buffer {
        dev: dev.clone(),
        buffer,
        memory: vk::DeviceMemory::null(),
        mapped: std::ptr::null_mut(),
        size,
    })
}

/// Binds `memory` to the buffer and maps it when it is host-visible.
fn bind(buffer: &mut Buffer, memory: vk::DeviceMemory, type_index: u32) -> Result<()> {
    buffer.memory = memory;
    let dev = buffer.dev.clone();
    // SAFETY: buffer and memory are of this device; the memory covers the buffer's
    // requirements (callers allocate or check that many bytes).
    unsafe { dev.device.bind_buffer_memory(buffer.buffer, memory, 0) }
        .map_err(Error::vk("vkBindBufferMemory"))?;
    let flags = dev.memory_properties.memory_types[type_index as usize].property_flags;
    if flags
        .contains(vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT)
    {
        // SAFETY: host-visible memory, mapped once for the buffer's lifetime (freeing the
        // memory unmaps it).
        buffer.mapped = unsafe {
            dev.device
                .map_memory(memory, 0, buffer.size, vk::MemoryMapFlags::empty())
        }
        .map_err(Error::vk("vkMapMemory"))?
        .cast();
    }
    Ok(())
}

impl SharedBuffer {
    /// An exportable buffer of `size` bytes on `manager`'s device (device-local memory where
    /// there is some). [`Error::Unsupported`] when the device cannot export buffers with
    /// these usages.
    pub fn new(
        manager: &VulkanTextureShareManager,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        Self::new_on(&manager.dev, size, usage)
    }

    pub(crate) fn new_on(
        dev: &SharedDevice,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        check_support(dev, usage)?;
        let mut b = create_buffer(dev, size, usage)?;
        let mut dedicated_reqs = vk::MemoryDedicatedRequirements::default();
        let mut reqs2 = vk::MemoryRequirements2::default().push_next(&mut dedicated_reqs);
        let info = vk::BufferMemoryRequirementsInfo2::default().buffer(b.buffer);
        // SAFETY: a live buffer of this device.
        unsafe {
            dev.device
                .get_buffer_memory_requirements2(&info, &mut reqs2)
        };
        let reqs = reqs2.memory_requirements;
        let props = &dev.memory_properties;
        let fits = |i: &u32| reqs.memory_type_bits & (1 << i) != 0;
        let device_local = |i: &u32| {
            props.memory_types[*i as usize]
                .property_flags
                .contains(vk::MemoryPropertyFlags::DEVICE_LOCAL)
        };
        let type_index = (0..props.memory_type_count)
            .filter(fits)
            .find(device_local)
            .or_else(|| (0..props.memory_type_count).find(fits))
            .ok_or_else(|| {
                Error::unsupported("shared buffer memory", "no memory type fits the buffer")
            })?;
        let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(handle_type());
        let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().buffer(b.buffer);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(reqs.size)
            .memory_type_index(type_index)
            .push_next(&mut export)
            .push_next(&mut dedicated);
        // SAFETY: valid chain pointing at locals; the buffer is live.
        let memory = unsafe { dev.device.allocate_memory(&alloc, None) }
            .map_err(Error::vk("vkAllocateMemory (exportable buffer)"))?;
        bind(&mut b, memory, type_index)?;
        Ok(Self {
            buffer: b,
            allocation_size: reqs.size,
            memory_type_index: type_index,
        })
    }

    /// Imports a buffer another context exported ([`Self::export`]): `size` bytes of buffer
    /// over an allocation of `allocation_size` bytes of memory type `memory_type_index`, on
    /// the same GPU and driver (the caller checks the exporter's UUIDs). The FD is consumed.
    #[cfg(unix)]
    pub fn import(
        manager: &VulkanTextureShareManager,
        fd: OwnedOsHandle,
        size: u64,
        allocation_size: u64,
        memory_type_index: u32,
        usage: vk::BufferUsageFlags,
    ) -> Result<Self> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let dev = &manager.dev;
        check_support(dev, usage)?;
        if memory_type_index >= dev.memory_properties.memory_type_count {
            return Err(Error::InvalidArgument {
                what: "shared buffer",
                reason: format!("memory type {memory_type_index} does not exist on this device"),
            });
        }
        let mut b = create_buffer(dev, size, usage)?;
        // SAFETY: a live buffer of this device.
        let reqs = unsafe { dev.device.get_buffer_memory_requirements(b.buffer) };
        if reqs.size > allocation_size || reqs.memory_type_bits & (1 << memory_type_index) == 0 {
            return Err(Error::InvalidArgument {
                what: "shared buffer",
                reason: format!(
                    "a {size}-byte buffer needs {} bytes of memory types {:#b}; the export has {allocation_size} bytes of type {memory_type_index}",
                    reqs.size, reqs.memory_type_bits
                ),
            });
        }
        let raw = fd.into_raw_fd();
        let mut import = vk::ImportMemoryFdInfoKHR::default()
            .handle_type(handle_type())
            .fd(raw);
        let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().buffer(b.buffer);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(allocation_size)
            .memory_type_index(memory_type_index)
            .push_next(&mut import)
            .push_next(&mut dedicated);
        // SAFETY: valid chain pointing at locals; `raw` is an FD we own of the declared type.
        let memory = match unsafe { dev.device.allocate_memory(&alloc, None) } {
            Ok(m) => m,
            Err(e) => {
                // SAFETY: a failed import leaves the FD with us: close it.
                drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) });
                return Err(Error::vk("vkAllocateMemory (buffer import)")(e));
            }
        };
        bind(&mut b, memory, memory_type_index)?;
        Ok(Self {
            buffer: b,
            allocation_size,
            memory_type_index,
        })
    }

    /// A new OS handle for its memory (send it to a peer, which imports it once).
    pub fn export(&self) -> Result<OwnedOsHandle> {
        os::export_memory(
            &self.buffer.dev.external_memory,
            self.buffer.memory,
            handle_type(),
        )
    }

    /// The buffer (record copies with it; [`Buffer::bytes`] reads it when host-visible).
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// Bytes of the dedicated allocation (what an importer allocates).
    pub fn allocation_size(&self) -> u64 {
        self.allocation_size
    }

    /// Memory type index of the allocation (opaque handles import with the same one).
    pub fn memory_type_index(&self) -> u32 {
        self.memory_type_index
    }
}

/// Whether the device exports and imports buffers with these usages as opaque handles.
fn check_support(dev: &SharedDevice, usage: vk::BufferUsageFlags) -> Result<()> {
    let info = vk::PhysicalDeviceExternalBufferInfo::default()
        .usage(usage)
        .handle_type(handle_type());
    let mut props = vk::ExternalBufferProperties::default();
    // SAFETY: `physical` belongs to `instance` (Vulkan 1.1 core query).
    unsafe {
        dev.instance
            .get_physical_device_external_buffer_properties(dev.physical, &info, &mut props)
    };
    let features = props.external_memory_properties.external_memory_features;
    let needed =
        vk::ExternalMemoryFeatureFlags::EXPORTABLE | vk::ExternalMemoryFeatureFlags::IMPORTABLE;
    if !features.contains(needed) {
        return Err(Error::unsupported(
            format!(
                "shared buffers ({:?}) with usage {usage:?}",
                os::NATIVE_MEMORY
            ),
            format!(
                "{} reports external memory features {features:?} for such buffers",
                dev.identity.name
            ),
        ));
    }
    Ok(())
}
