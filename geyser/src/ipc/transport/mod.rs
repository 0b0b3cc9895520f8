//! The platform's transport under one set of names, for the producer and consumer: on Unix
//! the `SOCK_SEQPACKET` socket of `unix` (FDs beside messages by `fd_passing`), on Windows the
//! named pipe of `pipe` (handles duplicated into the peer, listed in a `handle_block`). Both
//! offer the same calls (bind/accept, connect, send with OS handles, recv with a timeout,
//! try_recv, peer checks), and [`Poller`] waits on a listener and its connections at once.
//! `shm` is the shared memory of host rings and the CPU-copy path. Everything here is
//! crate-private; [`super::testing`] re-exports what tests need raw.

use std::time::{Duration, Instant};

use crate::{Error, Result};

#[cfg(unix)]
pub(crate) mod fd_passing;
// Windows-only at run time; its byte layout is unit-tested on every platform.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) mod handle_block;
#[cfg(windows)]
pub(crate) mod pipe;
pub(crate) mod shm;
#[cfg(unix)]
pub(crate) mod unix;

#[cfg(windows)]
pub(crate) use pipe::{PipeConnection as Connection, PipeServer as Listener};
#[cfg(unix)]
pub(crate) use unix::{Connection, Listener};

/// A blocking receive built from a connection's non-blocking one: takes a message as soon as
/// `try_recv` has one, else waits with `wait` (given the time left; `None`: forever) and tries
/// again; [`Error::Timeout`] once `timeout` has passed (a timeout too long to represent waits
/// forever).
pub(crate) fn recv_within<C, T>(
    conn: &mut C,
    timeout: Option<Duration>,
    try_recv: fn(&mut C) -> Result<Option<T>>,
    wait: fn(&mut C, Option<Duration>) -> Result<()>,
) -> Result<T> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        if let Some(m) = try_recv(conn)? {
            return Ok(m);
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Err(Error::Timeout("no message from the peer".into()));
        }
        wait(conn, left)?;
    }
}

/// Most connections one [`Poller`] waits on. On Windows `WaitForMultipleObjects` takes at most
/// 64 handles, one of which is the listener's; on Unix `poll` has no such limit, and the same
/// cap keeps the platforms alike.
pub(crate) const MAX_POLLED_CONNECTIONS: usize = 63;

/// Waits until a listener or one of its connections may have something to take. Its buffers
/// are reused: a wake-up allocates nothing.
///
/// Use: [`Self::clear`], [`Self::add`] each connection (while the caller holds whatever lock
/// guards them), then [`Self::wait`] without the lock. Slot 0 of the result is the listener,
/// slot `i + 1` the `i`-th connection added. A ready slot may be a spurious wake; the caller
/// takes with non-blocking calls.
pub(crate) struct Poller {
    #[cfg(unix)]
    raw: Vec<std::os::fd::RawFd>,
    #[cfg(unix)]
    fds: Vec<rustix::event::PollFd<'static>>,
    #[cfg(windows)]
    events: Vec<std::sync::Arc<std::os::windows::io::OwnedHandle>>,
    #[cfg(windows)]
    raw: Vec<windows_sys::Win32::Foundation::HANDLE>,
    /// Something is known to be ready already: wait for nothing.
    #[cfg(windows)]
    now: bool,
    ready: Vec<bool>,
}

impl Poller {
    pub(crate) fn with_capacity(connections: usize) -> Self {
        let n = connections + 1;
        Poller {
            #[cfg(unix)]
            raw: Vec::with_capacity(n),
            #[cfg(unix)]
            fds: Vec::with_capacity(n),
            #[cfg(windows)]
            events: Vec::with_capacity(n),
            #[cfg(windows)]
            raw: Vec::with_capacity(n),
            #[cfg(windows)]
            now: false,
            ready: Vec::with_capacity(n),
        }
    }

    /// Forgets the connections of the last round.
    pub(crate) fn clear(&mut self) {
        self.raw.clear();
        #[cfg(windows)]
        {
            self.events.clear();
            self.now = false;
        }
    }

