"""
What a signed-in user does with their own account: update the profile
(field mask, time zone from the tz database), change the password (other
sessions end), list and revoke sessions, delete the account (a durable job
that removes every key of the user, blobs included, and finishes across a
restart); and that one user can never read or change another's profile or
sessions.
"""
import hashlib
import os
import signal
import unittest
import uuid

import grpc
from google.protobuf import field_mask_pb2

from twd_harness import RPC_TIMEOUT_S, Twd, TwdTestCase, assert_rpc_error, wait_until
from tw.v1 import auth_service_pb2, auth_service_pb2_grpc  # noqa: E402

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
DELETION_TIMEOUT_S = 30


def mask(*paths):
    return field_mask_pb2.FieldMask(paths=list(paths))


class ProfileTest(TwdTestCase):
    def setUp(self):
        self.auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)

    def update(self, account, user, paths):
        return self.auth.UpdateMe(auth_service_pb2.UpdateMeRequest(user=user,
                                                                   update_mask=mask(*paths)),
                                  metadata=account.metadata, timeout=RPC_TIMEOUT_S).user

    def me(self, account):
        return self.auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=account.metadata,
                               timeout=RPC_TIMEOUT_S).user

    def test_update_changes_only_the_masked_fields(self):
        me = self.twd.sign_up(display_name="Before", time_zone="Europe/Paris", locale="fr")
        changes = auth_service_pb2.User(display_name="After", time_zone="Asia/Tokyo",
                                        locale="ja", day_start_hour=4, email="x@evil.com",
                                        role=auth_service_pb2.ROLE_ADMIN)
        user = self.update(me, changes, ["time_zone", "day_start_hour"])
        self.assertEqual((user.display_name, user.time_zone, user.locale, user.day_start_hour),
                         ("Before", "Asia/Tokyo", "fr", 4))
        user = self.update(me, changes, ["*"])
        self.assertEqual((user.display_name, user.locale), ("After", "ja"))
        # Output-only fields never change through UpdateMe.
        self.assertEqual(user.role, auth_service_pb2.ROLE_USER)
        self.assertNotEqual(user.email, "x@evil.com")
        self.assertEqual(self.me(me), user)
        # Midnight is a day-start hour like any other.
        self.assertEqual(self.update(me, auth_service_pb2.User(), ["day_start_hour"])
                         .day_start_hour, 0)

    def test_bad_updates_are_refused_and_change_nothing(self):
        me = self.twd.sign_up(time_zone="Europe/Paris")
        before = self.me(me)
        cases = [
            (["time_zone"], auth_service_pb2.User(time_zone="Europe/Atlantis"), INVALID,
             "VAL_001", "user.time_zone"),
            (["time_zone"], auth_service_pb2.User(time_zone="posix/../../../etc/passwd"),
             INVALID, "VAL_001", "user.time_zone"),
            (["day_start_hour"], auth_service_pb2.User(day_start_hour=24), INVALID, "VAL_001",
             "user.day_start_hour"),
            (["locale"], auth_service_pb2.User(locale="x"), INVALID, "VAL_001", "user.locale"),
            (["display_name"], auth_service_pb2.User(display_name=""), INVALID, "VAL_001",
             "user.display_name"),
            # An empty mask is refused as every Update refuses it (kit/mask.h).
            ([], auth_service_pb2.User(display_name="No mask"), INVALID, "VAL_004",
             "update_mask"),
            (["email"], auth_service_pb2.User(email="new@example.com"), INVALID, "VAL_004", None),
            (["display_name", "role"], auth_service_pb2.User(display_name="Sneaky"), INVALID,
             "VAL_004", None),
        ]
        for paths, user, code, reason, field in cases:
            _, details = assert_rpc_error(self, lambda: self.update(me, user, paths), code,
                                          reason)
            if field:
                self.assertEqual([f for f, _ in details.field_violations], [field], paths)
        # Every bad field is reported, not only the first.
        _, details = assert_rpc_error(
            self, lambda: self.update(me, auth_service_pb2.User(time_zone="Europe/Atlantis",
                                                                day_start_hour=24),
                                      ["time_zone", "day_start_hour"]), INVALID, "VAL_001")
        self.assertEqual([f for f, _ in details.field_violations],
                         ["user.time_zone", "user.day_start_hour"])
        self.assertEqual(self.me(me), before)

    def test_change_password_ends_the_other_sessions(self):
        me = self.twd.sign_up()
        other = self.twd.sign_in(me.email, me.password)
        third = self.twd.sign_in(me.email, me.password)
        new_password = "a brand new password"
        assert_rpc_error(self, lambda: self.auth.ChangePassword(
            auth_service_pb2.ChangePasswordRequest(current_password="wrong password",
                                                   new_password=new_password),
            metadata=me.metadata, timeout=RPC_TIMEOUT_S),
            grpc.StatusCode.PERMISSION_DENIED, "AUTH_008")
        assert_rpc_error(self, lambda: self.auth.ChangePassword(
            auth_service_pb2.ChangePasswordRequest(current_password=me.password,
                                                   new_password="password"),
            metadata=me.metadata, timeout=RPC_TIMEOUT_S), INVALID, "VAL_001")
        self.me(other)  # nothing changed so far
        reply = self.auth.ChangePassword(
            auth_service_pb2.ChangePasswordRequest(current_password=me.password,
                                                   new_password=new_password),
            metadata=me.metadata, timeout=RPC_TIMEOUT_S)
        self.assertEqual(reply.revoked_session_count, 2)
        self.assertEqual(self.me(me).id, me.user_id)
        for gone in (other, third):
            assert_rpc_error(self, lambda: self.me(gone), UNAUTHENTICATED, "AUTH_004")
        assert_rpc_error(self, lambda: self.twd.sign_in(me.email, me.password), UNAUTHENTICATED,
                         "AUTH_006")
        self.twd.sign_in(me.email, new_password)


