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

use clap::Parser;
use geyser::webgpu::WgpuTextureShareManager;
use geyser_harness::args::ConsumerArgs;
use geyser_harness::report::result_line;
use geyser_harness::wgpu_demo::run_wgpu_consumer;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    consumer: ConsumerArgs,
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
    let c = &args.consumer;
    let report = run_wgpu_consumer(
        manager,
        &c.name,
        c.options()?,
        c.frames,
        c.idle_timeout(),
        |r| {
            if r.frames == 1 {
                println!("first frame received as a wgpu::Texture");
            }
        },
    )?;
    println!("wgpu received {}", report.summary());
    println!("{}", result_line(&report));
    Ok(report.passed())
}
