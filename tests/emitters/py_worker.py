"""The Python worker the emitter tests run under telecap (and the cases they share).

    python3 py_worker.py MODE REPORT_PATH

MODE is one of the functions in MODES; REPORT_PATH gets a JSON report (the worker's pid,
TELECAP_TELEMETRY_FD as seen, and what the mode observed, e.g. that an exception came back).
Importing this module only defines the cases.
"""

import decimal
import json
import logging
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "adapters", "emitters", "python"))
import telecap_emit  # noqa: E402

NAN = float("nan")
INF = float("inf")

# (event, measurements, metadata, correlation_id): each is emitted as given, and the test
# derives what the gRPC path would make of it.
PY_CASES = [
    ("tool.execution.stop", {"duration": 1500, "count": 1},
     {"tool": "search", "ok": True, "nothing": None, "ratio": 0.5, "n": 7}, "req-1"),
    ("python.memory.sampled", {"rss_bytes": 1 << 20, "vms_bytes": 2 << 20}, None, None),
    ("python.cpu.sampled", {"cpu_percent": 12.5}, {}, ""),
    ("python.gc.completed", {"count": True, "generation": False}, {"library": "gc"}, None),
    ("python.cpu.sampled", {"cpu_percent": NAN}, {"kind": NAN, "size": INF, "shape": -INF}, None),
    ("python.cpu.sampled", {"cpu_percent": INF}, None, None),
    ("python.cpu.sampled", {"cpu_percent": -INF}, None, None),
    ("tool.result_size", {"message_size": "big"}, None, None),
    # Not JSON: default=str makes it the string str() gives, as the gRPC encoder would.
    ("tool.result_size", {"message_size": decimal.Decimal("1.50")},
     {"result": decimal.Decimal("2.5")}, None),
    ("tool.execution.exception", {"duration": 3},
     {"tool": "caf\u00e9 \u2615 \U0001F600", "error_type": "ValueError",
      "error_message": 'quote " backslash \\ newline \n tab \t cr \r ctrl \x01 del \x7f'},
     "id with \"quotes\" and \u00fc"),
    ("python.call.stop", {"duration": 2.0, "count": 9223372036854775807},
     {"retry": 1e16, "timeout_ms": 0.1, "size": 2 ** 70, "dtype": -0.0, "shape": 1e-05},
     None),
    ("python.call.start", {"count": -9223372036854775808}, None, None),
    # The host's keys win over the worker's.
    ("python.call.exception", {"count": 1},
     {"node": "evil", "worker_id": "w-evil", "pool_name": "p-evil", "python_pid": 1,
      "correlation_id": "cid-evil", "timestamp_ns": 5, "error_type": "E"}, "real-cid"),
    # Unknown metadata keys are kept as strings.
    ("python.error.occurred", {"count": 1}, {"not_in_catalog": 42, "also_unknown": "x"}, None),
]

# What telecap must drop (and count), and a line the emitter cannot serialize.
PY_REJECTS = [
    ("not.in.catalog", {"count": 1}, None, None),           # unknown_event
    ("python.call.stop", {"bogus_key": 1}, None, None),     # unknown_measurement
]


def _report(path, **data):
    data.setdefault("pid", os.getpid())
    data.setdefault("telemetry_fd_env", os.environ.get("TELECAP_TELEMETRY_FD"))
    with open(path, "w") as f:
        json.dump(data, f)


def mode_cases(report):
    for event, m, md, cid in PY_CASES:
        telecap_emit.emit(event, m, md, cid)
    for event, m, md, cid in PY_REJECTS:
        telecap_emit.emit(event, m, md, cid)
    telecap_emit.emit("python.call.stop", {(1, 2): 3})  # not serializable: TELEMETRY_ERROR
    print("a log line", file=sys.stderr, flush=True)
    _report(report)


def mode_span(report):
    t0 = time.time_ns()
    with telecap_emit.span("tool.execution", {"tool": "search", "n": 3}, "span-cid"):
        time.sleep(0.02)
    t1 = time.time_ns()
    reraised = None
    try:
        with telecap_emit.span("python.call", {"function": "f"}):
            time.sleep(0.01)
            raise KeyError("missing \"key\"")
    except KeyError as e:
        reraised = [type(e).__name__, str(e)]
    # A span without metadata or correlation id.
    with telecap_emit.span("tool.execution"):
        pass
    _report(report, t0=t0, t1=t1, reraised=reraised)


