#!/usr/bin/env python3
"""The stderr worker of bench/grpc_bench.py: waits for one byte on stdin, then writes RATE
telemetry lines per second for SECONDS, in WRITES writes a second (default 1,000: 100 lines a
write at 100,000 lines/s), each line stamped with the wall clock of its write (timestamp_ns), so
the client can measure stderr write to receive. WRITES=100 is the burst case: 1,000 lines a write
at 100,000/s, nearly the whole of a gRPC stream's 1,024-event queue in one read.
Usage: grpc_worker.py RATE SECONDS [WRITES]"""
import os
import sys
import time

rate, seconds = int(sys.argv[1]), float(sys.argv[2])
writes = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
template = ('TELEMETRY:{"event": "python.call.stop", "measurements": {"duration": 1234567, '
            '"count": 1}, "metadata": {"tool": "search", "session_id": "s1"}, '
            '"timestamp_ns": %d, "correlation_id": ""}\n')
batch = max(1, rate // writes)
os.read(0, 1)
start = time.monotonic()
sent = 0
lag = 0.0  # the furthest this worker fell behind its schedule, in seconds
out = sys.stderr.buffer
while sent < rate * seconds:
    out.write((template % time.time_ns()).encode() * batch)
    out.flush()
    sent += batch
    ahead = sent / rate - (time.monotonic() - start)
    lag = max(lag, -ahead)
    if ahead > 0:
        time.sleep(ahead)  # pacing the load, not a handshake
if os.environ.get("GRPC_WORKER_LAG"):
    with open(os.environ["GRPC_WORKER_LAG"], "w") as f:
        f.write("%.6f %.6f\n" % (lag, time.monotonic() - start))
