# shellcheck shell=bash
# Helpers for the benchmark scripts (sourced, not run): timing with peak RSS,
# medians, a deterministic test tree, a generated C project, and a description
# of the machine.
# Needs python3 (standard library only).

# Prints an error and exits.
bench_die() {
  echo "bench: error: $*" >&2
  exit 1
}

# Prints a note on stderr, so that stdout stays the report.
bench_note() {
  echo "bench: $*" >&2
}

# bench_time LOG CMD [ARG...]
# Runs CMD (stdin from /dev/null, stdout and stderr appended to LOG) and
# prints "SECONDS PEAK_RSS_KIB CPU_SECONDS OTHER_CORES":
# - SECONDS: wall clock from time.perf_counter around the child alone (not
#   this wrapper's own start-up);
# - PEAK_RSS_KIB: the largest maximum resident set size among the child and
#   its waited-for descendants (getrusage(RUSAGE_CHILDREN).ru_maxrss);
# - CPU_SECONDS: user + system time of the child and its descendants;
# - OTHER_CORES: CPU time the rest of the machine used meanwhile (busy time
#   from /proc/stat less CPU_SECONDS) per second of wall clock: 0 on an idle
#   machine; well above 0 means the wall-clock figure is inflated by other load.
# With BENCH_TIME_START_FILE set, also writes the Unix time (time.time) at the
# child's start to that file, to place the run among timestamps it leaves.
# Returns CMD's status.
bench_time() {
  local log=$1
  shift
  python3 - "$log" "$@" <<'PY'
import os, resource, subprocess, sys, time
log, cmd = sys.argv[1], sys.argv[2:]
start_file = os.environ.get("BENCH_TIME_START_FILE")
tick = os.sysconf("SC_CLK_TCK")
def busy():
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    # user nice system [idle iowait] irq softirq steal
    return (sum(v[0:3]) + sum(v[5:8])) / tick
with open(log, "ab") as out:
    b0 = busy()
    epoch = time.time()
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    elapsed = time.perf_counter() - t0
    b1 = busy()
if start_file:
    with open(start_file, "w") as f:
        f.write(f"{epoch:.6f}\n")
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
other = max(0.0, (b1 - b0) - cpu) / elapsed if b0 is not None and elapsed > 0 else float("nan")
print(f"{elapsed:.3f} {ru.ru_maxrss} {cpu:.3f} {other:.2f}")
sys.exit(rc if rc >= 0 else 128 - rc)
PY
}

# bench_median NUMBER...  -> the median (mean of the middle two for an even count)
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END {
      if (NR == 0) exit 1
      if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]
      else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

# bench_max NUMBER...  -> the largest
bench_max() {
  printf '%s\n' "$@" | sort -g | tail -n 1
}

# bench_gen_tree DIR SEED NDIRS NFILES MIN_BYTES MAX_BYTES NBIG BIG_BYTES
# Creates DIR (which must not exist) holding NFILES files of MIN..MAX bytes
# (uniformly random sizes) spread evenly over NDIRS directories d000/,
# d001/, ... and NBIG files of BIG_BYTES in big/, all with pseudo-random
# content from Python's Mersenne Twister seeded with SEED, so the same
# arguments always give byte-identical trees. Syncs to disk at the end, so
# that write-back does not disturb the measurements that follow.
bench_gen_tree() {
  python3 - "$@" <<'PY'
import os, random, sys
root = sys.argv[1]
seed, ndirs, nfiles, lo, hi, nbig, big = map(int, sys.argv[2:9])
rng = random.Random(seed)
os.makedirs(root)
width = len(str(max(ndirs - 1, 1)))
per_dir, extra = divmod(nfiles, ndirs)
n = 0
for d in range(ndirs):
    dpath = os.path.join(root, f"d{d:0{width}d}")
    os.mkdir(dpath)
    for _ in range(per_dir + (1 if d < extra else 0)):
        with open(os.path.join(dpath, f"f{n:06d}.bin"), "wb") as f:
            f.write(rng.randbytes(rng.randint(lo, hi)))
        n += 1
if nbig:
    bpath = os.path.join(root, "big")
    os.mkdir(bpath)
    chunk = 1 << 20
    for b in range(nbig):
        with open(os.path.join(bpath, f"big{b:02d}.bin"), "wb") as f:
            left = big
            while left:
                k = min(chunk, left)
                f.write(rng.randbytes(k))
                left -= k
os.sync()
PY
}

