//! What the producer knows, behind one lock: its consumers ([`Peer`]: phase, trust, frames
//! held, sync, host ring), the ring's state, connections being closed and reconnect back-offs,
//! and [`Peer::may_send`], the one rule that decides whether a consumer is sent a frame (at
//! present, at its greeting, after a lossy release). Each connection has its own lock, taken
//! after the state's when both are held, so the service thread receives and decodes without
//! the state lock.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::host_ring::HostRings;
use super::linear::LinearFrames;
use super::{ProducerOptions, ProducerStats};
use crate::common::{BorrowedOsHandle, ExportedTexture};
use crate::ipc::binary::ProducerLink;
use crate::ipc::peer::PeerCredentials;
use crate::ipc::transport::Connection;
use crate::ipc::wire::{FrameId, Hello, Message, SyncMode};
use crate::vulkan::{
    SharedSemaphore, SharedTimelineSemaphore, Submitter, TimelinePoint, VulkanTextureShareManager,
};
use crate::Result;

/// Where a consumer's handshake is.
pub(super) enum Phase {
    /// Connected; its Hello (and the requests that may come before it: host ring, linear
    /// frames, DMA-BUF import) is awaited until `deadline`.
    Handshake { deadline: Instant },
    /// Timeline and binary modes: pool sent, its release timeline (binary: its per-slot
    /// "released" semaphores) awaited until `deadline`.
    AwaitSync { deadline: Instant },
    /// Admitted: gets frames, sends releases.
    Active,
}

/// A frame a consumer was sent and has not released, and since when.
#[derive(Clone, Copy, Debug)]
pub(super) struct Held {
    pub id: FrameId,
    pub since: Instant,
    /// Already counted as a stall (held past `stall_hold` in lossless mode).
    pub stalled: bool,
}

/// A connection, locked on its own: sends (from `present` and the service thread) and the
/// service thread's receives take it. Lock order: the state, then a connection.
pub(super) type SharedConn = Arc<Mutex<Connection>>;

/// Locks a connection (a poisoned lock is still usable: a connection has no invariant a
/// panic mid-send could break beyond the stream itself, which the peer then rejects).
pub(super) fn lock_conn(conn: &SharedConn) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection, from accept to drop.
pub(super) struct Peer {
    pub id: u64,
    pub conn: SharedConn,
    pub creds: PeerCredentials,
    /// Admitted by `ProducerOptions::trusted`: may import the ring's memory and exchange
    /// semaphores. Untrusted consumers only ever get their own host ring.
    pub trusted: bool,
    pub phase: Phase,
    /// When it connected (for oldest-first eviction of pending handshakes).
    pub since: Instant,
    /// Holds that stalled a lossless ring (see `ProducerOptions::max_stalls`).
    pub stalls: u32,
    /// When the last stall was counted: holds that pass `stall_hold` within `stall_hold` of it
    /// belong to the same pause (a consumer warming up holds the whole ring at once) and count
    /// once.
    pub last_stall: Option<Instant>,
    pub name: String,
    pub held: Vec<Held>,
    pub last_sent: Option<u64>,
    pub delivered: u64,
    pub skipped: u64,
    pub sync: SyncMode,
    /// Timeline mode: the consumer's release timeline, and the highest value it announced.
    pub released: Option<(Arc<SharedTimelineSemaphore>, u64)>,
    /// Binary mode, during the handshake: our "ready" semaphores, sent to it.
    pub binary_ready: Vec<Arc<SharedSemaphore>>,
    /// Binary mode, once active: both sides' semaphores.
    pub binary: Option<ProducerLink>,
    /// It asked for a host ring (`HostRingRequest`) before its Hello.
    pub wants_host_ring: bool,
    /// It is served through a host ring (its own or the shared one), or a remote ring (then
    /// `remote_ring` too).
    pub host_ring: bool,
    /// It is served through a remote ring on its own GPU.
    pub remote_ring: bool,
    /// It asked for linear frames (`LinearRequest`) before its Hello.
    pub wants_linear: bool,
    /// It gets linear frames: a frame is sent to it only once copied into the linear ring.
    pub linear: bool,
    /// It imports DMA-BUFs (`DmaBufImport` before its Hello): LINEAR and these modifiers.
    pub dma_buf_import: Option<Vec<u64>>,
}

