//! Windows transport: a message-mode named pipe (`\\.\pipe\geyser-<name>`) that carries the
//! same frames as the Unix socket ([`protocol`](super::protocol)); NT handles travel by
//! `DuplicateHandle` into the peer process, their new values in a
//! [`handle_block`](super::handle_block) after the frame.
//!
//! Compiles in CI for `x86_64-pc-windows-msvc`; has never run on Windows.
//!
//! Security: the pipe's DACL grants access to the current user's SID only, remote clients are
//! rejected (`PIPE_REJECT_REMOTE_CLIENTS`), the first instance is created with
//! `FILE_FLAG_FIRST_PIPE_INSTANCE` (a name another process already holds is refused, not
//! shared), and clients connect with `SECURITY_IDENTIFICATION` so the server cannot
//! impersonate them. Pushing handles needs `PROCESS_DUP_HANDLE` on the peer, which Windows
//! grants between processes of the same user: peers are trusted like same-uid peers on Unix.

use std::ffi::c_void;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
use std::ptr;

use windows_sys::Win32::Foundation::{
    DuplicateHandle, GetLastError, LocalFree, DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS,
    ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_NO_DATA,
    ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED, ERROR_PIPE_NOT_CONNECTED, GENERIC_READ, GENERIC_WRITE,
    HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, GetNamedPipeClientProcessId, GetNamedPipeServerProcessId,
    SetNamedPipeHandleState, WaitNamedPipeW, PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_MESSAGE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_DUP_HANDLE,
};

use super::handle_block::{self, MAX_PIPE_MESSAGE_BYTES};
use super::protocol::{self, Message, MAX_STRING};
use crate::{Error, Result};

/// How long [`PipeConnection::connect`] waits for a busy pipe to offer an instance, in ms.
pub const CONNECT_WAIT_MS: u32 = 5_000;

/// The pipe path for an endpoint name: `\\.\pipe\geyser-<name>`. Names are 1 to 64 ASCII
/// letters, digits, `-`, `_` or `.` ([`Error::InvalidArgument`] otherwise), as on Unix.
pub fn pipe_path(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(Error::InvalidArgument {
            what: "endpoint name",
            reason: format!(
                "`{}` must be 1 to 64 ASCII letters, digits, `-`, `_` or `.`",
                name.chars().take(MAX_STRING).collect::<String>()
            ),
        });
    }
    Ok(format!(r"\\.\pipe\geyser-{name}"))
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error(call: &str) -> Error {
    Error::Io(std::io::Error::other(format!(
        "{call} failed: {}",
        std::io::Error::last_os_error()
    )))
}

/// Takes ownership of a handle a Win32 call returned, or reports the call's error.
fn owned(raw: HANDLE, call: &str) -> Result<OwnedHandle> {
    if raw.is_null() || raw == INVALID_HANDLE_VALUE {
        return Err(last_error(call));
    }
    // SAFETY: `raw` is a new, valid handle returned to us by `call`; nothing else owns it.
    Ok(unsafe { OwnedHandle::from_raw_handle(raw) })
}

/// Memory from `LocalAlloc` that Win32 handed us (SDDL strings, security descriptors).
struct LocalMem(*mut c_void);

