//! The producer's service thread: accepts connections into a bounded pool of pending
//! handshakes, routes each message a consumer sends to its handler (one function per message:
//! host-ring request, Hello and the sync setups in `handshake.rs`, release, Bye), enforces
//! deadlines and stall limits, and drops consumers that fail, telling them why. Each round takes a bounded number of messages
//! from each connection, received and decoded without the state lock, so no peer can hold up
//! `present`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::handshake::{on_binary_sync_setup, on_hello, on_sync_setup};
use super::host_ring::HostRings;
use super::state::{lock_conn, Held, Peer, Phase, Shared, SharedConn, State};
use crate::common::{OwnedOsHandle, RejectReason};
use crate::ipc::clock::monotonic_ns;
use crate::ipc::transport::{Connection, Listener, Poller};
use crate::ipc::wire::{bounded_reason, FrameId, Message, SyncMode};
use crate::vulkan::TimelinePoint;
use crate::{Error, Result};

/// Most messages taken from one connection per round. A consumer sends one release per frame
/// it was sent; more than this per round is a flood, whose rest waits for the next round
/// (after `present` had its turn at the state lock).
const MESSAGES_PER_ROUND: usize = 16;
/// Most connections accepted per round: the rest wait in the listen backlog (a flood of
/// connects is throttled by it) while the connections already accepted are served, so a
/// consumer's Hello is read before a burst of new connections could evict it.
const ACCEPTS_PER_ROUND: usize = 8;

/// What a frame offer depends on besides the consumer: the latest frame, the slot being
/// written, the hold cap and the mode.
#[derive(Clone, Copy)]
pub(super) struct Offer {
    latest: Option<FrameId>,
    writing: Option<usize>,
    cap: usize,
    lossless: bool,
    /// The linear ring holds the latest frame.
    latest_linear: bool,
}

impl Offer {
    pub(super) fn of(shared: &Shared, state: &State) -> Self {
        Offer {
            latest: state.latest,
            writing: state.writing,
            cap: shared.held_cap(),
            lossless: shared.options.lossless,
            latest_linear: state.latest.is_some_and(|l| state.in_linear(l)),
        }
    }

    /// A lossy consumer that is free (new, or just released its frame) gets the latest frame
    /// when [`Peer::may_send`] allows it.
    pub(super) fn latest_to(&self, shared: &Shared, peer: &mut Peer) -> Result<()> {
        let Some(latest) = self.latest.filter(|_| !self.lossless) else {
            return Ok(());
        };
        let rings = peer
            .host_ring
            .then(|| HostRings::try_lock(&shared.host_rings))
            .flatten();
        if peer.may_send(
            latest,
            self.cap,
            self.writing,
            rings.as_deref(),
            self.latest_linear,
        ) {
            drop(rings);
            send_frame(shared, peer, latest, monotonic_ns())?;
        }
        Ok(())
    }
}

/// The service thread: accepts consumers, runs handshakes, takes releases, until `stop`.
pub(super) fn service(shared: &Shared, mut listener: Listener) {
    const TICK: Duration = Duration::from_millis(50);
    // Buffers reused across wake-ups: the loop runs for every release, so it must not allocate.
    let capacity = shared.max_consumers + shared.options.max_pending_handshakes + 2;
    let mut ids: Vec<u64> = Vec::with_capacity(capacity);
    let mut poller = Poller::with_capacity(capacity);
    let mut batch: Batch = Vec::with_capacity(MESSAGES_PER_ROUND);
    let mut last_check = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        // Snapshot the connections to wait on; a consumer dropped meanwhile only causes a
        // spurious wake.
        ids.clear();
        poller.clear();
        for p in shared.lock().peers.iter() {
            ids.push(p.id);
            poller.add(&mut lock_conn(&p.conn));
        }
        let ready = poller.wait(&mut listener, TICK);
        let mut changed = false;
        // Connections first: a consumer that left is reaped before new ones are counted.
        for (i, id) in ids.iter().enumerate() {
            if ready[i + 1] {
                changed |= serve_peer(shared, *id, &mut batch);
            }
        }
        if ready[0] {
            changed |= accept_some(shared, &mut listener, &mut batch);
        }
        if last_check.elapsed() >= TICK {
            last_check = Instant::now();
            changed |= enforce_deadlines(shared);
        }
        if changed {
            // Free the host rings of consumers that left now, not at the next present (a
            // producer may pause); skipped while a present is copying into the rings.
            let state = shared.lock();
            if let Some(mut rings) = HostRings::try_lock(&shared.host_rings) {
                rings.prune(&state.peers);
            }
            drop(state);
            shared.changed.notify_all();
        }
    }
}

