#!/usr/bin/env node
// Strict check of OTLP/HTTP JSON bodies (ExportMetricsServiceRequest or
// ExportLogsServiceRequest) against the OTLP protobuf schema shipped by
// @opentelemetry/otlp-transformer@0.57.2 (a protobufjs module). A real Collector ignores
// unknown keys, so a typo would pass unnoticed there; here every key must survive a
// fromObject/toObject round trip unchanged. verify() is not used: it rejects int64s given as
// decimal strings, which the protobuf JSON mapping requires.
// Also checked: valid UTF-8, int64 fields as strings, histogram bucketCounts one longer than
// explicitBounds, strictly increasing bounds, sum of buckets = count, hex trace/span ids.
// LogRecord.eventName (field 12, OTLP 1.5.0) postdates this schema: it is checked to be a
// string and then left out of the round trip.
// Usage: check_otlp.js FILE...   (exit 0 when all pass, 1 otherwise, with the reasons)
'use strict';
const fs = require('fs');
const path = require('path');
const root = require(path.join(__dirname,
    'node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js'));
const v1 = root.opentelemetry.proto.collector;

function canonical(v) {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object') {
        const out = {};
        for (const k of Object.keys(v).sort()) out[k] = canonical(v[k]);
        return out;
    }
    return v;
}

function firstDifference(a, b, where) {
    if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b))
        return `${where}: ${JSON.stringify(a)} became ${JSON.stringify(b)}`;
    if (a && typeof a === 'object') {
        const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
        for (const k of keys) {
            if (!(k in b)) return `${where}.${k}: not in the schema (dropped by the decoder)`;
            if (!(k in a)) return `${where}.${k}: added by the round trip`;
            const d = firstDifference(a[k], b[k], `${where}.${k}`);
            if (d) return d;
        }
        return null;
    }
    if (typeof a === 'number' && Number.isNaN(a) && Number.isNaN(b)) return null;
    return a === b ? null : `${where}: ${JSON.stringify(a)} became ${JSON.stringify(b)}`;
}

function checkHistograms(req, errors) {
    for (const rm of req.resourceMetrics || [])
        for (const sm of rm.scopeMetrics || [])
            for (const m of sm.metrics || []) {
                if (!m.histogram) continue;
                (m.histogram.dataPoints || []).forEach((p, i) => {
                    const where = `metric ${m.name} point ${i}`;
                    const bounds = p.explicitBounds || [];
                    const buckets = p.bucketCounts || [];
                    if (buckets.length !== bounds.length + 1)
                        errors.push(`${where}: ${buckets.length} bucketCounts for ${bounds.length} bounds`);
                    for (let j = 1; j < bounds.length; ++j)
                        if (!(bounds[j] > bounds[j - 1])) errors.push(`${where}: bounds not increasing`);
                    if (buckets.some(b => typeof b !== 'string'))
                        errors.push(`${where}: bucketCounts must be decimal strings`);
                    const total = buckets.reduce((s, b) => s + BigInt(b), 0n);
                    if (typeof p.count !== 'string' || total !== BigInt(p.count))
                        errors.push(`${where}: buckets sum to ${total}, count is ${p.count}`);
                });
            }
}

// Takes out what the 0.57.2 schema cannot round-trip (eventName; hex ids, which protobufjs
// reads as base64), after checking it.
function stripLogExtras(req, errors) {
    for (const rl of req.resourceLogs || [])
        for (const sl of rl.scopeLogs || [])
            (sl.logRecords || []).forEach((r, i) => {
                // Keys unique in a record (OTLP requires it), and a null is left out rather
                // than sent as an empty AnyValue.
                const keys = new Set();
                for (const a of r.attributes || []) {
                    if (keys.has(a.key)) errors.push(`logRecord ${i}: attribute ${a.key} twice`);
                    keys.add(a.key);
                    if (!a.value || Object.keys(a.value).length === 0)
                        errors.push(`logRecord ${i}: attribute ${a.key} has an empty value`);
                }
                if ('eventName' in r) {
                    if (typeof r.eventName !== 'string') errors.push(`logRecord ${i}: eventName not a string`);
                    delete r.eventName;
                }
                for (const [k, len] of [['traceId', 32], ['spanId', 16]]) {
                    if (!(k in r)) continue;
                    const ok = typeof r[k] === 'string' && new RegExp(`^[0-9a-f]{${len}}$`).test(r[k]) &&
                        /[1-9a-f]/.test(r[k]);
                    if (!ok) errors.push(`logRecord ${i}: ${k} ${JSON.stringify(r[k])} is not ${len} hex digits`);
                    delete r[k];
                }
            });
}

function check(file) {
    const errors = [];
    const bytes = fs.readFileSync(file);
    let text;
    try {
        text = new TextDecoder('utf-8', {fatal: true}).decode(bytes);
    } catch (e) {
        return ['not valid UTF-8'];
    }
    let input;
    try {
        input = JSON.parse(text);
    } catch (e) {
        return [`not JSON: ${e.message}`];
    }
    let type;
    if ('resourceMetrics' in input) type = v1.metrics.v1.ExportMetricsServiceRequest;
    else if ('resourceLogs' in input) type = v1.logs.v1.ExportLogsServiceRequest;
    else return ['neither resourceMetrics nor resourceLogs'];
    if ('resourceMetrics' in input) checkHistograms(input, errors);
    else stripLogExtras(input, errors);
    let output;
    try {
        const msg = type.fromObject(input);
        // json: true writes non-finite doubles as "NaN"/"Infinity", as the JSON mapping does.
        output = type.toObject(msg, {longs: String, enums: Number, defaults: false, json: true});
    } catch (e) {
        return errors.concat([`decode failed: ${e.message}`]);
    }
    const d = firstDifference(canonical(input), canonical(output), '$');
    if (d) errors.push(d);
    return errors;
}

let failed = 0;
for (const file of process.argv.slice(2)) {
    const errors = check(file);
    if (errors.length) {
        failed = 1;
        console.error(`${file}: FAIL`);
        for (const e of errors) console.error(`  ${e}`);
    } else {
        console.log(`${file}: ok`);
    }
}
if (process.argv.length < 3) {
    console.error('usage: check_otlp.js FILE...');
    failed = 1;
}
process.exit(failed);
