"""
The RPC engine's shared behaviour, seen from a client: calls it cannot serve
(unknown method, undecodable or oversized message) get the right status at
once, deadlines and client cancels end calls cleanly without hurting the
server, GetServerInfo answers, and every call leaves one JSON log line that
never holds a client's credentials (at debug level, or with TW_LOG_SAMPLE=1
as the harness sets it). At the production defaults the call log keeps
failed and slow calls, a sample of the rest and a per-method summary, and
writes at most TW_LOG_LINES_PER_S call lines a second.
"""
import datetime
import math
import threading
import time
import unittest
import uuid

import grpc

from twd_harness import (RPC_TIMEOUT_S, SERVING, TwdTestCase, assert_rpc_error,
                         initial_metadata, metadata, run_twd, wait_until)
# Generated stubs import only after twd_harness has put them on the path.
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc.reflection.v1 import reflection_pb2, reflection_pb2_grpc  # noqa: E402
from tw.v1 import server_info_service_pb2, server_info_service_pb2_grpc  # noqa: E402

MiB = 1 << 20
# A call that should be answered at once gets this long before it counts as a hang.
PROMPT_TIMEOUT_S = 5
CHECK_PATH = "/grpc.health.v1.Health/Check"
WATCH_PATH = "/grpc.health.v1.Health/Watch"
GET_SERVER_INFO_PATH = "/tw.v1.ServerInfoService/GetServerInfo"
REFLECTION_PATH = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
# An unterminated varint: no protobuf parser accepts it.
GARBAGE = b"\xff\xff\xff"
# How far twd's clock may be from ours: same machine, so only call latency.
CLOCK_TOLERANCE = datetime.timedelta(seconds=5)


def new_request_id():
    """A request id unique to one call, to find that call's log line."""
    return f"e2e-{uuid.uuid4()}"


def raw_calls(twd):
    """Callables that send raw bytes, one per call kind, for calls no stub
    would make: unknown methods, undecodable messages. Each raises the
    call's error."""
    channel = twd.channel()
    return {
        "unary": lambda path, payload: channel.unary_unary(path)(
            payload, timeout=PROMPT_TIMEOUT_S),
        "server streaming": lambda path, payload: next(channel.unary_stream(path)(
            payload, timeout=PROMPT_TIMEOUT_S)),
        "bidirectional streaming": lambda path, payload: next(channel.stream_stream(path)(
            iter([payload]), timeout=PROMPT_TIMEOUT_S)),
    }


def health_check_of_size(nbytes):
    """A HealthCheckRequest whose service name makes it about nbytes long."""
    return health_pb2.HealthCheckRequest(service="x" * nbytes)


