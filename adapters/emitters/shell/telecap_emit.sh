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
# Controls from telecap (telecap run --telemetry-fd N gives the worker a control pipe at the
# fd in TELECAP_CONTROL_FD; docs/control.md, "The control pipe"). The emitter reads the first
# state when it is sourced (telecap wrote it before the worker started) and applies the latest
# state before it formats anything: the toggle, then (bash only) sampling, then the filter
# (case patterns made from telecap's fnmatch patterns: '*' crosses dots, '?', "[seq]",
# "[!seq]", case-sensitive, deny wins, an empty allow list allows all). What each shell gets:
# - bash: looks at the pipe by itself from telecap_emit at most every 100 ms
#   (TELECAP_CONTROL_POLL_US; by $EPOCHREALTIME, or once a second by $SECONDS before bash 5),
#   with builtins only (read -t 0 -u, then read -r a line at a time: nothing past a line is
#   consumed); no system call otherwise. Samples with $RANDOM (two draws, 30 bits; this moves
#   the script's own $RANDOM sequence) and tags each line with "control_seq": N, so telecap
#   does not sample it again. A subshell keeps the state and does not read the pipe.
# - dash and other shells: read the pipe at source time and whenever the script calls
#   telecap_controls_refresh (e.g. once per request in its main loop), with one GNU dd
#   iflag=nonblock (a fork; without GNU dd, nothing is read). They apply the toggle and the
#   filter but do not sample, so their lines carry no tag and telecap samples them. Call
#   telecap_controls_refresh from the main shell, not a subshell (what a subshell reads is
#   lost to the main shell).
# - A line that is not a state changes nothing; a state with a pattern holding a newline is
#   not applied here (telecap applies it); at EOF the last state stays. Names are matched as
#   the shell matches: characters in bash under a UTF-8 locale, bytes in dash; a script that
#   sets bash's nocasematch makes the match case-insensitive.
# - The state line is parsed by one awk per new state (no eval of telecap's text).
# - TELECAP_CONTROL_FD is taken only when it is above 2 and a pipe or a socket (test -p/-S on
#   /dev/fd/N; else one TELEMETRY_ERROR line and no controls here: telecap applies them all).
#   It is taken out of the environment of the commands the script runs (they still inherit
#   the fd: a shell cannot make it close-on-exec).
# - telecap_enabled: true (0) unless TELECAP_TELEMETRY=off or telecap's toggle is off.
#   telecap_controls: the state in force as one JSON line.
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

# ---- controls from telecap (the control pipe) -------------------------------------------------
#
# Every helper below keeps to POSIX sh syntax, so dash parses it; the bash-only parts (read -t
# and -u, $RANDOM, $EPOCHREALTIME, $BASHPID) run only when $BASH_VERSION is set.

_telecap_nl='
'

