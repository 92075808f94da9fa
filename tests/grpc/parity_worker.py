"""One table of emits, sent two ways, for telecap's parity test (tests/grpc/test_grpc_client.py):

    parity_worker.py stderr            through the project's Python stderr emitter
                                       (adapters/emitters/python/telecap_emit.py)
    parity_worker.py grpc PORT [CASES] as a Snakepit Python gRPC worker: serves
                                       /snakepit.bridge.BridgeService/StreamTelemetry on
                                       127.0.0.1:PORT, and to the first call that opens with
                                       toggle(enabled=true) sends the table, encoded as
                                       Snakepit's worker encodes (event_parts = the name split on
                                       "."; bool -> int_value, int -> int_value, float ->
                                       float_value, else string_value of str(); metadata str()'d;
                                       correlation_id "" when none), ends the stream with OK and
                                       exits. CASES: "parity" (default), "malformed", or "hold"
                                       (one event, then the stream stays open until SIGTERM).

Each control the worker receives is written to stderr as `CONTROL {json}` (a plain log line).
Runs under Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf); TELECAP_GRPC_STUBS: the
directory of the stubs generated from bridge/snakepit_bridge.proto.
"""

import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "adapters", "emitters", "python"))

NAN = float("nan")
INF = float("inf")

# (event, measurements, metadata, correlation_id): every rule of the reference, as far as the
# two paths agree on it. Where Snakepit's gRPC encoder and the stderr path differ by design
# (docs/grpc.md "Client"): a null, list or dict measurement (str()'d on the gRPC path, rejected
# as bad_measurement from stderr) and nested metadata (Python's repr vs compact JSON).
PARITY = [
    # every catalog event
    ("python.call.start", {"count": 1}, {"command": "predict"}, "c-1"),
    ("python.call.stop", {"duration": 2500, "count": 1}, {"command": "predict"}, "c-1"),
    ("python.call.exception", {"count": 1}, {"error_type": "ValueError"}, None),
    ("python.memory.sampled", {"rss_bytes": 1 << 40, "vms_bytes": -1}, {}, None),
    ("python.cpu.sampled", {"cpu_percent": 12.25}, {}, None),
    ("python.gc.completed", {"collected": 3, "generation": 2}, {}, None),
    ("python.error.occurred", {"count": 1}, {"error_message": "caf\u00e9 \u2603"}, None),
    ("tool.execution.start", {"count": 1}, {"tool": "search"}, "c-2"),
    ("tool.execution.stop", {"duration": 1000, "latency_ms": 0.5}, {"tool": "search"}, "c-2"),
    ("tool.execution.exception", {"duration": 7}, {"error_type": "KeyError"}, None),
    ("tool.result_size", {"bytes": 123}, {"worker_pid": 42}, None),
    # measurement values: int, float, string, bool
    ("python.call.stop", {"duration": 0, "count": -5}, {}, None),
    ("python.call.stop", {"duration": 9223372036854775807, "count": -9223372036854775808}, {},
     None),
    ("python.cpu.sampled", {"cpu_percent": 1.0}, {}, None),  # a float with an integer value
    ("python.cpu.sampled", {"cpu_percent": 1e16}, {}, None),
    ("python.cpu.sampled", {"cpu_percent": 1.5e-7}, {}, None),
    ("python.cpu.sampled", {"cpu_percent": -0.0}, {}, None),
    ("python.cpu.sampled", {"cpu_percent": 0.1 + 0.2}, {}, None),
    ("python.cpu.sampled", {"cpu_percent": NAN}, {}, None),
    ("python.cpu.sampled", {"cpu_percent": INF}, {}, None),
    ("python.cpu.sampled", {"cpu_percent": -INF}, {}, None),
    ("tool.execution.start", {"count": 1, "bytes": "12k"}, {}, None),
    ("tool.execution.start", {"count": 1, "bytes": ""}, {}, None),
    ("python.gc.completed", {"collected": True, "generation": False}, {}, None),
    # the measurement allowlist: an unknown key rejects the whole event (unknown_measurement)
    ("python.call.start", {"unknown_key": 1}, {}, None),
    ("python.call.start", {"count": 1, "also_unknown": 2.5}, {}, None),
    # metadata of every type: str()'d
    ("python.call.start", {"count": 1},
     {"s": "text", "i": 42, "neg": -7, "big": 1 << 63, "f": 1.5, "f1": 1.0, "e": 1e16,
      "tiny": 1e-7, "t": True, "fa": False, "n": None, "nan": NAN, "inf": INF, "ninf": -INF,
      "empty": "", "uni": "\u2603 \U0001F600", "ctl": "a\tb\nc"}, None),
    # known and unknown metadata keys; the host's keys replace the worker's
    ("python.call.start", {"count": 1},
     {"session_id": "s1", "model": "m", "not_in_catalog": "kept", "node": "evil",
      "worker_id": "evil", "pool_name": "evil"}, None),
    # unknown events: rejected (unknown_event)
    ("no.such.event", {"count": 1}, {}, None),
    ("python.call", {"count": 1}, {}, None),
    ("snakepit.python.call.start", {"count": 1}, {}, None),
    # correlation ids: given, empty (-> null), missing (-> null)
    ("python.call.start", {"count": 1}, {}, "corr-\u00e9"),
    ("python.call.start", {"count": 1}, {}, ""),
    ("python.call.start", {"count": 1}, {}, None),
    # no measurements at all
    ("python.call.start", {}, {}, None),
    # the last one: the tests wait for it
    ("tool.result_size", {"bytes": 999}, {"tool": "end"}, "end"),
]


