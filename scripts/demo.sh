#!/usr/bin/env bash
# Geyser's main job on this machine: shows what the GPU(s) can share, then streams verified
# frames between processes. Installs the Vulkan loader and Mesa's lavapipe when missing (needs
# root or sudo; otherwise prints the command). Extra arguments go to `geyser demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
command -v cargo >/dev/null || {
  echo "geyser: cargo not found; install Rust (https://rustup.rs) and try again" >&2
  exit 2
}
cargo build --quiet --release -p geyser-cli --example vulkan_to_vulkan
target/release/geyser info
target/release/examples/vulkan_to_vulkan
