#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (Debian
# packages, the in-toto 3.1.0 reference venv), then formatting, lints, the
# benchmarks' build, and every unit and integration test. Tests that cannot
# run on this machine print a `SKIP: <test>: reason` line (under CI they fail
# instead); this script lists the SKIP lines of the test output at the end,
# and under CI (`CI` set) fails on any. A failed install stops it at once,
# with `test.sh: cannot ...` (scripts/lib-install.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
install_script=test.sh
# shellcheck source=lib-install.sh source-path=SCRIPTDIR disable=SC1091
. scripts/lib-install.sh

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
install_apt "${need[@]}"

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
  why=''
  if ! apt_update "${apt_src[@]}"; then
    why=$install_why
  elif ! out=$(cd "$srcdir" && apt-get "${install_apt_opts[@]}" "${apt_src[@]}" source --download-only hello 2>&1); then
    why="apt-get source --download-only hello failed: $(printf '%s\n' "$out" | grep '^E:' | tail -n 1)"
  elif [ ! -f "$srcdir/hello_2.10.orig.tar.gz" ]; then
    why="apt-get source hello fetched no hello_2.10.orig.tar.gz (another version of hello in the sources?)"
  else
    cp "$srcdir/hello_2.10.orig.tar.gz" "$cache/"
  fi
  rm -rf "$srcdir"
  if [ -n "$why" ]; then
    if [ -n "${CI:-}" ]; then
      install_die "fetch GNU hello's source (hello_2.10.orig.tar.gz)" "$why" \
        "tests/rerun_real.rs needs it, and under CI its SKIP is a failure (or put the tarball in TRACELINK_TEST_CACHE)"
    fi
    echo "test.sh: could not fetch hello_2.10.orig.tar.gz: $why; tests/rerun_real.rs will SKIP" >&2
  fi
fi

# (No pipe: a failing setup-venv.sh must stop this script.)
venv_out=$(scripts/setup-venv.sh) || exit
TRACELINK_INTOTO_VENV=$(printf '%s\n' "$venv_out" | tail -n 1)
export TRACELINK_INTOTO_VENV

# Precise recording as an unprivileged user needs a world-usable /dev/fuse
# (standard distributions ship it 0666; this machine kind ships it 0600) and
# a user to run as. As root, set both up; tests run as that user then.
if [ "$(id -u)" -eq 0 ] && [ -e /dev/fuse ]; then
  if [ "$(stat -c %a /dev/fuse)" != 666 ]; then
    echo "test.sh: making /dev/fuse usable by unprivileged users (chmod 0666, as distributions ship it)"
    out=$(chmod 0666 /dev/fuse 2>&1) || install_die "make /dev/fuse usable by unprivileged users" "chmod 0666 /dev/fuse failed: $out"
  fi
  if ! id tracelink-test >/dev/null 2>&1; then
    out=$(useradd --create-home --shell /bin/sh tracelink-test 2>&1) ||
      install_die "create the test user tracelink-test" "useradd failed: $out"
  fi
  export TRACELINK_TEST_USER=tracelink-test
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo bench --no-run"
cargo bench --no-run --locked

# The test output is kept (--nocapture: the tests' SKIP lines are in it).
test_log=$(mktemp "${TMPDIR:-/tmp}/tracelink-test-log.XXXXXX")
trap 'rm -f "$test_log"' EXIT
failed=0
echo "== cargo test"
cargo test --locked --no-fail-fast -- --nocapture 2>&1 | tee "$test_log" || failed=1
if [ -n "${TRACELINK_TEST_USER:-}" ]; then
  echo "== the precise-recording suite again, as the unprivileged user $TRACELINK_TEST_USER"
  TRACELINK_PRECISE_AS_USER=$TRACELINK_TEST_USER cargo test --locked --no-fail-fast --test precise -- --nocapture 2>&1 |
    tee -a "$test_log" || failed=1
fi

# Defence in depth: a test that skips under CI must fail (common::skip
# panics there), but one that prints its own SKIP line would pass.
skips=$(grep -o 'SKIP: .*' "$test_log" | sed 's/; CI must run this test.*//' | sort -u) || true
if [ -n "$skips" ]; then
  echo "== SKIPped tests ($(printf '%s\n' "$skips" | wc -l)):"
  printf '%s\n' "$skips"
  if [ -n "${CI:-}" ]; then
    echo "test.sh: FAILED: under CI every test must run, and the SKIP lines above say some did not" >&2
    skipped_under_ci=1
  fi
else
  echo "== no test SKIPped"
fi
if ((failed)); then
  echo "test.sh: FAILED: cargo test failed (its output is above)" >&2
fi
if ((failed)) || [ -n "${skipped_under_ci:-}" ]; then
  exit 1
fi
echo "test.sh: all tests passed"
