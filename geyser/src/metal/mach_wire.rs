//! The memory layout of the mach messages that Geyser's macOS transport
//! (`geyser::metal::mach`, macOS only) sends, and the checks every received message passes before
//! anything acts on it. Pure logic over byte buffers, compiled and unit-tested on every
//! platform, so the offsets, caps and refusals are pinned where CI can run them.
//!
//! One message, as `mach_msg` sees it on 64-bit Darwin (little-endian, native `u32` fields;
//! `<mach/message.h>` packs these structs to 4 bytes):
//!
//! ```text
//! offset      size  field
//! 0           24    mach_msg_header_t: bits, size, remote port, local port, voucher, id
//! 24          4     mach_msg_body_t: descriptor count n (the COMPLEX bit is always set)
//! 28          12*n  mach_msg_port_descriptor_t: name, pad1, pad2:16 disposition:8 type:8
//! 28+12n      4     body length L
//! 32+12n      L     body bytes, then zeros up to a multiple of 4 (msgh_size)
//! msgh_size   52    (received only) mach_msg_audit_trailer_t, which the receiver asks for
//! ```
//!
//! Two message ids: [`MSG_ID_CONNECT`] (a client's first message to a registered service:
//! exactly two descriptors, the receive right of the client-to-server queue and a send right
//! to the server-to-client queue, no body) and [`MSG_ID_DATA`] (up to [`MAX_PORTS`] send
//! rights and up to [`MAX_BODY_BYTES`] of body). The kernel's no-senders notification
//! ([`MSG_ID_NO_SENDERS`]) tells a receiver that its peer is gone.

use std::ops::Range;
use std::time::Duration;

use crate::{Error, Result};

/// Prefix of every bootstrap service name Geyser registers: endpoint `cam` is `geyser.cam`.
pub const SERVICE_PREFIX: &str = "geyser.";
/// Longest endpoint name (before [`SERVICE_PREFIX`]), as for Unix sockets and named pipes.
pub const MAX_NAME_BYTES: usize = crate::common::MAX_ENDPOINT_NAME;
/// Largest body of one message: the cap of Geyser's wire frames
/// (`ipc::wire::MAX_MESSAGE_BYTES`), so any frame fits inline.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most port rights one data message carries (`ipc::wire::MAX_FDS_PER_MESSAGE`).
pub const MAX_PORTS: usize = 16;
/// Descriptors of a connect message: the client-to-server receive right, the
/// server-to-client send right.
pub const CONNECT_PORTS: usize = 2;

/// `sizeof(mach_msg_header_t)`.
pub const HEADER_BYTES: usize = 24;
/// `sizeof(mach_msg_body_t)`.
pub const BODY_COUNT_BYTES: usize = 4;
/// `sizeof(mach_msg_port_descriptor_t)` in a 64-bit task (sent and received alike).
pub const PORT_DESCRIPTOR_BYTES: usize = 12;
/// The body length field.
pub const LENGTH_BYTES: usize = 4;
/// `sizeof(mach_msg_audit_trailer_t)`: type, size, seqno, security token (2 words), audit
/// token (8 words).
pub const AUDIT_TRAILER_BYTES: usize = 52;
/// `sizeof(mach_msg_max_trailer_t)` (`mach_msg_mac_trailer_t`): the most a trailer can take.
pub const MAX_TRAILER_BYTES: usize = 68;
/// Largest message either side sends: a connect message's two ports plus a full data
/// message's, and a full body (already a multiple of 4).
pub const MAX_SEND_BYTES: usize = HEADER_BYTES
    + BODY_COUNT_BYTES
    + (MAX_PORTS + CONNECT_PORTS) * PORT_DESCRIPTOR_BYTES
    + LENGTH_BYTES
    + MAX_BODY_BYTES;
/// Size of a receive buffer: the largest message and the largest trailer. A larger message
/// fails with `MACH_RCV_TOO_LARGE` and the kernel destroys it (we never pass
/// `MACH_RCV_LARGE`).
pub const RECV_BUFFER_BYTES: usize = MAX_SEND_BYTES + MAX_TRAILER_BYTES;

