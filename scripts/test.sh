#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (Debian
# packages, the in-toto 3.1.0 reference venv), then formatting, lints, and
# every unit and integration test. Tests that cannot run on this machine
# print a `SKIP: reason` line (under CI they fail instead).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v cc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v tar >/dev/null || need+=(tar)
command -v strace >/dev/null || need+=(strace)
command -v setpriv >/dev/null || need+=(util-linux)
command -v mkfs.btrfs >/dev/null || need+=(btrfs-progs)
command -v filefrag >/dev/null || need+=(e2fsprogs)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: need root (or sudo) to install ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi

# tests/rerun_real.rs replays a real autotools build: GNU hello's release
# tarball, cached in $TRACELINK_TEST_CACHE (default tests/data/cache, ignored
# by git) and fetched from the distribution's source packages once. The
# system's apt configuration is left as it is: the deb-src lines go to a
# sources file of our own, given to apt for this fetch only.
cache=${TRACELINK_TEST_CACHE:-$top/tests/data/cache}
export TRACELINK_TEST_CACHE=$cache
if [ ! -f "$cache/hello_2.10.orig.tar.gz" ] && command -v apt-get >/dev/null; then
  echo "test.sh: fetching GNU hello's source into $cache"
  mkdir -p "$cache"
  srcdir=$(mktemp -d)
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && { cat "$f"; sed -n 's/^deb \(.*\)$/deb-src \1/p' "$f"; } >>"$srcdir/src.list"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed 's/^Types: deb$/Types: deb deb-src/' "$f" >"$srcdir/$(basename "$f")"
  done
  touch "$srcdir/src.list"
  apt_src=(-o "Dir::Etc::sourcelist=$srcdir/src.list" -o "Dir::Etc::sourceparts=$srcdir")
  if apt-get "${apt_src[@]}" update -qq &&
     (cd "$srcdir" && apt-get "${apt_src[@]}" source --download-only hello >/dev/null) &&
     [ -f "$srcdir/hello_2.10.orig.tar.gz" ]; then
    cp "$srcdir/hello_2.10.orig.tar.gz" "$cache/"
  else
    echo "test.sh: could not fetch hello_2.10.orig.tar.gz; tests/rerun_real.rs will SKIP" >&2
  fi
  rm -rf "$srcdir"
fi

TRACELINK_INTOTO_VENV=$(scripts/setup-venv.sh | tail -n 1)
export TRACELINK_INTOTO_VENV

# Precise recording as an unprivileged user needs a world-usable /dev/fuse
# (standard distributions ship it 0666; this machine kind ships it 0600) and
# a user to run as. As root, set both up; tests run as that user then.
if [ "$(id -u)" -eq 0 ] && [ -e /dev/fuse ]; then
  if [ "$(stat -c %a /dev/fuse)" != 666 ]; then
    echo "test.sh: making /dev/fuse usable by unprivileged users (chmod 0666, as distributions ship it)"
    chmod 0666 /dev/fuse
  fi
  id tracelink-test >/dev/null 2>&1 || useradd --create-home --shell /bin/sh tracelink-test
  export TRACELINK_TEST_USER=tracelink-test
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo test"
cargo test --locked --no-fail-fast -- --nocapture
if [ -n "${TRACELINK_TEST_USER:-}" ]; then
  echo "== the precise-recording suite again, as the unprivileged user $TRACELINK_TEST_USER"
  TRACELINK_PRECISE_AS_USER=$TRACELINK_TEST_USER cargo test --locked --no-fail-fast --test precise -- --nocapture
fi
