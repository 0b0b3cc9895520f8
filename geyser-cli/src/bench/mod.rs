//! `geyser bench`: measurements side by side, in one run, every frame verified.
//! - `geyser bench` (`table.rs`): (a) in-process sharing, (b) cross-process zero-copy, (b')
//!   the same with pre-submitted checks, (c) the CPU copy a user would write, (g) what a wgpu
//!   user would write, at each size; with `--host-rings` also (d)/(e), two host-ring consumers.
//! - `geyser bench latency` (`latency.rs`): paced handoff, where its time goes, and the
//!   low-latency wake-up's CPU cost.
//! - `geyser bench pool` (`pool.rs`): create + export + import, fresh and from a pool; a
//!   producer's ring, new and from a pool.
//! - `geyser bench signal` (`signal.rs`): a timeline signal → the waiting GPU queue, with no
//!   protocol: the floor under the GPU handoff.
//! - `geyser bench scaling` (`scaling.rs`): fps, GPU handoff and CPU per frame against the
//!   number of consumers and the frame size, lossless and lossy, as SVG plots.
//!
//! This file holds what they share: the arguments, the child processes (this binary
//! re-executed) and the row of a measurement.

mod chart;
mod latency;
mod pool;
mod scaling;
mod signal;
mod table;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Subcommand};
use geyser::vulkan::VulkanTextureShareManager;
use geyser_harness::args::{parse_size, retry_not_found};
use geyser_harness::bench::{run_cpu_copy_consumer, run_cpu_copy_producer};
use geyser_harness::demo::demo_descriptor;
use geyser_harness::report::{ConsumeReport, GpuHandoff, ProduceReport};
use serde::Serialize;

use crate::demo::{spawn_self, watch, ChildState, DemoArgs};

/// Options of `geyser bench`.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// A measurement other than the side-by-side table.
    #[command(subcommand)]
    pub what: Option<What>,
    /// A short run (60 frames per measurement) for CI and smoke tests.
    #[arg(long, global = true)]
    pub quick: bool,
    /// Frames per measurement (default 600; 60 with --quick).
    #[arg(long)]
    pub frames: Option<u64>,
    /// Frame sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1920x1080,3840x2160")]
    pub sizes: Vec<String>,
    /// Write JSON and SVG results into this directory.
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// Also measure two consumers through the host ring (what consumers on another
    /// device get; forced here): one ring shared by both vs one ring each.
    #[arg(long)]
    pub host_rings: bool,
}

/// The other measurements.
#[derive(Subcommand, Clone, Debug)]
pub enum What {
    /// Paced handoff latency: host and GPU, where the host time goes (send → wake-up → read),
    /// with and without the spinning wake-up and pre-submitted checks, and their CPU cost.
    Latency(latency::LatencyArgs),
    /// Create + export + import of a shared texture: fresh, and from a texture pool.
    Pool(pool::PoolArgs),
    /// fps, GPU handoff and CPU per frame against consumers and frame size (SVG plots).
    Scaling(scaling::ScalingArgs),
    /// A timeline signal → the GPU queue waiting for it (same queue, another context, the
    /// CPU): the floor under the GPU handoff.
    Signal(signal::SignalArgs),
}

/// Arguments of the hidden copy-path child processes ((c), and (g) with `--wgpu`).
#[derive(Args, Clone, Debug)]
pub struct CpuCopyArgs {
    /// Frame size.
    #[arg(long)]
    pub size: String,
    /// Frames.
    #[arg(long)]
    pub frames: u64,
    /// Endpoint name.
    #[arg(long)]
    pub name: String,
    /// The wgpu path (g) instead of the Vulkan CPU copy (c).
    #[arg(long)]
    pub wgpu: bool,
}

/// Runs `geyser bench`; returns whether every frame of every measurement was verified.
pub fn run(args: &BenchArgs) -> geyser::Result<bool> {
    match &args.what {
        None => table::run(args),
        Some(What::Latency(l)) => latency::run(l, args),
        Some(What::Pool(p)) => pool::run(p, args),
        Some(What::Scaling(s)) => scaling::run(s, args),
        Some(What::Signal(s)) => signal::run(s, args),
    }
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What was measured (the mode).
    pub mode: String,
    /// `WxH`.
    pub size: String,
    /// Frames the consumer received and verified per second (the slowest one's, with more).
    pub fps: f64,
    /// Host handoff, producer present → consumer receive (host clock), median µs.
    pub handoff_p50_us: f64,
    /// 99th percentile µs.
    pub handoff_p99_us: f64,
    /// GPU handoff, producer's write finished → consumer's read started, median µs (the
    /// worst consumer's); `None` where the device has no calibrated timestamps.
    pub gpu_p50_us: Option<f64>,
    /// 99th percentile µs.
    pub gpu_p99_us: Option<f64>,
    /// Producer process CPU time per frame, µs.
    pub producer_cpu_us: f64,
    /// Consumer process CPU time per frame, µs (the most of any consumer).
    pub consumer_cpu_us: f64,
    /// Synchronization used.
    pub sync: String,
    /// Frames verified (the fewest of any consumer).
    pub frames: u64,
    /// Frames whose probes failed (must be 0).
    pub corrupted: u64,
    /// Frames checked by work submitted before they arrived (all consumers).
    pub presubmitted: u64,
    /// The copy paths: the producer's memcpy per frame (GPU memory → shared ring), µs.
    pub producer_memcpy_us: f64,
    /// The copy paths: the consumer's memcpy per frame (shared ring → GPU memory), µs.
    pub consumer_memcpy_us: f64,
}

