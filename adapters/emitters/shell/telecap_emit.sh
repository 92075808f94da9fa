# telecap_emit.sh: write telemetry lines that telecap accepts, from a POSIX shell script.
#
#     . /path/to/telecap_emit.sh
#     telecap_emit python.memory.sampled '{"rss_bytes": 1048576, "vms_bytes": 2097152}'
#     telecap_emit tool.execution.stop '{"duration": 1500}' '{"tool": "grep"}' "req-1"
#
# telecap_emit EVENT [MEASUREMENTS_JSON [METADATA_JSON [CORRELATION_ID]]]
#
# - EVENT and CORRELATION_ID are plain strings (UTF-8); they are JSON-escaped here (quotes,
#   backslashes, control characters). MEASUREMENTS_JSON and METADATA_JSON are JSON objects,
#   written as given (default {}): the caller is responsible for them being valid JSON.
# - The line is the one Snakepit's Python StderrBackend writes:
#     TELEMETRY:{"event": "E", "measurements": M, "metadata": D, "timestamp_ns": N,
#                "correlation_id": "C"}
#   timestamp_ns is the wall clock in ns: bash's $EPOCHREALTIME when there is one, else
#   `date +%s%N` when date supports %N, else `date +%s` times 10^9.
# - Destination: the fd in TELECAP_TELEMETRY_FD when it is a valid integer (telecap run
#   --telemetry-fd N sets it), else stderr (fd 2). TELECAP_TELEMETRY=off makes it a no-op.
#   Both are read at each call.
# - The line is written by one printf of one argument, which the usual shells (dash, bash,
#   busybox ash) turn into a single write(2) for lines of a few KiB; lines up to PIPE_BUF
#   (4096 bytes) are then atomic on a pipe.
# - It always returns 0, also under `set -e`. A call without an event name writes a
#   TELEMETRY_ERROR line instead (where telecap counts it); a failed write to a dedicated fd
#   gives a TELEMETRY_ERROR line on stderr. One thing a shell function cannot do for you: if the reader of the
#   pipe is gone, the write raises SIGPIPE, which kills the shell unless the script has run
#   `trap '' PIPE`.
#
# Every helper variable starts with _telecap_, so the function does not touch the script's own.

# JSON-escapes $1 into _telecap_out (without the quotes). Pure shell for the usual
# identifier-like values; awk for anything with a quote, backslash or control character.
_telecap_escape() {
    case $1 in
    *[!A-Za-z0-9_.:/@+=,%\ -]*)
        # The trailing "." protects trailing newlines from the command substitution.
        _telecap_out=$(printf '%s\n' "$1" | LC_ALL=C awk '
            BEGIN {
                for (i = 1; i < 32; i++) esc[sprintf("%c", i)] = sprintf("\\u%04x", i)
                esc["\b"] = "\\b"; esc["\f"] = "\\f"; esc["\t"] = "\\t"; esc["\r"] = "\\r"
                esc["\""] = "\\\""; esc["\\"] = "\\\\"
            }
            {
                if (NR > 1) printf "%s", "\\n"
                n = length($0)
                for (i = 1; i <= n; i++) {
                    c = substr($0, i, 1)
                    printf "%s", ((c in esc) ? esc[c] : c)
                }
            }
            END { printf "." }') || _telecap_out=.
        _telecap_out=${_telecap_out%.}
        ;;
    *) _telecap_out=$1 ;;
    esac
}

# The wall clock in ns into _telecap_ts.
_telecap_now() {
    # bash 5: $EPOCHREALTIME is "seconds.microseconds", no fork needed.
    case ${EPOCHREALTIME:-} in
    [0-9]*.[0-9][0-9][0-9][0-9][0-9][0-9])
        _telecap_ts=${EPOCHREALTIME%.*}${EPOCHREALTIME#*.}000
        return ;;
    esac
    _telecap_ts=$(date +%s%N 2>/dev/null)
    case $_telecap_ts in
    '' | *[!0-9]*) _telecap_ts=$(date +%s 2>/dev/null)000000000 ;;  # no %N: seconds only
    esac
    case $_telecap_ts in
    000000000 | *[!0-9]*) _telecap_ts=0 ;;
    esac
}

# Writes the line $1 (plus a newline) to fd $2 with one printf; non-zero when that fails.
_telecap_write() {
    if [ "$2" = 2 ]; then
        printf '%s\n' "$1" >&2
    else
        # (stderr silenced only here: inside this group fd 2 is /dev/null)
        { printf '%s\n' "$1" >&"$2"; } 2>/dev/null
    fi
}

telecap_emit() {
    [ "${TELECAP_TELEMETRY:-}" = off ] && return 0
    _telecap_fd=${TELECAP_TELEMETRY_FD:-2}
    case $_telecap_fd in
    '' | *[!0-9]* | ??????????*) _telecap_fd=2 ;;
    esac
    if [ $# -lt 1 ] || [ -z "$1" ]; then
        _telecap_write "TELEMETRY_ERROR: telecap_emit: no event name" "$_telecap_fd" ||
            _telecap_write "TELEMETRY_ERROR: telecap_emit: no event name" 2 || :
        return 0
    fi
    _telecap_escape "$1"
    _telecap_event=$_telecap_out
    _telecap_escape "${4:-}"
    _telecap_cid=$_telecap_out
    _telecap_now
    _telecap_line="TELEMETRY:{\"event\": \"$_telecap_event\", \"measurements\": ${2:-"{}"}, \"metadata\": ${3:-"{}"}, \"timestamp_ns\": $_telecap_ts, \"correlation_id\": \"$_telecap_cid\"}"
    if ! _telecap_write "$_telecap_line" "$_telecap_fd" && [ "$_telecap_fd" != 2 ]; then
        _telecap_write "TELEMETRY_ERROR: telecap_emit: cannot write to fd $_telecap_fd: event \"$_telecap_event\"" 2 || :
    fi
    return 0
}
