#!/usr/bin/env bash
# Installs the in-toto reference implementation (3.1.0, from PyPI) into a
# Python venv for the interoperability tests, the demo and the benchmarks.
# Idempotent. The venv lives in $TRACELINK_INTOTO_VENV (default: .venv-intoto
# at the top of the repository). Prints the venv's path on its last line.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
venv=${TRACELINK_INTOTO_VENV:-$top/.venv-intoto}
want=3.1.0
if [ -x "$venv/bin/in-toto-verify" ] && "$venv/bin/python" -c "import in_toto, sys; sys.exit(in_toto.__version__ != '$want')" 2>/dev/null; then
  echo "$venv"
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "setup-venv: python3 lacks venv/ensurepip; installing python3-venv" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv >&2
fi
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "in-toto==$want" >&2
"$venv/bin/in-toto-verify" --version >&2
echo "$venv"
