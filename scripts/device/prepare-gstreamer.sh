#!/usr/bin/env bash
# Prepares a checkout for the GStreamer/PipeWire runs on the device machine, which has the
# NVIDIA driver but no GStreamer, PipeWire or D-Bus and no package access. Run once, on a
# Debian bookworm machine with apt (this one), from the repo root:
#   bash scripts/device/prepare-gstreamer.sh
# It downloads, as .deb files into the git-ignored .gst/: GStreamer (core, base libraries,
# the shm plugin of -bad, the PipeWire plugin), PipeWire 1.4 and WirePlumber (bookworm-
# backports), D-Bus, and every library those need that a stock Debian/Ubuntu image may lack
# (found by following the ELF files' NEEDED entries to a fixpoint). It writes .gst/env.sh,
# which unpacks them under /opt/geyser-gst on the device (never over the system's own
# libraries) and points GStreamer, PipeWire, WirePlumber and D-Bus there.
# Then, in device runs: carry [".gl", ".gst", ".devbin"] and start with
#   source .gl/env.sh; source .gst/env.sh;
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ex=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$ex")"
grep -qx '/.gst/' "$ex" 2>/dev/null || echo '/.gst/' >>"$ex"
rm -rf .gst && mkdir -p .gst /tmp/amd64/partial
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
apt-get "${o[@]}" update -qq

# What the device runs: the GStreamer elements of the element tests and the bench
# (coreelements, app, shm, pipewire), the PipeWire daemon and session manager, pw-cli,
# dbus-run-session.
seed=(libgstreamer1.0-0 libgstreamer-plugins-base1.0-0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-bad
  gstreamer1.0-pipewire/bookworm-backports libpipewire-0.3-0/bookworm-backports
  libpipewire-0.3-modules/bookworm-backports libspa-0.2-modules/bookworm-backports
  pipewire/bookworm-backports pipewire-bin/bookworm-backports wireplumber/bookworm-backports
  libwireplumber-0.5-0/bookworm-backports dbus-daemon dbus-bin dbus-session-bus-common
  libdbus-1-3 libglib2.0-0 liborc-0.4-0 liblua5.4-0)
# Libraries every Debian/Ubuntu image has (glibc, the compiler runtime, what apt and coreutils
# link): not carried.
base='^(libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|ld-linux|libgcc_s|libstdc\+\+|libz\.so|libselinux|libpcre2-8|libmount|libblkid|liblzma|libzstd|libbz2|libcrypt\.so|libresolv)'

fetch() { (cd .gst && apt-get "${o[@]}" download -qq "$@") }
fetch "${seed[@]}"
for d in .gst/*.deb; do dpkg -x "$d" "$work/root"; done

# The ELF files that will run: binaries, libraries, the GStreamer plugins the bench uses,
# PipeWire's modules and SPA plugins.
elves() {
  local l=$work/root/usr/lib/x86_64-linux-gnu
  find "$work/root/usr/bin" "$l" -maxdepth 1 -type f 2>/dev/null || true
  ls "$l"/gstreamer-1.0/libgst{coreelements,app,shm,pipewire}.so "$l"/gstreamer1.0/gstreamer-1.0/* 2>/dev/null || true
  # The modules PipeWire's default configuration loads (x11-bell and jackdbus-detect are
  # optional there), the SPA plugins a video graph uses, and WirePlumber's modules.
  for m in access adapter client-device client-node link-factory metadata portal profiler \
    protocol-native rt session-manager spa-device-factory spa-node-factory; do
    ls "$l/pipewire-0.3/libpipewire-module-$m.so" 2>/dev/null || true
  done
  find "$l/spa-0.2/support" "$l/spa-0.2/videoconvert" "$l/spa-0.2/control" "$l/spa-0.2/audioconvert" \
    "$l/spa-0.2/libspa.so" "$l/wireplumber-0.5" -type f 2>/dev/null || true
}
for round in 1 2 3 4 5 6; do
  need=$(elves | xargs -r readelf -d 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u || true)
  have=$(find "$work/root" -name '*.so*' -printf '%f\n' | sort -u)
  missing=$(comm -23 <(echo "$need") <(echo "$have") | grep -Ev "$base" || true)
  [ -z "$missing" ] && break
  pkgs=()
  for so in $missing; do
    p=$(dpkg -S "*/$so" 2>/dev/null | head -n1 | cut -d: -f1 || true)
    if [ -n "$p" ]; then pkgs+=("$p"); else echo "prepare-gstreamer: nobody here provides $so" >&2; fi
  done
  [ ${#pkgs[@]} -eq 0 ] && break
  echo "round $round: + ${pkgs[*]}" >&2
  fetch $(printf '%s\n' "${pkgs[@]}" | sort -u)
  for d in .gst/*.deb; do dpkg -x "$d" "$work/root"; done
done

cat >.gst/env.sh <<'ENV'
# Sourced on the device machine from the repo root (see scripts/device/prepare-gstreamer.sh):
# GStreamer, PipeWire, WirePlumber and D-Bus from .gst/*.deb under /opt/geyser-gst, used only
# by the processes that source this file.
export GEYSER_GST=/opt/geyser-gst
G=$GEYSER_GST
if [ ! -e $G/.done ]; then
  rm -rf $G && mkdir -p $G
  for d in .gst/*.deb; do dpkg -x "$d" $G; done
  # Only the plugins the runs need: GStreamer's registry stays small and loads nothing else.
  mkdir -p $G/gst-plugins
  for p in coreelements app shm pipewire; do
    cp $G/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgst$p.so $G/gst-plugins/
  done
  touch $G/.done
fi
L=$G/usr/lib/x86_64-linux-gnu
# Debian packages put some libraries (libdbus, libsystemd, libcap, …) under /lib, not /usr/lib.
export LD_LIBRARY_PATH=$L:$G/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH=$G/usr/bin:$PATH
export GST_PLUGIN_SYSTEM_PATH_1_0=$G/gst-plugins GST_PLUGIN_PATH_1_0=
export GST_PLUGIN_SCANNER_1_0=$L/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner
export GST_REGISTRY_1_0=$G/registry.bin
export PIPEWIRE_CONFIG_DIR=$G/usr/share/pipewire PIPEWIRE_MODULE_DIR=$L/pipewire-0.3
export SPA_PLUGIN_DIR=$L/spa-0.2 SPA_DATA_DIR=$G/usr/share/spa-0.2
export WIREPLUMBER_MODULE_DIR=$L/wireplumber-0.5 WIREPLUMBER_DATA_DIR=$G/usr/share/wireplumber
export WIREPLUMBER_CONFIG_DIR=$G/usr/share/wireplumber
# dbus-run-session finds dbus-daemon on PATH; its session config lives under the prefix.
dbus-run-session() {
  command dbus-run-session --config-file="$GEYSER_GST/usr/share/dbus-1/session.conf" "$@"
}
export -f dbus-run-session
ENV
du -sh .gst
ls .gst | sed 's/_.*//' | tr '\n' ' '; echo
echo "ready: in device runs, carry .gst (with .gl, .devbin) and start the command with: source .gl/env.sh; source .gst/env.sh;"
