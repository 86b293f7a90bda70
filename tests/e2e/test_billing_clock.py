"""
Billing over time, end to end: twd's wall clock moved by libfaketime
(FakeClock) so that a billing period ends and a student approval
expires while the test watches, as a user would see it through the
generated stubs.
"""
import datetime
import unittest
import uuid

import grpc

from twd_harness import FakeClock, TwdTestCase, assert_rpc_error, wait_until
# Generated stubs import only after twd_harness has put them on the path.
from tw.v1 import billing_service_pb2 as bs  # noqa: E402
from tw.v1 import billing_service_pb2_grpc as bs_grpc  # noqa: E402
from tw.v1 import task_service_pb2 as ts  # noqa: E402
from tw.v1 import task_service_pb2_grpc as ts_grpc  # noqa: E402

CODE = grpc.StatusCode
UTC = datetime.timezone.utc


def month_start(when):
    return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(when):
    return month_start(month_start(when) + datetime.timedelta(days=32))


class ClockCase(TwdTestCase):
    """A twd with enforced plan limits whose clock the test moves."""

    @classmethod
    def setUpClass(cls):
        cls.clock = FakeClock()
        cls.addClassCleanup(cls.clock.close)
        cls.twd_env = dict(cls.clock.env, TW_PLAN_LIMITS="enforce")
        super().setUpClass()

    def tearDown(self):
        self.clock.reset()

    def at(self, when, account):
        """Moves twd's clock to when and signs account in again (its access
        token was made at another time)."""
        self.clock.set(when)
        return self.twd.sign_in(account.email, account.password)

    def usage(self, me, resource=bs.USAGE_RESOURCE_API_CALLS):
        billing = bs_grpc.BillingServiceStub(self.twd.channel())
        got = billing.GetUsage(bs.GetUsageRequest(), metadata=me.metadata, timeout=10)
        return next(u for u in got.usages if u.resource == resource)


class QuotaPeriodTest(ClockCase):
    def test_the_next_period_resets_the_quota(self):
        # Mid-month, so that the whole run stays inside one calendar month.
        start = month_start(datetime.datetime.now(UTC)) + datetime.timedelta(days=10, hours=12)
        me = self.at(start, self.twd.sign_up())
        tasks = ts_grpc.TaskServiceStub(self.twd.channel())

        def create():
            return tasks.CreateTask(ts.CreateTaskRequest(task=ts.Task(title="t")),
                                    metadata=me.metadata, timeout=10)
        for _ in range(100):
            create()
        period_end = next_month(start)
        error, _ = assert_rpc_error(self, create, CODE.RESOURCE_EXHAUSTED, "QUOTA_001")
        self.assertIn(period_end.strftime("resets at %Y-%m-%dT%H:%M:%SZ"), error.details())
        used = self.usage(me)
        self.assertEqual((used.used, used.limit), (100, 100))
        self.assertEqual(used.period_end_time.ToDatetime(UTC), period_end)

        # One second before the period ends: still refused.
        me = self.at(period_end - datetime.timedelta(seconds=30), me)
        assert_rpc_error(self, create, CODE.RESOURCE_EXHAUSTED, "QUOTA_001")

        # The next period: the call goes through, counted in the new period.
        me = self.at(period_end + datetime.timedelta(hours=1), me)
        create()
        used = self.usage(me)
        self.assertEqual((used.used, used.limit), (1, 100))
        self.assertEqual(used.period_start_time.ToDatetime(UTC), period_end)
        self.assertEqual(used.period_end_time.ToDatetime(UTC), next_month(period_end))


class StudentExpiryTest(ClockCase):
    def code_sent(self, me, since):
        lines = [line for line in self.twd.logs(since)
                 if line.get("msg") == "student verification code"
                 and line.get("user_id") == me.user_id]
        return lines[-1]["code"] if lines else None

    def verify(self, me):
        billing = bs_grpc.BillingServiceStub(self.twd.channel())
        since = self.twd.log_size()
        billing.SubmitStudentVerification(bs.SubmitStudentVerificationRequest(
            academic_email="ada@mit.edu", request_id=str(uuid.uuid4())),
            metadata=me.metadata, timeout=30)
        code = wait_until(lambda: self.code_sent(me, since), 10, "the code in the log")
        return billing.ConfirmStudentEmail(bs.ConfirmStudentEmailRequest(code=code),
                                           metadata=me.metadata, timeout=10).verification

    def student_price_offered(self, me):
        billing = bs_grpc.BillingServiceStub(self.twd.channel())
        plans = billing.ListPlans(bs.ListPlansRequest(), metadata=me.metadata, timeout=10).plans
        return next(p for p in plans if p.id == "premium").caller_price.amount_minor

    def test_an_approval_expires_after_a_year_and_can_be_renewed(self):
        admin = bs_grpc.BillingAdminServiceStub(self.twd.operator_channel())
        admin.CreatePlan(bs.CreatePlanRequest(plan=bs.Plan(
            id="premium", name="Premium", interval=bs.BILLING_INTERVAL_MONTH,
            prices=[bs.PlanPrice(currency="USD", amount_minor=999),
                    bs.PlanPrice(currency="USD", amount_minor=499,
                                 audience=bs.PRICE_AUDIENCE_STUDENT)],
            active=True)), timeout=30)
        start = datetime.datetime.now(UTC).replace(microsecond=0)
        me = self.at(start, self.twd.sign_up())
        self.assertEqual(self.student_price_offered(me), 999)
        approved = self.verify(me)
        self.assertEqual(approved.status, bs.STUDENT_VERIFICATION_STATUS_APPROVED)
        expires = approved.expire_time.ToDatetime(UTC)
        self.assertEqual(expires.date(), (start + datetime.timedelta(days=365)).date())
        self.assertEqual(self.student_price_offered(me), 499)

        # A year and a day later the approval has expired: no student price.
        me = self.at(start + datetime.timedelta(days=366), me)
        billing = bs_grpc.BillingServiceStub(self.twd.channel())
        got = billing.GetStudentVerification(bs.GetStudentVerificationRequest(),
                                             metadata=me.metadata, timeout=10).verification
        self.assertEqual(got.status, bs.STUDENT_VERIFICATION_STATUS_EXPIRED)
        self.assertEqual(self.student_price_offered(me), 999)

        # Verifying again works and unlocks the student price for a new year.
        again = self.verify(me)
        self.assertEqual(again.status, bs.STUDENT_VERIFICATION_STATUS_APPROVED)
        self.assertNotEqual(again.id, approved.id)
        self.assertGreater(again.expire_time.ToDatetime(UTC), expires)
        self.assertEqual(self.student_price_offered(me), 499)


if __name__ == "__main__":
    unittest.main(verbosity=2)
