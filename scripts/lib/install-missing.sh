# Sourced by scripts: `install_missing <script name> <package>...` installs the Debian packages
# that are not installed yet (as root, or with passwordless sudo); otherwise it prints the
# command to run once as root and exits 2.
install_missing() {
  local who=$1
  shift
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "$who: ${missing[*]} missing; run once as root, then try again:" >&2
      echo "  sudo apt-get install -y ${missing[*]}" >&2
      exit 2
    fi
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}
