#!/usr/bin/env python3
"""What emit() costs a Python worker when telemetry is switched off with `telecap ctl`.

A worker does about 5 us of its own work per iteration (a small json.dumps) for 100,000
iterations, with and without an emit() call in each, under `telecap run --telemetry-fd 3
--control SOCK`. With emit(), the bench first runs `telecap ctl toggle off` and the worker waits
until its emitter has applied it (the control pipe); the worker then measures its own CPU time
(time.process_time) over the loop only. Runs are interleaved and each variant keeps its best,
as bench/cpu_time.py does, since CPU time on a shared VM moves from minute to minute.

    python3 bench/emitter_off_bench.py [build/telecap] [runs]
"""
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
N = 100_000

WORKER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import telecap_emit
mode = sys.argv[2]
if mode == "emit":
    deadline = time.monotonic() + 20
    while telecap_emit.controls()["enabled"] and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not telecap_emit.controls()["enabled"], "the toggle never came"
emit = telecap_emit.emit
dumps = json.dumps
doc = {"tool": "search", "query": "telemetry capture", "limit": 10, "scores": [0.5, 0.25, 0.125],
       "nested": {"a": 1, "b": [1, 2, 3], "c": "x" * 40}}
t0 = time.process_time()
if mode == "emit":
    for i in range(%d):
        doc["limit"] = i
        dumps(doc)
        emit("tool.execution.stop", {"duration": i}, {"tool": "search"})
else:
    for i in range(%d):
        doc["limit"] = i
        dumps(doc)
print(time.process_time() - t0, flush=True)
""" % (N, N)


def run(telecap, mode):
    d = tempfile.mkdtemp(prefix="telecap-bench-")
    sock = os.path.join(d, "ctl.sock")
    script = os.path.join(d, "worker.py")
    with open(script, "w") as f:
        f.write(WORKER)
    p = subprocess.Popen([telecap, "run", "--telemetry-fd", "3", "--control", sock,
                          "-o", "jsonl:/dev/null", "--", sys.executable, script,
                          os.path.join(REPO, "adapters", "emitters", "python"), mode],
                         stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.005)
    if mode == "emit":
        subprocess.run([telecap, "ctl", "--socket", sock, "toggle", "off"], check=True,
                       stdout=subprocess.DEVNULL)
    out, _ = p.communicate(timeout=120)
    return float(out.strip().splitlines()[-1])


def main():
    telecap = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build", "telecap")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    best = {"none": float("inf"), "emit": float("inf")}
    for _ in range(runs):
        for mode in ("none", "emit"):
            best[mode] = min(best[mode], run(telecap, mode))
    base, off = best["none"], best["emit"]
    print("worker CPU over %d iterations (best of %d):" % (N, runs))
    print("  without emit():            %.3f s  (%.2f us per iteration)" % (base, base / N * 1e6))
    print("  emit(), telemetry off:     %.3f s  (%.2f us per iteration)" % (off, off / N * 1e6))
    print("  overhead: %+.1f %%  (%.0f ns per emit)" % ((off / base - 1) * 100,
                                                         (off - base) / N * 1e9))


if __name__ == "__main__":
    main()
