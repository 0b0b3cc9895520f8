//! `geyser bench latency`: handoff when frames come at a steady pace (the producer paced, so no
//! frame waits for a busy consumer), with every consumer's time split into the wake-up (sent →
//! its wait returned) and the read (wait returned → message read), the GPU handoff, and the
//! consumer's CPU cost; once sleeping until each message, once with the spinning wake-up for
//! each budget given, and optionally with checks pre-submitted.

use clap::Args;
use serde::Serialize;

use super::{endpoint, run_demo, us, write_json, zero_copy, BenchArgs};
use geyser_harness::report::GpuHandoff;

/// Options of `geyser bench latency`.
#[derive(Args, Clone, Debug)]
pub struct LatencyArgs {
    /// Frame size.
    #[arg(long, default_value = "3840x2160")]
    pub size: String,
    /// The producer's pace, frames per second.
    #[arg(long, default_value_t = 120.0)]
    pub fps: f64,
    /// Frames per run (default 600; 120 with --quick).
    #[arg(long)]
    pub frames: Option<u64>,
    /// Numbers of consumers, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub consumers: Vec<usize>,
    /// Spin budgets (µs per frame), one run each; 0 sleeps until each message.
    #[arg(long, value_delimiter = ',', default_value = "0,300")]
    pub spin_us: Vec<u64>,
    /// Also a run per number of consumers with each frame's check submitted before the frame
    /// arrives (needs timeline sync; spins with the largest budget given).
    #[arg(long)]
    pub presubmit: bool,
}

/// One paced run, the worst consumer's value in each column.
#[derive(Clone, Debug, Serialize)]
struct Run {
    consumers: usize,
    spin_us: u64,
    presubmit: bool,
    /// Host handoff, producer sent → consumer read the message.
    host_p50_us: f64,
    host_p99_us: f64,
    /// Sent → the consumer's wait returned.
    wake_p50_us: f64,
    wake_p99_us: f64,
    /// Wait returned → message read.
    read_p50_us: f64,
    read_p99_us: f64,
    gpu_p50_us: Option<f64>,
    gpu_p99_us: Option<f64>,
    /// Consumer process CPU per frame (most of any consumer), and as a share of one core.
    consumer_cpu_us: f64,
    consumer_core_percent: f64,
    spin_us_per_frame: f64,
    frames: u64,
    corrupted: u64,
    presubmitted: u64,
    sync: String,
}

