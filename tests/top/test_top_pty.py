"""telecap top's interactive mode under a pseudo-terminal: the alternate screen and raw keys
while it runs, the keys (s, r, p, q), a resize, and the terminal as it was on every way out
(q, SIGTERM, the telecap it watches going away).

Run with TELECAP_BIN set (ctest does): python3 -m unittest tests/top/test_top_pty.py
"""

import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
import unittest

BIN = os.environ.get("TELECAP_BIN", "build/telecap")

WORKER = ("while :; do "
          "echo 'TELEMETRY:{\"event\":\"python.call.start\",\"measurements\":{}}' >&2; "
          "sleep 0.02; done")


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def last_frame(raw):
    """The last screen top drew: the text after its last cursor-home, as lines."""
    frame = raw.rsplit("\x1b[H", 1)[-1]
    frame = frame.split("\x1b[J", 1)[0]
    # The terminal turns top's "\r\n" into "\r\r\n" (ONLCR).
    return [line.replace("\x1b[K", "").replace("\r", "") for line in frame.split("\n")]


def frame_complete(raw):
    """top has drawn its last frame to the end (the clear-to-end after its rows)."""
    return "\x1b[J" in raw.rsplit("\x1b[H", 1)[-1]


def frame_line(raw, i):
    """Line i of the last frame, "" while that frame is not drawn that far yet."""
    lines = last_frame(raw)
    return lines[i] if i < len(lines) else ""


def sort_line(raw):
    """The summary's "sort: ..." line of the last frame, "" while it is not drawn yet."""
    return next((line for line in last_frame(raw) if line.startswith("sort: ")), "")


