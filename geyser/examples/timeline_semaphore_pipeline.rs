//! Two Vulkan contexts in one process pass frames through a ring of K shared textures,
//! synchronized only by two shared timeline semaphores on the GPU: "ready" (producer → consumer,
//! frame f written when it reaches f + 1) and "released" (consumer → producer). The producer
//! runs up to K frames ahead; every frame is probed on the GPU. Prints throughput for K = 1 and
//! the chosen K, and checks that timeline values only grow.
//!
//! `cargo run --release --example timeline_semaphore_pipeline -- [--frames 2000] [--k 3] [--size 1920x1080]`
//! Needs a GPU that exports timeline semaphores (`geyser info`); lavapipe does not.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use geyser::common::TextureFormat;
use geyser::ipc::demo::{demo_descriptor, parse_size};
use geyser::vulkan::{
    PatternWriter, ProbeReader, SharedTimelineSemaphore, TimelinePoint, VulkanTextureShareManager,
};

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
    let args = Args::parse();
    match run(&args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("timeline_semaphore_pipeline: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> geyser::Result<()> {
    let (w, h) = parse_size(&args.size)?;
    let producer = Arc::new(VulkanTextureShareManager::create_default()?);
    let consumer = Arc::new(VulkanTextureShareManager::create_default()?);
    println!("two contexts on {}", producer.identity().name);
    let k1 = pipeline(&producer, &consumer, w, h, args.frames, 1)?;
    let kn = pipeline(&producer, &consumer, w, h, args.frames, args.k)?;
    println!(
        "K=1: {k1:.0} fps   K={}: {kn:.0} fps   ({:.2}x)",
        args.k,
        kn / k1
    );
    println!("PASS");
    Ok(())
}

/// Streams `frames` frames through a ring of `k`; returns frames per second.
fn pipeline(
    a: &Arc<VulkanTextureShareManager>,
    b: &Arc<VulkanTextureShareManager>,
    w: u32,
    h: u32,
    frames: u64,
    k: usize,
) -> geyser::Result<f64> {
    let desc = demo_descriptor(w, h, TextureFormat::Rgba8Unorm);
    let mut ring_a = Vec::new();
    let mut ring_b = Vec::new();
    for _ in 0..k {
        let t = a.create_texture(&desc)?;
        ring_b.push(b.import(a.export(&t)?)?);
        ring_a.push(t);
    }
    let ready = Arc::new(SharedTimelineSemaphore::new(a, 0)?);
    let ready_b = Arc::new(SharedTimelineSemaphore::import(b, ready.export()?)?);
    let released_b = Arc::new(SharedTimelineSemaphore::new(b, 0)?);
    let released = Arc::new(SharedTimelineSemaphore::import(a, released_b.export()?)?);
    let writer = PatternWriter::new(a, desc.tight_size())?;
    let probe = ProbeReader::new(b)?;
    // The consumer learns of each frame through a channel (the IPC layer's FrameReady).
    let (tx, rx) = mpsc::sync_channel::<u64>(k);
    let start = Instant::now();
    let consumer = std::thread::spawn(move || -> geyser::Result<()> {
        let mut last = 0;
        for f in rx {
            let slot = (f % ring_b.len() as u64) as usize;
            let wait = TimelinePoint {
                semaphore: ready_b.clone(),
                value: f + 1,
            };
            let signal = TimelinePoint {
                semaphore: released_b.clone(),
                value: f + 1,
            };
            let r = probe.check_synced(&ring_b[slot], f, &[wait], &[signal], || Ok(()))?;
            if !r.ok() {
                return Err(geyser::Error::Protocol(format!("frame {f} corrupted")));
            }
            let v = ready_b.value()?;
            if v < last {
                return Err(geyser::Error::Protocol(format!(
                    "ready timeline went backwards: {v} < {last}"
                )));
            }
            last = v;
        }
        Ok(())
    });
    for f in 0..frames {
        let slot = (f % k as u64) as usize;
        // Before reusing a slot, the GPU waits for the consumer's release of its previous frame.
        let waits: Vec<TimelinePoint> = if f >= k as u64 {
            vec![TimelinePoint {
                semaphore: released.clone(),
                value: f + 1 - k as u64,
            }]
        } else {
            vec![]
        };
        let signal = TimelinePoint {
            semaphore: ready.clone(),
            value: f + 1,
        };
        writer.write_synced(&ring_a[slot], f, &waits, &[signal], false)?;
        if tx.send(f).is_err() {
            break; // the consumer failed; its error is reported below
        }
    }
    drop(tx);
    consumer
        .join()
        .map_err(|_| geyser::Error::Protocol("consumer thread panicked".into()))??;
    writer.finish()?;
    let fps = frames as f64 / start.elapsed().as_secs_f64();
    println!(
        "K={k}: {frames} frames verified, {fps:.0} fps, ready timeline at {}",
        ready.value()?
    );
    Ok(fps)
}
