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

use clap::Parser;
use geyser::common::TextureFormat;
use geyser::webgpu::WgpuTextureShareManager;
use geyser_harness::args::ProducerArgs;
use geyser_harness::report::result_line;
use geyser_harness::wgpu_demo::run_wgpu_producer;

/// Frames are RGBA8 (`--size` defaults to 1280x720).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    producer: ProducerArgs,
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
    let config = args
        .producer
        .config("1280x720", TextureFormat::Rgba8Unorm)?;
    let manager = Arc::new(WgpuTextureShareManager::create_default()?);
    let d = &config.descriptor;
    println!(
        "wgpu producer `{}` on {}: {}x{} rgba8unorm, {} slots; waiting for {} consumer(s)",
        config.name,
        manager.identity().name,
        d.width,
        d.height,
        config.options.slots,
        config.wait_consumers
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
    println!("{}", result_line(&report));
    Ok(())
}
