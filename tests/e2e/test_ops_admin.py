"""
AdminService's queries and procedures (server/services/admin_service.c),
through the generated stubs on the operator socket and through `twd admin`
over the network with an admin's token and TLS: answers that follow the
data the test made, every bad input refused with its field, a user's token
refused, pages of users with filters, and a migration rolled back only in
maintenance mode.
"""
import datetime
import os
import subprocess
import tempfile
import unittest

import grpc

from twd_harness import RPC_TIMEOUT_S, TWD, Twd, TwdTestCase, assert_rpc_error
from test_account_admin import make_certificate
from tw.v1 import (admin_service_pb2 as pb, admin_service_pb2_grpc as pb_grpc,  # noqa: E402
                   focus_service_pb2 as focus, focus_service_pb2_grpc as focus_grpc,
                   health_log_service_pb2 as hl, health_log_service_pb2_grpc as hl_grpc,
                   task_service_pb2, task_service_pb2_grpc)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


class QueriesTest(TwdTestCase):
    def setUp(self):
        self.admin = pb_grpc.AdminServiceStub(self.twd.operator_channel())

    def call(self, method, **fields):
        rpc = getattr(self.admin, method)
        request = getattr(pb, method + "Request")(**fields)
        return rpc(request, timeout=RPC_TIMEOUT_S)

    def test_statistics_follow_what_users_did(self):
        before = self.call("GetUserStats")
        me = self.twd.sign_up()
        users = self.call("GetUserStats", days=3)
        self.assertEqual(users.user_count, before.user_count + 1)
        self.assertEqual(users.registrations_last_24h, before.registrations_last_24h + 1)
        self.assertEqual(len(users.registrations_per_day), 3)
        today = datetime.datetime.now(datetime.timezone.utc).date()
        first = users.registrations_per_day[0]
        self.assertEqual((first.date.year, first.date.month, first.date.day),
                         (today.year, today.month, today.day))

        tasks = task_service_pb2_grpc.TaskServiceStub(self.twd.channel())
        rate_before = self.call("GetTaskCompletionRate")
        ids = [tasks.CreateTask(task_service_pb2.CreateTaskRequest(
            task=task_service_pb2.Task(title=f"t{i}")), metadata=me.metadata,
            timeout=RPC_TIMEOUT_S).task.id for i in range(4)]
        tasks.CompleteTask(task_service_pb2.CompleteTaskRequest(id=ids[0]), metadata=me.metadata,
                           timeout=RPC_TIMEOUT_S)
        rate = self.call("GetTaskCompletionRate", days=7)
        self.assertEqual(rate.tasks_created, rate_before.tasks_created + 4)
        self.assertEqual(rate.tasks_completed, rate_before.tasks_completed + 1)

        logs = hl_grpc.HealthLogServiceStub(self.twd.channel())
        activity_before = {t.type: t.count for t in self.call("GetHealthLogActivity").entries}
        now = datetime.datetime.now(datetime.timezone.utc)
        for ml in (250, 330):
            entry = hl.HealthLog(water=hl.HealthWater(volume_ml=ml))
            entry.start_time.FromDatetime(now)
            logs.CreateHealthLog(hl.CreateHealthLogRequest(health_log=entry),
                                 metadata=me.metadata, timeout=RPC_TIMEOUT_S)
        activity = {t.type: t.count for t in self.call("GetHealthLogActivity").entries}
        water = [k for k in activity if "water" in k.lower()]
        self.assertEqual(len(water), 1, activity)
        self.assertEqual(activity[water[0]], activity_before.get(water[0], 0) + 2)

        sessions = focus_grpc.FocusServiceStub(self.twd.channel())
        focus_before = {t.template: t for t in self.call("GetFocusCompletion").templates}
        s = sessions.StartFocusSession(focus.StartFocusSessionRequest(template_id="pomodoro"),
                                       metadata=me.metadata, timeout=RPC_TIMEOUT_S).session
        sessions.RecordDistraction(focus.RecordDistractionRequest(
            session_id=s.id, distraction=focus.FocusDistraction(
                type=focus.FOCUS_DISTRACTION_TYPE_PHONE)), metadata=me.metadata,
            timeout=RPC_TIMEOUT_S)
        sessions.AbandonFocusSession(focus.AbandonFocusSessionRequest(session_id=s.id),
                                     metadata=me.metadata, timeout=RPC_TIMEOUT_S)
        templates = {t.template: t for t in self.call("GetFocusCompletion").templates}
        pomodoro, was = templates["pomodoro"], focus_before.get("pomodoro")
        self.assertEqual(pomodoro.sessions, (was.sessions if was else 0) + 1)
        self.assertEqual(pomodoro.abandoned, (was.abandoned if was else 0) + 1)
        distractions = {t.type: t.count for t in self.call("GetDistractionPatterns").distractions}
        self.assertGreaterEqual(sum(v for k, v in distractions.items() if "phone" in k), 1)

        slowest = self.call("GetSlowestMethods", limit=3).methods
        self.assertLessEqual(len(slowest), 3)
        self.assertTrue(all(m.calls > 0 for m in slowest))
        self.assertEqual(list(slowest), sorted(slowest, key=lambda m: -m.p99_ms))

    def test_bad_input_names_its_field(self):
        cases = [
            ("GetUserStats", {"days": 401}, "days"),
            ("GetTaskCompletionRate", {"days": -1}, "days"),
            ("GetSlowestMethods", {"limit": 101}, "limit"),
            ("LookupUser", {}, "user_id"),
            ("LookupUser", {"user_id": "not-a-uuid"}, "user_id"),
            ("LookupUser", {"email": "no at sign"}, "email"),
            ("ListUsers", {"page_size": -1}, "page_size"),
            ("ListUsers", {"page_token": "forged"}, "page_token"),
            ("ListUsers", {"filter": 7}, "filter"),
            ("DisableUser", {}, "user_id"),
            ("ListUserSessions", {"email": ""}, "user_id"),
            ("VerifyBackup", {"directory": "relative"}, "directory"),
            ("RestoreBackup", {"directory": "/tmp/x", "target_data_dir": "rel"},
             "target_data_dir"),
        ]
        for method, fields, field in cases:
            with self.subTest(method=method, fields=fields):
                _, details = assert_rpc_error(self, lambda: self.call(method, **fields), INVALID,
                                              "VAL_003" if field == "page_token" else "VAL_001")
                self.assertEqual(details.field_violations[0][0], field)
        assert_rpc_error(self, lambda: self.call("LookupUser", email="nobody@example.com"),
                         grpc.StatusCode.NOT_FOUND, "RES_001")

    def test_a_users_token_is_refused(self):
        me = self.twd.sign_up()
        admin = pb_grpc.AdminServiceStub(self.twd.channel())
        assert_rpc_error(self, lambda: admin.GetUserStats(pb.GetUserStatsRequest(),
                                                          metadata=me.metadata,
                                                          timeout=RPC_TIMEOUT_S),
                         grpc.StatusCode.PERMISSION_DENIED, "AUTH_007")

    def test_users_page_newest_first_and_filter_by_flag(self):
        made = [self.twd.sign_up() for _ in range(5)]
        self.call("DisableUser", email=made[1].email)
        self.call("DisableUser", user_id=made[3].user_id)
        seen, token = [], ""
        while True:
            page = self.call("ListUsers", page_size=2, page_token=token)
            seen += [u.id for u in page.users]
            token = page.next_page_token
            if not token:
                break
        mine = [u for u in seen if u in {m.user_id for m in made}]
        self.assertEqual(mine, [m.user_id for m in reversed(made)])
        disabled = [u.id for u in self.call("ListUsers", filter=pb.USER_FILTER_DISABLED).users]
        self.assertEqual([u for u in disabled if u in {m.user_id for m in made}],
                         [made[3].user_id, made[1].user_id])
        assert_rpc_error(self, lambda: self.call("ListUsers", filter=pb.USER_FILTER_ADMIN,
                                                 page_token=page.next_page_token or "x"),
                         INVALID, "VAL_003")
        self.call("EnableUser", email=made[1].email)
        self.call("EnableUser", email=made[3].email)
        found = self.call("LookupUser", email=made[2].email).user
        self.assertEqual(found.id, made[2].user_id)
        again = self.twd.sign_in(made[2].email, made[2].password)
        sessions = self.call("ListUserSessions", user_id=made[2].user_id).sessions
        self.assertEqual([s.id for s in sessions], [again.session_id, made[2].session_id])

    def test_a_migration_goes_down_only_in_maintenance_mode(self):
        last = self.call("GetVersion").known_migration
        assert_rpc_error(self, lambda: self.call("MigrateDown", to=last - 1),
                         grpc.StatusCode.FAILED_PRECONDITION, "STATE_001")
        self.call("SetMaintenanceMode", enabled=True)
        try:
            down = self.call("MigrateDown", to=last - 1)
            self.assertEqual(list(down.reverted), [last])
            self.assertEqual([m.applied for m in down.migrations], [True] * (last - 1) + [False])
            self.assertEqual(self.call("MigrateUp").applied, 1)
        finally:
            self.call("SetMaintenanceMode", enabled=False)
        config = {s.name: s.value for s in self.call("GetConfig").settings}
        self.assertEqual(config["data_dir"], self.twd.data_dir)
        self.assertEqual(config["s3_secret_access_key"], "")
        version = self.call("GetVersion")
        self.assertEqual(version.known_migration, version.store_migration)


