//! DMA-BUF descriptions, shared by every backend: [`DmaBuf`] (plane FDs with their DRM fourcc,
//! modifier, offsets and strides, built plane by plane like smithay's `Dmabuf`), the FD-free
//! [`PlaneLayout`] that travels in an export's description, the plane formats Geyser knows
//! ([`plane_formats`]), layout checks with typed errors, and modifier negotiation.

use serde::{Deserialize, Serialize};

pub use drm_fourcc::{DrmFourcc, DrmModifier};

use super::TextureFormat;
use crate::{Error, Result};

/// `DRM_FORMAT_MOD_LINEAR`: row-major texels, readable by every driver.
pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;
/// `DRM_FORMAT_MOD_INVALID`: "no explicit modifier" (the driver's implicit layout).
pub const DRM_FORMAT_MOD_INVALID: u64 = 0x00ff_ffff_ffff_ffff;
/// Most memory planes a DMA-BUF (or a DRM modifier) has.
pub const MAX_PLANES: usize = 4;

/// Where one memory plane lies in its buffer: what importers need besides the FD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlaneLayout {
    /// Byte offset of the plane's first texel in its FD.
    pub offset: u64,
    /// Bytes from one row to the next (the pitch).
    pub stride: u64,
}

/// One plane of a pixel format: its texel size and how it is subsampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneFormat {
    /// Bytes per texel of the plane.
    pub bytes_per_texel: u32,
    /// Horizontal and vertical subsampling (2 for the chroma planes of 4:2:0 formats).
    pub subsampling: (u32, u32),
}

impl PlaneFormat {
    /// The plane's extent for an image of `width` x `height`.
    pub fn extent(&self, width: u32, height: u32) -> (u32, u32) {
        (
            width.div_ceil(self.subsampling.0),
            height.div_ceil(self.subsampling.1),
        )
    }

    /// Bytes of one tightly packed row of the plane.
    pub fn row_bytes(&self, width: u32) -> u64 {
        u64::from(self.extent(width, 1).0) * u64::from(self.bytes_per_texel)
    }
}

const NV12: [PlaneFormat; 2] = [
    PlaneFormat {
        bytes_per_texel: 1,
        subsampling: (1, 1),
    },
    PlaneFormat {
        bytes_per_texel: 2,
        subsampling: (2, 2),
    },
];
const P010: [PlaneFormat; 2] = [
    PlaneFormat {
        bytes_per_texel: 2,
        subsampling: (1, 1),
    },
    PlaneFormat {
        bytes_per_texel: 4,
        subsampling: (2, 2),
    },
];

/// The planes of a DRM fourcc Geyser can import, in plane order: the single-plane formats of
/// the format table, and the two-plane 4:2:0 video formats NV12 and P010. `None` for others.
pub fn plane_formats(fourcc: DrmFourcc) -> Option<Vec<PlaneFormat>> {
    match fourcc {
        DrmFourcc::Nv12 => Some(NV12.to_vec()),
        DrmFourcc::P010 => Some(P010.to_vec()),
        code => TextureFormat::from_drm_fourcc(code).map(|f| {
            vec![PlaneFormat {
                bytes_per_texel: f.block_bytes(),
                subsampling: (1, 1),
            }]
        }),
    }
}

/// One plane of a [`DmaBuf`]: an FD and where the plane lies in it.
#[cfg(unix)]
#[derive(Debug)]
pub struct DmaBufPlane {
    /// The FD holding the plane (planes may share one buffer, each with its own FD).
    pub fd: std::os::fd::OwnedFd,
    /// Offset and stride.
    pub layout: PlaneLayout,
}

#[cfg(unix)]
#[derive(Debug)]
struct DmaBufInner {
    width: u32,
    height: u32,
    fourcc: DrmFourcc,
    modifier: DrmModifier,
    planes: Vec<DmaBufPlane>,
}