/// Drops consumers past their handshake deadline (telling them), holding a frame longer than
/// `max_hold`, or stalling a lossless ring too often (rejecting them for
/// [`RejectReason::Limit`], and refusing their reconnects for a while); closes lingering
/// connections whose time is up.
fn enforce_deadlines(shared: &Shared) -> bool {
    let mut state = shared.lock();
    state.linger();
    let now = Instant::now();
    let options = &shared.options;
    // Empty (no allocation) on almost every tick.
    let mut late: Vec<(u64, Error)> = Vec::new();
    let mut offenders = Vec::new();
    for peer in state.peers.iter_mut() {
        let why = match peer.phase {
            Phase::Handshake { deadline } | Phase::AwaitSync { deadline } if deadline <= now => {
                let e = Error::Timeout("no handshake within the handshake timeout".into());
                tell_why(shared, peer, &e);
                e
            }
            Phase::Active => {
                if peer.held.iter().any(|h| now - h.since > options.max_hold) {
                    let detail = format!(
                        "held a frame longer than the producer's max_hold ({:?}); release frames sooner",
                        options.max_hold
                    );
                    reject(&peer.conn, RejectReason::Limit, detail)
                } else if options.lossless
                    && count_stalls(peer, options.stall_hold, options.max_stalls, now)
                {
                    offenders.push(peer.creds);
                    let detail = format!(
                        "stalled the lossless stream {} times (held frames longer than {:?}); \
                         reconnect later, or consume lossy",
                        peer.stalls, options.stall_hold
                    );
                    reject(&peer.conn, RejectReason::Limit, detail)
                } else {
                    continue;
                }
            }
            _ => continue,
        };
        late.push((peer.id, why));
    }
    let changed = !late.is_empty();
    for (id, why) in late {
        drop_peer(&mut state, id, &why);
    }
    for creds in offenders {
        let wait = state.back_off(creds, now);
        tracing::warn!(pid = creds.pid, "refusing its reconnects for {wait:?}");
    }
    changed
}

/// Counts this consumer's holds past `stall_hold` not counted yet; whether it has now stalled
/// the ring `max_stalls` times (0: never). Holds that pass the bound within `stall_hold` of the
/// last counted stall are one pause and count once: a consumer that pauses once (loading CUDA
/// or PyTorch on its first frame) holds every slot at the same time.
fn count_stalls(peer: &mut Peer, stall_hold: Duration, max_stalls: u32, now: Instant) -> bool {
    for h in peer.held.iter_mut().filter(|h| !h.stalled) {
        if now - h.since > stall_hold {
            h.stalled = true;
            if peer.last_stall.is_none_or(|t| now - t >= stall_hold) {
                peer.stalls += 1;
                peer.last_stall = Some(now);
            }
        }
    }
    max_stalls > 0 && peer.stalls >= max_stalls
}

fn accept_some(shared: &Shared, listener: &mut Listener, batch: &mut Batch) -> bool {
    let mut changed = false;
    for _ in 0..ACCEPTS_PER_ROUND {
        let mut conn = match listener.accept(true) {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                break;
            }
        };
        conn.set_max_message_bytes(shared.options.max_message_bytes);
        changed |= admit(shared, conn, batch);
    }
    changed
}

