#!/usr/bin/env python3
"""What telecap_emit() costs a C worker when telemetry is switched off or filtered away.

The worker is tests/emitters/c_controls.c built with -O2 (the real 100 ms between looks at the
control pipe); in its "loop" mode it times N telecap_emit() calls of one event with
CLOCK_MONOTONIC and prints ns per call. Variants:

  ctl toggle off      under `telecap run --telemetry-fd 3 --control SOCK`, after
                      `telecap ctl toggle off` (the worker waits until it applied it)
  TELECAP_TELEMETRY   TELECAP_TELEMETRY=off, no control pipe (a getenv per call)
  deny (filter)       a control pipe with {"deny": ["x.*"]}: the pattern is matched per call
  sampling rate 0     a control pipe with {"sampling_rate": 0}: a draw-free removal
  written             no controls, each line written to /dev/null (for scale)

Each variant keeps its best of RUNS runs.

    python3 bench/emitter_off_c_bench.py [build/telecap] [runs]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
N = 2_000_000


def build(d):
    cc = shutil.which("cc") or shutil.which("gcc")
    exe = os.path.join(d, "c_controls")
    subprocess.run([cc, "-std=c99", "-O2", "-pthread", "-I",
                    os.path.join(REPO, "adapters", "emitters", "c"),
                    os.path.join(REPO, "tests", "emitters", "c_controls.c"), "-o", exe],
                   check=True)
    return exe


def loop(exe, mode, state=None, env=None, n=N):
    e = dict(os.environ)
    e.pop("TELECAP_CONTROL_FD", None)
    e.pop("TELECAP_TELEMETRY", None)
    e["TELECAP_TELEMETRY_FD"] = "9"
    e.update(env or {})
    fds = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 9, inheritable=True)
    fds.append(9)
    w = None
    if state is not None:
        r, w = os.pipe()
        os.write(w, (json.dumps(state) + "\n").encode())
        e["TELECAP_CONTROL_FD"] = str(r)
        fds.append(r)
    out = subprocess.run([exe, mode, str(n), "x.y"], env=e, pass_fds=fds, capture_output=True,
                         text=True, check=True).stdout.split()
    os.close(9)
    os.close(devnull)
    if w is not None:
        os.close(w)
        os.close(r)
    return float(out[1])


def through_telecap(telecap, exe, n=N):
    d = tempfile.mkdtemp(prefix="telecap-cbench-")
    sock = os.path.join(d, "ctl.sock")
    p = subprocess.Popen([telecap, "run", "--telemetry-fd", "3", "--control", sock,
                          "-o", "jsonl:/dev/null", "--", exe, "loop-off", str(n), "x.y"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.005)
    subprocess.run([telecap, "ctl", "--socket", sock, "toggle", "off"], check=True,
                   stdout=subprocess.DEVNULL)
    out, _ = p.communicate(timeout=120)
    written, ns = out.strip().splitlines()[-1].split()
    assert written == "0", out
    return float(ns)


def main():
    telecap = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build", "telecap")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    exe = build(tempfile.mkdtemp(prefix="telecap-cbench-"))
    variants = [
        ("ctl toggle off (control pipe)", lambda: through_telecap(telecap, exe)),
        ("TELECAP_TELEMETRY=off", lambda: loop(exe, "loop", env={"TELECAP_TELEMETRY": "off"})),
        ("deny x.* (filter)", lambda: loop(exe, "loop", {"seq": 1, "deny": ["x.*"]})),
        ("sampling rate 0", lambda: loop(exe, "loop", {"seq": 1, "sampling_rate": 0})),
        ("written to /dev/null", lambda: loop(exe, "loop", n=N // 10)),
    ]
    best = {name: float("inf") for name, _ in variants}
    for _ in range(runs):
        for name, fn in variants:
            best[name] = min(best[name], fn())
    print("telecap_emit() ns per call, %d calls, best of %d (%d variables in the environment):"
          % (N, runs, len(os.environ)))
    for name, _ in variants:
        print("  %-32s %8.1f ns" % (name, best[name]))


if __name__ == "__main__":
    main()
