//! The `geyser` command: `info` shows what this machine can share; `demo` streams frames
//! between processes and verifies them; `bench` measures; `snapshot` and `view` show a
//! producer's frames (a PNG, a window).

use clap::{Parser, Subcommand};

mod bench;
mod demo;
#[cfg(feature = "gstreamer")]
mod gst_meter;
mod info;
mod snapshot;
#[cfg(feature = "gstreamer")]
mod stream;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod view;
mod view_args;

#[derive(Parser)]
#[command(
    name = "geyser",
    version,
    about = "Zero-copy GPU texture sharing: device info, cross-process demo, benchmarks, snapshots and a viewer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the Vulkan devices and what each can share (formats, handle types, sync).
    Info {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stream verified frames from one producer process to K consumer processes.
    Demo(demo::DemoArgs),
    /// Measure zero-copy sharing against in-process sharing and a CPU copy, side by side.
    Bench(bench::BenchArgs),
    /// Connect to a producer (headless), take frame(s) and write the last one as a PNG.
    Snapshot(snapshot::SnapshotArgs),
    /// Show a producer's stream in a window (reconnects when the producer restarts).
    View(view_args::ViewArgs),
    /// Carry a Geyser stream to another machine (RTP over UDP: raw or H.264) or to PipeWire,
    /// and back into a Geyser endpoint, through GStreamer.
    #[cfg(feature = "gstreamer")]
    Stream(stream::StreamArgs),
    /// Carry a Geyser stream over the network or to PipeWire (this build has no GStreamer:
    /// rebuild with `--features gstreamer`).
    #[cfg(not(feature = "gstreamer"))]
    Stream {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// (internal) A GStreamer pipeline measured at its `meter` element (the transport bench).
    #[cfg(feature = "gstreamer")]
    #[command(name = "__gst-meter", hide = true)]
    GstMeter(gst_meter::MeterArgs),
    /// (internal) The demo's producer process.
    #[command(name = "__produce", hide = true)]
    Produce(demo::DemoArgs),
    /// (internal) A demo consumer process.
    #[command(name = "__consume", hide = true)]
    Consume(demo::DemoArgs),
    /// (internal) The CPU-copy benchmark's producer process.
    #[command(name = "__cpu-produce", hide = true)]
    CpuProduce(bench::CpuCopyArgs),
    /// (internal) The CPU-copy benchmark's consumer process.
    #[command(name = "__cpu-consume", hide = true)]
    CpuConsume(bench::CpuCopyArgs),
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GEYSER_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { json } => info::run(json).map(|()| true),
        Command::Demo(args) => demo::run(&args),
        Command::Produce(args) => demo::produce(&args).map(|()| true),
        Command::Consume(args) => demo::consume(&args).map(|()| true),
        Command::Bench(args) => bench::run(&args),
        Command::Snapshot(args) => snapshot::run(&args).map(|()| true),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Command::View(args) => view::run(&args),
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Command::View(_) => Err(geyser::Error::unsupported(
            "geyser view",
            "the viewer takes frames through the wgpu consumer, which exists on Linux and Android",
        )),
        #[cfg(feature = "gstreamer")]
        Command::Stream(args) => stream::run(&args),
        #[cfg(feature = "gstreamer")]
        Command::GstMeter(args) => gst_meter::run(&args),
        #[cfg(not(feature = "gstreamer"))]
        Command::Stream { .. } => Err(geyser::Error::unsupported(
            "geyser stream",
            "this geyser was built without GStreamer; rebuild with `--features gstreamer`",
        )),
        Command::CpuProduce(args) => bench::cpu_produce(&args).map(|()| true),
        Command::CpuConsume(args) => bench::cpu_consume(&args).map(|()| true),
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("geyser: error: {e}");
            if let Some(hint) = hint(&e) {
                eprintln!("geyser: hint: {hint}");
            }
            std::process::exit(1);
        }
    }
}

/// What to try with this command's flags: the library's errors speak of library options, the
/// CLI translates.
fn hint(e: &geyser::Error) -> Option<&'static str> {
    use geyser::common::RejectReason;
    match e {
        geyser::Error::Unsupported { feature, .. } if feature.ends_with("synchronization") => {
            Some("`geyser info` shows which semaphores the device exports; try --sync auto or --sync host")
        }
        geyser::Error::Rejected { reason: RejectReason::Busy, .. } => {
            Some("the producer serves one consumer fewer than its ring has slots; give it more --slots")
        }
        geyser::Error::Loader(_) => {
            Some("on Debian/Ubuntu, `bash scripts/ensure-vulkan.sh` installs the Vulkan loader and lavapipe")
        }
        _ => None,
    }
}
