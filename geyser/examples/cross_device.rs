//! Moves frames between two Vulkan devices that cannot share memory (e.g. an NVIDIA GPU and
//! Mesa's lavapipe, or two GPUs), both ways, on the host-memory path and on the CPU-copy path
//! side by side, and (feature `cuda`) on the peer path where both are CUDA devices with peer
//! access (NVLink or PCIe). Every frame is written on the source GPU with its number's pattern
//! and probed on the destination GPU. Prints the path Geyser picks and the per-frame times.
//!
//! `cargo run --release --example cross_device -- --src nvidia --dst llvmpipe --frames 200`
//!
//! `--src`/`--dst` take what `GEYSER_DEVICE` takes: an index, a name substring, a UUID or
//! `pci:BUS`. On a machine with one device, the same device twice forces the copying paths.

use std::sync::Arc;

use clap::Parser;
use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
use geyser::vulkan::{
    ContextOptions, CrossDeviceTransfer, DeviceSelector, TransferPath, Validation,
    VulkanTextureShareManager,
};
use geyser_harness::args::parse_size;
use geyser_harness::pattern::{PatternWriter, ProbeReader};
use geyser_harness::report::percentile;

#[derive(Parser)]
struct Args {
    /// Source device.
    #[arg(long, default_value = "0")]
    src: String,
    /// Destination device.
    #[arg(long, default_value = "1")]
    dst: String,
    /// Frame size (RGBA8).
    #[arg(long, default_value = "1920x1080")]
    size: String,
    /// Frames per path and direction.
    #[arg(long, default_value_t = 100)]
    frames: u64,
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(3),
        Err(e) => {
            eprintln!("cross_device: error: {e}");
            std::process::exit(1);
        }
    }
}

fn manager(selector: &str) -> geyser::Result<Arc<VulkanTextureShareManager>> {
    Ok(Arc::new(VulkanTextureShareManager::create(
        &ContextOptions {
            device: DeviceSelector::parse(selector),
            validation: Validation::from_env(),
        },
    )?))
}

/// Runs `frames` frames `from` → `to` on `path`; returns (per-frame ms samples, corrupted).
fn run_path(
    from: &Arc<VulkanTextureShareManager>,
    to: &Arc<VulkanTextureShareManager>,
    desc: &TextureDescriptor,
    path: TransferPath,
    frames: u64,
) -> geyser::Result<(Vec<f64>, u64)> {
    let src = from.create_texture(desc)?;
    let dst = to.create_texture(desc)?;
    let writer = PatternWriter::new(from, desc.tight_size())?;
    let probe = ProbeReader::new(to)?;
    // One frame moved: the time of the transfer alone (the source's write is done first).
    let mut transfer: Box<dyn FnMut() -> geyser::Result<f64>> = match path {
        #[cfg(all(feature = "cuda", target_os = "linux"))]
        TransferPath::Peer => {
            let peer = geyser::cuda::PeerTransfer::new(from, to, desc)?;
            let (src, dst) = (src.clone(), dst.clone());
            Box::new(move || {
                let t0 = std::time::Instant::now();
                peer.transfer(&src, &dst)?;
                Ok(t0.elapsed().as_secs_f64() * 1e3)
            })
        }
        path => {
            let mut t = CrossDeviceTransfer::with_path(from, to, desc, path)?;
            let (src, dst) = (src.clone(), dst.clone());
            Box::new(move || Ok(t.transfer(&src, &dst)?.total().as_secs_f64() * 1e3))
        }
    };
    let (mut ms, mut corrupted) = (Vec::with_capacity(frames as usize), 0);
    for frame in 0..frames {
        writer.write(&src, frame)?;
        ms.push(transfer()?);
        if !probe.check(&dst, frame)?.ok() {
            corrupted += 1;
        }
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    Ok((ms, corrupted))
}

fn run(args: &Args) -> geyser::Result<bool> {
    let (w, h) = parse_size(&args.size)?;
    let a = manager(&args.src)?;
    let b = manager(&args.dst)?;
    #[cfg(all(feature = "cuda", target_os = "linux"))]
    let auto = geyser::cuda::transfer_path_between(a.caps()?, b.caps()?);
    #[cfg(not(all(feature = "cuda", target_os = "linux")))]
    let auto = TransferPath::between(a.caps()?, b.caps()?);
    println!(
        "source:      {} ({})",
        a.identity().name,
        a.identity().driver_name
    );
    println!(
        "destination: {} ({})",
        b.identity().name,
        b.identity().driver_name
    );
    println!("path chosen: {auto}");
    let desc = TextureDescriptor::new(
        w,
        h,
        TextureFormat::Rgba8Unorm,
        &[TextureUsage::CopySrc, TextureUsage::CopyDst],
    )
    .with_label("cross-device");
    let bytes = desc.tight_size() as f64;
    let mut all_ok = true;
    let mut p50 = std::collections::HashMap::new();
    for (from, to, dir) in [(&a, &b, "src -> dst"), (&b, &a, "dst -> src")] {
        let mut paths = vec![TransferPath::HostMemory, TransferPath::CpuCopy];
        if auto == TransferPath::Peer {
            paths.insert(0, TransferPath::Peer);
        }
        for path in paths {
            match run_path(from, to, &desc, path, args.frames) {
                Ok((ms, corrupted)) => {
                    let median = percentile(&ms, 50.0);
                    println!(
                        "{dir} {w}x{h} {:<11} {} frames, {corrupted} corrupted: p50 {median:.3} ms, p99 {:.3} ms, {:.2} GB/s",
                        format!("{path:?}"),
                        args.frames,
                        percentile(&ms, 99.0),
                        bytes / (median / 1e3) / 1e9
                    );
                    all_ok &= corrupted == 0;
                    p50.insert((dir, path), median);
                }
                Err(e) => println!("{dir} {path:?}: {e}"),
            }
        }
        if let (Some(h), Some(c)) = (
            p50.get(&(dir, TransferPath::HostMemory)),
            p50.get(&(dir, TransferPath::CpuCopy)),
        ) {
            println!(
                "{dir}: host-memory path is {:.2}x the CPU-copy path's speed",
                c / h
            );
        }
        if let (Some(p), Some(h)) = (
            p50.get(&(dir, TransferPath::Peer)),
            p50.get(&(dir, TransferPath::HostMemory)),
        ) {
            println!(
                "{dir}: peer path is {:.2}x the host-memory path's speed",
                h / p
            );
        }
    }
    if geyser::vulkan::diagnostics::validation_error_count() > 0 {
        println!(
            "validation errors: {:#?}",
            geyser::vulkan::diagnostics::validation_messages()
        );
        all_ok = false;
    }
    println!(
        "{}",
        if all_ok {
            "PASS: every frame verified"
        } else {
            "FAIL: corrupted frames or validation errors"
        }
    );
    Ok(all_ok)
}
