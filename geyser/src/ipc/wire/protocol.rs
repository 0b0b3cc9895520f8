//! The wire protocol: versioned, length-prefixed postcard messages with hard size caps, and the
//! checks every message from a peer passes before anything acts on it.

use serde::{Deserialize, Serialize};

use crate::common::{
    usages_from_bits_checked, ExportInfo, RejectReason, TextureLayout, TextureUsage,
};
use crate::{Error, Result};

/// The protocol version. Peers with another version are refused at Hello: a producer answers
/// a Hello of another version with its own, whose magic and version every version can read,
/// so both ends report [`Error::VersionMismatch`]. Version 3: typed rejections, frames named
/// by [`FrameId`], host-ring messages renamed. Version 4: binary-semaphore sync
/// (`BinarySyncSetup`), ordered slots (`PoolSetup::ordered`), linear frames (`LinearRequest`,
/// `LinearSetup`), rings on the consumer's GPU (`PeerRingSetup`) and DMA-BUF rings for
/// consumers of another driver (`DmaBufImport`).
pub const PROTOCOL_VERSION: u32 = 4;
/// First bytes of every Hello.
pub const MAGIC: [u8; 4] = *b"GYSR";
/// Largest frame (length prefix included) either side sends or accepts.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most file descriptors that travel with one message.
pub const MAX_FDS_PER_MESSAGE: usize = 16;
/// Most textures in a ring.
pub const MAX_SLOTS: usize = 16;
/// Longest string field (names, reasons, labels).
pub const MAX_STRING: usize = 256;
/// Most sync modes a Hello lists.
pub const MAX_SYNC_MODES: usize = 8;
/// Most DRM format modifiers a [`Message::DmaBufImport`] lists.
pub const MAX_MODIFIERS: usize = 64;
/// Bytes of the length prefix.
pub const HEADER_BYTES: usize = 4;

/// How the two sides synchronize GPU access to a shared texture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncMode {
    /// Host-synchronized fallback: the producer waits for its GPU fence before `FrameReady`,
    /// the consumer waits for its own before `FrameReleased`. Works on every device.
    Host,
    /// Exported binary semaphores: per ring slot a "ready" semaphore the producer signals and
    /// a "released" one the consumer signals, exported once at pool setup
    /// ([`Message::BinarySyncSetup`], opaque FDs) and reused every frame. Each side sends its
    /// frame message only after submitting the signal the other side's wait needs
    /// (`ipc/binary.rs` has the rules and what happens when a peer dies).
    BinarySemaphore,
    /// Exported timeline semaphores (exchanged once; values per frame).
    Timeline,
}

/// One frame in the ring: which slot holds it, and its number (0, 1, 2, … in present order).
/// The producer's "frame ready" timeline reaches `frame + 1` when its texels are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameId {
    /// Ring slot (`0..slots`).
    pub slot: u32,
    /// Frame number.
    pub frame: u64,
}

impl FrameId {
    /// The slot as an index into the ring.
    pub fn slot_index(self) -> usize {
        self.slot as usize
    }
}

impl std::fmt::Display for FrameId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "frame {} in slot {}", self.frame, self.slot)
    }
}

/// Which end of a connection a peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Owns the ring and presents frames.
    Producer,
    /// Imports the ring and reads frames.
    Consumer,
}

/// First message in each direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`]; first, so any version can recognize a Geyser peer.
    pub magic: [u8; 4],
    /// [`PROTOCOL_VERSION`] of the sender; second, so any version can read it.
    pub version: u32,
    /// Producer or consumer.
    pub role: Role,
    /// Sender's process id (informational; credentials come from the socket).
    pub pid: u32,
    /// `deviceUUID` of the sender's GPU.
    pub device_uuid: [u8; 16],
    /// `driverUUID` of the sender's driver.
    pub driver_uuid: [u8; 16],
    /// Sync modes the sender supports, best first (1..=[`MAX_SYNC_MODES`]).
    #[serde(deserialize_with = "bounded_seq::<_, _, MAX_SYNC_MODES>")]
    pub sync_modes: Vec<SyncMode>,
    /// Endpoint or consumer name.
    pub name: String,
}

impl Hello {
    /// A Hello of this version and process.
    pub fn new(
        role: Role,
        device_uuid: [u8; 16],
        driver_uuid: [u8; 16],
        sync_modes: Vec<SyncMode>,
        name: String,
    ) -> Self {
        Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            role,
            pid: std::process::id(),
            device_uuid,
            driver_uuid,
            sync_modes,
            name,
        }
    }
}

