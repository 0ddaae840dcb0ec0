#!/usr/bin/env bash
# Measures what precise recording (`tracelink run` without -m/-p: the command
# runs on a monitored FUSE mount of the tree, passthrough when root) costs in
# wall-clock time against the same command run natively:
#
#   1. build : make -j2 of a generated C project (300 modules in 10 dirs + main.c,
#              30 headers in 3 dirs with nested includes), from clean.
#              Target: traced/native <= 1.35x (aim 1.15x).
#   2. read  : cat of 4 files of 512 MiB (2 GiB) to /dev/null. Target <= 1.15x.
#   3. wide  : the same build with 200,000 untouched small files in 1000 dirs
#              (untouched/) beside the project inside the recorded root; the
#              ratio must be that of the build alone (untouched files cost nothing).
#   4. zstd  : make -j2 of zstd 1.5.7's lib/ with -O2 (the C sources vendored in the
#              zstd-sys crate, fetched with cargo if not cached), from clean:
#              compute-bound. Target <= 1.10x.
#   5. where the time goes: FUSE request counts by kind from every traced run's
#              trace, requests per second, extra wall time per request, the
#              recorder's own CPU time (one untimed run) and `strace -c -f -p` of
#              the recorder (one untimed run).
#   6. unprivileged: tries precise mode as $BENCH_UNPRIV_USER (nobody); it is
#              measured like 1. only if tracelink accepts it.
#
# Each section: one untimed warm-up pair, then $BENCH_RUNS (5) interleaved pairs
# (native, traced, native, ...), each from a clean tree (clean + sync untimed),
# warm page cache. Every traced run is checked: exit 0, a complete trace, the
# link's materials and products match the files on disk (sha256), the expected
# sources/objects are recorded, nothing under untouched/ is, and the build output
# is byte-identical to the native build's. A failure is reported, ends that
# section, and makes the exit status 1; missed speed targets do not.
#
# Baseline arm: with BENCH_BEFORE_BIN=/path/to/an/older/tracelink, every timed
# section (build, read, wide, zstd, unpriv) runs one untimed warm-up triple and
# $BENCH_RUNS rounds of three runs in rotating order (native, before, after;
# before, after, native; after, native, before; ...), "after" being the binary
# built from this checkout. The older binary's runs are checked exactly as the
# after binary's (same link/trace checks, same output comparison; its trace
# format must have the fields the checks read: 'complete', 'exit',
# 'fuse_requests', 'passthrough'). Each section then prints the medians,
# traced/native for each binary, and after/before as the median of the
# per-round ratios (and of the medians); 'where' profiles both binaries; the
# summary adds a before/after table. The speed targets apply to "after".
# The unprivileged section uses the older binary only if its probe succeeds.
#
# Environment: BENCH_DIR (work dir: generated trees are kept there and reused
# through marker files; default a fresh dir under ${TMPDIR:-/tmp}, removed at
# the end), BENCH_KEEP (1: keep the logs, links and traces, and a fresh work
# dir), BENCH_RUNS (5), BENCH_SEED (1), BENCH_SECTIONS (default
# "build read wide zstd where unpriv"), BENCH_UNTOUCHED (200000),
# BENCH_BIG_FILES (4), BENCH_BIG_MIB (512), BENCH_UNPRIV_USER (tracelink-test
# if it exists, else nobody), BENCH_IDLE_WAIT (30: before each timed run, wait
# up to this many seconds for the rest of the machine to be idle) and
# BENCH_IDLE_BUDGET (300: at most this much waiting in all), BENCH_BEFORE_BIN
# (unset: no baseline arm; see above), CARGO_TARGET_DIR. Needs root, /dev/fuse,
# cargo, cc, make, python3 (3.10+), sha256sum; strace optional.
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
n_untouched=${BENCH_UNTOUCHED:-200000}
big_files=${BENCH_BIG_FILES:-4}
big_mib=${BENCH_BIG_MIB:-512}
if [ -n "${BENCH_UNPRIV_USER:-}" ]; then
  unpriv_user=$BENCH_UNPRIV_USER
elif id -u tracelink-test >/dev/null 2>&1; then
  unpriv_user="tracelink-test" # made by scripts/test.sh
else
  unpriv_user=nobody
fi
idle_wait=${BENCH_IDLE_WAIT:-30}
idle_budget=${BENCH_IDLE_BUDGET:-300}
sections=" ${BENCH_SECTIONS:-build read wide zstd where unpriv} "
keep=${BENCH_KEEP:-}
before_bin=${BENCH_BEFORE_BIN:-}
bench_check_count BENCH_RUNS "$runs"
bench_check_count BENCH_SEED "$seed"
bench_check_count BENCH_UNTOUCHED "$n_untouched"
bench_check_count BENCH_BIG_FILES "$big_files"
bench_check_count BENCH_BIG_MIB "$big_mib"
bench_check_count BENCH_IDLE_WAIT "$idle_wait"
bench_check_count BENCH_IDLE_BUDGET "$idle_budget"
((runs >= 1)) || bench_die "BENCH_RUNS must be at least 1"
for s in $sections; do
  case $s in
    build | read | wide | zstd | where | unpriv) ;;
    *) bench_die "unknown section '$s' in BENCH_SECTIONS (build read wide zstd where unpriv)" ;;
  esac
done
want() { [[ $sections == *" $1 "* ]]; }
jobs=2
zstd_crate="zstd-sys"
zstd_version=2.1.3+zstd.1.5.7
started=$SECONDS

# --- Preconditions and tracelink ---------------------------------------------
[ "$(id -u)" -eq 0 ] || bench_die "precise mode needs root in this version: run as root"
[ -c /dev/fuse ] || bench_die "/dev/fuse is missing"
for tool in cargo cc make python3 sha256sum; do
  command -v "$tool" >/dev/null || bench_die "$tool not found"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || bench_die "python3 >= 3.10 needed"
before_version='' before_desc=''
if [ -n "$before_bin" ]; then
  [[ -f $before_bin && -x $before_bin ]] || bench_die "BENCH_BEFORE_BIN=$before_bin is not an executable file"
  before_version=$("$before_bin" --version) || bench_die "$before_bin --version failed"
  before_desc=$(bench_source_desc "$(dirname "$before_bin")")
fi

tracelink=$(bench_build_tracelink "$top")
tracelink_version=$("$tracelink" --version)
source_desc=$(bench_source_desc "$top")

# --- Work dir, cleanup --------------------------------------------------------
fresh_work=''
if [ -n "${BENCH_DIR:-}" ]; then
  mkdir -p "$BENCH_DIR"
  work=$(cd "$BENCH_DIR" && pwd)
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/tracelink-bench-overhead.XXXXXX")
  fresh_work=1
