//! A small mach-message transport between processes of one user on macOS: a [`MachServer`]
//! registered with the bootstrap server under a name, and [`MachConnection`]s that carry byte
//! messages with port rights beside them, such as the IOSurface ports of
//! [`MetalTextureShareManager::export_mach_port`](super::MetalTextureShareManager::export_mach_port).
//! Modelled on the macOS backend of servo's `ipc-channel`, built on `mach2`.
//!
//! macOS only: on iOS this module is absent, because sandboxed apps cannot register or look up
//! other processes' bootstrap services. On macOS the App Sandbox restricts it the same way
//! (only names of the app's application group), and two processes see each other only in the
//! same bootstrap namespace (the same login session: a process started over ssh does not see a
//! GUI session's services). Compiles in CI for `aarch64-apple-darwin`; it has never run.
//!
//! # Connections
//!
//! [`MachServer::register`] allocates a receive right and registers a send right to it as
//! `geyser.<name>`. [`MachConnection::connect`] looks that name up, allocates two ports of its
//! own and sends one connect message ([`mach_wire::MSG_ID_CONNECT`]) that carries the receive
//! right of the first (`MACH_MSG_TYPE_MOVE_RECEIVE`: the queue the server will read) and a
//! send right to the second (`MACH_MSG_TYPE_MAKE_SEND`: where the server answers);
//! [`MachServer::accept`] receives it and makes the server's end from them. The client can
//! send at once: messages queued before the server accepts travel with the receive right.
//! Each connection then has its own pair of ports, and both ends use the same
//! [`MachConnection::send`] / [`MachConnection::recv`].
//!
//! # Faults and caps
//!
//! - A message is at most [`mach_wire::MAX_BODY_BYTES`] of body (Geyser's frame cap) and
//!   [`mach_wire::MAX_PORTS`] send rights; anything else (out-of-line memory, receive or
//!   send-once rights, a longer body, an unexpected reply right) is refused with
//!   [`Error::Protocol`] and destroyed with every right it carried.
//! - Every message is received with its audit trailer; one whose sender's effective uid differs
//!   from ours is refused with [`Error::PermissionDenied`] (and destroyed), like the same-user
//!   peer check of the Unix transport.
//! - Peer death: each end asks the kernel for a no-senders notification on its receive port;
//!   once the peer's send right is gone (it exited, or dropped its end) and the messages it
//!   sent before are read, [`MachConnection::recv`] returns [`Error::PeerGone`], and sending
//!   to a destroyed port (`MACH_SEND_INVALID_DEST`) does too.
//! - [`MachConnection::send`] blocks while the peer's queue is full (1024 messages, raised
//!   from the default 5 on every port we allocate); it has no timeout.

use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::time::Duration;

use mach2::bootstrap::{
    bootstrap_look_up, bootstrap_port, bootstrap_register, bootstrap_strerror,
    BOOTSTRAP_NAME_IN_USE, BOOTSTRAP_NOT_PRIVILEGED, BOOTSTRAP_SUCCESS, BOOTSTRAP_UNKNOWN_SERVICE,
};
use mach2::kern_return::{kern_return_t, KERN_SUCCESS};
use mach2::mach_port::{
    mach_port_allocate, mach_port_insert_right, mach_port_mod_refs, mach_port_request_notification,
    mach_port_set_attributes,
};
use mach2::message::{
    mach_msg, mach_msg_audit_trailer_t, mach_msg_body_t, mach_msg_destroy, mach_msg_header_t,
    mach_msg_port_descriptor_t, MACH_MSGH_BITS_COMPLEX, MACH_MSG_PORT_DESCRIPTOR, MACH_MSG_SUCCESS,
    MACH_MSG_TIMEOUT_NONE, MACH_MSG_TRAILER_FORMAT_0, MACH_MSG_TYPE_COPY_SEND,
    MACH_MSG_TYPE_MAKE_SEND, MACH_MSG_TYPE_MAKE_SEND_ONCE, MACH_MSG_TYPE_MOVE_RECEIVE,
    MACH_MSG_TYPE_MOVE_SEND, MACH_RCV_MSG, MACH_RCV_TIMED_OUT, MACH_RCV_TIMEOUT,
    MACH_RCV_TOO_LARGE, MACH_RCV_TRAILER_AUDIT, MACH_SEND_INVALID_DEST, MACH_SEND_MSG,
};
use mach2::notify::MACH_NOTIFY_NO_SENDERS;
use mach2::port::{
    mach_port_limits_t, mach_port_t, MACH_PORT_DEAD, MACH_PORT_LIMITS_INFO,
    MACH_PORT_LIMITS_INFO_COUNT, MACH_PORT_NULL, MACH_PORT_QLIMIT_LARGE, MACH_PORT_RIGHT_RECEIVE,
};
use mach2::traps::mach_task_self;

