#!/usr/bin/env bash
# Measures what `tracelink run --store` and `tracelink rerun` cost on the C
# build of scripts/bench-overhead.sh (make -j2 of a generated project: 300
# modules in 10 dirs + main.c, 30 headers in 3 dirs with nested includes;
# 332 materials, 603 products), all in precise mode:
#
#   1. record: the build from clean, recorded WITHOUT --store against WITH
#              --store into a fresh empty store (every material's before-state
#              and every product copied in), and, in the same round, once more
#              into the store the previous run just filled (dedup: every object
#              already present). Reports the medians, the ratios with/without,
#              the store's size (du) and object count.
#   2. rerun : `tracelink rerun LINK --store S --workdir FRESH` of a build
#              recorded with --store, against the original recording (without
#              --store) of the same build. Reports the medians and the ratio
#              rerun/original, and where the rerun's time goes, from timestamps
#              it leaves: restoring (launch -> the trace's 'started'), the
#              traced build (-> the rerun trace's mtime), comparing and
#              reporting (-> report.txt's mtime); and the fixed cost of a
#              rerun: `true` (no materials, no products) recorded and rerun.
#
# Each section: one untimed warm-up round, then $BENCH_RUNS (5) interleaved
# rounds (section record: without, with fresh store, with populated store;
# section rerun: original, rerun), each from a clean tree (rm -rf build, sync:
# untimed), warm page cache. Every run is checked: exit 0; a complete precise
# trace whose sha256 is the one signed in the link; return value 0; every
# material and product of the link matches the file on disk (sha256); every
# source, header and the Makefile is a material, and the products are exactly
# the files under build/; with --store, the trace names the store and every
# material and product is in it under its digest with those bytes, and a
# dedup run adds no object. Every rerun must exit 0 and report all 603
# products identical, 0 different/missing/extra and no hidden inputs; the
# files of its work tree must match the original link's digests. A failure is
# reported, ends that section, and makes the exit status 1; there are no speed
# targets (exit status 0 whatever the ratios).
#
# The C build is deterministic (no __DATE__/__TIME__, -g0 so no paths in the
# objects, relative paths in the .d files), and the rerun mounts its work
# tree at the original root's path, so a faithful rerun reproduces every byte.
#
# Environment: BENCH_DIR (work dir: the generated project is kept there and
# reused through a marker file, the same layout as scripts/bench-overhead.sh so
# that both can share one; default a fresh dir under ${TMPDIR:-/tmp}, removed
# at the end), BENCH_KEEP (1: keep the logs, links, traces, stores and rerun
# work dirs), BENCH_RUNS (5), BENCH_SEED (1), BENCH_SECTIONS ("record rerun"),
# BENCH_IDLE_WAIT (30: before each timed run, wait up to this many seconds for
# the rest of the machine to be idle), BENCH_IDLE_BUDGET (300: at most this
# much waiting in all), CARGO_TARGET_DIR. Needs root, /dev/fuse, cargo, cc,
# make, python3 (3.10+), sha256sum, du.
set -euo pipefail
export LC_ALL=C

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_SCRIPTS=$script_dir # bench_link.py, for the link checker
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
sections=" ${BENCH_SECTIONS:-record rerun} "
keep=${BENCH_KEEP:-}
bench_check_count BENCH_RUNS "$runs"
bench_check_count BENCH_SEED "$seed"
bench_check_count BENCH_IDLE_WAIT "$idle_wait"
bench_check_count BENCH_IDLE_BUDGET "$idle_budget"
((runs >= 1)) || bench_die "BENCH_RUNS must be at least 1"
for s in $sections; do
  case $s in
    record | rerun) ;;
    *) bench_die "unknown section '$s' in BENCH_SECTIONS (record rerun)" ;;
  esac
done
want() { [[ $sections == *" $1 "* ]]; }
jobs=2
n_trivial=3 # rounds of the trivial step's record/rerun
started=$SECONDS

# --- Preconditions and tracelink ---------------------------------------------
[ "$(id -u)" -eq 0 ] || bench_die "precise mode needs root in this version: run as root"
[ -c /dev/fuse ] || bench_die "/dev/fuse is missing"
for tool in cargo cc make python3 sha256sum du; do
  command -v "$tool" >/dev/null || bench_die "$tool not found"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || bench_die "python3 >= 3.10 needed"

