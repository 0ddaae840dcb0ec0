#!/usr/bin/env bash
# Measures what `tracelink run --attest` costs on top of a precise recording:
# the build of scripts/bench-overhead.sh's section "build" (make -j2 of the
# generated C project: 300 modules in 10 dirs + main.c, 30 headers; gen_project
# in bench-lib.sh), recorded with the release binary, from clean:
#
#   plain : tracelink run -n bench -k KEY -d META -- make -j2
#   attest: tracelink run -n bench -k KEY -d META --attest -- make -j2
#
# One untimed warm-up pair, then $BENCH_RUNS (5) rounds of one plain and one
# attest run in alternating order (plain first in odd rounds, attest first in
# even ones), each from a clean tree (make clean + sync untimed). Prints every
# run, the medians, attest/plain as the median of the per-round ratios (and the
# ratio of the medians), the same for the CPU time (user + system of tracelink
# and the build: steadier than the wall time when the host is shared), the time
# tracelink itself spends making, signing and writing the statements
# (TRACELINK_TIMINGS, median) and its share of the attest runs' wall time, and
# the sizes in bytes of the link, the trace and the three statements.
# Target: attest/plain <= 1.02.
#
# Every run is checked: exit 0, the files expected in the metadata directory
# (attest: the three statements, plain: none), and the last attest run's
# statements with tests/attest_check.py when the in-toto venv is there
# (BENCH_INTOTO_VENV, default TRACELINK_INTOTO_VENV or ./.venv-intoto). A failure
# makes the exit status 1; a missed target does not.
#
# Environment: BENCH_DIR (work dir, default a fresh dir under ${TMPDIR:-/tmp},
# removed at the end unless BENCH_KEEP=1), BENCH_RUNS (5), BENCH_SEED (1),
# BENCH_JOBS (2), BENCH_IDLE_WAIT (10: before each timed run, wait up to this many
# seconds for the rest of the machine to be idle), BENCH_IDLE_BUDGET (120: at most
# this much waiting in all), BENCH_BIN (a tracelink binary to use instead of
# building this checkout's release binary), CARGO_TARGET_DIR. Needs root,
# /dev/fuse, cargo, cc, make, python3.
set -euo pipefail
export LC_ALL=C

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$script_dir/.." && pwd)
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR disable=SC1091 # (shellcheck -x follows it)
. "$script_dir/bench-lib.sh"

bench_args "$@"

runs=${BENCH_RUNS:-5}
seed=${BENCH_SEED:-1}
jobs=${BENCH_JOBS:-2}
idle_wait=${BENCH_IDLE_WAIT:-10}
idle_budget=${BENCH_IDLE_BUDGET:-120}
for v in runs seed jobs idle_wait idle_budget; do bench_check_count "$v" "${!v}"; done
((runs >= 1)) || bench_die "BENCH_RUNS must be at least 1"
venv=${BENCH_INTOTO_VENV:-${TRACELINK_INTOTO_VENV:-$top/.venv-intoto}}

[ "$(id -u)" = 0 ] || bench_die "precise recording in this benchmark needs root"
[ -e /dev/fuse ] || bench_die "/dev/fuse is missing"
for prog in cc make python3; do
  command -v "$prog" >/dev/null || bench_die "$prog is not installed"
done

started=$SECONDS
if [ -n "${BENCH_BIN:-}" ]; then
  tracelink=$BENCH_BIN
  [ -x "$tracelink" ] || bench_die "BENCH_BIN $tracelink is not executable"
else
  tracelink=$(bench_build_tracelink "$top")
fi

