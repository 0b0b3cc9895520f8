//! What both ends agree on at connection time: the synchronization mode (best first).

use super::protocol::SyncMode;
use crate::vulkan::{DeviceCaps, VulkanTextureShareManager};
use crate::{Error, Result};

/// Sync modes this build can run on a manager's device, best first: [`SyncMode::Timeline`]
/// where the device exports timeline semaphores as opaque FDs (NT handles on Windows), and always [`SyncMode::Host`].
/// (Per-frame binary sync FDs are not implemented: no device we run on exports them.)
pub fn supported_sync_modes(manager: &VulkanTextureShareManager) -> Result<Vec<SyncMode>> {
    let caps = manager.caps()?;
    let mut modes = Vec::with_capacity(2);
    if caps.timeline_semaphores
        && caps.timeline_semaphore_export.opaque()
        && manager.can_share_timelines()
    {
        modes.push(SyncMode::Timeline);
    }
    modes.push(SyncMode::Host);
    Ok(modes)
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
        SyncMode::Timeline => caps.timeline_semaphore_export.opaque(),
    };
    let reason = match (mode, exports) {
        (SyncMode::Host, _) => "host synchronization is always available; this is a bug".to_string(),
        (SyncMode::BinarySemaphore, _) => format!(
            "this build implements no binary-semaphore IPC path ({device} {} binary semaphores); \
             force SyncMode::Timeline or SyncMode::Host, or leave the mode to negotiation",
            if caps.binary_semaphore_export.any() { "exports" } else { "does not export" }
        ),
        (_, false) => format!(
            "{device} does not export timeline semaphores as opaque FDs (VK_KHR_external_semaphore_fd; \
             DeviceCaps::timeline_semaphore_export says what it exports); force SyncMode::Host or \
             leave the mode to negotiation"
        ),
        (_, true) => format!(
            "{device} exports timeline semaphores, but the device context was created without \
             VK_KHR_external_semaphore_fd or the timelineSemaphore feature; enable both"
        ),
    };
    Error::unsupported(format!("{mode:?} synchronization"), reason)
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