class SessionListTest(TwdTestCase):
    def setUp(self):
        self.auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)

    def list(self, account, **request):
        return self.auth.ListSessions(auth_service_pb2.ListSessionsRequest(**request),
                                      metadata=account.metadata, timeout=RPC_TIMEOUT_S)

    def test_sessions_list_newest_first_by_pages_and_revoke(self):
        me = self.twd.sign_up(device=auth_service_pb2.Device(
            name="Ana's iPhone", platform=auth_service_pb2.PLATFORM_IOS))
        laptop = self.twd.sign_in(me.email, me.password, device=auth_service_pb2.Device(
            name="Work laptop", platform=auth_service_pb2.PLATFORM_DESKTOP))
        web = self.twd.sign_in(me.email, me.password, device=auth_service_pb2.Device(
            name="", platform=auth_service_pb2.PLATFORM_WEB))
        page = self.list(me, page_size=2)
        self.assertEqual([s.id for s in page.sessions], [web.session_id, laptop.session_id])
        self.assertTrue(page.next_page_token)
        rest = self.list(me, page_size=2, page_token=page.next_page_token)
        self.assertEqual([s.id for s in rest.sessions], [me.session_id])
        self.assertEqual(rest.next_page_token, "")
        phone = rest.sessions[0]
        self.assertTrue(phone.current)
        self.assertFalse(any(s.current for s in page.sessions))
        self.assertEqual((phone.device_name, phone.platform),
                         ("Ana's iPhone", auth_service_pb2.PLATFORM_IOS))
        self.assertGreater(phone.last_seen_time.seconds, 0)
        self.assertGreater(phone.expire_time.seconds, phone.last_seen_time.seconds)

        self.auth.RevokeSession(auth_service_pb2.RevokeSessionRequest(session_id=laptop.session_id),
                                metadata=me.metadata, timeout=RPC_TIMEOUT_S)
        assert_rpc_error(self, lambda: self.list(laptop), UNAUTHENTICATED, "AUTH_004")
        self.assertEqual([s.id for s in self.list(me).sessions], [web.session_id, me.session_id])
        assert_rpc_error(self, lambda: self.auth.RevokeSession(
            auth_service_pb2.RevokeSessionRequest(session_id=laptop.session_id),
            metadata=me.metadata, timeout=RPC_TIMEOUT_S), grpc.StatusCode.NOT_FOUND, "RES_001")
        assert_rpc_error(self, lambda: self.auth.RevokeSession(
            auth_service_pb2.RevokeSessionRequest(session_id="laptop"),
            metadata=me.metadata, timeout=RPC_TIMEOUT_S), INVALID, "VAL_001")
        assert_rpc_error(self, lambda: self.list(me, page_size=-1), INVALID, "VAL_001")

    def test_one_user_cannot_touch_another_users_sessions_or_profile(self):
        alice, bob = self.twd.sign_up(), self.twd.sign_up()
        # Bob's session id and page token mean nothing with Alice's token.
        assert_rpc_error(self, lambda: self.auth.RevokeSession(
            auth_service_pb2.RevokeSessionRequest(session_id=bob.session_id),
            metadata=alice.metadata, timeout=RPC_TIMEOUT_S), grpc.StatusCode.NOT_FOUND, "RES_001")
        self.twd.sign_in(bob.email, bob.password)
        bob_page = self.list(bob, page_size=1)
        assert_rpc_error(self, lambda: self.list(alice, page_token=bob_page.next_page_token),
                         INVALID, "VAL_003")
        self.assertEqual([s.id for s in self.list(alice).sessions], [alice.session_id])
        # Profiles: every call acts on the caller's own account only.
        self.auth.UpdateMe(auth_service_pb2.UpdateMeRequest(
            user=auth_service_pb2.User(id=bob.user_id, display_name="Hacked"),
            update_mask=mask("display_name")), metadata=alice.metadata, timeout=RPC_TIMEOUT_S)
        bob_me = self.auth.GetMe(auth_service_pb2.GetMeRequest(), metadata=bob.metadata,
                                 timeout=RPC_TIMEOUT_S).user
        self.assertEqual(bob_me.display_name, "Test User")
        self.assertEqual(self.list(bob).sessions[-1].id, bob.session_id)


