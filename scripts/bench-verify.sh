#!/usr/bin/env bash
# Benchmarks `tracelink verify` against in-toto 3.1.0's in-toto-verify on the
# same supply chain, layout, key and links:
#
#   tracelink verify --layout root.layout --verification-keys owner.pub --link-dir links
#   in-toto-verify   --layout root.layout --verification-keys owner.pub --link-dir links
#
# The chain: 5 steps over a tree of 10,000 small files (512-2048 bytes, random
# sizes and content from a fixed seed, in 100 directories), recorded by
# tracelink in snapshot mode with one functionary key:
#
#   s1:     tracelink run -n s1 -k FUNC -x -p tree                (10,000 products)
#   s2..s5: tracelink run -n sK -k FUNC -m tree -p tree -- true   (10,000 materials
#                                                                  and products each)
#
# The layout is written and signed with in-toto's own Python API (an ed25519
# owner key from `tracelink keygen`, securesystemslib's CryptoSigner over the
# PEM): s1 products CREATE tree/*, DISALLOW *; sK materials and products each
# MATCH tree/* WITH PRODUCTS FROM s(K-1), DISALLOW *. So verification checks
# 6 signatures (layout + 5 links), loads 90,000 artifact entries (about 12 MB
# of links) and applies the rules to all of them. No inspections: an inspection is a snapshot of the
# current directory taken by the verifier itself (in-toto-run's work, timed by
# scripts/bench-snapshot.sh), which would time the same hashing in both
# verifiers rather than verification.
#
# The setup (tree, keys, links, layout) is generated once and reused: it lives
# in $BENCH_DIR (default ${TMPDIR:-/tmp}/tracelink-bench-verify) with a marker
# file recording how it was made. Before timing, both verifiers must accept the
# chain (exit 0) and reject two tampered copies of the link directory (exit
# non-zero): one with s3's link deleted, one with one product digest of s3's
# link changed and the link re-signed with the functionary key (so only the
# artifact rules can catch it); otherwise the benchmark aborts.
#
# Warm page cache: one untimed warm-up run of each verifier, then $BENCH_RUNS
# (default 5) interleaved pairs (tracelink, in-toto-verify, tracelink, ...),
# each of which must exit 0. Before each timed run the script waits (at most
# $BENCH_IDLE_WAIT s, $BENCH_IDLE_BUDGET s in all) for the rest of the machine
# to be idle, and each run reports how much CPU the rest of the machine used
# meanwhile (column 'other'), since other load inflates wall-clock figures.
#
# Environment: BENCH_DIR, BENCH_RUNS (5), BENCH_SEED (1), BENCH_IDLE_WAIT (30),
# BENCH_IDLE_BUDGET (300), TRACELINK_INTOTO_VENV (see scripts/setup-venv.sh),
# CARGO_TARGET_DIR. Needs: cargo, python3, find. Exit status 0 whether or not
# tracelink is faster; 1 on any error, or if a verifier gives a wrong verdict.
set -euo pipefail
export LC_ALL=C

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$script_dir/.." && pwd)
[ -f "$script_dir/bench-lib.sh" ] || {
  echo "bench: error: $script_dir/bench-lib.sh is missing" >&2
  exit 1
}
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR disable=SC1091 # (shellcheck -x follows it)
. "$script_dir/bench-lib.sh"

bench_args "$@"

runs=${BENCH_RUNS:-5}
seed=${BENCH_SEED:-1}
idle_wait=${BENCH_IDLE_WAIT:-30}
idle_budget=${BENCH_IDLE_BUDGET:-300}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/tracelink-bench-verify}
bench_check_count BENCH_RUNS "$runs"
bench_check_count BENCH_SEED "$seed"
bench_check_count BENCH_IDLE_WAIT "$idle_wait"
bench_check_count BENCH_IDLE_BUDGET "$idle_budget"
((runs >= 1)) || bench_die "BENCH_RUNS must be at least 1"

# The chain's shape. Changing any of these regenerates the setup.
ndirs=100
nfiles=10000
min_bytes=512
max_bytes=2048
nsteps=5
spec="tracelink-bench-verify setup v1: seed=$seed dirs=$ndirs files=$nfiles sizes=$min_bytes-$max_bytes steps=$nsteps"
started=$SECONDS

# --- Tools -------------------------------------------------------------------
command -v cargo >/dev/null || bench_die "cargo not found"
command -v python3 >/dev/null || bench_die "python3 not found"
tracelink=$(bench_build_tracelink "$top")

