"""`telecap run -o grpc` end to end: stderr workers (tests/grpc/worker.py) under telecap, and
Python gRPC clients with stubs generated from the project's proto (bridge/snakepit_bridge.proto)
at build time. Runs under Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf).

TELECAP_BIN: the telecap binary; TELECAP_GRPC_STUBS: the directory of the generated stubs.
"""

import contextlib
import itertools
import json
import os
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.environ["TELECAP_GRPC_STUBS"])
import grpc  # noqa: E402
from bridge import snakepit_bridge_pb2 as pb  # noqa: E402
from bridge import snakepit_bridge_pb2_grpc as pb_grpc  # noqa: E402

TELECAP = os.environ["TELECAP_BIN"]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
WORKER = os.path.join(HERE, "worker.py")
WAIT = 30  # seconds: the bound of every wait (a failure, never a pace)


def catalog_wire_names():
    with open(os.path.join(ROOT, "capture", "snakepit_catalog.json")) as f:
        cat = json.load(f)
    return {tuple(v["event"]): k for k, v in cat["wire_events"].items()}


def toggle(on):
    return pb.TelemetryControl(toggle=pb.TelemetryToggle(enabled=on))


def as_dict(ev):
    """A received TelemetryEvent as plain data."""
    def value(v):
        return getattr(v, v.WhichOneof("value"))
    return {"event_parts": list(ev.event_parts),
            "measurements": {k: value(v) for k, v in ev.measurements.items()},
            "metadata": dict(ev.metadata),
            "timestamp_ns": ev.timestamp_ns,
            "correlation_id": ev.correlation_id}


def expected_from_jsonl(obj, wire_names):
    """What a Snakepit gRPC worker sends for the event telecap wrote as this JSON line, or None
    for an event no worker sends (the pool's lifecycle)."""
    wire = wire_names.get(tuple(obj["event"]))
    if wire is None:
        return None

    def s(v):
        return "None" if v is None else str(v)
    return {"event_parts": wire.split("."),
            "measurements": obj["measurements"],
            "metadata": {k: s(v) for k, v in obj["metadata"].items()
                         if k not in ("correlation_id", "timestamp_ns")},
            "timestamp_ns": obj["timestamp_ns"],
            "correlation_id": obj["correlation_id"] or ""}


class Control:
    """A running telecap's control socket (--control)."""

    def __init__(self, path):
        self.control = path

    def control_request(self, request):
        # The gRPC output says it serves before the control socket listens: the first request
        # may find no socket yet.
        deadline = time.monotonic() + WAIT
        with socket.socket(socket.AF_UNIX) as s:
            while True:
                try:
                    s.connect(self.control)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
            s.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def control_stats(self):
        return self.control_request({"cmd": "stats"})["metrics"]

    def control_status(self):
        return self.control_request({"cmd": "status"})

    def worker_controls(self):
        """Each worker's controls now, by worker id (ctl status)."""
        workers = self.control_request({"cmd": "status"})["workers"]
        return {w: v["controls"] for w, v in workers.items()}

    def until(self, what, check):
        """Waits for telecap's state (asked on its control socket) to pass `check`."""
        deadline = time.monotonic() + WAIT
        while True:
            state = what()
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError("telecap never got there: %s" % (state,))
            time.sleep(0.01)


