#!/usr/bin/env bash
# Getting a GPU frame from one process to another, three ways, side by side in one run:
#   geyser     Geyser zero-copy: ipc_producer → ipc_consumer (the texture itself is shared;
#              the consumer checks 7 probe texels of each frame on its GPU).
#   shm        GStreamer shmsink/shmsrc (what a Linux user would pick today):
#              ipc_producer → [geysersrc ! shmsink] → [shmsrc ! fakesink]; geysersrc makes the
#              one GPU→host copy, straight into shmsink's shared memory.
#   pipewire   A PipeWire node (MemFd): ipc_producer → [geyser stream send NAME pipewire]
#              → [pipewiresrc ! fakesink]; one GPU→host copy into the node's memfd buffers.
# Every path is lossless (the producer waits for the slowest stage), so all deliver the same
# frames. Per path: frames per second at the receiver (first frame to last) and CPU time per
# frame of every process in the chain (each measured over its own first-to-last frame).
#
# Usage: bash scripts/bench-transports.sh [--quick] [--frames N] [--sizes "WxH ..."]
#        [--bin DIR] [--paths "geyser shm pipewire"]
# --bin DIR takes prebuilt `geyser` (features pipewire), `ipc_producer`, `ipc_consumer` from
# DIR (the device machine: .devbin); otherwise they are built here in release mode. The
# PipeWire path runs in a PipeWire session of its own (scripts/lib/pipewire-session.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

frames=300
sizes="1920x1080 3840x2160"
paths="geyser shm pipewire"
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) frames=60; shift ;;
    --frames) frames=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --paths) paths=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "bench-transports: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "${GEYSER_BENCH_SESSION:-}" ]; then
  if [ -z "$bin" ]; then
    cargo build --quiet --release -p geyser-cli --features pipewire
    cargo build --quiet --release -p geyser --example ipc_producer --example ipc_consumer
    bin=target/release
  fi
  runtime=$(mktemp -d "${TMPDIR:-/tmp}/geyser-bench.XXXXXX")
  chmod 700 "$runtime"
  trap 'rm -rf "$runtime"' EXIT
  export XDG_RUNTIME_DIR=$runtime GEYSER_BENCH_SESSION=1
  unset PIPEWIRE_REMOTE DBUS_SESSION_BUS_ADDRESS
  dbus-run-session -- bash scripts/lib/pipewire-session.sh \
    bash "$0" --frames "$frames" --sizes "$sizes" --paths "$paths" --bin "$bin"
  exit $?
fi

bin=$(realpath "$bin")
# The examples sit beside `geyser` (.devbin) or in examples/ (a cargo target directory).
ex=$bin
[ -x "$bin/examples/ipc_producer" ] && ex=$bin/examples
export LP_NUM_THREADS=${LP_NUM_THREADS:-2}
logs=$XDG_RUNTIME_DIR/logs
mkdir -p "$logs"

# field NAME FILE: the number NAME of the last RESULT line in FILE.
field() {
  grep '^RESULT ' "$2" | tail -n1 | sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"
}

# wait_for TEST...: up to 20 s.
wait_for() {
  for _ in $(seq 400); do
    "$@" && return 0
    sleep 0.05
  done
  return 1
}

producer() { # NAME SIZE
  exec "$ex/ipc_producer" --name "$1" --size "$2" --frames "$frames" --lossless --wait 1 >"$logs/$1.producer" 2>&1
}

# Each case runs in a subshell and prints: frames fps producer_cpu bridge_cpu receiver_cpu. The
# processes it started (their ids in `started`) are stopped when it ends, also on failure.
# shellcheck source=lib/kill-children.sh
. scripts/lib/kill-children.sh
started=()
stop_started() {
  kill_children "${started[@]}"
}
# reap PID: waits for a process this case started and forgets it.
reap() {
  local rc=0 x kept=()
  wait "$1" || rc=$?
  for x in "${started[@]}"; do [ "$x" = "$1" ] || kept+=("$x"); done
  started=("${kept[@]}")
  return $rc
}
case_geyser() { # SIZE
  trap stop_started EXIT
  local name=bench-geyser-$$
  producer "$name" "$1" &
  local p=$!
  started+=("$p")
  wait_for test -S "$XDG_RUNTIME_DIR/geyser/$name"
  "$ex/ipc_consumer" --name "$name" --lossless --frames "$frames" >"$logs/$name.receiver" 2>&1
  reap "$p"
  echo "$(field frames "$logs/$name.receiver") $(field fps "$logs/$name.receiver") $(field cpu_us_per_frame "$logs/$name.producer") 0 $(field cpu_us_per_frame "$logs/$name.receiver")"
}

