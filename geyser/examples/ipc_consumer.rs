//! Receives frames from `ipc_producer` (or `geyser demo`'s producer), imports the ring once,
//! and checks every frame on the GPU (probe texels against the frame number's pattern).
//! Prints fps and handoff latency; exits non-zero if any frame was corrupted.
//!
//! `cargo run --release --example ipc_consumer -- [--name geyser-demo] [--frames N]`
//!
//! The last line is `RESULT {json}` for scripts.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use geyser::ipc::demo::{parse_sync, run_consumer};
use geyser::ipc::ConsumerOptions;
use geyser::vulkan::VulkanTextureShareManager;

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
    /// Sync mode: auto, host, binary, timeline.
    #[arg(long, default_value = "auto")]
    sync: String,
    /// Hold each frame this many milliseconds (simulates a slow consumer).
    #[arg(long)]
    hold_ms: Option<u64>,
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
            eprintln!("ipc_consumer: error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> geyser::Result<bool> {
    let manager = Arc::new(VulkanTextureShareManager::create_default()?);
    let options = ConsumerOptions {
        sync: parse_sync(&args.sync)?,
        lossless: args.lossless,
        ..Default::default()
    };
    let hold = args.hold_ms.map(Duration::from_millis);
    let report = run_consumer(
        manager,
        &args.name,
        options,
        args.frames,
        Duration::from_secs(args.idle_timeout),
        |r| {
            if r.frames == 1 {
                println!("first frame received");
            }
            if let Some(h) = hold {
                std::thread::sleep(h);
            }
        },
    )?;
    println!(
        "received {} frames ({} skipped, {} corrupted) in {:.2} s: {:.1} fps, latency p50 {:.0} µs p99 {:.0} µs, sync {}; {}",
        report.frames, report.skipped, report.corrupted, report.seconds, report.fps, report.latency_p50_us, report.latency_p99_us, report.sync, report.end
    );
    println!(
        "RESULT {}",
        serde_json::to_string(&report).unwrap_or_default()
    );
    Ok(report.corrupted == 0 && report.frames > 0)
}