/// Takes a new connection into the pool of pending handshakes, or refuses it: another user's
/// by policy, a process in back-off. A full pool (for its user, or in all) first reads what
/// its pending connections sent (a consumer's Hello completes its handshake step), then makes
/// room by dropping the oldest still pending, so connections that never speak cannot lock
/// consumers out.
fn admit(shared: &Shared, conn: Connection, batch: &mut Batch) -> bool {
    let options = &shared.options;
    let creds = match conn.check_peer(&options.peer_policy) {
        Ok(c) => c,
        Err(e) => {
            let conn = Arc::new(std::sync::Mutex::new(conn));
            let why = reject(&conn, RejectReason::Policy, e.to_string());
            let mut state = shared.lock();
            state.refused(&why);
            state.keep_lingering(conn);
            return false;
        }
    };
    // Trusted peers may import the ring's memory; anyone else admitted gets its own host ring.
    let trusted = conn.check_peer(&options.trusted).is_ok();
    if pool_full(&shared.lock(), options, &creds) {
        let pending: Vec<u64> = shared
            .lock()
            .peers
            .iter()
            .filter(|p| p.is_pending())
            .map(|p| p.id)
            .collect();
        for id in pending {
            serve_peer(shared, id, batch);
        }
    }
    let mut state = shared.lock();
    let now = Instant::now();
    if let Some(left) = state.backoff_left(&creds, now) {
        let conn = Arc::new(std::sync::Mutex::new(conn));
        let detail =
            format!("dropped earlier for stalling the stream; reconnect in {left:.1?} or later");
        let why = reject(&conn, RejectReason::Limit, detail);
        state.refused(&why);
        state.keep_lingering(conn);
        return false;
    }
    let same_user = |p: &&Peer| p.is_pending() && same_user(&p.creds, &creds);
    let evict = if state.peers.iter().filter(same_user).count() >= options.max_pending_per_user {
        oldest(state.peers.iter().filter(same_user))
    } else if pending_count(&state) >= options.max_pending_handshakes {
        oldest(state.peers.iter().filter(|p| p.is_pending()))
    } else {
        None
    };
    if let Some(old) = evict {
        let why = match state.peers.iter().find(|p| p.id == old) {
            Some(p) => reject(
                &p.conn,
                RejectReason::Busy,
                "too many handshakes pending; finish yours promptly".into(),
            ),
            None => Error::Internal("evicted handshake vanished".into()),
        };
        state.refused(&why);
        drop_peer(&mut state, old, &why);
    }
    let id = state.next_peer;
    state.next_peer += 1;
    let deadline = now + options.handshake_timeout;
    state
        .peers
        .push(Peer::new(id, conn, creds, trusted, deadline));
    true
}

/// Received messages of one round, reused across rounds.
type Batch = Vec<Result<(Message, Vec<OwnedOsHandle>)>>;

fn pending_count(state: &State) -> usize {
    state.peers.iter().filter(|p| p.is_pending()).count()
}

/// Whether a connection of `creds` would have to evict a pending handshake.
fn pool_full(
    state: &State,
    options: &super::ProducerOptions,
    creds: &crate::ipc::peer::PeerCredentials,
) -> bool {
    pending_count(state) >= options.max_pending_handshakes
        || state
            .peers
            .iter()
            .filter(|p| p.is_pending() && same_user(&p.creds, creds))
            .count()
            >= options.max_pending_per_user
}

/// The id of the peer that connected first.
fn oldest<'a>(peers: impl Iterator<Item = &'a Peer>) -> Option<u64> {
    peers.min_by_key(|p| p.since).map(|p| p.id)
}

/// Whether two connections come from the same user (on Windows every pipe client is ours).
fn same_user(a: &crate::ipc::peer::PeerCredentials, b: &crate::ipc::peer::PeerCredentials) -> bool {
    #[cfg(unix)]
    return a.uid == b.uid;
    #[cfg(windows)]
    {
        let _ = (a, b);
        true
    }
}

/// Takes up to [`MESSAGES_PER_ROUND`] messages a peer has sent (received and decoded under
/// its connection's lock only), then handles them under the state lock; drops the peer on any
/// error. Returns whether state changed.
fn serve_peer(shared: &Shared, id: u64, batch: &mut Batch) -> bool {
    let Some(conn) = shared.lock().peer_mut(id).map(|p| p.conn.clone()) else {
        return false;
    };
    batch.clear();
    {
        let mut conn = lock_conn(&conn);
        while batch.len() < MESSAGES_PER_ROUND {
            match conn.try_recv() {
                Ok(None) => break,
                Ok(Some(m)) => batch.push(Ok(m)),
                Err(e) => {
                    batch.push(Err(e));
                    break;
                }
            }
        }
    }
    if batch.is_empty() {
        return false;
    }
    let mut state = shared.lock();
    for received in batch.drain(..) {
        // The connection already checked that the FD count matches the message.
        let result = received.and_then(|(msg, fds)| dispatch(shared, &mut state, id, msg, fds));
        if let Err(e) = result {
            if let Some(peer) = state.peer_mut(id) {
                tell_why(shared, peer, &e);
            }
            if matches!(e, Error::Rejected { .. }) {
                state.refused(&e);
            }
            drop_peer(&mut state, id, &e);
            break;
        }
    }
    true
}

