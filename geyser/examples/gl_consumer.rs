//! An OpenGL application receiving frames from a producer in another process (`ipc_producer`,
//! `geyser demo`'s producer, `wgpu_producer` or `gl_producer`), headless (EGL surfaceless or
//! device platform). The ring is imported into GL once — memory objects for opaque FDs,
//! EGLImages for DMA-BUF rings — and every frame's probe texels are read back through GL and
//! checked against the frame number's pattern. Prints fps and handoff latency, exits non-zero
//! if a frame was corrupted.
//!
//! Terminal 1: `cargo run --release --example ipc_producer -- --frames 600 --size 1280x720`
//! Terminal 2: `cargo run --release --features gl --example gl_consumer`
//!
//! The last line is `RESULT {json}` for scripts.

use clap::Parser;
use geyser::gl::GlContext;
use std::time::Duration;

use geyser_harness::args::{retry_not_found, ConsumerArgs};
use geyser_harness::gl_demo::run_gl_consumer;
use geyser_harness::report::result_line;

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
            eprintln!("gl_consumer: error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> geyser::Result<bool> {
    let gl = GlContext::headless()?;
    let caps = gl.caps();
    println!(
        "GL consumer on {} ({}; EGL {}; memory objects {}, DMA-BUF import {}, GL semaphores {})",
        caps.renderer,
        caps.version,
        caps.platform,
        caps.memory_object_fd,
        caps.dma_buf_import,
        caps.semaphore_fd
    );
    let c = &args.consumer;
    // The producer may still be starting: retry while its endpoint is not there.
    let report = retry_not_found(Duration::from_secs(30), || {
        run_gl_consumer(
            &gl,
            &c.name,
            c.options()?,
            c.frames,
            c.idle_timeout(),
            |r| {
                if r.frames == 1 {
                    println!("first frame received as a GL texture");
                }
            },
        )
    })?;
    println!("GL received {} (path {})", report.summary(), report.path);
    println!("{}", result_line(&report));
    Ok(report.passed())
}
