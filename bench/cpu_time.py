#!/usr/bin/env python3
"""Best CPU time (user + sys, microsecond resolution) of each command over N interleaved runs.

Usage: cpu_time.py N "cmd A" "cmd B" ...   Prints one line per command: its best seconds.
Interleaving the commands and keeping each one's minimum is what makes a ratio between them
meaningful on a shared VM, where CPU time moves by tens of percent from minute to minute.
"""
import resource
import subprocess
import sys


def run(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    n = int(sys.argv[1])
    cmds = sys.argv[2:]
    best = [float("inf")] * len(cmds)
    for _ in range(n):
        for i, cmd in enumerate(cmds):
            best[i] = min(best[i], run(cmd))
    for b in best:
        print(f"{b:.3f}")


if __name__ == "__main__":
    main()
