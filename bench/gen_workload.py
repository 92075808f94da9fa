#!/usr/bin/env python3
"""Writes the standard workload: N lines (default 1,000,000); every fifth a plain log line,
the others ~210-byte TELEMETRY: lines shaped like Snakepit's StderrBackend output
(json.dumps defaults: ", " and ": " separators). Deterministic for a given seed.
Usage: gen_workload.py [N] [--stderr]   (--stderr: act as a worker, one write per line)"""
import json
import random
import sys


def lines(n, seed=1):
    rng = random.Random(seed)
    events = [
        ("tool.execution.start", lambda: {"count": 1, "system_time": rng.randrange(10**9, 10**10)}),
        ("tool.execution.stop", lambda: {"duration": rng.randrange(1, 10**9), "count": 1}),
        ("python.call.stop", lambda: {"duration": rng.randrange(1, 10**9), "count": 1}),
        ("python.memory.sampled", lambda: {"rss_bytes": rng.randrange(10**6, 10**9), "vms_bytes": rng.randrange(10**6, 10**9)}),
    ]
    tools = ["search", "embed", "rank", "parse"]
    for i in range(n):
        if i % 5 == 4:
            yield "INFO worker[%d] processed request %08x in %d ms (queue depth %d)\n" % (
                rng.randrange(100), rng.getrandbits(32), rng.randrange(1000), rng.randrange(50))
            continue
        name, meas = events[i % 4]
        payload = {
            "event": name,
            "measurements": meas(),
            "metadata": {"tool": rng.choice(tools), "session_id": "s%04x" % rng.getrandbits(16)},
            "timestamp_ns": 1700000000000000000 + i * 1000,
            "correlation_id": "%08x" % rng.getrandbits(32),
        }
        yield "TELEMETRY:" + json.dumps(payload) + "\n"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    if "--stderr" in sys.argv:
        # As a worker would: one write(2) per line on stderr, as the emitters do.
        import os
        for line in lines(n):
            os.write(2, line.encode())
        return
    out = sys.stdout
    buf = []
    for line in lines(n):
        buf.append(line)
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))


if __name__ == "__main__":
    main()
