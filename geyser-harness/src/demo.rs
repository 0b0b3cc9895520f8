//! Verifying producer and consumer loops: the producer fills each frame on the GPU with its
//! frame number's pattern, the consumer probes every frame it receives on the GPU and counts
//! corruption. Shared by `geyser demo`, the `ipc_producer`/`ipc_consumer` examples and tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
use geyser::ipc::clock::cpu_time_ns;
use geyser::ipc::{Consumer, ConsumerOptions, Producer, ProducerOptions, WriteSlot};
use geyser::vulkan::{TimelinePoint, VulkanTexture, VulkanTextureShareManager};
use geyser::Result;

use crate::pattern::{frame_word, PatternWriter, ProbeReader};
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
}

/// Writes `slot`'s frame pattern the way its sync mode needs: in timeline mode the GPU waits
/// for the consumers' releases and signals the slot's ready point, and the host waits for
/// neither; in host mode the write is complete when this returns.
pub fn write_slot(writer: &PatternWriter, slot: &WriteSlot) -> Result<()> {
    match &slot.signal {
        Some(signal) => writer.write_synced(
            &slot.texture,
            slot.id.frame,
            &slot.waits,
            std::slice::from_ref(signal),
            false,
        ),
        None => writer.write(&slot.texture, slot.id.frame),
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
    let writer = PatternWriter::new(&manager, config.descriptor.tight_size())?;
    if config.wait_consumers > 0 {
        producer.wait_for_consumers(config.wait_consumers, config.wait_timeout)?;
    }
    let start = Instant::now();
    let cpu0 = cpu_time_ns();
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
    let probe = ProbeReader::new(&manager)?;
    consume(
        manager,
        name,
        options,
        max_frames,
        idle_timeout,
        progress,
        |frame| {
            let result = probe.check_synced(
                frame.texture,
                frame.number,
                frame.waits,
                frame.signals,
                frame.submitted,
            )?;
            let number = frame.number;
            Ok(match result.ok() {
                true => Ok(()),
                false => Err(format!(
                    "{result:?}, expected word {:#010x}",
                    frame_word(number)
                )),
            })
        },
    )
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
        report.checked(number, slot, ok, consumer.counters(), || {
            checked.err().unwrap_or_default()
        });
        progress(&report);
    }
    stats.finish(&mut report, consumer.counters());
    Ok(report)
}