/// Deserializes a sequence of at most `N` elements. A longer one fails on its length, before any
/// element is decoded, and preallocation never exceeds `N` elements whatever the length says
/// (serde's default would trust it up to 1 MiB).
fn bounded_seq<'de, D, T, const N: usize>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T, const N: usize>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for Bounded<T, N> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a sequence of at most {N} elements")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Vec<T>, A::Error> {
            let hint = seq.size_hint().unwrap_or(0);
            if hint > N {
                return Err(serde::de::Error::invalid_length(hint, &self));
            }
            let mut out = Vec::with_capacity(hint);
            while let Some(item) = seq.next_element()? {
                if out.len() == N {
                    return Err(serde::de::Error::invalid_length(N + 1, &self));
                }
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded::<T, N>(std::marker::PhantomData))
}

/// Everything that crosses the socket. `Hello` must stay variant 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Handshake, both directions.
    Hello(Hello),
    /// The producer refuses the connection (or, for [`RejectReason::Limit`], drops an
    /// admitted consumer), and why: the reason tells retry from fatal.
    Reject {
        /// What kind of refusal.
        reason: RejectReason,
        /// Details for people.
        detail: String,
    },
    /// The ring, once per connection; one FD per slot travels with it, in order.
    PoolSetup {
        /// Bumped when the producer replaces its ring.
        generation: u64,
        /// The negotiated sync mode.
        sync: SyncMode,
        /// What each slot's FD holds (1..=[`MAX_SLOTS`]).
        #[serde(deserialize_with = "bounded_seq::<_, _, MAX_SLOTS>")]
        slots: Vec<ExportInfo>,
        /// Frame `f` is always written into slot `f % slots`
        /// (`ProducerOptions::ordered_slots`), so a consumer can prepare its GPU work for a
        /// frame before the frame's message arrives.
        ordered: bool,
    },
    /// Producer → consumer: this frame is ready to read (timeline mode: once the "ready"
    /// timeline reaches `frame + 1`).
    FrameReady {
        /// The frame.
        id: FrameId,
        /// Producer's `CLOCK_MONOTONIC` at present, nanoseconds.
        present_ns: u64,
        /// Producer's `CLOCK_MONOTONIC` when this message was sent (later than `present_ns`
        /// when the frame waited for a busy consumer), nanoseconds.
        sent_ns: u64,
    },
    /// Consumer → producer: done with this frame.
    FrameReleased {
        /// The frame.
        id: FrameId,
        /// Timeline mode: the value of the consumer's release timeline the producer's GPU
        /// must wait for before writing the slot again (0 in host mode).
        value: u64,
    },
    /// Timeline mode, once per connection and direction: the timeline semaphore FD beside it
    /// (producer → consumer: "frame ready" at `frame + 1`; consumer → producer: "released").
    SyncSetup {
        /// The mode this semaphore serves.
        sync: SyncMode,
    },
    /// Either side is closing the connection, and why.
    Bye {
        /// Why.
        reason: String,
    },
    /// Consumer → producer, before its Hello: deliver frames through a host ring even if this
    /// consumer could import the producer's memory (tests, and consumers that want their own
    /// copy).
    HostRingRequest,
    /// Producer → consumer, instead of `PoolSetup`, for a consumer that gets a host ring (on
    /// another device, or asked for one): frames arrive in a ring of `slots` host-memory
    /// regions of `slot_bytes` each, in the shared memory beside this message; the consumer
    /// copies each into its own texture.
    HostRingSetup {
        /// Bumped when the producer replaces its ring.
        generation: u64,
        /// What the frames are (descriptor and extent; the allocation fields are unused).
        info: ExportInfo,
        /// Slots in the ring (1..=[`MAX_SLOTS`]).
        slots: u32,
        /// Bytes per slot region (the frame tightly packed, rounded up to 64 KiB).
        slot_bytes: u64,
    },
    /// Binary-semaphore mode, once per connection and direction, after `PoolSetup`: one
    /// binary semaphore per ring slot beside it, in slot order (producer → consumer: "ready",
    /// the producer signals it before sending a frame of that slot; consumer → producer:
    /// "released", the consumer signals it before releasing a frame of that slot).
    BinarySyncSetup {
        /// Slots, one FD each (1..=[`MAX_SLOTS`], the ring's slot count).
        slots: u32,
    },
    /// Consumer → producer, before its Hello: also deliver every frame as a linear copy
    /// ([`Message::LinearSetup`]), for APIs that address frames by pointer (CUDA, DLPack).
    LinearRequest,
    /// Producer → consumer, right after `PoolSetup`, to a consumer that sent `LinearRequest`:
    /// one exportable buffer (its FD beside this message) holding `slots` regions of
    /// `slot_bytes`; slot `s`'s frame is copied into region `s`, rows `row_pitch` bytes apart,
    /// on the producer's GPU. With `timeline`, a second FD follows: a timeline semaphore that
    /// reaches `frame + 1` when frame `frame`'s copy is done (host mode: the copy is done
    /// before the frame is announced).
    LinearSetup {
        /// Regions in the buffer, one per ring slot (1..=[`MAX_SLOTS`]).
        slots: u32,
        /// Bytes from one row to the next.
        row_pitch: u64,
        /// Bytes from one region to the next.
        slot_bytes: u64,
        /// Bytes of the buffer's dedicated allocation.
        allocation_size: u64,
        /// Memory type of the allocation on the producer's device.
        memory_type_index: u32,
        /// Whether the "linear ready" timeline's FD follows the buffer's.
        timeline: bool,
    },
    /// Producer → consumer, instead of `PoolSetup`, for a consumer on another GPU that the
    /// producer reaches by GPU-to-GPU copies: a ring of textures on the consumer's own device,
    /// one FD per slot beside this message. Frames are copied into it before they are
    /// announced (host-synchronized: the consumer waits for nothing).
    PeerRingSetup {
        /// Bumped when the producer replaces its ring.
        generation: u64,
        /// What each slot's FD holds (1..=[`MAX_SLOTS`]).
        #[serde(deserialize_with = "bounded_seq::<_, _, MAX_SLOTS>")]
        slots: Vec<ExportInfo>,
    },
    /// Consumer → producer, before its Hello: this consumer's device imports DMA-BUFs, so a
    /// ring of DMA-BUF memory (`TextureMemory::DmaBuf`, `HostDmaBuf`) can be shared with it
    /// even across GPUs or drivers, host-synchronized
    /// ([`crate::vulkan::TransferPath::DmaBuf`]). LINEAR is always importable; `modifiers` lists
    /// the other DRM format modifiers it imports (for some format: the import itself checks
    /// the ring's).
    DmaBufImport {
        /// DRM format modifiers besides LINEAR (0..=[`MAX_MODIFIERS`]).
        #[serde(deserialize_with = "bounded_seq::<_, _, MAX_MODIFIERS>")]
        modifiers: Vec<u64>,
    },
}

