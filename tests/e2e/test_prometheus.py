"""
twd under a real Prometheus (Debian's prometheus package): Prometheus,
started here on loopback, scrapes twd's /metrics every second; its HTTP API
finds the calls this test just made; `promtool check metrics` passes on a
scrape and `promtool check rules` on docker/prometheus/alerts.yml, whose
rules Prometheus loads and evaluates without error; and every PromQL
expression of the Grafana dashboard (docker/grafana/dashboards/twd.json)
runs against that Prometheus without error.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from twd_harness import REPO_DIR, RPC_TIMEOUT_S, TwdTestCase, free_port, wait_until
from tw.v1 import auth_service_pb2, auth_service_pb2_grpc  # noqa: E402

ALERTS = os.path.join(REPO_DIR, "docker", "prometheus", "alerts.yml")
DASHBOARD = os.path.join(REPO_DIR, "docker", "grafana", "dashboards", "twd.json")
PROMETHEUS_START_S = 60.0
# Scrapes every second; a few scrapes and one rule evaluation.
SCRAPED_WITHIN_S = 60.0
CALLS = 5


def dashboard_expressions():
    with open(DASHBOARD, encoding="utf-8") as f:
        dashboard = json.load(f)
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"]
            for target in panel["targets"]]


class PrometheusTest(TwdTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if shutil.which("prometheus") is None or shutil.which("promtool") is None:
            raise AssertionError("prometheus and promtool are missing: run scripts/bootstrap")
        cls.dir = tempfile.mkdtemp(prefix="twd-prometheus-")
        config = os.path.join(cls.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {ALERTS}
scrape_configs:
  - job_name: twd
    static_configs:
      - targets: ["127.0.0.1:{cls.twd.http_port}"]
""")
        cls.port = free_port()
        cls.log = open(os.path.join(cls.dir, "prometheus.log"), "wb")
        cls.prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(cls.dir, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{cls.port}"],
            stdin=subprocess.DEVNULL, stdout=cls.log, stderr=cls.log)
        try:
            wait_until(cls.ready, PROMETHEUS_START_S, "Prometheus to be ready")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "prometheus", None) is not None:
            cls.prometheus.terminate()
            try:
                cls.prometheus.wait(timeout=20)
            except subprocess.TimeoutExpired:
                cls.prometheus.kill()
                cls.prometheus.wait()
            cls.log.close()
        if getattr(cls, "dir", None):
            shutil.rmtree(cls.dir, ignore_errors=True)
        super().tearDownClass()

    @classmethod
    def api(cls, path, **params):
        url = f"http://127.0.0.1:{cls.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=RPC_TIMEOUT_S) as reply:
            return json.loads(reply.read())

    @classmethod
    def ready(cls):
        if cls.prometheus.poll() is not None:
            with open(os.path.join(cls.dir, "prometheus.log"), "rb") as f:
                raise AssertionError("prometheus exited:\n" + f.read().decode(errors="replace"))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/-/ready", timeout=2):
                return True
        except OSError:
            return False

    def query(self, expr):
        return self.api("/api/v1/query", query=expr)

    def test_prometheus_finds_the_calls_just_made(self):
        me = self.twd.sign_up()
        auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)
        for _ in range(CALLS):
            auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=me.metadata,
                       timeout=RPC_TIMEOUT_S)
        expr = ('sum(tw_grpc_server_handled_total{service="tw.v1.AuthService",'
                'method="GetMe",code="OK"})')

        def counted():
            result = self.query(expr)["data"]["result"]
            return result and float(result[0]["value"][1]) >= CALLS
        wait_until(counted, SCRAPED_WITHIN_S, f"Prometheus to see {CALLS} GetMe calls")
        up = self.query('up{job="twd"}')["data"]["result"]
        self.assertEqual(up[0]["value"][1], "1")
        registrations = self.query("tw_registrations_total")["data"]["result"]
        self.assertGreaterEqual(float(registrations[0]["value"][1]), 1)

    def test_promtool_accepts_a_scrape_and_the_alert_rules(self):
        status, _, scrape = self.twd.http_get("/metrics")
        self.assertEqual(status, 200)
        check = subprocess.run(["promtool", "check", "metrics"], input=scrape, text=True,
                               capture_output=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        rules = subprocess.run(["promtool", "check", "rules", ALERTS], text=True,
                               capture_output=True, timeout=60)
        self.assertEqual(rules.returncode, 0, rules.stdout + rules.stderr)
        self.assertIn("SUCCESS", rules.stdout)

    def test_the_alert_rules_load_and_evaluate(self):
        def evaluated():
            groups = self.api("/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            done = rules and all(r.get("lastEvaluation", "").startswith("20") is True and
                                 not r["lastEvaluation"].startswith("0001") for r in rules)
            return rules if done else None
        rules = wait_until(evaluated, SCRAPED_WITHIN_S, "every rule to be evaluated")
        self.assertEqual(len(rules), 19)
        for rule in rules:
            self.assertEqual(rule["health"], "ok", f"{rule['name']}: {rule.get('lastError')}")
        names = {r["name"] for r in rules}
        for alert in ("ApiErrorRateCritical", "ResponseTimeCritical", "DatabaseConnectionFailures",
                      "ApiErrorRateWarning", "ResponseTimeWarning", "MemoryUsageHigh"):
            self.assertIn(alert, names)

    def test_every_dashboard_expression_runs(self):
        wait_until(lambda: self.query("tw_store_up")["data"]["result"], SCRAPED_WITHIN_S,
                   "a first scrape")
        expressions = dashboard_expressions()
        self.assertGreaterEqual(len(expressions), 20)
        for title, expr in expressions:
            with self.subTest(panel=title, expr=expr):
                answer = self.query(expr)
                self.assertEqual(answer["status"], "success", answer)
        # Series the panels draw from are there, not just well formed.
        for expr in ("tw_grpc_server_in_flight_calls", "tw_store_sst_bytes",
                     "process_resident_memory_bytes", "tw_process_memory_limit_bytes"):
            self.assertTrue(self.query(expr)["data"]["result"], expr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
