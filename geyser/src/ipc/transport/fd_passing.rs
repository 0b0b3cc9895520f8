//! File descriptors beside messages: SCM_RIGHTS over `SOCK_SEQPACKET` Unix sockets (one send is
//! one message with its FDs), through rustix's ancillary-message API; received FDs are owned.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

use crate::ipc::wire::MAX_FDS_PER_MESSAGE;
use crate::{Error, Result};

fn peer_gone_or_io(e: Errno) -> Error {
    match e {
        Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN => {
            Error::PeerGone(format!("connection closed ({e})"))
        }
        e => Error::Io(e.into()),
    }
}

/// Sends `frame` with `fds` as one message. Does not allocate.
pub fn send(sock: BorrowedFd<'_>, frame: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(Error::InvalidArgument {
            what: "fds",
            reason: format!(
                "{} FDs in one message, limit {MAX_FDS_PER_MESSAGE}",
                fds.len()
            ),
        });
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_MESSAGE))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Error::InvalidArgument {
            what: "fds",
            reason: "ancillary buffer too small".into(),
        });
    }
    let iov = [IoSlice::new(frame)];
    loop {
        match sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(n) if n == frame.len() => return Ok(()),
            Ok(n) => {
                return Err(Error::Protocol(format!(
                    "short send: {n} of {} bytes",
                    frame.len()
                )))
            }
            Err(Errno::INTR) => continue,
            Err(Errno::MSGSIZE) => {
                return Err(Error::Protocol(format!(
                    "message of {} bytes too large for the socket",
                    frame.len()
                )))
            }
            Err(e) => return Err(peer_gone_or_io(e)),
        }
    }
}

/// Receives one message into `buf`, appending its FDs (owned, close-on-exec) to `fds`.
/// `Ok(None)` when `nonblocking` and nothing is queued. A closed peer is [`Error::PeerGone`]; a
/// message or FD list that did not fit is [`Error::Protocol`] (its FDs are closed).
pub fn recv(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
) -> Result<Option<usize>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_MESSAGE))];
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(buf)];
        let r = recvmsg(sock, &mut iov, &mut control, flags);
        let msg = match r {
            Ok(m) => m,
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) if nonblocking => return Ok(None),
            Err(e) => return Err(peer_gone_or_io(e)),
        };
        // Take ownership of every FD first, so that each is closed on any error below.
        let start = fds.len();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        let received = fds.len() - start;
        if msg.flags.contains(ReturnFlags::TRUNC) || msg.flags.contains(ReturnFlags::CTRUNC) {
            fds.truncate(start);
            return Err(Error::Protocol(
                "message or its file descriptors exceeded the limits and were truncated".into(),
            ));
        }
        if received > MAX_FDS_PER_MESSAGE {
            fds.truncate(start);
            return Err(Error::Protocol(format!(
                "{received} FDs in one message, limit {MAX_FDS_PER_MESSAGE}"
            )));
        }
        if msg.bytes == 0 && received == 0 {
            return Err(Error::PeerGone("the peer closed the connection".into()));
        }
        return Ok(Some(msg.bytes));
    }
}

/// Checks that a received FD can be a memory handle: rejects directories, FIFOs, sockets and
/// symlinks, which no driver exports.
///
/// Deliberately permissive otherwise: opaque Vulkan memory FDs are regular files on some
/// drivers (memfd on lavapipe), anonymous inodes or character-device files on others (NVIDIA,
/// DMA-BUF heaps), and the kinds are not documented, so refusing any of them would break a real
/// driver. The driver's own import (`vkGetMemoryFdPropertiesKHR` / `vkAllocateMemory`) is the
/// real check; this one only stops a peer from passing something plainly wrong.
pub fn check_fd_is_memory(fd: BorrowedFd<'_>) -> Result<()> {
    use rustix::fs::FileType;
    let st = rustix::fs::fstat(fd).map_err(|e| Error::Io(e.into()))?;
    match FileType::from_raw_mode(st.st_mode) {
        t @ (FileType::Directory | FileType::Fifo | FileType::Socket | FileType::Symlink) => {
            Err(Error::Protocol(format!(
                "received a {t:?} where a memory handle was expected"
            )))
        }
        _ => Ok(()),
    }
}

