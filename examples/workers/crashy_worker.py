#!/usr/bin/env python3
"""A worker that crashes now and then: exit code 1, or SIGKILL from itself.

Like legacy_worker.py it logs to stderr and emits telemetry (tool.execution spans,
python.memory.sampled); a crash happens in the middle of an iteration, after its
tool.execution.start, so the span never ends. How it crashes, and when:

  --crash-at K --crash-mode exit|kill   crash at iteration K (0-based) of this run.
  CRASHY_PLAN="exit@3,kill@1,ok"         one entry per run of the same worker under the same
                                         telecap: run 1 exits 1 at iteration 3, run 2 kills
                                         itself at iteration 1, run 3 (and any later one)
                                         completes. The run number is TELECAP_RUN, set by
                                         telecap; without it, it is kept in a small file in
                                         $TMPDIR named after our parent's pid and
                                         TELECAP_WORKER_ID, removed when the plan's last
                                         entry runs.
  (neither)                              each iteration crashes with probability
                                         CRASHY_PROBABILITY (default 0.1), exit or kill at
                                         random; CRASHY_SEED makes that repeatable.

Other options: --iterations N (CRASHY_ITERATIONS, default 10), --interval SECONDS
(CRASHY_INTERVAL, default 0.02). It exits 0 when it gets through all iterations.
"""

import argparse
import os
import random
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "adapters", "emitters", "python"))
from telecap_emit import emit, span  # noqa: E402


def crash(mode, iteration):
    print("crashy[%d]: crashing (%s) at iteration %d" % (os.getpid(), mode, iteration),
          file=sys.stderr, flush=True)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(1)  # no cleanup, like a real crash


def plan_for_this_run(plan):
    """(mode, iteration) for this run from CRASHY_PLAN, or None to complete."""
    entries = [e.strip() for e in plan.split(",") if e.strip()]
    if os.environ.get("TELECAP_RUN"):  # telecap counts the runs itself
        return plan_entry(entries, int(os.environ["TELECAP_RUN"]) - 1)
    key = "crashy-%d-%s.run" % (os.getppid(), os.environ.get("TELECAP_WORKER_ID", "x"))
    path = os.path.join(tempfile.gettempdir(), key)
    try:
        with open(path) as f:
            run = int(f.read() or "0")
    except (OSError, ValueError):
        run = 0
    if run + 1 >= len(entries):
        try:
            os.unlink(path)
        except OSError:
            pass
    else:
        with open(path, "w") as f:
            f.write(str(run + 1))
    return plan_entry(entries, run)


def plan_entry(entries, run):
    entry = entries[min(run, len(entries) - 1)] if entries else "ok"
    if entry == "ok":
        return None
    mode, _, at = entry.partition("@")
    return mode, int(at or "0")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int,
                        default=int(os.environ.get("CRASHY_ITERATIONS", "10")))
    parser.add_argument("--interval", type=float,
                        default=float(os.environ.get("CRASHY_INTERVAL", "0.02")))
    parser.add_argument("--crash-at", type=int, default=None)
    parser.add_argument("--crash-mode", choices=("exit", "kill"), default="exit")
    args = parser.parse_args(argv)

    planned = None
    if args.crash_at is not None:
        planned = (args.crash_mode, args.crash_at)
    elif os.environ.get("CRASHY_PLAN"):
        planned = plan_for_this_run(os.environ["CRASHY_PLAN"])
    rng = random.Random(os.environ.get("CRASHY_SEED"))
    probability = float(os.environ.get("CRASHY_PROBABILITY", "0.1"))
    random_mode = args.crash_at is None and not os.environ.get("CRASHY_PLAN")

    worker = os.environ.get("TELECAP_WORKER_ID", "standalone")
    print("crashy[%d]: worker %s starting, plan %s" % (os.getpid(), worker, planned or "random"),
          file=sys.stderr, flush=True)
    for i in range(args.iterations):
        request = "req-%s-%d" % (worker, i)
        with span("tool.execution", {"tool": "flaky"}, request):
            if planned and planned[1] == i:
                crash(planned[0], i)
            if random_mode and rng.random() < probability:
                crash(rng.choice(("exit", "kill")), i)
            time.sleep(0.001)
        emit("python.memory.sampled", {"rss_bytes": 1 << 20, "vms_bytes": 1 << 21},
             {"command": "flaky"})
        print("crashy[%d]: iteration %d ok" % (os.getpid(), i), file=sys.stderr, flush=True)
        time.sleep(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