/// Routes one message to its handler, by the consumer's phase.
fn dispatch(
    shared: &Shared,
    state: &mut State,
    id: u64,
    msg: Message,
    fds: Vec<OwnedOsHandle>,
) -> Result<()> {
    let offer = Offer::of(shared, state);
    let admitted = state.admitted_count();
    let Some(peer) = state.peer_mut(id) else {
        return Ok(());
    };
    match (&peer.phase, msg) {
        (Phase::Handshake { .. }, Message::HostRingRequest) if !peer.wants_host_ring => {
            peer.wants_host_ring = true;
            Ok(())
        }
        (Phase::Handshake { .. }, Message::LinearRequest) if !peer.wants_linear => {
            peer.wants_linear = true;
            Ok(())
        }
        (Phase::Handshake { .. }, Message::DmaBufImport { modifiers })
            if peer.dma_buf_import.is_none() =>
        {
            peer.dma_buf_import = Some(modifiers);
            Ok(())
        }
        (Phase::Handshake { .. }, Message::Hello(hello)) => {
            if admitted >= shared.max_consumers {
                let detail = format!(
                    "producer serves at most {} consumers (its ProducerOptions::slots / max_consumers)",
                    shared.max_consumers
                );
                return Err(reject(&peer.conn, RejectReason::Busy, detail));
            }
            on_hello(shared, peer, hello, &offer)?;
            if peer.is_active() {
                state.stats.connected += 1;
            }
            Ok(())
        }
        (
            Phase::AwaitSync { .. },
            Message::SyncSetup {
                sync: SyncMode::Timeline,
            },
        ) if peer.sync == SyncMode::Timeline => {
            on_sync_setup(shared, peer, fds, &offer)?;
            state.stats.connected += 1;
            Ok(())
        }
        (Phase::AwaitSync { .. }, Message::BinarySyncSetup { .. })
            if peer.sync == SyncMode::BinarySemaphore =>
        {
            on_binary_sync_setup(shared, peer, fds, &offer)?;
            state.stats.connected += 1;
            Ok(())
        }
        (Phase::Active, Message::FrameReleased { id: frame, value }) => {
            if let Some(wait) = on_frame_released(shared, peer, frame, value, &offer)? {
                let waits = &mut state.slot_waits[frame.slot_index()];
                waits.retain(|w| !Arc::ptr_eq(&w.semaphore, &wait.semaphore));
                waits.push(wait);
            }
            Ok(())
        }
        (_, Message::Bye { reason }) => {
            Err(Error::PeerGone(format!("consumer said bye: {reason}")))
        }
        (Phase::Handshake { .. }, other) => Err(Error::Protocol(format!(
            "expected Hello (after at most one HostRingRequest, LinearRequest and DmaBufImport), got {}",
            other.kind()
        ))),
        (Phase::AwaitSync { .. }, other) => Err(Error::Protocol(format!(
            "expected the {:?} mode's sync setup, got {}",
            peer.sync,
            other.kind()
        ))),
        (Phase::Active, other) => Err(Error::Protocol(format!(
            "unexpected {} from a consumer",
            other.kind()
        ))),
    }
}

/// A consumer is done with `frame`: it no longer holds it, and in timeline and binary modes
/// the slot's next write waits for what it announced (returned). A lossy consumer that is now free
/// gets the latest frame if it missed it.
fn on_frame_released(
    shared: &Shared,
    peer: &mut Peer,
    frame: FrameId,
    value: u64,
    offer: &Offer,
) -> Result<Option<TimelinePoint>> {
    let slots = shared.exports.len();
    if frame.slot_index() >= slots {
        return Err(Error::Protocol(format!(
            "release of {frame}, ring has {slots} slots"
        )));
    }
    let held = peer
        .held
        .iter()
        .position(|h| h.id == frame)
        .ok_or_else(|| Error::Protocol(format!("release of {frame}, which it does not hold")))?;
    peer.held.swap_remove(held);
    let mut wait = None;
    if let Some((semaphore, announced)) = &mut peer.released {
        if value < *announced {
            return Err(Error::Protocol(format!(
                "release value went backwards: {value} after {announced}"
            )));
        }
        *announced = value;
        if value > 0 {
            wait = Some(TimelinePoint {
                semaphore: semaphore.clone(),
                value,
            });
        }
    }
    if let Some(link) = peer.binary.as_mut() {
        // Its signal of released[slot] was submitted before this message (ipc/binary.rs).
        wait = Some(link.after_release(shared.relay()?, frame)?);
    }
    offer.latest_to(shared, peer)?;
    Ok(wait)
}

