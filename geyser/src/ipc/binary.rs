//! The binary-semaphore sync mode ([`SyncMode::BinarySemaphore`]): per ring slot, a "ready"
//! semaphore the producer signals and a "released" semaphore the consumer signals, created
//! exportable as opaque FDs, sent once at pool setup ([`Message::BinarySyncSetup`]) and reused
//! every frame. Each side turns the other's binary semaphores into points on timelines of its
//! own with commandless submissions ([`Submitter::relay`]), so the application's frame API is
//! the same timeline points as in timeline mode.
//!
//! # Why reusing binary semaphores is valid
//!
//! A binary semaphore may be waited on only after a signal of it was submitted, and signaled
//! again only after that wait executed. Across processes nothing but the messages orders the
//! two sides, so the protocol is built on one rule: **a side sends a frame message only after
//! submitting the signal the other side's wait needs.**
//!
//! - Frame `f` in slot `s` to consumer `c`: the producer submits "wait its ready timeline
//!   ≥ `f + 1` (the application's write) and `c`'s release timeline at its latest value →
//!   signal ready[`c`][`s`]", *then* sends `FrameReady`. The consumer, on receiving it, submits
//!   "wait ready[`s`] → signal its own ready timeline at `f + 1`" (what `Frame::wait_point`
//!   names) — for every frame it receives, also those it releases unseen, so every signal is
//!   consumed.
//! - Releasing it: the consumer submits "wait its ready timeline ≥ `f + 1` and its release
//!   timeline ≥ the value the reading work signals → signal released[`s`]", *then* sends
//!   `FrameReleased`. The producer, on receiving it, submits "wait released[`c`][`s`] → signal
//!   `c`'s release timeline at `n + 1`", which the slot's next write waits for.
//!
//! So every wait follows its signal in submission order, and each re-signal of a semaphore
//! depends (through those timelines) on the execution of the wait that consumed its previous
//! signal: the producer signals ready[`c`][`s`] again only for a later frame of slot `s`, whose
//! write waited for `c`'s release of the earlier one, which waited for `c`'s wait on
//! ready[`s`]; symmetrically for released[`s`].
//!
//! # When a peer dies
//!
//! No side ever submits a wait for a signal the peer has not already submitted. A consumer
//! killed between its wait on ready[`s`] and its signal of released[`s`] never sent
//! `FrameReleased` for that frame, so the producer has no wait on released[`c`][`s`]: it drops
//! the consumer, the slot is free again (host-side, as in every mode), and its semaphores are
//! destroyed once the producer's submissions that used them have completed. Nothing on the
//! producer's queue waits for the dead consumer. A producer that dies after signaling leaves
//! the consumer's waits satisfied; one that dies before sent no `FrameReady`. (A peer that
//! dies after submitting a signal depends on its driver completing or cancelling that
//! submission, as for any GPU work of a dead process.)
//!
//! Only opaque FDs (NT handles on Windows) are used: exported once, they stay valid for the
//! connection, as the validation layer also assumes. `SYNC_FD` binary semaphores (one FD per
//! signal) are not implemented: no device we run on exports them.

use std::sync::Arc;

use super::wire::FrameId;
use crate::common::OwnedOsHandle;
use crate::vulkan::{
    SharedSemaphore, SharedTimelineSemaphore, Submitter, SyncHandleType, TimelinePoint,
    VulkanTextureShareManager,
};
use crate::{Error, Result};

/// The handle type binary semaphores travel as on this platform.
fn handle_type() -> SyncHandleType {
    #[cfg(windows)]
    return SyncHandleType::OpaqueWin32;
    #[cfg(not(windows))]
    return SyncHandleType::OpaqueFd;
}

/// Why this context cannot run binary-semaphore IPC, or `None` when it can: the device exports
/// binary semaphores as opaque handles, the context enabled the external-semaphore extension
/// and timelines (for the local timelines), and Geyser may submit to its queue (for the
/// relays).
pub(crate) fn unsupported_reason(manager: &VulkanTextureShareManager) -> Result<Option<String>> {
    let caps = manager.caps()?;
    let device = &caps.identity.name;
    Ok(if !caps.binary_semaphore_export.opaque() {
        Some(format!(
            "{device} does not export binary semaphores as opaque FDs \
             (DeviceCaps::binary_semaphore_export; `geyser info` shows what it exports)"
        ))
    } else if !manager.can_share_timelines() {
        Some(format!(
            "the {device} context was created without VK_KHR_external_semaphore_fd or the \
             timelineSemaphore feature; enable both"
        ))
    } else if manager.dev.queue_is_foreign() {
        Some(
            "the device's queue belongs to another API (e.g. wgpu), and binary mode submits \
              its own relays"
                .into(),
        )
    } else {
        None
    })
}