fi
run=$work/run # per-invocation: key, logs, metadata dirs (outside every recorded tree)
rm -rf "$run"
mkdir -p "$run"
unpriv_dir=''
bg_pids=()
cleanup() {
  local p
  for p in "${bg_pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  [ -z "$unpriv_dir" ] || rm -rf "$unpriv_dir"
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
tracelink_before=''
if [ -n "$before_bin" ]; then
  cp "$before_bin" "$run/tracelink-before"
  tracelink_before=$run/tracelink-before
fi
key=$run/key.pem
"$tracelink" keygen "$key" >"$run/keygen.log" 2>&1 || bench_die "tracelink keygen failed: $(cat "$run/keygen.log")"

# --- Generated trees (reused through marker files) ----------------------------
tree=$work/tree         # recorded root of section wide
proj=$tree/proj         # recorded root of sections build and where
untouched=$tree/untouched
bigdir=$work/big        # recorded root of section read
zstd=$work/zstd         # recorded root of section zstd

# ensure_tree NAME DIR SPEC GENERATOR [ARG...]: DIR is reused when the marker
# $work/.NAME.spec holds SPEC; otherwise (re)made by GENERATOR DIR.partial ARG...
tree_notes=()
ensure_tree() {
  local name=$1 dir=$2 spec=$3 gen=$4 marker=$work/.$1.spec t0=$SECONDS
  shift 4
  if [ -d "$dir" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$spec" ]; then
    tree_notes+=("$name: reused ($spec)")
    return 0
  fi
  if [ -e "$dir" ] && [ ! -f "$marker" ]; then
    bench_die "$dir exists but has no marker $marker; remove it or choose another BENCH_DIR"
  fi
  rm -rf "$dir" "$dir.partial" "$marker"
  bench_note "generating $name in $dir ..."
  "$gen" "$dir.partial" "$@"
  mv "$dir.partial" "$dir"
  sync
  echo "$spec" >"$marker"
  tree_notes+=("$name: generated in $((SECONDS - t0)) s ($spec)")
}

# gen_project DIR SEED (the C project of sections build/wide/where/unpriv) is in bench-lib.sh.

# gen_untouched DIR SEED COUNT: COUNT files of 0-512 bytes in 1000 dirs.
gen_untouched() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys
root, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
ndirs = 1000
per, extra = divmod(count, ndirs)
os.makedirs(root)
n = 0
for d in range(ndirs):
    dp = os.path.join(root, f"u{d // 100:01d}", f"d{d:03d}")
    os.makedirs(dp)
    for _ in range(per + (1 if d < extra else 0)):
        with open(os.path.join(dp, f"f{n:06d}.txt"), "wb") as f:
            f.write(rng.randbytes(rng.randint(0, 512)))
        n += 1
PY
}

# gen_big DIR SEED COUNT MIB: COUNT files f0, f1, ... of MIB MiB each.
gen_big() {
  python3 - "$1" "$2" "$3" "$4" <<'PY'
import os, random, sys
root, seed, count, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
os.makedirs(root)
for i in range(count):
    with open(os.path.join(root, f"f{i}"), "wb") as f:
        for _ in range(mib):
            f.write(rng.randbytes(1 << 20))
PY
}

# gen_zstd DIR CRATE_FILE: zstd's lib/ from the crate, and a Makefile.
gen_zstd() {
  local dir=$1 crate=$2 x
  x=$(mktemp -d "$run/zstd-crate.XXXXXX")
  tar -xzf "$crate" -C "$x"
  mkdir -p "$dir"
  cp -R "$x/$zstd_crate-$zstd_version/zstd/lib" "$dir/lib"
  cp "$x/$zstd_crate-$zstd_version/zstd/LICENSE" "$dir/" 2>/dev/null || true
  rm -rf "$x"
  python3 - "$dir" <<'PY'
import os, sys
root = sys.argv[1]
srcs = sorted(
    os.path.relpath(os.path.join(d, f), root)
    for d, _, fs in os.walk(os.path.join(root, "lib"))
    for f in fs
    if f.endswith(".c")
)
objs = ["build/" + s[len("lib/"):-2] + ".o" for s in srcs]
mk = [
    "# Generated by scripts/bench-overhead.sh: zstd's lib/ with -O2",
    "CC = cc",
    "CFLAGS = -O2 -g0 -fPIC -pthread",
    "CPPFLAGS = -Ilib -Ilib/common -DZSTD_MULTITHREAD -DZSTD_LEGACY_SUPPORT=5 -DZSTD_DISABLE_ASM -DXXH_NAMESPACE=ZSTD_",
    "OBJS = \\",
] + [f"  {o} \\" for o in objs[:-1]] + [f"  {objs[-1]}", ""] + [
    "all: build/libzstd.a build/libzstd.so",
    "",
    "build/libzstd.a: $(OBJS)",
    "\tar rcs $@ $(OBJS)",
    "",
    "build/libzstd.so: $(OBJS)",
    "\t$(CC) -shared -pthread -Wl,-soname,libzstd.so.1 -o $@ $(OBJS)",
    "",
    "build/%.o: lib/%.c",
    "\t@mkdir -p $(@D)",
    "\t$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@",
    "",
    "-include $(OBJS:.o=.d)",
    "",
    ".PHONY: all clean",
    "clean:",
    "\trm -rf build",
    "",
]
with open(os.path.join(root, "Makefile"), "w") as f:
    f.write("\n".join(mk))
PY
}

# find_zstd_crate: prints the path of the cached .crate, fetching it with
# `cargo fetch` (a throwaway manifest) when it is not in the cargo cache.
find_zstd_crate() {
  local cache=${CARGO_HOME:-$HOME/.cargo}/registry/cache f tmp
  f=$(find "$cache" -maxdepth 2 -name "$zstd_crate-$zstd_version.crate" 2>/dev/null | head -n 1)
  if [ -z "$f" ]; then
    bench_note "fetching the $zstd_crate $zstd_version crate (zstd's C sources) with cargo fetch ..."
    tmp=$(mktemp -d "$run/fetch.XXXXXX")
    mkdir -p "$tmp/src"
    : >"$tmp/src/lib.rs"
    cat >"$tmp/Cargo.toml" <<EOF
[package]
name = "bench-fetch-zstd"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$zstd_crate = { version = "=${zstd_version%%+*}", default-features = false }
EOF
    (cd "$tmp" && cargo fetch) >"$run/cargo-fetch.log" 2>&1 || {
      cat "$run/cargo-fetch.log" >&2
      rm -rf "$tmp"
      return 1
    }
    rm -rf "$tmp"
    f=$(find "$cache" -maxdepth 2 -name "$zstd_crate-$zstd_version.crate" 2>/dev/null | head -n 1)
  fi
  [ -n "$f" ] && echo "$f"
}

if want build || want wide || want where || want unpriv; then
  ensure_tree project "$proj" "project v2 seed=$seed modules=300 dirs=10 headers=30" gen_project "$seed"
fi
if want wide; then
  ensure_tree untouched "$untouched" "untouched v1 seed=$seed files=$n_untouched dirs=1000 sizes=0-512" \
    gen_untouched "$seed" "$n_untouched"
fi
if want read; then
  ensure_tree big "$bigdir" "big v1 seed=$seed files=$big_files mib=$big_mib" gen_big "$seed" "$big_files" "$big_mib"
fi
zstd_skip=''
if want zstd; then
  if crate=$(find_zstd_crate); then
    ensure_tree zstd "$zstd" "zstd v1 crate=$zstd_crate-$zstd_version lib -O2" gen_zstd "$crate"
  else
    zstd_skip="the $zstd_crate $zstd_version crate could not be fetched (see above)"
  fi
fi

# --- The link/trace checker -----------------------------------------------------
# check.py --meta DIR --root ROOT [--need-material GLOB]... [--need-product GLOB]...
#          [--exact-materials P...] [--no-products] [--forbid PREFIX]... --counts-out FILE
# Prints "MATERIALS PRODUCTS REQUESTS PASSTHROUGH"; problems on stderr, exit 1.
cat >"$run/check.py" <<'PY'
import argparse, glob, json, os, sys
sys.path.insert(0, os.environ["BENCH_SCRIPTS"])
from bench_link import check_files, finish, load
ap = argparse.ArgumentParser()
ap.add_argument("--meta", required=True)
ap.add_argument("--root", required=True)
ap.add_argument("--need-material", action="append", default=[])
ap.add_argument("--need-product", action="append", default=[])
ap.add_argument("--exact-materials", nargs="*")
ap.add_argument("--no-products", action="store_true")
ap.add_argument("--forbid", action="append", default=[])
ap.add_argument("--counts-out", required=True)
a = ap.parse_args()
link_path, trace_path, s, t, errors = load(a.meta)
mats, prods = s.get("materials", {}), s.get("products", {})
def forbidden(path):
    return any(path == p.rstrip("/") or path.startswith(p) for p in a.forbid)
for kind, arts in (("material", mats), ("product", prods)):
    for path in filter(forbidden, arts):
        errors.append(f"{kind} {path} is under a path the command never touches")
    check_files(kind, arts, a.root, errors, skip=forbidden)
def need(globs, arts, kind):
    for g in globs:
        found = glob.glob(g, root_dir=a.root, recursive=True)
        if not found:
            errors.append(f"no file on disk matches {g}")
        missing = sorted(p for p in found if os.path.isfile(os.path.join(a.root, p)) and p not in arts)
        if missing:
            errors.append(f"{len(missing)} files matching {g} are not recorded as {kind}s, e.g. {missing[:3]}")
need(a.need_material, mats, "material")
need(a.need_product, prods, "product")
if a.exact_materials is not None and sorted(mats) != sorted(a.exact_materials):
    errors.append(f"materials {sorted(mats)[:10]}, expected exactly {sorted(a.exact_materials)}")
if a.no_products and prods:
    errors.append(f"unexpected products {sorted(prods)[:10]}")
req = t.get("fuse_requests")
if not isinstance(req, dict):
    errors.append("the trace has no 'fuse_requests' object")
    req = {}
with open(a.counts_out, "w") as f:
    json.dump(req, f)
finish(errors, link_path)
pt = t.get("passthrough")
print(len(mats), len(prods), sum(req.values()), "true" if pt is True else "false" if pt is False else "unknown")
PY

# reqs.py LABEL TRACED_MED NATIVE_MED TRACED_CPU_MED NATIVE_CPU_MED COUNTS_JSON...:
# prints the median FUSE requests per traced run, then two report lines (requests
# by kind; rate, extra wall per request, extra CPU), each prefixed with LABEL.
cat >"$run/reqs.py" <<'PY'
import json, statistics, sys
label = sys.argv[1]
tmed, nmed, tcpu, ncpu = map(float, sys.argv[2:6])
runs = [json.load(open(p)) for p in sys.argv[6:]]
kinds = sorted({k for r in runs for k in r}, key=lambda k: -statistics.median(r.get(k, 0) for r in runs))
total = statistics.median(sum(r.values()) for r in runs)
parts = []
for k in kinds:
    v = [r.get(k, 0) for r in runs]
    m = statistics.median(v)
    parts.append(f"{k} {m:g}" + (f" ({min(v)}-{max(v)})" if min(v) != max(v) else ""))
print(f"{total:g}")
print(f"   {label}requests by kind (median per traced run, range if it varied): " + (", ".join(parts) or "none"))
rate = total / tmed if tmed > 0 else 0
per = f"{(tmed - nmed) / total * 1e6:.1f} us" if total >= 100 else "n/a (too few requests)"
print(f"   {label}requests/s: {rate:,.0f} over the traced wall time; extra wall per request: {per}; "
      f"extra CPU (traced - native: recorder, hashing, kernel FUSE work): {tcpu - ncpu:+.2f} s")
PY

# --- One section: warm-up pair + interleaved pairs --------------------------------
# Settings (globals) of the current section:
sec_key='' sec_title='' sec_root='' sec_cwd='' sec_clean='' sec_verify='' sec_target='' sec_aim=''
sec_cmd=() sec_user=()
sec_log='' sec_error=''
# Results of the last run_one:
r_secs='' r_cpu='' r_other='' r_req='' r_pt='' r_mat='' r_prod=''

other_max=0

ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "inf" }'; }

