//! Moving texels between two devices that cannot share memory (different drivers or GPUs):
//! [`CrossDeviceTransfer`] copies a texture on one device into a texture on another through
//! the fastest path both offer, chosen by [`TransferPath::between`]:
//!
//! - [`TransferPath::HostMemory`]: one page-aligned host allocation imported into **both**
//!   devices with `VK_EXT_external_memory_host`. The source GPU copies the image into it, the
//!   destination GPU copies it into its image: GPU → host-visible memory → GPU, no CPU copy.
//! - [`TransferPath::CpuCopy`]: each device copies to/from its own host-visible staging buffer
//!   and the CPU copies between them (the fallback, and the baseline the other is measured
//!   against).
//!
//! Two devices of different drivers share no semaphore, so the handoff is host-synchronized:
//! the source's copy is waited for on its fence before the destination's copy is submitted.

use std::alloc::Layout;
use std::time::{Duration, Instant};

use ash::vk;

use super::buffer::Buffer;
use super::caps::DeviceCaps;
use super::image::VulkanTexture;
use super::manager::VulkanTextureShareManager;
use super::submit::Submitter;
use super::transfer::{aspect_size, copy, CopyDirection};
use crate::common::{TextureAspect, TextureDescriptor, TextureUsage};
use crate::{Error, Result, SharedTexture};

/// How texels get from one device to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum TransferPath {
    /// Same device and driver: share the memory itself (export/import), no copy at all.
    Direct,
    /// Host memory imported into both devices: two GPU copies, no CPU copy.
    HostMemory,
    /// Two GPU copies to/from staging buffers and a CPU copy between them.
    CpuCopy,
    /// One GPU-to-GPU copy over NVLink or PCIe peer-to-peer, through CUDA (feature `cuda`:
    /// `geyser::cuda::PeerTransfer` in-process, peer rings across processes), between CUDA
    /// devices with peer access. [`Self::between`] never picks it (this layer knows no CUDA):
    /// `geyser::cuda::transfer_path_between` does.
    Peer,
    /// Different drivers or devices, but the source exports DMA-BUFs and the destination
    /// imports them: the memory itself is shared (no copy), laid out LINEAR or by a DRM format
    /// modifier both sides support (`TextureMemory::DmaBuf`, `VulkanTextureShareManager::
    /// import_dma_buf`). Host-synchronized (no common semaphore).
    DmaBuf,
}

impl std::fmt::Display for TransferPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransferPath::Direct => "direct (shared memory, no copy)",
            TransferPath::HostMemory => {
                "host memory imported on both devices (GPU copies, no CPU copy)"
            }
            TransferPath::CpuCopy => "CPU copy between staging buffers",
            TransferPath::Peer => "peer-to-peer GPU copy through CUDA (NVLink or PCIe)",
            TransferPath::DmaBuf => "DMA-BUF (shared memory across drivers, no copy)",
        })
    }
}

impl TransferPath {
    /// The best path from device `a` to device `b`: [`Self::Direct`] when they share memory
    /// (same device and driver UUID); else [`Self::DmaBuf`] when DMA-BUF is the handle type
    /// they have in common (`a` exports DMA-BUFs, `b` imports them); else
    /// [`Self::HostMemory`] when both import host memory; else [`Self::CpuCopy`].
    pub fn between(a: &DeviceCaps, b: &DeviceCaps) -> Self {
        if a.identity.device_uuid == b.identity.device_uuid
            && a.identity.driver_uuid == b.identity.driver_uuid
        {
            TransferPath::Direct
        } else if a.dma_buf.export && b.dma_buf.import {
            TransferPath::DmaBuf
        } else {
            Self::best_copy(a, b)
        }
    }

    /// The best copying path (never [`Self::Direct`]).
    pub fn best_copy(a: &DeviceCaps, b: &DeviceCaps) -> Self {
        if a.external_memory_host && b.external_memory_host {
            TransferPath::HostMemory
        } else {
            TransferPath::CpuCopy
        }
    }
}

