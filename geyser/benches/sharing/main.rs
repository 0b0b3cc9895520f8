//! criterion benchmarks: texture create / export / import (256², 1080p, 4K; RGBA8 and RGBA16F),
//! FD transfer over a socket, the per-frame handoff round trip in each sync mode the device
//! runs, and the whole pipeline in-process vs through the IPC layer.
//!
//! `cargo bench -p geyser --bench sharing` (set `GEYSER_DEVICE` to pick the GPU). Speed claims
//! come from GPU runs; on lavapipe these measure the CPU renderer.
//!
//! Linux only (the IPC paths use Unix sockets; criterion is a Linux-only dev-dependency, as it
//! builds C code that the foreign-target check in `scripts/check-targets` cannot compile).

#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the sharing benchmarks run on Linux only");
}
