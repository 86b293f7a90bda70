"""
Accounts through real calls: register, login, refresh and logout; refresh
tokens that are reused; every kind of forged or dead access token the gate
must refuse; disabled accounts; unique emails; bad input that stores nothing.

Forged tokens are signed with twd's real key, read from its store with
tw-store-dump, so each attack differs from a valid token in one way only
(and a token forged the same way with nothing wrong is accepted).
"""
import base64
import concurrent.futures
import hashlib
import hmac
import json
import time
import unittest
import uuid

import grpc

from twd_harness import RPC_TIMEOUT_S, TwdTestCase, assert_rpc_error
from tw.v1 import (admin_service_pb2, admin_service_pb2_grpc, auth_service_pb2,  # noqa: E402
                   auth_service_pb2_grpc)
from tw.store.v1 import accounts_pb2  # noqa: E402

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
USER_PREFIX, SIGNING_KEYS_PREFIX = 0x50, 0x52
ISSUER, AUDIENCE = "timeandwellness", "tw-app"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header, claims, secret, digest=hashlib.sha256):
    """A JWT with the given header and claims, signed with HMAC(secret)."""
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode()))
    if secret is None:
        return signing_input + "."
    sig = hmac.new(secret, signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(sig)


def bearer(token):
    return [("authorization", f"Bearer {token}")]


class AuthTestCase(TwdTestCase):
    def setUp(self):
        self.auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)

    def get_me(self, account_or_metadata):
        md = getattr(account_or_metadata, "metadata", account_or_metadata)
        return self.auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=md,
                               timeout=RPC_TIMEOUT_S)

    def refresh(self, refresh_token):
        return self.auth.RefreshToken(
            auth_service_pb2.RefreshTokenRequest(refresh_token=refresh_token),
            timeout=RPC_TIMEOUT_S)

    def assert_refused(self, md, reason, code=UNAUTHENTICATED):
        return assert_rpc_error(self, lambda: self.get_me(md), code, reason)

    def login(self, email, password):
        return self.auth.Login(auth_service_pb2.LoginRequest(email=email, password=password),
                               timeout=RPC_TIMEOUT_S)


class SessionCycleTest(AuthTestCase):
    def test_register_login_refresh_logout(self):
        me = self.twd.sign_up(email="  Ana.Cycle@Example.COM ", display_name="Ana",
                              time_zone="Europe/Paris", locale="fr-FR")
        self.assertEqual(me.email, "  Ana.Cycle@Example.COM ")
        profile = self.get_me(me).user
        self.assertEqual(profile.id, me.user_id)
        self.assertEqual(profile.email, "ana.cycle@example.com")  # trimmed, lower-cased
        self.assertEqual((profile.display_name, profile.time_zone, profile.locale),
                         ("Ana", "Europe/Paris", "fr-FR"))
        self.assertEqual(profile.role, auth_service_pb2.ROLE_USER)
        uuid.UUID(profile.id)

        # Login with the normalised email in another spacing: a second session.
        second = self.twd.sign_in(" Ana.Cycle@EXAMPLE.com", me.password)
        self.assertEqual(second.user_id, me.user_id)
        self.assertNotEqual(second.session_id, me.session_id)

        # Refresh rotates both tokens; the new access token works.
        tokens = self.refresh(second.refresh_token).tokens
        self.assertEqual(tokens.session_id, second.session_id)
        self.assertNotEqual(tokens.refresh_token, second.refresh_token)
        self.assertEqual(self.get_me(bearer(tokens.access_token)).user.id, me.user_id)
        self.assertGreater(tokens.access_token_expire_time.seconds, time.time() + 800)
        self.assertLess(tokens.access_token_expire_time.seconds, time.time() + 1000)

        # Logout ends that session only.
        self.auth.Logout(auth_service_pb2.LogoutRequest(), metadata=bearer(tokens.access_token),
                         timeout=RPC_TIMEOUT_S)
        self.assert_refused(bearer(tokens.access_token), "AUTH_004")
        assert_rpc_error(self, lambda: self.refresh(tokens.refresh_token), UNAUTHENTICATED,
                         "AUTH_004")
        self.assertEqual(self.get_me(me).user.id, me.user_id)

    def test_logout_all_ends_every_session(self):
        me = self.twd.sign_up()
        other = self.twd.sign_in(me.email, me.password)
        bystander = self.twd.sign_up()
        reply = self.auth.LogoutAll(auth_service_pb2.LogoutAllRequest(), metadata=me.metadata,
                                    timeout=RPC_TIMEOUT_S)
        self.assertEqual(reply.session_count, 2)
        for account in (me, other):
            self.assert_refused(account, "AUTH_004")
            assert_rpc_error(self, lambda: self.refresh(account.refresh_token), UNAUTHENTICATED,
                             "AUTH_004")
        self.assertEqual(self.get_me(bystander).user.id, bystander.user_id)

    def test_wrong_password_and_unknown_email_get_the_same_answer(self):
        me = self.twd.sign_up()
        _, wrong = assert_rpc_error(self, lambda: self.login(me.email, "not the password"),
                                    UNAUTHENTICATED, "AUTH_006")
        _, unknown = assert_rpc_error(self, lambda: self.login("nobody@example.com", "whatever1"),
                                      UNAUTHENTICATED, "AUTH_006")
        self.assertEqual(wrong.message, unknown.message)


