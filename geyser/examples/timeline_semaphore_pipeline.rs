//! Two Vulkan contexts in one process pass frames through a ring of K shared textures,
//! synchronized on the GPU by two shared timeline semaphores: "ready" (producer → consumer,
//! frame f written when it reaches f + 1) and "released" (consumer → producer). The producer
//! runs up to K frames ahead; every frame is probed on the GPU and the ready timeline is checked
//! never to go backwards. Prints throughput for K = 1 and the chosen K.
//!
//! `cargo run --release --example timeline_semaphore_pipeline -- [--frames 2000] [--k 3] [--size 1920x1080]`
//! Needs a GPU that exports timeline semaphores (`geyser info`); elsewhere it says so and exits.

use std::sync::Arc;

use clap::Parser;
use geyser::common::TextureFormat;
use geyser::vulkan::VulkanTextureShareManager;
use geyser_harness::args::parse_size;
use geyser_harness::bench::run_in_process_ring;
use geyser_harness::demo::demo_descriptor;

#[derive(Parser)]
struct Args {
    /// Frames per run.
    #[arg(long, default_value_t = 2000)]
    frames: u64,
    /// Frames in flight (ring size) for the second run.
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// Frame size.
    #[arg(long, default_value = "1920x1080")]
    size: String,
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("timeline_semaphore_pipeline: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> geyser::Result<()> {
    let (w, h) = parse_size(&args.size)?;
    let producer = Arc::new(VulkanTextureShareManager::create_default()?);
    let consumer = Arc::new(VulkanTextureShareManager::create_default()?);
    if !producer.can_share_timelines() || !producer.caps()?.timeline_semaphore_export.opaque_fd {
        return Err(geyser::Error::unsupported(
            "timeline semaphore export",
            format!(
                "{} does not export timeline semaphores; this example needs a GPU that does",
                producer.identity().name
            ),
        ));
    }
    println!("two contexts on {}", producer.identity().name);
    let desc = demo_descriptor(w, h, TextureFormat::Rgba8Unorm);
    let mut fps = Vec::new();
    for k in [1, args.k] {
        let (_, c) = run_in_process_ring(&producer, &consumer, &desc, args.frames, k)?;
        if c.corrupted > 0 || c.frames != args.frames {
            return Err(geyser::Error::Protocol(format!(
                "K={k}: {} of {} frames verified",
                c.frames - c.corrupted,
                args.frames
            )));
        }
        println!(
            "K={k}: {} frames verified, {:.0} fps ({} sync)",
            c.frames, c.fps, c.sync
        );
        fps.push(c.fps);
    }
    println!(
        "K=1: {:.0} fps   K={}: {:.0} fps   ({:.2}x)",
        fps[0],
        args.k,
        fps[1],
        fps[1] / fps[0]
    );
    println!("PASS");
    Ok(())
}