/// `MACH_MSGH_BITS_COMPLEX`.
pub const MSGH_BITS_COMPLEX: u32 = 0x8000_0000;
/// `MACH_MSGH_BITS_REMOTE_MASK`.
pub const MSGH_BITS_REMOTE_MASK: u32 = 0x1f;
/// `MACH_MSG_TYPE_MOVE_RECEIVE`, and `MACH_MSG_TYPE_PORT_RECEIVE` once received.
pub const MSG_TYPE_MOVE_RECEIVE: u8 = 16;
/// `MACH_MSG_TYPE_MOVE_SEND`, and `MACH_MSG_TYPE_PORT_SEND` once received.
pub const MSG_TYPE_MOVE_SEND: u8 = 17;
/// `MACH_MSG_TYPE_COPY_SEND`.
pub const MSG_TYPE_COPY_SEND: u8 = 19;
/// `MACH_MSG_TYPE_MAKE_SEND`.
pub const MSG_TYPE_MAKE_SEND: u8 = 20;
/// `MACH_MSG_PORT_DESCRIPTOR`.
pub const PORT_DESCRIPTOR_TYPE: u8 = 0;
/// `MACH_PORT_NULL`.
pub const PORT_NULL: u32 = 0;
/// `MACH_PORT_DEAD`.
pub const PORT_DEAD: u32 = !0;
/// `MACH_MSG_TRAILER_FORMAT_0`.
pub const TRAILER_FORMAT_0: u32 = 0;
/// `MACH_RCV_TRAILER_AUDIT`.
pub const RCV_TRAILER_AUDIT: u32 = 3;
/// The receive options that ask for the audit trailer:
/// `MACH_RCV_TRAILER_TYPE(MACH_MSG_TRAILER_FORMAT_0) | MACH_RCV_TRAILER_ELEMENTS(MACH_RCV_TRAILER_AUDIT)`.
pub const RCV_AUDIT_TRAILER_OPTIONS: i32 =
    (((TRAILER_FORMAT_0 & 0xf) << 28) | ((RCV_TRAILER_AUDIT & 0xf) << 24)) as i32;

/// `msgh_id` of a client's connect message (`GYS` and 1).
pub const MSG_ID_CONNECT: i32 = 0x4759_5301;
/// `msgh_id` of a data message (`GYS` and 2).
pub const MSG_ID_DATA: i32 = 0x4759_5302;
/// `MACH_NOTIFY_NO_SENDERS`: the kernel's notice that no send right to a port is left.
pub const MSG_ID_NO_SENDERS: i32 = 0o106;

/// The bootstrap service name of endpoint `name`: [`SERVICE_PREFIX`] and the name. Names follow
/// [`check_endpoint_name`](crate::common::check_endpoint_name) ([`Error::InvalidArgument`]
/// otherwise), as on Unix and Windows.
pub fn service_name(name: &str) -> Result<String> {
    crate::common::check_endpoint_name(name)?;
    Ok(format!("{SERVICE_PREFIX}{name}"))
}

/// A receive timeout in milliseconds for `mach_msg` (`MACH_RCV_TIMEOUT`): `None` waits
/// forever (no timeout option). Rounded up, so a non-zero wait never becomes a poll;
/// saturates at `u32::MAX` ms (about 49 days).
pub fn timeout_ms(timeout: Option<Duration>) -> Option<u32> {
    let t = timeout?;
    let ms = t.as_millis() + u128::from(t.subsec_nanos() % 1_000_000 != 0);
    Some(u32::try_from(ms).unwrap_or(u32::MAX))
}

const fn round4(n: usize) -> usize {
    (n + 3) & !3
}

/// Where each part of a message with `ports` descriptors and a `body`-byte body lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Descriptor count.
    pub ports: usize,
    /// Body bytes.
    pub body: usize,
}

