"""
Operating accounts: `twd admin create` (the first admin, through the
running twd or into a stopped store), maintenance mode (who is refused, who
passes, that it survives a restart), signing-key rotation (by RPC and by
`twd keys rotate`) logging nobody out, and TLS: twd serving a certificate
the test makes with openssl, and refusing plaintext off loopback.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import grpc

from twd_harness import (RPC_TIMEOUT_S, TWD, Twd, TwdTestCase, _merged_env, assert_rpc_error,
                         run_twd)
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from tw.v1 import (admin_service_pb2, admin_service_pb2_grpc, auth_service_pb2,  # noqa: E402
                   auth_service_pb2_grpc, server_info_service_pb2,
                   server_info_service_pb2_grpc)

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
ADMIN_PASSWORD = "operator's long password"


def twd_command(*args, password=None, data_dir):
    """Runs `twd ARGS --data-dir DATA_DIR` with password as standard input."""
    return subprocess.run([TWD, *args, "--data-dir", data_dir], input=password, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                          env=_merged_env({"TW_PASSWORD_SCRYPT_LOG2_N": "12"}))


def kid_of(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]


class AdminCommandTest(unittest.TestCase):
    def test_admin_create_through_a_running_twd_and_offline(self):
        with Twd() as twd:
            made = twd_command("admin", "create", "--email", "Root@Example.com",
                               password=ADMIN_PASSWORD + "\n", data_dir=twd.data_dir)
            self.assertEqual(made.returncode, 0, made.stderr)
            self.assertRegex(made.stdout, r"^created admin Root@Example.com \(user id [0-9a-f-]{36}\)")
            twd.wait_for_call_log(method="/tw.v1.AdminService/CreateUser", status="OK")
            admin = twd.sign_in("Root@example.com", ADMIN_PASSWORD)
            auth = twd.stub(auth_service_pb2_grpc.AuthServiceStub)
            me = auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=admin.metadata,
                            timeout=RPC_TIMEOUT_S).user
            # The display name defaults to the normalised address's local part.
            self.assertEqual((me.role, me.display_name), (auth_service_pb2.ROLE_ADMIN, "root"))

            again = twd_command("admin", "create", "--email", "Root@EXAMPLE.com",
                                password=ADMIN_PASSWORD + "\n", data_dir=twd.data_dir)
            self.assertEqual(again.returncode, 1)
            self.assertIn("already exists", again.stderr)
            weak = twd_command("admin", "create", "--email", "second@example.com",
                               password="password\n", data_dir=twd.data_dir)
            self.assertEqual(weak.returncode, 1)
            self.assertIn("common", weak.stderr)
            self.assertEqual(len(weak.stderr.splitlines()), 1, weak.stderr)
            data_dir = twd.data_dir
            twd.stop()
            # With no twd running, the command writes the store itself.
            offline = twd_command("admin", "create", "--email", "night@example.com",
                                  "--display-name", "Night Shift",
                                  password=ADMIN_PASSWORD + "\n", data_dir=data_dir)
            self.assertEqual(offline.returncode, 0, offline.stderr)
            with Twd(data_dir=data_dir) as again:
                night = again.sign_in("night@example.com", ADMIN_PASSWORD)
                admin_stub = again.stub(admin_service_pb2_grpc.AdminServiceStub)
                admin_stub.SetMaintenanceMode(admin_service_pb2.SetMaintenanceModeRequest(),
                                              metadata=night.metadata, timeout=RPC_TIMEOUT_S)

    def test_admin_create_needs_an_email_and_a_password(self):
        with tempfile.TemporaryDirectory(prefix="twd-e2e-admin-") as data_dir:
            self.assertEqual(twd_command("admin", "create", data_dir=data_dir).returncode, 2)
            self.assertEqual(twd_command("admin", "nonsense", data_dir=data_dir).returncode, 2)
            empty = twd_command("admin", "create", "--email", "a@example.com", password="",
                                data_dir=data_dir)
            self.assertEqual(empty.returncode, 1)
            self.assertIn("password", empty.stderr)


class MaintenanceTest(unittest.TestCase):
    def test_maintenance_refuses_users_serves_admins_and_survives_a_restart(self):
        with Twd() as twd:
            made = twd_command("admin", "create", "--email", "ops@example.com",
                               password=ADMIN_PASSWORD + "\n", data_dir=twd.data_dir)
            self.assertEqual(made.returncode, 0, made.stderr)
            user = twd.sign_up()
            admin = twd.sign_in("ops@example.com", ADMIN_PASSWORD)
            auth = twd.stub(auth_service_pb2_grpc.AuthServiceStub)
            admin_stub = twd.stub(admin_service_pb2_grpc.AdminServiceStub)
            # A user may not switch it.
            assert_rpc_error(self, lambda: admin_stub.SetMaintenanceMode(
                admin_service_pb2.SetMaintenanceModeRequest(enabled=True),
                metadata=user.metadata, timeout=RPC_TIMEOUT_S),
                grpc.StatusCode.PERMISSION_DENIED, "AUTH_007")
            assert_rpc_error(self, lambda: admin_stub.SetMaintenanceMode(
                admin_service_pb2.SetMaintenanceModeRequest(enabled=True, message="x" * 501),
                metadata=admin.metadata, timeout=RPC_TIMEOUT_S),
                grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")

            message = "Upgrading the database; back at 10:00 UTC"
            reply = admin_stub.SetMaintenanceMode(
                admin_service_pb2.SetMaintenanceModeRequest(enabled=True, message=message),
                metadata=admin.metadata, timeout=RPC_TIMEOUT_S)
            self.assertTrue(reply.enabled)
            self.assert_in_maintenance(twd, user, message)
            # Admins and infrastructure are served.
            self.assertEqual(auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=admin.metadata,
                                        timeout=RPC_TIMEOUT_S).user.role,
                             auth_service_pb2.ROLE_ADMIN)
            twd.sign_in("ops@example.com", ADMIN_PASSWORD)
            self.assertTrue(twd.is_serving())

            data_dir = twd.data_dir
            twd.stop()
            with Twd(data_dir=data_dir) as again:
                self.assert_in_maintenance(again, user, message)
                admin = again.sign_in("ops@example.com", ADMIN_PASSWORD)
                again.stub(admin_service_pb2_grpc.AdminServiceStub).SetMaintenanceMode(
                    admin_service_pb2.SetMaintenanceModeRequest(enabled=False),
                    metadata=admin.metadata, timeout=RPC_TIMEOUT_S)
                again.stub(auth_service_pb2_grpc.AuthServiceStub).GetMe(
                    auth_service_pb2.GetMeRequest(), metadata=user.metadata,
                    timeout=RPC_TIMEOUT_S)
                again.sign_up()

    def assert_in_maintenance(self, twd, user, message):
        auth = twd.stub(auth_service_pb2_grpc.AuthServiceStub)
        info = twd.stub(server_info_service_pb2_grpc.ServerInfoServiceStub)
        calls = [
            lambda: auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=user.metadata,
                               timeout=RPC_TIMEOUT_S),
            lambda: twd.sign_in(user.email, user.password),
            lambda: auth.RefreshToken(auth_service_pb2.RefreshTokenRequest(
                refresh_token=user.refresh_token), timeout=RPC_TIMEOUT_S),
            lambda: twd.sign_up(),
            lambda: info.GetServerInfo(server_info_service_pb2.GetServerInfoRequest(),
                                       metadata=user.metadata, timeout=RPC_TIMEOUT_S),
        ]
        for call in calls:
            _, details = assert_rpc_error(self, call, UNAVAILABLE, "MAINTENANCE")
            self.assertEqual(details.message, message)
        health = twd.stub(health_pb2_grpc.HealthStub)
        self.assertEqual(health.Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S)
                         .status, health_pb2.HealthCheckResponse.SERVING)


class KeyRotationTest(TwdTestCase):
    def test_rotation_logs_nobody_out(self):
        auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)
        me = self.twd.sign_up()
        old_kid = kid_of(me.access_token)
        rotated = twd_command("keys", "rotate", data_dir=self.twd.data_dir)
        self.assertEqual(rotated.returncode, 0, rotated.stderr)
        self.assertRegex(rotated.stdout, r"^new signing key [0-9a-f-]{36}; ")
        self.twd.wait_for_call_log(method="/tw.v1.AdminService/RotateSigningKey", status="OK")
        # The old token still works; new tokens carry the new key.
        auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=me.metadata, timeout=RPC_TIMEOUT_S)
        tokens = auth.RefreshToken(auth_service_pb2.RefreshTokenRequest(
            refresh_token=me.refresh_token), timeout=RPC_TIMEOUT_S).tokens
        new_kid = kid_of(tokens.access_token)
        self.assertNotEqual(new_kid, old_kid)
        self.assertIn(new_kid, rotated.stdout)
        # And once more by RPC through the operator socket.
        admin = admin_service_pb2_grpc.AdminServiceStub(self.twd.operator_channel())
        reply = admin.RotateSigningKey(admin_service_pb2.RotateSigningKeyRequest(),
                                       timeout=RPC_TIMEOUT_S)
        self.assertNotIn(reply.key_id, (old_kid, new_kid))
        self.assertGreater(reply.previous_key_retire_time.seconds, 0)
        for token in (me.access_token, tokens.access_token):
            auth.GetMe(auth_service_pb2.GetMeRequest(),
                       metadata=[("authorization", f"Bearer {token}")], timeout=RPC_TIMEOUT_S)


class KeyRotationFloodTest(unittest.TestCase):
    """Issue 16, item 5: however often keys rotate, every token issued along
    the way verifies until it expires (expiry itself is in the unit test,
    tests/unit/server/auth/test_keyring.c, with an injected clock)."""

    def test_ten_rotations_in_a_minute_log_nobody_out(self):
        with Twd() as twd:
            auth = twd.stub(auth_service_pb2_grpc.AuthServiceStub)
            admin = admin_service_pb2_grpc.AdminServiceStub(twd.operator_channel())
            me = twd.sign_up()
            tokens = [me.access_token]
            for i in range(10):
                # Both real paths: the RPC, and `twd keys rotate` through the socket.
                if i % 2:
                    admin.RotateSigningKey(admin_service_pb2.RotateSigningKeyRequest(),
                                           timeout=RPC_TIMEOUT_S)
                else:
                    rotated = twd_command("keys", "rotate", data_dir=twd.data_dir)
                    self.assertEqual(rotated.returncode, 0, rotated.stderr)
                tokens.append(twd.sign_in(me.email, me.password).access_token)
            self.assertEqual(len({kid_of(token) for token in tokens}), 11)
            for token in tokens:
                auth.GetMe(auth_service_pb2.GetMeRequest(),
                           metadata=[("authorization", f"Bearer {token}")], timeout=RPC_TIMEOUT_S)

    def test_a_full_ring_refuses_rotation_and_keeps_every_key(self):
        with Twd() as twd:
            auth = twd.stub(auth_service_pb2_grpc.AuthServiceStub)
            admin = admin_service_pb2_grpc.AdminServiceStub(twd.operator_channel())
            me = twd.sign_up()
            rotate = lambda: admin.RotateSigningKey(  # noqa: E731
                admin_service_pb2.RotateSigningKeyRequest(), timeout=RPC_TIMEOUT_S)
            for _ in range(31):  # the ring holds the current key and 31 replaced ones
                rotate()
            _, details = assert_rpc_error(self, rotate, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                          "RATE_001")
            self.assertRegex(details.message,
                             r"^32 signing keys still verify tokens; the oldest retires in \d+ s")
            self.assertGreater(details.retry_delay, 800)
            refused = twd_command("keys", "rotate", data_dir=twd.data_dir)
            self.assertEqual(refused.returncode, 1)
            self.assertIn("32 signing keys still verify tokens", refused.stderr)
            # The first token, signed with the oldest key, still works.
            auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=me.metadata,
                       timeout=RPC_TIMEOUT_S)


def make_certificate(directory, name="server"):
    """A self-signed certificate for 127.0.0.1 and localhost, made by openssl."""
    cert, key = (os.path.join(directory, f"{name}.{ext}") for ext in ("crt", "key"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


@unittest.skipIf(shutil.which("openssl") is None, "openssl is not installed")
class TlsTest(unittest.TestCase):
    def test_twd_serves_tls_with_a_certificate_the_test_made(self):
        with tempfile.TemporaryDirectory(prefix="twd-e2e-tls-") as tmp:
            cert, key = make_certificate(tmp)
            with open(cert, "rb") as f:
                root = f.read()
            with Twd(extra_args=("--tls-cert", cert, "--tls-key", key), tls_root=root) as twd:
                self.assertTrue(any(line.get("msg") == "listening" and line.get("tls") is True
                                    for line in twd.logs()))
                me = twd.sign_up()
                auth = twd.stub(auth_service_pb2_grpc.AuthServiceStub)
                self.assertEqual(auth.GetMe(auth_service_pb2.GetMeRequest(),
                                            metadata=me.metadata,
                                            timeout=RPC_TIMEOUT_S).user.id, me.user_id)
                # A plaintext client gets nowhere.
                with grpc.insecure_channel(twd.address) as plain:
                    with self.assertRaises(grpc.RpcError) as caught:
                        health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(),
                                                                timeout=2)
                    self.assertEqual(caught.exception.code(), UNAVAILABLE)
                # Nor does a client that trusts another certificate.
                other_cert, _ = make_certificate(tmp, "other")
                with open(other_cert, "rb") as f:
                    wrong = grpc.ssl_channel_credentials(root_certificates=f.read())
                with grpc.secure_channel(twd.address, wrong) as channel:
                    with self.assertRaises(grpc.RpcError) as caught:
                        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                  timeout=2)
                    self.assertEqual(caught.exception.code(), UNAVAILABLE)

    def test_bad_tls_settings_stop_start_up_with_one_line(self):
        with tempfile.TemporaryDirectory(prefix="twd-e2e-tls-") as tmp:
            cert, _ = make_certificate(tmp)
            _, other_key = make_certificate(tmp, "other")
            cases = [
                (("--tls-cert", cert, "--tls-key", other_key), "not the private key"),
                (("--tls-cert", cert, "--tls-key", cert), "no PEM private key"),
                (("--tls-cert", os.path.join(tmp, "missing.crt"), "--tls-key", other_key),
                 "tls_cert"),
                (("--tls-cert", cert), "go together"),
                # Plaintext off loopback needs TLS or an explicit yes; twd stops
                # before it binds anything.
                (("--listen", "0.0.0.0:0"), "loopback"),
            ]
            for args, words in cases:
                result = run_twd("serve", "--data-dir", os.path.join(tmp, "data"), *args)
                self.assertEqual(result.returncode, 2, (args, result.stderr))
                lines = result.stderr.splitlines()
                self.assertEqual(len(lines), 1, result.stderr)
                self.assertIn(words, lines[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
