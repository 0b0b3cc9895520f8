#!/usr/bin/env bash
# The GStreamer and PipeWire parts on the NVIDIA machine (`device` tool), from the repo root:
#  1. the element tests (geysersrc/geysersink against real Geyser processes, every texel
#     checked, validation layer on), which negotiate timeline-semaphore sync there (CI's
#     lavapipe only runs host sync);
#  2. the transport bench side by side at 1080p and 4K: Geyser zero-copy vs GStreamer
#     shmsink/shmsrc vs PipeWire MemFd (PipeWire + WirePlumber started by the bench).
#
# Prepare on the build machine, once:
#   bash ../shared/device/prepare-vulkan.sh          # .gl: Vulkan loader + validation layers
#   bash scripts/device/prepare-gstreamer.sh         # .gst: GStreamer, PipeWire, D-Bus (.debs)
#   bash ../shared/device/pack-binaries.sh -p geyser-cli --features geyser-cli/pipewire \
#     --bin geyser -p geyser --example ipc_producer --example ipc_consumer \
#     -p gst-plugin-geyser --test elements
# Run: carry [".gl", ".gst", ".devbin"], command:
#   source .gl/env.sh; source .gst/env.sh; bash scripts/device/gstreamer.sh
# Result lines start with "RESULT" (tests) and the bench prints a Markdown table. FRAMES=N
# changes the bench's frames per run (default 1000).
set -euo pipefail
cd "$(dirname "$0")/../.."
for f in .devbin/geyser .devbin/ipc_producer .devbin/ipc_consumer; do
  [ -x "$f" ] || { echo "gstreamer.sh: $f missing (pack-binaries, see the header)" >&2; exit 2; }
done
[ -n "${GST_PLUGIN_SYSTEM_PATH_1_0:-}" ] || { echo "gstreamer.sh: source .gst/env.sh first" >&2; exit 2; }
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

.devbin/geyser info | sed -n '1,12p'
status=0

elements=$(ls .devbin/elements-* 2>/dev/null | head -n1 || true)
if [ -n "$elements" ]; then
  echo "== element tests (validation on)"
  if GEYSER_VALIDATION=1 "$elements" --test-threads=1 --nocapture 2>&1 | tee /tmp/elements.log |
    grep -E '^test |stats:|error after|test result'; then
    grep -q 'test result: ok' /tmp/elements.log && echo "RESULT elements: pass" || { echo "RESULT elements: FAIL"; status=1; }
  else
    echo "RESULT elements: FAIL"; status=1
  fi
else
  echo "RESULT elements: not packed"
fi

frames=${FRAMES:-1000}
echo "== transports (lossless, $frames frames per run)"
bash scripts/bench-transports.sh --bin .devbin --frames "$frames" || status=1
exit $status