/// Largest host-memory slot a consumer accepts (a 16K RGBA32F frame is 4 GiB; 2 GiB covers
/// every 8K format).
pub const MAX_SLOT_BYTES: u64 = 2 << 30;

impl Message {
    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "Hello",
            Message::Reject { .. } => "Reject",
            Message::PoolSetup { .. } => "PoolSetup",
            Message::FrameReady { .. } => "FrameReady",
            Message::FrameReleased { .. } => "FrameReleased",
            Message::SyncSetup { .. } => "SyncSetup",
            Message::Bye { .. } => "Bye",
            Message::HostRingRequest => "HostRingRequest",
            Message::HostRingSetup { .. } => "HostRingSetup",
            Message::BinarySyncSetup { .. } => "BinarySyncSetup",
            Message::LinearRequest => "LinearRequest",
            Message::LinearSetup { .. } => "LinearSetup",
            Message::PeerRingSetup { .. } => "PeerRingSetup",
            Message::DmaBufImport { .. } => "DmaBufImport",
        }
    }

    /// File descriptors that must travel with this message.
    pub fn expected_fds(&self) -> usize {
        match self {
            Message::PoolSetup { slots, .. } | Message::PeerRingSetup { slots, .. } => slots.len(),
            Message::SyncSetup { .. } => 1,
            Message::HostRingSetup { .. } => 1,
            Message::BinarySyncSetup { slots } => *slots as usize,
            Message::LinearSetup { timeline, .. } => 1 + usize::from(*timeline),
            _ => 0,
        }
    }

    /// Before sending: `given` OS handles (FDs, NT handles) must be exactly what this message
    /// carries ([`Error::InvalidArgument`] otherwise: a caller's mistake).
    pub fn check_outgoing_handles(&self, given: usize) -> Result<()> {
        if given != self.expected_fds() {
            return Err(Error::InvalidArgument {
                what: "OS handles",
                reason: format!(
                    "{} carries {} OS handles, {given} given",
                    self.kind(),
                    self.expected_fds()
                ),
            });
        }
        Ok(())
    }

    /// After receiving: the peer sent `got` OS handles with this message, which must be
    /// exactly what it carries ([`Error::Protocol`] otherwise: the peer broke the protocol).
    pub fn check_incoming_handles(&self, got: usize) -> Result<()> {
        if got != self.expected_fds() {
            return Err(Error::Protocol(format!(
                "{} came with {got} OS handles, expected {}",
                self.kind(),
                self.expected_fds()
            )));
        }
        Ok(())
    }

    /// Semantic checks on a decoded message: string lengths, counts, descriptors.
    pub fn validate(&self) -> Result<()> {
        let string = |what: &str, s: &str| {
            if s.len() > MAX_STRING {
                Err(Error::Protocol(format!(
                    "{what} is {} bytes, limit {MAX_STRING}",
                    s.len()
                )))
            } else {
                Ok(())
            }
        };
        match self {
            Message::Hello(h) => {
                if h.magic != MAGIC {
                    return Err(Error::Protocol(format!(
                        "not a Geyser peer (magic {:?})",
                        h.magic
                    )));
                }
                if h.version != PROTOCOL_VERSION {
                    return Err(Error::VersionMismatch {
                        peer: h.version,
                        ours: PROTOCOL_VERSION,
                    });
                }
                if h.sync_modes.is_empty() || h.sync_modes.len() > MAX_SYNC_MODES {
                    return Err(Error::Protocol(format!(
                        "{} sync modes in Hello",
                        h.sync_modes.len()
                    )));
                }
                string("name", &h.name)
            }
            Message::Reject { detail, .. } => string("detail", detail),
            Message::Bye { reason } => string("reason", reason),
            Message::HostRingRequest | Message::LinearRequest => Ok(()),
            Message::DmaBufImport { modifiers } => {
                if modifiers.len() > MAX_MODIFIERS {
                    return Err(Error::Protocol(format!(
                        "{} modifiers in DmaBufImport, limit {MAX_MODIFIERS}",
                        modifiers.len()
                    )));
                }
                Ok(())
            }
            Message::LinearSetup {
                slots,
                row_pitch,
                slot_bytes,
                allocation_size,
                ..
            } => {
                let total = slot_bytes.checked_mul(u64::from(*slots));
                if *slots == 0
                    || *slots as usize > MAX_SLOTS
                    || *row_pitch == 0
                    || slot_bytes < row_pitch
                    || *slot_bytes > MAX_SLOT_BYTES
                    || total.is_none_or(|t| t > *allocation_size)
                {
                    return Err(Error::Protocol(format!(
                        "linear ring of {slots} slots of {slot_bytes} bytes (rows of {row_pitch}) in {allocation_size} bytes"
                    )));
                }
                Ok(())
            }
            Message::HostRingSetup {
                info,
                slots,
                slot_bytes,
                ..
            } => {
                if *slots == 0 || *slots as usize > MAX_SLOTS {
                    return Err(Error::Protocol(format!(
                        "{slots} slots, allowed 1..={MAX_SLOTS}"
                    )));
                }
                validate_frame_info("host ring", info)?;
                // Every aspect, level and layer of the frame (the layout both ends compute).
                let frame = TextureLayout::new(&info.descriptor, &info.extent).size();
                if *slot_bytes < frame
                    || *slot_bytes > MAX_SLOT_BYTES
                    || !slot_bytes.is_multiple_of(4096)
                {
                    return Err(Error::Protocol(format!(
                        "host ring slot of {slot_bytes} bytes for a {frame}-byte frame"
                    )));
                }
                Ok(())
            }
            Message::PoolSetup { slots, .. } | Message::PeerRingSetup { slots, .. } => {
                if slots.is_empty() || slots.len() > MAX_SLOTS {
                    return Err(Error::Protocol(format!(
                        "{} slots, allowed 1..={MAX_SLOTS}",
                        slots.len()
                    )));
                }
                for (i, info) in slots.iter().enumerate() {
                    validate_frame_info(&format!("slot {i}"), info)?;
                    if info.allocation_size == 0 {
                        return Err(Error::Protocol(format!("slot {i}: zero allocation size")));
                    }
                }
                Ok(())
            }
            Message::SyncSetup { sync } => {
                if *sync != SyncMode::Timeline {
                    return Err(Error::Protocol(format!(
                        "SyncSetup for {sync:?}, only Timeline uses one"
                    )));
                }
                Ok(())
            }
            Message::BinarySyncSetup { slots } => {
                if *slots == 0 || *slots as usize > MAX_SLOTS {
                    return Err(Error::Protocol(format!(
                        "{slots} binary semaphores, allowed 1..={MAX_SLOTS}"
                    )));
                }
                Ok(())
            }
            Message::FrameReady { id, .. } | Message::FrameReleased { id, .. } => {
                if id.slot_index() >= MAX_SLOTS {
                    return Err(Error::Protocol(format!("slot {} out of range", id.slot)));
                }
                Ok(())
            }
        }
    }
}

