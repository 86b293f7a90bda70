"""
SyncService through generated stubs, as two devices of one user use it:
device A works offline and pushes its edits in one batch while device B
watches, and both end with the same tasks; edits made on both sides merge
field by field; replayed pushes change nothing; a pushed edit of a task
deleted on the server is a conflict, of an id never had a rejection; a
Watch stream replays what it missed after a reconnect, tells a client that
fell too far behind to Pull, and ends cleanly when twd stops. Tokens belong to one user. Health
logs, focus sessions and templates and the profile travel the same way,
and so does the focus time a completed session adds to its task.
"""
import datetime
import unittest

import grpc

from google.protobuf import duration_pb2
from task_client import (FAST_TWD_ENV, S, T, UserView, apply_changes, mask,  # noqa: E402
                         task_records, timestamp, uuid7)
from twd_harness import RPC_TIMEOUT_S, Twd, TwdTestCase, assert_rpc_error
from tw.v1 import auth_service_pb2, auth_service_pb2_grpc  # noqa: E402
from tw.v1 import focus_service_pb2 as fs  # noqa: E402
from tw.v1 import focus_service_pb2_grpc as fs_grpc  # noqa: E402
from tw.v1 import health_log_service_pb2 as hl  # noqa: E402
from tw.v1 import health_log_service_pb2_grpc as hl_grpc  # noqa: E402


def edit_time(seconds_ago):
    return timestamp(datetime.datetime.now(datetime.timezone.utc) -
                     datetime.timedelta(seconds=seconds_ago))


def server_state(view):
    """id -> Task, as ListTasks shows the user's tasks."""
    return {t.id: t for t in view.list_all(page_size=500)[0]}