impl Drop for LocalMem {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a Win32 call documented to allocate with
            // LocalAlloc, and is freed only here.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// A security descriptor whose DACL grants access to the current user only.
struct UserOnly {
    descriptor: LocalMem,
}

impl UserOnly {
    fn new() -> Result<Self> {
        let mut token: HANDLE = ptr::null_mut();
        // SAFETY: the pseudo-handle of the current process is always valid; `token` receives a
        // new handle, owned below.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return Err(last_error("OpenProcessToken"));
        }
        let token = owned(token, "OpenProcessToken")?;
        let mut len = 0u32;
        // SAFETY: a size query (null buffer, zero length) on a live token handle; it fails
        // with ERROR_INSUFFICIENT_BUFFER and sets `len`.
        unsafe {
            GetTokenInformation(
                token.as_raw_handle(),
                TokenUser,
                ptr::null_mut(),
                0,
                &mut len,
            )
        };
        if len == 0 {
            return Err(last_error("GetTokenInformation"));
        }
        // u64 storage keeps the TOKEN_USER at its required alignment.
        let mut buf = vec![0u64; (len as usize).div_ceil(8)];
        // SAFETY: `buf` has at least `len` writable bytes, aligned for TOKEN_USER.
        if unsafe {
            GetTokenInformation(
                token.as_raw_handle(),
                TokenUser,
                buf.as_mut_ptr().cast(),
                len,
                &mut len,
            )
        } == 0
        {
            return Err(last_error("GetTokenInformation"));
        }
        // SAFETY: GetTokenInformation(TokenUser) succeeded, so `buf` starts with a TOKEN_USER
        // whose SID points into `buf`, which lives until the end of this function.
        let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
        let mut sid_string: *mut u16 = ptr::null_mut();
        // SAFETY: `sid` is a valid SID (see above); the string is LocalAlloc'ed and owned by
        // `LocalMem` below.
        if unsafe { ConvertSidToStringSidW(sid, &mut sid_string) } == 0 {
            return Err(last_error("ConvertSidToStringSidW"));
        }
        let sid_string = LocalMem(sid_string.cast());
        // SAFETY: ConvertSidToStringSidW returned a NUL-terminated UTF-16 string.
        let sid_text = unsafe {
            let p = sid_string.0.cast::<u16>();
            let n = (0..).take_while(|i| *p.add(*i) != 0).count();
            String::from_utf16_lossy(std::slice::from_raw_parts(p, n))
        };
        // Protected DACL, one entry: generic all for this user's SID.
        let sddl = wide(&format!("D:P(A;;GA;;;{sid_text})"));
        let mut descriptor: *mut c_void = ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated; the descriptor is LocalAlloc'ed, owned below.
        if unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                ptr::null_mut(),
            )
        } == 0
        {
            return Err(last_error(
                "ConvertStringSecurityDescriptorToSecurityDescriptorW",
            ));
        }
        Ok(UserOnly {
            descriptor: LocalMem(descriptor),
        })
    }

    fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.descriptor.0,
            bInheritHandle: 0,
        }
    }
}

/// The listening side: creates one pipe instance per accepted connection, all restricted to
/// the current user.
pub struct PipeServer {
    path: Vec<u16>,
    security: UserOnly,
    /// The next instance to hand out: created ahead, so the name stays owned by this server.
    next: Option<OwnedHandle>,
}

impl std::fmt::Debug for PipeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeServer")
            .field("path", &String::from_utf16_lossy(&self.path))
            .finish()
    }
}

impl PipeServer {
    /// Creates the endpoint's first pipe instance. [`Error::AddressInUse`] when another
    /// process already holds the name.
    pub fn bind(name: &str) -> Result<Self> {
        let path = pipe_path(name)?;
        let security = UserOnly::new()?;
        let wide_path = wide(&path);
        let first = create_instance(&wide_path, &security, true)?;
        Ok(PipeServer {
            path: wide_path,
            security,
            next: Some(first),
        })
    }

    /// Waits for a client on the prepared instance, prepares the next one, and returns the
    /// connection (with a handle to the client process for handle duplication).
    pub fn accept(&mut self) -> Result<PipeConnection> {
        let pipe = match self.next.take() {
            Some(p) => p,
            None => create_instance(&self.path, &self.security, false)?,
        };
        // SAFETY: `pipe` is a live, not yet connected pipe instance; synchronous mode (no
        // OVERLAPPED).
        let ok = unsafe { ConnectNamedPipe(pipe.as_raw_handle(), ptr::null_mut()) };
        // SAFETY: reading the calling thread's last-error value has no preconditions.
        if ok == 0 && unsafe { GetLastError() } != ERROR_PIPE_CONNECTED {
            return Err(last_error("ConnectNamedPipe"));
        }
        self.next = create_instance(&self.path, &self.security, false).ok();
        let mut pid = 0u32;
        // SAFETY: a connected server instance; `pid` is a valid out pointer.
        if unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle(), &mut pid) } == 0 {
            return Err(last_error("GetNamedPipeClientProcessId"));
        }
        PipeConnection::new(pipe, pid)
    }
}

fn create_instance(path: &[u16], security: &UserOnly, first: bool) -> Result<OwnedHandle> {
    let attributes = security.attributes();
    let open_mode = PIPE_ACCESS_DUPLEX
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
        // SAFETY: reading the calling thread's last-error value has no preconditions.
        let code = unsafe { GetLastError() };
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
/// into.
pub struct PipeConnection {
    pipe: OwnedHandle,
    peer: OwnedHandle,
    peer_pid: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for PipeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeConnection")
            .field("peer_pid", &self.peer_pid)
            .finish()
    }
}

