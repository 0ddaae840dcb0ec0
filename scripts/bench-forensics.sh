#!/usr/bin/env bash
# Measures what reading a large precise recording costs, before and after a
# change: the trace's size and the time of `tracelink show`, `show --json`,
# `diff` and `rerun` on a libsodium-size build (issue 11, point 4).
#
# The build: make -j2 of a generated C project the size of libsodium's:
# $BENCH_MODULES (3339) small modules in 34 dirs + main.c, 60 headers in 6
# dirs with nested includes (3,400 source files, plus the Makefile); every
# module compiled by its own cc (cc, cc1, as: ~10,000 processes), archived
# with one `ar`, linked with main.o. Deterministic from $BENCH_SEED; so is the
# build output (-g0, no __DATE__, ar D), so a faithful rerun reproduces it.
#
# Two binaries: BEFORE ($BENCH_BEFORE_BIN, required: an older tracelink, e.g.
# `git worktree add ../tl-before a5d634b && cargo build --release` there; at
# a5d634b the trace is <link>.trace.json) and AFTER (cargo build --release of this
# checkout; its trace is <link>.trace.json.gz). As root, each records the
# build twice, precisely, with --store (one store per binary), each time from
# a clean tree (make clean + sync): recordings A and B. Untimed; checked:
# exit 0, a complete trace. Then per binary:
#   size  : the trace file's size (and, for a gzip trace, its decompressed
#           size: gzip -dc | wc -c); the process count of the trace
#   show  : tracelink show A            (default view; its output's line count)
#   json  : tracelink show --json A     (its output's size)
#   diff  : tracelink diff A B          (two recordings of the same build)
#   rerun : tracelink rerun A --store S --workdir FRESH  (AFTER also gets
#           --verification-keys KEY.pub, which it requires; BEFORE has no
#           such flag); its verdict line (REPRODUCED / NOT REPRODUCED) and its
#           report's line count; a rerun that fails is printed as the result.
# show/json/diff: one untimed warm-up of each, then $BENCH_RUNS (3) rounds;
# rerun: $BENCH_RUNS rounds, no warm-up (each rebuilds the project). In every
# round BEFORE and AFTER alternate (which goes first alternates by round);
# wall time = time.perf_counter around the child; medians of the rounds and
# the ratio after/before of the medians. Before each timed run the script
# waits (up to $BENCH_IDLE_WAIT s) for the rest of the machine to be idle.
# There are no targets: exit status 1 only if a recording fails or AFTER's
# rerun fails.
#
# Environment: BENCH_DIR (work dir: the generated project is kept there and
# reused through a marker file; default a fresh dir under ${TMPDIR:-/tmp},
# removed at the end), BENCH_KEEP (1: keep links, traces, stores, outputs),
# BENCH_RUNS (3), BENCH_SEED (1), BENCH_MODULES (3339), BENCH_BEFORE_BIN,
# BENCH_IDLE_WAIT (60), BENCH_IDLE_BUDGET (900), CARGO_TARGET_DIR. Needs root,
# /dev/fuse, cargo, cc, make, ar, gzip, python3 (3.10+).
set -euo pipefail
export LC_ALL=C

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_SCRIPTS=$script_dir # bench_link.py, to read traces of any format
top=$(cd "$script_dir/.." && pwd)
[ -f "$script_dir/bench-lib.sh" ] || {
  echo "bench: error: $script_dir/bench-lib.sh is missing" >&2
  exit 1
}
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR disable=SC1091 # (shellcheck -x follows it)
. "$script_dir/bench-lib.sh"

bench_args "$@"