class RemoteAdminTest(unittest.TestCase):
    def test_twd_admin_over_tls_with_an_admins_token(self):
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = make_certificate(tmp)
            with open(cert, "rb") as f:
                root = f.read()
            with Twd(env={"TW_TLS_CERT": cert, "TW_TLS_KEY": key}, tls_root=root) as twd:
                password = os.path.join(tmp, "password")
                with open(password, "w") as f:
                    f.write("a long admin password\n")

                def twd_run(*args):
                    with open(password) as stdin:
                        return subprocess.run([TWD, *args], stdin=stdin, capture_output=True,
                                              text=True, timeout=60)
                made = twd_run("admin", "create", "--email", "root@example.com", "--data-dir",
                               twd.data_dir)
                self.assertEqual(made.returncode, 0, made.stderr)
                remote = ("--server", f"localhost:{twd.port}", "--ca-file", cert)
                login = twd_run("admin", "login", "--email", "root@example.com", *remote)
                self.assertEqual(login.returncode, 0, login.stderr)
                token = os.path.join(tmp, "token")
                with open(token, "w") as f:
                    f.write(login.stdout)
                stats = twd_run("admin", "stats", "users", "--json", *remote, "--token-file",
                                token)
                self.assertEqual(stats.returncode, 0, stats.stderr)
                self.assertIn('"user_count": "1"', stats.stdout)
                no_token = twd_run("admin", "version", *remote)
                self.assertEqual(no_token.returncode, 2)
                self.assertIn("needs an admin's access token", no_token.stderr)
                with open(token, "w") as f:
                    f.write("not-a-token")
                bad = twd_run("admin", "version", *remote, "--token-file", token)
                self.assertEqual(bad.returncode, 1)
                self.assertIn("(AUTH_001)", bad.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
