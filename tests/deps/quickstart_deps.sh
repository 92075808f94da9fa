#!/usr/bin/env bash
# The quick start's packages are enough to build: configures the tree as scripts/quickstart does
# and checks that every file under /usr the configure found (compiler, CMake, make, the
# libraries' CMake and pkg-config files, headers) belongs to a package of `scripts/deps` (without
# --test) or to one of their dependencies. So a build dependency that only the test packages
# happened to bring fails here, not on a user's fresh machine.
#   usage: quickstart_deps.sh SOURCE_DIR
set -euo pipefail
src=$1
command -v dpkg >/dev/null && command -v apt-cache >/dev/null ||
    { echo "SKIP: not a Debian system (dpkg, apt-cache)"; exit 77; }
tmp=$(mktemp -d /tmp/telecap-deps.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The build list, as scripts/deps declares it.
pkgs=$(bash -c 'source <(sed -n "/^pkgs=(/,/)/p" "$1"); echo "${pkgs[@]}"' _ "$src/scripts/deps")
[ -n "$pkgs" ] || { echo "FAIL: no pkgs=(...) in scripts/deps"; exit 1; }
# shellcheck disable=SC2086
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $pkgs 2>/dev/null |
    sed -E 's/^ +(Pre)?Depends: //; s/[<>]//g; s/:any$//' | sort -u >"$tmp/allowed"
for p in $pkgs; do echo "$p"; done >>"$tmp/allowed"
# What every Debian system has (Essential: yes, Priority: required): coreutils, sed, ...
dpkg-query -W -f='${Package} ${Essential} ${Priority}\n' |
    awk '$2 == "yes" || $3 == "required" { print $1 }' >>"$tmp/allowed"

# The gRPC bridge is optional (built when its packages are found, as scripts/test installs
# them): the quick start's build is the one without it.
cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DTELECAP_BUILD_TESTS=OFF -DTELECAP_GRPC=OFF \
    >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; echo "FAIL: configure"; exit 1; }
grep -E '^[^#/][^=]*=/usr/' "$tmp/build/CMakeCache.txt" | sed 's/^[^=]*=//' | tr ';' '\n' |
    grep '^/usr/' | sort -u >"$tmp/found"
[ -s "$tmp/found" ] || { echo "FAIL: the configure found nothing under /usr?"; exit 1; }
bad=0
while read -r path; do
    real=$(readlink -f "$path" || echo "$path")
    if [ -d "$real" ]; then
        # A package's CMake folder (.../cmake/CLI11): its files name the package. A folder many
        # packages share (/usr/include) is skipped.
        case "$real" in
            */cmake/*) real=$(find "$real" -maxdepth 1 -type f | head -n 1) ;;
            *) continue ;;
        esac
        [ -n "$real" ] || continue
    fi
    # Debian 12 merged /bin into /usr/bin, and dpkg still knows /bin/uname as /bin/uname.
    owners=$( (dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || true) |
        sed 's/: .*//' | tr ',' '\n' | sed 's/^ *//; s/:.*//')
    [ -n "$owners" ] || continue  # made by the build or by hand: not a package's
    ok=0
    for o in $owners; do grep -qxF "$o" "$tmp/allowed" && ok=1; done
    if [ "$ok" = 0 ]; then
        echo "FAIL: $path ($real) comes from $(echo $owners), not from the quick start's packages"
        bad=1
    fi
done <"$tmp/found"
[ "$bad" = 0 ] || exit 1
echo "ok: $(wc -l <"$tmp/found") paths found by the configure, all from: $pkgs (and their dependencies)"