class Telecap(Control):
    """telecap run with its gRPC output; the worker's steps go through telecap's stdin."""

    def __init__(self, tmp, worker_args, spec="grpc:127.0.0.1:0", extra=()):
        self.stats = os.path.join(tmp, "stats.json")
        self.jsonl = os.path.join(tmp, "events.jsonl")
        Control.__init__(self, os.path.join(tmp, "control.sock"))
        self.proc = subprocess.Popen(
            [TELECAP, "--log-level", "info", "run", "-o", spec, "-o", "jsonl:" + self.jsonl,
             "--passthrough", "none", "--stats", self.stats, "--control", self.control,
             *extra, "--", sys.executable, WORKER, *worker_args],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log = []
        found = queue.Queue()

        def read_log():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace")
                self.log.append(line)
                m = re.search(r"serving StreamTelemetry on (\S+)", line)
                if m:
                    found.put(m.group(1))
            found.put(None)
        self.reader = threading.Thread(target=read_log, daemon=True)
        self.reader.start()
        self.address = found.get(timeout=WAIT)
        if self.address is None:
            raise AssertionError("telecap did not serve: " + "".join(self.log))

    def step(self, n=1):
        self.proc.stdin.write(b"g" * n)
        self.proc.stdin.flush()

    def wait(self):
        self.proc.stdin.close()
        rc = self.proc.wait(timeout=WAIT)
        with open(self.stats) as f:
            return rc, json.load(f)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(WAIT)
        self.proc.stderr.close()
        if not self.proc.stdin.closed:
            self.proc.stdin.close()


def grpc_output_stats(stats):
    (key,) = [k for k in stats["outputs"] if ":grpc" in k]
    return stats["outputs"][key]


class Client:
    """One StreamTelemetry call. Its controls go on the request stream; it returns once telecap
    has registered the stream (the initial metadata came back)."""

    def __init__(self, address, metadata=(), controls=(), read=True, timeout=None, options=(),
                 pace=0.0):
        self.pace = pace  # seconds spent after each event: a client slower than the workers
        self.channel = grpc.insecure_channel(address, options=list(options))
        self.requests = queue.Queue()
        for c in controls:
            self.requests.put(c)

        def gen():
            while True:
                item = self.requests.get()
                if item is None:
                    return
                yield item
        self.call = pb_grpc.BridgeServiceStub(self.channel).StreamTelemetry(
            gen(), metadata=metadata, timeout=timeout)
        self.events = []
        self.error = None
        self.ended = threading.Event()
        self.got = threading.Condition()
        if read:
            threading.Thread(target=self._read, daemon=True).start()
        self.call.initial_metadata()

    def _read(self):
        try:
            for ev in self.call:
                with self.got:
                    self.events.append(as_dict(ev))
                    self.got.notify_all()
                if self.pace:
                    time.sleep(self.pace)  # pacing the reads, not a handshake
        except grpc.RpcError as e:
            self.error = e
        finally:
            self.ended.set()

    def wait_for(self, n):
        with self.got:
            ok = self.got.wait_for(lambda: len(self.events) >= n, timeout=WAIT)
        if not ok:
            raise AssertionError("got %d events, expected %d" % (len(self.events), n))

    def send(self, control):
        self.requests.put(control)

    def close(self):
        self.requests.put(None)
        self.call.cancel()
        self.channel.close()


class GrpcOutputTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.telecap = None
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        if self.telecap:
            self.telecap.kill()
        self.tmp.cleanup()

    def start(self, worker_args, **kw):
        self.telecap = Telecap(self.tmp.name, worker_args, **kw)
        return self.telecap

    def client(self, **kw):
        c = Client(self.telecap.address, **kw)
        self.clients.append(c)
        return c

    @contextlib.contextmanager
    def own_telecap(self, name, worker_args, **kw):
        """A telecap for one subtest, in a directory of its own (a failed run leaves nothing
        in the next one's way); its clients are closed and it is killed at the end."""
        tmp = os.path.join(self.tmp.name, name)
        os.mkdir(tmp)
        t = self.telecap = Telecap(tmp, worker_args, **kw)
        try:
            yield t
        finally:
            for c in self.clients:
                c.close()
            self.clients = []
            t.kill()

    def test_round_trip_gives_the_events_of_jsonl_as_a_grpc_worker_sends_them(self):
        t = self.start(["table"])
        c = self.client(controls=[toggle(True)])  # what Snakepit's host sends first
        t.step()
        rc, stats = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))
        self.assertTrue(c.ended.wait(WAIT))
        self.assertIsNone(c.error)  # the stream ended with OK when telecap stopped

        names = catalog_wire_names()
        with open(t.jsonl) as f:
            expected = [e for e in (expected_from_jsonl(json.loads(line), names) for line in f)
                        if e is not None]
        self.assertEqual(len(expected), 11)  # every catalog event; the two bad ones rejected
        self.assertEqual(c.events, expected)
        # Value types as a Python gRPC worker encodes them, not only as jsonl has them.
        by_name = {".".join(e["event_parts"]): e for e in c.events}
        start = by_name["python.call.start"]
        self.assertEqual(start["correlation_id"], "c-1")
        self.assertEqual(start["metadata"]["flag"], "True")
        self.assertEqual(start["metadata"]["worker_id"], "default-0")
        self.assertEqual(by_name["python.call.stop"]["correlation_id"], "")
        self.assertEqual(by_name["python.call.stop"]["metadata"]["none"], "None")
        self.assertEqual(by_name["python.call.stop"]["metadata"]["ratio"], "1.5")
        self.assertIsInstance(by_name["python.call.stop"]["measurements"]["duration"], float)
        self.assertEqual(by_name["python.call.exception"]["metadata"]["n"], "3")
        self.assertEqual(by_name["python.gc.completed"]["measurements"],
                         {"collected": 1, "generation": 0})
        self.assertEqual(by_name["tool.execution.start"]["event_parts"],
                         ["tool", "execution", "start"])
        self.assertEqual(by_name["tool.execution.start"]["measurements"]["bytes"], "12k")
        self.assertEqual(by_name["python.error.occurred"]["metadata"]["error_message"],
                         "caf\u00e9 \u2603")
        self.assertNotIn("correlation_id", start["metadata"])
        g = grpc_output_stats(stats)
        self.assertEqual(g["events_sent"], 11)
        # terminated (after the client is in: the worker waits for step()); spawned too when
        # the client was in before the worker started, which this test does not wait for.
        self.assertGreaterEqual(g["host_events_skipped"], 1)
        self.assertEqual(g["events_dropped"], {"queue_full": 0, "closed": 0})

    def test_selection_by_worker_and_pool_metadata(self):
        t = self.start(["bursts", "1", "5"], extra=["--instances", "2"])
        everyone = self.client()
        one = self.client(metadata=[("telecap-worker", "default-1")])
        pool = self.client(metadata=[("telecap-pool", "default")])
        other = self.client(metadata=[("telecap-pool", "other")])
        t.step(2)  # one step for each worker
        rc, stats = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))
        for c in (everyone, one, pool, other):
            self.assertTrue(c.ended.wait(WAIT))
            self.assertIsNone(c.error)
        self.assertEqual(len(everyone.events), 10)
        self.assertEqual(len(pool.events), 10)
        self.assertEqual(len(one.events), 5)
        self.assertEqual({e["metadata"]["worker_id"] for e in one.events}, {"default-1"})
        self.assertEqual(other.events, [])
        streams = grpc_output_stats(stats)["streams"]
        self.assertEqual([s["worker"] for s in streams], ["", "default-1", "", ""])
        self.assertEqual([s["pool"] for s in streams], ["", "", "default", "other"])

    def test_a_client_that_does_not_read_loses_events_counted_and_the_others_get_all(self):
        bursts, per_burst = 40, 50  # each burst fits the queue of 64
        t = self.start(["bursts", str(bursts), str(per_burst)],
                       spec="grpc:127.0.0.1:0?queue=64")
        # Without BDP probing its window stays at 64 KiB: what gRPC buffers for it is bounded.
        stalled = self.client(read=False, options=[("grpc.http2.bdp_probe", 0)])
        reader = self.client()
        for b in range(bursts):
            t.step()
            reader.wait_for((b + 1) * per_burst)  # the reader keeps up, burst by burst
        begin = time.monotonic()
        rc, stats = t.wait()
        # Stop is prompt with a client that reads nothing: its queue is given up.
        self.assertLess(time.monotonic() - begin, 10)
        self.assertEqual(rc, 0, "".join(t.log))
        self.assertEqual([e["measurements"]["count"] for e in reader.events],
                         list(range(per_burst)) * bursts)
        g = grpc_output_stats(stats)
        s_stalled, s_reader = g["streams"]
        total = bursts * per_burst
        self.assertEqual(s_reader["sent"], total)
        self.assertEqual(s_reader["dropped"], {"queue_full": 0, "closed": 0})
        self.assertGreater(s_stalled["dropped"]["queue_full"], 0)
        self.assertEqual(s_stalled["sent"] + s_stalled["dropped"]["queue_full"] +
                         s_stalled["dropped"]["closed"], total)
        self.assertEqual(g["events_dropped"]["queue_full"], s_stalled["dropped"]["queue_full"])
        m = stats["metrics"]
        key = [k for k in m if k.startswith("telecap_grpc_events_dropped_total") and
               'reason="queue_full"' in k]
        self.assertEqual(len(key), 1)
        self.assertEqual(m[key[0]], s_stalled["dropped"]["queue_full"])

    def test_with_overflow_block_a_slow_reading_client_loses_nothing(self):
        # One burst to a client that reads about 5,000 events a second, its window kept at
        # 64 KiB (no BDP probing: gRPC buffers little for it): without back-pressure the queue
        # overflows (the reference); with it, nothing is lost.
        # The worker lives on after its burst (a second step that never comes): when the only
        # worker exits, telecap stops, and at a stop a stream gets what it holds within its
        # drain time, not more.
        # With --dispatch thread the dispatch thread waits while the stream is behind, so its
        # queue fills and the loop stops reading as with the outputs on the loop thread.
        n = 5000
        for overflow, dispatch in (("drop-newest", "loop"), ("block", "loop"),
                                   ("block", "thread")):
            with self.subTest(overflow=overflow, dispatch=dispatch):
                # stall=5000: a pause of the Python client (a busy machine) is not taken for a
                # client that stopped reading.
                with self.own_telecap(overflow + "-" + dispatch, ["bursts", "2", str(n)],
                                      spec="grpc:127.0.0.1:0?queue=512&stall=5000",
                                      extra=("--overflow", overflow,
                                             "--dispatch", dispatch,
                                             # a queue the burst fills: the loop stops
                                             "--queue", "1000")) as t:
                    reader = self.client(pace=0.0002, options=[("grpc.http2.bdp_probe", 0)])
                    t.step()
                    if overflow == "block":
                        reader.wait_for(n)
                    rc, stats = t.wait()
                    self.assertEqual(rc, 0, "".join(t.log))
                    g = grpc_output_stats(stats)
                    if overflow == "drop-newest":
                        self.assertGreater(g["events_dropped"]["queue_full"], 0)
                        self.assertEqual(g["events_held"], 0)
                    else:
                        self.assertEqual([e["measurements"]["count"] for e in reader.events],
                                         list(range(n)))
                        self.assertEqual(g["events_dropped"], {"queue_full": 0, "closed": 0})
                        self.assertEqual(g["events_sent"], n)

    def test_by_default_a_burst_waits_in_the_pipe_while_a_reading_client_catches_up(self):
        # A burst of 3,000 events (about 470 KiB: less than half the worker's 1 MiB pipe) to
        # a client that reads about 5,000 a second, behind the default queue of 1,024 (and
        # what gRPC buffers for the client: about 600 events in its 64 KiB window). With
        # --burst-hold 0 the queue overflows (the reference); with a hold, the rest of the
        # burst waits in the pipe while the stream is behind (the worker's writes never wait:
        # the pipe has room), and nothing is lost. A hold of 5 s, not the default 0.1 s: this
        # client takes about 0.6 s, longer on a busy machine. Lossless because one read of
        # the pipe (64 KiB: about 400 of these events) fits in the half queue left free when
        # the stream says it is behind (512).
        # With --dispatch thread the dispatch thread holds the burst in its queue instead.
        n = 3000
        for dispatch, hold in itertools.product(("loop", "thread"), ("0", "5")):
            with self.subTest(dispatch=dispatch, burst_hold=hold):
                with self.own_telecap("hold-" + dispatch + "-" + hold, ["bursts", "2", str(n)],
                                      spec="grpc:127.0.0.1:0?stall=5000",
                                      extra=("--burst-hold", hold, "--dispatch", dispatch)) as t:
                    reader = self.client(pace=0.0002, options=[("grpc.http2.bdp_probe", 0)])
                    t.step()
                    if hold != "0":
                        reader.wait_for(n)
                    rc, stats = t.wait()
                    self.assertEqual(rc, 0, "".join(t.log))
                    g = grpc_output_stats(stats)
                    m = stats["metrics"]
                    if hold == "0":
                        self.assertGreater(g["events_dropped"]["queue_full"], 0)
                        self.assertEqual(m["telecap_burst_holds_total"], 0)
                    else:
                        self.assertEqual([e["measurements"]["count"] for e in reader.events],
                                         list(range(n)))
                        self.assertEqual(g["events_dropped"], {"queue_full": 0, "closed": 0})
                        self.assertGreaterEqual(m["telecap_burst_holds_total"], 1)
                        self.assertEqual(m["telecap_burst_hold_overruns_total"], 0)

    def test_with_overflow_block_a_client_that_does_not_read_does_not_hold_capture(self):
        n = 5000
        for dispatch in ("loop", "thread"):
            with self.subTest(dispatch=dispatch):
                with self.own_telecap(dispatch, ["bursts", "2", str(n)],
                                      spec="grpc:127.0.0.1:0?queue=512",
                                      extra=("--overflow", "block", "--dispatch", dispatch)) as t:
                    self.client(read=False, options=[("grpc.http2.bdp_probe", 0)])
                    reader = self.client()
                    t.step()
                    # The stalled stream is given up on (500 ms without progress).
                    reader.wait_for(n)
                    rc, stats = t.wait()
                    self.assertEqual(rc, 0, "".join(t.log))
                    g = grpc_output_stats(stats)
                    s_stalled, s_reader = g["streams"]
                    self.assertEqual(s_reader["dropped"], {"queue_full": 0, "closed": 0})
                    self.assertEqual(s_reader["sent"], n)
                    self.assertGreater(s_stalled["dropped"]["queue_full"], 0)
                    self.assertEqual(s_stalled["sent"] + s_stalled["dropped"]["queue_full"] +
                                     s_stalled["dropped"]["closed"], n)

    def test_sigterm_stops_promptly_with_clients_connected(self):
        t = self.start(["bursts", "2", "3"])  # the second step never comes
        self.client(read=False)  # connected, never reads
        reader = self.client()
        t.step()
        reader.wait_for(3)
        begin = time.monotonic()
        t.proc.terminate()
        t.proc.wait(timeout=WAIT)
        self.assertLess(time.monotonic() - begin, 10)
        self.assertTrue(reader.ended.wait(WAIT))
        self.assertIsNone(reader.error)  # ended with OK, after every event
        self.assertEqual(len(reader.events), 3)
        with open(t.stats) as f:
            streams = grpc_output_stats(json.load(f))["streams"]
        self.assertEqual([s["open"] for s in streams], [False, False])

    def test_toggle_off_on_the_stream_stops_its_delivery_only(self):
        t = self.start(["bursts", "2", "5"])
        toggled = self.client(controls=[toggle(True)])
        plain = self.client()
        t.step()
        toggled.wait_for(5)
        plain.wait_for(5)
        toggled.send(toggle(False))
        # The control is applied on gRPC's thread: wait until telecap counts it.
        deadline = time.monotonic() + WAIT
        while True:
            applied = [v for k, v in t.control_stats().items()
                       if k.startswith("telecap_grpc_controls_total") and "applied" in k]
            if applied == [2]:
                break
            self.assertLess(time.monotonic(), deadline, "the toggle was never applied")
            time.sleep(0.01)
        t.step()
        rc, stats = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))
        for c in (toggled, plain):
            self.assertTrue(c.ended.wait(WAIT))
        self.assertEqual(len(toggled.events), 5)
        self.assertEqual(len(plain.events), 10)
        s_toggled = grpc_output_stats(stats)["streams"][0]
        self.assertEqual(s_toggled["removed"]["disabled"], 5)
        self.assertEqual(s_toggled["controls"], {"applied": 2, "rejected": 0})

    def test_a_request_that_is_not_a_control_is_refused_and_counted(self):
        t = self.start(["bursts", "1", "3"])
        # A raw call: the request bytes are not a TelemetryControl (a field 1 of length 5
        # with 1 byte behind it), then a real toggle on the same stream.
        channel = grpc.insecure_channel(t.address)
        requests = queue.Queue()
        requests.put(b"\x0a\x05\x08")
        requests.put(toggle(True).SerializeToString())

        def gen():
            while True:
                item = requests.get()
                if item is None:
                    return
                yield item
        call = channel.stream_stream("/snakepit.bridge.BridgeService/StreamTelemetry")(gen())
        call.initial_metadata()
        deadline = time.monotonic() + WAIT
        while True:
            counts = {k: v for k, v in t.control_stats().items()
                      if k.startswith("telecap_grpc_controls_total")}
            if sorted(counts.values()) == [1, 1]:
                break
            self.assertLess(time.monotonic(), deadline, "controls never counted: %s" % counts)
            time.sleep(0.01)
        self.assertEqual([v for k, v in counts.items() if "rejected" in k], [1])
        t.step()
        received = [pb.TelemetryEvent.FromString(raw) for raw in itertools.islice(call, 3)]
        self.assertEqual([list(ev.event_parts) for ev in received],
                         [["python", "call", "start"]] * 3)
        requests.put(None)
        call.cancel()
        channel.close()
        rc, _ = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))

    def test_host_events_go_out_only_when_asked(self):
        t = self.start(["bursts", "1", "1"], spec="grpc:127.0.0.1:0?host_events=1")
        c = self.client()
        t.step()
        rc, stats = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))
        self.assertTrue(c.ended.wait(WAIT))
        # The worker's event under its wire name, the pool's whole ("spawned" too when it was
        # handled after the client came: where the outputs run decides).
        parts = [e["event_parts"] for e in c.events
                 if e["event_parts"] != ["snakepit", "pool", "worker", "spawned"]]
        self.assertEqual(parts, [["python", "call", "start"],
                                 ["snakepit", "pool", "worker", "terminated"]])
        self.assertEqual(grpc_output_stats(stats)["host_events_skipped"], 0)

    def test_deadline_ends_the_stream_and_max_streams_refuses(self):
        path = os.path.join(self.tmp.name, "grpc.sock")
        t = self.start(["bursts", "1", "1"], spec="grpc:unix:" + path + "?max_streams=1")
        self.assertEqual(t.address, "unix:" + path)
        begin = time.monotonic()
        short = self.client(timeout=1.0)  # as Snakepit's host, with 1 s instead of 5 s
        refused = self.client()  # the second stream: over max_streams
        self.assertTrue(refused.ended.wait(WAIT))
        self.assertEqual(refused.error.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertTrue(short.ended.wait(WAIT))
        self.assertEqual(short.error.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertGreater(time.monotonic() - begin, 0.9)
        t.step()
        rc, stats = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))
        g = grpc_output_stats(stats)
        self.assertEqual(g["streams_accepted"], 1)
        self.assertEqual(g["streams_refused"], 1)
        self.assertFalse(g["streams"][0]["open"])

    def test_a_refused_stream_is_the_outputs_error_in_ctl_status(self):
        t = self.start(["bursts", "1", "1"], spec="grpc:127.0.0.1:0?max_streams=1")
        self.client()
        refused = self.client()
        self.assertTrue(refused.ended.wait(WAIT))
        self.assertEqual(refused.error.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        # Counted before the refusal went out: the status that follows has it.
        (out,) = [o for o in t.control_status()["outputs"] if ":grpc" in o["output"]]
        self.assertEqual(out["errors"], 1)
        self.assertEqual(out["last_error"], "refused a stream: too many streams (max_streams=1)")
        t.step()
        rc, _ = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))


