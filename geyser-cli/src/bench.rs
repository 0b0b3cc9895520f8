//! `geyser bench`: measures, in one run and side by side, (a) in-process Vulkan → Vulkan
//! sharing, (b) cross-process zero-copy sharing in the best sync mode, (c) the CPU-copy path,
//! each with the same GPU work per frame, at each size; with `--host-rings`, also two consumers
//! through (d) one shared host ring and (e) one ring each. Prints a table and the
//! ratios; with `--out DIR` writes `bench.json` and `bench.svg`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use geyser::vulkan::VulkanTextureShareManager;
use geyser_harness::args::parse_size;
use geyser_harness::args::retry_not_found;
use geyser_harness::bench::{run_cpu_copy_consumer, run_cpu_copy_producer, run_in_process};
use geyser_harness::demo::demo_descriptor;
use geyser_harness::report::{ConsumeReport, ProduceReport};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::demo::{spawn_self, watch, ChildState, DemoArgs};

/// Options of `geyser bench`.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// A short run (60 frames per measurement) for CI and smoke tests.
    #[arg(long)]
    pub quick: bool,
    /// Frames per measurement (default 600; 60 with --quick).
    #[arg(long)]
    pub frames: Option<u64>,
    /// Frame sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1920x1080,3840x2160")]
    pub sizes: Vec<String>,
    /// Write bench.json and bench.svg into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also measure two consumers through the host ring (what consumers on another
    /// device get; forced here): one ring shared by both vs one ring each.
    #[arg(long)]
    pub host_rings: bool,
}

/// Row names of the host-ring measurements.
const HOST_SHARED: &str = "host ring, shared (2)";
const HOST_OWN: &str = "host ring, per-consumer (2)";

/// Arguments of the hidden CPU-copy child processes.
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
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `in-process`, `cross-process zero-copy`, `cross-process CPU copy`, or one of the
    /// host-ring modes.
    pub mode: String,
    /// `WxH`.
    pub size: String,
    /// Frames the consumer received and verified per second (the slowest one's, with two).
    pub fps: f64,
    /// Handoff latency, producer present → consumer receive (host clock), median µs.
    pub handoff_p50_us: f64,
    /// 99th percentile µs.
    pub handoff_p99_us: f64,
    /// Producer process CPU time per frame, µs.
    pub producer_cpu_us: f64,
    /// Consumer process CPU time per frame, µs.
    pub consumer_cpu_us: f64,
    /// Synchronization used.
    pub sync: String,
    /// Frames verified.
    pub frames: u64,
    /// Frames whose probes failed (must be 0).
    pub corrupted: u64,
}

impl Row {
    fn new(mode: &str, size: &str, p: &ProduceReport, c: &ConsumeReport) -> Row {
        Self::slowest(mode, size, p, std::slice::from_ref(c))
    }

    /// One row for several consumers of one producer: the slowest value of each column, the
    /// fewest frames, all corrupted frames.
    fn slowest(mode: &str, size: &str, p: &ProduceReport, cs: &[ConsumeReport]) -> Row {
        let max = |f: fn(&ConsumeReport) -> f64| cs.iter().map(f).fold(0.0, f64::max);
        Row {
            mode: mode.into(),
            size: size.into(),
            fps: cs.iter().map(|c| c.fps).fold(f64::INFINITY, f64::min),
            handoff_p50_us: max(|c| c.age_p50_us),
            handoff_p99_us: max(|c| c.age_p99_us),
            producer_cpu_us: p.cpu_us_per_frame,
            consumer_cpu_us: max(|c| c.cpu_us_per_frame),
            sync: cs.first().map(|c| c.sync.clone()).unwrap_or_default(),
            frames: cs.iter().map(|c| c.frames).min().unwrap_or(0),
            corrupted: cs.iter().map(|c| c.corrupted).sum(),
        }
    }
}

/// Hidden subcommand: the CPU-copy producer.
pub fn cpu_produce(args: &CpuCopyArgs) -> geyser::Result<()> {
    let (w, h) = parse_size(&args.size)?;
    let m = Arc::new(VulkanTextureShareManager::create_default()?);
    let r = run_cpu_copy_producer(
        &m,
        &args.name,
        &demo_descriptor(w, h, geyser::common::TextureFormat::Rgba8Unorm),
        args.frames,
    )?;
    println!("R {}", serde_json::to_string(&r).unwrap_or_default());
    Ok(())
}

