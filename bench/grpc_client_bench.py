#!/usr/bin/env python3
"""`telecap run --grpc` under load: WORKERS C++ gRPC test workers (bench_grpc_worker, one port
each by {port}) sending RATE events/s each for SECONDS, telecap dialling each with `-o null`.
Each run prints the events sent and received, the loss, telecap's CPU (its
process_cpu_seconds_total at exit, all threads: loop and gRPC's) per second of the workers'
sending, and its peak RSS; then the median and the best over RUNS runs.

Usage: grpc_client_bench.py BUILD_DIR [RATE [SECONDS [WORKERS [RUNS]]]]
       (defaults 100000 5 1 5)
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

build = sys.argv[1]
rate = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5
workers = int(sys.argv[4]) if len(sys.argv) > 4 else 1
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 5
worker = os.path.join(build, "bench", "bench_grpc_worker")


def one():
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        pass_path = os.path.join(tmp, "pass.log")
        r = subprocess.run(
            [os.path.join(build, "telecap"), "run", "--grpc", "127.0.0.1:{port}",
             "--instances", str(workers), "-o", "null", "--passthrough", pass_path,
             "--stats", stats_path, "--", worker, "{port}", str(rate), str(seconds)],
            capture_output=True, text=True, timeout=seconds * 10 + 60)
        if r.returncode != 0:
            sys.exit("telecap exited %d: %s" % (r.returncode, r.stderr))
        with open(stats_path) as f:
            st = json.load(f)
        with open(pass_path) as f:
            sends = [(int(m.group(1)), float(m.group(2)))
                     for m in re.finditer(r"sent (\d+) in ([\d.]+) s", f.read())]
    m = st["metrics"]
    sent = sum(n for n, _ in sends)
    took = max(t for _, t in sends)
    got = st["events"]
    cpu = m["process_cpu_seconds_total"]
    rss = m["process_max_resident_memory_bytes"] / (1 << 20)
    return {"sent": sent, "received": got, "lost": sent - got, "took": took,
            "rate": sent / took, "cores": cpu / took, "cpu": cpu, "rss_mib": rss,
            "workers": len(sends)}


results = []
for i in range(runs):
    res = one()
    results.append(res)
    print("run %d: %d workers, sent %d in %.2f s (%.0f events/s), received %d, lost %d, "
          "telecap %.2f s CPU = %.2f cores, peak RSS %.1f MiB"
          % (i + 1, res["workers"], res["sent"], res["took"], res["rate"], res["received"],
             res["lost"], res["cpu"], res["cores"], res["rss_mib"]), flush=True)
for key, unit in (("cores", "cores"), ("rss_mib", "MiB"), ("rate", "events/s")):
    vals = [r[key] for r in results]
    best = max(vals) if key == "rate" else min(vals)
    print("%s: median %.2f, best %.2f %s" % (key, statistics.median(vals), best, unit))
print("lost: %s" % [r["lost"] for r in results])
