//! Named endpoints: a name maps to a `SOCK_SEQPACKET` socket in a private runtime directory
//! (0700, socket 0600); [`Listener`] and [`Connection`] send and receive checked messages.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    accept_with, bind, connect, listen, socket_with, socketpair, sockopt, AddressFamily,
    SocketAddrUnix, SocketFlags, SocketType,
};

use super::fd_passing;
use super::protocol::{decode, encode_into, Message, HEADER_BYTES, MAX_MESSAGE_BYTES};
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
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(Error::InvalidArgument {
            what: "endpoint name",
            reason: format!("`{name}`: use 1 to 64 of A-Z a-z 0-9 . _ - (not starting with .)"),
        });
    }
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

/// Who is at the other end of a connection (from `SO_PEERCRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Which peers a connection accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PeerPolicy {
    /// Only processes of our own effective uid (the default).
    #[default]
    SameUser,
    /// Anyone who can reach the socket.
    AnyUser,
    /// These uids.
    Uids(Vec<u32>),
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

    /// Sends a message with exactly the FDs it expects.
    pub fn send(&mut self, msg: &Message, fds: &[BorrowedFd<'_>]) -> Result<()> {
        if fds.len() != msg.expected_fds() {
            return Err(Error::InvalidArgument {
                what: "fds",
                reason: format!(
                    "{} carries {} FDs, {} given",
                    msg.kind(),
                    msg.expected_fds(),
                    fds.len()
                ),
            });
        }
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
        if fds.len() != msg.expected_fds() {
            return Err(Error::Protocol(format!(
                "{} came with {} FDs, expected {}",
                msg.kind(),
                fds.len(),
                msg.expected_fds()
            )));
        }
        for fd in &fds {
            fd_passing::check_fd_is_memory(fd.as_fd())?;
        }
        Ok((msg, std::mem::take(&mut fds)))
    }

    /// Waits for one message (at most `timeout`; forever with `None`).
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<(Message, Vec<OwnedFd>)> {
        // A timeout too long to represent waits forever.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if let Some(m) = self.try_recv()? {
                return Ok(m);
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(Error::Timeout("no message from the peer".into()));
            }
            let ts = left.map(|l| rustix::time::Timespec {
                tv_sec: i64::try_from(l.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: l.subsec_nanos() as i64,
            });
            let mut pfd = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut pfd, ts.as_ref()) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(Error::Io(e.into())),
            }
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
    use super::super::protocol::{Hello, Role, SyncMode};
    use super::*;

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
        assert_eq!(creds.pid, std::process::id());
        let me = rustix::process::geteuid().as_raw();
        assert!(matches!(
            server.check_peer(&PeerPolicy::Uids(vec![me.wrapping_add(1)])),
            Err(Error::PermissionDenied(_))
        ));
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

    #[test]
    fn fd_counts_must_match_the_message() {
        let (mut a, mut b) = Connection::pair().unwrap();
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        let m = Message::FrameReleased {
            slot: 0,
            frame: 0,
            value: 0,
        };
        assert!(matches!(
            a.send(&m, &[f.as_fd()]),
            Err(Error::InvalidArgument { .. })
        ));
        // Bypass the check: the receiver refuses and closes the unexpected FD.
        let mut buf = Vec::new();
        encode_into(&m, &mut buf).unwrap();
        fd_passing::send(a.as_fd(), &buf, &[f.as_fd()]).unwrap();
        assert!(matches!(
            b.recv(Some(Duration::from_secs(1))),
            Err(Error::Protocol(_))
        ));
    }
}