/// Where the time of one [`CrossDeviceTransfer::transfer`] went.
#[derive(Clone, Copy, Debug, Default)]
pub struct TransferTiming {
    /// Source GPU copy into the shared (or staging) memory, including its fence wait.
    pub download: Duration,
    /// CPU copy between staging buffers ([`TransferPath::CpuCopy`] only).
    pub cpu_copy: Duration,
    /// Destination GPU copy out of it, including its fence wait.
    pub upload: Duration,
}

impl TransferTiming {
    /// The whole transfer.
    pub fn total(&self) -> Duration {
        self.download + self.cpu_copy + self.upload
    }
}

/// A page-aligned host allocation, freed on drop (after the buffers imported from it).
struct HostAllocation {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the allocation is plain memory; it is only accessed by the GPUs through the imported
// buffers, whose submissions are waited for, and freed once.
unsafe impl Send for HostAllocation {}
// SAFETY: as above.
unsafe impl Sync for HostAllocation {}

impl HostAllocation {
    fn new(size: u64, align: u64) -> Result<Self> {
        let layout = usize::try_from(size)
            .ok()
            .and_then(|s| Layout::from_size_align(s, align as usize).ok())
            .ok_or(Error::InvalidArgument {
                what: "transfer size",
                reason: format!("{size} bytes aligned to {align} is not a valid allocation"),
            })?;
        // SAFETY: the layout has a non-zero size (the caller rounds a non-empty texture up).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(Error::Io(std::io::Error::from(
                std::io::ErrorKind::OutOfMemory,
            )));
        }
        Ok(Self { ptr, layout })
    }
}

impl Drop for HostAllocation {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// Copies textures of one descriptor from a device to another that cannot import its memory.
/// Reusable frame after frame without allocating.
pub struct CrossDeviceTransfer {
    path: TransferPath,
    src_submit: Submitter,
    dst_submit: Submitter,
    src_buffer: Buffer,
    dst_buffer: Buffer,
    /// Declared after the buffers: freed after them.
    _host: Option<HostAllocation>,
    desc: TextureDescriptor,
}

impl std::fmt::Debug for CrossDeviceTransfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossDeviceTransfer")
            .field("path", &self.path)
            .field("bytes", &self.src_buffer.size)
            .finish()
    }
}

impl CrossDeviceTransfer {
    /// A transfer for textures like `desc` from `src`'s device to `dst`'s, on the best
    /// copying path both devices offer ([`TransferPath::best_copy`]).
    pub fn new(
        src: &VulkanTextureShareManager,
        dst: &VulkanTextureShareManager,
        desc: &TextureDescriptor,
    ) -> Result<Self> {
        let path = TransferPath::best_copy(src.caps()?, dst.caps()?);
        Self::with_path(src, dst, desc, path)
    }

