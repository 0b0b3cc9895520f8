//! [`MetalSharedEvent`]: `MTLSharedEvent`, the Metal side of the sync model's shared fence: a
//! 64-bit counter that GPU command buffers and the host signal and wait on, like a Vulkan
//! timeline semaphore.

use std::time::Duration;

use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2_metal::{MTLDevice, MTLSharedEvent};

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

    /// The `MTLSharedEvent` (for `encodeWaitForEvent:value:` / `encodeSignalEvent:value:`).
    pub fn raw(&self) -> &ProtocolObject<dyn MTLSharedEvent> {
        &self.event
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