/// A DMA-BUF: up to [`MAX_PLANES`] planes (an FD, offset and stride each) holding an image of
/// one DRM fourcc and modifier. Made by a [`DmaBufBuilder`] (a buffer from GBM, a V4L2 or
/// VA-API decoder, a compositor, another process, or Geyser's own export). Cloning is cheap
/// (the planes are shared through an `Arc`); the FDs close when the last clone drops. Imports
/// borrow it and duplicate the FDs they hand to a driver.
///
/// ```no_run
/// # use std::os::fd::OwnedFd;
/// # use geyser::common::{DmaBuf, DrmFourcc, DrmModifier};
/// # fn f(y: OwnedFd, uv: OwnedFd) -> geyser::Result<()> {
/// let nv12 = DmaBuf::builder(1920, 1080, DrmFourcc::Nv12, DrmModifier::Linear)
///     .add_plane(y, 0, 0, 1920)
///     .add_plane(uv, 1, 1920 * 1080, 1920)
///     .build()?;
/// # Ok(()) }
/// ```
#[cfg(unix)]
#[derive(Clone, Debug)]
pub struct DmaBuf(std::sync::Arc<DmaBufInner>);

/// A handle to a [`DmaBuf`] that does not keep it alive, for caches of imports.
#[cfg(unix)]
#[derive(Clone, Debug)]
pub struct WeakDmaBuf(std::sync::Weak<DmaBufInner>);

#[cfg(unix)]
impl WeakDmaBuf {
    /// The buffer, if some clone of it still lives.
    pub fn upgrade(&self) -> Option<DmaBuf> {
        self.0.upgrade().map(DmaBuf)
    }
}

/// Builds a [`DmaBuf`] plane by plane.
#[cfg(unix)]
#[derive(Debug)]
pub struct DmaBufBuilder {
    width: u32,
    height: u32,
    fourcc: DrmFourcc,
    modifier: DrmModifier,
    planes: Vec<(u32, DmaBufPlane)>,
}

#[cfg(unix)]
impl DmaBufBuilder {
    /// Adds plane `index` (0-based) held by `fd` at `offset` with rows `stride` bytes apart.
    pub fn add_plane(
        mut self,
        fd: std::os::fd::OwnedFd,
        index: u32,
        offset: u32,
        stride: u32,
    ) -> Self {
        self.planes.push((
            index,
            DmaBufPlane {
                fd,
                layout: PlaneLayout {
                    offset: offset.into(),
                    stride: stride.into(),
                },
            },
        ));
        self
    }

    /// The buffer, or [`Error::InvalidDmaBuf`] when the planes are not 0, 1, … without gaps or
    /// repeats, there are none or more than [`MAX_PLANES`], the size is zero, a stride is
    /// zero, or (for formats in [`plane_formats`]) the plane count is not the format's.
    pub fn build(mut self) -> Result<DmaBuf> {
        let bad = |plane, reason: String| Error::InvalidDmaBuf { plane, reason };
        if self.width == 0 || self.height == 0 {
            return Err(bad(
                None,
                format!("{}x{} has no texels", self.width, self.height),
            ));
        }
        if self.planes.is_empty() || self.planes.len() > MAX_PLANES {
            return Err(bad(
                None,
                format!(
                    "{} planes given, a DMA-BUF has 1..={MAX_PLANES}",
                    self.planes.len()
                ),
            ));
        }
        self.planes.sort_by_key(|(i, _)| *i);
        for (expected, (index, plane)) in self.planes.iter().enumerate() {
            if *index as usize != expected {
                return Err(bad(
                    Some(*index as usize),
                    format!("planes must be numbered 0..{} once each", self.planes.len()),
                ));
            }
            if plane.layout.stride == 0 {
                return Err(bad(Some(expected), "stride is zero".into()));
            }
        }
        if let Some(formats) = plane_formats(self.fourcc) {
            if formats.len() != self.planes.len() && !has_aux_planes(self.modifier) {
                return Err(bad(
                    None,
                    format!(
                        "{} has {} plane(s), {} given",
                        self.fourcc,
                        formats.len(),
                        self.planes.len()
                    ),
                ));
            }
        }
        Ok(DmaBuf(std::sync::Arc::new(DmaBufInner {
            width: self.width,
            height: self.height,
            fourcc: self.fourcc,
            modifier: self.modifier,
            planes: self.planes.into_iter().map(|(_, p)| p).collect(),
        })))
    }
}