impl Layout {
    /// The layout of a message we send: [`Error::InvalidArgument`] past [`MAX_BODY_BYTES`] or
    /// [`MAX_PORTS`] + [`CONNECT_PORTS`] descriptors.
    pub fn new(ports: usize, body: usize) -> Result<Self> {
        if body > MAX_BODY_BYTES {
            return Err(Error::InvalidArgument {
                what: "mach message body",
                reason: format!("{body} bytes; at most {MAX_BODY_BYTES} travel in one message"),
            });
        }
        if ports > MAX_PORTS + CONNECT_PORTS {
            return Err(Error::InvalidArgument {
                what: "mach message ports",
                reason: format!("{ports} ports; at most {MAX_PORTS} travel in one message"),
            });
        }
        Ok(Self { ports, body })
    }

    /// Offset of descriptor `i`.
    pub const fn descriptor(i: usize) -> usize {
        HEADER_BYTES + BODY_COUNT_BYTES + i * PORT_DESCRIPTOR_BYTES
    }

    /// Offset of the body length field.
    pub const fn length_offset(&self) -> usize {
        Self::descriptor(self.ports)
    }

    /// Offset of the body.
    pub const fn body_offset(&self) -> usize {
        self.length_offset() + LENGTH_BYTES
    }

    /// `msgh_size`: everything up to the end of the body, rounded up to 4 bytes (`mach_msg`
    /// refuses other sizes).
    pub const fn size(&self) -> usize {
        round4(self.body_offset() + self.body)
    }
}

/// A port right to put in a message: its name in this task and what the kernel should do with
/// it (`MACH_MSG_TYPE_COPY_SEND`, `MAKE_SEND`, `MOVE_RECEIVE`…).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The port name.
    pub name: u32,
    /// The disposition (one of the `MSG_TYPE_*` values).
    pub disposition: u8,
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn get_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

/// Writes a complex message to `remote` (`MACH_MSG_TYPE_COPY_SEND`, no reply port) into the
/// start of `buf` and returns its size. [`Error::InvalidArgument`] past the caps or when `buf`
/// is too small.
pub fn encode(
    buf: &mut [u8],
    remote: u32,
    id: i32,
    ports: &[Outgoing],
    body: &[u8],
) -> Result<usize> {
    let layout = Layout::new(ports.len(), body.len())?;
    let size = layout.size();
    if buf.len() < size {
        return Err(Error::InvalidArgument {
            what: "mach message buffer",
            reason: format!("{} bytes, the message needs {size}", buf.len()),
        });
    }
    let buf = &mut buf[..size];
    put_u32(buf, 0, u32::from(MSG_TYPE_COPY_SEND) | MSGH_BITS_COMPLEX);
    // `size` is at most MAX_SEND_BYTES, far below u32::MAX.
    put_u32(buf, 4, size as u32);
    put_u32(buf, 8, remote);
    put_u32(buf, 12, PORT_NULL); // local (reply) port
    put_u32(buf, 16, PORT_NULL); // voucher
    put_u32(buf, 20, id as u32);
    put_u32(buf, HEADER_BYTES, ports.len() as u32);
    for (i, port) in ports.iter().enumerate() {
        let at = Layout::descriptor(i);
        put_u32(buf, at, port.name);
        put_u32(buf, at + 4, 0); // pad1
        buf[at + 8..at + 10].fill(0); // pad2
        buf[at + 10] = port.disposition;
        buf[at + 11] = PORT_DESCRIPTOR_TYPE;
    }
    put_u32(buf, layout.length_offset(), body.len() as u32);
    let start = layout.body_offset();
    buf[start..start + body.len()].copy_from_slice(body);
    buf[start + body.len()..].fill(0);
    Ok(size)
}

/// Who sent a received message, from its audit trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender {
    /// Effective uid (audit token word 1).
    pub euid: u32,
    /// Process id (audit token word 5); 0 for the kernel.
    pub pid: i32,
}

/// A received message whose structure checked out: where its parts are in the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// `msgh_id`.
    pub id: i32,
    /// Whether `MACH_MSGH_BITS_COMPLEX` is set.
    pub complex: bool,
    /// `msgh_remote_port` as received: the reply right the sender attached, if any.
    pub reply_port: u32,
    /// Number of port descriptors (every descriptor is one).
    pub ports: usize,
    /// Where the body lies in the buffer (empty for simple messages).
    pub body: Range<usize>,
    /// From the audit trailer.
    pub sender: Sender,
}

