#!/usr/bin/env bash
# Benchmarks tracelink's snapshot mode against in-toto 3.1.0's in-toto-run on
# the same tree, and checks on every run that both record the same artifacts:
#
#   tracelink   run -n bench --signing-key KEY -d OUT1 -m . -p . -- true
#   in-toto-run     -n bench --signing-key KEY -d OUT2 -m . -p . -- true
#
# The tree: 20,000 files of 1-8 KiB (random sizes and content from a fixed
# seed) in 200 directories, plus 20 files of 50 MiB in big/ (about 1.1 GiB).
# It is generated once and reused: it lives in $BENCH_DIR (default
# ${TMPDIR:-/tmp}/tracelink-bench-snapshot) with a marker file recording how
# it was made. The key and the link output directories sit beside the tree,
# never in it, so the tree is the same in every run.
#
# Warm page cache: one untimed warm-up run of each tool, then $BENCH_RUNS
# (default 5) interleaved pairs (tracelink, in-toto-run, tracelink, ...).
# Any difference between the two links' materials or products aborts the
# benchmark. For reference, one pass of cat, openssl dgst -sha256, sha256sum
# (and b3sum, if installed) over the same files is timed too. Each timed run
# also reports how much CPU the rest of the machine used meanwhile, since
# other load inflates wall-clock figures.
#
# Environment: BENCH_DIR, BENCH_RUNS (5), BENCH_REF_RUNS (3), BENCH_SEED (1),
# TRACELINK_INTOTO_VENV (see scripts/setup-venv.sh), CARGO_TARGET_DIR.
# Needs: cargo, python3, find, xargs, sha256sum (openssl, b3sum: optional
# references). Exit status 0 whether or not
# the speed target is met; 1 on any error or on a correctness mismatch.
set -euo pipefail
export LC_ALL=C

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$script_dir/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$script_dir/bench-lib.sh"

bench_args "$@"

runs=${BENCH_RUNS:-5}
ref_runs=${BENCH_REF_RUNS:-3}
seed=${BENCH_SEED:-1}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/tracelink-bench-snapshot}
bench_check_count BENCH_RUNS "$runs"
bench_check_count BENCH_REF_RUNS "$ref_runs"
bench_check_count BENCH_SEED "$seed"
((runs >= 1)) || bench_die "BENCH_RUNS must be at least 1"

# The tree's shape. Changing any of these regenerates the tree.
ndirs=200
nfiles=20000
min_bytes=1024
max_bytes=8192
nbig=20
big_bytes=$((50 * 1024 * 1024))
spec="tracelink-bench-snapshot tree v1: seed=$seed dirs=$ndirs files=$nfiles sizes=$min_bytes-$max_bytes big=${nbig}x$big_bytes"
step=bench
started=$SECONDS

# --- Tools -------------------------------------------------------------------
command -v cargo >/dev/null || bench_die "cargo not found"
command -v python3 >/dev/null || bench_die "python3 not found"
tracelink=$(bench_build_tracelink "$top")

bench_note "checking the in-toto venv (scripts/setup-venv.sh) ..."
venv=$("$top/scripts/setup-venv.sh" | tail -n 1)
intoto_run=$venv/bin/in-toto-run
[ -x "$intoto_run" ] || bench_die "no in-toto-run in $venv"
intoto_version=$("$venv/bin/python" -c 'import in_toto; print(in_toto.__version__)')
intoto_python=$("$venv/bin/python" -c 'import platform; print(platform.python_version())')
tracelink_version=$("$tracelink" --version)
source_desc=$(bench_source_desc "$top")

