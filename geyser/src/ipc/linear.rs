//! Linear frames: besides its ring of (optimal-tiled) textures, a producer can deliver each
//! frame as a row-major copy in a shared buffer, made on its own GPU, for consumers that
//! address frames by pointer (CUDA, DLPack tensors), which tiled images cannot serve. A
//! consumer asks for them at connect time ([`FrameLayout::Linear`]); the producer makes the
//! buffer when the first such consumer arrives and copies each frame into it while any is
//! connected.

use super::transport::Connection;
use super::wire::Message;
use crate::common::{ExportInfo, OwnedOsHandle, TextureDescriptor};
use crate::{Error, Result};

/// How a consumer wants its frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FrameLayout {
    /// The producer's textures, imported (Vulkan, wgpu, CUDA arrays).
    #[default]
    Texture,
    /// The textures, and each frame also as a linear copy in a shared buffer
    /// ([`LinearFrames`]).
    Linear,
}

impl std::str::FromStr for FrameLayout {
    type Err = Error;

    /// `texture` or `linear`.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "texture" => Ok(Self::Texture),
            "linear" => Ok(Self::Linear),
            _ => Err(Error::InvalidArgument {
                what: "frame layout",
                reason: format!("`{s}`; use texture or linear"),
            }),
        }
    }
}

/// Where linear frames lie in their buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearLayout {
    /// Regions, one per ring slot.
    pub slots: usize,
    /// Bytes from one row to the next.
    pub row_pitch: u64,
    /// Bytes from one slot's region to the next.
    pub slot_bytes: u64,
}

/// Linear frames start at multiples of this in their buffer (CUDA and DLPack like 256-byte
/// aligned data; 64 KiB keeps every mapping's offset aligned too).
const REGION_ALIGN: u64 = 64 * 1024;

impl LinearLayout {
    /// Tightly packed rows of frames like `desc` (mip 0, one layer), regions rounded up to
    /// 64 KiB.
    pub fn tight(desc: &TextureDescriptor, slots: usize) -> Self {
        let row_pitch = u64::from(desc.width) * u64::from(desc.format.block_bytes());
        let frame = row_pitch * u64::from(desc.height);
        Self {
            slots,
            row_pitch,
            slot_bytes: frame.div_ceil(REGION_ALIGN) * REGION_ALIGN,
        }
    }

    /// Byte offset of slot `slot`'s frame in the buffer.
    pub fn offset(&self, slot: usize) -> u64 {
        self.slot_bytes * slot as u64
    }

    /// Checks a layout a producer sent against the frames it describes.
    fn check(&self, desc: &TextureDescriptor, ring_slots: usize) -> Result<()> {
        let row = u64::from(desc.width) * u64::from(desc.format.block_bytes());
        if self.slots != ring_slots
            || self.row_pitch < row
            || !self
                .row_pitch
                .is_multiple_of(u64::from(desc.format.block_bytes()))
            || self.row_pitch * u64::from(desc.height) > self.slot_bytes
        {
            return Err(Error::Protocol(format!(
                "linear frames of {} slots with rows of {} bytes in {}-byte regions cannot hold a {} ring of {}x{} {}",
                self.slots, self.row_pitch, self.slot_bytes, ring_slots, desc.width, desc.height, desc.format
            )));
        }
        Ok(())
    }
}

/// The linear frames a consumer received: the buffer's memory (OS handle and what importing
/// it needs), the layout, and in timeline mode the "linear ready" timeline (frame `f`'s copy
/// is done when it reaches `f + 1`). Import the memory into the API that reads it (CUDA
/// maps it as a device pointer: `geyser::cuda`).
#[derive(Debug)]
pub struct LinearFrames {
    /// Where the frames lie.
    pub layout: LinearLayout,
    /// The buffer's memory (an opaque FD; an NT handle on Windows).
    pub memory: OwnedOsHandle,
    /// Bytes of its dedicated allocation.
    pub allocation_size: u64,
    /// Its memory type on the producer's device.
    pub memory_type_index: u32,
    /// The producer's `deviceUUID` (the memory lives on that GPU).
    pub device_uuid: [u8; 16],
    /// The producer's `driverUUID`.
    pub driver_uuid: [u8; 16],
    /// Timeline mode: the "linear ready" timeline semaphore (opaque FD).
    pub ready: Option<OwnedOsHandle>,
}

/// Receives the producer's `LinearSetup` (sent right after `PoolSetup`) for a ring of
/// `ring` and checks it.
pub(crate) fn receive_setup(
    conn: &mut Connection,
    timeout: std::time::Duration,
    ring: &[ExportInfo],
) -> Result<LinearFrames> {
    let (msg, fds) = conn.recv(Some(timeout))?;
    let Message::LinearSetup {
        slots,
        row_pitch,
        slot_bytes,
        allocation_size,
        memory_type_index,
        timeline,
    } = msg
    else {
        return Err(match msg {
            Message::Reject { reason, detail } => Error::Rejected { reason, detail },
            other => Error::Protocol(format!("expected LinearSetup, got {}", other.kind())),
        });
    };
    let first = ring
        .first()
        .ok_or_else(|| Error::Protocol("linear frames for an empty ring".into()))?;
    let layout = LinearLayout {
        slots: slots as usize,
        row_pitch,
        slot_bytes,
    };
    layout.check(&first.descriptor, ring.len())?;
    let mut fds = fds.into_iter();
    let memory = fds
        .next()
        .ok_or_else(|| Error::Protocol("LinearSetup without its buffer".into()))?;
    let ready = if timeline {
        Some(
            fds.next()
                .ok_or_else(|| Error::Protocol("LinearSetup without its timeline".into()))?,
        )
    } else {
        None
    };
    Ok(LinearFrames {
        layout,
        memory,
        allocation_size,
        memory_type_index,
        device_uuid: first.device_uuid,
        driver_uuid: first.driver_uuid,
        ready,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{TextureFormat, TextureUsage};

    #[test]
    fn tight_layouts_hold_their_frames_and_start_aligned() {
        let desc = TextureDescriptor::new(
            1920,
            1080,
            TextureFormat::Rgba8Unorm,
            &[TextureUsage::CopySrc],
        );
        let l = LinearLayout::tight(&desc, 3);
        assert_eq!(l.row_pitch, 1920 * 4);
        assert!(l.slot_bytes >= 1920 * 4 * 1080 && l.slot_bytes.is_multiple_of(REGION_ALIGN));
        assert_eq!(l.offset(2), 2 * l.slot_bytes);
        l.check(&desc, 3).unwrap();
        assert!(l.check(&desc, 4).is_err());
        let short = LinearLayout {
            row_pitch: 1920 * 4 - 4,
            ..l
        };
        assert!(short.check(&desc, 3).is_err());
        assert_eq!(
            "Linear".parse::<FrameLayout>().unwrap(),
            FrameLayout::Linear
        );
        assert!("tiled".parse::<FrameLayout>().is_err());
    }
}
