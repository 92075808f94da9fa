#!/usr/bin/env bash
# `cmake --install` lays out the worker-side emitters, and each works from where it lands:
#   usage: emitters_install.sh BUILD_DIR SOURCE_DIR TELECAP_BIN
#  - include/telecap/telecap_emit.h: a C program built against the installed header;
#  - share/telecap/emitters/python: the module imported from there, and installed with pip from
#    that folder (offline: --no-index --no-build-isolation; needs Debian's python3-pip,
#    python3-setuptools and python3-wheel, which scripts/deps installs for the tests);
#  - share/telecap/emitters/shell/telecap_emit.sh: sourced;
# each one's line read by the installed telecap as an event.
set -euo pipefail
build=$1
src=$2
telecap=$3
tmp=$(mktemp -d /tmp/telecap-emitters.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log; do [ -e "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
    exit 1
}
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || fail "cmake --install"
for f in include/telecap/telecap_emit.h \
         share/telecap/emitters/README.md \
         share/telecap/emitters/python/telecap_emit.py \
         share/telecap/emitters/python/pyproject.toml \
         share/telecap/emitters/python/README.md \
         share/telecap/emitters/shell/telecap_emit.sh; do
    [ -f "$prefix/$f" ] || fail "not installed: $f"
done

# Each emitter writes one event; telecap parse turns the lines into events.
cat >"$tmp/w.c" <<'EOF'
#define _POSIX_C_SOURCE 200809L
#include <telecap/telecap_emit.h>
int main(void) {
    telecap_kv m[1], d[1];
    m[0] = telecap_i64("count", 1);
    d[0] = telecap_str("tool", "c");
    return telecap_emit("tool.execution.start", m, 1, d, 1, NULL) == 0 ? 0 : 1;
}
EOF
cc -std=c99 -Wall -Werror -I"$prefix/include" "$tmp/w.c" -o "$tmp/w" >"$tmp/cc.log" 2>&1 ||
    fail "the installed header does not build"
"$tmp/w" 2>"$tmp/lines"
PYTHONPATH=$prefix/share/telecap/emitters/python python3 -c \
    'from telecap_emit import emit; emit("tool.execution.start", {"count": 1}, {"tool": "py"})' \
    2>>"$tmp/lines"
bash -c ". '$prefix/share/telecap/emitters/shell/telecap_emit.sh';
         telecap_emit tool.execution.start '{\"count\": 1}' '{\"tool\": \"sh\"}'" 2>>"$tmp/lines"
"$telecap" parse --passthrough none "$tmp/lines" >"$tmp/events" 2>"$tmp/parse.log" ||
    fail "telecap parse"
for tool in c py sh; do
    grep -q "\"tool\":\"$tool\"" "$tmp/events" || fail "no event from the $tool emitter"
done

# pip, offline, from the installed folder (a copy: a build leaves files beside the sources).
if ! /usr/bin/python3 -c 'import setuptools, wheel' 2>/dev/null || ! /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
    echo "SKIP: pip install needs Debian's python3-pip, python3-setuptools and python3-wheel"
    exit 77
fi
cp -r "$prefix/share/telecap/emitters/python" "$tmp/pysrc"
/usr/bin/python3 -m pip install --quiet --no-index --no-build-isolation --disable-pip-version-check \
    --target "$tmp/site" "$tmp/pysrc" >"$tmp/pip.log" 2>&1 || fail "pip install"
[ -f "$tmp/site/telecap_emit.py" ] || fail "pip put no telecap_emit.py in the target"
ls -d "$tmp"/site/telecap_emit-*.dist-info >/dev/null 2>&1 || fail "pip recorded no dist-info"
PYTHONPATH=$tmp/site /usr/bin/python3 -c \
    'import telecap_emit, sys; sys.exit(0 if telecap_emit.__file__.startswith(sys.argv[1]) else 1)' \
    "$tmp/site" || fail "the pip-installed module is not the one imported"
echo "ok: emitters installed under $prefix and by pip"
