"""Tests of the worker-side emitters (adapters/emitters/): Python, C/C++ and shell.

Two kinds:
  * unit tests of each emitter on its own: the exact bytes of a line (against Python's
    json.dumps), NaN handling, escaping, never failing into the worker;
  * end-to-end tests that run real workers under `telecap run` and check the normalized events
    field by field against what Snakepit's gRPC path would produce for the same emit() call
    (shared/reference/README.md): event parts from the catalog, measurement types (int64,
    double, string; bool -> int; anything else str()), metadata str() of every value, the
    host's enrichment (node, worker_id, pool_name, python_pid = the worker's pid,
    correlation_id "" -> null, timestamp_ns) winning over the worker's keys.

Run from the repository root (stdlib only):

    python3 -m unittest tests/emitters/test_emitters.py
    TELECAP_BIN=/path/to/telecap python3 -m unittest tests/emitters/test_emitters.py
    python3 tests/emitters/test_emitters.py /path/to/telecap [unittest args]

The telecap binary: $TELECAP_BIN, else the first argument when run as a script, else
/work/build/telecap. C and C++ tests need cc / c++ (skipped when missing); shell tests run
under each of dash, bash and busybox sh that is installed.
"""

import collections
import errno
import importlib.util
import json
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PY_EMITTER_DIR = os.path.join(REPO, "adapters", "emitters", "python")
C_HEADER_DIR = os.path.join(REPO, "adapters", "emitters", "c")
SHELL_EMITTER = os.path.join(REPO, "adapters", "emitters", "shell", "telecap_emit.sh")
WORKERS = os.path.join(REPO, "examples", "workers")
DEFAULT_BIN = "/work/build/telecap"
_ARGV_BIN = None

NODE = "test-node"
POOL = "emit-test"
HOST_KEYS = ("node", "worker_id", "pool_name", "python_pid", "correlation_id", "timestamp_ns")
NONFINITE_TOKENS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

sys.path.insert(0, PY_EMITTER_DIR)
import telecap_emit  # noqa: E402


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


py_worker = _load("emitter_test_py_worker", os.path.join(HERE, "py_worker.py"))


def telecap_bin():
    return os.environ.get("TELECAP_BIN") or _ARGV_BIN or DEFAULT_BIN


_catalog = None


def catalog():
    """wire name -> event parts, from the binary's own catalog."""
    global _catalog
    if _catalog is None:
        out = subprocess.run([telecap_bin(), "catalog"], check=True, capture_output=True).stdout
        _catalog = {k: v["event"] for k, v in json.loads(out)["wire_events"].items()}
    return _catalog


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise AssertionError("duplicate keys in an output object: %r" % keys)
    return dict(pairs)


def shells():
    """The POSIX shells to run the shell emitter under: (name, argv prefix)."""
    found = []
    for name, argv in (("dash", ["dash"]), ("bash", ["bash", "--posix"]),
                       ("busybox", ["busybox", "sh"])):
        if shutil.which(argv[0]):
            if name == "busybox" and subprocess.run(["busybox", "sh", "-c", "true"]).returncode:
                continue
            found.append((name, argv))
    return found


# ---- what the gRPC path makes of an emit() call ---------------------------------------------

def grpc_measurement(v):
    """The gRPC encoder: bool -> int, int and float kept, anything else str()."""
    if isinstance(v, bool):
        return ("i", int(v))
    if isinstance(v, int):
        return ("i", v)
    if isinstance(v, float):
        return ("d", v)
    return ("s", str(v))


def expected_event(event, measurements, metadata, correlation_id, *, pid, timestamp_ns,
                   worker_id=POOL + "-0", pool=POOL):
    cid = correlation_id or None
    md = {k: str(v) for k, v in (metadata or {}).items() if k not in HOST_KEYS}
    md.update(node=NODE, worker_id=worker_id, pool_name=pool, python_pid=pid,
              correlation_id=cid, timestamp_ns=timestamp_ns)
    return {
        "event": catalog()[event],
        "measurements": {k: grpc_measurement(v) for k, v in (measurements or {}).items()},
        "metadata": md,
        "timestamp_ns": timestamp_ns,
        "correlation_id": cid,
    }


def same_double(a, b):
    return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))


class Run:
    """The outcome of one `telecap run`."""

    def __init__(self, rc, events, lifecycle, stats, passthrough, stderr, rejects, t0, t1):
        self.rc, self.events, self.lifecycle, self.stats = rc, events, lifecycle, stats
        self.passthrough, self.stderr, self.rejects, self.t0, self.t1 = (
            passthrough, stderr, rejects, t0, t1)

    def worker_pid(self):
        spawned = [e for e in self.lifecycle if e["event"][-1] == "spawned"]
        assert len(spawned) == 1, spawned
        return spawned[0]["metadata"]["python_pid"]


class TelecapCase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not os.access(telecap_bin(), os.X_OK):
            raise unittest.SkipTest("no telecap binary at %s (set TELECAP_BIN)" % telecap_bin())

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="telecap-emit-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run_telecap(self, cmd, *opts, env=None, cwd=None, timeout=120, tag="run"):
        out, stats = self.path(tag + ".jsonl"), self.path(tag + ".stats.json")
        passthrough, rejects = self.path(tag + ".pass"), self.path(tag + ".rejects")
        argv = [telecap_bin(), "run", "--node", NODE, "--pool", POOL, "-o", "jsonl:" + out,
                "--stats", stats, "--passthrough", passthrough, "--rejects", rejects,
                *opts, "--", *cmd]
        full_env = dict(os.environ)
        for k in ("TELECAP_TELEMETRY", "TELECAP_TELEMETRY_FD"):
            full_env.pop(k, None)
        full_env.update(env or {})
        t0 = time.time_ns()
        p = subprocess.run(argv, env=full_env, cwd=cwd, capture_output=True, timeout=timeout)
        t1 = time.time_ns()
        events, lifecycle = [], []
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                for line in f:
                    ev = json.loads(line, object_pairs_hook=no_duplicates)
                    (lifecycle if ev["event"][:2] == ["snakepit", "pool"] else events).append(ev)
        with open(stats) as f:
            st = json.load(f)
        pt, rj = b"", ""
        if os.path.exists(passthrough):
            with open(passthrough, "rb") as f:
                pt = f.read()
        if os.path.exists(rejects):
            with open(rejects, encoding="utf-8", errors="replace") as f:
                rj = f.read()
        return Run(p.returncode, events, lifecycle, st, pt, p.stderr, rj, t0, t1)

    def read_report(self, name="report.json"):
        with open(self.path(name)) as f:
            return json.load(f)

    # -- field-by-field comparison --

    def assertMeasurements(self, expected, actual, where):
        self.assertEqual(sorted(expected), sorted(actual), where)
        for k, (kind, value) in expected.items():
            got = actual[k]
            msg = "%s: measurement %s: expected %s %r, got %r" % (where, k, kind, value, got)
            if kind == "d" and not math.isfinite(value):
                # The JSONL output writes non-finite doubles as these strings.
                self.assertIsInstance(got, str, msg)
                self.assertTrue(same_double(NONFINITE_TOKENS[got], value), msg)
            elif kind == "d":
                self.assertIs(type(got), float, msg)
                self.assertTrue(same_double(got, value), msg)
            elif kind == "i":
                self.assertIs(type(got), int, msg)
                self.assertEqual(got, value, msg)
            else:
                self.assertIs(type(got), str, msg)
                self.assertEqual(got, value, msg)

    def assertEvent(self, expected, actual, where=""):
        self.assertEqual(sorted(actual), ["correlation_id", "event", "measurements", "metadata",
                                          "timestamp_ns"], where)
        self.assertEqual(expected["event"], actual["event"], where)
        self.assertMeasurements(expected["measurements"], actual["measurements"], where)
        self.assertEqual(expected["metadata"], actual["metadata"], where)
        for k, v in actual["metadata"].items():
            if k not in ("python_pid", "timestamp_ns", "correlation_id"):
                self.assertIs(type(v), str, "%s: metadata %s must be a string" % (where, k))
        self.assertIs(type(actual["metadata"]["python_pid"]), int)
        self.assertEqual(expected["timestamp_ns"], actual["timestamp_ns"], where)
        self.assertEqual(expected["correlation_id"], actual["correlation_id"], where)

    def assertClean(self, run, events=None, emitter_errors=0):
        rejected = {k: v for k, v in run.stats["rejected"].items() if v}
        self.assertEqual({}, rejected, run.rejects)
        self.assertEqual(emitter_errors, run.stats["emitter_errors"])
        self.assertEqual({"queue_full": 0, "shutdown": 0, "output": 0}, run.stats["dropped"])
        if events is not None:
            self.assertEqual(events, run.stats["events"])
            self.assertEqual(events, len(run.events))

    def assertTimestamp(self, run, ts):
        self.assertIs(type(ts), int)
        self.assertTrue(run.t0 <= ts <= run.t1, "timestamp %d outside the run" % ts)

    def check_span(self, run, events, op, metadata, cid, *, pid, outcome, min_duration=0,
                   error=None, worker_id=POOL + "-0"):
        """events: [start, end] of one span; checks both against the gRPC path."""
        start, end = events
        self.assertTimestamp(run, start["timestamp_ns"])
        system_time = start["measurements"].get("system_time")
        self.assertIs(type(system_time), int)
        self.assertTrue(run.t0 <= system_time <= start["timestamp_ns"])
        self.assertEvent(expected_event(op + ".start", {"system_time": system_time}, metadata, cid,
                                        pid=pid, timestamp_ns=start["timestamp_ns"],
                                        worker_id=worker_id), start, op + ".start")
        duration = end["measurements"].get("duration")
        self.assertIs(type(duration), int)
        self.assertGreaterEqual(duration, min_duration)
        # Monotonic duration inside wall-clock bounds (with slack for clock differences).
        self.assertLessEqual(duration, end["timestamp_ns"] - system_time + 50_000_000)
        md = dict(metadata or {})
        if outcome == "exception":
            md["error_type"], md["error_message"] = error
        self.assertTimestamp(run, end["timestamp_ns"])
        self.assertEvent(expected_event(op + "." + outcome, {"duration": duration}, md, cid,
                                        pid=pid, timestamp_ns=end["timestamp_ns"],
                                        worker_id=worker_id), end, op + "." + outcome)


