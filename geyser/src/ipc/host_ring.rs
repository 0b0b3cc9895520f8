//! The host ring for consumers on another device (another GPU or driver, which cannot
//! import the producer's memory): a [`SharedRegion`] (a sealed memfd on Unix, a section on
//! Windows) mapped by the producer and each such consumer, and imported into each side's own
//! device with `VK_EXT_external_memory_host`. The producer's GPU
//! copies a frame into its slot region, the consumer's GPU copies it out into its own texture:
//! no CPU copy. Where a device cannot import the mapping, that side falls back to a CPU copy
//! between the mapping and a staging buffer of its own ([`TransferPath::CpuCopy`]; the
//! environment variable `GEYSER_TRANSFER=cpu` forces it).
//!
//! A slot region holds the whole frame in its [`TextureLayout`]: every aspect (depth and
//! stencil apart), mip level and layer or depth slice, so arrays, cube maps, 3D textures, mip
//! chains and depth/stencil frames travel like plain colour ones (multisampled ones cannot:
//! Vulkan does not copy them to buffers).
//!
//! The handoff is host-synchronized (devices of different drivers share no semaphore): the
//! producer waits for its copy before announcing the frame, the consumer waits for its copy
//! before handing the frame out.

use ash::vk;

use super::transport::shm::SharedRegion;
use crate::common::{ExportInfo, OwnedOsHandle, TextureExtent, TextureFormat, TextureLayout};
use crate::vulkan::transfer::{copy_packed, CopyDirection};
use crate::vulkan::{Buffer, Submitter};
use crate::vulkan::{TransferPath, VulkanTexture, VulkanTextureShareManager};
use crate::{Error, Result};

/// Slot regions are multiples of this (≥ any `minImportedHostPointerAlignment` seen: 4 KiB;
/// a device that needs more, or a mapping that starts less aligned, takes the CPU copy).
const SLOT_ALIGN: u64 = 64 * 1024;

/// One side's view of the ring: per slot, a buffer its device copies to or from.
pub(crate) struct HostRing {
    path: TransferPath,
    submit: Submitter,
    /// HostMemory: buffers over the mapping's slot regions. CpuCopy: own staging buffers.
    buffers: Vec<Buffer>,
    /// Declared after the buffers, so the mapping outlives the imported ones.
    region: SharedRegion,
    slot_bytes: u64,
    frame_bytes: usize,
    /// Where each subresource sits in a slot (computed once: the copies run every frame).
    layout: TextureLayout,
    /// The frames' size, format and extent.
    shape: (u32, u32, TextureFormat, TextureExtent),
}

impl std::fmt::Debug for HostRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostRing")
            .field("path", &self.path)
            .field("slots", &self.buffers.len())
            .field("slot_bytes", &self.slot_bytes)
            .finish()
    }
}

impl HostRing {
    /// Bytes of one frame like `info` in its packed layout (every aspect, level and layer).
    pub(crate) fn frame_bytes(info: &ExportInfo) -> u64 {
        TextureLayout::new(&info.descriptor, &info.extent).size()
    }

    /// Bytes per slot region for frames like `info`.
    pub(crate) fn slot_bytes(info: &ExportInfo) -> u64 {
        Self::frame_bytes(info).div_ceil(SLOT_ALIGN) * SLOT_ALIGN
    }

    /// Checks that frames like `info` can travel through a host ring: any format, layers,
    /// levels and dimension, one sample (Vulkan copies no multisampled image to a buffer).
    pub(crate) fn check(info: &ExportInfo) -> Result<()> {
        let d = &info.descriptor;
        if info.extent.sample_count != 1 {
            return Err(Error::unsupported(
                format!(
                    "{}-sample {} frames for a consumer on another device",
                    info.extent.sample_count, d.format
                ),
                "the host ring copies frames through buffers, and Vulkan copies no multisampled \
                 image to a buffer; resolve to a single-sample texture and share that",
            ));
        }
        Ok(())
    }

    /// The producer's ring: a new shared region of `slots` slot regions for frames like
    /// `info` (checked by [`Self::open`]).
    pub(crate) fn create(
        manager: &VulkanTextureShareManager,
        info: &ExportInfo,
        slots: usize,
    ) -> Result<Self> {
        Self::check(info)?;
        let slot_bytes = Self::slot_bytes(info);
        let len = Self::ring_len(slots, slot_bytes)?;
        let region = SharedRegion::create("geyser-host-ring", len)?;
        Self::with_region(manager, region, info, slots, slot_bytes)
    }

    /// Maps the ring a producer sent (see [`SharedRegion::open`] for what is refused) and
    /// makes this device's buffers for it (host-memory import, or staging buffers when the
    /// device cannot import the mapping).
    pub(crate) fn open(
        manager: &VulkanTextureShareManager,
        handle: OwnedOsHandle,
        info: &ExportInfo,
        slots: usize,
        slot_bytes: u64,
    ) -> Result<Self> {
        Self::check(info)?;
        if slot_bytes < Self::frame_bytes(info) || !slot_bytes.is_multiple_of(SLOT_ALIGN) {
            return Err(Error::Protocol(format!(
                "host ring slots of {slot_bytes} bytes for {}-byte frames",
                Self::frame_bytes(info)
            )));
        }
        let region = SharedRegion::open(handle, Self::ring_len(slots, slot_bytes)?)?;
        Self::with_region(manager, region, info, slots, slot_bytes)
    }

