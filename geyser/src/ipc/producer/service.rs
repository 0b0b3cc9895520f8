//! The producer's service thread: accepts connections, routes each message a consumer sends to
//! its handler (one function per message: host-ring request, Hello, SyncSetup, release, Bye),
//! enforces deadlines, and drops consumers that fail, telling them why.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::host_ring::{setup_host_ring, HostRings};
use super::state::{Held, Peer, Phase, Shared, State};
use crate::common::{borrow_os_handle, BorrowedOsHandle, OwnedOsHandle, RejectReason};
use crate::ipc::clock::monotonic_ns;
use crate::ipc::transport::{Connection, Listener, Poller};
use crate::ipc::wire::negotiate::negotiate_sync;
use crate::ipc::wire::{bounded_reason, FrameId, Hello, Message, Role, SyncMode};
use crate::vulkan::{SharedTimelineSemaphore, TimelinePoint};
use crate::{Error, Result};

/// What a frame offer depends on besides the consumer: the latest frame, the slot being
/// written, the hold cap and the mode.
#[derive(Clone, Copy)]
struct Offer {
    latest: Option<FrameId>,
    writing: Option<usize>,
    cap: usize,
    lossless: bool,
}

impl Offer {
    fn of(shared: &Shared, state: &State) -> Self {
        Offer {
            latest: state.latest,
            writing: state.writing,
            cap: shared.held_cap(),
            lossless: shared.options.lossless,
        }
    }

    /// A lossy consumer that is free (new, or just released its frame) gets the latest frame
    /// when [`Peer::may_send`] allows it.
    fn latest_to(&self, shared: &Shared, peer: &mut Peer) -> Result<()> {
        let Some(latest) = self.latest.filter(|_| !self.lossless) else {
            return Ok(());
        };
        let rings = peer
            .host_ring
            .then(|| HostRings::try_lock(&shared.host_rings))
            .flatten();
        if peer.may_send(latest, self.cap, self.writing, rings.as_deref()) {
            drop(rings);
            send_frame(peer, latest, monotonic_ns())?;
        }
        Ok(())
    }
}