runs=${BENCH_RUNS:-3}
seed=${BENCH_SEED:-1}
modules=${BENCH_MODULES:-3339}
idle_wait=${BENCH_IDLE_WAIT:-60}
idle_budget=${BENCH_IDLE_BUDGET:-900}
keep=${BENCH_KEEP:-}
before_bin=${BENCH_BEFORE_BIN:-}
[ -n "$before_bin" ] || bench_die "set BENCH_BEFORE_BIN to an older tracelink binary to compare with (see the top of this script)"
bench_check_count BENCH_RUNS "$runs"
bench_check_count BENCH_SEED "$seed"
bench_check_count BENCH_MODULES "$modules"
bench_check_count BENCH_IDLE_WAIT "$idle_wait"
bench_check_count BENCH_IDLE_BUDGET "$idle_budget"
((runs >= 1)) || bench_die "BENCH_RUNS must be at least 1"
((modules >= 34)) || bench_die "BENCH_MODULES must be at least 34"
jobs=2
started=$SECONDS

# --- Preconditions and the two binaries ----------------------------------------
[ "$(id -u)" -eq 0 ] || bench_die "precise mode needs root: run as root"
[ -c /dev/fuse ] || bench_die "/dev/fuse is missing"
for tool in cargo cc make ar gzip python3; do
  command -v "$tool" >/dev/null || bench_die "$tool not found"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || bench_die "python3 >= 3.10 needed"
[ -x "$before_bin" ] || bench_die "no BEFORE binary at $before_bin (set BENCH_BEFORE_BIN)"
after_bin=$(bench_build_tracelink "$top")
source_desc=$(bench_source_desc "$top")

# --- Work dir, cleanup ------------------------------------------------------------
fresh_work=''
if [ -n "${BENCH_DIR:-}" ]; then
  mkdir -p "$BENCH_DIR"
  work=$(cd "$BENCH_DIR" && pwd)
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/tracelink-bench-forensics.XXXXXX")
  fresh_work=1
fi
run=$work/run-forensics
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

# Copies: the benchmark keeps the binaries it started with.
declare -A bin
cp "$before_bin" "$run/tracelink-before"
cp "$after_bin" "$run/tracelink-after"
bin[before]=$run/tracelink-before
bin[after]=$run/tracelink-after
before_desc="$("${bin[before]}" --version) ($before_bin)"
after_desc="$("${bin[after]}" --version) ($source_desc, release build)"
key=$run/key.pem
"${bin[after]}" keygen "$key" >"$run/keygen.log" 2>&1 || bench_die "tracelink keygen failed: $(cat "$run/keygen.log")"
[ -f "$key.pub" ] || bench_die "keygen wrote no $key.pub"
# Which rerun takes --verification-keys (AFTER requires it; BEFORE has none).
declare -A rerun_keys
for b in before after; do
  "${bin[$b]}" rerun --help >"$run/rerun-help-$b.txt" 2>&1 || bench_die "the $b binary has no 'rerun' subcommand"
  rerun_keys[$b]=''
  if grep -q -- '--verification-keys' "$run/rerun-help-$b.txt"; then
    rerun_keys[$b]=1
  fi
done

# --- The generated project (reused through a marker file) ---------------------------
# gen_big_project DIR SEED MODULES: like bench-lib.sh's gen_project, scaled to
# libsodium's size (see the header).
gen_big_project() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys
root, seed, nmod = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
groups = ["core", "util", "io", "net", "crypto", "aux"]
nhead = 60
headers = [f"{groups[i // 10]}/h{i:02d}.h" for i in range(nhead)]
ndirs = 34

def write(rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)

for i, h in enumerate(headers):
    guard = h.upper().replace("/", "_").replace(".", "_")
    nested = sorted(rng.sample(range(i), min(i, rng.choice([0, 0, 1, 2]))))
    lines = [f"#ifndef {guard}", f"#define {guard}", "#include <stdint.h>"]
    lines += [f'#include "{headers[j]}"' for j in nested]
    lines += [
        f"#define H{i}_K {rng.randint(1, 1 << 20)}u",
        f"#define H{i}_N {rng.randint(2, 8)}",
        f"typedef struct h{i}_s {{ uint32_t a; uint32_t b[H{i}_N]; }} h{i}_t;",
        f"static inline uint32_t h{i}_mix(uint32_t x) {{",
        f"  x ^= x >> {rng.randint(3, 17)};",
        f"  x *= {rng.randint(3, 1 << 30) | 1}u;",
        f"  return x + H{i}_K;",
        "}",
        f"#endif /* {guard} */",
        "",
    ]
    write(os.path.join("include", h), "\n".join(lines))

