//! Handles to exported textures: [`ApiTextureHandle`], a `Copy` token into a manager's table of
//! exports, and [`ExportedTexture`], the owned, transferable form (OS handle plus everything an
//! importer must check).

use serde::{Deserialize, Serialize};

use super::{TextureDescriptor, TextureExtent};

/// A `Copy` token naming one export in the table of the manager that made it. Closing the
/// export (and its OS handle) is [`crate::TextureShareManager::release_texture_handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiTextureHandle {
    /// Which manager issued it (unique per process).
    pub manager: u32,
    /// The export's number in that manager.
    pub id: u64,
}

impl std::fmt::Display for ApiTextureHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "handle {}.{}", self.manager, self.id)
    }
}

/// The kind of OS handle that carries a texture's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExternalHandleType {
    /// Vulkan opaque FD: same driver and device on both sides, any tiling.
    OpaqueFd,
    /// Linux DMA-BUF: crosses drivers and APIs; needs a DRM format modifier or linear layout.
    DmaBuf,
    /// Windows NT handle (`OPAQUE_WIN32`).
    OpaqueWin32,
}

/// How the texels are laid out in memory. Both sides must agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemoryLayout {
    /// Driver-private tiling (`VK_IMAGE_TILING_OPTIMAL`): only the same driver can read it.
    Optimal,
    /// Row-major.
    Linear,
    /// A DRM format modifier, for DMA-BUF.
    DrmModifier(u64),
}

/// Everything about an export except the OS handle: what an importer checks before touching
/// the handle. Travels over IPC as is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportInfo {
    /// The texture's descriptor.
    pub descriptor: TextureDescriptor,
    /// Its dimensions beyond width and height.
    pub extent: TextureExtent,
    /// Kind of OS handle.
    pub handle_type: ExternalHandleType,
    /// Memory layout of the texels.
    pub layout: MemoryLayout,
    /// Size of the exported allocation in bytes (`VkMemoryAllocateInfo::allocationSize`).
    pub allocation_size: u64,
    /// Memory type index on the exporting device (opaque handles must be imported with it).
    pub memory_type_index: u32,
    /// Whether the allocation is dedicated to the image (imports must be dedicated too).
    pub dedicated: bool,
    /// Offset and row pitch of each memory plane in the allocation, for exports laid out by a
    /// DRM format modifier (DMA-BUF, or an opaque FD with modifier tiling): what an importer
    /// passes as the explicit layout. Empty for optimal tiling. At most
    /// [`super::MAX_PLANES`] (decoding refuses more before allocating).
    #[serde(deserialize_with = "at_most_max_planes")]
    pub planes: Vec<super::PlaneLayout>,
    /// `VkPhysicalDeviceIDProperties::deviceUUID` of the exporter.
    pub device_uuid: [u8; 16],
    /// `VkPhysicalDeviceIDProperties::driverUUID` of the exporter.
    pub driver_uuid: [u8; 16],
}

/// Deserializes at most [`super::MAX_PLANES`] plane layouts: a longer list fails on its
/// length, before any element is decoded or memory reserved for it.
fn at_most_max_planes<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<super::PlaneLayout>, D::Error> {
    struct Planes;
    impl<'de> serde::de::Visitor<'de> for Planes {
        type Value = Vec<super::PlaneLayout>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "at most {} plane layouts", super::MAX_PLANES)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(super::MAX_PLANES);
            while let Some(plane) = seq.next_element()? {
                if out.len() == super::MAX_PLANES {
                    return Err(serde::de::Error::invalid_length(out.len() + 1, &self));
                }
                out.push(plane);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Planes)
}

/// The owned OS handle that carries shared memory or a sync payload on this platform: a file
/// descriptor on Unix, an NT handle on Windows. Dropping it closes it.
#[cfg(unix)]
pub type OwnedOsHandle = std::os::fd::OwnedFd;

/// The owned OS handle that carries shared memory or a sync payload on this platform: a file
/// descriptor on Unix, an NT handle on Windows. Dropping it closes it.
#[cfg(windows)]
pub type OwnedOsHandle = std::os::windows::io::OwnedHandle;

/// A borrowed [`OwnedOsHandle`]: what the IPC transports send beside a message.
#[cfg(unix)]
pub type BorrowedOsHandle<'a> = std::os::fd::BorrowedFd<'a>;

/// A borrowed [`OwnedOsHandle`]: what the IPC transports send beside a message.
#[cfg(windows)]
pub type BorrowedOsHandle<'a> = std::os::windows::io::BorrowedHandle<'a>;

