#!/usr/bin/env bash
# Makes sure this Debian/Ubuntu machine can run Geyser on the CPU: the Vulkan loader, Mesa's
# lavapipe (software Vulkan) and the Khronos validation layers. On Debian bookworm, Mesa comes
# from bookworm-backports (Mesa 25: Vulkan 1.4, external memory FD/DMA-BUF); the backports
# entry is derived from the machine's own Debian source entry (same URIs).
#
# As root (or with passwordless sudo) it installs what is missing; otherwise it prints the
# exact command to run and exits 2. Idempotent: does nothing when all is present.
set -euo pipefail

pkgs=(libvulkan1 mesa-vulkan-drivers vulkan-validationlayers vulkan-tools)

have_all() {
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
  done
  # lavapipe's ICD must be the bookworm-backports one (Mesa >= 25) on bookworm.
  if is_bookworm; then
    local v
    v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo 0)
    dpkg --compare-versions "$v" ge 25 || return 1
  fi
  return 0
}

# shellcheck source=lib/backports.sh
. "$(dirname "$0")/lib/backports.sh"

if have_all; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "geyser: Vulkan (loader, Mesa lavapipe, validation layers) is missing." >&2
    echo "Run this once as root, then try again:" >&2
    echo "  sudo bash $(realpath "$0")" >&2
    exit 2
  fi
fi

if is_bookworm; then
  ensure_backports_entry "${sudo[@]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq -t bookworm-backports \
    libvulkan1 mesa-vulkan-drivers >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
    vulkan-validationlayers vulkan-tools >/dev/null
else
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
have_all || { echo "geyser: Vulkan packages still missing after install" >&2; exit 1; }
echo "geyser: Vulkan loader, lavapipe and validation layers installed" >&2
