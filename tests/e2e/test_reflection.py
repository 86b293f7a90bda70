"""
gRPC server reflection, which lets tools (buf curl, grpcurl, Postman) list
and call twd without .proto files: the v1 service through generated stubs,
the older v1alpha path with the same messages, and buf curl as a real tool
would use it.
"""
import json
import os
import subprocess
import unittest

from google.protobuf import descriptor_pb2, descriptor_pool

from twd_harness import REPO_DIR, RPC_TIMEOUT_S, TwdTestCase, api_service_names
# Generated stubs import only after twd_harness has put them on the path.
from grpc.reflection.v1 import reflection_pb2, reflection_pb2_grpc  # noqa: E402

NOT_FOUND = 5  # google.rpc.Code, as carried in ErrorResponse.error_code
V1ALPHA_PATH = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
STANDARD_SERVICES = {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                     "grpc.reflection.v1alpha.ServerReflection"}
BUF = os.path.join(REPO_DIR, "node_modules", ".bin", "buf")
# buf is a Go binary started through node's wrapper: quick, but not instant.
BUF_TIMEOUT_S = 60


def list_services():
    return reflection_pb2.ServerReflectionRequest(list_services="")


def file_containing_symbol(symbol):
    return reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)


def file_by_filename(name):
    return reflection_pb2.ServerReflectionRequest(file_by_filename=name)


def service_names(response):
    return {service.name for service in response.list_services_response.service}


def parsed_files(response):
    return [descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in response.file_descriptor_response.file_descriptor_proto]


def pool_of(files):
    """A descriptor pool built from the files alone: it succeeds only if the
    response carries every import a client needs to decode the service."""
    pool = descriptor_pool.DescriptorPool()
    pending = {f.name: f for f in files}
    while pending:
        ready = [f for f in pending.values()
                 if all(dep not in pending for dep in f.dependency)]
        if not ready:
            raise AssertionError(f"imports missing or cyclic among {sorted(pending)}")
        for f in ready:
            pool.Add(f)
            del pending[f.name]
    return pool


class ReflectionTestCase(TwdTestCase):
    def reflect(self, *requests):
        """Sends the requests on one v1 stream and returns every response."""
        stub = self.twd.stub(reflection_pb2_grpc.ServerReflectionStub)
        return list(stub.ServerReflectionInfo(iter(requests), timeout=RPC_TIMEOUT_S))

    def reflect_v1alpha(self, *requests):
        """The same over the v1alpha path, whose messages equal v1's on the wire."""
        call = self.twd.channel().stream_stream(
            V1ALPHA_PATH,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        return list(call(iter(requests), timeout=RPC_TIMEOUT_S))


class ReflectionV1Test(ReflectionTestCase):
    def test_list_services_names_every_service(self):
        [response] = self.reflect(list_services())
        self.assertLessEqual(STANDARD_SERVICES | set(api_service_names()),
                             service_names(response))

    def test_file_containing_service_comes_with_its_imports(self):
        [response] = self.reflect(file_containing_symbol("tw.v1.ServerInfoService"))
        names = [f.name for f in parsed_files(response)]
        self.assertIn("tw/v1/server_info_service.proto", names)
        self.assertIn("google/protobuf/timestamp.proto", names)

    def test_reflected_files_describe_the_service_completely(self):
        [response] = self.reflect(file_containing_symbol("tw.v1.ServerInfoService"))
        service = pool_of(parsed_files(response)).FindServiceByName("tw.v1.ServerInfoService")
        method = service.FindMethodByName("GetServerInfo")
        self.assertEqual(method.output_type.fields_by_name["server_time"].message_type.full_name,
                         "google.protobuf.Timestamp")

    def test_file_by_filename_returns_that_file(self):
        [response] = self.reflect(file_by_filename("tw/v1/server_info_service.proto"))
        self.assertIn("tw/v1/server_info_service.proto", [f.name for f in parsed_files(response)])

    def test_unknown_symbol_is_not_found_and_the_stream_goes_on(self):
        unknown, listing = self.reflect(file_containing_symbol("tw.v1.Nope"), list_services())
        self.assertEqual(unknown.WhichOneof("message_response"), "error_response")
        self.assertEqual(unknown.error_response.error_code, NOT_FOUND)
        self.assertIn("tw.v1.ServerInfoService", service_names(listing))


class ReflectionV1alphaTest(ReflectionTestCase):
    def test_v1alpha_lists_the_same_services_as_v1(self):
        [alpha] = self.reflect_v1alpha(list_services())
        [v1] = self.reflect(list_services())
        self.assertEqual(service_names(alpha), service_names(v1))

    def test_v1alpha_returns_files_for_a_symbol(self):
        [response] = self.reflect_v1alpha(file_containing_symbol("tw.v1.ServerInfoService"))
        self.assertIn("tw/v1/server_info_service.proto", [f.name for f in parsed_files(response)])


class BufCurlTest(TwdTestCase):
    """buf curl, a tool outside our code, finds everything through reflection."""

    @classmethod
    def setUpClass(cls):
        if not os.access(BUF, os.X_OK):
            raise unittest.SkipTest(f"{BUF} is missing: run scripts/bootstrap (npm ci)")
        super().setUpClass()

    def buf_curl(self, *args, expect_exit=0):
        """buf curl's stdout; its exit code is the gRPC status code times 8."""
        result = subprocess.run(
            [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
            cwd=REPO_DIR, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=BUF_TIMEOUT_S)
        self.assertEqual(result.returncode, expect_exit, f"buf curl said:\n{result.stderr}")
        return result.stdout, result.stderr

    def test_buf_lists_services(self):
        listed, _ = self.buf_curl("--list-services", f"http://{self.twd.address}")
        self.assertLessEqual(STANDARD_SERVICES | set(api_service_names()),
                             set(listed.split()))

    def test_buf_calls_get_server_info_without_a_schema(self):
        account = self.twd.sign_up()
        output, _ = self.buf_curl(
            "-H", f"authorization: Bearer {account.access_token}",
            f"http://{self.twd.address}/tw.v1.ServerInfoService/GetServerInfo")
        info = json.loads(output)
        self.assertEqual(info["apiVersion"], "tw.v1")
        self.assertTrue(info["serverVersion"])

    def test_buf_sees_error_info_in_a_failed_call(self):
        _, error_text = self.buf_curl(
            "-d", '{"service": "nope"}', f"http://{self.twd.address}/grpc.health.v1.Health/Check",
            expect_exit=NOT_FOUND * 8)
        error = json.loads(error_text)
        self.assertEqual(error["code"], "not_found")
        self.assertIn("google.rpc.ErrorInfo", [detail["type"] for detail in error["details"]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
