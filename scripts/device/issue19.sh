#!/usr/bin/env bash
# Issue 19 on the NVIDIA machine (one GPU; Python 3.12 with PyTorch and CuPy): frames into
# PyTorch zero-copy, across processes. Prints one `RESULT ...` line per measurement.
#
# Pack first (on the build machine, from the repo root):
#   bash scripts/device/pack-issue19.sh
# which puts release builds of ipc_producer, ipc_consumer and geyser, and the abi3 wheel of
# geyser-python, into .devbin/. Then carry [".gl", ".devbin"] and run:
#   bash scripts/device/issue19.sh
#
# 1. Rust consumer (ipc_consumer, probes every frame on the GPU) and PyTorch consumer
#    (torch.from_dlpack, every frame compared with its pattern by a torch op on the GPU), each
#    receiving 10,000 lossless 1080p frames from ipc_producer: fps side by side and their ratio.
# 2. Time from the producer's frame message to a usable tensor (the tensor's stream has waited
#    for the producer's write), paced at 250 fps: p50/p99.
# 3. A PyTorch producer (CUDA tensors copied into the slot on the GPU) to a Vulkan consumer
#    (ipc_consumer probing every frame): 2,000 1080p frames.
# 4. The other CUDA paths, each verified: texture layout (CUDA arrays, one copy), CuPy, host
#    synchronization (forced on the producer).
# Performance runs have the validation layer off (both sides alike); correctness runs on.
set -uo pipefail
cd "$(dirname "$0")/../.."
source .gl/env.sh
bin=.devbin
whl=$(ls $bin/geyser-*.whl 2>/dev/null | head -1)
[ -n "$whl" ] || { echo "RESULT issue19 setup FAIL: no wheel in $bin (run scripts/device/pack-issue19.sh)"; exit 1; }
site=$(mktemp -d)
# pip checks the wheel's platform tag; a wheel is a zip, so unpacking it is the fallback.
python3 -m pip install --quiet --no-index --no-deps --target "$site" "$whl" 2>/dev/null ||
  python3 -m zipfile -e "$whl" "$site" || {
  echo "RESULT issue19 setup FAIL: cannot install $whl on $(python3 --version)"; exit 1; }
export PYTHONPATH=$site
py=(python3 scripts/device/issue19_torch.py)
python3 - <<'EOF'
import geyser, torch
print("geyser", geyser.__version__, "torch", torch.__version__, "cuda devices", geyser.cuda_devices())
EOF
$bin/geyser info | grep -E "^Device|^CUDA|cuda:" || true

# Waits until a producer listens at endpoint $1 (its socket exists).
wait_socket() {
  local dir=${GEYSER_RUNTIME_DIR:-${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/geyser}}
  dir=${dir:-/tmp/geyser-$(id -u)}
  for _ in $(seq 600); do [ -S "$dir/$1.sock" ] && return 0; sleep 0.1; done
  return 1
}
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d.get(sys.argv[2], ''))" "$1" "$2"; }
result_of() { grep -o 'RESULT {.*' <<<"$1" | tail -1 | cut -c8-; }

# 1. fps: the Rust consumer, then the PyTorch consumer, same producer settings.
frames=10000
run_pair() { # name, consumer command...
  local name=$1; shift
  $bin/ipc_producer --pattern solid --name "$name" --size 1920x1080 --frames $frames --lossless --wait 1 >/tmp/$name.prod 2>&1 &
  local p=$!
  local out; out=$("$@" 2>&1)
  wait $p
  echo "$out"
}
rust_out=$(run_pair b19-rust $bin/ipc_consumer --name b19-rust --lossless)
rust=$(result_of "$rust_out")
torch_out=$(run_pair b19-torch "${py[@]}" consume b19-torch --frames $frames --lossless)
torch=$(result_of "$torch_out")
if [ -n "$rust" ] && [ -n "$torch" ]; then
  rf=$(field "$rust" fps); tf=$(field "$torch" fps)
  echo "RESULT rust consumer 1080p lossless: $(field "$rust" frames) frames, $(field "$rust" corrupted) corrupted, ${rf} fps, sync $(field "$rust" sync)"
  echo "RESULT torch consumer 1080p lossless zero-copy: $(field "$torch" frames) frames, $(field "$torch" bad) bad (torch check on GPU), $(field "$torch" gaps) gaps, ${tf} fps, sync $(field "$torch" sync), layout $(field "$torch" layout)"
  python3 -c "import sys; r=float(sys.argv[2])/float(sys.argv[1]); print(f'RESULT torch/rust fps ratio {r:.3f} (target >= 0.95)')" "$rf" "$tf"
else
  echo "RESULT fps FAIL"; echo "$rust_out" | tail -5; echo "$torch_out" | tail -5
fi

# 2. frame message -> usable tensor, paced (250 fps).
$bin/ipc_producer --pattern solid --name b19-lat --size 1920x1080 --frames 1200 --interval-ms 4 --wait 1 >/tmp/b19-lat.prod 2>&1 &
lat=$(result_of "$("${py[@]}" latency b19-lat --frames 1000 2>&1)")
wait
[ -n "$lat" ] && echo "RESULT frame message -> usable torch tensor (1080p, 250 fps): p50 $(field "$lat" p50_us) us, p99 $(field "$lat" p99_us) us, $(field "$lat" bad) bad, sync $(field "$lat" sync)" \
  || echo "RESULT latency FAIL"

# 3. PyTorch producer -> Vulkan consumer, validation on in both.
GEYSER_VALIDATION=1 python3 geyser-python/examples/publish.py b19-pub --device cuda --frames 2000 --size 1920x1080 --lossless >/tmp/b19-pub.out 2>&1 &
wait_socket b19-pub
vk=$(result_of "$(GEYSER_VALIDATION=1 $bin/ipc_consumer --name b19-pub --lossless 2>&1)")
wait
pub=$(grep -o 'published.*' /tmp/b19-pub.out | tail -1)
[ -n "$vk" ] && echo "RESULT torch producer -> Vulkan consumer 1080p: $(field "$vk" frames) frames, $(field "$vk" corrupted) corrupted, consumer ${vk:+$(field "$vk" fps)} fps, sync $(field "$vk" sync); producer: $pub" \
  || { echo "RESULT torch producer FAIL"; tail -5 /tmp/b19-pub.out; }

# 4. Other CUDA paths, validation on, 300 frames each, every frame verified.
check() { # label, producer args, consumer args
  local label=$1 pargs=$2 cargs=$3
  GEYSER_VALIDATION=1 $bin/ipc_producer --pattern solid --name b19-x --size 1280x720 --frames 300 --lossless --wait 1 $pargs >/tmp/b19-x.prod 2>&1 &
  local out; out=$(GEYSER_VALIDATION=1 python3 geyser-python/examples/consume.py b19-x --device cuda --lossless --verify $cargs 2>&1)
  wait $!; local pcode=$?
  local line; line=$(grep -o 'received.*' <<<"$out" | tail -1)
  echo "RESULT $label: ${line:-FAIL $(tail -2 <<<"$out")} (producer exit $pcode)"
}
check "cuda texture layout (CUDA arrays), torch" "" "--layout texture --api torch"
check "cuda linear layout, cupy" "" "--api cupy"
check "cuda host sync (forced), torch" "--sync host" "--api torch"
check "cuda host sync, texture layout, numpy copies" "--sync host" "--layout texture --api numpy"
rm -rf "$site"