bench_note "checking the in-toto venv (scripts/setup-venv.sh) ..."
venv=$("$top/scripts/setup-venv.sh" | tail -n 1)
intoto_verify=$venv/bin/in-toto-verify
[ -x "$intoto_verify" ] || bench_die "no in-toto-verify in $venv"
intoto_version=$("$venv/bin/python" -c 'import in_toto; print(in_toto.__version__)')
intoto_python=$("$venv/bin/python" -c 'import platform; print(platform.python_version())')
tracelink_version=$("$tracelink" --version)
source_desc=$(bench_source_desc "$top")

# --- The setup: tree, keys, links, layout --------------------------------------
mkdir -p "$work"
work=$(cd "$work" && pwd)
setup=$work/setup
marker=$work/setup.spec

# make_layout OWNER_PEM FUNCTIONARY_PUB NSTEPS OUT: the layout, signed by the owner.
make_layout() {
  "$venv/bin/python" - "$@" <<'PY'
import sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from in_toto.models.layout import Layout, Step
from in_toto.models.metadata import Metablock
from securesystemslib.signer import CryptoSigner

owner_pem, func_pub, nsteps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
layout = Layout()
layout.expires = "2099-01-01T00:00:00Z"
layout.readme = "tracelink verify benchmark: %d steps over tree/" % nsteps
func = layout.add_functionary_key_from_path(func_pub)
steps = []
for k in range(1, nsteps + 1):
    step = Step(name="s%d" % k, pubkeys=[func["keyid"]], threshold=1)
    if k == 1:
        step.expected_command = []
        step.expected_materials = []
        step.expected_products = [["CREATE", "tree/*"], ["DISALLOW", "*"]]
    else:
        prev = "s%d" % (k - 1)
        step.expected_command = ["true"]
        step.expected_materials = [["MATCH", "tree/*", "WITH", "PRODUCTS", "FROM", prev], ["DISALLOW", "*"]]
        step.expected_products = [["MATCH", "tree/*", "WITH", "PRODUCTS", "FROM", prev], ["DISALLOW", "*"]]
    steps.append(step)
layout.steps = steps
layout.inspect = []
layout.validate()
metablock = Metablock(signed=layout)
with open(owner_pem, "rb") as f:
    metablock.create_signature(CryptoSigner(load_pem_private_key(f.read(), None)))
metablock.dump(out)
PY
}

