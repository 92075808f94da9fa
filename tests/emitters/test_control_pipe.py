"""The control pipe (docs/control.md, "The control pipe"): telecap run --telemetry-fd N gives
each worker TELECAP_CONTROL_FD with its controls, and the emitters apply them locally.

Real processes only: telecap run with --telemetry-fd and --control, `telecap ctl`, and a worker
driven over its stdin (ctl_worker.py) that answers each command with a status line on stdout.
No sleep is a handshake: every wait is for a condition, with a deadline.

    TELECAP_BIN=build/telecap python3 -m unittest tests/emitters/test_control_pipe.py
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PY_EMITTER_DIR = os.path.join(REPO, "adapters", "emitters", "python")


def telecap_bin():
    return os.environ.get("TELECAP_BIN") or os.path.join(REPO, "build", "telecap")


def wait_for(cond, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


class Telecap:
    """telecap run --telemetry-fd 3 --control SOCK -o jsonl:EVENTS -- WORKER."""

    def __init__(self, test, worker_argv, extra=()):
        self.dir = tempfile.mkdtemp(prefix="telecap-ctlpipe-")
        self.sock = os.path.join(self.dir, "ctl.sock")
        self.events = os.path.join(self.dir, "events.jsonl")
        self.proc = subprocess.Popen(
            [telecap_bin(), "run", "--telemetry-fd", "3", "--control", self.sock,
             "-o", "jsonl:" + self.events, "--grace", "2", *extra, "--"] + worker_argv,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        test.addCleanup(self.close)
        wait_for(lambda: os.path.exists(self.sock) or self.proc.poll() is not None, "the socket")
        if self.proc.poll() is not None:
            raise AssertionError("telecap exited: " + self.proc.stderr.read())

    def ctl(self, *args):
        r = subprocess.run([telecap_bin(), "ctl", "--socket", self.sock, "--json", *args],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise AssertionError("ctl %s: %s" % (args, r.stderr))
        return json.loads(r.stdout)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("the worker is gone: " + self.proc.stderr.read())
        return json.loads(line)

    def worker(self, key):
        return self.ctl("status")["workers"]["default-0"][key]

    def delivered(self, name):
        n = 0
        with open(self.events) as f:
            for line in f:
                ev = json.loads(line)
                if ev.get("event", [])[-3:] == name.split(".")[-3:] and \
                        ".".join(ev["event"]).endswith(name):
                    n += 1
        return n

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


def py_worker():
    return [sys.executable, os.path.join(HERE, "ctl_worker.py"), PY_EMITTER_DIR]


class PythonEmitterControls(unittest.TestCase):
    def test_initial_state_is_there_before_the_first_emit(self):
        t = Telecap(self, py_worker(), ["--deny", "python.*"])
        s = t.ask("emit 10 python.call.start")
        self.assertEqual(s["seq"], 1)
        self.assertEqual(s["deny"], ["python.*"])
        self.assertEqual(s["formatted"], 0)  # none of the ten was even formatted
        self.assertEqual(s["removed"]["filtered"], 10)

    def test_toggle_off_then_on(self):
        t = Telecap(self, py_worker())
        s = t.ask("emit 100 python.call.start")
        self.assertEqual((s["seq"], s["formatted"]), (1, 100))
        self.assertEqual(t.ctl("toggle", "off")["workers"], 1)
        s = t.ask("wait 2")
        self.assertEqual((s["seq"], s["enabled"]), (2, False))
        s = t.ask("emit 1000 python.call.start")
        self.assertEqual(s["formatted"], 100)  # the worker formatted none of them
        t.ctl("toggle", "on")
        s = t.ask("wait 3")
        s = t.ask("emit 50 python.call.start")
        self.assertEqual(s["formatted"], 150)
        wait_for(lambda: t.worker("events") == 150, "150 events at telecap")
        self.assertEqual(t.worker("dropped")["disabled"], 0)  # nothing reached telecap's gate

    def test_sampling_with_patterns_is_applied_once(self):
        t = Telecap(self, py_worker())
        t.ctl("sample", "0.1", "tool.*")
        s = t.ask("wait 2")
        self.assertEqual((s["sampling_rate"], s["sampling_patterns"]), (0.1, ["tool.*"]))
        s = t.ask("emit 3000 tool.execution.start")
        kept = s["formatted"]
        self.assertTrue(150 <= kept <= 480, kept)  # 10 % of 3000, binomial bounds
        s = t.ask("emit 500 python.call.start")  # not matched: not sampled
        self.assertEqual(s["formatted"], kept + 500)
        # telecap delivers every line the emitter sampled: it does not draw a second time.
        wait_for(lambda: t.worker("events") == kept + 500, "the events at telecap")
        self.assertEqual(t.worker("dropped")["sampled"], 0)
        wait_for(lambda: t.delivered("tool.execution.start") == kept, "the delivered events")

    def test_filter_deny_wins_and_star_crosses_dots(self):
        t = Telecap(self, py_worker())
        t.ctl("filter", "--allow", "tool*", "--deny", "*.stop")
        t.ask("wait 2")
        s = t.ask("emit 100 tool.execution.start")
        self.assertEqual(s["formatted"], 100)  # tool* matches across the dots
        s = t.ask("emit 100 tool.execution.stop")  # allowed, but denied: deny wins
        s = t.ask("emit 100 python.call.start")  # not allowed
        self.assertEqual(s["formatted"], 100)
        self.assertEqual(s["removed"]["filtered"], 200)
        t.ctl("reset")
        s = t.ask("wait 3")
        self.assertEqual((s["allow"], s["deny"]), ([], []))

    def test_rate_limit_is_not_sent(self):
        t = Telecap(self, py_worker())
        t.ctl("rate-limit", "5")
        t.ctl("toggle", "off")
        s = t.ask("wait 2")
        self.assertEqual((s["seq"], s["enabled"]), (2, False))  # one new state, not two

    def test_an_emitter_that_ignores_controls_changes_nothing(self):
        # A worker writing lines itself: telecap's gates still apply.
        code = ("import os,sys\n"
                "for l in sys.stdin:\n"
                "    for i in range(int(l)):\n"
                "        os.write(3, b'TELEMETRY:{\"event\": \"python.call.start\", "
                "\"measurements\": {}}\\n')\n"
                "    print('done', flush=True)\n")
        t = Telecap(self, [sys.executable, "-c", code])
        t.ctl("toggle", "off")
        t.proc.stdin.write("20\n")
        t.proc.stdin.flush()
        self.assertEqual(t.proc.stdout.readline().strip(), "done")
        wait_for(lambda: t.worker("dropped")["disabled"] == 20, "20 disabled at telecap")

    def test_the_fd_is_the_announced_one_and_children_do_not_get_it(self):
        t = Telecap(self, py_worker(), ["--deny", "x.*"])
        s = t.ask("rawread")  # before the emitter read anything
        self.assertTrue(s["target"].startswith("pipe:"), s["target"])
        self.assertEqual(s["last"]["seq"], 1)
        self.assertEqual(s["last"]["deny"], ["x.*"])
        s = t.ask("child")
        self.assertEqual(s["fd"], "4")  # N + 1
        self.assertFalse(s["child_has_fd"])  # the emitter made it close-on-exec
        self.assertFalse(s["child_has_env"])  # and took the variable out of os.environ

    def test_a_worker_that_never_reads(self):
        t = Telecap(self, py_worker())
        pid = t.proc.pid

        def rss_kb():
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])

        # Long patterns: the 64 KiB pipe is full after a few dozen states.
        long = "a" * 3000
        before = None
        changes = 300
        t0 = time.monotonic()
        for i in range(changes):
            r = t.ctl("filter", "--deny", "%s%d*" % (long, i))
            self.assertEqual(r["workers"], 1)
            if i == 50:
                before = rss_kb()
        elapsed = time.monotonic() - t0
        after = rss_kb()
        self.assertLess(after - before, 2048, (before, after))  # bounded: no backlog
        self.assertLess(elapsed, 60)
        # The pipe holds the oldest states; the latest comes when the worker reads (maybe
        # within the same read, once telecap saw room), never the backlog between them.
        seen = []

        def latest():
            r = t.ask("rawread")
            seen.append(r)
            return r["last"] if r["last"] and r["last"]["seq"] == changes + 1 else None

        last = wait_for(latest, "the latest state")
        total = sum(r["raw_lines"] for r in seen)
        self.assertLess(total, changes // 2, total)
        self.assertEqual(last["deny"], ["%s%d*" % (long, changes - 1)])


if __name__ == "__main__":
    unittest.main()
