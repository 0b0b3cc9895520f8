#!/usr/bin/env bash
# Runs every Geyser test on this machine, the way CI does: installs the Vulkan loader, Mesa's
# lavapipe and the validation layers when missing, and Python 3 with venv and headers (for the
# Python package) (needs root or sudo; otherwise prints the command), then runs the workspace
# tests with the Khronos validation layer on (any validation error fails a test), the README
# usage example, the benchmark's quick run, and the Python package's tests (its wheel built
# with maturin and installed with NumPy and pytest into a venv under target/, from pip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
source scripts/lib/install-missing.sh
install_missing test.sh python3 python3-venv python3-dev
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
# The benchmark's short run: all three paths at 1080p and 4K, every frame verified (no
# assertion on speed: lavapipe is a CPU renderer).
cargo run --quiet -p geyser-cli -- bench --quick
# The Python package (geyser-python): the wheel, in the dev profile and this target dir (the
# same features as the tests above, so the library is not built again), installed into a venv
# with maturin, NumPy and pytest; its tests run the Rust examples as producer and consumer
# processes.
cargo build --quiet --workspace --examples --features geyser/webgpu
venv=target/python-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9.4,<2" numpy pytest
rm -rf target/wheels
"$venv/bin/maturin" build --quiet -m geyser-python/Cargo.toml --profile dev \
  --features geyser/webgpu --interpreter "$venv/bin/python" -o target/wheels
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps target/wheels/geyser-*.whl
GEYSER_BIN_DIR=$PWD/target/debug/examples "$venv/bin/python" -m pytest -q -p no:cacheprovider geyser-python/tests