/// The checks a frame description from a peer passes (pool slot or host ring): label length,
/// a usage list of known, distinct usages, a descriptor valid with its extent.
fn validate_frame_info(what: &str, info: &ExportInfo) -> Result<()> {
    let d = &info.descriptor;
    if d.label.as_ref().is_some_and(|l| l.len() > MAX_STRING) {
        return Err(Error::Protocol(format!(
            "{what}: label longer than {MAX_STRING} bytes"
        )));
    }
    if d.usage.len() > TextureUsage::ALL.len()
        || usages_from_bits_checked(crate::common::usage_bits(&d.usage)).is_none()
    {
        return Err(Error::Protocol(format!("{what}: bad usage list")));
    }
    if info.planes.len() > crate::common::MAX_PLANES
        || info
            .planes
            .iter()
            .any(|p| p.stride == 0 || p.offset >= info.allocation_size.max(1))
    {
        return Err(Error::Protocol(format!(
            "{what}: bad plane layouts {:?}",
            info.planes
        )));
    }
    d.validate_with(&info.extent)
        .map_err(|e| Error::Protocol(format!("{what}: {e}")))
}

/// `reason` cut to [`MAX_STRING`] bytes (at a character boundary), so a `Reject` or `Bye`
/// carrying it passes the receiver's checks.
pub fn bounded_reason(mut reason: String) -> String {
    if reason.len() > MAX_STRING {
        let mut end = MAX_STRING - "…".len();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

/// Encodes `msg` as one frame into `out` (cleared first; its capacity is reused, so steady-state
/// messages do not allocate).
pub fn encode_into(msg: &Message, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    let out_taken = std::mem::take(out);
    let mut encoded = postcard::to_extend(msg, out_taken)
        .map_err(|e| Error::Protocol(format!("encode {}: {e}", msg.kind())))?;
    let len = encoded.len() - HEADER_BYTES;
    if encoded.len() > MAX_MESSAGE_BYTES {
        *out = encoded;
        return Err(Error::Protocol(format!(
            "{} is {len} bytes, limit {MAX_MESSAGE_BYTES}",
            msg.kind()
        )));
    }
    encoded[..HEADER_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
    *out = encoded;
    Ok(())
}

/// Decodes and validates one frame. Wrong length, trailing bytes, bad postcard, a Hello of
/// another version, or a failed semantic check give an error; nothing here panics or
/// allocates more than the frame's own size implies.
pub fn decode(frame: &[u8]) -> Result<Message> {
    if frame.len() < HEADER_BYTES {
        return Err(Error::Protocol(format!(
            "frame of {} bytes has no length prefix",
            frame.len()
        )));
    }
    if frame.len() > MAX_MESSAGE_BYTES {
        return Err(Error::Protocol(format!(
            "frame of {} bytes exceeds {MAX_MESSAGE_BYTES}",
            frame.len()
        )));
    }
    let (head, payload) = frame.split_at(HEADER_BYTES);
    let declared = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if declared != payload.len() {
        return Err(Error::Protocol(format!(
            "length prefix says {declared} bytes, frame has {}",
            payload.len()
        )));
    }
    let msg = match postcard::take_from_bytes::<Message>(payload) {
        Ok((m, [])) => m,
        Ok((_, rest)) => {
            return Err(Error::Protocol(format!(
                "{} trailing bytes after the message",
                rest.len()
            )))
        }
        Err(e) => {
            // A Hello from another version may not parse as ours: report the version.
            if let Some(v) = peek_hello_version(payload) {
                if v != PROTOCOL_VERSION {
                    return Err(Error::VersionMismatch {
                        peer: v,
                        ours: PROTOCOL_VERSION,
                    });
                }
            }
            return Err(Error::Protocol(format!("undecodable message: {e}")));
        }
    };
    msg.validate()?;
    Ok(msg)
}

/// The version field of a Hello payload (variant 0, magic, then a varint version), if the
/// payload starts like one.
pub fn peek_hello_version(payload: &[u8]) -> Option<u32> {
    let rest = payload.strip_prefix(&[0u8])?.strip_prefix(&MAGIC[..])?;
    postcard::take_from_bytes::<u32>(rest).ok().map(|(v, _)| v)
}

#[cfg(test)]
mod tests;