/// Sends `Reject` (its detail cut to what the wire carries) and returns the error the caller
/// drops the connection with.
pub(super) fn reject(conn: &SharedConn, reason: RejectReason, detail: String) -> Error {
    let detail = bounded_reason(detail);
    // Logged by the caller's drop (one line per consumer, at warn only for admitted ones, so
    // a flood of connections cannot flood the log).
    let _ = lock_conn(conn).send(
        &Message::Reject {
            reason,
            detail: detail.clone(),
        },
        &[],
    );
    Error::Rejected { reason, detail }
}

/// Tells a consumer that is about to be dropped why, unless it left or already knows: a
/// protocol error or timeout gets `Bye`; a Hello of another version gets our Hello, whose
/// version every version can read.
fn tell_why(shared: &Shared, peer: &mut Peer, e: &Error) {
    let msg = match e {
        Error::PeerGone(_) | Error::Rejected { .. } => return,
        Error::VersionMismatch { .. } => Message::Hello(shared.hello.clone()),
        e => Message::Bye {
            reason: bounded_reason(e.to_string()),
        },
    };
    let _ = peer.send(&msg, &[]);
}

/// Announces `id` to a consumer and records that it holds it. In binary mode the slot's
/// "ready" semaphore is signaled (once the write is done) before the message goes.
pub(super) fn send_frame(
    shared: &Shared,
    peer: &mut Peer,
    id: FrameId,
    present_ns: u64,
) -> Result<()> {
    if let Some(link) = &peer.binary {
        let Some(ready) = &shared.ready else {
            return Err(Error::Internal(
                "a binary-mode consumer without the producer's ready timeline".into(),
            ));
        };
        let relay = shared.relay()?;
        let written = TimelinePoint {
            semaphore: ready.clone(),
            value: id.frame + 1,
        };
        link.before_ready(relay, written, id)?;
    }
    peer.send(
        &Message::FrameReady {
            id,
            present_ns,
            sent_ns: monotonic_ns(),
        },
        &[],
    )?;
    peer.held.push(Held {
        id,
        since: Instant::now(),
        stalled: false,
    });
    peer.last_sent = Some(id.frame);
    peer.delivered += 1;
    Ok(())
}

/// Removes consumer `id`: logs why, unblocks what our GPU may wait for on its behalf, and
/// keeps its connection lingering if it was told why (so it can read the reason).
pub(super) fn drop_peer(state: &mut State, id: u64, why: &Error) {
    let Some(pos) = state.peers.iter().position(|p| p.id == id) else {
        return;
    };
    let peer = state.peers.swap_remove(pos);
    match why {
        Error::PeerGone(_) => {
            tracing::info!(consumer = peer.id, pid = peer.creds.pid, "consumer left")
        }
        e if peer.is_pending() => tracing::debug!(
            consumer = peer.id,
            pid = peer.creds.pid,
            "dropping a connection before its Hello: {e}"
        ),
        e => tracing::warn!(
            consumer = peer.id,
            pid = peer.creds.pid,
            "dropping consumer: {e}"
        ),
    }
    if peer.is_active() {
        state.stats.dropped += 1;
    }
    // Our GPU may wait for release values the dead consumer will never signal: signal them
    // from here so the producer's queue never hangs on a dead peer.
    if let Some((semaphore, announced)) = &peer.released {
        if semaphore.value().is_ok_and(|v| v < *announced) {
            if let Err(e) = semaphore.signal(*announced) {
                tracing::warn!("unblocking a dead consumer's release timeline: {e}");
            }
        }
    }
    if !matches!(why, Error::PeerGone(_)) {
        state.keep_lingering(peer.conn);
    }
}
