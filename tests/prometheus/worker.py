"""A worker for the Prometheus test: emits a known set of events, then waits to be stopped."""
import json
import sys
import time

N = int(sys.argv[1])
HOSTILE = ['quote"d', "back\\slash", "new\nline", "caf\u00e9", "dots.in.name"]


def emit(event, measurements, metadata):
    payload = {"event": event, "measurements": measurements, "metadata": metadata,
               "timestamp_ns": time.time_ns(), "correlation_id": ""}
    sys.stderr.write("TELEMETRY:" + json.dumps(payload) + "\n")


for i in range(N):
    # 1 ms, 20 ms, 300 ms, 2 s in turn
    emit("python.call.stop", {"duration": [1_000_000, 20_000_000, 300_000_000, 2_000_000_000][i % 4],
                              "count": 1}, {})
for i, tool in enumerate(HOSTILE):
    emit("tool.execution.stop", {"duration": 5_000_000 * (i + 1), "count": 1}, {"tool": tool})
emit("python.memory.sampled", {"rss_bytes": 123456789, "vms_bytes": 987654321}, {})
sys.stderr.write("plain log line\n")
sys.stderr.flush()
sys.stdout.write("ready\n")
sys.stdout.flush()
time.sleep(600)