# run_cmd native|traced|before META: prints bench_time's "SECONDS RSS CPU OTHER"
# (traced: this checkout's tracelink; before: the one of BENCH_BEFORE_BIN).
run_cmd() {
  local bin=$sec_tracelink
  if [ "$1" = native ]; then
    (cd "$sec_cwd" && bench_time "$sec_log" "${sec_user[@]}" "${sec_cmd[@]}")
  else
    if [ "$1" = before ]; then bin=$sec_before; fi
    (cd "$sec_cwd" && bench_time "$sec_log" "${sec_user[@]}" "$bin" run -n bench -k "$sec_key_file" \
      -d "$2" --root "$sec_root" -- "${sec_cmd[@]}")
  fi
}

# meta_dir traced|before TAG: the metadata directory of that run.
meta_dir() {
  if [ "$1" = before ]; then
    echo "$sec_meta_base/meta-$sec_key-before-$2"
  else
    echo "$sec_meta_base/meta-$sec_key-$2"
  fi
}

# run_one native|traced|before TAG: clean (untimed), run, verify (a before run
# exactly as a traced one). Sets r_*; on a failure sets sec_error and returns 1.
run_one() {
  local kind=$1 tag=$2 meta="" out rc=0 checked
  "$sec_clean"
  sync
  if [ "$kind" != native ]; then
    meta=$(meta_dir "$kind" "$tag")
    rm -rf "$meta"
    mkdir -p "$meta"
    [ ${#sec_user[@]} -eq 0 ] || chown "$unpriv_user" "$meta"
  fi
  echo "--- $kind $tag: ${sec_cmd[*]}" >>"$sec_log"
  [ "$tag" = warm ] || bench_wait_idle
  out=$(run_cmd "$kind" "$meta") || rc=$?
  if ((rc != 0)); then
    sec_error="$kind run '$tag' exited with status $rc; last lines of $sec_log:"$'\n'"$(tail -n 15 "$sec_log")"
    return 1
  fi
  read -r r_secs _ r_cpu r_other <<<"$out"
  if [ "$tag" != warm ] && awk -v o="$r_other" -v m="$other_max" 'BEGIN { exit !(o > m) }'; then
    other_max=$r_other
  fi
  r_req=- r_pt=- r_mat=- r_prod=-
  if ! "$sec_verify" "$kind"; then
    return 1
  fi
  if [ "$kind" != native ]; then
    if ! checked=$(python3 "$run/check.py" --meta "$meta" --root "$sec_root" --counts-out "$meta.counts.json" \
      "${sec_check_args[@]}" 2>"$meta.check.err"); then
      sec_error="$kind run '$tag': $(cat "$meta.check.err")"
      return 1
    fi
    read -r r_mat r_prod r_req r_pt <<<"$checked"
  fi
}

# Section results, for the summary.
sum_name=() sum_native=() sum_traced=() sum_ratio=() sum_target=() sum_result=() sum_reqs=()
any_failure=''

# verdict_of RATIO: the verdict of RATIO against the current section's target/aim.
verdict_of() {
  awk -v r="$1" -v t="$sec_target" -v a="$sec_aim" 'BEGIN {
    if (r > t) print "TARGET MISSED"; else if (a != "" && r > a) print "target met, aim not yet"; else print "target met" }'
}

# Before/after results (BENCH_BEFORE_BIN), for the summary: medians (s), ratios of
# the medians, and medians of the per-round ratios (before/native, after/native,
# after/before), median requests per traced run.
ba_name=() ba_native=() ba_before=() ba_after=() ba_bn=() ba_an=() ba_ab=() ba_bn_r=() ba_an_r=() ba_ab_r=()
ba_reqb=() ba_reqa=()

# run_section_triples: run_section with the baseline arm: one untimed warm-up
# triple (native, before, after), then $runs rounds of the three in rotating order
# (round i starts (i-1) mod 3 places further in native, before, after); prints every
# run, the medians, traced/native for each binary, after/before (the median of the
# per-round ratios, and the ratio of the medians) and the FUSE requests of both.
run_section_triples() {
  local i j k order kinds=(native before traced) letters=(N B A)
  local nat=() bef=() aft=() ncpu=() bcpu=() acpu=() bcounts=() acounts=() bpts=() apts=()
  local r_bn=() r_an=() r_ab=() line_n line_b line_a
  local nmed bmed amed ncpu_med bcpu_med acpu_med bn an ab bn_r an_r ab_r verdict bverdict reqs_b reqs_a
  sec_log=$run/$sec_key.log
  sec_error=
  : >"$sec_log"
  echo
  echo "== $sec_title"
  echo "   command: ${sec_cmd[*]}   (cwd ${sec_cwd#"$work"/}, recorded root ${sec_root#"$work"/}, work dir $work)"
  echo "   traced : ${sec_user[*]:+${sec_user[*]} }tracelink run -n bench -k KEY -d METADIR --root ROOT -- ${sec_cmd[*]}"
  echo "            with 'before' = BENCH_BEFORE_BIN ($before_version, $before_desc)"
  echo "            and 'after' = this checkout's ($tracelink_version, $source_desc)"
  local w_n='' w_b='' w_bm='' w_bp=''
  if run_one native warm && w_n=$r_secs && run_one before warm && w_b=$r_secs w_bm=$r_mat w_bp=$r_prod &&
    run_one traced warm; then
    echo "   warm-up triple (untimed): native $w_n s, before $w_b s (checked: $w_bm materials, $w_bp products)," \
      "after $r_secs s (checked: $r_mat materials, $r_prod products)"
    printf '   %5s %3s | %8s %7s %5s | %8s %7s %5s %8s | %8s %7s %5s %8s | %7s %7s %7s\n' \
      round ord "native s" "CPU s" other "before s" "CPU s" other requests "after s" "CPU s" other requests \
      bef/nat aft/nat aft/bef
    for ((i = 1; i <= runs; i++)); do
      order=''
      for ((j = 0; j < 3; j++)); do
        k=$(((i - 1 + j) % 3))
        order+=${letters[$k]}
        run_one "${kinds[$k]}" "$i" || break 2
        case ${kinds[$k]} in
          native)
            nat+=("$r_secs") ncpu+=("$r_cpu")
            line_n=$(printf '%8.3f %7.2f %5.2f' "$r_secs" "$r_cpu" "$r_other")
            ;;
          before)
            bef+=("$r_secs") bcpu+=("$r_cpu") bpts+=("$r_pt")
            bcounts+=("$(meta_dir before "$i").counts.json")
            line_b=$(printf '%8.3f %7.2f %5.2f %8s' "$r_secs" "$r_cpu" "$r_other" "$r_req")
            ;;
          traced)
            aft+=("$r_secs") acpu+=("$r_cpu") apts+=("$r_pt")
            acounts+=("$(meta_dir traced "$i").counts.json")
            line_a=$(printf '%8.3f %7.2f %5.2f %8s' "$r_secs" "$r_cpu" "$r_other" "$r_req")
            ;;
        esac
      done
      r_bn+=("$(ratio_of "${bef[-1]}" "${nat[-1]}")")
      r_an+=("$(ratio_of "${aft[-1]}" "${nat[-1]}")")
      r_ab+=("$(ratio_of "${aft[-1]}" "${bef[-1]}")")
      printf '   %5d %3s | %s | %s | %s | %7s %7s %7s\n' "$i" "$order" "$line_n" "$line_b" "$line_a" \
        "${r_bn[-1]}" "${r_an[-1]}" "${r_ab[-1]}"
    done
  fi
  if [ -n "$sec_error" ]; then
    echo "   FAILED: $sec_error" | sed '2,$s/^/      /'
    any_failure=1
    sum_name+=("$sec_short") sum_native+=(-) sum_traced+=(-) sum_ratio+=(-) sum_target+=("<= ${sec_target}x")
    sum_result+=("FAILED (see above)") sum_reqs+=(-)
    ba_name+=("$sec_short") ba_native+=(-) ba_before+=(-) ba_after+=(-) ba_bn+=(-) ba_an+=(-) ba_ab+=(-)
    ba_bn_r+=(-) ba_an_r+=(-) ba_ab_r+=(FAILED) ba_reqb+=(-) ba_reqa+=(-)
    return 0
  fi
  nmed=$(bench_median "${nat[@]}") bmed=$(bench_median "${bef[@]}") amed=$(bench_median "${aft[@]}")
  ncpu_med=$(bench_median "${ncpu[@]}") bcpu_med=$(bench_median "${bcpu[@]}") acpu_med=$(bench_median "${acpu[@]}")
  bn=$(ratio_of "$bmed" "$nmed") an=$(ratio_of "$amed" "$nmed") ab=$(ratio_of "$amed" "$bmed")
  bn_r=$(bench_median "${r_bn[@]}") an_r=$(bench_median "${r_an[@]}") ab_r=$(bench_median "${r_ab[@]}")
  echo "   median : native $nmed s (CPU $ncpu_med s), before $bmed s (CPU $bcpu_med s)," \
    "after $amed s (CPU $acpu_med s), $runs rounds"
  echo "   before : traced/native = ${bn}x of the medians, ${bn_r}x median of the per-round ratios (${r_bn[*]})"
  echo "   after  : traced/native = ${an}x of the medians, ${an_r}x median of the per-round ratios (${r_an[*]})"
  echo "   after/before = ${ab_r}x median of the per-round ratios (${r_ab[*]}), ${ab}x of the medians;" \
    "CPU $(awk -v a="$acpu_med" -v b="$bcpu_med" 'BEGIN { printf "%+.2f", a - b }') s"
  verdict=$(verdict_of "$an")
  bverdict=$(verdict_of "$bn")
  echo "   target : <= ${sec_target}x${sec_aim:+ (aim ${sec_aim}x)} (after, ratio of the medians): $verdict;" \
    "before: $bverdict"
  reqs_b=$(python3 "$run/reqs.py" "before: " "$bmed" "$nmed" "$bcpu_med" "$ncpu_med" "${bcounts[@]}")
  reqs_a=$(python3 "$run/reqs.py" "after : " "$amed" "$nmed" "$acpu_med" "$ncpu_med" "${acounts[@]}")
  tail -n +2 <<<"$reqs_b"
  tail -n +2 <<<"$reqs_a"
  echo "   passthrough (from the traces): before $(printf '%s\n' "${bpts[@]}" | sort -u | paste -sd/ -)," \
    "after $(printf '%s\n' "${apts[@]}" | sort -u | paste -sd/ -)"
  sum_reqs+=("$(head -n 1 <<<"$reqs_a")")
  sum_name+=("$sec_short") sum_native+=("$nmed") sum_traced+=("$amed") sum_ratio+=("$an")
  sum_target+=("<= ${sec_target}x${sec_aim:+ (aim ${sec_aim}x)}") sum_result+=("$verdict")
  ba_name+=("$sec_short") ba_native+=("$nmed") ba_before+=("$bmed") ba_after+=("$amed")
  ba_bn+=("$bn") ba_an+=("$an") ba_ab+=("$ab") ba_bn_r+=("$bn_r") ba_an_r+=("$an_r") ba_ab_r+=("$ab_r")
  ba_reqb+=("$(head -n 1 <<<"$reqs_b")") ba_reqa+=("$(head -n 1 <<<"$reqs_a")")
  if [ "$sec_key" = build ]; then build_ratio=$an build_pairs=("${r_an[@]}") build_reqs=${sum_reqs[-1]}; fi
  if [ "$sec_key" = wide ]; then wide_ratio=$an; fi
}

