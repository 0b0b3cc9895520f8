#!/usr/bin/env bash
# Runs "$@" with a PipeWire daemon of its own: call it inside `dbus-run-session` with a private
# XDG_RUNTIME_DIR (scripts/test-pipewire.sh does both). Starts pipewire, waits for its socket,
# starts wireplumber, waits until it manages the graph, runs the command, stops both, and exits
# with the command's status.
set -uo pipefail
log=${PIPEWIRE_SESSION_LOG:-$XDG_RUNTIME_DIR}
pipewire >"$log/pipewire.log" 2>&1 &
pw=$!
for _ in $(seq 100); do
  [ -S "$XDG_RUNTIME_DIR/pipewire-0" ] && break
  sleep 0.05
done
[ -S "$XDG_RUNTIME_DIR/pipewire-0" ] || { echo "pipewire did not start:" >&2; cat "$log/pipewire.log" >&2; exit 1; }
wireplumber >"$log/wireplumber.log" 2>&1 &
wp=$!
# WirePlumber is up once it shows as a client of the daemon.
for _ in $(seq 100); do
  pw-cli ls Client 2>/dev/null | grep -q wireplumber && break
  sleep 0.05
done
"$@"
rc=$?
kill "$wp" "$pw" 2>/dev/null
wait "$wp" "$pw" 2>/dev/null
exit $rc
