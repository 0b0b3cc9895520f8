#!/usr/bin/env bash
# Runs every Geyser test on this machine, the way CI does: installs the Vulkan loader, Mesa's
# lavapipe and the validation layers, Mesa's EGL (llvmpipe GL) and Xvfb when missing (needs
# root or sudo; otherwise prints the command), then runs the workspace tests with the Khronos
# validation layer on (any validation error fails a test), the README usage example and the
# GL consumer example against the Vulkan producer example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
bash scripts/ensure-gl.sh
command -v cargo >/dev/null || {
  echo "geyser: cargo not found; install Rust (https://rustup.rs) and try again" >&2
  exit 2
}
export GEYSER_VALIDATION=1
# Several processes each create Vulkan devices; keep lavapipe from starting a thread per core
# per device on small CI machines.
export LP_NUM_THREADS=${LP_NUM_THREADS:-2}
# `webgpu` and `gl` are not default features (they pull in wgpu, glow and EGL); CI tests them
# with everything else.
cargo test --workspace --all-targets --features geyser/webgpu,geyser/gl
cargo test --workspace --doc --features geyser/webgpu,geyser/gl
cargo run --quiet --example readme_usage
# A GL application consuming the Vulkan producer example, two processes (headless EGL; host
# sync on Mesa): every frame checked through GL.
gl_name="ci-gl-$$"
target/debug/examples/ipc_producer --name "$gl_name" --frames 300 --size 320x240 --lossless >/dev/null &
producer=$!
target/debug/examples/gl_consumer --name "$gl_name" --lossless | tail -n 2
wait "$producer"
# The benchmark's short run: all three paths at 1080p and 4K, every frame verified (no
# assertion on speed: lavapipe is a CPU renderer).
cargo run --quiet -p geyser-cli -- bench --quick
