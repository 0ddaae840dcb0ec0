#!/usr/bin/env bash
# The tracelink demo: records a real little C build as a two-step in-toto
# supply chain with tracelink (checkout as a snapshot of the sources, build
# recorded precisely: exactly the files make read and wrote, through a
# monitored FUSE mount, with in-toto attestations beside the link), shows the
# runtime trace and the SLSA provenance, has the owner draft the layout from
# the links (tracelink layout draft), add an inspection and sign it, verifies
# everything with in-toto 3.1.0's own in-toto-verify and with tracelink verify
# (which writes a signed SLSA Verification Summary), tampers with the built
# program and shows that both verifiers catch it, and finally replays the
# recorded build from its store (tracelink rerun) to show it reproduces byte
# for byte. Installs what it
# needs (Rust build, gcc/make, the in-toto venv), stopping with `demo.sh:
# cannot ...` when an install fails (scripts/lib-install.sh). Work happens in
# a fresh temporary directory, printed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
install_script=demo.sh
# shellcheck source=lib-install.sh source-path=SCRIPTDIR disable=SC1091
. "$top/scripts/lib-install.sh"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

need=()
command -v cc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
install_apt "${need[@]}"
say "building tracelink (release)"
(cd "$top" && cargo build --release --quiet)
tracelink=$top/target/release/tracelink
venv_out=$("$top/scripts/setup-venv.sh") || exit # (no pipe: its failure stops the demo)
venv=$(printf '%s\n' "$venv_out" | tail -n 1)
export PATH="$venv/bin:$PATH"

work=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tracelink-demo.XXXXXX")}
mkdir -p "$work"/{keys,project,links,verifier}
cd "$work"

say "keys: the owner signs the layout, alice checks out, bob builds"
for who in owner alice bob; do
  printf '%s: ' "$who"; "$tracelink" keygen "keys/$who.pem" --force
done

say "the project: a tiny C program and its Makefile"
mkdir -p project/src
cat > project/src/hello.c <<'C'
#include <stdio.h>
#include "greeting.h"
int main(void) { puts(GREETING); return 0; }
C
cat > project/src/greeting.h <<'C'
#define GREETING "hello from a recorded build"
C
cat > project/Makefile <<'MAKE'
build/hello: src/hello.c src/greeting.h
	mkdir -p build
	cc -O2 -o $@ src/hello.c
MAKE

cd project
say "step 1 (alice): record the checked-out sources as products"
show "$tracelink" run -n checkout --signing-key ../keys/alice.pem -d ../links -x -p src Makefile
say "step 2 (bob): record the build precisely (no -m/-p: tracelink watches what make reads and writes)"
# --attest: the same facts also as in-toto attestations (Statement v1 in DSSE
# envelopes signed by bob): the link predicate, SLSA Provenance v1, the
# runtime trace.
show "$tracelink" run -n build --signing-key ../keys/bob.pem -d ../links --store ../store --attest -- make
cd ..
say "what the build link says: materials (read) and products (written), and the trace beside it"
show "$tracelink" show links/build.*.link --verification-keys keys/bob.pem.pub
say "the build's SLSA provenance: its resolvedDependencies are the files make really read, plus the toolchain it ran"
show "$tracelink" show links/build.*.link.attest-provenance.json --verification-keys keys/bob.pem.pub

say "the owner drafts the layout from the recorded links"
# Each step's functionary is the key that signed its link; materials are
# MATCHed to the step that produced them, products CREATEd, all else
# DISALLOWed, with directory patterns where that is safe (src/*).
show "$tracelink" layout draft --link-dir links --functionary-key keys/alice.pem.pub keys/bob.pem.pub -o draft.layout
"$venv/bin/python" - <<'PY'
import json
for step in json.load(open("draft.layout"))["signed"]["steps"]:
    print(f"  step {step['name']} (command {step['expected_command']}):")
    for which in ("expected_materials", "expected_products"):
        for rule in step[which]:
            print(f"    {which[9:]:<10} {' '.join(rule)}")
PY

say "the owner reviews the draft and adds an inspection: the verifier runs the delivered program"
"$venv/bin/python" - <<'PY'
from in_toto.models.layout import Inspection
from in_toto.models.metadata import Metablock
draft = Metablock.load("draft.layout")
run = Inspection(name="run-hello", run=["./build/hello"])
run.expected_materials = [
    ["MATCH", "build/hello", "WITH", "PRODUCTS", "FROM", "build"],
    ["ALLOW", "root.layout"], ["ALLOW", "owner.pem.pub"], ["DISALLOW", "*"],
]
run.expected_products = [["MATCH", "*", "WITH", "MATERIALS", "FROM", "run-hello"], ["DISALLOW", "*"]]
draft.signed.inspect = [run]
draft.dump("root.layout")
PY
show "$venv/bin/in-toto-sign" -f root.layout -k keys/owner.pem

say "the verifier receives the program, the layout, the links and the owner's public key"
mkdir -p verifier/build
cp project/build/hello verifier/build/ && cp root.layout keys/owner.pem.pub verifier/ && cp -r links verifier/
cd verifier
show "$venv/bin/in-toto-verify" --layout root.layout --verification-keys owner.pem.pub --link-dir links
say "verified by in-toto-verify 3.1.0; now the same with tracelink verify (no Python needed),"
say "which also writes a signed SLSA Verification Summary (VSA) for the delivered program"
show "$tracelink" verify --layout root.layout --verification-keys owner.pem.pub --link-dir links \
  --vsa ../hello.vsa.json --signing-key ../keys/owner.pem
show "$tracelink" show ../hello.vsa.json --verification-keys owner.pem.pub

say "now tamper with the program after it was built: verification must fail"
printf 'x' >> build/hello
if "$venv/bin/in-toto-verify" --layout root.layout --verification-keys owner.pem.pub --link-dir links; then
  echo "demo: ERROR: the tampered program passed in-toto-verify" >&2
  exit 1
fi
if "$tracelink" verify --layout root.layout --verification-keys owner.pem.pub --link-dir links; then
  echo "demo: ERROR: the tampered program passed tracelink verify" >&2
  exit 1
fi
say "tampering caught by both verifiers"
cd ..

say "forensics: replay the recorded build from its store in a fresh work tree"
# The sources change after the recording; the store still has what make read.
echo '#define GREETING "changed after the build"' > project/src/greeting.h
show "$tracelink" rerun links/build.*.link --verification-keys keys/bob.pem.pub --workdir rerun
say "demo complete (files in $work)"
