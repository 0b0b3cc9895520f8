//! What both ends agree on at connection time: the synchronization mode (best first), and the
//! shared clock frame messages are stamped with.

use super::protocol::SyncMode;
use crate::vulkan::DeviceCaps;
use crate::Error;

/// Sync modes this build can run on a device, best first. Exported-semaphore modes need the
/// device to export them and are implemented by the GPU synchronization work; until then every
/// device runs [`SyncMode::Host`], which is correct everywhere.
pub fn supported_sync_modes(_caps: &DeviceCaps) -> Vec<SyncMode> {
    vec![SyncMode::Host]
}

/// The first of `ours` (best first) that `theirs` also supports.
pub fn negotiate_sync(ours: &[SyncMode], theirs: &[SyncMode]) -> Option<SyncMode> {
    ours.iter().copied().find(|m| theirs.contains(m))
}

/// The error for a forced mode the device or this build cannot run: says whether the device
/// lacks the export, or the device has it and this build has no IPC path for it yet.
pub fn unsupported_sync(mode: SyncMode, caps: &DeviceCaps) -> Error {
    let device = &caps.identity.name;
    let exports = match mode {
        SyncMode::Host => true,
        SyncMode::BinarySemaphore => caps.binary_semaphore_export.any(),
        SyncMode::Timeline => caps.timeline_semaphore_export.opaque_fd,
    };
    let reason = match (mode, exports) {
        (SyncMode::Host, _) => "host synchronization is always available; this is a bug".to_string(),
        (_, false) => format!(
            "{device} does not export {} semaphores (VK_KHR_external_semaphore_fd with OPAQUE_FD/SYNC_FD); \
             `geyser info` shows what it exports; use --sync host or auto",
            if mode == SyncMode::Timeline { "timeline" } else { "binary" }
        ),
        (_, true) => format!(
            "{device} exports the semaphores, but this build's IPC layer has no {mode:?} path yet \
             (it runs host-synchronized handoff); use --sync host or auto"
        ),
    };
    Error::unsupported(format!("{mode:?} synchronization"), reason)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of the machine, so a
/// consumer can subtract a producer's timestamp.
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_best_common_mode() {
        use SyncMode::*;
        assert_eq!(
            negotiate_sync(&[Timeline, BinarySemaphore, Host], &[Host, BinarySemaphore]),
            Some(BinarySemaphore)
        );
        assert_eq!(negotiate_sync(&[Timeline], &[Host]), None);
    }
}
