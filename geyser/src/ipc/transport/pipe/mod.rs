//! Windows transport: a message-mode named pipe (`\\.\pipe\geyser-<name>`) that carries the
//! same frames as the Unix socket ([`protocol`](crate::ipc::wire)); NT handles travel by
//! `DuplicateHandle` into the peer process, their new values in a
//! [`handle_block`](super::handle_block) after the frame. [`PipeServer`] and
//! [`PipeConnection`] offer the calls the producer and consumer use on the Unix socket's
//! `Listener` and `Connection` (bind/accept, connect, send, recv with a timeout, try_recv), so
//! the transport is the only platform-specific part of IPC.
//!
//! Compiles in CI for `x86_64-pc-windows-msvc`; has never run on Windows.
//!
//! I/O is overlapped: every pipe handle is opened with `FILE_FLAG_OVERLAPPED`, each connection
//! keeps one read posted (its event is what the producer's service thread waits on, with
//! `WaitForMultipleObjects`), and sends wait for their write to complete (at most
//! [`SEND_TIMEOUT`]). A posted operation's `OVERLAPPED` and buffer live in boxes that are freed
//! only after the operation completed or was cancelled and waited for (`CancelIoEx`, then
//! `GetOverlappedResult`), also on drop.
//!
//! Security: the pipe's DACL grants access to the current user's SID only, remote clients are
//! rejected (`PIPE_REJECT_REMOTE_CLIENTS`), the first instance is created with
//! `FILE_FLAG_FIRST_PIPE_INSTANCE` (a name another process already holds is refused, not
//! shared), and clients connect with `SECURITY_IDENTIFICATION` so the server cannot
//! impersonate them. [`PipeConnection::check_peer`] compares the peer process's token user
//! with ours. Pushing handles needs `PROCESS_DUP_HANDLE` on the peer, which Windows grants
//! between processes of the same user: peers are trusted like same-uid peers on Unix (a peer
//! could name handle values it never duplicated to us; the receiver owns what a message lists).

use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    DuplicateHandle, GetLastError, DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS,
    ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_NO_DATA,
    ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED, ERROR_PIPE_NOT_CONNECTED, GENERIC_READ, GENERIC_WRITE,
    HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED,
    OPEN_EXISTING, PIPE_ACCESS_DUPLEX, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, GetNamedPipeClientProcessId, GetNamedPipeServerProcessId,
    SetNamedPipeHandleState, WaitNamedPipeW, PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_MESSAGE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    OpenProcess, INFINITE, PROCESS_DUP_HANDLE, PROCESS_QUERY_LIMITED_INFORMATION,
};

mod overlapped;
mod security;
#[cfg(test)]
mod tests;

use overlapped::Op;
use security::{current_process, TokenUserInfo, UserOnly};

use super::handle_block::{self, MAX_BLOCK_BYTES, MAX_PIPE_MESSAGE_BYTES};
use super::recv_within;
use crate::ipc::peer::{PeerCredentials, PeerPolicy};
use crate::ipc::wire::{self, Message, HEADER_BYTES, MAX_MESSAGE_BYTES};
use crate::{Error, Result};

/// How long [`PipeConnection::connect`] waits for a busy pipe to offer an instance, in ms.
pub const CONNECT_WAIT_MS: u32 = 5_000;

