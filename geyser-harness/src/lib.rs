//! Geyser's harness: the verifying loops, patterns and reports that the `geyser` CLI, the
//! examples, the integration tests and the benches share. Not part of Geyser's API (this crate
//! is not published); everything here is built on Geyser's public API only.
//!
//! - [`frame_image`]: what frame `n` looks like (a band with a word derived from `n`, a moving
//!   gradient, the number in digits), as a pure function of position.
//! - [`image_out`]: texels of any uncompressed format as 8-bit sRGB pictures, PNG files.
//! - [`pattern`]: [`pattern::PatternWriter`] draws that picture on the GPU with copies;
//!   [`pattern::ProbeReader`] checks probe texels of a received frame.
//! - [`texels`]: [`texels::TexelReader`] reads texels at given points back to the host.
//! - [`host_pattern`]: the same pattern in host memory (GStreamer and PipeWire buffers,
//!   frames that crossed a network): fill a frame, check every texel and name its frame.
//! - [`probe_ring`]: probes in flight, checked a few frames later; [`gpu_time`]: GPU
//!   timestamps of frames on the host clock (the GPU handoff).
//! - [`wgpu_pattern`] (feature `webgpu`): the same pattern written and probed through wgpu.
//! - [`demo`] (feature `ipc`): the producer and consumer loops of `geyser demo` and the
//!   `ipc_*` examples, every frame verified; [`wgpu_demo`] with wgpu on one side.
//! - [`bench`] (feature `ipc`): the in-process and CPU-copy paths `geyser bench` compares the
//!   cross-process path with.
//! - [`report`] (feature `ipc`): what the loops measure, as the JSON the CLI and examples
//!   print.
//! - [`gl_pattern`] and [`gl_demo`] (feature `gl`): the pattern and the demo loops through
//!   OpenGL.
//! - [`args`] (feature `ipc`): size and sync parsers, the paired examples' arguments.
#![warn(missing_docs)]

pub mod frame_image;
pub mod gpu_time;
pub mod host_pattern;
pub mod image_out;
pub mod pattern;
pub mod probe_ring;
pub mod texels;

#[cfg(all(
    feature = "ipc",
    any(target_os = "linux", target_os = "android", windows)
))]
pub mod args;
#[cfg(all(
    feature = "ipc",
    any(target_os = "linux", target_os = "android", windows)
))]
pub mod bench;
#[cfg(all(
    feature = "ipc",
    any(target_os = "linux", target_os = "android", windows)
))]
pub mod demo;
#[cfg(all(feature = "gl", feature = "ipc", target_os = "linux"))]
pub mod gl_demo;
#[cfg(all(feature = "gl", target_os = "linux"))]
pub mod gl_pattern;
#[cfg(all(
    feature = "ipc",
    any(target_os = "linux", target_os = "android", windows)
))]
pub mod report;
#[cfg(all(
    feature = "ipc",
    feature = "webgpu",
    any(target_os = "linux", target_os = "android")
))]
pub mod wgpu_demo;
#[cfg(feature = "webgpu")]
pub mod wgpu_pattern;