# run_section: runs the current section's warm-up pair and $runs timed pairs,
# prints every run, the medians, the ratio and the FUSE requests (with a
# baseline binary for the section, $sec_before: run_section_triples instead).
run_section() {
  if [ -n "$sec_before" ]; then
    run_section_triples
    return 0
  fi
  local i tag nat=() trc=() ncpu=() tcpu=() counts=() pr=() pts=() nmed tmed ratio verdict
  sec_log=$run/$sec_key.log
  sec_error=
  : >"$sec_log"
  echo
  echo "== $sec_title"
  echo "   command: ${sec_cmd[*]}   (cwd ${sec_cwd#"$work"/}, recorded root ${sec_root#"$work"/}, work dir $work)"
  echo "   traced : ${sec_user[*]:+${sec_user[*]} }tracelink run -n bench -k KEY -d METADIR --root ROOT -- ${sec_cmd[*]}"
  local warm_native=''
  if run_one native warm && warm_native=$r_secs && run_one traced warm; then
    echo "   warm-up pair (untimed): native $warm_native s, traced $r_secs s (checked: $r_mat materials, $r_prod products)"
    printf '   %4s | %8s %7s %5s | %8s %7s %5s %8s %5s | %s\n' \
      pair "native s" "CPU s" other "traced s" "CPU s" other requests pass ratio
    for ((i = 1; i <= runs; i++)); do
      run_one native "$i" || break
      nat+=("$r_secs") ncpu+=("$r_cpu")
      local n_line
      n_line=$(printf '%8.3f %7.2f %5.2f' "$r_secs" "$r_cpu" "$r_other")
      run_one traced "$i" || break
      trc+=("$r_secs") tcpu+=("$r_cpu") counts+=("$sec_meta_base/meta-$sec_key-$i.counts.json") pts+=("$r_pt")
      pr+=("$(ratio_of "$r_secs" "${nat[-1]}")")
      printf '   %4d | %s | %8.3f %7.2f %5.2f %8s %5s | %s\n' \
        "$i" "$n_line" "$r_secs" "$r_cpu" "$r_other" "$r_req" "$r_pt" "${pr[-1]}"
    done
  fi
  if [ -n "$sec_error" ]; then
    echo "   FAILED: $sec_error" | sed '2,$s/^/      /'
    any_failure=1
    sum_name+=("$sec_short") sum_native+=(-) sum_traced+=(-) sum_ratio+=(-) sum_target+=("<= ${sec_target}x")
    sum_result+=("FAILED (see above)") sum_reqs+=(-)
    return 0
  fi
  nmed=$(bench_median "${nat[@]}")
  tmed=$(bench_median "${trc[@]}")
  ratio=$(ratio_of "$tmed" "$nmed")
  local ncpu_med tcpu_med
  ncpu_med=$(bench_median "${ncpu[@]}")
  tcpu_med=$(bench_median "${tcpu[@]}")
  echo "   median : native $nmed s (CPU $ncpu_med s), traced $tmed s (CPU $tcpu_med s), $runs pairs"
  echo "   ratio  : traced/native = ${ratio}x (of the medians; per pair: ${pr[*]})"
  verdict=$(awk -v r="$ratio" -v t="$sec_target" -v a="$sec_aim" 'BEGIN {
    if (r > t) print "TARGET MISSED"; else if (a != "" && r > a) print "target met, aim not yet"; else print "target met" }')
  echo "   target : <= ${sec_target}x${sec_aim:+ (aim ${sec_aim}x)}: $verdict"
  # FUSE requests, from the traces of the timed traced runs.
  local reqs
  reqs=$(python3 "$run/reqs.py" "" "$tmed" "$nmed" "$tcpu_med" "$ncpu_med" "${counts[@]}")
  sum_reqs+=("$(head -n 1 <<<"$reqs")")
  tail -n +2 <<<"$reqs"
  local pt_all
  pt_all=$(printf '%s\n' "${pts[@]}" | sort -u | paste -sd/ -)
  echo "   passthrough (from the traces): $pt_all"
  sum_name+=("$sec_short") sum_native+=("$nmed") sum_traced+=("$tmed") sum_ratio+=("$ratio")
  sum_target+=("<= ${sec_target}x${sec_aim:+ (aim ${sec_aim}x)}") sum_result+=("$verdict")
  if [ "$sec_key" = build ]; then build_ratio=$ratio build_pairs=("${pr[@]}") build_reqs=${sum_reqs[-1]}; fi
  if [ "$sec_key" = wide ]; then wide_ratio=$ratio; fi
}
build_ratio='' wide_ratio='' build_pairs=() build_reqs=''