/// The service thread: accepts consumers, runs handshakes, takes releases, until `stop`.
pub(super) fn service(shared: &Shared, mut listener: Listener) {
    const TICK: Duration = Duration::from_millis(50);
    // Buffers reused across wake-ups: the loop runs for every release, so it must not allocate.
    let capacity = shared.max_consumers + 2;
    let mut ids: Vec<u64> = Vec::with_capacity(capacity);
    let mut poller = Poller::with_capacity(capacity);
    while !shared.stop.load(Ordering::SeqCst) {
        // Snapshot the connections to wait on; a consumer dropped meanwhile only causes a
        // spurious wake.
        ids.clear();
        poller.clear();
        for p in shared.lock().peers.iter_mut() {
            ids.push(p.id);
            poller.add(&mut p.conn);
        }
        let ready = poller.wait(&mut listener, TICK);
        let mut changed = false;
        if ready[0] {
            changed |= accept_all(shared, &mut listener);
        }
        for (i, id) in ids.iter().enumerate() {
            if ready[i + 1] {
                changed |= serve_peer(shared, *id);
            }
        }
        changed |= enforce_deadlines(shared);
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

/// Drops consumers past their handshake deadline (telling them) or holding a frame longer than
/// `max_hold` (rejecting them for [`RejectReason::Limit`]); closes lingering connections whose
/// time is up.
fn enforce_deadlines(shared: &Shared) -> bool {
    let mut state = shared.lock();
    state.linger();
    let now = Instant::now();
    let max_hold = shared.options.max_hold;
    // Empty (no allocation) on almost every tick.
    let mut late: Vec<(u64, Error)> = Vec::new();
    for peer in state.peers.iter_mut() {
        let why = match peer.phase {
            Phase::Handshake { deadline } | Phase::AwaitSync { deadline } if deadline <= now => {
                let e = Error::Timeout("no handshake within the handshake timeout".into());
                tell_why(shared, peer, &e);
                e
            }
            Phase::Active
                if peer
                    .held
                    .iter()
                    .any(|h| now.duration_since(h.since) > max_hold) =>
            {
                let detail = format!(
                    "held a frame longer than the producer's max_hold ({max_hold:?}); release frames sooner"
                );
                reject(&mut peer.conn, RejectReason::Limit, detail)
            }
            _ => continue,
        };
        late.push((peer.id, why));
    }
    let changed = !late.is_empty();
    for (id, why) in late {
        drop_peer(&mut state, id, &why);
    }
    changed
}

fn accept_all(shared: &Shared, listener: &mut Listener) -> bool {
    let mut changed = false;
    loop {
        let mut conn = match listener.accept(true) {
            Ok(Some(c)) => c,
            Ok(None) => return changed,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                return changed;
            }
        };
        conn.set_max_message_bytes(shared.options.max_message_bytes);
        let creds = match conn.check_peer(&shared.options.peer_policy) {
            Ok(c) => c,
            Err(e) => {
                reject(&mut conn, RejectReason::Policy, e.to_string());
                let mut state = shared.lock();
                state.stats.refused += 1;
                state.keep_lingering(conn);
                continue;
            }
        };
        let mut state = shared.lock();
        if state.peers.len() >= shared.max_consumers {
            let detail = format!(
                "producer serves at most {} consumers (its ProducerOptions::slots / max_consumers)",
                shared.max_consumers
            );
            reject(&mut conn, RejectReason::Busy, detail);
            state.stats.refused += 1;
            state.keep_lingering(conn);
            continue;
        }
        let id = state.next_peer;
        state.next_peer += 1;
        let deadline = Instant::now() + shared.options.handshake_timeout;
        state.peers.push(Peer::new(id, conn, creds, deadline));
        changed = true;
    }
}

/// Reads everything a peer has sent; drops it on any error. Returns whether state changed.
fn serve_peer(shared: &Shared, id: u64) -> bool {
    let mut state = shared.lock();
    let mut changed = false;
    loop {
        let Some(peer) = state.peer_mut(id) else {
            return changed;
        };
        let result = match peer.conn.try_recv() {
            Ok(None) => return changed,
            Ok(Some((msg, fds))) => {
                changed = true;
                // The connection already checked that the FD count matches the message.
                dispatch(shared, &mut state, id, msg, fds)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            if let Some(peer) = state.peer_mut(id) {
                tell_why(shared, peer, &e);
            }
            if matches!(e, Error::Rejected { .. }) {
                state.stats.refused += 1;
            }
            drop_peer(&mut state, id, &e);
            return true;
        }
    }
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
    let Some(peer) = state.peer_mut(id) else {
        return Ok(());
    };
    match (&peer.phase, msg) {
        (Phase::Handshake { .. }, Message::HostRingRequest) => {
            peer.wants_host_ring = true;
            Ok(())
        }
        (Phase::Handshake { .. }, Message::Hello(hello)) => {
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
        ) => {
            on_sync_setup(shared, peer, fds, &offer)?;
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
            "expected Hello, got {}",
            other.kind()
        ))),
        (Phase::AwaitSync { .. }, other) => Err(Error::Protocol(format!(
            "expected SyncSetup, got {}",
            other.kind()
        ))),
        (Phase::Active, other) => Err(Error::Protocol(format!(
            "unexpected {} from a consumer",
            other.kind()
        ))),
    }
}

