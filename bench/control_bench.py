#!/usr/bin/env python3
"""The control figures (docs/control.md "Cost"): what the gates cost per captured line, and the
control socket's stats round trip under load.

Usage: bench/control_bench.py TELECAP_BIN [LINES]   (LINES: the workload, default 1,000,000)

1. CPU per captured line of `telecap run` (its own process_cpu_seconds_total from --stats, not
   the worker's) over the standard workload (bench/gen_workload.py), -o jsonl:/dev/null with
   --overflow block, without gates and with gates that remove most events: --sample 0.1 (90%)
   and --deny of three of the four event names. Best of 5 runs each, interleaved.
2. `{"cmd":"stats"}` round trips on the control socket while two workers send telecap the
   workload, in bursts of 1,000 lines every 25 ms, then as fast as they can (both cores saturated):
   200 requests on one connection (the protocol's own latency) and 20 `telecap ctl stats`
   processes (including their start-up). p50 / p99 / max in ms.
"""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))


def own_cpu(stats_path):
    text = open(stats_path).read()
    m = re.search(r'"process_cpu_seconds_total":([0-9.e+-]+)', text)
    lines = re.search(r'"lines":([0-9]+)', text)
    return float(m.group(1)), int(lines.group(1))


def gate_cost(tc, work, workload):
    variants = {
        "no gates": [],
        "--sample 0.1 (90% removed)": ["--sample", "0.1"],
        "--deny 3 of 4 names (60% of lines removed)": [
            "--deny", "tool.*", "--deny", "python.memory.*"],
    }
    best = {k: None for k in variants}
    for _ in range(5):
        for name, flags in variants.items():
            stats = os.path.join(work, "s.json")
            subprocess.run([tc, "run", "--overflow", "block", "--passthrough", "none",
                            "-o", "jsonl:/dev/null", "--stats", stats, *flags, "--",
                            "sh", "-c", f"cat {workload} >&2"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cpu, lines = own_cpu(stats)
            if best[name] is None or cpu < best[name][0]:
                best[name] = (cpu, lines)
    print("| telecap run -o jsonl:/dev/null | own CPU s (best of 5) | ns per captured line |")
    print("|---|---|---|")
    for name, (cpu, lines) in best.items():
        print(f"| {name} | {cpu:.3f} | {cpu / lines * 1e9:.0f} |")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def stats_latency(tc, work, workload, label, worker):
    sock = os.path.join(work, "ctl.sock")
    proc = subprocess.Popen([tc, "run", "--control", sock, "--instances", "2",
                             "--passthrough", "none", "-o", "jsonl:/dev/null", "--stats",
                             os.path.join(work, "load.json"), "--", "sh", "-c", worker],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if time.monotonic() > deadline:
                raise SystemExit("no control socket")
            time.sleep(0.01)
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        f = s.makefile("rb")
        raw = []
        size = 0
        for _ in range(200):
            t0 = time.perf_counter()
            s.sendall(b'{"cmd":"stats"}\n')
            line = f.readline()
            raw.append((time.perf_counter() - t0) * 1000)
            reply = json.loads(line)
            assert reply["ok"], reply
            size = len(line)
        s.close()
        cli = []
        for _ in range(20):
            t0 = time.perf_counter()
            subprocess.run([tc, "ctl", "--socket", sock, "stats"], check=True,
                           stdout=subprocess.DEVNULL)
            cli.append((time.perf_counter() - t0) * 1000)
        print()
        print(f"| stats round trip, {label} (reply {size} bytes) | p50 ms | p99 ms | max ms |")
        print("|---|---|---|---|")
        print(f"| socket, 200 requests | {statistics.median(raw):.2f} | {pct(raw, 99):.2f} | "
              f"{max(raw):.2f} |")
        print(f"| telecap ctl stats, 20 processes | {statistics.median(cli):.2f} | "
              f"{pct(cli, 99):.2f} | {max(cli):.2f} |")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    cpu, lines = own_cpu(os.path.join(work, "load.json"))
    secs = time.monotonic() - started
    print(f"(telecap captured {lines} lines in {secs:.1f} s meanwhile, {lines / secs:,.0f} "
          f"lines/s, {cpu:.2f} s of its own CPU)")


def main():
    tc = sys.argv[1]
    n = sys.argv[2] if len(sys.argv) > 2 else "1000000"
    with tempfile.TemporaryDirectory() as work:
        workload = os.path.join(work, "workload.txt")
        with open(workload, "w") as out:
            subprocess.run([sys.executable, os.path.join(here, "gen_workload.py"), n],
                           stdout=out, check=True)
        print(f"machine: {os.cpu_count()} cores; workload: {n} lines")
        gate_cost(tc, work, workload)
        head = os.path.join(work, "head.txt")
        with open(workload) as src, open(head, "w") as out:
            for i, line in zip(range(1000), src):
                out.write(line)
        # Bursts with pauses: a busy but not saturated machine.
        stats_latency(tc, work, workload, "2 workers writing 1,000 lines every 25 ms",
                      f"while :; do cat {head} >&2; sleep 0.025; done")
        # As fast as `cat` writes: both cores busy (the workers, telecap's loop and dispatch).
        stats_latency(tc, work, workload, "2 workers flooding (cores saturated)",
                      f"while :; do cat {workload} >&2; done")


if __name__ == "__main__":
    main()