per_dir, extra = divmod(nmod, ndirs)
mods = []
n = 0
for d in range(ndirs):
    for _ in range(per_dir + (1 if d < extra else 0)):
        mods.append((d, n))
        n += 1
for d, n in mods:
    used = sorted(rng.sample(range(nhead), rng.randint(2, 4)))
    i = rng.choice(used)
    lines = ["#include <string.h>"] + [f'#include "{headers[u]}"' for u in used] + [
        "",
        f"uint32_t mod_{n:04d}(uint32_t x) {{",
        f"  h{i}_t t;",
        "  memset(&t, 0, sizeof t);",
        "  t.a = x;",
        f"  for (int j = 0; j < H{i}_N; j++) t.b[j] = h{i}_mix(x + (uint32_t)j * {rng.randint(1, 999)}u);",
        f"  for (int j = 0; j < H{i}_N; j++) t.a ^= h{i}_mix(t.a + t.b[j]) >> {rng.randint(1, 9)};",
        "  return t.a;",
        "}",
        "",
    ]
    write(f"src/d{d:02d}/m{n:04d}.c", "\n".join(lines))

main = ["#include <stdint.h>", "#include <stdio.h>", ""]
main += [f"uint32_t mod_{n:04d}(uint32_t x);" for _, n in mods]
main += ["", "int main(void) {", "  uint32_t acc = 1;"]
main += [f"  acc = mod_{n:04d}(acc);" for _, n in mods]
main += ['  printf("%u\\n", (unsigned)acc);', "  return 0;", "}", ""]
write("src/main.c", "\n".join(main))

objs = [f"build/d{d:02d}/m{n:04d}.o" for d, n in mods]
dirs = [f"build/d{d:02d}" for d in range(ndirs)]
mk = [
    "# Generated by scripts/bench-forensics.sh",
    "CC = cc",
    "AR = ar",
    "CFLAGS = -O1 -g0 -Wall",
    "CPPFLAGS = -Iinclude",
    "DIRS = " + " ".join(dirs),
    "OBJS = \\",
] + [f"  {o} \\" for o in objs[:-1]] + [f"  {objs[-1]}", ""] + [
    "build/prog: build/main.o build/libbench.a",
    "\t$(CC) -o $@ build/main.o build/libbench.a",
    "",
    "build/libbench.a: $(OBJS)",
    "\t$(AR) rcsD $@ $(OBJS)",
    "",
    "build/main.o: src/main.c | build",
    "\t$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@",
    "",
    "build/%.o: src/%.c | $(DIRS)",
    "\t$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@",
    "",
    "build $(DIRS):",
    "\tmkdir -p $@",
    "",
    ".PHONY: clean",
    "clean:",
    "\trm -rf build",
    "",
]
write("Makefile", "\n".join(mk))
PY
}

proj=$work/tree/proj
marker=$work/.forensics-project.spec
spec="forensics project v1 seed=$seed modules=$modules dirs=34 headers=60"
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
  gen_big_project "$proj.partial" "$seed" "$modules"
  mv "$proj.partial" "$proj"
  sync
  echo "$spec" >"$marker"
  tree_note="generated in $((SECONDS - t0)) s ($spec)"
fi
n_src=$(find "$proj/src" "$proj/include" -type f | wc -l)