use super::mach_wire::{
    self, check, encode, parse, port_at, service_name, timeout_ms, Expect, Layout, MessageBuffer,
    Outgoing, Parsed, MAX_PORTS, MSG_ID_CONNECT, MSG_ID_DATA, MSG_TYPE_COPY_SEND,
    MSG_TYPE_MAKE_SEND, MSG_TYPE_MOVE_RECEIVE, RCV_AUDIT_TRAILER_OPTIONS, RECV_BUFFER_BYTES,
};
use super::port::OwnedMachPort;
use crate::{Error, Result};

// The portable layout in `mach_wire` must be the one of <mach/message.h> on this target.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<mach_msg_header_t>() == mach_wire::HEADER_BYTES);
    assert!(size_of::<mach_msg_body_t>() == mach_wire::BODY_COUNT_BYTES);
    assert!(size_of::<mach_msg_port_descriptor_t>() == mach_wire::PORT_DESCRIPTOR_BYTES);
    assert!(offset_of!(mach_msg_port_descriptor_t, disposition) == 10);
    assert!(offset_of!(mach_msg_port_descriptor_t, type_) == 11);
    assert!(size_of::<mach_msg_audit_trailer_t>() == mach_wire::AUDIT_TRAILER_BYTES);
    assert!(offset_of!(mach_msg_audit_trailer_t, msgh_audit) == 20);
    assert!(MACH_MSGH_BITS_COMPLEX == mach_wire::MSGH_BITS_COMPLEX);
    assert!(MACH_MSG_TYPE_MOVE_RECEIVE == mach_wire::MSG_TYPE_MOVE_RECEIVE as u32);
    assert!(MACH_MSG_TYPE_MOVE_SEND == mach_wire::MSG_TYPE_MOVE_SEND as u32);
    assert!(MACH_MSG_TYPE_COPY_SEND == mach_wire::MSG_TYPE_COPY_SEND as u32);
    assert!(MACH_MSG_TYPE_MAKE_SEND == mach_wire::MSG_TYPE_MAKE_SEND as u32);
    assert!(MACH_MSG_PORT_DESCRIPTOR == mach_wire::PORT_DESCRIPTOR_TYPE as u32);
    assert!(MACH_MSG_TRAILER_FORMAT_0 == mach_wire::TRAILER_FORMAT_0);
    assert!(MACH_RCV_TRAILER_AUDIT == mach_wire::RCV_TRAILER_AUDIT);
    assert!(MACH_NOTIFY_NO_SENDERS == mach_wire::MSG_ID_NO_SENDERS);
    assert!(MACH_PORT_NULL == mach_wire::PORT_NULL);
    assert!(MACH_PORT_DEAD == mach_wire::PORT_DEAD);
};

// SAFETY: `geteuid(2)` is libSystem's `uid_t geteuid(void)`; `uid_t` is `u32` on Darwin. It
// takes no arguments, touches no caller memory and cannot fail, so it is declared safe.
unsafe extern "C" {
    safe fn geteuid() -> u32;
}

/// The task's bootstrap port.
fn bootstrap() -> mach_port_t {
    // SAFETY: libSystem initialises the `bootstrap_port` global before `main`; Geyser never
    // writes it, so this is a plain read of an initialised `u32`.
    unsafe { bootstrap_port }
}

