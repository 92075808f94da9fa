#!/usr/bin/env bash
# The embedding C++ host (examples/hosts/embed) against the installed package:
#   usage: embed_host.sh BUILD_DIR SOURCE_DIR
# Installs BUILD_DIR into a temporary prefix, checks what was installed (headers, package
# config, no RapidJSON in public headers), configures the example with find_package(telecap)
# from that prefix, builds it (-Werror, -j2) and runs it on a small input and on a worker.
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d /tmp/telecap-embed.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log "$tmp"/*.out; do [ -e "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
    exit 1
}
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || fail "cmake --install"
for h in telecap.hpp version.hpp capture/bus.hpp capture/handler.hpp capture/pipeline.hpp \
         capture/catalog.hpp capture/event_json.hpp core/unique_fd.hpp core/log.hpp \
         outputs/jsonl_handler.hpp outputs/unix_socket_handler.hpp spawn/spawner.hpp \
         loop/event_loop.hpp dispatch/dispatcher.hpp supervise/supervisor.hpp \
         metrics/registry.hpp; do
    [ -f "$prefix/include/telecap/$h" ] || fail "not installed: include/telecap/$h"
done
# Internals stay out of the installed API.
for h in capture/utf8.hpp spawn/descendants.hpp spawn/exec_search.hpp spawn/spawn_report.hpp \
         io/log_sink.hpp; do
    [ ! -e "$prefix/include/telecap/$h" ] || fail "internal header installed: include/telecap/$h"
done
config=$(find "$prefix" -name telecap-config.cmake | head -n 1)
[ -n "$config" ] || fail "no telecap-config.cmake installed"
[ -n "$(find "$prefix" -name 'libtelecap_core.a')" ] || fail "no libtelecap_core.a installed"
if grep -rIlE '#[[:space:]]*include[[:space:]]*[<"]rapidjson' "$prefix/include/telecap" \
    >"$tmp/rapidjson.log"; then
    fail "public headers include RapidJSON (it is not installed with them)"
fi
# Installed headers include each other as "telecap/dir/x.hpp", and every one they include is
# installed too.
find "$prefix/include/telecap" -type f | while read -r file; do
    { grep -oE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]+"' "$file" || true; } |
        sed -E 's/.*"(.*)"/\1/' | while read -r inc; do
            case $inc in
                telecap/*) [ -f "$prefix/include/$inc" ] || echo "$file: $inc" >>"$tmp/missing.log" ;;
                *) echo "$file: $inc (not a telecap/ path)" >>"$tmp/missing.log" ;;
            esac
        done
done
[ ! -s "$tmp/missing.log" ] || fail "installed headers include headers that are not installed"
# The umbrella header alone compiles, warning-free, against the installed prefix.
echo '#include <telecap/telecap.hpp>
int main() { return telecap::version_string[0] == 0; }' >"$tmp/umbrella.cpp"
${CXX:-c++} -std=c++20 -Wall -Wextra -Werror -fsyntax-only -I"$prefix/include" "$tmp/umbrella.cpp" \
    >"$tmp/umbrella.log" 2>&1 || fail "<telecap/telecap.hpp> does not compile on its own"

cmake -S "$src/examples/hosts/embed" -B "$tmp/embed" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-Werror >"$tmp/configure.log" 2>&1 ||
    fail "configuring the example with find_package(telecap)"
cmake --build "$tmp/embed" -j2 >"$tmp/build.log" 2>&1 || fail "building the example"
host=$tmp/embed/embed_host
version=$(sed -nE 's/^project\(telecap VERSION ([0-9.]+).*/\1/p' "$src/CMakeLists.txt")
[ "$("$host" --version)" = "embed_host (telecap $version)" ] || fail "version header: $("$host" --version)"

# 1. A small input on stdin: 4 events, 1 rejected line, 2 plain lines.
cat >"$tmp/input.txt" <<'EOF'
starting up
TELEMETRY:{"event":"tool.execution.start","measurements":{"system_time":1700000000},"metadata":{"tool":"search"}}
TELEMETRY:{"event":"tool.execution.stop","measurements":{"duration":1500},"metadata":{"tool":"search"}}
TELEMETRY:{"event":"tool.execution.start","measurements":{"system_time":1700000001},"metadata":{"tool":"fetch"}}
TELEMETRY:{"event":"tool.execution.exception","measurements":{"duration":2500.0},"metadata":{"tool":"fetch","error_type":"TimeoutError"}}
TELEMETRY:{"event":"no.such.event","measurements":{}}
done
EOF
"$host" <"$tmp/input.txt" >"$tmp/stdin.out" 2>"$tmp/stdin.err.log" || fail "embed_host on stdin exited $?"
cat >"$tmp/expected.out" <<'EOF'
lines: 7, events: 4, rejected: 1
event snakepit.python.tool.execution.exception: 1
event snakepit.python.tool.execution.start: 2
event snakepit.python.tool.execution.stop: 1
tool fetch: started 1, stopped 0, failed 1, duration 2500 ns
tool search: started 1, stopped 1, failed 0, duration 1500 ns
memory samples: 0
EOF
diff -u "$tmp/expected.out" "$tmp/stdin.out" >"$tmp/diff.log" || fail "unexpected summary"
printf 'starting up\nTELEMETRY:{"event":"no.such.event","measurements":{}}\ndone\n' \
    >"$tmp/expected.err"
cmp -s "$tmp/expected.err" "$tmp/stdin.err.log" || fail "pass-through is not byte for byte"

# 2. A spawned worker (the legacy example): its stderr is captured in-process.
"$host" -- "${PYTHON:-python3}" "$src/examples/workers/legacy_worker.py" --iterations 4 \
    --interval 0 >"$tmp/worker.out" 2>"$tmp/worker.err.log" || fail "embed_host -- worker exited $?"
grep -q '^event snakepit.python.tool.execution.start: 4$' "$tmp/worker.out" ||
    fail "the worker's 4 spans"
grep -q '^memory samples: 4$' "$tmp/worker.out" || fail "the worker's memory samples"
grep -qE '^tool [^ ]+: started 4, stopped [0-9]+, failed [0-9]+' "$tmp/worker.out" ||
    fail "tool stats"
echo "embed host: ok"
