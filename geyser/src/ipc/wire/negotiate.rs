//! What both ends agree on at connection time: the synchronization mode (best first).

use super::protocol::SyncMode;
use crate::ipc::binary;
use crate::vulkan::{DeviceCaps, VulkanTextureShareManager};
use crate::{Error, Result};

/// Sync modes this build can run on a manager's device, best first: [`SyncMode::Timeline`]
/// where the device exports timeline semaphores as opaque FDs (NT handles on Windows),
/// [`SyncMode::BinarySemaphore`] where it exports binary semaphores so and Geyser may submit to
/// the context's queue, and always [`SyncMode::Host`].
pub fn supported_sync_modes(manager: &VulkanTextureShareManager) -> Result<Vec<SyncMode>> {
    let caps = manager.caps()?;
    let mut modes = Vec::with_capacity(3);
    if caps.timeline_semaphores
        && caps.timeline_semaphore_export.opaque()
        && manager.can_share_timelines()
    {
        modes.push(SyncMode::Timeline);
    }
    if binary::unsupported_reason(manager)?.is_none() {
        modes.push(SyncMode::BinarySemaphore);
    }
    modes.push(SyncMode::Host);
    Ok(modes)
}

/// `supported` (best first) with `preferred` moved to the front when it is among them: what an
/// endpoint offers when it prefers a mode but still accepts the others.
pub fn prefer(mut supported: Vec<SyncMode>, preferred: Option<SyncMode>) -> Vec<SyncMode> {
    if let Some(i) = preferred.and_then(|p| supported.iter().position(|m| *m == p)) {
        let mode = supported.remove(i);
        supported.insert(0, mode);
    }
    supported
}

/// The first of `ours` (best first) that `theirs` also supports.
pub fn negotiate_sync(ours: &[SyncMode], theirs: &[SyncMode]) -> Option<SyncMode> {
    ours.iter().copied().find(|m| theirs.contains(m))
}

/// The error for a forced mode the device or this context cannot run: says what the device
/// lacks, or what the context lacks when the device has it.
pub fn unsupported_sync(mode: SyncMode, manager: &VulkanTextureShareManager) -> Error {
    let reason = match unsupported_reason(mode, manager) {
        Ok(r) => r,
        Err(e) => format!("the device's capabilities could not be read: {e}"),
    };
    Error::unsupported(format!("{mode:?} synchronization"), reason)
}

fn unsupported_reason(mode: SyncMode, manager: &VulkanTextureShareManager) -> Result<String> {
    let caps: &DeviceCaps = manager.caps()?;
    let device = &caps.identity.name;
    let leave = "force SyncMode::Host or leave the mode to negotiation";
    Ok(match mode {
        SyncMode::Host => "host synchronization is always available; this is a bug".to_string(),
        SyncMode::BinarySemaphore => format!(
            "{}; {leave}",
            binary::unsupported_reason(manager)?
                .unwrap_or_else(|| "binary-semaphore IPC is available; this is a bug".into())
        ),
        SyncMode::Timeline if !caps.timeline_semaphore_export.opaque() => format!(
            "{device} does not export timeline semaphores as opaque FDs (VK_KHR_external_semaphore_fd; \
             DeviceCaps::timeline_semaphore_export says what it exports); {leave}"
        ),
        SyncMode::Timeline => format!(
            "{device} exports timeline semaphores, but the device context was created without \
             VK_KHR_external_semaphore_fd or the timelineSemaphore feature; enable both"
        ),
    })
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

    #[test]
    fn a_preferred_mode_goes_first_only_when_supported() {
        use SyncMode::*;
        let all = vec![Timeline, BinarySemaphore, Host];
        assert_eq!(
            prefer(all.clone(), Some(BinarySemaphore)),
            [BinarySemaphore, Timeline, Host]
        );
        assert_eq!(prefer(vec![Host], Some(BinarySemaphore)), [Host]);
        assert_eq!(prefer(all.clone(), None), all);
    }
}