impl Parsed {
    /// Whether this is the kernel's no-senders notification (a simple message with that id).
    pub fn is_no_senders(&self) -> bool {
        !self.complex && self.id == MSG_ID_NO_SENDERS
    }
}

fn protocol(reason: impl Into<String>) -> Error {
    Error::Protocol(reason.into())
}

/// Checks the structure of a message `mach_msg` received into `buf` with
/// [`RCV_AUDIT_TRAILER_OPTIONS`]: sizes within the buffer, an audit trailer, every descriptor
/// a port descriptor, at most [`MAX_PORTS`] + [`CONNECT_PORTS`] of them, a body length that
/// matches `msgh_size` and at most [`MAX_BODY_BYTES`]. [`Error::Protocol`] otherwise; the
/// caller then destroys the message (`mach_msg_destroy`) so that no right it carries leaks.
pub fn parse(buf: &[u8]) -> Result<Parsed> {
    let short = || protocol("mach message shorter than its header");
    let bits = get_u32(buf, 0).ok_or_else(short)?;
    let size = get_u32(buf, 4).ok_or_else(short)? as usize;
    let reply_port = get_u32(buf, 8).ok_or_else(short)?;
    let id = get_u32(buf, 20).ok_or_else(short)? as i32;
    if size < HEADER_BYTES || !size.is_multiple_of(4) || size > buf.len() {
        return Err(protocol(format!(
            "mach message size {size} is not a multiple of 4 within {HEADER_BYTES}..={}",
            buf.len()
        )));
    }
    let sender = audit_sender(buf, size)?;
    let complex = bits & MSGH_BITS_COMPLEX != 0;
    if !complex {
        return Ok(Parsed {
            id,
            complex,
            reply_port,
            ports: 0,
            body: 0..0,
            sender,
        });
    }
    let count = get_u32(buf, HEADER_BYTES)
        .filter(|_| size >= HEADER_BYTES + BODY_COUNT_BYTES)
        .ok_or_else(|| protocol("complex mach message without a descriptor count"))?
        as usize;
    if count > MAX_PORTS + CONNECT_PORTS {
        return Err(protocol(format!(
            "{count} descriptors in one message; at most {MAX_PORTS} ports travel in one"
        )));
    }
    for i in 0..count {
        // Every earlier descriptor is a 12-byte port descriptor, so this offset is right; the
        // type byte sits at +11 in every 64-bit descriptor kind, so reading it is too.
        let at = Layout::descriptor(i);
        if at + PORT_DESCRIPTOR_BYTES > size {
            return Err(protocol("mach message ends inside its descriptors"));
        }
        if buf[at + 11] != PORT_DESCRIPTOR_TYPE {
            return Err(protocol(format!(
                "descriptor {i} is of type {}, not a port (out-of-line memory is refused)",
                buf[at + 11]
            )));
        }
    }
    let layout = Layout {
        ports: count,
        body: 0,
    };
    let len = get_u32(buf, layout.length_offset())
        .filter(|_| layout.body_offset() <= size)
        .ok_or_else(|| protocol("mach message without a body length"))? as usize;
    if len > MAX_BODY_BYTES {
        return Err(protocol(format!(
            "body of {len} bytes exceeds {MAX_BODY_BYTES}"
        )));
    }
    let layout = Layout {
        ports: count,
        body: len,
    };
    if layout.size() != size {
        return Err(protocol(format!(
            "body length {len} does not match the message size {size}"
        )));
    }
    Ok(Parsed {
        id,
        complex,
        reply_port,
        ports: count,
        body: layout.body_offset()..layout.body_offset() + len,
        sender,
    })
}

/// The audit trailer after a message of `size` bytes.
fn audit_sender(buf: &[u8], size: usize) -> Result<Sender> {
    let at = round4(size);
    let missing = || protocol("mach message without the audit trailer it was received with");
    let kind = get_u32(buf, at).ok_or_else(missing)?;
    let len = get_u32(buf, at + 4).ok_or_else(missing)? as usize;
    if kind != TRAILER_FORMAT_0 || len < AUDIT_TRAILER_BYTES || at + AUDIT_TRAILER_BYTES > buf.len()
    {
        return Err(missing());
    }
    // type, size, seqno, security token (2 words), then the audit token's 8 words.
    let audit = at + 20;
    Ok(Sender {
        euid: get_u32(buf, audit + 4).ok_or_else(missing)?,
        pid: get_u32(buf, audit + 20).ok_or_else(missing)? as i32,
    })
}