/// `slots` new exportable binary semaphores and an exported handle of each.
pub(crate) fn create(
    manager: &VulkanTextureShareManager,
    slots: usize,
) -> Result<(Vec<Arc<SharedSemaphore>>, Vec<OwnedOsHandle>)> {
    let mut sems = Vec::with_capacity(slots);
    let mut fds = Vec::with_capacity(slots);
    for _ in 0..slots {
        let s = SharedSemaphore::new(manager, handle_type())?;
        fds.push(s.export()?);
        sems.push(Arc::new(s));
    }
    Ok((sems, fds))
}

/// Imports the peer's semaphores, one per slot (consumes the handles).
pub(crate) fn import(
    manager: &VulkanTextureShareManager,
    fds: Vec<OwnedOsHandle>,
    slots: usize,
) -> Result<Vec<Arc<SharedSemaphore>>> {
    if fds.len() != slots {
        return Err(Error::Protocol(format!(
            "{} binary semaphores for a ring of {slots} slots",
            fds.len()
        )));
    }
    fds.into_iter()
        .map(|fd| SharedSemaphore::import(manager, fd, handle_type()).map(Arc::new))
        .collect()
}

/// The producer's side of one binary-mode consumer.
pub(crate) struct ProducerLink {
    /// Ours, signaled before each `FrameReady` of that slot.
    ready: Vec<Arc<SharedSemaphore>>,
    /// The consumer's, waited for after each `FrameReleased` of that slot.
    released: Vec<Arc<SharedSemaphore>>,
    /// Reaches `releases` when the consumer's last release has been waited for.
    release_timeline: Arc<SharedTimelineSemaphore>,
    releases: u64,
}

impl ProducerLink {
    pub(crate) fn new(
        manager: &VulkanTextureShareManager,
        ready: Vec<Arc<SharedSemaphore>>,
        released: Vec<Arc<SharedSemaphore>>,
    ) -> Result<Self> {
        Ok(Self {
            ready,
            released,
            release_timeline: Arc::new(SharedTimelineSemaphore::local(manager, 0)?),
            releases: 0,
        })
    }

    /// Before `FrameReady { id }`: signal ready[slot] once the write is done (`written`) and
    /// every release of this consumer has been waited for.
    pub(crate) fn before_ready(
        &self,
        relay: &Submitter,
        written: TimelinePoint,
        id: FrameId,
    ) -> Result<()> {
        let ready = slot(&self.ready, id)?;
        let released = TimelinePoint {
            semaphore: self.release_timeline.clone(),
            value: self.releases,
        };
        let waits = [written, released];
        let waits = if self.releases > 0 {
            &waits[..]
        } else {
            &waits[..1]
        };
        relay.relay(waits, &[], &[], &[ready])
    }

    /// After `FrameReleased { id }`: wait released[slot], and return the point the slot's
    /// next write must wait for.
    pub(crate) fn after_release(
        &mut self,
        relay: &Submitter,
        id: FrameId,
    ) -> Result<TimelinePoint> {
        let released = slot(&self.released, id)?.clone();
        let point = TimelinePoint {
            semaphore: self.release_timeline.clone(),
            value: self.releases + 1,
        };
        relay.relay(&[], &[&released], std::slice::from_ref(&point), &[])?;
        self.releases += 1;
        Ok(point)
    }
}

/// The consumer's side of the binary mode: the producer's "ready" semaphores, our "released"
/// ones, and the relay that converts them to and from our local timelines.
pub(crate) struct ConsumerLink {
    ready: Vec<Arc<SharedSemaphore>>,
    released: Vec<Arc<SharedSemaphore>>,
    relay: Submitter,
}

impl ConsumerLink {
    pub(crate) fn new(
        manager: &VulkanTextureShareManager,
        ready: Vec<Arc<SharedSemaphore>>,
        released: Vec<Arc<SharedSemaphore>>,
    ) -> Result<Self> {
        Ok(Self {
            ready,
            released,
            relay: Submitter::new(manager, 2 * crate::ipc::wire::MAX_SLOTS)?,
        })
    }

    /// On `FrameReady { id }`: wait ready[slot] and signal our ready timeline at `frame + 1`.
    pub(crate) fn on_ready(
        &self,
        local_ready: &Arc<SharedTimelineSemaphore>,
        id: FrameId,
    ) -> Result<()> {
        let ready = slot(&self.ready, id)?;
        let point = TimelinePoint {
            semaphore: local_ready.clone(),
            value: id.frame + 1,
        };
        self.relay
            .relay(&[], &[ready], std::slice::from_ref(&point), &[])
    }