# --- The tree ----------------------------------------------------------------
mkdir -p "$work"
work=$(cd "$work" && pwd)
tree=$work/tree
marker=$work/tree.spec
if [ -d "$tree" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$spec" ]; then
  tree_state="reused (marker $marker)"
else
  if [ -e "$tree" ]; then
    # Delete only a tree this script made: one with a marker (of other settings).
    [ -f "$marker" ] || bench_die "$tree exists but has no marker $marker; remove it or choose another BENCH_DIR"
    bench_note "tree was made with other settings; regenerating"
    rm -rf "$tree"
  fi
  rm -f "$marker"
  rm -rf "$tree.partial"
  bench_note "generating the tree in $tree (seed $seed) ..."
  gen_start=$SECONDS
  bench_gen_tree "$tree.partial" "$seed" "$ndirs" "$nfiles" "$min_bytes" "$max_bytes" "$nbig" "$big_bytes"
  mv "$tree.partial" "$tree"
  echo "$spec" >"$marker"
  tree_state="generated in $((SECONDS - gen_start)) s"
fi
stats=$(bench_tree_stats "$tree")
read -r tree_files tree_bytes <<<"$stats"
want_files=$((nfiles + nbig))
[ "$tree_files" -eq "$want_files" ] ||
  bench_die "$tree has $tree_files files, expected $want_files (delete $work and run again)"

# --- Key and output directories (outside the tree) ---------------------------
key=$work/signing-key
if [ ! -f "$key" ] || [ ! -f "$key.pub" ]; then
  "$tracelink" keygen --force "$key" >/dev/null
fi
out_tl=$work/out-tracelink
out_it=$work/out-in-toto-run
logs=$work/logs
mkdir -p "$out_tl" "$out_it" "$logs"
rm -f "$logs"/*.log

# --- One run of each tool, and the check -------------------------------------
# run_tool NAME OUTDIR LOG -> prints bench_time's "SECONDS RSS_KIB CPU_SECONDS OTHER_CORES";
# leaves exactly one link in OUTDIR.
run_tool() {
  local name=$1 out=$2 log=$3 result
  rm -f "$out"/*.link
  local -a cmd
  case $name in
    tracelink) cmd=("$tracelink" run -n "$step" --signing-key "$key" -d "$out" -m . -p . -- true) ;;
    in-toto-run) cmd=("$intoto_run" -n "$step" --signing-key "$key" -d "$out" -m . -p . -- true) ;;
  esac
  if ! result=$(cd "$tree" && bench_time "$log" "${cmd[@]}"); then
    tail -n 20 "$log" >&2
    bench_die "$name failed (log: $log)"
  fi
  local links=("$out"/*.link)
  if [ "${#links[@]}" -ne 1 ] || [ ! -f "${links[0]}" ]; then
    bench_die "$name did not write exactly one link in $out (log: $log)"
  fi
  echo "$result"
}

# check_links -> prints "identical" when the two link files are byte-identical,
# "same-artifacts" when only other fields differ; exits 1 on any difference in
# signed.materials or signed.products, or if a link does not list the whole tree
# as both materials and products (the command is `true`; nothing changes).
check_links() {
  python3 - "$out_tl"/*.link "$out_it"/*.link "$want_files" <<'PY'
import json, sys
tl_path, it_path, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = {}
signed = {}
for who, path in (("tracelink", tl_path), ("in-toto-run", it_path)):
    with open(path, "rb") as f:
        raw[who] = f.read()
    signed[who] = json.loads(raw[who])["signed"]
problems = []
for part in ("materials", "products"):
    a, b = signed["tracelink"][part], signed["in-toto-run"][part]
    if a != b:
        only_a = sorted(set(a) - set(b))
        only_b = sorted(set(b) - set(a))
        differ = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        problems.append(
            f"signed.{part} differ: {len(only_a)} only in tracelink's {only_a[:3]}, "
            f"{len(only_b)} only in in-toto-run's {only_b[:3]}, "
            f"{len(differ)} with other digests {differ[:3]}")
for who, s in signed.items():
    for part in ("materials", "products"):
        if len(s[part]) != want:
            problems.append(f"{who}'s link has {len(s[part])} {part}, the tree has {want} files")
if problems:
    print("MISMATCH between the links " + tl_path + " and " + it_path + ":", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
if raw["tracelink"] == raw["in-toto-run"]:
    print("identical")
else:
    print("same-artifacts")
PY
}

fmt_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# --- Benchmark ---------------------------------------------------------------
bench_note "warm-up: one untimed run of each tool ..."
run_tool tracelink "$out_tl" "$logs/warmup-tracelink.log" >/dev/null
run_tool in-toto-run "$out_it" "$logs/warmup-in-toto-run.log" >/dev/null
check_links >/dev/null || bench_die "the warm-up links differ: not benchmarking a wrong result"

machine=$(bench_machine)
fs_type=$(df -PT "$work" | awk 'NR == 2 { print $2 }')
tree_gib=$(awk -v b="$tree_bytes" 'BEGIN { printf "%.2f", b / 1073741824 }')

echo "== tracelink snapshot benchmark =="
echo "machine : $machine; load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "work dir: $work ($fs_type); tree $tree_state"
printf 'tree    : %d files, %s bytes (%s GiB): %d files of %d-%d bytes in %d dirs + %d x %d MiB in big/, seed %d\n' \
  "$tree_files" "$tree_bytes" "$tree_gib" "$nfiles" "$min_bytes" "$max_bytes" "$ndirs" "$nbig" $((big_bytes >> 20)) "$seed"
echo "tools   : $tracelink_version ($source_desc, release build); in-toto-run $intoto_version (Python $intoto_python)"
echo "commands: tracelink run / in-toto-run -n $step --signing-key KEY -d OUTDIR -m . -p . -- true (cwd: the tree)"
echo "method  : page cache warm (1 untimed warm-up each), then $runs interleaved pairs (tracelink first)"
echo "          wall = time.perf_counter around the child; CPU = its user+sys time; RSS = its peak resident"
echo "          memory (getrusage RUSAGE_CHILDREN); other = CPU cores used by the rest of the machine meanwhile"
echo "check   : every run, signed.materials and signed.products of both links must be identical"
echo
printf '%4s | %-27s | %-27s | %s\n' "" "tracelink" "in-toto-run" ""
printf '%4s | %7s %6s %7s %5s | %7s %6s %7s %5s | %s\n' \
  run "wall s" "CPU s" "RSS MiB" other "wall s" "CPU s" "RSS MiB" other "links"
tl_wall=() tl_cpu=() tl_rss=() tl_other=() it_wall=() it_cpu=() it_rss=() it_other=()
identical=0
for ((i = 1; i <= runs; i++)); do
  res=$(run_tool tracelink "$out_tl" "$logs/run$i-tracelink.log")
  read -r w r c o <<<"$res"
  tl_wall+=("$w") tl_rss+=("$r") tl_cpu+=("$c") tl_other+=("$o")
  res=$(run_tool in-toto-run "$out_it" "$logs/run$i-in-toto-run.log")
  read -r w2 r2 c2 o2 <<<"$res"
  it_wall+=("$w2") it_rss+=("$r2") it_cpu+=("$c2") it_other+=("$o2")
  verdict=$(check_links) || bench_die "run $i: the links differ (see above): not benchmarking a wrong result"
  if [ "$verdict" = identical ]; then
    identical=$((identical + 1))
    verdict="byte-identical"
  else
    verdict="same materials+products, other bytes differ"
  fi
  printf '%4d | %7s %6s %7s %5s | %7s %6s %7s %5s | %s\n' \
    "$i" "$w" "$c" "$(fmt_mib "$r")" "$o" "$w2" "$c2" "$(fmt_mib "$r2")" "$o2" "$verdict"
done
stats=$(bench_tree_stats "$tree")
read -r tree_files_after _ <<<"$stats"
[ "$tree_files_after" -eq "$tree_files" ] || bench_die "the tree changed during the benchmark ($tree_files -> $tree_files_after files)"

ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }
tl_med=$(bench_median "${tl_wall[@]}")
it_med=$(bench_median "${it_wall[@]}")
tl_cpu_med=$(bench_median "${tl_cpu[@]}")
it_cpu_med=$(bench_median "${it_cpu[@]}")
ratio=$(ratio_of "$it_med" "$tl_med")
verdict=$(awk -v r="$ratio" 'BEGIN {
  if (r == "inf" || r >= 10) print "target met, aim met"
  else if (r >= 5) print "target met, aim not yet"
  else print "TARGET NOT MET" }')
other_max=$(bench_max "${tl_other[@]}" "${it_other[@]}")
echo
echo "median  : tracelink $tl_med s wall ($tl_cpu_med s CPU), in-toto-run $it_med s wall ($it_cpu_med s CPU), $runs runs each"
echo "ratio   : in-toto-run median / tracelink median = ${ratio}x wall   (target >= 5x, aim 10x: $verdict)"
echo "          (CPU time ratio $(ratio_of "$it_cpu_med" "$tl_cpu_med")x; in-toto-run uses one core, tracelink all $(nproc))"
echo "peak RSS: tracelink $(fmt_mib "$(bench_max "${tl_rss[@]}")") MiB, in-toto-run $(fmt_mib "$(bench_max "${it_rss[@]}")") MiB (max over the timed runs)"
echo "links   : materials+products identical in $runs/$runs runs; whole link files byte-identical in $identical/$runs"
if awk -v o="$other_max" 'BEGIN { exit !(o > 0.10) }'; then
  echo "WARNING : other processes used up to $other_max cores during some runs (column 'other'): those wall"
  echo "          times are inflated; for clean figures rerun on an idle machine"
fi

# --- References: one pass over the same bytes --------------------------------
echo
jobs=$(nproc)
echo "reference: one pass over the same $tree_files files, $jobs parallel processes, median of $ref_runs"
echo "           (find . -type f -size +1024k -print0 | xargs -0 -n 1 -P $jobs TOOL; then the same for the"
echo "           smaller files with -n 512). in-toto-run hashes everything twice (materials, products) with"
echo "           Python's hashlib (OpenSSL); tracelink once (a product whose identity is unchanged reuses the"
echo "           material's digest after a stat)"
# ref LABEL TOOL [ARG...]
ref() {
  local label=$1 log=$logs/ref-$2.log times=() res t
  shift
  ((ref_runs >= 1)) || return 0
  for ((j = 1; j <= ref_runs; j++)); do
    # shellcheck disable=SC2016 # $1, $@ are the inner bash's arguments
    res=$(cd "$tree" && bench_time "$log" bash -c '
      set -o pipefail
      n=$1; shift
      find . -type f -size +1024k -print0 | xargs -0 -n 1 -P "$n" "$@" >/dev/null &&
        find . -type f ! -size +1024k -print0 | xargs -0 -n 512 -P "$n" "$@" >/dev/null' _ "$jobs" "$@") ||
      bench_die "reference $label failed (log: $log)"
    read -r t _ <<<"$res"
    times+=("$t")
  done
  printf '  %-28s %6s s   (runs: %s)\n' "$label" "$(bench_median "${times[@]}")" "${times[*]}"
}
ref "cat >/dev/null (read only)" cat
if command -v openssl >/dev/null; then
  ref "openssl dgst -sha256" openssl dgst -sha256
else
  echo "  openssl dgst -sha256         skipped: openssl not installed"
fi
ref "sha256sum (coreutils)" sha256sum
if command -v b3sum >/dev/null; then
  ref "b3sum" b3sum
else
  echo "  b3sum                        skipped: not installed (cargo install b3sum would take too long)"
fi
if [ "$(grep -c -m1 -w sha_ni /proc/cpuinfo 2>/dev/null)" = 1 ]; then
  echo "  (CPU has SHA extensions: OpenSSL and tracelink's sha2 use them; coreutils' sha256sum does not)"
fi
echo
echo "total   : $((SECONDS - started)) s for this script (build, venv check, tree, warm-up, runs, references)"