    /// A transfer on a given path ([`Error::Unsupported`] if a device lacks what it needs;
    /// [`TransferPath::Direct`] is not a copy: export and import instead).
    pub fn with_path(
        src: &VulkanTextureShareManager,
        dst: &VulkanTextureShareManager,
        desc: &TextureDescriptor,
        path: TransferPath,
    ) -> Result<Self> {
        desc.validate()?;
        for (usage, side) in [
            (TextureUsage::CopySrc, "source"),
            (TextureUsage::CopyDst, "destination"),
        ] {
            if !desc.has_usage(usage) {
                return Err(Error::InvalidArgument {
                    what: "texture usage",
                    reason: format!("a cross-device transfer needs TextureUsage::{usage:?} on the {side} texture"),
                });
            }
        }
        // The largest aspect, tightly packed (aspects are copied one after the other).
        let size = TextureAspect::all_of(desc.format)
            .iter()
            .map(|a| {
                u64::from(desc.width)
                    * u64::from(desc.height)
                    * u64::from(desc.format.aspect_copy_bytes(*a))
            })
            .max()
            .unwrap_or(0);
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let (src_dev, dst_dev) = (&src.dev, &dst.dev);
        let (src_buffer, dst_buffer, host) = match path {
            TransferPath::Direct | TransferPath::DmaBuf => {
                return Err(Error::InvalidArgument {
                    what: "transfer path",
                    reason: format!(
                    "{path:?} needs no copy: export the texture and import it on the other device"
                ),
                })
            }
            TransferPath::HostMemory => {
                for (m, side) in [(src, "source"), (dst, "destination")] {
                    if !m.caps()?.external_memory_host || !m.dev.external_memory_host_enabled() {
                        return Err(Error::unsupported(
                            "VK_EXT_external_memory_host",
                            format!(
                                "the {side} device ({}) cannot import host memory",
                                m.identity().name
                            ),
                        ));
                    }
                }
                let align = Buffer::host_pointer_alignment(src_dev)
                    .max(Buffer::host_pointer_alignment(dst_dev));
                let rounded = size.div_ceil(align) * align;
                let host = HostAllocation::new(rounded, align)?;
                // SAFETY: `host` is a live, `align`-aligned allocation of `rounded` bytes, and
                // outlives both buffers (field order of `Self`).
                let (s, d) = unsafe {
                    (
                        Buffer::import_host(src_dev, host.ptr, rounded, usage)?,
                        Buffer::import_host(dst_dev, host.ptr, rounded, usage)?,
                    )
                };
                (s, d, Some(host))
            }
            TransferPath::CpuCopy => (
                Buffer::readback_on(src_dev, size, usage)?,
                Buffer::host_on(dst_dev, size, usage)?,
                None,
            ),
            TransferPath::Peer => {
                return Err(Error::InvalidArgument {
                    what: "transfer path",
                    reason:
                        "peer copies go through CUDA: use geyser::cuda::PeerTransfer (feature cuda)"
                            .into(),
                })
            }
        };
        Ok(Self {
            path,
            src_submit: Submitter::on_device(src_dev, 1)?,
            dst_submit: Submitter::on_device(dst_dev, 1)?,
            src_buffer,
            dst_buffer,
            _host: host,
            desc: desc.clone(),
        })
    }

    /// The path this transfer uses.
    pub fn path(&self) -> TransferPath {
        self.path
    }

    /// Copies every aspect of `src` (on the source device) into `dst` (on the destination
    /// device). Both must have this transfer's descriptor (one layer, one mip). Blocks until
    /// the destination's copy is done; `dst` is then released to `VK_QUEUE_FAMILY_EXTERNAL`
    /// with the texels.
    pub fn transfer(&mut self, src: &VulkanTexture, dst: &VulkanTexture) -> Result<TransferTiming> {
        for (t, dev, side) in [
            (src, &self.src_submit.dev, "source"),
            (dst, &self.dst_submit.dev, "destination"),
        ] {
            t.descriptor().check_matches(&self.desc)?;
            if !std::sync::Arc::ptr_eq(&t.inner.dev, dev) {
                return Err(Error::WrongTexture(format!(
                    "the {side} texture belongs to another device"
                )));
            }
            if t.extent().depth_or_array_layers != 1 || t.extent().mip_level_count != 1 {
                return Err(Error::InvalidArgument {
                    what: "texture extent",
                    reason: "cross-device transfers copy single-layer, single-mip textures".into(),
                });
            }
        }
        let mut timing = TransferTiming::default();
        for aspect in TextureAspect::all_of(self.desc.format) {
            let bytes = aspect_size(src, *aspect) as usize;
            let t0 = Instant::now();
            copy(
                &self.src_submit,
                src,
                *aspect,
                &self.src_buffer,
                CopyDirection::Download,
            )?;
            let t1 = Instant::now();
            if self.path == TransferPath::CpuCopy {
                let from = &self.src_buffer.bytes()[..bytes];
                self.dst_buffer.bytes_mut()[..bytes].copy_from_slice(from);
            }
            let t2 = Instant::now();
            copy(
                &self.dst_submit,
                dst,
                *aspect,
                &self.dst_buffer,
                CopyDirection::Upload,
            )?;
            let t3 = Instant::now();
            timing.download += t1 - t0;
            timing.cpu_copy += t2 - t1;
            timing.upload += t3 - t2;
        }
        Ok(timing)
    }
}
