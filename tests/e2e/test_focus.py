"""
FocusService through generated stubs: every RPC; every illegal change of
state answers FAILED_PRECONDITION naming the current state and changes
nothing; focused time leaves out pauses and breaks; one session in
progress per user, also when two starts race; statistics over a week of
generated sessions; another user's ids (sessions, templates, tasks) are
NOT_FOUND; a completed session's focused time shows on its task; a
session left running past the limit is abandoned by the server; changes
reach the user's change log as "focus_session" and "focus_template".

Sessions are driven with event_time in the past (what an app that was
offline sends), so durations are exact without waiting.
"""
import concurrent.futures
import datetime
import unittest
import uuid

import grpc

from google.protobuf import duration_pb2, timestamp_pb2
from task_client import uuid7
from twd_harness import (RPC_TIMEOUT_S, FakeClock, Twd, TwdTestCase, assert_rpc_error,
                         wait_until)
from wellness_e2e import change_log
from tw.v1 import focus_service_pb2 as fs  # noqa: E402
from tw.v1 import focus_service_pb2_grpc as fs_grpc  # noqa: E402
from tw.v1 import task_service_pb2 as ts_pb  # noqa: E402
from tw.v1 import task_service_pb2_grpc as ts_grpc  # noqa: E402

UTC = datetime.timezone.utc
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
MIN = datetime.timedelta(minutes=1)
# No session of these tests may be abandoned while a test drives it: the
# limit is 30 days (sessions here start at most 8 days back).
QUIET = {"TW_API_CALLS_PER_HOUR": "1000000", "TW_API_WRITE_CALLS_PER_HOUR": "1000000",
         "TW_FOCUS_ABANDON_AFTER_MINUTES": "43200"}

STATES = ["PLANNED", "RUNNING", "PAUSED", "ON_BREAK", "COMPLETED", "ABANDONED"]
# What each state allows, as the proto documents it.
ALLOWED = {
    "PLANNED": {"start", "abandon"},
    "RUNNING": {"pause", "break", "complete", "abandon", "distract"},
    "PAUSED": {"resume", "break", "complete", "abandon", "distract"},
    "ON_BREAK": {"resume", "complete", "abandon"},
    "COMPLETED": set(),
    "ABANDONED": set(),
}


def ts(when):
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(when.astimezone(UTC))
    return t


def minutes(d):
    return d.seconds / 60


def now():
    """The clock in whole seconds: the server keeps times to the
    millisecond, so sent and returned times then compare equal."""
    return datetime.datetime.now(UTC).replace(microsecond=0)


class FocusTestCase(TwdTestCase):
    twd_env = QUIET

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.focus = cls.twd.stub(fs_grpc.FocusServiceStub)
        cls.tasks = cls.twd.stub(ts_grpc.TaskServiceStub)

    def call(self, account, method, request):
        return getattr(self.focus, method)(request, metadata=account.metadata,
                                           timeout=RPC_TIMEOUT_S)

    def task_call(self, account, method, request):
        return getattr(self.tasks, method)(request, metadata=account.metadata,
                                           timeout=RPC_TIMEOUT_S)

    def new_task(self, account, title="Write the report"):
        return self.task_call(account, "CreateTask", ts_pb.CreateTaskRequest(
            task=ts_pb.Task(title=title))).task

    def tracked_minutes(self, account, task_id):
        task = self.task_call(account, "GetTask", ts_pb.GetTaskRequest(id=task_id)).task
        return task.tracked_focus_duration.seconds / 60

    def start(self, account, when=None, **fields):
        request = fs.StartFocusSessionRequest(template_id=fields.pop("template_id", "pomodoro"),
                                              **fields)
        if when is not None:
            request.event_time.CopyFrom(ts(when))
        return self.call(account, "StartFocusSession", request).session

    def move(self, account, verb, session_id, when=None):
        method, request_type = {
            "pause": ("PauseFocusSession", fs.PauseFocusSessionRequest),
            "resume": ("ResumeFocusSession", fs.ResumeFocusSessionRequest),
            "break": ("StartBreak", fs.StartBreakRequest),
            "complete": ("CompleteFocusSession", fs.CompleteFocusSessionRequest),
            "abandon": ("AbandonFocusSession", fs.AbandonFocusSessionRequest),
        }[verb]
        request = request_type(session_id=session_id)
        if when is not None:
            request.event_time.CopyFrom(ts(when))
        return self.call(account, method, request).session

    def distract(self, account, session_id, kind=fs.FOCUS_DISTRACTION_TYPE_PHONE, when=None):
        d = fs.FocusDistraction(type=kind, note="a message")
        if when is not None:
            d.occur_time.CopyFrom(ts(when))
        return self.call(account, "RecordDistraction", fs.RecordDistractionRequest(
            session_id=session_id, distraction=d)).session

    def get(self, account, session_id):
        return self.call(account, "GetFocusSession", fs.GetFocusSessionRequest(
            id=session_id)).session

    def changes(self, account, resource_type):
        return [resource_id for _, resource_id in change_log(self.twd, account, resource_type)]