class RefusedCallTest(TwdTestCase):
    def test_unknown_method_is_unimplemented_at_once(self):
        for kind, call in raw_calls(self.twd).items():
            with self.subTest(kind):
                assert_rpc_error(self, lambda: call("/tw.v1.Nope/Nope", b""),
                                 grpc.StatusCode.UNIMPLEMENTED, "RPC_001")
        self.assertServing()

    def test_garbage_payload_is_invalid_argument(self):
        paths = {"unary": CHECK_PATH, "server streaming": WATCH_PATH,
                 "bidirectional streaming": REFLECTION_PATH}
        for kind, call in raw_calls(self.twd).items():
            with self.subTest(kind):
                assert_rpc_error(self, lambda: call(paths[kind], GARBAGE),
                                 grpc.StatusCode.INVALID_ARGUMENT, "VAL_002")
        self.assertServing()

    def test_message_over_default_limit_is_resource_exhausted(self):
        health = self.twd.stub(health_pb2_grpc.HealthStub)
        # The default max_message_bytes is 4 MiB.
        assert_rpc_error(self, lambda: health.Check(health_check_of_size(5 * MiB),
                                                    timeout=RPC_TIMEOUT_S),
                         grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertServing()


class ConfiguredMessageLimitTest(TwdTestCase):
    twd_env = {"TW_MAX_MESSAGE_BYTES": "2048"}

    def setUp(self):
        self.health = self.twd.stub(health_pb2_grpc.HealthStub)

    def test_message_over_configured_limit_is_resource_exhausted(self):
        assert_rpc_error(self, lambda: self.health.Check(health_check_of_size(4096),
                                                         timeout=RPC_TIMEOUT_S),
                         grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertServing()

    def send_oversized_stream_message(self, request_id):
        reflection = self.twd.stub(reflection_pb2_grpc.ServerReflectionStub)
        too_large = reflection_pb2.ServerReflectionRequest(file_by_filename="x" * 4096)
        assert_rpc_error(self, lambda: list(reflection.ServerReflectionInfo(
            iter([too_large]), timeout=RPC_TIMEOUT_S, metadata=metadata(x_request_id=request_id))),
            grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_stream_message_over_configured_limit_is_resource_exhausted(self):
        self.send_oversized_stream_message(new_request_id())
        self.assertServing()

    def test_stream_refused_for_size_is_ended_and_logged(self):
        # The log line is written when the engine frees the call: without
        # it the call leaks and holds up shutdown.
        request_id = new_request_id()
        self.send_oversized_stream_message(request_id)
        self.twd.wait_for_call_log(request_id=request_id)

    def test_message_under_configured_limit_is_read(self):
        # Read and answered: no such service, rather than too large.
        assert_rpc_error(self, lambda: self.health.Check(health_check_of_size(1024),
                                                         timeout=RPC_TIMEOUT_S),
                         grpc.StatusCode.NOT_FOUND, "RES_001")


class DeadlineAndCancelTest(TwdTestCase):
    def open_watch(self, request_id, timeout):
        """A Watch("") stream whose first message (SERVING) has been read."""
        health = self.twd.stub(health_pb2_grpc.HealthStub)
        stream = health.Watch(health_pb2.HealthCheckRequest(), timeout=timeout,
                              metadata=metadata(x_request_id=request_id))
        self.assertEqual(next(stream).status, SERVING)
        return stream

    def watch_until_deadline(self, request_id):
        stream = self.open_watch(request_id, timeout=0.5)
        assert_rpc_error(self, lambda: next(stream), grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_deadline_ends_a_watch_with_deadline_exceeded(self):
        self.watch_until_deadline(new_request_id())
        self.assertServing()

    def test_deadline_exceeded_watch_is_logged_as_deadline_exceeded(self):
        request_id = new_request_id()
        self.watch_until_deadline(request_id)
        line = self.twd.wait_for_call_log(request_id=request_id)
        self.assertEqual((line["code"], line.get("reason")), (4, "RPC_002"), line)

    def assert_logged_as_cancelled(self, request_id, method):
        line = self.twd.wait_for_call_log(request_id=request_id)
        self.assertEqual((line["method"], line["status"], line["code"]),
                         (method, "CANCELLED", 1), line)
        self.assertTrue(line["peer"].startswith("ipv4:127.0.0.1:"), line)

    def test_client_cancel_mid_stream_is_logged_as_cancelled(self):
        request_id = new_request_id()
        stream = self.open_watch(request_id, timeout=RPC_TIMEOUT_S)
        stream.cancel()
        self.assert_logged_as_cancelled(request_id, WATCH_PATH)
        self.assertServing()

    def test_client_cancel_mid_bidi_stream_is_logged_as_cancelled(self):
        request_id = new_request_id()
        client_done = threading.Event()

        def requests():
            yield reflection_pb2.ServerReflectionRequest(list_services="")
            # Keep the sending side open, as a client that has more to ask.
            client_done.wait(RPC_TIMEOUT_S)

        stub = self.twd.stub(reflection_pb2_grpc.ServerReflectionStub)
        stream = stub.ServerReflectionInfo(requests(), timeout=RPC_TIMEOUT_S,
                                           metadata=metadata(x_request_id=request_id))
        try:
            next(stream)
            stream.cancel()
            self.assert_logged_as_cancelled(request_id, REFLECTION_PATH)
        finally:
            client_done.set()
        self.assertServing()


class ServerInfoTest(TwdTestCase):
    def setUp(self):
        self.server_info = self.twd.stub(server_info_service_pb2_grpc.ServerInfoServiceStub)
        self.account = self.twd.sign_up()

    def test_get_server_info_needs_a_token(self):
        assert_rpc_error(self, lambda: self.server_info.GetServerInfo(
            server_info_service_pb2.GetServerInfoRequest(), timeout=RPC_TIMEOUT_S),
            grpc.StatusCode.UNAUTHENTICATED, "AUTH_002")

    def test_get_server_info_reports_version_and_clock(self):
        info, call = self.server_info.GetServerInfo.with_call(
            server_info_service_pb2.GetServerInfoRequest(), timeout=RPC_TIMEOUT_S,
            metadata=self.account.metadata)
        now = datetime.datetime.now(datetime.timezone.utc)
        # `twd --version` prints "twd 0.1.0 (gRPC core ...)".
        self.assertEqual(info.server_version, run_twd("--version").stdout.split()[1])
        self.assertEqual(info.api_version, "tw.v1")
        server_time = info.server_time.ToDatetime(tzinfo=datetime.timezone.utc)
        self.assertLess(abs(server_time - now), CLOCK_TOLERANCE)
        self.assertLessEqual(info.start_time.ToDatetime(), info.server_time.ToDatetime())
        self.assertEqual(info.request_id, initial_metadata(call)["x-request-id"])

    def test_gzip_compressed_request_is_served(self):
        info = self.server_info.GetServerInfo(server_info_service_pb2.GetServerInfoRequest(),
                                              timeout=RPC_TIMEOUT_S,
                                              metadata=self.account.metadata,
                                              compression=grpc.Compression.Gzip)
        self.assertEqual(info.api_version, "tw.v1")


class CallLogTest(TwdTestCase):
    # Debug level: nothing, however verbose, may log a credential.
    twd_env = {"TW_LOG_LEVEL": "debug"}

    def call_get_server_info(self, credentials):
        """Calls GetServerInfo with the given authorization metadata; returns
        the call's request id and the error, if it failed."""
        request_id = new_request_id()
        stub = self.twd.stub(server_info_service_pb2_grpc.ServerInfoServiceStub)
        try:
            stub.GetServerInfo(server_info_service_pb2.GetServerInfoRequest(),
                               timeout=RPC_TIMEOUT_S,
                               metadata=[*metadata(x_request_id=request_id), *credentials])
            return request_id, None
        except grpc.RpcError as error:
            return request_id, error

    def test_each_call_logs_one_json_line(self):
        account = self.twd.sign_up()
        request_id, error = self.call_get_server_info(account.metadata)
        self.assertIsNone(error)
        line = self.twd.wait_for_call_log(request_id=request_id)
        self.assertEqual(len(self.twd.call_logs(request_id=request_id)), 1)
        self.assertEqual(line["method"], GET_SERVER_INFO_PATH)
        self.assertTrue(line["peer"].startswith("ipv4:127.0.0.1:"), line)
        self.assertEqual((line["status"], line["code"]), ("OK", 0))
        self.assertIsInstance(line["duration_ms"], (int, float))
        self.assertGreaterEqual(line["duration_ms"], 0)
        self.assertIn("time", line)
        self.assertEqual(line["user_id"], account.user_id)

    def test_failed_call_log_line_has_the_reason(self):
        request_id = new_request_id()
        health = self.twd.stub(health_pb2_grpc.HealthStub)
        assert_rpc_error(self, lambda: health.Check(health_pb2.HealthCheckRequest(service="nope"),
                                                    timeout=RPC_TIMEOUT_S,
                                                    metadata=metadata(x_request_id=request_id)),
                         grpc.StatusCode.NOT_FOUND, "RES_001")
        line = self.twd.wait_for_call_log(request_id=request_id)
        self.assertEqual((line["method"], line["code"], line["reason"]),
                         (CHECK_PATH, 5, "RES_001"), line)

    def test_tokens_are_never_logged(self):
        account = self.twd.sign_up()
        secret = "secret-token-xyz"
        request_id, error = self.call_get_server_info([("authorization", f"Bearer {secret}")])
        self.assertEqual(error.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.twd.wait_for_call_log(request_id=request_id)
        request_id, error = self.call_get_server_info(account.metadata)
        self.twd.wait_for_call_log(request_id=request_id)
        log = self.twd.stderr_text()
        for token in (secret, account.access_token, account.refresh_token, account.password):
            self.assertNotIn(token, log)


class CallLogPolicyTest(TwdTestCase):
    """Sampling off, nothing slow, a summary every second."""
    twd_env = {"TW_LOG_SAMPLE": "0", "TW_LOG_SLOW_MS": "0", "TW_LOG_SUMMARY_S": "1"}

    def summaries(self, since, method):
        return [line for line in self.twd.logs(since)
                if line.get("msg") == "calls" and line.get("method") == method]

    def check_and_wait_for_its_summary(self, request_id):
        since = self.twd.log_size()
        self.twd.stub(health_pb2_grpc.HealthStub).Check(
            health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S,
            metadata=metadata(x_request_id=request_id))
        return wait_until(lambda: self.summaries(since, CHECK_PATH), RPC_TIMEOUT_S,
                          "a summary line counting Health/Check")[0]

    def test_a_call_that_went_well_is_counted_not_logged(self):
        request_id = new_request_id()
        line = self.check_and_wait_for_its_summary(request_id)
        self.assertGreaterEqual(line["calls"], 1, line)
        for field in ("window_s", "failed", "slow", "mean_ms", "p50_ms", "p99_ms"):
            self.assertIn(field, line)
        # A second summary, a second later: the first call was counted (and,
        # had it been logged, its line queued at once) before the first one.
        self.check_and_wait_for_its_summary(new_request_id())
        self.assertEqual(self.twd.call_logs(request_id=request_id), [])

    def test_a_failed_call_is_logged_and_counted_as_failed(self):
        request_id = new_request_id()
        since = self.twd.log_size()
        assert_rpc_error(self, lambda: self.twd.stub(health_pb2_grpc.HealthStub).Check(
            health_pb2.HealthCheckRequest(service="nope"), timeout=RPC_TIMEOUT_S,
            metadata=metadata(x_request_id=request_id)), grpc.StatusCode.NOT_FOUND, "RES_001")
        line = self.twd.wait_for_call_log(request_id=request_id)
        self.assertEqual((line["code"], line["reason"]), (5, "RES_001"), line)
        wait_until(lambda: sum(s["failed"] for s in self.summaries(since, CHECK_PATH)) >= 1,
                   RPC_TIMEOUT_S, "a summary counting the failed Health/Check")


class CallLogBoundTest(TwdTestCase):
    """At most 5 call lines a second; what is not logged is counted."""
    lines_per_s = 5
    twd_env = {"TW_LOG_SAMPLE": "0", "TW_LOG_LINES_PER_S": str(lines_per_s),
               "TW_LOG_SUMMARY_S": "1"}

    def test_a_flood_of_failed_calls_is_bounded_and_accounted_for(self):
        prefix, calls = f"e2e-flood-{uuid.uuid4()}-", 100
        since = self.twd.log_size()
        health = self.twd.stub(health_pb2_grpc.HealthStub)
        started = time.monotonic()
        for i in range(calls):
            with self.assertRaises(grpc.RpcError):
                health.Check(health_pb2.HealthCheckRequest(service="nope"),
                             timeout=RPC_TIMEOUT_S, metadata=metadata(x_request_id=f"{prefix}{i}"))
        elapsed = time.monotonic() - started

        def accounted():
            lines = self.twd.logs(since)
            logged = [line for line in lines if line.get("msg") == "call" and
                      line.get("request_id", "").startswith(prefix)]
            suppressed = sum(line.get("suppressed", 0) for line in lines)
            return (logged, suppressed) if len(logged) + suppressed >= calls else None

        logged, suppressed = wait_until(accounted, RPC_TIMEOUT_S,
                                        "every failed call logged or counted as suppressed")
        self.assertGreaterEqual(len(logged), 1)
        # Lines are bounded per second of the run (counted in whole seconds,
        # the bound's window, plus one for a window it straddles).
        self.assertLessEqual(len(logged), self.lines_per_s * (math.ceil(elapsed) + 1))
        self.assertGreater(suppressed, 0)


class CallLogSampleTest(TwdTestCase):
    """One call in two that went well gets a line."""
    twd_env = {"TW_LOG_SAMPLE": "2", "TW_LOG_SLOW_MS": "0"}

    def test_one_in_n_calls_that_went_well_is_logged_as_sampled(self):
        prefix, calls = f"e2e-sample-{uuid.uuid4()}-", 20
        health = self.twd.stub(health_pb2_grpc.HealthStub)
        for i in range(calls):
            health.Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S,
                         metadata=metadata(x_request_id=f"{prefix}{i}"))
        # Each worker thread counts its own calls: at least one line, and at
        # most one per two calls.
        lines = wait_until(lambda: [line for line in self.twd.call_logs()
                                    if line["request_id"].startswith(prefix)],
                           RPC_TIMEOUT_S, "a sampled call line")
        self.assertLessEqual(len(lines), calls // 2)
        self.assertTrue(all(line["sampled"] == 2 for line in lines), lines)


class CallLogSlowTest(TwdTestCase):
    """Sampling off; every unary call of 1 ms or more is slow."""
    twd_env = {"TW_LOG_SAMPLE": "0", "TW_LOG_SLOW_MS": "1"}

    def test_a_slow_call_that_went_well_is_logged_as_slow(self):
        # Register hashes a password (scrypt, several ms even at the tests'
        # low cost): slow at this threshold.
        self.twd.sign_up()
        line = self.twd.wait_for_call_log(method="/tw.v1.AuthService/Register", status="OK")
        self.assertEqual(line["slow"], 1, line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
