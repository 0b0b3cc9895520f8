//! What both ends agree on at connection time: the synchronization mode (best first), and the
//! shared clock frame messages are stamped with.

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
            "per-frame binary semaphore handoff needs SYNC_FD semaphore export; {device} {} it, and this \
             build implements no binary IPC path (timeline is the zero-copy path); use --sync timeline, host or auto",
            if caps.binary_semaphore_export.sync_fd { "offers" } else { "does not offer" }
        ),
        (_, false) => format!(
            "{device} does not export timeline semaphores as opaque FDs (VK_KHR_external_semaphore_fd); \
             `geyser info` shows what it exports; use --sync host or auto"
        ),
        (_, true) => format!(
            "{device} exports timeline semaphores, but the device context was created without \
             VK_KHR_external_semaphore_fd or the timelineSemaphore feature; enable both"
        ),
    };
    Error::unsupported(format!("{mode:?} synchronization"), reason)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of the machine, so a
/// consumer can subtract a producer's timestamp.
#[cfg(unix)]
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The performance counter in nanoseconds: the same clock in every process of the machine, so
/// a consumer can subtract a producer's timestamp. (Windows; compiles in CI, never run.)
#[cfg(windows)]
pub fn monotonic_ns() -> u64 {
    use windows_sys::Win32::System::Performance::{
        QueryPerformanceCounter, QueryPerformanceFrequency,
    };
    let (mut count, mut freq) = (0i64, 0i64);
    // SAFETY: both calls only write the i64 behind a valid pointer; they cannot fail on
    // Windows XP and later.
    unsafe {
        QueryPerformanceCounter(&mut count);
        QueryPerformanceFrequency(&mut freq);
    }
    if freq <= 0 {
        return 0;
    }
    (count.max(0) as u128 * 1_000_000_000 / freq as u128) as u64
}

/// CPU time this process has used (all threads), `CLOCK_PROCESS_CPUTIME_ID`, nanoseconds.
#[cfg(unix)]
pub fn cpu_time_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// CPU time this process has used (all threads, user and kernel, from `GetProcessTimes`),
/// nanoseconds. (Windows; compiles in CI, never run.)
#[cfg(windows)]
pub fn cpu_time_ns() -> u64 {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessTimes};
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the current-process pseudo-handle is always valid; the call only writes the four
    // FILETIMEs behind valid pointers.
    let ok = unsafe {
        GetProcessTimes(
            GetCurrentProcess(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    if ok == 0 {
        return 0;
    }
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    // FILETIME counts 100 ns ticks.
    (ticks(kernel) + ticks(user)).saturating_mul(100)
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