# --- Verification of the outputs, per section ------------------------------------
clean_proj() { rm -rf "$proj/build"; }
clean_zstd() { rm -rf "$zstd/build"; }
clean_none() { :; }

# The native build's output is the reference: every later native and traced
# build must give byte-identical outputs (and the same program output).
ref_prog_sha='' ref_prog_out='' ref_zstd_sha=''
verify_build() {
  local kind=$1 out sha
  if [ ! -x "$proj/build/prog" ]; then
    sec_error="$kind run: no build/prog after the build (log $sec_log)"
    return 1
  fi
  out=$("$proj/build/prog") || {
    sec_error="$kind run: build/prog failed"
    return 1
  }
  sha=$(cd "$proj/build" && find . -name '*.o' -o -name prog | sort | xargs sha256sum | sha256sum)
  if [ -z "$ref_prog_sha" ]; then
    [ "$kind" = native ] || bench_die "internal: the first build must be native"
    ref_prog_sha=$sha ref_prog_out=$out
  elif [ "$sha" != "$ref_prog_sha" ] || [ "$out" != "$ref_prog_out" ]; then
    sec_error="$kind run: the objects or program differ from the first native build's (output $out vs $ref_prog_out)"
    return 1
  fi
}
verify_zstd() {
  local kind=$1 sha
  if [ ! -f "$zstd/build/libzstd.a" ] || [ ! -f "$zstd/build/libzstd.so" ]; then
    sec_error="$kind run: build/libzstd.a or build/libzstd.so missing (log $sec_log)"
    return 1
  fi
  sha=$(cd "$zstd/build" && find . -name '*.o' -o -name 'libzstd.*' | sort | xargs sha256sum | sha256sum)
  if [ -z "$ref_zstd_sha" ]; then
    ref_zstd_sha=$sha
  elif [ "$sha" != "$ref_zstd_sha" ]; then
    sec_error="$kind run: the objects or libraries differ from the first native build's"
    return 1
  fi
}
verify_none() { :; }

