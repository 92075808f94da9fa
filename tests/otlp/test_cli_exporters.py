"""telecap parse with -o otlp, -o otlp-logs and -o http against a local receiver: what
arrives, its headers, and the strict OTLP schema check of the bodies telecap really sent.
A receiver that is down costs events (counted, exit 3), never the capture of the others."""
import gzip
import http.server
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import unittest

TELECAP = os.environ.get("TELECAP_BIN", "build/telecap")
HERE = os.path.dirname(os.path.abspath(__file__))


def line(event, measurements, metadata):
    return "TELEMETRY:" + json.dumps({"event": event, "measurements": measurements,
                                      "metadata": metadata, "timestamp_ns": 1700000000000000000,
                                      "correlation_id": ""}) + "\n"


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    def requests_for(self, path):
        with self.lock:
            return [r for r in self.requests if r[0] == path]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)  # fails the request (and the test) if it is not gzip
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


class CliExporters(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="telecap-otlp-cli-")
        self.receiver = Receiver()
        self.thread = threading.Thread(target=self.receiver.serve_forever, daemon=True)
        self.thread.start()
        self.base = "http://127.0.0.1:%d" % self.receiver.server_address[1]

    def tearDown(self):
        self.receiver.shutdown()
        self.receiver.server_close()

    def telecap(self, args, text, env=None):
        path = os.path.join(self.tmp, "in.txt")
        with open(path, "w") as f:
            f.write(text)
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([TELECAP, "parse", "--stats", os.path.join(self.tmp, "stats.json")]
                              + args + [path], capture_output=True, text=True, env=e, timeout=60)

    def test_every_output_delivers_and_the_bodies_pass_the_schema(self):
        text = "".join(line("python.call.stop", {"duration": 2_000_000 * (i + 1), "count": 1},
                            {"tool": 'q"uote\\', "note": "caf\u00e9\n"}) for i in range(5))
        text += "plain line\n"
        r = self.telecap(["-o", "otlp:" + self.base, "-o", "otlp-logs:" + self.base,
                          "-o", "http:" + self.base + "/ingest", "--passthrough", "none"], text,
                         {"TELECAP_HTTP_TOKEN": "s3cret", "OTEL_SERVICE_NAME": "svc-test",
                          "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=t1"})
        self.assertEqual(r.returncode, 0, r.stderr)
        by_path = {}
        for path, headers, body in self.receiver.requests:
            by_path.setdefault(path, []).append((headers, body))
        self.assertIn("/v1/metrics", by_path, self.receiver.requests)
        self.assertIn("/v1/logs", by_path)
        self.assertIn("/ingest", by_path)

        headers, body = by_path["/ingest"][0]
        self.assertEqual(headers["Content-Type"], "application/x-ndjson")
        self.assertEqual(headers["Authorization"], "Bearer s3cret")
        events = [json.loads(x) for b in by_path["/ingest"] for x in b[1].decode().splitlines()]
        self.assertEqual(len(events), 5)
        self.assertEqual(events[0]["metadata"]["tool"], 'q"uote\\')

        headers, body = by_path["/v1/logs"][0]
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["x-tenant"], "t1")
        records = [rec for _, b in by_path["/v1/logs"]
                   for rl in json.loads(b)["resourceLogs"]
                   for sl in rl["scopeLogs"] for rec in sl["logRecords"]]
        self.assertEqual(len(records), 5)
        self.assertEqual(records[0]["eventName"], "snakepit.python.call.stop")

        last = json.loads(by_path["/v1/metrics"][-1][1])  # the final export at shutdown
        res = last["resourceMetrics"][0]
        attrs = {a["key"]: a["value"] for a in res["resource"]["attributes"]}
        self.assertEqual(attrs["service.name"], {"stringValue": "svc-test"})
        metrics = {m["name"]: m for sm in res["scopeMetrics"] for m in sm["metrics"]}
        hist = metrics["snakepit_python_call_duration_seconds"]["histogram"]
        self.assertEqual(hist["aggregationTemporality"], 2)
        point = hist["dataPoints"][0]
        self.assertEqual(point["count"], "5")
        self.assertAlmostEqual(point["sum"], 0.03, places=9)
        self.assertEqual(sum(int(c) for c in point["bucketCounts"]), 5)
        events_total = metrics["snakepit_events"]["sum"]
        self.assertTrue(events_total["isMonotonic"])
        self.assertIn("telecap_events", metrics)

        files = []
        for path in ("/v1/metrics", "/v1/logs"):
            for i, (_, b) in enumerate(by_path[path]):
                f = os.path.join(self.tmp, "%s-%d.json" % (path.strip("/").replace("/", "_"), i))
                with open(f, "wb") as out:
                    out.write(b)
                files.append(f)
        check = subprocess.run(["node", os.path.join(HERE, "check_otlp.js")] + files,
                               capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_service_name_comes_from_the_metrics_file_unless_otel_says(self):
        metrics = os.path.join(self.tmp, "m.yaml")
        with open(metrics, "w") as f:
            f.write("service_name: from-file\ncounters:\n  - name: calls\n    event: '*'\n")
        text = line("python.call.stop", {"duration": 1, "count": 1}, {})
        for env, want in (({}, "from-file"), ({"OTEL_SERVICE_NAME": "from-env"}, "from-env"),
                          ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"}, "from-attrs"),
                          # spaces around "=" and a percent-encoded key are service.name too
                          ({"OTEL_RESOURCE_ATTRIBUTES": "team=a, service.name = spaced"}, "spaced"),
                          ({"OTEL_RESOURCE_ATTRIBUTES": "service%2Ename=encoded"}, "encoded"),
                          # another key that merely ends in service.name is not
                          ({"OTEL_RESOURCE_ATTRIBUTES": "my.service.name=x"}, "from-file")):
            self.receiver.requests.clear()
            for k in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
                os.environ.pop(k, None)
            r = self.telecap(["-o", "otlp:" + self.base, "--metrics", metrics,
                              "--passthrough", "none"], text, env)
            self.assertEqual(r.returncode, 0, r.stderr)
            body = json.loads(self.receiver.requests[-1][2])
            attrs = {a["key"]: a["value"] for a in body["resourceMetrics"][0]["resource"]["attributes"]}
            self.assertEqual(attrs["service.name"], {"stringValue": want}, env)
            names = [m["name"] for sm in body["resourceMetrics"][0]["scopeMetrics"]
                     for m in sm["metrics"]]
            self.assertIn("calls", names)
            self.assertNotIn("snakepit_events", names)  # the file replaces the default

    def test_a_receiver_that_is_down_costs_only_its_own_events(self):
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        text = "".join(line("python.call.stop", {"duration": 1, "count": 1}, {})
                       for _ in range(20000))
        t0 = time.monotonic()
        r = self.telecap(["-o", "http:http://127.0.0.1:%d/x" % dead,
                          "-o", "jsonl:" + os.path.join(self.tmp, "events.jsonl"),
                          "--passthrough", "none"], text)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.returncode, 3, r.stderr)  # data was lost, and said so
        with open(os.path.join(self.tmp, "events.jsonl")) as f:
            self.assertEqual(sum(1 for _ in f), 20000)  # the other output has everything
        stats = json.load(open(os.path.join(self.tmp, "stats.json")))
        http_out = [v for k, v in stats["outputs"].items() if k.startswith("output.0:http")][0]
        dropped = sum(http_out["events_dropped"].values())
        self.assertEqual(dropped, 20000, http_out)
        # ... and the same as live series (what the metrics exporters serve).
        series = {k: v for k, v in stats["metrics"].items()
                  if k.startswith("telecap_export_dropped_total{")}
        self.assertEqual(sum(series.values()), 20000, series)
        self.assertEqual(stats["metrics"][
            'telecap_output_events_dropped_total{output="output.0:http:http://127.0.0.1:%d/x"}'
            % dead], 20000)
        # Bounded by the shutdown deadline (5 s), not by retries of every batch.
        self.assertLess(elapsed, 20, r.stderr)

    def resource_of(self, path):
        body = json.loads(self.receiver.requests_for(path)[-1][2])
        key = "resourceMetrics" if path == "/v1/metrics" else "resourceLogs"
        return {a["key"]: a["value"]["stringValue"]
                for a in body[key][0]["resource"]["attributes"]}

    def test_gzip_identity_user_agent_and_two_namespaces(self):
        text = line("python.call.stop", {"duration": 5, "count": 1},
                    {"duration": "from metadata", "tool": "t"})
        ids = []
        for _ in range(2):
            self.receiver.requests.clear()
            r = self.telecap(["-o", "otlp:" + self.base, "-o", "otlp-logs:" + self.base,
                              "--passthrough", "none"], text,
                             {"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"})
            self.assertEqual(r.returncode, 0, r.stderr)
            for path in ("/v1/metrics", "/v1/logs"):
                headers = self.receiver.requests_for(path)[-1][1]
                self.assertEqual(headers["Content-Encoding"], "gzip")
                self.assertRegex(headers["User-Agent"], r"^telecap/\d+\.\d+\.\d+$")
            res = self.resource_of("/v1/metrics")
            self.assertEqual(res, self.resource_of("/v1/logs"), "one identity per start")
            self.assertEqual(res["host.name"], socket.gethostname())
            self.assertRegex(res["process.pid"], r"^\d+$")
            self.assertEqual(res["telemetry.sdk.name"], "telecap")
            self.assertEqual(res["telemetry.sdk.language"], "cpp")
            self.assertRegex(res["service.instance.id"],
                             r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            ids.append(res["service.instance.id"])
            rec = json.loads(self.receiver.requests_for("/v1/logs")[-1][2])[
                "resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
            attrs = {a["key"]: a["value"] for a in rec["attributes"]}
            self.assertEqual(attrs["measurement.duration"], {"intValue": "5"})
            self.assertEqual(attrs["metadata.duration"], {"stringValue": "from metadata"})
            self.assertNotIn("metadata.correlation_id", attrs)  # null: left out, not {}
            self.assertTrue(all(v for v in attrs.values()), attrs)
        self.assertNotEqual(ids[0], ids[1], "a fresh instance id per start")
        r = self.telecap(["-o", "otlp:" + self.base, "--passthrough", "none"], text,
                         {"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=pinned"})
        self.assertEqual(self.resource_of("/v1/metrics")["service.instance.id"], "pinned")

    def test_a_metrics_export_that_lost_points_exits_3(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        r = self.telecap(["-o", "otlp:http://127.0.0.1:%d" % dead, "--passthrough", "none"],
                         line("python.call.stop", {"duration": 1, "count": 1}, {}))
        self.assertEqual(r.returncode, 3, r.stderr)
        with open(os.path.join(self.tmp, "stats.json")) as f:
            stats = json.load(f)
        out = [v for k, v in stats["outputs"].items() if ":otlp:" in k][0]
        self.assertGreater(sum(out["points_dropped"].values()), 0, out)
        self.assertEqual(stats["dropped"]["output"], 0, "points are not events")

    def test_a_url_password_is_never_printed(self):
        for spec in ("otlp:http://user:s3cret@127.0.0.1:1", "otlp-logs:http://user:s3cret@h/x",
                     "http:http://user:s3cret@h/x"):
            r = self.telecap(["-o", spec], "")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertNotIn("s3cret", r.stderr)
            self.assertIn("user:***@", r.stderr)
        r = self.telecap(["-o", "otlp"], "", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://u:s3cret@h"})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertNotIn("s3cret", r.stderr)
        self.assertIn("u:***@h", r.stderr)

    def test_a_host_that_does_not_resolve_says_so(self):
        r = self.telecap(["-o", "otlp-logs:http://no-such-host.invalid:4318",
                          "--passthrough", "none"],
                         line("python.call.stop", {"duration": 1, "count": 1}, {}),
                         {"OTEL_EXPORTER_OTLP_TIMEOUT": "1000"})
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("cannot resolve no-such-host.invalid", r.stderr)
        self.assertNotIn("refused or unreachable", r.stderr)

    def test_otel_variables_not_honoured_get_one_warning(self):
        r = self.telecap(["-o", "otlp:" + self.base, "-o", "otlp-logs:" + self.base,
                          "--passthrough", "none"], "",
                         {"OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_TRACES_SAMPLER": "x",
                          "OTEL_METRIC_EXPORT_TIMEOUT": "5000", "OTEL_EXPORTER_OTLP_COMPRESSION": "none"})
        self.assertEqual(r.returncode, 0, r.stderr)
        warned = [l for l in r.stderr.splitlines() if "not honoured" in l]
        self.assertEqual(len(warned), 1, r.stderr)
        names = re.search(r"\(ignored\): (.*)$", warned[0]).group(1).split(", ")
        self.assertEqual(sorted(names), ["OTEL_EXPORTER_OTLP_INSECURE", "OTEL_TRACES_SAMPLER"])
        r = self.telecap(["-o", "otlp:" + self.base, "--passthrough", "none"], "",
                         {"OTEL_EXPORTER_OTLP_COMPRESSION": "brotli"})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("OTEL_EXPORTER_OTLP_COMPRESSION=\"brotli\": unknown compression", r.stderr)


if __name__ == "__main__":
    unittest.main()