# bench_tree_stats DIR  -> "FILES BYTES" (regular files only)
bench_tree_stats() {
  find "$1" -type f -printf '%s\n' | awk '{ n++; s += $1 } END { printf "%d %d\n", n, s }'
}

# bench_machine  -> one line: cores, kernel, CPU, memory
bench_machine() {
  local cpu mem
  cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
  mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576; exit }' /proc/meminfo 2>/dev/null)
  echo "$(nproc) cores (nproc), $(uname -s) $(uname -r) $(uname -m), CPU ${cpu:-unknown}, RAM ${mem:-unknown}"
}

# gen_project DIR SEED
# Creates DIR holding a C project: 300 modules in 10
# directories src/d00..d09 + src/main.c, 30 headers in include/{core,util,io}
# with nested includes, and a Makefile building build/**/*.o and build/prog
# (cc -O1 -g0, -MMD -MP). Deterministic from SEED; the build output is too
# (no __DATE__/__TIME__, no absolute paths in the objects). Used by
# scripts/bench-overhead.sh and scripts/bench-rerun.sh.
gen_project() {
  python3 - "$1" "$2" <<'PY'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
groups = ["core", "util", "io"]
headers = [f"{groups[i // 10]}/h{i:02d}.h" for i in range(30)]

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
    n = rng.randint(2, 8)
    lines += [
        f"#define H{i}_K {rng.randint(1, 1 << 20)}u",
        f"#define H{i}_N {n}",
        f"typedef struct h{i}_s {{ uint32_t a; uint32_t b[H{i}_N]; }} h{i}_t;",
        f"static inline uint32_t h{i}_mix(uint32_t x) {{",
        f"  x ^= x >> {rng.randint(3, 17)};",
        f"  x *= {rng.randint(3, 1 << 30) | 1}u;",
        f"  return x + H{i}_K;",
        "}",
        f"static inline uint32_t h{i}_fold(const h{i}_t *t) {{",
        "  uint32_t s = t->a;",
        f"  for (int k = 0; k < H{i}_N; k++) s = h{i}_mix(s + t->b[k]);",
        "  return s;",
        "}",
    ]
    lines += [f"uint32_t h{i}_api_{k}(uint32_t x);" for k in range(rng.randint(2, 6))]
    lines += [f"#endif /* {guard} */", ""]
    write(os.path.join("include", h), "\n".join(lines))

modules = []
for d in range(10):
    for m in range(30):
        modules.append((d, d * 30 + m))
for d, n in modules:
    used = sorted(rng.sample(range(30), rng.randint(3, 5)))
    lines = ["#include <string.h>"] + [f'#include "{headers[i]}"' for i in used] + [""]
    nhelp = rng.randint(1, 3)
    for k in range(nhelp):
        i = rng.choice(used)
        lines += [
            f"static uint32_t helper{k}(uint32_t x) {{",
            f"  h{i}_t t;",
            "  memset(&t, 0, sizeof t);",
            "  t.a = x;",
            f"  for (int j = 0; j < H{i}_N; j++) t.b[j] = h{i}_mix(x + (uint32_t)j * {rng.randint(1, 999)}u);",
            f"  for (int r = 0; r < {rng.randint(2, 12)}; r++) {{",
            f"    if ((t.a & {rng.randint(1, 15)}u) == 0) t.a = h{i}_fold(&t);",
            f"    else t.a ^= h{i}_mix(t.a) >> {rng.randint(1, 9)};",
            "  }",
            "  return t.a;",
            "}",
            "",
        ]
    body = " + ".join(f"helper{k}(x + {k}u)" for k in range(nhelp))
    lines += [f"uint32_t mod_{n:03d}(uint32_t x) {{", f"  return {body};", "}", ""]
    write(f"src/d{d:02d}/m{n:03d}.c", "\n".join(lines))

main = ["#include <stdint.h>", "#include <stdio.h>", ""]
main += [f"uint32_t mod_{n:03d}(uint32_t x);" for _, n in modules]
main += ["", "int main(void) {", "  uint32_t acc = 1;"]
main += [f"  acc = mod_{n:03d}(acc);" for _, n in modules]
main += ['  printf("%u\\n", (unsigned)acc);', "  return 0;", "}", ""]
write("src/main.c", "\n".join(main))

srcs = ["src/main.c"] + [f"src/d{d:02d}/m{n:03d}.c" for d, n in modules]
objs = [s.replace("src/", "build/", 1)[:-2] + ".o" for s in srcs]
mk = [
    "# Generated by scripts/bench-overhead.sh",
    "CC = cc",
    "CFLAGS = -O1 -g0 -Wall",
    "CPPFLAGS = -Iinclude",
    "OBJS = \\",
] + [f"  {o} \\" for o in objs[:-1]] + [f"  {objs[-1]}", ""] + [
    "build/prog: $(OBJS)",
    "\t$(CC) -o $@ $(OBJS)",
    "",
    "build/%.o: src/%.c",
    "\t@mkdir -p $(@D)",
    "\t$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@",
    "",
    "-include $(OBJS:.o=.d)",
    "",
    ".PHONY: clean",
    "clean:",
    "\trm -rf build",
    "",
]
write("Makefile", "\n".join(mk))
PY
}

