//! What the demo and bench loops measure: [`ProduceReport`] and [`ConsumeReport`] (the JSON
//! the CLI and examples print), and [`ConsumeStats`], the samples a consumer loop records.

use std::time::{Duration, Instant};

use geyser::ipc::clock::cpu_time_ns;
use geyser::ipc::ConsumerCounters;
use geyser::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::pattern::{frame_word, ProbeResult};

/// What the producer loop measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProduceReport {
    /// Frames presented.
    pub frames: u64,
    /// Seconds from the first acquire to the last present.
    pub seconds: f64,
    /// Frames per second.
    pub fps: f64,
    /// Sync mode offered.
    pub sync: String,
    /// Consumers that connected over the run.
    pub consumers_connected: u64,
    /// Consumers dropped over the run.
    pub consumers_dropped: u64,
    /// CPU time of the producer process per frame, microseconds (from the first frame on).
    #[serde(default)]
    pub cpu_us_per_frame: f64,
}

/// What the consumer loop measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConsumeReport {
    /// Frames received and probed.
    pub frames: u64,
    /// Frames whose probes did not match their number's pattern. Must be 0.
    pub corrupted: u64,
    /// Frames presented that this consumer never received (it was busy).
    pub skipped: u64,
    /// Frames received but superseded by a newer one before being looked at.
    pub superseded: u64,
    /// Seconds from the first frame to the last.
    pub seconds: f64,
    /// Frames per second.
    pub fps: f64,
    /// Handoff latency (producer sends the frame message → consumer receives it), median,
    /// microseconds.
    pub latency_p50_us: f64,
    /// 99th percentile, microseconds.
    pub latency_p99_us: f64,
    /// Frame age at receipt (producer present → consumer receive), median, microseconds.
    pub age_p50_us: f64,
    /// 99th percentile, microseconds.
    pub age_p99_us: f64,
    /// Negotiated sync mode.
    pub sync: String,
    /// How frames reached the consumer ([`geyser::vulkan::TransferPath`]: `Direct`, or
    /// `HostMemory`/`CpuCopy` through the producer's host ring).
    #[serde(default)]
    pub path: String,
    /// Why the loop ended (`end of stream`, `producer gone: …`, `frame limit`).
    pub end: String,
    /// Whether the producer ended the stream cleanly (as opposed to dying).
    pub clean_end: bool,
    /// CPU time of the consumer process per frame, microseconds (from the first frame on).
    #[serde(default)]
    pub cpu_us_per_frame: f64,
    /// The longest time between two frames received (the stream's worst stall), microseconds.
    #[serde(default)]
    pub max_gap_us: f64,
}

/// Percentile `p` (0..=100) of sorted microsecond samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

impl ConsumeReport {
    /// One line for people: frames, skips, corruption, fps, latency, sync and how it ended.
    pub fn summary(&self) -> String {
        format!(
            "{} frames ({} skipped, {} corrupted) in {:.2} s: {:.1} fps, latency p50 {:.0} µs p99 {:.0} µs, sync {}; {}",
            self.frames,
            self.skipped,
            self.corrupted,
            self.seconds,
            self.fps,
            self.latency_p50_us,
            self.latency_p99_us,
            self.sync,
            self.end
        )
    }

    /// Whether frames arrived and none was corrupted.
    pub fn passed(&self) -> bool {
        self.corrupted == 0 && self.frames > 0
    }

    /// Whether `max_frames` (0: no limit) frames were received; then the loop ends cleanly.
    pub fn at_limit(&mut self, max_frames: u64) -> bool {
        let done = max_frames > 0 && self.frames >= max_frames;
        if done {
            self.end = "frame limit".into();
            self.clean_end = true;
        }
        done
    }

    /// The next frame, or `None` when the producer is gone (recording why and whether it
    /// ended the stream cleanly). Other errors are returned.
    pub fn frame_or_end<F>(&mut self, next: Result<F>) -> Result<Option<F>> {
        match next {
            Ok(frame) => Ok(Some(frame)),
            Err(Error::PeerGone(why)) => {
                self.clean_end = why.contains("closed the stream");
                self.end = format!("producer gone: {why}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Counts one probed frame (logging it when corrupted) and the consumer's counters.
    pub fn probed(
        &mut self,
        number: u64,
        slot: usize,
        result: &ProbeResult,
        counters: ConsumerCounters,
    ) {
        self.checked(number, slot, result.ok(), counters, || {
            format!(
                "{} of {} probes matched: probe word {:#010x}, expected {:#010x}",
                result.matched,
                result.probes,
                result.first_word,
                frame_word(number)
            )
        });
    }

    /// Counts one checked frame (logging `why` when it was wrong) and the consumer's counters.
    pub fn checked(
        &mut self,
        number: u64,
        slot: usize,
        ok: bool,
        counters: ConsumerCounters,
        why: impl FnOnce() -> String,
    ) {
        if !ok {
            self.corrupted += 1;
            tracing::error!(frame = number, slot, "corrupted frame: {}", why());
        }
        self.frames += 1;
        self.skipped = counters.skipped;
        self.superseded = counters.superseded;
    }
}

/// Latency and timing samples of a consumer loop, turned into a [`ConsumeReport`] at the end.
pub struct ConsumeStats {
    latencies: Vec<f64>,
    ages: Vec<f64>,
    first: Option<Instant>,
    last: Option<Instant>,
    max_gap: Duration,
    cpu0: u64,
}

impl ConsumeStats {
    /// Room for `max_frames` samples (0: unbounded run), so recording does not allocate.
    pub fn new(max_frames: u64) -> Self {
        let capacity = if max_frames > 0 {
            max_frames as usize
        } else {
            4096
        };
        Self {
            latencies: Vec::with_capacity(capacity),
            ages: Vec::with_capacity(capacity),
            first: None,
            last: None,
            max_gap: Duration::ZERO,
            cpu0: 0,
        }
    }

    /// Records one received frame (starting the clocks at the first).
    pub fn record(&mut self, latency: Duration, age: Duration) {
        let now = Instant::now();
        if self.first.is_none() {
            self.first = Some(now);
            self.cpu0 = cpu_time_ns();
        }
        if let Some(last) = self.last.replace(now) {
            self.max_gap = self.max_gap.max(now - last);
        }
        self.latencies.push(latency.as_secs_f64() * 1e6);
        self.ages.push(age.as_secs_f64() * 1e6);
    }

    /// Fills the report's timing fields and the consumer's counters.
    pub fn finish(mut self, report: &mut ConsumeReport, c: ConsumerCounters) {
        report.skipped = c.skipped;
        report.superseded = c.superseded;
        report.seconds = self.first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(0.0);
        report.max_gap_us = self.max_gap.as_secs_f64() * 1e6;
        report.fps = if report.seconds > 0.0 {
            report.frames as f64 / report.seconds
        } else {
            0.0
        };
        report.cpu_us_per_frame =
            (cpu_time_ns() - self.cpu0) as f64 / 1e3 / report.frames.max(1) as f64;
        self.latencies.sort_by(|a, b| a.total_cmp(b));
        report.latency_p50_us = percentile(&self.latencies, 50.0);
        report.latency_p99_us = percentile(&self.latencies, 99.0);
        self.ages.sort_by(|a, b| a.total_cmp(b));
        report.age_p50_us = percentile(&self.ages, 50.0);
        report.age_p99_us = percentile(&self.ages, 99.0);
    }
}

/// The `RESULT {json}` line the examples end with, for scripts.
pub fn result_line<T: Serialize>(report: &T) -> String {
    format!(
        "RESULT {}",
        serde_json::to_string(report).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
