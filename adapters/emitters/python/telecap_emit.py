"""telecap_emit: write telemetry lines that telecap (and Snakepit's stderr design) accept.

Stdlib only, Python 3.8+. Use it by copying this one file next to your worker, or install it
(``pip install adapters/emitters/python``).

    from telecap_emit import emit, span

    emit("python.memory.sampled", {"rss_bytes": 1 << 20, "vms_bytes": 2 << 20})
    with span("tool.execution", {"tool": "search"}, correlation_id="req-1"):
        do_work()

Each event is one line, exactly what Snakepit's ``StderrBackend`` writes:

    TELEMETRY:{"event": ..., "measurements": ..., "metadata": ..., "timestamp_ns": ...,
               "correlation_id": ...}\\n

that is ``"TELEMETRY:" + json.dumps(payload, default=str) + "\\n"`` with ``json.dumps``'s
defaults otherwise (``", "`` and ``": "`` separators, ``ensure_ascii``, bare ``NaN`` and
``Infinity`` tokens). ``metadata`` is ``{}`` when None, ``correlation_id`` is ``""`` when None,
``timestamp_ns`` is ``time.time_ns()``. A value json cannot serialize becomes ``str(value)``.

Guarantees:

* One ``os.write`` per line, the whole line in one buffer, under a process-wide lock: lines of
  different threads never interleave. (A partial write, possible only for lines longer than
  PIPE_BUF, is continued under the same lock.)
* Destination: the file descriptor in ``TELECAP_TELEMETRY_FD`` when it holds a valid
  non-negative integer (``telecap run --telemetry-fd N`` sets it), else stderr (fd 2). Nothing
  goes through ``sys.stderr``, so redirecting or replacing ``sys.stderr`` does not matter.
* ``TELECAP_TELEMETRY=off`` makes ``emit`` and ``span`` no-ops (``span`` still runs its body
  and re-raises its exceptions).
* Both environment variables are read at each call, not at import, so a worker (or a test) may
  change them at run time.
* It never raises into the worker. When an event cannot be serialized, a
  ``TELEMETRY_ERROR: <message>`` line is written instead (to the telemetry destination, where
  telecap counts it; falling back to stderr). When the write itself fails, the error line
  goes to stderr if that is a different fd; failing that, the error is dropped. A closed pipe
  (EPIPE: the reader went away) is dropped silently.

Span semantics follow Snakepit's ``telemetry.span``: ``<op>.start`` with measurement
``system_time`` (``time.time_ns()``), then ``<op>.stop`` with ``duration`` (ns, from the
monotonic ``time.perf_counter_ns``), or, when the body raises, ``<op>.exception`` with
``duration`` and metadata ``error_type`` (the class name) and ``error_message`` (``str(exc)``)
added to the span's metadata, and the exception re-raised. Snakepit reports only ``Exception``;
here any ``BaseException`` (``KeyboardInterrupt``, ``SystemExit``) also ends the span with
``<op>.exception``, so every start has an end.
"""

import errno
import json
import os
import select
import threading
import time
from typing import Any, Dict, Optional

__all__ = ["emit", "span", "enabled", "telemetry_fd"]
__version__ = "0.1.0"

PREFIX = "TELEMETRY:"
ERROR_PREFIX = "TELEMETRY_ERROR: "

# Reentrant, so that a signal handler that emits while this thread holds the lock cannot
# deadlock the worker.
_lock = threading.RLock()


def _reset_lock_in_child() -> None:
    # A fork while another thread held the lock must not leave the child's lock held forever.
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def enabled() -> bool:
    """False when ``TELECAP_TELEMETRY=off`` (read at each call)."""
    return os.environ.get("TELECAP_TELEMETRY") != "off"


def telemetry_fd() -> int:
    """The fd lines go to: ``TELECAP_TELEMETRY_FD`` when it is a valid integer, else 2."""
    value = os.environ.get("TELECAP_TELEMETRY_FD")
    if value:
        value = value.strip()
        if value and all(c in "0123456789" for c in value) and len(value) < 10:
            return int(value)
    return 2