class RefreshReuseTest(AuthTestCase):
    def test_reusing_a_refresh_token_revokes_the_whole_session(self):
        me = self.twd.sign_up()
        elsewhere = self.twd.sign_in(me.email, me.password)
        first = self.refresh(me.refresh_token).tokens
        second = self.refresh(first.refresh_token).tokens
        # A stolen copy of an old token is presented: the family dies.
        _, details = assert_rpc_error(self, lambda: self.refresh(me.refresh_token),
                                      UNAUTHENTICATED, "AUTH_004")
        self.assertIn("already used", details.message)
        assert_rpc_error(self, lambda: self.refresh(second.refresh_token), UNAUTHENTICATED,
                         "AUTH_004")
        self.assert_refused(bearer(second.access_token), "AUTH_004")
        # The account's other session is another family.
        self.assertEqual(self.get_me(elsewhere).user.id, me.user_id)
        self.refresh(elsewhere.refresh_token)

    def test_forged_refresh_token_changes_nothing(self):
        me = self.twd.sign_up()
        raw = bytearray(base64.urlsafe_b64decode(me.refresh_token[4:] + "=="))
        raw[-1] ^= 1  # a wrong MAC on a real session and generation
        forged = "rt1." + b64url(bytes(raw))
        assert_rpc_error(self, lambda: self.refresh(forged), UNAUTHENTICATED, "AUTH_001")
        for junk in ("rt1.nope", "x" * 300):
            assert_rpc_error(self, lambda: self.refresh(junk), UNAUTHENTICATED, "AUTH_001")
        assert_rpc_error(self, lambda: self.refresh(""), grpc.StatusCode.INVALID_ARGUMENT,
                         "VAL_001")
        # The real token still works: nothing was revoked.
        self.refresh(me.refresh_token)


