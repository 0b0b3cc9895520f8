#!/usr/bin/env bash
# Geyser's main job: shows what this machine's GPU(s) can share (`geyser info`), then runs
# `geyser demo`: one producer process streams frames to K consumer processes through shared
# textures, every delivered frame verified on the GPU. Installs the Vulkan loader and Mesa's
# lavapipe when missing (root or sudo; otherwise prints the command). Arguments go to
# `geyser demo` (see `geyser demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
command -v cargo >/dev/null || {
  echo "geyser: cargo not found; install Rust (https://rustup.rs) and try again" >&2
  exit 2
}
cargo build --quiet --release -p geyser-cli
target/release/geyser info
echo
target/release/geyser demo "$@"
