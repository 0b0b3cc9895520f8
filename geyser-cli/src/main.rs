//! The `geyser` command: `info` shows what this machine can share; `demo` streams frames
//! between processes and verifies them.

use clap::{Parser, Subcommand};

mod info;

#[derive(Parser)]
#[command(
    name = "geyser",
    version,
    about = "Zero-copy GPU texture sharing: device info, cross-process demo, benchmarks"
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
        Command::Info { json } => info::run(json),
    };
    if let Err(e) = result {
        eprintln!("geyser: error: {e}");
        std::process::exit(1);
    }
}