if [ -d "$setup" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$spec" ]; then
  setup_state="reused (marker $marker)"
else
  if [ -e "$setup" ]; then
    # Delete only a setup this script made: one with a marker (of other settings).
    [ -f "$marker" ] || bench_die "$setup exists but has no marker $marker; remove it or choose another BENCH_DIR"
    bench_note "the setup was made with other settings; regenerating"
    rm -rf "$setup"
  fi
  rm -f "$marker"
  partial=$setup.partial
  rm -rf "$partial"
  mkdir -p "$partial/keys" "$partial/links"
  gen_start=$SECONDS
  bench_note "generating the tree ($nfiles files, seed $seed) ..."
  bench_gen_tree "$partial/tree" "$seed" "$ndirs" "$nfiles" "$min_bytes" "$max_bytes" 0 0
  "$tracelink" keygen "$partial/keys/owner" >/dev/null
  "$tracelink" keygen "$partial/keys/functionary" >/dev/null
  bench_note "recording $nsteps links with tracelink (snapshot mode) ..."
  (
    cd "$partial"
    "$tracelink" run -n s1 -k keys/functionary -d links -x -p tree
    for ((k = 2; k <= nsteps; k++)); do
      "$tracelink" run -n "s$k" -k keys/functionary -d links -m tree -p tree -- true
    done
  ) >"$work/setup.log" 2>&1 || {
    tail -n 20 "$work/setup.log" >&2
    bench_die "recording the links failed (log: $work/setup.log)"
  }
  bench_note "writing and signing the layout with in-toto's Python API ..."
  make_layout "$partial/keys/owner" "$partial/keys/functionary.pub" "$nsteps" "$partial/root.layout" \
    >>"$work/setup.log" 2>&1 || {
    tail -n 20 "$work/setup.log" >&2
    bench_die "writing the layout failed (log: $work/setup.log)"
  }
  mv "$partial" "$setup"
  echo "$spec" >"$marker"
  setup_state="generated in $((SECONDS - gen_start)) s"
fi
stats=$(bench_tree_stats "$setup/tree")
read -r tree_files tree_bytes <<<"$stats"
[ "$tree_files" -eq "$nfiles" ] ||
  bench_die "$setup/tree has $tree_files files, expected $nfiles (delete $work and run again)"
links=("$setup"/links/*.link)
if [ "${#links[@]}" -ne "$nsteps" ] || [ ! -f "${links[0]}" ]; then
  bench_die "$setup/links holds ${#links[@]} links, expected $nsteps (delete $work and run again)"
fi
# Artifact entries in the links, and their size.
link_stats=$(python3 - "${links[@]}" <<'PY'
import json, os, sys
n = sum(len(s["materials"]) + len(s["products"])
        for s in (json.load(open(p))["signed"] for p in sys.argv[1:]))
print(n, sum(os.path.getsize(p) for p in sys.argv[1:]))
PY
)
read -r n_artifacts links_bytes <<<"$link_stats"
want_artifacts=$((nfiles * (2 * nsteps - 1)))
[ "$n_artifacts" -eq "$want_artifacts" ] ||
  bench_die "the links list $n_artifacts artifacts, expected $want_artifacts (delete $work and run again)"

logs=$work/logs
mkdir -p "$logs"
rm -f "$logs"/*.log

# --- The verifiers, and the verdict checks -----------------------------------------
# verifier_cmd NAME LINKDIR: sets cmd to the verifier's command line.
cmd=()
verifier_cmd() {
  case $1 in
    tracelink) cmd=("$tracelink" verify --layout root.layout --verification-keys keys/owner.pub --link-dir "$2") ;;
    in-toto-verify) cmd=("$intoto_verify" --layout root.layout --verification-keys keys/owner.pub --link-dir "$2") ;;
  esac
}
# last_line LOG: the verifier's verdict line (tracelink's "tracelink: ..." line or
# in-toto-verify's "(in-toto-verify) Error: ..." line), else its last non-empty line,
# shortened; in-toto-verify says nothing when it verifies.
last_line() {
  local line
  line=$(grep -E '^(tracelink: |\(in-toto-verify\) )' "$1" | tail -n 1) ||
    line=$(grep -v '^[[:space:]]*$' "$1" | tail -n 1) || line="(no output)"
  printf '%s\n' "$line" | cut -c 1-150
}

# Two tampered copies of the link directory (outside the setup, remade every time).
tamper=$work/tampered
rm -rf "$tamper"
mkdir -p "$tamper"
cp -R "$setup/links" "$tamper/missing"
missing_link=$(cd "$tamper/missing" && ls s3.*.link)
rm "$tamper/missing/$missing_link"
cp -R "$setup/links" "$tamper/digest"
tampered_artifact=$("$venv/bin/python" - "$tamper/digest"/s3.*.link "$setup/keys/functionary" <<'PY'
import sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from in_toto.models.metadata import Metablock
from securesystemslib.signer import CryptoSigner

path, key = sys.argv[1], sys.argv[2]
mb = Metablock.load(path)
name = sorted(mb.signed.products)[len(mb.signed.products) // 2]
digest = mb.signed.products[name]["sha256"]
mb.signed.products[name]["sha256"] = ("0" if digest[0] != "0" else "1") + digest[1:]
mb.signatures = []
with open(key, "rb") as f:
    mb.create_signature(CryptoSigner(load_pem_private_key(f.read(), None)))
mb.dump(path)
print(name)
PY
) || bench_die "could not make the tampered link"

# verdict NAME LINKDIR WANT(pass|fail) LABEL: one untimed run; dies on a wrong verdict;
# prints the verifier's last line of output.
verdict() {
  local name=$1 dir=$2 want=$3 label=$4 log=$logs/check-$4-$1.log rc=0
  verifier_cmd "$name" "$dir"
  (cd "$setup" && "${cmd[@]}") </dev/null >"$log" 2>&1 || rc=$?
  if [ "$want" = pass ] && ((rc != 0)); then
    tail -n 20 "$log" >&2
    bench_die "$name rejected the untampered chain (exit $rc; log: $log)"
  fi
  if [ "$want" = fail ] && ((rc == 0)); then
    tail -n 20 "$log" >&2
    bench_die "$name accepted the tampered chain '$label' (log: $log)"
  fi
  if [ "$want" = fail ] && ((rc >= 125)); then
    tail -n 20 "$log" >&2
    bench_die "$name failed abnormally on '$label' (exit $rc; log: $log)"
  fi
  echo "exit $rc: $(last_line "$log")"
}
bench_note "checking the verdicts (untampered, and two tampered copies) ..."
check_lines=()
for label in good missing digest; do
  for name in tracelink in-toto-verify; do
    case $label in
      good) line=$(verdict "$name" links pass "$label") ;;
      *) line=$(verdict "$name" "$tamper/$label" fail "$label") ;;
    esac
    check_lines+=("$(printf '  %-8s %-15s %s' "$label" "$name" "$line")")
  done
done

# --- Timing ---------------------------------------------------------------------

# run_verifier NAME LOG -> prints bench_time's "SECONDS RSS_KIB CPU_SECONDS OTHER_CORES";
# dies unless the verifier exits 0.
run_verifier() {
  local name=$1 log=$2 result
  verifier_cmd "$name" links
  if ! result=$(cd "$setup" && bench_time "$log" "${cmd[@]}"); then
    tail -n 20 "$log" >&2
    bench_die "$name did not verify the chain (log: $log)"
  fi
  echo "$result"
}

fmt_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }

bench_note "warm-up: one untimed run of each verifier ..."
run_verifier tracelink "$logs/warmup-tracelink.log" >/dev/null
run_verifier in-toto-verify "$logs/warmup-in-toto-verify.log" >/dev/null

machine=$(bench_machine)
fs_type=$(df -PT "$work" | awk 'NR == 2 { print $2 }')
links_mib=$(awk -v b="$links_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')

echo "== tracelink verify benchmark =="
echo "machine : $machine; load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "work dir: $work ($fs_type); setup $setup_state"
printf 'chain   : %d steps over %d files (%s bytes, %d-%d each, seed %d); %d links, %d artifact entries, %s MiB;\n' \
  "$nsteps" "$tree_files" "$tree_bytes" "$min_bytes" "$max_bytes" "$seed" "$nsteps" "$n_artifacts" "$links_mib"
echo "          layout: s1 CREATE tree/*; s2..s$nsteps MATCH tree/* WITH PRODUCTS FROM the previous step"
echo "          (materials and products), DISALLOW * everywhere; no inspections; ed25519 keys"
echo "tools   : $tracelink_version ($source_desc, release build); in-toto-verify $intoto_version (Python $intoto_python)"
echo "commands: tracelink verify / in-toto-verify --layout root.layout --verification-keys owner.pub --link-dir links"
echo "verdicts: (untimed; the last line of each verifier's output)"
printf '%s\n' "${check_lines[@]}"
echo "          (digest: in s3's link, $tampered_artifact's sha256 changed, the link re-signed)"
echo "method  : page cache warm (1 untimed warm-up each), then $runs interleaved pairs (tracelink first),"
echo "          each after waiting up to $idle_wait s for an idle machine; wall = time.perf_counter around"
echo "          the child; CPU = its user+sys time; RSS = its peak resident memory (getrusage"
echo "          RUSAGE_CHILDREN); other = CPU cores used by the rest of the machine meanwhile"
echo
printf '%4s | %-27s | %-27s\n' "" "tracelink verify" "in-toto-verify"
printf '%4s | %7s %6s %7s %5s | %7s %6s %7s %5s\n' \
  run "wall s" "CPU s" "RSS MiB" other "wall s" "CPU s" "RSS MiB" other
tl_wall=() tl_cpu=() tl_rss=() tl_other=() it_wall=() it_cpu=() it_rss=() it_other=()
for ((i = 1; i <= runs; i++)); do
  bench_wait_idle
  res=$(run_verifier tracelink "$logs/run$i-tracelink.log")
  read -r w r c o <<<"$res"
  tl_wall+=("$w") tl_rss+=("$r") tl_cpu+=("$c") tl_other+=("$o")
  bench_wait_idle
  res=$(run_verifier in-toto-verify "$logs/run$i-in-toto-verify.log")
  read -r w2 r2 c2 o2 <<<"$res"
  it_wall+=("$w2") it_rss+=("$r2") it_cpu+=("$c2") it_other+=("$o2")
  printf '%4d | %7s %6s %7s %5s | %7s %6s %7s %5s\n' \
    "$i" "$w" "$c" "$(fmt_mib "$r")" "$o" "$w2" "$c2" "$(fmt_mib "$r2")" "$o2"
done

tl_med=$(bench_median "${tl_wall[@]}")
it_med=$(bench_median "${it_wall[@]}")
tl_cpu_med=$(bench_median "${tl_cpu[@]}")
it_cpu_med=$(bench_median "${it_cpu[@]}")
ratio=$(ratio_of "$it_med" "$tl_med")
other_max=$(bench_max "${tl_other[@]}" "${it_other[@]}")
echo
echo "median  : tracelink verify $tl_med s wall ($tl_cpu_med s CPU), in-toto-verify $it_med s wall ($it_cpu_med s CPU), $runs runs each"
echo "ratio   : in-toto-verify median / tracelink median = ${ratio}x wall (CPU time ratio $(ratio_of "$it_cpu_med" "$tl_cpu_med")x)"
echo "peak RSS: tracelink verify $(fmt_mib "$(bench_max "${tl_rss[@]}")") MiB, in-toto-verify $(fmt_mib "$(bench_max "${it_rss[@]}")") MiB (max over the timed runs)"
echo "load    : up to $other_max cores used by other processes during a timed run; $idle_waited s spent waiting for idle"
if awk -v o="$other_max" 'BEGIN { exit !(o > 0.10) }'; then
  echo "WARNING : other processes used up to $other_max cores during some runs (column 'other'): those wall"
  echo "          times are inflated; for clean figures rerun on an idle machine"
fi
echo "total   : $((SECONDS - started)) s for this script (build, venv check, setup, checks, warm-up, runs)"
