//! The feed thread: owns the Geyser consumer and the GPU copier; fills the PipeWire buffers
//! the loop hands it with the newest frame and hands them back.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use geyser::ipc::clock::cpu_time_ns;
use geyser::ipc::{Consumer, ConsumerOptions};
use geyser::vulkan::{Buffer, VulkanTextureShareManager};
use geyser::{Error, Result};

use super::{PublishOptions, Source};
use crate::hostmem::{CopyCounts, HostCopier, Plane};
use crate::props::context_options;

/// How long one wait for a frame lasts before looking at `stop` and new buffers.
const POLL: Duration = Duration::from_millis(20);
/// Lossless: how long to wait for a buffer before asking the loop to run a graph cycle.
const HUNGRY: Duration = Duration::from_millis(1);

/// Connects to the producer at `endpoint`, retrying while none is there (up to the connect
/// timeout).
pub(super) fn connect(endpoint: &str, options: &PublishOptions) -> Result<Source> {
    let manager = Arc::new(VulkanTextureShareManager::create(&context_options(
        &options.device,
    ))?);
    let consumer_options = ConsumerOptions {
        sync: options.sync.mode(),
        lossless: options.lossless,
        name: format!("geyser-pipewire-{}", std::process::id()),
        ..Default::default()
    };
    let deadline = Instant::now() + options.connect_timeout;
    loop {
        match Consumer::connect_with(endpoint, manager.clone(), consumer_options.clone()) {
            Ok(consumer) => return Ok(Source { consumer, manager }),
            Err(Error::NotFound { .. } | Error::PeerGone(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => return Err(e),
        }
    }
}

/// One PipeWire buffer's memory: a memfd this process made, mapped, and (once the feed
/// thread first fills it) imported into Vulkan. Dropped when PipeWire removes the buffer and
/// the feed thread is done with it.
pub(crate) struct HostFrame {
    fd: OwnedFd,
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    import: OnceLock<Option<Buffer>>,
}

// SAFETY: the mapping is plain shared memory; the feed thread writes it only while it holds
// a fill order for it (the loop does not queue it meanwhile), PipeWire consumers read it only
// after it was queued.
unsafe impl Send for HostFrame {}
// SAFETY: as above; `import` is a OnceLock of a Sync type.
unsafe impl Sync for HostFrame {}

impl HostFrame {
    /// A memfd of `len` bytes (rounded up to pages), mapped read-write.
    pub fn new(len: usize) -> Result<HostFrame> {
        use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
        use rustix::mm::{mmap, MapFlags, ProtFlags};
        let page = rustix::param::page_size();
        let len = len.div_ceil(page) * page;
        let fd = memfd_create("geyser-pipewire", MemfdFlags::CLOEXEC)
            .map_err(|e| Error::Io(e.into()))?;
        ftruncate(&fd, len as u64).map_err(|e| Error::Io(e.into()))?;
        // SAFETY: a fresh shared mapping of our own memfd, `len` bytes (its size); unmapped in
        // Drop, after the Vulkan import that views it.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(|e| Error::Io(e.into()))?;
        let ptr = std::ptr::NonNull::new(ptr.cast())
            .ok_or_else(|| Error::Internal("mmap returned null".into()))?;
        Ok(HostFrame {
            fd,
            ptr,
            len,
            import: OnceLock::new(),
        })
    }

    /// The memfd PipeWire hands to consumers.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Mapped bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The mapping, for PipeWire's `spa_data.data`.
    pub fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for HostFrame {
    fn drop(&mut self) {
        // The Vulkan view goes first: the memory must outlive it.
        drop(self.import.take());
        // SAFETY: our own mapping of `len` bytes, no longer used by anyone (PipeWire removed
        // the buffer, the feed thread dropped its reference).
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            gst::warning!(gst::CAT_DEFAULT, "munmap: {e}");
        }
    }
}

/// An empty PipeWire buffer to fill: its key (the `pw_buffer` address) and memory.
pub(crate) struct Fill {
    pub key: usize,
    pub frame: Arc<HostFrame>,
    pub plane: Plane,
}

/// A buffer filled with frame `number`.
pub(crate) struct Filled {
    pub key: usize,
    pub number: u64,
}

/// What the feed thread tells the loop.
pub(crate) enum FeedMsg {
    Filled(Filled),
    /// No buffer to fill: buffers come back from consumers on a graph cycle, so run one.
    Hungry,
    /// The feed ended: the producer closed its stream or `stop` was set (`Ok`), or failed.
    Ended(Result<()>),
}

/// When the first and the last frame were filled, and the process's CPU time then.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub first: (Instant, u64),
    pub last: (Instant, u64),
    pub frames: u64,
}

/// The feed thread's state and its counters.
pub(crate) struct Feed {
    pub source: Source,
    pub lossless: bool,
    /// First and last frame filled: (time, process CPU ns), for the stats.
    pub window: Arc<std::sync::Mutex<Option<Window>>>,
    pub fills: mpsc::Receiver<Fill>,
    pub stop: Arc<AtomicBool>,
    pub counts: Arc<CopyCounts>,
    pub dropped: Arc<AtomicU64>,
}

impl Feed {
    /// Runs until the producer goes away or `stop`; every message goes through `send`.
    pub fn run(self, send: impl Fn(FeedMsg)) {
        let end = self.pump(&send);
        send(FeedMsg::Ended(end));
    }

    fn pump(self, send: &impl Fn(FeedMsg)) -> Result<()> {
        let Feed {
            source,
            lossless,
            window,
            fills,
            stop,
            counts,
            dropped,
        } = self;
        let Source {
            mut consumer,
            manager,
        } = source;
        let mut copier = HostCopier::new(manager, counts)?;
        let mut next: Option<Fill> = None;
        loop {
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            if next.is_none() {
                next = if lossless {
                    // Take no frame before a buffer is free for it.
                    match fills.recv_timeout(HUNGRY) {
                        Ok(fill) => Some(fill),
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            send(FeedMsg::Hungry);
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                    }
                } else {
                    fills.try_recv().ok()
                };
            }
            let mut frame = match consumer.next_frame(Some(POLL)) {
                Ok(frame) => frame,
                Err(Error::Timeout(_)) => continue,
                Err(Error::PeerGone(why)) if why.contains("closed the stream") => return Ok(()),
                Err(e) => return Err(e),
            };
            let Some(fill) = next.take() else {
                // Every PipeWire buffer is with a consumer: this frame goes nowhere.
                dropped.fetch_add(1, Ordering::Relaxed);
                send(FeedMsg::Hungry);
                continue;
            };
            let HostFrame {
                ptr, len, import, ..
            } = &*fill.frame;
            let import = import.get_or_init(|| {
                // SAFETY: the memfd mapping lives as long as `fill.frame` (the import is
                // dropped first, in `HostFrame::drop`); page-aligned, `len` is whole pages.
                unsafe { copier.import(ptr.as_ptr(), *len) }
            });
            // SAFETY: this thread holds the only fill order for this buffer: nobody else
            // touches its memory until it is handed back below.
            let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), *len) };
            let texture = frame.texture().clone();
            let wait = frame.wait_point();
            let release = frame.release_point();
            let number = frame.number();
            let mut frame = Some(frame);
            copier.download_to_host(
                &texture,
                wait.as_slice(),
                release.as_slice(),
                || match (&release, &mut frame) {
                    (Some(_), frame) => frame.take().map_or(Ok(()), |f| f.release()),
                    (None, _) => Ok(()),
                },
                import.as_ref(),
                bytes,
                &fill.plane,
            )?;
            drop(frame);
            let now = (Instant::now(), cpu_time_ns());
            let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
            *w = Some(match *w {
                None => Window {
                    first: now,
                    last: now,
                    frames: 1,
                },
                Some(w) => Window {
                    last: now,
                    frames: w.frames + 1,
                    ..w
                },
            });
            drop(w);
            send(FeedMsg::Filled(Filled {
                key: fill.key,
                number,
            }));
        }
    }
}