def user_traces(twd, user_id, email):
    """Every stored record whose key or value mentions the user (id as bytes
    or text, or email), in any column family."""
    raw_id = uuid.UUID(user_id).bytes
    # Login failures are kept under the email's SHA-256.
    email_hash = hashlib.sha256(email.encode()).hexdigest().encode()
    needles = (raw_id, user_id.encode(), email.encode(), email_hash)
    return [(cf, key.hex()) for cf, key, value in twd.store_records()
            if any(n in key or n in value for n in needles)]


class DeleteAccountTest(unittest.TestCase):
    def make_user_with_data(self, twd):
        auth = twd.stub(auth_service_pb2_grpc.AuthServiceStub)
        me = twd.sign_up(email=f"del-{uuid.uuid4().hex[:8]}@example.com")
        twd.sign_in(me.email, me.password)
        auth.UpdateMe(auth_service_pb2.UpdateMeRequest(user=auth_service_pb2.User(locale="de"),
                                                       update_mask=mask("locale")),
                      metadata=me.metadata, timeout=RPC_TIMEOUT_S)
        # A failed sign-in leaves a record under the email.
        assert_rpc_error(self, lambda: twd.sign_in(me.email, "wrong password"), UNAUTHENTICATED,
                         "AUTH_006")
        # Audio the voice feature would have stored: blobs/<user id>/...
        note_dir = os.path.join(twd.data_dir, "blobs", me.user_id)
        os.makedirs(note_dir)
        with open(os.path.join(note_dir, "note-1"), "wb") as f:
            f.write(b"RIFF....WAVE")
        return auth, me

    def delete(self, auth, me, password):
        return auth.DeleteAccount(auth_service_pb2.DeleteAccountRequest(password=password),
                                  metadata=me.metadata, timeout=RPC_TIMEOUT_S)

    def test_delete_account_removes_every_key_of_the_user(self):
        with Twd() as twd:
            auth, me = self.make_user_with_data(twd)
            bystander = twd.sign_up()
            self.assertTrue(user_traces(twd, me.user_id, me.email))
            assert_rpc_error(self, lambda: self.delete(auth, me, "wrong password"),
                             grpc.StatusCode.PERMISSION_DENIED, "AUTH_008")
            assert_rpc_error(self, lambda: self.delete(auth, me, ""), INVALID, "VAL_001")
            self.delete(auth, me, me.password)
            assert_rpc_error(self, lambda: auth.GetMe(auth_service_pb2.GetMeRequest(),
                                                      metadata=me.metadata,
                                                      timeout=RPC_TIMEOUT_S),
                             UNAUTHENTICATED, "AUTH_004")
            wait_until(lambda: not user_traces(twd, me.user_id, me.email), DELETION_TIMEOUT_S,
                       "no key of the deleted user left")
            assert_rpc_error(self, lambda: twd.sign_in(me.email, me.password), UNAUTHENTICATED,
                             "AUTH_006")
            self.assertFalse(os.path.exists(os.path.join(twd.data_dir, "blobs", me.user_id)))
            twd.wait_for_call_log(method="/tw.v1.AuthService/DeleteAccount", status="OK")
            # The other user is untouched, and the email is free again.
            self.assertTrue(user_traces(twd, bystander.user_id, bystander.email))
            twd.sign_up(email=me.email)

    def test_deletion_finishes_after_a_crash_and_restart(self):
        # No job workers: the deletion job waits in the store when twd dies.
        with Twd(env={"TW_JOB_THREADS": "0"}) as twd:
            auth, me = self.make_user_with_data(twd)
            self.delete(auth, me, me.password)
            self.assertTrue(user_traces(twd, me.user_id, me.email), "deleted without workers?")
            data_dir = twd.data_dir
            twd.stop(signal.SIGKILL)
            with Twd(data_dir=data_dir) as restarted:
                wait_until(lambda: not user_traces(restarted, me.user_id, me.email),
                           DELETION_TIMEOUT_S, "the deletion job to finish after a restart")
                self.assertFalse(os.path.exists(os.path.join(data_dir, "blobs", me.user_id)))
                restarted.wait_for_call_log(method="/grpc.health.v1.Health/Check")


if __name__ == "__main__":
    unittest.main(verbosity=2)
