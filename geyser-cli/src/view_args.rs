//! `geyser view`'s arguments, apart from the viewer (which needs the wgpu consumer: Linux and
//! Android), so every platform's CLI parses them and says why it cannot show the stream.

use std::path::PathBuf;

/// `geyser view` arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct ViewArgs {
    /// Endpoint name of the producer.
    pub name: String,
    /// Window size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    pub size: String,
    /// Stop after showing this many frames (0: until the window is closed).
    #[arg(long, default_value_t = 0)]
    pub frames: u64,
    /// With --frames: save the last frame as drawn in the window (PNG).
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Give up when no producer has been there for this many seconds (0: wait forever).
    #[arg(long, default_value_t = 0)]
    pub give_up: u64,
}