def mode_threads(report, threads=8, per_thread=500):
    log = logging.getLogger("busy")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(threadName)s %(message)s")
    barrier = threading.Barrier(threads + 1)
    stop = threading.Event()

    def work(t):
        barrier.wait()
        for i in range(per_thread):
            telecap_emit.emit("tool.result_size", {"message_size": i, "sequence_number": t * per_thread + i},
                              {"tool": "t%d" % t, "command": "x" * (i % 50)}, "c%d-%d" % (t, i))

    def chatter():
        barrier.wait()
        n = 0
        while not stop.is_set():
            log.info("free logging %d", n)
            n += 1
            time.sleep(0.0005)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    logger = threading.Thread(target=chatter)
    for th in workers + [logger]:
        th.start()
    for th in workers:
        th.join()
    stop.set()
    logger.join()
    _report(report)


def mode_threads_long(report, threads=4, per_thread=50):
    # Lines longer than PIPE_BUF from several threads: the lock keeps them whole (nothing
    # else writes to the pipe here).
    def work(t):
        for i in range(per_thread):
            telecap_emit.emit("tool.result_size", {"message_size": i, "sequence_number": t * per_thread + i},
                              {"tool": "t%d" % t, "command": chr(ord("a") + t) * 10000})

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in workers:
        th.start()
    for th in workers:
        th.join()
    _report(report)


def _big_events(proc, per_proc):
    # 4-64 KiB lines, each a run of one letter, so a torn line cannot pass for a whole one.
    for i in range(per_proc):
        size = 4096 + ((proc * 7919 + i * 104729) % (60 * 1024))
        telecap_emit.emit("tool.result_size",
                          {"message_size": size, "sequence_number": proc * per_proc + i},
                          {"command": chr(ord("a") + proc % 26) * size})


def mode_procs_fork(report, procs=8, per_proc=60):
    # Lines longer than PIPE_BUF from several processes made by fork: the emitter's lock on
    # the pipe (a POSIX record lock, per process) keeps them whole.
    pids = []
    for p in range(procs):
        pid = os.fork()
        if pid == 0:
            try:
                _big_events(p, per_proc)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    _report(report, procs=procs, per_proc=per_proc)


def mode_procs_mp(report, procs=8, per_proc=60, method="spawn"):
    import multiprocessing
    ctx = multiprocessing.get_context(method)
    workers = [ctx.Process(target=_big_events, args=(p, per_proc)) for p in range(procs)]
    for w in workers:
        w.start()
    # The parent writes big lines too, while the children do.
    _big_events(procs, per_proc)
    for w in workers:
        w.join()
    _report(report, procs=procs + 1, per_proc=per_proc)


def mode_fake(report):
    # With --telemetry-fd, a TELEMETRY: line printed on stderr is only a log line.
    sys.stderr.write('TELEMETRY:{"event": "python.call.start", "measurements": {"count": 666}, '
                     '"metadata": {}, "timestamp_ns": 1, "correlation_id": "fake"}\n')
    sys.stderr.flush()
    telecap_emit.emit("python.call.start", {"count": 1}, {"function": "real"}, "real")
    with telecap_emit.span("tool.execution", {"tool": "fd"}):
        pass
    _report(report)


def mode_off(report):
    telecap_emit.emit("python.call.start", {"count": 1})
    reraised = False
    try:
        with telecap_emit.span("tool.execution"):
            raise RuntimeError("still raised")
    except RuntimeError:
        reraised = True
    _report(report, reraised=reraised)


MODES = {
    "cases": mode_cases,
    "span": mode_span,
    "threads": mode_threads,
    "threads-long": mode_threads_long,
    "procs-fork": mode_procs_fork,
    # "spawn" (and "forkserver") children get fds 0-2 only, not --telemetry-fd's.
    "procs-mp": mode_procs_mp,
    "procs-mp-fork": lambda report: mode_procs_mp(report, method="fork"),
    "fake": mode_fake,
    "off": mode_off,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](sys.argv[2])