def compiler(*names):
    for n in names:
        if shutil.which(n):
            return n
    return None


CC = compiler("cc", "gcc", "clang")
CXX = compiler("c++", "g++", "clang++")


def compile_c(test, source, out, *flags, cxx=False):
    comp = CXX if cxx else CC
    if not comp:
        test.skipTest("no C%s compiler" % ("++" if cxx else ""))
    std = ["-std=c++17"] if cxx else ["-std=c99", "-D_POSIX_C_SOURCE=200809L"]
    argv = [comp, *std, "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-I", C_HEADER_DIR,
            *flags, source, "-o", out]
    p = subprocess.run(argv, capture_output=True, text=True)
    test.assertEqual(0, p.returncode, "%s\n%s" % (" ".join(argv), p.stderr))
    return out


def whole_lines_from(argv, env, pass_fds=()):
    """Runs argv with a pipe as TELECAP_TELEMETRY_FD, read slowly (so long writes wait for room,
    where the pipe itself lets other writes in). Returns (status, lines whole and untorn): a
    line is whole when it parses and its metadata "pad" is one letter, chr(97 + p), repeated."""
    r, w = os.pipe()
    full = dict(os.environ, TELECAP_TELEMETRY_FD=str(w), **env)
    full.pop("TELECAP_TELEMETRY", None)
    proc = subprocess.Popen(argv, env=full, pass_fds=(w, *pass_fds))
    os.close(w)
    data = []
    while True:
        chunk = os.read(r, 8192)
        if not chunk:
            break
        data.append(chunk)
        time.sleep(0.0001)
    os.close(r)
    whole = 0
    for line in b"".join(data).split(b"\n")[:-1]:
        try:
            e = json.loads(line[10:])
            pad = e["metadata"]["pad"]
            p = e["measurements"]["p"]  # a torn line may still parse, without these
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(p, int) and isinstance(pad, str) and pad == chr(97 + p) * len(pad):
            whole += 1
    return proc.wait(60), whole


C_LONG_LINES = r"""
#define TELECAP_EMIT_BUFSIZE 70000
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "telecap_emit.h"
static char pads[26][66000];
static void* run(void* arg) {
    int p = (int)(long)arg, i;
    for (i = 0; i < 30; ++i) {
        size_t size = 4096 + ((size_t)p * 7919u + (size_t)i * 104729u) % 61440u;
        telecap_kv m[2], md[1];
        m[0] = telecap_i64("p", p);
        m[1] = telecap_i64("i", i);
        pads[p][size] = '\0';
        md[0] = telecap_str("pad", pads[p]);
        telecap_emit("e", m, 2, md, 1, NULL);
        pads[p][size] = (char)('a' + p);
    }
    return NULL;
}
int main(void) {
    int p, t;
    for (p = 0; p < 26; ++p) memset(pads[p], 'a' + p, sizeof pads[p]);
    for (p = 0; p < 4; ++p) {
        if (fork() == 0) {  /* each process: two threads */
            pthread_t th[2];
            for (t = 0; t < 2; ++t) pthread_create(&th[t], NULL, run, (void*)(long)(p * 2 + t));
            for (t = 0; t < 2; ++t) pthread_join(th[t], NULL);
            _exit(0);
        }
    }
    while (wait(NULL) > 0) {
    }
    return 0;
}
"""


# ==== Python emitter, on its own ===============================================================

class PythonEmitterUnit(unittest.TestCase):
    """telecap_emit.py in this process, writing to a pipe given in TELECAP_TELEMETRY_FD."""

    def setUp(self):
        self.saved = {k: os.environ.get(k) for k in ("TELECAP_TELEMETRY", "TELECAP_TELEMETRY_FD")}
        os.environ.pop("TELECAP_TELEMETRY", None)
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.environ["TELECAP_TELEMETRY_FD"] = str(self.w)

    def tearDown(self):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass

    def lines(self):
        data = b""
        while True:
            try:
                chunk = os.read(self.r, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        self.assertTrue(data == b"" or data.endswith(b"\n"))
        return [line + "\n" for line in data.decode("ascii").split("\n")[:-1]]

    def test_line_is_exactly_json_dumps(self):
        for event, m, md, cid in py_worker.PY_CASES:
            before = time.time_ns()
            telecap_emit.emit(event, m, md, cid)
            after = time.time_ns()
            [line] = self.lines()
            ts = json.loads(line[len("TELEMETRY:"):])["timestamp_ns"]
            self.assertTrue(before <= ts <= after)
            payload = {"event": event, "measurements": m, "metadata": md or {},
                       "timestamp_ns": ts, "correlation_id": cid or ""}
            self.assertEqual("TELEMETRY:" + json.dumps(payload, default=str) + "\n", line)
            self.assertEqual(["event", "measurements", "metadata", "timestamp_ns",
                              "correlation_id"], list(json.loads(line[10:])))

    def test_nan_and_infinity_are_bare_tokens(self):
        telecap_emit.emit("python.cpu.sampled", {"a": math.nan, "b": math.inf, "c": -math.inf},
                          {"kind": math.nan})
        [line] = self.lines()
        self.assertIn('"measurements": {"a": NaN, "b": Infinity, "c": -Infinity}', line)
        self.assertIn('"metadata": {"kind": NaN}', line)

    def test_non_ascii_is_escaped(self):
        telecap_emit.emit("x", {}, {"k": "caf\u00e9 \U0001F600"})
        [line] = self.lines()
        self.assertIn(r'"k": "caf\u00e9 \ud83d\ude00"', line)
        line.encode("ascii")

    def test_unserializable_value_becomes_str(self):
        class Thing:
            def __str__(self):
                return "a thing"
        telecap_emit.emit("x", {"m": Thing()}, {"k": Thing()})
        [line] = self.lines()
        self.assertIn('"measurements": {"m": "a thing"}, "metadata": {"k": "a thing"}', line)

    def test_serialization_failure_is_a_telemetry_error_line(self):
        circular = {}
        circular["self"] = circular
        self.assertIsNone(telecap_emit.emit("x", circular))
        self.assertIsNone(telecap_emit.emit("x", {(1, 2): 3}))
        lines = self.lines()
        self.assertEqual(2, len(lines))
        for line in lines:
            self.assertTrue(line.startswith("TELEMETRY_ERROR: "), line)
            self.assertEqual(1, line.count("\n"))

    def test_off_is_a_no_op(self):
        os.environ["TELECAP_TELEMETRY"] = "off"
        telecap_emit.emit("x", {"a": 1})
        with self.assertRaises(ValueError):
            with telecap_emit.span("op"):
                raise ValueError("body still runs, errors still raise")
        self.assertEqual([], self.lines())
        os.environ["TELECAP_TELEMETRY"] = "on"  # anything but "off" is on
        telecap_emit.emit("x", {"a": 1})
        self.assertEqual(1, len(self.lines()))

    def test_span_stop(self):
        md = {"tool": "search"}
        with telecap_emit.span("tool.execution", md, "cid-1") as s:
            time.sleep(0.01)
        self.assertIsInstance(s, telecap_emit.span)
        start, stop = [json.loads(l[10:]) for l in self.lines()]
        self.assertEqual("tool.execution.start", start["event"])
        self.assertEqual(["system_time"], list(start["measurements"]))
        self.assertEqual("tool.execution.stop", stop["event"])
        self.assertEqual(["duration"], list(stop["measurements"]))
        self.assertGreaterEqual(stop["measurements"]["duration"], 10_000_000)
        for ev in (start, stop):
            self.assertEqual(md, ev["metadata"])
            self.assertEqual("cid-1", ev["correlation_id"])
        self.assertEqual({"tool": "search"}, md)  # not mutated

    def test_span_exception_is_reraised(self):
        md = {"tool": "search"}
        err = ValueError("bad \"input\"")
        with self.assertRaises(ValueError) as cm:
            with telecap_emit.span("tool.execution", md):
                raise err
        self.assertIs(err, cm.exception)
        start, exc = [json.loads(l[10:]) for l in self.lines()]
        self.assertEqual("tool.execution.exception", exc["event"])
        self.assertEqual(["duration"], list(exc["measurements"]))
        self.assertEqual({"tool": "search", "error_type": "ValueError",
                          "error_message": 'bad "input"'}, exc["metadata"])
        self.assertEqual("", exc["correlation_id"])
        self.assertEqual({"tool": "search"}, md)

    def test_span_base_exception_also_ends_the_span(self):
        with self.assertRaises(KeyboardInterrupt):
            with telecap_emit.span("op"):
                raise KeyboardInterrupt()
        start, exc = [json.loads(l[10:]) for l in self.lines()]
        self.assertEqual("op.exception", exc["event"])
        self.assertEqual("KeyboardInterrupt", exc["metadata"]["error_type"])
        self.assertEqual("", exc["metadata"]["error_message"])

    def test_span_with_a_broken_str(self):
        class Weird(Exception):
            def __str__(self):
                raise RuntimeError("no str for you")
        with self.assertRaises(Weird):
            with telecap_emit.span("op"):
                raise Weird()
        start, exc = [json.loads(l[10:]) for l in self.lines()]
        self.assertEqual("Weird", exc["metadata"]["error_type"])

    def test_closed_fd_does_not_raise(self):
        # The error line goes to stderr: keep it out of the test output. (The fds are made
        # before the close, so that neither reuses the closed fd's number.)
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.close(self.w)
        os.dup2(null, 2)
        try:
            telecap_emit.emit("x", {"a": 1})  # EBADF: must not raise
            with telecap_emit.span("op"):
                pass
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)

    def test_broken_pipe_does_not_raise(self):
        os.close(self.r)
        telecap_emit.emit("x", {"a": 1})  # EPIPE: must not raise
        with telecap_emit.span("op"):
            pass

    def test_bad_fd_variable_falls_back_to_stderr(self):
        for value in ("abc", "-1", "", " ", "3x", "\u0663"):
            os.environ["TELECAP_TELEMETRY_FD"] = value
            self.assertEqual(2, telecap_emit.telemetry_fd(), repr(value))
        os.environ["TELECAP_TELEMETRY_FD"] = " 7 "
        self.assertEqual(7, telecap_emit.telemetry_fd())