# --- Idle waiting and timing ---------------------------------------------------------
other_max=0

ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# timed OUT ERR CWD CMD...: runs CMD (stdout to OUT, stderr to ERR) after
# waiting for idle (not with no_wait set); sets t_secs, t_other, t_rc.
t_secs='' t_other='' t_rc=0 no_wait=''
timed() {
  local out=$1 err=$2 cwd=$3 res
  shift 3
  [ -n "$no_wait" ] || bench_wait_idle
  t_rc=0
  res=$(cd "$cwd" && python3 - "$out" "$err" "$@" <<'PY'
import os, subprocess, sys, time
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
tick = os.sysconf("SC_CLK_TCK")
def busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[0:3]) + sum(v[5:8])) / tick
import resource
with open(out, "wb") as o, open(err, "wb") as e:
    b0 = busy()
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e)
    el = time.perf_counter() - t0
    b1 = busy()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
other = max(0.0, (b1 - b0) - ru.ru_utime - ru.ru_stime) / el if el > 0 else 0.0
print(f"{el:.3f} {other:.2f} {rc if rc >= 0 else 128 - rc}")
PY
  ) || bench_die "the timing wrapper failed"
  read -r t_secs t_other t_rc <<<"$res"
  if [ -z "$no_wait" ] && awk -v o="$t_other" -v m="$other_max" 'BEGIN { exit !(o > m) }'; then
    other_max=$t_other
  fi
}

# --- Recordings ------------------------------------------------------------------------
# record B TAG: a precise recording of make -j2 from clean with binary B into
# $run/meta-B-TAG, --store $run/store-B. Sets link[B-TAG], trace[B-TAG].
declare -A link trace rec_secs procs
record() {
  local b=$1 tag=$2 meta=$run/meta-$1-$2 out
  (cd "$proj" && make clean >/dev/null && sync)
  rm -rf "$meta"
  mkdir -p "$meta" "$run/store-$b"
  # Untimed for the figures: no waiting for idle.
  no_wait=1
  timed "$meta.out" "$meta.err" "$proj" "${bin[$b]}" run -n build -k "$key" -d "$meta" --root "$proj" \
    --store "$run/store-$b" -- make "-j$jobs"
  no_wait=''
  if ((t_rc != 0)); then
    bench_die "recording $b-$tag exited with $t_rc; last lines:"$'\n'"$(tail -n 15 "$meta.err")"
  fi
  rec_secs[$b-$tag]=$t_secs
  link[$b-$tag]=$(find "$meta" -maxdepth 1 -name '*.link' | head -n 1)
  [ -n "${link[$b-$tag]}" ] || bench_die "recording $b-$tag wrote no link in $meta"
  out=$(python3 - "${link[$b-$tag]}" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ["BENCH_SCRIPTS"])
from bench_link import read_trace, trace_path_of
with open(sys.argv[1]) as f:
    signed = json.load(f)["signed"]
path = trace_path_of(sys.argv[1], signed)
t = read_trace(path)
if t.get("complete") is not True:
    sys.exit(f"incomplete trace {path}: {t.get('incomplete')}")
print(path, len(t.get("process_tree") or []))
PY
  ) || bench_die "recording $b-$tag: bad trace"
  local tpath np
  read -r tpath np <<<"$out"
  trace[$b-$tag]=$tpath
  procs[$b-$tag]=$np
}

echo "== tracelink forensics benchmark: trace size, show, diff, rerun on a libsodium-size recording =="
echo "machine : $(bench_machine); load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "before  : $before_desc"
echo "after   : $after_desc"
echo "project : $proj: $n_src source files; $tree_note"
echo "method  : as root; precise recordings with --store of make -j$jobs from clean (make clean + sync);"
echo "          $runs rounds, BEFORE and AFTER interleaved (order alternating per round); medians;"
echo "          ratio = after/before of the medians; wall = time.perf_counter around the child"
echo

bench_note "recording the build 4 times (before, after, before, after) ..."
for tag in a b; do
  for b in before after; do
    record "$b" "$tag"
  done