if [ -n "${BENCH_DIR:-}" ]; then
  work=$BENCH_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/tracelink-bench-attest.XXXXXX")
  [ "${BENCH_KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
fi
proj=$work/proj
key=$work/key.pem
log=$work/bench.log
: >"$log"
if [ ! -f "$work/.project-seed-$seed" ]; then
  rm -rf "$proj"
  bench_note "generating the C project (seed $seed) ..."
  gen_project "$proj" "$seed"
  touch "$work/.project-seed-$seed"
fi
[ -f "$key" ] || "$tracelink" keygen "$key" >/dev/null 2>>"$log" || bench_die "tracelink keygen failed"

echo "== attest: tracelink run --attest on make -j$jobs of the generated C project (300 modules), from clean"
echo "   machine: $(bench_machine)"
echo "   tool   : $("$tracelink" --version | head -n 1) ($(bench_source_desc "$top")), root; runs: $runs alternating pairs (+1 warm-up)"
echo "   work   : $work"


failed=''
other_max=0
# run_one plain|attest TAG: cleans (untimed), records the build into a fresh
# metadata directory, checks the files written; sets r_secs, r_cpu, r_other, r_meta
# and r_attest_s (make+sign+write of the statements, from TRACELINK_TIMINGS).
run_one() {
  local kind=$1 tag=$2 extra=() out rc=0 files want
  r_meta=$work/meta-$kind-$tag
  rm -rf "$r_meta" "$r_meta.log" "$proj/build"
  mkdir -p "$r_meta"
  sync
  [ "$kind" = attest ] && extra=(--attest)
  [ "$tag" = warm ] || bench_wait_idle
  echo "--- $kind $tag" >>"$log"
  out=$(cd "$proj" && TRACELINK_TIMINGS=1 bench_time "$r_meta.log" "$tracelink" run -n bench -k "$key" \
    -d "$r_meta" "${extra[@]}" -- make "-j$jobs") || rc=$?
  cat "$r_meta.log" >>"$log"
  if ((rc != 0)); then
    echo "   FAILED: $kind run $tag exited with status $rc; last lines:"
    tail -n 10 "$r_meta.log" | sed 's/^/      /'
    failed=1
    return 1
  fi
  read -r r_secs _ r_cpu r_other <<<"$out"
  if [ "$tag" != warm ] && awk -v o="$r_other" -v m="$other_max" 'BEGIN { exit !(o > m) }'; then
    other_max=$r_other
  fi
  files=$(find "$r_meta" -mindepth 1 -maxdepth 1 -printf '%f\n' | sed 's/^bench\.[0-9a-f]*\.link/L/' | sort | tr '\n' ' ')
  want="L L.trace.json.gz "
  [ "$kind" = attest ] && want="L L.attest-link.json L.attest-provenance.json L.attest-runtime-trace.json L.trace.json.gz "
  if [ "$files" != "$want" ]; then
    echo "   FAILED: $kind run $tag wrote '$files' (L = the link), expected '$want'"
    failed=1
    return 1
  fi
  r_attest_s=$(awk '/tracelink: timing: attestations: / { s += $(NF - 1) } END { printf "%.4f", s }' "$r_meta.log")
}

ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.4f", a / b; else print "inf" }'; }

plain=() attest=() ratios=() cpu_ratios=() own=() shares=()
if run_one plain warm && w_p=$r_secs && run_one attest warm; then
  echo "   warm-up pair (untimed): plain $w_p s, attest $r_secs s"
  printf '   %5s %5s | %8s %7s %5s | %8s %7s %5s | %7s %7s | %9s %7s\n' round order "plain s" "CPU s" other \
    "attest s" "CPU s" other ratio "CPU" "attest s*" share
  for ((i = 1; i <= runs; i++)); do
    if ((i % 2)); then order=(plain attest) ord=PA; else order=(attest plain) ord=AP; fi
    for kind in "${order[@]}"; do
      run_one "$kind" "$i" || break 2
      if [ "$kind" = plain ]; then
        p_s=$r_secs p_c=$r_cpu p_o=$r_other
      else
        a_s=$r_secs a_c=$r_cpu a_o=$r_other a_own=$r_attest_s a_meta=$r_meta
      fi
    done
    plain+=("$p_s") attest+=("$a_s") own+=("$a_own")
    ratios+=("$(ratio_of "$a_s" "$p_s")")
    cpu_ratios+=("$(ratio_of "$a_c" "$p_c")")
    shares+=("$(awk -v a="$a_own" -v t="$a_s" 'BEGIN { printf "%.4f", a / t }')")
    printf '   %5s %5s | %8.3f %7.2f %5.2f | %8.3f %7.2f %5.2f | %7s %7s | %9s %6.2f%%\n' "$i" "$ord" "$p_s" "$p_c" \
      "$p_o" "$a_s" "$a_c" "$a_o" "${ratios[-1]}" "${cpu_ratios[-1]}" "${own[-1]}" \
      "$(awk -v s="${shares[-1]}" 'BEGIN { print s * 100 }')"
  done
fi

if ((${#ratios[@]} == runs)); then
  pmed=$(bench_median "${plain[@]}")
  amed=$(bench_median "${attest[@]}")
  rmed=$(bench_median "${ratios[@]}")
  ownmed=$(bench_median "${own[@]}")
  echo "   (CPU s: user + system time of tracelink and the build; CPU: attest/plain of it; attest s*: time"
  echo "    tracelink spent making, signing and writing the statements, from TRACELINK_TIMINGS; share: of that"
  echo "    run's wall time; other: cores other processes of this machine used meanwhile)"
  echo "   medians: plain $pmed s, attest $amed s"
  echo "   attest/plain: $(printf '%.3f' "$rmed") (median of the per-round ratios; ratio of the medians" \
    "$(ratio_of "$amed" "$pmed" | xargs printf '%.3f')); target <= 1.02:" \
    "$(awk -v r="$rmed" 'BEGIN { print (r <= 1.02 ? "met" : "MISSED") }')"
  echo "   CPU time attest/plain: $(bench_median "${cpu_ratios[@]}" | xargs printf '%.3f') (median of the per-round ratios)"
  echo "   statements made, signed and written in $ownmed s (median), $(bench_median "${shares[@]}" |
    awk '{ printf "%.2f%%", $1 * 100 }') of an attest run's wall time"
  echo "   sizes (bytes, last attest run):"
  for f in "$a_meta"/*; do
    printf '     %9d  %s\n' "$(stat -c %s "$f")" "$(basename "$f")"
  done
  python3 - "$a_meta" <<'PY'
import base64, glob, json, sys
for path in sorted(glob.glob(sys.argv[1] + "/*.attest-*.json")):
    env = json.load(open(path))
    st = json.loads(base64.b64decode(env["payload"]))
    pred = json.dumps(st["predicate"], separators=(",", ":"))
    extra = ""
    if "buildDefinition" in st["predicate"]:
        deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
        tools = sum(1 for d in deps if d.get("annotations", {}).get("tracelink.toolchain"))
        extra = f", resolvedDependencies {len(deps)} ({tools} toolchain)"
    if "monitorLog" in st["predicate"]:
        log = st["predicate"]["monitorLog"]
        extra = f", {len(log.get('process', []))} processes, {len(log.get('fileAccess', []))} fileAccess entries"
    print(f"     {path.rsplit('.attest-', 1)[1]}: {len(st['subject'])} subjects, predicate {len(pred)} bytes of JSON{extra}")
PY
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import in_toto_attestation, securesystemslib' 2>/dev/null; then
    for f in "$a_meta"/*.attest-*.json; do
      if ! "$venv/bin/python" "$top/tests/attest_check.py" "$f" "$key.pub" --link "${f%.attest-*}" >>"$log" 2>&1; then
        echo "   FAILED: tests/attest_check.py refused $(basename "$f") (see $log)"
        failed=1
      fi
    done
    [ -n "$failed" ] || echo "   tests/attest_check.py: the last attest run's three statements check"
  else
    echo "   (no in-toto venv at $venv: statements not checked with tests/attest_check.py)"
  fi
fi
echo "   load: up to $other_max cores used by other processes during a timed run; $idle_waited s spent waiting for idle"
if awk -v o="$other_max" 'BEGIN { exit !(o > 0.25) }'; then
  echo "   WARNING: other processes were busy during some timed runs: wall times and ratios are disturbed"
fi
echo "   total: $((SECONDS - started)) s"
if [ -n "$failed" ]; then
  echo "RESULT: FAILED (see above; log $log)"
  exit 1
fi
