#!/usr/bin/env bash
# parse CPU against the physical floor, in one interleaved run (bench/cpu_time.py):
#   limit simdjson (frame + parse with simdjson, /work/shared/bench/limit.cpp),
#   telecap parse -o null, telecap parse -o jsonl:/dev/null.
# Usage: bench/parse_bench.sh [BUILD_DIR] [WORKLOAD]   (env: RUNS=7, LIMIT=path to limit binary)
# Without WORKLOAD, 1,000,000 lines from gen_workload.py. Without LIMIT, limit.cpp is built
# (needs libsimdjson-dev); the limit row is skipped when neither is there.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
workload=${2:-}
if [ -z "$workload" ]; then
    workload="$work/workload.txt"
    python3 "$here/gen_workload.py" > "$workload"
fi
runs=${RUNS:-7}
limit=${LIMIT:-}
if [ -z "$limit" ] && [ -f /work/shared/bench/limit.cpp ] &&
    g++ -O2 -o "$work/limit" /work/shared/bench/limit.cpp -lsimdjson 2>/dev/null; then
    limit="$work/limit"
fi

tc="$build/telecap"
cmds=("$tc parse -o null --passthrough none $workload"
      "$tc parse -o jsonl:/dev/null --passthrough none $workload")
labels=("parse -o null" "parse -o jsonl:/dev/null")
if [ -n "$limit" ]; then
    cmds=("$limit simdjson < $workload" "${cmds[@]}")
    labels=("limit simdjson" "${labels[@]}")
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "workload: $(wc -l < "$workload") lines, $(wc -c < "$workload") bytes; $runs interleaved runs"
n=${#cmds[@]}
# Round by round: jsonl/null, and with the floor null/limit and jsonl/limit.
pairs="$((n - 1))/$((n - 2))"
[ -n "$limit" ] && pairs="$pairs,1/0,2/0"
mapfile -t res < <(python3 "$here/cpu_time.py" --median --pairs "$pairs" "$runs" "${cmds[@]}")
ratio() { echo "scale=2; $1 / $2" | bc; }
printf '%-26s %8s %8s\n' "CPU s (user+sys)" best median
for i in "${!cmds[@]}"; do
    read -r b m <<< "${res[$i]}"
    printf '%-26s %8s %8s\n' "${labels[$i]}" "$b" "$m"
done
read -r jb jm <<< "${res[$((n - 1))]}"
read -r nb nm <<< "${res[$((n - 2))]}"
echo "jsonl / null:   best $(ratio "$jb" "$nb")x  median $(ratio "$jm" "$nm")x"
if [ -n "$limit" ]; then
    read -r lb lm <<< "${res[0]}"
    echo "null / limit:   best $(ratio "$nb" "$lb")x  median $(ratio "$nm" "$lm")x"
    echo "jsonl / limit:  best $(ratio "$jb" "$lb")x  median $(ratio "$jm" "$lm")x"
fi
echo "round by round (median, quartiles):"
for line in "${res[@]:$n}"; do
    read -r pair m q1 q3 <<< "$line"
    case $pair in
        "$((n - 1))/$((n - 2))") name="jsonl / null" ;;
        1/0) name="null / limit" ;;
        2/0) name="jsonl / limit" ;;
    esac
    printf '  %-14s %sx  (%s-%s)\n' "$name:" "$m" "$q1" "$q3"
done