done
echo "== recordings (untimed for the figures; from clean, --store): wall s"
for b in before after; do
  echo "   $b: A ${rec_secs[$b-a]} s, B ${rec_secs[$b-b]} s; ${procs[$b-a]} processes in A's trace"
done

# --- Trace size ------------------------------------------------------------------------
echo
echo "== trace size (recording A)"
declare -A tsize tplain
for b in before after; do
  t=${trace[$b-a]}
  tsize[$b]=$(stat -c %s "$t")
  if [ "$(head -c 2 "$t" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
    tplain[$b]=$(gzip -dc "$t" | wc -c)
    echo "   $b: $(basename "$t"): ${tsize[$b]} bytes (gzip; ${tplain[$b]} bytes decompressed)"
  else
    tplain[$b]=${tsize[$b]}
    echo "   $b: $(basename "$t"): ${tsize[$b]} bytes (plain)"
  fi
done
echo "   after/before: $(ratio_of "${tsize[after]}" "${tsize[before]}") (file), $(ratio_of "${tplain[after]}" "${tplain[before]}") (decompressed)"

# --- show, show --json, diff -------------------------------------------------------------
# op_cmd B OP -> sets cmd=(...)
cmd=()
op_cmd() {
  case $2 in
    show) cmd=("${bin[$1]}" show "${link[$1-a]}") ;;
    json) cmd=("${bin[$1]}" show --json "${link[$1-a]}") ;;
    diff) cmd=("${bin[$1]}" diff "${link[$1-a]}" "${link[$1-b]}") ;;
  esac
}
declare -A times others olines obytes orc med
any_failure=''
sum_lines=()
for op in show json diff; do
  for b in before after; do
    op_cmd "$b" "$op"
    out=$run/out-$op-$b
    "${cmd[@]}" >"$out" 2>"$out.err" </dev/null && orc[$b]=0 || orc[$b]=$?
    olines[$b]=$(wc -l <"$out")
    obytes[$b]=$(wc -c <"$out")
    times[$b]='' others[$b]=''
  done
  for ((i = 1; i <= runs; i++)); do
    order="before after"
    ((i % 2)) || order="after before"
    for b in $order; do
      op_cmd "$b" "$op"
      timed "$run/out-$op-$b.t" "$run/out-$op-$b.t.err" "$run" "${cmd[@]}"
      times[$b]+=" $t_secs"
      others[$b]+=" $t_other"
    done
  done
  case $op in
    show) title="tracelink show A (default view)" ;;
    json) title="tracelink show --json A" ;;
    diff) title="tracelink diff A B (two recordings of the same build)" ;;
  esac
  echo
  echo "== $title"
  for b in before after; do
    # shellcheck disable=SC2086 # word splitting of the list of times is meant
    med[$b]=$(bench_median ${times[$b]})
    echo "   $b: median ${med[$b]} s (rounds:${times[$b]}; other cores:${others[$b]}); exit ${orc[$b]}; output ${olines[$b]} lines, ${obytes[$b]} bytes"
    if ((orc[$b] > 1)); then
      echo "      its stderr: $(head -c 300 "$run/out-$op-$b.err")"
    fi
  done
  echo "   after/before: $(ratio_of "${med[after]}" "${med[before]}")"
  sum_lines+=("$(printf '%-6s: before %s s (%s lines), after %s s (%s lines), after/before %s' "$op" \
    "${med[before]}" "${olines[before]}" "${med[after]}" "${olines[after]}" "$(ratio_of "${med[after]}" "${med[before]}")")")
done

# --- rerun -----------------------------------------------------------------------------------
echo
echo "== tracelink rerun A --store S --workdir FRESH (AFTER: + --verification-keys KEY.pub)"
declare -A rtimes rverdict rreport rfail
for b in before after; do
  rtimes[$b]='' rfail[$b]=''