sec_key_file=$key
sec_meta_base=$run
sec_tracelink=$tracelink
sec_before=$tracelink_before
sec_check_args=()

# --- Report header ---------------------------------------------------------------
machine=$(bench_machine)
fs_type=$(df -PT "$work" | awk 'NR == 2 { print $2 }')
echo "== tracelink precise-mode overhead benchmark =="
echo "machine : $machine; load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tool    : $tracelink_version ($source_desc, release build), as root (passthrough expected)"
if [ -n "$tracelink_before" ]; then
  echo "before  : $before_version ($before_desc, BENCH_BEFORE_BIN=$before_bin): the baseline arm"
fi
echo "work dir: $work ($fs_type)"
for n in "${tree_notes[@]}"; do
  echo "tree    : $n"
done
if [ -n "$tracelink_before" ]; then
  echo "method  : warm page cache; per section 1 untimed warm-up triple, then $runs rounds of native, before"
  echo "          and after in rotating order (NBA, BAN, ANB, ...); make clean/rm -rf build + sync before"
  echo "          every run, untimed; wall ="
else
  echo "method  : warm page cache; per section 1 untimed warm-up pair, then $runs interleaved pairs"
  echo "          (native first); make clean/rm -rf build + sync before every run, untimed; wall ="
fi
echo "          time.perf_counter around the child; CPU = user+sys of it and its descendants;"
echo "          other = cores used by the rest of the machine meanwhile (0 on an idle machine)"

# --- Sections --------------------------------------------------------------------
if want build; then
  sec_key=build sec_short="build 301 C files, make -j$jobs"
  sec_title="build: make -j$jobs of the generated C project (300 modules + main.c, 30 headers), from clean"
  sec_root=$proj sec_cwd=$proj sec_clean=clean_proj sec_verify=verify_build sec_target=1.35 sec_aim=1.15
  sec_cmd=(make "-j$jobs") sec_user=()
  sec_check_args=(--need-material 'src/**/*.c' --need-material Makefile --need-product 'build/**/*.o'
    --need-product build/prog)
  run_section
fi

if want wide; then
  sec_key=wide sec_short="same + $n_untouched untouched files"
  sec_title="wide: the same build, recorded root = tree/ holding proj/ and untouched/ ($n_untouched files, 1000 dirs)"
  sec_root=$tree sec_cwd=$proj sec_clean=clean_proj sec_verify=verify_build sec_target=1.35 sec_aim=1.15
  sec_cmd=(make "-j$jobs") sec_user=()
  sec_check_args=(--need-material 'proj/src/**/*.c' --need-material proj/Makefile
    --need-product 'proj/build/**/*.o' --need-product proj/build/prog --forbid untouched/)
  run_section
  if [ -n "$wide_ratio" ] && [ -n "$build_ratio" ]; then
    echo "   compare: ratio with the untouched files ${wide_ratio}x vs ${build_ratio}x without (section build):" \
      "difference $(awk -v a="$wide_ratio" -v b="$build_ratio" 'BEGIN { printf "%+.3f", a - b }');" \
      "per-pair ratios in section build spread $(printf '%s\n' "${build_pairs[@]}" | sort -g | head -n 1)-$(bench_max "${build_pairs[@]}")"
    echo "            FUSE requests per traced run (median): ${sum_reqs[-1]} with vs $build_reqs without"
  fi
fi

if want read; then
  sec_key=read sec_short="read $big_files x $big_mib MiB (cat)"
  sec_title="read: sh -c 'cat f* > /dev/null' over $big_files files of $big_mib MiB"
  sec_root=$bigdir sec_cwd=$bigdir sec_clean=clean_none sec_verify=verify_none sec_target=1.15 sec_aim=
  sec_cmd=(sh -c 'cat f* > /dev/null') sec_user=()
  mapfile -t big_names < <(cd "$bigdir" && ls)
  sec_check_args=(--exact-materials "${big_names[@]}" --no-products)
  run_section
  # The recorder hashes every material it sees read (sha256): the floor for that
  # on this machine, with OpenSSL (SHA extensions where the CPU has them).
  if command -v openssl >/dev/null; then
    h1=() h2=()
    for ((i = 1; i <= 3; i++)); do
      t=$(cd "$bigdir" && bench_time "$run/read-ref.log" openssl dgst -sha256 "${big_names[@]}")
      h1+=("${t%% *}")
      t=$(cd "$bigdir" && bench_time "$run/read-ref.log" sh -c "ls | xargs -P $(nproc) -n 1 openssl dgst -sha256")
      h2+=("${t%% *}")
    done
    echo "   hashing floor (the recorder sha256-hashes every material it sees read): openssl dgst -sha256 over the"
    echo "   same files, median of 3: $(bench_median "${h1[@]}") s on one core, $(bench_median "${h2[@]}") s with $(nproc) files in parallel"
  fi
fi

if want zstd; then
  if [ -n "$zstd_skip" ]; then
    echo
    echo "== zstd: SKIPPED: $zstd_skip"
    sum_name+=("zstd lib -O2") sum_native+=(-) sum_traced+=(-) sum_ratio+=(-) sum_target+=("<= 1.10x") sum_result+=("skipped")
    sum_reqs+=(-)
  else
    nsrc=$(find "$zstd/lib" -name '*.c' | wc -l)
    sec_key=zstd sec_short="zstd 1.5.7 lib -O2, make -j$jobs"
    sec_title="zstd: make -j$jobs of zstd 1.5.7's lib/ ($nsrc .c files, -O2 -fPIC, libzstd.a + libzstd.so), from clean"
    sec_root=$zstd sec_cwd=$zstd sec_clean=clean_zstd sec_verify=verify_zstd sec_target=1.10 sec_aim=
    sec_cmd=(make "-j$jobs") sec_user=()
    sec_check_args=(--need-material 'lib/**/*.c' --need-material Makefile --need-product 'build/**/*.o'
      --need-product build/libzstd.a --need-product build/libzstd.so)
    run_section
  fi
fi

