#!/usr/bin/env python3
"""Best CPU time (user + sys, microsecond resolution) of each command over N interleaved runs.

Usage: cpu_time.py [--median] [--pairs I/J,...] N "cmd A" "cmd B" ...   Prints one line per
command: its best seconds (with --median: "best median"); then, with --pairs, one line per pair
of commands (0-based indexes): "I/J median q1 q3" of the ratio of their times within each round.
A ratio taken round by round cancels what moves the machine's speed between rounds (the VM's
neighbours, its clock), which the ratio of two medians does not. Interleaving the commands and keeping each one's minimum
is what makes a ratio between them meaningful on a shared VM, where CPU time moves by tens of
percent from minute to minute.
"""
import resource
import statistics
import subprocess
import sys


def run(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    args = sys.argv[1:]
    median = args[:1] == ["--median"]
    if median:
        args = args[1:]
    pairs = []
    if args[:1] == ["--pairs"]:
        pairs = [tuple(int(x) for x in p.split("/")) for p in args[1].split(",")]
        args = args[2:]
    n = int(args[0])
    cmds = args[1:]
    times = [[] for _ in cmds]
    for _ in range(n):
        for i, cmd in enumerate(cmds):
            times[i].append(run(cmd))
    for t in times:
        print(f"{min(t):.3f} {statistics.median(t):.3f}" if median else f"{min(t):.3f}")
    for i, j in pairs:
        r = [a / b for a, b in zip(times[i], times[j])]
        q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
        print(f"{i}/{j} {statistics.median(r):.3f} {q[0]:.3f} {q[2]:.3f}")


if __name__ == "__main__":
    main()