class EveryRpcTest(FocusTestCase):
    def test_templates_sessions_and_their_life(self):
        alice = self.twd.sign_up()
        templates = self.call(alice, "ListFocusTemplates", fs.ListFocusTemplatesRequest())
        self.assertEqual([t.id for t in templates.templates],
                         ["pomodoro", "flowtime", "fifty_ten", "countdown"])
        pomodoro = templates.templates[0]
        self.assertEqual((pomodoro.focus_duration.seconds, pomodoro.short_break_duration.seconds,
                          pomodoro.long_break_duration.seconds, pomodoro.long_break_every),
                         (1500, 300, 900, 4))
        mine = self.call(alice, "CreateFocusTemplate", fs.CreateFocusTemplateRequest(
            template=fs.FocusTemplate(display_name="Deep work", kind=fs.FOCUS_TEMPLATE_KIND_CYCLES,
                                      focus_duration=duration_pb2.Duration(seconds=5400),
                                      short_break_duration=duration_pb2.Duration(seconds=900))))
        self.assertFalse(mine.template.built_in)
        listed = self.call(alice, "ListFocusTemplates", fs.ListFocusTemplatesRequest(page_size=3))
        self.assertEqual(len(listed.templates), 3)
        rest = self.call(alice, "ListFocusTemplates", fs.ListFocusTemplatesRequest(
            page_size=3, page_token=listed.next_page_token))
        self.assertEqual([t.id for t in rest.templates], ["countdown", mine.template.id])

        task = self.new_task(alice).id
        planned = self.call(alice, "CreateFocusSession", fs.CreateFocusSessionRequest(
            template_id=mine.template.id, task_id=task, tags=["writing"])).session
        self.assertEqual(planned.state, fs.FOCUS_SESSION_STATE_PLANNED)
        self.assertEqual(planned.planned_duration.seconds, 5400)
        self.assertEqual(planned.template.display_name, "Deep work")
        # A planned session starts when it is started (it cannot have started
        # before it was planned); exact durations are for the tests below.
        started = self.call(alice, "StartFocusSession", fs.StartFocusSessionRequest(
            session_id=planned.id)).session
        self.assertEqual(started.state, fs.FOCUS_SESSION_STATE_RUNNING)
        self.assertTrue(started.HasField("start_time"))
        self.distract(alice, planned.id)
        self.move(alice, "pause", planned.id)
        self.move(alice, "resume", planned.id)
        on_break = self.move(alice, "break", planned.id)
        self.assertEqual(on_break.break_duration.seconds, 900)
        self.move(alice, "resume", planned.id)
        done = self.move(alice, "complete", planned.id)
        self.assertEqual(done.state, fs.FOCUS_SESSION_STATE_COMPLETED)
        self.assertLess(done.focused_duration.seconds, 60)
        self.assertEqual(done.cycle_index, 1)
        self.assertEqual(done.end_time, done.state_changes[-1].change_time)
        self.assertEqual(done.task_id, task)
        tracked = self.task_call(alice, "GetTask", ts_pb.GetTaskRequest(id=task)).task
        self.assertEqual(tracked.tracked_focus_duration, done.focused_duration)
        self.assertEqual(list(done.tags), ["writing"])
        self.assertEqual([c.state for c in done.state_changes],
                         [fs.FOCUS_SESSION_STATE_PLANNED, fs.FOCUS_SESSION_STATE_RUNNING,
                          fs.FOCUS_SESSION_STATE_PAUSED, fs.FOCUS_SESSION_STATE_RUNNING,
                          fs.FOCUS_SESSION_STATE_ON_BREAK, fs.FOCUS_SESSION_STATE_RUNNING,
                          fs.FOCUS_SESSION_STATE_COMPLETED])
        self.assertEqual(len(done.distractions), 1)
        later = self.call(alice, "CreateFocusSession", fs.CreateFocusSessionRequest(
            template_id="pomodoro")).session
        _, details = assert_rpc_error(self, lambda: self.call(
            alice, "StartFocusSession", fs.StartFocusSessionRequest(
                session_id=later.id, event_time=ts(now() - 60 * MIN))), INVALID, "VAL_001")
        self.assertEqual(details.field_violations[0][0], "event_time")
        self.move(alice, "abandon", later.id)

        abandoned = self.start(alice, template_id="countdown")
        abandoned = self.move(alice, "abandon", abandoned.id)
        self.assertEqual(abandoned.state, fs.FOCUS_SESSION_STATE_ABANDONED)
        self.assertFalse(abandoned.abandoned_by_server)

        listed = self.call(alice, "ListFocusSessions", fs.ListFocusSessionsRequest())
        self.assertEqual([s.id for s in listed.sessions], [abandoned.id, later.id, planned.id])
        completed = self.call(alice, "ListFocusSessions", fs.ListFocusSessionsRequest(
            state=fs.FOCUS_SESSION_STATE_COMPLETED))
        self.assertEqual([s.id for s in completed.sessions], [planned.id])

        today = now().date()
        stats = self.call(alice, "GetFocusStats", fs.GetFocusStatsRequest(
            start_date=(today - datetime.timedelta(days=1)).isoformat(),
            end_date=(today + datetime.timedelta(days=1)).isoformat()))
        # The planned-then-abandoned session never started: it is not counted.
        self.assertEqual((stats.session_count, stats.completed_count, stats.abandoned_count),
                         (2, 1, 1))
        self.assertAlmostEqual(stats.completion_rate, 0.5)
        self.assertLess(stats.focused_duration.seconds, 60)
        self.assertEqual(len(stats.hours), 24)
        self.assertEqual([(d.type, d.count) for d in stats.distractions],
                         [(fs.FOCUS_DISTRACTION_TYPE_PHONE, 1)])

        self.call(alice, "DeleteFocusTemplate", fs.DeleteFocusTemplateRequest(
            id=mine.template.id))
        # The session keeps its copy of the deleted template.
        self.assertEqual(self.get(alice, planned.id).template.display_name, "Deep work")
        assert_rpc_error(self, lambda: self.call(alice, "DeleteFocusTemplate",
                                                 fs.DeleteFocusTemplateRequest(id="pomodoro")),
                         INVALID, "VAL_001")
        # 8 changes of the first session, 2 of the planned-then-abandoned one,
        # 2 of the countdown.
        self.assertEqual(len(self.changes(alice, "focus_session")), 8 + 2 + 2)
        self.assertEqual(self.changes(alice, "focus_template"),
                         [mine.template.id, mine.template.id])

    def test_other_users_ids_are_not_found(self):
        alice, bob = self.twd.sign_up(), self.twd.sign_up()
        session = self.start(alice)
        alices_task = self.new_task(alice)
        template = self.call(alice, "CreateFocusTemplate", fs.CreateFocusTemplateRequest(
            template=fs.FocusTemplate(display_name="Mine", kind=fs.FOCUS_TEMPLATE_KIND_FLOWTIME))
        ).template
        calls = [
            ("GetFocusSession", fs.GetFocusSessionRequest(id=session.id)),
            ("PauseFocusSession", fs.PauseFocusSessionRequest(session_id=session.id)),
            ("ResumeFocusSession", fs.ResumeFocusSessionRequest(session_id=session.id)),
            ("StartBreak", fs.StartBreakRequest(session_id=session.id)),
            ("CompleteFocusSession", fs.CompleteFocusSessionRequest(session_id=session.id)),
            ("AbandonFocusSession", fs.AbandonFocusSessionRequest(session_id=session.id)),
            ("StartFocusSession", fs.StartFocusSessionRequest(session_id=session.id)),
            ("RecordDistraction", fs.RecordDistractionRequest(
                session_id=session.id, distraction=fs.FocusDistraction(
                    type=fs.FOCUS_DISTRACTION_TYPE_PEOPLE))),
            ("DeleteFocusTemplate", fs.DeleteFocusTemplateRequest(id=template.id)),
            ("StartFocusSession", fs.StartFocusSessionRequest(template_id=template.id)),
            ("CreateFocusSession", fs.CreateFocusSessionRequest(template_id=template.id)),
            # Alice's task, and a task id nobody has, are not bob's tasks.
            ("StartFocusSession", fs.StartFocusSessionRequest(template_id="pomodoro",
                                                              task_id=alices_task.id)),
            ("CreateFocusSession", fs.CreateFocusSessionRequest(template_id="pomodoro",
                                                                task_id=alices_task.id)),
            ("StartFocusSession", fs.StartFocusSessionRequest(template_id="pomodoro",
                                                              task_id=str(uuid.uuid4()))),
        ]
        for method, request in calls:
            with self.subTest(method=method):
                assert_rpc_error(self, lambda: self.call(bob, method, request), NOT_FOUND,
                                 "RES_001")
        self.assertEqual(self.get(alice, session.id).state, fs.FOCUS_SESSION_STATE_RUNNING)
        self.assertEqual(len(self.call(bob, "ListFocusSessions",
                                       fs.ListFocusSessionsRequest()).sessions), 0)
        self.assertEqual(self.changes(bob, "focus_session"), [])
        self.assertEqual(len(self.call(bob, "ListFocusTemplates",
                                       fs.ListFocusTemplatesRequest()).templates), 4)

    def test_bad_input(self):
        alice = self.twd.sign_up()
        cases = [
            ("StartFocusSession", fs.StartFocusSessionRequest(), "template_id", "is required"),
            ("StartFocusSession", fs.StartFocusSessionRequest(template_id="tomato"),
             "template_id", "built-in template"),
            ("StartFocusSession", fs.StartFocusSessionRequest(
                template_id="pomodoro", planned_duration=duration_pb2.Duration(seconds=10)),
             "planned_duration", "between 1 minute and 12 hours"),
            ("StartFocusSession", fs.StartFocusSessionRequest(
                template_id="pomodoro", event_time=ts(now() + 5 * MIN)),
             "event_time", "1 minute after it"),
            ("StartFocusSession", fs.StartFocusSessionRequest(template_id="pomodoro",
                                                              task_id="task 7"),
             "task_id", "UUID"),
            ("PauseFocusSession", fs.PauseFocusSessionRequest(session_id="nope"),
             "session_id", "UUID"),
            ("CreateFocusTemplate", fs.CreateFocusTemplateRequest(template=fs.FocusTemplate(
                display_name="x", kind=fs.FOCUS_TEMPLATE_KIND_CYCLES)),
             "template.focus_duration", "between 1 minute and 4 hours"),
            ("GetFocusStats", fs.GetFocusStatsRequest(start_date="2024-06-02",
                                                      end_date="2024-06-01"),
             "end_date", "before start_date"),
            ("ListFocusSessions", fs.ListFocusSessionsRequest(page_size=-1),
             "page_size", "negative"),
            ("ListFocusTemplates", fs.ListFocusTemplatesRequest(page_size=-1),
             "page_size", "negative"),
        ]
        for method, request, field, why in cases:
            with self.subTest(method=method, field=field):
                _, details = assert_rpc_error(self, lambda: self.call(alice, method, request),
                                              INVALID, "VAL_001")
                # That one violation: nothing else, nothing made up.
                self.assertEqual([f for f, _ in details.field_violations], [field])
                self.assertIn(why, dict(details.field_violations)[field])
        self.assertEqual(len(self.call(alice, "ListFocusSessions",
                                       fs.ListFocusSessionsRequest()).sessions), 0)
        self.assertEqual(self.changes(alice, "focus_session"), [])


