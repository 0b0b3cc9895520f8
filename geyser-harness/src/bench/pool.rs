//! What a shared texture costs to get: create + export + import into a second context, made
//! fresh (what a [`TexturePool`] does on a miss) or taken from the pool, either with a new
//! import (what another process pays: a new FD to import) or with the import the pool kept
//! (a second context of the same process). Every texture timed is then written on the first
//! context and checked on the second, outside the timing, to prove it is shared. And a
//! producer's ring (`Producer::bind`, three slots): new, and from a pool
//! (`ProducerOptions::texture_pool`), each checked by a consumer receiving a frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use geyser::common::TextureDescriptor;
use geyser::ipc::{Consumer, Producer, ProducerOptions};
use geyser::vulkan::{TexturePool, VulkanTexture, VulkanTextureShareManager};
use geyser::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::pattern::{PatternWriter, ProbeReader};
use crate::report::percentile;

/// Slots of the producer rings timed.
pub const RING_SLOTS: usize = 3;

/// Medians of one size, milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PoolTiming {
    /// `WxH`.
    pub size: String,
    /// Fresh: allocate, export, import.
    pub first_ms: f64,
    /// From the pool, exported and imported anew (as for another process).
    pub recycled_new_import_ms: f64,
    /// From the pool with the import it kept (a second context in this process).
    pub recycled_ms: f64,
    /// `Producer::bind` of a ring of [`RING_SLOTS`] new textures (exported, listening).
    pub ring_fresh_ms: f64,
    /// The same with the ring from a pool that holds it.
    pub ring_pooled_ms: f64,
    /// Textures checked (each written on one context and probed on the other).
    pub checked: u64,
    /// Checks that failed (must be 0).
    pub corrupted: u64,
}

/// Measures `iterations` loans of each kind of `desc` from `a` into `b`.
pub fn measure_pool(
    a: &Arc<VulkanTextureShareManager>,
    b: &VulkanTextureShareManager,
    desc: &TextureDescriptor,
    iterations: usize,
) -> Result<PoolTiming> {
    if iterations == 0 {
        return Err(Error::InvalidArgument {
            what: "iterations",
            reason: "at least one".into(),
        });
    }
    let writer = PatternWriter::new(a, desc.tight_size())?;
    let probe = ProbeReader::new(b)?;
    let mut timing = PoolTiming {
        size: format!("{}x{}", desc.width, desc.height),
        ..Default::default()
    };
    let mut check = |ours: &VulkanTexture, theirs: &VulkanTexture, n: u64| -> Result<()> {
        writer.write(ours, n)?;
        timing.checked += 1;
        timing.corrupted += u64::from(!probe.check(theirs, n)?.ok());
        Ok(())
    };
    let mut n = 0;
    // Fresh: a pool that keeps nothing misses every time.
    let empty = TexturePool::new(a.clone(), 0);
    let mut first = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t0 = Instant::now();
        let mut t = empty.create(desc)?;
        let theirs = t.import_into(b)?;
        first.push(t0.elapsed().as_secs_f64() * 1e3);
        check(&t, &theirs, n)?;
        n += 1;
    }
    let pool = TexturePool::new(a.clone(), 1);
    drop(pool.create(desc)?);
    let mut new_import = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t0 = Instant::now();
        let t = pool.create(desc)?;
        let theirs = b.import(a.export(&t)?)?;
        new_import.push(t0.elapsed().as_secs_f64() * 1e3);
        check(&t, &theirs, n)?;
        n += 1;
    }
    let mut kept = Vec::with_capacity(iterations);
    drop(pool.create(desc)?.import_into(b)?);
    for _ in 0..iterations {
        let t0 = Instant::now();
        let mut t = pool.create(desc)?;
        let theirs = t.import_into(b)?;
        kept.push(t0.elapsed().as_secs_f64() * 1e3);
        check(&t, &theirs, n)?;
        n += 1;
    }
    // A consumer (on the producer's manager) receives a frame of each ring timed.
    let probe_a = ProbeReader::new(a)?;
    let (ring_fresh, ring_pooled) = measure_rings(a, desc, iterations, &mut |p, name| {
        let mut c = Consumer::connect(name, a.clone())?;
        let slot = p.acquire(None)?;
        crate::demo::write_slot(&writer, &slot)?;
        p.present(slot)?;
        let f = c.next_frame(Some(Duration::from_secs(5)))?;
        timing.checked += 1;
        timing.corrupted += u64::from(!probe_a.check(f.texture(), f.number())?.ok());
        Ok(())
    })?;
    timing.ring_fresh_ms = ring_fresh;
    timing.ring_pooled_ms = ring_pooled;
    let stats = pool.stats();
    if stats.created != 1 {
        return Err(Error::Internal(format!(
            "the pool allocated {} textures for one descriptor",
            stats.created
        )));
    }
    timing.first_ms = median(&mut first);
    timing.recycled_new_import_ms = median(&mut new_import);
    timing.recycled_ms = median(&mut kept);
    Ok(timing)
}

/// Median milliseconds of `iterations` `Producer::bind`s of a ring of `desc` on `a`: new
/// textures each time, then from a pool that holds the ring (filled by one bind first). `check`
/// runs on each producer (with its endpoint name) outside the timing.
fn measure_rings(
    a: &Arc<VulkanTextureShareManager>,
    desc: &TextureDescriptor,
    iterations: usize,
    check: &mut dyn FnMut(&Producer, &str) -> Result<()>,
) -> Result<(f64, f64)> {
    let pool = TexturePool::new(a.clone(), RING_SLOTS);
    let mut n = 0;
    let mut bind = |pooled: bool| -> Result<(f64, Producer, String)> {
        n += 1;
        let name = format!("geyser-bench-ring-{}-{n}", std::process::id());
        let options = ProducerOptions {
            slots: RING_SLOTS,
            texture_pool: pooled.then(|| pool.clone()),
            ..Default::default()
        };
        let t0 = Instant::now();
        let p = Producer::bind(&name, a.clone(), desc, options)?;
        Ok((t0.elapsed().as_secs_f64() * 1e3, p, name))
    };
    let mut fresh = Vec::with_capacity(iterations);
    let mut pooled = Vec::with_capacity(iterations);
    // The pool's first ring, outside the timing.
    drop(bind(true)?);
    for i in 0..2 * iterations {
        let (ms, p, name) = bind(i % 2 == 1)?;
        check(&p, &name)?;
        if i % 2 == 1 {
            pooled.push(ms)
        } else {
            fresh.push(ms)
        }
    }
    let stats = pool.stats();
    if stats.created != RING_SLOTS as u64 {
        return Err(Error::Internal(format!(
            "the pool allocated {} textures for rings of {RING_SLOTS}",
            stats.created
        )));
    }
    Ok((median(&mut fresh), median(&mut pooled)))
}

/// The median of `samples` (sorted in place).
fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|x, y| x.total_cmp(y));
    percentile(samples, 50.0)
}
