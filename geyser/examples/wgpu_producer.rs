//! A wgpu application producing frames for consumers in other processes (Vulkan
//! `ipc_consumer`, `geyser demo`'s consumers, or `wgpu_consumer`). The ring's textures are
//! created by Geyser on wgpu's device; each frame is rendered by wgpu (a render pass clearing
//! to the frame number's pattern) and handed over with a few-byte message. Headless.
//!
//! Terminal 1: `cargo run --release --features webgpu --example wgpu_producer -- --frames 600`
//! Terminal 2: `cargo run --release --example ipc_consumer`
//!
//! The last line is `RESULT {json}` for scripts.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use geyser::common::TextureFormat;
use geyser::ipc::demo::{demo_descriptor, parse_size, parse_sync, ProduceConfig};
use geyser::ipc::ProducerOptions;
use geyser::webgpu::demo::run_wgpu_producer;
use geyser::webgpu::WgpuTextureShareManager;

#[derive(Parser)]
struct Args {
    /// Endpoint name (a socket in $XDG_RUNTIME_DIR/geyser/).
    #[arg(long, default_value = "geyser-demo")]
    name: String,
    /// Frames to stream (0: forever).
    #[arg(long, default_value_t = 600)]
    frames: u64,
    /// Frame size (RGBA8).
    #[arg(long, default_value = "1280x720")]
    size: String,
    /// Textures in the ring.
    #[arg(long, default_value_t = 3)]
    slots: usize,
    /// Consumers to wait for before streaming.
    #[arg(long, default_value_t = 1)]
    wait: usize,
    /// Deliver every frame to every consumer.
    #[arg(long)]
    lossless: bool,
    /// Sync mode: auto, host, timeline.
    #[arg(long, default_value = "auto")]
    sync: String,
    /// Pause between frames, in milliseconds.
    #[arg(long)]
    interval_ms: Option<u64>,
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("GEYSER_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("wgpu_producer: error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> geyser::Result<()> {
    let (w, h) = parse_size(&args.size)?;
    let manager = Arc::new(WgpuTextureShareManager::create_default()?);
    let config = ProduceConfig {
        name: args.name.clone(),
        descriptor: demo_descriptor(w, h, TextureFormat::Rgba8Unorm),
        frames: args.frames,
        wait_consumers: args.wait,
        wait_timeout: Duration::from_secs(60),
        options: ProducerOptions {
            slots: args.slots,
            lossless: args.lossless,
            sync: parse_sync(&args.sync)?,
            max_consumers: Some(args.slots.saturating_sub(1).max(args.wait)),
            ..Default::default()
        },
        frame_interval: args.interval_ms.map(Duration::from_millis),
    };
    println!(
        "wgpu producer `{}` on {}: {w}x{h} rgba8unorm, {} slots; waiting for {} consumer(s)",
        args.name,
        manager.identity().name,
        args.slots,
        args.wait
    );
    let report = run_wgpu_producer(manager, &config, |n| {
        if n % 100 == 0 {
            println!("presented {n}");
        }
    })?;
    println!(
        "wgpu presented {} frames in {:.2} s: {:.1} fps, sync {}",
        report.frames, report.seconds, report.fps, report.sync
    );
    println!(
        "RESULT {}",
        serde_json::to_string(&report).unwrap_or_default()
    );
    Ok(())
}
