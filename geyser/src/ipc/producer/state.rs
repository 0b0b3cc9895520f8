//! What the producer knows, behind one lock: its consumers ([`Peer`]: phase, frames held,
//! sync, host ring) and the ring's state, and [`Peer::may_send`], the one rule that decides
//! whether a consumer is sent a frame (at present, at its greeting, after a lossy release).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::host_ring::HostRings;
use super::{ProducerOptions, ProducerStats};
use crate::common::ExportedTexture;
use crate::ipc::peer::PeerCredentials;
use crate::ipc::transport::Connection;
use crate::ipc::wire::{FrameId, Hello, SyncMode};
use crate::vulkan::{SharedTimelineSemaphore, TimelinePoint, VulkanTextureShareManager};

/// Where a consumer's handshake is.
pub(super) enum Phase {
    /// Connected; its Hello (and a host-ring request before it) is awaited until `deadline`.
    Handshake { deadline: Instant },
    /// Timeline mode: pool sent, its release timeline is awaited until `deadline`.
    AwaitSync { deadline: Instant },
    /// Admitted: gets frames, sends releases.
    Active,
}

/// A frame a consumer was sent and has not released, and since when.
#[derive(Clone, Copy, Debug)]
pub(super) struct Held {
    pub id: FrameId,
    pub since: Instant,
}

/// One connection, from accept to drop.
pub(super) struct Peer {
    pub id: u64,
    pub conn: Connection,
    pub creds: PeerCredentials,
    pub phase: Phase,
    pub name: String,
    pub held: Vec<Held>,
    pub last_sent: Option<u64>,
    pub delivered: u64,
    pub skipped: u64,
    pub sync: SyncMode,
    /// Timeline mode: the consumer's release timeline, and the highest value it announced.
    pub released: Option<(Arc<SharedTimelineSemaphore>, u64)>,
    /// It asked for a host ring (`HostRingRequest`) before its Hello.
    pub wants_host_ring: bool,
    /// It is served through a host ring (its own or the shared one).
    pub host_ring: bool,
}

impl Peer {
    pub fn new(id: u64, conn: Connection, creds: PeerCredentials, deadline: Instant) -> Self {
        Peer {
            id,
            conn,
            creds,
            phase: Phase::Handshake { deadline },
            name: String::new(),
            held: Vec::with_capacity(crate::ipc::wire::MAX_SLOTS),
            last_sent: None,
            delivered: 0,
            skipped: 0,
            sync: SyncMode::Host,
            released: None,
            wants_host_ring: false,
            host_ring: false,
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Active)
    }

    /// Whether it holds a frame in `slot`.
    pub fn holds_slot(&self, slot: usize) -> bool {
        self.held.iter().any(|h| h.id.slot_index() == slot)
    }

    /// The one rule for sending `id` to this consumer, wherever a frame is offered: it is
    /// admitted, holds fewer than `cap` frames, has not had this frame or a newer one, the
    /// slot is not being rewritten (`writing`), and, if it reads through a host ring, its
    /// ring holds this frame (`rings` is `None` while a present is copying into them: then
    /// it waits for that present, which offers it the newer frame).
    pub fn may_send(
        &self,
        id: FrameId,
        cap: usize,
        writing: Option<usize>,
        rings: Option<&HostRings>,
    ) -> bool {
        self.is_active()
            && self.held.len() < cap
            && self.last_sent.is_none_or(|last| last < id.frame)
            && writing != Some(id.slot_index())
            && (!self.host_ring || rings.is_some_and(|r| r.holds(self.id, id)))
    }
}

/// How long a refused or dropped consumer's connection is kept half-closed, so it reads why
/// before the socket goes (closing with its messages unread resets it, and the reason is lost).
const LINGER: Duration = Duration::from_secs(1);
/// Most such connections kept at once; the oldest is closed beyond.
const MAX_LINGERING: usize = 64;

/// A connection told why it is closed (`Reject` or `Bye`), its write side shut: kept until the
/// peer closes it or [`LINGER`] has passed.
pub(super) struct Lingering {
    conn: Connection,
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
}

impl State {
    pub fn peer_mut(&mut self, id: u64) -> Option<&mut Peer> {
        self.peers.iter_mut().find(|p| p.id == id)
    }

    pub fn active_count(&self) -> usize {
        self.peers.iter().filter(|p| p.is_active()).count()
    }

    /// Shuts `conn`'s write side and keeps it until its peer has read what we sent.
    pub fn keep_lingering(&mut self, mut conn: Connection) {
        conn.shutdown_write();
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
            loop {
                match l.conn.try_recv() {
                    Ok(Some(_)) => continue,
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
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
    /// Timeline mode: "frame `f` is written" is this timeline reaching `f + 1`.
    pub ready: Option<Arc<SharedTimelineSemaphore>>,
    pub manager: Arc<VulkanTextureShareManager>,
    /// The host rings of consumers that cannot import the ring. Lock order: `state`, then this.
    pub host_rings: Mutex<HostRings>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
