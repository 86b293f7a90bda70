"""
What every request of every method is held to before any handler runs
(proto/tw/v1/field_rules.proto), checked over the descriptor set so that no
method, and no method added later, can slip through:

- a NUL in any string field, at any depth, is INVALID_ARGUMENT naming that
  field's path, and nothing of it is stored;
- the largest request each method allows (every repeated field at its
  max_items) is answered promptly with an answer no bigger than a small
  multiple of the request (or a fixed bound), while Health/Check keeps
  answering;
- violations are capped: an error trailer always fits the 8 KiB of metadata
  a standard gRPC client accepts (this client refuses more), and a Push of
  the largest batch of bad mutations gets a bounded answer.
"""
import os
import statistics
import sys
import threading
import time
import unittest
import uuid

import grpc

from twd_harness import (TwdTestCase, api_methods, assert_rpc_error, call_method,
                         message_class, method_flags, rpc_error_details)
# Generated stubs import only after twd_harness has put them on the path.
from google.protobuf import timestamp_pb2  # noqa: E402
from google.protobuf.descriptor import FieldDescriptor  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from tw.v1 import field_rules_pb2  # noqa: E402
from tw.v1 import focus_service_pb2, focus_service_pb2_grpc  # noqa: E402
from tw.v1 import sync_service_pb2, sync_service_pb2_grpc  # noqa: E402
from tw.v1 import task_service_pb2, task_service_pb2_grpc  # noqa: E402
from tw.v1 import voice_service_pb2, voice_service_pb2_grpc  # noqa: E402

NUL_TEXT = "a\x00b"
DEFAULT_MAX_ITEMS = 100  # field_rules.proto: a repeated field without max_items
MAX_DEPTH = 6
# The largest request of a shape is kept under the server's 4 MiB message limit.
REQUEST_BUDGET_BYTES = 3 << 20
# An answer may be this many times its request, or this many bytes, whichever is more.
RESPONSE_FACTOR = 2
RESPONSE_FLOOR_BYTES = 64 << 10
# Generous bounds for a 2-core machine running sanitizer builds: the defects
# they catch took 11 s per call and stalled health checks for 24 s.
CALL_BOUND_S = 20.0
HEALTH_P99_BOUND_S = 2.0
STREAM_TIMEOUT_S = 1.0
VIOLATIONS_MAX = 100


def max_items(field):
    rules = field.GetOptions().Extensions[field_rules_pb2.rules]
    return rules.max_items or DEFAULT_MAX_ITEMS


def window_time(field, now):
    """A timestamp inside the field's time_window."""
    rules = field.GetOptions().Extensions[field_rules_pb2.rules]
    ts = timestamp_pb2.Timestamp()
    ts.FromSeconds(int(now) - (60 if rules.time_window else 0))
    return ts


def string_paths(descriptor, prefix="", depth=0):
    """Every string field reachable in a message type, as the path the
    server names it by ("mutations[0].create_task.labels[0]"), with the
    list of (field, index) steps that reach it."""
    for field in descriptor.fields:
        repeated = field.label == FieldDescriptor.LABEL_REPEATED
        name = prefix + field.name + ("[0]" if repeated else "")
        if field.type == FieldDescriptor.TYPE_STRING:
            yield name, [field]
        elif field.message_type is not None and depth < MAX_DEPTH and \
                not field.message_type.GetOptions().map_entry:
            for path, steps in string_paths(field.message_type, name + ".", depth + 1):
                yield path, [field] + steps


def with_string(descriptor, steps, value):
    """A message of descriptor with only the field at steps set to value."""
    msg = message_class(descriptor)()
    node = msg
    for field in steps[:-1]:
        if field.label == FieldDescriptor.LABEL_REPEATED:
            node = getattr(node, field.name).add()
        else:
            node = getattr(node, field.name)
            node.SetInParent()
    last = steps[-1]
    if last.label == FieldDescriptor.LABEL_REPEATED:
        getattr(node, last.name).append(value)
    else:
        setattr(node, last.name, value)
    return msg