/// Borrows an owned OS handle (`as_fd` on Unix, `as_handle` on Windows).
#[cfg(unix)]
pub fn borrow_os_handle(handle: &OwnedOsHandle) -> BorrowedOsHandle<'_> {
    std::os::fd::AsFd::as_fd(handle)
}

/// Borrows an owned OS handle (`as_fd` on Unix, `as_handle` on Windows).
#[cfg(windows)]
pub fn borrow_os_handle(handle: &OwnedOsHandle) -> BorrowedOsHandle<'_> {
    std::os::windows::io::AsHandle::as_handle(handle)
}

/// An exported texture that owns its OS handle: hand it to another context or process, and
/// import it there. Dropping it closes the handle (the texture itself lives on in its owner).
#[derive(Debug)]
pub struct ExportedTexture {
    /// What the importer checks.
    pub info: ExportInfo,
    /// The OS handle carrying the memory.
    #[cfg(unix)]
    pub fd: std::os::fd::OwnedFd,
    /// The OS handle carrying the memory (an NT handle, `OPAQUE_WIN32`).
    #[cfg(windows)]
    pub handle: std::os::windows::io::OwnedHandle,
}

#[cfg(any(unix, windows))]
impl ExportedTexture {
    /// Pairs an export's description with the OS handle that carries its memory.
    pub fn new(info: ExportInfo, handle: OwnedOsHandle) -> Self {
        #[cfg(unix)]
        return Self { info, fd: handle };
        #[cfg(windows)]
        return Self { info, handle };
    }

    /// Splits the export into its description and its OS handle.
    pub fn into_parts(self) -> (ExportInfo, OwnedOsHandle) {
        #[cfg(unix)]
        return (self.info, self.fd);
        #[cfg(windows)]
        return (self.info, self.handle);
    }

    /// The OS handle, borrowed.
    pub fn os_handle(&self) -> &OwnedOsHandle {
        #[cfg(unix)]
        return &self.fd;
        #[cfg(windows)]
        return &self.handle;
    }

    /// Duplicates the export (a new FD or NT handle for the same memory), e.g. to import it
    /// twice.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self::new(self.info.clone(), self.os_handle().try_clone()?))
    }
}

#[cfg(unix)]
impl ExportedTexture {
    /// The export as a [`super::DmaBuf`] (each plane a duplicate of the export's FD), for
    /// importers that take DMA-BUFs (EGL, another driver, wgpu). Only for DMA-BUF exports
    /// ([`ExternalHandleType::DmaBuf`]) of formats with a DRM fourcc; [`crate::Error`]
    /// otherwise.
    pub fn to_dma_buf(&self) -> crate::Result<super::DmaBuf> {
        let info = &self.info;
        let fourcc = info.descriptor.format.info().drm_fourcc;
        let (MemoryLayout::DrmModifier(modifier), ExternalHandleType::DmaBuf, Some(fourcc)) =
            (info.layout, info.handle_type, fourcc)
        else {
            return Err(crate::Error::unsupported(
                format!(
                    "{:?} export of {} with {:?} layout as a DMA-BUF",
                    info.handle_type, info.descriptor.format, info.layout
                ),
                "only DMA-BUF exports of formats with a DRM fourcc are DMA-BUFs; create the texture with TextureMemory::DmaBuf",
            ));
        };
        let mut builder = super::DmaBuf::builder(
            info.descriptor.width,
            info.descriptor.height,
            fourcc,
            modifier.into(),
        );
        for (i, plane) in info.planes.iter().enumerate() {
            let narrow = |v: u64, what: &str| {
                u32::try_from(v).map_err(|_| crate::Error::InvalidDmaBuf {
                    plane: Some(i),
                    reason: format!("{what} {v} does not fit 32 bits"),
                })
            };
            builder = builder.add_plane(
                self.fd.try_clone()?,
                i as u32,
                narrow(plane.offset, "offset")?,
                narrow(plane.stride, "stride")?,
            );
        }
        builder.build()
    }
}

/// Formats a UUID as lowercase hex in the usual 8-4-4-4-12 groups.
pub fn uuid_string(uuid: &[u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Parses a UUID written as 32 hex digits, with or without dashes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trips() {
        let u: [u8; 16] = std::array::from_fn(|i| (i * 17) as u8);
        let s = uuid_string(&u);
        assert_eq!(s.len(), 36);
        assert_eq!(parse_uuid(&s), Some(u));
        assert_eq!(parse_uuid(&s.replace('-', "")), Some(u));
        assert_eq!(parse_uuid("xyz"), None);
    }
}
