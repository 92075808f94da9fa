#!/usr/bin/env bash
# examples/systemd as deployed: the unit passes `systemd-analyze verify`, and the logrotate
# config rotates telecap's files under a running telecap, first without a postrotate (telecap
# notices the rename on its own), then with it (SIGUSR1, which must not reach the worker).
# Every event and pass-through line ends up in exactly one file, in order.
#   usage: deploy_test.sh TELECAP_BIN SOURCE_DIR
set -euo pipefail
telecap=$1
src=$2
tmp=$(mktemp -d /tmp/telecap-deploy.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log "$tmp"/*.err; do [ -e "$f" ] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }; done
    exit 1
}
# Polls (every 50 ms, up to 10 s) until the command succeeds.
eventually() {
    for _ in $(seq 200); do "$@" && return 0; sleep 0.05; done
    "$@"
}

# --- the unit --------------------------------------------------------------------------------
unit=$src/examples/systemd/telecap.service
if command -v systemd-analyze >/dev/null; then
    # verify needs ExecStart's binary to exist: the built one stands in for the installed one.
    sed "s|/usr/local/bin/telecap|$telecap|" "$unit" >"$tmp/telecap.service"
    systemd-analyze verify "$tmp/telecap.service" >"$tmp/verify.log" 2>&1 ||
        fail "systemd-analyze verify telecap.service"
    grep -v "^$" "$tmp/verify.log" && fail "systemd-analyze verify has warnings"
    echo "ok: systemd-analyze verify telecap.service"
else
    echo "note: no systemd-analyze (Debian's systemd package): the unit's keys are checked only"
fi
for key in Type=notify NotifyAccess=main KillMode=mixed SuccessExitStatus=143 'ExecReload=/bin/kill -HUP $MAINPID'; do
    grep -qxF "$key" "$unit" || fail "telecap.service lacks $key"
done

# --- logrotate -------------------------------------------------------------------------------
command -v logrotate >/dev/null || { echo "SKIP: no logrotate (Debian's logrotate package)"; exit 77; }
log=$tmp/log
mkdir -p "$log"
stop=$tmp/stop
# An event and a plain line with the same number every 10 ms until $stop exists. USR1 is left
# at its default: a forwarded USR1 would kill it, and telecap would exit early with 138.
worker='i=0; while [ ! -e "$1" ]; do i=$((i+1));
printf "TELEMETRY:{\"event\": \"tool.execution.start\", \"measurements\": {\"count\": %d}, \"metadata\": {\"tool\": \"t\"}, \"timestamp_ns\": 1, \"correlation_id\": \"\"}\nline %d\n" $i $i >&2;
sleep 0.01; done'
"$telecap" run -o "jsonl:$log/events.jsonl" --passthrough "$log/pass.log" \
    -- /bin/sh -c "$worker" sh "$stop" >"$tmp/telecap.log" 2>"$tmp/telecap.err" &
pid=$!
lines_in() { [ -f "$1" ] && [ "$(grep -c . "$1")" -ge "$2" ]; }
eventually lines_in "$log/events.jsonl" 5 || fail "no events before the rotation"

# The example config, pointed at the temporary folder: no user to chown to.
conf() {
    sed -e "s|/var/log/telecap|$log|g" -e "s|create 0644 telecap telecap|create 0644|" \
        "$src/examples/systemd/telecap.logrotate"
}
# 1. Without a postrotate: logrotate renames, creates, and telecap follows on its own.
conf | sed '/^ *postrotate$/,/^ *endscript$/d' >"$tmp/rotate1.conf"
logrotate -f -s "$tmp/state" "$tmp/rotate1.conf" >"$tmp/rotate1.log" 2>&1 || fail "logrotate (1)"
[ -f "$log/events.jsonl.1" ] || fail "logrotate did not rotate events.jsonl"
eventually lines_in "$log/events.jsonl" 5 || fail "no events in the new events.jsonl (create)"
eventually lines_in "$log/pass.log" 5 || fail "no lines in the new pass.log (create)"
# 2. With the postrotate, as systemd would send it: SIGUSR1 to telecap only.
conf | sed "s|systemctl kill --kill-whom=main --signal=USR1 telecap.service|kill -USR1 $pid|" \
    >"$tmp/rotate2.conf"
grep -q "kill -USR1 $pid" "$tmp/rotate2.conf" || fail "the example's postrotate changed"
logrotate -f -s "$tmp/state" "$tmp/rotate2.conf" >"$tmp/rotate2.log" 2>&1 || fail "logrotate (2)"
[ -f "$log/events.jsonl.2.gz" ] || fail "delaycompress: events.jsonl.2.gz missing"
eventually lines_in "$log/events.jsonl" 5 || fail "no events in the new events.jsonl (USR1)"

: >"$stop"
status=0
wait "$pid" || status=$?
pid=
[ "$status" -eq 0 ] || fail "telecap exited $status (138: SIGUSR1 reached the worker)"

# Every number once, in order, across the rotated files.
python3 - "$log" <<'PY' || fail "lines lost or written twice across the rotation"
import gzip, json, re, sys
log = sys.argv[1]
def read(name):
    opener = gzip.open if name.endswith(".gz") else open
    with opener(f"{log}/{name}", "rt") as f:
        return f.read()
events, lines = [], []
for suffix in (".2.gz", ".1", ""):
    for rec in read("events.jsonl" + suffix).splitlines():
        e = json.loads(rec)
        if e["event"][-2:] == ["execution", "start"]:
            events.append(e["measurements"]["count"])
    lines += [int(m) for m in re.findall(r"^line (\d+)$", read("pass.log" + suffix), re.M)]
for what, got in (("events", events), ("lines", lines)):
    want = list(range(1, len(got) + 1))
    if got != want or len(got) < 15:
        sys.exit(f"{what}: {len(got)} numbers, first difference at "
                 f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), len(got))}")
print(f"ok: {len(events)} events and {len(lines)} lines across two rotations, each once")
PY
