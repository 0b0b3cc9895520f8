#!/usr/bin/env bash
# The Bevy benchmark on the GPU machine (issue 16): a Bevy app renders the examples' scene at
# 1080p at full speed, with and without a GeyserPublisher, alternating runs in this one
# invocation; the publisher runs have a Vulkan consumer process attached, which reports the
# handoff latency and the negotiated sync mode. Prints one RESULT line per run and a summary:
#   BEVY fps image <median>  publisher <median>  ratio <publisher/image>
#   BEVY handoff p50 <µs> p99 <µs> sync <mode> (consumer frames, corrupted)
#
# Needs, carried from the build machine (repo root):
#   bash ../shared/device/prepare-vulkan.sh                  # .gl/: Vulkan loader (+ layers)
#   bash ../shared/device/pack-binaries.sh -p geyser-bevy --example bevy_bench --ignore-rust-version
#   # (--ignore-rust-version: Bevy 0.20.1 declares Rust 1.97.1 but builds with 1.95)
# then run with carry [".gl", ".devbin"]: `bash scripts/device/bevy-bench.sh`.
# RUNS (default 3) pairs of runs, FRAMES (default 3000) measured frames each, SIZE (1920x1080).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .gl/env.sh
bench=.devbin/bevy_bench
[ -x "$bench" ] || { echo "bevy-bench: $bench missing (see the header for how to pack it)" >&2; exit 2; }
runs=${RUNS:-3}
frames=${FRAMES:-3000}
size=${SIZE:-1920x1080}
# No validation layer: this measures speed (lavapipe runs prove correctness).
unset GEYSER_VALIDATION WGPU_VALIDATION
export RUST_LOG=${RUST_LOG:-warn}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for i in $(seq "$runs"); do
  for target in image publisher; do
    line=$("$bench" --target "$target" --frames "$frames" --size "$size" | grep '^RESULT ' | tail -1)
    echo "run $i $target: $line"
    echo "${line#RESULT }" >>"$results"
  done
done
python3 - "$results" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
fps = {t: [r["fps"] for r in runs if r["target"] == t] for t in ("image", "publisher")}
image, publisher = statistics.median(fps["image"]), statistics.median(fps["publisher"])
print(f"BEVY fps image {image:.1f}  publisher {publisher:.1f}  ratio {publisher / image:.3f}"
      f"  (medians of {len(fps['image'])} runs each; all: {fps})")
for r in runs:
    c = r.get("consumer")
    if r["target"] == "publisher":
        if not c:
            print("BEVY handoff: the consumer reported nothing"); continue
        print(f"BEVY handoff p50 {c['latency_p50_us']:.0f} µs p99 {c['latency_p99_us']:.0f} µs"
              f" sync {c['sync']} ({c['frames']} frames received, {c['corrupted']} corrupted,"
              f" publisher presented {r['presented']} of {r['frames']} measured frames)")
PY