class TokenAttackTest(AuthTestCase):
    """One test per kind of bad access token, each sent to GetMe."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.me = cls.twd.sign_up()
        header = json.loads(base64.urlsafe_b64decode(cls.me.access_token.split(".")[0] + "=="))
        rings = [accounts_pb2.SigningKeys.FromString(value)
                 for cf, key, value in cls.twd.store_records()
                 if cf == "default" and key[0] == SIGNING_KEYS_PREFIX]
        keys = {k.kid: k.secret for ring in rings for k in ring.keys}
        cls.kid = header["kid"]
        cls.secret = keys[cls.kid]

    def header(self, **changes):
        return {"alg": "HS256", "typ": "JWT", "kid": self.kid, **changes}

    def claims(self, **changes):
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": self.me.user_id,
                  "sid": self.me.session_id, "jti": str(uuid.uuid4()), "iat": now - 5,
                  "exp": now + 600}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def test_a_token_forged_with_the_real_key_and_nothing_wrong_is_accepted(self):
        # The control for every test below.
        token = forge(self.header(), self.claims(), self.secret)
        self.assertEqual(self.get_me(bearer(token)).user.id, self.me.user_id)

    def test_missing_token(self):
        self.assert_refused([], "AUTH_002")

    def test_not_a_bearer_token(self):
        self.assert_refused([("authorization", "Basic dXNlcjpwYXNz")], "AUTH_001")
        self.assert_refused(bearer("not.a.jwt"), "AUTH_001")

    def test_alg_none(self):
        self.assert_refused(bearer(forge(self.header(alg="none"), self.claims(), None)),
                            "AUTH_001")

    def test_wrong_alg(self):
        for alg, digest in (("HS512", hashlib.sha512), ("RS256", hashlib.sha256),
                            ("HS384", hashlib.sha384)):
            token = forge(self.header(alg=alg), self.claims(), self.secret, digest)
            self.assert_refused(bearer(token), "AUTH_001")

    def test_bad_signature(self):
        head, body, sig = self.me.access_token.split(".")
        flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
        self.assert_refused(bearer(f"{head}.{body}.{flipped}"), "AUTH_001")
        other_key = forge(self.header(), self.claims(), b"\x01" * 32)
        self.assert_refused(bearer(other_key), "AUTH_001")

    def test_expired(self):
        now = int(time.time())
        token = forge(self.header(), self.claims(iat=now - 1000, exp=now - 100), self.secret)
        self.assert_refused(bearer(token), "AUTH_003")

    def test_missing_exp(self):
        token = forge(self.header(), self.claims(exp=None), self.secret)
        self.assert_refused(bearer(token), "AUTH_001")

    def test_wrong_issuer(self):
        token = forge(self.header(), self.claims(iss="someone-else"), self.secret)
        self.assert_refused(bearer(token), "AUTH_001")

    def test_wrong_audience(self):
        token = forge(self.header(), self.claims(aud="another-app"), self.secret)
        self.assert_refused(bearer(token), "AUTH_001")

    def test_unknown_kid(self):
        token = forge(self.header(kid=str(uuid.uuid4())), self.claims(), self.secret)
        self.assert_refused(bearer(token), "AUTH_001")

    def test_an_oversized_token_is_unauthenticated_and_the_channel_stays_usable(self):
        # Issue 16, item 7a: gRPC core's 8 KiB default refused this with
        # RESOURCE_EXHAUSTED before the gate saw it.
        channel = self.twd.channel()
        auth = auth_service_pb2_grpc.AuthServiceStub(channel)
        for size in (100 * 1024, 4097):
            _, details = assert_rpc_error(
                self, lambda: auth.GetMe(auth_service_pb2.GetMeRequest(),
                                         metadata=bearer("a" * size), timeout=RPC_TIMEOUT_S),
                UNAUTHENTICATED, "AUTH_001")
            self.assertEqual(details.message, "access token is longer than 4096 bytes")
            # The next call on the same channel is served.
            reply = auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=self.me.metadata,
                               timeout=RPC_TIMEOUT_S)
            self.assertEqual(reply.user.id, self.me.user_id)

    def test_session_that_never_existed(self):
        token = forge(self.header(), self.claims(sid=str(uuid.uuid4())), self.secret)
        self.assert_refused(bearer(token), "AUTH_004")

    def test_revoked_session(self):
        other = self.twd.sign_in(self.me.email, self.me.password)
        self.auth.Logout(auth_service_pb2.LogoutRequest(), metadata=other.metadata,
                         timeout=RPC_TIMEOUT_S)
        self.assert_refused(other, "AUTH_004")
        self.assertEqual(self.get_me(self.me).user.id, self.me.user_id)


class DisabledUserTest(AuthTestCase):
    def test_disabled_user_is_refused_at_once_and_enabled_again(self):
        me = self.twd.sign_up()
        refresh_token = me.refresh_token
        admin = admin_service_pb2_grpc.AdminServiceStub(self.twd.operator_channel())
        reply = admin.DisableUser(admin_service_pb2.DisableUserRequest(user_id=me.user_id),
                                  timeout=RPC_TIMEOUT_S)
        self.assertTrue(reply.user.disabled)
        self.assert_refused(me, "AUTH_005")
        assert_rpc_error(self, lambda: self.refresh(refresh_token), UNAUTHENTICATED, "AUTH_005")
        assert_rpc_error(self, lambda: self.login(me.email, me.password), UNAUTHENTICATED,
                         "AUTH_005")
        # A wrong password still says only that: nothing about the account.
        assert_rpc_error(self, lambda: self.login(me.email, "wrong password"), UNAUTHENTICATED,
                         "AUTH_006")

        admin.EnableUser(admin_service_pb2.EnableUserRequest(user_id=me.user_id),
                         timeout=RPC_TIMEOUT_S)
        self.assertFalse(self.get_me(me).user.disabled)
        self.refresh(refresh_token)

    def test_admin_calls_need_the_admin_role(self):
        me = self.twd.sign_up()
        admin = self.twd.stub(admin_service_pb2_grpc.AdminServiceStub)
        request = admin_service_pb2.DisableUserRequest(user_id=me.user_id)
        assert_rpc_error(self, lambda: admin.DisableUser(request, metadata=me.metadata,
                                                         timeout=RPC_TIMEOUT_S),
                         grpc.StatusCode.PERMISSION_DENIED, "AUTH_007")
        self.assertFalse(self.get_me(me).user.disabled)

    def test_the_operator_socket_is_no_user(self):
        me = self.twd.sign_up()
        auth = auth_service_pb2_grpc.AuthServiceStub(self.twd.operator_channel())
        assert_rpc_error(self, lambda: auth.GetMe(auth_service_pb2.GetMeRequest(),
                                                  timeout=RPC_TIMEOUT_S),
                         UNAUTHENTICATED, "AUTH_002")
        reply = auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=me.metadata,
                           timeout=RPC_TIMEOUT_S)
        self.assertEqual(reply.user.id, me.user_id)

    def test_unknown_or_malformed_user_id(self):
        admin = admin_service_pb2_grpc.AdminServiceStub(self.twd.operator_channel())
        assert_rpc_error(self, lambda: admin.DisableUser(
            admin_service_pb2.DisableUserRequest(user_id=str(uuid.uuid4())),
            timeout=RPC_TIMEOUT_S), grpc.StatusCode.NOT_FOUND, "RES_001")
        assert_rpc_error(self, lambda: admin.DisableUser(
            admin_service_pb2.DisableUserRequest(user_id="bob"), timeout=RPC_TIMEOUT_S),
            grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")


class RegisterValidationTest(AuthTestCase):
    def register(self, **fields):
        request = {"email": f"v-{uuid.uuid4().hex[:8]}@example.com",
                   "password": "a fine password", "display_name": "Val"}
        request.update(fields)
        return self.auth.Register(auth_service_pb2.RegisterRequest(**request),
                                  timeout=RPC_TIMEOUT_S), request

    def assert_invalid(self, field, **fields):
        email = fields.setdefault("email", f"v-{uuid.uuid4().hex[:8]}@example.com")
        password = fields.setdefault("password", "a fine password")
        accounts_before = self.account_keys()
        _, details = assert_rpc_error(self, lambda: self.register(**fields),
                                      grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")
        self.assertEqual([f for f, _ in details.field_violations], [field])
        # Nothing was stored.
        self.assertEqual(self.account_keys(), accounts_before)
        return details

    def account_keys(self):
        return {key for cf, key, _ in self.twd.store_records() if key[0] in (USER_PREFIX, 0x10)}

    def test_bad_fields_are_refused_and_store_nothing(self):
        self.assert_invalid("email", email="")
        self.assert_invalid("email", email="no-at-sign.example.com")
        self.assert_invalid("email", email="two@@example.com")
        self.assert_invalid("email", email="a@nodot")
        self.assert_invalid("email", email="sp ace@example.com")
        self.assert_invalid("password", password="short7!")
        details = self.assert_invalid("password", password="Password1")
        self.assertIn("common", details.field_violations[0][1])
        self.assert_invalid("password", password="x" * 1025)
        self.assert_invalid("display_name", display_name="   ")
        self.assert_invalid("display_name", display_name="n" * 101)
        self.assert_invalid("time_zone", time_zone="Mars/Olympus_Mons")
        self.assert_invalid("time_zone", time_zone="../../etc/passwd")
        self.assert_invalid("time_zone", time_zone="America")  # a directory, not a zone
        self.assert_invalid("locale", locale="english please")
        self.assert_invalid("device.platform",
                            device=auth_service_pb2.Device(name="phone", platform=42))

    def test_eight_characters_of_any_script_are_enough(self):
        reply, request = self.register(password="ñandú≈日本語x")
        self.assertEqual(reply.user.email, request["email"])
        self.assertEqual(reply.user.time_zone, "UTC")
        self.assertEqual(reply.user.locale, "en")

    def test_one_email_one_account_even_in_parallel(self):
        email = f"race-{uuid.uuid4().hex[:8]}@example.com"

        def attempt(i):
            try:
                self.register(email=email if i % 2 else email.replace("example.com", "Example.COM"),
                              password=f"password number {i}")
                return "ok"
            except grpc.RpcError as error:
                return error.code()

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(attempt, range(8)))
        self.assertEqual(outcomes.count("ok"), 1, outcomes)
        self.assertEqual(outcomes.count(grpc.StatusCode.ALREADY_EXISTS), 7, outcomes)
        assert_rpc_error(self, lambda: self.register(email=email), grpc.StatusCode.ALREADY_EXISTS,
                         "RES_002")


class EmailCaseTest(AuthTestCase):
    """Issue 16, item 7b: an address is one account whatever its letter case
    (dots and +tags are left alone: what they mean is up to each provider)."""

    def test_every_spelling_reaches_one_account(self):
        tag = uuid.uuid4().hex[:8]
        me = self.twd.sign_up(email=f"  Case-{tag}@Example.COM ")
        self.assertEqual(self.get_me(me).user.email, f"case-{tag}@example.com")
        for spelling in (f"case-{tag}@example.com", f"CASE-{tag}@EXAMPLE.COM",
                         f"Case-{tag}@example.com"):
            self.assertEqual(self.login(spelling, me.password).user.id, me.user_id)

    def test_another_case_of_a_taken_address_is_already_taken(self):
        tag = uuid.uuid4().hex[:8]
        self.twd.sign_up(email=f"Case-{tag}@example.com")
        for spelling in (f"case-{tag}@example.com", f"CASE-{tag}@example.com"):
            assert_rpc_error(self, lambda: self.auth.Register(auth_service_pb2.RegisterRequest(
                email=spelling, password="another fine password", display_name="Other"),
                timeout=RPC_TIMEOUT_S), grpc.StatusCode.ALREADY_EXISTS, "RES_002")
        admin = admin_service_pb2_grpc.AdminServiceStub(self.twd.operator_channel())
        assert_rpc_error(self, lambda: admin.CreateUser(admin_service_pb2.CreateUserRequest(
            email=f"CASE-{tag}@Example.com", password="another fine password",
            role=auth_service_pb2.ROLE_USER),
            timeout=RPC_TIMEOUT_S), grpc.StatusCode.ALREADY_EXISTS, "RES_002")
        # Not the same address: a +tag and a dot are kept as typed.
        for other in (f"case-{tag}+x@example.com", f"case.-{tag}@example.com"):
            self.twd.sign_up(email=other)


if __name__ == "__main__":
    unittest.main(verbosity=2)
