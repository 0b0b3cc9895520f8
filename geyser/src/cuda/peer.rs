//! GPU-to-GPU copies between CUDA devices with peer access (NVLink, or PCIe peer-to-peer):
//! [`transfer_path_between`] (what `geyser info` shows), [`PeerTransfer`] (in-process, like
//! `CrossDeviceTransfer`), and [`PeerRings`], the remote rings that serve a producer's
//! consumers on another GPU across processes. Never NVLink multicast.

use std::sync::{Arc, Mutex};

use cudarc::driver::sys;

use super::consumer::vulkan_for;
use super::device::CudaDevice;
use super::driver::{check, zeroed_then};
use super::memory::{CudaArray, ExternalMemory};
use super::semaphore::CudaTimeline;
use super::stream::{CudaStream, StreamHandle};
use crate::common::{ExportedTexture, TextureDescriptor};
use crate::ipc::wire::FrameId;
use crate::ipc::{RemoteRing, RemoteRings};
use crate::vulkan::{
    DeviceCaps, SharedTimelineSemaphore, TransferPath, VulkanTexture, VulkanTextureShareManager,
};
use crate::{Error, Result, SharedTexture};

/// The two CUDA devices with these UUIDs, when both exist and each can access the other's
/// memory; `Ok(None)` otherwise (no CUDA counts as no).
pub fn peer_devices(
    a: &[u8; 16],
    b: &[u8; 16],
) -> Result<Option<(Arc<CudaDevice>, Arc<CudaDevice>)>> {
    if a == b || super::driver::init().is_err() {
        return Ok(None);
    }
    let (da, db) = match (CudaDevice::with_uuid(a), CudaDevice::with_uuid(b)) {
        (Ok(da), Ok(db)) => (da, db),
        _ => return Ok(None),
    };
    if da.can_access_peer(&db)? && db.can_access_peer(&da)? {
        Ok(Some((da, db)))
    } else {
        Ok(None)
    }
}

/// [`TransferPath::between`], with [`TransferPath::Peer`] where both devices are CUDA
/// devices with peer access to each other.
pub fn transfer_path_between(a: &DeviceCaps, b: &DeviceCaps) -> TransferPath {
    let direct = TransferPath::between(a, b);
    if direct == TransferPath::Direct {
        return direct;
    }
    match peer_devices(&a.identity.device_uuid, &b.identity.device_uuid) {
        Ok(Some(_)) => TransferPath::Peer,
        _ => direct,
    }
}

/// Enqueues a copy of `src`'s level 0 into `dst`'s (same size and texel size; arrays of two
/// devices, or of one) on `stream`, a stream of `src`'s device.
///
/// # Safety
/// `stream` is a stream of `src`'s device context (or a default-stream value); neither array
/// is written by other work until the copy has run.
pub unsafe fn copy_peer(src: &CudaArray, dst: &CudaArray, stream: StreamHandle) -> Result<()> {
    if src.size() != dst.size() || src.row_bytes() != dst.row_bytes() {
        return Err(Error::InvalidArgument {
            what: "peer copy",
            reason: format!("{:?} arrays into {:?}", src.size(), dst.size()),
        });
    }
    // SAFETY: the two memory types (enums without a zero value) are written first; every
    // other field defaults to zero.
    let mut c: sys::CUDA_MEMCPY3D_PEER = unsafe {
        zeroed_then(|c: *mut sys::CUDA_MEMCPY3D_PEER| {
            (&raw mut (*c).srcMemoryType).write(sys::CUmemorytype::CU_MEMORYTYPE_ARRAY);
            (&raw mut (*c).dstMemoryType).write(sys::CUmemorytype::CU_MEMORYTYPE_ARRAY);
        })
    };
    c.srcMemoryType = sys::CUmemorytype::CU_MEMORYTYPE_ARRAY;
    c.srcArray = src.raw();
    c.srcContext = src.device().raw_context();
    c.dstMemoryType = sys::CUmemorytype::CU_MEMORYTYPE_ARRAY;
    c.dstArray = dst.raw();
    c.dstContext = dst.device().raw_context();
    c.WidthInBytes = src.row_bytes();
    c.Height = src.size().1 as usize;
    c.Depth = 1;
    let _ctx = src.device().enter()?;
    // SAFETY: both arrays are live (borrowed) level-0 arrays of their contexts; the stream is
    // the caller's contract.
    check("cuMemcpy3DPeerAsync", unsafe {
        sys::cuMemcpy3DPeerAsync(&c, stream.raw())
    })
}