class GrpcOutputUsageTest(unittest.TestCase):
    def run_telecap(self, spec):
        return subprocess.run([TELECAP, "run", "-o", spec, "--", "true"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT)

    def test_bad_specs_are_usage_errors(self):
        cases = {
            "grpc:nope": "the address must be HOST:PORT or unix:PATH",
            "grpc:127.0.0.1:70000": "the port must be a whole number from 0 to 65535",
            "grpc:unix:": "needs a socket path",
            "grpc?queue=0": "queue must be a whole number from 1 to 1048576",
            "grpc?max_streams=x": "max_streams must be a whole number",
            "grpc?host_events=yes": "host_events must be 0 or 1",
            "grpc?size=1": "unknown option \"size\"",
            "grpc?queue=1&queue=2": "queue is given twice",
            "grpc?control=all": "control must be stream",
            "grpc?stall=0": "stall (milliseconds) must be a whole number from 1 to 600000",
        }
        for spec, message in cases.items():
            with self.subTest(spec=spec):
                r = self.run_telecap(spec)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr.decode())

    def test_an_address_in_use_is_a_usage_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            r = self.run_telecap("grpc:127.0.0.1:%d" % s.getsockname()[1])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot listen on 127.0.0.1:", r.stderr.decode())


def counter(metrics, name, **labels):
    """The value of one series of `ctl stats`, 0 when absent."""
    for k, v in metrics.items():
        if k.split("{")[0] == name and all('%s="%s"' % kv in k for kv in labels.items()):
            return v
    return 0