/// How long a send waits for the peer to make room in the pipe. A peer that reads nothing for
/// this long is stuck: the send fails with [`Error::Timeout`] and the connection should be
/// dropped (a cancelled write may have left part of a message in the pipe).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The pipe path for an endpoint name: `\\.\pipe\geyser-<name>`. Names follow
/// [`check_endpoint_name`](crate::common::check_endpoint_name), as on Unix.
pub fn pipe_path(name: &str) -> Result<String> {
    crate::common::check_endpoint_name(name)?;
    Ok(format!(r"\\.\pipe\geyser-{name}"))
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error_code() -> u32 {
    // SAFETY: reading the calling thread's last-error value has no preconditions.
    unsafe { GetLastError() }
}

fn win32_error(call: &str, code: u32) -> Error {
    Error::Io(std::io::Error::other(format!(
        "{call} failed: {}",
        std::io::Error::from_raw_os_error(code as i32)
    )))
}

fn last_error(call: &str) -> Error {
    win32_error(call, last_error_code())
}

/// A closed or broken pipe is [`Error::PeerGone`]; anything else an I/O error.
fn peer_gone_or(call: &str, code: u32) -> Error {
    match code {
        ERROR_BROKEN_PIPE | ERROR_NO_DATA | ERROR_PIPE_NOT_CONNECTED => {
            Error::PeerGone(format!("{call}: pipe closed"))
        }
        _ => win32_error(call, code),
    }
}

/// Takes ownership of a handle a Win32 call returned, or reports the call's error.
fn owned(raw: HANDLE, call: &str) -> Result<OwnedHandle> {
    if raw.is_null() || raw == INVALID_HANDLE_VALUE {
        return Err(last_error(call));
    }
    // SAFETY: `raw` is a new, valid handle returned to us by `call`; nothing else owns it.
    Ok(unsafe { OwnedHandle::from_raw_handle(raw) })
}

fn wait_ms(timeout: Option<Duration>) -> u32 {
    // INFINITE is u32::MAX: a finite wait is capped one below it.
    timeout.map_or(INFINITE, |t| {
        u32::try_from(t.as_millis()).map_or(INFINITE - 1, |ms| ms.min(INFINITE - 1))
    })
}

/// The listening side: creates one pipe instance per accepted connection, all restricted to
/// the current user. Keeps one instance waiting for a client (`ConnectNamedPipe`, overlapped),
/// so the name stays owned by this server and a client can connect at any time.
pub struct PipeServer {
    path: PathBuf,
    wide_path: Vec<u16>,
    security: UserOnly,
    /// The instance waiting for a client.
    next: Option<OwnedHandle>,
    connect: Op,
    /// A client connected to `next` before its `ConnectNamedPipe` was posted.
    connected: bool,
}

impl std::fmt::Debug for PipeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeServer")
            .field("path", &self.path)
            .finish()
    }
}

// SAFETY: the raw pointers inside (`OVERLAPPED`, the security descriptor) are owned by this
// value and only used through `&mut self` or while `self` is borrowed; the kernel ties pending
// I/O to the handle, not to a thread.
unsafe impl Send for PipeServer {}

impl PipeServer {
    /// Creates the endpoint's first pipe instance. [`Error::AddressInUse`] when another
    /// process already holds the name.
    pub fn bind(name: &str) -> Result<Self> {
        let path = pipe_path(name)?;
        let security = UserOnly::new()?;
        let wide_path = wide(&path);
        let first = create_instance(&wide_path, &security, true)?;
        Ok(PipeServer {
            path: PathBuf::from(path),
            wide_path,
            security,
            next: Some(first),
            connect: Op::new()?,
            connected: false,
        })
    }

    /// The pipe path (`\\.\pipe\geyser-<name>`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes sure an instance is waiting for a client. `Ok(true)` when a client is already
    /// connected to it ([`Self::accept`] returns it at once).
    pub(crate) fn arm(&mut self) -> Result<bool> {
        if self.connected || self.connect.pending {
            return Ok(self.connected);
        }
        let pipe = match self.next.take() {
            Some(p) => p,
            None => create_instance(&self.wide_path, &self.security, false)?,
        };
        let overlapped = self.connect.begin();
        // SAFETY: `pipe` is a live, not yet connected instance opened with
        // FILE_FLAG_OVERLAPPED; `overlapped` is boxed in `self.connect` and outlives the
        // operation (cancelled and waited for before it is freed or reused).
        let ok = unsafe { ConnectNamedPipe(pipe.as_raw_handle(), overlapped) };
        let started = self.connect.started(ok);
        self.next = Some(pipe);
        match started {
            Ok(()) => Ok(false),
            Err(ERROR_PIPE_CONNECTED) => {
                self.connected = true;
                Ok(true)
            }
            Err(code) => {
                // The client connected and left already, or the instance is broken: replace
                // it (the new one is made before the old is closed, so the name stays ours).
                self.next = Some(create_instance(&self.wide_path, &self.security, false)?);
                Err(win32_error("ConnectNamedPipe", code))
            }
        }
    }

