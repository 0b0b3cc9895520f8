#!/usr/bin/env bash
# Issue 17 on the NVIDIA machine (`device` tool), from the repo root, in under 3 minutes:
#  1. what the device exports (binary semaphores as OPAQUE_FD, compressed format families);
#  2. binary-semaphore IPC: 10,000 lossless 4K frames between processes, every frame
#     verified, validation layer on;
#  3. fps and handoff of binary vs timeline vs host side by side (4K, lossless, unpaced; then
#     paced at 240 fps), validation off;
#  4. the ignored binary-mode tests (verified stream between processes; a consumer killed
#     between its wait and its signal must not stall the producer), and `ipc_producer` +
#     `ipc_consumer` defaulting to binary;
#  5. arrays, cube maps, cube arrays, 3D textures and mip chains (in-process, across processes
#     directly and through the host ring, into wgpu) and every compressed format, with what
#     passed and what is Unsupported on this device.
#
# Prepare on the build machine, once: bash ../shared/device/prepare-vulkan.sh
# Pack after each change (release binaries into .devbin/):
#   bash ../shared/device/pack-binaries.sh -p geyser-cli --bin geyser -p geyser \
#     --features geyser/webgpu --example ipc_producer --example ipc_consumer \
#     --test binary_ipc --test layers --test ipc_layers --test webgpu
# Run: carry [".gl", ".devbin"], command: source .gl/env.sh; bash scripts/device/issue17.sh
# Every measurement prints one line starting with RESULT; the exit status is non-zero when a
# check failed. SIZE and FRAMES (default 3840x2160 and 10000) shrink the runs for a dry run
# elsewhere (on lavapipe the binary-mode steps report Unsupported, as they must).
set -uo pipefail
cd "$(dirname "$0")/../.."
for f in .devbin/geyser .devbin/ipc_producer .devbin/ipc_consumer; do
  [ -x "$f" ] || { echo "issue17.sh: $f missing (pack-binaries, see the header)" >&2; exit 2; }
done
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
size=${SIZE:-3840x2160}
frames=${FRAMES:-10000}
log=$(mktemp -d /tmp/issue17.XXXXXX)
status=0
fail() { status=1; }

echo "== 1. device"
.devbin/geyser info >"$log/info.txt" 2>&1 || fail
grep -E '^Device|binary semaphore export|timeline semaphores|compressed formats' "$log/info.txt"
echo "RESULT info binary_semaphore_export: $(grep -m1 'binary semaphore export' "$log/info.txt" | sed 's/.*export *//')"
echo "RESULT info $(grep -m1 'compressed formats exportable' "$log/info.txt" | sed 's/^ *//')"

# `geyser demo` with one consumer: prints "producer: ... (F fps)" and a row per consumer
# ("c0 delivered skipped superseded corrupted fps p50 µs p99 µs age µs sync path api").
demo() { # name, timeout, demo args...
  local name=$1 limit=$2
  shift 2
  timeout "$limit" .devbin/geyser demo --consumers 1 "$@" >"$log/$name.txt" 2>&1
  local rc=$?
  local pfps row
  pfps=$(sed -n 's/^producer: .*(\([0-9.]*\) fps).*/\1/p' "$log/$name.txt")
  # Columns of `geyser demo`'s consumer table: c0 delivered skipped superseded corrupted fps
  # handoff-p50 µs handoff-p99 µs age-p50 µs gpu-p50 µs gpu-p99 µs sync path api.
  row=$(awk '$1=="c0" {printf "delivered=%s corrupted=%s consumer_fps=%s handoff_p50_us=%s handoff_p99_us=%s gpu_p50_us=%s gpu_p99_us=%s sync=%s path=%s", $2, $5, $6, $7, $9, $13, $15, $17, $18}' "$log/$name.txt")
  local verdict=FAIL
  grep -q '^PASS' "$log/$name.txt" && [ $rc -eq 0 ] && verdict=pass
  echo "RESULT $name: $verdict producer_fps=${pfps:-?} ${row:-no consumer row (rc $rc)}"
  if [ "$verdict" != pass ]; then
    fail
    tail -n 15 "$log/$name.txt"
  fi
}

echo "== 2. binary semaphores: $frames lossless $size frames, validation on"
GEYSER_VALIDATION=1 demo "binary-$frames-$size-validation" 150 --sync binary --size "$size" \
  --frames "$frames" --lossless

echo "== 3. binary vs timeline vs host, one after the other ($size, lossless; validation off)"
for mode in binary timeline host; do
  demo "speed-$size-$mode" 60 --sync "$mode" --size "$size" --frames $((frames / 5)) --lossless
done
for mode in binary timeline host; do
  demo "paced240-$size-$mode" 60 --sync "$mode" --size "$size" --frames $((frames / 8)) \
    --fps 240 --lossless
done

# A test binary packed by pack-binaries (`name-<hash>`), with validation on.
tests() { # name, timeout, test args...
  local name=$1 limit=$2
  shift 2
  local bin
  bin=$(ls .devbin/"$name"-* 2>/dev/null | head -n1)
  if [ -z "$bin" ]; then
    echo "RESULT tests $name: not packed"
    fail
    return
  fi
  GEYSER_VALIDATION=1 timeout "$limit" "$bin" --test-threads=1 --nocapture "$@" \
    >"$log/$name.txt" 2>&1
  local rc=$?
  local summary
  summary=$(grep -E '^test result' "$log/$name.txt" | tail -n1)
  if [ $rc -eq 0 ]; then
    echo "RESULT tests $name: pass ($summary)"
  else
    echo "RESULT tests $name: FAIL (rc $rc; $summary)"
    grep -E '^test .*FAILED|panicked|Validation Error' "$log/$name.txt" | head -n 10
    fail
  fi
}

echo "== 4. binary-mode tests between processes (the ignored ones included)"
tests binary_ipc 90 --include-ignored
grep -E 'producer finished|BinarySemaphore' "$log/binary_ipc.txt" | head -n 4
name=i17-default-$$
.devbin/ipc_producer --name "$name" --size 1920x1080 --frames 600 --lossless \
  >"$log/default-producer.txt" 2>&1 &
producer=$!
sleep 0.5
timeout 60 .devbin/ipc_consumer --name "$name" --lossless >"$log/default-consumer.txt" 2>&1
wait "$producer"
python3 - "$log/default-consumer.txt" <<'PY' || fail
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("RESULT ")]
if not line:
    print("RESULT ipc_producer+ipc_consumer default sync: FAIL (no RESULT line)")
    sys.exit(1)
r = json.loads(line[-1][7:])
ok = r["sync"] == "BinarySemaphore" and r["corrupted"] == 0 and r["frames"] == 600
print(f"RESULT ipc_producer+ipc_consumer default sync: {'pass' if ok else 'FAIL'} "
      f"sync={r['sync']} frames={r['frames']} corrupted={r['corrupted']} fps={r['fps']:.1f} "
      f"handoff_p50_us={r['latency_p50_us']:.0f}")
sys.exit(0 if ok else 1)
PY

echo "== 5. arrays, cubes, 3D, mips and compressed formats"
tests layers 60
grep -E '^(compressed on|on )|^  (passed|unsupported):' "$log/layers.txt" |
  sed 's/^/  /' | head -n 60
echo "RESULT layers passed: $(grep -c '^  passed:' "$log/layers.txt") shape/format pairs; $(grep -m1 '^compressed on' "$log/layers.txt")"
tests ipc_layers 90
tests webgpu 90
grep -E 'shapes on|^Vulkan <-> wgpu on' "$log/webgpu.txt" | head -n 2
echo "logs: $log"
exit $status
