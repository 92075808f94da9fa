#!/usr/bin/env python3
"""A reference host: receives telecap's events over a Unix socket and dispatches them to its own
handlers, attached by event prefix like telecap's handler bus (and Erlang's :telemetry).

Start telecap with a socket output, then this host (Python 3.8+, stdlib only):

    telecap run -o unix:/tmp/telecap.sock -- python3 examples/workers/legacy_worker.py
    python3 examples/hosts/host.py /tmp/telecap.sock

Each line on the socket is one event in the output contract (docs/contract.md):
{"event":[...],"measurements":{...},"metadata":{...},"timestamp_ns":N,"correlation_id":...}.
A host receives the events handled after telecap accepted its connection; when it reads too
slowly, telecap drops whole events for it (and counts them) rather than slow anything down.

The handlers here count events by name, sum the `duration` measurement of each event name,
and print the worker lifecycle as it happens; at the end (EOF, when telecap exits, or after
--max-events N) the host prints a summary (--summary-json PATH also writes it as JSON).
"""

import argparse
import collections
import json
import os
import socket
import sys
import time


class Bus:
    """Handlers attached by id and event prefix (a list of parts; [] = every event). Each
    event goes to every matching handler in attach order; a handler that raises is detached
    and reported, and the others still get the event."""

    def __init__(self):
        self._handlers = []  # (handler_id, prefix tuple, fn)

    def attach(self, handler_id, prefix_parts, fn):
        if any(h[0] == handler_id for h in self._handlers):
            raise ValueError("handler %r is attached already" % (handler_id,))
        self._handlers.append((handler_id, tuple(prefix_parts), fn))

    def detach(self, handler_id):
        before = len(self._handlers)
        self._handlers = [h for h in self._handlers if h[0] != handler_id]
        return len(self._handlers) != before

    def dispatch(self, event):
        name = tuple(event.get("event", ()))
        for handler_id, prefix, fn in list(self._handlers):
            if name[:len(prefix)] != prefix:
                continue
            try:
                fn(event)
            except Exception as e:  # noqa: BLE001: a host handler must not stop the others
                self.detach(handler_id)
                print("host: handler %s failed on %s and was detached: %r"
                      % (handler_id, ".".join(name), e), file=sys.stderr)


def connect(path, timeout):
    """Connects to the socket, retrying until it exists and accepts (telecap may be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def read_events(sock, stats):
    """Yields the decoded events; a line that is not JSON is counted, never fatal."""
    with sock.makefile("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                stats["partial_lines"] += 1  # telecap never sends one
                break
            try:
                yield json.loads(raw)
            except ValueError:
                stats["bad_lines"] += 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("socket", help="the path given to telecap as -o unix:PATH")
    parser.add_argument("--max-events", type=int, default=0,
                        help="leave after N events (default: read until telecap closes)")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help="seconds to keep trying to connect (default 10)")
    parser.add_argument("--ready-file", help="create this file once connected")
    parser.add_argument("--summary-json", help="also write the summary as JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no line per lifecycle event")
    args = parser.parse_args(argv)

    counts = collections.Counter()
    durations = collections.defaultdict(lambda: {"count": 0, "total_ns": 0, "max_ns": 0})
    stats = collections.Counter()

    def count(event):
        counts[".".join(event["event"])] += 1

    def duration(event):
        d = event["measurements"].get("duration")
        if isinstance(d, (int, float)):
            s = durations[".".join(event["event"])]
            s["count"] += 1
            s["total_ns"] += d
            s["max_ns"] = max(s["max_ns"], d)

    def lifecycle(event):
        if args.quiet:
            return
        md = event["metadata"]
        print("host: %s %s pid=%s%s" % (
            event["event"][-1], md.get("worker_id"), md.get("python_pid"),
            " exit_code=%s" % md["exit_code"] if "exit_code" in md else ""), flush=True)

    bus = Bus()
    bus.attach("count", [], count)
    bus.attach("durations", ["snakepit", "python"], duration)
    bus.attach("lifecycle", ["snakepit", "pool", "worker"], lifecycle)

    try:
        sock = connect(args.socket, args.connect_timeout)
    except OSError as e:
        print("host: cannot connect to %s: %s (is telecap running with -o unix:%s?)"
              % (args.socket, e.strerror or e, args.socket), file=sys.stderr)
        return 2
    if args.ready_file:
        with open(args.ready_file, "w"):
            pass
    total = 0
    try:
        for event in read_events(sock, stats):
            bus.dispatch(event)
            total += 1
            if args.max_events and total >= args.max_events:
                break
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()

    print("host: %d events" % total)
    for name, n in sorted(counts.items()):
        print("  %-45s %6d" % (name, n))
    if durations:
        print("host: durations")
        for name, s in sorted(durations.items()):
            print("  %-45s count=%d total=%.3f ms mean=%.3f ms max=%.3f ms" % (
                name, s["count"], s["total_ns"] / 1e6, s["total_ns"] / 1e6 / s["count"],
                s["max_ns"] / 1e6))
    for key in ("bad_lines", "partial_lines"):
        if stats[key]:
            print("host: %s: %d" % (key, stats[key]), file=sys.stderr)
    if args.summary_json:
        tmp = args.summary_json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"events": total, "counts": counts, "durations": durations,
                       "bad_lines": stats["bad_lines"],
                       "partial_lines": stats["partial_lines"]}, f, sort_keys=True)
        os.replace(tmp, args.summary_json)
    return 1 if stats["bad_lines"] or stats["partial_lines"] else 0


if __name__ == "__main__":
    sys.exit(main())
