#!/usr/bin/env bash
# Installs the in-toto reference implementation (3.1.0, from PyPI) and
# in-toto-attestation 0.9.3 (module in_toto_attestation) into a Python venv
# for the interoperability tests, the demo and the benchmarks. Idempotent.
# The venv lives in $TRACELINK_INTOTO_VENV (default: .venv-intoto at the top
# of the repository). Prints the venv's path on its last line (everything
# else goes to stderr). Stops with `setup-venv.sh: cannot ...` on stderr and
# a non-zero exit when an install fails (scripts/lib-install.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
install_script=setup-venv.sh
# shellcheck source=lib-install.sh source-path=SCRIPTDIR disable=SC1091
. "$top/scripts/lib-install.sh"
venv=${TRACELINK_INTOTO_VENV:-$top/.venv-intoto}
want=3.1.0
want_attestation=0.9.3

need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
install_apt "${need[@]}"

# The venv is ready when both distributions are there in the wanted versions.
ready() {
  [ -x "$venv/bin/in-toto-verify" ] && "$venv/bin/python" - "$want" "$want_attestation" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
import in_toto, in_toto_attestation  # noqa: F401 (both must import)
sys.exit(version("in-toto") != sys.argv[1] or version("in-toto-attestation") != sys.argv[2])
PY
}
if ready; then
  echo "$venv"
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  out=$(python3 -m venv "$venv" 2>&1) || install_die "create the venv $venv" "python3 -m venv failed: $(printf '%s' "$out" | tail -n 1)"
fi
install_pip "$venv" "in-toto==$want" "in-toto-attestation==$want_attestation"
ready || install_die "install in-toto==$want in-toto-attestation==$want_attestation into $venv" \
  "they do not import, or in other versions, after pip install" "remove $venv and rerun"
"$venv/bin/in-toto-verify" --version >&2
"$venv/bin/python" -c 'import in_toto_attestation; from importlib.metadata import version; print("in-toto-attestation", version("in-toto-attestation"), "(import in_toto_attestation: ok)")' >&2
echo "$venv"