def uuid7():
    """A fresh UUIDv7 (time-ordered), the id kind clients make."""
    value = (int(time.time() * 1000) << 80) | (0x7 << 76) | (uuid.uuid4().int & ((1 << 76) - 1))
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def oneof_choices(descriptor, depth=0):
    """How many members the largest oneof reachable from descriptor has: the
    number of request shapes to try (each picks member k of every oneof)."""
    most = max([len(o.fields) for o in descriptor.oneofs] + [1])
    for field in descriptor.fields:
        if field.message_type is not None and depth < MAX_DEPTH:
            most = max(most, oneof_choices(field.message_type, depth + 1))
    return most


class LargestRequest:
    """The largest request of a message type the rules allow: every repeated
    field at its max_items, nested ones too, kept under a byte budget, with
    member `choice` (modulo their number) of every oneof set."""

    def __init__(self, now, choice=0):
        self.now = now
        self.choice = choice

    def scalar(self, field):
        t = field.type
        if t == FieldDescriptor.TYPE_STRING and (field.name == "id" or field.name.endswith("_id")):
            return uuid7()  # an id the handler accepts, so it goes on to the rest
        if t == FieldDescriptor.TYPE_STRING:
            return "x" * 16
        if t == FieldDescriptor.TYPE_BYTES:
            return b"\x00" * 16
        if t == FieldDescriptor.TYPE_BOOL:
            return False  # true switches things on (maintenance mode) for later calls
        if t == FieldDescriptor.TYPE_ENUM:
            numbers = [v.number for v in field.enum_type.values if v.number]
            return numbers[0] if numbers else 0
        if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return 1.5
        return 7

    def fill(self, msg, budget, depth=0):
        """Fills msg with about budget bytes at most; returns its size."""
        for field in msg.DESCRIPTOR.fields:
            oneof = field.containing_oneof
            if oneof is not None and field is not oneof.fields[self.choice % len(oneof.fields)]:
                continue  # one member of each oneof
            if field.message_type is not None and field.message_type.full_name == \
                    "google.protobuf.Timestamp":
                if field.label != FieldDescriptor.LABEL_REPEATED:
                    getattr(msg, field.name).CopyFrom(window_time(field, self.now))
                continue
            if field.label == FieldDescriptor.LABEL_REPEATED:
                container = getattr(msg, field.name)
                n, used = max_items(field), 0
                for _ in range(n):
                    if used >= budget:
                        break
                    if field.message_type is None:
                        value = self.scalar(field)
                        container.append(value)
                        used += len(value) + 2 if isinstance(value, (str, bytes)) else 10
                    elif depth < MAX_DEPTH:
                        used += self.fill(container.add(), max(budget // n, 64), depth + 1) + 3
            elif field.message_type is not None:
                if depth < MAX_DEPTH:
                    sub = getattr(msg, field.name)
                    self.fill(sub, budget, depth + 1)
                    sub.SetInParent()
            else:
                setattr(msg, field.name, self.scalar(field))
        return msg.ByteSize()

    def message(self, descriptor):
        msg = message_class(descriptor)()
        self.fill(msg, REQUEST_BUDGET_BYTES)
        return msg


class LimitsCase(TwdTestCase):
    # Hundreds of calls from one account: limits are tested elsewhere.
    twd_env = {"TW_API_CALLS_PER_HOUR": "100000000",
               "TW_API_WRITE_CALLS_PER_HOUR": "100000000",
               "TW_LOGIN_FAILURES_PER_PEER": "100000"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.flags = method_flags()
        cls.account = cls.twd.sign_up()
        cls.user_channel = cls.twd.channel()
        cls.operator = cls.twd.operator_channel()

    def call(self, service, method, request, timeout=CALL_BOUND_S):
        """Calls as whoever may: admin methods through the operator socket,
        the rest as the signed-in user."""
        path = f"/{service.full_name}/{method.name}"
        if "admin" in self.flags.get(path, ()):
            channel, metadata = self.operator, None
        else:
            channel, metadata = self.user_channel, self.account.metadata
        if method.client_streaming and not isinstance(request, list):
            request = [request]
        try:
            return call_method(channel, service, method, request, metadata=metadata,
                               timeout=timeout, stream_timeout=STREAM_TIMEOUT_S)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAUTHENTICATED or metadata is None:
                raise
        # An earlier request ended the session (LogoutAll): sign in again.
        type(self).account = self.twd.sign_in(self.account.email, self.account.password)
        return call_method(channel, service, method, request, metadata=self.account.metadata,
                           timeout=timeout, stream_timeout=STREAM_TIMEOUT_S)


class NulInEveryStringTest(LimitsCase):
    def test_a_nul_in_any_string_field_of_any_method_is_refused_by_path(self):
        checked = 0
        for service, method in api_methods():
            for path, steps in string_paths(method.input_type):
                request = with_string(method.input_type, steps, NUL_TEXT)
                with self.subTest(method=method.full_name, field=path):
                    with self.assertRaises(grpc.RpcError) as caught:
                        self.call(service, method, request)
                    error = caught.exception
                    self.assertEqual(error.code(), grpc.StatusCode.INVALID_ARGUMENT,
                                     error.details())
                    details = rpc_error_details(error)
                    self.assertEqual(details.reason, "VAL_001")
                    self.assertIn((path, "contains a NUL character"), details.field_violations)
                    checked += 1
        self.assertGreater(checked, 100)
        # Nothing with the NUL reached the store, in any key or value.
        for cf, key, value in self.twd.store_records():
            self.assertNotIn(NUL_TEXT.encode(), key, cf)
            self.assertNotIn(NUL_TEXT.encode(), value, cf)
        self.assertServing()


class HealthProbe(threading.Thread):
    """Calls Health/Check back to back and keeps each call's latency."""

    def __init__(self, twd):
        super().__init__(daemon=True)
        self.stub = health_pb2_grpc.HealthStub(twd.channel())
        self.latencies, self.failures = [], []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            start = time.monotonic()
            try:
                self.stub.Check(health_pb2.HealthCheckRequest(), timeout=30)
            except grpc.RpcError as e:
                self.failures.append(e.code())
            self.latencies.append(time.monotonic() - start)
            time.sleep(0.02)

    def p99(self):
        return statistics.quantiles(self.latencies, n=100)[98]


class LargestRequestTest(LimitsCase):
    def test_every_method_answers_its_largest_request_promptly_and_briefly(self):
        probe = HealthProbe(self.twd)
        probe.start()
        try:
            for service, method in api_methods():
                for choice in range(oneof_choices(method.input_type)):
                    request = LargestRequest(time.time(), choice).message(method.input_type)
                    with self.subTest(method=method.full_name, shape=choice,
                                      request_bytes=request.ByteSize()):
                        self.check_bounded(service, method, request)
        finally:
            probe.done.set()
            probe.join()
        self.assertEqual(probe.failures, [])
        self.assertLess(probe.p99(), HEALTH_P99_BOUND_S,
                        f"Health/Check p99 while the largest requests ran")
        self.assertServing()

    def check_bounded(self, service, method, request):
        start = time.monotonic()
        try:
            answer = self.call(service, method, request)
            answers = answer if isinstance(answer, list) else [answer]
            answer_bytes = sum(a.ByteSize() for a in answers)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and method.server_streaming:
                return  # a watch still open when this client stopped reading
            # Reading the trailer at all proves it fit this client's limit.
            self.assertNotIn(e.code(), {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
                                        grpc.StatusCode.DATA_LOSS}, e.details())
            details = rpc_error_details(e)
            # RESOURCE_EXHAUSTED without our details is this client refusing
            # an answer over its 4 MiB limit: the answer was too big.
            self.assertIsNotNone(details, f"{e.code()}: {e.details()}")
            answer_bytes = details.status.ByteSize()
            if details:
                self.assertLessEqual(len(details.field_violations), VIOLATIONS_MAX + 1)
        elapsed = time.monotonic() - start
        if os.environ.get("TW_LIMITS_VERBOSE"):
            print(f"{method.full_name}: {elapsed:.3f} s, {request.ByteSize()} -> {answer_bytes}",
                  file=sys.stderr)
        self.assertLess(elapsed, CALL_BOUND_S)
        self.assertLessEqual(answer_bytes,
                             max(RESPONSE_FLOOR_BYTES, RESPONSE_FACTOR * request.ByteSize()))


class ViolationBudgetTest(LimitsCase):
    def tasks(self):
        return self.twd.stub(task_service_pb2_grpc.TaskServiceStub)

    def test_a_mask_longer_than_allowed_is_one_violation(self):
        """80,000 unknown paths once took 11 s and a 5.4 MB trailer."""
        task = self.tasks().CreateTask(task_service_pb2.CreateTaskRequest(
            task=task_service_pb2.Task(title="t")), metadata=self.account.metadata).task
        request = task_service_pb2.UpdateTaskRequest(task=task)
        request.update_mask.paths.extend(f"nope{i}" for i in range(80000))
        _, details = assert_rpc_error(
            self, lambda: self.tasks().UpdateTask(request, metadata=self.account.metadata,
                                                  timeout=CALL_BOUND_S),
            grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")
        self.assertEqual(details.field_violations,
                         [("update_mask.paths", "has 80000 items; at most 100 are allowed")])
        again = self.tasks().GetTask(task_service_pb2.GetTaskRequest(id=task.id),
                                     metadata=self.account.metadata).task
        self.assertEqual(again, task)

    def test_many_bad_paths_fit_the_trailer_with_a_count_of_the_rest(self):
        task = self.tasks().CreateTask(task_service_pb2.CreateTaskRequest(
            task=task_service_pb2.Task(title="t")), metadata=self.account.metadata).task
        request = task_service_pb2.UpdateTaskRequest(task=task)
        request.update_mask.paths.extend(f"no_such_field_{i:03}" for i in range(100))
        error, details = assert_rpc_error(
            self, lambda: self.tasks().UpdateTask(request, metadata=self.account.metadata),
            grpc.StatusCode.INVALID_ARGUMENT, "VAL_004")
        violations = details.field_violations
        self.assertLessEqual(len(violations), VIOLATIONS_MAX + 1)
        field, more = violations[-1]
        self.assertEqual(field, "")
        self.assertRegex(more, r"^and \d+ more violations not listed$")
        self.assertEqual(len(violations) - 1 + int(more.split()[1]), 100)
        trailer = dict(error.trailing_metadata())["grpc-status-details-bin"]
        self.assertLess(len(trailer) * 4 / 3 + len(error.details()), 8192)

    def test_a_push_of_the_largest_bad_batch_gets_a_bounded_answer(self):
        """500 mutations of 2,000 paths each once produced a 75 MB answer."""
        push = sync_service_pb2.PushRequest()
        for i in range(500):
            m = push.mutations.add(mutation_id=str(uuid.uuid4()))
            m.update_task.task.id = str(uuid.uuid4())
            m.update_task.update_mask.paths.extend(f"nope{k}" for k in range(100))
        stub = self.twd.stub(sync_service_pb2_grpc.SyncServiceStub)
        start = time.monotonic()
        reply = stub.Push(push, metadata=self.account.metadata, timeout=CALL_BOUND_S)
        self.assertLess(time.monotonic() - start, CALL_BOUND_S)
        self.assertEqual(len(reply.results), 500)
        for result in reply.results:
            self.assertEqual(result.outcome, sync_service_pb2.MUTATION_OUTCOME_REJECTED)
            self.assertLessEqual(len(result.field_violations), 6)
        self.assertLess(reply.ByteSize(), push.ByteSize())

    def test_a_focus_session_cannot_start_in_1970(self):
        focus = self.twd.stub(focus_service_pb2_grpc.FocusServiceStub)
        request = focus_service_pb2.StartFocusSessionRequest(
            template_id="pomodoro", event_time=timestamp_pb2.Timestamp(seconds=0))
        _, details = assert_rpc_error(
            self, lambda: focus.StartFocusSession(request, metadata=self.account.metadata),
            grpc.StatusCode.INVALID_ARGUMENT, "VAL_001")
        self.assertEqual(len(details.field_violations), 1)
        self.assertEqual(details.field_violations[0][0], "event_time")
        self.assertIn("24 hours before the server's clock", details.field_violations[0][1])
        sessions = focus.ListFocusSessions(focus_service_pb2.ListFocusSessionsRequest(),
                                           metadata=self.account.metadata)
        self.assertEqual(list(sessions.sessions), [])


class HeldUpload:
    """An upload that sends its metadata and then waits, holding its stream
    open until released (or cancelled)."""

    def __init__(self, twd, account):
        self.release = threading.Event()
        stub = voice_service_pb2_grpc.VoiceServiceStub(twd.channel())
        self.future = stub.UploadVoiceNote.future(self.messages(), metadata=account.metadata,
                                                  timeout=60)

    def messages(self):
        yield voice_service_pb2.UploadVoiceNoteRequest(
            metadata=voice_service_pb2.VoiceNoteMetadata(file_name="held.wav"))
        self.release.wait(60)

    def error(self, timeout):
        """The call's error once it ended, or None while it still runs."""
        try:
            self.future.result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return None
        except grpc.RpcError as e:
            return e
        raise AssertionError("the held upload succeeded")

    def cancel(self):
        self.future.cancel()
        self.release.set()


class StreamCapsTest(TwdTestCase):
    """Each open stream may hold a file or a decoder: one account holds at
    most its share, and the server at most max_streams."""
    twd_env = {"TW_MAX_UPLOADS_PER_USER": "2", "TW_MAX_WATCHES_PER_USER": "2",
               "TW_MAX_STREAMS": "5"}

    def watch(self, account):
        sync = sync_service_pb2_grpc.SyncServiceStub(self.twd.channel())
        token = sync.Pull(sync_service_pb2.PullRequest(), metadata=account.metadata).next_token
        return sync.Watch(sync_service_pb2.WatchRequest(since_token=token),
                          metadata=account.metadata, timeout=60)

    def assert_refused_now(self, opened, reason):
        """A stream past a cap ends at once with RESOURCE_EXHAUSTED."""
        if isinstance(opened, HeldUpload):
            error = opened.error(timeout=CALL_BOUND_S)
        else:
            with self.assertRaises(grpc.RpcError) as caught:
                next(opened)
            error = caught.exception
        self.assertIsNotNone(error, "the stream past the cap was not refused")
        self.assertEqual(error.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, error.details())
        details = rpc_error_details(error)
        self.assertEqual(details.reason, reason)
        return details

    def test_caps_per_account_and_for_the_server(self):
        alice, bob = self.twd.sign_up(), self.twd.sign_up()
        held = [HeldUpload(self.twd, alice), HeldUpload(self.twd, alice)]
        watches = [self.watch(alice), self.watch(alice)]
        try:
            for h in held:  # both still open: not refused
                self.assertIsNone(h.error(timeout=0.5))
            self.assert_refused_now(HeldUpload(self.twd, alice), "RATE_002")
            self.assert_refused_now(self.watch(alice), "RATE_002")
            # Another account has its own share, up to the server's five.
            held.append(HeldUpload(self.twd, bob))
            self.assertIsNone(held[-1].error(timeout=0.5))
            details = self.assert_refused_now(self.watch(bob), "RATE_003")
            self.assertIsNotNone(details.retry_delay)
            # A stream that ends gives its place back.
            held.pop(0).cancel()
            wait_until = time.monotonic() + CALL_BOUND_S
            while True:
                again = HeldUpload(self.twd, alice)
                if again.error(timeout=0.5) is None or time.monotonic() > wait_until:
                    break
            held.append(again)
            self.assertIsNone(again.error(timeout=0.5))
        finally:
            for h in held:
                h.cancel()
            for w in watches:
                w.cancel()
        self.assertServing()


if __name__ == "__main__":
    unittest.main()
