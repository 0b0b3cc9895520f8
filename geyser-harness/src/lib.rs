//! Geyser's harness: the verifying loops, patterns and reports that the `geyser` CLI, the
//! examples, the integration tests and the benches share. Not part of Geyser's API (this crate
//! is not published); everything here is built on Geyser's public API only.
//!
//! - [`pattern`]: [`pattern::PatternWriter`] fills a frame on the GPU with a word derived from
//!   its number; [`pattern::ProbeReader`] checks probe texels of a received frame.
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

pub mod pattern;

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
