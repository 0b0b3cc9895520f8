#!/usr/bin/env bash
# Runs every Geyser test on this machine, the way CI does: installs the Vulkan loader, Mesa's
# lavapipe and the validation layers when missing (needs root or sudo; otherwise prints the
# command), then runs the workspace tests with the Khronos validation layer on (any validation
# error fails a test) and the README usage example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
# `geyser view`'s test opens a window under a virtual X server: Xvfb, and the X client
# libraries winit loads at run time.
# shellcheck source=lib/install-missing.sh
source scripts/lib/install-missing.sh
install_missing geyser xvfb xauth libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0
command -v cargo >/dev/null || {
  echo "geyser: cargo not found; install Rust (https://rustup.rs) and try again" >&2
  exit 2
}
# geyser-bevy's windowed examples run under a virtual X server (Xvfb) with winit's X11 client
# libraries (loaded at run time); building Bevy needs no -dev package.
source scripts/lib/install-missing.sh
install_missing geyser xvfb libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0
export GEYSER_VALIDATION=1
# Several processes each create Vulkan devices; keep lavapipe from starting a thread per core
# per device on small CI machines.
export LP_NUM_THREADS=${LP_NUM_THREADS:-2}
# `webgpu` is not a default feature (it pulls in wgpu); CI tests it with everything else.
# `--workspace` includes geyser-bevy (left out of plain `cargo test`: it builds Bevy). Bevy
# 0.20.1 declares Rust 1.97.1 but builds and runs on 1.95 (checked), so cargo is told to
# ignore that; one command builds Bevy and everything else once, with one set of features.
# geyser-bevy's tests run its windowed examples as programs, and `--all-targets` builds examples
# only as test harnesses: build the programs first (same flags, so nothing else is rebuilt).
cargo build --workspace --examples --features geyser/webgpu --ignore-rust-version
cargo test --workspace --all-targets --features geyser/webgpu --ignore-rust-version
cargo test --workspace --doc --features geyser/webgpu --ignore-rust-version
cargo run --quiet --example readme_usage
# The benchmark's short run: all three paths at 1080p and 4K, every frame verified (no
# assertion on speed: lavapipe is a CPU renderer).
cargo run --quiet -p geyser-cli -- bench --quick
