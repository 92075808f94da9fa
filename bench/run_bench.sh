#!/usr/bin/env bash
# The benchmarks behind the README's performance table. Usage: bench/run_bench.sh [BUILD_DIR]
# Needs a Release build with -DTELECAP_BUILD_BENCH=ON. Each figure is the best of 3 runs.
set -euo pipefail
build=${1:-build-bench}
here=$(cd "$(dirname "$0")" && pwd)
tc="$build/telecap"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/gen_workload.py" > "$work/workload.txt"

# best of 3: "user+sys seconds" "wall seconds" "peak RSS KiB"
measure() {
    local best_cpu="" best_wall="" best_rss=""
    for _ in 1 2 3; do
        /usr/bin/time -o "$work/t" -f "%U %S %e %M" "$@" >/dev/null 2>&1 || true
        read -r u s e m < "$work/t"
        local cpu; cpu=$(echo "$u + $s" | bc)
        if [ -z "$best_cpu" ] || (( $(echo "$cpu < $best_cpu" | bc) )); then best_cpu=$cpu; fi
        if [ -z "$best_wall" ] || (( $(echo "$e < $best_wall" | bc) )); then best_wall=$e; fi
        if [ -z "$best_rss" ] || (( m > best_rss )); then best_rss=$m; fi
    done
    echo "$best_cpu $best_wall $best_rss"
}
ratio() { echo "scale=2; $1 / $2" | bc; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "compiler: $(c++ --version | head -1); flags: CMAKE_BUILD_TYPE=Release (-O3 -DNDEBUG)"
echo

# CPU time: best of 11 interleaved runs each (bench/cpu_time.py); peak RSS from /usr/bin/time.
runs=${TELECAP_BENCH_RUNS:-11}
bare_cmd="$build/bench/bench_bare_loop $work/workload.txt"
null_cmd="$tc parse -o null --passthrough none $work/workload.txt"
jsonl_cmd="$tc parse -o jsonl:/dev/null --passthrough none $work/workload.txt"
{ read -r bare_cpu; read -r null_cpu; read -r jsonl_cpu; } < <(
    python3 "$here/cpu_time.py" "$runs" "$bare_cmd" "$null_cmd" "$jsonl_cmd")
read -r _ _ bare_rss < <(measure $bare_cmd)
read -r _ _ null_rss < <(measure $null_cmd)
read -r _ _ jsonl_rss < <(measure $jsonl_cmd)
echo "| parse, 1,000,000 lines | CPU s (best of $runs) | vs bare loop | peak RSS |"
echo "|---|---|---|---|"
echo "| bare loop (frame + RapidJSON, null handler) | $bare_cpu | 1.00x | $((bare_rss / 1024)) MiB |"
echo "| telecap parse -o null | $null_cpu | $(ratio "$null_cpu" "$bare_cpu")x | $((null_rss / 1024)) MiB |"
echo "| telecap parse -o jsonl (to /dev/null) | $jsonl_cpu | $(ratio "$jsonl_cpu" "$bare_cpu")x | $((jsonl_rss / 1024)) MiB |"

# Instruction counts (callgrind) over the same 1,000,000 lines: repeatable where CPU time on a
# shared VM is not. About three minutes.
if command -v valgrind >/dev/null; then
    irs() { valgrind --tool=callgrind --callgrind-out-file="$work/cg" "$@" >/dev/null 2>&1 || true
            callgrind_annotate "$work/cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }
    bare_ir=$(irs $bare_cmd)
    null_ir=$(irs $null_cmd)
    jsonl_ir=$(irs $jsonl_cmd)
    echo "| instructions: bare / -o null / -o jsonl | $((bare_ir / 1000000))M / $((null_ir / 1000000))M / $((jsonl_ir / 1000000))M | $(ratio "$null_ir" "$bare_ir")x / $(ratio "$jsonl_ir" "$bare_ir")x | |"
fi

# A 1 GiB line without a newline, plain and telemetry: memory must stay bounded.
read -r _ _ huge_rss < <(measure sh -c "head -c 1073741824 /dev/zero | tr '\\0' x | $tc parse -o null --passthrough none")
read -r _ _ hugetel_rss < <(measure sh -c "{ printf TELEMETRY:; head -c 1073741824 /dev/zero | tr '\\0' x; } | $tc parse -o null --passthrough none")
echo "| 1 GiB line, no newline (plain / telemetry) | | | $((huge_rss / 1024)) / $((hugetel_rss / 1024)) MiB |"
echo

# telecap run against cat: the same worker (bench_writer: one write(2) per line, as fast as it
# can) with its stderr drained by cat, and under telecap run --overflow block with every event
# written as JSON lines. Wall time, and CPU per event: telecap's own (process_cpu_seconds_total
# from --stats, without the worker's) against parse's on the same lines.
writer="$build/bench/bench_writer $work/workload.txt"
read -r _ cat_wall _ < <(measure sh -c "$writer 2>&1 >/dev/null | cat >/dev/null")
read -r _ runw_wall runw_rss < <(measure "$tc" run --overflow block --passthrough none \
    -o jsonl:/dev/null --stats "$work/runw.json" -- $writer)
events=$(grep -oE '"events":[0-9]+' "$work/runw.json" | head -n 1 | cut -d: -f2)
run_cpu=$(grep -oE '"process_cpu_seconds_total":[0-9.e+-]+' "$work/runw.json" | cut -d: -f2)
"$tc" parse --passthrough none -o jsonl:/dev/null --stats "$work/parse.json" "$work/workload.txt"
parse_cpu=$(grep -oE '"process_cpu_seconds_total":[0-9.e+-]+' "$work/parse.json" | cut -d: -f2)
echo "| run vs cat | wall s (best of 3) | ratio | peak RSS |"
echo "|---|---|---|---|"
echo "| bench_writer, stderr drained by cat | $cat_wall | 1.00x | |"
echo "| same under telecap run --overflow block -o jsonl | $runw_wall | $(ratio "$runw_wall" "$cat_wall")x | $((runw_rss / 1024)) MiB |"
echo "events delivered: $events of 800000; dropped: $(grep -oE '"dropped":\{[^}]*\}' "$work/runw.json")"
echo "CPU per event: run $(echo "scale=0; $run_cpu * 1000000000 / $events" | bc) ns, parse $(echo "scale=0; $parse_cpu * 1000000000 / 800000" | bc) ns"
echo

worker="python3 $here/gen_workload.py --stderr"
read -r _ alone_wall _ < <(measure sh -c "$worker 2>/dev/null")
read -r _ run_wall run_rss < <(measure sh -c "$tc run -o null --passthrough none -- $worker")
echo "| run | wall s | vs worker alone | peak RSS |"
echo "|---|---|---|---|"
echo "| Python worker writing the workload to /dev/null | $alone_wall | 1.00x | |"
echo "| same worker under telecap run -o null | $run_wall | $(ratio "$run_wall" "$alone_wall")x | $((run_rss / 1024)) MiB |"

# 200 flooding workers (events delivered, peak RSS): bench/intake_bench.sh.

# 200 workers that each hold a 900 KB partial line (no newline yet): memory is bounded by the
# line budget (default 8 MiB), not by workers x max_line.
cat > "$work/partial.sh" <<'SH'
#!/bin/sh
head -c 900000 /dev/zero | tr '\0' x >&2
sleep 4
SH
chmod +x "$work/partial.sh"
for budget in 8388608 17179869184; do
    /usr/bin/time -o "$work/t" -f "%M" "$tc" run --instances 200 --line-budget "$budget" -o null \
        --passthrough none -- "$work/partial.sh" 2>/dev/null || true
    echo "| 200 workers x 900 KB partial line, --line-budget $budget | peak RSS $(( $(cat "$work/t") / 1024 )) MiB |"
done
