"""
Usage of voice minutes and storage bytes end to end: a real twd with plan
limits enforced (the embedded default, no Stripe), voice notes uploaded as
an app does. An upload uses its duration in minutes (rounded up per note)
and its bytes; deleting a note gives the bytes back but not the minutes;
an upload that would go over its plan's minutes is refused with
RESOURCE_EXHAUSTED / QUOTA_001 and stores nothing, and once the minutes
are used up the next upload is refused before any audio is sent. With
plan_limits "count", every metered call is counted, past the limit too;
API-call counts kept in memory are written when twd stops, and a kill -9
forgets at most the last 63 of a user's.
"""
import signal
import unittest

import grpc

from twd_harness import Twd, TwdTestCase, assert_rpc_error
# Generated stubs import only after twd_harness has put them on the path.
from test_voice import VOICE_ENV, VoiceCalls, wav_of_size  # noqa: E402
from tw.v1 import billing_service_pb2 as bs  # noqa: E402
from tw.v1 import billing_service_pb2_grpc as bs_grpc  # noqa: E402
from tw.v1 import task_service_pb2 as ts  # noqa: E402
from tw.v1 import task_service_pb2_grpc as ts_grpc  # noqa: E402

CODE = grpc.StatusCode
BYTES_PER_SECOND = 32000  # wav_of_size's 16 kHz mono 16-bit
WAV_HEADER = 44


def wav_seconds(seconds):
    return wav_of_size(WAV_HEADER + seconds * BYTES_PER_SECOND)


class VoiceUsageTest(TwdTestCase):
    twd_env = dict(VOICE_ENV, TW_PLAN_LIMITS="enforce")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = bs_grpc.BillingAdminServiceStub(cls.twd.operator_channel())
        cls.admin.CreatePlan(bs.CreatePlanRequest(plan=bs.Plan(
            id="one_minute", name="One minute", interval=bs.BILLING_INTERVAL_MONTH,
            prices=[bs.PlanPrice(currency="USD", amount_minor=100)],
            limits=[bs.UsageLimit(resource=bs.USAGE_RESOURCE_VOICE_MINUTES, limit=1)],
            active=True)), timeout=30)

    def user(self, plan=None):
        me = self.twd.sign_up()
        if plan is not None:
            self.admin.GrantSubscription(bs.GrantSubscriptionRequest(user_id=me.user_id,
                                                                     plan_id=plan), timeout=10)
        return me, VoiceCalls(self, self.twd, me)

    def used(self, me):
        usage = bs_grpc.BillingServiceStub(self.twd.channel()).GetUsage(
            bs.GetUsageRequest(), metadata=me.metadata, timeout=10)
        return {u.resource: u.used for u in usage.usages}

    def test_an_upload_uses_its_minutes_and_bytes_and_deleting_gives_the_bytes_back(self):
        me, calls = self.user()
        short, long = wav_seconds(30), wav_seconds(61)
        first = calls.upload(short, "short.wav")
        used = self.used(me)
        self.assertEqual(used[bs.USAGE_RESOURCE_VOICE_MINUTES], 1)
        self.assertEqual(used[bs.USAGE_RESOURCE_STORAGE_BYTES], len(short))
        calls.upload(long, "long.wav")  # 61 s: two minutes
        used = self.used(me)
        self.assertEqual(used[bs.USAGE_RESOURCE_VOICE_MINUTES], 3)
        self.assertEqual(used[bs.USAGE_RESOURCE_STORAGE_BYTES], len(short) + len(long))
        calls.delete(first.id)
        used = self.used(me)
        self.assertEqual(used[bs.USAGE_RESOURCE_STORAGE_BYTES], len(long))
        self.assertEqual(used[bs.USAGE_RESOURCE_VOICE_MINUTES], 3, "minutes stay used")

    def test_an_upload_over_the_minutes_limit_is_refused(self):
        me, calls = self.user("one_minute")
        # Two minutes of audio against a limit of one: refused at its end.
        error, _ = assert_rpc_error(self, lambda: calls.upload(wav_seconds(61), "long.wav"),
                                    CODE.RESOURCE_EXHAUSTED, "QUOTA_001")
        self.assertIn("voice_minutes 0 of 1", error.details())
        self.assertIn("resets at", error.details())
        calls.assert_nothing_stored()
        used = self.used(me)
        self.assertEqual(used[bs.USAGE_RESOURCE_VOICE_MINUTES], 0)
        self.assertEqual(used[bs.USAGE_RESOURCE_STORAGE_BYTES], 0)
        # One minute fits; then none is left and the next is refused at once.
        calls.upload(wav_seconds(30), "short.wav")
        error, _ = assert_rpc_error(self, lambda: calls.upload(wav_seconds(1), "tiny.wav"),
                                    CODE.RESOURCE_EXHAUSTED, "QUOTA_001")
        self.assertIn("voice_minutes 1 of 1", error.details())
        self.assertEqual(len(calls.list()), 1)


COUNT_ENV = {"TW_PLAN_LIMITS": "count"}


def create_tasks(twd, me, n):
    tasks = ts_grpc.TaskServiceStub(twd.channel())
    for i in range(n):
        tasks.CreateTask(ts.CreateTaskRequest(task=ts.Task(title=f"task {i}")),
                         metadata=me.metadata, timeout=10)


def api_calls(twd, me):
    usage = bs_grpc.BillingServiceStub(twd.channel()).GetUsage(
        bs.GetUsageRequest(), metadata=me.metadata, timeout=10)
    calls = {u.resource: u for u in usage.usages}[bs.USAGE_RESOURCE_API_CALLS]
    return calls.used, calls.limit


class CountedPastTheLimitTest(TwdTestCase):
    twd_env = COUNT_ENV

    def test_every_metered_call_is_counted_past_the_free_limit(self):
        me = self.twd.sign_up()
        create_tasks(self.twd, me, 105)  # the free plan allows 100 API calls a period
        self.assertEqual(api_calls(self.twd, me), (105, 100))


class CountsAcrossARestartTest(unittest.TestCase):
    def restarted(self, calls, sig):
        with Twd(env=COUNT_ENV) as twd:
            me = twd.sign_up()
            create_tasks(twd, me, calls)
            data_dir = twd.data_dir
            twd.stop(sig=sig)
            with Twd(env=COUNT_ENV, data_dir=data_dir) as again:
                return api_calls(again, me)[0]

    def test_counts_in_memory_are_written_when_twd_stops(self):
        self.assertEqual(self.restarted(5, signal.SIGTERM), 5)

    def test_a_kill_forgets_at_most_the_last_63(self):
        self.assertEqual(self.restarted(70, signal.SIGKILL), 64)


if __name__ == "__main__":
    unittest.main()