/// Runs the paced measurements; returns whether every frame was verified.
pub(super) fn run(args: &LatencyArgs, bench: &BenchArgs) -> geyser::Result<bool> {
    let frames = args.frames.unwrap_or(if bench.quick { 120 } else { 600 });
    println!(
        "geyser bench latency: {} frames of {} paced at {} fps, lossless, per run",
        frames, args.size, args.fps
    );
    // Pre-submitted checks wait on the producer's timeline on the GPU: no timeline, no run.
    let manager = geyser::vulkan::VulkanTextureShareManager::create_default()?;
    let timeline =
        geyser::ipc::supported_sync_modes(&manager)?.contains(&geyser::ipc::SyncMode::Timeline);
    drop(manager);
    if args.presubmit && !timeline {
        println!(
            "pre-submitted runs skipped: this device exports no timeline semaphores (host sync)"
        );
    }
    let mut plan: Vec<(usize, u64, bool)> = Vec::new();
    for &k in &args.consumers {
        plan.extend(args.spin_us.iter().map(|&s| (k, s, false)));
        if args.presubmit && timeline {
            let spin = args.spin_us.iter().copied().max().unwrap_or(0);
            plan.push((k, spin, true));
        }
    }
    let mut runs = Vec::new();
    for (k, spin, presubmit) in plan {
        let demo = super::DemoArgs {
            fps: args.fps,
            spin_us: spin,
            presubmit,
            ..zero_copy(&endpoint("lat"), &args.size, frames, k)
        };
        let (p, cs) = run_demo(&demo)?;
        let max = |f: fn(&geyser_harness::report::ConsumeReport) -> f64| {
            cs.iter().map(f).fold(0.0, f64::max)
        };
        let gpu: Vec<GpuHandoff> = cs
            .iter()
            .filter_map(|c| GpuHandoff::between(&p, c))
            .collect();
        let gpu_max = |f: fn(&GpuHandoff) -> f64| {
            (gpu.len() == cs.len()).then(|| gpu.iter().map(f).fold(f64::MIN, f64::max))
        };
        let cpu = max(|c| c.cpu_us_per_frame);
        runs.push(Run {
            consumers: k,
            spin_us: spin,
            presubmit,
            host_p50_us: max(|c| c.latency_p50_us),
            host_p99_us: max(|c| c.latency_p99_us),
            wake_p50_us: max(|c| c.wake_p50_us),
            wake_p99_us: max(|c| c.wake_p99_us),
            read_p50_us: max(|c| c.read_p50_us),
            read_p99_us: max(|c| c.read_p99_us),
            gpu_p50_us: gpu_max(|g| g.p50_us),
            gpu_p99_us: gpu_max(|g| g.p99_us),
            consumer_cpu_us: cpu,
            consumer_core_percent: cpu * args.fps / 1e4,
            spin_us_per_frame: max(|c| c.spin_us_per_frame),
            frames: cs.iter().map(|c| c.frames).min().unwrap_or(0),
            corrupted: cs.iter().map(|c| c.corrupted).sum(),
            presubmitted: cs.iter().map(|c| c.presubmitted).sum(),
            sync: cs.first().map(|c| c.sync.clone()).unwrap_or_default(),
        });
    }
    println!();
    println!(
        "{:>9} {:>6} {:>9} {:>15} {:>15} {:>13} {:>15} {:>12} {:>9}  sync",
        "consumers",
        "spin",
        "presubmit",
        "host p50/p99",
        "wake p50/p99",
        "read p50/p99",
        "gpu p50/p99",
        "consumer CPU",
        "spinning"
    );
    for r in &runs {
        println!(
            "{:>9} {:>3} µs {:>9} {:>6.0}/{:<5.0} µs {:>6.0}/{:<5.0} µs {:>4.0}/{:<5.0} µs {:>7}/{:<7} {:>4.0} µs {:>4.1}% {:>6.0} µs  {}",
            r.consumers,
            r.spin_us,
            if r.presubmit { "yes" } else { "no" },
            r.host_p50_us,
            r.host_p99_us,
            r.wake_p50_us,
            r.wake_p99_us,
            r.read_p50_us,
            r.read_p99_us,
            us(r.gpu_p50_us).trim_end_matches(" µs"),
            us(r.gpu_p99_us),
            r.consumer_cpu_us,
            r.consumer_core_percent,
            r.spin_us_per_frame,
            r.sync
        );
    }
    println!();
    println!(
        "host: producer sent the frame message → consumer read it; wake: sent → the consumer's wait returned \
         (poll wake-up, or the spin that found it); read: wait returned → message read; gpu: producer's write \
         finished on the GPU → consumer's check started on the GPU. Worst consumer per column. consumer CPU: the \
         consumer process's CPU time per frame and as a share of one core at this pace; spinning: the part of it \
         spent polling without sleeping (at most the spin budget per frame)."
    );
    let ok = runs
        .iter()
        .all(|r| r.corrupted == 0 && r.frames == frames && (!r.presubmit || r.presubmitted > 0));
    if let Some(dir) = &bench.out {
        let json = serde_json::json!({
            "size": args.size, "fps": args.fps, "frames": frames, "runs": runs,
        });
        write_json(dir, "latency.json", &json)?;
        println!("wrote {}", dir.join("latency.json").display());
    }
    println!(
        "{}",
        if ok {
            "PASS: every frame verified in every run"
        } else {
            "FAIL: frames missing or corrupted (or no check was pre-submitted)"
        }
    );
    Ok(ok)
}
