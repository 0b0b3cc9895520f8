#!/usr/bin/env bash
# Makes sure this Debian/Ubuntu machine can build and test Geyser's GStreamer and PipeWire
# parts: GStreamer 1.22 (development files, tools, base/good/bad/ugly plugins, libav for H.264
# decoding), PipeWire with WirePlumber and its GStreamer elements (development files for
# pipewire-rs, which also needs libclang), and dbus-run-session for private test sessions.
# On Debian bookworm, PipeWire comes from bookworm-backports (1.4; the same entry
# scripts/ensure-vulkan.sh derives).
#
# As root (or with passwordless sudo) it installs what is missing; otherwise it prints the
# exact command to run and exits 2. Idempotent: does nothing when all is present.
set -euo pipefail
# shellcheck source=lib/backports.sh
. "$(dirname "$0")/lib/backports.sh"

gst=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav libclang-dev pkg-config dbus-bin dbus-daemon)
pw=(libpipewire-0.3-dev pipewire pipewire-bin wireplumber gstreamer1.0-pipewire)

missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# On bookworm the PipeWire packages must be the backports ones (1.x), like those tested.
old_pipewire() {
  is_bookworm || return 1
  local v
  v=$(dpkg-query -W -f='${Version}' libpipewire-0.3-dev 2>/dev/null || echo 0)
  dpkg --compare-versions "$v" lt 1.2
}

todo_gst=$(missing "${gst[@]}")
todo_pw=$(missing "${pw[@]}")
if [ -z "$todo_gst" ] && [ -z "$todo_pw" ] && ! old_pipewire; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "geyser: GStreamer/PipeWire packages are missing:" $todo_gst $todo_pw >&2
    echo "Run this once as root, then try again:" >&2
    echo "  sudo bash $(realpath "$0")" >&2
    exit 2
  fi
fi

if is_bookworm; then
  ensure_backports_entry "${sudo[@]}"
fi
"${sudo[@]}" apt-get update -qq
if [ -n "$todo_gst" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq $todo_gst >/dev/null
fi
target=()
is_bookworm && target=(-t bookworm-backports)
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${target[@]}" "${pw[@]}" >/dev/null
if [ -n "$(missing "${gst[@]}" "${pw[@]}")" ] || old_pipewire; then
  echo "geyser: GStreamer/PipeWire packages still missing after install" >&2
  exit 1
fi
echo "geyser: GStreamer and PipeWire installed" >&2