    /// The event that is signaled when a client connects (after [`Self::arm`]).
    pub(crate) fn event(&self) -> Arc<OwnedHandle> {
        self.connect.event.clone()
    }

    /// Accepts one client: `Ok(None)` when `nonblocking` and none has connected yet; otherwise
    /// waits for one. Prepares the next instance at once.
    pub fn accept(&mut self, nonblocking: bool) -> Result<Option<PipeConnection>> {
        if !self.arm()? {
            let pipe = self
                .next
                .as_ref()
                .ok_or_else(|| Error::Protocol("pipe server lost its instance".into()))?;
            match self.connect.result(pipe, !nonblocking) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(None),
                Err(code) => {
                    self.next = Some(create_instance(&self.wide_path, &self.security, false)?);
                    return Err(win32_error("ConnectNamedPipe", code));
                }
            }
        }
        self.connected = false;
        let pipe = self
            .next
            .take()
            .ok_or_else(|| Error::Protocol("pipe server lost its instance".into()))?;
        // The connected instance still holds the name while the next one is made.
        self.next = Some(create_instance(&self.wide_path, &self.security, false)?);
        let mut pid = 0u32;
        // SAFETY: a connected server instance; `pid` is a valid out pointer.
        if unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle(), &mut pid) } == 0 {
            return Err(last_error("GetNamedPipeClientProcessId"));
        }
        PipeConnection::new(pipe, pid).map(Some)
    }
}

impl Drop for PipeServer {
    fn drop(&mut self) {
        if let Some(pipe) = &self.next {
            self.connect.cancel(pipe);
        }
    }
}

fn create_instance(path: &[u16], security: &UserOnly, first: bool) -> Result<OwnedHandle> {
    let attributes = security.attributes();
    let open_mode = PIPE_ACCESS_DUPLEX
        | FILE_FLAG_OVERLAPPED
        | if first {
            FILE_FLAG_FIRST_PIPE_INSTANCE
        } else {
            0
        };
    let size = MAX_PIPE_MESSAGE_BYTES as u32;
    // SAFETY: `path` is NUL-terminated UTF-16; `attributes` points at a descriptor that lives
    // in `security` for the whole call.
    let raw = unsafe {
        CreateNamedPipeW(
            path.as_ptr(),
            open_mode,
            PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            PIPE_UNLIMITED_INSTANCES,
            size,
            size,
            0,
            &attributes,
        )
    };
    if raw == INVALID_HANDLE_VALUE {
        let code = last_error_code();
        if first && (code == ERROR_ACCESS_DENIED || code == ERROR_PIPE_BUSY) {
            return Err(Error::AddressInUse {
                path: String::from_utf16_lossy(&path[..path.len() - 1]).into(),
            });
        }
        return Err(Error::Io(std::io::Error::from_raw_os_error(code as i32)));
    }
    owned(raw, "CreateNamedPipeW")
}

/// One end of a connected pipe, and a handle to the peer process that handles are duplicated
/// into. Keeps one read posted between calls; buffers are reused.
pub struct PipeConnection {
    pipe: OwnedHandle,
    peer: OwnedHandle,
    peer_pid: u32,
    send_buf: Vec<u8>,
    /// The posted read's buffer: the kernel writes it while `read` is pending.
    recv_buf: Box<[u8]>,
    read: Op,
    write: Op,
    max_message_bytes: usize,
}

impl std::fmt::Debug for PipeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeConnection")
            .field("peer_pid", &self.peer_pid)
            .finish()
    }
}

// SAFETY: the OVERLAPPED structures and buffers the kernel may write are owned by this value
// and touched only through `&mut self`; `&self` methods read plain fields. Pending I/O is tied
// to the handle, not to the thread that started it.
unsafe impl Send for PipeConnection {}
// SAFETY: as above: no `&self` method touches the OVERLAPPED structures or buffers.
unsafe impl Sync for PipeConnection {}

