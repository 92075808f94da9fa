#!/usr/bin/env bash
# The reference host (examples/hosts/host.py) on `telecap run -o unix:PATH`:
#   usage: unix_host.sh TELECAP_BIN SOURCE_DIR [PYTHON]
# telecap runs the legacy example worker, which starts emitting once the hosts are connected.
# Two hosts: one reads everything until telecap exits, one leaves after 3 events. The first
# must have received exactly the events of the jsonl output, minus the `spawned` event that
# came before it connected; telecap must exit 0 whatever the host that left did.
set -euo pipefail
bin=$1
src=$2
python=${3:-python3}
tmp=$(mktemp -d /tmp/telecap-unix-host.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log; do echo "--- $f" >&2; cat "$f" >&2; done
    exit 1
}

sock=$tmp/s.sock
ready1=$tmp/ready1
ready2=$tmp/ready2
# The worker: waits until both hosts are connected (and accepted: a moment more), then runs.
worker_sh='while [ ! -e "$1" ] || [ ! -e "$2" ]; do sleep 0.05; done; sleep 0.5; shift 2; exec "$@"'

"$bin" run -o "unix:$sock" -o "jsonl:$tmp/events.jsonl" --stats "$tmp/stats.json" \
    --passthrough "$tmp/passthrough.log" -- \
    sh -c "$worker_sh" worker "$ready1" "$ready2" \
    "$python" "$src/examples/workers/legacy_worker.py" --iterations 8 --interval 0 \
    >"$tmp/telecap.log" 2>&1 &
telecap_pid=$!
pids+=("$telecap_pid")

# While it listens: a second telecap on the same live socket is a usage error (exit 2).
for i in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || fail "telecap did not create the socket"
[ "$(stat -c %a "$sock")" = 600 ] || fail "socket mode $(stat -c %a "$sock"), not 600"
rc=0
"$bin" parse -o "unix:$sock" </dev/null >"$tmp/second.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "a second telecap on a live socket exited $rc, not 2"
grep -q "another process is listening" "$tmp/second.log" || fail "no clear message for a live socket"

"$python" "$src/examples/hosts/host.py" "$sock" --ready-file "$ready1" \
    --summary-json "$tmp/host1.json" >"$tmp/host1.log" 2>&1 &
host1_pid=$!
pids+=("$host1_pid")
"$python" "$src/examples/hosts/host.py" "$sock" --ready-file "$ready2" --max-events 3 --quiet \
    --summary-json "$tmp/host2.json" >"$tmp/host2.log" 2>&1 &
host2_pid=$!
pids+=("$host2_pid")

# Everything is bounded: the worker needs well under a second once the hosts are there.
for i in $(seq 1 600); do
    kill -0 "$telecap_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$telecap_pid" 2>/dev/null && fail "telecap still running after 60 s"
rc=0
wait "$telecap_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "telecap exited $rc"
rc=0
wait "$host1_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "host 1 exited $rc"
rc=0
wait "$host2_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "host 2 exited $rc"
[ ! -e "$sock" ] || fail "the socket file is still there after telecap exited"

"$python" - "$tmp" <<'EOF' || fail "the hosts did not get the events"
import collections, json, os, sys
tmp = sys.argv[1]
with open(os.path.join(tmp, "events.jsonl")) as f:
    expected = collections.Counter(".".join(json.loads(l)["event"]) for l in f)
# The host connected after the worker was spawned: it cannot have seen that one.
expected["snakepit.pool.worker.spawned"] -= 1
expected = +expected
with open(os.path.join(tmp, "host1.json")) as f:
    h1 = json.load(f)
with open(os.path.join(tmp, "host2.json")) as f:
    h2 = json.load(f)
errors = []
if h1["counts"] != dict(expected):
    errors.append("host 1 counts %r != jsonl output %r" % (h1["counts"], dict(expected)))
if h1["events"] != sum(expected.values()):
    errors.append("host 1 got %d events, expected %d" % (h1["events"], sum(expected.values())))
if expected["snakepit.python.tool.execution.start"] != 8:
    errors.append("the worker's 8 spans are not all there: %r" % dict(expected))
if h1["bad_lines"] or h1["partial_lines"]:
    errors.append("host 1 got bad or partial lines")
stops = expected["snakepit.python.tool.execution.stop"]
got = h1["durations"].get("snakepit.python.tool.execution.stop", {}).get("count", 0)
if got != stops or stops == 0:
    errors.append("durations of %d stop events, expected %d" % (got, stops))
if h1["counts"].get("snakepit.pool.worker.terminated") != 1:
    errors.append("host 1 did not see the worker terminate")
if h2["events"] != 3:
    errors.append("host 2 should have left after 3 events, got %d" % h2["events"])
with open(os.path.join(tmp, "stats.json")) as f:
    stats = json.load(f)
if stats["handler_failures"] != 0:
    errors.append("handler failures: %r" % stats)
for e in errors:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
grep -q "host: terminated" "$tmp/host1.log" || fail "host 1 did not print the lifecycle"
grep -q "snakepit.python.tool.execution.stop" "$tmp/host1.log" || fail "host 1 summary"

# Not a socket: exit 2, the file is left alone.
echo precious >"$tmp/file"
rc=0
"$bin" parse -o "unix:$tmp/file" </dev/null >"$tmp/notsock.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "unix: on a regular file exited $rc, not 2"
grep -q precious "$tmp/file" || fail "the regular file was touched"

# Stale: a telecap that was SIGKILLed leaves its socket file; the next one replaces it.
stale=$tmp/stale.sock
"$bin" run -o "unix:$stale" -- sleep 30 >"$tmp/killed.log" 2>&1 &
killed_pid=$!
pids+=("$killed_pid")
for i in $(seq 1 100); do [ -S "$stale" ] && break; sleep 0.05; done
[ -S "$stale" ] || fail "telecap did not create $stale"
exec 3>&2 2>/dev/null  # not bash's "Killed" notice
kill -KILL "$killed_pid"
wait "$killed_pid" || true
exec 2>&3 3>&-
[ -S "$stale" ] || fail "the killed telecap's socket file is gone (nothing to test)"
rc=0
printf 'TELEMETRY:{"event":"tool.execution.start","measurements":{"system_time":1}}\n' |
    "$bin" parse -o "unix:$stale" >"$tmp/stale.log" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "telecap on a stale socket exited $rc"
[ ! -e "$stale" ] || fail "the replaced socket was not unlinked at exit"
echo "unix host: ok"
