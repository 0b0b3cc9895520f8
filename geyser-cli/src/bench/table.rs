//! The side-by-side table of `geyser bench`: every way of moving a frame, at each size, in one
//! run, each with the same GPU work per frame and every frame verified; then the ratios.

use std::sync::Arc;

use geyser::ipc::{supported_sync_modes, SyncMode};
use geyser::vulkan::VulkanTextureShareManager;
use geyser_harness::args::parse_size;
use geyser_harness::bench::run_in_process;
use geyser_harness::demo::demo_descriptor;
use indicatif::{ProgressBar, ProgressStyle};

use super::{chart, endpoint, pair, run_demo, us, write_json, zero_copy, BenchArgs, Row};

/// Row names.
pub(super) const IN_PROCESS: &str = "(a) in-process";
pub(super) const ZERO_COPY: &str = "(b) cross-process zero-copy";
pub(super) const PRESUBMIT: &str = "(b') zero-copy, pre-submitted";
pub(super) const CPU_COPY: &str = "(c) CPU copy";
pub(super) const WGPU_COPY: &str = "(g) wgpu without Geyser";
pub(super) const HOST_SHARED: &str = "(d) host ring, shared (2)";
pub(super) const HOST_OWN: &str = "(e) host ring, per-consumer (2)";

/// Runs the table; returns whether every frame of every row was verified.
pub(super) fn run(args: &BenchArgs) -> geyser::Result<bool> {
    let frames = args.frames.unwrap_or(if args.quick { 60 } else { 600 });
    let a = Arc::new(VulkanTextureShareManager::create_default()?);
    let b = Arc::new(VulkanTextureShareManager::create_default()?);
    let device = a.identity().name.clone();
    // Pre-submitted checks wait on the producer's timeline on the GPU: no timeline, no row.
    let timeline = supported_sync_modes(&a)?.contains(&SyncMode::Timeline);
    println!(
        "geyser bench on {device}: {frames} frames per measurement, RGBA8, ring of 3, lossless"
    );
    let modes = 4 + usize::from(timeline) + if args.host_rings { 2 } else { 0 };
    let bar = ProgressBar::new((args.sizes.len() * modes) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    for size in &args.sizes {
        let (w, h) = parse_size(size)?;
        let desc = demo_descriptor(w, h, geyser::common::TextureFormat::Rgba8Unorm);
        let step = |mode: &str| bar.set_message(format!("{size}: {mode}"));

        step(IN_PROCESS);
        let (p, c) = run_in_process(&a, &b, &desc, frames)?;
        rows.push(Row::new(IN_PROCESS, size, &p, &c));
        bar.inc(1);

        step(ZERO_COPY);
        let demo = zero_copy(&endpoint("b"), size, frames, 1);
        let (p, cs) = run_demo(&demo)?;
        rows.push(Row::slowest(ZERO_COPY, size, &p, &cs));
        bar.inc(1);

        if timeline {
            step(PRESUBMIT);
            let demo = super::DemoArgs {
                presubmit: true,
                ..zero_copy(&endpoint("b2"), size, frames, 1)
            };
            let (p, cs) = run_demo(&demo)?;
            rows.push(Row::slowest(PRESUBMIT, size, &p, &cs));
            bar.inc(1);
        }

        for (mode, wgpu) in [(CPU_COPY, false), (WGPU_COPY, true)] {
            step(mode);
            let name = endpoint("copy");
            let role = |role: &str| -> Vec<String> {
                let mut v: Vec<String> = vec![
                    role.into(),
                    "--size".into(),
                    size.clone(),
                    "--frames".into(),
                    frames.to_string(),
                    "--name".into(),
                    name.clone(),
                ];
                if wgpu {
                    v.push("--wgpu".into());
                }
                v
            };
            let (p, c) = pair(&role("__cpu-produce"), &role("__cpu-consume"))?;
            rows.push(Row::new(mode, size, &p, &c));
            bar.inc(1);
        }

        if args.host_rings {
            for (mode, rings) in [(HOST_SHARED, "shared"), (HOST_OWN, "per-consumer")] {
                step(mode);
                let ring = super::DemoArgs {
                    host_transfer: true,
                    host_rings: rings.into(),
                    slots: Some(3),
                    ..zero_copy(&endpoint("ring"), size, frames, 2)
                };
                let (p, cs) = run_demo(&ring)?;
                rows.push(Row::slowest(mode, size, &p, &cs));
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();

    println!();
    println!(
        "{:<32} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9} {:>13} {:>13}  sync",
        "mode",
        "size",
        "fps",
        "host p50",
        "host p99",
        "gpu p50",
        "gpu p99",
        "producer CPU",
        "consumer CPU"
    );
    for r in &rows {
        println!(
            "{:<32} {:>9} {:>9.1} {:>8.0} µs {:>8.0} µs {:>9} {:>9} {:>7.0} µs/fr {:>7.0} µs/fr  {}",
            r.mode,
            r.size,
            r.fps,
            r.handoff_p50_us,
            r.handoff_p99_us,
            us(r.gpu_p50_us),
            us(r.gpu_p99_us),
            r.producer_cpu_us,
            r.consumer_cpu_us,
            r.sync
        );
    }
    println!();
    let mut ratios = Vec::new();
    for size in &args.sizes {
        let row = |mode: &str| rows.iter().find(|r| &r.size == size && r.mode == mode);
        let fps = |mode: &str| row(mode).map_or(0.0, |r| r.fps);
        let over = |x: &str, y: &str| fps(x) / fps(y).max(1e-9);
        let (ba, bc, bg) = (
            over(ZERO_COPY, IN_PROCESS),
            over(ZERO_COPY, CPU_COPY),
            over(ZERO_COPY, WGPU_COPY),
        );
        println!(
            "{size}: (b)/(a) cross-process vs in-process = {ba:.2}   (b)/(c) zero-copy vs CPU copy = {bc:.1}x   \
             (b)/(g) zero-copy vs wgpu copy = {bg:.1}x"
        );
        let mut ratio = serde_json::json!({
            "size": size, "b_over_a": ba, "b_over_c": bc, "b_over_g": bg,
        });
        for (mode, tag) in [(CPU_COPY, "(c)"), (WGPU_COPY, "(g)")] {
            let Some(r) = row(mode).filter(|r| r.producer_memcpy_us > 0.0) else {
                continue;
            };
            let (w, h) = parse_size(size)?;
            // Bytes per µs are MB/s; a thousandth of that is GB/s.
            let gbs = |us: f64| (f64::from(w) * f64::from(h) * 4.0) / us.max(1e-9) / 1e3;
            let slower = r.producer_memcpy_us.max(r.consumer_memcpy_us);
            println!(
                "{size}: {tag}'s memcpy per frame: producer {:.0} µs ({:.1} GB/s), consumer {:.0} µs ({:.1} GB/s): \
                 alone they allow {:.0} fps",
                r.producer_memcpy_us,
                gbs(r.producer_memcpy_us),
                r.consumer_memcpy_us,
                gbs(r.consumer_memcpy_us),
                1e6 / slower.max(1e-9)
            );
        }
        if let Some(pre) = row(PRESUBMIT) {
            let plain = row(ZERO_COPY).and_then(|r| r.gpu_p50_us);
            println!(
                "{size}: GPU handoff p50, pre-submitted (b') {} vs after the message (b) {} ({} of {} frames pre-submitted)",
                us(pre.gpu_p50_us),
                us(plain),
                pre.presubmitted,
                pre.frames
            );
            ratio["presubmitted_gpu_p50_us"] = pre.gpu_p50_us.into();
        }
        if args.host_rings {
            let ed = over(HOST_OWN, HOST_SHARED);
            println!("{size}: (e)/(d) per-consumer vs shared host rings, two consumers = {ed:.2}");
            ratio["e_over_d"] = ed.into();
        }
        ratios.push(ratio);
    }
    if !timeline {
        println!(
            "(b') not measured: pre-submitted checks wait on the producer's timeline semaphore on the GPU, and \
             {device} exports none (host-synchronized)."
        );
    }
    println!(
        "host p50/p99: producer present → consumer receive, host CLOCK_MONOTONIC. gpu p50/p99: GPU handoff, the \
         producer's write finished on the GPU → the consumer's first read started on the GPU (timestamp queries \
         put on CLOCK_MONOTONIC with calibrated timestamps; n/a without them, or for (g), which has none). In \
         lossless saturated runs both include time a frame waits for the consumer; `geyser bench latency` measures \
         paced handoff. fps counts frames the consumer received and verified on the GPU; checks are pipelined \
         (four in flight) where a frame may go back before its check ends (timeline sync, the copy paths). \
         memcpy: the copy paths' CPU copies of each frame between mapped GPU memory (CPU-cached for the \
         readback) and the shared ring, a bound on those paths' fps (each side copies one frame at a time)."
    );
    let ok = rows.iter().all(|r| r.corrupted == 0 && r.frames == frames);
    if let Some(dir) = &args.out {
        let json = serde_json::json!({ "device": device, "frames": frames, "rows": rows, "ratios": ratios });
        write_json(dir, "bench.json", &json)?;
        let modes = [
            IN_PROCESS,
            ZERO_COPY,
            PRESUBMIT,
            CPU_COPY,
            WGPU_COPY,
            HOST_SHARED,
            HOST_OWN,
        ];
        chart::bars(&dir.join("bench.svg"), &device, &args.sizes, &modes, &rows)?;
        println!(
            "wrote {} and {}",
            dir.join("bench.json").display(),
            dir.join("bench.svg").display()
        );
    }
    println!(
        "{}",
        if ok {
            "PASS: every frame verified in every mode"
        } else {
            "FAIL: frames missing or corrupted"
        }
    );
    Ok(ok)
}
