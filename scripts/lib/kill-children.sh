# Sourced by scripts: `kill_children PID...` signals (SIGTERM) those of the given processes
# that are still running children of the calling shell. A background process that ended has
# been reaped by bash already and its PID may belong to another process by now: such PIDs are
# skipped, so nothing but our own processes is ever signalled.
kill_children() {
  local p ppid
  for p in "$@"; do
    ppid=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f2)
    [ "$ppid" = "$BASHPID" ] && kill "$p" 2>/dev/null
  done
  return 0
}
