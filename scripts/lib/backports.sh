# Sourced by scripts: Debian bookworm helpers. `is_bookworm` says whether this is bookworm;
# `ensure_backports_entry CMD...` adds a bookworm-backports apt entry derived from the
# machine's own Debian entry (same URIs, deb822 or one-line), running `tee` through CMD (e.g.
# `sudo -n`; nothing when root). Does nothing when an entry exists.
is_bookworm() {
  [ -r /etc/os-release ] && grep -q '^VERSION_CODENAME=bookworm' /etc/os-release
}

ensure_backports_entry() {
  local src uri key
  grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
  src=$(grep -ls '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)
  if [ -n "$src" ]; then
    uri=$(awk '/^URIs:/{u=$2} /^Suites:.*bookworm( |$)/{if(u!=""){print u; exit}} /^$/{u=""}' "$src")
    key=$(awk -v u="$uri" '/^URIs:/{m=($2==u)} m&&/^Signed-By:/{print $2; exit}' "$src")
    [ -n "$uri" ] || { echo "geyser: no Debian bookworm entry found in $src" >&2; return 1; }
    {
      echo "Types: deb"
      echo "URIs: $uri"
      echo "Suites: bookworm-backports"
      echo "Components: main"
      [ -n "$key" ] && echo "Signed-By: $key"
    } | "$@" tee /etc/apt/sources.list.d/geyser-backports.sources >/dev/null
  else
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
    [ -n "$uri" ] || { echo "geyser: no Debian bookworm entry in /etc/apt/sources.list" >&2; return 1; }
    echo "deb $uri bookworm-backports main" |
      "$@" tee /etc/apt/sources.list.d/geyser-backports.list >/dev/null
  fi
}