    /// Adds a connection (on Windows this posts its read, if none is, so that its event means
    /// "a message arrived"; a connection that cannot post one is reported ready, and its
    /// non-blocking receive then returns the error).
    #[cfg(unix)]
    pub(crate) fn add(&mut self, conn: &mut Connection) {
        use std::os::fd::{AsFd, AsRawFd};
        self.raw.push(conn.as_fd().as_raw_fd());
    }

    /// Adds a connection (on Windows this posts its read, if none is, so that its event means
    /// "a message arrived"; a connection that cannot post one is reported ready, and its
    /// non-blocking receive then returns the error).
    #[cfg(windows)]
    pub(crate) fn add(&mut self, conn: &mut Connection) {
        if conn.arm().is_err() {
            self.now = true;
        }
        self.events.push(conn.read_event());
    }

    /// Waits at most `timeout` for the listener or an added connection.
    #[cfg(unix)]
    pub(crate) fn wait(&mut self, listener: &mut Listener, timeout: Duration) -> &[bool] {
        use rustix::event::{poll, PollFd, PollFlags};
        use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
        self.fds.clear();
        let listener_fd = listener.as_fd().as_raw_fd();
        for fd in std::iter::once(&listener_fd).chain(self.raw.iter()) {
            // SAFETY: the listener is borrowed for this call; the connections' fds were open
            // when added and are only polled, never read or closed through these borrows, which
            // are dropped before this call returns. A concurrently closed one yields POLLNVAL
            // or a spurious event, both handled by the caller's non-blocking receive.
            let borrowed = unsafe { BorrowedFd::borrow_raw(*fd) };
            self.fds
                .push(PollFd::from_borrowed_fd(borrowed, PollFlags::IN));
        }
        let ts = rustix::time::Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        self.ready.clear();
        match poll(&mut self.fds, Some(&ts)) {
            Ok(_) => self
                .ready
                .extend(self.fds.iter().map(|f| !f.revents().is_empty())),
            Err(rustix::io::Errno::INTR) => self.ready.resize(self.fds.len(), false),
            Err(e) => {
                tracing::error!("producer poll failed: {e}");
                std::thread::sleep(timeout);
                self.ready.resize(self.fds.len(), false);
            }
        }
        self.fds.clear();
        &self.ready
    }

    /// Waits at most `timeout` for the listener or an added connection. `WaitForMultipleObjects`
    /// names only the first signaled object, so every slot is reported ready after any wake.
    #[cfg(windows)]
    pub(crate) fn wait(&mut self, listener: &mut Listener, timeout: Duration) -> &[bool] {
        use std::os::windows::io::AsRawHandle;
        use windows_sys::Win32::Foundation::{WAIT_FAILED, WAIT_TIMEOUT};
        use windows_sys::Win32::System::Threading::WaitForMultipleObjects;
        match listener.arm() {
            Ok(true) => self.now = true,
            Ok(false) => {}
            Err(e) => tracing::warn!("pipe listener: {e}"),
        }
        let slots = self.events.len() + 1;
        let listener_event = listener.event();
        self.raw.clear();
        self.raw.push(listener_event.as_raw_handle());
        self.raw
            .extend(self.events.iter().map(|e| e.as_raw_handle()));
        let ms = if self.now {
            0
        } else {
            u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1)
        };
        let n = self.raw.len().min(MAX_POLLED_CONNECTIONS + 1) as u32;
        // SAFETY: `raw` holds `n` event handles kept open by `self.events` and `listener_event`
        // for the whole call; a wait for any one of them.
        let woke = unsafe { WaitForMultipleObjects(n, self.raw.as_ptr(), 0, ms) };
        if woke == WAIT_FAILED {
            tracing::error!("producer wait failed: {}", std::io::Error::last_os_error());
            std::thread::sleep(timeout);
        }
        let any = self.now || (woke != WAIT_TIMEOUT && woke != WAIT_FAILED);
        self.ready.clear();
        self.ready.resize(slots, any);
        &self.ready
    }
}
