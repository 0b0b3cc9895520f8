//! Verifying producer and consumer loops: the producer fills each frame on the GPU with its
//! frame number's pattern, the consumer probes every frame it receives on the GPU and counts
//! corruption. Shared by `geyser demo`, the `ipc_producer`/`ipc_consumer` examples and tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::consumer::{Consumer, ConsumerOptions};
use super::producer::{Producer, ProducerOptions, WriteSlot};
use super::protocol::SyncMode;
use crate::common::{TextureDescriptor, TextureFormat, TextureUsage};
use crate::vulkan::{PatternWriter, ProbeReader, VulkanTextureShareManager};
use crate::{Error, Result};

/// Usages the demo textures need: written by copy (Vulkan) or a render pass (wgpu), probed by
/// copy (Vulkan) or sampled (wgpu).
pub const DEMO_USAGES: [TextureUsage; 4] = [
    TextureUsage::CopyDst,
    TextureUsage::CopySrc,
    TextureUsage::TextureBinding,
    TextureUsage::RenderAttachment,
];

/// The descriptor of demo frames.
pub fn demo_descriptor(width: u32, height: u32, format: TextureFormat) -> TextureDescriptor {
    TextureDescriptor::new(width, height, format, &DEMO_USAGES).with_label("geyser-demo")
}

/// What the producer loop does.
#[derive(Clone, Debug)]
pub struct ProduceConfig {
    /// Endpoint name.
    pub name: String,
    /// Frame size and format.
    pub descriptor: TextureDescriptor,
    /// Frames to present (0: until `stop` returns true).
    pub frames: u64,
    /// Consumers to wait for before the first frame.
    pub wait_consumers: usize,
    /// Longest wait for them.
    pub wait_timeout: Duration,
    /// Producer options (ring size, lossless, sync).
    pub options: ProducerOptions,
    /// Pace frames this far apart (deadline-based), if any.
    pub frame_interval: Option<Duration>,
}

/// Writes `slot`'s frame pattern the way its sync mode needs: in timeline mode the GPU waits
/// for the consumers' releases and signals the slot's ready point, and the host waits for
/// neither; in host mode the write is complete when this returns.
pub fn write_slot(writer: &PatternWriter, slot: &WriteSlot) -> Result<()> {
    match &slot.signal {
        Some(signal) => writer.write_synced(
            &slot.texture,
            slot.frame,
            &slot.waits,
            std::slice::from_ref(signal),
            false,
        ),
        None => writer.write(&slot.texture, slot.frame),
    }
}

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

/// Runs a pattern-writing producer: binds `config.name`, waits for consumers, presents
/// `config.frames` frames (each filled on the GPU with its number's pattern), then shuts down
/// (consumers get a clean end of stream). `progress` is called after each frame.
pub fn run_producer(
    manager: Arc<VulkanTextureShareManager>,
    config: &ProduceConfig,
    mut progress: impl FnMut(u64),
) -> Result<ProduceReport> {
    let producer = Producer::bind(
        &config.name,
        manager.clone(),
        &config.descriptor,
        config.options.clone(),
    )?;
    let writer = PatternWriter::new(&manager, config.descriptor.tight_size())?;
    if config.wait_consumers > 0 {
        producer.wait_for_consumers(config.wait_consumers, config.wait_timeout)?;
    }
    let start = Instant::now();
    let cpu0 = super::negotiate::cpu_time_ns();
    let mut presented = 0;
    while config.frames == 0 || presented < config.frames {
        let slot = producer.acquire(None)?;
        write_slot(&writer, &slot)?;
        producer.present(slot)?;
        presented += 1;
        progress(presented);
        pace(config, start, presented);
    }
    writer.finish()?;
    Ok(produce_report(&producer, presented, start, cpu0))
}