/// Whether a modifier may add planes of its own (compression metadata) beyond the format's:
/// every modifier except LINEAR and INVALID may, so plane counts are only checked for those.
#[cfg(unix)]
fn has_aux_planes(modifier: DrmModifier) -> bool {
    !matches!(modifier, DrmModifier::Linear | DrmModifier::Invalid)
}

#[cfg(unix)]
impl DmaBuf {
    /// Starts a buffer of `width` x `height` texels of `fourcc` laid out as `modifier`.
    pub fn builder(
        width: u32,
        height: u32,
        fourcc: DrmFourcc,
        modifier: DrmModifier,
    ) -> DmaBufBuilder {
        DmaBufBuilder {
            width,
            height,
            fourcc,
            modifier,
            planes: Vec::new(),
        }
    }

    /// Width in texels.
    pub fn width(&self) -> u32 {
        self.0.width
    }

    /// Height in texels.
    pub fn height(&self) -> u32 {
        self.0.height
    }

    /// The DRM fourcc.
    pub fn fourcc(&self) -> DrmFourcc {
        self.0.fourcc
    }

    /// The DRM format modifier.
    pub fn modifier(&self) -> DrmModifier {
        self.0.modifier
    }

    /// The planes, in order.
    pub fn planes(&self) -> &[DmaBufPlane] {
        &self.0.planes
    }

    /// Offsets and strides of the planes, in order.
    pub fn layouts(&self) -> Vec<PlaneLayout> {
        self.0.planes.iter().map(|p| p.layout).collect()
    }

    /// A handle that does not keep the buffer alive.
    pub fn weak(&self) -> WeakDmaBuf {
        WeakDmaBuf(std::sync::Arc::downgrade(&self.0))
    }

    /// Whether every plane's FD refers to the same open file (one buffer holding all planes).
    pub fn single_buffer(&self) -> bool {
        use std::os::fd::AsFd;
        let id = |p: &DmaBufPlane| file_id(p.fd.as_fd()).map(|s| (s.dev, s.ino));
        let first = id(&self.0.planes[0]);
        first.is_some() && self.0.planes.iter().all(|p| id(p) == first)
    }

