//! Moves frames between two Vulkan devices that cannot share memory (e.g. an NVIDIA GPU and
//! Mesa's lavapipe), both ways, on the host-memory path and on the CPU-copy path side by side.
//! Every frame is written on the source GPU with its number's pattern and probed on the
//! destination GPU. Prints the path `TransferPath::between` picks and the per-frame times.
//!
//! `cargo run --release --example cross_device -- --src nvidia --dst llvmpipe --frames 200`
//!
//! `--src`/`--dst` take what `GEYSER_DEVICE` takes: an index, a name substring, a UUID or
//! `pci:BUS`. On a machine with one device, the same device twice forces the copying paths.

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

fn manager(selector: &str) -> geyser::Result<VulkanTextureShareManager> {
    VulkanTextureShareManager::create(&ContextOptions {
        device: DeviceSelector::parse(selector),
        validation: Validation::from_env(),
    })
}

/// Runs `frames` frames `from` → `to` on `path`; returns (per-frame ms samples, corrupted).
fn run_path(
    from: &VulkanTextureShareManager,
    to: &VulkanTextureShareManager,
    desc: &TextureDescriptor,
    path: TransferPath,
    frames: u64,
) -> geyser::Result<(Vec<f64>, u64)> {
    let src = from.create_texture(desc)?;
    let dst = to.create_texture(desc)?;
    let writer = PatternWriter::new(from, desc.tight_size())?;
    let probe = ProbeReader::new(to)?;
    let mut transfer = CrossDeviceTransfer::with_path(from, to, desc, path)?;
    let (mut ms, mut corrupted) = (Vec::with_capacity(frames as usize), 0);
    for frame in 0..frames {
        writer.write(&src, frame)?;
        let timing = transfer.transfer(&src, &dst)?;
        ms.push(timing.total().as_secs_f64() * 1e3);
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
        for path in [TransferPath::HostMemory, TransferPath::CpuCopy] {
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
