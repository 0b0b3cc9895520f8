//! One GPU copy between a shared texture and a GStreamer buffer. When the device imports host
//! memory (`VK_EXT_external_memory_host`) and the buffer's memory is aligned for it, the GPU
//! copies straight into (or out of) that memory; otherwise through a staging buffer, with one
//! CPU copy more. System memory stays imported for the memory's life (attached to it as
//! qdata, freed with it), so a pool's buffers are imported once; other memory (a PipeWire
//! memfd mapped per use) is imported for the one copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use geyser::vulkan::ash::vk;
use geyser::vulkan::{
    record_copy, Buffer, CopyDirection, Submitter, TimelinePoint, VulkanTexture,
    VulkanTextureShareManager, SUBMIT_TIMEOUT,
};
use geyser::{Error, Result};
use gst::glib;
use gst::glib::translate::IntoGlib;

/// Where plane 0 of a frame lies in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plane {
    /// Bytes from the buffer's start.
    pub offset: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Texels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bytes per texel.
    pub texel_bytes: u32,
}

impl Plane {
    /// Plane 0 of `buffer` as its video meta says, else as `info` says.
    pub fn of(buffer: &gst::BufferRef, info: &gst_video::VideoInfo) -> Plane {
        let (offset, stride) = match buffer.meta::<gst_video::VideoMeta>() {
            Some(meta) => (meta.offset()[0], meta.stride()[0]),
            None => (info.offset()[0], info.stride()[0]),
        };
        Plane {
            offset,
            stride: stride.max(0) as usize,
            width: info.width(),
            height: info.height(),
            texel_bytes: info.format_info().pixel_stride()[0].max(1) as u32,
        }
    }

    fn row_bytes(&self) -> usize {
        self.width as usize * self.texel_bytes as usize
    }

    /// The last byte the plane covers, plus one.
    fn end(&self) -> usize {
        match self.height {
            0 => self.offset,
            h => self.offset + (h as usize - 1) * self.stride + self.row_bytes(),
        }
    }

    /// Whether Vulkan can copy this layout in one region (offset and stride in whole texels).
    fn copyable(&self) -> bool {
        let tb = self.texel_bytes as usize;
        self.offset.is_multiple_of(tb)
            && self.stride.is_multiple_of(tb)
            && self.stride >= self.row_bytes()
    }
}

/// How a copy went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CopyPath {
    /// The GPU copied straight to or from the buffer's memory.
    Direct,
    /// Through the staging buffer and one CPU copy.
    Staged,
}

/// Counts of copies by path, and of host-memory imports made.
#[derive(Debug, Default)]
pub(crate) struct CopyCounts {
    pub direct: AtomicU64,
    pub staged: AtomicU64,
    pub imports: AtomicU64,
}

/// An import of one system memory, kept as that memory's qdata.
struct CachedImport {
    buffer: Buffer,
    ptr: usize,
    size: u64,
}

static NEXT_QUARK: AtomicU64 = AtomicU64::new(0);

/// Copies frames between textures of one device and GStreamer buffers.
pub(crate) struct HostCopier {
    manager: Arc<VulkanTextureShareManager>,
    submit: Submitter,
    /// `minImportedHostPointerAlignment`, when the device imports host memory.
    align: Option<u64>,
    /// The qdata key of this copier's imports (one per copier: imports are per device).
    quark: glib::Quark,
    staging: Option<Buffer>,
    counts: Arc<CopyCounts>,
}

/// The buffer the GPU copies to or from.
enum View {
    /// An import that outlives the copy (kept as the memory's qdata while the caller holds
    /// the mapping, or borrowed from the caller).
    Cached(std::ptr::NonNull<Buffer>),
    /// An import for this copy only.
    Fresh(Buffer),
    /// The staging buffer.
    Staging,
}

