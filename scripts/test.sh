#!/usr/bin/env bash
# Runs every Geyser test on this machine, the way CI does: installs the Vulkan loader, Mesa's
# lavapipe and the validation layers when missing (needs root or sudo; otherwise prints the
# command), then runs the workspace tests with the Khronos validation layer on (any validation
# error fails a test) and the README usage example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
command -v cargo >/dev/null || {
  echo "geyser: cargo not found; install Rust (https://rustup.rs) and try again" >&2
  exit 2
}
export GEYSER_VALIDATION=1
# Several processes each create Vulkan devices; keep lavapipe from starting a thread per core
# per device on small CI machines.
export LP_NUM_THREADS=${LP_NUM_THREADS:-2}
# `webgpu` is not a default feature (it pulls in wgpu); CI tests it with everything else.
cargo test --workspace --all-targets --features geyser/webgpu
cargo test --workspace --doc --features geyser/webgpu
cargo run --quiet --example readme_usage
# The benchmark's short run: every row at 1080p and 4K, every frame verified (no assertion on
# speed: lavapipe is a CPU renderer); then the other measurements, short: paced latency,
# the texture pool, and the scaling curves (plots into a temporary directory).
cargo run --quiet -p geyser-cli -- bench --quick
cargo run --quiet -p geyser-cli -- bench latency --quick --size 640x360 --consumers 1,2
cargo run --quiet -p geyser-cli -- bench pool --quick
plots=$(mktemp -d)
cargo run --quiet -p geyser-cli -- bench scaling --quick --consumers 1,2 --sizes 64x64,256x256 --out "$plots"
rm -rf "$plots"
# Syscalls per frame on each side (strace): exactly one message each way.
bash scripts/syscalls.sh
