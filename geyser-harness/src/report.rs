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
    /// With GPU timestamps: when each frame's write finished on the GPU (frame,
    /// `CLOCK_MONOTONIC` ns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_stamps: Vec<(u64, u64)>,
    /// The largest deviation of the GPU clock calibrations behind `gpu_stamps`, ns.
    #[serde(default)]
    pub gpu_deviation_ns: u64,
    /// The copy paths of the benchmark ((c), (g)): CPU time in the frame's memcpy between
    /// mapped GPU memory and the shared ring, per frame, µs (0 elsewhere).
    #[serde(default)]
    pub memcpy_us_per_frame: f64,
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
    /// Where the handoff went, part one: producer sent the message → this consumer's wait
    /// returned (the wake-up), median µs. Part two is `read_*`.
    #[serde(default)]
    pub wake_p50_us: f64,
    /// 99th percentile of the wake-up, µs.
    #[serde(default)]
    pub wake_p99_us: f64,
    /// Part two: the wait returned → the message was read, median µs.
    #[serde(default)]
    pub read_p50_us: f64,
    /// 99th percentile, µs.
    #[serde(default)]
    pub read_p99_us: f64,
    /// Time spent polling without sleeping (`ConsumerOptions::spin`) per frame, µs.
    #[serde(default)]
    pub spin_us_per_frame: f64,
    /// Frames whose GPU work was submitted before they arrived (`Consumer::expect_next`).
    #[serde(default)]
    pub presubmitted: u64,
    /// With GPU timestamps: when the GPU started reading each frame (frame,
    /// `CLOCK_MONOTONIC` ns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_stamps: Vec<(u64, u64)>,
    /// The largest deviation of the GPU clock calibrations behind `gpu_stamps`, ns.
    #[serde(default)]
    pub gpu_deviation_ns: u64,
    /// The copy paths of the benchmark ((c), (g)): CPU time in the frame's memcpy between
    /// mapped GPU memory and the shared ring, per frame, µs (0 elsewhere).
    #[serde(default)]
    pub memcpy_us_per_frame: f64,
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
        self.checked(number, slot, result);
        self.counters(counters);
    }

    /// Counts one probed frame, logging it when corrupted.
    pub fn checked(&mut self, number: u64, slot: usize, result: &ProbeResult) {
        self.checked_with(number, slot, result.ok(), || {
            format!(
                "{} of {} probes matched: probe word {:#010x}, expected {:#010x}",
                result.matched,
                result.probes,
                result.first_word,
                frame_word(number)
            )
        });
    }

    /// Counts one frame checked some other way, logging `why` when it was wrong.
    pub fn checked_with(
        &mut self,
        number: u64,
        slot: usize,
        ok: bool,
        why: impl FnOnce() -> String,
    ) {
        if !ok {
            self.corrupted += 1;
            tracing::error!(frame = number, slot, "corrupted frame: {}", why());
        }
        self.frames += 1;
    }

    /// Takes the consumer's skip counters.
    pub fn counters(&mut self, counters: ConsumerCounters) {
        self.skipped = counters.skipped;
        self.superseded = counters.superseded;
    }
}

/// Latency and timing samples of a consumer loop, turned into a [`ConsumeReport`] at the end.
pub struct ConsumeStats {
    latencies: Vec<f64>,
    ages: Vec<f64>,
    wakes: Vec<f64>,
    reads: Vec<f64>,
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
            wakes: Vec::with_capacity(capacity),
            reads: Vec::with_capacity(capacity),
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

    /// Records where one frame's handoff went (`Frame::wake_times`: sent, woke, read; ns).
    pub fn record_wake(&mut self, (sent, woke, read): (u64, u64, u64)) {
        self.wakes.push(woke.saturating_sub(sent) as f64 / 1e3);
        self.reads.push(read.saturating_sub(woke) as f64 / 1e3);
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
        for v in [&mut self.wakes, &mut self.reads] {
            v.sort_by(|a, b| a.total_cmp(b));
        }
        report.wake_p50_us = percentile(&self.wakes, 50.0);
        report.wake_p99_us = percentile(&self.wakes, 99.0);
        report.read_p50_us = percentile(&self.reads, 50.0);
        report.read_p99_us = percentile(&self.reads, 99.0);
        report.spin_us_per_frame = c.spin_ns as f64 / 1e3 / report.frames.max(1) as f64;
    }
}

/// GPU handoff of one consumer: producer's write finished → consumer's read started, per
/// frame both stamped, on the host clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuHandoff {
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Frames both sides stamped.
    pub frames: usize,
    /// The larger calibration deviation of the two sides' clocks, µs (each side maps its GPU
    /// ticks to `CLOCK_MONOTONIC` within its deviation).
    pub deviation_us: f64,
}

impl GpuHandoff {
    /// From the producer's and a consumer's stamps; `None` when either side has none.
    pub fn between(p: &ProduceReport, c: &ConsumeReport) -> Option<Self> {
        let h = crate::gpu_time::handoffs_us(&p.gpu_stamps, &c.gpu_stamps);
        (!h.is_empty()).then(|| GpuHandoff {
            p50_us: percentile(&h, 50.0),
            p99_us: percentile(&h, 99.0),
            frames: h.len(),
            deviation_us: p.gpu_deviation_ns.max(c.gpu_deviation_ns) as f64 / 1e3,
        })
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