impl HostCopier {
    /// A copier on `manager`'s device, counting into `counts`.
    pub fn new(manager: Arc<VulkanTextureShareManager>, counts: Arc<CopyCounts>) -> Result<Self> {
        let n = NEXT_QUARK.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            submit: Submitter::new(&manager, 1)?,
            align: Buffer::host_import_alignment(&manager),
            quark: glib::Quark::from_str(format!("geyser-host-import-{n}")),
            staging: None,
            manager,
            counts,
        })
    }

    /// The alignment pools should give buffer memory so the GPU can copy into it directly.
    pub fn alignment(&self) -> Option<u64> {
        self.align
    }

    /// Copies `texture` into plane `plane` of `buffer`. The GPU waits for `waits` and signals
    /// `signals`; `submitted` runs once the copy is submitted (to release the frame early);
    /// returns when the texels are in the buffer.
    pub fn download(
        &mut self,
        texture: &VulkanTexture,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        submitted: impl FnOnce() -> Result<()>,
        buffer: &mut gst::BufferRef,
        plane: &Plane,
    ) -> Result<CopyPath> {
        let memory = single_memory(buffer);
        let mut map = buffer
            .map_writable()
            .map_err(|e| Error::Internal(format!("mapping a buffer for writing: {e}")))?;
        check_plane(plane, map.size())?;
        let view = self.view(memory, map.as_mut_ptr(), map.size());
        if matches!(view, View::Staging) {
            self.staging_for(plane)?;
        }
        let path = self.copy(
            texture,
            waits,
            signals,
            submitted,
            view,
            plane,
            CopyDirection::Download,
        )?;
        if path == CopyPath::Staged {
            let staging = self
                .staging
                .as_ref()
                .ok_or_else(|| Error::Internal("a staged copy without a staging buffer".into()))?;
            copy_rows(staging.bytes(), &tight(plane), map.as_mut_slice(), plane);
        }
        Ok(path)
    }

    /// Imports the `len` bytes of host memory at `ptr` for [`Self::download_to_host`], or
    /// `None` when this device cannot (no `VK_EXT_external_memory_host`, misaligned).
    ///
    /// # Safety
    /// `ptr` points to ordinary host memory (heap or a file or anonymous mapping) of at least
    /// `len` bytes rounded up to [`Self::alignment`], which stays mapped at `ptr` until the
    /// returned buffer is dropped.
    #[cfg_attr(not(feature = "pipewire"), allow(dead_code))]
    pub unsafe fn import(&self, ptr: *mut u8, len: usize) -> Option<Buffer> {
        let align = self.align?;
        let size = (len as u64).div_ceil(align) * align;
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        self.counts.imports.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract; `import_host_memory` checks the alignment.
        match unsafe { Buffer::import_host_memory(&self.manager, ptr, size, usage) } {
            Ok(b) => Some(b),
            Err(e) => {
                gst::debug!(gst::CAT_DEFAULT, "host memory import failed: {e}");
                None
            }
        }
    }

    /// Copies `texture` into `bytes` laid out as `plane`: through `import` (a view of
    /// exactly `bytes` made by [`Self::import`]) with no CPU copy, else through the staging
    /// buffer. Waits, signals and `submitted` as in [`Self::download`].
    #[cfg_attr(not(feature = "pipewire"), allow(dead_code))]
    #[allow(clippy::too_many_arguments)]
    pub fn download_to_host(
        &mut self,
        texture: &VulkanTexture,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        submitted: impl FnOnce() -> Result<()>,
        import: Option<&Buffer>,
        bytes: &mut [u8],
        plane: &Plane,
    ) -> Result<CopyPath> {
        check_plane(plane, bytes.len())?;
        let view = match import {
            Some(b) => View::Cached(std::ptr::NonNull::from(b)),
            None => {
                self.staging_for(plane)?;
                View::Staging
            }
        };
        let path = self.copy(
            texture,
            waits,
            signals,
            submitted,
            view,
            plane,
            CopyDirection::Download,
        )?;
        if path == CopyPath::Staged {
            let staging = self
                .staging
                .as_ref()
                .ok_or_else(|| Error::Internal("a staged copy without a staging buffer".into()))?;
            copy_rows(staging.bytes(), &tight(plane), bytes, plane);
        }
        Ok(path)
    }

    /// Copies `texture` into `target` (device memory, e.g. an exported DMA-BUF) laid out as
    /// `plane`, with no host copy. Waits, signals and `submitted` as in [`Self::download`].
    pub fn download_to_buffer(
        &mut self,
        texture: &VulkanTexture,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        submitted: impl FnOnce() -> Result<()>,
        target: &Buffer,
        plane: &Plane,
    ) -> Result<CopyPath> {
        check_plane(plane, target.size() as usize)?;
        self.copy(
            texture,
            waits,
            signals,
            submitted,
            View::Cached(std::ptr::NonNull::from(target)),
            plane,
            CopyDirection::Download,
        )
    }

    /// Copies plane `plane` of `buffer` into `texture`, like [`Self::download`] the other way.
    pub fn upload(
        &mut self,
        buffer: &gst::BufferRef,
        plane: &Plane,
        texture: &VulkanTexture,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
    ) -> Result<CopyPath> {
        let memory = single_memory(buffer);
        let map = buffer
            .map_readable()
            .map_err(|e| Error::Internal(format!("mapping a buffer for reading: {e}")))?;
        check_plane(plane, map.size())?;
        // The GPU only reads through this pointer.
        let view = self.view(memory, map.as_ptr().cast_mut(), map.size());
        if matches!(view, View::Staging) {
            let staging = self.staging_for(plane)?;
            copy_rows(map.as_slice(), plane, staging.bytes_mut(), &tight(plane));
        }
        let path = self.copy(
            texture,
            waits,
            signals,
            || Ok(()),
            view,
            plane,
            CopyDirection::Upload,
        )?;
        texture.mark_initialized();
        Ok(path)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        texture: &VulkanTexture,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        submitted: impl FnOnce() -> Result<()>,
        view: View,
        plane: &Plane,
        dir: CopyDirection,
    ) -> Result<CopyPath> {
        let (target, layout, path) = match &view {
            // SAFETY: the import outlives this call: as the memory's qdata while the caller
            // holds the buffer mapped (see `view`), or as the caller's borrow
            // (`download_to_host`).
            View::Cached(b) => (unsafe { b.as_ref() }, *plane, CopyPath::Direct),
            View::Fresh(b) => (b, *plane, CopyPath::Direct),
            View::Staging => (
                self.staging.as_ref().ok_or_else(|| {
                    Error::Internal("staged copy without a staging buffer".into())
                })?,
                tight(plane),
                CopyPath::Staged,
            ),
        };
        let d = &texture.export_info().descriptor;
        if (d.width, d.height) != (plane.width, plane.height) {
            return Err(Error::InvalidArgument {
                what: "frame size",
                reason: format!(
                    "the texture is {}x{}, the buffer {}x{}",
                    d.width, d.height, plane.width, plane.height
                ),
            });
        }
        let region = vk::BufferImageCopy::default()
            .buffer_offset(layout.offset as u64)
            .buffer_row_length((layout.stride / layout.texel_bytes as usize) as u32)
            .image_subresource(vk::ImageSubresourceLayers {
                aspect_mask: vk::ImageAspectFlags::COLOR,
                mip_level: 0,
                base_array_layer: 0,
                layer_count: 1,
            })
            .image_extent(texture.vk_extent());
        let family = self.submit.queue_family();
        self.submit.submit(
            // SAFETY: the command buffer records on the texture's device (the consumer or
            // producer imported it on this copier's manager); the region lies inside the image
            // (sizes checked above) and inside `target` (`check_plane`, and an import or
            // staging buffer covers the whole plane); the host waits for the GPU below
            // (`drain`) before `target` or the mapping it views can go.
            |device, cmd| unsafe {
                record_copy(device, cmd, family, texture, &[region], target, dir)
            },
            waits,
            signals,
            false,
        )?;
        let sent = submitted();
        self.submit.drain(SUBMIT_TIMEOUT)?;
        sent?;
        drop(view);
        let counter = match path {
            CopyPath::Direct => &self.counts.direct,
            CopyPath::Staged => &self.counts.staged,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(path)
    }

    /// How the GPU reaches the mapped memory at `ptr` (`len` bytes) of `memory`: an import
    /// kept on the memory, a fresh import for this copy, or the staging buffer.
    fn view(&self, memory: Option<MemoryInfo>, ptr: *mut u8, len: usize) -> View {
        let imported = (|| {
            let align = self.align?;
            let memory = memory?;
            let size = (len as u64).div_ceil(align) * align;
            if !(ptr as u64).is_multiple_of(align) || size > memory.available as u64 {
                return None;
            }
            Some((memory, size))
        })();
        let Some((memory, size)) = imported else {
            return View::Staging;
        };
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let import = || {
            self.counts.imports.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `ptr` is the mapping of `memory` (ordinary host memory: system memory
            // or a memfd mapping), aligned, with `size` bytes available behind it (checked
            // above). A fresh import lives only for this copy, while the caller holds the
            // mapping; a cached one lives as the system memory's qdata, which GStreamer drops
            // before it frees the memory (whose data never moves).
            unsafe { Buffer::import_host_memory(&self.manager, ptr, size, usage) }
        };
        if !memory.system {
            return match import() {
                Ok(b) => View::Fresh(b),
                Err(e) => {
                    gst::debug!(gst::CAT_DEFAULT, "host memory import failed: {e}");
                    View::Staging
                }
            };
        }
        let key = self.quark.into_glib();
        // SAFETY: `memory.raw` is a live GstMemory (the caller's buffer holds it and its
        // mapping); qdata under this copier's own quark is only ever a `CachedImport` set
        // below.
        let cached = unsafe {
            gst::ffi::gst_mini_object_get_qdata(memory.raw.cast(), key) as *const CachedImport
        };
        // SAFETY: as above; the import stays until this copier replaces it (below, on this
        // thread) or the memory is finalized, which cannot happen while the buffer is mapped.
        if let Some(c) = unsafe { cached.as_ref() } {
            if c.ptr == ptr as usize && c.size == size {
                return View::Cached(std::ptr::NonNull::from(&c.buffer));
            }
        }
        match import() {
            Ok(buffer) => {
                let boxed = Box::new(CachedImport {
                    buffer,
                    ptr: ptr as usize,
                    size,
                });
                let raw = Box::into_raw(boxed);
                // SAFETY: ownership of the box goes to the memory's qdata (freed by
                // `drop_cached_import`, also when replaced); the memory is live.
                unsafe {
                    gst::ffi::gst_mini_object_set_qdata(
                        memory.raw.cast(),
                        key,
                        raw.cast(),
                        Some(drop_cached_import),
                    );
                }
                // SAFETY: just stored; it lives as long as the memory, as above.
                View::Cached(unsafe { std::ptr::NonNull::from(&(*raw).buffer) })
            }
            Err(e) => {
                gst::debug!(gst::CAT_DEFAULT, "host memory import failed: {e}");
                View::Staging
            }
        }
    }

    /// The staging buffer, grown to hold `plane` tightly packed.
    fn staging_for(&mut self, plane: &Plane) -> Result<&mut Buffer> {
        let need = tight(plane).end() as u64;
        if self.staging.as_ref().is_none_or(|s| s.size() < need) {
            let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
            self.staging = Some(Buffer::host(&self.manager, need.max(4), usage)?);
        }
        self.staging
            .as_mut()
            .ok_or_else(|| Error::Internal("the staging buffer was just made".into()))
    }
}

unsafe extern "C" fn drop_cached_import(data: glib::ffi::gpointer) {
    // SAFETY: `data` is the `Box<CachedImport>` leaked in `HostCopier::view`; GLib calls this
    // once, when the qdata is replaced or the memory finalized. Its GPU work has finished:
    // every copy waits for the GPU before returning.
    drop(unsafe { Box::from_raw(data as *mut CachedImport) });
}

/// What [`HostCopier::view`] needs to know of a buffer's only memory.
#[derive(Clone, Copy)]
struct MemoryInfo {
    raw: *mut gst::ffi::GstMemory,
    /// Plain system memory (its data never moves or unmaps while the memory lives).
    system: bool,
    /// Bytes from the mapped pointer to the end of the memory's allocation.
    available: usize,
}

/// The buffer's memory when it has exactly one (a mapping of several is a temporary merge).
fn single_memory(buffer: &gst::BufferRef) -> Option<MemoryInfo> {
    if buffer.n_memory() != 1 {
        return None;
    }
    let m = buffer.peek_memory(0);
    Some(MemoryInfo {
        raw: m.as_ptr().cast_mut(),
        system: m.is_type("SystemMemory"),
        available: m.maxsize().saturating_sub(m.offset()),
    })
}

fn check_plane(plane: &Plane, mapped: usize) -> Result<()> {
    if !plane.copyable() || plane.end() > mapped {
        return Err(Error::InvalidArgument {
            what: "buffer layout",
            reason: format!("{plane:?} does not fit a {mapped}-byte buffer as whole texels"),
        });
    }
    Ok(())
}

/// The same plane tightly packed from offset 0 (the staging buffer's layout).
fn tight(plane: &Plane) -> Plane {
    Plane {
        offset: 0,
        stride: plane.row_bytes(),
        ..*plane
    }
}

fn copy_rows(src: &[u8], from: &Plane, dst: &mut [u8], to: &Plane) {
    let row = from.row_bytes();
    for y in 0..from.height as usize {
        let s = from.offset + y * from.stride;
        let d = to.offset + y * to.stride;
        dst[d..d + row].copy_from_slice(&src[s..s + row]);
    }
}
