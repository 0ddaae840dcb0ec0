# shellcheck shell=bash
# Helpers for the benchmark scripts (sourced, not run): timing with peak RSS,
# medians, a deterministic test tree, and a description of the machine.
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
# Returns CMD's status.
bench_time() {
  local log=$1
  shift
  python3 - "$log" "$@" <<'PY'
import os, resource, subprocess, sys, time
log, cmd = sys.argv[1], sys.argv[2:]
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
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    elapsed = time.perf_counter() - t0
    b1 = busy()
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
