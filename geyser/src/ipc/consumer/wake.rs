//! How a consumer waits for a frame message. By default it sleeps in `poll` until the message
//! comes; a sleeping thread then wakes tens of µs later (hundreds on a VM at p99). With a spin
//! budget ([`super::ConsumerOptions::spin`]) it learns when frames arrive ([`Arrivals`]) and,
//! from just before the next one is due, polls without sleeping for at most the budget per
//! frame, then sleeps again: a bounded CPU cost for a wake-up measured in microseconds.

use std::time::{Duration, Instant};

use crate::common::OwnedOsHandle;
use crate::ipc::clock::monotonic_ns;
use crate::ipc::transport::Connection;
use crate::ipc::wire::Message;
use crate::{Error, Result};

/// When frames arrive: the time between consecutive frame numbers, and the schedule's phase,
/// anchored on the earliest arrivals (a late frame is late; an early one shows the schedule).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Arrivals {
    /// Estimated nanoseconds between frame numbers (0: unknown yet).
    interval_ns: f64,
    /// The last arrival: frame number and `CLOCK_MONOTONIC` ns.
    last: Option<(u64, u64)>,
    /// An arrival on schedule, which later ones are predicted from.
    anchor: Option<(u64, f64)>,
}

/// Arrivals this far from the interval (a pause, a burst) do not change its estimate.
const OUTLIER: f64 = 4.0;

impl Arrivals {
    /// Records that frame `frame` arrived at `at_ns`.
    pub(crate) fn record(&mut self, frame: u64, at_ns: u64) {
        if let Some((f0, t0)) = self.last {
            if frame > f0 && at_ns > t0 {
                let per = (at_ns - t0) as f64 / (frame - f0) as f64;
                if self.interval_ns == 0.0 {
                    self.interval_ns = per;
                } else if per < OUTLIER * self.interval_ns && per > self.interval_ns / OUTLIER {
                    self.interval_ns += (per - self.interval_ns) / 16.0;
                }
            }
        }
        self.last = Some((frame, at_ns));
        let at = at_ns as f64;
        self.anchor = match (self.anchor, self.predict(frame)) {
            // Earlier than the schedule says, or far off it (a pause, a new rate): re-anchor.
            (Some(_), Some(p)) if at <= p || at - p > self.interval_ns / 2.0 => Some((frame, at)),
            // Late: the schedule creeps towards it slowly, so a drifting estimate recovers
            // while one late frame barely moves it.
            (Some((fa, ta)), Some(p)) => Some((fa, ta + (at - p) / 32.0)),
            _ => Some((frame, at)),
        };
    }

    fn predict(&self, frame: u64) -> Option<f64> {
        let (fa, ta) = self.anchor?;
        (self.interval_ns > 0.0 && frame >= fa).then(|| ta + (frame - fa) as f64 * self.interval_ns)
    }

    /// When frame `frame` is due at the earliest, once the schedule is known.
    pub(crate) fn due_ns(&self, frame: u64) -> Option<u64> {
        self.predict(frame).map(|t| t as u64)
    }
}

/// The consumer's waiting strategy and what spinning has cost so far.
#[derive(Debug)]
pub(super) struct Wake {
    /// Most time spent polling without sleeping per frame (zero: always sleep).
    spin: Duration,
    pub(super) arrivals: Arrivals,
    /// Total nanoseconds spent spinning.
    pub(super) spun_ns: u64,
}

impl Wake {
    pub(super) fn new(spin: Duration) -> Self {
        Self {
            spin,
            arrivals: Arrivals::default(),
            spun_ns: 0,
        }
    }

    /// Receives the next message (after a `try_recv` found none), waiting until `deadline`
    /// (forever with `None`) for frame `next` to come. Returns it with the time the wait
    /// ended: the wake-up from `poll`, or the spin that found it.
    pub(super) fn recv(
        &mut self,
        conn: &mut Connection,
        next: u64,
        deadline: Option<Instant>,
    ) -> Result<(Message, Vec<OwnedOsHandle>, u64)> {
        let budget = self.spin.as_nanos() as u64;
        // Spin from a little before the frame is due; sleep until then.
        let spin_from = (budget > 0)
            .then(|| self.arrivals.due_ns(next))
            .flatten()
            .map(|due| due.saturating_sub(budget / 8));
        let mut spun = budget == 0;
        loop {
            let now = monotonic_ns();
            let left = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Timeout("no frame from the producer".into()));
                    }
                    Some(left)
                }
                None => None,
            };
            match spin_from {
                Some(from) if !spun && now < from => {
                    let until = Duration::from_nanos(from - now);
                    conn.wait_readable(Some(left.map_or(until, |l| l.min(until))))?;
                }
                Some(_) if !spun => {
                    spun = true;
                    if let Some(m) = self.spin(conn, budget)? {
                        return Ok(m);
                    }
                    continue;
                }
                _ => conn.wait_readable(left)?,
            }
            let woke = monotonic_ns();
            if let Some((msg, fds)) = conn.try_recv()? {
                return Ok((msg, fds, woke));
            }
        }
    }

    /// Polls without sleeping for at most `budget` ns.
    fn spin(
        &mut self,
        conn: &mut Connection,
        budget: u64,
    ) -> Result<Option<(Message, Vec<OwnedOsHandle>, u64)>> {
        let start = monotonic_ns();
        loop {
            let got = conn.try_recv()?;
            let now = monotonic_ns();
            if let Some((msg, fds)) = got {
                self.spun_ns += now - start;
                return Ok(Some((msg, fds, now)));
            }
            if now - start >= budget {
                self.spun_ns += now - start;
                return Ok(None);
            }
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn the_schedule_is_learned_from_the_earliest_arrivals() {
        let mut a = Arrivals::default();
        assert_eq!(a.due_ns(1), None);
        // 120 fps with up to 300 µs of lateness on some frames.
        let interval = 8_333_333u64;
        let late = |f: u64| {
            if f.is_multiple_of(3) {
                300_000
            } else {
                f % 7 * 10_000
            }
        };
        for f in 0..200 {
            a.record(f, 1_000 * MS + f * interval + late(f));
        }
        let due = a.due_ns(200).unwrap() as i64;
        let on_time = (1_000 * MS + 200 * interval) as i64;
        assert!(
            (due - on_time).abs() < 80_000,
            "due {due}, on time {on_time}"
        );
    }

    #[test]
    fn skipped_frames_and_pauses_keep_the_estimate() {
        let mut a = Arrivals::default();
        let interval = 4 * MS;
        for f in 0..50 {
            a.record(f, f * interval);
        }
        // Frames 50..60 skipped, then a 2-second pause; frame numbers carry the schedule.
        a.record(60, 60 * interval);
        assert_eq!(a.due_ns(61), Some(61 * interval));
        a.record(61, 61 * interval + 2_000 * MS);
        a.record(62, 62 * interval + 2_000 * MS);
        let due = a.due_ns(63).unwrap() as i64;
        assert!(
            (due - (63 * interval + 2_000 * MS) as i64).abs() < 100_000,
            "{due}"
        );
    }
}