impl Row {
    fn new(mode: &str, size: &str, p: &ProduceReport, c: &ConsumeReport) -> Row {
        Self::slowest(mode, size, p, std::slice::from_ref(c))
    }

    /// One row for several consumers of one producer: the slowest value of each column, the
    /// fewest frames, all corrupted frames.
    fn slowest(mode: &str, size: &str, p: &ProduceReport, cs: &[ConsumeReport]) -> Row {
        let max = |f: fn(&ConsumeReport) -> f64| cs.iter().map(f).fold(0.0, f64::max);
        let gpu: Vec<GpuHandoff> = cs
            .iter()
            .filter_map(|c| GpuHandoff::between(p, c))
            .collect();
        let gpu_max = |f: fn(&GpuHandoff) -> f64| {
            (gpu.len() == cs.len() && !gpu.is_empty())
                .then(|| gpu.iter().map(f).fold(f64::MIN, f64::max))
        };
        Row {
            mode: mode.into(),
            size: size.into(),
            fps: cs.iter().map(|c| c.fps).fold(f64::INFINITY, f64::min),
            handoff_p50_us: max(|c| c.age_p50_us),
            handoff_p99_us: max(|c| c.age_p99_us),
            gpu_p50_us: gpu_max(|g| g.p50_us),
            gpu_p99_us: gpu_max(|g| g.p99_us),
            producer_cpu_us: p.cpu_us_per_frame,
            consumer_cpu_us: max(|c| c.cpu_us_per_frame),
            sync: cs.first().map(|c| c.sync.clone()).unwrap_or_default(),
            frames: cs.iter().map(|c| c.frames).min().unwrap_or(0),
            corrupted: cs.iter().map(|c| c.corrupted).sum(),
            presubmitted: cs.iter().map(|c| c.presubmitted).sum(),
            producer_memcpy_us: p.memcpy_us_per_frame,
            consumer_memcpy_us: max(|c| c.memcpy_us_per_frame),
        }
    }
}

/// `12 µs`, or `n/a` for a measurement the device could not make.
fn us(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.0} µs"))
}

/// Hidden subcommand: the copy-path producer, (c) or (g).
pub fn cpu_produce(args: &CpuCopyArgs) -> geyser::Result<()> {
    let (w, h) = parse_size(&args.size)?;
    let desc = demo_descriptor(w, h, geyser::common::TextureFormat::Rgba8Unorm);
    let r = if args.wgpu {
        wgpu_copy_producer(&args.name, &desc, args.frames)?
    } else {
        let m = Arc::new(VulkanTextureShareManager::create_default()?);
        run_cpu_copy_producer(&m, &args.name, &desc, args.frames)?
    };
    println!("R {}", serde_json::to_string(&r).unwrap_or_default());
    Ok(())
}