class StateMachineTest(FocusTestCase):
    def session_in(self, account, state):
        """A new session of account, brought to state."""
        if state == "PLANNED":
            return self.call(account, "CreateFocusSession", fs.CreateFocusSessionRequest(
                template_id="pomodoro")).session
        session = self.start(account)
        path = {"RUNNING": [], "PAUSED": ["pause"], "ON_BREAK": ["break"],
                "COMPLETED": ["complete"], "ABANDONED": ["abandon"]}[state]
        for verb in path:
            session = self.move(account, verb, session.id)
        return session

    def attempt(self, account, verb, session_id):
        if verb == "start":
            return self.call(account, "StartFocusSession",
                             fs.StartFocusSessionRequest(session_id=session_id))
        if verb == "distract":
            return self.distract(account, session_id)
        return self.move(account, verb, session_id)

    def test_every_illegal_transition(self):
        alice = self.twd.sign_up()
        verbs = ["start", "pause", "resume", "break", "complete", "abandon", "distract"]
        refused = 0
        for state in STATES:
            session = self.session_in(alice, state)
            self.assertEqual(fs.FocusSessionState.Name(session.state),
                             "FOCUS_SESSION_STATE_" + state)
            for verb in verbs:
                if verb in ALLOWED[state]:
                    continue
                with self.subTest(state=state, verb=verb):
                    error, _ = assert_rpc_error(self, lambda: self.attempt(alice, verb,
                                                                           session.id),
                                                PRECONDITION, "STATE_001")
                    self.assertIn(state, error.details())
                    after = self.get(alice, session.id)
                    self.assertEqual(after.state, session.state)
                    self.assertEqual(len(after.state_changes), len(session.state_changes))
                    self.assertEqual(len(after.distractions), len(session.distractions))
                refused += 1
            if state in ("RUNNING", "PAUSED", "ON_BREAK"):
                self.move(alice, "abandon", session.id)
        # 5 refusals when PLANNED, 2 RUNNING, 2 PAUSED, 4 ON_BREAK, 7 and 7 at the end.
        self.assertEqual(refused, 27)

    def test_focused_time_leaves_out_pauses_and_breaks(self):
        alice = self.twd.sign_up()
        t0 = now() - 180 * MIN
        s = self.start(alice, t0)
        for verb, at_min in [("pause", 25), ("resume", 40), ("break", 50), ("resume", 60),
                             ("break", 85), ("resume", 90), ("pause", 100), ("break", 110),
                             ("resume", 140)]:
            s = self.move(alice, verb, s.id, t0 + at_min * MIN)
        # Running: 0-25, 40-50, 60-85, 90-100, 140-now; cycles end at 60, 90, 140.
        self.assertEqual(s.cycle_index, 3)
        # The 4th break of a pomodoro is long: after cycle 3.
        s = self.move(alice, "break", s.id, t0 + 165 * MIN)
        self.assertEqual(s.break_duration.seconds, 15 * 60)
        s = self.move(alice, "complete", s.id, t0 + 170 * MIN)
        self.assertEqual(minutes(s.focused_duration), 25 + 10 + 25 + 10 + 25)
        # A running session counts up to the server's clock.
        running = self.start(alice, now() - 30 * MIN)
        self.assertGreaterEqual(minutes(running.focused_duration), 30)
        self.assertLess(minutes(running.focused_duration), 30 + 5)
        assert_rpc_error(self, lambda: self.move(alice, "pause", running.id,
                                                 now() - 40 * MIN),
                         INVALID, "VAL_001")

    def test_a_completed_session_adds_its_focus_to_the_task(self):
        alice = self.twd.sign_up()
        task = self.new_task(alice)
        self.assertEqual(self.tracked_minutes(alice, task.id), 0)
        t0 = now() - 120 * MIN
        s = self.start(alice, t0, task_id=task.id)
        self.move(alice, "pause", s.id, t0 + 20 * MIN)
        self.move(alice, "resume", s.id, t0 + 30 * MIN)
        done = self.move(alice, "complete", s.id, t0 + 45 * MIN)
        self.assertEqual(minutes(done.focused_duration), 35)
        self.assertEqual(self.tracked_minutes(alice, task.id), 35)
        # An abandoned session adds nothing; a second completed one adds up.
        s = self.start(alice, t0 + 50 * MIN, task_id=task.id)
        self.move(alice, "abandon", s.id, t0 + 60 * MIN)
        self.assertEqual(self.tracked_minutes(alice, task.id), 35)
        s = self.start(alice, t0 + 70 * MIN, task_id=task.id)
        self.move(alice, "complete", s.id, t0 + 95 * MIN)
        self.assertEqual(self.tracked_minutes(alice, task.id), 35 + 25)
        # A task deleted while its session runs: the session still completes.
        doomed = self.new_task(alice, "Doomed")
        s = self.start(alice, t0 + 100 * MIN, task_id=doomed.id)
        self.task_call(alice, "DeleteTask", ts_pb.DeleteTaskRequest(id=doomed.id))
        done = self.move(alice, "complete", s.id, t0 + 110 * MIN)
        self.assertEqual(done.state, fs.FOCUS_SESSION_STATE_COMPLETED)
        assert_rpc_error(self, lambda: self.task_call(alice, "GetTask", ts_pb.GetTaskRequest(
            id=doomed.id)), NOT_FOUND, "RES_001")
        # A deleted task cannot be picked for a new session.
        assert_rpc_error(self, lambda: self.start(alice, task_id=doomed.id), NOT_FOUND,
                         "RES_001")

    def test_one_session_in_progress_per_user(self):
        alice = self.twd.sign_up()
        first = self.start(alice)
        error, _ = assert_rpc_error(self, lambda: self.start(alice), PRECONDITION, "STATE_001")
        self.assertIn(first.id, error.details())
        self.assertIn("RUNNING", error.details())
        self.move(alice, "abandon", first.id)
        # Two devices start at the same moment: one wins.
        for _ in range(5):
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                futures = [pool.submit(self.start, alice) for _ in range(2)]
                outcomes = []
                for f in futures:
                    try:
                        outcomes.append(f.result())
                    except grpc.RpcError as e:
                        outcomes.append(e)
            won = [o for o in outcomes if isinstance(o, fs.FocusSession)]
            lost = [o for o in outcomes if isinstance(o, grpc.RpcError)]
            self.assertEqual(len(won), 1, outcomes)
            self.assertEqual(lost[0].code(), PRECONDITION)
            running = self.call(alice, "ListFocusSessions", fs.ListFocusSessionsRequest(
                state=fs.FOCUS_SESSION_STATE_RUNNING)).sessions
            self.assertEqual([s.id for s in running], [won[0].id])
            self.move(alice, "complete", won[0].id)

    def test_request_ids_make_retries_safe(self):
        alice = self.twd.sign_up()
        # request_id names the request (it used to become the session's
        # id): a retry gets the first response; focus_session_id names the
        # session.
        rid, session_id = str(uuid.uuid4()), uuid7()
        first = self.start(alice, request_id=rid, focus_session_id=session_id)
        self.assertEqual(first.id, session_id)
        again = self.start(alice, request_id=rid, focus_session_id=session_id)
        self.assertEqual(again, first)
        self.assertEqual(len(self.call(alice, "ListFocusSessions",
                                       fs.ListFocusSessionsRequest()).sessions), 1)
        # The same request_id with another request is refused.
        assert_rpc_error(self, lambda: self.start(alice, request_id=rid, template_id="countdown"),
                         INVALID, "VAL_001")
        self.move(alice, "abandon", session_id)
        # The same focus_session_id in another request: the id is taken.
        assert_rpc_error(self, lambda: self.call(alice, "CreateFocusSession",
                                                 fs.CreateFocusSessionRequest(
                                                     template_id="pomodoro",
                                                     focus_session_id=session_id)),
                         grpc.StatusCode.ALREADY_EXISTS, "RES_002")
        # A template's id: focus_template_id.
        template_id = uuid7()
        template = self.call(alice, "CreateFocusTemplate", fs.CreateFocusTemplateRequest(
            template=fs.FocusTemplate(display_name="mine", kind=fs.FOCUS_TEMPLATE_KIND_COUNTDOWN,
                                      focus_duration={"seconds": 600}),
            focus_template_id=template_id)).template
        self.assertEqual(template.id, template_id)


