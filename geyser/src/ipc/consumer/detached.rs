//! [`DetachedFrame`]: a frame out of its borrowing guard, for holders that cannot keep the
//! consumer borrowed (bindings to languages with garbage collection, such as Python): the
//! frame stays held until it is attached again and released.

use super::{Consumer, Frame, Ready};
use crate::ipc::wire::FrameId;
use crate::{Error, Result};

/// A held frame without a borrow of its [`Consumer`] ([`Frame::detach`]). Give it back with
/// [`Consumer::attach`] to use it again or release it; until then the producer counts the
/// slot as held (and drops a consumer that holds one past `ProducerOptions::max_hold`).
#[must_use = "a detached frame stays held until Consumer::attach gets it back and it is released"]
#[derive(Debug)]
pub struct DetachedFrame {
    consumer: u64,
    ready: Ready,
    expected: bool,
    signal: Option<u64>,
}

impl DetachedFrame {
    /// Which frame it is.
    pub fn id(&self) -> FrameId {
        self.ready.id
    }
}

impl<'a> Frame<'a> {
    /// Takes the frame out of its guard: it is not released when this returns.
    pub fn detach(mut self) -> DetachedFrame {
        self.released = true;
        DetachedFrame {
            consumer: self.consumer.id,
            ready: self.ready,
            expected: self.expected,
            signal: self.signal,
        }
    }
}

impl Consumer {
    /// Puts a detached frame back into a guard (which releases it when dropped).
    /// [`Error::InvalidArgument`] for a frame of another consumer (a bug of the caller's: that
    /// frame is then lost to its consumer, which the producer drops once it has held the
    /// frame past `ProducerOptions::max_hold`).
    pub fn attach(&mut self, frame: DetachedFrame) -> Result<Frame<'_>> {
        if frame.consumer != self.id {
            return Err(Error::InvalidArgument {
                what: "frame",
                reason: format!("{} belongs to another consumer", frame.ready.id),
            });
        }
        Ok(Frame {
            consumer: self,
            ready: frame.ready,
            released: false,
            expected: frame.expected,
            signal: frame.signal,
        })
    }
}
