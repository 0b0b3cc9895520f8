//! Verifying producer and consumer loops: the producer fills each frame on the GPU with its
//! frame number's pattern, the consumer probes every frame it receives on the GPU and counts
//! corruption. Shared by `geyser demo`, the `ipc_producer`/`ipc_consumer` examples and tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
use geyser::ipc::clock::cpu_time_ns;
use geyser::ipc::{Consumer, ConsumerOptions, Producer, ProducerOptions, SyncMode, WriteSlot};
use geyser::vulkan::ash::vk;
use geyser::vulkan::{TimelinePoint, VulkanTexture, VulkanTextureShareManager};
use geyser::Result;

use crate::gpu_time::FrameStamps;
use crate::pattern::PatternWriter;
use crate::probe_ring::{Checked, ProbeRing};
use crate::report::{ConsumeReport, ConsumeStats, ProduceReport};
use crate::texels::{TexelReader, Texels};

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
    /// Stamp when each frame's write finished on the GPU (the report's `gpu_stamps`), where
    /// the device can put its timestamps on the host clock.
    pub timestamps: bool,
    /// Draw the demo picture (what people look at) instead of the solid pattern (what checks
    /// of whole frames compare with); the probes accept both.
    pub picture: bool,
}

/// Writes `slot`'s frame pattern the way its sync mode needs: in timeline mode the GPU waits
/// for the consumers' releases and signals the slot's ready point, and the host waits for
/// neither; in host mode the write is complete when this returns.
pub fn write_slot(writer: &PatternWriter, slot: &WriteSlot) -> Result<()> {
    write_stamped(writer, slot, None)
}

/// [`write_slot`], stamping when the write finished on the GPU into `stamps`.
pub fn write_stamped(
    writer: &PatternWriter,
    slot: &WriteSlot,
    mut stamps: Option<&mut FrameStamps>,
) -> Result<()> {
    let frame = slot.id.frame;
    let signals = slot.signal.as_slice();
    let block = slot.signal.is_none();
    let last = write_end_stamp(stamps.as_deref_mut(), frame);
    writer.write_with(&slot.texture, frame, &slot.waits, signals, block, last)?;
    write_stamped_done(stamps, block)
}

/// Timestamp queries of a stamped writer: more than its writes in flight.
pub const STAMP_QUERIES: u32 = 2 * PatternWriter::IN_FLIGHT as u32 + 2;

/// The commands a stamped [`PatternWriter::write_with`] ends with: frame `frame`'s timestamp,
/// written once the write finished, into query `frame % STAMP_QUERIES`. Follow the write with
/// [`write_stamped_done`].
pub fn write_end_stamp(
    stamps: Option<&mut FrameStamps>,
    frame: u64,
) -> impl FnOnce(&geyser::vulkan::ash::Device, vk::CommandBuffer) + '_ {
    move |device, cmd| {
        if let Some(s) = stamps {
            // SAFETY: recording on the writer's command buffer; the ring has more queries
            // than writes in flight, and each is read (`write_stamped_done`) once its write
            // finished.
            unsafe {
                s.record(
                    device,
                    cmd,
                    frame,
                    (frame % u64::from(STAMP_QUERIES)) as u32,
                    vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                )
            }
        }
    }
}

/// After a stamped write: reads the stamps of the writes known to have finished (all of them
/// after a blocking write; all but the writer's [`PatternWriter::IN_FLIGHT`] newest after a
/// non-blocking one).
pub fn write_stamped_done(stamps: Option<&mut FrameStamps>, block: bool) -> Result<()> {
    match stamps {
        Some(s) => s.finished(if block { 0 } else { PatternWriter::IN_FLIGHT }),
        None => Ok(()),
    }
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
    let size = config.descriptor.tight_size();
    let writer = match config.picture {
        true => PatternWriter::picture(&manager, size)?,
        false => PatternWriter::new(&manager, size)?,
    };
    let mut stamps = match config.timestamps {
        true => FrameStamps::new(&manager, STAMP_QUERIES, config.frames as usize)?,
        false => None,
    };
    if config.wait_consumers > 0 {
        producer.wait_for_consumers(config.wait_consumers, config.wait_timeout)?;
    }
    let start = Instant::now();
    let cpu0 = cpu_time_ns();
    let mut presented = 0;
    while config.frames == 0 || presented < config.frames {
        let slot = producer.acquire(None)?;
        write_stamped(&writer, &slot, stamps.as_mut())?;
        producer.present(slot)?;
        presented += 1;
        progress(presented);
        pace(config, start, presented);
    }
    writer.finish()?;
    let mut report = produce_report(&producer, presented, start, cpu0);
    if let Some(mut s) = stamps {
        s.finished(0)?;
        (report.gpu_stamps, report.gpu_deviation_ns) = s.into_host_ns()?;
    }
    Ok(report)
}