# bench_args "$@": --help prints the calling script's header comment; any
# other argument is an error (settings come from the environment).
bench_args() {
  case "${1:-}" in
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
      exit 0
      ;;
    "") ;;
    *) bench_die "no arguments expected (settings come from the environment; see --help)" ;;
  esac
}

# bench_check_count NAME VALUE: dies unless VALUE is a non-negative integer.
bench_check_count() {
  [[ $2 =~ ^[0-9]+$ ]] || bench_die "$1 must be a non-negative integer, not '$2'"
}

# bench_build_tracelink TOP: builds the release binary of the checkout at TOP
# (showing the build log only if it fails) and prints its path
# (CARGO_TARGET_DIR respected).
bench_build_tracelink() {
  local top=$1 build_log target_dir tracelink
  bench_note "building tracelink (cargo build --release) ..."
  build_log=$(mktemp)
  if ! (cd "$top" && cargo build --release) >"$build_log" 2>&1; then
    cat "$build_log" >&2
    rm -f "$build_log"
    bench_die "cargo build --release failed"
  fi
  rm -f "$build_log"
  target_dir=${CARGO_TARGET_DIR:-target}
  [[ $target_dir = /* ]] || target_dir=$top/$target_dir
  tracelink=$target_dir/release/tracelink
  [ -x "$tracelink" ] || bench_die "no binary at $tracelink after the build"
  echo "$tracelink"
}

# bench_source_desc TOP: "git REV[-dirty]" of the checkout, or "not a git checkout".
bench_source_desc() {
  local rev
  if rev=$(git -C "$1" describe --always --dirty 2>/dev/null); then
    echo "git $rev"
  else
    echo "not a git checkout"
  fi
}

# bench_wait_idle: waits (at most $idle_wait s per run, $idle_budget s in all)
# until the rest of the machine uses less than 0.25 cores over one second;
# adds the time waited to $idle_waited (which the caller prints).
# idle_wait and idle_budget are the sourcing script's (BENCH_IDLE_WAIT,
# BENCH_IDLE_BUDGET).
idle_waited=0
# shellcheck disable=SC2154
bench_wait_idle() {
  local t0=$SECONDS busy cap=$idle_wait
  ((idle_budget - idle_waited >= cap)) || cap=$((idle_budget - idle_waited))
  ((cap > 0)) || return 0
  while :; do
    busy=$(python3 -c '
import os, time
def b():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[0:3]) + sum(v[5:8]), sum(v)
a = b(); time.sleep(1); c = b()
print(f"{(c[0] - a[0]) / max(1, c[1] - a[1]) * os.cpu_count():.2f}")')
    if awk -v b="$busy" 'BEGIN { exit !(b < 0.25) }' || ((SECONDS - t0 >= cap)); then
      break
    fi
    sleep 2
  done
  idle_waited=$((idle_waited + SECONDS - t0))
}