# JSON state line (stdin) -> records on stdout, one per line (awk, so no eval and no shell
# parsing of telecap's text):
#   "bad"                       not a state: keep the previous one
#   "big"                       a state the shell cannot hold (a pattern with a newline): apply
#                               nothing here
#   "state", then SEQ, ON, THR, SAMPLE, NS, NA, ND (a line each)
#                               ON 1/0; THR the rate times 2^30; SAMPLE 1 when rate < 1; N* the
#                               number of sampling patterns, allow, deny
#   "s PAT" / "a PAT" / "d PAT" a pattern as a shell case pattern (one that can never match is
#                               left out; the counts keep it)
# Patterns are translated from Python's fnmatch to case patterns: '*' and '?' stay, a "[...]"
# set is rebuilt member by member ("!" negates, a ']' first is a member, "a-z" a range, "z-a"
# empty, a '-' first or last a member), every other ASCII character but a letter or digit is
# backslash-quoted, so '\', '^', extglob's "+(" and the like are literals, as in Python.
_telecap_ctl_awk='
function hexval(h,   i, v, c) {
    if (length(h) < 4) return -1
    v = 0
    for (i = 1; i <= 4; i++) {
        c = index("0123456789abcdef", tolower(substr(h, i, 1)))
        if (c == 0) return -1
        v = v * 16 + c - 1
    }
    return v
}
function utf8(c) {
    if (c < 128) return sprintf("%c", c)
    if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
    if (c < 65536) return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
    return sprintf("%c%c%c%c", 240 + int(c / 262144), 128 + int(c / 4096) % 64,
                   128 + int(c / 64) % 64, 128 + c % 64)
}
function ws() { while (pos <= n && index(" \t\r\n", substr(s, pos, 1)) > 0) pos++ }
function str(   c, out, h, lo) {
    if (substr(s, pos, 1) != "\"") return 0
    pos++
    out = ""
    while (pos <= n) {
        c = substr(s, pos, 1)
        if (c == "\"") { pos++; STR = out; return 1 }
        if (c != "\\") { out = out c; pos++; continue }
        c = substr(s, pos + 1, 1)
        pos += 2
        if (c == "u") {
            h = hexval(substr(s, pos, 4))
            if (h <= 0) return 0
            pos += 4
            if (h >= 55296 && h < 56320 && substr(s, pos, 2) == "\\u") {
                lo = hexval(substr(s, pos + 2, 4))
                if (lo >= 56320 && lo < 57344) { h = 65536 + (h - 55296) * 1024 + lo - 56320; pos += 6 }
            }
            out = out utf8(h)
        } else if (c == "\"" || c == "\\" || c == "/") out = out c
        else if (c == "n") out = out "\n"
        else if (c == "t") out = out "\t"
        else if (c == "r") out = out "\r"
        else if (c == "b") out = out "\b"
        else if (c == "f") out = out "\f"
        else return 0
    }
    return 0
}
function num() {
    if (!match(substr(s, pos), /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/)) return 0
    NUM = substr(s, pos, RLENGTH)
    pos += RLENGTH
    return 1
}
function skip(depth,   cl) {
    ws()
    if (depth > 32) return 0
    if (substr(s, pos, 1) == "\"") return str()
    if (substr(s, pos, 4) == "true" || substr(s, pos, 4) == "null") { pos += 4; return 1 }
    if (substr(s, pos, 5) == "false") { pos += 5; return 1 }
    if (substr(s, pos, 1) == "{" || substr(s, pos, 1) == "[") {
        cl = substr(s, pos, 1) == "{" ? "}" : "]"
        pos++
        ws()
        if (substr(s, pos, 1) == cl) { pos++; return 1 }
        for (;;) {
            if (cl == "}") {
                ws()
                if (!str()) return 0
                ws()
                if (substr(s, pos, 1) != ":") return 0
                pos++
            }
            if (!skip(depth + 1)) return 0
            ws()
            if (substr(s, pos, 1) == ",") { pos++; continue }
            if (substr(s, pos, 1) == cl) { pos++; return 1 }
            return 0
        }
    }
    return num()
}
function chlen(p, k,   c) {
    c = substr(p, k, 1)
    if (c >= "\360") return 4
    if (c >= "\340") return 3
    if (c >= "\300") return 2
    return 1
}
function esc(c) {
    if (length(c) > 1 || c ~ /^[A-Za-z0-9]$/ || c >= "\200") return c
    return "\\" c
}
function tr(p,   m, i, j, k, c, out, neg, items, lo, hi, l) {
    NEVER = 0
    out = ""
    m = length(p)
    i = 1
    while (i <= m) {
        l = chlen(p, i)
        c = substr(p, i, l)
        i += l
        if (c == "*" || c == "?") { out = out c; continue }
        if (c != "[") { out = out esc(c); continue }
        j = i
        if (j <= m && substr(p, j, 1) == "!") j++
        if (j <= m && substr(p, j, 1) == "]") j++
        while (j <= m && substr(p, j, 1) != "]") j++
        if (j > m) { out = out "\\["; continue }
        neg = substr(p, i, 1) == "!"
        k = i + neg
        items = ""
        while (k < j) {
            l = chlen(p, k)
            lo = substr(p, k, l)
            k += l
            if (k + 1 < j && substr(p, k, 1) == "-") {
                l = chlen(p, k + 1)
                hi = substr(p, k + 1, l)
                k += 1 + l
                if (lo <= hi) items = items esc(lo) "-" esc(hi)
            } else items = items esc(lo)
        }
        i = j + 1
        if (items == "") { if (neg) out = out "?"; else NEVER = 1; continue }
        out = out "[" (neg ? "!" : "") items "]"
    }
    return out
}
function list(kind,   cnt, t) {
    ws()
    cnt = 0
    if (substr(s, pos, 4) == "null") { pos += 4; return 0 }
    if (substr(s, pos, 1) != "[") return -1
    pos++
    ws()
    if (substr(s, pos, 1) == "]") { pos++; return 0 }
    for (;;) {
        ws()
        if (!str()) return -1
        cnt++
        if (index(STR, "\n") > 0) BIG = 1
        t = tr(STR)
        if (!NEVER) PATS = PATS kind " " t "\n"
        ws()
        if (substr(s, pos, 1) == ",") { pos++; continue }
        if (substr(s, pos, 1) == "]") { pos++; return cnt }
        return -1
    }
}
function parse(   key, seq, on, rate, ns, na, nd, r, thr) {
    n = length(s); pos = 1; on = 1; rate = 1; ns = na = nd = 0; seq = ""; PATS = ""; BIG = 0
    ws()
    if (substr(s, pos, 1) != "{") return "bad"
    pos++
    ws()
    if (substr(s, pos, 1) == "}") pos++
    else for (;;) {
        ws()
        if (!str()) return "bad"
        key = STR
        ws()
        if (substr(s, pos, 1) != ":") return "bad"
        pos++
        ws()
        if (key == "seq") {
            if (!num() || NUM !~ /^[0-9]+$/ || length(NUM) > 15) return "bad"
            seq = NUM + 0
        } else if (key == "enabled") {
            if (substr(s, pos, 4) == "true") { on = 1; pos += 4 }
            else if (substr(s, pos, 5) == "false") { on = 0; pos += 5 }
            else return "bad"
        } else if (key == "sampling_rate") {
            if (!num()) return "bad"
            rate = NUM + 0
        } else if (key == "sampling_patterns" || key == "allow" || key == "deny") {
            r = list(substr(key, 1, 1))
            if (r < 0) return "bad"
            if (key == "allow") na = r; else if (key == "deny") nd = r; else ns = r
        } else if (!skip(0)) return "bad"
        ws()
        if (substr(s, pos, 1) == ",") { pos++; continue }
        if (substr(s, pos, 1) == "}") { pos++; break }
        return "bad"
    }
    ws()
    if (pos <= n || seq == "") return "bad"
    if (BIG) return "big"
    if (rate < 0) rate = 0
    if (rate > 1) rate = 1
    thr = int(rate * 1073741824 + 0.5)
    return sprintf("state\n%d\n%d\n%d\n%d\n%d\n%d\n%d\n%s", seq, on, thr, rate < 1, ns, na, nd, PATS)
}
{ s = $0; printf "%s", parse(); exit }
'