class PythonEmitterProcess(unittest.TestCase):
    """telecap_emit.py in a child process: stderr, closed fds, broken pipes."""

    def run_py(self, code, env=None, **kw):
        full = dict(os.environ)
        for k in ("TELECAP_TELEMETRY", "TELECAP_TELEMETRY_FD"):
            full.pop(k, None)
        full.update(env or {})
        full["PYTHONPATH"] = PY_EMITTER_DIR
        return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                              timeout=60, **kw)

    def test_default_is_stderr(self):
        p = self.run_py("import telecap_emit as t; t.emit('e', {'a': 1})")
        self.assertEqual(0, p.returncode)
        self.assertEqual(b"", p.stdout)
        self.assertRegex(p.stderr, rb'^TELEMETRY:\{"event": "e", "measurements": \{"a": 1\}, '
                                   rb'"metadata": \{\}, "timestamp_ns": \d+, "correlation_id": ""\}\n$')

    def test_invalid_fd_variable_goes_to_stderr(self):
        p = self.run_py("import telecap_emit as t; t.emit('e', {})",
                        env={"TELECAP_TELEMETRY_FD": "stdout"})
        self.assertTrue(p.stderr.startswith(b"TELEMETRY:{"))

    def test_unopened_fd_gives_an_error_line_on_stderr(self):
        p = self.run_py("import telecap_emit as t; t.emit('e', {}); print('alive')",
                        env={"TELECAP_TELEMETRY_FD": "987"})
        self.assertEqual(0, p.returncode)
        self.assertEqual(b"alive\n", p.stdout)
        self.assertTrue(p.stderr.startswith(b"TELEMETRY_ERROR: "), p.stderr)
        self.assertEqual(1, p.stderr.count(b"\n"))

    def test_closed_stderr(self):
        code = ("import os, telecap_emit as t\nos.close(2)\nt.emit('e', {})\n"
                "with t.span('op'):\n    pass\nt.emit('e', {(1,): 2})\nprint('alive')")
        p = self.run_py(code)
        self.assertEqual(0, p.returncode, p.stderr)
        self.assertEqual(b"alive\n", p.stdout)

    def test_broken_pipe_is_quiet(self):
        r, w = os.pipe()
        os.close(r)
        try:
            p = self.run_py("import telecap_emit as t\nfor i in range(3): t.emit('e', {})\n"
                            "print('alive')", env={"TELECAP_TELEMETRY_FD": str(w)},
                            pass_fds=(w,))
        finally:
            os.close(w)
        self.assertEqual(0, p.returncode)
        self.assertEqual(b"alive\n", p.stdout)
        self.assertEqual(b"", p.stderr)

    def test_threads_never_interleave(self):
        code = """
import threading, telecap_emit as t
def work(n):
    for i in range(300):
        t.emit('e', {'n': n, 'i': i}, {'pad': 'x' * (i * 37 % 9000)})
ts = [threading.Thread(target=work, args=(n,)) for n in range(6)]
[x.start() for x in ts]; [x.join() for x in ts]
"""
        p = self.run_py(code)
        lines = p.stderr.split(b"\n")
        self.assertEqual(b"", lines.pop())
        self.assertEqual(1800, len(lines))
        seen = set()
        for line in lines:
            self.assertTrue(line.startswith(b"TELEMETRY:{"), line[:80])
            m = json.loads(line[10:])["measurements"]
            seen.add((m["n"], m["i"]))
        self.assertEqual(1800, len(seen))

    def test_control_fd_0_does_not_swallow_stdin(self):
        code = ("import sys, telecap_emit as t\nprint(sys.stdin.read().strip())\n"
                "print(t.controls()['seq'])")
        p = self.run_py(code, env={"TELECAP_CONTROL_FD": "0"},
                        input=b'{"seq": 7, "enabled": false}\n')
        self.assertEqual(0, p.returncode, p.stderr)
        # stdin is the worker's: read by it, not applied as a state.
        self.assertEqual(b'{"seq": 7, "enabled": false}\n0\n', p.stdout)
        self.assertEqual(b"TELEMETRY_ERROR: telecap_emit: TELECAP_CONTROL_FD='0' ignored: "
                         b"fds 0-2 are the worker's own\n", p.stderr)

    def test_control_fd_that_is_not_a_pipe_is_ignored(self):
        with tempfile.TemporaryFile() as f:
            f.write(b'{"seq": 3, "enabled": false}\n')
            f.flush()
            fd = f.fileno()
            p = self.run_py("import telecap_emit as t; print(t.controls()['seq'])",
                            env={"TELECAP_CONTROL_FD": str(fd)}, pass_fds=(fd,))
            self.assertEqual(b"0\n", p.stdout)
            self.assertIn(b"ignored: not a pipe or a socket\n", p.stderr)
            self.assertEqual(1, p.stderr.count(b"\n"))
            p = self.run_py("import telecap_emit as t; print(t.controls()['seq'])",
                            env={"TELECAP_CONTROL_FD": "987"})
            self.assertIn(b"TELECAP_CONTROL_FD='987' ignored: not open", p.stderr)

    def child_view(self, env):
        """(seq applied, fd open in a child, variable in a child) for a pipe at a fresh fd."""
        r, w = os.pipe()
        try:
            os.write(w, b'{"seq": 4}\n')
            code = ("import os, subprocess, sys, telecap_emit as t\n"
                    "fd = sys.argv[1]\n"
                    "c = subprocess.run([sys.executable, '-c', 'import os, sys; "
                    "print(os.path.exists(\"/proc/self/fd/\" + sys.argv[1]), "
                    "\"TELECAP_CONTROL_FD\" in os.environ)', fd], close_fds=False, "
                    "capture_output=True, text=True)\n"
                    "print(t.controls()['seq'], c.stdout.strip())")
            full = dict(os.environ, PYTHONPATH=PY_EMITTER_DIR, TELECAP_CONTROL_FD=str(r), **env)
            p = subprocess.run([sys.executable, "-c", code, str(r)], env=full, pass_fds=(r,),
                               capture_output=True, timeout=60)
        finally:
            os.close(r)
            os.close(w)
        self.assertEqual(b"", p.stderr)
        return p.stdout.decode().split()

    def test_control_fd_is_not_passed_to_subprocesses(self):
        self.assertEqual(["4", "False", "False"], self.child_view({}))

    def test_control_fd_passed_on_when_asked(self):
        self.assertEqual(["4", "True", "True"],
                         self.child_view({"TELECAP_CONTROL_INHERIT": "1"}))

    def test_processes_never_interleave_long_lines(self):
        # fork children, 4-64 KiB lines, on one pipe.
        code = """
import os, telecap_emit as t
pids = []
for p in range(6):
    pid = os.fork()
    if pid == 0:
        for i in range(40):
            t.emit('e', {'p': p, 'i': i}, {'pad': chr(97 + p) * (4096 + (p * 7919 + i * 104729) % 61440)})
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
"""
        argv = [sys.executable, "-c", code]
        env = {"PYTHONPATH": PY_EMITTER_DIR}
        self.assertEqual((0, 240), whole_lines_from(argv, env))
        # The same without the lock tears lines: this test sees the difference.
        self.assertLess(whole_lines_from(argv, dict(env, TELECAP_EMIT_LOCK="off"))[1], 240)

    def test_installable_metadata(self):
        with open(os.path.join(PY_EMITTER_DIR, "pyproject.toml")) as f:
            text = f.read()
        self.assertIn('py-modules = ["telecap_emit"]', text)
        self.assertIn('requires-python = ">=3.8"', text)
        self.assertTrue(os.path.exists(os.path.join(PY_EMITTER_DIR, "README.md")))


