//! Raw transport pieces for Geyser's own tests, benches and harness: a connection without the
//! handshake, SCM_RIGHTS sends of arbitrary FDs, shared-memory regions, and a simulated other
//! driver. Hidden from the docs and not a stable API; applications use [`super::Producer`] and
//! [`super::Consumer`].

use std::sync::atomic::{AtomicBool, Ordering};

pub use super::transport::shm::SharedRegion;
#[cfg(unix)]
pub use super::transport::unix::{runtime_dir, socket_path, Connection, Listener};

/// SCM_RIGHTS sends and receives of raw frames, with the checks the transport applies.
#[cfg(unix)]
pub mod fd_passing {
    pub use crate::ipc::transport::fd_passing::{check_fd_is_memory, recv, send};
}

static OTHER_DRIVER: AtomicBool = AtomicBool::new(false);

/// Makes every [`super::Consumer`] this process connects from now on report another driver
/// (its driver UUID inverted) in its Hello: a simulated other driver, so that paths across
/// drivers (DMA-BUF rings, host rings) run on a machine with one driver. The memory is still
/// imported by the real device, so only memory every driver can import (DMA-BUF, host memory)
/// works; an opaque ring sent to it would fail its import, as it would on another driver.
pub fn simulate_other_driver(on: bool) {
    OTHER_DRIVER.store(on, Ordering::Relaxed);
}

/// Whether [`simulate_other_driver`] is on.
pub(crate) fn simulating_other_driver() -> bool {
    OTHER_DRIVER.load(Ordering::Relaxed)
}