/// Imports a Vulkan texture's memory into `device` as a CUDA array.
fn array_of(device: &Arc<CudaDevice>, exported: ExportedTexture) -> Result<CudaArray> {
    let info = exported.info.clone();
    ExternalMemory::import_texture(device, exported)?.map_array(&info)
}

/// Most textures a [`PeerTransfer`] keeps imported (the oldest import goes beyond).
const CACHED_TEXTURES: usize = 16;

/// Copies textures from one GPU to another in one process, peer to peer. Each texture is
/// imported into CUDA once and kept (with a reference to the texture) among the last
/// 16 textures used.
pub struct PeerTransfer {
    // Field order is drop order: the stream is synchronized before the imports go.
    stream: CudaStream,
    /// Imports by image, each with the texture it imports (so the handle stays its).
    cache: Mutex<Vec<(VulkanTexture, Arc<CudaArray>)>>,
    src: Arc<CudaDevice>,
    dst: Arc<CudaDevice>,
    src_manager: Arc<VulkanTextureShareManager>,
    dst_manager: Arc<VulkanTextureShareManager>,
    desc: TextureDescriptor,
}

impl std::fmt::Debug for PeerTransfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTransfer")
            .field("src", &self.src)
            .field("dst", &self.dst)
            .finish_non_exhaustive()
    }
}

impl PeerTransfer {
    /// A transfer of textures like `desc` from `src`'s GPU to `dst`'s.
    /// [`Error::Unsupported`] unless both are CUDA devices with peer access.
    pub fn new(
        src: &Arc<VulkanTextureShareManager>,
        dst: &Arc<VulkanTextureShareManager>,
        desc: &TextureDescriptor,
    ) -> Result<Self> {
        desc.validate()?;
        let (a, b) = (&src.identity().device_uuid, &dst.identity().device_uuid);
        let Some((da, db)) = peer_devices(a, b)? else {
            return Err(Error::unsupported(
                "peer copies",
                format!(
                    "{} and {} are not two CUDA devices with peer access to each other",
                    src.identity().name,
                    dst.identity().name
                ),
            ));
        };
        da.enable_peer_access(&db)?;
        db.enable_peer_access(&da)?;
        Ok(Self {
            stream: CudaStream::new(&da)?,
            src: da,
            dst: db,
            cache: Mutex::new(Vec::new()),
            src_manager: src.clone(),
            dst_manager: dst.clone(),
            desc: desc.clone(),
        })
    }

    fn array(&self, texture: &VulkanTexture, on_src: bool) -> Result<Arc<CudaArray>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, a)) = cache.iter().find(|(t, _)| t.image() == texture.image()) {
            return Ok(a.clone());
        }
        let (manager, device) = if on_src {
            (&self.src_manager, &self.src)
        } else {
            (&self.dst_manager, &self.dst)
        };
        let array = Arc::new(array_of(device, manager.export(texture)?)?);
        if cache.len() >= CACHED_TEXTURES {
            cache.remove(0);
        }
        cache.push((texture.clone(), array.clone()));
        Ok(array)
    }

    /// Copies `src` (a texture of the source manager, its writes finished) into `dst` (of the
    /// destination manager); returns once the copy is done.
    pub fn transfer(&self, src: &VulkanTexture, dst: &VulkanTexture) -> Result<()> {
        for t in [src, dst] {
            t.descriptor().check_matches(&self.desc)?;
        }
        let (a, b) = (self.array(src, true)?, self.array(dst, false)?);
        // SAFETY: our stream, on the source device; the arrays live in the cache.
        unsafe { copy_peer(&a, &b, self.stream.handle())? };
        self.stream.synchronize()?;
        dst.mark_initialized();
        Ok(())
    }
}

