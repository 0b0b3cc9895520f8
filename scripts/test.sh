#!/usr/bin/env bash
# Runs every Geyser test on this machine, the way CI does: installs the Vulkan loader, Mesa's
# lavapipe and the validation layers, Mesa's EGL (llvmpipe GL), GStreamer and PipeWire, Xvfb and
# the X client libraries, Python 3 with venv and headers (the Python package),
# when missing (needs root or sudo; otherwise prints the command), then runs the workspace
# tests with the Khronos validation layer on (any validation error fails a test), the README usage
# example, the GL consumer example against the Vulkan producer example, the benchmarks' short
# runs, the PipeWire tests in a PipeWire session of their own, and
# the Python package's tests (its wheel built with maturin and installed with NumPy and pytest
# into a venv under target/, from pip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
bash scripts/ensure-gstreamer.sh
bash scripts/ensure-gl.sh
# `geyser view`'s test and geyser-bevy's windowed examples open windows under a virtual X
# server: Xvfb, and the X client libraries winit loads at run time (building Bevy needs no -dev
# package).
# shellcheck source=lib/install-missing.sh
source scripts/lib/install-missing.sh
install_missing geyser xvfb xauth libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0 \
  python3 python3-venv python3-dev
command -v cargo >/dev/null || {
  echo "geyser: cargo not found; install Rust (https://rustup.rs) and try again" >&2
  exit 2
}
export GEYSER_VALIDATION=1
# Several processes each create Vulkan devices; keep lavapipe from starting a thread per core
# per device on small CI machines.
export LP_NUM_THREADS=${LP_NUM_THREADS:-2}
# One feature set for every build (scripts/lib/test-features.sh: `webgpu`, `gl` and the CLI's
# GStreamer and PipeWire parts are not default features), so the workspace compiles once.
# `--workspace` includes geyser-bevy and gst-plugin-geyser (left out of plain `cargo test`).
# Bevy 0.20.1 declares Rust 1.97.1 but builds and runs on 1.95 (checked), so cargo is told to
# ignore that. geyser-bevy's tests run its windowed examples as programs, and `--all-targets`
# builds examples only as test harnesses: build the programs first (same flags, so nothing
# else is rebuilt).
features=$(bash scripts/lib/test-features.sh)
cargo build --workspace --examples --features "$features" --ignore-rust-version
cargo test --workspace --all-targets --features "$features" --ignore-rust-version
cargo test --workspace --doc --features "$features" --ignore-rust-version
# The README usage example (built above, with the same features).
target/debug/examples/readme_usage
# A GL application consuming the Vulkan producer example, two processes (headless EGL; host
# sync on Mesa): every frame checked through GL.
gl_name="ci-gl-$$"
target/debug/examples/ipc_producer --name "$gl_name" --frames 300 --size 320x240 --lossless >/dev/null &
producer=$!
target/debug/examples/gl_consumer --name "$gl_name" --lossless | tail -n 2
wait "$producer"
# The benchmark's short run: every row at 1080p and 4K, every frame verified (no assertion on
# speed: lavapipe is a CPU renderer); then the other measurements, short: paced latency, the
# texture pool, the signal floor under the GPU handoff, and the scaling curves (plots into a
# temporary directory). The binary the test build made, with the same features (no second
# build of the CLI).
target/debug/geyser bench --quick
target/debug/geyser bench latency --quick --size 640x360 --consumers 1,2
target/debug/geyser bench pool --quick
target/debug/geyser bench signal --quick
plots=$(mktemp -d)
target/debug/geyser bench scaling --quick --consumers 1,2 --sizes 64x64,256x256 --out "$plots"
rm -rf "$plots"
# Syscalls per frame on each side (strace): exactly one message each way.
bash scripts/syscalls.sh
# The PipeWire tests, with their own pipewire + wireplumber (scripts/test-pipewire.sh).
bash scripts/test-pipewire.sh
# The transport benchmark's short run (Geyser vs shmsink/shmsrc vs PipeWire, 1080p and 4K);
# debug binaries: it proves the three paths run, lavapipe's numbers prove nothing.
bash scripts/bench-transports.sh --quick --bin target/debug
# The Python package (geyser-python): the wheel, in the dev profile and this target dir (the
# library's features as the tests above), installed into a venv
# with maturin, NumPy and pytest; its tests run the Rust examples as producer and consumer
# processes.
venv=target/python-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9.4,<2" numpy pytest
rm -rf target/wheels
"$venv/bin/maturin" build --quiet -m geyser-python/Cargo.toml --profile dev \
  --features geyser/webgpu --interpreter "$venv/bin/python" -o target/wheels
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps target/wheels/geyser-*.whl
GEYSER_BIN_DIR=$PWD/target/debug/examples "$venv/bin/python" -m pytest -q -p no:cacheprovider geyser-python/tests