/// Hidden subcommand: the copy-path consumer, (c) or (g).
pub fn cpu_consume(args: &CpuCopyArgs) -> geyser::Result<()> {
    let (w, h) = parse_size(&args.size)?;
    let desc = demo_descriptor(w, h, geyser::common::TextureFormat::Rgba8Unorm);
    let r = if args.wgpu {
        retry_not_found(Duration::from_secs(30), || {
            wgpu_copy_consumer(&args.name, &desc)
        })?
    } else {
        let m = Arc::new(VulkanTextureShareManager::create_default()?);
        retry_not_found(Duration::from_secs(30), || {
            run_cpu_copy_consumer(&m, &args.name, &desc)
        })?
    };
    println!("R {}", serde_json::to_string(&r).unwrap_or_default());
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
use geyser_harness::bench::{
    run_wgpu_copy_consumer as wgpu_copy_consumer, run_wgpu_copy_producer as wgpu_copy_producer,
};

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn wgpu_copy_producer(
    _: &str,
    _: &geyser::common::TextureDescriptor,
    _: u64,
) -> geyser::Result<ProduceReport> {
    Err(wgpu_copy_unsupported())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn wgpu_copy_consumer(
    _: &str,
    _: &geyser::common::TextureDescriptor,
) -> geyser::Result<ConsumeReport> {
    Err(wgpu_copy_unsupported())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn wgpu_copy_unsupported() -> geyser::Error {
    geyser::Error::unsupported(
        "the wgpu copy comparison path here",
        "it shares a memfd over the Unix socket; `geyser bench` runs it on Linux",
    )
}

/// The demo's options for `consumers` lossless consumers of `frames` frames of `size`, checks
/// pipelined, under endpoint `name`: what the zero-copy measurements start from.
fn zero_copy(name: &str, size: &str, frames: u64, consumers: usize) -> DemoArgs {
    DemoArgs {
        consumers,
        frames,
        size: size.into(),
        format: "rgba8unorm".into(),
        slots: Some((consumers + 2).clamp(3, geyser::ipc::wire::MAX_SLOTS)),
        lossless: true,
        sync: "auto".into(),
        name: Some(name.into()),
        fps: 0.0,
        devices: None,
        host_transfer: false,
        host_rings: "auto".into(),
        remote_rings: "off".into(),
        memory: "opaque".into(),
        // The in-process and CPU-copy paths fill whole frames: the same GPU work here.
        pattern: "solid".into(),
        apis: "vulkan".into(),
        spin_us: 0,
        presubmit: false,
        pipeline: geyser_harness::bench::PIPELINE,
    }
}

/// Runs the demo's producer and its consumers as children with `demo`'s options.
fn run_demo(demo: &DemoArgs) -> geyser::Result<(ProduceReport, Vec<ConsumeReport>)> {
    let name = demo.name.clone().unwrap_or_else(|| endpoint("demo"));
    let mut pa = vec!["__produce".to_string()];
    pa.extend(demo.child_args(&name));
    let mut ca = vec!["__consume".to_string()];
    ca.extend(demo.child_args(&name));
    let consumers: Vec<&[String]> = (0..demo.consumers).map(|_| ca.as_slice()).collect();
    group(&pa, &consumers)
}

/// A fresh endpoint name for one measurement.
fn endpoint(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "geyser-bench-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a producer and a consumer child and returns their reports.
fn pair(
    producer: &[String],
    consumer: &[String],
) -> geyser::Result<(ProduceReport, ConsumeReport)> {
    let (p, mut cs) = group(producer, &[consumer])?;
    let c = cs
        .pop()
        .ok_or_else(|| geyser::Error::Protocol("no consumer report".into()))?;
    Ok((p, c))
}

/// Runs a producer child and consumer children; returns their reports.
fn group(
    producer: &[String],
    consumers: &[&[String]],
) -> geyser::Result<(ProduceReport, Vec<ConsumeReport>)> {
    let mut children = Vec::new();
    let mut states = Vec::new();
    let mut threads = Vec::new();
    for args in std::iter::once(producer).chain(consumers.iter().copied()) {
        let mut child = spawn_self(args)?;
        let state = Arc::new(Mutex::new(ChildState::default()));
        threads.extend(watch(&mut child, state.clone()));
        children.push(child);
        states.push(state);
    }
    let statuses: Vec<_> = children
        .iter_mut()
        .map(|c| c.wait())
        .collect::<Result<_, _>>()?;
    for t in threads {
        let _ = t.join();
    }
    let result = |i: usize| -> geyser::Result<String> {
        let s = states[i].lock().unwrap_or_else(|p| p.into_inner());
        match (&s.result, statuses[i].success()) {
            (Some(r), true) => Ok(r.clone()),
            _ => Err(geyser::Error::Protocol(format!(
                "{} failed ({}): {}",
                if i == 0 { "producer" } else { "consumer" },
                statuses[i],
                s.errors
                    .iter()
                    .rev()
                    .take(5)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" | ")
            ))),
        }
    };
    let p: ProduceReport =
        serde_json::from_str(&result(0)?).map_err(|e| geyser::Error::Protocol(e.to_string()))?;
    let cs = (1..states.len())
        .map(|i| {
            serde_json::from_str::<ConsumeReport>(&result(i)?)
                .map_err(|e| geyser::Error::Protocol(e.to_string()))
        })
        .collect::<geyser::Result<Vec<_>>>()?;
    Ok((p, cs))
}

/// Writes `value` as pretty JSON to `dir/name`.
fn write_json(dir: &std::path::Path, name: &str, value: &serde_json::Value) -> geyser::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(name),
        serde_json::to_string_pretty(value).unwrap_or_default(),
    )?;
    Ok(())
}