class StatsTest(FocusTestCase):
    """A week of sessions, recorded as they happen: the server accepts
    focus events only from the last 24 hours, so twd's clock is moved to
    each day's evening before its sessions are sent."""

    @classmethod
    def setUpClass(cls):
        cls.clock = FakeClock()
        cls.addClassCleanup(cls.clock.close)
        cls.twd_env = dict(QUIET, **cls.clock.env)
        super().setUpClass()

    def at(self, when, account):
        """Moves twd's clock to when; signs account in again (its access
        token was made at another time)."""
        self.clock.set(when)
        return self.twd.sign_in(account.email, account.password)

    def test_a_week_of_generated_sessions(self):
        alice = self.twd.sign_up()  # UTC, days from midnight
        today = now().replace(hour=0, minute=0, second=0)
        first = today - datetime.timedelta(days=7)
        # Each day: 09:00 a pomodoro, 25 on, 5 off, 25 on, completed, one
        # phone distraction; 14:30 a session, 40 on, 10 paused, 10 on,
        # abandoned, two internal distractions on even days.
        for d in range(7):
            day = first + datetime.timedelta(days=d)
            alice = self.at(day + datetime.timedelta(hours=23, minutes=59), alice)
            s = self.start(alice, day + datetime.timedelta(hours=9))
            self.distract(alice, s.id, when=day + datetime.timedelta(hours=9, minutes=3))
            self.move(alice, "break", s.id, day + datetime.timedelta(hours=9, minutes=25))
            self.move(alice, "resume", s.id, day + datetime.timedelta(hours=9, minutes=30))
            self.move(alice, "complete", s.id, day + datetime.timedelta(hours=9, minutes=55))
            s = self.start(alice, day + datetime.timedelta(hours=14, minutes=30),
                           template_id="flowtime")
            if d % 2 == 0:
                for _ in range(2):
                    self.distract(alice, s.id, fs.FOCUS_DISTRACTION_TYPE_INTERNAL,
                                  day + datetime.timedelta(hours=14, minutes=35))
            self.move(alice, "pause", s.id, day + datetime.timedelta(hours=15, minutes=10))
            self.move(alice, "resume", s.id, day + datetime.timedelta(hours=15, minutes=20))
            self.move(alice, "abandon", s.id, day + datetime.timedelta(hours=15, minutes=30))
        # A session from the day before the week: not counted at all.
        alice = self.at(first - datetime.timedelta(minutes=1), alice)
        s = self.start(alice, first - datetime.timedelta(hours=3))
        self.move(alice, "complete", s.id, first - datetime.timedelta(hours=2))
        self.clock.reset()
        alice = self.twd.sign_in(alice.email, alice.password)

        stats = self.call(alice, "GetFocusStats", fs.GetFocusStatsRequest(
            start_date=first.date().isoformat(),
            end_date=(first + datetime.timedelta(days=6)).date().isoformat()))
        self.assertEqual(stats.time_zone, "UTC")
        self.assertEqual((stats.session_count, stats.completed_count, stats.abandoned_count),
                         (14, 7, 7))
        self.assertAlmostEqual(stats.completion_rate, 0.5)
        self.assertEqual(minutes(stats.focused_duration), 7 * 100)
        self.assertEqual(minutes(stats.average_focused_duration), 50)
        self.assertEqual(len(stats.days), 7)
        for i, day in enumerate(stats.days):
            self.assertEqual(day.date, (first + datetime.timedelta(days=i)).date().isoformat())
            self.assertEqual(minutes(day.focused_duration), 100)
            self.assertEqual((day.session_count, day.completed_count), (2, 1))
        hours = {h.hour: h for h in stats.hours}
        self.assertEqual(minutes(hours[9].focused_duration), 7 * 50)
        self.assertEqual(minutes(hours[14].focused_duration), 7 * 30)
        self.assertEqual(minutes(hours[15].focused_duration), 7 * 20)
        self.assertEqual((hours[9].session_count, hours[9].completed_count), (7, 7))
        self.assertEqual((hours[14].session_count, hours[14].completed_count), (7, 0))
        self.assertEqual(list(stats.best_hours), [9, 14, 15])
        self.assertEqual([(d.type, d.count) for d in stats.distractions],
                         [(fs.FOCUS_DISTRACTION_TYPE_INTERNAL, 8),
                          (fs.FOCUS_DISTRACTION_TYPE_PHONE, 7)])
        # One day alone.
        one = self.call(alice, "GetFocusStats", fs.GetFocusStatsRequest(
            start_date=first.date().isoformat(), end_date=first.date().isoformat()))
        self.assertEqual((one.session_count, minutes(one.focused_duration)), (2, 100))


