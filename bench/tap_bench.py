#!/usr/bin/env python3
"""What `telecap ctl tap` costs the telecap it taps (docs/control.md "Tap", issue 18's numbers).

Usage: bench/tap_bench.py TELECAP_BIN [RUNS]   (RUNS: paired runs, default 5)

1. telecap's own CPU (process_cpu_seconds_total from --stats: all its threads, not the
   worker's) while one worker sends it 100,000 events/s for SECONDS (default 3) seconds,
   `-o jsonl:/dev/null --passthrough none`, three ways in each run, interleaved:
     - no tap (the baseline),
     - a tap reading every event (`telecap ctl tap > /dev/null`),
     - a tap whose pattern matches nothing (`telecap ctl tap 'nothing.*'`),
     - a tap that never reads (a client that asks for a tap and never reads its socket),
     - for scale, no tap but a second `-o jsonl:/dev/null` (what one more JSON output costs).
   Each tap is open before the worker writes its first line (it waits for a file).
   Printed: the median and best of the runs, and the ratio to the baseline of the same run
   (median and best of the ratios). Goals: reading tap <= 1.30, no-match tap <= 1.05; the
   never-reading tap: events/s reached and the jsonl output's events as without a tap, every
   event the tap did not get counted as its drop (events = tap sent + tap dropped).
2. The no-match tap within one run (WITHIN_ROUNDS rounds, default 9; 0 skips it): one telecap,
   one worker at 100,000 events/s for 2 x WITHIN_SECONDS (default 4) seconds; telecap's CPU
   per event (`ctl stats`: process_cpu_seconds_total and telecap_events_total, read at each
   window's ends) in one window without a tap and one with a tap matching nothing, in turns
   (the tap first in every other round). The runs of part 1 differ by +-25 % from each other
   with nothing changed (each process's own luck: where its threads run, how its reads fall
   against the worker's writes); two windows of one process do not, so this ratio resolves
   the no-match goal. Median and best of the rounds.
3. Event to tap latency at 1,000 events/s: each event carries the wall-clock time the worker
   wrote it (timestamp_ns); the reader stamps each line as `telecap ctl tap` prints it. p50 and
   p99 per run over 5 s (5,000 events); median and best of the runs. Goal: p99 <= 100 ms.
"""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SECONDS = float(os.environ.get("SECONDS_PER_RUN", "3"))
RATE = int(os.environ.get("RATE", "100000"))

# The worker: waits for GO (a file), then writes RATE events a second for SECONDS, in 100
# writes a second; with STAMP each event carries the wall-clock time of its write.
WORKER = r'''
import json, os, sys, time
go, rate, seconds, stamp = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
while not os.path.exists(go):
    time.sleep(0.005)
def line(ts):
    return "TELEMETRY:" + json.dumps({"event": "python.call.stop",
        "measurements": {"duration": 1234567, "count": 1},
        "metadata": {"tool": "search", "session_id": "s1"}, "timestamp_ns": ts,
        "correlation_id": ""}) + "\n"
fixed = line(1700000000000000000)
batch = max(1, rate // 100)
start = time.monotonic()
sent = 0
while sent < rate * seconds:
    sys.stderr.write(line(time.time_ns()) * batch if stamp else fixed * batch)
    sys.stderr.flush()
    sent += batch
    ahead = sent / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)  # pacing the load
# How long its writes took: longer when telecap reads behind (a full pipe blocks a write).
with open(go + ".took", "w") as f:
    f.write(str(time.monotonic() - start))
'''