impl Peer {
    pub fn new(
        id: u64,
        conn: Connection,
        creds: PeerCredentials,
        trusted: bool,
        deadline: Instant,
    ) -> Self {
        Peer {
            id,
            conn: Arc::new(Mutex::new(conn)),
            creds,
            trusted,
            phase: Phase::Handshake { deadline },
            since: Instant::now(),
            stalls: 0,
            last_stall: None,
            name: String::new(),
            held: Vec::with_capacity(crate::ipc::wire::MAX_SLOTS),
            last_sent: None,
            delivered: 0,
            skipped: 0,
            sync: SyncMode::Host,
            released: None,
            binary_ready: Vec::new(),
            binary: None,
            wants_host_ring: false,
            host_ring: false,
            remote_ring: false,
            wants_linear: false,
            linear: false,
            dma_buf_import: None,
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Active)
    }

    /// Still in its first handshake step (no Hello yet).
    pub fn is_pending(&self) -> bool {
        matches!(self.phase, Phase::Handshake { .. })
    }

    /// Sends on its connection.
    pub fn send(&self, msg: &Message, fds: &[BorrowedOsHandle<'_>]) -> Result<()> {
        lock_conn(&self.conn).send(msg, fds)
    }

    /// Whether it holds a frame in `slot`.
    pub fn holds_slot(&self, slot: usize) -> bool {
        self.held.iter().any(|h| h.id.slot_index() == slot)
    }

    /// The one rule for sending `id` to this consumer, wherever a frame is offered: it is
    /// admitted, holds fewer than `cap` frames, has not had this frame or a newer one, the
    /// slot is not being rewritten (`writing`), and, if it reads through a host ring, its
    /// ring holds this frame (`rings` is `None` while a present is copying into them: then
    /// it waits for that present, which offers it the newer frame), and if it gets linear
    /// frames, the frame was copied into the linear ring (`in_linear`).
    pub fn may_send(
        &self,
        id: FrameId,
        cap: usize,
        writing: Option<usize>,
        rings: Option<&HostRings>,
        in_linear: bool,
    ) -> bool {
        self.is_active()
            && self.held.len() < cap
            && self.last_sent.is_none_or(|last| last < id.frame)
            && writing != Some(id.slot_index())
            && (!self.host_ring || rings.is_some_and(|r| r.holds(self.id, id)))
            && (!self.linear || in_linear)
    }
}

/// How long a refused or dropped consumer's connection is kept half-closed, so it reads why
/// before the socket goes (closing with its messages unread resets it, and the reason is lost).
const LINGER: Duration = Duration::from_secs(1);
/// Most such connections kept at once; the oldest is closed beyond.
const MAX_LINGERING: usize = 64;
/// Messages read from a lingering connection per check; more and it is closed.
const LINGER_READS: usize = 4;

/// A connection told why it is closed (`Reject` or `Bye`), its write side shut: kept until the
/// peer closes it or [`LINGER`] has passed.
pub(super) struct Lingering {
    conn: SharedConn,
    until: Instant,
}

/// The producer's mutable state (one lock: [`Shared::lock`]).
pub(super) struct State {
    pub peers: Vec<Peer>,
    /// The slot a [`super::WriteSlot`] is out for.
    pub writing: Option<usize>,
    /// The last frame presented.
    pub latest: Option<FrameId>,
    pub next_frame: u64,
    pub next_peer: u64,
    pub stats: ProducerStats,
    /// Per slot: release points the next write of the slot must wait for on the GPU.
    pub slot_waits: Vec<Vec<TimelinePoint>>,
    /// Emptied wait lists handed back by `present`, reused so no frame allocates.
    pub spare_waits: Vec<Vec<TimelinePoint>>,
    /// Connections told why they are closed, until their peer has read it.
    pub lingering: Vec<Lingering>,
    /// Processes dropped for stalling, and until when a reconnect of theirs is refused.
    pub backoff: Vec<Backoff>,
    /// Refusals not logged yet, and when the last log line was written: at most one line a
    /// second, so a flood of connections cannot flood the log.
    pub unlogged_refusals: (u64, Option<Instant>),
    /// Per slot: the frame whose linear copy its region holds.
    pub linear_frames: Vec<Option<u64>>,
}

/// A process that was dropped for stalling the ring: refused until `until`; a repeat offence
/// doubles `wait` (up to [`MAX_BACKOFF`]).
pub(super) struct Backoff {
    pub creds: PeerCredentials,
    pub until: Instant,
    pub wait: Duration,
}

/// Longest reconnect back-off.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Most back-off entries kept (the oldest is forgotten beyond).
const MAX_BACKOFFS: usize = 64;

impl State {
    /// Whether the linear ring holds frame `id`.
    pub fn in_linear(&self, id: FrameId) -> bool {
        self.linear_frames.get(id.slot_index()) == Some(&Some(id.frame))
    }

    pub fn peer_mut(&mut self, id: u64) -> Option<&mut Peer> {
        self.peers.iter_mut().find(|p| p.id == id)
    }

    pub fn active_count(&self) -> usize {
        self.peers.iter().filter(|p| p.is_active()).count()
    }

