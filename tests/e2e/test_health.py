"""
gRPC health (grpc.health.v1.Health) as load balancers and apps call it, and
the request id every call carries: Check and Watch for the whole server and
each tw.v1 service, unknown services with decodable error details, and
x-request-id echoed or generated.
"""
import unittest

import grpc

from twd_harness import (RPC_TIMEOUT_S, SERVING, TwdTestCase, api_service_names,
                         assert_rpc_error, initial_metadata, metadata)
# Generated stubs import only after twd_harness has put them on the path.
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
# Long enough never to end a healthy test, short enough that a hang fails.
WATCH_TIMEOUT_S = 30


class HealthTestCase(TwdTestCase):
    def setUp(self):
        self.health = self.twd.stub(health_pb2_grpc.HealthStub)

    def check(self, service, **kwargs):
        return self.health.Check(health_pb2.HealthCheckRequest(service=service),
                                 timeout=RPC_TIMEOUT_S, **kwargs)

    def first_watch_status(self, service):
        """The first status a Watch stream sends; the stream is then cancelled."""
        stream = self.health.Watch(health_pb2.HealthCheckRequest(service=service),
                                   timeout=WATCH_TIMEOUT_S)
        try:
            return next(stream).status
        finally:
            stream.cancel()


class CheckTest(HealthTestCase):
    def test_whole_server_is_serving(self):
        self.assertEqual(self.check("").status, SERVING)

    def test_every_api_service_is_serving(self):
        names = api_service_names()
        self.assertIn("tw.v1.ServerInfoService", names)
        for name in names:
            with self.subTest(service=name):
                self.assertEqual(self.check(name).status, SERVING)

    def test_unknown_service_is_not_found_with_error_details(self):
        error, details = assert_rpc_error(self, lambda: self.check("nope"),
                                          grpc.StatusCode.NOT_FOUND, "RES_001")
        self.assertIn("nope", error.details())

    def test_error_details_quote_the_request_id_the_client_sent(self):
        _, details = assert_rpc_error(
            self, lambda: self.check("nope", metadata=metadata(x_request_id="req-42")),
            grpc.StatusCode.NOT_FOUND, "RES_001")
        self.assertEqual(details.metadata["request_id"], "req-42")


class WatchTest(HealthTestCase):
    def test_watch_whole_server_streams_serving_first(self):
        self.assertEqual(self.first_watch_status(""), SERVING)

    def test_watch_unknown_service_streams_service_unknown(self):
        self.assertEqual(self.first_watch_status("nope"), SERVICE_UNKNOWN)


class RequestIdTest(HealthTestCase):
    def request_id_returned_for(self, sent_metadata=()):
        _, call = self.health.Check.with_call(health_pb2.HealthCheckRequest(),
                                              timeout=RPC_TIMEOUT_S, metadata=sent_metadata)
        return initial_metadata(call).get("x-request-id")

    def test_request_id_sent_by_client_comes_back(self):
        self.assertEqual(self.request_id_returned_for(metadata(x_request_id="abc")), "abc")

    def test_request_id_comes_back_on_errors_too(self):
        error, _ = assert_rpc_error(
            self, lambda: self.check("nope", metadata=metadata(x_request_id="abc")),
            grpc.StatusCode.NOT_FOUND, "RES_001")
        self.assertEqual(initial_metadata(error).get("x-request-id"), "abc")

    def test_request_id_is_generated_when_absent(self):
        first, second = self.request_id_returned_for(), self.request_id_returned_for()
        self.assertTrue(first)
        self.assertTrue(second)
        self.assertNotEqual(first, second)

    def test_unusable_request_id_is_replaced_by_a_generated_one(self):
        # Too long to quote in logs and support tickets (the limit is 64).
        too_long = "a" * 65
        returned = self.request_id_returned_for(metadata(x_request_id=too_long))
        self.assertTrue(returned)
        self.assertNotEqual(returned, too_long)


if __name__ == "__main__":
    unittest.main(verbosity=2)
