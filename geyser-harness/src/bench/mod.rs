//! What `geyser bench` and the criterion benches compare, each with the same GPU work per
//! frame (the producer fills the frame on the GPU, the consumer probes it on the GPU):
//! (a) [`run_in_process`]: two Vulkan contexts in one process, zero-copy, frames announced over
//! a channel; (b) the cross-process zero-copy path ([`crate::demo`]); (c) the CPU-copy path a
//! user would otherwise write (`cpu_copy.rs`: [`run_cpu_copy_producer`] /
//! [`run_cpu_copy_consumer`]): GPU → persistently mapped buffer → memfd shared memory → mapped
//! buffer → GPU, no per-frame allocation, copies overlapped with GPU work; (g) what a wgpu
//! user would write without Geyser (`wgpu_copy.rs`, feature `webgpu`); `pool.rs`, the cost
//! of a shared texture made fresh or taken from a [`geyser::vulkan::TexturePool`]; and
//! `signal.rs`, a timeline signal → the GPU queue waiting for it, with no protocol.
//!
//! Every path checks every frame; where the sync mode lets the consumer release a frame before
//! its check finished (timeline sync, and the copy paths, which own their textures), the
//! checks are pipelined ([`crate::probe_ring::ProbeRing`], [`PIPELINE`] in flight), so the
//! frame rate measures moving frames, not one fence round trip per frame.

#[cfg(unix)]
mod cpu_copy;
pub mod pool;
pub mod signal;
#[cfg(all(feature = "webgpu", any(target_os = "linux", target_os = "android")))]
mod wgpu_copy;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use geyser::common::TextureDescriptor;
use geyser::ipc::clock::{cpu_time_ns, monotonic_ns};
use geyser::vulkan::{SharedTimelineSemaphore, TimelinePoint, VulkanTextureShareManager};
use geyser::{Error, Result};

use crate::demo::{write_end_stamp, write_stamped_done, STAMP_QUERIES};
use crate::gpu_time::FrameStamps;
use crate::pattern::PatternWriter;
use crate::probe_ring::ProbeRing;
use crate::report::{percentile, ConsumeReport, ProduceReport};

#[cfg(unix)]
pub use cpu_copy::{run_cpu_copy_consumer, run_cpu_copy_producer};
#[cfg(all(feature = "webgpu", any(target_os = "linux", target_os = "android")))]
pub use wgpu_copy::{run_wgpu_copy_consumer, run_wgpu_copy_producer};

/// Ring size of the in-process and CPU-copy paths (the IPC default, for a fair comparison).
pub const RING: usize = 3;

/// Probes in flight where a path may check frames late.
pub const PIPELINE: usize = 4;

/// (a) Two contexts in one process share a ring of [`RING`] textures; the producer thread fills
/// frames, the consumer thread probes them. Timeline semaphores synchronize on the GPU where
/// the device exports them, else the host waits per frame. Every frame is delivered.
pub fn run_in_process(
    producer: &Arc<VulkanTextureShareManager>,
    consumer: &Arc<VulkanTextureShareManager>,
    desc: &TextureDescriptor,
    frames: u64,
) -> Result<(ProduceReport, ConsumeReport)> {
    run_in_process_ring(producer, consumer, desc, frames, RING)
}

