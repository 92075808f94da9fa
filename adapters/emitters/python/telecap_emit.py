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
* Lines of different processes never interleave either, whatever their size: when the
  destination is a pipe or a socket, each line is written under a POSIX record lock on it
  (``fcntl.lockf(fd, LOCK_EX)``, one per process, not inherited by ``fork``), which processes
  sharing the pipe (``fork``, ``multiprocessing``, the C/C++ emitter) take in turn. The pipe
  itself only keeps writes of up to PIPE_BUF (4 KiB) whole, and a short line can land inside a
  long one that waited for room, so every line takes it. Writers that do not take it (a plain
  ``print`` to stderr, the shell emitter) are not held back. ``TELECAP_EMIT_LOCK=off`` skips
  it. A failure to take it writes the line anyway.
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

Controls from telecap (``telecap run --telemetry-fd N`` gives the worker a control pipe at the
fd in ``TELECAP_CONTROL_FD``; docs/control.md, "The control pipe"): the emitter reads it without
blocking: the first state at import (telecap writes it before the worker starts), the changes
in a daemon thread blocked in ``poll`` on the pipe (``telecap-controls``), so ``emit`` makes no
system call for them; the latest state applies before anything is formatted:
toggle, then sampling (an independent ``random.random()`` draw per event, only for names
matching ``sampling_patterns`` when there are any), then the filter (``fnmatch.fnmatchcase`` on
the name passed to ``emit``; deny wins; an empty allow list allows all). An event these remove
costs a function call and a branch: it is neither formatted nor written. While controls apply,
each line carries ``"control_seq": N`` (the state it was decided under), so telecap does not
sample it a second time. The fd is taken only when it is above 2 and a pipe or a socket (else
one ``TELEMETRY_ERROR:`` line says why, and the controls are off here: telecap still applies
them); it is made close-on-exec and ``TELECAP_CONTROL_FD`` is taken out of ``os.environ`` at
import, so programs the worker runs neither inherit the fd nor take another fd of theirs for
it (``TELECAP_CONTROL_INHERIT=1`` keeps both, for a program meant to read the pipe instead);
a child made by ``fork`` without ``exec`` keeps the last state and does not read the pipe (the
parent does).