class WorkerControlTest(unittest.TestCase):
    """`-o grpc?control=workers`: a stream's controls drive the workers it selects, as `telecap
    ctl` does, for every output, until the stream ends."""

    setUp = GrpcOutputTest.setUp
    tearDown = GrpcOutputTest.tearDown
    start = GrpcOutputTest.start
    client = GrpcOutputTest.client

    SPEC = "grpc:127.0.0.1:0?control=workers"

    def python_calls(self, path):
        with open(path) as f:
            return sum(1 for line in f if json.loads(line)["event"][-3:] == ["python", "call",
                                                                              "start"])

    def test_a_toggle_off_stops_the_workers_for_every_output_until_the_stream_ends(self):
        # The worker's gate (the one `ctl toggle` sets, which also tells the emitter over the
        # control pipe with --telemetry-fd) removes them, so the wait below can count them.
        t = self.start(["bursts", "3", "5"], spec=self.SPEC)
        (worker,) = t.worker_controls()
        host = self.client(controls=[toggle(True)])
        watcher = self.client()  # another stream: not holding anything
        t.step()
        host.wait_for(5)
        host.send(toggle(False))
        t.until(t.worker_controls, lambda c: c[worker]["enabled"] is False)
        t.step()  # burst 2: removed by the worker's gate, for every output and stream
        t.until(lambda: t.control_request({"cmd": "status"})["workers"][worker]["dropped"],
                lambda d: d["disabled"] == 5)
        host.close()
        # The stream ended: what it set is withdrawn, the worker is back on.
        t.until(t.worker_controls, lambda c: c[worker]["enabled"] is True)
        t.until(t.control_stats,
                lambda m: counter(m, "telecap_grpc_controls_withdrawn_total") == 1)
        t.step()  # burst 3
        rc, stats = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))
        self.assertTrue(watcher.ended.wait(WAIT))
        self.assertEqual(self.python_calls(t.jsonl), 10)  # bursts 1 and 3
        self.assertEqual(len(watcher.events), 10)
        out = grpc_output_stats(stats)
        self.assertEqual(out["control"], "workers")
        self.assertEqual(out["controls"], {"applied": 2, "rejected": 0, "withdrawn": 1})
        # The host's own stream was not gated: its controls went to the worker.
        self.assertEqual(out["events_removed"], {"disabled": 0, "sampled": 0, "filtered": 0})

    def test_the_selected_worker_only_and_filters_and_sampling_as_ctl_sets_them(self):
        t = self.start(["bursts", "1", "5"], spec=self.SPEC, extra=["--instances", "2"])
        one = self.client(metadata=[("telecap-worker", "default-1")],
                          controls=[pb.TelemetryControl(filter=pb.TelemetryEventFilter(
                                        deny=["python.call.*"])),
                                    pb.TelemetryControl(sampling=pb.TelemetrySamplingUpdate(
                                        sampling_rate=0.5, event_patterns=["tool.*"]))])
        c = t.until(t.worker_controls,
                    lambda c: c["default-1"]["sampling_rate"] == 0.5)
        self.assertEqual(c["default-1"]["deny"], ["python.call.*"])
        self.assertEqual(c["default-1"]["sampling_patterns"], ["tool.*"])
        self.assertEqual(c["default-0"]["deny"], [])  # not selected: untouched
        self.assertEqual(c["default-0"]["sampling_rate"], 1)
        t.step(2)
        rc, stats = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))
        self.assertTrue(one.ended.wait(WAIT))
        self.assertEqual(self.python_calls(t.jsonl), 5)  # default-0's only
        self.assertEqual(one.events, [])

    def test_what_the_operator_set_meanwhile_stays_when_the_stream_ends(self):
        t = self.start(["bursts", "1", "2"], spec=self.SPEC)
        host = self.client(controls=[toggle(False), pb.TelemetryControl(
            sampling=pb.TelemetrySamplingUpdate(sampling_rate=0.5))])
        t.until(t.worker_controls, lambda c: c["default-0"]["sampling_rate"] == 0.5)
        # `telecap ctl toggle off` while the stream holds it off: the operator's word now.
        self.assertTrue(t.control_request({"cmd": "toggle", "enabled": False})["ok"])
        host.close()
        # The stream's sampling goes back (its end was applied); the operator's toggle stays.
        c = t.until(t.worker_controls, lambda c: c["default-0"]["sampling_rate"] == 1)
        self.assertEqual(c["default-0"]["enabled"], False)

    def test_a_pools_output_controls_that_pool_only(self):
        cfg = os.path.join(self.tmp.name, "pools.yaml")
        control = os.path.join(self.tmp.name, "control.sock")
        worker = "[%s, %s, bursts, '1', '1']" % (json.dumps(sys.executable), json.dumps(WORKER))
        with open(cfg, "w") as f:
            f.write("pools:\n"
                    "  - name: a\n    command: %s\n    outputs: ['%s']\n"
                    "  - name: b\n    command: %s\n" % (worker, self.SPEC, worker))
        p = subprocess.Popen([TELECAP, "--log-level", "info", "run", "--config", cfg, "-o", "null",
                              "--control", control], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        log = queue.Queue()
        threading.Thread(target=lambda: [log.put(l) for l in p.stderr], daemon=True).start()
        try:
            address = None
            while address is None:
                m = re.search(r"serving StreamTelemetry on (\S+)", log.get(timeout=WAIT))
                address = m and m.group(1)
            t = Control(control)
            every = Client(address)  # no metadata: the output's pool, not every worker
            self.clients.append(every)
            other = Client(address, metadata=[("telecap-pool", "b")])
            self.clients.append(other)
            every.send(toggle(False))
            other.send(toggle(False))
            t.until(t.control_stats,
                    lambda m: counter(m, "telecap_grpc_controls_total", result="rejected") == 1
                    and counter(m, "telecap_grpc_controls_total", result="applied") == 1)
            c = t.worker_controls()
            self.assertEqual((c["a-0"]["enabled"], c["b-0"]["enabled"]), (False, True))
        finally:
            p.kill()
            p.wait()

    def test_a_control_for_workers_that_do_not_exist_is_refused_and_counted(self):
        t = self.start(["bursts", "1", "2"], spec=self.SPEC)
        nobody = self.client(metadata=[("telecap-worker", "nope")])
        elsewhere = self.client(metadata=[("telecap-worker", "default-0"),
                                          ("telecap-pool", "other")])
        nobody.send(toggle(False))
        elsewhere.send(toggle(False))
        # Counted, then logged (both on the loop thread): the log line comes last.
        t.until(lambda: "".join(t.log),
                lambda log: 'control refused: no worker "nope"' in log and
                'control refused: worker "default-0" is not in pool "other"' in log)
        m = t.control_stats()
        self.assertEqual(counter(m, "telecap_grpc_controls_total", result="rejected"), 2)
        self.assertEqual(counter(m, "telecap_grpc_controls_total", result="applied"), 0)
        self.assertEqual(t.worker_controls()["default-0"]["enabled"], True)

    def test_without_control_workers_the_workers_keep_their_controls(self):
        t = self.start(["bursts", "1", "5"])
        c = self.client()
        c.send(toggle(False))
        t.until(t.control_stats,
                lambda m: counter(m, "telecap_grpc_controls_total", result="applied") == 1)
        self.assertEqual(t.worker_controls()["default-0"]["enabled"], True)
        t.step()
        rc, stats = t.wait()
        self.assertEqual(rc, 0, "".join(t.log))
        self.assertEqual(self.python_calls(t.jsonl), 5)
        self.assertEqual(grpc_output_stats(stats)["control"], "stream")

    def test_control_workers_needs_workers(self):
        r = subprocess.run([TELECAP, "parse", "-o", self.SPEC, "/dev/null"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("control=workers acts on the workers of telecap run", r.stderr.decode())


class TwoExecutablesTest(unittest.TestCase):
    """telecap never links gRPC; a command line with `-o grpc` runs in telecap-grpc, in place
    (the same process), with the same arguments; without telecap-grpc it is a usage error."""

    def test_telecap_links_no_grpc_and_its_grpc_variant_does(self):
        variant = os.path.join(os.path.dirname(TELECAP), "telecap-grpc")
        self.assertTrue(os.access(variant, os.X_OK), variant)
        def grpc_libraries(path):
            out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True)
            return [l for l in out.stdout.splitlines() if "libgrpc" in l]
        self.assertEqual(grpc_libraries(TELECAP), [])
        self.assertNotEqual(grpc_libraries(variant), [])

    def test_the_grpc_output_runs_in_the_same_process_as_telecap_grpc(self):
        with tempfile.TemporaryDirectory() as tmp:
            t = Telecap(tmp, [])
            try:
                exe = os.readlink("/proc/%d/exe" % t.proc.pid)
                self.assertEqual(os.path.basename(exe), "telecap-grpc")
                with open("/proc/%d/cmdline" % t.proc.pid, "rb") as f:
                    argv = f.read().split(b"\0")
                self.assertEqual(argv[0].decode(), TELECAP)  # as it was started
                self.assertIn(b"grpc:127.0.0.1:0", argv)
                # It serves: telecap registers the client's stream (Client returns then).
                Client(t.address).close()
            finally:
                t.kill()

    def test_an_installed_telecap_finds_telecap_grpc_in_libexec(self):
        build = os.path.dirname(TELECAP)
        with tempfile.TemporaryDirectory() as prefix:
            subprocess.run(["cmake", "--install", build, "--prefix", prefix], check=True,
                           capture_output=True, timeout=120)
            self.assertTrue(os.access(os.path.join(prefix, "libexec", "telecap",
                                                   "telecap-grpc"), os.X_OK))
            env = dict(os.environ)
            env.pop("TELECAP_GRPC_BIN", None)
            r = subprocess.run([os.path.join(prefix, "bin", "telecap"), "--log-level", "info",
                                "parse", "-o", "grpc:127.0.0.1:0", "-"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT,
                               env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"serving StreamTelemetry on 127.0.0.1:", r.stderr)

    def test_without_telecap_grpc_beside_it_grpc_is_a_usage_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            alone = os.path.join(tmp, "telecap")
            subprocess.run(["cp", TELECAP, alone], check=True)
            env = dict(os.environ)
            env.pop("TELECAP_GRPC_BIN", None)
            r = subprocess.run([alone, "parse", "-o", "jsonl", "-o", "grpc", "/dev/null"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT,
                               env=env)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(b'output "grpc": this telecap was built without gRPC', r.stderr)
            # TELECAP_GRPC_BIN names it when it is elsewhere.
            env["TELECAP_GRPC_BIN"] = os.path.join(os.path.dirname(TELECAP), "telecap-grpc")
            r = subprocess.run([alone, "run", "--check", "-o", "grpc:127.0.0.1:0", "--",
                                "true"], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=WAIT, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
