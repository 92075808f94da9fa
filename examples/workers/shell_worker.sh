#!/bin/sh
# A shell worker that emits telemetry with the shell emitter.
#
#   telecap run -- sh examples/workers/shell_worker.sh [ITERATIONS]
#
# Each iteration logs a line to stderr, times a "tool" (tool.execution.start with system_time,
# then tool.execution.stop with duration, both in ns) and reports its output size
# (tool.result_size). It exits 0.

here=$(dirname "$0")
. "$here/../../adapters/emitters/shell/telecap_emit.sh"

iterations=${1:-${SHELL_WORKER_ITERATIONS:-3}}
worker=${TELECAP_WORKER_ID:-standalone}

now_ns() {
    _t=$(date +%s%N 2>/dev/null)
    case $_t in '' | *[!0-9]*) _t=$(date +%s)000000000 ;; esac
    echo "$_t"
}

echo "shell worker $worker (pid $$) starting, $iterations iterations" >&2
i=0
while [ "$i" -lt "$iterations" ]; do
    request="req-$worker-$i"
    echo "iteration $i: handling $request" >&2
    start=$(now_ns)
    telecap_emit tool.execution.start "{\"system_time\": $start}" \
        "{\"tool\": \"wc\", \"worker_pid\": $$}" "$request"
    size=$(printf 'line %s\n' 1 2 3 "$i" | wc -c | tr -d ' ')
    telecap_emit tool.execution.stop "{\"duration\": $(( $(now_ns) - start ))}" \
        "{\"tool\": \"wc\", \"worker_pid\": $$}" "$request"
    telecap_emit tool.result_size "{\"message_size\": $size}" "{\"tool\": \"wc\"}" "$request"
    i=$((i + 1))
done
echo "shell worker $worker done" >&2
