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
        r = run(["run", "--grpc", "127.0.0.1:50051"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("give the worker's command after --", r.stderr)
        cfg = self.path("bad.yaml")
        with open(cfg, "w") as f:
            f.write("pools:\n  - name: g\n    command: [true]\n    grpc: nope\n")
        r = run(["run", "--config", cfg, "--check"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.yaml:4", r.stderr)

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


if __name__ == "__main__":
    unittest.main()
