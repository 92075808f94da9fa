#!/usr/bin/env python3
"""A worker that emits RATE telemetry events per second for SECONDS (the OTLP logs benchmark).
Usage: paced_worker.py RATE SECONDS"""
import json
import sys
import time

rate, seconds = int(sys.argv[1]), float(sys.argv[2])
line = "TELEMETRY:" + json.dumps({
    "event": "python.call.stop", "measurements": {"duration": 1234567, "count": 1},
    "metadata": {"tool": "search", "session_id": "s1"}, "timestamp_ns": 1700000000000000000,
    "correlation_id": ""}) + "\n"
batch = max(1, rate // 100)  # 100 writes a second, each of `batch` lines
start = time.monotonic()
sent = 0
while sent < rate * seconds:
    sys.stderr.write(line * batch)
    sys.stderr.flush()
    sent += batch
    ahead = sent / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)  # pacing the load, not a handshake