# Applies the state line $1 (its records from awk); a line that is not a state changes nothing.
_telecap_ctl_apply() {
    _telecap_r=$(printf '%s\n' "$1" | LC_ALL=C awk "$_telecap_ctl_awk" 2>/dev/null; echo .)
    _telecap_r=${_telecap_r%.}
    case $_telecap_r in
    big)  # telecap applies it all; nothing applied or tagged here
        _telecap_cseq=0 _telecap_con=1 _telecap_cgated= _telecap_csamp= _telecap_ctag=
        return ;;
    "state$_telecap_nl"*) ;;
    *) return ;;
    esac
    # state, SEQ, ON, THR, SAMPLE, NS, NA, ND: a line each
    set --
    while [ $# -lt 8 ]; do
        set -- "$@" "${_telecap_r%%"$_telecap_nl"*}"
        _telecap_r=${_telecap_r#*"$_telecap_nl"}
    done
    _telecap_cseq=$2 _telecap_con=$3 _telecap_cthr=$4 _telecap_nsp=$6 _telecap_nal=$7 _telecap_nde=$8
    _telecap_csamp= _telecap_ctag=
    if [ -n "${BASH_VERSION:-}" ]; then
        [ "$5" = 1 ] && _telecap_csamp=1
        # bash applies the sampling: telecap does not draw again for these lines
        [ "$2" != 0 ] && _telecap_ctag=$2
    fi
    _telecap_sp= _telecap_al= _telecap_de=
    while [ -n "$_telecap_r" ]; do
        _telecap_h=${_telecap_r%%"$_telecap_nl"*}
        _telecap_r=${_telecap_r#*"$_telecap_nl"}
        case $_telecap_h in
        "s "*) _telecap_sp=$_telecap_sp${_telecap_h#s }$_telecap_nl ;;
        "a "*) _telecap_al=$_telecap_al${_telecap_h#a }$_telecap_nl ;;
        "d "*) _telecap_de=$_telecap_de${_telecap_h#d }$_telecap_nl ;;
        esac
    done
    _telecap_cgated=
    if [ -n "$_telecap_csamp" ] || [ "$_telecap_nal" != 0 ] || [ "$_telecap_nde" != 0 ]; then
        _telecap_cgated=1
    fi
}

# Takes the bytes read ($1): complete lines are states, only the last one counts; a partial
# line waits in _telecap_cpart. A line longer than 64 KiB is dropped.
_telecap_ctl_take() {
    _telecap_cpart=$_telecap_cpart$1
    case $_telecap_cpart in
    *"$_telecap_nl"*)
        _telecap_l=${_telecap_cpart%"$_telecap_nl"*}
        _telecap_cpart=${_telecap_cpart##*"$_telecap_nl"}
        _telecap_ctl_apply "${_telecap_l##*"$_telecap_nl"}" ;;
    esac
    [ "${#_telecap_cpart}" -gt 65536 ] && _telecap_cpart=
    return 0
}

# One look at the pipe now. bash: its own read (-t 0: is there input; then a line at a time,
# so nothing past it is consumed). Other shells: one dd with iflag=nonblock (a fork), when
# GNU dd is there; else nothing is read.
telecap_controls_refresh() {
    [ -n "$_telecap_cfd" ] || return 0
    if [ -n "${BASH_VERSION:-}" ]; then
        # A subshell (( ), $( ), a pipeline) keeps the state and leaves the pipe to the shell
        # that sourced the emitter: what it read would be lost to that shell.
        [ "${BASHPID:-$_telecap_cpid}" = "$_telecap_cpid" ] || return 0
        _telecap_got=
        while read -t 0 -u "$_telecap_cfd" 2>/dev/null; do
            _telecap_l=
            read -r -t 0.05 -u "$_telecap_cfd" _telecap_l 2>/dev/null
            _telecap_rc=$?
            if [ "$_telecap_rc" = 0 ]; then
                _telecap_got=$_telecap_got$_telecap_l$_telecap_nl
            elif [ "$_telecap_rc" -gt 128 ]; then  # a partial line (timed out)
                _telecap_got=$_telecap_got$_telecap_l
                break
            else  # EOF: the last state stays, the pipe is not read again
                _telecap_got=$_telecap_got$_telecap_l
                _telecap_cfd=
                break
            fi
            [ "${#_telecap_got}" -gt 262144 ] && break
        done
        [ -n "$_telecap_got" ] && _telecap_ctl_take "$_telecap_got"
    elif [ -n "$_telecap_cdd" ]; then
        # Until a dd reads nothing (then EAGAIN fails it; EOF does not), at most 4 forks.
        _telecap_i=0
        while [ "$_telecap_i" -lt 4 ] && [ -n "$_telecap_cfd" ]; do
            _telecap_got=$(dd bs=65536 count=1 iflag=nonblock <&"$_telecap_cfd" 2>/dev/null
                           echo ".$?")
            _telecap_rc=${_telecap_got##*.}
            _telecap_got=${_telecap_got%.*}
            if [ -z "$_telecap_got" ]; then
                [ "$_telecap_rc" = 0 ] && _telecap_cfd=  # EOF: the last state stays
                break
            fi
            _telecap_ctl_take "$_telecap_got"
            _telecap_i=$((_telecap_i + 1))
        done
    fi
    return 0
}

# A look when one is due: bash, at most every TELECAP_CONTROL_POLL_US microseconds (100000,
# by $EPOCHREALTIME; bash < 5: once a second, by $SECONDS). Other shells: never by themselves.
# The bash version is defined from a constant string, so other shells never parse its syntax;
# it has no redirection (in bash each is an open() and a dup2()) and no pattern expansion
# (slow): it costs a few microseconds, and no system call but once per interval.
_telecap_ctl_due() { return 0; }
if [ -n "${BASH_VERSION:-}" ]; then
    eval '_telecap_ctl_due() {
        _telecap_t=${EPOCHREALTIME/[.,]/}
        if [[ -n $_telecap_t ]]; then
            (( _telecap_t < _telecap_cnext )) && return 0
            _telecap_cnext=$(( _telecap_t + ${TELECAP_CONTROL_POLL_US:-100000} ))
        else
            (( SECONDS == _telecap_cnext )) && return 0
            _telecap_cnext=$SECONDS
        fi
        telecap_controls_refresh
    }'
fi

# 0 when the pattern list $2 (newline-terminated case patterns) has one matching $1.
_telecap_any() {
    _telecap_rest=$2
    while [ -n "$_telecap_rest" ]; do
        _telecap_p=${_telecap_rest%%"$_telecap_nl"*}
        _telecap_rest=${_telecap_rest#*"$_telecap_nl"}
        case $1 in $_telecap_p) return 0 ;; esac
    done
    return 1
}

# Sampling (bash), then the filter, for the name $1: 0 keep it, 1 removed.
_telecap_ctl_gate() {
    if [ -n "$_telecap_csamp" ]; then
        if [ "$_telecap_nsp" = 0 ] || _telecap_any "$1" "$_telecap_sp"; then
            if [ $(((RANDOM << 15 | RANDOM) < _telecap_cthr)) = 0 ]; then
                _telecap_nsampled=$((_telecap_nsampled + 1))
                return 1
            fi
        fi
    fi
    if { [ "$_telecap_nde" != 0 ] && _telecap_any "$1" "$_telecap_de"; } ||
        { [ "$_telecap_nal" != 0 ] && ! _telecap_any "$1" "$_telecap_al"; }; then
        _telecap_nfiltered=$((_telecap_nfiltered + 1))
        return 1
    fi
    return 0
}

# 0 (true) when telemetry is on: TELECAP_TELEMETRY is not "off" and telecap's toggle is on.
telecap_enabled() {
    [ "${TELECAP_TELEMETRY:-}" = off ] && return 1
    _telecap_ctl_due
    [ "$_telecap_con" = 1 ]
}

# The controls in force, as one JSON line (for tests and logs).
telecap_controls() {
    printf '{"seq": %s, "enabled": %s, "sampling": %s, "reading": %s, "n_sampling_patterns": %s, "n_allow": %s, "n_deny": %s, "sampled": %s, "filtered": %s}\n' \
        "$_telecap_cseq" "$([ "$_telecap_con" = 1 ] && echo true || echo false)" \
        "$([ -n "$_telecap_csamp" ] && echo true || echo false)" \
        "$([ -n "$_telecap_cfd" ] && echo true || echo false)" \
        "$_telecap_nsp" "$_telecap_nal" "$_telecap_nde" "$_telecap_nsampled" "$_telecap_nfiltered"
}

# At source time (once per shell): take the pipe and read the first state (telecap wrote it
# before the worker started). TELECAP_CONTROL_FD is taken out of the environment of the
# commands the script runs: they inherit the fd (a shell cannot make it close-on-exec), but
# another emitter in them does not read what this one needs.
if [ -z "${_telecap_cinit:-}" ]; then
    _telecap_cinit=1 _telecap_cfd= _telecap_cpart= _telecap_cnext=0 _telecap_cdd=
    _telecap_cseq=0 _telecap_con=1 _telecap_cgated= _telecap_csamp= _telecap_ctag=
    _telecap_cthr=1073741824 _telecap_nsp=0 _telecap_nal=0 _telecap_nde=0
    _telecap_sp= _telecap_al= _telecap_de= _telecap_nsampled=0 _telecap_nfiltered=0
    case ${TELECAP_CONTROL_FD-unset} in
    unset) ;;
    '' | *[!0-9]* | ?????????* | 0 | 1 | 2 | 0[0-9]*)
        # Never the script's own stdin (or anything that is not a pipe from telecap).
        _telecap_write "TELEMETRY_ERROR: telecap_emit: TELECAP_CONTROL_FD ignored: not an fd above 2" \
            "${TELECAP_TELEMETRY_FD:-2}" || :
        unset TELECAP_CONTROL_FD ;;
    *)
        if [ ! -p "/dev/fd/$TELECAP_CONTROL_FD" ] && [ ! -S "/dev/fd/$TELECAP_CONTROL_FD" ]; then
            _telecap_write "TELEMETRY_ERROR: telecap_emit: TELECAP_CONTROL_FD ignored: not a pipe or a socket" \
                "${TELECAP_TELEMETRY_FD:-2}" || :
            unset TELECAP_CONTROL_FD
        elif [ "${TELECAP_TELEMETRY:-}" != off ] && { true <&"$TELECAP_CONTROL_FD"; } 2>/dev/null; then
            _telecap_cfd=$TELECAP_CONTROL_FD
            _telecap_cpid=${BASHPID:-$$}
            if [ -z "${BASH_VERSION:-}" ] &&
                dd if=/dev/null of=/dev/null iflag=nonblock count=0 2>/dev/null; then
                _telecap_cdd=1
            fi
            unset TELECAP_CONTROL_FD
            telecap_controls_refresh
        fi ;;
    esac
fi

telecap_emit() {
    [ "${TELECAP_TELEMETRY:-}" = off ] && return 0
    # telecap's controls first: an event they remove is not even formatted.
    [ -n "$_telecap_cfd" ] && _telecap_ctl_due
    [ "$_telecap_con" = 1 ] || return 0
    if [ -n "$_telecap_cgated" ] && [ -n "${1:-}" ]; then
        _telecap_ctl_gate "$1" || return 0
    fi
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
    _telecap_line="TELEMETRY:{\"event\": \"$_telecap_event\", \"measurements\": ${2:-"{}"}, \"metadata\": ${3:-"{}"}, \"timestamp_ns\": $_telecap_ts, \"correlation_id\": \"$_telecap_cid\"${_telecap_ctag:+, \"control_seq\": $_telecap_ctag}}"
    if ! _telecap_write "$_telecap_line" "$_telecap_fd" && [ "$_telecap_fd" != 2 ]; then
        _telecap_write "TELEMETRY_ERROR: telecap_emit: cannot write to fd $_telecap_fd: event \"$_telecap_event\"" 2 || :
    fi
    return 0
}