/// Deadline pacing: frame `n` is due at `start + n × interval`, whatever the write took.
pub fn pace(config: &ProduceConfig, start: Instant, presented: u64) {
    if let Some(interval) = config.frame_interval {
        let due = start + interval.mul_f64(presented as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}

/// The report of a producer loop that presented `presented` frames since `start` (CPU time
/// `cpu0` then).
pub fn produce_report(
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
        cpu_us_per_frame: (cpu_time_ns() - cpu0) as f64 / 1e3 / presented.max(1) as f64,
        ..Default::default()
    }
}

/// How a consumer loop checks frames.
#[derive(Clone, Debug)]
pub struct ConsumeLoop {
    /// Stop after this many frames (0: until the stream ends).
    pub max_frames: u64,
    /// Longest wait for one frame.
    pub idle_timeout: Duration,
    /// Probes in flight (timeline mode; host mode checks each frame before releasing it):
    /// 1 waits for each frame's check before taking the next, more check a few frames later.
    pub pipeline: usize,
    /// Submit each frame's probe before the frame arrives (`Consumer::expect_next`), where the
    /// stream allows it (timeline sync, lossless, a producer with ordered slots).
    pub presubmit: bool,
    /// Stamp when the GPU started reading each frame (the report's `gpu_stamps`).
    pub timestamps: bool,
}

impl ConsumeLoop {
    /// Checks every frame before the next one, no stamps: what the examples and tests do.
    pub fn simple(max_frames: u64, idle_timeout: Duration) -> Self {
        Self {
            max_frames,
            idle_timeout,
            pipeline: 1,
            presubmit: false,
            timestamps: false,
        }
    }
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
    progress: impl FnMut(&ConsumeReport),
) -> Result<ConsumeReport> {
    let config = ConsumeLoop::simple(max_frames, idle_timeout);
    run_consumer_with(manager, name, options, &config, progress)
}

/// [`run_consumer`] with the checking of [`ConsumeLoop`]: pipelined probes, pre-submitted
/// probes, GPU timestamps. Every frame received is checked before this returns.
pub fn run_consumer_with(
    manager: Arc<VulkanTextureShareManager>,
    name: &str,
    options: ConsumerOptions,
    config: &ConsumeLoop,
    mut progress: impl FnMut(&ConsumeReport),
) -> Result<ConsumeReport> {
    let mut consumer = Consumer::connect_with(name, manager.clone(), options)?;
    let timeline = consumer.sync_mode() == SyncMode::Timeline;
    let depth = if timeline { config.pipeline.max(1) } else { 1 };
    let capacity = if config.max_frames > 0 {
        config.max_frames as usize
    } else {
        1 << 16
    };
    let stamps = config.timestamps.then_some(capacity);
    let mut probes = ProbeRing::new(&manager, depth, stamps)?;
    let mut report = ConsumeReport {
        sync: format!("{:?}", consumer.sync_mode()),
        path: format!("{:?}", consumer.transfer_path()),
        ..Default::default()
    };
    let mut stats = ConsumeStats::new(config.max_frames);
    let mut presubmit = config.presubmit && timeline;
    // The frame whose probe went ahead of it and has not arrived yet, and probes that went
    // ahead of frames that never came (they read nothing of ours: ignored).
    let mut ahead: Option<u64> = None;
    let mut ignored: Vec<u64> = Vec::with_capacity(4);
    let record = |report: &mut ConsumeReport, ignored: &[u64], done: Option<Checked>| {
        if let Some((frame, slot, result)) = done.filter(|d| !ignored.contains(&d.0)) {
            report.checked(frame, slot, &result);
        }
    };
    let mut received = 0u64;
    loop {
        if config.max_frames > 0 && received >= config.max_frames {
            report.end = "frame limit".into();
            report.clean_end = true;
            break;
        }
        if presubmit && ahead.is_none() && received > 0 {
            match consumer.expect_next() {
                Ok(next) => {
                    let (wait, release) = (next.wait_point, next.release_point);
                    let (slot, frame) = (next.id.slot_index(), next.id.frame);
                    let done = probes.submit(&next.texture, frame, slot, &[wait], &[release])?;
                    record(&mut report, &ignored, done);
                    ahead = Some(frame);
                }
                Err(e @ geyser::Error::Unsupported { .. }) => {
                    tracing::warn!("probes go after their frames: {e}");
                    presubmit = false;
                }
                // The stream has ended: `next_frame` says so below.
                Err(geyser::Error::PeerGone(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let Some(mut frame) =
            report.frame_or_end(consumer.next_frame(Some(config.idle_timeout)))?
        else {
            break;
        };
        received += 1;
        stats.record(frame.latency(), frame.age());
        stats.record_wake(frame.wake_times());
        let (number, slot, texture) = (frame.number(), frame.slot(), frame.texture().clone());
        if let Some(a) = ahead.filter(|a| *a <= number && !frame.was_expected()) {
            // Another frame came than the one probed ahead (frames were skipped).
            ignored.push(a);
            ahead = None;
        }
        if frame.was_expected() {
            // Its probe is on the GPU already, waiting for the producer's write.
            report.presubmitted += 1;
            ahead = None;
            drop(frame);
        } else if let (Some(wait), Some(signal)) = (frame.wait_point(), frame.release_point()) {
            // Timeline mode: the GPU waits for the producer's write and signals our release;
            // the frame is released as soon as the probe is submitted.
            let done = probes.submit(&texture, number, slot, &[wait], &[signal])?;
            frame.release()?;
            record(&mut report, &ignored, done);
        } else {
            // Host mode: the probe must finish before the slot goes back.
            let done = probes.submit(&texture, number, slot, &[], &[])?;
            record(&mut report, &ignored, done);
            while probes.in_flight() > 0 {
                let done = probes.complete_oldest()?;
                record(&mut report, &ignored, done);
            }
            drop(frame);
        }
        report.skipped = consumer.counters().skipped;
        report.superseded = consumer.counters().superseded;
        progress(&report);
    }
    // A probe still waiting for a frame the stream ended before: the consumer signals its
    // wait when it goes (`Consumer::expect_next`), so it finishes; its result is ignored.
    ignored.extend(ahead);
    let counters = consumer.counters();
    drop(consumer);
    while probes.in_flight() > 0 {
        let done = probes.complete_oldest()?;
        record(&mut report, &ignored, done);
    }
    stats.finish(&mut report, counters);
    if let Some((stamps, deviation)) = probes.into_stamps()? {
        report.gpu_stamps = stamps
            .into_iter()
            .filter(|(f, _)| !ignored.contains(f))
            .collect();
        report.gpu_deviation_ns = deviation;
    }
    Ok(report)
}

/// Like [`run_consumer`] for producers whose frames are not the test pattern but whose
/// content is known (e.g. a rendered scene): reads the texels at `points` of every frame and
/// counts the frame as corrupted when `check(frame number, texels)` returns an error (why).
pub fn run_texel_consumer(
    manager: Arc<VulkanTextureShareManager>,
    name: &str,
    options: ConsumerOptions,
    max_frames: u64,
    idle_timeout: Duration,
    points: &[(u32, u32)],
    mut check: impl FnMut(u64, &Texels) -> std::result::Result<(), String>,
) -> Result<ConsumeReport> {
    let reader = TexelReader::new(&manager)?;
    consume(
        manager,
        name,
        options,
        max_frames,
        idle_timeout,
        |_| {},
        |frame| {
            let texels = reader.read(
                frame.texture,
                points,
                frame.waits,
                frame.signals,
                frame.submitted,
            )?;
            Ok(check(frame.number, &texels))
        },
    )
}

/// One received frame, as a consumer loop's check sees it: read `texture` on the GPU waiting
/// for `waits` and signaling `signals`, and call `submitted` right after submitting (it
/// releases the frame in timeline mode).
struct ReceivedFrame<'a> {
    texture: &'a VulkanTexture,
    number: u64,
    waits: &'a [TimelinePoint],
    signals: &'a [TimelinePoint],
    submitted: &'a mut dyn FnMut() -> Result<()>,
}

/// The consumer loop: every frame is checked by `check` (`Err(why)` when it is wrong). In
/// steady state it allocates nothing.
fn consume(
    manager: Arc<VulkanTextureShareManager>,
    name: &str,
    options: ConsumerOptions,
    max_frames: u64,
    idle_timeout: Duration,
    mut progress: impl FnMut(&ConsumeReport),
    mut check: impl FnMut(ReceivedFrame<'_>) -> Result<std::result::Result<(), String>>,
) -> Result<ConsumeReport> {
    let mut consumer = Consumer::connect_with(name, manager, options)?;
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
        // Timeline mode: the GPU waits for the producer's write and signals our release, and
        // the frame is released as soon as the read is submitted. Host mode: none of these,
        // and the frame is kept until the read is done (it is dropped below).
        let (wait, signal) = (frame.wait_point(), frame.release_point());
        let timeline = signal.is_some();
        let mut frame = Some(frame);
        let mut release = || match frame.take_if(|_| timeline) {
            Some(f) => f.release(),
            None => Ok(()),
        };
        let checked = check(ReceivedFrame {
            texture: &texture,
            number,
            waits: wait.as_slice(),
            signals: signal.as_slice(),
            submitted: &mut release,
        })?;
        drop(frame);
        let ok = checked.is_ok();
        report.checked_with(number, slot, ok, || checked.err().unwrap_or_default());
        report.counters(consumer.counters());
        progress(&report);
    }
    stats.finish(&mut report, consumer.counters());
    Ok(report)
}
