//! The clocks of frame timing: [`monotonic_ns`], which frame messages are stamped with (one
//! clock for every process of the machine, so a consumer can subtract a producer's stamp), and
//! [`cpu_time_ns`], the process's CPU time, for cost per frame.

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