def wait_for(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


def ctl_stat(tc, sock, series):
    out = subprocess.run([tc, "ctl", "--socket", sock, "stats"], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    return -1.0


def own_cpu(stats_path):
    text = open(stats_path).read()
    cpu = float(re.search(r'"process_cpu_seconds_total":([0-9.e+-]+)', text).group(1))
    events = int(re.search(r'"events":([0-9]+)', text).group(1))
    dropped = re.search(r'"telecap_tap_dropped_total":([0-9.e+-]+)', text)
    sent = re.search(r'"telecap_tap_events_total":([0-9.e+-]+)', text)
    accepted = re.search(r'"events_accepted":([0-9]+)', text)  # the jsonl output's
    return (cpu, events, float(dropped.group(1)) if dropped else 0.0,
            float(sent.group(1)) if sent else 0.0, int(accepted.group(1)) if accepted else -1)


def one_run(tc, work, tap_args, rate, seconds, stamp=False, reader=None, outputs=()):
    """Runs telecap with the worker; tap_args None: no tap. Returns (cpu, events, wall,
    tap dropped, reader's result)."""
    sock = os.path.join(work, "ctl.sock")
    go = os.path.join(work, "go")
    stats = os.path.join(work, "stats.json")
    for p in (sock, go, stats, go + ".took"):
        if os.path.exists(p):
            os.unlink(p)
    worker = os.path.join(work, "worker.py")
    tele = subprocess.Popen(
        [tc, "run", "--control", sock, "-o", "jsonl:/dev/null", *outputs, "--passthrough", "none",
         "--stats", stats, "--", sys.executable, worker, go, str(rate), str(seconds),
         "1" if stamp else "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: os.path.exists(sock)), "no control socket"
    tap = None
    stalled = None
    if tap_args == "never reads":
        # Asks for a tap and never reads: the socket's buffers fill, then the tap drops.
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.connect(sock)
        stalled.sendall(b'{"cmd":"tap"}\n')
        assert wait_for(lambda: ctl_stat(tc, sock, "telecap_tap_open") == 1), "tap not open"
    elif tap_args is not None:
        tap = subprocess.Popen([tc, "ctl", "--socket", sock, "tap", *tap_args],
                               stdout=subprocess.PIPE if reader else subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        assert wait_for(lambda: ctl_stat(tc, sock, "telecap_tap_open") == 1), "tap not open"
    start = time.monotonic()
    open(go, "w").close()
    got = reader(tap.stdout) if reader else None  # until telecap ends the stream
    tele.wait()  # telecap ends with its worker
    # The worker's own time to write everything: what capture's throughput shows in (telecap's
    # exit, which waits up to 250 ms for a tap that does not read, is not part of it).
    wall = float(open(go + ".took").read())
    if tap:
        tap.wait()
    if stalled:
        stalled.close()
    # The tap's counters are in --stats' snapshot.
    cpu, events, dropped, sent, accepted = own_cpu(stats)
    return cpu, events, wall, (dropped, sent, accepted), got


def summary(xs, fmt="{:.3f}"):
    return f"median {fmt.format(statistics.median(xs))} best {fmt.format(min(xs))}"


def cpu_part(tc, work, runs):
    kinds = {"no tap": None, "tap, every event": [], "tap, matches nothing": ["nothing.*"],
             "tap that never reads": "never reads",
             "no tap, a second -o jsonl:/dev/null (for scale)": None}
    second = {"no tap, a second -o jsonl:/dev/null (for scale)": ("-o", "jsonl:/dev/null")}
    cpu = {k: [] for k in kinds}
    ratio = {k: [] for k in kinds}
    info = {k: [] for k in kinds}
    for _ in range(runs):
        base = None
        for name, args in kinds.items():
            c, events, wall, (dropped, sent, accepted), _ = one_run(
                tc, work, args, RATE, SECONDS, outputs=second.get(name, ()))
            cpu[name].append(c)
            # Every event the tap did not send is one it counted as dropped.
            unaccounted = events - sent - dropped if args in ([], "never reads") else 0
            info[name].append((events / wall, dropped, max(0, events - accepted), unaccounted))
            if base is None:
                base = c
            ratio[name].append(c / base)
    print(f"## telecap's own CPU at {RATE:,} events/s for {SECONDS:g} s, {runs} runs")
    print("| run | own CPU s | ratio to no tap | events/s written (the worker's pace) | tap drops (max) | "
          "jsonl output: events missed (max) | tap: events neither sent nor counted (max) |")
    print("|---|---|---|---|---|---|---|")
    for name in kinds:
        eps = statistics.median(x[0] for x in info[name])
        drops = max(x[1] for x in info[name])
        missed = max(x[2] for x in info[name])
        unaccounted = max(x[3] for x in info[name])
        print(f"| {name} | {summary(cpu[name])} | {summary(ratio[name])} | {eps:,.0f} | "
              f"{'-' if kinds[name] is None else f'{drops:.0f}'} | {missed} | "
              f"{f'{unaccounted:.0f}' if kinds[name] in ([], 'never reads') else '-'} |")
    print("goals: tap of every event <= 1.30; tap matching nothing <= 1.05; a tap that never "
          "reads: events/s and the jsonl output's events as without a tap, its drops counted")


def stat_sum(tc, sock, prefix):
    """The sum of a series over its labels (`ctl stats`)."""
    out = subprocess.run([tc, "ctl", "--socket", sock, "stats"], capture_output=True,
                         text=True).stdout
    total = 0.0
    for line in out.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name == prefix:
            total += float(line.rsplit(" ", 1)[1])
    return total


def within_part(tc, work, rounds, seconds):
    sock = os.path.join(work, "ctl.sock")
    go = os.path.join(work, "go")
    ratios = []
    for r in range(rounds):
        for p in (sock, go, go + ".took"):
            if os.path.exists(p):
                os.unlink(p)
        tele = subprocess.Popen(
            [tc, "run", "--control", sock, "-o", "jsonl:/dev/null", "--passthrough", "none",
             "--", sys.executable, os.path.join(work, "worker.py"), go, str(RATE),
             str(2 * seconds + 1.5), "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: os.path.exists(sock)), "no control socket"
        open(go, "w").close()
        time.sleep(0.5)  # the worker at its pace

        def window():
            c0, e0 = stat_sum(tc, sock, "process_cpu_seconds_total"), stat_sum(
                tc, sock, "telecap_events_total")
            time.sleep(seconds)
            c1, e1 = stat_sum(tc, sock, "process_cpu_seconds_total"), stat_sum(
                tc, sock, "telecap_events_total")
            return (c1 - c0) / max(1.0, e1 - e0)

        def tapped():
            tap = subprocess.Popen([tc, "ctl", "--socket", sock, "tap", "nothing.*"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            assert wait_for(lambda: ctl_stat(tc, sock, "telecap_tap_open") == 1), "tap not open"
            per_event = window()
            tap.terminate()
            tap.wait()
            assert wait_for(lambda: ctl_stat(tc, sock, "telecap_tap_open") == 0), "tap open"
            return per_event

        if r % 2:
            with_tap = tapped()
            without = window()
        else:
            without = window()
            with_tap = tapped()
        tele.wait()
        ratios.append(with_tap / without)
    print(f"## a tap matching nothing, within one run: {rounds} rounds of two {seconds:g} s "
          f"windows at {RATE:,} events/s")
    print(f"CPU per event with the tap / without: {summary(ratios)} "
          f"(all: {', '.join(f'{x:.3f}' for x in sorted(ratios))}; goal <= 1.05)")


def latency_reader(out):
    lat = []
    for raw in out:
        now = time.time_ns()
        try:
            ev = json.loads(raw)
        except ValueError:
            continue
        if "telecap_tap" in ev:
            continue
        lat.append((now - ev["timestamp_ns"]) / 1e6)
    return lat


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def latency_part(tc, work, runs):
    p50s, p99s, counts = [], [], []
    for _ in range(runs):
        _, _, _, _, lat = one_run(tc, work, [], 1000, 5.0, stamp=True, reader=latency_reader)
        p50s.append(pct(lat, 50))
        p99s.append(pct(lat, 99))
        counts.append(len(lat))
    print(f"## event to tap latency at 1,000 events/s, 5 s, {runs} runs "
          f"({min(counts)}..{max(counts)} events a run)")
    print(f"p50 ms: {summary(p50s, '{:.2f}')}; p99 ms: {summary(p99s, '{:.2f}')} "
          "(goal: p99 <= 100 ms)")


def main():
    tc = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    cpu = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.*)", cpu)
    print(f"machine: {os.cpu_count()} cores, {model.group(1) if model else '?'}")
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "worker.py"), "w") as f:
            f.write(WORKER)
        cpu_part(tc, work, runs)
        rounds = int(os.environ.get("WITHIN_ROUNDS", "9"))
        if rounds:
            within_part(tc, work, rounds, float(os.environ.get("WITHIN_SECONDS", "4")))
        latency_part(tc, work, runs)


if __name__ == "__main__":
    main()
