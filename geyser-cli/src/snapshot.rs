//! `geyser snapshot NAME OUT.png`: connects to a producer as an ordinary consumer (headless),
//! takes `--frames K` frames, copies the last one out of the GPU and writes it as a PNG
//! (8-bit sRGB; see `geyser_harness::image_out` for how each format is shown; depth as grey).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use geyser::common::TextureAspect;
use geyser::ipc::{Consumer, ConsumerOptions};
use geyser::vulkan::VulkanTextureShareManager;
use geyser::{Error, SharedTexture};
use geyser_harness::args::retry_not_found;
use geyser_harness::image_out::{to_rgba8, write_png};

/// `geyser snapshot` arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct SnapshotArgs {
    /// Endpoint name of the producer.
    pub name: String,
    /// The PNG file to write.
    pub out: PathBuf,
    /// Frames to receive; the last one is written.
    #[arg(long, default_value_t = 1)]
    pub frames: u64,
    /// Give up when the producer is not there, or sends no frame, for this many seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// Runs `geyser snapshot`.
pub fn run(args: &SnapshotArgs) -> geyser::Result<()> {
    if args.frames == 0 {
        return Err(Error::InvalidArgument {
            what: "--frames",
            reason: "0; take at least one frame".into(),
        });
    }
    let timeout = Duration::from_secs(args.timeout);
    let manager = Arc::new(VulkanTextureShareManager::create_default()?);
    let options = ConsumerOptions {
        name: format!("geyser-snapshot-{}", std::process::id()),
        ..Default::default()
    };
    let mut consumer = retry_not_found(timeout, || {
        Consumer::connect_with(&args.name, manager.clone(), options.clone())
    })?;
    let d = consumer.descriptor().clone();
    let extent = *consumer.textures()[0].extent();
    println!(
        "connected to `{}`: {}x{} {}, {} layer(s), {} mip(s), sync {:?}, path {:?}",
        args.name,
        d.width,
        d.height,
        d.format,
        extent.depth_or_array_layers,
        extent.mip_level_count,
        consumer.sync_mode(),
        consumer.transfer_path()
    );
    for i in 1..=args.frames {
        let frame = consumer.next_frame(Some(timeout))?;
        println!(
            "frame {} (slot {}): handoff {} µs, age {} µs",
            frame.number(),
            frame.slot(),
            frame.latency().as_micros(),
            frame.age().as_micros()
        );
        if i < args.frames {
            continue;
        }
        frame.wait_ready(timeout)?;
        let aspect = TextureAspect::all_of(d.format)[0];
        // Mip 0 of every layer; the picture is the first layer (or depth slice).
        let bytes = manager.read_texture(frame.texture(), aspect)?;
        let number = frame.number();
        drop(frame);
        let image = to_rgba8(d.format, d.width, d.height, &bytes)?;
        write_png(&args.out, &image)?;
        println!(
            "snapshot of frame {number}: {} ({}x{}, {} as 8-bit sRGB)",
            args.out.display(),
            image.width,
            image.height,
            d.format
        );
    }
    drop(consumer);
    crate::demo::check_validation()
}
