//! Receives frames from `ipc_producer` (or `geyser demo`'s producer), imports the ring once,
//! and checks every frame on the GPU (probe texels against the frame number's pattern).
//! Prints fps and handoff latency; exits non-zero if any frame was corrupted.
//!
//! It accepts every sync mode its device runs and gets the one the producer prefers:
//! binary semaphores with `ipc_producer` where the device exports them (the NVIDIA driver
//! does), timeline semaphores with `geyser demo`, host sync on lavapipe. `--sync` forces one.
//!
//! `cargo run --release --example ipc_consumer -- [--name geyser-demo] [--frames N]`
//!
//! The last line is `RESULT {json}` for scripts.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use geyser::vulkan::VulkanTextureShareManager;
use geyser_harness::args::ConsumerArgs;
use geyser_harness::demo::run_consumer;
use geyser_harness::report::result_line;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    consumer: ConsumerArgs,
    /// Hold each frame this many milliseconds (simulates a slow consumer).
    #[arg(long)]
    hold_ms: Option<u64>,
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
    let c = &args.consumer;
    let hold = args.hold_ms.map(Duration::from_millis);
    let report = run_consumer(
        manager,
        &c.name,
        c.options()?,
        c.frames,
        c.idle_timeout(),
        |r| {
            if r.frames == 1 {
                println!("first frame received");
            }
            if let Some(h) = hold {
                std::thread::sleep(h);
            }
        },
    )?;
    println!("received {}", report.summary());
    println!("{}", result_line(&report));
    Ok(report.passed())
}