Span semantics follow Snakepit's ``telemetry.span``: ``<op>.start`` with measurement
``system_time`` (``time.time_ns()``), then ``<op>.stop`` with ``duration`` (ns, from the
monotonic ``time.perf_counter_ns``), or, when the body raises, ``<op>.exception`` with
``duration`` and metadata ``error_type`` (the class name) and ``error_message`` (``str(exc)``)
added to the span's metadata, and the exception re-raised. Snakepit reports only ``Exception``;
here any ``BaseException`` (``KeyboardInterrupt``, ``SystemExit``) also ends the span with
``<op>.exception``, so every start has an end.
"""

import errno
import fcntl
import json
import os
import random
import select
import stat
import threading
import time
from fnmatch import fnmatchcase
from typing import Any, Dict, Optional

__all__ = ["emit", "span", "enabled", "telemetry_fd", "controls"]
__version__ = "0.1.0"

PREFIX = "TELEMETRY:"
ERROR_PREFIX = "TELEMETRY_ERROR: "

# Reentrant, so that a signal handler that emits while this thread holds the lock cannot
# deadlock the worker.
_lock = threading.RLock()


def _reset_lock_in_child() -> None:
    # A fork while another thread held the lock must not leave the child's lock held forever.
    global _lock, _depth
    _lock = threading.RLock()
    _depth = 0  # (POSIX record locks do not pass to a child: it holds none)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


# ---- controls from telecap (the control pipe) ----------------------------------------------

_CONTROL_INTERVAL = 0.1  # seconds between two looks at the control pipe
_CONTROL_CACHE = 4096    # names whose pattern results are kept

_random = random.random
_ctl_lock = threading.Lock()
_ctl_fd = -1             # the control pipe read by the reader thread; -1: none
_ctl_buf = b""           # a partial line
_ctl_on = True           # the toggle
_ctl_gated = False       # sampling or a filter to apply
_ctl_seq = 0             # the state applied (0: none yet)
_ctl_rate = 1.0
_ctl_patterns = ()
_ctl_allow = ()
_ctl_deny = ()
_ctl_cache = {}          # name -> (sampling applies, filter allows)
_ctl_counts = {"sampled": 0, "filtered": 0}


def _ctl_after_fork() -> None:
    # The pipe is shared with the parent, which reads it: keep the last state, stop reading.
    global _ctl_lock, _ctl_fd
    _ctl_lock = threading.Lock()
    _ctl_fd = -1  # (the reader thread is the parent's: it did not come along)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ctl_after_fork)


def _ctl_apply(line: bytes) -> None:
    global _ctl_on, _ctl_gated, _ctl_seq, _ctl_rate, _ctl_patterns, _ctl_allow, _ctl_deny
    global _ctl_cache
    try:
        d = json.loads(line)
        seq = int(d["seq"])
        on = bool(d.get("enabled", True))
        rate = min(1.0, max(0.0, float(d.get("sampling_rate", 1.0))))
        patterns = tuple(str(p) for p in d.get("sampling_patterns") or ())
        allow = tuple(str(p) for p in d.get("allow") or ())
        deny = tuple(str(p) for p in d.get("deny") or ())
    except Exception:
        return  # not a state this emitter understands: telecap still applies it
    _ctl_cache = {}
    _ctl_rate, _ctl_patterns, _ctl_allow, _ctl_deny = rate, patterns, allow, deny
    _ctl_gated = rate < 1.0 or bool(allow) or bool(deny)
    _ctl_on = on
    _ctl_seq = seq


def _ctl_read(fd: int) -> bool:
    """Reads what is in the control pipe now and applies its last complete line. False at EOF
    (telecap closed it) or on an error: the last state stays."""
    global _ctl_buf
    data = b""
    alive = True
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            alive = False
            break
        data += chunk
    if data:
        data = _ctl_buf + data
        end = data.rfind(b"\n")
        if end < 0:
            _ctl_buf = data[-(1 << 20):]
        else:
            _ctl_buf = data[end + 1:]
            _ctl_apply(data[data.rfind(b"\n", 0, end) + 1:end])
    return alive


def _ctl_reader(fd: int) -> None:
    # Blocked in poll() (the GIL released) until telecap writes: emit() itself never makes a
    # system call for the controls.
    p = select.poll()
    p.register(fd, select.POLLIN)
    while _ctl_fd == fd:
        try:
            p.poll()
        except InterruptedError:
            continue
        except Exception:
            return
        with _ctl_lock:
            if _ctl_fd != fd or not _ctl_read(fd):
                return


def _ctl_start() -> None:
    """At import: the first state (telecap wrote it before the worker started), then a reader
    thread for the changes."""
    global _ctl_fd
    raw = os.environ.get("TELECAP_CONTROL_FD")
    if raw is None:
        return
    inherit = os.environ.get("TELECAP_CONTROL_INHERIT") == "1"
    if not inherit:
        # Programs the worker runs must not take the number for a pipe of their own.
        os.environ.pop("TELECAP_CONTROL_FD", None)
    value = raw.strip()
    fd = int(value) if value.isdigit() and len(value) < 10 else -1
    problem = None
    if fd < 0:
        problem = "not an fd number"
    elif fd <= 2:
        problem = "fds 0-2 are the worker's own"
    else:
        try:
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
                problem = "not a pipe or a socket"
        except OSError as e:
            problem = "not open (%s)" % (e.strerror,)
    if problem:
        _report(telemetry_fd(), "telecap_emit: TELECAP_CONTROL_FD=%r ignored: %s" % (raw, problem))
        return
    try:
        os.set_blocking(fd, False)
        if not inherit:
            os.set_inheritable(fd, False)
    except OSError:
        return
    _ctl_fd = fd
    with _ctl_lock:
        if not _ctl_read(fd):
            _ctl_fd = -1
            return
    threading.Thread(target=_ctl_reader, args=(fd,), name="telecap-controls",
                     daemon=True).start()


def _ctl_pass(event: Any) -> bool:
    """Sampling, then the filter, for one event name (the toggle is checked before)."""
    if not isinstance(event, str):
        return True  # emit reports it; telecap rejects it
    v = _ctl_cache.get(event)
    if v is None:
        sampled = _ctl_rate < 1.0 and (
            not _ctl_patterns or any(fnmatchcase(event, p) for p in _ctl_patterns))
        allowed = not any(fnmatchcase(event, p) for p in _ctl_deny) and (
            not _ctl_allow or any(fnmatchcase(event, p) for p in _ctl_allow))
        v = (sampled, allowed)
        if len(_ctl_cache) < _CONTROL_CACHE:
            _ctl_cache[event] = v
    if v[0] and (_ctl_rate <= 0.0 or _random() >= _ctl_rate):
        _ctl_counts["sampled"] += 1
        return False
    if not v[1]:
        _ctl_counts["filtered"] += 1
        return False
    return True


def controls() -> Dict[str, Any]:
    """The controls applied now, and how many events they removed here (for tests and logs)."""
    return {"seq": _ctl_seq, "enabled": _ctl_on, "sampling_rate": _ctl_rate,
            "sampling_patterns": list(_ctl_patterns), "allow": list(_ctl_allow),
            "deny": list(_ctl_deny), "removed": dict(_ctl_counts)}


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


_lockable = {}  # fd -> True when it is a pipe or a socket (the fds other processes share)
_depth = 0      # _write_line calls in progress in this process (a signal handler nests them)


def _lock_fd(fd: int) -> bool:
    """Takes the POSIX record lock on fd when it is a pipe or a socket: other processes that
    write to the same pipe (fork, multiprocessing, other emitters) wait for this line to be
    whole. True when taken. Any failure: the line is written without it."""
    ok = _lockable.get(fd)
    if ok is None:
        try:
            mode = os.fstat(fd).st_mode
            ok = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        except OSError:
            return False
        _lockable[fd] = ok
    if not ok or _no_lock():
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        return True
    except OSError:
        return False


def _no_lock() -> bool:
    return os.environ.get("TELECAP_EMIT_LOCK") == "off"


def _write_line(line: bytes) -> None:
    global _depth
    fd = telemetry_fd()
    try:
        with _lock:
            # The lock is per process, so a handler nested in a write must not release it.
            locked = _depth == 0 and _lock_fd(fd)
            _depth += 1
            try:
                _write_all(fd, line)
            finally:
                _depth -= 1
                if locked:
                    try:
                        fcntl.lockf(fd, fcntl.LOCK_UN)
                    except OSError:
                        pass
    except BrokenPipeError:
        pass  # the reader is gone: nothing to tell anyone
    except OSError as e:
        _lockable.pop(fd, None)  # the fd may be another file next time
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
        # telecap's controls first: an event they remove is not even formatted.
        if not _ctl_on:
            return
        if _ctl_gated and not _ctl_pass(event):
            return
        if os.environ.get("TELECAP_TELEMETRY") == "off":
            return
        payload = {
            "event": event,
            "measurements": measurements,
            "metadata": metadata or {},
            "timestamp_ns": time.time_ns(),
            "correlation_id": correlation_id or "",
        }
        if _ctl_seq:
            payload["control_seq"] = _ctl_seq
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


_ctl_start()