    /// Consumers past their Hello (active, or exchanging timelines): what `max_consumers`
    /// limits.
    pub fn admitted_count(&self) -> usize {
        self.peers.iter().filter(|p| !p.is_pending()).count()
    }

    /// Counts a refused connection (in the stats, and in at most one log line a second).
    pub fn refused(&mut self, why: &crate::Error) {
        self.stats.refused += 1;
        let (count, last) = &mut self.unlogged_refusals;
        *count += 1;
        let now = Instant::now();
        if last.is_none_or(|l| now - l >= Duration::from_secs(1)) {
            tracing::warn!("refused {count} connection(s) since the last report; latest: {why}");
            *count = 0;
            *last = Some(now);
        }
    }

    /// How long a reconnect of `creds` is still refused, if it is.
    pub fn backoff_left(&self, creds: &PeerCredentials, now: Instant) -> Option<Duration> {
        self.backoff
            .iter()
            .find(|b| b.creds == *creds && b.until > now)
            .map(|b| b.until - now)
    }

    /// Refuses reconnects of `creds` for a while: 1 s, doubling per repeat offence.
    pub fn back_off(&mut self, creds: PeerCredentials, now: Instant) -> Duration {
        let wait = match self.backoff.iter().position(|b| b.creds == creds) {
            Some(i) => {
                let old = self.backoff.remove(i);
                (old.wait * 2).min(MAX_BACKOFF)
            }
            None => Duration::from_secs(1),
        };
        if self.backoff.len() >= MAX_BACKOFFS {
            self.backoff.remove(0);
        }
        self.backoff.push(Backoff {
            creds,
            until: now + wait,
            wait,
        });
        wait
    }

    /// Shuts `conn`'s write side and keeps it until its peer has read what we sent.
    pub fn keep_lingering(&mut self, conn: SharedConn) {
        lock_conn(&conn).shutdown_write();
        if self.lingering.len() >= MAX_LINGERING {
            self.lingering.remove(0);
        }
        self.lingering.push(Lingering {
            conn,
            until: Instant::now() + LINGER,
        });
    }

    /// Reads and discards what lingering connections still send; closes those whose peer
    /// closed or whose time is up.
    pub fn linger(&mut self) {
        let now = Instant::now();
        self.lingering.retain_mut(|l| {
            if l.until <= now {
                return false;
            }
            let mut conn = lock_conn(&l.conn);
            // A peer that keeps talking is not reading what we said: a few messages a tick
            // are read (to see it close), one that sends more is closed at once.
            for _ in 0..LINGER_READS {
                match conn.try_recv() {
                    Ok(Some(_)) => continue,
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
            false
        });
    }
}

/// What the producer and its service thread share.
pub(super) struct Shared {
    pub state: Mutex<State>,
    pub changed: Condvar,
    pub stop: AtomicBool,
    pub options: ProducerOptions,
    pub max_consumers: usize,
    pub hello: Hello,
    /// Sync modes offered, best first; `Timeline` only with `ready`.
    pub sync_modes: Vec<SyncMode>,
    pub exports: Vec<ExportedTexture>,
    /// Timeline and binary modes: "frame `f` is written" is this timeline reaching `f + 1`
    /// (exported in timeline mode; local when only binary mode is offered).
    pub ready: Option<Arc<SharedTimelineSemaphore>>,
    /// Binary mode: submits the relays between the local timelines and consumers' binary
    /// semaphores (`ipc/binary.rs`). Made for the first binary-mode consumer
    /// ([`Shared::relay`]): its command buffers and fences took 18–20 ms on NVIDIA, which a
    /// producer that never serves such a consumer should not pay when it binds.
    pub relay: OnceLock<Submitter>,
    pub manager: Arc<VulkanTextureShareManager>,
    /// The host rings of consumers that cannot import the ring. Lock order: `state`, then this.
    pub host_rings: Mutex<HostRings>,
    /// The linear ring, once a consumer asked for linear frames. Lock order: `state`, then
    /// this.
    pub linear: LinearFrames,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The binary-mode relay submitter, made on first use (two relays per frame and binary
    /// consumer are in flight at most).
    pub fn relay(&self) -> Result<&Submitter> {
        if let Some(relay) = self.relay.get() {
            return Ok(relay);
        }
        let made = Submitter::new(&self.manager, 4 * crate::ipc::wire::MAX_SLOTS)?;
        Ok(self.relay.get_or_init(|| made))
    }

    /// Most frames one consumer may hold before it skips new ones.
    pub fn held_cap(&self) -> usize {
        if self.options.lossless {
            self.options.max_held_frames.unwrap_or(usize::MAX).max(1)
        } else {
            1
        }
    }
}