/// Hidden subcommand: the CPU-copy consumer.
pub fn cpu_consume(args: &CpuCopyArgs) -> geyser::Result<()> {
    let (w, h) = parse_size(&args.size)?;
    let m = Arc::new(VulkanTextureShareManager::create_default()?);
    let desc = demo_descriptor(w, h, geyser::common::TextureFormat::Rgba8Unorm);
    let r = retry_not_found(Duration::from_secs(30), || {
        run_cpu_copy_consumer(&m, &args.name, &desc)
    })?;
    println!("R {}", serde_json::to_string(&r).unwrap_or_default());
    Ok(())
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

/// Runs the benchmark; returns whether every frame of every mode was verified.
pub fn run(args: &BenchArgs) -> geyser::Result<bool> {
    let frames = args.frames.unwrap_or(if args.quick { 60 } else { 600 });
    let a = Arc::new(VulkanTextureShareManager::create_default()?);
    let b = Arc::new(VulkanTextureShareManager::create_default()?);
    let device = a.identity().name.clone();
    println!(
        "geyser bench on {device}: {frames} frames per measurement, RGBA8, ring of 3, lossless"
    );
    let modes = if args.host_rings { 5 } else { 3 };
    let bar = ProgressBar::new((args.sizes.len() * modes) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    for size in &args.sizes {
        let (w, h) = parse_size(size)?;
        let desc = demo_descriptor(w, h, geyser::common::TextureFormat::Rgba8Unorm);
        bar.set_message(format!("{size}: in-process"));
        let (p, c) = run_in_process(&a, &b, &desc, frames)?;
        rows.push(Row::new("in-process", size, &p, &c));
        bar.inc(1);

        bar.set_message(format!("{size}: cross-process zero-copy"));
        let name = format!("geyser-bench-{}", std::process::id());
        let demo = DemoArgs {
            consumers: 1,
            frames,
            size: size.clone(),
            format: "rgba8unorm".into(),
            slots: Some(3),
            lossless: true,
            sync: "auto".into(),
            name: Some(name.clone()),
            fps: 0.0,
            devices: None,
            host_transfer: false,
            host_rings: "auto".into(),
            apis: "vulkan".into(),
            memory: "opaque".into(),
        };
        let mut pa = vec!["__produce".to_string()];
        pa.extend(demo.child_args(&name));
        let mut ca = vec!["__consume".to_string()];
        ca.extend(demo.child_args(&name));
        let (p, c) = pair(&pa, &ca)?;
        rows.push(Row::new("cross-process zero-copy", size, &p, &c));
        bar.inc(1);

        bar.set_message(format!("{size}: cross-process CPU copy"));
        let name = format!("geyser-bench-cpu-{}", std::process::id());
        let cpu = |role: &str| -> Vec<String> {
            vec![
                role.into(),
                "--size".into(),
                size.clone(),
                "--frames".into(),
                frames.to_string(),
                "--name".into(),
                name.clone(),
            ]
        };
        let (p, c) = pair(&cpu("__cpu-produce"), &cpu("__cpu-consume"))?;
        rows.push(Row::new("cross-process CPU copy", size, &p, &c));
        bar.inc(1);

        if args.host_rings {
            for (mode, rings) in [(HOST_SHARED, "shared"), (HOST_OWN, "per-consumer")] {
                bar.set_message(format!("{size}: {mode}"));
                let name = format!("geyser-bench-ring-{}", std::process::id());
                let ring = DemoArgs {
                    consumers: 2,
                    host_transfer: true,
                    host_rings: rings.into(),
                    name: Some(name.clone()),
                    ..demo.clone()
                };
                let mut pa = vec!["__produce".to_string()];
                pa.extend(ring.child_args(&name));
                let mut ca = vec!["__consume".to_string()];
                ca.extend(ring.child_args(&name));
                let (p, cs) = group(&pa, &[&ca, &ca])?;
                rows.push(Row::slowest(mode, size, &p, &cs));
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();

    println!();
    println!(
        "{:<28} {:>9} {:>9} {:>12} {:>12} {:>13} {:>13}  sync",
        "mode", "size", "fps", "handoff p50", "handoff p99", "producer CPU", "consumer CPU"
    );
    for r in &rows {
        println!(
            "{:<28} {:>9} {:>9.1} {:>9.0} µs {:>9.0} µs {:>7.0} µs/fr {:>7.0} µs/fr  {}",
            r.mode,
            r.size,
            r.fps,
            r.handoff_p50_us,
            r.handoff_p99_us,
            r.producer_cpu_us,
            r.consumer_cpu_us,
            r.sync
        );
    }
    println!();
    let mut ratios = Vec::new();
    for size in &args.sizes {
        let fps = |mode: &str| {
            rows.iter()
                .find(|r| &r.size == size && r.mode == mode)
                .map(|r| r.fps)
                .unwrap_or(0.0)
        };
        let (fa, fb, fc) = (
            fps("in-process"),
            fps("cross-process zero-copy"),
            fps("cross-process CPU copy"),
        );
        let ba = fb / fa.max(1e-9);
        let bc = fb / fc.max(1e-9);
        println!("{size}: (b)/(a) zero-copy cross-process vs in-process = {ba:.2}   (b)/(c) zero-copy vs CPU copy = {bc:.2}x");
        let mut ratio = serde_json::json!({ "size": size, "b_over_a": ba, "b_over_c": bc });
        if args.host_rings {
            let ed = fps(HOST_OWN) / fps(HOST_SHARED).max(1e-9);
            println!("{size}: (e)/(d) per-consumer vs shared host rings, two consumers = {ed:.2}");
            ratio["e_over_d"] = ed.into();
        }
        ratios.push(ratio);
    }
    println!(
        "handoff: producer present → consumer receive, host CLOCK_MONOTONIC timestamps (no GPU timestamp \
         queries yet). fps counts frames the consumer received and verified on the GPU."
    );
    let ok = rows.iter().all(|r| r.corrupted == 0 && r.frames == frames);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::json!({ "device": device, "frames": frames, "rows": rows, "ratios": ratios });
        std::fs::write(
            dir.join("bench.json"),
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        )?;
        chart(&dir.join("bench.svg"), &device, &args.sizes, &rows)?;
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

/// A grouped bar chart of fps per mode and size.
fn chart(
    path: &std::path::Path,
    device: &str,
    sizes: &[String],
    rows: &[Row],
) -> geyser::Result<()> {
    use plotters::prelude::*;
    let modes = [
        "in-process",
        "cross-process zero-copy",
        "cross-process CPU copy",
        HOST_SHARED,
        HOST_OWN,
    ];
    let colors = [
        RGBColor(66, 133, 244),
        RGBColor(52, 168, 83),
        RGBColor(234, 67, 53),
        RGBColor(251, 188, 5),
        RGBColor(154, 160, 166),
    ];
    // Bars per size group: the modes measured, plus one bar's gap.
    let modes = &modes[..modes
        .iter()
        .filter(|m| rows.iter().any(|r| r.mode == **m))
        .count()];
    let width = modes.len() as f64 + 1.0;
    let max = rows.iter().map(|r| r.fps).fold(1.0, f64::max) * 1.35;
    let err = |e: String| geyser::Error::Io(std::io::Error::other(e));
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let groups = sizes.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("geyser bench — frames/s on {device}"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..groups * width, 0f64..max)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(sizes.len() * width as usize + 1)
        .x_label_formatter(&|x| {
            // Ticks fall on integers; each group of bars is centred on width·g + width/2.
            let g = (x / width).floor() as usize;
            if (x - (g as f64 * width + width / 2.0)).abs() < 0.25 {
                sizes.get(g).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("frames per second")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (m, mode) in modes.iter().enumerate() {
        let color = colors[m];
        let bars: Vec<Rectangle<(f64, f64)>> = sizes
            .iter()
            .enumerate()
            .filter_map(|(g, size)| {
                let r = rows.iter().find(|r| &r.size == size && r.mode == *mode)?;
                let x = g as f64 * width + 0.5 + m as f64;
                Some(Rectangle::new([(x, 0.0), (x + 0.9, r.fps)], color.filled()))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| err(e.to_string()))?
            .label(*mode)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
