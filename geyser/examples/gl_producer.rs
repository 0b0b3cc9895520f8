//! An OpenGL application producing frames for consumers in other processes (Vulkan
//! `ipc_consumer`, `geyser demo`'s consumers, `wgpu_consumer` or `gl_consumer`), headless.
//! The ring is made by Geyser on a Vulkan device on GL's GPU and imported into GL once; GL
//! fills each frame with its number's pattern (`glClearTexImage`), and the frame is handed
//! over with a few-byte message (after `glFinish`, or a GL semaphore signal where GL has
//! `GL_EXT_semaphore_fd`).
//!
//! Terminal 1: `cargo run --release --features gl --example gl_producer -- --frames 600`
//! Terminal 2: `cargo run --release --example ipc_consumer`
//!
//! `--memory host-dma-buf` makes the ring DMA-BUFs (GL imports them as EGLImages). The last
//! line is `RESULT {json}` for scripts.

use clap::Parser;
use geyser::common::TextureFormat;
use geyser::gl::GlContext;
use geyser_harness::args::ProducerArgs;
use geyser_harness::gl_demo::run_gl_producer;
use geyser_harness::report::result_line;

/// Frames are RGBA8 (`--size` defaults to 1280x720).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    producer: ProducerArgs,
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("GEYSER_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("gl_producer: error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> geyser::Result<()> {
    let config = args
        .producer
        .config("1280x720", TextureFormat::Rgba8Unorm)?;
    let gl = GlContext::headless()?;
    let d = &config.descriptor;
    println!(
        "GL producer `{}` on {}: {}x{} rgba8unorm, {} slots ({:?}); waiting for {} consumer(s)",
        config.name,
        gl.caps().renderer,
        d.width,
        d.height,
        config.options.slots,
        config.options.ring_memory,
        config.wait_consumers
    );
    let report = run_gl_producer(&gl, &config, |n| {
        if n % 100 == 0 {
            println!("presented {n}");
        }
    })?;
    println!(
        "GL presented {} frames in {:.2} s: {:.1} fps, sync {}",
        report.frames, report.seconds, report.fps, report.sync
    );
    println!("{}", result_line(&report));
    Ok(())
}
