#!/usr/bin/env python3
"""The stderr worker of bench/grpc_bench.py: waits for one byte on stdin, then writes RATE
telemetry lines per second for SECONDS, in 100 writes a second, each line stamped with the wall
clock of its write (timestamp_ns), so the client can measure stderr write to receive.
Usage: grpc_worker.py RATE SECONDS"""
import os
import sys
import time

rate, seconds = int(sys.argv[1]), float(sys.argv[2])
template = ('TELEMETRY:{"event": "python.call.stop", "measurements": {"duration": 1234567, '
            '"count": 1}, "metadata": {"tool": "search", "session_id": "s1"}, '
            '"timestamp_ns": %d, "correlation_id": ""}\n')
batch = max(1, rate // 100)
os.read(0, 1)
start = time.monotonic()
sent = 0
out = sys.stderr.buffer
while sent < rate * seconds:
    out.write((template % time.time_ns()).encode() * batch)
    out.flush()
    sent += batch
    ahead = sent / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)  # pacing the load, not a handshake