/// Checks that a peer's `fd` is the same kind of file as `reference`, an FD this process's
/// driver exported for the same kind of object (e.g. our own timeline semaphore): the same file
/// type, and for device files the same device. Drivers do not document what their opaque FDs
/// are, but whatever a driver exports, a genuine peer's FD of that object looks the same; a
/// plainly different file (a memfd where NVIDIA exports a `/dev/nvidiactl` handle) is refused
/// before the driver sees it. Some drivers misbehave after importing garbage: NVIDIA's fails
/// every later allocation of the process once it was handed a memfd as a semaphore.
pub fn check_fd_like(fd: BorrowedFd<'_>, reference: BorrowedFd<'_>, what: &str) -> Result<()> {
    use rustix::fs::FileType;
    let io = |e: rustix::io::Errno| Error::Io(e.into());
    let (got, want) = (
        rustix::fs::fstat(fd).map_err(io)?,
        rustix::fs::fstat(reference).map_err(io)?,
    );
    let (got_type, want_type) = (
        FileType::from_raw_mode(got.st_mode),
        FileType::from_raw_mode(want.st_mode),
    );
    let device = matches!(want_type, FileType::CharacterDevice | FileType::BlockDevice);
    if got_type != want_type || (device && got.st_rdev != want.st_rdev) {
        return Err(Error::Protocol(format!(
            "received a {got_type:?} (device {:#x}) where {what} was expected; this driver's are \
             {want_type:?} (device {:#x})",
            got.st_rdev, want.st_rdev
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{memfd_create, MemfdFlags};
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    use rustix::pipe::PipeFlags;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap()
    }

    #[test]
    fn an_fd_unlike_the_drivers_own_is_refused() {
        let mem = memfd_create("geyser-test", MemfdFlags::CLOEXEC).unwrap();
        let other = memfd_create("geyser-test-2", MemfdFlags::CLOEXEC).unwrap();
        let (a, _b) = pair();
        assert!(check_fd_like(other.as_fd(), mem.as_fd(), "a semaphore").is_ok());
        let e = check_fd_like(a.as_fd(), mem.as_fd(), "a semaphore").unwrap_err();
        assert!(matches!(e, Error::Protocol(_)), "{e}");
        let null = std::fs::File::open("/dev/null").unwrap();
        let zero = std::fs::File::open("/dev/zero").unwrap();
        assert!(check_fd_like(null.as_fd(), null.as_fd(), "a semaphore").is_ok());
        let e = check_fd_like(zero.as_fd(), null.as_fd(), "a semaphore").unwrap_err();
        assert!(e.to_string().contains("device"), "{e}");
    }

    #[test]
    fn an_fd_arrives_and_reads_the_same_memory() {
        let (a, b) = pair();
        let mem = memfd_create("geyser-test", MemfdFlags::CLOEXEC).unwrap();
        let mut f = std::fs::File::from(mem);
        f.write_all(b"texels").unwrap();
        send(a.as_fd(), b"hello", &[f.as_fd()]).unwrap();
        let mut buf = [0u8; 64];
        let mut fds = Vec::new();
        let n = recv(b.as_fd(), &mut buf, &mut fds, false).unwrap().unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        check_fd_is_memory(fds[0].as_fd()).unwrap();
        let mut g = std::fs::File::from(fds.pop().unwrap());
        g.rewind().unwrap();
        let mut s = String::new();
        g.read_to_string(&mut s).unwrap();
        assert_eq!(s, "texels");
    }

    #[test]
    fn several_fds_and_nonblocking_and_closed_peer() {
        let (a, b) = pair();
        let mut buf = [0u8; 64];
        let mut fds = Vec::new();
        assert!(recv(b.as_fd(), &mut buf, &mut fds, true).unwrap().is_none());
        let mems: Vec<OwnedFd> = (0..3)
            .map(|_| memfd_create("m", MemfdFlags::CLOEXEC).unwrap())
            .collect();
        let borrowed: Vec<BorrowedFd<'_>> = mems.iter().map(|m| m.as_fd()).collect();
        send(a.as_fd(), b"x", &borrowed).unwrap();
        recv(b.as_fd(), &mut buf, &mut fds, false).unwrap();
        assert_eq!(fds.len(), 3);
        drop(a);
        assert!(matches!(
            recv(b.as_fd(), &mut buf, &mut fds, false),
            Err(Error::PeerGone(_))
        ));
        let too_many: Vec<BorrowedFd<'_>> =
            (0..MAX_FDS_PER_MESSAGE + 1).map(|_| borrowed[0]).collect();
        let (c, _d) = pair();
        assert!(matches!(
            send(c.as_fd(), b"x", &too_many),
            Err(Error::InvalidArgument { .. })
        ));
    }

    /// A pipe whose write end travels; every copy of it is closed once a read of the (nonblocking)
    /// read end reports end of file. Unlike counting `/proc/self/fd`, this is exact while other
    /// tests open and close FDs on other threads.
    fn tracer() -> (OwnedFd, OwnedFd) {
        rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).unwrap()
    }

    fn every_copy_closed(read_end: &OwnedFd) -> bool {
        matches!(rustix::io::read(read_end, &mut [0u8; 1]), Ok(0))
    }

    #[test]
    fn truncated_messages_are_errors_and_their_fds_are_closed() {
        let (a, b) = pair();
        let (r, w) = tracer();
        send(a.as_fd(), &[7u8; 100], &[w.as_fd()]).unwrap();
        drop(w);
        assert!(!every_copy_closed(&r), "the queued message holds a copy");
        let mut small = [0u8; 10];
        let mut fds = Vec::new();
        assert!(matches!(
            recv(b.as_fd(), &mut small, &mut fds, false),
            Err(Error::Protocol(_))
        ));
        assert!(fds.is_empty());
        assert!(every_copy_closed(&r), "the received copy was closed");
    }

    #[test]
    fn more_fds_than_the_limit_are_all_closed() {
        let (a, b) = pair();
        let (r, w) = tracer();
        let many: Vec<BorrowedFd<'_>> = (0..MAX_FDS_PER_MESSAGE + 1).map(|_| w.as_fd()).collect();
        // `send` refuses this, so build the message by hand, as a hostile peer would.
        let mut space =
            [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_MESSAGE + 1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&many)));
        sendmsg(&a, &[IoSlice::new(b"x")], &mut control, SendFlags::empty()).unwrap();
        drop(many);
        drop(w);
        let mut buf = [0u8; 64];
        let mut fds = Vec::new();
        assert!(matches!(
            recv(b.as_fd(), &mut buf, &mut fds, false),
            Err(Error::Protocol(_))
        ));
        assert!(fds.is_empty());
        assert!(every_copy_closed(&r));
    }

    #[test]
    fn fds_already_in_the_list_survive_a_failed_receive() {
        let (a, b) = pair();
        let keep = memfd_create("keep", MemfdFlags::CLOEXEC).unwrap();
        let mut fds = vec![keep];
        send(a.as_fd(), &[0u8; 100], &[]).unwrap();
        assert!(recv(b.as_fd(), &mut [0u8; 10], &mut fds, false).is_err());
        assert_eq!(fds.len(), 1);
        check_fd_is_memory(fds[0].as_fd()).unwrap();
    }

    #[test]
    fn directories_and_sockets_are_not_memory() {
        let dir = std::fs::File::open("/").unwrap();
        assert!(check_fd_is_memory(dir.as_fd()).is_err());
        let (a, _b) = pair();
        assert!(check_fd_is_memory(a.as_fd()).is_err());
        let (r, _w) = tracer();
        assert!(check_fd_is_memory(r.as_fd()).is_err());
        // Device files pass: DMA-BUF and some drivers' memory FDs are character devices.
        let null = std::fs::File::open("/dev/null").unwrap();
        check_fd_is_memory(null.as_fd()).unwrap();
    }
}
