//! Overlapped I/O on a pipe: one operation at a time, whose `OVERLAPPED` and event outlive it
//! (freed only after completion or a waited-for cancel).

use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use windows_sys::Win32::Foundation::{ERROR_IO_INCOMPLETE, ERROR_IO_PENDING, WAIT_FAILED};
use windows_sys::Win32::System::Threading::{CreateEventW, ResetEvent, WaitForSingleObject};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

use super::{last_error, last_error_code, owned, wait_ms};
use crate::Result;

/// One overlapped operation at a time on a pipe: its `OVERLAPPED` (boxed, because the kernel
/// keeps its address while the operation is pending) and a manual-reset event (shared, so a
/// waiter's copy stays a valid handle even after the connection is gone).
pub(super) struct Op {
    pub(super) overlapped: Box<OVERLAPPED>,
    pub(super) event: Arc<OwnedHandle>,
    pub(super) pending: bool,
}

impl Op {
    pub(super) fn new() -> Result<Self> {
        // SAFETY: creates a new unnamed manual-reset event, initially non-signaled; the
        // result is checked and owned by `owned`.
        let raw = unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) };
        let event = Arc::new(owned(raw, "CreateEventW")?);
        Ok(Op {
            overlapped: Box::new(OVERLAPPED::default()),
            event,
            pending: false,
        })
    }

    /// A fresh `OVERLAPPED` for the next operation, its event reset. Only called while no
    /// operation is pending.
    pub(super) fn begin(&mut self) -> *mut OVERLAPPED {
        debug_assert!(!self.pending);
        // SAFETY: our own live event handle.
        unsafe { ResetEvent(self.event.as_raw_handle()) };
        *self.overlapped = OVERLAPPED {
            hEvent: self.event.as_raw_handle(),
            ..OVERLAPPED::default()
        };
        &mut *self.overlapped
    }

    /// Records what starting the operation returned: pending (or already complete: its result
    /// is read with [`Self::result`] either way), or the error that ended it at once.
    pub(super) fn started(&mut self, ok: i32) -> std::result::Result<(), u32> {
        if ok != 0 {
            self.pending = true;
            return Ok(());
        }
        match last_error_code() {
            ERROR_IO_PENDING => {
                self.pending = true;
                Ok(())
            }
            code => Err(code),
        }
    }

    /// The pending operation's result: `Ok(Some(bytes))` when it completed, `Ok(None)` while
    /// it is still pending (`wait` false), `Err(code)` when it failed.
    pub(super) fn result(
        &mut self,
        file: &OwnedHandle,
        wait: bool,
    ) -> std::result::Result<Option<u32>, u32> {
        let mut bytes = 0u32;
        // SAFETY: `file` is the handle the operation was started on, with this OVERLAPPED,
        // which is alive (boxed in `self`) until the operation is no longer pending.
        let ok = unsafe {
            GetOverlappedResult(
                file.as_raw_handle(),
                &*self.overlapped,
                &mut bytes,
                i32::from(wait),
            )
        };
        if ok != 0 {
            self.pending = false;
            return Ok(Some(bytes));
        }
        match last_error_code() {
            ERROR_IO_INCOMPLETE => Ok(None),
            code => {
                self.pending = false;
                Err(code)
            }
        }
    }

    /// Waits (at most `timeout`) for the operation's event.
    pub(super) fn wait_event(&self, timeout: Option<Duration>) -> Result<()> {
        // SAFETY: our own live event handle.
        if unsafe { WaitForSingleObject(self.event.as_raw_handle(), wait_ms(timeout)) }
            == WAIT_FAILED
        {
            return Err(last_error("WaitForSingleObject"));
        }
        Ok(())
    }

    /// Cancels a pending operation and waits until the kernel is done with its `OVERLAPPED`
    /// and buffer, so both may be freed or reused.
    pub(super) fn cancel(&mut self, file: &OwnedHandle) {
        if !self.pending {
            return;
        }
        // SAFETY: cancels only the operation started with this OVERLAPPED on `file`.
        unsafe { CancelIoEx(file.as_raw_handle(), &*self.overlapped) };
        let _ = self.result(file, true);
        self.pending = false;
    }
}
