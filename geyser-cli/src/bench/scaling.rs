//! `geyser bench scaling`: how fps, GPU handoff and CPU per frame grow with the number of
//! consumers (at one frame size) and with the frame size (one consumer), lossless and lossy;
//! writes `scaling.json` and two SVG plots.

use clap::Args;
use geyser_harness::args::parse_size;
use serde::Serialize;

use super::chart::{lines, Panel};
use super::{endpoint, run_demo, us, write_json, zero_copy, BenchArgs, Row};

/// Options of `geyser bench scaling`.
#[derive(Args, Clone, Debug)]
pub struct ScalingArgs {
    /// Numbers of consumers (at --consumer-size).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub consumers: Vec<usize>,
    /// Frame size of the consumer sweep.
    #[arg(long, default_value = "1920x1080")]
    pub consumer_size: String,
    /// Frame sizes (one consumer).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "256x256,1280x720,1920x1080,3840x2160,7680x4320"
    )]
    pub sizes: Vec<String>,
    /// Frames per run (default 300; 40 with --quick).
    #[arg(long)]
    pub frames: Option<u64>,
}

/// One run: the variable's value, the mode, what was measured.
#[derive(Clone, Debug, Serialize)]
struct Point {
    consumers: usize,
    size: String,
    megapixels: f64,
    lossless: bool,
    producer_fps: f64,
    row: Row,
    /// Mean consumer CPU per frame, µs.
    consumer_cpu_mean_us: f64,
}

/// Runs both sweeps; returns whether every frame was verified.
pub(super) fn run(args: &ScalingArgs, bench: &BenchArgs) -> geyser::Result<bool> {
    let frames = args.frames.unwrap_or(if bench.quick { 40 } else { 300 });
    println!(
        "geyser bench scaling: {frames} frames per run; consumers {:?} at {}; sizes {:?} with one consumer; lossless and lossy",
        args.consumers, args.consumer_size, args.sizes
    );
    let mut points = Vec::new();
    let mut ok = true;
    let runs = args
        .consumers
        .iter()
        .map(|&k| (k, args.consumer_size.clone()))
        .chain(args.sizes.iter().map(|s| (1, s.clone())));
    for (k, size) in runs {
        let (w, h) = parse_size(&size)?;
        for lossless in [true, false] {
            let demo = super::DemoArgs {
                lossless,
                slots: Some((k + 2).clamp(3, geyser::ipc::wire::MAX_SLOTS)),
                ..zero_copy(&endpoint("scale"), &size, frames, k)
            };
            let (p, cs) = run_demo(&demo)?;
            let mode = if lossless { "lossless" } else { "lossy" };
            let row = Row::slowest(mode, &size, &p, &cs);
            ok &= row.corrupted == 0 && row.frames > 0 && (!lossless || row.frames == frames);
            let mean = cs.iter().map(|c| c.cpu_us_per_frame).sum::<f64>() / cs.len().max(1) as f64;
            println!(
                "{k:>3} consumer(s) {size:>10} {mode:<8} producer {:>8.1} fps, slowest consumer {:>8.1} fps, gpu handoff {:>9} p50, CPU/frame producer {:>5.0} µs, consumers {:>5.0} µs mean",
                p.fps, row.fps, us(row.gpu_p50_us), p.cpu_us_per_frame, mean
            );
            points.push(Point {
                consumers: k,
                megapixels: f64::from(w) * f64::from(h) / 1e6,
                size: size.clone(),
                lossless,
                producer_fps: p.fps,
                row,
                consumer_cpu_mean_us: mean,
            });
        }
    }
    let by_consumers: Vec<&Point> = points.iter().take(args.consumers.len() * 2).collect();
    let by_size: Vec<&Point> = points.iter().skip(args.consumers.len() * 2).collect();
    if let Some(dir) = &bench.out {
        write_json(
            dir,
            "scaling.json",
            &serde_json::json!({ "frames": frames, "points": points }),
        )?;
        let panels = |pts: &[&Point], x: fn(&Point) -> f64| -> Vec<Panel> {
            let series =
                |y: fn(&Point) -> f64, which: &[(&str, bool)]| -> Vec<(String, Vec<(f64, f64)>)> {
                    which
                        .iter()
                        .map(|(name, lossless)| {
                            let v = pts
                                .iter()
                                .filter(|p| p.lossless == *lossless)
                                .map(|p| (x(p), y(p)))
                                .collect();
                            (name.to_string(), v)
                        })
                        .collect()
                };
            let modes = [("lossless", true), ("lossy", false)];
            let mut cpu = series(
                |p| p.row.producer_cpu_us,
                &[("producer, lossless", true), ("producer, lossy", false)],
            );
            cpu.extend(series(
                |p| p.consumer_cpu_mean_us,
                &[("consumer, lossless", true), ("consumer, lossy", false)],
            ));
            vec![
                Panel {
                    y: "frames/s (slowest consumer)".into(),
                    series: series(|p| p.row.fps, &modes),
                },
                Panel {
                    y: "GPU handoff p50 (µs, worst consumer)".into(),
                    series: series(|p| p.row.gpu_p50_us.unwrap_or(f64::NAN), &modes),
                },
                Panel {
                    y: "CPU per frame (µs)".into(),
                    series: cpu,
                },
            ]
        };
        lines(
            &dir.join("scaling-consumers.svg"),
            &format!("geyser: cost against consumers ({})", args.consumer_size),
            "consumers",
            true,
            &panels(&by_consumers, |p| p.consumers as f64),
        )?;
        lines(
            &dir.join("scaling-size.svg"),
            "geyser: cost against frame size (one consumer)",
            "megapixels per frame",
            true,
            &panels(&by_size, |p| p.megapixels),
        )?;
        println!(
            "wrote {}, {} and {}",
            dir.join("scaling.json").display(),
            dir.join("scaling-consumers.svg").display(),
            dir.join("scaling-size.svg").display()
        );
    }
    println!(
        "{}",
        if ok {
            "PASS: every delivered frame verified in every run"
        } else {
            "FAIL: frames missing or corrupted"
        }
    );
    Ok(ok)
}
