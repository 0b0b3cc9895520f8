//! The verifying demo loops of [`crate::demo`], with wgpu on one side: a wgpu consumer
//! that samples every frame in a compute pass and checks it, and a wgpu producer that renders
//! each frame's pattern. Reports are the Vulkan loops' types, so results compare directly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use geyser::ipc::clock::cpu_time_ns;
use geyser::ipc::ConsumerOptions;
use geyser::webgpu::{WgpuConsumer, WgpuProducer, WgpuTextureShareManager};
use geyser::Result;

use crate::demo::{pace, produce_report, ProduceConfig};
use crate::report::{ConsumeReport, ConsumeStats, ProduceReport};
use crate::wgpu_pattern::{WgpuPatternWriter, WgpuProbe};

/// Connects a wgpu consumer to `name` and checks every frame it receives on the GPU (compute
/// pass `textureLoad` of probe texels) until the producer ends the stream, dies, or
/// `max_frames` (0 = no limit) frames arrived. Corrupted frames are counted, not fatal.
pub fn run_wgpu_consumer(
    manager: Arc<WgpuTextureShareManager>,
    name: &str,
    options: ConsumerOptions,
    max_frames: u64,
    idle_timeout: Duration,
    mut progress: impl FnMut(&ConsumeReport),
) -> Result<ConsumeReport> {
    let mut consumer = WgpuConsumer::connect_with(name, manager.clone(), options)?;
    let probe = WgpuProbe::new(&manager, consumer.textures())?;
    let mut report = ConsumeReport {
        sync: format!("{:?}", consumer.consumer().sync_mode()),
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
        let submission = probe.submit(&manager, slot)?;
        frame.end()?;
        let result = probe.result(&manager, submission, number)?;
        let counters = consumer.consumer().counters();
        report.probed(number, slot, &result, counters);
        progress(&report);
    }
    stats.finish(&mut report, consumer.consumer().counters());
    Ok(report)
}

/// A wgpu producer: binds `config.name` with a ring of wgpu textures, waits for consumers,
/// renders `config.frames` frames (each a render pass clear to its number's pattern), then
/// shuts down cleanly.
pub fn run_wgpu_producer(
    manager: Arc<WgpuTextureShareManager>,
    config: &ProduceConfig,
    mut progress: impl FnMut(u64),
) -> Result<ProduceReport> {
    let producer = WgpuProducer::bind(
        &config.name,
        manager.clone(),
        &config.descriptor,
        config.options.clone(),
    )?;
    if config.wait_consumers > 0 {
        producer
            .producer()
            .wait_for_consumers(config.wait_consumers, config.wait_timeout)?;
    }
    let writer = WgpuPatternWriter;
    let start = Instant::now();
    let cpu0 = cpu_time_ns();
    let mut presented = 0;
    while config.frames == 0 || presented < config.frames {
        let slot = producer.acquire(None)?;
        slot.begin()?;
        let mut encoder = manager.device().create_command_encoder(&Default::default());
        writer.record(&mut encoder, slot.texture(), slot.frame())?;
        manager.queue().submit([encoder.finish()]);
        slot.present()?;
        presented += 1;
        progress(presented);
        pace(config, start, presented);
    }
    Ok(produce_report(producer.producer(), presented, start, cpu0))
}