class AutoAbandonTest(unittest.TestCase):
    def test_a_session_left_running_is_abandoned_by_the_server(self):
        env = dict(QUIET, TW_FOCUS_ABANDON_AFTER_MINUTES="60")
        with Twd(env=env) as twd:
            focus = twd.stub(fs_grpc.FocusServiceStub)
            alice = twd.sign_up()
            started = now() - 90 * MIN
            session = focus.StartFocusSession(fs.StartFocusSessionRequest(
                template_id="pomodoro", event_time=ts(started)), metadata=alice.metadata,
                timeout=RPC_TIMEOUT_S).session
            # Left 90 minutes with a 60-minute limit: the job is due at once.

            def abandoned():
                s = focus.GetFocusSession(fs.GetFocusSessionRequest(id=session.id),
                                          metadata=alice.metadata, timeout=RPC_TIMEOUT_S).session
                return s if s.state == fs.FOCUS_SESSION_STATE_ABANDONED else None

            s = wait_until(abandoned, 20, "the server to abandon the session")
            self.assertTrue(s.abandoned_by_server)
            self.assertEqual(s.end_time, ts(started + 60 * MIN))
            self.assertEqual(minutes(s.focused_duration), 60)
            # The user may start again.
            focus.StartFocusSession(fs.StartFocusSessionRequest(template_id="flowtime"),
                                    metadata=alice.metadata, timeout=RPC_TIMEOUT_S)


if __name__ == "__main__":
    unittest.main()