# --- Where the time goes: the recorder's own CPU, and strace -c of it -------------
# tl_bg LOG META BIN: starts a traced build of the project with the tracelink BIN in
# the background (after a 1 s pause inside, so that a tracer can attach first);
# sets tl_pid.
tl_pid=''
tl_bg() {
  (cd "$proj" && exec "$3" run -n bench -k "$key" -d "$2" --root "$proj" -- \
    sh -c "sleep 1; exec make -j$jobs") >>"$1" 2>&1 &
  tl_pid=$!
  bg_pids+=("$tl_pid")
}
# proc_cpu PID: "USER_S SYS_S" of the process itself (all its threads, no children).
proc_cpu() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f %.2f\n", $12 / t, $13 / t }' <<<"$stat"
}
# where_profile BIN LABEL SUFFIX: the recorder BIN's own CPU during one untimed
# traced build of the project, its requests, and strace -c of it during another;
# every line prefixed with LABEL, files named with SUFFIX. Sets where_counts to
# the first run's request counts (JSON file), or empty.
where_counts=''
where_profile() {
  local tl_bin=$1 wl=$2 wsuf=$3 log meta t0 t1 last c rc u s st_pid replies ioctls
  where_counts=''
  log=$run/where.log
  meta=$run/meta-where-cpu$wsuf
  mkdir -p "$meta"
  clean_proj
  sync
  t0=$(date +%s.%N)
  tl_bg "$log" "$meta" "$tl_bin"
  last="0 0"
  # Until it exits (or is a zombie waiting to be reaped: kill -0 still succeeds then).
  while [ -r "/proc/$tl_pid/stat" ] && ! grep -q ') Z ' "/proc/$tl_pid/stat" 2>/dev/null; do
    if c=$(proc_cpu "$tl_pid"); then last=$c; fi
    sleep 0.1
  done
  rc=0
  wait "$tl_pid" || rc=$?
  bg_pids=()
  t1=$(date +%s.%N)
  if ((rc != 0)); then
    echo "   ${wl}FAILED: the traced build exited with status $rc; last lines of $log:"
    tail -n 15 "$log" | sed 's/^/      /'
    any_failure=1
  else
    read -r u s <<<"$last"
    echo "   ${wl}tracelink's own CPU (its threads, not the build; sampled every 0.1 s, so slightly low):" \
      "user $u s, sys $s s, in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a - 1 }') s of build"
    if python3 "$run/check.py" --meta "$meta" --root "$proj" --counts-out "$meta.counts.json" >/dev/null 2>"$meta.err"; then
      where_counts=$meta.counts.json
      echo "   ${wl}its requests: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])))' "$meta.counts.json")"
    else
      echo "   ${wl}FAILED check: $(cat "$meta.err")"
      any_failure=1
    fi
  fi
  if command -v strace >/dev/null; then
    meta=$run/meta-where-strace$wsuf
    mkdir -p "$meta"
    clean_proj
    sync
    tl_bg "$log" "$meta" "$tl_bin"
    sleep 0.5
    strace -c -S calls -f -o "$run/strace$wsuf.txt" -p "$tl_pid" >>"$log" 2>&1 &
    st_pid=$!
    bg_pids+=("$st_pid")
    rc=0
    wait "$tl_pid" || rc=$?
    wait "$st_pid" || true
    bg_pids=()
    if ((rc != 0)); then
      echo "   ${wl}FAILED: the traced build under strace exited with status $rc; last lines of $log:"
      grep -v '^cc ' "$log" | tail -n 6 | sed 's/^/      /'
      any_failure=1
    elif ! python3 "$run/check.py" --meta "$meta" --root "$proj" --counts-out "$meta.counts.json" >/dev/null 2>"$meta.err"; then
      echo "   ${wl}FAILED check of the strace run: $(cat "$meta.err")"
      any_failure=1
    else
      echo "   ${wl}strace -c -f -p <tracelink> (attached 0.5 s after start, before the build began; an"
      echo "   ${wl}untimed run: strace slows the daemon). Syscalls of the recorder's threads, by count, top 15:"
      if [ "$(wc -l <"$run/strace$wsuf.txt")" -le 19 ]; then
        sed 's/^/     /' "$run/strace$wsuf.txt"
      else
        head -n 17 "$run/strace$wsuf.txt" | sed 's/^/     /'
        echo "     ..."
        tail -n 2 "$run/strace$wsuf.txt" | sed 's/^/     /'
      fi
      replies=$(awk '$NF == "writev" { print $4 }' "$run/strace$wsuf.txt")
      ioctls=$(awk '$NF == "ioctl" { print $4 }' "$run/strace$wsuf.txt")
      echo "   ${wl}FUSE replies written (writev on /dev/fuse): ${replies:-0}, i.e. about that many requests served"
      echo "   ${wl}(the trace's 'fuse_requests' counts every request served by kind: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d.values()))' "$meta.counts.json" 2>/dev/null || echo '?'));"
      echo "   ${wl}ioctl ${ioctls:-0} (passthrough backing-file open/close); the rest is hashing and bookkeeping"
    fi
  else
    echo "   ${wl}strace not installed: no syscall profile (apt-get install strace)"
  fi
}
if want where; then
  echo
  echo "== where: the recorder itself during one extra untimed traced build (section build's project)"
  if [ -n "$tracelink_before" ]; then
    where_profile "$tracelink_before" "before: " -before
    where_before_counts=$where_counts
    where_profile "$tracelink" "after : " ""
    if [ -n "$where_before_counts" ] && [ -n "$where_counts" ]; then
      echo "   requests by kind, before -> after (change):"
      python3 - "$where_before_counts" "$where_counts" <<'PY'
import json, sys
b, a = (json.load(open(p)) for p in sys.argv[1:3])
kinds = sorted(set(b) | set(a), key=lambda k: -max(b.get(k, 0), a.get(k, 0)))
for k in kinds + ["total"]:
    x = sum(b.values()) if k == "total" else b.get(k, 0)
    y = sum(a.values()) if k == "total" else a.get(k, 0)
    print(f"     {k:<16} {x:>8} -> {y:>8} ({y - x:+d})")
PY
    fi
  else
    where_profile "$tracelink" "" ""
  fi
fi

