#!/usr/bin/env bash
# Hosts that connect to -o unix:PATH and never read. Usage:
#   bench/stalled_hosts.sh [BUILD_DIR] [HOSTS] [RUNS] [UNIX_OPTIONS]
# A worker writes 200,000 telemetry lines (tests/fixtures/write_lines) once HOSTS connections
# are open (default 50) to telecap run -o unix:SOCK[?UNIX_OPTIONS] -o jsonl:FILE. Prints, per run,
# telecap's peak RSS (VmHWM, sampled every 20 ms while it runs) and the share of events the jsonl
# output did not get (dropped.queue_full; the jsonl output's own stream never drops here).
set -euo pipefail
build=${1:-build}
hosts=${2:-50}
runs=${3:-5}
query=${4:+?$4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/hosts.py" <<'PY'
import os, socket, sys, time
path, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
while not os.path.exists(path):
    time.sleep(0.01)
held = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # never reads; refused ones just see EOF
    held.append(s)
open(ready, "w").close()
time.sleep(600)
PY

for run in $(seq "$runs"); do
    d="$work/$run"
    mkdir -p "$d"
    python3 "$work/hosts.py" "$d/s.sock" "$hosts" "$d/ready" &
    hp=$!
    "$build/telecap" run -o "unix:$d/s.sock$query" -o "jsonl:$d/x.jsonl" --stats "$d/stats.json" \
        --passthrough none -- sh -c "while [ ! -e '$d/ready' ]; do sleep 0.01; done; \
        exec '$build/tests/fixture_write_lines' 200000" 2>"$d/err.log" &
    tp=$!
    hwm=0
    while kill -0 "$tp" 2>/dev/null; do
        v=$(awk '/^VmHWM/ {print $2}' "/proc/$tp/status" 2>/dev/null || true)
        [ -n "$v" ] && hwm=$v
        sleep 0.02
    done
    wait "$tp" || true
    kill "$hp" 2>/dev/null || true
    wait "$hp" 2>/dev/null || true
    python3 - "$d/stats.json" "$hwm" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
out = s.get("outputs", {})
jsonl = next(v for k, v in out.items() if ":jsonl:" in k)
unix = next((v for k, v in out.items() if ":unix:" in k), {})
total = s["events"] + 2  # and the worker's spawned and terminated events
print(f"VmHWM {int(sys.argv[2]) / 1024:.1f} MiB, jsonl output missed "
      f"{100 * (1 - jsonl['events_accepted'] / total):.1f} % "
      f"(queue_full {s['dropped']['queue_full']}), unix {json.dumps(unix)}")
PY
done