def _write_all(fd: int, data: bytes) -> None:
    """Writes data with one os.write, continuing after a partial write. Raises OSError."""
    view = memoryview(data)
    waited = 0
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            # A non-blocking fd that is full: wait a little for room, but never forever.
            if waited >= 50:
                raise
            waited += 1
            select.select([], [fd], [], 0.1)
            continue
        # (EINTR is retried by os.write itself, PEP 475.)
        view = view[n:]


def _report(fd: int, message: str) -> None:
    """Writes a TELEMETRY_ERROR line to fd, else to stderr; never raises."""
    line = (ERROR_PREFIX + " ".join(str(message).split()) + "\n").encode("utf-8", "replace")
    for target in (fd, 2) if fd != 2 else (2,):
        try:
            _write_all(target, line)
            return
        except Exception:
            continue


def _write_line(line: bytes) -> None:
    fd = telemetry_fd()
    try:
        with _lock:
            _write_all(fd, line)
    except BrokenPipeError:
        pass  # the reader is gone: nothing to tell anyone
    except OSError as e:
        if e.errno == errno.EPIPE:
            return
        if fd != 2:
            _report(2, "cannot write telemetry to fd %d: %s" % (fd, e))
    except Exception as e:  # anything else, still never into the worker
        _report(2, "cannot write telemetry: %r" % (e,))


def emit(
    event: str,
    measurements: Dict[str, Any],
    metadata: Optional[Dict[str, Any]] = None,
    correlation_id: Optional[str] = None,
) -> None:
    """Writes one telemetry line. Never raises (see the module documentation)."""
    try:
        if os.environ.get("TELECAP_TELEMETRY") == "off":
            return
        payload = {
            "event": event,
            "measurements": measurements,
            "metadata": metadata or {},
            "timestamp_ns": time.time_ns(),
            "correlation_id": correlation_id or "",
        }
        try:
            text = json.dumps(payload, default=str)
        except Exception as e:
            _report(telemetry_fd(), "cannot serialize event %r: %s: %s"
                    % (event, type(e).__name__, e))
            return
        # ensure_ascii makes the text ASCII; "replace" only guards against the impossible.
        _write_line((PREFIX + text + "\n").encode("utf-8", "replace"))
    except Exception as e:
        try:
            _report(2, "telecap_emit failed: %s: %s" % (type(e).__name__, e))
        except Exception:
            pass


class span:
    """``with span(op, metadata, correlation_id):`` emits op.start, then op.stop or op.exception.

    The exception, if any, is re-raised; the telemetry itself never raises.
    """

    __slots__ = ("operation", "metadata", "correlation_id", "_start")

    def __init__(
        self,
        operation: str,
        metadata: Optional[Dict[str, Any]] = None,
        correlation_id: Optional[str] = None,
    ) -> None:
        self.operation = operation
        self.metadata = metadata
        self.correlation_id = correlation_id
        self._start = 0

    def __enter__(self) -> "span":
        self._start = time.perf_counter_ns()
        emit("%s.start" % (self.operation,), {"system_time": time.time_ns()},
             self.metadata, self.correlation_id)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        duration = time.perf_counter_ns() - self._start
        if exc_type is None:
            emit("%s.stop" % (self.operation,), {"duration": duration},
                 self.metadata, self.correlation_id)
            return False
        try:
            md = dict(self.metadata or {})
            md["error_type"] = exc_type.__name__
            try:
                md["error_message"] = str(exc) if exc is not None else ""
            except Exception as e:  # a __str__ that raises must not replace the real error
                md["error_message"] = "<str() failed: %s>" % (type(e).__name__,)
        except Exception:
            md = {"error_type": getattr(exc_type, "__name__", "?"), "error_message": ""}
        emit("%s.exception" % (self.operation,), {"duration": duration}, md,
             self.correlation_id)
        return False  # re-raise