/// Deadline pacing: frame `n` is due at `start + n × interval`, whatever the write took.
pub(crate) fn pace(config: &ProduceConfig, start: Instant, presented: u64) {
    if let Some(interval) = config.frame_interval {
        let due = start + interval.mul_f64(presented as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}

/// The report of a producer loop that presented `presented` frames since `start` (CPU time
/// `cpu0` then).
pub(crate) fn produce_report(
    producer: &Producer,
    presented: u64,
    start: Instant,
    cpu0: u64,
) -> ProduceReport {
    let seconds = start.elapsed().as_secs_f64();
    let stats = producer.stats();
    ProduceReport {
        frames: presented,
        seconds,
        fps: presented as f64 / seconds.max(1e-9),
        sync: format!("{:?}", producer.sync_mode()),
        consumers_connected: stats.connected,
        consumers_dropped: stats.dropped,
        cpu_us_per_frame: (super::negotiate::cpu_time_ns() - cpu0) as f64
            / 1e3
            / presented.max(1) as f64,
    }
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
    /// How frames reached the consumer ([`crate::vulkan::TransferPath`]: `Direct`, or
    /// `HostMemory`/`CpuCopy` through the producer's host-memory ring).
    #[serde(default)]
    pub path: String,
    /// Why the loop ended (`end of stream`, `producer gone: …`, `frame limit`).
    pub end: String,
    /// Whether the producer ended the stream cleanly (as opposed to dying).
    pub clean_end: bool,
    /// CPU time of the consumer process per frame, microseconds (from the first frame on).
    #[serde(default)]
    pub cpu_us_per_frame: f64,
}

/// Percentile `p` (0..=100) of sorted microsecond samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Connects to `name` and probes every frame until the producer ends the stream, dies, or
/// `max_frames` (0 = no limit) frames were received. Corrupted frames are counted, not fatal.
/// `progress` gets the report so far after each frame.
pub fn run_consumer(
    manager: Arc<VulkanTextureShareManager>,
    name: &str,
    options: ConsumerOptions,
    max_frames: u64,
    idle_timeout: Duration,
    mut progress: impl FnMut(&ConsumeReport),
) -> Result<ConsumeReport> {
    let mut consumer = Consumer::connect_with(name, manager.clone(), options)?;
    let probe = ProbeReader::new(&manager)?;
    let mut report = ConsumeReport {
        sync: format!("{:?}", consumer.sync_mode()),
        path: format!("{:?}", consumer.transfer_path()),
        ..Default::default()
    };
    let mut stats = ConsumeStats::new(max_frames);
    while !report.at_limit(max_frames) {
        let Some(mut frame) = report.frame_or_end(consumer.next_frame(Some(idle_timeout)))? else {
            break;
        };
        stats.record(frame.latency(), frame.age());
        let (number, slot, texture) = (frame.number(), frame.slot(), frame.texture().clone());
        let result = match (frame.wait_point(), frame.release_point()) {
            // Timeline mode: the GPU waits for the producer's write and signals our release;
            // the frame is released as soon as the probe is submitted.
            (Some(wait), Some(signal)) => {
                let mut frame = Some(frame);
                probe.check_synced(&texture, number, &[wait], &[signal], || {
                    match frame.take() {
                        Some(f) => f.release(),
                        None => Ok(()),
                    }
                })?
            }
            _ => {
                let r = probe.check(&texture, number)?;
                drop(frame);
                r
            }
        };
        report.probed(number, slot, &result, consumer.counters());
        progress(&report);
    }
    stats.finish(&mut report, consumer.counters());
    Ok(report)
}

impl ConsumeReport {
    /// Whether `max_frames` (0: no limit) frames were received; then the loop ends cleanly.
    pub(crate) fn at_limit(&mut self, max_frames: u64) -> bool {
        let done = max_frames > 0 && self.frames >= max_frames;
        if done {
            self.end = "frame limit".into();
            self.clean_end = true;
        }
        done
    }

    /// The next frame, or `None` when the producer is gone (recording why and whether it
    /// ended the stream cleanly). Other errors are returned.
    pub(crate) fn frame_or_end<F>(&mut self, next: Result<F>) -> Result<Option<F>> {
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
    pub(crate) fn probed(
        &mut self,
        number: u64,
        slot: usize,
        result: &crate::vulkan::ProbeResult,
        counters: super::consumer::ConsumerCounters,
    ) {
        if !result.ok() {
            self.corrupted += 1;
            tracing::error!(
                frame = number,
                slot,
                matched = result.matched,
                "corrupted frame: probe word {:#010x}, expected {:#010x}",
                result.first_word,
                crate::vulkan::frame_word(number)
            );
        }
        self.frames += 1;
        self.skipped = counters.skipped;
        self.superseded = counters.superseded;
    }
}

/// Latency and timing samples of a consumer loop, turned into a [`ConsumeReport`] at the end.
pub(crate) struct ConsumeStats {
    latencies: Vec<f64>,
    ages: Vec<f64>,
    first: Option<Instant>,
    cpu0: u64,
}

impl ConsumeStats {
    /// Room for `max_frames` samples (0: unbounded run), so recording does not allocate.
    pub(crate) fn new(max_frames: u64) -> Self {
        let capacity = if max_frames > 0 {
            max_frames as usize
        } else {
            4096
        };
        Self {
            latencies: Vec::with_capacity(capacity),
            ages: Vec::with_capacity(capacity),
            first: None,
            cpu0: 0,
        }
    }

    /// Records one received frame (starting the clocks at the first).
    pub(crate) fn record(&mut self, latency: Duration, age: Duration) {
        if self.first.is_none() {
            self.first = Some(Instant::now());
            self.cpu0 = super::negotiate::cpu_time_ns();
        }
        self.latencies.push(latency.as_secs_f64() * 1e6);
        self.ages.push(age.as_secs_f64() * 1e6);
    }

    /// Fills the report's timing fields and the consumer's counters.
    pub(crate) fn finish(
        mut self,
        report: &mut ConsumeReport,
        c: super::consumer::ConsumerCounters,
    ) {
        report.skipped = c.skipped;
        report.superseded = c.superseded;
        report.seconds = self.first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(0.0);
        report.fps = if report.seconds > 0.0 {
            report.frames as f64 / report.seconds
        } else {
            0.0
        };
        report.cpu_us_per_frame = (super::negotiate::cpu_time_ns() - self.cpu0) as f64
            / 1e3
            / report.frames.max(1) as f64;
        self.latencies.sort_by(|a, b| a.total_cmp(b));
        report.latency_p50_us = percentile(&self.latencies, 50.0);
        report.latency_p99_us = percentile(&self.latencies, 99.0);
        self.ages.sort_by(|a, b| a.total_cmp(b));
        report.age_p50_us = percentile(&self.ages, 50.0);
        report.age_p99_us = percentile(&self.ages, 99.0);
    }
}

/// Parses `WxH`.
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    let bad = || Error::InvalidArgument {
        what: "size",
        reason: format!("`{s}` is not WIDTHxHEIGHT"),
    };
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    ))
}

/// Parses a sync mode name: `auto` (None), `host`, `binary`, `timeline`.
pub fn parse_sync(s: &str) -> Result<Option<SyncMode>> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(None),
        "host" => Ok(Some(SyncMode::Host)),
        "binary" => Ok(Some(SyncMode::BinarySemaphore)),
        "timeline" => Ok(Some(SyncMode::Timeline)),
        _ => Err(Error::InvalidArgument {
            what: "sync mode",
            reason: format!("`{s}`; use auto, host, binary or timeline"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_parsers() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(parse_size("1920x1080").unwrap(), (1920, 1080));
        assert!(parse_size("1920").is_err());
        assert_eq!(parse_sync("auto").unwrap(), None);
        assert!(parse_sync("fast").is_err());
    }
}