    fn ring_len(slots: usize, slot_bytes: u64) -> Result<usize> {
        slot_bytes
            .checked_mul(slots as u64)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| Error::Protocol("host ring size overflows".into()))
    }

    fn with_region(
        manager: &VulkanTextureShareManager,
        region: SharedRegion,
        info: &ExportInfo,
        slots: usize,
        slot_bytes: u64,
    ) -> Result<Self> {
        let frame_bytes = Self::frame_bytes(info) as usize;
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let dev = &manager.dev;
        // `GEYSER_TRANSFER=cpu` forces the CPU-copy fallback (to test it, or to compare).
        let forced_cpu = std::env::var("GEYSER_TRANSFER").is_ok_and(|v| v == "cpu");
        let can_import = !forced_cpu
            && manager.caps()?.external_memory_host
            && dev.external_memory_host_enabled();
        // Slot regions start at the mapping plus multiples of `slot_bytes`: the device's import
        // alignment must divide both.
        let aligned = |align: u64| {
            (region.as_ptr() as usize as u64).is_multiple_of(align)
                && slot_bytes.is_multiple_of(align)
        };
        let imported: Result<Vec<Buffer>> = if !can_import {
            Err(Error::unsupported(
                "VK_EXT_external_memory_host",
                "not enabled on this device",
            ))
        } else if !aligned(Buffer::host_pointer_alignment(dev)) {
            Err(Error::unsupported(
                "importing the host ring",
                format!(
                    "the device needs {}-byte aligned host pointers",
                    Buffer::host_pointer_alignment(dev)
                ),
            ))
        } else {
            (0..slots)
                .map(|s| {
                    // SAFETY: each slot region is aligned to the device's import alignment
                    // (checked above), `slot_bytes` long (a multiple of that alignment),
                    // inside the mapping (its length is `slots * slot_bytes`), and `region`
                    // outlives the buffers (field order of `Self`).
                    unsafe {
                        Buffer::import_host(
                            dev,
                            region.as_ptr().add(s * slot_bytes as usize),
                            slot_bytes,
                            usage,
                        )
                    }
                })
                .collect()
        };
        let (path, buffers) = match imported {
            Ok(b) => (TransferPath::HostMemory, b),
            Err(e) => {
                tracing::info!(
                    "host ring: importing the mapping failed ({e}); copying through the CPU"
                );
                let b: Result<Vec<Buffer>> = (0..slots)
                    .map(|_| Buffer::readback_on(dev, frame_bytes as u64, usage))
                    .collect();
                (TransferPath::CpuCopy, b?)
            }
        };
        Ok(Self {
            path,
            submit: Submitter::on_device(dev, 1)?,
            buffers,
            region,
            slot_bytes,
            frame_bytes,
            layout: TextureLayout::new(&info.descriptor, &info.extent),
            shape: (
                info.descriptor.width,
                info.descriptor.height,
                info.descriptor.format,
                info.extent,
            ),
        })
    }

    /// How this side moves frames.
    pub(crate) fn path(&self) -> TransferPath {
        self.path
    }

    /// The region's OS handle, for sending to a consumer.
    pub(crate) fn handle(&self) -> &OwnedOsHandle {
        self.region.handle()
    }

    /// Bytes per slot region.
    pub(crate) fn region_bytes(&self) -> u64 {
        self.slot_bytes
    }

    /// Producer: copies `texture` into slot `slot` and waits for it.
    pub(crate) fn download(&mut self, slot: usize, texture: &VulkanTexture) -> Result<()> {
        let buffer = self
            .buffers
            .get(slot)
            .ok_or_else(|| Error::Protocol(format!("host ring has no slot {slot}")))?;
        copy_packed(
            &self.submit,
            texture,
            &self.layout,
            buffer,
            CopyDirection::Download,
        )?;
        if self.path == TransferPath::CpuCopy {
            let n = self.frame_bytes;
            let src = &self.buffers[slot].bytes()[..n];
            self.region.slot(slot, self.slot_bytes as usize)[..n].copy_from_slice(src);
        }
        Ok(())
    }

    /// Consumer: copies slot `slot` into `texture` and waits for it.
    pub(crate) fn upload(&mut self, slot: usize, texture: &VulkanTexture) -> Result<()> {
        if slot >= self.buffers.len() {
            return Err(Error::Protocol(format!("host ring has no slot {slot}")));
        }
        let info = texture.export_info();
        let d = &info.descriptor;
        if (d.width, d.height, d.format, info.extent) != self.shape {
            return Err(Error::WrongTexture(
                "the texture is not a frame of this host ring".into(),
            ));
        }
        if self.path == TransferPath::CpuCopy {
            let n = self.frame_bytes;
            let region = self.region.slot(slot, self.slot_bytes as usize);
            self.buffers[slot].bytes_mut()[..n].copy_from_slice(&region[..n]);
        }
        copy_packed(
            &self.submit,
            texture,
            &self.layout,
            &self.buffers[slot],
            CopyDirection::Upload,
        )
    }
}