/// A consumer's Hello: admits it through a host ring (another device, or it asked), or sends
/// the pool and, in timeline mode, our timeline (it becomes active once its own arrives).
fn on_hello(shared: &Shared, peer: &mut Peer, hello: Hello, offer: &Offer) -> Result<()> {
    if hello.role != Role::Consumer {
        return Err(Error::Protocol("a producer connected to a producer".into()));
    }
    let ours = &shared.hello;
    let other_device =
        hello.device_uuid != ours.device_uuid || hello.driver_uuid != ours.driver_uuid;
    if other_device || peer.wants_host_ring {
        let why = if other_device {
            "consumer runs on another GPU or driver"
        } else {
            "consumer asked for a host ring"
        };
        if let Err(e) = setup_host_ring(shared, peer, &hello) {
            let detail = format!("{why}, and it cannot be served through a host ring: {e}");
            return Err(reject(&mut peer.conn, RejectReason::Device, detail));
        }
        peer.name = hello.name;
        peer.sync = SyncMode::Host;
        peer.host_ring = true;
        peer.phase = Phase::Active;
        tracing::info!(
            consumer = peer.id,
            pid = peer.creds.pid,
            "consumer connected through a host ring ({why})"
        );
        return offer.latest_to(shared, peer);
    }
    let Some(sync) = negotiate_sync(&shared.sync_modes, &hello.sync_modes) else {
        let detail = format!(
            "no common sync mode: producer offers {:?}, consumer {:?}",
            shared.sync_modes, hello.sync_modes
        );
        return Err(reject(&mut peer.conn, RejectReason::Sync, detail));
    };
    peer.conn.send(&Message::Hello(ours.clone()), &[])?;
    let setup = Message::PoolSetup {
        generation: 1,
        sync,
        slots: shared.exports.iter().map(|e| e.info.clone()).collect(),
    };
    let pool_fds: Vec<BorrowedOsHandle<'_>> = shared
        .exports
        .iter()
        .map(|e| borrow_os_handle(e.os_handle()))
        .collect();
    peer.conn.send(&setup, &pool_fds)?;
    peer.name = hello.name;
    peer.sync = sync;
    if sync == SyncMode::Timeline {
        let ready = shared.ready.as_ref().ok_or_else(|| {
            Error::Internal("timeline sync negotiated without a ready timeline".into())
        })?;
        let fd = ready.export()?;
        peer.conn
            .send(&Message::SyncSetup { sync }, &[borrow_os_handle(&fd)])?;
        peer.phase = Phase::AwaitSync {
            deadline: Instant::now() + shared.options.handshake_timeout,
        };
        return Ok(());
    }
    peer.phase = Phase::Active;
    tracing::info!(
        consumer = peer.id,
        pid = peer.creds.pid,
        ?sync,
        "consumer connected"
    );
    offer.latest_to(shared, peer)
}

/// Timeline mode: the consumer's release timeline arrives; it becomes active.
fn on_sync_setup(
    shared: &Shared,
    peer: &mut Peer,
    fds: Vec<OwnedOsHandle>,
    offer: &Offer,
) -> Result<()> {
    let fd = fds
        .into_iter()
        .next()
        .ok_or_else(|| Error::Protocol("SyncSetup without its FD".into()))?;
    let released = SharedTimelineSemaphore::import(&shared.manager, fd)?;
    peer.released = Some((Arc::new(released), 0));
    peer.phase = Phase::Active;
    tracing::info!(
        consumer = peer.id,
        pid = peer.creds.pid,
        "consumer connected (timeline sync)"
    );
    offer.latest_to(shared, peer)
}

/// A consumer is done with `frame`: it no longer holds it, and in timeline mode the slot's
/// next write waits for the value it announced (returned). A lossy consumer that is now free
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
    offer.latest_to(shared, peer)?;
    Ok(wait)
}

/// Sends `Reject` (its detail cut to what the wire carries) and returns the error the caller
/// drops the connection with.
fn reject(conn: &mut Connection, reason: RejectReason, detail: String) -> Error {
    let detail = bounded_reason(detail);
    tracing::warn!(%reason, "refusing consumer: {detail}");
    let _ = conn.send(
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
    let _ = peer.conn.send(&msg, &[]);
}

/// Announces `id` to a consumer and records that it holds it.
pub(super) fn send_frame(peer: &mut Peer, id: FrameId, present_ns: u64) -> Result<()> {
    peer.conn.send(
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