done
for ((i = 1; i <= runs; i++)); do
  order="before after"
  ((i % 2)) || order="after before"
  for b in $order; do
    [ -z "${rfail[$b]}" ] || continue
    wd=$run/wd-$b-$i
    rm -rf "$wd"
    sync
    kargs=()
    [ -z "${rerun_keys[$b]}" ] || kargs=(--verification-keys "$key.pub")
    timed "$wd.out" "$wd.err" "$run" "${bin[$b]}" rerun "${link[$b-a]}" "${kargs[@]}" --store "$run/store-$b" --workdir "$wd"
    report=$wd/metadata/report.txt
    verdict=$(grep -h -E 'REPRODUCED' "$report" "$wd.out" 2>/dev/null | head -n 1 || true)
    if ((t_rc > 1)) || [ -z "$verdict" ]; then
      rfail[$b]="exit $t_rc after $t_secs s: $(grep -v '^\s*$' "$wd.err" "$wd.out" 2>/dev/null | tail -n 3 | tr '\n' ' ' || true)"
      echo "   $b round $i: FAILED: ${rfail[$b]}"
      continue
    fi
    rtimes[$b]+=" $t_secs"
    rverdict[$b]="$verdict (exit $t_rc)"
    rreport[$b]=$( [ -f "$report" ] && wc -l <"$report" || echo "no report.txt;" )
    echo "   $b round $i: $t_secs s (other cores $t_other); $verdict; report ${rreport[$b]} lines"
    [ -n "$keep" ] || rm -rf "$wd"
  done
done
declare -A rmed
for b in before after; do
  if [ -n "${rfail[$b]}" ]; then
    rmed[$b]=''
    echo "   $b: rerun FAILED on this project: ${rfail[$b]}"
  else
    # shellcheck disable=SC2086 # word splitting of the list of times is meant
    rmed[$b]=$(bench_median ${rtimes[$b]})
    echo "   $b: median ${rmed[$b]} s (rounds:${rtimes[$b]}); ${rverdict[$b]}; report ${rreport[$b]} lines"
  fi
done
if [ -n "${rmed[before]}" ] && [ -n "${rmed[after]}" ]; then
  echo "   after/before: $(ratio_of "${rmed[after]}" "${rmed[before]}")"
  sum_lines+=("rerun : before ${rmed[before]} s (report ${rreport[before]} lines), after ${rmed[after]} s (report ${rreport[after]} lines), after/before $(ratio_of "${rmed[after]}" "${rmed[before]}")")
else
  b_part="before ${rmed[before]:-FAILED} s"
  [ -z "${rfail[before]}" ] || b_part="before FAILED (${rfail[before]})"
  a_part="after ${rmed[after]:-FAILED} s"
  [ -z "${rmed[after]}" ] || a_part+=" (${rverdict[after]}; report ${rreport[after]} lines)"
  sum_lines+=("rerun : $b_part; $a_part")
fi
[ -z "${rfail[after]}" ] || any_failure=1

# --- Summary -----------------------------------------------------------------------------------
echo
echo "== Summary (medians of $runs interleaved rounds)"
echo "project: $n_src source files, make -j$jobs, ${procs[after-a]} processes (AFTER's trace; BEFORE's: ${procs[before-a]})"
echo "trace  : before ${tsize[before]} bytes; after ${tsize[after]} bytes ($(ratio_of "${tsize[after]}" "${tsize[before]}") of before), ${tplain[after]} bytes decompressed"
for l in "${sum_lines[@]}"; do
  echo "$l"
done
echo "load   : up to $other_max cores used by other processes during a timed run; $idle_waited s spent waiting for idle"
if awk -v o="$other_max" 'BEGIN { exit !(o > 0.25) }'; then
  echo "WARNING: other processes were busy during some timed runs: those times are disturbed"
fi
echo "total  : $((SECONDS - started)) s for this script"
if [ -n "$any_failure" ]; then
  echo "RESULT : AFTER's rerun FAILED"
  exit 1
fi
