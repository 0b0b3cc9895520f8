#!/usr/bin/env bash
# Issue 19 on a two-GPU NVIDIA machine (nvidia-h100-x2 / nvidia-h200-x2): GPU-to-GPU copies
# through CUDA (NVLink where the GPUs have it) against the host-memory path, both directions,
# every frame pixel-checked. Prints one `RESULT ...` line per measurement. Never uses NVLink
# multicast.
#
# Pack with `bash scripts/device/pack-issue19.sh` (the same .devbin as issue19.sh; the wheel is
# not needed here), carry [".gl", ".devbin"], then `bash scripts/device/issue19-2gpu.sh`.
#
# 1. `geyser info`: the path between the two GPUs (peer where CUDA reports peer access).
# 2. In one process (`cross_device`): 4K frames GPU 0 -> 1 and 1 -> 0 on the peer path
#    (CUDA peer copy) and the host-memory path, side by side, every frame probed on the
#    destination: per-frame p50/p99 (target: 4K frame <= 0.15 ms on the peer path).
# 3. Across processes (`geyser demo`, lossless 4K, every frame probed): producer and consumer
#    on one GPU; on two GPUs through a remote ring (peer copies, `--remote-rings auto`); on two GPUs
#    through host memory (`--remote-rings off`). Both directions. Target: two-GPU fps >= 0.95 of
#    one-GPU fps.
set -uo pipefail
cd "$(dirname "$0")/../.."
source .gl/env.sh
bin=.devbin

info=$($bin/geyser info 2>&1)
grep -E "^Device [0-9]|^CUDA|cuda:|<->" <<<"$info"
pair=$(grep -E "^\s+0 -> 1:" <<<"$info" | head -1 | sed 's/^ *//')
echo "RESULT geyser info between GPU 0 and 1: ${pair:-none (fewer than two devices?)}"

# 2. in-process transfers
out=$($bin/cross_device --src 0 --dst 1 --size 3840x2160 --frames 200 2>&1)
grep -E "frames, [0-9]+ corrupted|path|PASS|FAIL|error" <<<"$out"
while read -r line; do
  echo "RESULT in-process $line"
done < <(grep -E "3840x2160 (Peer|HostMemory) " <<<"$out")
grep -E "peer path is" <<<"$out" | sed 's/^/RESULT in-process /'
grep -qE "^PASS" <<<"$out" && echo "RESULT in-process: every frame verified (both ways)" || echo "RESULT in-process: FAIL"

# 3. across processes
fps=0
demo() { # label, devices, extra args... ; sets $fps to the consumer's delivered fps
  local label=$1 devices=$2; shift 2
  local out row pass
  out=$($bin/geyser demo --consumers 1 --lossless --size 3840x2160 --frames 3000 --devices "$devices" "$@" 2>&1)
  row=$(grep -E "^c0 " <<<"$out" | tr -s ' ')
  pass=$(grep -cE "^PASS" <<<"$out")
  # The consumer row: name delivered skipped superseded corrupted fps ... path api.
  fps=$(awk '{print $6}' <<<"$row")
  echo "RESULT demo $label (devices $devices): $(grep -E "^producer:" <<<"$out"); consumer: ${row:-none}; $([ "$pass" = 1 ] && echo 'every frame verified' || echo 'FAIL')"
  [ "$pass" = 1 ] || tail -5 <<<"$out"
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1] or 0),float(sys.argv[2] or 0); print(f'{a/b:.3f}' if b else 'n/a')" "$1" "$2"; }
for dir in "0 1" "1 0"; do
  set -- $dir
  demo "one GPU" "$1,$1"; one=$fps
  demo "two GPUs, remote ring (peer copies)" "$1,$2" --remote-rings auto; peer=$fps
  demo "two GPUs, host memory" "$1,$2" --remote-rings off; host=$fps
  echo "RESULT two-GPU/one-GPU fps GPU $1 -> $2: peer $(ratio "$peer" "$one") (target >= 0.95), host memory $(ratio "$host" "$one")"
done
