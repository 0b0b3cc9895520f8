//! A wgpu application receiving frames from a Vulkan producer in another process
//! (`ipc_producer`, `geyser demo`'s producer or `wgpu_producer`). The ring is imported once as
//! `wgpu::Texture`s; every frame is sampled in a wgpu compute pass (`textureLoad` of probe
//! texels into the app's own buffer) and checked against the frame number's pattern.
//! Headless; prints fps and handoff latency, exits non-zero if a frame was corrupted.
//!
//! Terminal 1: `cargo run --release --example ipc_producer -- --frames 600 --size 1280x720`
//! Terminal 2: `cargo run --release --features webgpu --example wgpu_consumer`
//!
//! The last line is `RESULT {json}` for scripts.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use geyser::ipc::demo::parse_sync;
use geyser::ipc::ConsumerOptions;
use geyser::webgpu::demo::run_wgpu_consumer;
use geyser::webgpu::WgpuTextureShareManager;

#[derive(Parser)]
struct Args {
    /// Endpoint name of the producer.
    #[arg(long, default_value = "geyser-demo")]
    name: String,
    /// Stop after this many frames (0: until the producer ends the stream).
    #[arg(long, default_value_t = 0)]
    frames: u64,
    /// Give up when no frame arrives for this many seconds.
    #[arg(long, default_value_t = 30)]
    idle_timeout: u64,
    /// Sync mode: auto, host, timeline.
    #[arg(long, default_value = "auto")]
    sync: String,
    /// Keep every frame (for a producer started with --lossless).
    #[arg(long)]
    lossless: bool,
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("GEYSER_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(3),
        Err(e) => {
            eprintln!("wgpu_consumer: error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> geyser::Result<bool> {
    let manager = Arc::new(WgpuTextureShareManager::create_default()?);
    println!(
        "wgpu consumer on {} (wgpu {:?})",
        manager.identity().name,
        manager.adapter().get_info().backend
    );
    let options = ConsumerOptions {
        sync: parse_sync(&args.sync)?,
        lossless: args.lossless,
        ..Default::default()
    };
    let report = run_wgpu_consumer(
        manager,
        &args.name,
        options,
        args.frames,
        Duration::from_secs(args.idle_timeout),
        |r| {
            if r.frames == 1 {
                println!("first frame received as a wgpu::Texture");
            }
        },
    )?;
    println!(
        "wgpu received {} frames ({} skipped, {} corrupted) in {:.2} s: {:.1} fps, latency p50 {:.0} µs p99 {:.0} µs, sync {}; {}",
        report.frames, report.skipped, report.corrupted, report.seconds, report.fps, report.latency_p50_us, report.latency_p99_us, report.sync, report.end
    );
    println!(
        "RESULT {}",
        serde_json::to_string(&report).unwrap_or_default()
    );
    Ok(report.corrupted == 0 && report.frames > 0)
}
