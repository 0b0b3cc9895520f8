//! Pre-submitted waits: a consumer submits its GPU work for the next frame before the frame's
//! message arrives, waiting on the producer's timeline on the GPU, so the handoff has no CPU
//! in the loop: the work starts when the producer's GPU signals the frame written.

use std::time::Duration;

use super::Consumer;
use crate::ipc::wire::{FrameId, SyncMode};
use crate::vulkan::{TimelinePoint, VulkanTexture};
use crate::{Error, Result};

/// The frame a consumer expects next, and what its GPU work must use: submit work that reads
/// `texture`, waits for `wait_point` and signals `release_point`, then call
/// [`Consumer::next_frame`]: the frame it returns says [`super::Frame::was_expected`] when it
/// is this one (drop it: its work is already on the GPU), and otherwise the work read a frame
/// that was not handed to you: ignore what it produced, and process the frame as usual.
#[derive(Clone, Debug)]
pub struct ExpectedFrame {
    /// The slot and number the frame will have.
    pub id: FrameId,
    /// The texture that slot will hold it in.
    pub texture: VulkanTexture,
    /// The producer's timeline point that says the frame is written.
    pub wait_point: TimelinePoint,
    /// The point the work must signal when it is done reading.
    pub release_point: TimelinePoint,
}

/// Longest wait, when the stream ends, for the producer's own signal of an expected frame.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);

impl Consumer {
    /// The frame after the last one returned, before it arrives: for submitting its GPU work
    /// ahead ([`ExpectedFrame`]). The same frame until it arrives. Needs timeline sync, a
    /// lossless consumer (every frame comes), a producer with
    /// [`crate::ipc::ProducerOptions::ordered_slots`] (so the slot is known), and one frame
    /// received (so the number is): [`Error::Unsupported`] or [`Error::InvalidArgument`]
    /// otherwise.
    ///
    /// The work waits on the GPU until the producer writes the frame, and so does everything
    /// submitted after it to the same queue: use a queue of its own, or expect frames to keep
    /// coming. If the stream ends first, the consumer signals the wait itself (after giving the
    /// producer's GPU a second to do so), so the queue is never left blocked; a consumer
    /// dropped with an expected frame does the same.
    pub fn expect_next(&mut self) -> Result<ExpectedFrame> {
        let unsupported = |why: &str| Err(Error::unsupported("pre-submitted waits", why));
        let Some((ready, released)) = self.timelines.clone() else {
            return unsupported(
                "they wait on the producer's timeline on the GPU; this consumer is host-synchronized",
            );
        };
        if !self.lossless {
            return unsupported("a lossy consumer may skip frames; connect with `lossless: true`");
        }
        if !self.ordered {
            return unsupported(
                "the producer writes frames into any free slot; it needs `ProducerOptions::ordered_slots`",
            );
        }
        if let Some(why) = self.broken.as_ref().filter(|_| self.queue.is_empty()) {
            return Err(Error::PeerGone(format!("the stream has ended: {why}")));
        }
        let Some(last) = self.last_frame else {
            return Err(Error::InvalidArgument {
                what: "expect_next",
                reason: "no frame received yet: the stream's first number is unknown".into(),
            });
        };
        let (id, value) = match self.expected {
            Some(e) => e,
            None => {
                let frame = last + 1;
                let slot = (frame % self.textures.len() as u64) as u32;
                self.release_value += 1;
                let e = (FrameId { slot, frame }, self.release_value);
                self.expected = Some(e);
                e
            }
        };
        debug_assert_eq!(self.sync, SyncMode::Timeline);
        Ok(ExpectedFrame {
            id,
            texture: self.textures[id.slot_index()].clone(),
            wait_point: TimelinePoint {
                semaphore: ready,
                value: id.frame + 1,
            },
            release_point: TimelinePoint {
                semaphore: released,
                value,
            },
        })
    }

    /// The stream ended (or this consumer is going) with an expected frame outstanding: its
    /// work waits for a value the producer may never signal. Give the producer's GPU a moment
    /// to signal it (a write already submitted), then signal it here, so the work runs (and
    /// is ignored) and the queue moves on.
    pub(super) fn settle_expected(&mut self) {
        let (Some((id, _)), Some((ready, _))) = (self.expected.take(), self.timelines.as_ref())
        else {
            return;
        };
        if ready.wait(id.frame + 1, SETTLE_TIMEOUT).is_ok() {
            return;
        }
        match ready.signal(id.frame + 1) {
            Ok(()) => tracing::debug!("signaled the producer's timeline for unsent {id}"),
            Err(e) => tracing::warn!("unblocking the GPU work waiting for {id}: {e}"),
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.settle_expected();
    }
}
