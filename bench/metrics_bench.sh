#!/usr/bin/env bash
# The metrics exporters' figures for the README: parse CPU with the default metrics and
# -o prometheus against -o null, a scrape of 20,000 series, and the CPU of -o otlp-logs at
# 10,000 events/s. Usage: bench/metrics_bench.sh [BUILD_DIR] (a Release build with benchmarks).
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
tc="$build/telecap"
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 "$here/gen_workload.py" > "$work/workload.txt"
head -n 200000 "$work/workload.txt" > "$work/w200k.txt"
runs=${TELECAP_BENCH_RUNS:-11}
ratio() { echo "scale=2; $1 / $2" | bc; }

null_cmd="$tc parse -o null --passthrough none $work/workload.txt"
prom_cmd="$tc parse -o prometheus:127.0.0.1:0 --passthrough none $work/workload.txt"
{ read -r null_cpu; read -r prom_cpu; } < <(python3 "$here/cpu_time.py" "$runs" "$null_cmd" "$prom_cmd")
echo "| parse, 1,000,000 lines, default metrics | CPU s (best of $runs) | vs -o null |"
echo "|---|---|---|"
echo "| -o null | $null_cpu | 1.00x |"
echo "| -o prometheus | $prom_cpu | $(ratio "$prom_cpu" "$null_cpu")x |"
if command -v valgrind >/dev/null; then
    irs() { valgrind --tool=callgrind --callgrind-out-file="$work/cg" "$@" >/dev/null 2>&1 || true
            callgrind_annotate "$work/cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }
    null_ir=$(irs $tc parse -o null --passthrough none "$work/w200k.txt")
    prom_ir=$(irs $tc parse -o prometheus:127.0.0.1:0 --passthrough none "$work/w200k.txt")
    echo "| instructions, 200,000 lines: -o null / -o prometheus | $((null_ir / 1000000))M / $((prom_ir / 1000000))M | $(ratio "$prom_ir" "$null_ir")x |"
fi
echo

"$build/bench/bench_metrics" --benchmark_min_time=0.5 2>/dev/null | grep -E "^bm_"
echo

# -o otlp-logs at 10,000 events/s for 10 s: telecap's own CPU (process_cpu_seconds_total in
# --stats) with and without the output, against a local receiver.
python3 "$here/sink_receiver.py" > "$work/port" &
pids+=($!)
while [ ! -s "$work/port" ]; do sleep 0.05; done
port=$(cat "$work/port")
worker="python3 $here/paced_worker.py 10000 10"
cpu_of() { grep -oE '"process_cpu_seconds_total":[0-9.e+-]+' "$1" | cut -d: -f2; }
"$tc" run -o null --passthrough none --stats "$work/a.json" -- $worker
"$tc" run -o null -o "otlp-logs:http://127.0.0.1:$port" --passthrough none \
    --stats "$work/b.json" -- $worker
a=$(cpu_of "$work/a.json"); b=$(cpu_of "$work/b.json")
sent=$(grep -oE '"events_sent":[0-9]+' "$work/b.json" | head -1 | cut -d: -f2)
echo "| run, 10,000 events/s for 10 s | telecap CPU s | share of one core |"
echo "|---|---|---|"
echo "| -o null | $a | $(echo "scale=3; $a / 10" | bc) |"
echo "| -o null -o otlp-logs | $b | $(echo "scale=3; $b / 10" | bc) |"
echo "| the OTLP logs exporter alone | $(echo "$b - $a" | bc) | $(echo "scale=3; ($b - $a) / 10" | bc) |"
echo "events sent as log records: $sent of 100000"
