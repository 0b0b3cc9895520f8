#!/usr/bin/env bash
# Issue 20 on the NVIDIA machine (runs from the repo root after `source .gl/env.sh`, with
# release binaries in .devbin/). Prints one `RESULT ...` line per measurement; about 2 minutes.
#
# Pack (from this machine, repo root):
#   bash ../shared/device/pack-binaries.sh -p geyser-cli -p geyser --features geyser/gl,geyser/ipc \
#     --bin geyser --test gl --test dmabuf --example gl_producer --example ipc_consumer
# Carry [".gl", ".devbin"]; run: source .gl/env.sh; bash scripts/device/issue20.sh
#
# What it shows:
#  1. what NVIDIA's Vulkan and GL offer (geyser info: DMA-BUF, modifiers, GL memory objects,
#     GL semaphores, GL DMA-BUF import/export, which Vulkan device GL matches);
#  2. a GL consumer of Vulkan frames (memory objects; GL semaphores on the shared timelines
#     where GL has them: the sync column says `Timeline+gl-sem`) beside a Vulkan consumer,
#     10,000 lossless 1080p frames each, every frame verified; then each alone for fps;
#  3. in-process: Vulkan and GL handing frames over on a shared timeline (200 frames), GL
#     textures exported as DMA-BUFs into Vulkan, DRM-modifier textures between two VkDevices;
#  4. a GL producer (GL writes, GL signals the ready timeline) to a Vulkan consumer.
set -uo pipefail
export GEYSER_VALIDATION=${GEYSER_VALIDATION:-1}
export GEYSER_LOG=${GEYSER_LOG:-warn}
bin=.devbin
# Smaller runs for a smoke test elsewhere: ISSUE20_FRAMES=200 ISSUE20_SIZE=320x240.
n=${ISSUE20_FRAMES:-10000}
size=${ISSUE20_SIZE:-1920x1080}
one() { ls "$bin"/"$1"-* 2>/dev/null | grep -v '\.d$' | head -n 1; }
fail=0

echo "== geyser info"
"$bin/geyser" info | sed -n '/^Device/,/^  max 2D/p;/^OpenGL/,$p'

# Table rows of `geyser demo`: consumer delivered skipped superseded corrupted fps p50 µs p99 µs age µs sync path api
demo() {
  local tag=$1; shift
  local out
  out=$(timeout 100 "$bin/geyser" demo "$@" 2>&1)
  local rc=$?
  echo "$out" | tail -n 8
  echo "$out" | awk -v tag="$tag" -v rc="$rc" '
    /^c[0-9]+ / && NF >= 15 {
      printf "RESULT demo %s consumer=%s api=%s delivered=%s corrupted=%s fps=%s handoff_p50_us=%s handoff_p99_us=%s sync=%s path=%s\n",
        tag, $1, $NF, $2, $5, $6, $7, $9, $(NF-2), $(NF-1)
    }
    /^PASS/ { pass = 1 }
    END { printf "RESULT demo %s %s (exit %s)\n", tag, pass ? "PASS" : "FAIL", rc }'
  [ "$rc" -eq 0 ] || fail=1
}

echo "== GL and Vulkan consumers of one producer, 10,000 lossless 1080p frames each"
demo mixed --apis vulkan,gl --consumers 2 --frames "$n" --size "$size" --lossless
echo "== each alone (fps side by side), 10,000 frames"
demo vulkan-alone --apis vulkan --consumers 1 --frames "$n" --size "$size" --lossless
demo gl-alone --apis gl --consumers 1 --frames "$n" --size "$size" --lossless
echo "== paced at 240 fps: handoff latency, GL vs Vulkan"
demo paced --apis vulkan,gl --consumers 2 --frames "$((n / 4))" --size "$size" --fps 240

echo "== in-process GPU-only paths"
gl_test=$(one gl)
dmabuf_test=$(one dmabuf)
for t in vulkan_and_gl_hand_frames_over_with_a_shared_timeline gl_textures_exported_as_dma_bufs_import_into_vulkan; do
  out=$(timeout 60 "$gl_test" --exact "$t" --ignored --nocapture --test-threads=1 2>&1); rc=$?
  echo "$out" | grep -E '^RESULT' || true
  echo "RESULT test $t $([ $rc -eq 0 ] && echo PASS || echo "FAIL: $(echo "$out" | grep -E -A2 'panicked' | head -n 3 | tr '\n' ' ')")"
done
out=$(timeout 60 "$dmabuf_test" --exact drm_modifier_textures_cross_two_vk_devices --ignored --nocapture --test-threads=1 2>&1); rc=$?
echo "$out" | grep -E '^RESULT' || true
echo "RESULT test drm_modifier_textures_cross_two_vk_devices $([ $rc -eq 0 ] && echo PASS || echo "FAIL: $(echo "$out" | grep -E -A2 'panicked' | head -n 3 | tr '\n' ' ')")"
# The lavapipe/llvmpipe tests of the same binaries, on NVIDIA (host DMA-BUFs are a CPU-driver
# path and are expected to be refused there: their failures are listed, not counted).
out=$(timeout 60 "$gl_test" --test-threads=1 2>&1); echo "$out" | grep -E '^test |test result' | sed 's/^/  gl: /'

echo "== GL producer (GL writes, GL semaphores where offered) to a Vulkan consumer, 2,000 lossless 1080p frames"
name="issue20-glp-$$"
timeout 60 "$bin/gl_producer" --name "$name" --frames "$((n / 5))" --size "$size" --lossless >/tmp/glp.out 2>&1 &
p=$!
# The endpoint appears once the producer has made its ring (GEYSER_RUNTIME_DIR, else
# $XDG_RUNTIME_DIR/geyser).
sock="${GEYSER_RUNTIME_DIR:-${XDG_RUNTIME_DIR:-/tmp}/geyser}/$name.sock"
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
c=$(timeout 60 "$bin/ipc_consumer" --name "$name" --lossless 2>&1); crc=$?
wait "$p"; prc=$?
grep -E '^RESULT' /tmp/glp.out | sed 's/^RESULT/RESULT gl-producer/'
echo "$c" | grep -E '^RESULT' | sed 's/^RESULT/RESULT vulkan-consumer-of-gl/'
echo "RESULT gl-producer-to-vulkan $([ $crc -eq 0 ] && [ $prc -eq 0 ] && echo PASS || echo "FAIL (consumer $crc, producer $prc)")"
[ $crc -eq 0 ] && [ $prc -eq 0 ] || fail=1
exit $fail
