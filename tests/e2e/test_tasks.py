"""
TaskService through generated stubs, as an app calls it: CRUD with field
masks and etags, idempotent creates, every bad input refused with the field
named and nothing stored, pagination over 1,000 tasks with each task seen
exactly once in every order, recurring tasks and their completions and
streaks, subtasks, and a second user who can reach none of it.
"""
import datetime
import unittest
import zoneinfo

import grpc

from task_client import (FAST_TWD_ENV, T, UserView, due_at, due_on, local, mask,  # noqa: E402
                         task_records, timestamp, uuid7)
from twd_harness import RPC_TIMEOUT_S, TwdTestCase, assert_rpc_error
from tw.v1 import calendar_date_pb2, task_service_pb2_grpc  # noqa: E402

NY = "America/New_York"
INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


class TaskServiceTest(TwdTestCase):
    twd_env = FAST_TWD_ENV

    def setUp(self):
        self.alice = UserView(self.twd, self.twd.sign_up(time_zone=NY))

    def assert_invalid(self, call, field, reason="VAL_001"):
        """call fails with INVALID_ARGUMENT naming field, storing nothing."""
        before = task_records(self.twd)
        _, details = assert_rpc_error(self, call, INVALID, reason)
        self.assertIn(field, [f for f, _ in details.field_violations], details)
        self.assertEqual(task_records(self.twd), before, "a refused call stored something")

    def test_create_get_update_with_masks_and_etags(self):
        created = self.alice.create("Write report", notes="draft", priority=2,
                                    labels=["work", "q3", "work"],
                                    due=due_at(NY, 2024, 6, 3, 17, 0))
        self.assertEqual(created.status, T.TASK_STATUS_TODO)
        self.assertEqual(list(created.labels), ["work", "q3"])
        self.assertEqual(created.due.time_zone, NY)
        self.assertTrue(created.etag)
        self.assertEqual(self.alice.get(created.id), created)

        # Only the masked field changes, whatever else the message holds.
        changed = self.alice.t("UpdateTask", T.UpdateTaskRequest(
            task=T.Task(id=created.id, title="Final report", notes="ignored"),
            update_mask=mask("title"), etag=created.etag)).task
        self.assertEqual(changed.title, "Final report")
        self.assertEqual(changed.notes, "draft")
        self.assertNotEqual(changed.etag, created.etag)

        # The old etag is stale now: ABORTED, nothing changed.
        before = task_records(self.twd)
        assert_rpc_error(self, lambda: self.alice.t("UpdateTask", T.UpdateTaskRequest(
            task=T.Task(id=created.id, title="Lost"), update_mask=mask("title"),
            etag=created.etag)), grpc.StatusCode.ABORTED, "RES_003")
        self.assertEqual(task_records(self.twd), before)
        self.assertEqual(self.alice.get(created.id).title, "Final report")

        # Clearing a field through the mask, and deleting with the etag.
        cleared = self.alice.t("UpdateTask", T.UpdateTaskRequest(
            task=T.Task(id=created.id), update_mask=mask("due", "labels"))).task
        self.assertFalse(cleared.HasField("due"))
        self.assertEqual(list(cleared.labels), [])
        self.alice.t("DeleteTask", T.DeleteTaskRequest(id=created.id, etag=cleared.etag))
        assert_rpc_error(self, lambda: self.alice.get(created.id), NOT_FOUND, "RES_001")

    def test_bad_input_is_refused_and_stores_nothing(self):
        task = self.alice.create("Exists")
        creates = {
            "task.title": T.Task(title="x" * 501),
            "task.priority": T.Task(title="p", priority=5),
            "task.due.time_zone": T.Task(title="z", due=due_on(2024, 6, 1, "Mars/Olympus")),
            "task.recurrence.rrule": T.Task(title="r", due=due_on(2024, 6, 1),
                                            recurrence=T.TaskRecurrence(rrule="FREQ=HOURLY")),
            "task.recurrence": T.Task(title="r", recurrence=T.TaskRecurrence(rrule="FREQ=DAILY")),
            "task.id": T.Task(id="not-a-uuid", title="i"),
            "task.labels": T.Task(title="l", labels=["a,b"]),
            "task.order_key": T.Task(title="o", order_key="ab0"),
            "task.status": T.Task(title="s", status=T.TASK_STATUS_DONE),
        }
        for field, bad in creates.items():
            with self.subTest(field=field):
                self.assert_invalid(lambda: self.alice.t(
                    "CreateTask", T.CreateTaskRequest(task=bad)), field)
        self.assert_invalid(lambda: self.alice.t("CreateTask", T.CreateTaskRequest()), "task")
        for paths in (["title", "colour"], ["id"], ["parent_id"], ["title", "title"], []):
            with self.subTest(mask=paths):
                self.assert_invalid(lambda: self.alice.t("UpdateTask", T.UpdateTaskRequest(
                    task=T.Task(id=task.id, title="New"), update_mask=mask(*paths))),
                    "update_mask", "VAL_004")
        self.assert_invalid(lambda: self.alice.t("UpdateTask", T.UpdateTaskRequest(
            task=T.Task(id=task.id, priority=0), update_mask=mask("priority"))), "task.priority")
        self.assert_invalid(lambda: self.alice.t("UpdateTask", T.UpdateTaskRequest(
            task=T.Task(id=task.id, due=T.TaskDue(time=timestamp(local(NY, 2024, 1, 1, 9, 0)),
                                                   time_zone="Nowhere/Land")),
            update_mask=mask("due"))), "task.due.time_zone")
        self.assert_invalid(lambda: self.alice.get("42"), "id")
        self.assert_invalid(lambda: self.alice.t("ListTasks", T.ListTasksRequest(page_size=-1)),
                            "page_size")
        self.assert_invalid(lambda: self.alice.t("ListTasks", T.ListTasksRequest(
            page_token="forged")), "page_token", "VAL_003")
        self.assert_invalid(lambda: self.alice.t("CompleteTask", T.CompleteTaskRequest(
            id=task.id, complete_time=timestamp(local(NY, 2020, 1, 1, 0, 0)))), "complete_time")
        self.assertEqual(self.alice.get(task.id), task)

    def test_create_with_a_request_id_happens_once(self):
        request = T.CreateTaskRequest(task=T.Task(title="Buy milk"), request_id=uuid7())
        first = self.alice.t("CreateTask", request).task
        again = self.alice.t("CreateTask", request).task
        self.assertEqual(first, again)
        tasks, _ = self.alice.list_all()
        self.assertEqual([t.id for t in tasks].count(first.id), 1)
        self.assertEqual(len(tasks), 1)
        # The same id with another request is a client bug, not a retry.
        other = T.CreateTaskRequest(task=T.Task(title="Buy bread"), request_id=request.request_id)
        self.assert_invalid(lambda: self.alice.t("CreateTask", other), "request_id")
        # A client-chosen id (offline-first) is kept, and cannot be reused.
        mine = uuid7()
        self.assertEqual(self.alice.create("Offline", id=mine).id, mine)
        assert_rpc_error(self, lambda: self.alice.create("Again", id=mine),
                         grpc.StatusCode.ALREADY_EXISTS, "RES_002")

    def test_pagination_over_1000_tasks_sees_each_once(self):
        user = UserView(self.twd, self.twd.sign_up(time_zone=NY))
        created = []
        for i in range(1000):
            due = due_at(NY, 2024, 7, 1 + i % 28, 8 + i % 10, 0) if i % 3 else None
            created.append(user.create(f"task {i}", priority=1 + i % 4, due=due,
                                       labels=["even"] if i % 2 == 0 else []).id)
        for done in created[::10]:
            user.t("CompleteTask", T.CompleteTaskRequest(id=done))
        queries = [
            dict(),
            dict(descending=True),
            dict(order_by=T.TASK_ORDER_DUE),
            dict(order_by=T.TASK_ORDER_PRIORITY, descending=True),
            dict(order_by=T.TASK_ORDER_MANUAL),
            dict(statuses=[T.TASK_STATUS_TODO], order_by=T.TASK_ORDER_DUE),
            dict(label="even"),
        ]
        expected = [1000, 1000, 1000, 1000, 1000, 900, 500]
        for query, count in zip(queries, expected):
            with self.subTest(query=query):
                tasks, pages = user.list_all(page_size=37, **query)
                ids = [t.id for t in tasks]
                self.assertEqual(len(ids), count)
                self.assertEqual(len(set(ids)), count, "a task was listed twice")
                self.assertGreaterEqual(pages, count // 37)
        tasks, _ = user.list_all(page_size=500)
        self.assertEqual([t.id for t in tasks], created)  # creation order
        tasks, _ = user.list_all(page_size=100, order_by=T.TASK_ORDER_DUE,
                                 statuses=[T.TASK_STATUS_TODO])
        dues = [t.due.time.ToMilliseconds() if t.HasField("due") else float("inf")
                for t in tasks]
        self.assertEqual(dues, sorted(dues))
        # A token is bound to its query.
        first = user.t("ListTasks", T.ListTasksRequest(page_size=10))
        assert_rpc_error(self, lambda: user.t("ListTasks", T.ListTasksRequest(
            page_size=10, page_token=first.next_page_token, order_by=T.TASK_ORDER_DUE)),
            INVALID, "VAL_003")

    def test_recurring_tasks_completions_and_stats(self):
        # Due at 09:00 on the Saturday before the next US spring change.
        now = datetime.datetime.now(datetime.timezone.utc)
        saturday = next(local(NY, y, 3, d, 9, 0) for y in range(now.year, now.year + 3)
                        for d in range(7, 14)
                        if local(NY, y, 3, d + 1, 0, 0).weekday() == 6 and
                        local(NY, y, 3, d, 9, 0) > now)
        daily = self.alice.create("Stretch", due=T.TaskDue(time=timestamp(saturday), time_zone=NY),
                                  recurrence=T.TaskRecurrence(rrule="FREQ=DAILY;COUNT=3"))
        # Done early: that occurrence; the task moves to Sunday at 09:00 local,
        # 23 hours later across the change.
        reply = self.alice.t("CompleteTask", T.CompleteTaskRequest(id=daily.id, etag=daily.etag))
        self.assertEqual(reply.task.status, T.TASK_STATUS_TODO)
        nxt = reply.task.due.time.ToDatetime(tzinfo=datetime.timezone.utc)
        self.assertEqual(nxt - saturday, datetime.timedelta(hours=23))
        self.assertEqual(nxt.astimezone(zoneinfo.ZoneInfo(NY)).hour, 9)
        self.assertEqual(reply.completion.task_id, daily.id)
        self.assertTrue(reply.completion.on_time)
        # COUNT=3: the third completion ends the series.
        reply = self.alice.t("CompleteTask", T.CompleteTaskRequest(id=daily.id))
        self.assertEqual(reply.task.status, T.TASK_STATUS_TODO)
        reply = self.alice.t("CompleteTask", T.CompleteTaskRequest(id=daily.id))
        self.assertEqual(reply.task.status, T.TASK_STATUS_DONE)
        self.assertEqual(reply.task.completed_occurrence_count, 3)
        log = self.alice.t("ListCompletions", T.ListCompletionsRequest(task_id=daily.id))
        self.assertEqual(len(log.completions), 3)
        self.assertEqual(log.completions[0].id, reply.completion.id)  # newest first

        # A one-off task: done, reopened (the log keeps it, marked reverted).
        one = self.alice.create("Call mum")
        done = self.alice.t("CompleteTask", T.CompleteTaskRequest(id=one.id, request_id=uuid7()))
        self.assertEqual(done.task.status, T.TASK_STATUS_DONE)
        assert_rpc_error(self, lambda: self.alice.t("CompleteTask", T.CompleteTaskRequest(
            id=one.id)), grpc.StatusCode.FAILED_PRECONDITION, "STATE_001")
        reopened = self.alice.t("ReopenTask", T.ReopenTaskRequest(id=one.id)).task
        self.assertEqual(reopened.status, T.TASK_STATUS_TODO)
        entry = [c for c in self.alice.t("ListCompletions", T.ListCompletionsRequest(
            task_id=one.id)).completions][0]
        self.assertTrue(entry.HasField("revert_time"))
        self.alice.t("CompleteTask", T.CompleteTaskRequest(id=one.id))

        stats = self.alice.t("GetTaskStats", T.GetTaskStatsRequest())
        self.assertEqual(stats.time_zone, NY)
        self.assertEqual(stats.current_streak, 1)  # all done today
        self.assertEqual(stats.completed_7d, 4)
        self.assertEqual(stats.completion_rate_7d, 1.0)
        per_task = self.alice.t("GetTaskStats", T.GetTaskStatsRequest(task_id=daily.id))
        self.assertEqual(per_task.longest_streak, 3)

    def test_all_day_and_timed_habits_share_the_grace_window(self):
        # Issue 16: a daily habit due yesterday and done at 05:00 today (in
        # the first 6 hours of the day) completes yesterday's occurrence, on
        # time, whether it is all day or at 01:00 (today's 01:00 has
        # passed, but today's occurrences have not come in the grace window).
        tz = zoneinfo.ZoneInfo(NY)
        today = (datetime.datetime.now(datetime.timezone.utc).astimezone(tz) -
                 datetime.timedelta(days=2)).date()
        yesterday = today - datetime.timedelta(days=1)
        done_at = timestamp(local(NY, today.year, today.month, today.day, 5, 0))
        dues = {"all day": due_on(yesterday.year, yesterday.month, yesterday.day, NY),
                "01:00": due_at(NY, yesterday.year, yesterday.month, yesterday.day, 1, 0)}
        for kind, due in dues.items():
            with self.subTest(kind=kind):
                habit = self.alice.create(f"Habit {kind}", due=due,
                                          recurrence=T.TaskRecurrence(rrule="FREQ=DAILY"))
                reply = self.alice.t("CompleteTask", T.CompleteTaskRequest(
                    id=habit.id, complete_time=done_at))
                c = reply.completion
                self.assertEqual(c.occurrence_due, habit.due)
                self.assertEqual((c.credited_date.year, c.credited_date.month,
                                  c.credited_date.day),
                                 (yesterday.year, yesterday.month, yesterday.day))
                self.assertTrue(c.on_time)
                self.assertEqual(c.skipped_occurrence_count, 0)
                nxt = (reply.task.due.date.day if kind == "all day" else
                       reply.task.due.time.ToDatetime(tzinfo=datetime.timezone.utc)
                       .astimezone(tz).day)
                self.assertEqual(nxt, today.day)
                # Missed: only the occurrence still open since (two days ago
                # by the real clock), not the one done in the grace window.
                stats = self.alice.t("GetTaskStats", T.GetTaskStatsRequest(task_id=habit.id))
                self.assertEqual((stats.missed_7d, stats.completed_7d), (1, 1))

    def test_an_exception_date_on_the_due_moves_the_due(self):
        # Issue 16: RFC 5545 removes an EXDATE from the set even when it is
        # DTSTART, so the task is due on the next day not excluded; COUNT
        # still counts the removed one (as dateutil's rruleset does).
        monday = T.TaskDue(time=timestamp(local(NY, 2031, 6, 2, 9, 0)), time_zone=NY)
        skip = [calendar_date_pb2.CalendarDate(year=2031, month=6, day=d) for d in (2, 3)]
        task = self.alice.create("Swim", due=monday, recurrence=T.TaskRecurrence(
            rrule="FREQ=DAILY;COUNT=4", exception_dates=skip))
        dues = [task.due.time.ToDatetime(tzinfo=datetime.timezone.utc)]
        for _ in range(3):
            reply = self.alice.t("CompleteTask", T.CompleteTaskRequest(id=task.id))
            if reply.task.status == T.TASK_STATUS_DONE:
                break
            dues.append(reply.task.due.time.ToDatetime(tzinfo=datetime.timezone.utc))
        self.assertEqual(reply.task.status, T.TASK_STATUS_DONE)
        self.assertEqual(dues, [local(NY, 2031, 6, d, 9, 0) for d in (4, 5)])
        # Excluding every occurrence: refused, naming the field.
        self.assert_invalid(lambda: self.alice.create("Never", due=monday, recurrence=(
            T.TaskRecurrence(rrule="FREQ=DAILY;COUNT=2", exception_dates=skip))),
            "task.recurrence.exception_dates")

    def test_subtasks_move_and_need_force_to_delete(self):
        project = self.alice.create("Project")
        steps = [self.alice.create(f"step {i}", parent_id=project.id) for i in range(3)]
        moved = self.alice.t("MoveTask", T.MoveTaskRequest(id=steps[2].id, parent_id=project.id,
                                                           after_id=steps[0].id)).task
        ordered, _ = self.alice.list_all(order_by=T.TASK_ORDER_MANUAL, parent_id=project.id)
        self.assertEqual([t.id for t in ordered], [steps[0].id, moved.id, steps[1].id])
        before = task_records(self.twd)
        assert_rpc_error(self, lambda: self.alice.t("DeleteTask", T.DeleteTaskRequest(
            id=project.id)), grpc.StatusCode.FAILED_PRECONDITION, "STATE_001")
        self.assertEqual(task_records(self.twd), before)
        self.assert_invalid(lambda: self.alice.t("MoveTask", T.MoveTaskRequest(
            id=project.id, parent_id=steps[1].id)), "parent_id")
        reply = self.alice.t("DeleteTask", T.DeleteTaskRequest(id=project.id, force=True))
        self.assertEqual(reply.deleted_count, 4)
        self.assertEqual(self.alice.list_all()[0], [])

    def test_another_users_ids_are_not_found(self):
        bob = UserView(self.twd, self.twd.sign_up())
        mine = self.alice.create("Alice's", due=due_on(2024, 6, 1),
                                 recurrence=T.TaskRecurrence(rrule="FREQ=WEEKLY"))
        self.alice.t("CompleteTask", T.CompleteTaskRequest(id=mine.id))
        theirs = bob.create("Bob's")
        unknown = uuid7()
        calls = {
            "GetTask": lambda i: T.GetTaskRequest(id=i),
            "UpdateTask": lambda i: T.UpdateTaskRequest(task=T.Task(id=i, title="x"),
                                                        update_mask=mask("title")),
            "DeleteTask": lambda i: T.DeleteTaskRequest(id=i, force=True),
            "CompleteTask": lambda i: T.CompleteTaskRequest(id=i),
            "ReopenTask": lambda i: T.ReopenTaskRequest(id=i),
            "MoveTask": lambda i: T.MoveTaskRequest(id=i),
            "ListCompletions": lambda i: T.ListCompletionsRequest(task_id=i),
            "GetTaskStats": lambda i: T.GetTaskStatsRequest(task_id=i),
            "ListTasks": lambda i: T.ListTasksRequest(parent_id=i),
        }
        nested = {
            "CreateTask": lambda i: T.CreateTaskRequest(task=T.Task(title="x", parent_id=i)),
            "MoveTask": lambda i: T.MoveTaskRequest(id=theirs.id, parent_id=i),
            "MoveTask after": lambda i: T.MoveTaskRequest(id=theirs.id, after_id=i),
        }
        before, mine = task_records(self.twd), self.alice.get(mine.id)
        for name, make in list(calls.items()) + list(nested.items()):
            method = name.split()[0]
            answers = []
            for target in (mine.id, unknown):
                with self.subTest(method=name, target=target):
                    _, details = assert_rpc_error(self, lambda: bob.t(method, make(target)),
                                                  NOT_FOUND, "RES_001")
                    answers.append(details.message.replace(target, "<id>"))
            self.assertEqual(answers[0], answers[1], f"{name} tells the two apart")
        self.assertEqual(task_records(self.twd), before)
        self.assertEqual(self.alice.get(mine.id), mine)
        # Nor do lists, logs or stats show anything of alice's.
        self.assertEqual([t.id for t in bob.list_all()[0]], [theirs.id])
        self.assertEqual(len(bob.t("ListCompletions", T.ListCompletionsRequest()).completions), 0)

    def test_calls_need_a_signed_in_user(self):
        stub = self.alice.tasks
        assert_rpc_error(self, lambda: stub.ListTasks(T.ListTasksRequest()),
                         grpc.StatusCode.UNAUTHENTICATED, "AUTH_002")
        # The operator socket is admin but no user: the gate asks for a
        # user's token there too, as for every service of a user's data.
        operator = task_service_pb2_grpc.TaskServiceStub(self.twd.operator_channel())
        assert_rpc_error(self, lambda: operator.ListTasks(T.ListTasksRequest(),
                                                          timeout=RPC_TIMEOUT_S),
                         grpc.StatusCode.UNAUTHENTICATED, "AUTH_002")


if __name__ == "__main__":
    unittest.main()