/// Port descriptor `i` of a parsed message: its name and disposition as received.
pub fn port_at(buf: &[u8], parsed: &Parsed, i: usize) -> Option<(u32, u8)> {
    if i >= parsed.ports {
        return None;
    }
    let at = Layout::descriptor(i);
    Some((get_u32(buf, at)?, *buf.get(at + 10)?))
}

/// What a receiver expects on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A registered service's port: connect messages only.
    Connect,
    /// A connection's port: data messages only.
    Data,
}

/// Checks a parsed message against what the port expects: the id, no reply right in the
/// header, and for each descriptor the right kind (a connect message: the receive right, then
/// a send right, and no body; a data message: send rights only, at most [`MAX_PORTS`]), with
/// no null or dead names. [`Error::Protocol`] otherwise.
pub fn check(buf: &[u8], parsed: &Parsed, expect: Expect) -> Result<()> {
    let (id, name) = match expect {
        Expect::Connect => (MSG_ID_CONNECT, "connect"),
        Expect::Data => (MSG_ID_DATA, "data"),
    };
    if parsed.id != id || !parsed.complex {
        return Err(protocol(format!(
            "expected a {name} message, got id {:#x}{}",
            parsed.id,
            if parsed.complex { "" } else { " (simple)" }
        )));
    }
    if parsed.reply_port != PORT_NULL {
        return Err(protocol("unexpected reply right in a message header"));
    }
    let wanted = |i: usize| match (expect, i) {
        (Expect::Connect, 0) => MSG_TYPE_MOVE_RECEIVE,
        _ => MSG_TYPE_MOVE_SEND,
    };
    match expect {
        Expect::Connect if parsed.ports != CONNECT_PORTS || !parsed.body.is_empty() => {
            return Err(protocol(format!(
                "connect message with {} ports and {} body bytes (expected {CONNECT_PORTS} and 0)",
                parsed.ports,
                parsed.body.len()
            )));
        }
        Expect::Data if parsed.ports > MAX_PORTS => {
            return Err(protocol(format!(
                "{} ports in one data message; at most {MAX_PORTS}",
                parsed.ports
            )));
        }
        _ => {}
    }
    for i in 0..parsed.ports {
        let (port, disposition) =
            port_at(buf, parsed, i).ok_or_else(|| protocol("descriptor outside the message"))?;
        if port == PORT_NULL || port == PORT_DEAD {
            return Err(protocol(format!("port {i} arrived null or dead")));
        }
        if disposition != wanted(i) {
            return Err(protocol(format!(
                "port {i} arrived with disposition {disposition}, expected {}",
                wanted(i)
            )));
        }
    }
    Ok(())
}

/// A message buffer aligned for `mach_msg_header_t` (8 bytes), zero-initialised.
#[derive(Clone, Debug)]
pub struct MessageBuffer {
    words: Vec<u64>,
}

impl MessageBuffer {
    /// A buffer of at least `bytes` bytes.
    pub fn new(bytes: usize) -> Self {
        Self {
            words: vec![0; bytes.div_ceil(8)],
        }
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.words.len() * 8
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Grows it to at least `bytes` bytes.
    pub fn reserve(&mut self, bytes: usize) {
        if self.len() < bytes {
            self.words.resize(bytes.div_ceil(8), 0);
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the Vec's `len() * 8` bytes are initialised u64s; u8 has no alignment
        // requirement and no invalid values; the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len()) }
    }

    /// The bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        // SAFETY: as in `bytes`; every byte pattern is a valid u64, so writes through the
        // slice keep the words valid; the slice borrows `self` mutably.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), len) }
    }

    /// A pointer to the start, for `mach_msg` (8-byte aligned).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr().cast()
    }
}

#[cfg(test)]
mod tests;