/// Describes a kernel or bootstrap return code.
fn describe(kr: kern_return_t) -> String {
    // SAFETY: `bootstrap_strerror` takes any code and returns a pointer to a static,
    // NUL-terminated string (it falls back to `mach_error_string`), or null.
    let text = unsafe { bootstrap_strerror(kr) };
    if text.is_null() {
        return "unknown error".into();
    }
    // SAFETY: non-null, NUL-terminated and static (above); only read here.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

fn mach_error(call: &str, kr: kern_return_t) -> Error {
    Error::Io(std::io::Error::other(format!(
        "{call} failed: {} ({kr:#x})",
        describe(kr)
    )))
}

fn kern(call: &str, kr: kern_return_t) -> Result<()> {
    if kr == KERN_SUCCESS {
        Ok(())
    } else {
        Err(mach_error(call, kr))
    }
}

fn service_cstring(name: &str) -> Result<(String, CString)> {
    let service = service_name(name)?;
    // `service_name` allows ASCII letters, digits and `-_.` only, so there is no NUL.
    let c = CString::new(service.clone()).map_err(|_| Error::InvalidArgument {
        what: "endpoint name",
        reason: "contains a NUL byte".into(),
    })?;
    Ok((service, c))
}

/// The receive right of a port of this task, destroyed on drop (the kernel then destroys the
/// messages still queued on it, with their rights, and senders get `MACH_SEND_INVALID_DEST`).
#[derive(Debug)]
struct ReceiveRight(mach_port_t);

impl ReceiveRight {
    /// A new port with a queue limit of `MACH_PORT_QLIMIT_LARGE` messages.
    fn allocate() -> Result<Self> {
        let mut name = MACH_PORT_NULL;
        // SAFETY: `mach_task_self()` is this task's port; `name` is a valid out-pointer.
        let kr =
            unsafe { mach_port_allocate(mach_task_self(), MACH_PORT_RIGHT_RECEIVE, &mut name) };
        kern("mach_port_allocate", kr)?;
        // SAFETY: `name` is the receive right just allocated, owned by nothing else.
        let right = unsafe { Self::from_raw(name) };
        let limits = mach_port_limits_t {
            mpl_qlimit: MACH_PORT_QLIMIT_LARGE,
        };
        // SAFETY: `right.0` is a receive right of this task; `limits` is a live
        // `mach_port_limits_t` of MACH_PORT_LIMITS_INFO_COUNT words that the call only reads
        // (the MIG prototype takes a non-const pointer).
        let kr = unsafe {
            mach_port_set_attributes(
                mach_task_self(),
                right.0,
                MACH_PORT_LIMITS_INFO,
                (&limits as *const mach_port_limits_t).cast_mut().cast(),
                MACH_PORT_LIMITS_INFO_COUNT,
            )
        };
        kern("mach_port_set_attributes(MACH_PORT_LIMITS_INFO)", kr)?;
        Ok(right)
    }

    /// Takes ownership of a receive right.
    ///
    /// # Safety
    ///
    /// - `name` denotes a receive right of this task that nothing else will release;
    /// - after this call only the returned value releases it.
    unsafe fn from_raw(name: mach_port_t) -> Self {
        Self(name)
    }

    /// A new send right to this port, under the same name.
    fn make_send(&self) -> Result<OwnedMachPort> {
        // SAFETY: `self.0` is a receive right of this task; MAKE_SEND adds one send right
        // under the same name and touches nothing else.
        let kr = unsafe {
            mach_port_insert_right(mach_task_self(), self.0, self.0, MACH_MSG_TYPE_MAKE_SEND)
        };
        kern("mach_port_insert_right(MAKE_SEND)", kr)?;
        // SAFETY: the send right was just made for us; only the returned value releases it.
        unsafe { OwnedMachPort::from_raw(self.0) }.ok_or_else(|| {
            Error::Io(std::io::Error::other(
                "a receive right named MACH_PORT_NULL",
            ))
        })
    }

    /// Asks the kernel to send `MACH_NOTIFY_NO_SENDERS` to this port once no send right to it
    /// is left and at least `sync` were ever made (`sync = 0`: also right now, if there is
    /// none).
    fn request_no_senders(&self, sync: u32) -> Result<()> {
        let mut previous = MACH_PORT_NULL;
        // SAFETY: `self.0` is a receive right of this task; the notification goes to the
        // port itself through a send-once right the kernel makes (MAKE_SEND_ONCE) and keeps;
        // `previous` is a valid out-pointer.
        let kr = unsafe {
            mach_port_request_notification(
                mach_task_self(),
                self.0,
                MACH_NOTIFY_NO_SENDERS,
                sync,
                self.0,
                MACH_MSG_TYPE_MAKE_SEND_ONCE,
                &mut previous,
            )
        };
        kern("mach_port_request_notification(MACH_NOTIFY_NO_SENDERS)", kr)?;
        // SAFETY: `previous` is the send-once right of an earlier request (none on our fresh
        // ports, so normally MACH_PORT_NULL), now ours to release.
        drop(unsafe { OwnedMachPort::from_raw(previous) });
        Ok(())
    }

    /// Gives up ownership (after the right was moved into a message).
    fn into_raw(self) -> mach_port_t {
        let name = self.0;
        std::mem::forget(self);
        name
    }
}

impl Drop for ReceiveRight {
    fn drop(&mut self) {
        // SAFETY: `self.0` names a receive right of this task owned only by `self` (see
        // `from_raw`); it is released exactly once, here.
        unsafe { mach_port_mod_refs(mach_task_self(), self.0, MACH_PORT_RIGHT_RECEIVE, -1) };
    }
}

/// Encodes and sends one message; [`Error::PeerGone`] when the destination is dead.
fn send_message(
    buf: &mut MessageBuffer,
    remote: mach_port_t,
    id: i32,
    ports: &[Outgoing],
    body: &[u8],
) -> Result<()> {
    buf.reserve(Layout::new(ports.len(), body.len())?.size());
    let size = encode(buf.bytes_mut(), remote, id, ports, body)?;
    // SAFETY: `buf` holds a complete message of `size` bytes (`encode`), 8-byte aligned and
    // alive for the call; every name in it is a right of this task that the caller keeps
    // alive (COPY_SEND, MAKE_SEND) or hands over (MOVE_RECEIVE); nothing is received
    // (rcv_size 0), so the kernel only reads the buffer.
    let mr = unsafe {
        mach_msg(
            buf.as_mut_ptr().cast::<mach_msg_header_t>(),
            MACH_SEND_MSG,
            size as u32,
            0,
            MACH_PORT_NULL,
            MACH_MSG_TIMEOUT_NONE,
            MACH_PORT_NULL,
        )
    };
    match mr {
        MACH_MSG_SUCCESS => Ok(()),
        MACH_SEND_INVALID_DEST => Err(Error::PeerGone(
            "the peer's mach port is gone (it exited or closed the connection)".into(),
        )),
        mr => Err(mach_error("mach_msg (send)", mr)),
    }
}

/// Receives one message on `port` into `buf` and checks it against `expect`: `Ok(None)` is
/// the no-senders notification (peer gone; only for [`Expect::Data`]). A refused message is
/// destroyed with every right it carried.
fn receive(
    buf: &mut MessageBuffer,
    port: mach_port_t,
    timeout: Option<Duration>,
    expect: Expect,
) -> Result<Option<Parsed>> {
    let ms = timeout_ms(timeout);
    let options =
        MACH_RCV_MSG | RCV_AUDIT_TRAILER_OPTIONS | if ms.is_some() { MACH_RCV_TIMEOUT } else { 0 };
    buf.reserve(RECV_BUFFER_BYTES);
    let len = buf.len().min(u32::MAX as usize) as u32;
    // SAFETY: `buf` is a writable, 8-byte-aligned buffer of at least `len` bytes that
    // outlives the call; `port` is a receive right of this task; the kernel writes at most
    // `len` bytes (the message and the trailer we asked for) and nothing is sent.
    let mr = unsafe {
        mach_msg(
            buf.as_mut_ptr().cast::<mach_msg_header_t>(),
            options,
            0,
            len,
            port,
            ms.unwrap_or(MACH_MSG_TIMEOUT_NONE),
            MACH_PORT_NULL,
        )
    };
    match mr {
        MACH_MSG_SUCCESS => {}
        MACH_RCV_TIMED_OUT => {
            return Err(Error::Timeout(format!(
                "no mach message within {timeout:?}"
            )))
        }
        MACH_RCV_TOO_LARGE => {
            return Err(Error::Protocol(format!(
                "a mach message larger than {RECV_BUFFER_BYTES} bytes arrived; the kernel \
                 destroyed it"
            )))
        }
        mr => return Err(mach_error("mach_msg (receive)", mr)),
    }
    let ours = geteuid();
    let verdict = parse(buf.bytes()).and_then(|p| {
        if expect == Expect::Data
            && p.is_no_senders()
            && (p.sender.pid == 0 || p.sender.euid == ours)
        {
            return Ok(None);
        }
        if p.sender.euid != ours {
            return Err(Error::PermissionDenied(format!(
                "mach message from pid {} running as uid {}, not our uid {ours}",
                p.sender.pid, p.sender.euid
            )));
        }
        check(buf.bytes(), &p, expect)?;
        Ok(Some(p))
    });
    if !matches!(verdict, Ok(Some(_))) {
        // SAFETY: `buf` holds the message `mach_msg` just delivered, none of whose rights has
        // been taken (the no-senders notification carries none).
        unsafe { destroy(buf) };
    }
    verdict
}

/// Releases every right (and out-of-line region) of a received message.
///
/// # Safety
///
/// - `buf` holds a message the kernel delivered into this task with `mach_msg`;
/// - none of its rights has been taken (wrapped in an owner or released) yet.
unsafe fn destroy(buf: &mut MessageBuffer) {
    // SAFETY: per the caller, `buf` holds a kernel-written message whose rights are still
    // untaken; `mach_msg_destroy` walks its header and descriptors and releases each once.
    unsafe { mach_msg_destroy(buf.as_mut_ptr().cast::<mach_msg_header_t>()) };
}

/// A message received on a [`MachConnection`].
#[derive(Debug)]
pub struct MachMessage {
    /// The body (at most [`mach_wire::MAX_BODY_BYTES`]).
    pub bytes: Vec<u8>,
    /// The send rights that came with it, now owned here (released on drop).
    pub ports: Vec<OwnedMachPort>,
    /// The sender's process id, from the message's audit trailer.
    pub sender_pid: i32,
}

/// A service registered with the bootstrap server as `geyser.<name>`, accepting
/// [`MachConnection`]s. Dropping it unregisters the name and destroys its port (connect
/// messages not yet accepted are destroyed with it; their senders see [`Error::PeerGone`]).
#[derive(Debug)]
pub struct MachServer {
    name: String,
    service: CString,
    port: ReceiveRight,
    /// Our reference to the send right the bootstrap server was given a copy of.
    _registered: OwnedMachPort,
    buf: MessageBuffer,
}

impl MachServer {
    /// Registers `geyser.<name>` with this task's bootstrap server. Names are 1 to 64 ASCII
    /// letters, digits, `-`, `_` or `.` ([`Error::InvalidArgument`] otherwise);
    /// [`Error::AddressInUse`] when a live service already has the name;
    /// [`Error::PermissionDenied`] when the bootstrap server refuses (a sandboxed app).
    pub fn register(name: &str) -> Result<Self> {
        let (service, c) = service_cstring(name)?;
        let port = ReceiveRight::allocate()?;
        let registered = port.make_send()?;
        // SAFETY: `c` is a NUL-terminated name shorter than BOOTSTRAP_MAX_NAME_LEN that the
        // call only reads (its `char *` predates const); `registered` is a send right of this
        // task, which the call copies (MIG's default COPY_SEND for a port argument).
        let kr =
            unsafe { bootstrap_register(bootstrap(), c.as_ptr().cast_mut(), registered.as_raw()) };
        match kr {
            BOOTSTRAP_SUCCESS => {}
            BOOTSTRAP_NAME_IN_USE => {
                return Err(Error::AddressInUse {
                    path: PathBuf::from(service),
                })
            }
            BOOTSTRAP_NOT_PRIVILEGED => {
                return Err(Error::PermissionDenied(format!(
                    "the bootstrap server refused to register {service} (a sandboxed app may \
                     register only names of its application group)"
                )))
            }
            kr => return Err(mach_error("bootstrap_register", kr)),
        }
        Ok(Self {
            name: name.to_string(),
            service: c,
            port,
            _registered: registered,
            buf: MessageBuffer::new(RECV_BUFFER_BYTES),
        })
    }

    /// The endpoint name it was registered with (without the `geyser.` prefix).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the next client's [`MachConnection::connect`] and returns the server's end
    /// of that connection. `timeout = None` waits forever; [`Error::Timeout`] after it.
    /// [`Error::PermissionDenied`] for a client of another user and [`Error::Protocol`] for a
    /// malformed connect message: that message is destroyed, the client sees
    /// [`Error::PeerGone`], and the server keeps serving.
    pub fn accept(&mut self, timeout: Option<Duration>) -> Result<MachConnection> {
        let Some(parsed) = receive(&mut self.buf, self.port.0, timeout, Expect::Connect)? else {
            // `receive` returns a notification only for Expect::Data.
            return Err(Error::Protocol(
                "no-senders notice on a service port".into(),
            ));
        };
        let bytes = self.buf.bytes();
        // `check` verified exactly two valid names: a receive right, then a send right.
        let (Some((rx, _)), Some((tx, _))) =
            (port_at(bytes, &parsed, 0), port_at(bytes, &parsed, 1))
        else {
            // SAFETY: the message was just received and none of its rights is taken yet.
            unsafe { destroy(&mut self.buf) };
            return Err(Error::Protocol("connect message without its ports".into()));
        };
        // SAFETY: `rx` arrived as a receive right (MACH_MSG_TYPE_PORT_RECEIVE, checked) in
        // this message, and is wrapped once, here.
        let local = unsafe { ReceiveRight::from_raw(rx) };
        // SAFETY: `tx` arrived as a send right (checked, not null or dead), wrapped once here.
        let remote = unsafe { OwnedMachPort::from_raw(tx) }
            .ok_or_else(|| Error::Protocol("connect message with a null reply port".into()))?;
        local.request_no_senders(0)?;
        Ok(MachConnection::new(local, remote))
    }
}

impl Drop for MachServer {
    fn drop(&mut self) {
        // SAFETY: `self.service` is the NUL-terminated name we registered, only read;
        // registering MACH_PORT_NULL removes the registration (as servo's ipc-channel does).
        // The result is ignored: the bootstrap server also drops the name once our port dies,
        // just below, when the fields drop.
        unsafe {
            bootstrap_register(
                bootstrap(),
                self.service.as_ptr().cast_mut(),
                MACH_PORT_NULL,
            )
        };
    }
}

/// One end of a connection: a receive right for what the peer sends and a send right to the
/// peer's receive port. Dropping it destroys both; the peer then gets [`Error::PeerGone`].
#[derive(Debug)]
pub struct MachConnection {
    local: ReceiveRight,
    remote: OwnedMachPort,
    send_buf: MessageBuffer,
    recv_buf: MessageBuffer,
    peer_gone: bool,
}

fn gone() -> Error {
    Error::PeerGone("the other end of the mach connection is gone".into())
}

impl MachConnection {
    fn new(local: ReceiveRight, remote: OwnedMachPort) -> Self {
        Self {
            local,
            remote,
            send_buf: MessageBuffer::new(256),
            recv_buf: MessageBuffer::new(RECV_BUFFER_BYTES),
            peer_gone: false,
        }
    }

    /// Connects to the [`MachServer`] registered as `geyser.<name>`. Does not wait for the
    /// server to accept: [`Self::send`] works at once (the messages wait in the connection's
    /// queue). [`Error::NotFound`] when no live server has the name, [`Error::InvalidArgument`]
    /// for a bad name.
    pub fn connect(name: &str) -> Result<Self> {
        let (service, c) = service_cstring(name)?;
        let not_found = || Error::NotFound {
            path: PathBuf::from(&service),
        };
        let mut raw = MACH_PORT_NULL;
        // SAFETY: `c` is NUL-terminated and only read; `raw` is a valid out-pointer.
        let kr = unsafe { bootstrap_look_up(bootstrap(), c.as_ptr(), &mut raw) };
        match kr {
            BOOTSTRAP_SUCCESS => {}
            BOOTSTRAP_UNKNOWN_SERVICE => return Err(not_found()),
            BOOTSTRAP_NOT_PRIVILEGED => {
                return Err(Error::PermissionDenied(format!(
                    "the bootstrap server refused to look up {service} (sandboxed?)"
                )))
            }
            kr => return Err(mach_error("bootstrap_look_up", kr)),
        }
        // SAFETY: a successful look-up returns a send right that the caller owns.
        let server = unsafe { OwnedMachPort::from_raw(raw) }.ok_or_else(not_found)?;

        // The client-to-server queue: we keep a send right, the server gets the receive right.
        let to_server = ReceiveRight::allocate()?;
        let to_server_send = to_server.make_send()?;
        // The server-to-client queue: ours; the server gets a send right, and when that is
        // gone the kernel tells us (sync 1: only after the one in the connect message).
        let from_server = ReceiveRight::allocate()?;
        from_server.request_no_senders(1)?;
        let ports = [
            Outgoing {
                name: to_server.0,
                disposition: MSG_TYPE_MOVE_RECEIVE,
            },
            Outgoing {
                name: from_server.0,
                disposition: MSG_TYPE_MAKE_SEND,
            },
        ];
        let mut conn = Self::new(from_server, to_server_send);
        match send_message(
            &mut conn.send_buf,
            server.as_raw(),
            MSG_ID_CONNECT,
            &ports,
            &[],
        ) {
            Ok(()) => {}
            Err(Error::PeerGone(_)) => return Err(not_found()),
            Err(e) => return Err(e),
        }
        // The receive right now belongs to the server.
        let _ = to_server.into_raw();
        Ok(conn)
    }

    /// Sends `bytes` (at most [`mach_wire::MAX_BODY_BYTES`]) with copies of `ports` (at most
    /// [`MAX_PORTS`]; `MACH_MSG_TYPE_COPY_SEND`, so the caller keeps its rights).
    /// [`Error::InvalidArgument`] past the caps, [`Error::PeerGone`] when the peer is gone.
    /// Blocks while the peer's queue is full.
    pub fn send(&mut self, bytes: &[u8], ports: &[&OwnedMachPort]) -> Result<()> {
        if self.peer_gone {
            return Err(gone());
        }
        if ports.len() > MAX_PORTS {
            return Err(Error::InvalidArgument {
                what: "mach message ports",
                reason: format!(
                    "{} ports; at most {MAX_PORTS} travel in one message",
                    ports.len()
                ),
            });
        }
        let mut out = [Outgoing {
            name: MACH_PORT_NULL,
            disposition: MSG_TYPE_COPY_SEND,
        }; MAX_PORTS];
        for (slot, port) in out.iter_mut().zip(ports) {
            slot.name = port.as_raw();
        }
        let sent = send_message(
            &mut self.send_buf,
            self.remote.as_raw(),
            MSG_ID_DATA,
            &out[..ports.len()],
            bytes,
        );
        if matches!(sent, Err(Error::PeerGone(_))) {
            self.peer_gone = true;
        }
        sent
    }

    /// Receives the next message; `timeout = None` waits forever. [`Error::Timeout`] when none
    /// came in time; [`Error::PeerGone`] once the peer is gone and everything it sent was read;
    /// [`Error::PermissionDenied`] / [`Error::Protocol`] for a refused message (destroyed,
    /// with its rights; the connection stays usable).
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<MachMessage> {
        if self.peer_gone {
            return Err(gone());
        }
        let Some(parsed) = receive(&mut self.recv_buf, self.local.0, timeout, Expect::Data)? else {
            self.peer_gone = true;
            return Err(gone());
        };
        let bytes = self.recv_buf.bytes();
        let ports = (0..parsed.ports)
            .filter_map(|i| port_at(bytes, &parsed, i))
            // SAFETY: `check` verified that every descriptor arrived as a send right
            // (MACH_MSG_TYPE_PORT_SEND) of this task with a valid name; each is wrapped once,
            // here, and nothing else releases it.
            .filter_map(|(name, _)| unsafe { OwnedMachPort::from_raw(name) })
            .collect();
        Ok(MachMessage {
            bytes: bytes[parsed.body.clone()].to_vec(),
            ports,
            sender_pid: parsed.sender.pid,
        })
    }
}