case_shm() { # SIZE
  trap stop_started EXIT
  local name=bench-shm-$$ w=${1%x*} h=${1#*x}
  local sock=$XDG_RUNTIME_DIR/$name.sock
  producer "$name" "$1" &
  local p=$!
  started+=("$p")
  wait_for test -S "$XDG_RUNTIME_DIR/geyser/$name"
  "$bin/geyser" __gst-meter "geysersrc name=src endpoint=$name lossless=true ! identity name=meter ! \
    shmsink name=sink socket-path=$sock wait-for-connection=true shm-size=$((w * h * 4 * 6)) sync=false" \
    >"$logs/$name.bridge" 2>&1 &
  local b=$!
  started+=("$b")
  wait_for test -S "$sock"
  "$bin/geyser" __gst-meter "shmsrc socket-path=$sock is-live=true ! \
    video/x-raw,format=RGBA,width=$w,height=$h,framerate=30/1 ! identity name=meter ! fakesink sync=false" \
    --frames "$frames" >"$logs/$name.receiver" 2>&1
  reap "$p"
  reap "$b" || true
  echo "$(field frames "$logs/$name.receiver") $(field fps "$logs/$name.receiver") $(field cpu_us_per_frame "$logs/$name.producer") $(field cpu_us_per_frame "$logs/$name.bridge") $(field cpu_us_per_frame "$logs/$name.receiver")"
}

case_pipewire() { # SIZE
  trap stop_started EXIT
  local name=bench-pw-$$
  local node=geyser-$name
  producer "$name" "$1" &
  local p=$!
  started+=("$p")
  wait_for test -S "$XDG_RUNTIME_DIR/geyser/$name"
  "$bin/geyser" stream send "$name" "pipewire:$node" --lossless >"$logs/$name.bridge" 2>&1 &
  local b=$!
  started+=("$b")
  wait_for sh -c "pw-cli ls Node 2>/dev/null | grep -q 'node.name = \"$node\"'"
  "$bin/geyser" __gst-meter "pipewiresrc target-object=$node ! video/x-raw,format=RGBA ! \
    identity name=meter ! fakesink sync=false" --frames "$frames" >"$logs/$name.receiver" 2>&1
  reap "$p"
  reap "$b" || true
  echo "$(field frames "$logs/$name.receiver") $(field fps "$logs/$name.receiver") $(field cpu_us_per_frame "$logs/$name.producer") $(field cpu_us_per_frame "$logs/$name.bridge") $(field cpu_us_per_frame "$logs/$name.receiver")"
}

device=$("$bin/geyser" info 2>/dev/null | sed -n '1s/^Device 0: //p')
echo "## Transports: $frames lossless frames per run, $(nproc) CPUs, ${device:-unknown device}"
echo
echo "| size | path | frames | fps | CPU µs/frame: producer + bridge + receiver = total |"
echo "|---|---|---:|---:|---|"
for size in $sizes; do
  for path in $paths; do
    if ! line=$("case_$path" "$size"); then
      echo "| $size | $path | failed | | $(ls "$logs" | tr '\n' ' ') |"
      continue
    fi
    read -r n fps pc bc rc <<<"$line"
    total=$(awk -v a="${pc:-0}" -v b="${bc:-0}" -v c="${rc:-0}" 'BEGIN{printf "%.0f", a+b+c}')
    printf '| %s | %s | %s | %.1f | %.0f + %.0f + %.0f = **%s** |\n' "$size" "$path" "${n:-0}" \
      "${fps:-0}" "${pc:-0}" "${bc:-0}" "${rc:-0}" "$total"
  done
done
