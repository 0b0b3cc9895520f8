//! `geyser bench pool`: what a shared texture costs to get (create + export + import into a
//! second context), made fresh and taken from a `TexturePool`, at each size; and what a
//! producer's ring costs to bind, new and from a pool.

use std::sync::Arc;

use clap::Args;
use geyser::vulkan::VulkanTextureShareManager;
use geyser_harness::args::parse_size;
use geyser_harness::bench::pool::{measure_pool, RING_SLOTS};
use geyser_harness::demo::demo_descriptor;

use super::{write_json, BenchArgs};

/// Options of `geyser bench pool`.
#[derive(Args, Clone, Debug)]
pub struct PoolArgs {
    /// Frame sizes, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "256x256,1920x1080,3840x2160"
    )]
    pub sizes: Vec<String>,
    /// Textures timed per kind and size (default 20; 5 with --quick).
    #[arg(long)]
    pub iterations: Option<usize>,
}

/// Runs the measurement; returns whether every texture timed was shared correctly.
pub(super) fn run(args: &PoolArgs, bench: &BenchArgs) -> geyser::Result<bool> {
    let iterations = args.iterations.unwrap_or(if bench.quick { 5 } else { 20 });
    let a = Arc::new(VulkanTextureShareManager::create_default()?);
    let b = VulkanTextureShareManager::create_default()?;
    let device = a.identity().name.clone();
    println!(
        "geyser bench pool on {device}: create + export + import into a second context, RGBA8, median of {iterations}"
    );
    println!();
    println!(
        "{:>10} {:>12} {:>24} {:>22} {:>12} {:>13}",
        "size",
        "fresh",
        "pooled, imported anew",
        "pooled, import kept",
        "ring, new",
        "ring, pooled"
    );
    let mut timings = Vec::new();
    for size in &args.sizes {
        let (w, h) = parse_size(size)?;
        let desc = demo_descriptor(w, h, geyser::common::TextureFormat::Rgba8Unorm);
        let t = measure_pool(&a, &b, &desc, iterations)?;
        println!(
            "{:>10} {:>9.3} ms {:>21.3} ms {:>19.3} ms {:>9.3} ms {:>10.3} ms",
            t.size,
            t.first_ms,
            t.recycled_new_import_ms,
            t.recycled_ms,
            t.ring_fresh_ms,
            t.ring_pooled_ms
        );
        timings.push(t);
    }
    println!();
    println!(
        "fresh: a new exportable allocation, exported and imported (a pool's miss); pooled, imported anew: the \
         allocation taken from the pool, exported as a new FD and imported (what another process pays); pooled, \
         import kept: the pool also kept the second context's import. Each texture was written on one context \
         and checked on the other. ring: `Producer::bind` of {RING_SLOTS} slots (create, export, listen), new \
         textures or `ProducerOptions::texture_pool`; a consumer received and checked a frame of each."
    );
    let ok = timings.iter().all(|t| t.corrupted == 0 && t.checked > 0);
    if let Some(dir) = &bench.out {
        let json =
            serde_json::json!({ "device": device, "iterations": iterations, "sizes": timings });
        write_json(dir, "pool.json", &json)?;
        println!("wrote {}", dir.join("pool.json").display());
    }
    println!(
        "{}",
        if ok {
            "PASS: every texture shared"
        } else {
            "FAIL: a texture did not show on the second context"
        }
    );
    Ok(ok)
}
