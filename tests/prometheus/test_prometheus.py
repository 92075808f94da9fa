"""A real Prometheus server scrapes `telecap run -o prometheus`; the derived values are read
back through Prometheus's HTTP query API. Prometheus comes from Debian's package (scripts/deps
installs it); this test starts and stops it."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

TELECAP = os.environ.get("TELECAP_BIN", "build/telecap")
HERE = os.path.dirname(os.path.abspath(__file__))
N = 40


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class PrometheusScrape(unittest.TestCase):
    def setUp(self):
        self.assertIsNotNone(shutil.which("prometheus"),
                             "prometheus is not installed: run scripts/deps")
        self.tmp = tempfile.mkdtemp(prefix="telecap-prom-")
        self.procs = []

    def tearDown(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_telecap(self, port):
        p = subprocess.Popen(
            [TELECAP, "run", "-o", "prometheus:127.0.0.1:%d" % port, "-o", "null",
             "--worker-id", "w1", "--", sys.executable, os.path.join(HERE, "worker.py"), str(N)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline(), "ready\n")  # every event was written
        return p

    def start_prometheus(self, target_port):
        port = free_port()
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: telecap\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % target_port)
        p = subprocess.Popen(
            ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + self.tmp + "/data",
             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "prom.log"), "w"))
        self.procs.append(p)
        return "http://127.0.0.1:%d" % port

    def query(self, base, q):
        url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
        body = json.loads(get(url))
        self.assertEqual(body["status"], "success", body)
        return body["data"]["result"]

    def wait_for(self, base, q, want_len, deadline_s=60):
        end = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < end:
            try:
                last = self.query(base, q)
                if len(last) >= want_len:
                    return last
            except (OSError, ValueError) as e:  # Prometheus is still starting
                last = e
            time.sleep(0.2)  # polling a server we do not control; not a handshake
        self.fail("no result for %s within %ds: %r\n%s" % (
            q, deadline_s, last, open(os.path.join(self.tmp, "prom.log")).read()[-2000:]))

    def test_prometheus_reads_the_derived_values(self):
        port = free_port()
        telecap = self.start_telecap(port)
        base = self.start_prometheus(port)

        up = self.wait_for(base, 'up{job="telecap"} == 1', 1)
        self.assertEqual(up[0]["value"][1], "1")

        ev = self.wait_for(base, 'snakepit_events_total{event="snakepit.python.call.stop"}', 1)
        self.assertEqual(ev[0]["value"][1], str(N))
        self.assertEqual(ev[0]["metric"]["pool"], "default")

        count = self.query(base, "snakepit_python_call_duration_seconds_count")
        self.assertEqual(count[0]["value"][1], str(N))
        total = self.query(base, "snakepit_python_call_duration_seconds_sum")
        self.assertAlmostEqual(float(total[0]["value"][1]), (N // 4) * (0.001 + 0.02 + 0.3 + 2.0),
                               places=6)
        le = {r["metric"]["le"]: r["value"][1] for r in
              self.query(base, "snakepit_python_call_duration_seconds_bucket")}
        self.assertEqual(le["0.001"], str(N // 4))
        self.assertEqual(le["0.025"], str(N // 2))
        self.assertEqual(le["0.5"], str(3 * N // 4))
        self.assertEqual(le["+Inf"], str(N))

        # Hostile label values arrive intact: Prometheus parsed every escape.
        tools = sorted(r["metric"]["tool"] for r in
                       self.query(base, "snakepit_tool_execution_duration_seconds_count"))
        self.assertEqual(tools, sorted(['quote"d', "back\\slash", "new\nline", "caf\u00e9",
                                        "dots.in.name"]))

        rss = self.query(base, 'snakepit_python_memory_rss_bytes{worker="w1"}')
        self.assertEqual(rss[0]["value"][1], "123456789")

        own = self.query(base, "telecap_events_total")
        self.assertEqual(sum(int(r["value"][1]) for r in own), N + 6)
        self.assertEqual(self.query(base, "telecap_workers_up")[0]["value"][1], "1")
        scrapes = self.query(base, "telecap_prometheus_scrapes_total")
        self.assertGreaterEqual(int(scrapes[0]["value"][1]), 1)
        self.assertTrue(scrapes[0]["metric"]["output"].startswith("output.0:prometheus"))

        # promtool passes the exposition as served (parse errors exit 1, lint problems 3).
        body = get("http://127.0.0.1:%d/metrics" % port)
        check = subprocess.run(["promtool", "check", "metrics"], input=body,
                               capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        om = urllib.request.Request("http://127.0.0.1:%d/metrics" % port, headers={
            "Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(om, timeout=5) as r:
            self.assertTrue(r.headers["Content-Type"].startswith("application/openmetrics-text"))
            self.assertTrue(r.read().decode().endswith("# EOF\n"))

        telecap.send_signal(signal.SIGTERM)
        telecap.wait(20)

    def test_every_panel_of_the_grafana_dashboard_finds_series(self):
        """examples/grafana/telecap.json is a dashboard in Grafana's shape, and each of its
        queries returns at least one series from a Prometheus that scrapes a telecap running
        the test worker with the bundled default metrics."""
        path = os.path.join(HERE, "..", "..", "examples", "grafana", "telecap.json")
        with open(path) as f:
            dash = json.load(f)
        self.assertIsInstance(dash.get("title"), str)
        self.assertIsInstance(dash.get("uid"), str)
        self.assertIsInstance(dash.get("schemaVersion"), int)
        self.assertIsInstance(dash.get("templating", {}).get("list"), list)
        panels = dash["panels"]
        self.assertGreaterEqual(len(panels), 10)
        self.assertEqual(len({p["id"] for p in panels}), len(panels), "panel ids are unique")
        exprs = []
        for p in panels:
            for key in ("type", "title", "gridPos", "datasource", "targets"):
                self.assertIn(key, p, p.get("title"))
            self.assertTrue({"h", "w", "x", "y"} <= set(p["gridPos"]), p["title"])
            self.assertTrue(p["targets"], p["title"])
            for t in p["targets"]:
                self.assertIn("refId", t, p["title"])
                exprs.append((p["title"], t["expr"]))

        port = free_port()
        telecap = self.start_telecap(port)
        base = self.start_prometheus(port)
        # rate() and increase() need two samples in their window: three scrapes in.
        self.wait_for(base, 'count_over_time(up{job="telecap"}[1m]) >= 3', 1)
        # Grafana's variables, as Grafana fills them for "All" and a short range.
        fill = {"$__rate_interval": "1m", "$pool": ".*"}
        for title, expr in exprs:
            q = expr
            for k, v in fill.items():
                q = q.replace(k, v)
            self.assertNotIn("$", q, "a variable the test does not fill: " + expr)
            self.assertGreaterEqual(len(self.query(base, q)), 1, "%s: %s" % (title, q))
        telecap.send_signal(signal.SIGTERM)
        telecap.wait(20)


if __name__ == "__main__":
    unittest.main()
