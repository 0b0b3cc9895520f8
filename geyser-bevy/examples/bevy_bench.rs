//! What a publisher costs a Bevy app, and how fast its frames reach a Vulkan consumer: renders
//! the examples' scene headless at full speed (no frame pacing) into a 1080p target, either a
//! plain Bevy image (`--target image`) or a `GeyserPublisher` (`--target publisher`, which
//! starts a Vulkan consumer process of its own: this program with `--consume`). Prints
//! `RESULT {json}`: Bevy's fps over the measured frames, and with a publisher the consumer's
//! handoff latency (p50/p99) and the negotiated sync mode.
//!
//! `cargo run --release -p geyser-bevy --example bevy_bench --ignore-rust-version -- --target publisher --frames 2000`
//!
//! Run both targets one after the other on one machine and compare (scripts/device/bevy-bench.sh).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::asset::RenderAssetUsages;
use bevy::camera::RenderTarget;
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::prelude::*;
use bevy::render::render_resource::TextureFormat;
use clap::{Parser, ValueEnum};
use common::scene::{eye, scene, spin};
use geyser::ipc::ConsumerOptions;
use geyser::vulkan::VulkanTextureShareManager;
use geyser_bevy::{GeyserPublisher, GeyserPublisherStatus};
use geyser_harness::demo::run_texel_consumer;
use geyser_harness::report::result_line;

#[derive(Parser)]
struct Args {
    /// Where the camera renders.
    #[arg(long, value_enum, default_value_t = Target::Publisher)]
    target: Target,
    /// Frames to measure (after `--warmup`).
    #[arg(long, default_value_t = 2000)]
    frames: u32,
    /// Frames rendered before measuring (pipelines, first connections).
    #[arg(long, default_value_t = 120)]
    warmup: u32,
    /// Frame size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080")]
    size: String,
    /// Run as the Vulkan consumer of this endpoint (what `--target publisher` starts).
    #[arg(long, value_name = "NAME")]
    consume: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Target {
    /// A plain Bevy image (no Geyser).
    Image,
    /// A `GeyserPublisher`, with a Vulkan consumer attached.
    Publisher,
}

/// The measurement, printed as `RESULT {json}`.
#[derive(serde::Serialize, Default)]
struct BenchReport {
    target: String,
    width: u32,
    height: u32,
    frames: u32,
    seconds: f64,
    fps: f64,
    /// Frames the publisher presented while measuring.
    presented: u64,
    sync: Option<String>,
    consumer: Option<serde_json::Value>,
}

#[derive(Resource)]
struct Measure {
    warmup: u32,
    frames: u32,
    seen: u32,
    start: Option<Instant>,
    presented_at_start: u64,
    report: BenchReport,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Ok((width, height)) = geyser_harness::args::parse_size(&args.size) else {
        eprintln!("--size: expected WIDTHxHEIGHT");
        return ExitCode::from(2);
    };
    if let Some(name) = &args.consume {
        return consume(name);
    }
    let name = format!("bevy_bench-{}", std::process::id());
    let mut consumer = None;
    if args.target == Target::Publisher {
        let exe = std::env::current_exe().expect("own path");
        match Command::new(exe)
            .args(["--consume", &name])
            .stdout(Stdio::piped())
            .spawn()
        {
            Ok(child) => consumer = Some(child),
            Err(e) => {
                eprintln!("starting the consumer: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let run = common::RunArgs {
        headless: true,
        unpaced: true,
        ..default()
    };
    let mut app = common::app("bevy_bench", &run);
    app.insert_resource(Measure {
        warmup: args.warmup,
        frames: args.frames,
        seen: 0,
        start: None,
        presented_at_start: 0,
        report: BenchReport {
            target: format!("{:?}", args.target).to_lowercase(),
            width,
            height,
            frames: args.frames,
            ..default()
        },
    })
    .add_systems(
        Startup,
        move |mut commands: Commands,
              mut meshes: ResMut<Assets<Mesh>>,
              mut materials: ResMut<Assets<StandardMaterial>>,
              mut images: ResMut<Assets<Image>>| {
            scene(&mut commands, &mut meshes, &mut materials);
            let camera = (Camera3d::default(), Tonemapping::None, eye());
            match args.target {
                Target::Image => {
                    let mut target = Image::new_target_texture(
                        width,
                        height,
                        TextureFormat::Rgba8UnormSrgb,
                        None,
                    );
                    target.asset_usage =
                        RenderAssetUsages::RENDER_WORLD | RenderAssetUsages::MAIN_WORLD;
                    let image = images.add(target);
                    commands.spawn((camera, RenderTarget::Image(image.into())));
                }
                Target::Publisher => {
                    commands.spawn((camera, GeyserPublisher::new(name.clone(), width, height)));
                }
            }
        },
    )
    .add_systems(Update, (spin, measure));
    let code = common::run(app);
    let mut report = app_report();
    if let Some(mut child) = consumer {
        // The publisher's endpoint closed with the app: the consumer ends its stream.
        let stdout = child.stdout.take().expect("piped");
        let line = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("RESULT ").map(str::to_owned));
        let _ = child.wait();
        report.consumer = line.and_then(|l| serde_json::from_str(&l).ok());
    }
    println!("{}", result_line(&report));
    ExitCode::from(code)
}

/// The report the app left behind (it is moved out of the finished app's world).
fn app_report() -> BenchReport {
    REPORT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default()
}

static REPORT: std::sync::Mutex<Option<BenchReport>> = std::sync::Mutex::new(None);

fn measure(
    mut m: ResMut<Measure>,
    status: Query<&GeyserPublisherStatus>,
    mut exit: MessageWriter<AppExit>,
) {
    let presented = status.iter().map(|s| s.frames).sum::<u64>();
    m.seen += 1;
    if m.seen == m.warmup {
        m.start = Some(Instant::now());
        m.presented_at_start = presented;
        m.report.sync = status.iter().find_map(|s| s.sync.map(|s| format!("{s:?}")));
    }
    if m.seen == m.warmup + m.frames {
        let seconds = m.start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let frames = m.frames;
        let presented_at_start = m.presented_at_start;
        let mut report = std::mem::take(&mut m.report);
        report.seconds = seconds;
        report.fps = f64::from(frames) / seconds;
        report.presented = presented - presented_at_start;
        *REPORT.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
        exit.write(AppExit::Success);
    }
}

/// The Vulkan consumer: reads one texel of every frame (the scene's background in the top-left
/// corner) until the stream ends, then prints its report.
fn consume(name: &str) -> ExitCode {
    let result = VulkanTextureShareManager::create_default().and_then(|manager| {
        let manager = Arc::new(manager);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let attempt = run_texel_consumer(
                manager.clone(),
                name,
                ConsumerOptions::default(),
                0,
                Duration::from_secs(30),
                &[(0, 0)],
                |_, _| Ok(()),
            );
            match attempt {
                Err(geyser::Error::NotFound { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                other => break other,
            }
        }
    });
    match result {
        Ok(report) => {
            println!("{}", result_line(&report));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("consumer: {e}");
            ExitCode::from(1)
        }
    }
}
