#!/usr/bin/env python3
"""What `telecap top` costs (README, docs/top.md): telecap's CPU and top's own while top watches
200 workers at its default 1 s interval.

Usage: bench/top_bench.py TELECAP_BIN [--workers 200] [--seconds 20] [--runs 5]

Each run starts `telecap run --control S -o null --passthrough none` with WORKERS light workers
(tests' fixture_write_lines: one telemetry line a second each, no forks; found next to
TELECAP_BIN under tests/), waits until every worker runs, then measures over SECONDS:
  1. baseline: telecap alone;
  2. with top: `telecap top --socket S` interactive under a pseudo-terminal (200 columns, 60
     lines; the screen is read and thrown away), from its first frame on; then `q`.
CPU shares are of one core: telecap's from /proc/PID/stat (utime + stime of its own threads,
10 ms ticks), top's from wait4's rusage over its whole life (start-up included).
Prints each run, then the median and best of the runs for: telecap alone, telecap with top,
what top adds to telecap, and top itself.
"""
import argparse
import fcntl
import json
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def status(sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock_path)
    f = s.makefile("rwb")
    f.write(b'{"cmd":"status"}\n')
    f.flush()
    reply = json.loads(f.readline())
    s.close()
    return reply


def wait_running(sock_path, workers, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(sock_path):
            try:
                st = status(sock_path)
                running = sum(1 for w in st["workers"].values() if w["state"] == "running")
                if running == workers:
                    return
            except OSError:
                pass
        time.sleep(0.1)  # polling for readiness, not a handshake
    sys.exit("telecap did not start every worker")


def drain(fd, seconds):
    """Reads (and drops) what the terminal gets for `seconds`; the bytes read."""
    end = time.monotonic() + seconds
    n = 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return n
        if select.select([fd], [], [], left)[0]:
            try:
                n += len(os.read(fd, 1 << 16))
            except OSError:
                return n


def one_run(tc, fixture, workers, seconds, work):
    sock_path = os.path.join(work, "ctl.sock")
    tel = subprocess.Popen(
        [tc, "run", "--control", sock_path, "--pool", "light", "--instances", str(workers),
         "-o", "null", "--passthrough", "none", "--grace", "2", "--",
         fixture, "100000000", "delay_ms=1000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_running(sock_path, workers)
        time.sleep(2)  # let the start-up settle before measuring
        c0 = cpu_seconds(tel.pid)
        t0 = time.monotonic()
        time.sleep(seconds)
        base = (cpu_seconds(tel.pid) - c0) / (time.monotonic() - t0)

        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
        spawned = time.monotonic()
        top = subprocess.Popen([tc, "top", "--socket", sock_path, "--interval", "1000"],
                               stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        # telecap from top's first frame on: what a screen left open costs it.
        first = b""
        while b"WORKER" not in first:
            if not select.select([master], [], [], 10)[0]:
                sys.exit("top drew nothing")
            first += os.read(master, 1 << 16)
        c0, t0 = cpu_seconds(tel.pid), time.monotonic()
        drain(master, seconds)
        with_top = (cpu_seconds(tel.pid) - c0) / (time.monotonic() - t0)
        os.write(master, b"q")
        drain(master, 0.2)
        # top's own CPU over its whole life, start-up included, to the microsecond
        # (/proc's ticks are 10 ms): wait4's rusage.
        _, code, usage = os.wait4(top.pid, 0)
        top.returncode = os.waitstatus_to_exitcode(code)
        top_own = (usage.ru_utime + usage.ru_stime) / (time.monotonic() - spawned)
        if top.returncode != 0:
            sys.exit("top did not exit 0 on q")
        os.close(master)
        os.close(slave)
        return base, with_top, top_own
    finally:
        tel.terminate()
        tel.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("telecap")
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    tc = os.path.abspath(a.telecap)
    fixture = os.path.join(os.path.dirname(tc), "tests", "fixture_write_lines")
    if not os.access(fixture, os.X_OK):
        sys.exit(f"no {fixture}: build the tests")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for i in range(a.runs):
            base, with_top, top_own = one_run(tc, fixture, a.workers, a.seconds, work)
            rows.append((base, with_top, with_top - base, top_own))
            print(f"run {i + 1}: telecap alone {base * 100:.2f} %, with top "
                  f"{with_top * 100:.2f} % ({(with_top - base) * 100:+.2f}), "
                  f"top {top_own * 100:.2f} % of a core", flush=True)
    print(f"\n{a.workers} workers, one telemetry line a second each; top at a 1 s interval; "
          f"{a.seconds:.0f} s windows, {a.runs} runs; % of one core")
    print("| | median | best |")
    print("|---|---|---|")
    names = ["telecap alone", "telecap with top", "added to telecap by top", "top itself"]
    for k, name in enumerate(names):
        xs = [r[k] for r in rows]
        best = min(xs)
        print(f"| {name} | {statistics.median(xs) * 100:.2f} | {best * 100:.2f} |")


if __name__ == "__main__":
    main()