# ==== Python emitter under telecap =============================================================

class PythonUnderTelecap(TelecapCase):

    def worker(self, mode, *opts, env=None):
        return self.run_telecap([sys.executable, os.path.join(HERE, "py_worker.py"), mode,
                                 self.path("report.json")], *opts, env=env)

    def test_emit_cases_match_the_grpc_path(self):
        run = self.worker("cases")
        self.assertEqual(0, run.rc, run.stderr)
        report = self.read_report()
        pid = report["pid"]
        self.assertEqual(pid, run.worker_pid())
        self.assertIsNone(report["telemetry_fd_env"])
        self.assertEqual(len(py_worker.PY_CASES), len(run.events))
        for (event, m, md, cid), actual in zip(py_worker.PY_CASES, run.events):
            self.assertTimestamp(run, actual["timestamp_ns"])
            exp = expected_event(event, m, md, cid, pid=pid, timestamp_ns=actual["timestamp_ns"])
            self.assertEvent(exp, actual, event)
        # What the gRPC path drops, telecap drops and counts; the serialization failure is an
        # emitter error; all three stay visible as pass-through lines.
        st = run.stats
        self.assertEqual(1, st["rejected"]["unknown_event"])
        self.assertEqual(1, st["rejected"]["unknown_measurement"])
        self.assertEqual(sum(st["rejected"].values()), 2)
        self.assertEqual(1, st["emitter_errors"])
        self.assertEqual(len(py_worker.PY_CASES) + 2, st["telemetry_lines"])
        self.assertIn(b"TELEMETRY_ERROR: cannot serialize", run.passthrough)
        self.assertIn(b"a log line\n", run.passthrough)

    def test_span_stop_and_exception(self):
        run = self.worker("span")
        self.assertEqual(0, run.rc, run.stderr)
        self.assertClean(run, events=6)
        report = self.read_report()
        pid = report["pid"]
        self.assertEqual(pid, run.worker_pid())
        self.assertEqual(["KeyError", "'missing \"key\"'"], report["reraised"])
        ev = run.events
        self.check_span(run, ev[0:2], "tool.execution", {"tool": "search", "n": 3}, "span-cid",
                        pid=pid, outcome="stop", min_duration=20_000_000)
        self.check_span(run, ev[2:4], "python.call", {"function": "f"}, None, pid=pid,
                        outcome="exception", min_duration=10_000_000,
                        error=("KeyError", "'missing \"key\"'"))
        self.check_span(run, ev[4:6], "tool.execution", None, None, pid=pid, outcome="stop")

    def test_threads_4000_events_no_rejects(self):
        run = self.worker("threads")
        self.assertEqual(0, run.rc, run.stderr)
        self.assertClean(run, events=4000)
        self.assertEqual(4000, run.stats["telemetry_lines"])
        self.assertGreater(run.stats["passthrough_lines"], 0)  # the logging thread
        for line in run.passthrough.splitlines():
            self.assertRegex(line, rb"^Thread-\d+.* free logging \d+$")
        pid = self.read_report()["pid"]
        seqs = collections.Counter()
        for ev in run.events:
            m = ev["measurements"]
            seqs[m["sequence_number"]] += 1
            t, i = divmod(m["sequence_number"], 500)
            self.assertEvent(expected_event(
                "tool.result_size", {"message_size": i, "sequence_number": t * 500 + i},
                {"tool": "t%d" % t, "command": "x" * (i % 50)}, "c%d-%d" % (t, i), pid=pid,
                timestamp_ns=ev["timestamp_ns"]), ev)
        self.assertEqual(set(range(4000)), set(seqs))
        self.assertEqual({1}, set(seqs.values()))

    def test_threads_lines_longer_than_pipe_buf(self):
        run = self.worker("threads-long")
        self.assertEqual(0, run.rc, run.stderr)
        self.assertClean(run, events=200)
        self.assertEqual(set(range(200)),
                         {e["measurements"]["sequence_number"] for e in run.events})
        for e in run.events:
            t = e["measurements"]["sequence_number"] // 50
            self.assertEqual(chr(ord("a") + t) * 10000, e["metadata"]["command"])

    def check_big_lines_from_processes(self, mode, *opts):
        run = self.worker(mode, *opts)
        self.assertEqual(0, run.rc, run.stderr)
        report = self.read_report()
        total = report["procs"] * report["per_proc"]
        self.assertClean(run, events=total)
        self.assertEqual(set(range(total)),
                         {e["measurements"]["sequence_number"] for e in run.events})
        for e in run.events:
            m = e["measurements"]
            letter = chr(ord("a") + (m["sequence_number"] // report["per_proc"]) % 26)
            self.assertEqual(letter * m["message_size"], e["metadata"]["command"])

    # Lines of 4-64 KiB from 8-9 processes at once: without the emitter's lock on the pipe,
    # 3-6 % of them tore into each other and were rejected as invalid JSON.
    def test_fork_big_lines_on_stderr(self):
        self.check_big_lines_from_processes("procs-fork")

    def test_fork_big_lines_on_telemetry_fd(self):
        self.check_big_lines_from_processes("procs-fork", "--telemetry-fd", "5")

    def test_multiprocessing_big_lines_on_stderr(self):
        self.check_big_lines_from_processes("procs-mp")

    def test_multiprocessing_big_lines_on_telemetry_fd(self):
        # (multiprocessing's "spawn" children do not inherit the fd: only fds 0-2.)
        self.check_big_lines_from_processes("procs-mp-fork", "--telemetry-fd", "5")

    def test_telemetry_off(self):
        run = self.worker("off", env={"TELECAP_TELEMETRY": "off"})
        self.assertEqual(0, run.rc, run.stderr)
        self.assertEqual([], run.events)
        self.assertEqual(0, run.stats["telemetry_lines"])
        self.assertTrue(self.read_report()["reraised"])
        self.assertEqual(2, len(run.lifecycle))  # telecap's own events still come

    def test_dedicated_telemetry_fd(self):
        run = self.worker("fake", "--telemetry-fd", "5")
        self.assertEqual(0, run.rc, run.stderr)
        self.assertClean(run, events=3)
        report = self.read_report()
        self.assertEqual("5", report["telemetry_fd_env"])
        pid = report["pid"]
        self.assertEqual(pid, run.worker_pid())
        self.assertEvent(expected_event("python.call.start", {"count": 1}, {"function": "real"},
                                        "real", pid=pid, timestamp_ns=run.events[0]["timestamp_ns"]),
                         run.events[0])
        self.check_span(run, run.events[1:3], "tool.execution", {"tool": "fd"}, None, pid=pid,
                        outcome="stop")
        # The fake line on stderr is passed through as it is, not made an event.
        self.assertIn(b'TELEMETRY:{"event": "python.call.start", "measurements": {"count": 666}',
                      run.passthrough)
        self.assertFalse(any(e["correlation_id"] == "fake" for e in run.events))
        self.assertEqual(3, run.stats["telemetry_lines"])


class DocumentedDifferences(TelecapCase):
    """The two places where telecap deliberately differs from the gRPC path (docs/contract.md):
    nested metadata becomes compact JSON text (not Python's repr), and a null, list or dict
    measurement rejects the event as bad_measurement (the encoder would have str()ed it)."""

    def test_nested_metadata_is_compact_json(self):
        src = self.path("w.py")
        with open(src, "w") as f:
            f.write("import sys; sys.path.insert(0, %r)\nfrom telecap_emit import emit\n"
                    "emit('python.call.stop', {'count': 1}, {'shape': [2, 3], "
                    "'kind': {'a': 'b'}, 'dtype': ['x', True, None]})\n" % PY_EMITTER_DIR)
        run = self.run_telecap([sys.executable, src])
        self.assertEqual(1, len(run.events))
        md = run.events[0]["metadata"]
        self.assertEqual(("[2,3]", '{"a":"b"}', '["x",true,null]'),
                         (md["shape"], md["kind"], md["dtype"]))

    def test_none_and_list_measurements_reject_the_event(self):
        src = self.path("w.py")
        with open(src, "w") as f:
            f.write("import sys; sys.path.insert(0, %r)\nfrom telecap_emit import emit\n"
                    "emit('python.call.stop', {'count': None, 'duration': [1, 2]})\n"
                    % PY_EMITTER_DIR)
        run = self.run_telecap([sys.executable, src])
        self.assertEqual(0, len(run.events))
        self.assertEqual(1, run.stats["rejected"]["bad_measurement"], run.rejects)


# ==== Example workers and pool.yaml ============================================================

class ExampleWorkers(TelecapCase):

    def test_legacy_worker(self):
        run = self.run_telecap([sys.executable, os.path.join(WORKERS, "legacy_worker.py"),
                                "--iterations", "8", "--interval", "0"])
        self.assertEqual(0, run.rc, run.stderr)
        self.assertClean(run)
        pid = run.worker_pid()
        names = collections.Counter(".".join(e["event"][2:]) for e in run.events)
        self.assertEqual({"tool.execution.start": 8, "tool.execution.stop": 6,
                          "tool.execution.exception": 2, "tool.result_size": 6,
                          "memory.sampled": 8}, dict(names))
        for e in run.events:
            self.assertEqual(pid, e["metadata"]["python_pid"])
            if e["event"][-1] == "exception":
                self.assertEqual("TimeoutError", e["metadata"]["error_type"])
            if e["event"][-1] == "sampled":
                self.assertGreater(e["measurements"]["rss_bytes"], 0)
        self.assertIn(b"WARNING legacy", run.passthrough)
        self.assertIn(b"plain print to stderr, not telemetry\n", run.passthrough)

    def test_crashy_worker_exit_and_kill(self):
        for mode, rc in (("exit", 1), ("kill", 128 + signal.SIGKILL)):
            with self.subTest(mode=mode):
                run = self.run_telecap([sys.executable, os.path.join(WORKERS, "crashy_worker.py"),
                                        "--iterations", "5", "--interval", "0", "--crash-at", "2",
                                        "--crash-mode", mode], tag=mode)
                self.assertEqual(rc, run.rc, run.stderr)
                self.assertClean(run)
                names = [".".join(e["event"][2:]) for e in run.events]
                self.assertEqual(["tool.execution.start", "tool.execution.stop", "memory.sampled"]
                                 * 2 + ["tool.execution.start"], names)
                term = [e for e in run.lifecycle if e["event"][-1] == "terminated"][0]
                self.assertEqual(str(rc), term["metadata"]["exit_code"])

    def test_pool_yaml(self):
        out = self.path("pool.jsonl")
        stats = self.path("pool.stats")
        env = dict(os.environ)
        env.pop("TELECAP_TELEMETRY", None)
        env.pop("TELECAP_TELEMETRY_FD", None)
        p = subprocess.run([telecap_bin(), "run", "--config", "examples/pool.yaml", "--stats",
                            stats, "-o", "jsonl:" + out, "--passthrough", "none"], cwd=REPO,
                           env=env, capture_output=True, timeout=120)
        self.assertEqual(0, p.returncode, p.stderr)
        counts = collections.Counter()
        with open(out) as f:
            for line in f:
                e = json.loads(line)
                counts[(e["metadata"]["pool_name"], ".".join(e["event"][1:]))] += 1
        with open(stats) as f:
            st = json.load(f)
        self.assertEqual(0, sum(st["rejected"].values()))
        self.assertEqual(0, st["emitter_errors"])
        self.assertEqual(2, counts[("legacy", "pool.worker.spawned")])
        self.assertEqual(16, counts[("legacy", "python.tool.execution.start")])
        self.assertEqual(4, counts[("legacy", "python.tool.execution.exception")])
        # crashy: exit at iteration 3, SIGKILL at iteration 1, then 6 clean iterations
        self.assertEqual(3, counts[("crashy", "pool.worker.spawned")])
        self.assertEqual(2, counts[("crashy", "pool.worker.restarted")])
        self.assertEqual(4 + 2 + 6, counts[("crashy", "python.tool.execution.start")])
        self.assertEqual(3 + 1 + 6, counts[("crashy", "python.tool.execution.stop")])
        self.assertEqual(3, counts[("shell", "python.tool.execution.stop")])


# ==== C and C++ emitter ========================================================================

def c_string(value):
    """A C string literal with exactly these bytes (str is UTF-8 encoded)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    out = []
    for b in data:
        c = chr(b)
        if c in '"\\?':
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


def c_double(v):
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    return repr(v) if "e" in repr(v) or "." in repr(v) else repr(v) + ".0"


def c_kv(key, kind, value):
    if kind == "i":
        lit = "INT64_MIN" if value == -2 ** 63 else "INT64_C(%d)" % value
        return "telecap_i64(%s, %s)" % (c_string(key), lit)
    if kind == "d":
        return "telecap_f64(%s, %s)" % (c_string(key), c_double(value))
    if kind == "b":
        return "telecap_bool(%s, %d)" % (c_string(key), 1 if value else 0)
    return "telecap_str(%s, %s)" % (c_string(key), c_string(value))


def py_value(kind, value):
    """The Python value a Python worker would have passed for this C value."""
    if kind == "b":
        return bool(value)
    if kind == "s" and isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


# (event, measurements [(key, kind, value)], metadata [...], correlation_id); kinds: i d s b.
C_CASES = [
    ("tool.execution.stop", [("duration", "i", 1500), ("count", "i", 1)],
     [("tool", "s", "search"), ("ok", "b", True), ("ratio", "d", 0.5), ("n", "i", 7),
      ("no", "b", False)], "req-1"),
    ("python.memory.sampled", [("rss_bytes", "i", 1 << 40), ("vms_bytes", "i", -1)], [], None),
    ("python.cpu.sampled", [("cpu_percent", "d", math.nan)],
     [("kind", "d", math.nan), ("size", "d", math.inf), ("shape", "d", -math.inf)], ""),
    ("python.cpu.sampled", [("cpu_percent", "d", math.inf)], [], None),
    ("python.cpu.sampled", [("cpu_percent", "d", -math.inf)], [], None),
    ("python.call.stop", [("duration", "d", 2.0), ("count", "i", 2 ** 63 - 1)],
     [("retry", "d", 1e16), ("timeout_ms", "d", 0.1), ("dtype", "d", -0.0),
      ("shape", "d", 1e-05), ("size", "d", 123456789012345678.0), ("model", "d", 5e-324),
      ("mode", "d", 1.7976931348623157e308), ("kind", "d", 0.0001), ("device", "d", 1e15)], None),
    ("python.call.start", [("count", "i", -2 ** 63)], [], None),
    ("tool.result_size", [("message_size", "s", "big")], [], None),
    ("tool.execution.exception", [("duration", "i", 3)],
     [("tool", "s", "caf\u00e9 \u2615 \U0001F600"),
      ("error_message", "s", 'quote " backslash \\ nl \n tab \t cr \r bs \b ff \f ctrl \x01 '
                             '\x1f del \x7f end'),
      ("error_type", "s", b"bad \xff, truncated \xe2\x82, surrogate \xed\xa0\x80, "
                          b"overlong \xc0\xaf, too big \xf4\x90\x80\x80, cut \xf0\x9f\x98"),
      ("caf\u00e9 key", "s", "unknown key with UTF-8")],
     'id "q" \\ \n \u00fc'),
    ("python.call.exception", [("count", "i", 1)],
     [("node", "s", "evil"), ("worker_id", "s", "w-evil"), ("pool_name", "s", "p-evil"),
      ("python_pid", "i", 1), ("correlation_id", "s", "cid-evil"), ("timestamp_ns", "i", 5),
      ("error_type", "s", "E")], "real-cid"),
    ("python.error.occurred", [("count", "b", True)], [("not_in_catalog", "i", 42)], None),
]


def c_cases_program(cases):
    body = []
    for i, (event, m, md, cid) in enumerate(cases):
        body.append("    {")
        body.append("        telecap_kv m[] = {%s};" % ", ".join(c_kv(*kv) for kv in m))
        if md:
            body.append("        telecap_kv md[] = {%s};" % ", ".join(c_kv(*kv) for kv in md))
        body.append("        rc[%d] = telecap_emit(%s, m, %d, %s, %d, %s);" % (
            i, c_string(event), len(m), "md" if md else "NULL", len(md),
            c_string(cid) if cid is not None else "NULL"))
        body.append("    }")
    return """#include <math.h>
#include <stdio.h>
#include "telecap_emit.h"
int main(void) {
    int rc[%d], i;
    char pid[32];
    snprintf(pid, sizeof pid, "%%ld\\n", (long)getpid());
%s
    for (i = 0; i < %d; ++i) printf("%%d ", rc[i]);
    printf("pid %%s", pid);
    return 0;
}
""" % (len(cases), "\n".join(body), len(cases))


class CEmitterUnit(unittest.TestCase):
    """The C header on its own: exact bytes, formatting, errors."""

    @classmethod
    def setUpClass(cls):
        if not CC:
            raise unittest.SkipTest("no C compiler")
        cls.tmp = tempfile.mkdtemp(prefix="telecap-emit-c-")
        src = os.path.join(cls.tmp, "c_cases.c")
        with open(src, "w") as f:
            f.write(c_cases_program(C_CASES))
        cls.cases_src = src

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def env(self, **kw):
        env = dict(os.environ)
        env.pop("TELECAP_TELEMETRY", None)
        env.pop("TELECAP_TELEMETRY_FD", None)
        env.update(kw)
        return env

    def test_processes_and_threads_never_interleave_long_lines(self):
        src = os.path.join(self.tmp, "long_lines.c")
        with open(src, "w") as f:
            f.write(C_LONG_LINES)
        exe = compile_c(self, src, os.path.join(self.tmp, "long_lines"), "-pthread")
        self.assertEqual((0, 240), whole_lines_from([exe], {}))
        self.assertLess(whole_lines_from([exe], {"TELECAP_EMIT_LOCK": "off"})[1], 240)

    def test_c_and_python_processes_share_the_lock(self):
        src = os.path.join(self.tmp, "long_lines.c")
        with open(src, "w") as f:
            f.write(C_LONG_LINES)
        exe = compile_c(self, src, os.path.join(self.tmp, "long_lines_mixed"), "-pthread")
        code = ("import subprocess, sys, telecap_emit as t\n"
                "c = subprocess.Popen([sys.argv[1]], close_fds=False)\n"
                "for i in range(60):\n"
                "    t.emit('e', {'p': 20, 'i': i}, {'pad': 'u' * (4096 + i * 997)})\n"
                "c.wait()\n")
        self.assertEqual((0, 300), whole_lines_from([sys.executable, "-c", code, exe],
                                                    {"PYTHONPATH": PY_EMITTER_DIR}))

    def test_control_fd_checked(self):
        src = os.path.join(self.tmp, "ctl_check.c")
        with open(src, "w") as f:
            f.write('#include "telecap_emit.h"\n'
                    'int main(void) { return telecap_emit("e", NULL, 0, NULL, 0, NULL); }\n')
        exe = compile_c(self, src, os.path.join(self.tmp, "ctl_check"))
        p = subprocess.run([exe], env=self.env(TELECAP_CONTROL_FD="0"), input=b"keep me",
                           capture_output=True)
        lines = p.stderr.decode().splitlines()
        self.assertEqual("TELEMETRY_ERROR: telecap_emit: TELECAP_CONTROL_FD ignored: fds 0-2 "
                         "are the worker's own", lines[0])
        self.assertTrue(lines[1].startswith('TELEMETRY:{"event": "e"'), lines)
        with tempfile.TemporaryFile() as f:
            p = subprocess.run([exe], env=self.env(TELECAP_CONTROL_FD=str(f.fileno())),
                               pass_fds=(f.fileno(),), capture_output=True)
        self.assertIn("ignored: not a pipe or a socket", p.stderr.decode().splitlines()[0])

    def test_lines_are_exactly_python_json_dumps(self):
        exe = compile_c(self, self.cases_src, os.path.join(self.tmp, "c_cases"))
        before = time.time_ns()
        p = subprocess.run([exe], capture_output=True, env=self.env(), timeout=30)
        after = time.time_ns()
        self.assertEqual(0, p.returncode)
        self.assertTrue(p.stdout.startswith(b"0 " * len(C_CASES)), p.stdout)
        lines = p.stderr.split(b"\n")
        self.assertEqual(b"", lines.pop())
        self.assertEqual(len(C_CASES), len(lines))
        for (event, m, md, cid), line in zip(C_CASES, lines):
            self.assertTrue(line.startswith(b"TELEMETRY:"))
            ts = json.loads(line[10:])["timestamp_ns"]
            self.assertTrue(before <= ts <= after)
            payload = {"event": event,
                       "measurements": {k: py_value(t, v) for k, t, v in m},
                       "metadata": {k: py_value(t, v) for k, t, v in md},
                       "timestamp_ns": ts, "correlation_id": cid or ""}
            expected = "TELEMETRY:" + json.dumps(payload, ensure_ascii=False)
            self.assertEqual(expected, line.decode("utf-8"), event)

    def test_double_format_is_python_repr(self):
        exe = compile_c(self, os.path.join(HERE, "c_format.c"), os.path.join(self.tmp, "c_format"))
        rng = random.Random(4)
        values = [0.1, 0.2, 0.3, 1 / 3, 2.0, 100.0, 1e15, 1e16, 1e17, 9999999999999998.0,
                  1e-4, 1e-5, 1.5e-5, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                  123456789.123, -0.0, 0.0, -1.5, 1e22, 1e23, 4.35, 0.000123456789]
        values += [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
                   for _ in range(5000)]
        values += [round(rng.uniform(-1e6, 1e6), rng.randint(0, 8)) for _ in range(3000)]
        values += [rng.randint(-10 ** 18, 10 ** 18) * 10.0 ** rng.randint(-30, 30)
                   for _ in range(2000)]
        values = [v for v in values if math.isfinite(v)] + [math.nan, math.inf, -math.inf]
        stdin = "".join("d %016x\n" % struct.unpack("<Q", struct.pack("<d", v))[0]
                        for v in values)
        p = subprocess.run([exe], input=stdin.encode(), capture_output=True, timeout=60)
        got = p.stdout.decode().split("\n")[:-1]
        self.assertEqual(len(values), len(got))
        for v, g in zip(values, got):
            self.assertEqual(json.dumps(v), g, "bits %r" % struct.pack("<d", v).hex())

    def test_string_escaping_matches_python(self):
        exe = compile_c(self, os.path.join(HERE, "c_format.c"), os.path.join(self.tmp, "c_format"))
        rng = random.Random(7)
        alphabet = (list(range(1, 0x80)) + [0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED,
                                            0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF, 0x9F, 0xA0])
        samples = [b"", b"plain", "caf\u00e9 \U0001F600".encode(), b"\xed\xa0\x80", b"\xe2\x82",
                   b"\xf0\x9f\x98", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\x7f\x1f\x01\"\\"]
        for _ in range(3000):
            samples.append(bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
        for _ in range(500):  # valid UTF-8, any code point
            s = "".join(chr(rng.choice([rng.randint(1, 0xD7FF), rng.randint(0xE000, 0x10FFFF)]))
                        for _ in range(rng.randint(1, 6)))
            samples.append(s.encode("utf-8"))
        stdin = "".join("s %s\n" % s.hex() for s in samples)
        p = subprocess.run([exe], input=stdin.encode(), capture_output=True, timeout=60)
        got = p.stdout.split(b"\n")[:-1]
        self.assertEqual(len(samples), len(got))
        for s, g in zip(samples, got):
            expected = json.dumps(s.decode("utf-8", "replace"), ensure_ascii=False)
            self.assertEqual(expected, g.decode("utf-8"), "bytes %r" % s)

    def test_overflow_null_key_null_event_and_off(self):
        src = os.path.join(self.tmp, "errors.c")
        with open(src, "w") as f:
            f.write(r"""
#include <string.h>
#include "telecap_emit.h"
int main(void) {
    static char big[1000];
    telecap_kv m[1], bad[1];
    int a, b, c, d, e, saved;
    memset(big, 'x', sizeof big - 1);
    m[0] = telecap_str("message_size", big);
    bad[0] = telecap_i64(NULL, 1);
    errno = EDOM;
    a = telecap_emit("tool.result_size", m, 1, NULL, 0, NULL);   /* too long: error line */
    b = telecap_emit("tool.result_size", bad, 1, NULL, 0, NULL); /* NULL key */
    c = telecap_emit(NULL, NULL, 0, NULL, 0, NULL);              /* NULL event */
    m[0] = telecap_i64("message_size", 5);
    d = telecap_emit("tool.result_size", m, 1, NULL, 0, NULL);   /* fits */
    saved = errno;
    setenv("TELECAP_TELEMETRY", "off", 1);
    e = telecap_emit("tool.result_size", m, 1, NULL, 0, NULL);   /* off */
    printf("%d %d %d %d %d errno_kept=%d\n", a, b, c, d, e, saved == EDOM);
    return 0;
}
""")
        exe = compile_c(self, src, os.path.join(self.tmp, "errors"), "-DTELECAP_EMIT_BUFSIZE=512")
        p = subprocess.run([exe], capture_output=True, env=self.env(), timeout=30)
        self.assertEqual(b"-1 -1 -1 0 1 errno_kept=1\n", p.stdout)
        lines = p.stderr.decode().split("\n")
        self.assertEqual("", lines.pop())
        self.assertEqual(4, len(lines), lines)
        self.assertEqual('TELEMETRY_ERROR: telecap_emit: line longer than 512 bytes, dropped: '
                         'event "tool.result_size"', lines[0])
        self.assertTrue(lines[1].startswith("TELEMETRY_ERROR: telecap_emit: a NULL key"))
        self.assertEqual("TELEMETRY_ERROR: telecap_emit: NULL event name", lines[2])
        self.assertTrue(lines[3].startswith('TELEMETRY:{"event": "tool.result_size", '
                                            '"measurements": {"message_size": 5}'))

    def test_broken_pipe_and_closed_fd_do_not_kill(self):
        src = os.path.join(self.tmp, "pipe.c")
        with open(src, "w") as f:
            f.write(r"""
#include "telecap_emit.h"
int main(void) {
    telecap_kv m[1];
    int rc, i;
    m[0] = telecap_i64("count", 1);
    errno = EDOM;
    for (i = 0; i < 3; ++i) rc = telecap_emit("python.call.start", m, 1, NULL, 0, NULL);
    printf("alive rc=%d errno_kept=%d\n", rc, errno == EDOM);
    return 0;
}
""")
        exe = compile_c(self, src, os.path.join(self.tmp, "pipe"))
        r, w = os.pipe()
        os.close(r)
        try:
            # restore_signals (the default) gives the child SIGPIPE's default action: death.
            p = subprocess.run([exe], capture_output=True, pass_fds=(w,),
                               env=self.env(TELECAP_TELEMETRY_FD=str(w)), timeout=30)
        finally:
            os.close(w)
        self.assertEqual(0, p.returncode, "killed by a signal?")
        self.assertEqual(b"alive rc=-1 errno_kept=1\n", p.stdout)
        self.assertEqual(b"", p.stderr)  # EPIPE is quiet
        p = subprocess.run([exe], capture_output=True, env=self.env(TELECAP_TELEMETRY_FD="77"),
                           timeout=30)
        self.assertEqual(b"alive rc=-1 errno_kept=1\n", p.stdout)
        self.assertEqual(3, p.stderr.count(b"TELEMETRY_ERROR: telecap_emit: cannot write to "
                                           b"fd 77: Bad file descriptor"))
        p = subprocess.run(["sh", "-c", 'exec "$0" 2>&-', exe], capture_output=True,
                           env=self.env(), timeout=30)
        self.assertEqual(b"alive rc=-1 errno_kept=1\n", p.stdout)

    def test_compiles_cleanly_everywhere(self):
        flags_c = [["-std=c99", "-D_POSIX_C_SOURCE=200809L"], ["-std=gnu99"], ["-std=c11",
                   "-D_POSIX_C_SOURCE=200809L"], ["-std=gnu17"]]
        src = os.path.join(WORKERS, "c_worker.c")
        for comp in [c for c in ("gcc", "clang") if shutil.which(c)]:
            for flags in flags_c:
                argv = [comp, *flags, "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion",
                        "-Werror", "-I", C_HEADER_DIR, "-c", src, "-o", os.devnull]
                p = subprocess.run(argv, capture_output=True, text=True)
                self.assertEqual(0, p.returncode, "%s\n%s" % (" ".join(argv), p.stderr))
        cpp = os.path.join(HERE, "cpp_span.cpp")
        for comp in [c for c in ("g++", "clang++") if shutil.which(c)]:
            for std in ("c++11", "c++14", "c++17", "c++20"):
                argv = [comp, "-std=" + std, "-Wall", "-Wextra", "-Wpedantic", "-Wshadow",
                        "-Werror", "-I", C_HEADER_DIR, "-c", cpp, "-o", os.devnull]
                p = subprocess.run(argv, capture_output=True, text=True)
                self.assertEqual(0, p.returncode, "%s\n%s" % (" ".join(argv), p.stderr))
        # strict C99 without a POSIX macro: a clear error, not a pile of warnings
        p = subprocess.run([CC, "-std=c99", "-I", C_HEADER_DIR, "-x", "c", "-c", "-", "-o",
                            os.devnull], input='#include "telecap_emit.h"\n',
                           capture_output=True, text=True)
        self.assertNotEqual(0, p.returncode)
        self.assertIn("_POSIX_C_SOURCE", p.stderr)


class CUnderTelecap(TelecapCase):

    def test_c_cases_match_the_grpc_path(self):
        src = self.path("c_cases.c")
        with open(src, "w") as f:
            f.write(c_cases_program(C_CASES))
        exe = compile_c(self, src, self.path("c_cases"))
        run = self.run_telecap([exe])
        self.assertEqual(0, run.rc, run.stderr)
        self.assertClean(run, events=len(C_CASES))
        pid = run.worker_pid()
        for (event, m, md, cid), actual in zip(C_CASES, run.events):
            self.assertTimestamp(run, actual["timestamp_ns"])
            exp = expected_event(event, {k: py_value(t, v) for k, t, v in m},
                                 {k: py_value(t, v) for k, t, v in md}, cid, pid=pid,
                                 timestamp_ns=actual["timestamp_ns"])
            self.assertEvent(exp, actual, event)

    def test_c_worker_example(self):
        exe = compile_c(self, os.path.join(WORKERS, "c_worker.c"), self.path("c_worker"))
        run = self.run_telecap([exe, "6"])
        self.assertEqual(0, run.rc, run.stderr)
        self.assertClean(run, events=6 * 3 + 4)
        pid = run.worker_pid()
        ev = list(run.events)
        for i in range(6):
            cid = "req-%s-0-%d" % (POOL, i)
            md = {"tool": "checksum", "worker_pid": str(pid)}
            if i % 3 == 2:
                self.check_span(run, ev[:2], "tool.execution", md, cid, pid=pid,
                                outcome="exception",
                                error=("ChecksumError", 'checksum mismatch in "block 7"'))
                ev = ev[2:]
            else:
                self.check_span(run, ev[:2], "tool.execution", md, cid, pid=pid, outcome="stop")
                self.assertEvent(expected_event("tool.result_size", {"message_size": 1000 + i},
                                                {"tool": "checksum"}, cid, pid=pid,
                                                timestamp_ns=ev[2]["timestamp_ns"]), ev[2])
                ev = ev[3:]
            mem = ev.pop(0)
            self.assertEqual(["snakepit", "python", "memory", "sampled"], mem["event"])
            self.assertGreater(mem["measurements"]["rss_bytes"], 0)
            self.assertIsNone(mem["correlation_id"])
        self.assertEqual([], ev)
        self.assertIn(b"c worker", run.passthrough)

    def test_c_worker_off_and_dedicated_fd(self):
        exe = compile_c(self, os.path.join(WORKERS, "c_worker.c"), self.path("c_worker"))
        run = self.run_telecap([exe, "3"], env={"TELECAP_TELEMETRY": "off"}, tag="off")
        self.assertEqual(0, run.rc)
        self.assertEqual([], run.events)
        self.assertEqual(0, run.stats["telemetry_lines"])
        run = self.run_telecap([exe, "3"], "--telemetry-fd", "9", tag="fd")
        self.assertEqual(0, run.rc)
        self.assertClean(run, events=3 * 3 + 2)
        self.assertEqual(run.stats["telemetry_lines"], len(run.events))

    def test_cpp_span(self):
        exe = compile_c(self, os.path.join(HERE, "cpp_span.cpp"), self.path("cpp_span"), cxx=True)
        run = self.run_telecap([exe])
        self.assertEqual(0, run.rc, run.stderr)
        self.assertClean(run, events=10)
        pid = run.worker_pid()
        ev = run.events
        self.check_span(run, ev[0:2], "tool.execution", {"tool": "search", "worker_pid": str(pid)},
                        "cpp-1", pid=pid, outcome="stop")
        self.check_span(run, ev[2:4], "tool.execution", {"tool": "unwind"}, None, pid=pid,
                        outcome="exception", error=("unknown", ""))
        self.check_span(run, ev[4:6], "python.call", {"function": "write"}, "cpp-3", pid=pid,
                        outcome="exception",
                        error=("app::disk_full", 'no space left on "/data"'))
        self.check_span(run, ev[6:8], "python.call", {}, None, pid=pid, outcome="stop")
        self.check_span(run, ev[8:10], "tool.execution", {"tool": "manual"}, None, pid=pid,
                        outcome="exception", error=("std::out_of_range", "index 7"))
        self.assertIn(b"rethrown disk_full\n", run.passthrough)
        self.assertIn(b"value 42\n", run.passthrough)


# ==== Shell emitter ============================================================================

SHELL_CASES_SCRIPT = r"""
. "$EMITTER"
set -eu
printf '%s\n' "$$" > "$REPORT"
telecap_emit python.call.stop '{"duration": 1500, "count": 1.5}' '{"tool": "sh", "ok": true, "n": null}' req-1
telecap_emit python.memory.sampled '{"rss_bytes": 1, "vms_bytes": 2}'
telecap_emit python.cpu.sampled '{"cpu_percent": NaN}' '{}' ''
cid=$(printf 'id "q" \\ tab\t nl\n \303\274 ctrl\001 end')
telecap_emit tool.execution.exception '{"duration": 3}' '{"error_type": "E"}' "$cid"
telecap_emit python.call.start '{"count": 1}' '{"function": "f"}' 'plain:id/with-some=chars,ok'
echo "not telemetry" >&2
( TELECAP_TELEMETRY=off telecap_emit python.call.start '{"count": 99}' )
telecap_emit ''   # no event: a TELEMETRY_ERROR line, still returns 0
echo done >&2
"""

SHELL_EXPECTED = [
    ("python.call.stop", {"duration": 1500, "count": 1.5}, {"tool": "sh", "ok": True, "n": None},
     "req-1"),
    ("python.memory.sampled", {"rss_bytes": 1, "vms_bytes": 2}, None, None),
    ("python.cpu.sampled", {"cpu_percent": math.nan}, {}, ""),
    ("tool.execution.exception", {"duration": 3}, {"error_type": "E"},
     'id "q" \\ tab\t nl\n \u00fc ctrl\x01 end'),
    ("python.call.start", {"count": 1}, {"function": "f"}, "plain:id/with-some=chars,ok"),
]


class ShellEmitter(TelecapCase):

    def run_script(self, shell_argv, script, *opts, env=None, tag="sh"):
        path = self.path(tag + ".sh")
        with open(path, "w") as f:
            f.write(script)
        e = {"EMITTER": SHELL_EMITTER, "REPORT": self.path(tag + ".report")}
        e.update(env or {})
        return self.run_telecap([*shell_argv, path], *opts, env=e, tag=tag)

    def test_control_fd_checked(self):
        script = '. "$EMITTER"; read -r line; echo "got $line"; echo "env ${TELECAP_CONTROL_FD-none}"'
        for name, argv in shells():
            with self.subTest(shell=name):
                env = dict(os.environ, EMITTER=SHELL_EMITTER, TELECAP_CONTROL_FD="0")
                env.pop("TELECAP_TELEMETRY_FD", None)
                p = subprocess.run([*argv, "-c", script], env=env, input=b'{"seq": 2}\n',
                                   capture_output=True)
                self.assertEqual(b'got {"seq": 2}\nenv none\n', p.stdout)
                self.assertEqual(b"TELEMETRY_ERROR: telecap_emit: TELECAP_CONTROL_FD ignored: "
                                 b"not an fd above 2\n", p.stderr)
                with tempfile.TemporaryFile() as f:
                    env["TELECAP_CONTROL_FD"] = str(f.fileno())
                    p = subprocess.run([*argv, "-c", script], env=env, input=b"x\n",
                                       pass_fds=(f.fileno(),), capture_output=True)
                self.assertEqual(b"got x\nenv none\n", p.stdout)
                self.assertEqual(b"TELEMETRY_ERROR: telecap_emit: TELECAP_CONTROL_FD ignored: "
                                 b"not a pipe or a socket\n", p.stderr)

    def test_shell_cases_match_the_grpc_path(self):
        for name, argv in shells():
            with self.subTest(shell=name):
                run = self.run_script(argv, SHELL_CASES_SCRIPT, tag=name)
                self.assertEqual(0, run.rc, run.stderr)
                self.assertClean(run, events=len(SHELL_EXPECTED), emitter_errors=1)
                with open(self.path(name + ".report")) as f:
                    pid = int(f.read())
                self.assertEqual(pid, run.worker_pid())
                for (event, m, md, cid), actual in zip(SHELL_EXPECTED, run.events):
                    self.assertTimestamp(run, actual["timestamp_ns"])
                    self.assertEvent(expected_event(event, m, md, cid, pid=pid,
                                                    timestamp_ns=actual["timestamp_ns"]),
                                     actual, "%s %s" % (name, event))
                self.assertIn(b"not telemetry\n", run.passthrough)
                self.assertIn(b"TELEMETRY_ERROR: telecap_emit: no event name\n", run.passthrough)
                self.assertTrue(run.passthrough.endswith(b"done\n"))

    def test_shell_worker_example(self):
        for name, argv in shells():
            with self.subTest(shell=name):
                run = self.run_telecap([*argv, os.path.join(WORKERS, "shell_worker.sh"), "3"],
                                       tag=name)
                self.assertEqual(0, run.rc, run.stderr)
                self.assertClean(run, events=9)
                pid = run.worker_pid()
                for i in range(3):
                    cid = "req-%s-0-%d" % (POOL, i)
                    start, stop, size = run.events[3 * i:3 * i + 3]
                    md = {"tool": "wc", "worker_pid": pid}
                    self.check_span(run, [start, stop], "tool.execution", md, cid, pid=pid,
                                    outcome="stop")
                    self.assertEqual(["snakepit", "python", "tool", "result_size"], size["event"])
                    self.assertIs(type(size["measurements"]["message_size"]), int)

    def test_shell_off_and_dedicated_fd(self):
        for name, argv in shells():
            with self.subTest(shell=name):
                script = SHELL_CASES_SCRIPT
                run = self.run_script(argv, script, env={"TELECAP_TELEMETRY": "off"},
                                      tag=name + "-off")
                self.assertEqual(0, run.rc)
                self.assertEqual([], run.events)
                self.assertEqual(0, run.stats["telemetry_lines"])
                fake = ("echo 'TELEMETRY:{\"event\": \"python.call.start\", \"measurements\": "
                        "{\"count\": 666}}' >&2\n")
                run = self.run_script(argv, fake + script, "--telemetry-fd", "4",
                                      tag=name + "-fd")
                self.assertEqual(0, run.rc, run.stderr)
                self.assertEqual(len(SHELL_EXPECTED), len(run.events))
                self.assertIn(b'TELEMETRY:{"event": "python.call.start", "measurements": '
                              b'{"count": 666}}\n', run.passthrough)
                self.assertNotIn(666, [e["measurements"].get("count") for e in run.events])
                # the emitter's error line goes to the dedicated fd too, where it is counted
                self.assertEqual(1, run.stats["emitter_errors"])


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        _ARGV_BIN = sys.argv.pop(1)
    unittest.main()
