//! [`Frame`]: one frame a [`Consumer`] holds, its sync points, and the release that hands its
//! slot back to the producer when it drops.

use std::time::Duration;

use super::{Consumer, Ready};
use crate::ipc::wire::FrameId;
use crate::vulkan::{TimelinePoint, VulkanTexture};
use crate::Result;

/// One frame held by a consumer. The texture holds the frame's texels until the guard drops,
/// which releases the slot to the producer: GPU work reading it must have finished by then
/// (host-synchronized mode: wait for its fence first).
pub struct Frame<'a> {
    pub(super) consumer: &'a mut Consumer,
    pub(super) ready: Ready,
    pub(super) released: bool,
    /// Its GPU work was submitted before it arrived ([`Consumer::expect_next`]).
    pub(super) expected: bool,
    /// The release value this frame's GPU work signals, once [`Frame::release_point`] was
    /// taken (or since [`Consumer::expect_next`]).
    pub(super) signal: Option<u64>,
}

impl std::fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("slot", &self.ready.id.slot)
            .field("frame", &self.ready.id.frame)
            .finish()
    }
}

impl Frame<'_> {
    /// The texture holding this frame.
    pub fn texture(&self) -> &VulkanTexture {
        &self.consumer.textures[self.ready.id.slot_index()]
    }

    /// Which frame this is: slot and number.
    pub fn id(&self) -> FrameId {
        self.ready.id
    }

    /// The producer's frame number (0, 1, 2, … with gaps where frames were skipped).
    pub fn number(&self) -> u64 {
        self.ready.id.frame
    }

    /// The ring slot.
    pub fn slot(&self) -> usize {
        self.ready.id.slot_index()
    }

    /// `CLOCK_MONOTONIC` time at which the producer presented the frame.
    pub fn present_ns(&self) -> u64 {
        self.ready.present_ns
    }

    /// Where the handoff's host time went, `CLOCK_MONOTONIC` ns: the producer sent the
    /// message at `.0`, this consumer's wait for it returned at `.1` (the wake-up from `poll`,
    /// or the spin that found it; the receive time if the message was already queued), and
    /// the message was read at `.2`.
    pub fn wake_times(&self) -> (u64, u64, u64) {
        (
            self.ready.sent_ns,
            self.ready.woke_ns,
            self.ready.received_ns,
        )
    }

    /// Whether this frame's GPU work was submitted before it arrived: it is the frame
    /// [`Consumer::expect_next`] named, and [`Self::release_point`] is the point that work
    /// signals. Drop (or release) the frame; there is nothing left to submit for it.
    pub fn was_expected(&self) -> bool {
        self.expected
    }

    /// Handoff latency: from the producer sending the frame message to this consumer
    /// receiving it (host clocks, `CLOCK_MONOTONIC`).
    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.ready.received_ns.saturating_sub(self.ready.sent_ns))
    }

    /// Frame age at receipt: from the producer's present to this consumer receiving it. Larger
    /// than [`Self::latency`] when the frame waited for this consumer to finish an earlier one.
    pub fn age(&self) -> Duration {
        Duration::from_nanos(self.ready.received_ns.saturating_sub(self.ready.present_ns))
    }

    /// Timeline and binary modes: the point the GPU work reading this frame must wait for (the
    /// producer's write is done when the ready timeline reaches `frame + 1`; in binary mode a
    /// local timeline that waits for the producer's binary semaphore). `None` in host mode,
    /// where the write was complete before the frame was announced.
    pub fn wait_point(&self) -> Option<TimelinePoint> {
        self.consumer
            .timelines
            .as_ref()
            .map(|(ready, _)| TimelinePoint {
                semaphore: ready.clone(),
                value: self.ready.id.frame + 1,
            })
    }

    /// Timeline and binary modes: the point the GPU work reading this frame must signal when
    /// done. Once taken, that work must be submitted before the frame is released: the
    /// producer's GPU waits for it before writing the slot again. `None` in host mode.
    pub fn release_point(&mut self) -> Option<TimelinePoint> {
        let (_, released) = self.consumer.timelines.as_ref()?;
        let semaphore = released.clone();
        let value = match self.signal {
            Some(v) => v,
            None => {
                self.consumer.release_value += 1;
                self.signal = Some(self.consumer.release_value);
                self.consumer.release_value
            }
        };
        Some(TimelinePoint { semaphore, value })
    }

    /// Waits on the host until the frame's texels are written (timeline and binary modes;
    /// returns at once in host mode). For consumers that read without GPU-side waits.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        match self.wait_point() {
            Some(p) => p.semaphore.wait(p.value, timeout),
            None => Ok(()),
        }
    }

    /// Releases the slot now. A producer that is gone needs no release (not an error: the next
    /// `next_frame` says how it went); other failures (a relay in binary mode) are reported.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.send_release()
    }

    fn send_release(&mut self) -> Result<()> {
        let id = self.ready.id;
        match self.signal {
            Some(value) => self.consumer.release_with(id, value),
            None => self.consumer.release(id),
        }
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        if !self.released {
            if let Err(e) = self.send_release() {
                tracing::debug!("releasing {}: {e}", self.ready.id);
            }
        }
    }
}