/// [`run_in_process`] with a ring of `ring` textures (frames in flight). In timeline mode the
/// consumer also checks that the ready timeline never goes backwards.
pub fn run_in_process_ring(
    producer: &Arc<VulkanTextureShareManager>,
    consumer: &Arc<VulkanTextureShareManager>,
    desc: &TextureDescriptor,
    frames: u64,
    ring: usize,
) -> Result<(ProduceReport, ConsumeReport)> {
    if ring == 0 || ring > geyser::ipc::wire::MAX_SLOTS {
        return Err(Error::InvalidArgument {
            what: "ring",
            reason: format!("{ring} textures; use 1..=16"),
        });
    }
    let ring_len = ring as u64;
    let timeline = producer.can_share_timelines()
        && consumer.can_share_timelines()
        && producer.caps()?.timeline_semaphore_export.opaque_fd;
    let mut ring_p = Vec::with_capacity(ring);
    let mut ring_c = Vec::with_capacity(ring);
    for _ in 0..ring {
        let t = producer.create_texture(desc)?;
        ring_c.push(consumer.import(producer.export(&t)?)?);
        ring_p.push(t);
    }
    // ready: producer → consumer ("frame f written" at f + 1); released: consumer → producer.
    let sems = if timeline {
        let ready = Arc::new(SharedTimelineSemaphore::new(producer, 0)?);
        let ready_c = Arc::new(SharedTimelineSemaphore::import(consumer, ready.export()?)?);
        let released_c = Arc::new(SharedTimelineSemaphore::new(consumer, 0)?);
        let released = Arc::new(SharedTimelineSemaphore::import(
            producer,
            released_c.export()?,
        )?);
        Some((ready, ready_c, released, released_c))
    } else {
        None
    };
    let writer = PatternWriter::new(producer, desc.tight_size())?;
    let mut stamps = FrameStamps::new(producer, STAMP_QUERIES, frames as usize)?;
    // Host mode: a frame goes back only once its probe has finished, so one at a time.
    let depth = if timeline { PIPELINE } else { 1 };
    let mut probes = ProbeRing::new(consumer, depth, Some(frames as usize))?;
    let (tx, rx) = mpsc::sync_channel::<(u64, u64)>(ring);
    let (rel_tx, rel_rx) = mpsc::channel::<u64>();
    let consumer_sems = sems.as_ref().map(|(_, r, _, rc)| (r.clone(), rc.clone()));
    let consumer_thread = std::thread::spawn(move || -> Result<ConsumeReport> {
        let mut report = ConsumeReport {
            sync: if consumer_sems.is_some() {
                "Timeline"
            } else {
                "Host"
            }
            .into(),
            ..Default::default()
        };
        let mut latencies = Vec::with_capacity(frames as usize);
        let mut start = None;
        let mut cpu0 = 0;
        let mut last_ready = 0;
        let checked = |report: &mut ConsumeReport, done: Option<crate::probe_ring::Checked>| {
            if let Some((f, slot, result)) = done {
                report.checked(f, slot, &result);
            }
        };
        for (f, present_ns) in rx {
            let received = monotonic_ns();
            if start.is_none() {
                start = Some(Instant::now());
                cpu0 = cpu_time_ns();
            }
            latencies.push(received.saturating_sub(present_ns) as f64 / 1e3);
            let slot = (f % ring_len) as usize;
            let tex = &ring_c[slot];
            match &consumer_sems {
                Some((ready, released)) => {
                    let wait = TimelinePoint {
                        semaphore: ready.clone(),
                        value: f + 1,
                    };
                    let signal = TimelinePoint {
                        semaphore: released.clone(),
                        value: f + 1,
                    };
                    let done = probes.submit(tex, f, slot, &[wait], &[signal])?;
                    checked(&mut report, done);
                    let v = ready.value()?;
                    if v < last_ready {
                        return Err(Error::Protocol(format!(
                            "ready timeline went backwards: {v} after {last_ready}"
                        )));
                    }
                    last_ready = v;
                }
                None => {
                    let done = probes.submit(tex, f, slot, &[], &[])?;
                    checked(&mut report, done);
                    let done = probes.complete_oldest()?;
                    checked(&mut report, done);
                }
            }
            let _ = rel_tx.send(f);
        }
        while probes.in_flight() > 0 {
            let done = probes.complete_oldest()?;
            checked(&mut report, done);
        }
        finish_consumer(&mut report, start, cpu0, &mut latencies);
        if let Some((s, deviation)) = probes.into_stamps()? {
            (report.gpu_stamps, report.gpu_deviation_ns) = (s, deviation);
        }
        report.clean_end = true;
        report.end = "end of stream".into();
        Ok(report)
    });
    let start = Instant::now();
    let cpu0 = cpu_time_ns();
    let mut released_up_to: Option<u64> = None;
    for f in 0..frames {
        let slot = (f % ring_len) as usize;
        let block = sems.is_none();
        match &sems {
            Some((ready, _, released, _)) => {
                // The GPU waits for the consumer's release of the slot's previous frame.
                let waits: Vec<TimelinePoint> = if f >= ring_len {
                    vec![TimelinePoint {
                        semaphore: released.clone(),
                        value: f + 1 - ring_len,
                    }]
                } else {
                    vec![]
                };
                let signal = TimelinePoint {
                    semaphore: ready.clone(),
                    value: f + 1,
                };
                let last = write_end_stamp(stamps.as_mut(), f);
                writer.write_with(&ring_p[slot], f, &waits, &[signal], false, last)?;
            }
            None => {
                // Host mode: wait until the consumer released the slot's previous frame.
                if f >= ring_len {
                    while released_up_to.is_none_or(|r| r < f - ring_len) {
                        let r = rel_rx
                            .recv()
                            .map_err(|_| Error::PeerGone("consumer thread ended".into()))?;
                        released_up_to = Some(r);
                    }
                }
                let last = write_end_stamp(stamps.as_mut(), f);
                writer.write_with(&ring_p[slot], f, &[], &[], true, last)?;
            }
        }
        write_stamped_done(stamps.as_mut(), block)?;
        if tx.send((f, monotonic_ns())).is_err() {
            break;
        }
    }
    drop(tx);
    let consumer_report = consumer_thread
        .join()
        .map_err(|_| Error::Protocol("consumer thread panicked".into()))??;
    writer.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    let mut producer_report = ProduceReport {
        frames,
        seconds,
        fps: frames as f64 / seconds.max(1e-9),
        sync: consumer_report.sync.clone(),
        // Both threads share the process: its CPU time is split evenly for the table.
        cpu_us_per_frame: (cpu_time_ns() - cpu0) as f64 / 1e3 / frames.max(1) as f64 / 2.0,
        ..Default::default()
    };
    if let Some(mut s) = stamps {
        s.finished(0)?;
        (producer_report.gpu_stamps, producer_report.gpu_deviation_ns) = s.into_host_ns()?;
    }
    Ok((producer_report, consumer_report))
}