tracelink=$(bench_build_tracelink "$top")
tracelink_version=$("$tracelink" --version)
source_desc=$(bench_source_desc "$top")
"$tracelink" rerun --help >/dev/null 2>&1 || bench_die "this tracelink has no 'rerun' subcommand"
"$tracelink" run --help 2>/dev/null | grep -q -- '--store' || bench_die "this tracelink's 'run' has no --store"

# --- Work dir, cleanup --------------------------------------------------------
fresh_work=''
if [ -n "${BENCH_DIR:-}" ]; then
  mkdir -p "$BENCH_DIR"
  work=$(cd "$BENCH_DIR" && pwd)
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/tracelink-bench-rerun.XXXXXX")
  fresh_work=1
fi
# Per invocation: key, logs, metadata dirs, stores, rerun work dirs (outside
# the recorded tree). Not scripts/bench-overhead.sh's run/, so that a shared
# BENCH_DIR works.
run=$work/run-rerun
rm -rf "$run"
mkdir -p "$run"
cleanup() {
  if [ -n "$keep" ]; then
    bench_note "kept (BENCH_KEEP): $work"
  elif [ -n "$fresh_work" ]; then
    rm -rf "$work"
  else
    rm -rf "$run"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A copy: the benchmark keeps using the binary it started with even if the
# checkout is rebuilt meanwhile.
cp "$tracelink" "$run/tracelink"
tracelink=$run/tracelink
key=$run/key.pem
"$tracelink" keygen "$key" >"$run/keygen.log" 2>&1 || bench_die "tracelink keygen failed: $(cat "$run/keygen.log")"

# --- The generated project (reused through a marker file) ---------------------
# Same place and marker as in scripts/bench-overhead.sh.
proj=$work/tree/proj
marker=$work/.project.spec
spec="project v2 seed=$seed modules=300 dirs=10 headers=30"
if [ -d "$proj" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$spec" ]; then
  tree_note="reused ($spec)"
else
  if [ -e "$proj" ] && [ ! -f "$marker" ]; then
    bench_die "$proj exists but has no marker $marker; remove it or choose another BENCH_DIR"
  fi
  t0=$SECONDS
  rm -rf "$proj" "$proj.partial" "$marker"
  mkdir -p "$work/tree"
  bench_note "generating the C project in $proj ..."
  gen_project "$proj.partial" "$seed"
  mv "$proj.partial" "$proj"
  sync
  echo "$spec" >"$marker"
  tree_note="generated in $((SECONDS - t0)) s ($spec)"
fi
# The trivial step of section rerun: `true` in an empty root.
trivial=$run/trivial-root
mkdir -p "$trivial"

# --- Checkers -------------------------------------------------------------------
# check-link.py --meta DIR --root ROOT [--store DIR]
# Prints "MATERIALS PRODUCTS STARTED TRACE_MTIME"; problems on stderr, exit 1.
cat >"$run/check-link.py" <<'PY'
import argparse, os, sys
sys.path.insert(0, os.environ["BENCH_SCRIPTS"])
from bench_link import check_files, finish, load, sha256
ap = argparse.ArgumentParser()
ap.add_argument("--meta", required=True)
ap.add_argument("--root", required=True)
ap.add_argument("--store")
ap.add_argument("--trivial", action="store_true")
a = ap.parse_args()
link_path, trace_path, s, t, errors = load(a.meta)
mats, prods = s.get("materials", {}), s.get("products", {})
for kind, arts in (("material", mats), ("product", prods)):
    check_files(kind, arts, a.root, errors)
def files_under(rel, suffixes):
    out = set()
    for d, _, fs in os.walk(os.path.join(a.root, rel)):
        for f in fs:
            if f.endswith(suffixes):
                out.add(os.path.relpath(os.path.join(d, f), a.root))
    return out
if a.trivial:
    if mats or prods:
        errors.append(f"the trivial step has materials {sorted(mats)[:5]} or products {sorted(prods)[:5]}")
else:
    need = files_under("src", (".c",)) | files_under("include", (".h",)) | {"Makefile"}
    missing = sorted(need - set(mats))
    if missing:
        errors.append(f"{len(missing)} sources/headers are not recorded as materials, e.g. {missing[:3]}")
    built = files_under("build", ("",))
    if set(prods) != built:
        errors.append(f"products differ from the files under build/: not recorded {sorted(built - set(prods))[:3]}, "
                      f"recorded but absent {sorted(set(prods) - built)[:3]}")
    if not any(p.endswith(".o") for p in prods) or "build/prog" not in prods:
        errors.append("no objects or no build/prog among the products")
if a.store:
    store = os.path.realpath(a.store)
    if t.get("store") is None or os.path.realpath(t.get("store")) != store:
        errors.append(f"the trace names the store {t.get('store')!r}, not {store}")
    for kind, arts in (("material", mats), ("product", prods)):
        for path, digests in arts.items():
            d = digests.get("sha256", "")
            obj = os.path.join(store, "sha256", d[:2], d[2:])
            if not os.path.isfile(obj):
                errors.append(f"{kind} {path}: no object {obj} in the store")
            elif sha256(obj) != d:
                errors.append(f"{kind} {path}: the store's object {obj} does not hold those bytes")
            elif os.stat(obj).st_mode & 0o222:
                errors.append(f"{kind} {path}: the store's object {obj} is writable")
elif t.get("store") is not None:
    errors.append(f"recorded without --store, but the trace names the store {t.get('store')!r}")
finish(errors, link_path)
print(len(mats), len(prods), t.get("started") or "nan", f"{os.stat(trace_path).st_mtime:.6f}")
PY

# check-rerun.py --link ORIGINAL_LINK --workdir WD [--trivial]
# Prints "IDENTICAL STARTED TRACE_MTIME REPORT_MTIME"; problems on stderr, exit 1.
cat >"$run/check-rerun.py" <<'PY'
import argparse, glob, json, os, re, sys
sys.path.insert(0, os.environ["BENCH_SCRIPTS"])
from bench_link import read_trace, sha256, trace_path_of
ap = argparse.ArgumentParser()
ap.add_argument("--link", required=True)
ap.add_argument("--workdir", required=True)
ap.add_argument("--trivial", action="store_true")
a = ap.parse_args()
errors = []
with open(a.link) as f:
    orig = json.load(f)["signed"]
orig_trace = read_trace(trace_path_of(a.link, orig))
meta = os.path.join(a.workdir, "metadata")
tree = os.path.join(a.workdir, "tree")
links = glob.glob(os.path.join(meta, "*.link"))
if len(links) != 1:
    sys.exit(f"expected one link in {meta}, found {links}")
with open(links[0]) as f:
    rl = json.load(f)["signed"]
rt = read_trace(trace_path_of(links[0], rl))
report_path = os.path.join(meta, "report.txt")
with open(report_path) as f:
    report = f.read()
n = len(orig["products"])
want = f"REPRODUCED: {n} identical, 0 different, 0 missing, 0 extra product(s); 0 hidden input(s)"
if want not in report:
    last = [l for l in report.splitlines() if l.strip()][-1:] or ["(empty)"]
    errors.append(f"the report does not say '{want}'; it ends: {last[0]}")
if rt.get("complete") is not True:
    errors.append(f"the rerun's trace is incomplete: {rt.get('incomplete')}")
if rl.get("byproducts", {}).get("return-value") != 0:
    errors.append(f"the rerun's return-value is {rl.get('byproducts', {}).get('return-value')}")
if rl.get("products") != orig["products"]:
    errors.append("the rerun link's products differ from the original's")
if rl.get("materials") != orig["materials"]:
    errors.append("the rerun link's materials differ from the original's")
# Independent of tracelink's verdict: the work tree holds the recorded bytes.
for kind, arts in (("material", orig["materials"]), ("product", orig["products"])):
    for path, digests in arts.items():
        full = os.path.join(tree, path)
        if not os.path.isfile(full):
            errors.append(f"{kind} {path} is not in the rerun's work tree")
        elif sha256(full) != digests.get("sha256"):
            errors.append(f"{kind} {path} in the rerun's work tree differs from the recorded digest")
if rt.get("root") != orig_trace.get("root"):
    errors.append(f"the rerun ran at root {rt.get('root')!r}, not the original {orig_trace.get('root')!r}")
if errors:
    print(f"wrong rerun in {a.workdir}:", file=sys.stderr)
    for e in errors[:20]:
        print("  " + e, file=sys.stderr)
    sys.exit(1)
m = re.search(r"REPRODUCED: (\d+) identical", report)
print(m.group(1), rt.get("started") or "nan", f"{os.stat(trace_path_of(links[0], rl)).st_mtime:.6f}",
      f"{os.stat(report_path).st_mtime:.6f}")
PY

# --- Running and timing ---------------------------------------------------------
other_max=0

ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "inf" }'; }
sub_of() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

any_failure=''
sec_log='' sec_error=''
# Results of the last timed_run: wall, CPU, other cores, Unix time at its start.
r_secs='' r_cpu='' r_other='' r_launch=''

# timed_run TAG CWD CMD...: waits for idle (not for warm-up or untimed runs), runs CMD
# under bench_time, sets r_*; on a non-zero exit sets sec_error, returns 1.
timed_run() {
  local tag=$1 cwd=$2 out rc=0
  shift 2
  echo "--- $tag: $*" >>"$sec_log"
  [[ $tag == *warm* || $tag == *untimed* ]] || bench_wait_idle
  rm -f "$run/start"
  out=$(cd "$cwd" && BENCH_TIME_START_FILE=$run/start bench_time "$sec_log" "$@") || rc=$?
  if ((rc != 0)); then
    sec_error="run '$tag' exited with status $rc; last lines of $sec_log:"$'\n'"$(tail -n 15 "$sec_log")"
    return 1
  fi
  read -r r_secs _ r_cpu r_other <<<"$out"
  r_launch=$(cat "$run/start")
  if [[ $tag != *warm* && $tag != *untimed* ]] && awk -v o="$r_other" -v m="$other_max" 'BEGIN { exit !(o > m) }'; then
    other_max=$r_other
  fi
}

clean_proj() {
  rm -rf "$proj/build"
  sync
}

# record TAG STORE|"": a precise recording of make -j2 from clean into
# $run/meta-TAG (with --store STORE when given), checked. Sets r_* and
# c_mat c_prod c_started c_trace_mtime.
c_mat='' c_prod='' c_started='' c_trace_mtime=''
record() {
  local tag=$1 store=$2 meta=$run/meta-$1 checked
  local store_args=()
  [ -z "$store" ] || store_args=(--store "$store")
  clean_proj
  rm -rf "$meta"
  mkdir -p "$meta"
  timed_run "$tag" "$proj" "$tracelink" run -n build -k "$key" -d "$meta" --root "$proj" "${store_args[@]}" -- \
    make "-j$jobs" || return 1
  if ! checked=$(python3 "$run/check-link.py" --meta "$meta" --root "$proj" "${store_args[@]}" 2>"$meta.err"); then
    sec_error="run '$tag': $(cat "$meta.err")"
    return 1
  fi
  read -r c_mat c_prod c_started c_trace_mtime <<<"$checked"
}

# store_stats DIR -> "OBJECTS KIB_DU BYTES_APPARENT TMP_LEFT"
store_stats() {
  local objs kib bytes tmpl
  read -r objs bytes < <(bench_tree_stats "$1/sha256")
  kib=$(du -sk "$1" | cut -f1)
  tmpl=$(find "$1" -mindepth 1 -maxdepth 1 -name tmp -exec find {} -type f \; | wc -l)
  echo "$objs $kib $bytes $tmpl"
}

# --- Report header ---------------------------------------------------------------
machine=$(bench_machine)
fs_type=$(df -PT "$work" | awk 'NR == 2 { print $2 }')
echo "== tracelink run --store and tracelink rerun benchmark =="
echo "machine : $machine; load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tool    : $tracelink_version ($source_desc, release build), as root (passthrough expected)"
echo "work dir: $work ($fs_type; the stores and rerun work dirs are there too)"
echo "project : $proj: $tree_note"
echo "method  : warm page cache; per section 1 untimed warm-up round, then $runs interleaved rounds;"
echo "          rm -rf build + sync before every run, untimed; wall = time.perf_counter around the"
echo "          child; CPU = user+sys of it and its descendants; other = cores used by the rest of"
echo "          the machine meanwhile (0 on an idle machine)"

sum_lines=()

# --- Section record --------------------------------------------------------------
if want record; then
  sec_log=$run/record.log
  sec_error=''
  : >"$sec_log"
  echo
  echo "== record: make -j$jobs of the C project from clean, precise, without vs with --store"
  echo "   without: tracelink run -n build -k KEY -d META --root proj -- make -j$jobs"
  echo "   with   : the same + --store STORE, STORE a fresh empty directory for each run"
  echo "   dedup  : the same + --store STORE, STORE the one the 'with' run of the round just filled"
  nos=() wis=() des=() nocpu=() wicpu=() decpu=() r_with=() r_dedup=()
  st_objs='' st_kib='' st_bytes=''
  for ((i = 0; i <= runs; i++)); do
    tag=$i
    ((i > 0)) || tag=warm
    record "record-$tag-without" "" || break
    n_s=$r_secs n_cpu=$r_cpu n_o=$r_other
    store=$run/store-record-$tag
    rm -rf "$store"
    mkdir -p "$store"
    record "record-$tag-with" "$store" || break
    w_s=$r_secs w_cpu=$r_cpu w_o=$r_other
    read -r objs kib bytes tmpl <<<"$(store_stats "$store")"
    if ((objs != c_mat + c_prod)) || ((tmpl != 0)); then
      sec_error="run 'record-$tag-with': the store holds $objs objects ($tmpl files left in tmp/), not $((c_mat + c_prod)) (materials + products, all distinct)"
      break
    fi
    sync
    record "record-$tag-dedup" "$store" || break
    d_s=$r_secs d_cpu=$r_cpu d_o=$r_other
    read -r objs2 _ _ tmpl2 <<<"$(store_stats "$store")"
    if ((objs2 != objs)) || ((tmpl2 != 0)); then
      sec_error="run 'record-$tag-dedup': the store went from $objs to $objs2 objects ($tmpl2 files left in tmp/)"
      break
    fi
    if [ "$tag" = warm ]; then
      echo "   warm-up round (untimed): without $n_s s, with $w_s s, dedup $d_s s (checked: $c_mat materials," \
        "$c_prod products; store $objs objects, $kib KiB du, $bytes bytes)"
      printf '   %5s | %8s %6s %5s | %8s %6s %5s %6s | %8s %6s %5s %6s\n' round "without" "CPU s" other \
        "with s" "CPU s" other ratio "dedup s" "CPU s" other ratio
    else
      nos+=("$n_s") wis+=("$w_s") des+=("$d_s") nocpu+=("$n_cpu") wicpu+=("$w_cpu") decpu+=("$d_cpu")
      r_with+=("$(ratio_of "$w_s" "$n_s")") r_dedup+=("$(ratio_of "$d_s" "$n_s")")
      st_objs=$objs st_kib=$kib st_bytes=$bytes
      printf '   %5d | %8.3f %6.2f %5.2f | %8.3f %6.2f %5.2f %6s | %8.3f %6.2f %5.2f %6s\n' "$i" \
        "$n_s" "$n_cpu" "$n_o" "$w_s" "$w_cpu" "$w_o" "${r_with[-1]}" "$d_s" "$d_cpu" "$d_o" "${r_dedup[-1]}"
    fi
    [ -n "$keep" ] || rm -rf "$store"
  done
  if [ -n "$sec_error" ]; then
    echo "   FAILED: $sec_error" | sed '2,$s/^/      /'
    any_failure=1
    sum_lines+=("record: FAILED (see above)")
  else
    no_med=$(bench_median "${nos[@]}")
    wi_med=$(bench_median "${wis[@]}")
    de_med=$(bench_median "${des[@]}")
    ratio_w=$(ratio_of "$wi_med" "$no_med")
    ratio_d=$(ratio_of "$de_med" "$no_med")
    echo "   median : without $no_med s (CPU $(bench_median "${nocpu[@]}") s), with fresh store $wi_med s" \
      "(CPU $(bench_median "${wicpu[@]}") s), with populated store $de_med s (CPU $(bench_median "${decpu[@]}") s)"
    echo "   ratio  : with/without = ${ratio_w}x (of the medians; per round: ${r_with[*]})"
    echo "            dedup/without = ${ratio_d}x (per round: ${r_dedup[*]})"
    echo "   extra  : $(sub_of "$wi_med" "$no_med") s for a fresh store, $(sub_of "$de_med" "$no_med") s for a populated one"
    echo "   store  : $st_objs objects ($c_mat materials + $c_prod products), $st_bytes bytes of content," \
      "$st_kib KiB on disk (du -sk); a dedup run adds no object"
    sum_lines+=("record without --store      : $no_med s")
    sum_lines+=("record with a fresh store   : $wi_med s   = ${ratio_w}x without; store $st_objs objects, $st_kib KiB (du)")
    sum_lines+=("record into a populated one : $de_med s   = ${ratio_d}x without")
  fi
fi

# --- Section rerun ---------------------------------------------------------------
# rerun_one TAG LINK STORE [--trivial]: tracelink rerun into the fresh work
# dir $run/wd-TAG, checked. Sets r_* and p_restore p_build p_compare p_exit.
p_restore='' p_build='' p_compare='' p_exit=''
rerun_one() {
  local tag=$1 link=$2 store=$3 wd=$run/wd-$1 checked started tmt rmt
  shift 3
  rm -rf "$wd"
  sync
  timed_run "$tag" "$run" "$tracelink" rerun "$link" --verification-keys "$key.pub" --store "$store" --workdir "$wd" || return 1
  if ! checked=$(python3 "$run/check-rerun.py" --link "$link" --workdir "$wd" "$@" 2>"$wd.err"); then
    sec_error="rerun '$tag': $(cat "$wd.err")"
    return 1
  fi
  read -r _ started tmt rmt <<<"$checked"
  p_restore=$(sub_of "$started" "$r_launch")
  p_build=$(sub_of "$tmt" "$started")
  p_compare=$(sub_of "$rmt" "$tmt")
  p_exit=$(awk -v l="$r_launch" -v s="$r_secs" -v r="$rmt" 'BEGIN { printf "%.3f", l + s - r }')
  [ -n "$keep" ] || rm -rf "$wd"
}

if want rerun; then
  sec_log=$run/rerun.log
  sec_error=''
  : >"$sec_log"
  echo
  echo "== rerun: tracelink rerun of the build recorded with --store vs the original recording (without --store)"
  echo "   original: tracelink run -n build -k KEY -d META --root proj -- make -j$jobs   (from clean)"
  echo "   rerun   : tracelink rerun SRC/build.KEYID.link --verification-keys KEY.pub --store SRC/store --workdir FRESH"
  echo "   phases of a rerun (from the timestamps it leaves): restore = launch -> the rerun trace's"
  echo "   'started' (load and check the link, restore the materials from the store); build = -> the rerun"
  echo "   trace's mtime (mount, make, hash the products, write the trace); compare = -> report.txt's"
  echo "   mtime (write the link, compare, report); exit = the rest"
  orig=''
  src=$run/rerun-src
  rm -rf "$src"
  mkdir -p "$src/meta"
  if record untimed-source "$src/store"; then
    # record() used $run/meta-untimed-source; keep it with its store.
    mv "$run/meta-untimed-source"/* "$src/meta/"
    orig=$(find "$src/meta" -name '*.link' | head -n 1)
    read -r s_objs s_kib s_bytes _ <<<"$(store_stats "$src/store")"
    echo "   source  : recorded once (untimed run $r_secs s): $c_mat materials, $c_prod products; store $s_objs objects," \
      "$s_kib KiB (du), $s_bytes bytes"
  fi
  origs=() reruns=() ocpu=() rcpu=() rr=() ph_r=() ph_b=() ph_c=() ph_e=() o_build=()
  for ((i = 0; i <= runs; i++)); do
    [ -z "$sec_error" ] || break
    tag=$i
    ((i > 0)) || tag=warm
    record "rerun-$tag-original" "" || break
    o_s=$r_secs o_cpu=$r_cpu o_o=$r_other
    # The original's traced build: trace 'started' -> trace written.
    o_b=$(sub_of "$c_trace_mtime" "$c_started")
    rerun_one "rerun-$tag-rerun" "$orig" "$src/store" || break
    if [ "$tag" = warm ]; then
      echo "   warm-up pair (untimed): original $o_s s, rerun $r_secs s (checked: all $c_prod products identical)"
      printf '   %5s | %8s %6s %5s %7s | %8s %6s %5s | %7s %7s %7s %7s | %s\n' pair "orig s" "CPU s" other \
        "build" "rerun s" "CPU s" other restore build compare exit ratio
    else
      origs+=("$o_s") reruns+=("$r_secs") ocpu+=("$o_cpu") rcpu+=("$r_cpu") o_build+=("$o_b")
      ph_r+=("$p_restore") ph_b+=("$p_build") ph_c+=("$p_compare") ph_e+=("$p_exit")
      rr+=("$(ratio_of "$r_secs" "$o_s")")
      printf '   %5d | %8.3f %6.2f %5.2f %7.3f | %8.3f %6.2f %5.2f | %7.3f %7.3f %7.3f %7.3f | %s\n' "$i" \
        "$o_s" "$o_cpu" "$o_o" "$o_b" "$r_secs" "$r_cpu" "$r_other" "$p_restore" "$p_build" "$p_compare" "$p_exit" "${rr[-1]}"
    fi
    rm -rf "$run/meta-rerun-$tag-original"
  done
  # The fixed cost: `true`, no materials, no products.
  t_rec=() t_rer=()
  if [ -z "$sec_error" ]; then
    tsrc=$run/trivial-src
    rm -rf "$tsrc"
    mkdir -p "$tsrc/meta"
    for ((i = 0; i <= n_trivial; i++)); do
      tag=$i
      ((i > 0)) || tag=warm
      meta=$run/meta-trivial-$tag
      rm -rf "$meta"
      mkdir -p "$meta"
      timed_run "trivial-$tag-record" "$trivial" "$tracelink" run -n trivial -k "$key" -d "$meta" --root "$trivial" \
        --store "$tsrc/store" -- true || break
      ts=$r_secs
      if ! python3 "$run/check-link.py" --meta "$meta" --root "$trivial" --store "$tsrc/store" --trivial \
        >/dev/null 2>"$meta.err"; then
        sec_error="trivial run '$tag': $(cat "$meta.err")"
        break
      fi
      tlink=$(find "$meta" -name '*.link' | head -n 1)
      rerun_one "trivial-$tag-rerun" "$tlink" "$tsrc/store" || break
      if [ "$tag" != warm ]; then
        t_rec+=("$ts") t_rer+=("$r_secs")
        tp_r=$p_restore tp_b=$p_build tp_c=$p_compare
      fi
    done
  fi
  if [ -n "$sec_error" ]; then
    echo "   FAILED: $sec_error" | sed '2,$s/^/      /'
    any_failure=1
    sum_lines+=("rerun: FAILED (see above)")
  else
    o_med=$(bench_median "${origs[@]}")
    r_med=$(bench_median "${reruns[@]}")
    ratio_r=$(ratio_of "$r_med" "$o_med")
    echo "   median : original $o_med s (CPU $(bench_median "${ocpu[@]}") s; its traced build $(bench_median "${o_build[@]}") s)," \
      "rerun $r_med s (CPU $(bench_median "${rcpu[@]}") s)"
    echo "   ratio  : rerun/original = ${ratio_r}x (of the medians; per pair: ${rr[*]})"
    echo "   phases : rerun medians: restore $(bench_median "${ph_r[@]}") s, build $(bench_median "${ph_b[@]}") s," \
      "compare $(bench_median "${ph_c[@]}") s, exit $(bench_median "${ph_e[@]}") s"
    echo "   trivial: \`true\` (no materials, no products), $n_trivial rounds: record --store $(bench_median "${t_rec[@]}") s," \
      "rerun $(bench_median "${t_rer[@]}") s (last: restore $tp_r s, build $tp_b s, compare $tp_c s)"
    sum_lines+=("original recording          : $o_med s")
    sum_lines+=("rerun                       : $r_med s   = ${ratio_r}x the original")
    sum_lines+=("rerun of \`true\` (fixed cost): $(bench_median "${t_rer[@]}") s (recording it: $(bench_median "${t_rec[@]}") s)")
  fi
fi

# --- Summary -----------------------------------------------------------------------
echo
echo "== Summary"
echo "machine : $machine"
echo "tool    : $tracelink_version ($source_desc); root; $runs interleaved rounds per section (+1 warm-up)"
for l in "${sum_lines[@]}"; do
  echo "  $l"
done
echo "(medians of the wall time; ratios of the medians)"
echo "load    : up to $other_max cores used by other processes during a timed run; $idle_waited s spent waiting for idle"
if awk -v o="$other_max" 'BEGIN { exit !(o > 0.25) }'; then
  echo "WARNING : other processes were busy during some timed runs (column 'other'): those wall times and"
  echo "          ratios are disturbed; for clean figures rerun on an idle machine"
fi
echo "total   : $((SECONDS - started)) s for this script"
if [ -n "$any_failure" ]; then
  echo "RESULT  : a run FAILED (see above)"
  exit 1
fi
