"""
twd's HTTP side (server/http): /health, /health/db, /health/detailed and
/metrics against a real twd, with the limits every request meets (body
size, unknown paths and methods) and x-request-id on every response.
"""
import json
import os
import re
import unittest

import grpc

from twd_harness import (REPO_DIR, RPC_TIMEOUT_S, Twd, TwdTestCase, health_pb2,
                         health_pb2_grpc, wait_until)
from tw.v1 import auth_service_pb2, auth_service_pb2_grpc  # noqa: E402
from test_voice_deepgram import FakeDeepgram, upload_mp3
from test_voice import VoiceCalls

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING
# The prober reads the store every second.
PROBE_WAIT_S = 15.0


def sample(text, name, **labels):
    """The value of the first sample of metric `name` whose labels include
    `labels`, or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


class HealthEndpointsTest(TwdTestCase):
    def test_health_answers_healthy_with_a_request_id(self):
        status, headers, body = self.twd.http_get("/health")
        self.assertEqual((status, json.loads(body)), (200, {"status": "healthy"}))
        self.assertRegex(headers["x-request-id"], r"^[0-9a-f-]{36}$")
        self.assertEqual(headers["content-type"], "application/json")

    def test_a_sane_request_id_is_kept_and_a_bad_one_replaced(self):
        _, headers, _ = self.twd.http_get("/health", headers={"X-Request-Id": "probe-42"})
        self.assertEqual(headers["x-request-id"], "probe-42")
        _, headers, _ = self.twd.http_get("/health", headers={"X-Request-Id": "bad id\u00e9"})
        self.assertRegex(headers["x-request-id"], r"^[0-9a-f-]{36}$")

    def test_health_db_reads_the_store(self):
        status, _, body = self.twd.http_get("/health/db")
        self.assertEqual((status, json.loads(body)), (200, {"database": "connected"}))

    def test_unknown_paths_methods_and_bodies_are_refused_with_a_request_id(self):
        status, headers, body = self.twd.http_get("/nowhere")
        self.assertEqual((status, json.loads(body)), (404, {"error": "not found"}))
        self.assertIn("x-request-id", headers)
        status, headers, _ = self.twd.http_get("/health", method="POST", body=b"{}")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET")
        status, headers, body = self.twd.http_get("/metrics", method="GET", body=b"x" * 10)
        self.assertEqual((status, json.loads(body)), (413, {"error": "request body too large"}))
        self.assertIn("x-request-id", headers)
        status, _, _ = self.twd.http_get("/health", headers={"X-Big": "a" * 40000})
        self.assertGreaterEqual(status, 400)
        self.assertTrue(self.twd.is_serving())

    def test_detailed_health_describes_every_part(self):
        status, _, body = self.twd.http_get("/health/detailed")
        self.assertEqual(status, 200, body)
        d = json.loads(body)
        self.assertEqual(d["status"], "healthy")
        self.assertTrue(d["version"])
        self.assertGreaterEqual(d["uptime_s"], 0)
        self.assertEqual(d["maintenance"], {"enabled": False, "message": ""})
        self.assertEqual(d["store"]["status"], "ok")
        self.assertGreater(d["store"]["size_bytes"] + d["store"]["memtable_bytes"], 0)
        self.assertIn("pending_compaction_bytes", d["store"])
        self.assertEqual(d["store"]["last_backup"]["result"], "none")
        self.assertEqual(d["blob_storage"]["backend"], "fs")
        self.assertEqual(d["blob_storage"]["status"], "ok")
        for key in ("depth", "oldest_due_age_s", "failed", "types"):
            self.assertIn(key, d["job_queue"])
        self.assertEqual(d["providers"]["deepgram"]["configured"], False)
        self.assertEqual(d["providers"]["s3"]["configured"], False)

    def test_detailed_health_shows_maintenance_mode(self):
        from tw.v1 import admin_service_pb2 as admin_pb2, admin_service_pb2_grpc as admin_grpc
        admin = admin_grpc.AdminServiceStub(self.twd.operator_channel())
        admin.SetMaintenanceMode(admin_pb2.SetMaintenanceModeRequest(
            enabled=True, message="back at 4"), timeout=RPC_TIMEOUT_S)
        try:
            d = json.loads(self.twd.http_get("/health/detailed")[2])
            self.assertEqual(d["maintenance"], {"enabled": True, "message": "back at 4"})
            metrics = self.twd.http_get("/metrics")[2]
            self.assertEqual(sample(metrics, "tw_maintenance_mode"), 1)
        finally:
            admin.SetMaintenanceMode(admin_pb2.SetMaintenanceModeRequest(enabled=False),
                                     timeout=RPC_TIMEOUT_S)


class MetricsTest(TwdTestCase):
    def test_calls_are_counted_by_method_code_and_class_with_latency(self):
        me = self.twd.sign_up()
        auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)
        for _ in range(3):
            auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=me.metadata,
                       timeout=RPC_TIMEOUT_S)
        with self.assertRaises(grpc.RpcError):
            auth.GetMe(auth_service_pb2.GetMeRequest(), timeout=RPC_TIMEOUT_S)
        labels = dict(service="tw.v1.AuthService", method="GetMe")
        status, headers, _ = self.twd.http_get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        # A call is counted when the server releases it, just after the
        # client has its answer.
        text = wait_until(lambda: (lambda t: t if sample(
            t, "tw_grpc_server_handling_seconds_count", **labels) == 4 else None)(
                self.twd.http_get("/metrics")[2]), RPC_TIMEOUT_S, "four GetMe calls counted")
        self.assertEqual(sample(text, "tw_grpc_server_handled_total", code="OK",
                                **{"class": "ok"}, **labels), 3)
        self.assertEqual(sample(text, "tw_grpc_server_handled_total", code="UNAUTHENTICATED",
                                **labels), 1)
        self.assertEqual(sample(text, "tw_grpc_server_handling_seconds_count", **labels), 4)
        self.assertEqual(sample(text, "tw_grpc_server_handling_seconds_bucket", le="+Inf",
                                **labels), 4)
        self.assertEqual(sample(text, "tw_grpc_server_started_total", **labels), 4)
        self.assertGreater(sample(text, "tw_grpc_server_sent_bytes_total", **labels), 0)
        self.assertIsNotNone(sample(text, "tw_grpc_server_in_flight_calls"))
        self.assertGreaterEqual(sample(text, "tw_registrations_total"), 1)
        self.assertGreater(sample(text, "process_resident_memory_bytes"), 0)
        self.assertGreater(sample(text, "process_open_fds"), 0)
        self.assertEqual(sample(text, "tw_store_up"), 1)
        self.assertIsNotNone(sample(text, "tw_rocksdb_db_get_seconds_count"))
        self.twd.http_get("/health")
        # Counted once its connection's request is complete, as for calls.
        wait_until(lambda: sample(self.twd.http_get("/metrics")[2], "tw_http_requests_total",
                                  path="/health", **{"class": "ok"}), RPC_TIMEOUT_S,
                   "the /health request counted")

    def test_unknown_methods_are_counted_too(self):
        channel = self.twd.channel()
        call = channel.unary_unary("/tw.v1.Nope/Nothing")
        with self.assertRaises(grpc.RpcError):
            call(b"", timeout=RPC_TIMEOUT_S)
        wait_until(lambda: sample(self.twd.http_get("/metrics")[2], "tw_grpc_server_handled_total",
                                  service="unknown", code="UNIMPLEMENTED",
                                  **{"class": "client_error"}), RPC_TIMEOUT_S,
                   "the unknown method counted")


class StoreProbeTest(unittest.TestCase):
    def test_health_db_and_grpc_health_fail_while_the_store_is_unreachable(self):
        with Twd() as twd:
            db = os.path.join(twd.data_dir, "db")
            health = health_pb2_grpc.HealthStub(twd.channel())
            os.rename(db, db + ".away")
            try:
                status, _, body = twd.http_get("/health/db")
                self.assertEqual((status, json.loads(body)), (503, {"database": "disconnected"}))
                wait_until(lambda: health.Check(health_pb2.HealthCheckRequest(),
                                                timeout=RPC_TIMEOUT_S).status == NOT_SERVING,
                           PROBE_WAIT_S, "grpc health NOT_SERVING")
                status, _, body = twd.http_get("/health/detailed")
                self.assertEqual(status, 503)
                self.assertEqual(json.loads(body)["status"], "unhealthy")
                self.assertEqual(twd.http_get("/health")[0], 200)  # liveness stays
            finally:
                os.rename(db + ".away", db)
            status, _, body = twd.http_get("/health/db")
            self.assertEqual((status, json.loads(body)), (200, {"database": "connected"}))
            wait_until(lambda: health.Check(health_pb2.HealthCheckRequest(),
                                            timeout=RPC_TIMEOUT_S).status == SERVING,
                       PROBE_WAIT_S, "grpc health SERVING again")


class ProviderOutageTest(unittest.TestCase):
    def test_detailed_health_shows_an_open_breaker_after_deepgram_fails(self):
        with FakeDeepgram() as fake:
            env = fake.env(TW_DEEPGRAM_BREAKER_FAILURES="1",
                           TW_DEEPGRAM_BREAKER_COOLDOWN_MS="600000")
            with Twd(env=env) as twd:
                fake.script({"status": 500, "body": "down"})
                me = twd.sign_up()
                upload_mp3(VoiceCalls(self, twd, me))

                def breaker_open():
                    d = json.loads(twd.http_get("/health/detailed")[2])
                    return d if d["providers"]["deepgram"]["breaker"] == "open" else None
                d = wait_until(breaker_open, 60, "the Deepgram breaker to open")
                deepgram = d["providers"]["deepgram"]
                self.assertTrue(deepgram["configured"])
                self.assertGreaterEqual(deepgram["failures"], 1)
                self.assertIn("500", deepgram["last_error"])
                self.assertEqual(d["status"], "degraded")
                text = twd.http_get("/metrics")[2]
                self.assertEqual(sample(text, "tw_upstream_circuit_state", service="deepgram",
                                        state="open"), 1)
                self.assertGreaterEqual(sample(text, "tw_upstream_failures_total",
                                               service="deepgram"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