fn finish_consumer(
    report: &mut ConsumeReport,
    start: Option<Instant>,
    cpu0: u64,
    latencies: &mut [f64],
) {
    report.seconds = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
    report.fps = if report.seconds > 0.0 {
        report.frames as f64 / report.seconds
    } else {
        0.0
    };
    report.cpu_us_per_frame = (cpu_time_ns() - cpu0) as f64 / 1e3 / report.frames.max(1) as f64;
    latencies.sort_by(|a, b| a.total_cmp(b));
    report.latency_p50_us = percentile(latencies, 50.0);
    report.latency_p99_us = percentile(latencies, 99.0);
    report.age_p50_us = report.latency_p50_us;
    report.age_p99_us = report.latency_p99_us;
}

/// (c) The CPU-copy comparison path is Unix-only (a memfd over the Unix socket): on Windows
/// this returns [`Error::Unsupported`].
#[cfg(windows)]
pub fn run_cpu_copy_producer(
    _manager: &Arc<VulkanTextureShareManager>,
    _name: &str,
    _desc: &TextureDescriptor,
    _frames: u64,
) -> Result<ProduceReport> {
    Err(cpu_copy_unsupported())
}

/// (c) The CPU-copy comparison path is Unix-only (a memfd over the Unix socket): on Windows
/// this returns [`Error::Unsupported`].
#[cfg(windows)]
pub fn run_cpu_copy_consumer(
    _manager: &Arc<VulkanTextureShareManager>,
    _name: &str,
    _desc: &TextureDescriptor,
) -> Result<ConsumeReport> {
    Err(cpu_copy_unsupported())
}

#[cfg(windows)]
fn cpu_copy_unsupported() -> Error {
    Error::unsupported(
        "the CPU-copy comparison path on Windows",
        "it shares a memfd over the Unix socket; `geyser bench` compares it on Linux only",
    )
}