    /// Checks the planes against the format and the buffer sizes before any driver sees them
    /// ([`Error::InvalidDmaBuf`] naming the plane otherwise): for formats in [`plane_formats`]
    /// with the LINEAR modifier, each stride holds a row and each plane fits its FD; for every
    /// modifier, each offset lies inside its FD. A buffer whose size cannot be read (not
    /// seekable) is checked for strides only.
    pub fn check_layout(&self) -> Result<()> {
        let linear = self.0.modifier == DrmModifier::Linear;
        let formats = plane_formats(self.0.fourcc);
        for (i, plane) in self.0.planes.iter().enumerate() {
            let size = fd_size(&plane.fd);
            let fmt = formats.as_ref().and_then(|f| f.get(i));
            let needed = match (linear, fmt) {
                (true, Some(fmt)) => Some(check_linear_plane(
                    i,
                    fmt,
                    self.0.width,
                    self.0.height,
                    plane.layout,
                )?),
                _ => None,
            };
            if let Some(size) = size {
                let end = needed.unwrap_or(plane.layout.offset + 1);
                if end > size {
                    return Err(Error::InvalidDmaBuf {
                        plane: Some(i),
                        reason: format!(
                            "the plane needs bytes up to {end} (offset {}, stride {}) but its FD holds {size}",
                            plane.layout.offset, plane.layout.stride
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Checks a LINEAR plane's stride against its row size; returns the byte just past its last
/// texel.
pub fn check_linear_plane(
    index: usize,
    fmt: &PlaneFormat,
    width: u32,
    height: u32,
    layout: PlaneLayout,
) -> Result<u64> {
    let row = fmt.row_bytes(width);
    if layout.stride < row {
        return Err(Error::InvalidDmaBuf {
            plane: Some(index),
            reason: format!(
                "stride {} is shorter than a row ({row} bytes for {width} texels of {} bytes)",
                layout.stride, fmt.bytes_per_texel
            ),
        });
    }
    if !layout.stride.is_multiple_of(u64::from(fmt.bytes_per_texel))
        || !layout.offset.is_multiple_of(u64::from(fmt.bytes_per_texel))
    {
        return Err(Error::InvalidDmaBuf {
            plane: Some(index),
            reason: format!(
                "offset {} and stride {} must be multiples of the {}-byte texel",
                layout.offset, layout.stride, fmt.bytes_per_texel
            ),
        });
    }
    let rows = u64::from(fmt.extent(width, height).1);
    layout
        .stride
        .checked_mul(rows - 1)
        .and_then(|b| b.checked_add(row))
        .and_then(|b| b.checked_add(layout.offset))
        .ok_or_else(|| Error::InvalidDmaBuf {
            plane: Some(index),
            reason: "offset + stride x rows overflows".into(),
        })
}

/// Size of the file behind `fd` (`lseek(SEEK_END)`, what DMA-BUF importers use), if seekable.
#[cfg(unix)]
fn fd_size(fd: &std::os::fd::OwnedFd) -> Option<u64> {
    use std::io::Seek;
    use std::os::fd::AsFd;
    let dup = fd.as_fd().try_clone_to_owned().ok()?;
    let mut file = std::fs::File::from(dup);
    // A dup shares the file offset; put it back where it was.
    let at = file.stream_position().ok()?;
    let size = file.seek(std::io::SeekFrom::End(0)).ok();
    let _ = file.seek(std::io::SeekFrom::Start(at));
    size
}

#[cfg(unix)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// Which file an FD refers to (device and inode).
#[cfg(unix)]
fn file_id(fd: std::os::fd::BorrowedFd<'_>) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
    let meta = file.metadata().ok()?;
    Some(FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// The modifiers to create an exportable image with, given what the exporter can create
/// (`exporter`, in its order) and what the importer can import (`importer`): their
/// intersection; when it holds a modifier other than LINEAR, only those (the driver picks the
/// best of them: "prefer optimal"); otherwise `[LINEAR]` when both have it; `None` when they
/// have nothing in common.
pub fn negotiate_modifiers(exporter: &[u64], importer: &[u64]) -> Option<Vec<u64>> {
    let common: Vec<u64> = exporter
        .iter()
        .copied()
        .filter(|m| importer.contains(m) && *m != DRM_FORMAT_MOD_INVALID)
        .collect();
    let optimal: Vec<u64> = common
        .iter()
        .copied()
        .filter(|m| *m != DRM_FORMAT_MOD_LINEAR)
        .collect();
    if !optimal.is_empty() {
        Some(optimal)
    } else if common.contains(&DRM_FORMAT_MOD_LINEAR) {
        Some(vec![DRM_FORMAT_MOD_LINEAR])
    } else {
        None
    }
}

/// A DRM modifier for people: `LINEAR`, `INVALID`, or the vendor and the raw value.
pub fn modifier_name(modifier: u64) -> String {
    match modifier {
        DRM_FORMAT_MOD_LINEAR => "LINEAR".into(),
        DRM_FORMAT_MOD_INVALID => "INVALID".into(),
        m => match DrmModifier::from(m).vendor() {
            Ok(Some(vendor)) => format!("{vendor:?}:{m:#018x}"),
            _ => format!("{m:#018x}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_optimal_then_linear() {
        const TILED: u64 = 0x0300_0000_0000_0014;
        const OTHER: u64 = 0x0100_0000_0000_0001;
        assert_eq!(
            negotiate_modifiers(
                &[DRM_FORMAT_MOD_LINEAR, TILED],
                &[TILED, DRM_FORMAT_MOD_LINEAR]
            ),
            Some(vec![TILED])
        );
        assert_eq!(
            negotiate_modifiers(
                &[DRM_FORMAT_MOD_LINEAR, TILED],
                &[OTHER, DRM_FORMAT_MOD_LINEAR]
            ),
            Some(vec![DRM_FORMAT_MOD_LINEAR])
        );
        assert_eq!(negotiate_modifiers(&[TILED], &[OTHER]), None);
        assert_eq!(
            negotiate_modifiers(&[DRM_FORMAT_MOD_INVALID], &[DRM_FORMAT_MOD_INVALID]),
            None
        );
    }

    #[test]
    fn nv12_planes_are_subsampled() {
        let p = plane_formats(DrmFourcc::Nv12).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].extent(1921, 1081), (961, 541));
        assert_eq!(p[1].row_bytes(1921), 1922);
        assert_eq!(
            plane_formats(DrmFourcc::Abgr8888).unwrap()[0].bytes_per_texel,
            4
        );
        assert!(plane_formats(DrmFourcc::Yuyv).is_none());
    }

    #[test]
    fn linear_plane_checks_name_the_fault() {
        let fmt = PlaneFormat {
            bytes_per_texel: 4,
            subsampling: (1, 1),
        };
        let ok = PlaneLayout {
            offset: 0,
            stride: 256,
        };
        assert_eq!(check_linear_plane(0, &fmt, 64, 2, ok).unwrap(), 512);
        let short = PlaneLayout {
            offset: 0,
            stride: 200,
        };
        assert!(matches!(
            check_linear_plane(0, &fmt, 64, 2, short),
            Err(Error::InvalidDmaBuf { plane: Some(0), .. })
        ));
        let odd = PlaneLayout {
            offset: 2,
            stride: 256,
        };
        assert!(check_linear_plane(0, &fmt, 64, 2, odd).is_err());
        let huge = PlaneLayout {
            offset: u64::MAX - 10,
            stride: 256,
        };
        assert!(check_linear_plane(0, &fmt, 64, 2, huge).is_err());
    }

    #[cfg(target_os = "linux")]
    fn memfd(size: u64) -> std::os::fd::OwnedFd {
        let file = tempfile_in_memory();
        file.set_len(size).unwrap();
        file.into()
    }

    #[cfg(target_os = "linux")]
    fn tempfile_in_memory() -> std::fs::File {
        // An unlinked file in the temp dir stands in for a buffer FD here.
        let path = std::env::temp_dir().join(format!(
            "geyser-dmabuf-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn builder_rejects_bad_plane_sets() {
        let b = |planes: &[(u32, u32, u32)], fourcc| {
            planes
                .iter()
                .fold(
                    DmaBuf::builder(64, 64, fourcc, DrmModifier::Linear),
                    |b, &(i, off, stride)| b.add_plane(memfd(1 << 16), i, off, stride),
                )
                .build()
        };
        assert!(b(&[(0, 0, 256)], DrmFourcc::Abgr8888).is_ok());
        assert!(b(&[], DrmFourcc::Abgr8888).is_err());
        assert!(b(&[(1, 0, 256)], DrmFourcc::Abgr8888).is_err());
        assert!(b(&[(0, 0, 0)], DrmFourcc::Abgr8888).is_err());
        assert!(
            b(&[(0, 0, 64)], DrmFourcc::Nv12).is_err(),
            "NV12 needs two planes"
        );
        assert!(b(&[(1, 4096, 64), (0, 0, 64)], DrmFourcc::Nv12).is_ok());
        assert!(b(&[(0, 0, 64), (0, 0, 64)], DrmFourcc::Nv12).is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn layout_check_catches_planes_past_the_buffer() {
        let buf = DmaBuf::builder(64, 64, DrmFourcc::Abgr8888, DrmModifier::Linear)
            .add_plane(memfd(64 * 256), 0, 0, 256)
            .build()
            .unwrap();
        buf.check_layout().unwrap();
        let short = DmaBuf::builder(64, 64, DrmFourcc::Abgr8888, DrmModifier::Linear)
            .add_plane(memfd(64 * 256 - 1), 0, 0, 256)
            .build()
            .unwrap();
        assert!(matches!(
            short.check_layout(),
            Err(Error::InvalidDmaBuf { plane: Some(0), .. })
        ));
        let fd = memfd(4096 * 3);
        let nv12 = DmaBuf::builder(64, 64, DrmFourcc::Nv12, DrmModifier::Linear)
            .add_plane(fd.try_clone().unwrap(), 0, 0, 64)
            .add_plane(fd, 1, 4096, 64)
            .build()
            .unwrap();
        assert!(nv12.single_buffer());
        nv12.check_layout().unwrap();
    }
}
