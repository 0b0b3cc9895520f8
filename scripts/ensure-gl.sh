#!/usr/bin/env bash
# Makes sure this Debian/Ubuntu machine can run Geyser's OpenGL side on the CPU: libEGL with
# Mesa's EGL (llvmpipe; on bookworm from bookworm-backports, the same Mesa 25 as lavapipe — the
# two pin each other's version), and for the windowed three-d example under Xvfb: the X
# server, xauth and the X client libraries winit and glutin load at run time. Run after
# scripts/ensure-vulkan.sh (which sets up bookworm-backports).
#
# As root (or with passwordless sudo) it installs what is missing; otherwise it prints the
# exact command to run and exits 2. Idempotent: does nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/install-missing.sh
. scripts/lib/install-missing.sh

egl=(libegl1 libegl-mesa0)
x11=(xvfb xauth libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0)

missing_egl=()
for p in "${egl[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_egl+=("$p")
done
if [ "${#missing_egl[@]}" -gt 0 ]; then
  target=()
  if [ -r /etc/os-release ] && grep -q '^VERSION_CODENAME=bookworm' /etc/os-release; then
    target=(-t bookworm-backports)
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "geyser: ${missing_egl[*]} missing; run once as root, then try again:" >&2
      echo "  sudo apt-get install -y ${target[*]} ${missing_egl[*]}" >&2
      exit 2
    fi
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${target[@]}" "${missing_egl[@]}" >/dev/null
fi
install_missing geyser "${x11[@]}"
