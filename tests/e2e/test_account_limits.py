"""
Rate limits through real calls: the 6th sign-in after 5 failures (one at a
time, all at once, across a restart, unknown emails alike), the per-address
limit, and the per-user API limit with its write class; each refusal is
RESOURCE_EXHAUSTED, reason RATE_001, with a RetryInfo. And the sign-in
admission queue: more sign-ins at once than password hashing admits are
refused with RATE_004 and a RetryInfo instead of waiting their turn.
"""
import concurrent.futures
import unittest

import grpc
from google.protobuf import field_mask_pb2

from twd_harness import RPC_TIMEOUT_S, Twd, TwdTestCase, assert_rpc_error, rpc_error_details
from tw.v1 import auth_service_pb2, auth_service_pb2_grpc  # noqa: E402

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
WINDOW_S = 900


def login(twd, email, password):
    auth = twd.stub(auth_service_pb2_grpc.AuthServiceStub)
    return auth.Login(auth_service_pb2.LoginRequest(email=email, password=password),
                      timeout=RPC_TIMEOUT_S)


def outcome(call):
    try:
        call()
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


class LoginLimitTest(TwdTestCase):
    def assert_limited(self, email, password):
        _, details = assert_rpc_error(self, lambda: login(self.twd, email, password), EXHAUSTED,
                                      "RATE_001")
        self.assertIsNotNone(details.retry_delay, "no RetryInfo")
        self.assertGreater(details.retry_delay, 0)
        self.assertLessEqual(details.retry_delay, WINDOW_S)
        return details

    def test_sixth_attempt_after_five_failures_is_refused(self):
        me = self.twd.sign_up()
        for _ in range(5):
            assert_rpc_error(self, lambda: login(self.twd, me.email, "wrong password"),
                             UNAUTHENTICATED, "AUTH_006")
        # Even the right password waits now: the limit is on the account.
        details = self.assert_limited(me.email, me.password)
        self.assertGreater(details.retry_delay, WINDOW_S - 60)
        # Another account is not affected.
        other = self.twd.sign_up()
        self.twd.sign_in(other.email, other.password)

    def test_unknown_emails_are_limited_the_same(self):
        for _ in range(5):
            assert_rpc_error(self, lambda: login(self.twd, "ghost@example.com", "guess 1234"),
                             UNAUTHENTICATED, "AUTH_006")
        self.assert_limited("ghost@example.com", "guess 1234")

    def test_the_limit_holds_for_attempts_sent_at_once(self):
        me = self.twd.sign_up()
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            outcomes = list(pool.map(
                lambda i: outcome(lambda: login(self.twd, me.email, f"guess number {i}")),
                range(12)))
        self.assertEqual(outcomes.count("UNAUTHENTICATED"), 5, outcomes)
        self.assertEqual(outcomes.count("RESOURCE_EXHAUSTED"), 7, outcomes)
        self.assert_limited(me.email, me.password)

    def test_a_success_forgives_earlier_failures(self):
        me = self.twd.sign_up()
        for _ in range(4):
            assert_rpc_error(self, lambda: login(self.twd, me.email, "wrong password"),
                             UNAUTHENTICATED, "AUTH_006")
        self.twd.sign_in(me.email, me.password)
        for _ in range(5):
            assert_rpc_error(self, lambda: login(self.twd, me.email, "wrong password"),
                             UNAUTHENTICATED, "AUTH_006")
        self.assert_limited(me.email, me.password)


class LoginLimitRestartAndPeerTest(unittest.TestCase):
    def test_failures_survive_a_restart(self):
        with Twd() as twd:
            me = twd.sign_up()
            for _ in range(5):
                assert_rpc_error(self, lambda: login(twd, me.email, "wrong password"),
                                 UNAUTHENTICATED, "AUTH_006")
            data_dir = twd.data_dir
            twd.stop()
            with Twd(data_dir=data_dir) as again:
                assert_rpc_error(self, lambda: login(again, me.email, me.password), EXHAUSTED,
                                 "RATE_001")

    def test_one_address_failing_on_many_accounts_is_limited(self):
        with Twd(env={"TW_LOGIN_FAILURES_PER_PEER": "3"}) as twd:
            accounts = [twd.sign_up() for _ in range(4)]
            for account in accounts[:3]:
                assert_rpc_error(self, lambda: login(twd, account.email, "wrong password"),
                                 UNAUTHENTICATED, "AUTH_006")
            _, details = assert_rpc_error(
                self, lambda: login(twd, accounts[3].email, accounts[3].password), EXHAUSTED,
                "RATE_001")
            self.assertGreater(details.retry_delay, 0)


