#!/usr/bin/env python3
"""The `-o grpc` server under load: one stderr worker (bench/grpc_worker.py) at RATE events/s
for SECONDS, under `telecap run -o grpc:127.0.0.1:0`, and one reading C++ client
(bench_grpc_client). Prints the events sent and received, the drops, telecap's CPU (its
process_cpu_seconds_total at exit, all its threads: loop, dispatch, gRPC's) per second of
load, the latency from the worker's write to the client's receive, and the bursts held in the
worker's pipe while the stream was behind (drop-newest: docs/run.md).

Usage: grpc_bench.py BUILD_DIR [RATE [SECONDS [OPTIONS [WRITES [OVERFLOW [DISPATCH [HOLD]]]]]]]
       (defaults 100000 10 "" 1000 drop-newest loop, run's own --burst-hold)
OPTIONS: the output's options, e.g. "?queue=8192". WRITES: the worker's writes per second
(RATE/WRITES lines each); 100 is the burst case (1,000 lines a write at 100,000/s). OVERFLOW:
run's --overflow. "worker_lag_ms" is the furthest the worker fell behind its schedule (a stall
of the machine, or telecap holding it back), "worker_s" how long it took to write its lines.
DISPATCH: run's --dispatch (loop: the outputs on the loop thread; thread: on a thread of their
own). HOLD: run's --burst-hold in seconds (0: the burst is not held in the pipe).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

build = sys.argv[1]
rate = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10
options = sys.argv[4] if len(sys.argv) > 4 else ""
writes = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
overflow = sys.argv[6] if len(sys.argv) > 6 else "drop-newest"
dispatch = sys.argv[7] if len(sys.argv) > 7 else "loop"
hold = ["--burst-hold", sys.argv[8]] if len(sys.argv) > 8 else []
here = os.path.dirname(os.path.abspath(__file__))
with tempfile.TemporaryDirectory() as tmp:
    stats_path = os.path.join(tmp, "stats.json")
    lag_path = os.path.join(tmp, "lag")
    os.environ["GRPC_WORKER_LAG"] = lag_path
    telecap = subprocess.Popen(
        [os.path.join(build, "telecap"), "--log-level", "info", "run",
         "-o", "grpc:127.0.0.1:0" + options, "--passthrough", "none", "--overflow", overflow,
         "--dispatch", dispatch, *hold,
         "--stats", stats_path, "--",
         sys.executable, os.path.join(here, "grpc_worker.py"), str(rate), str(seconds),
         str(writes)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = None
    for raw in telecap.stderr:
        m = re.search(rb"serving StreamTelemetry on (\S+)", raw)
        if m:
            address = m.group(1).decode()
            break
    if address is None:
        sys.exit("telecap did not serve")
    client = subprocess.Popen([os.path.join(build, "bench", "bench_grpc_client"), address],
                              stdout=subprocess.PIPE)
    assert client.stdout.readline().strip() == b"ready"
    telecap.stdin.write(b"g")
    telecap.stdin.close()
    telecap.stderr.read()
    rc = telecap.wait()
    result = json.loads(client.stdout.readline())
    client.wait()
    with open(stats_path) as f:
        stats = json.load(f)
    with open(lag_path) as f:
        lag, worker_s = (float(x) for x in f.read().split())
(grpc_key,) = [k for k in stats["outputs"] if ":grpc" in k]
g = stats["outputs"][grpc_key]
cpu = [v for k, v in stats["metrics"].items() if k.startswith("process_cpu_seconds_total")][0]
holds = {k: stats["metrics"].get("telecap_" + k + "_total", 0)
         for k in ("burst_holds", "burst_hold_overruns")}
print(json.dumps({"rate": rate, "seconds": seconds, "options": options, "writes_per_s": writes,
                  "telecap_rc": rc,
                  "events": stats["events"], "sent": g["events_sent"],
                  "dropped": g["events_dropped"], "received": result["received"],
                  "overflow": overflow, "dispatch": dispatch, "burst_hold": hold[1:],
                  **holds,
                  "worker_lag_ms": round(lag * 1000, 1), "worker_s": round(worker_s, 3), "telecap_cpu_s": round(cpu, 2), "cores": round(cpu / seconds, 3),
                  "latency_us": {k: result[k] for k in ("p50_us", "p99_us", "max_us")}}))
