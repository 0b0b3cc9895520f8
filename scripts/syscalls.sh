#!/usr/bin/env bash
# Syscalls per frame of a Geyser producer and consumer (each its own process, lavapipe, host
# sync, lossless, 256x256, every frame checked), counted with `strace -f -c`: two runs of
# FEW and FEW+1000 frames, and the difference divided by 1000, so start-up (Vulkan, LLVM,
# the handshake) cancels out. Prints one table per side and checks that each side sends
# exactly one message per frame (sendmsg: FrameReady one way, FrameReleased the other).
#
#   bash scripts/syscalls.sh           # table + check (test.sh runs this)
#   bash scripts/syscalls.sh --stacks  # also: which code makes the futex calls (strace -k)
#
# LP_NUM_THREADS (lavapipe's rasterizer threads) is 0 unless set, so lavapipe's own threads
# add as little as they can; the futex calls that remain are its queue thread and fences.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/install-missing.sh
install_missing scripts/syscalls.sh strace
export LP_NUM_THREADS=${LP_NUM_THREADS:-0}
FEW=${FEW:-200}
MANY=$((FEW + 1000))
# The CLI scripts/test.sh built (any feature set will do); a plain build when there is none.
[ -x target/debug/geyser ] || cargo build --quiet -p geyser-cli
geyser=$PWD/target/debug/geyser
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Runs the demo's producer and consumer processes for $2 frames under `strace $1`, output in
# $dir/<side>-$2.txt.
run() {
  local opts=$1 frames=$2 name="syscalls-$$-$2"
  local args=(--consumers 1 --frames "$frames" --size 256x256 --format rgba8unorm --slots 3
    --lossless --sync auto --host-rings auto --fps 0 --spin-us 0 --pipeline 1 --name "$name")
  # shellcheck disable=SC2086
  strace -f $opts -o "$dir/producer-$frames.txt" "$geyser" __produce "${args[@]}" >/dev/null &
  local producer=$!
  # shellcheck disable=SC2086
  strace -f $opts -o "$dir/consumer-$frames.txt" "$geyser" __consume "${args[@]}" >/dev/null
  wait "$producer"
}

# Per-frame difference of two `strace -c` tables: "syscall calls-per-frame", largest first.
per_frame() {
  awk -v n=1000 '
    $1 ~ /^[0-9.]+$/ && $NF != "total" { calls = ($5 ~ /^[0-9]+$/ && NF == 6) ? $4 : $4 }
    FNR == NR && $1 ~ /^[0-9.]+$/ && $NF != "total" { few[$NF] = calls; next }
    $1 ~ /^[0-9.]+$/ && $NF != "total" { d = (calls - few[$NF]) / n; if (d >= 0.005 || d <= -0.005) printf "%-14s %7.2f\n", $NF, d }
  ' "$1" "$2" | sort -k2 -nr
}

for frames in "$FEW" "$MANY"; do run "-c" "$frames"; done
status=0
for side in producer consumer; do
  echo "$side: syscalls per frame (runs of $MANY and $FEW frames, difference / 1000)"
  per_frame "$dir/$side-$FEW.txt" "$dir/$side-$MANY.txt" | tee "$dir/$side.per-frame" | sed 's/^/  /'
  sends=$(awk '$1 == "sendmsg" { print $2 }' "$dir/$side.per-frame")
  if [ "$sends" != "1.00" ]; then
    echo "FAIL: $side sent ${sends:-0} messages per frame, expected exactly 1" >&2
    status=1
  fi
done

if [ "${1:-}" = "--stacks" ]; then
  # Which code called futex: the innermost frame outside libc of each call's stack.
  for frames in "$FEW" "$MANY"; do run "-k -e trace=futex" "$frames"; done
  for side in producer consumer; do
    echo "$side: futex calls per frame by caller"
    for frames in "$FEW" "$MANY"; do
      awk '
        function flush() { if (pending) { c[who == "" ? "other" : who]++ } pending = 0; who = "" }
        # A call strace splits is counted where it resumes, which is where its stack is.
        /^[0-9]+ +futex\(.*unfinished/ { flush(); next }
        /^[0-9]+ +(futex\(|<\.\.\. futex resumed>)/ { flush(); pending = 1; next }
        /^[0-9]+ / { flush(); next }
        /^ > / && pending && who == "" && !/libc\.so/ {
          if ($0 ~ /\/geyser\(/) { s = $0; sub(/.*\/geyser\(/, "", s); sub(/\+.*/, "", s); who = "geyser: " s }
          else if ($0 ~ /lvp|LLVM|gallium/) who = "lavapipe"
          else { s = $0; sub(/\(.*/, "", s); sub(/.*\//, "", s); who = s }
        }
        END { flush(); for (k in c) printf "%s\t%d\n", k, c[k] }
      ' "$dir/$side-$frames.txt" | sort >"$dir/$side-$frames.futex"
    done
    join -t $'\t' -a 2 -e 0 -o 0,1.2,2.2 "$dir/$side-$FEW.futex" "$dir/$side-$MANY.futex" |
      awk -F '\t' '{ d = ($3 - $2) / 1000; if (d >= 0.05) printf "  %6.2f  %s\n", d, $1 }' | sort -nr
  done
fi
[ "$status" -eq 0 ] && echo "PASS: one message each way per frame"
exit "$status"