class SignInAdmissionTest(TwdTestCase):
    # One hash at a time and one waiting, at the production cost (a few
    # hundred ms a hash): a burst of sign-ins overflows the queue. The
    # account's failure limit counts sign-ins in flight as possible failures;
    # raised out of the way, so that only the queue refuses (else, on a slow
    # machine, a sixth attempt in flight got RATE_001 first).
    twd_env = {"TW_PASSWORD_HASH_THREADS": "1", "TW_PASSWORD_HASH_QUEUE": "1",
               "TW_PASSWORD_SCRYPT_LOG2_N": "17", "TW_LOGIN_FAILURES_PER_ACCOUNT": "100"}
    burst = 12

    def test_a_burst_beyond_the_queue_is_refused_with_retry_info(self):
        me = self.twd.sign_up()

        def attempt(_):
            try:
                login(self.twd, me.email, me.password)
                return ("OK", None, None)
            except grpc.RpcError as error:
                details = rpc_error_details(error)
                return (error.code().name, details.reason, details.retry_delay)

        with concurrent.futures.ThreadPoolExecutor(max_workers=self.burst) as pool:
            outcomes = list(pool.map(attempt, range(self.burst)))
        refused = [o for o in outcomes if o[0] != "OK"]
        self.assertGreaterEqual(len(outcomes) - len(refused), 1, outcomes)
        self.assertGreaterEqual(len(refused), 1, outcomes)
        for code, reason, retry_delay in refused:
            self.assertEqual((code, reason), ("RESOURCE_EXHAUSTED", "RATE_004"), outcomes)
            self.assertIsNotNone(retry_delay, "no RetryInfo")
            self.assertGreater(retry_delay, 0)
        # A refusal is no failed sign-in: the account is not limited, and
        # signing in one at a time works as before.
        self.twd.sign_in(me.email, me.password)

    def test_a_refused_sign_up_stores_nothing(self):
        emails = [f"burst-{i}@example.com" for i in range(self.burst)]

        def attempt(email):
            auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)
            try:
                auth.Register(auth_service_pb2.RegisterRequest(
                    email=email, password="a long password 1", display_name="Burst"),
                    timeout=RPC_TIMEOUT_S)
                return "OK"
            except grpc.RpcError as error:
                return rpc_error_details(error).reason

        with concurrent.futures.ThreadPoolExecutor(max_workers=self.burst) as pool:
            outcomes = dict(zip(emails, pool.map(attempt, emails)))
        self.assertIn("RATE_004", outcomes.values(), outcomes)
        self.assertTrue(set(outcomes.values()) <= {"OK", "RATE_004"}, outcomes)
        for email, result in outcomes.items():
            if result == "RATE_004":  # refused: the email is still free
                assert_rpc_error(self, lambda: login(self.twd, email, "a long password 1"),
                                 UNAUTHENTICATED, "AUTH_006")


class ApiLimitTest(TwdTestCase):
    twd_env = {"TW_API_CALLS_PER_HOUR": "5", "TW_API_WRITE_CALLS_PER_HOUR": "2"}

    def setUp(self):
        self.auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)

    def get_me(self, me):
        return self.auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=me.metadata,
                               timeout=RPC_TIMEOUT_S)

    def update_me(self, me):
        return self.auth.UpdateMe(auth_service_pb2.UpdateMeRequest(
            user=auth_service_pb2.User(locale="en"),
            update_mask=field_mask_pb2.FieldMask(paths=["locale"])),
            metadata=me.metadata, timeout=RPC_TIMEOUT_S)

    def test_calls_per_user_per_hour(self):
        me, other = self.twd.sign_up(), self.twd.sign_up()
        for _ in range(5):
            self.get_me(me)
        _, details = assert_rpc_error(self, lambda: self.get_me(me), EXHAUSTED, "RATE_001")
        self.assertAlmostEqual(details.retry_delay, 3600 / 5, delta=5)
        self.get_me(other)

    def test_writes_have_a_limit_of_their_own(self):
        me = self.twd.sign_up()
        self.update_me(me)
        self.update_me(me)
        _, details = assert_rpc_error(self, lambda: self.update_me(me), EXHAUSTED, "RATE_001")
        self.assertAlmostEqual(details.retry_delay, 3600 / 2, delta=5)
        # The refused write counted nothing: three reads are left of five.
        for _ in range(3):
            self.get_me(me)
        assert_rpc_error(self, lambda: self.get_me(me), EXHAUSTED, "RATE_001")


if __name__ == "__main__":
    unittest.main(verbosity=2)
