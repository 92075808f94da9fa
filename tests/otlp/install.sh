#!/usr/bin/env bash
# Installs the OTLP schema checker's npm packages (package-lock.json, exact versions) into
# tests/otlp/node_modules, unless they are there already. Fails loudly when npm cannot.
set -euo pipefail
cd "$(dirname "$0")"
root=node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js
stamp=node_modules/.telecap-lock
if [[ -f $root && -f $stamp ]] && cmp -s package-lock.json "$stamp"; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "otlp check: npm is not installed (needed for @opentelemetry/otlp-transformer)" >&2
    exit 1
fi
# --ignore-scripts: protobufjs's postinstall only prints a notice; nothing is built.
if ! npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2; then
    echo "otlp check: npm ci failed (is the npm registry reachable?)" >&2
    exit 1
fi
cp package-lock.json "$stamp"