impl PipeConnection {
    fn new(pipe: OwnedHandle, peer_pid: u32) -> Result<Self> {
        // SAFETY: plain call; the result is checked and owned by `owned`.
        let raw = unsafe {
            OpenProcess(
                PROCESS_DUP_HANDLE | PROCESS_QUERY_LIMITED_INFORMATION,
                0,
                peer_pid,
            )
        };
        let peer = owned(raw, "OpenProcess(PROCESS_DUP_HANDLE)").map_err(|e| {
            Error::PermissionDenied(format!(
                "cannot duplicate handles into peer process {peer_pid}: {e}"
            ))
        })?;
        Ok(PipeConnection {
            pipe,
            peer,
            peer_pid,
            send_buf: Vec::with_capacity(256),
            recv_buf: vec![0; MAX_PIPE_MESSAGE_BYTES].into_boxed_slice(),
            read: Op::new()?,
            write: Op::new()?,
            max_message_bytes: MAX_MESSAGE_BYTES,
        })
    }

    /// Connects to the producer at `name`. [`Error::NotFound`] when no server listens;
    /// [`Error::Timeout`] when every instance stays busy for [`CONNECT_WAIT_MS`].
    pub fn connect(name: &str) -> Result<Self> {
        let path = pipe_path(name)?;
        let wide_path = wide(&path);
        let pipe = loop {
            // SAFETY: `wide_path` is NUL-terminated; no security attributes, no template.
            let raw = unsafe {
                CreateFileW(
                    wide_path.as_ptr(),
                    GENERIC_READ | GENERIC_WRITE,
                    0,
                    ptr::null(),
                    OPEN_EXISTING,
                    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION | FILE_FLAG_OVERLAPPED,
                    ptr::null_mut(),
                )
            };
            if raw != INVALID_HANDLE_VALUE {
                break owned(raw, "CreateFileW")?;
            }
            match last_error_code() {
                ERROR_FILE_NOT_FOUND => {
                    return Err(Error::NotFound { path: path.into() });
                }
                ERROR_ACCESS_DENIED => {
                    return Err(Error::PermissionDenied(format!(
                        "cannot open {path}: it belongs to another user"
                    )));
                }
                ERROR_PIPE_BUSY => {
                    // SAFETY: `wide_path` is NUL-terminated.
                    if unsafe { WaitNamedPipeW(wide_path.as_ptr(), CONNECT_WAIT_MS) } == 0 {
                        return Err(Error::Timeout(format!(
                            "every instance of {path} stayed busy for {CONNECT_WAIT_MS} ms"
                        )));
                    }
                }
                code => return Err(win32_error("CreateFileW", code)),
            }
        };
        let mode = PIPE_READMODE_MESSAGE;
        // SAFETY: a connected client handle; only the read mode is changed.
        if unsafe { SetNamedPipeHandleState(pipe.as_raw_handle(), &mode, ptr::null(), ptr::null()) }
            == 0
        {
            return Err(last_error("SetNamedPipeHandleState"));
        }
        let mut pid = 0u32;
        // SAFETY: a connected client handle; `pid` is a valid out pointer.
        if unsafe { GetNamedPipeServerProcessId(pipe.as_raw_handle(), &mut pid) } == 0 {
            return Err(last_error("GetNamedPipeServerProcessId"));
        }
        Self::new(pipe, pid)
    }

    /// The peer's process id (Windows has no uid/gid; see [`Self::check_peer`]).
    pub fn peer_credentials(&self) -> Result<PeerCredentials> {
        Ok(PeerCredentials { pid: self.peer_pid })
    }

    /// Checks the peer against `policy`. [`PeerPolicy::SameUser`] compares the peer process's
    /// token user with ours ([`Error::PermissionDenied`] naming both SIDs if they differ);
    /// [`PeerPolicy::AnyUser`] skips that (the pipe's DACL still admits only the current
    /// user); [`PeerPolicy::Uids`] is a Unix policy and gives [`Error::Unsupported`].
    pub fn check_peer(&self, policy: &PeerPolicy) -> Result<PeerCredentials> {
        let creds = self.peer_credentials()?;
        match policy {
            PeerPolicy::AnyUser => Ok(creds),
            PeerPolicy::Uids(_) => Err(Error::unsupported(
                "PeerPolicy::Uids on Windows",
                "uids are a Unix notion; the pipe admits the current user only (use SameUser)",
            )),
            PeerPolicy::SameUser => {
                let ours = TokenUserInfo::of_process(current_process())?;
                let theirs = TokenUserInfo::of_process(self.peer.as_raw_handle())?;
                if ours.same_user(&theirs) {
                    return Ok(creds);
                }
                Err(Error::PermissionDenied(format!(
                    "peer pid {} runs as {}, we are {}",
                    creds.pid,
                    theirs.sid_string()?,
                    ours.sid_string()?
                )))
            }
        }
    }

