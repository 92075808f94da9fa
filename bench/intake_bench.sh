#!/usr/bin/env bash
# The life of a line under `telecap run` (issue 15's numbers), each as the median and the best
# of RUNS paired runs (default 5), as a ratio against its baseline measured in the same pair:
#  1. run's own CPU per line (process_cpu_seconds_total from --stats) vs parse's, same lines,
#     -o jsonl:/dev/null, --passthrough none, --overflow block;
#  2. run's wall time vs the same worker with its stderr drained by cat, for bench_writer (a
#     file, one write(2) per line) and bench_format_writer (formats each line itself);
#  3. heap allocations per line in steady state (heaptrack, the difference of two run lengths);
#  4. futex calls per 100 events (strace -f --seccomp-bpf -e trace=futex -c).
# Usage: bench/intake_bench.sh [BUILD_DIR] (a Release build with -DTELECAP_BUILD_BENCH=ON).
set -euo pipefail
build=${1:-build-bench}
runs=${RUNS:-5}
lines=${LINES:-200000}
here=$(cd "$(dirname "$0")" && pwd)
tc="$build/telecap"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/gen_workload.py" "$lines" > "$work/w.txt"
writer="$build/bench/bench_writer $work/w.txt"
fmt="$build/bench/bench_format_writer $lines"
run_args=(run --overflow block --passthrough none -o jsonl:/dev/null)

stat_of() { grep -oE "\"$2\":[0-9.e+-]+" "$1" | head -n 1 | cut -d: -f2; }
wall() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
# median and best (lowest) of the numbers on stdin
summary() { sort -g | awk '{a[NR]=$1} END {printf "median %.3f best %.3f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[1]}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $lines lines, $runs paired runs"
: > "$work/cpu"; : > "$work/wall1"; : > "$work/wall2"
for _ in $(seq "$runs"); do
    "$tc" "${run_args[@]}" --stats "$work/r.json" -- $writer 2>/dev/null || true
    "$tc" parse --passthrough none -o jsonl:/dev/null --stats "$work/p.json" "$work/w.txt" 2>/dev/null
    r=$(stat_of "$work/r.json" process_cpu_seconds_total); p=$(stat_of "$work/p.json" process_cpu_seconds_total)
    ev=$(stat_of "$work/r.json" events); [ "$ev" = "$(stat_of "$work/p.json" events)" ] || echo "run lost events: $ev"
    echo "$r / $p" | bc -l >> "$work/cpu"
    c=$(wall sh -c "$writer 2>&1 >/dev/null | cat >/dev/null"); t=$(wall "$tc" "${run_args[@]}" -- $writer)
    echo "$t / $c" | bc -l >> "$work/wall1"
    c=$(wall sh -c "$fmt 2>&1 >/dev/null | cat >/dev/null"); t=$(wall "$tc" "${run_args[@]}" -- $fmt)
    echo "$t / $c" | bc -l >> "$work/wall2"
done
echo "run CPU / parse CPU (jsonl):        $(summary < "$work/cpu")   (goal <= 1.25)"
echo "run wall / cat wall, bench_writer:  $(summary < "$work/wall1")   (goal <= 1.10)"
echo "run wall / cat wall, format_writer: $(summary < "$work/wall2")   (goal <= 1.10)"

if command -v heaptrack >/dev/null; then
    # Steady state: the batches in flight (at most the queue's worth) are warm after the first
    # few hundred thousand lines, so compare LINES against 5 x LINES.
    big=$((lines * 5))
    python3 "$here/gen_workload.py" "$big" > "$work/big.txt"
    allocs() {
        heaptrack -o "$work/ht" "$tc" "${run_args[@]}" -- "$build/bench/bench_writer" "$work/big.txt" "$1" >/dev/null 2>&1 || true
        heaptrack_print "$work"/ht.*zst 2>/dev/null | awk '/^calls to allocation functions:/ {print $5}'
        rm -f "$work"/ht.*
    }
    a=$(allocs "$lines"); b=$(allocs "$big")
    echo "heap allocations per line:          $(echo "scale=4; ($b - $a) / ($big - $lines)" | bc)   ($a for $lines lines, $b for $big; goal <= 0.01)"
fi
if command -v strace >/dev/null; then
    : > "$work/futex"
    for _ in $(seq "$runs"); do
        strace -f --seccomp-bpf -e trace=futex -c -o "$work/st" "$tc" "${run_args[@]}" --stats "$work/r.json" -- $writer >/dev/null 2>&1 || true
        calls=$(awk '$NF == "futex" {print $4}' "$work/st")
        echo "100 * $calls / $(stat_of "$work/r.json" events)" | bc -l >> "$work/futex"
    done
    echo "futex calls per 100 events:         $(summary < "$work/futex")   (goal <= 1)"
fi

# Memory: 200 workers flooding at once (every event delivered), and a 1 GiB line under run.
python3 "$here/gen_workload.py" 10000 > "$work/w10k.txt"
cat > "$work/many.yaml" <<YAML
overflow: block
passthrough: none
pools:
  - name: many
    command: ["$build/bench/bench_writer", "$work/w10k.txt"]
    instances: 200
    restart: never
YAML
/usr/bin/time -o "$work/t" -f "%e %M" "$tc" run --config "$work/many.yaml" -o jsonl 2>/dev/null | wc -l > "$work/count"
read -r many_wall many_rss < "$work/t"
delivered=$(( $(cat "$work/count") - 400 ))  # minus 200 spawned + 200 terminated events
expected=$(( 200 * $(grep -c '^TELEMETRY:' "$work/w10k.txt") ))
echo "200 workers x 10,000 lines, block:  $delivered of $expected events in $many_wall s, peak RSS $((many_rss / 1024)) MiB   (goal <= 32 MiB)"
for prefix in "" "TELEMETRY:"; do
    /usr/bin/time -o "$work/t" -f "%M" "$tc" run --passthrough "$work/pass" -o null -- \
        sh -c "{ printf '$prefix'; head -c 1073741824 /dev/zero | tr '\\0' x; echo; } >&2" 2>/dev/null || true
    echo "1 GiB line under run (${prefix:-plain}): peak RSS $(( $(cat "$work/t") / 1024 )) MiB, passed through $(stat -c %s "$work/pass") bytes   (goal <= 16 MiB)"
    rm -f "$work/pass"
done
