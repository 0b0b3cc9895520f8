#!/usr/bin/env bash
# Runs every Geyser test on this machine, the way CI does: installs the Vulkan loader, Mesa's
# lavapipe and the validation layers, and GStreamer and PipeWire, when missing (needs root or
# sudo; otherwise prints the command), then runs the workspace tests with the Khronos
# validation layer on (any validation error fails a test), the README usage example, the
# benchmarks' short runs, and the PipeWire tests in a PipeWire session of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
bash scripts/ensure-gstreamer.sh
command -v cargo >/dev/null || {
  echo "geyser: cargo not found; install Rust (https://rustup.rs) and try again" >&2
  exit 2
}
export GEYSER_VALIDATION=1
# Several processes each create Vulkan devices; keep lavapipe from starting a thread per core
# per device on small CI machines.
export LP_NUM_THREADS=${LP_NUM_THREADS:-2}
# `webgpu` is not a default feature (it pulls in wgpu), nor are the CLI's GStreamer and
# PipeWire parts: CI tests them with everything else, one feature set for every build.
features=$(bash scripts/lib/test-features.sh)
cargo test --workspace --all-targets --features "$features"
cargo test --workspace --doc --features "$features"
cargo run --quiet --example readme_usage
# The benchmark's short run: all three paths at 1080p and 4K, every frame verified (no
# assertion on speed: lavapipe is a CPU renderer). The binary the test build made, with the
# same features (no second build of the CLI).
target/debug/geyser bench --quick
# The PipeWire tests, with their own pipewire + wireplumber (scripts/test-pipewire.sh).
bash scripts/test-pipewire.sh
# The transport benchmark's short run (Geyser vs shmsink/shmsrc vs PipeWire, 1080p and 4K);
# debug binaries: it proves the three paths run, lavapipe's numbers prove nothing.
bash scripts/bench-transports.sh --quick --bin target/debug
