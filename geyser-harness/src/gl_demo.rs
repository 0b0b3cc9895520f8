//! The verifying demo loops of [`crate::demo`] with OpenGL on one side: a GL consumer that
//! reads every frame's probe texels back and checks them, and a GL producer that fills each
//! frame with its pattern. Reports are the Vulkan loops' types, so results compare directly.

use std::time::{Duration, Instant};

use geyser::gl::{GlConsumer, GlContext, GlProducer};
use geyser::ipc::clock::cpu_time_ns;
use geyser::ipc::ConsumerOptions;
use geyser::Result;

use crate::demo::{pace, produce_report, ProduceConfig};
use crate::gl_pattern::{GlPatternWriter, GlProbe};
use crate::report::{ConsumeReport, ConsumeStats, ProduceReport};

/// Connects a GL consumer on `gl` (current on this thread) to `name` and checks every frame
/// it receives until the producer ends the stream, dies, or `max_frames` (0 = no limit)
/// frames arrived. Corrupted frames are counted, not fatal. The report's `sync` says `+gl-sem`
/// when GL waited on the GPU through imported semaphores.
pub fn run_gl_consumer(
    gl: &GlContext,
    name: &str,
    options: ConsumerOptions,
    max_frames: u64,
    idle_timeout: Duration,
    mut progress: impl FnMut(&ConsumeReport),
) -> Result<ConsumeReport> {
    let mut consumer = GlConsumer::connect(name, gl, options)?;
    let probe = GlProbe;
    let mut report = ConsumeReport {
        sync: format!(
            "{:?}{}",
            consumer.consumer().sync_mode(),
            if consumer.gpu_sync() { "+gl-sem" } else { "" }
        ),
        path: format!("{:?}", consumer.consumer().transfer_path()),
        ..Default::default()
    };
    let mut stats = ConsumeStats::new(max_frames);
    while !report.at_limit(max_frames) {
        let Some(frame) = report.frame_or_end(consumer.next_frame(Some(idle_timeout)))? else {
            break;
        };
        stats.record(frame.frame().latency(), frame.frame().age());
        let (number, slot) = (frame.frame().number(), frame.frame().slot());
        frame.begin()?;
        let result = probe.check(frame.texture(), number)?;
        frame.end()?;
        let counters = consumer.consumer().counters();
        report.probed(number, slot, &result, counters);
        progress(&report);
    }
    stats.finish(&mut report, consumer.consumer().counters());
    Ok(report)
}

/// A GL producer on `gl`: binds `config.name`, waits for consumers, fills `config.frames`
/// frames with their patterns through GL, then shuts down cleanly.
pub fn run_gl_producer(
    gl: &GlContext,
    config: &ProduceConfig,
    mut progress: impl FnMut(u64),
) -> Result<ProduceReport> {
    let mut producer =
        GlProducer::bind(&config.name, gl, &config.descriptor, config.options.clone())?;
    if config.wait_consumers > 0 {
        producer
            .producer()
            .wait_for_consumers(config.wait_consumers, config.wait_timeout)?;
    }
    let mut writer = GlPatternWriter::default();
    let start = Instant::now();
    let cpu0 = cpu_time_ns();
    let mut presented = 0;
    while config.frames == 0 || presented < config.frames {
        let slot = producer.acquire(None)?;
        slot.begin()?;
        writer.write(slot.texture(), slot.frame())?;
        slot.present()?;
        presented += 1;
        progress(presented);
        pace(config, start, presented);
    }
    Ok(produce_report(producer.producer(), presented, start, cpu0))
}
