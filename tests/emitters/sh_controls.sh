# A shell worker driven by commands on stdin, for tests/emitters/test_control_emitters.py: the
# shell emitter's control pipe. Run with dash or bash: sh sh_controls.sh [EMITTER] (the emitter's
# path, else $EMITTER).
# Commands (one per line, words split on blanks, no globbing), each answered by one line on
# stdout, telecap_controls' JSON:
#   emit N NAME   telecap_emit N events named NAME (measurement "duration": 0..N-1)
#   try NAME...   one telecap_emit each (measurement "duration": the position, from 1)
#   refresh       telecap_controls_refresh
#   wait SEQ      telecap_controls_refresh until state SEQ applies (10 s deadline)
#   sub           the status from a subshell, after its own telecap_controls_refresh
#   child         {"fd": TELECAP_CONTROL_FD as a child process sees it}
#   status        just the status
. "${1:-$EMITTER}"
set -f
while IFS= read -r line; do
    set -- $line
    cmd=$1
    shift
    case $cmd in
    emit)
        i=0
        while [ "$i" -lt "$1" ]; do
            telecap_emit "$2" "{\"duration\": $i}"
            i=$((i + 1))
        done ;;
    try)
        i=1
        for n in "$@"; do
            telecap_emit "$n" "{\"duration\": $i}"
            i=$((i + 1))
        done ;;
    refresh) telecap_controls_refresh ;;
    wait)
        i=0
        while [ "$i" -lt 2000 ]; do
            telecap_controls_refresh
            case $(telecap_controls) in *"\"seq\": $1,"*) break ;; esac
            sleep 0.005
            i=$((i + 1))
        done ;;
    sub)
        (telecap_controls_refresh; telecap_controls)
        continue ;;
    child)
        sh -c 'printf "{\"fd\": \"%s\"}\n" "${TELECAP_CONTROL_FD:-none}"'
        continue ;;
    esac
    telecap_controls
done
