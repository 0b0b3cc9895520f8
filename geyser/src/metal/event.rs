//! [`MetalSharedEvent`]: `MTLSharedEvent`, the Metal side of the sync model's shared fence: a
//! 64-bit counter that GPU command buffers and the host signal and wait on, like a Vulkan
//! timeline semaphore.
//!
//! # The sync model with it
//!
//! Within a process (one device, any number of command queues) the event is a timeline, as in
//! DESIGN.md's `SyncPoint { fence, value }`: the producer encodes
//! [`MetalSharedEvent::encode_signal`]`(cb, N)` after the commands that render frame N; the
//! consumer's command buffer starts with [`MetalSharedEvent::encode_wait`]`(cb, N)` before it
//! reads the texture, and signals a value of its own when done, which the producer waits on
//! before it writes that texture again. The GPU orders the work; the host never blocks.
//!
//! Across processes an `MTLSharedEvent` travels only as an `MTLSharedEventHandle` over XPC,
//! which Geyser's mach transport (`geyser::metal::mach`, macOS) does not do. Handoff
//! between processes is therefore host-synchronized: the producer waits on the host
//! ([`MetalSharedEvent::wait`], or `waitUntilCompleted` on its command buffer) until frame N
//! is done, then sends the frame message; the consumer reads once it has the message, and
//! answers when it is done reading. This is the same fallback Geyser uses on Linux when a
//! device exports no semaphores (`SyncMode::Host`); it costs a host round trip per frame.

use std::time::Duration;

use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2_metal::{MTLCommandBuffer, MTLDevice, MTLEvent, MTLSharedEvent};

use super::MetalTextureShareManager;
use crate::{Error, Result};

/// A shared event of one Metal device: encode waits and signals on command buffers with
/// [`Self::raw`], or use the host calls here. Values only grow.
#[derive(Debug)]
pub struct MetalSharedEvent {
    event: Retained<ProtocolObject<dyn MTLSharedEvent>>,
}

impl MetalSharedEvent {
    /// Creates an event on the manager's device, starting at 0.
    pub fn new(manager: &MetalTextureShareManager) -> Result<Self> {
        let event = manager.device().newSharedEvent().ok_or_else(|| {
            Error::unsupported("MTLSharedEvent", "the device returned no shared event")
        })?;
        Ok(Self { event })
    }

    /// The `MTLSharedEvent`.
    pub fn raw(&self) -> &ProtocolObject<dyn MTLSharedEvent> {
        &self.event
    }

    /// The event as an `MTLEvent`, the type command buffers take.
    fn as_event(&self) -> &ProtocolObject<dyn MTLEvent> {
        ProtocolObject::from_ref(&*self.event)
    }

    /// Makes the GPU wait, at this point of `command_buffer`, until the event reaches `value`
    /// (`encodeWaitForEvent:value:`): the consumer's side of a [`SyncPoint`]-style handoff.
    ///
    /// Metal requires that `command_buffer` belongs to the event's device, is not committed
    /// yet, and has no open command encoder (call `endEncoding` first); Metal's API
    /// validation reports a violation. A wait for a value nothing will signal stalls that
    /// queue.
    ///
    /// [`SyncPoint`]: self#the-sync-model-with-it
    pub fn encode_wait(&self, command_buffer: &ProtocolObject<dyn MTLCommandBuffer>, value: u64) {
        command_buffer.encodeWaitForEvent_value(self.as_event(), value);
    }

    /// Makes the GPU set the event to `value` once everything encoded before this point of
    /// `command_buffer` has completed (`encodeSignalEvent:value:`): the producer's side.
    /// Values should only grow. Same requirements on `command_buffer` as
    /// [`Self::encode_wait`].
    pub fn encode_signal(&self, command_buffer: &ProtocolObject<dyn MTLCommandBuffer>, value: u64) {
        command_buffer.encodeSignalEvent_value(self.as_event(), value);
    }

    /// The current value.
    pub fn value(&self) -> u64 {
        self.event.signaledValue()
    }

    /// Signals `value` from the host; it must exceed the current value
    /// ([`Error::InvalidArgument`] otherwise).
    pub fn signal(&self, value: u64) -> Result<()> {
        let current = self.value();
        if value <= current {
            return Err(Error::InvalidArgument {
                what: "event value",
                reason: format!("signal {value} does not exceed the current value {current}"),
            });
        }
        self.event.setSignaledValue(value);
        Ok(())
    }

    /// Waits on the host until the value reaches `value`; [`Error::Timeout`] after `timeout`.
    pub fn wait(&self, value: u64, timeout: Duration) -> Result<()> {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        if self.event.waitUntilSignaledValue_timeoutMS(value, ms) {
            Ok(())
        } else {
            Err(Error::Timeout(format!(
                "MTLSharedEvent did not reach {value} within {timeout:?} (it is at {})",
                self.value()
            )))
        }
    }
}