    /// Lowers the largest protocol frame this connection accepts (at most
    /// [`MAX_MESSAGE_BYTES`]); larger ones fail with [`Error::Protocol`].
    pub fn set_max_message_bytes(&mut self, bytes: usize) {
        self.max_message_bytes = bytes.clamp(HEADER_BYTES, MAX_MESSAGE_BYTES);
    }

    /// Pipes have no half-close: this does nothing. The `Bye` message marks the end of a
    /// stream, and closing the handle breaks the pipe for the peer.
    pub fn shutdown_write(&mut self) {}

    /// Sends `msg` with `handles` duplicated into the peer. The handles stay ours; on failure
    /// the duplicates already made in the peer are closed there again.
    pub fn send(&mut self, msg: &Message, handles: &[BorrowedHandle<'_>]) -> Result<()> {
        msg.check_outgoing_handles(handles.len())?;
        wire::encode_into(msg, &mut self.send_buf)?;
        let mut remote = Vec::with_capacity(handles.len());
        let result = self.duplicate_all(handles, &mut remote).and_then(|()| {
            let values: Vec<u64> = remote.iter().map(|h| *h as usize as u64).collect();
            handle_block::append(&mut self.send_buf, &values)?;
            self.write_message()
        });
        if result.is_err() {
            for h in remote {
                close_remote(&self.peer, h);
            }
        }
        result
    }

    fn duplicate_all(&self, handles: &[BorrowedHandle<'_>], out: &mut Vec<HANDLE>) -> Result<()> {
        for h in handles {
            let mut target: HANDLE = ptr::null_mut();
            // SAFETY: `h` is a live handle of this process; `self.peer` has PROCESS_DUP_HANDLE;
            // the duplicate lives in the peer, recorded in `out` so it can be closed on error.
            let ok = unsafe {
                DuplicateHandle(
                    current_process(),
                    h.as_raw_handle(),
                    self.peer.as_raw_handle(),
                    &mut target,
                    0,
                    0,
                    DUPLICATE_SAME_ACCESS,
                )
            };
            if ok == 0 {
                return Err(last_error("DuplicateHandle"));
            }
            out.push(target);
        }
        Ok(())
    }

    /// Writes `send_buf` as one message and waits (at most [`SEND_TIMEOUT`]) until the pipe
    /// took it. `send_buf` is not touched until the write completed or was cancelled.
    fn write_message(&mut self) -> Result<()> {
        let len = self.send_buf.len();
        let overlapped = self.write.begin();
        // SAFETY: a connected pipe opened for overlapped I/O; `send_buf` stays untouched and
        // `overlapped` alive until the write is complete or cancelled and waited for, below.
        let ok = unsafe {
            WriteFile(
                self.pipe.as_raw_handle(),
                self.send_buf.as_ptr(),
                len as u32,
                ptr::null_mut(),
                overlapped,
            )
        };
        self.write
            .started(ok)
            .map_err(|code| peer_gone_or("WriteFile", code))?;
        self.write.wait_event(Some(SEND_TIMEOUT))?;
        match self.write.result(&self.pipe, false) {
            Ok(Some(n)) if n as usize == len => Ok(()),
            Ok(Some(n)) => Err(Error::Protocol(format!("short write: {n} of {len} bytes"))),
            Ok(None) => {
                self.write.cancel(&self.pipe);
                Err(Error::Timeout(format!(
                    "the peer (pid {}) read nothing for {SEND_TIMEOUT:?}",
                    self.peer_pid
                )))
            }
            Err(code) => Err(peer_gone_or("WriteFile", code)),
        }
    }

    /// Posts a read if none is pending (what the producer's service thread waits on).
    pub(crate) fn arm(&mut self) -> Result<()> {
        if self.read.pending {
            return Ok(());
        }
        let overlapped = self.read.begin();
        // SAFETY: a connected pipe opened for overlapped I/O; `recv_buf` (boxed, never
        // resized) and `overlapped` stay alive and untouched until the read completes, or is
        // cancelled and waited for (in drop).
        let ok = unsafe {
            ReadFile(
                self.pipe.as_raw_handle(),
                self.recv_buf.as_mut_ptr(),
                self.recv_buf.len() as u32,
                ptr::null_mut(),
                overlapped,
            )
        };
        self.read.started(ok).map_err(|code| self.read_error(code))
    }

    /// The event that is signaled when the posted read completes.
    pub(crate) fn read_event(&self) -> Arc<OwnedHandle> {
        self.read.event.clone()
    }

    fn read_error(&self, code: u32) -> Error {
        if code == ERROR_MORE_DATA {
            return Error::Protocol(format!(
                "pipe message larger than {MAX_PIPE_MESSAGE_BYTES} bytes"
            ));
        }
        peer_gone_or("ReadFile", code)
    }

    /// Takes one message if one has arrived, without blocking, and posts the next read.
    pub fn try_recv(&mut self) -> Result<Option<(Message, Vec<OwnedHandle>)>> {
        self.arm()?;
        match self.read.result(&self.pipe, false) {
            Ok(None) => Ok(None),
            Ok(Some(n)) => {
                let taken = self.take(n as usize);
                // Keep a read posted for the next message (errors show on the next call).
                let _ = self.arm();
                taken.map(Some)
            }
            Err(code) => Err(self.read_error(code)),
        }
    }

    /// Waits for one message (at most `timeout`; forever with `None`).
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<(Message, Vec<OwnedHandle>)> {
        recv_within(self, timeout, Self::try_recv, Self::wait_readable)
    }

    /// Waits until a message may have arrived, at most `left` (forever with `None`); call
    /// after a [`Self::try_recv`] that found none (it posts the read this waits for).
    pub(crate) fn wait_readable(&mut self, left: Option<Duration>) -> Result<()> {
        self.read.wait_event(left)
    }

    /// Decodes the `n` bytes the last read delivered and takes ownership of the handles the
    /// peer duplicated into this process (dropping them closes them, also when the message
    /// turns out to be malformed).
    fn take(&mut self, n: usize) -> Result<(Message, Vec<OwnedHandle>)> {
        if n > self.max_message_bytes + MAX_BLOCK_BYTES {
            return Err(Error::Protocol(format!(
                "message of {n} bytes exceeds this connection's limit of {}",
                self.max_message_bytes
            )));
        }
        let (frame, values) = handle_block::split(&self.recv_buf[..n])?;
        // Own the handles first, so that every error below closes them.
        let handles: Vec<OwnedHandle> = values
            .iter()
            .map(|v| {
                // SAFETY: the peer duplicated these handles into this process for us and
                // transferred them with this message; nothing else in this process owns them
                // (peers are same-user processes; see the module docs).
                unsafe { OwnedHandle::from_raw_handle(*v as usize as HANDLE) }
            })
            .collect();
        if frame.len() > self.max_message_bytes {
            return Err(Error::Protocol(format!(
                "message of {} bytes exceeds this connection's limit of {}",
                frame.len(),
                self.max_message_bytes
            )));
        }
        let msg = wire::decode(frame)?;
        msg.check_incoming_handles(handles.len())?;
        Ok((msg, handles))
    }
}

impl Drop for PipeConnection {
    fn drop(&mut self) {
        // The kernel must be done with the buffers before they are freed.
        self.read.cancel(&self.pipe);
        self.write.cancel(&self.pipe);
    }
}

/// Closes a handle we duplicated into `peer` (error paths only).
fn close_remote(peer: &OwnedHandle, remote: HANDLE) {
    // SAFETY: `remote` is a handle we created in `peer` a moment ago and never told the peer
    // about; DUPLICATE_CLOSE_SOURCE with no target closes it there.
    unsafe {
        DuplicateHandle(
            peer.as_raw_handle(),
            remote,
            ptr::null_mut(),
            ptr::null_mut(),
            0,
            0,
            DUPLICATE_CLOSE_SOURCE,
        )
    };
}