    /// Before `FrameReleased { id }`: signal released[slot] once the frame's ready wait has run
    /// and the work that read it (`read`, when any) is done.
    pub(crate) fn before_release(
        &self,
        local_ready: &Arc<SharedTimelineSemaphore>,
        read: Option<TimelinePoint>,
        id: FrameId,
    ) -> Result<()> {
        let released = slot(&self.released, id)?;
        let ready = TimelinePoint {
            semaphore: local_ready.clone(),
            value: id.frame + 1,
        };
        match read {
            Some(read) => self.relay.relay(&[ready, read], &[], &[], &[released]),
            None => self.relay.relay(&[ready], &[], &[], &[released]),
        }
    }
}

fn slot(sems: &[Arc<SharedSemaphore>], id: FrameId) -> Result<&Arc<SharedSemaphore>> {
    sems.get(id.slot_index())
        .ok_or_else(|| Error::Protocol(format!("{id}: no binary semaphore for that slot")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulkan::{diagnostics, ContextOptions, DeviceSelector, Validation, SUBMIT_TIMEOUT};

    /// Both ends of the protocol in one context, on semaphores that are never exported, so the
    /// validation layer sees every signal and wait of them: a lossless stretch, then frames
    /// released unseen (lossy), then frames released after GPU work that read them. Any wait
    /// without a pending signal, or a signal of a signaled semaphore, is a validation error.
    #[test]
    fn the_relays_order_every_binary_wait_after_its_signal() {
        let m = match VulkanTextureShareManager::create(&ContextOptions {
            device: DeviceSelector::from_env(),
            validation: Validation::Required,
        }) {
            Ok(m) => m,
            // The Windows build of these tests runs under Wine, which has no Vulkan device.
            Err(e) if cfg!(windows) => {
                eprintln!("skipped: no Vulkan device with the validation layer: {e}");
                return;
            }
            Err(e) => panic!("a Vulkan device with the validation layer: {e}"),
        };
        let slots = 3;
        let sems = |n| -> Vec<Arc<SharedSemaphore>> {
            (0..n)
                .map(|_| Arc::new(SharedSemaphore::local(&m).unwrap()))
                .collect()
        };
        let (ready, released) = (sems(slots), sems(slots));
        let mut producer = ProducerLink::new(&m, ready.clone(), released.clone()).unwrap();
        let consumer = ConsumerLink::new(&m, ready, released).unwrap();
        let app = Submitter::new(&m, 4).unwrap();
        let relay = Submitter::new(&m, 16).unwrap();
        let tl = || Arc::new(SharedTimelineSemaphore::local(&m, 0).unwrap());
        let (written, local_ready, local_release) = (tl(), tl(), tl());
        let mut slot_waits: Vec<Vec<TimelinePoint>> = vec![Vec::new(); slots];
        let mut reads = 0;
        for frame in 0..60u64 {
            let id = FrameId {
                slot: (frame % slots as u64) as u32,
                frame,
            };
            // The application's write waits for the slot's releases and signals `written`.
            let signal = TimelinePoint {
                semaphore: written.clone(),
                value: frame + 1,
            };
            let waits = std::mem::take(&mut slot_waits[id.slot_index()]);
            app.submit(|_, _| {}, &waits, std::slice::from_ref(&signal), false)
                .unwrap();
            producer.before_ready(&relay, signal, id).unwrap();
            consumer.on_ready(&local_ready, id).unwrap();
            // Frames 20..40 are released unseen; the others after work that waited and read.
            let read = if (20..40).contains(&frame) {
                None
            } else {
                reads += 1;
                let wait = TimelinePoint {
                    semaphore: local_ready.clone(),
                    value: frame + 1,
                };
                let done = TimelinePoint {
                    semaphore: local_release.clone(),
                    value: reads,
                };
                app.submit(|_, _| {}, &[wait], std::slice::from_ref(&done), false)
                    .unwrap();
                Some(done)
            };
            consumer.before_release(&local_ready, read, id).unwrap();
            let point = producer.after_release(&relay, id).unwrap();
            slot_waits[id.slot_index()].push(point);
        }
        app.drain(SUBMIT_TIMEOUT).unwrap();
        relay.drain(SUBMIT_TIMEOUT).unwrap();
        consumer.relay.drain(SUBMIT_TIMEOUT).unwrap();
        assert_eq!(written.value().unwrap(), 60);
        assert_eq!(local_ready.value().unwrap(), 60);
        assert_eq!(producer.release_timeline.value().unwrap(), 60);
        assert_eq!(
            diagnostics::validation_error_count(),
            0,
            "{:#?}",
            diagnostics::validation_messages()
        );
    }
}
