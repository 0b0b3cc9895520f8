//! Named endpoints: a name maps to a `SOCK_SEQPACKET` socket in a private runtime directory
//! (0700, socket 0600); [`Listener`] and [`Connection`] send and receive checked messages.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    accept_with, bind, connect, listen, socket_with, socketpair, sockopt, AddressFamily,
    SocketAddrUnix, SocketFlags, SocketType,
};

use super::fd_passing;
use super::recv_within;
use crate::ipc::peer::{PeerCredentials, PeerPolicy};
use crate::ipc::wire::{decode, encode_into, Message, HEADER_BYTES, MAX_MESSAGE_BYTES};
use crate::{Error, Result};

/// The directory endpoint sockets live in: `$GEYSER_RUNTIME_DIR`, else
/// `$XDG_RUNTIME_DIR/geyser`, else `/tmp/geyser-<uid>`. Created 0700; an existing one must be a
/// directory owned by us (its mode is tightened to 0700).
pub fn runtime_dir() -> Result<PathBuf> {
    let dir = if let Some(d) = std::env::var_os("GEYSER_RUNTIME_DIR") {
        PathBuf::from(d)
    } else if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| Path::new(x).is_dir())
    {
        Path::new(&xdg).join("geyser")
    } else {
        PathBuf::from(format!(
            "/tmp/geyser-{}",
            rustix::process::geteuid().as_raw()
        ))
    };
    ensure_private_dir(&dir)?;
    Ok(dir)
}

