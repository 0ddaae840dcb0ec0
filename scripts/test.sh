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