def emit_stderr():
    import telecap_emit
    for event, m, md, corr in PARITY:
        telecap_emit.emit(event, m, md, corr)


def encode(pb, event, measurements, metadata, corr):
    """A Snakepit Python gRPC worker's TelemetryEvent."""
    ev = pb.TelemetryEvent(event_parts=event.split("."), timestamp_ns=time.time_ns(),
                           correlation_id=corr or "")
    for k, v in measurements.items():
        tv = ev.measurements[k]
        if isinstance(v, bool):
            tv.int_value = int(v)
        elif isinstance(v, int):
            tv.int_value = v
        elif isinstance(v, float):
            tv.float_value = v
        else:
            tv.string_value = str(v)
    for k, v in metadata.items():
        ev.metadata[k] = str(v)
    return ev


def malformed(pb):
    """What no Snakepit worker sends, and telecap must reject and count."""
    out = []
    out.append(pb.TelemetryEvent(timestamp_ns=time.time_ns()))  # no event_parts: bad_shape
    ev = pb.TelemetryEvent(event_parts=["python", "call", "start"], timestamp_ns=time.time_ns())
    ev.measurements["count"].SetInParent()  # a TelemetryValue with no value: bad_measurement
    out.append(ev)
    out.append(pb.TelemetryEvent(event_parts=["python", "", "start"]))  # unknown_event
    ev = pb.TelemetryEvent(event_parts=["python", "call", "start"])      # no timestamp: accepted
    ev.measurements["count"].int_value = 1
    out.append(ev)
    out.append(encode(pb, "tool.result_size", {"bytes": 999}, {"tool": "end"}, "end"))
    return out


def serve_grpc(port, cases):
    sys.path.insert(0, os.environ["TELECAP_GRPC_STUBS"])
    from concurrent import futures

    import grpc
    from bridge import snakepit_bridge_pb2 as pb
    from bridge import snakepit_bridge_pb2_grpc as pb_grpc

    done = threading.Event()
    stop = threading.Event()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def log(text):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    class Service(pb_grpc.BridgeServiceServicer):
        def StreamTelemetry(self, request_iterator, context):
            first = next(request_iterator, None)
            log("CONTROL " + json.dumps(control_dict(first)))
            if first is None or first.WhichOneof("control") != "toggle" or \
                    not first.toggle.enabled:
                log("worker: the first control was not toggle(enabled=true)")
                return

            def read_rest():
                for c in request_iterator:
                    log("CONTROL " + json.dumps(control_dict(c)))
            threading.Thread(target=read_rest, daemon=True).start()
            context.add_callback(done.set)
            if cases == "hold":
                yield encode(pb, "python.call.start", {"count": 1}, {}, "held")
                stop.wait()
                return
            events = malformed(pb) if cases == "malformed" else \
                [encode(pb, *c) for c in PARITY]
            for ev in events:
                yield ev

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_BridgeServiceServicer_to_server(Service(), server)
    if server.add_insecure_port("127.0.0.1:%d" % port) == 0:
        log("worker: cannot listen on port %d" % port)
        sys.exit(3)
    server.start()
    if cases == "hold":
        stop.wait()
    else:
        done.wait()
    server.stop(grace=2).wait()


def control_dict(c):
    if c is None:
        return None
    kind = c.WhichOneof("control")
    if kind == "toggle":
        return {"toggle": c.toggle.enabled}
    if kind == "sampling":
        return {"sampling": c.sampling.sampling_rate,
                "patterns": list(c.sampling.event_patterns)}
    if kind == "filter":
        return {"allow": list(c.filter.allow), "deny": list(c.filter.deny)}
    return {"empty": True}


if __name__ == "__main__":
    if sys.argv[1] == "stderr":
        emit_stderr()
    else:
        serve_grpc(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "parity")
