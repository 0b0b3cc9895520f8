//! Streams frames to consumers in other processes. Each frame is filled on the GPU with a
//! pattern derived from its number (no CPU upload), then handed over with a few-byte message.
//!
//! Synchronization: with `--sync auto` (the default) this producer prefers binary semaphores
//! (per-slot "ready"/"released" semaphores exported once) where the device exports them, then
//! timeline semaphores, then host synchronization; consumers that lack binary semaphores
//! (wgpu, lavapipe) get the next mode. `--sync binary|timeline|host` forces one.
//!
//! Terminal 1: `cargo run --release --example ipc_producer -- --frames 600`
//! Terminal 2: `cargo run --release --example ipc_consumer`
//!
//! The last line is `RESULT {json}` for scripts.

use std::sync::Arc;

use clap::Parser;
use geyser::common::TextureFormat;
use geyser::ipc::SyncMode;
use geyser::vulkan::VulkanTextureShareManager;
use geyser_harness::args::ProducerArgs;
use geyser_harness::demo::run_producer;
use geyser_harness::report::result_line;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    producer: ProducerArgs,
    /// Texel format (colour formats; see `geyser info`).
    #[arg(long, default_value = "rgba8unorm")]
    format: String,
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("GEYSER_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("ipc_producer: error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> geyser::Result<()> {
    let format: TextureFormat = args.format.parse()?;
    let mut config = args.producer.config("1920x1080", format)?;
    if config.options.sync.is_none() {
        config.options.prefer_sync = Some(SyncMode::BinarySemaphore);
    }
    let manager = Arc::new(VulkanTextureShareManager::create_default()?);
    let d = &config.descriptor;
    println!(
        "producer `{}` on {}: {}x{} {format}, {} slots; waiting for {} consumer(s)",
        config.name,
        manager.identity().name,
        d.width,
        d.height,
        config.options.slots,
        config.wait_consumers
    );
    let report = run_producer(manager, &config, |n| {
        if n % 100 == 0 {
            println!("presented {n}");
        }
    })?;
    println!(
        "presented {} frames in {:.2} s: {:.1} fps, sync {}",
        report.frames, report.seconds, report.fps, report.sync
    );
    println!("{}", result_line(&report));
    Ok(())
}
