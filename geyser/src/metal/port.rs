//! [`OwnedMachPort`]: a mach port send right with one owner, deallocated on drop. The
//! cross-process form of an IOSurface (`IOSurfaceCreateMachPort`).

use mach2::mach_port::mach_port_deallocate;
use mach2::port::{mach_port_t, MACH_PORT_NULL};
use mach2::traps::mach_task_self;

/// A send right to a mach port in this task, released (`mach_port_deallocate`) on drop. Send
/// it to another process in a mach message (or XPC), then [`OwnedMachPort::into_raw`] it.
#[derive(Debug)]
pub struct OwnedMachPort(mach_port_t);

impl OwnedMachPort {
    /// Takes ownership of a send right.
    ///
    /// # Safety
    ///
    /// - `port` is a send right of this task that nothing else will deallocate;
    /// - after this call only the returned value releases it.
    pub unsafe fn from_raw(port: mach_port_t) -> Option<Self> {
        (port != MACH_PORT_NULL).then_some(Self(port))
    }

    /// The port name, still owned by `self`.
    pub fn as_raw(&self) -> mach_port_t {
        self.0
    }

    /// Gives up ownership (e.g. after moving the right into a mach message).
    pub fn into_raw(self) -> mach_port_t {
        let port = self.0;
        std::mem::forget(self);
        port
    }
}

impl Drop for OwnedMachPort {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a send right of this task owned only by `self` (see `from_raw`);
        // it is deallocated exactly once, here.
        unsafe { mach_port_deallocate(mach_task_self(), self.0) };
    }
}
