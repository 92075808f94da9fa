"""A stderr worker for the gRPC bridge's tests: it emits through the project's Python emitter
(adapters/emitters/python/telecap_emit.py) when the test tells it to, one byte on stdin per
step, so the test first connects its gRPC clients and then lets the events flow.

    worker.py table        one step: every catalog event and every value and metadata type
    worker.py bursts N K   N steps of K python.call.start events (count 0..K-1)
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "adapters", "emitters", "python"))
import telecap_emit  # noqa: E402


def step():
    # One byte, unbuffered: workers sharing the pipe take one step each.
    if os.read(0, 1) == b"":
        sys.exit(0)


def table():
    emit = telecap_emit.emit
    emit("python.call.start", {"count": 1}, {"command": "predict", "flag": True}, "c-1")
    emit("python.call.stop", {"duration": 2.5, "count": 1}, {"none": None, "ratio": 1.5}, "")
    emit("python.call.exception", {"count": 1}, {"error_type": "ValueError", "n": 3})
    emit("python.memory.sampled", {"rss_bytes": 1 << 40, "vms_bytes": -1})
    emit("python.cpu.sampled", {"cpu_percent": 12.25}, {"nested": [1, 2]})
    emit("python.gc.completed", {"collected": True, "generation": False})
    emit("python.error.occurred", {"count": 1}, {"error_message": "caf\u00e9 \u2603"})
    emit("tool.execution.start", {"count": 1, "bytes": "12k"}, {"tool": "search"}, "c-2")
    emit("tool.execution.stop", {"duration": 1000, "latency_ms": 0.5}, {"tool": "search"})
    emit("tool.execution.exception", {"duration": 7}, {"error_type": "KeyError"})
    emit("tool.result_size", {"bytes": 123}, {"worker_pid": 42})
    emit("no.such.event", {"count": 1})           # unknown: rejected, on no output
    emit("python.call.start", {"unknown_key": 1})  # unknown measurement: rejected


def bursts(n, k):
    for _ in range(n):
        step()
        for i in range(k):
            telecap_emit.emit("python.call.start", {"count": i}, {"seq": i})


if __name__ == "__main__":
    if sys.argv[1] == "table":
        step()
        table()
    else:
        bursts(int(sys.argv[2]), int(sys.argv[3]))