# --- Unprivileged ------------------------------------------------------------------
unpriv_line=''
if want unpriv; then
  echo
  echo "== unprivileged: precise mode as user '$unpriv_user'"
  if ! id -u "$unpriv_user" >/dev/null 2>&1; then
    unpriv_line="not measured: no user $unpriv_user"
  elif ! command -v runuser >/dev/null; then
    unpriv_line="not measured: runuser not installed"
  else
    unpriv_dir=$(mktemp -d /tmp/tracelink-bench-unpriv.XXXXXX)
    chmod 755 "$unpriv_dir"
    cp "$tracelink" "$unpriv_dir/tracelink"
    mkdir -p "$unpriv_dir/w"
    chown "$unpriv_user" "$unpriv_dir/w"
    u_key=$unpriv_dir/w/key.pem
    runuser -u "$unpriv_user" -- "$unpriv_dir/tracelink" keygen "$u_key" >/dev/null 2>"$run/unpriv.err" ||
      bench_die "tracelink keygen as $unpriv_user failed: $(cat "$run/unpriv.err")"
    mkdir "$unpriv_dir/w/probe" "$unpriv_dir/w/meta"
    chown "$unpriv_user" "$unpriv_dir/w/probe" "$unpriv_dir/w/meta"
    rc=0
    (cd "$unpriv_dir/w/probe" && runuser -u "$unpriv_user" -- "$unpriv_dir/tracelink" run -n probe -k "$u_key" \
      -d "$unpriv_dir/w/meta" -- true) >"$run/unpriv.out" 2>&1 || rc=$?
    msg=$(tr '\n' ' ' <"$run/unpriv.out" | sed 's/ *$//')
    echo "   probe: tracelink run -n probe -k KEY -d META -- true  ->  exit $rc: $msg"
    u_before=''
    if [ -n "$tracelink_before" ]; then
      # The baseline arm only if the older binary accepts it too.
      cp "$tracelink_before" "$unpriv_dir/tracelink-before"
      rm -rf "$unpriv_dir/w/probe" "$unpriv_dir/w/meta"
      mkdir "$unpriv_dir/w/probe" "$unpriv_dir/w/meta"
      chown "$unpriv_user" "$unpriv_dir/w/probe" "$unpriv_dir/w/meta"
      b_rc=0
      (cd "$unpriv_dir/w/probe" && runuser -u "$unpriv_user" -- "$unpriv_dir/tracelink-before" run -n probe \
        -k "$u_key" -d "$unpriv_dir/w/meta" -- true) >"$run/unpriv-before.out" 2>&1 || b_rc=$?
      msg=$(tr '\n' ' ' <"$run/unpriv-before.out" | sed 's/ *$//')
      echo "   probe of the before binary  ->  exit $b_rc: $msg"
      if ((b_rc == 0)); then
        u_before=$unpriv_dir/tracelink-before
      else
        echo "   before: not measured unprivileged (its probe failed): the section runs pairs (native, after)"
      fi
    fi
    if ((rc == 125)); then
      unpriv_line="not supported yet (exit 125)"
      echo "   unprivileged: not supported yet"
    elif ((rc != 0)); then
      unpriv_line="probe failed (exit $rc)"
      echo "   unprivileged: the probe failed with exit status $rc (not measured)"
    else
      # tracelink accepted it: measure the build as that user on a copy it owns.
      cp -R "$proj" "$unpriv_dir/w/proj"
      rm -rf "$unpriv_dir/w/proj/build"
      # Owner and group the user's own: in its user namespace an unmapped owner or group
      # (e.g. root's group) makes a file or directory unwritable (EACCES), unlike natively.
      chown -R "$unpriv_user:$(id -gn "$unpriv_user")" "$unpriv_dir/w/proj"
      u_proj=$unpriv_dir/w/proj
      clean_uproj() { rm -rf "$u_proj/build"; }
      verify_uproj() {
        local out
        out=$("$u_proj/build/prog") || out="(build/prog failed)"
        [ -n "$ref_prog_out" ] || ref_prog_out=$out
        if [ "$out" != "$ref_prog_out" ]; then
          sec_error="$1 run: build/prog missing or its output differs from the root build's"
          return 1
        fi
      }
      sec_key=unpriv sec_short="build as $unpriv_user (unprivileged)"
      sec_title="unprivileged: the build of section build as $unpriv_user (user namespace; passthrough needs root)"
      sec_root=$u_proj sec_cwd=$u_proj sec_clean=clean_uproj sec_verify=verify_uproj sec_target=1.35 sec_aim=1.15
      sec_cmd=(make "-j$jobs") sec_user=(runuser -u "$unpriv_user" --)
      sec_key_file=$u_key sec_tracelink=$unpriv_dir/tracelink sec_meta_base=$unpriv_dir/w sec_before=$u_before
      sec_check_args=(--need-material 'src/**/*.c' --need-product 'build/**/*.o' --need-product build/prog)
      run_section
      if [ "${sum_result[-1]}" = "FAILED (see above)" ]; then
        unpriv_line="supported, but the measurement FAILED (see above)"
      else
        unpriv_line="supported; build ratio ${sum_ratio[-1]}x (see the table)"
      fi
    fi
  fi
fi

# --- Summary -----------------------------------------------------------------------
echo
echo "== Summary"
echo "machine : $machine"
if [ -n "$tracelink_before" ]; then
  echo "tool    : $tracelink_version ($source_desc); root; runs: $runs rotating rounds (native, before, after)"
  echo "          per section (+1 warm-up); traced = after"
  echo "before  : $before_version ($before_desc)"
else
  echo "tool    : $tracelink_version ($source_desc); root; runs: $runs interleaved pairs per section (+1 warm-up)"
fi
printf '%-36s | %9s | %9s | %7s | %-22s | %9s | %s\n' section "native s" "traced s" ratio "target" "requests" result
printf '%s\n' "$(printf '%.0s-' {1..120})"
for i in "${!sum_name[@]}"; do
  r=${sum_ratio[$i]}
  [ "$r" = - ] || r=${r}x
  printf '%-36s | %9s | %9s | %7s | %-22s | %9s | %s\n' "${sum_name[$i]}" "${sum_native[$i]}" "${sum_traced[$i]}" \
    "$r" "${sum_target[$i]}" "${sum_reqs[$i]}" "${sum_result[$i]}"
done
echo "(native/traced s: medians of the wall time; ratio = traced median / native median; requests = median of the"
echo " FUSE requests served per traced run, from the trace's 'fuse_requests')"
if [ -n "$wide_ratio" ] && [ -n "$build_ratio" ]; then
  echo "untouched files: ratio ${wide_ratio}x with them vs ${build_ratio}x without" \
    "($(awk -v a="$wide_ratio" -v b="$build_ratio" 'BEGIN { printf "%+.3f", a - b }'))"
fi
if ((${#ba_name[@]})); then
  echo
  echo "before/after (BENCH_BEFORE_BIN): medians of the wall time; traced/native of the medians, (median of the"
  echo "per-round ratios); after/before = median of the per-round ratios, (ratio of the medians)"
  printf '%-38s | %8s | %8s | %8s | %15s | %15s | %15s | %15s\n' section "native s" "before s" "after s" \
    "before/native" "after/native" "after/before" "requests b/a"
  printf '%s\n' "$(printf '%.0s-' {1..140})"
  for i in "${!ba_name[@]}"; do
    printf '%-38s | %8s | %8s | %8s | %15s | %15s | %15s | %15s\n' "${ba_name[$i]}" "${ba_native[$i]}" \
      "${ba_before[$i]}" "${ba_after[$i]}" "${ba_bn[$i]} (${ba_bn_r[$i]})" "${ba_an[$i]} (${ba_an_r[$i]})" \
      "${ba_ab_r[$i]} (${ba_ab[$i]})" "${ba_reqb[$i]}/${ba_reqa[$i]}"
  done
fi
[ -z "$unpriv_line" ] || echo "unprivileged: $unpriv_line"
echo "load    : up to $other_max cores used by other processes during a timed run; $idle_waited s spent waiting for idle"
if awk -v o="$other_max" 'BEGIN { exit !(o > 0.25) }'; then
  echo "WARNING : other processes were busy during some timed runs (column 'other'): those wall times and"
  echo "          ratios are disturbed; for clean figures rerun on an idle machine"
fi
echo "total   : $((SECONDS - started)) s for this script"
if [ -n "$any_failure" ]; then
  echo "RESULT  : tracelink FAILED in at least one section (see above)"
  exit 1
fi
