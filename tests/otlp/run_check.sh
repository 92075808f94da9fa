#!/usr/bin/env bash
# ctest otlp_schema: dumps telecap's OTLP bodies, checks them strictly with check_otlp.js, and
# checks that the checker does reject broken bodies (so a checker that passes everything fails).
# Usage: run_check.sh DUMPER OUTDIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dumper=$1
out=$2
"$here/install.sh"
rm -rf "$out"
"$dumper" "$out"
node "$here/check_otlp.js" "$out"/metrics.json "$out"/metrics_empty.json "$out"/logs.json \
    "$out"/logs_empty.json
bad=0
for f in "$here"/bad/*.json; do
    if node "$here/check_otlp.js" "$f" >/dev/null 2>&1; then
        echo "FAIL: the checker accepted $(basename "$f")" >&2
        bad=1
    fi
done
exit $bad
