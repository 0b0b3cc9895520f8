#!/usr/bin/env bash
# Packs this machine's Mesa lavapipe (libvulkan_lvp.so and the libraries it needs, except the
# C/C++ runtime) into the git-ignored .gl/ for the device machine, which has only the NVIDIA
# driver, so that a device run sees two Vulkan devices of different drivers (the multi-GPU
# transfer paths). Run after ../shared/device/prepare-vulkan.sh; then in a device run:
#   source .gl/env.sh; source .gl/lvp-env.sh; GEYSER_DEVICE=llvmpipe ...
# About 41 MB compressed (LLVM): carry few other files.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
lvp=/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so
[ -f "$lvp" ] || { echo "pack-lavapipe: $lvp missing; run scripts/ensure-vulkan.sh" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lib" .gl
cp "$lvp" "$tmp/lib/"
for f in $(ldd "$lvp" | awk '/=>/ {print $3}'); do
  case $(basename "$f") in
    libc.so* | libm.so* | libpthread.so* | libgcc_s.so* | libstdc++.so*) ;; # the device has newer ones
    *) cp -L "$f" "$tmp/lib/" ;;
  esac
done
tar -cJf .gl/lvp.tar.xz -C "$tmp" lib
cat >.gl/lvp-env.sh <<'ENV'
# Adds Mesa lavapipe (carried as .gl/lvp.tar.xz) as a second Vulkan driver beside NVIDIA's.
# Source after .gl/env.sh.
mkdir -p /opt/lvp && tar -xJf .gl/lvp.tar.xz -C /opt/lvp
printf '{"ICD":{"api_version":"1.4.305","library_path":"/opt/lvp/lib/libvulkan_lvp.so"},"file_format_version":"1.0.0"}\n' >/opt/lvp/lvp_icd.json
export LD_LIBRARY_PATH=/opt/lvp/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export VK_DRIVER_FILES=$VK_DRIVER_FILES:/opt/lvp/lvp_icd.json
ENV
du -h .gl/lvp.tar.xz