impl PipeConnection {
    fn new(pipe: OwnedHandle, peer_pid: u32) -> Result<Self> {
        // SAFETY: plain call; the result is checked and owned by `owned`.
        let raw = unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, peer_pid) };
        let peer = owned(raw, "OpenProcess(PROCESS_DUP_HANDLE)").map_err(|e| {
            Error::PermissionDenied(format!(
                "cannot duplicate handles into peer process {peer_pid}: {e}"
            ))
        })?;
        Ok(PipeConnection {
            pipe,
            peer,
            peer_pid,
            buf: Vec::with_capacity(MAX_PIPE_MESSAGE_BYTES),
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
                    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                    ptr::null_mut(),
                )
            };
            if raw != INVALID_HANDLE_VALUE {
                break owned(raw, "CreateFileW")?;
            }
            // SAFETY: reading the calling thread's last-error value has no preconditions.
            match unsafe { GetLastError() } {
                ERROR_FILE_NOT_FOUND => {
                    return Err(Error::NotFound { path: path.into() });
                }
                ERROR_PIPE_BUSY => {
                    // SAFETY: `wide_path` is NUL-terminated.
                    if unsafe { WaitNamedPipeW(wide_path.as_ptr(), CONNECT_WAIT_MS) } == 0 {
                        return Err(Error::Timeout(format!(
                            "every instance of {path} stayed busy for {CONNECT_WAIT_MS} ms"
                        )));
                    }
                }
                _ => return Err(last_error("CreateFileW")),
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

    /// The peer's process id, as the pipe reports it.
    pub fn peer_pid(&self) -> u32 {
        self.peer_pid
    }

    /// Sends `msg` with `handles` duplicated into the peer. The handles stay ours; on failure
    /// the duplicates already made in the peer are closed there again.
    pub fn send(&mut self, msg: &Message, handles: &[BorrowedHandle<'_>]) -> Result<()> {
        if handles.len() != msg.expected_fds() {
            return Err(Error::InvalidArgument {
                what: "handles",
                reason: format!(
                    "{} carries {} handles, {} given",
                    msg.kind(),
                    msg.expected_fds(),
                    handles.len()
                ),
            });
        }
        protocol::encode_into(msg, &mut self.buf)?;
        let mut remote = Vec::with_capacity(handles.len());
        let result = self.duplicate_all(handles, &mut remote).and_then(|()| {
            let values: Vec<u64> = remote.iter().map(|h| *h as usize as u64).collect();
            handle_block::append(&mut self.buf, &values)?;
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
                    GetCurrentProcess(),
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

    fn write_message(&self) -> Result<()> {
        let mut written = 0u32;
        // SAFETY: a connected pipe; `buf` is valid for its length; synchronous write.
        let ok = unsafe {
            WriteFile(
                self.pipe.as_raw_handle(),
                self.buf.as_ptr(),
                self.buf.len() as u32,
                &mut written,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(peer_gone_or_io("WriteFile"));
        }
        if written as usize != self.buf.len() {
            return Err(Error::Protocol(format!(
                "short write: {written} of {} bytes",
                self.buf.len()
            )));
        }
        Ok(())
    }

    /// Receives one message and the handles the peer duplicated into this process (owned:
    /// dropping them closes them, also when the message turns out to be malformed).
    pub fn recv(&mut self) -> Result<(Message, Vec<OwnedHandle>)> {
        self.buf.resize(MAX_PIPE_MESSAGE_BYTES, 0);
        let mut read = 0u32;
        // SAFETY: a connected pipe; `buf` is valid for writes of its length; synchronous read.
        let ok = unsafe {
            ReadFile(
                self.pipe.as_raw_handle(),
                self.buf.as_mut_ptr(),
                self.buf.len() as u32,
                &mut read,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            // SAFETY: reading the calling thread's last-error value has no preconditions.
            if unsafe { GetLastError() } == ERROR_MORE_DATA {
                return Err(Error::Protocol(format!(
                    "pipe message larger than {MAX_PIPE_MESSAGE_BYTES} bytes"
                )));
            }
            return Err(peer_gone_or_io("ReadFile"));
        }
        self.buf.truncate(read as usize);
        let (frame, values) = handle_block::split(&self.buf)?;
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
        let msg = protocol::decode(frame)?;
        if handles.len() != msg.expected_fds() {
            return Err(Error::Protocol(format!(
                "{} came with {} handles, expected {}",
                msg.kind(),
                handles.len(),
                msg.expected_fds()
            )));
        }
        Ok((msg, handles))
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

fn peer_gone_or_io(call: &str) -> Error {
    // SAFETY: reading the calling thread's last-error value has no preconditions.
    match unsafe { GetLastError() } {
        ERROR_BROKEN_PIPE | ERROR_NO_DATA | ERROR_PIPE_NOT_CONNECTED => {
            Error::PeerGone(format!("{call}: pipe closed"))
        }
        _ => last_error(call),
    }
}