fn ensure_private_dir(dir: &Path) -> Result<()> {
    // Created 0700 from the start (not chmod'ed after), so it is never briefly open.
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::Io(e)),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(Error::PermissionDenied(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(Error::PermissionDenied(format!(
            "{} belongs to uid {}, not to us (uid {me}); set GEYSER_RUNTIME_DIR to a private directory",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The socket path of endpoint `name`. Names are 1 to 64 of `[A-Za-z0-9._-]`, not starting
/// with `.`.
pub fn socket_path(name: &str) -> Result<PathBuf> {
    socket_path_in(&runtime_dir()?, name)
}

fn socket_path_in(dir: &Path, name: &str) -> Result<PathBuf> {
    crate::common::check_endpoint_name(name)?;
    let path = dir.join(format!("{name}.sock"));
    if path.as_os_str().len() > 107 {
        return Err(Error::InvalidArgument {
            what: "endpoint name",
            reason: format!(
                "socket path {} is longer than 107 bytes; use a shorter name or runtime dir",
                path.display()
            ),
        });
    }
    Ok(path)
}

fn seqpacket() -> Result<OwnedFd> {
    socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::Io(e.into()))
}

/// A listening endpoint. Dropping it removes the socket file if it is still ours.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
    ino: (u64, u64),
}

impl Listener {
    /// Listens on endpoint `name`. A socket file left by a dead producer is replaced; a live
    /// one gives [`Error::AddressInUse`].
    pub fn bind(name: &str) -> Result<Listener> {
        Self::bind_path(socket_path(name)?)
    }

    /// Listens at an explicit socket path (its directory must exist and be private).
    pub fn bind_path(path: PathBuf) -> Result<Listener> {
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(Error::InvalidArgument {
                    what: "endpoint path",
                    reason: format!(
                        "{} exists and is not a socket; remove it or pick another name",
                        path.display()
                    ),
                });
            }
            let probe = seqpacket()?;
            let addr = SocketAddrUnix::new(&path).map_err(|e| Error::Io(e.into()))?;
            match connect(&probe, &addr) {
                Ok(()) => return Err(Error::AddressInUse { path }),
                Err(Errno::CONNREFUSED) | Err(Errno::NOENT) => {
                    tracing::info!(path = %path.display(), "replacing a stale socket");
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(Error::Io(e.into())),
            }
        }
        let fd = seqpacket()?;
        let addr = SocketAddrUnix::new(&path).map_err(|e| Error::Io(e.into()))?;
        bind(&fd, &addr).map_err(|e| match e {
            Errno::ADDRINUSE => Error::AddressInUse { path: path.clone() },
            e => Error::Io(e.into()),
        })?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        listen(&fd, 64).map_err(|e| Error::Io(e.into()))?;
        let meta = std::fs::symlink_metadata(&path)?;
        Ok(Listener {
            fd,
            path,
            ino: (meta.dev(), meta.ino()),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one pending connection; `Ok(None)` when `nonblocking` and none is pending.
    pub fn accept(&self, nonblocking: bool) -> Result<Option<Connection>> {
        if nonblocking {
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            let zero = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            match poll(&mut fds, Some(&zero)) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(Errno::INTR) => return Ok(None),
                Err(e) => return Err(Error::Io(e.into())),
            }
        }
        match accept_with(&self.fd, SocketFlags::CLOEXEC) {
            Ok(fd) => Ok(Some(Connection::from_fd(fd))),
            Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::CONNABORTED) => Ok(None),
            Err(e) => Err(Error::Io(e.into())),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// One end of a connection: checked, bounded messages with FDs beside them. Buffers are
/// reused, so steady-state messages allocate nothing.
pub struct Connection {
    fd: OwnedFd,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
    max_message_bytes: usize,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("fd", &self.fd).finish()
    }
}

impl Connection {
    fn from_fd(fd: OwnedFd) -> Self {
        Connection {
            fd,
            send_buf: Vec::with_capacity(256),
            recv_buf: vec![0; MAX_MESSAGE_BYTES + HEADER_BYTES],
            max_message_bytes: MAX_MESSAGE_BYTES,
        }
    }

    /// Connects to endpoint `name`; [`Error::NotFound`] (with the path) when no producer
    /// listens there.
    pub fn connect(name: &str) -> Result<Connection> {
        Self::connect_path(&socket_path(name)?)
    }

    /// Connects to an explicit socket path.
    pub fn connect_path(path: &Path) -> Result<Connection> {
        let fd = seqpacket()?;
        let addr = SocketAddrUnix::new(path).map_err(|e| Error::Io(e.into()))?;
        match connect(&fd, &addr) {
            Ok(()) => Ok(Connection::from_fd(fd)),
            Err(Errno::NOENT) | Err(Errno::CONNREFUSED) => Err(Error::NotFound {
                path: path.to_path_buf(),
            }),
            Err(Errno::ACCESS) | Err(Errno::PERM) => Err(Error::PermissionDenied(format!(
                "cannot reach {}: it belongs to another user",
                path.display()
            ))),
            Err(e) => Err(Error::Io(e.into())),
        }
    }

    /// A connected pair (for tests and in-process use).
    pub fn pair() -> Result<(Connection, Connection)> {
        let (a, b) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::Io(e.into()))?;
        Ok((Connection::from_fd(a), Connection::from_fd(b)))
    }

    /// The peer's credentials from the kernel.
    pub fn peer_credentials(&self) -> Result<PeerCredentials> {
        let c = sockopt::socket_peercred(&self.fd).map_err(|e| Error::Io(e.into()))?;
        Ok(PeerCredentials {
            pid: c.pid.as_raw_nonzero().get() as u32,
            uid: c.uid.as_raw(),
            gid: c.gid.as_raw(),
        })
    }

    /// Checks the peer against `policy`; [`Error::PermissionDenied`] naming both uids if not.
    pub fn check_peer(&self, policy: &PeerPolicy) -> Result<PeerCredentials> {
        let creds = self.peer_credentials()?;
        let me = rustix::process::geteuid().as_raw();
        let allowed = match policy {
            PeerPolicy::SameUser => creds.uid == me,
            PeerPolicy::AnyUser => true,
            PeerPolicy::Uids(uids) => uids.contains(&creds.uid),
        };
        if !allowed {
            return Err(Error::PermissionDenied(format!(
                "peer pid {} runs as uid {}, policy {policy:?} (we are uid {me})",
                creds.pid, creds.uid
            )));
        }
        Ok(creds)
    }

    /// Ends our sending side (`shutdown(SHUT_WR)`): the peer reads what was sent, then sees the
    /// connection closed. Errors (a peer already gone) are ignored.
    pub fn shutdown_write(&mut self) {
        let _ = rustix::net::shutdown(&self.fd, rustix::net::Shutdown::Write);
    }

    /// Sends a message with exactly the FDs it expects.
    pub fn send(&mut self, msg: &Message, fds: &[BorrowedFd<'_>]) -> Result<()> {
        msg.check_outgoing_handles(fds.len())?;
        encode_into(msg, &mut self.send_buf)?;
        fd_passing::send(self.fd.as_fd(), &self.send_buf, fds)
    }

    /// Lowers the largest message this connection accepts (at most [`MAX_MESSAGE_BYTES`]);
    /// larger ones close it with [`Error::Protocol`].
    pub fn set_max_message_bytes(&mut self, bytes: usize) {
        self.max_message_bytes = bytes.clamp(HEADER_BYTES, MAX_MESSAGE_BYTES);
    }

    fn take(&mut self, n: usize, mut fds: Vec<OwnedFd>) -> Result<(Message, Vec<OwnedFd>)> {
        if n > self.max_message_bytes {
            return Err(Error::Protocol(format!(
                "message of {n} bytes exceeds this connection's limit of {}",
                self.max_message_bytes
            )));
        }
        let msg = decode(&self.recv_buf[..n])?; // on error, `fds` drops: extra FDs are closed
        msg.check_incoming_handles(fds.len())?;
        for fd in &fds {
            fd_passing::check_fd_is_memory(fd.as_fd())?;
        }
        Ok((msg, std::mem::take(&mut fds)))
    }

    /// Waits for one message (at most `timeout`; forever with `None`).
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<(Message, Vec<OwnedFd>)> {
        recv_within(self, timeout, Self::try_recv, Self::wait_readable)
    }

    /// Waits until a message may be queued, at most `left` (forever with `None`).
    pub(crate) fn wait_readable(&mut self, left: Option<Duration>) -> Result<()> {
        let ts = left.map(|l| rustix::time::Timespec {
            tv_sec: i64::try_from(l.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: l.subsec_nanos() as i64,
        });
        let mut pfd = [PollFd::new(&self.fd, PollFlags::IN)];
        match poll(&mut pfd, ts.as_ref()) {
            Ok(_) | Err(Errno::INTR) => Ok(()),
            Err(e) => Err(Error::Io(e.into())),
        }
    }

    /// Takes one message if one is queued, without blocking.
    pub fn try_recv(&mut self) -> Result<Option<(Message, Vec<OwnedFd>)>> {
        let mut fds = Vec::new();
        match fd_passing::recv(self.fd.as_fd(), &mut self.recv_buf, &mut fds, true)? {
            None => Ok(None),
            Some(n) => self.take(n, fds).map(Some),
        }
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{
        ExportInfo, ExternalHandleType, MemoryLayout, TextureDescriptor, TextureExtent,
        TextureFormat, TextureUsage,
    };
    use crate::ipc::wire::{FrameId, Hello, Role, SyncMode};
    use std::os::unix::fs::DirBuilderExt;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("geyser-ep-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        ensure_private_dir(&d).unwrap();
        d
    }

    #[test]
    fn bind_connect_hello_and_permissions() {
        let dir = tempdir("hello");
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let path = socket_path_in(&dir, "cam").unwrap();
        let listener = Listener::bind_path(path.clone()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let mut client = Connection::connect_path(&path).unwrap();
        let mut server = listener.accept(false).unwrap().unwrap();
        let creds = server.check_peer(&PeerPolicy::SameUser).unwrap();
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(creds.pid, std::process::id());
        assert_eq!(creds.uid, me);
        assert_eq!(creds.gid, rustix::process::getegid().as_raw());
        assert_eq!(server.peer_credentials().unwrap(), creds);
        server.check_peer(&PeerPolicy::AnyUser).unwrap();
        server.check_peer(&PeerPolicy::Uids(vec![me])).unwrap();
        match server.check_peer(&PeerPolicy::Uids(vec![me.wrapping_add(1)])) {
            Err(Error::PermissionDenied(m)) => assert!(m.contains(&format!("uid {me}")), "{m}"),
            other => panic!("{other:?}"),
        }
        let hello = Message::Hello(Hello::new(
            Role::Consumer,
            [1; 16],
            [2; 16],
            vec![SyncMode::Host],
            "c".into(),
        ));
        client.send(&hello, &[]).unwrap();
        let (got, fds) = server.recv(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(got, hello);
        assert!(fds.is_empty());
        assert!(matches!(
            server.recv(Some(Duration::from_millis(20))),
            Err(Error::Timeout(_))
        ));
        drop(client);
        assert!(matches!(
            server.recv(Some(Duration::from_secs(1))),
            Err(Error::PeerGone(_))
        ));
        drop(listener);
        assert!(
            !path.exists(),
            "the socket file is removed with its listener"
        );
    }

    #[test]
    fn live_endpoints_are_kept_and_stale_ones_replaced() {
        let dir = tempdir("stale");
        let path = socket_path_in(&dir, "x").unwrap();
        let live = Listener::bind_path(path.clone()).unwrap();
        assert!(matches!(
            Listener::bind_path(path.clone()),
            Err(Error::AddressInUse { .. })
        ));
        drop(live);
        // A socket file nobody listens on (what a killed producer leaves behind).
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        assert!(path.exists());
        let _l = Listener::bind_path(path.clone()).unwrap();
    }

    #[test]
    fn missing_endpoints_and_bad_names() {
        let dir = tempdir("missing");
        let path = socket_path_in(&dir, "nobody").unwrap();
        match Connection::connect_path(&path) {
            Err(e @ Error::NotFound { .. }) => assert!(e.to_string().contains("nobody.sock")),
            other => panic!("{other:?}"),
        }
        for bad in ["", ".hidden", "a/b", "sp ace", &"x".repeat(65)] {
            assert!(socket_path_in(&dir, bad).is_err(), "{bad:?}");
        }
    }

    /// A pipe whose write end travels; every copy of it is closed once the (nonblocking) read
    /// end reports end of file. Exact even while other tests open FDs on other threads.
    fn tracer() -> (OwnedFd, OwnedFd) {
        use rustix::pipe::{pipe_with, PipeFlags};
        pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).unwrap()
    }

    fn every_copy_closed(read_end: &OwnedFd) -> bool {
        matches!(rustix::io::read(read_end, &mut [0u8; 1]), Ok(0))
    }

    fn export_info() -> ExportInfo {
        ExportInfo {
            descriptor: TextureDescriptor::new(
                16,
                16,
                TextureFormat::Rgba8Unorm,
                &[TextureUsage::CopySrc],
            ),
            extent: TextureExtent::default(),
            handle_type: ExternalHandleType::OpaqueFd,
            layout: MemoryLayout::Optimal,
            allocation_size: 4096,
            memory_type_index: 0,
            dedicated: true,
            planes: Vec::new(),
            device_uuid: [0; 16],
            driver_uuid: [0; 16],
        }
    }

    #[test]
    fn fd_counts_must_match_the_message_and_unwanted_fds_are_closed() {
        let (mut a, mut b) = Connection::pair().unwrap();
        let (r, w) = tracer();
        let m = Message::FrameReleased {
            id: FrameId { slot: 0, frame: 0 },
            value: 0,
        };
        assert!(matches!(
            a.send(&m, &[w.as_fd()]),
            Err(Error::InvalidArgument { .. })
        ));
        // Bypass the check, as a hostile peer would: the receiver refuses and closes the FD.
        let mut buf = Vec::new();
        encode_into(&m, &mut buf).unwrap();
        fd_passing::send(a.as_fd(), &buf, &[w.as_fd()]).unwrap();
        drop(w);
        assert!(matches!(
            b.recv(Some(Duration::from_secs(1))),
            Err(Error::Protocol(_))
        ));
        assert!(every_copy_closed(&r));
        // A pool whose FD is missing.
        let pool = Message::PoolSetup {
            generation: 1,
            sync: SyncMode::Host,
            slots: vec![export_info()],
            ordered: false,
        };
        encode_into(&pool, &mut buf).unwrap();
        fd_passing::send(a.as_fd(), &buf, &[]).unwrap();
        assert!(matches!(b.try_recv(), Err(Error::Protocol(_))));
    }

    #[test]
    fn pool_fds_arrive_and_non_memory_fds_are_refused() {
        let (mut a, mut b) = Connection::pair().unwrap();
        let pool = Message::PoolSetup {
            generation: 1,
            sync: SyncMode::Host,
            slots: vec![export_info(), export_info()],
            ordered: false,
        };
        let m0 = rustix::fs::memfd_create("s0", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let m1 = rustix::fs::memfd_create("s1", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        a.send(&pool, &[m0.as_fd(), m1.as_fd()]).unwrap();
        let (got, fds) = b.recv(Some(Duration::from_secs(1))).unwrap();
        assert_eq!((got, fds.len()), (pool.clone(), 2));
        // A pipe is no memory handle: refused, and closed with the message.
        let (r, w) = tracer();
        a.send(&pool, &[m0.as_fd(), w.as_fd()]).unwrap();
        drop(w);
        assert!(matches!(
            b.recv(Some(Duration::from_secs(1))),
            Err(Error::Protocol(_))
        ));
        assert!(every_copy_closed(&r));
    }

    #[test]
    fn idle_endpoints_do_not_block() {
        let dir = tempdir("idle");
        let listener = Listener::bind_path(socket_path_in(&dir, "idle").unwrap()).unwrap();
        assert!(listener.accept(true).unwrap().is_none());
        let (mut a, mut b) = Connection::pair().unwrap();
        assert!(a.try_recv().unwrap().is_none());
        // A wait longer than any deadline can express still returns when a message comes.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            b.send(&Message::Bye { reason: "x".into() }, &[]).unwrap();
            b
        });
        let (m, _) = a.recv(Some(Duration::MAX)).unwrap();
        assert!(matches!(m, Message::Bye { .. }));
        drop(sender.join().unwrap());
        assert!(matches!(a.try_recv(), Err(Error::PeerGone(_))));
    }

    #[test]
    fn private_dirs_are_tightened_and_checked() {
        let base = tempdir("dirs");
        let loose = base.join("loose");
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&loose)
            .unwrap();
        ensure_private_dir(&loose).unwrap();
        assert_eq!(std::fs::metadata(&loose).unwrap().mode() & 0o777, 0o700);
        let file = base.join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            ensure_private_dir(&file),
            Err(Error::PermissionDenied(m)) if m.contains("file")
        ));
        let link = base.join("link");
        std::os::unix::fs::symlink(&loose, &link).unwrap();
        assert!(matches!(
            ensure_private_dir(&link),
            Err(Error::PermissionDenied(_))
        ));
        if rustix::process::geteuid().is_root() {
            // Only root can give a directory away; as anyone else this part is skipped.
            let theirs = base.join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            let other = rustix::process::Uid::from_raw(54_321);
            rustix::fs::chown(&theirs, Some(other), None).unwrap();
            assert!(matches!(
                ensure_private_dir(&theirs),
                Err(Error::PermissionDenied(m)) if m.contains("theirs")
            ));
        }
    }

    #[test]
    fn long_paths_and_non_sockets_are_refused() {
        let deep = PathBuf::from(format!("/{}", "d".repeat(100)));
        assert!(matches!(
            socket_path_in(&deep, "name"),
            Err(Error::InvalidArgument { .. })
        ));
        let longest = "n".repeat(64);
        assert!(socket_path_in(Path::new("/tmp"), &longest).is_ok());
        assert!(socket_path_in(Path::new("/tmp"), "a.b_c-D9").is_ok());
        let dir = tempdir("notsock");
        let path = socket_path_in(&dir, "file").unwrap();
        std::fs::write(&path, b"keep me").unwrap();
        assert!(matches!(
            Listener::bind_path(path.clone()),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }

    #[test]
    fn a_replaced_socket_is_left_to_its_new_owner() {
        let dir = tempdir("replaced");
        let path = socket_path_in(&dir, "r").unwrap();
        let old = Listener::bind_path(path.clone()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let new = Listener::bind_path(path.clone()).unwrap();
        drop(old);
        assert!(
            path.exists(),
            "the old listener must not unlink the new socket"
        );
        drop(new);
        assert!(!path.exists());
    }
}
