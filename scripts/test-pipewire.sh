#!/usr/bin/env bash
# The PipeWire tests, in a PipeWire session of their own: a private XDG_RUNTIME_DIR, a D-Bus
# session bus (dbus-run-session), and pipewire + wireplumber started and stopped here (see
# scripts/lib/pipewire-session.sh). Nothing of the machine's own session is touched.
# Extra arguments go to the test binary (e.g. --nocapture). scripts/test.sh runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-gstreamer.sh
runtime=$(mktemp -d "${TMPDIR:-/tmp}/geyser-pipewire.XXXXXX")
chmod 700 "$runtime"
trap 'rm -rf "$runtime"' EXIT
export XDG_RUNTIME_DIR=$runtime PIPEWIRE_TEST_SESSION=1
unset PIPEWIRE_REMOTE DBUS_SESSION_BUS_ADDRESS
# Same package selection and features as scripts/test.sh's build, so nothing is rebuilt here.
dbus-run-session -- bash scripts/lib/pipewire-session.sh \
  cargo test --workspace --features "$(bash scripts/lib/test-features.sh)" --ignore-rust-version \
  --test pipewire -- --ignored "$@"
