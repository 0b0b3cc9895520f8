//! Two Vulkan contexts (separate VkDevices) share one texture without a copy: context A
//! writes a pattern, exports the memory as an FD, context B imports it and reads the pattern
//! back. Prints PASS and the time of each step.
//!
//! Run: `cargo run --release --example vulkan_to_vulkan -- [--size 1920x1080] [--format rgba8unorm]`
//! `GEYSER_DEVICE` picks the GPU (index, name substring or UUID), `GEYSER_VALIDATION=1` turns
//! the validation layer on.

use std::time::{Duration, Instant};

use geyser::common::{TextureAspect, TextureDescriptor, TextureFormat, TextureUsage};
use geyser::vulkan::{aspect_size, VulkanTextureShareManager};

fn parse_args() -> Result<(u32, u32, TextureFormat), String> {
    let (mut w, mut h, mut format) = (1920, 1080, TextureFormat::Rgba8Unorm);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => {
                let v = args.next().ok_or("--size needs WxH")?;
                let (a, b) = v.split_once('x').ok_or("--size needs WxH")?;
                w = a.parse().map_err(|_| "bad width")?;
                h = b.parse().map_err(|_| "bad height")?;
            }
            "--format" => {
                format = args
                    .next()
                    .ok_or("--format needs a name")?
                    .parse()
                    .map_err(|e| format!("{e}"))?
            }
            "-h" | "--help" => {
                return Err("usage: vulkan_to_vulkan [--size WxH] [--format NAME]".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((w, h, format))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let (w, h, format) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(w, h, format) {
        eprintln!("vulkan_to_vulkan: FAIL: {e}");
        std::process::exit(1);
    }
}

fn run(w: u32, h: u32, format: TextureFormat) -> geyser::Result<()> {
    let a = VulkanTextureShareManager::create_default()?;
    let b = VulkanTextureShareManager::create_default()?;
    println!(
        "context A and B on {} ({})",
        a.identity().name,
        a.identity().driver_name
    );
    let desc = TextureDescriptor::new(
        w,
        h,
        format,
        &[
            TextureUsage::CopySrc,
            TextureUsage::CopyDst,
            TextureUsage::TextureBinding,
        ],
    )
    .with_label("vulkan_to_vulkan");

    let t0 = Instant::now();
    let texture = a.create_texture(&desc)?;
    let t_create = t0.elapsed();

    let mut written = Vec::new();
    let t0 = Instant::now();
    for (i, aspect) in TextureAspect::all_of(format).iter().enumerate() {
        let len = aspect_size(&texture, *aspect) as usize;
        let data: Vec<u8> = match (format, aspect) {
            // Valid depth values: [0, 1] floats, 24-bit D24.
            (
                TextureFormat::Depth32Float | TextureFormat::Depth32FloatStencil8,
                TextureAspect::Depth,
            ) => (0..len / 4)
                .flat_map(|i| ((i % 997) as f32 / 997.0).to_le_bytes())
                .collect(),
            (TextureFormat::Depth24UnormStencil8, TextureAspect::Depth) => (0..len / 4)
                .flat_map(|i| ((i as u32 * 40503) & 0xff_ffff).to_le_bytes())
                .collect(),
            _ => (0..len)
                .map(|j| (j.wrapping_mul(131) + i * 7 + j / 4093) as u8)
                .collect(),
        };
        a.write_texture(&texture, *aspect, &data)?;
        written.push((*aspect, data));
    }
    let t_write = t0.elapsed();

    let t0 = Instant::now();
    let exported = a.export(&texture)?;
    let t_export = t0.elapsed();
    let t0 = Instant::now();
    let imported = b.import_with(exported, &desc)?;
    let t_import = t0.elapsed();

    let t0 = Instant::now();
    let mut ok = true;
    for (aspect, want) in &written {
        let got = b.read_texture(&imported, *aspect)?;
        let same =
            if (format, *aspect) == (TextureFormat::Depth24UnormStencil8, TextureAspect::Depth) {
                want.chunks_exact(4)
                    .zip(got.chunks_exact(4))
                    .all(|(x, y)| x[..3] == y[..3])
            } else {
                &got == want
            };
        ok &= same;
    }
    let t_read = t0.elapsed();

    println!(
        "{w}x{h} {format}: {} bytes shared, no copy between contexts",
        imported.export_info().allocation_size
    );
    println!(
        "  create {}  export {}  import {}",
        ms(t_create),
        ms(t_export),
        ms(t_import)
    );
    println!(
        "  (host upload in A {}, host readback in B {}: test I/O, not the share)",
        ms(t_write),
        ms(t_read)
    );
    if !ok {
        return Err(geyser::Error::Protocol(
            "texels read in context B differ from those written in A".into(),
        ));
    }
    println!("PASS");
    Ok(())
}
