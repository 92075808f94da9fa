"""`telecap run --grpc ADDR` end to end: telecap dials a Python gRPC worker
(tests/grpc/parity_worker.py, encoding as Snakepit's Python worker does) with `{port}` picked
per worker, and the parity table: the same emits through the Python stderr emitter and through
the gRPC worker give the same normalized events (timestamps and pids aside) and the same
rejects by reason. Runs under Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf).

TELECAP_BIN: the telecap binary; TELECAP_GRPC_STUBS: the directory of the generated stubs.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

TELECAP = os.environ["TELECAP_BIN"]
HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "parity_worker.py")
PY = sys.executable
WAIT = 30  # seconds: the bound of every wait (a failure, never a pace)


def run(args, **kw):
    return subprocess.run([TELECAP] + args, capture_output=True, text=True, timeout=WAIT, **kw)


def comparable(path):
    """The worker's events of a jsonl file, without what differs between two runs by nature:
    timestamps (wall clock at emit) and the worker's pid. The pool's lifecycle is left out."""
    out = []
    with open(path) as f:
        for line in f:
            obj = json.loads(line)
            if obj["event"][:2] == ["snakepit", "pool"]:
                continue
            obj.pop("timestamp_ns")
            obj["metadata"].pop("timestamp_ns")
            obj["metadata"].pop("python_pid")
            out.append(obj)
    return out


class GrpcClient(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def capture(self, name, extra, worker_args):
        events, stats = self.path(name + ".jsonl"), self.path(name + ".stats")
        r = run(["run", "-o", "jsonl:" + events, "--stats", stats, "--passthrough",
                 self.path(name + ".pass")] + extra + ["--", PY, WORKER] + worker_args)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(stats) as f:
            st = json.load(f)
        with open(self.path(name + ".pass")) as f:
            passed = f.read()
        return comparable(events), st, passed

    def test_parity_table_stderr_emitter_and_grpc_worker(self):
        s_events, s_stats, _ = self.capture("stderr", [], ["stderr"])
        g_events, g_stats, g_pass = self.capture(
            "grpc", ["--grpc", "127.0.0.1:{port}"], ["grpc", "{port}"])
        # Every accepted case of the table, in order, the same from both paths.
        self.assertEqual(len(s_events), 31)
        self.assertEqual(len(g_events), len(s_events))
        for i, (s, g) in enumerate(zip(s_events, g_events)):
            self.assertEqual(g, s, "case %d" % i)
        self.assertEqual(g_events[-1]["correlation_id"], "end")
        # The same rejects, by reason.
        self.assertEqual(g_stats["rejected"], s_stats["rejected"])
        self.assertEqual(g_stats["rejected"]["unknown_event"], 3)
        self.assertEqual(g_stats["rejected"]["unknown_measurement"], 2)
        self.assertEqual(g_stats["events"], s_stats["events"])
        # The host's opening, as Snakepit's: toggle(enabled=true) first.
        self.assertEqual(g_pass.splitlines()[0], 'CONTROL {"toggle": true}')
        m = g_stats["metrics"]
        key = '{pool="default",worker="default-0"}'
        self.assertEqual(m["telecap_grpc_client_connects_total" + key], 1)
        self.assertEqual(m["telecap_grpc_client_events_received_total" + key], 36)
        self.assertEqual(m["telecap_grpc_client_controls_sent_total" + key], 1)

    def test_malformed_events_rejected_and_counted(self):
        events, stats, _ = self.capture(
            "bad", ["--grpc", "127.0.0.1:{port}"], ["grpc", "{port}", "malformed"])
        rej = stats["rejected"]
        self.assertEqual(rej["bad_shape"], 1)        # no event_parts
        self.assertEqual(rej["bad_measurement"], 1)  # a TelemetryValue with no value
        self.assertEqual(rej["unknown_event"], 1)    # an empty part
        self.assertEqual(len(events), 2)
        self.assertEqual(events[0]["event"], ["snakepit", "python", "call", "start"])
        self.assertEqual(events[1]["correlation_id"], "end")
        self.assertEqual(stats["dropped"], {"queue_full": 0, "shutdown": 0, "output": 0})

    def test_each_restart_dials_its_new_port(self):
        events, stats, passed = self.capture(
            "restarts", ["--grpc", "127.0.0.1:{port}", "--restart", "always",
                         "--max-restarts", "2", "--restart-window", "60",
                         "--backoff-min", "0.05"], ["grpc", "{port}", "malformed"])
        # Three runs of the worker, each on a port of its own, each dialled and toggled on.
        self.assertEqual(passed.count('CONTROL {"toggle": true}'), 3)
        self.assertEqual(len(events), 6)
        self.assertEqual(stats["rejected"]["bad_shape"], 3)
        key = '{pool="default",worker="default-0"}'
        self.assertEqual(stats["metrics"]["telecap_grpc_client_connects_total" + key], 3)

    def test_pool_key_in_a_config(self):
        cfg = self.path("pool.yaml")
        with open(cfg, "w") as f:
            f.write("pools:\n  - name: g\n    grpc: 127.0.0.1:{port}\n"
                    "    restart: never\n"
                    "    command: [%s, %s, grpc, '{port}']\n" % (json.dumps(PY), json.dumps(WORKER)))
        r = run(["run", "--config", cfg, "--check"])
        self.assertEqual(r.returncode, 0, r.stderr)
        events = self.path("cfg.jsonl")
        r = run(["run", "--config", cfg, "-o", "jsonl:" + events, "--passthrough", "none"])
        self.assertEqual(r.returncode, 0, r.stderr)
        got = comparable(events)
        self.assertEqual(len(got), 31)
        self.assertEqual(got[-1]["metadata"]["pool_name"], "g")
        self.assertEqual(got[-1]["metadata"]["worker_id"], "g-0")

    def test_bad_addresses_are_usage_errors(self):
        for addr in ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", "unix:", "127.0.0.1:{prt}"]:
            r = run(["run", "--grpc", addr, "--", "true"])
            self.assertEqual(r.returncode, 2, addr + ": " + r.stderr)
            self.assertIn("grpc", r.stderr)
        # With no command (a worker telecap does not start): no {port}, one instance.
        r = run(["run", "--grpc", "127.0.0.1:{port}"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("has {port} but no command to give the port to", r.stderr)
        r = run(["run", "--grpc", "127.0.0.1:50051", "--instances", "2"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("instances must be 1, not 2", r.stderr)
        r = run(["run", "--grpc", "127.0.0.1:50051", "--telemetry-fd", "3"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("no process to give a telemetry fd to", r.stderr)
        r = run(["run"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("nothing to run", r.stderr)

        def refused(name, text, *said):
            cfg = self.path(name)
            with open(cfg, "w") as f:
                f.write(text)
            r = run(["run", "--config", cfg, "--check"])
            self.assertEqual(r.returncode, 2)
            for s in said:
                self.assertIn(s, r.stderr)

        refused("remote.yaml", "pools:\n  - name: g\n    grpc: 127.0.0.1:{port}\n",
                "remote.yaml:3", "no command to give the port to")
        refused("remote.yaml", "pools:\n  - name: g\n    instances: 1\n",
                "has no command (nor grpc")
        refused("bad.yaml", "pools:\n  - name: g\n    command: [true]\n    grpc: nope\n",
                "bad.yaml:4")

    def test_ctl_toggle_goes_down_the_stream_and_stop_is_prompt(self):
        sock = self.path("ctl.sock")
        p = subprocess.Popen(
            [TELECAP, "run", "--grpc", "127.0.0.1:{port}", "--control", sock, "-o", "null",
             "--grace", "10", "--", PY, WORKER, "grpc", "{port}", "hold"],
            stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in p.stderr], daemon=True).start()

        def expect(text):
            until = time.monotonic() + WAIT
            while time.monotonic() < until:
                try:
                    line = lines.get(timeout=until - time.monotonic())
                except queue.Empty:
                    break
                if line.rstrip("\n") == text:
                    return
            self.fail("no line " + text)

        try:
            expect('CONTROL {"toggle": true}')
            r = run(["ctl", "--socket", sock, "--worker", "default-0", "filter", "--deny",
                     "tool.*"])
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            expect('CONTROL {"allow": [], "deny": ["tool.*"]}')
            r = run(["ctl", "--socket", sock, "--worker", "default-0", "toggle", "off"])
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            expect('CONTROL {"toggle": false}')
            # telecap stops with the stream open: the worker ends, the call is let go at once.
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=WAIT), 0)
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()



class Lines:
    """A process's stderr lines, waited for one by one."""

    def __init__(self, proc):
        self.queue = queue.Queue()
        threading.Thread(target=lambda: [self.queue.put(l) for l in proc.stderr],
                         daemon=True).start()

    def expect(self, text):
        until = time.monotonic() + WAIT
        while time.monotonic() < until:
            try:
                line = self.queue.get(timeout=until - time.monotonic())
            except queue.Empty:
                break
            if line.rstrip("\n") == text:
                return
        raise AssertionError("no line " + text)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RemoteWorker(unittest.TestCase):
    """`telecap run --grpc ADDR` with no command: a gRPC worker started elsewhere (here, by the
    test) is dialled, redialled when it comes back, shown as `remote` with no pid, and telecap
    runs until it is stopped."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def worker(self):
        p = subprocess.Popen([PY, WORKER, "grpc", str(self.port), "hold"],
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p, Lines(p)

    def ctl(self, *args):
        r = run(["ctl", "--socket", self.path("ctl.sock")] + list(args))
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        return r.stdout

    def status(self):
        return json.loads(self.ctl("--json", "status"))["workers"]["default-0"]

    def held_events(self, n):
        """Waits until the jsonl output has n events from the worker."""
        until = time.monotonic() + WAIT
        while True:
            try:
                with open(self.path("events.jsonl")) as f:
                    got = [json.loads(l) for l in f]
            except FileNotFoundError:  # telecap has not opened it yet
                got = []
            got = [e for e in got if e["correlation_id"] == "held"]
            if len(got) >= n or time.monotonic() > until:
                self.assertEqual(len(got), n)
                return got
            time.sleep(0.01)

    def test_dials_a_worker_it_does_not_start_and_redials_it_after_a_restart(self):
        first, first_lines = self.worker()
        t = subprocess.Popen(
            [TELECAP, "run", "--grpc", "127.0.0.1:%d" % self.port, "--control",
             self.path("ctl.sock"), "-o", "jsonl:" + self.path("events.jsonl"),
             "--stats", self.path("stats.json"), "--log-level", "info"],
            stderr=subprocess.PIPE, text=True)
        self.procs.append(t)
        Lines(t)  # read, so that telecap's log never blocks it
        first_lines.expect('CONTROL {"toggle": true}')
        ev = self.held_events(1)[0]
        self.assertEqual(ev["metadata"]["worker_id"], "default-0")
        self.assertNotIn("python_pid", ev["metadata"])  # no process of telecap's
        st = self.status()
        self.assertEqual((st["state"], st["pid"]), ("remote", 0))

        # The worker goes away and comes back on the same address: telecap dials it again.
        first.send_signal(signal.SIGTERM)
        self.assertEqual(first.wait(timeout=WAIT), 0)
        second, second_lines = self.worker()
        second_lines.expect('CONTROL {"toggle": true}')
        self.held_events(2)
        self.assertEqual(self.status()["state"], "remote")  # it never stopped being one

        # ctl stop lets it go (telecap keeps running, as for a worker stopped on request);
        # ctl start dials again.
        self.ctl("--worker", "default-0", "stop")
        self.assertEqual(self.status()["state"], "done")
        self.ctl("--worker", "default-0", "start")
        second_lines.expect('CONTROL {"toggle": true}')
        self.held_events(3)

        # No child to wait for: SIGTERM ends the run, exit 0, promptly.
        t0 = time.monotonic()
        t.send_signal(signal.SIGTERM)
        self.assertEqual(t.wait(timeout=WAIT), 0)
        self.assertLess(time.monotonic() - t0, 5)
        with open(self.path("stats.json")) as f:
            stats = json.load(f)
        key = '{pool="default",worker="default-0"}'
        self.assertEqual(stats["metrics"]["telecap_grpc_client_connects_total" + key], 3)
        self.assertEqual(stats["workers"]["default-0"]["state"], "done")

    def test_a_pool_with_grpc_and_no_command_in_a_config(self):
        self.worker()
        cfg = self.path("remote.yaml")
        with open(cfg, "w") as f:
            f.write("pools:\n  - name: far\n    grpc: 127.0.0.1:%d\n" % self.port)
        r = run(["run", "--config", cfg, "--check"])
        self.assertEqual(r.returncode, 0, r.stderr)
        t = subprocess.Popen([TELECAP, "run", "--config", cfg, "-o",
                              "jsonl:" + self.path("events.jsonl")],
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(t)
        Lines(t)
        ev = self.held_events(1)[0]
        self.assertEqual((ev["metadata"]["pool_name"], ev["metadata"]["worker_id"]),
                         ("far", "far-0"))
        t.send_signal(signal.SIGINT)  # Ctrl-C
        self.assertEqual(t.wait(timeout=WAIT), 0)

if __name__ == "__main__":
    unittest.main()