/// Remote rings over CUDA peer copies ([`RemoteRings`]): for a consumer on another GPU that
/// is a CUDA device with peer access to the producer's, the producer opens a Vulkan context on
/// that GPU, makes a ring of textures there, and copies each frame into it GPU to GPU (waiting
/// for the producer's "ready" timeline on the GPU, through CUDA). Put it in
/// `ProducerOptions::remote_rings`.
#[derive(Debug, Default)]
pub struct PeerRings {
    /// Vulkan contexts opened on consumers' GPUs, by device UUID (reused by later consumers).
    contexts: Mutex<Vec<([u8; 16], Arc<VulkanTextureShareManager>)>>,
}

impl PeerRings {
    /// A provider for `ProducerOptions::remote_rings`.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn context(
        &self,
        device_uuid: [u8; 16],
        device: &CudaDevice,
    ) -> Result<Arc<VulkanTextureShareManager>> {
        let mut contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, m)) = contexts.iter().find(|(u, _)| *u == device_uuid) {
            return Ok(m.clone());
        }
        let m = vulkan_for(device)?;
        contexts.push((device_uuid, m.clone()));
        Ok(m)
    }
}

impl RemoteRings for PeerRings {
    fn open(
        &self,
        ring: &[ExportedTexture],
        ready: Option<&Arc<SharedTimelineSemaphore>>,
        device_uuid: [u8; 16],
        driver_uuid: [u8; 16],
    ) -> Result<Option<Box<dyn RemoteRing>>> {
        let Some(first) = ring.first() else {
            return Ok(None);
        };
        let Some((src, dst)) = peer_devices(&first.info.device_uuid, &device_uuid)? else {
            return Ok(None);
        };
        let manager = self.context(device_uuid, &dst)?;
        if manager.identity().driver_uuid != driver_uuid {
            // The consumer's driver is not the one CUDA's Vulkan context here runs on.
            return Ok(None);
        }
        src.enable_peer_access(&dst)?;
        dst.enable_peer_access(&src)?;
        let info = &first.info;
        let mut textures = Vec::with_capacity(ring.len());
        let mut src_arrays = Vec::with_capacity(ring.len());
        let mut dst_arrays = Vec::with_capacity(ring.len());
        for e in ring {
            let t = manager.create_texture_with(&info.descriptor, &info.extent)?;
            dst_arrays.push(array_of(&dst, manager.export(&t)?)?);
            textures.push(t);
            src_arrays.push(array_of(&src, e.try_clone()?)?);
        }
        let ready = ready
            .map(|r| CudaTimeline::from_vulkan(&src, r))
            .transpose()?;
        tracing::info!(
            from = src.ordinal(),
            to = dst.ordinal(),
            "remote ring: CUDA peer copies"
        );
        Ok(Some(Box::new(PeerRing {
            stream: CudaStream::new(&src)?,
            src_arrays,
            dst_arrays,
            ready,
            textures,
            manager,
        })))
    }
}

/// One consumer's ring on its GPU, and the producer's ring in CUDA.
struct PeerRing {
    // Field order is drop order: the stream is synchronized first, then the imports go.
    stream: CudaStream,
    src_arrays: Vec<CudaArray>,
    dst_arrays: Vec<CudaArray>,
    ready: Option<CudaTimeline>,
    textures: Vec<VulkanTexture>,
    manager: Arc<VulkanTextureShareManager>,
}

impl RemoteRing for PeerRing {
    fn exports(&self) -> Result<Vec<ExportedTexture>> {
        self.textures
            .iter()
            .map(|t| self.manager.export(t))
            .collect()
    }

    fn copy(&mut self, id: FrameId, ready_value: Option<u64>) -> Result<()> {
        let slot = id.slot_index();
        let (src, dst) = match (self.src_arrays.get(slot), self.dst_arrays.get(slot)) {
            (Some(s), Some(d)) => (s, d),
            _ => return Err(Error::Protocol(format!("remote ring has no slot {slot}"))),
        };
        let stream = self.stream.handle();
        if let (Some(ready), Some(value)) = (&self.ready, ready_value) {
            // SAFETY: our own stream, on the source device where the timeline was imported.
            unsafe { ready.wait(value, stream)? };
        }
        // SAFETY: our own stream on the source device; the consumer does not hold this slot
        // (the producer rewrites only slots nobody holds) and the producer's write is waited
        // for above (timeline) or done (host mode).
        unsafe { copy_peer(src, dst, stream)? };
        self.stream.synchronize()?;
        self.textures[slot].mark_initialized();
        Ok(())
    }
}
