#!/usr/bin/env bash
# Runs "$@" with a PipeWire daemon of its own: call it inside `dbus-run-session` with a private
# XDG_RUNTIME_DIR (scripts/test-pipewire.sh does both). Starts pipewire, waits for its socket,
# starts wireplumber, waits until it manages the graph, runs the command, stops both, and exits
# with the command's status.
set -uo pipefail
# shellcheck source=kill-children.sh
. "$(dirname "$0")/kill-children.sh"
log=${PIPEWIRE_SESSION_LOG:-$XDG_RUNTIME_DIR}
pipewire >"$log/pipewire.log" 2>&1 &
pw=$!
for _ in $(seq 100); do
  [ -S "$XDG_RUNTIME_DIR/pipewire-0" ] && break
  sleep 0.05
done
if [ ! -S "$XDG_RUNTIME_DIR/pipewire-0" ]; then
  echo "pipewire did not start:" >&2
  cat "$log/pipewire.log" >&2
  kill_children "$pw"
  exit 1
fi
wireplumber >"$log/wireplumber.log" 2>&1 &
wp=$!
# WirePlumber is up once it shows as a client of the daemon.
for _ in $(seq 100); do
  pw-cli ls Client 2>/dev/null | grep -q wireplumber && break
  sleep 0.05
done
"$@"
rc=$?
kill_children "$wp" "$pw"
wait "$wp" "$pw" 2>/dev/null
exit $rc
