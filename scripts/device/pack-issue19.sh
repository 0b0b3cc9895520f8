#!/usr/bin/env bash
# Packs what scripts/device/issue19.sh and issue19-2gpu.sh run into .devbin/ (carry
# [".gl", ".devbin"]): release builds of ipc_producer, ipc_consumer, cross_device and the
# `geyser` CLI with the cuda feature (through ../shared/device/pack-binaries.sh), then the
# geyser-python abi3 wheel (release, stripped; maturin from the venv scripts/test.sh makes,
# or a fresh one under target/).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
bash ../shared/device/pack-binaries.sh -p geyser -p geyser-cli --features geyser/cuda \
  --example ipc_producer --example ipc_consumer --example cross_device --bin geyser
venv=target/python-venv
[ -x "$venv/bin/maturin" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "maturin>=1.9.4,<2"; }
"$venv/bin/maturin" build --quiet --release --strip -m geyser-python/Cargo.toml -o .devbin
du -sh .devbin; ls -la .devbin
