#!/usr/bin/env python3
"""A "legacy" worker: it logs freely to stderr and emits telemetry with telecap_emit.

Run it under telecap (from the repository root):

    telecap run -- python3 examples/workers/legacy_worker.py --iterations 5

Each iteration logs a few lines, runs a "tool" inside a span (tool.execution.start, then
.stop, or .exception for every 4th call, whose error the worker catches and logs), reports
the result size (tool.result_size) and samples its memory (python.memory.sampled). It exits 0.

Options (or environment variables): --iterations N (LEGACY_ITERATIONS, default 5),
--interval SECONDS between iterations (LEGACY_INTERVAL, default 0.05).
"""

import argparse
import logging
import os
import random
import sys
import time

# The emitter is one file; find it relative to this one, wherever we are run from.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "adapters", "emitters", "python"))
from telecap_emit import emit, span  # noqa: E402


def memory_bytes():
    """(rss, vms) of this process in bytes, from /proc when there is one."""
    try:
        with open("/proc/self/statm") as f:
            vms_pages, rss_pages = (int(x) for x in f.read().split()[:2])
        page = os.sysconf("SC_PAGE_SIZE")
        return rss_pages * page, vms_pages * page
    except (OSError, ValueError):
        import resource
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return rss, rss


def search(query, fail):
    """The "tool": some work, and now and then a failure."""
    time.sleep(0.001)
    if fail:
        raise TimeoutError("backend did not answer for %r" % query)
    return ("result for %s " % query) * random.randint(1, 20)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int,
                        default=int(os.environ.get("LEGACY_ITERATIONS", "5")))
    parser.add_argument("--interval", type=float,
                        default=float(os.environ.get("LEGACY_INTERVAL", "0.05")))
    args = parser.parse_args(argv)

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s legacy[%(process)d]: %(message)s")
    log = logging.getLogger("legacy")
    worker = os.environ.get("TELECAP_WORKER_ID", "standalone")
    log.info("starting as worker %s, %d iterations", worker, args.iterations)
    print("plain print to stderr, not telemetry", file=sys.stderr, flush=True)

    for i in range(args.iterations):
        request = "req-%s-%d" % (worker, i)
        log.info("iteration %d: handling %s", i, request)
        try:
            with span("tool.execution", {"tool": "search", "command": "search"}, request):
                result = search("item %d" % i, fail=(i % 4 == 3))
            emit("tool.result_size", {"message_size": len(result)}, {"tool": "search"}, request)
        except TimeoutError as e:
            log.warning("iteration %d failed: %s", i, e)
        rss, vms = memory_bytes()
        emit("python.memory.sampled", {"rss_bytes": rss, "vms_bytes": vms})
        time.sleep(args.interval)

    log.info("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
