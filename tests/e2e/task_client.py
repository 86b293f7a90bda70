"""
task_client: what the task and sync end-to-end tests share. A signed-in
user's view of TaskService and SyncService through the generated stubs,
builders for tasks and dues, a Watch stream read on a thread of its own,
and the store's task records (to prove a refused call stored nothing).
"""
import datetime
import queue
import threading
import uuid
import zoneinfo

from google.protobuf import field_mask_pb2, timestamp_pb2

from twd_harness import RPC_TIMEOUT_S
from tw.v1 import (calendar_date_pb2, sync_service_pb2, sync_service_pb2_grpc,  # noqa: E402
                   task_service_pb2, task_service_pb2_grpc)

T = task_service_pb2
S = sync_service_pb2

# twd settings for tests that make many calls quickly.
FAST_TWD_ENV = {
    "TW_API_CALLS_PER_HOUR": "10000000",
    "TW_API_WRITE_CALLS_PER_HOUR": "10000000",
    "TW_DURABILITY": "fast",
}
# The key prefixes of task and sync data (store/tw_keyspace.h).
TASK_PREFIXES = range(0x60, 0x70)


def uuid7():
    """A UUIDv7 as a client would make one (RFC 9562)."""
    ms = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
    rand = uuid.uuid4().int
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand & ((1 << 12) - 1)) << 64
    value |= 0b10 << 62 | (rand >> 12) & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def timestamp(dt):
    """A Timestamp for an aware datetime."""
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt.astimezone(datetime.timezone.utc))
    return ts


def local(zone, *fields):
    """An aware datetime of a local wall time in an IANA zone."""
    return datetime.datetime(*fields, tzinfo=zoneinfo.ZoneInfo(zone))


def due_at(zone, *fields):
    return T.TaskDue(time=timestamp(local(zone, *fields)), time_zone=zone)


def due_on(year, month, day, zone=""):
    return T.TaskDue(date=calendar_date_pb2.CalendarDate(year=year, month=month, day=day),
                     time_zone=zone)


def mask(*paths):
    return field_mask_pb2.FieldMask(paths=list(paths))


def task_records(twd):
    """The store's task and sync records (key family 0x60-0x6F), as a set."""
    return {(cf, key, value) for cf, key, value in twd.store_records()
            if key[0] in TASK_PREFIXES}


class UserView:
    """One signed-in device of an account: TaskService and SyncService
    calls with its token."""

    def __init__(self, twd, account):
        self.twd = twd
        self.account = account
        channel = twd.channel()
        self.tasks = task_service_pb2_grpc.TaskServiceStub(channel)
        self.sync = sync_service_pb2_grpc.SyncServiceStub(channel)

    def call(self, service, method, request, timeout=RPC_TIMEOUT_S):
        stub = self.tasks if service == "tasks" else self.sync
        return getattr(stub, method)(request, metadata=self.account.metadata, timeout=timeout)

    def t(self, method, request):
        """A TaskService call."""
        return self.call("tasks", method, request)

    def create(self, title="A task", **fields):
        return self.t("CreateTask", T.CreateTaskRequest(task=T.Task(title=title, **fields))).task

    def get(self, task_id):
        return self.t("GetTask", T.GetTaskRequest(id=task_id)).task

    def list_all(self, page_size=50, limit_pages=1000, **filters):
        """Every task a ListTasks query returns, page by page, and the number
        of pages."""
        tasks, token, pages = [], "", 0
        while pages < limit_pages:
            reply = self.t("ListTasks", T.ListTasksRequest(page_size=page_size, page_token=token,
                                                           **filters))
            tasks.extend(reply.tasks)
            pages += 1
            token = reply.next_page_token
            if not token:
                return tasks, pages
        raise AssertionError("ListTasks kept returning pages")

    def pull_all(self, token="", types=(), page_size=100, limit_pages=1000):
        """Every change after token, and the token after them."""
        changes = []
        for _ in range(limit_pages):
            reply = self.call("sync", "Pull", S.PullRequest(since_token=token,
                                                             resource_types=list(types),
                                                             page_size=page_size))
            assert not reply.full_resync_required
            changes.extend(reply.changes)
            token = reply.next_token
            if not reply.has_more:
                return changes, token
        raise AssertionError("Pull kept saying has_more")

    def push(self, *mutations):
        return self.call("sync", "Push", S.PushRequest(mutations=list(mutations))).results

    def watch(self, token, types=()):
        return WatchStream(self, token, types)


def apply_changes(state, changes):
    """A client's local copy of its tasks (id -> Task) after changes."""
    for change in changes:
        if change.resource_type != "task":
            continue
        if change.deleted:
            state.pop(change.resource_id, None)
        else:
            state[change.resource_id] = change.task
    return state


class WatchStream:
    """A Watch call read on a thread of its own; messages arrive in a queue.
    The stream's end (status or error) arrives as an exception object."""

    def __init__(self, view, token, types=()):
        self.call = view.sync.Watch(S.WatchRequest(since_token=token, resource_types=list(types)),
                                    metadata=view.account.metadata)
        self.messages = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for message in self.call:
                self.messages.put(message)
            self.messages.put(StopIteration())
        except Exception as error:  # the stream's end, as grpc reports it
            self.messages.put(error)

    def next(self, timeout=RPC_TIMEOUT_S):
        """The next message; raises what ended the stream."""
        item = self.messages.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    def changes_until(self, predicate, timeout=RPC_TIMEOUT_S, limit=1000):
        """Messages' changes until predicate(all changes so far) holds, and
        the last token seen."""
        changes, token = [], None
        for _ in range(limit):
            message = self.next(timeout)
            changes.extend(message.changes)
            token = message.token
            if predicate(changes):
                return changes, token
        raise AssertionError("Watch sent too many messages")

    def end(self, timeout=RPC_TIMEOUT_S):
        """What ended the stream (waiting for it)."""
        for _ in range(10000):
            item = self.messages.get(timeout=timeout)
            if isinstance(item, BaseException):
                return item
        raise AssertionError("Watch never ended")

    def cancel(self):
        self.call.cancel()
        self.thread.join(RPC_TIMEOUT_S)
