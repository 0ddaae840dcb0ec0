# shellcheck shell=bash
# Installing what the scripts need, stopping at the first failure with a
# clear message. Sourced by scripts/test.sh, scripts/demo.sh and
# scripts/setup-venv.sh (after `set -euo pipefail`); set `install_script` to
# the script's name for the messages first (default: the script's file name).
#
# A step that fails prints `<script>: cannot install PKGS: <reason>; <hint>`
# (or `<script>: cannot <do what>: ...`) on stderr and exits non-zero. An
# `a && b` list would not do: `set -e` ignores a failure in it, and the
# script went on (tests SKIPped, and passed).
#
#   install_apt PKG...    apt-get update, then apt-get install -y PKG...,
#                         waiting up to 120 s for an apt or dpkg run of
#                         somebody else (DPkg::Lock::Timeout; apt-get update
#                         is retried while its lists lock is held). Nothing
#                         to do (no PKG, no extra package below): no-op.
#                         Needs root. All output goes to stderr.
#   apt_update [OPT...]   apt-get OPT... update with the same lock waiting;
#                         returns non-zero (apt's last error in $install_why)
#                         instead of exiting.
#   install_pip VENV SPEC...  VENV/bin/pip install SPEC... (output on stderr).
#   install_die WHAT REASON [HINT]  prints `<script>: cannot WHAT: REASON[; HINT]`
#                         and exits 1.
#
# Environment, for testing only:
#   TRACELINK_TEST_EXTRA_APT_PACKAGE=NAME  adds the Debian package NAME to the
#       list of every install_apt call, and makes the call even when the
#       script needs nothing else. Pointed at a package that does not exist
#       (tests/scripts.rs uses tracelink-no-such-package) it must make the
#       scripts stop, non-zero, with the message above, before they build or
#       test anything. apt refuses the whole install, so nothing is installed.

install_script=${install_script:-$(basename "$0" .sh).sh}
install_why=''

install_die() {
  local msg="$install_script: cannot $1: $2"
  [ -z "${3:-}" ] || msg="$msg; $3"
  echo "$msg" >&2
  exit 1
}

# install_last_error LOG: apt's or pip's last error line in LOG (or its last
# non-empty line).
install_last_error() {
  local line
  line=$(grep -E '^(E|ERROR|error):' "$1" | tail -n 1) || true
  [ -n "$line" ] || line=$(grep -v '^[[:space:]]*$' "$1" | tail -n 1) || true
  printf '%s' "${line:-no output}"
}

install_apt_opts=(-o DPkg::Lock::Timeout=120)

# shellcheck disable=SC2120 # (OPT... are for the GNU hello fetch in test.sh)
apt_update() {
  local log rc=0 try
  log=$(mktemp)
  for try in 1 2 3 4 5 6 7 8 9 10 11 12; do
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get "${install_apt_opts[@]}" "$@" update -qq >"$log" 2>&1 || rc=$?
    cat "$log" >&2
    # The lists lock (apt-get update) is not covered by DPkg::Lock::Timeout
    # on every apt version: retry while somebody else holds a lock.
    if ((rc != 0)) && grep -q 'Could not get lock\|Unable to lock' "$log" && ((try < 12)); then
      echo "$install_script: an apt lock is held by another process; retrying apt-get update in 10 s ($try/12)" >&2
      sleep 10
      continue
    fi
    break
  done
  install_why="apt-get update failed (exit $rc): $(install_last_error "$log")"
  rm -f "$log"
  return "$rc"
}

install_apt() {
  local pkgs=("$@") log rc=0
  [ -z "${TRACELINK_TEST_EXTRA_APT_PACKAGE:-}" ] || pkgs+=("$TRACELINK_TEST_EXTRA_APT_PACKAGE")
  ((${#pkgs[@]} > 0)) || return 0
  echo "$install_script: installing ${pkgs[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    install_die "install ${pkgs[*]}" "not root (apt-get needs root)" "run as root, or install them yourself"
  fi
  command -v apt-get >/dev/null ||
    install_die "install ${pkgs[*]}" "apt-get not found" "install them with this system's package manager"
  # shellcheck disable=SC2119 # (no OPT here)
  apt_update ||
    install_die "install ${pkgs[*]}" "$install_why" "check the network to the package registry and /etc/apt/sources.list*"
  log=$(mktemp)
  DEBIAN_FRONTEND=noninteractive apt-get "${install_apt_opts[@]}" install -y -qq "${pkgs[@]}" >"$log" 2>&1 || rc=$?
  cat "$log" >&2
  if ((rc != 0)); then
    install_why="apt-get install failed (exit $rc): $(install_last_error "$log")"
    rm -f "$log"
    install_die "install ${pkgs[*]}" "$install_why" "apt-get's output is above (nothing was installed when a package is unknown)"
  fi
  rm -f "$log"
}

install_pip() {
  local venv=$1 log rc=0
  shift
  log=$(mktemp)
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >"$log" 2>&1 || rc=$?
  cat "$log" >&2
  if ((rc != 0)); then
    install_why="pip install failed (exit $rc): $(install_last_error "$log")"
    rm -f "$log"
    install_die "install $* into $venv" "$install_why" "check the network to PyPI (pip's output is above)"
  fi
  rm -f "$log"
}