class SyncServiceTest(TwdTestCase):
    twd_env = FAST_TWD_ENV

    def setUp(self):
        account = self.twd.sign_up(time_zone="Europe/Berlin")
        self.a = UserView(self.twd, account)
        self.b = UserView(self.twd, self.twd.sign_in(account.email, account.password))

    def test_two_devices_converge(self):
        shared = self.a.create("Shared", notes="from A")
        doomed = self.a.create("To delete")
        # Both devices start with a full sync.
        a_changes, a_token = self.a.pull_all()
        a_state = apply_changes({}, a_changes)
        b_changes, b_token = self.b.pull_all()
        b_state = apply_changes({}, b_changes)
        self.assertEqual(set(a_state), {shared.id, doomed.id})
        self.assertEqual(a_state, b_state)

        watch = self.b.watch(b_token)
        watch.next()  # the stream is live
        # A, offline, made four edits; it pushes them when back online.
        new_id = uuid7()
        results = self.a.push(
            S.Mutation(mutation_id=uuid7(), edit_time=edit_time(60),
                       create_task=T.Task(id=new_id, title="Made offline", priority=1)),
            S.Mutation(mutation_id=uuid7(), edit_time=edit_time(50),
                       update_task=S.TaskPatch(task=T.Task(id=shared.id, title="Renamed by A"),
                                               update_mask=mask("title"),
                                               base_etag=shared.etag)),
            S.Mutation(mutation_id=uuid7(), edit_time=edit_time(40),
                       complete_task=S.TaskCompletionMutation(task_id=new_id)),
            S.Mutation(mutation_id=uuid7(), edit_time=edit_time(30),
                       delete_task=S.TaskDeletion(task_id=doomed.id)))
        self.assertEqual([r.outcome for r in results], [S.MUTATION_OUTCOME_APPLIED] * 4)
        self.assertEqual(results[2].completion.task_id, new_id)

        # B sees all of it live.
        def caught_up(changes):
            seen = apply_changes(dict(b_state), changes)
            return (doomed.id not in seen and new_id in seen and
                    seen[new_id].status == T.TASK_STATUS_DONE and
                    seen[shared.id].title == "Renamed by A")
        changes, b_token = watch.changes_until(caught_up)
        b_state = apply_changes(b_state, changes)
        self.assertTrue(any(c.resource_type == "task_completion" for c in changes))
        watch.cancel()

        # A pulls what it pushed (and anything else); both agree with the server.
        a_changes, a_token = self.a.pull_all(a_token)
        a_state = apply_changes(a_state, a_changes)
        self.assertEqual(a_state, b_state)
        self.assertEqual(a_state, server_state(self.a))

    def test_edits_on_both_sides_merge_field_by_field(self):
        task = self.a.create("Original", notes="original notes", priority=3)
        # Both devices edit offline from the same version; B's title edit is
        # the later one, A alone edits the notes, both edit the priority and
        # A's edit is the later one there.
        b_result = self.b.push(S.Mutation(
            mutation_id=uuid7(), edit_time=edit_time(10),
            update_task=S.TaskPatch(task=T.Task(id=task.id, title="B's title", priority=2),
                                    update_mask=mask("title", "priority"), base_etag=task.etag)))[0]
        self.assertEqual(b_result.outcome, S.MUTATION_OUTCOME_APPLIED)
        a_result = self.a.push(S.Mutation(
            mutation_id=uuid7(), edit_time=edit_time(5),
            update_task=S.TaskPatch(task=T.Task(id=task.id, title="A's title", notes="A's notes",
                                                priority=1),
                                    update_mask=mask("title", "notes", "priority"),
                                    base_etag=task.etag)))[0]
        # Every field was edited after B, so A's later edits win them all...
        self.assertEqual(a_result.outcome, S.MUTATION_OUTCOME_CONFLICT)
        self.assertEqual(sorted(a_result.conflicting_fields), ["priority", "title"])
        self.assertEqual(list(a_result.server_won_fields), [])
        self.assertEqual(a_result.task.title, "A's title")
        # ...except where B's edit was later: an edit made 20 s ago loses.
        late = self.b.push(S.Mutation(
            mutation_id=uuid7(), edit_time=edit_time(20),
            update_task=S.TaskPatch(task=T.Task(id=task.id, title="Old", notes="Old notes"),
                                    update_mask=mask("title", "notes"), base_etag=task.etag)))[0]
        self.assertEqual(late.outcome, S.MUTATION_OUTCOME_CONFLICT)
        self.assertEqual(sorted(late.server_won_fields), ["notes", "title"])
        final = self.a.get(task.id)
        self.assertEqual((final.title, final.notes, final.priority), ("A's title", "A's notes", 1))
        self.assertEqual(late.task, final)  # the server's version comes back

    def test_replayed_pushes_change_nothing(self):
        task = self.a.create("Base")
        batch = [
            S.Mutation(mutation_id=uuid7(), create_task=T.Task(id=uuid7(), title="Once")),
            S.Mutation(mutation_id=uuid7(), complete_task=S.TaskCompletionMutation(
                task_id=task.id)),
            S.Mutation(mutation_id=uuid7(), create_task=T.Task(id=uuid7(), title="")),
            S.Mutation(mutation_id=uuid7(), update_task=S.TaskPatch(
                task=T.Task(id=uuid7(), title="Nobody"), update_mask=mask("title"))),
            S.Mutation(mutation_id=uuid7(), update_task=S.TaskPatch(
                task=T.Task(id=task.id), update_mask=mask("colour"))),
        ]
        first = self.a.push(*batch)
        self.assertEqual([r.outcome for r in first],
                         [S.MUTATION_OUTCOME_APPLIED, S.MUTATION_OUTCOME_APPLIED,
                          S.MUTATION_OUTCOME_REJECTED, S.MUTATION_OUTCOME_REJECTED,
                          S.MUTATION_OUTCOME_REJECTED])
        self.assertEqual(first[2].error_reason, "VAL_001")
        self.assertEqual([v.field for v in first[2].field_violations], ["create_task.title"])
        self.assertEqual(first[3].error_reason, "RES_001")
        self.assertEqual(first[4].error_reason, "VAL_004")
        self.assertEqual(first[4].field_violations[0].field, "update_task.update_mask")
        _, token = self.a.pull_all()
        records = task_records(self.twd)
        again = self.a.push(*batch)
        self.assertTrue(all(r.replayed for r in again))
        for one, two in zip(first, again):
            two.replayed = False
            self.assertEqual(one, two)
        self.assertEqual(self.a.pull_all(token)[0], [])
        # Only the replay records' reads happened: nothing was written.
        self.assertEqual(task_records(self.twd), records)
        self.assertEqual(self.a.get(task.id).completed_occurrence_count, 1)

    def test_pushes_tell_a_deleted_task_from_one_never_had(self):
        # Issue 16: a task this user deleted (its tombstone is in the
        # user's change log) is a CONFLICT for an update or a completion,
        # with no server version: the client drops its copy. Deleting it
        # again is APPLIED (a retried or doubled delete is not refused). An
        # id the server never had for this user, or another user's task,
        # is REJECTED with RES_001 for every mutation, and writes nothing.
        gone = self.a.create("Deleted on B")
        child = self.a.create("Its subtask", parent_id=gone.id)
        self.b.t("DeleteTask", T.DeleteTaskRequest(id=gone.id, force=True))
        owner = UserView(self.twd, self.twd.sign_up())
        other = owner.create("Someone else's")

        def mutations(task_id):
            return [S.Mutation(mutation_id=uuid7(), update_task=S.TaskPatch(
                        task=T.Task(id=task_id, title="Edited offline"),
                        update_mask=mask("title"))),
                    S.Mutation(mutation_id=uuid7(), complete_task=S.TaskCompletionMutation(
                        task_id=task_id)),
                    S.Mutation(mutation_id=uuid7(), delete_task=S.TaskDeletion(
                        task_id=task_id))]

        for task_id in (gone.id, child.id):
            results = self.a.push(*mutations(task_id))
            self.assertEqual([r.outcome for r in results],
                             [S.MUTATION_OUTCOME_CONFLICT, S.MUTATION_OUTCOME_CONFLICT,
                              S.MUTATION_OUTCOME_APPLIED], task_id)
            self.assertTrue(all(not r.HasField("task") and not r.error_reason
                                for r in results), results)
        for task_id in (uuid7(), other.id):
            records = task_records(self.twd)
            _, token = self.a.pull_all()
            results = self.a.push(*mutations(task_id))
            self.assertEqual([r.outcome for r in results], [S.MUTATION_OUTCOME_REJECTED] * 3)
            self.assertEqual([r.error_reason for r in results], ["RES_001"] * 3)
            self.assertEqual(self.a.pull_all(token)[0], [])
            # Only the three results are remembered (under their mutation ids).
            self.assertEqual(len(task_records(self.twd) - records), 3)
        self.assertEqual(owner.get(other.id), other)

    def test_watch_replays_after_a_reconnect(self):
        _, token = self.b.pull_all()
        watch = self.b.watch(token)
        first = self.a.create("Seen live")
        changes, token = watch.changes_until(lambda cs: any(c.resource_id == first.id
                                                            for c in cs))
        watch.cancel()
        # Disconnected: three changes happen.
        missed = [self.a.create(f"Missed {i}").id for i in range(3)]
        watch = self.b.watch(token)
        replayed, token = watch.changes_until(
            lambda cs: set(missed) <= {c.resource_id for c in cs})
        self.assertNotIn(first.id, {c.resource_id for c in replayed})
        later = self.a.create("After the reconnect")
        live, _ = watch.changes_until(lambda cs: any(c.resource_id == later.id for c in cs))
        watch.cancel()

    def test_a_watch_too_far_behind_is_told_to_pull(self):
        _, token = self.b.pull_all()
        for start in range(0, 1001, 500):
            self.a.push(*[S.Mutation(mutation_id=uuid7(),
                                     create_task=T.Task(id=uuid7(), title=f"bulk {i}"))
                          for i in range(start, min(start + 500, 1001))])
        watch = self.b.watch(token)
        end = watch.end()
        self.assertEqual(end.code(), grpc.StatusCode.ABORTED)
        self.assertIn("Pull", end.details())
        # Pulling from the same token catches up; then Watch works.
        changes, token = self.b.pull_all(token, page_size=500)
        self.assertEqual(len(changes), 1001)
        watch = self.b.watch(token)
        watch.next()
        watch.cancel()

    def test_tokens_and_requests_are_checked(self):
        _, token = self.a.pull_all()
        other = UserView(self.twd, self.twd.sign_up())
        assert_rpc_error(self, lambda: other.call("sync", "Pull", S.PullRequest(since_token=token)),
                         grpc.StatusCode.INVALID_ARGUMENT, "VAL_003")
        assert_rpc_error(self, lambda: self.a.call("sync", "Pull", S.PullRequest(
            since_token=token, resource_types=["task"])), grpc.StatusCode.INVALID_ARGUMENT,
            "VAL_003")
        assert_rpc_error(self, lambda: self.a.call("sync", "Pull", S.PullRequest(
            resource_types=["tasks"])), grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")
        watch = self.a.watch("")
        self.assertEqual(watch.end().code(), grpc.StatusCode.INVALID_ARGUMENT)
        # Only what was asked for: completions alone.
        task = self.a.create("Both kinds")
        self.a.t("CompleteTask", T.CompleteTaskRequest(id=task.id))
        changes, _ = self.a.pull_all(types=["task_completion"])
        self.assertEqual({c.resource_type for c in changes}, {"task_completion"})
        assert_rpc_error(self, lambda: self.a.push(*[S.Mutation(mutation_id=uuid7())] * 501),
                         grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")


def latest(changes):
    """(resource type, id) -> the last change of each resource."""
    return {(c.resource_type, c.resource_id): c for c in changes}


class WellnessAndProfileSyncTest(TwdTestCase):
    """Health logs, focus sessions and templates and the profile reach the
    user's other devices through Pull and Watch, deletions as tombstones."""
    twd_env = FAST_TWD_ENV

    def setUp(self):
        self.account = self.twd.sign_up(time_zone="Europe/Berlin", display_name="Before")
        self.view = UserView(self.twd, self.account)
        self.logs = self.twd.stub(hl_grpc.HealthLogServiceStub)
        self.focus = self.twd.stub(fs_grpc.FocusServiceStub)
        self.auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)

    def call(self, stub, method, request):
        return getattr(stub, method)(request, metadata=self.account.metadata,
                                     timeout=RPC_TIMEOUT_S)

    def water(self, ml):
        return self.call(self.logs, "CreateHealthLog", hl.CreateHealthLogRequest(
            health_log=hl.HealthLog(start_time=edit_time(3600),
                                    water=hl.HealthWater(volume_ml=ml)))).health_log

    def test_pull_carries_health_logs_focus_and_the_profile(self):
        # A full sync of a new account: its profile and nothing else.
        changes, token = self.view.pull_all()
        self.assertEqual([(c.resource_type, c.resource_id) for c in changes],
                         [("user", self.account.user_id)])
        self.assertEqual((changes[0].user.time_zone, changes[0].user.display_name),
                         ("Europe/Berlin", "Before"))

        kept, dropped = self.water(250), self.water(500)
        self.call(self.logs, "DeleteHealthLog", hl.DeleteHealthLogRequest(id=dropped.id))
        task = self.view.create("Focus on this")
        session = self.call(self.focus, "StartFocusSession", fs.StartFocusSessionRequest(
            template_id="pomodoro", task_id=task.id, event_time=edit_time(1800))).session
        session = self.call(self.focus, "CompleteFocusSession", fs.CompleteFocusSessionRequest(
            session_id=session.id, event_time=edit_time(300))).session
        template = self.call(self.focus, "CreateFocusTemplate", fs.CreateFocusTemplateRequest(
            template=fs.FocusTemplate(display_name="Short", kind=fs.FOCUS_TEMPLATE_KIND_COUNTDOWN,
                                      focus_duration=duration_pb2.Duration(seconds=600))))
        template = template.template
        self.call(self.focus, "DeleteFocusTemplate", fs.DeleteFocusTemplateRequest(id=template.id))
        me = self.call(self.auth, "UpdateMe", auth_service_pb2.UpdateMeRequest(
            user=auth_service_pb2.User(display_name="After", time_zone="Asia/Tokyo"),
            update_mask=mask("display_name", "time_zone"))).user

        changes, token = self.view.pull_all(token)
        got = latest(changes)
        self.assertEqual(got[("health_log", kept.id)].health_log, kept)
        self.assertTrue(got[("health_log", dropped.id)].deleted)
        self.assertFalse(got[("health_log", dropped.id)].HasField("health_log"))
        pulled = got[("focus_session", session.id)].focus_session
        self.assertEqual(pulled.state, fs.FOCUS_SESSION_STATE_COMPLETED)
        self.assertEqual(pulled.focused_duration.seconds, 1500)
        # The completed session's focus reached its task: the task's last
        # change is the credit, with a new etag.
        credited = got[("task", task.id)].task
        self.assertEqual(credited.tracked_focus_duration.seconds, 1500)
        self.assertNotEqual(credited.etag, task.etag)
        self.assertEqual(credited, self.view.get(task.id))
        self.assertTrue(got[("focus_template", template.id)].deleted)
        profile = got[("user", self.account.user_id)].user
        self.assertEqual(profile, me)
        self.assertEqual((profile.display_name, profile.time_zone), ("After", "Asia/Tokyo"))
        self.assertEqual({c.resource_type for c in changes},
                         {"health_log", "focus_session", "focus_template", "user", "task"})
        # Sequences grow; each resource is sent once per page.
        self.assertEqual(len(changes), len(got))
        sequences = [c.sequence for c in changes]
        self.assertEqual(sequences, sorted(sequences))

        # A new device's full sync: what exists, no tombstones.
        full, _ = UserView(self.twd, self.account).pull_all()
        self.assertEqual({(c.resource_type, c.resource_id) for c in full},
                         {("health_log", kept.id), ("focus_session", session.id),
                          ("user", self.account.user_id), ("task", task.id)})
        self.assertEqual(latest(full)[("task", task.id)].task.tracked_focus_duration.seconds,
                         1500)
        self.assertFalse(any(c.deleted for c in full))
        # One type alone.
        only, _ = self.view.pull_all(types=["health_log"])
        self.assertEqual({c.resource_id for c in only}, {kept.id})

        # Watch sends a new entry live.
        watch = self.view.watch(token)
        watch.next()
        fresh = self.water(750)
        seen, _ = watch.changes_until(
            lambda cs: any(c.resource_id == fresh.id for c in cs))
        self.assertEqual(latest(seen)[("health_log", fresh.id)].health_log, fresh)
        watch.cancel()

    def test_unknown_types_are_refused_with_the_known_ones(self):
        _, details = assert_rpc_error(self, lambda: self.view.call("sync", "Pull", S.PullRequest(
            resource_types=["health_logs"])), grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")
        why = dict(details.field_violations)["resource_types"]
        for name in ("task", "task_completion", "health_log", "focus_session", "focus_template",
                     "user"):
            self.assertIn(name, why)


class WatchShutdownTest(unittest.TestCase):
    def test_watch_ends_cleanly_when_twd_stops(self):
        with Twd(env=FAST_TWD_ENV) as twd:
            view = UserView(twd, twd.sign_up())
            _, token = view.pull_all()
            watch = view.watch(token)
            watch.next()
            self.assertEqual(twd.stop(), 0)
            end = watch.end(timeout=RPC_TIMEOUT_S)
            self.assertEqual(end.code(), grpc.StatusCode.UNAVAILABLE)


if __name__ == "__main__":
    unittest.main()