class TopUnderAPty(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.sock = os.path.join(self.dir.name, "ctl.sock")
        self.telecap = subprocess.Popen(
            [BIN, "run", "--control", self.sock, "--pool", "p", "--instances", "2",
             "-o", "null", "--passthrough", "none", "--grace", "2", "--",
             "/bin/sh", "-c", WORKER],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            self.assertLess(time.monotonic(), deadline, "no control socket")
            time.sleep(0.01)
        self.master, self.slave = os.openpty()
        set_size(self.slave, 30, 120)
        self.cooked = termios.tcgetattr(self.slave)
        self.out = ""
        self.top = None

    def tearDown(self):
        if self.top and self.top.poll() is None:
            self.top.kill()
            self.top.wait()
        if self.telecap.poll() is None:
            self.telecap.terminate()
            self.telecap.wait(10)
        os.close(self.master)
        os.close(self.slave)
        self.dir.cleanup()

    def start_top(self, *args):
        self.top = subprocess.Popen([BIN, "top", "--socket", self.sock, *args],
                                    stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                    start_new_session=True)

    def read_until(self, predicate, timeout=10):
        """Reads what top writes until predicate(text so far) holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.out):
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "top did not show it; it wrote:\n" + self.out[-3000:])
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.out += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:
                    break

    def drain_until_exit(self):
        code = self.top.wait(10)
        while select.select([self.master], [], [], 0)[0]:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                break
            if not data:
                break
            self.out += data.decode("utf-8", "replace")
        return code

    def assert_restored(self):
        self.assertEqual(termios.tcgetattr(self.slave), self.cooked, "termios not restored")
        tail = self.out.rsplit("\x1b[?1049h", 1)[-1]
        self.assertIn("\x1b[?1049l", tail, "still on the alternate screen")
        self.assertIn("\x1b[?25h", tail, "cursor still hidden")

    def test_keys_then_q_restores_the_terminal(self):
        self.start_top("--interval", "200")
        # A whole frame with rates and both workers (a frame may arrive in several reads).
        self.read_until(lambda t: frame_complete(t) and
                        re.search(r"rates over 0\.\d+s", "\n".join(last_frame(t))) and
                        any("p-1" in line for line in last_frame(t)))
        self.assertIn("\x1b[?1049h", self.out)  # the alternate screen
        raw = termios.tcgetattr(self.slave)
        self.assertFalse(raw[3] & termios.ICANON, "not in raw mode")
        self.assertFalse(raw[3] & termios.ECHO, "echo still on")
        frame = last_frame(self.out)
        self.assertTrue(any(l.startswith("WORKER ") for l in frame), frame)
        self.assertTrue(any("keys: q quit" in l for l in frame), frame)
        self.assertLessEqual(len(frame), 30)
        self.assertTrue(all(len(l) <= 120 for l in frame), frame)

        os.write(self.master, b"s")
        self.read_until(lambda t: "sort: events" in sort_line(t))
        os.write(self.master, b"r")
        self.read_until(lambda t: "sort: events (reversed)" in sort_line(t))
        os.write(self.master, b"p")
        self.read_until(lambda t: "pool: p " in sort_line(t))

        # A narrower terminal: the next frame fits it.
        set_size(self.slave, 20, 50)
        self.top.send_signal(signal.SIGWINCH)
        self.read_until(lambda t: frame_complete(t) and all(len(l) <= 50 for l in last_frame(t))
                        and any(l.startswith("WORKER ") for l in last_frame(t)))

        os.write(self.master, b"q")
        self.assertEqual(self.drain_until_exit(), 0, self.out[-2000:])
        self.assert_restored()

    def test_sigterm_restores_the_terminal(self):
        self.start_top("--interval", "200")
        self.read_until(lambda t: "p-1" in t)
        self.top.terminate()
        self.assertEqual(self.drain_until_exit(), 0)
        self.assert_restored()

    def test_telecap_going_away_is_an_error_after_the_terminal_is_restored(self):
        self.start_top("--interval", "100")
        self.read_until(lambda t: "p-1" in t)
        self.telecap.terminate()
        self.telecap.wait(10)
        self.assertEqual(self.drain_until_exit(), 1, self.out[-2000:])
        self.assert_restored()
        after = self.out.rsplit("\x1b[?1049l", 1)[-1]
        self.assertIn("telecap: top: lost " + self.sock, after)

    def test_no_telecap_is_an_error_on_the_normal_screen(self):
        self.top = subprocess.Popen([BIN, "top", "--socket", self.sock + ".nobody"],
                                    stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                    start_new_session=True)
        self.assertEqual(self.drain_until_exit(), 1)
        self.assertIn("telecap: top: cannot connect to " + self.sock + ".nobody", self.out)
        self.assertNotIn("\x1b[?1049h", self.out)  # the screen was never taken
        self.assertEqual(termios.tcgetattr(self.slave), self.cooked)



class StalledServer:
    """A control socket that answers the first status request and then, on every later
    connection, reads the request and never replies (a telecap whose loop is stuck)."""

    REPLY = {"ok": True, "uptime_seconds": 1.0, "stopping": False,
             "pools": [{"name": "p", "instances": 1}],
             "workers": {"p-0": {"pool": "p", "pid": 10, "state": "running",
                                 "restarts": 0, "uptime_seconds": 1.0, "events": 0,
                                 "lines": 0, "rejected": {}}},
             "listeners": [], "outputs": [], "queue_depth": 0}

    def __init__(self, path):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(8)
        self.stalled = threading.Event()  # a request that will never get its reply arrived
        self.held = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        answered = False
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            f = conn.makefile("rb")
            if not f.readline():
                conn.close()
                continue
            if not answered:
                conn.sendall(json.dumps(self.REPLY).encode() + b"\n")
                conn.close()
                answered = True
            else:
                self.held.append((conn, f))
                self.stalled.set()

    def close(self):
        self.listener.close()
        for conn, _ in self.held:
            conn.close()


class TopWithAStalledTelecap(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.sock = os.path.join(self.dir.name, "ctl.sock")
        self.server = StalledServer(self.sock)
        self.master, self.slave = os.openpty()
        set_size(self.slave, 30, 120)
        self.out = ""

    def tearDown(self):
        if self.top.poll() is None:
            self.top.kill()
            self.top.wait()
        self.server.close()
        os.close(self.master)
        os.close(self.slave)
        self.dir.cleanup()

    def test_q_quits_while_a_status_reply_is_awaited(self):
        self.top = subprocess.Popen([BIN, "top", "--socket", self.sock, "--interval", "100"],
                                    stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                    start_new_session=True)
        # The first reply was drawn; the next request waits for a reply that never comes (top
        # gives up on it after 5 s).
        deadline = time.monotonic() + 10
        while not frame_complete(self.out):
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "no frame; top wrote:\n" + self.out[-2000:])
            if select.select([self.master], [], [], left)[0]:
                self.out += os.read(self.master, 65536).decode("utf-8", "replace")
        self.assertTrue(self.server.stalled.wait(10), "top sent no second request")
        sent = time.monotonic()
        os.write(self.master, b"q")
        code = self.top.wait(10)
        took = time.monotonic() - sent
        self.assertEqual(code, 0)
        # Well under the reply timeout (5 s): the key was not waiting behind the request.
        self.assertLess(took, 2.0)


if __name__ == "__main__":
    unittest.main()
