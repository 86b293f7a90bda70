"""
What the service kit gives every method the same way, checked over the
descriptor set so that no method (and no method added later) is missed:

- every List (a request with page_size and page_token): a negative
  page_size, a tampered token, a token of another list and a token of the
  same list with other filters are INVALID_ARGUMENT naming the field;
- every create with a request_id: a retry replays the first answer and
  stores nothing more; the same id with another request is refused on
  request_id;
- every Update (a request with update_mask): an empty mask and an unknown
  path are INVALID_ARGUMENT (VAL_004) naming update_mask;
- every request with two bad fields gets both in its BadRequest.

The tables below say how to make data and valid requests for each such
method. A method the descriptors list and a table lacks fails the test:
add its row, and it is covered. twd runs with Stripe pointed at
fake_stripe.py (as in test_billing.py), so that billing's methods answer
as they do in production.
"""
import datetime
import json
import os
import unittest
import uuid

import grpc

from twd_harness import (TwdTestCase, api_methods, assert_rpc_error, call_method,
                         message_class, method_flags, rpc_error_details, wait_until)
# Generated stubs import only after twd_harness has put them on the path.
from google.protobuf import timestamp_pb2  # noqa: E402
from google.protobuf.descriptor import FieldDescriptor  # noqa: E402
from tw.v1 import admin_service_pb2 as adm  # noqa: E402
from tw.v1 import billing_service_pb2 as bs  # noqa: E402
from tw.v1 import focus_service_pb2 as fs  # noqa: E402
from tw.v1 import health_log_service_pb2 as hl  # noqa: E402
from tw.v1 import task_service_pb2 as ts  # noqa: E402
from tw.v1 import voice_service_pb2 as vs  # noqa: E402
from test_billing import SECRET, FakeStripe, event, sign, stripe_env  # noqa: E402

INVALID = grpc.StatusCode.INVALID_ARGUMENT
AUDIO = os.path.join(os.environ["TW_TEST_AUDIO_DIR"], "speech-44k.wav")


def now_ts(minutes_ago=0):
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) -
                   datetime.timedelta(minutes=minutes_ago))
    return t


def has_fields(method, *names):
    fields = method.input_type.fields_by_name
    return all(n in fields for n in names)


class KitCase(TwdTestCase):
    limits = {"TW_API_CALLS_PER_HOUR": "100000000",
              "TW_API_WRITE_CALLS_PER_HOUR": "100000000",
              "TW_MAX_UPLOADS_PER_USER": "100"}

    admin_methods = None  # full names of the methods only admins may call

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeStripe().__enter__()
        try:
            # Plan limits counted, not enforced: these tests make many calls.
            cls.twd_env = {**cls.limits, **stripe_env(cls.fake), "TW_PLAN_LIMITS": "count"}
            super().setUpClass()
        except BaseException:
            cls.fake.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.fake.__exit__(None, None, None)

    def setUp(self):
        self.me = self.twd.sign_up()
        self.channel = self.twd.channel()
        self.operator = self.twd.operator_channel()
        if KitCase.admin_methods is None:
            KitCase.admin_methods = {path.strip("/").replace("/", ".")
                                     for path, flags in method_flags().items() if "admin" in flags}

    def call(self, method_name, request, me=None):
        """Calls as the signed-in user (or me), or, for admin methods,
        through the operator socket (an admin)."""
        service, method = next((s, m) for s, m in api_methods(standard=False)
                               if m.full_name == method_name)
        if method.client_streaming and not isinstance(request, list):
            request = [request]
        if method_name in self.admin_methods:
            return call_method(self.operator, service, method, request, timeout=60)
        return call_method(self.channel, service, method, request,
                           metadata=(me or self.me).metadata, timeout=60)

    # -- data for lists ----------------------------------------------------------

    def task(self, title="t", **fields):
        return self.call("tw.v1.TaskService.CreateTask",
                         ts.CreateTaskRequest(task=ts.Task(title=title, **fields))).task

    def water(self, ml, minutes_ago=5):
        return hl.HealthLog(start_time=now_ts(minutes_ago), water=hl.HealthWater(volume_ml=ml))

    def upload(self, name, request_id=""):
        data = open(AUDIO, "rb").read()[:200000]
        return [vs.UploadVoiceNoteRequest(metadata=vs.VoiceNoteMetadata(
                    file_name=name, request_id=request_id)),
                vs.UploadVoiceNoteRequest(chunk=data)]

    def seed_sessions(self):
        self.twd.sign_in(self.me.email, self.me.password)

    def seed_users(self):
        for _ in range(2):
            self.twd.sign_up()

    def seed_completions(self):
        task = self.task(recurrence=ts.TaskRecurrence(rrule="FREQ=DAILY"),
                         due=ts.TaskDue(date={"year": 2026, "month": 1, "day": 1}))
        for _ in range(2):
            self.call("tw.v1.TaskService.CompleteTask", ts.CompleteTaskRequest(id=task.id))
        return task

    def seed_templates(self):
        for i in range(2):
            self.call("tw.v1.FocusService.CreateFocusTemplate", fs.CreateFocusTemplateRequest(
                template=fs.FocusTemplate(display_name=f"mine {i}",
                                          kind=fs.FOCUS_TEMPLATE_KIND_COUNTDOWN,
                                          focus_duration={"seconds": 600})))

    def seed_focus_sessions(self):
        for _ in range(2):
            self.call("tw.v1.FocusService.CreateFocusSession",
                      fs.CreateFocusSessionRequest(template_id="pomodoro"))

    def seed_health(self):
        for ml in (100, 200):
            self.call("tw.v1.HealthLogService.CreateHealthLog",
                      hl.CreateHealthLogRequest(health_log=self.water(ml)))

    def seed_voice(self):
        for i in range(2):
            self.call("tw.v1.VoiceService.UploadVoiceNote", self.upload(f"n{i}.wav"))

    # -- billing ------------------------------------------------------------------

    def plan(self, amount=999):
        """A new paid monthly plan (made at the fake Stripe too); its id."""
        plan_id = "kit-" + uuid.uuid4().hex[:12]
        self.call("tw.v1.BillingAdminService.CreatePlan", bs.CreatePlanRequest(plan=bs.Plan(
            id=plan_id, name="Kit", interval=bs.BILLING_INTERVAL_MONTH,
            prices=[bs.PlanPrice(currency="USD", amount_minor=amount)], active=True)))
        return plan_id

    def paid_plan(self):
        """One paid plan for the whole test."""
        if not hasattr(self, "_paid_plan"):
            self._paid_plan = self.plan()
        return self._paid_plan

    def subscribed(self):
        """The signed-in user's subscription, made when they have none."""
        sub = self.call("tw.v1.BillingService.GetSubscription",
                        bs.GetSubscriptionRequest()).subscription
        if sub.plan_id == "free":
            sub = self.call("tw.v1.BillingService.CreateSubscription",
                            bs.CreateSubscriptionRequest(plan_id=self.paid_plan(),
                                                         payment_method_id="pm_card_visa")
                            ).subscription
        return sub

    def post_events(self, *bodies):
        headers = sign(*[(b, SECRET, int(datetime.datetime.now().timestamp())) for b in bodies])
        for body, header in zip(bodies, headers):
            status, _, text = self.twd.http_get(
                "/webhooks/stripe", method="POST", body=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": header})
            self.assertEqual(status, 200, text)

    def seed_plans(self):
        for _ in range(2):
            self.plan()

    def seed_payments(self):
        """The first invoice, then a renewal's, delivered as Stripe would."""
        sub = self.subscribed()
        self.fake.call("/_advance", {"subscription": sub.stripe_subscription_id})
        self.post_events(*[json.dumps(e) for e in self.fake.state()["events"]
                           if sub.stripe_subscription_id in json.dumps(e["data"]["object"])])
        wait_until(lambda: len(self.call("tw.v1.BillingService.ListPayments",
                                         bs.ListPaymentsRequest()).payments) >= 2,
                   60, "two payments")

    def seed_payment_methods(self):
        for card in ("pm_card_visa", "pm_card_mastercard"):
            self.call("tw.v1.BillingService.AttachPaymentMethod",
                      bs.AttachPaymentMethodRequest(payment_method_id=card))

    def seed_webhook_events(self):
        self.post_events(*[event("customer.updated", {"id": f"cus_kit{i}", "object": "customer"})
                           for i in range(2)])

    def seed_students(self):
        for _ in range(2):
            self.call("tw.v1.BillingService.SubmitStudentVerification",
                      bs.SubmitStudentVerificationRequest(document=bs.StudentDocument(
                          file_name="card.pdf", content_type="application/pdf",
                          content=b"%PDF-1.4 student card")), me=self.twd.sign_up())

    # Each List: (make at least two items, the request with other filters or
    # None[, the fields every request of it needs]).
    LISTS = {
        "tw.v1.AuthService.ListSessions": (seed_sessions, None),
        "tw.v1.AdminService.ListUsers":
            (seed_users, lambda r: setattr(r, "filter", adm.USER_FILTER_ADMIN)),
        "tw.v1.AdminService.ListUserSessions":
            (seed_sessions, lambda r: setattr(r, "user_id", str(uuid.uuid4())),
             lambda self, r: setattr(r, "user_id", self.me.user_id)),
        "tw.v1.TaskService.ListTasks":
            (lambda self: [self.task("a"), self.task("b")],
             lambda r: setattr(r, "order_by", ts.TASK_ORDER_PRIORITY)),
        "tw.v1.TaskService.ListCompletions":
            (seed_completions, lambda r: setattr(r, "task_id", str(uuid.uuid4()))),
        "tw.v1.FocusService.ListFocusTemplates": (seed_templates, None),
        "tw.v1.FocusService.ListFocusSessions":
            (seed_focus_sessions, lambda r: setattr(r, "state", fs.FOCUS_SESSION_STATE_PLANNED)),
        "tw.v1.HealthLogService.ListHealthLogs":
            (seed_health, lambda r: setattr(r, "type", hl.HEALTH_LOG_TYPE_WATER)),
        "tw.v1.VoiceService.ListVoiceNotes":
            (seed_voice, lambda r: setattr(r, "status", vs.VOICE_NOTE_STATUS_PENDING)),
        "tw.v1.BillingService.ListPlans": (seed_plans, lambda r: setattr(r, "currency", "EUR")),
        "tw.v1.BillingService.ListPayments": (seed_payments, None),
        "tw.v1.BillingService.ListPaymentMethods": (seed_payment_methods, None),
        "tw.v1.BillingAdminService.ListAllPlans": (seed_plans, None),
        "tw.v1.BillingAdminService.ListWebhookEvents":
            (seed_webhook_events, lambda r: setattr(r, "type", "invoice.paid")),
        "tw.v1.BillingAdminService.ListStudentVerifications":
            (seed_students,
             lambda r: setattr(r, "status", bs.STUDENT_VERIFICATION_STATUS_REJECTED)),
    }

    # Each method with a request_id: two different valid requests (i = 0, 1).
    def complete_request(self, i):
        if not hasattr(self, "_recurring"):
            self._recurring = self.seed_completions()
        return ts.CompleteTaskRequest(id=self._recurring.id, complete_time=now_ts(i + 1))

    def change_plan_request(self, i):
        self.subscribed()
        if not hasattr(self, "_targets"):
            self._targets = [self.plan(1999), self.plan(2999)]
        return bs.ChangePlanRequest(plan_id=self._targets[i])

    def set_price_request(self, i):
        if not hasattr(self, "_priced"):
            self._priced = self.plan()
        return bs.SetPlanPriceRequest(plan_id=self._priced,
                                      price=bs.PlanPrice(currency="USD", amount_minor=1000 + i))

    def refund_request(self, i):
        self.subscribed()
        payment = wait_until(lambda: self.call("tw.v1.BillingService.ListPayments",
                                               bs.ListPaymentsRequest()).payments,
                             60, "the first payment")[0]
        return bs.RefundPaymentRequest(user_id=self.me.user_id, payment_id=payment.id,
                                       amount_minor=1 + i)

    CREATES = {
        "tw.v1.TaskService.CreateTask": lambda self, i: ts.CreateTaskRequest(
            task=ts.Task(title=f"task {i}")),
        "tw.v1.TaskService.CompleteTask": complete_request,
        "tw.v1.FocusService.CreateFocusTemplate": lambda self, i: fs.CreateFocusTemplateRequest(
            template=fs.FocusTemplate(display_name=f"t{i}", kind=fs.FOCUS_TEMPLATE_KIND_COUNTDOWN,
                                      focus_duration={"seconds": 600 + i})),
        "tw.v1.FocusService.CreateFocusSession": lambda self, i: fs.CreateFocusSessionRequest(
            template_id="pomodoro", tags=[f"tag{i}"]),
        "tw.v1.FocusService.StartFocusSession": lambda self, i: fs.StartFocusSessionRequest(
            template_id="pomodoro", tags=[f"tag{i}"]),
        "tw.v1.HealthLogService.CreateHealthLog": lambda self, i: hl.CreateHealthLogRequest(
            health_log=self.water(100 + i)),
        "tw.v1.HealthLogService.BatchCreateHealthLogs":
            lambda self, i: hl.BatchCreateHealthLogsRequest(entries=[self.water(100 + i)]),
        "tw.v1.VoiceService.UploadVoiceNote": lambda self, i: self.upload(f"note {i}.wav"),
        "tw.v1.BillingService.CreateSubscription":
            lambda self, i: bs.CreateSubscriptionRequest(
                plan_id=self.paid_plan(),
                payment_method_id=("pm_card_visa", "pm_card_mastercard")[i]),
        "tw.v1.BillingService.ChangePlan": change_plan_request,
        "tw.v1.BillingService.AttachPaymentMethod": lambda self, i: bs.AttachPaymentMethodRequest(
            payment_method_id=("pm_card_visa", "pm_card_mastercard")[i]),
        "tw.v1.BillingService.SubmitStudentVerification":
            lambda self, i: bs.SubmitStudentVerificationRequest(academic_email=f"s{i}@mit.edu"),
        "tw.v1.BillingAdminService.CreatePlan": lambda self, i: bs.CreatePlanRequest(plan=bs.Plan(
            id="kit-" + uuid.uuid4().hex[:12], name=f"Kit {i}", interval=bs.BILLING_INTERVAL_MONTH,
            prices=[bs.PlanPrice(currency="USD", amount_minor=999)], active=True)),
        "tw.v1.BillingAdminService.SetPlanPrice": set_price_request,
        "tw.v1.BillingAdminService.RefundPayment": refund_request,
    }


def lists():
    return [(s, m) for s, m in api_methods(standard=False)
            if has_fields(m, "page_size", "page_token")]


def creates():
    """Methods whose request (or first stream message) has a request_id."""
    found = []
    for s, m in api_methods(standard=False):
        fields = m.input_type.fields_by_name
        if "request_id" in fields or ("metadata" in fields and
                                      "request_id" in fields["metadata"].message_type.fields_by_name):
            found.append((s, m))
    return found


def set_request_id(request, rid):
    if isinstance(request, list):
        request[0].metadata.request_id = rid
    else:
        request.request_id = rid


class PageTest(KitCase):
    def list_request(self, method, **fields):
        """A request of the List method with fields and those it always needs."""
        request = message_class(method.input_type)(**fields)
        row = self.LISTS.get(method.full_name, ())
        if len(row) > 2:
            row[2](self, request)
        return request

    def test_every_list_refuses_bad_sizes_and_tokens_of_other_lists_or_filters(self):
        tokens = {}
        for service, method in lists():
            with self.subTest(method=method.full_name):
                self.assertIn(method.full_name, self.LISTS, "no way to fill this list: add it")
                seed, other_filter = self.LISTS[method.full_name][:2]
                seed(self)

                def request_type(method=method, **fields):
                    return self.list_request(method, **fields)
                assert_rpc_error(self, lambda: self.call(method.full_name,
                                                         request_type(page_size=-1)),
                                 INVALID, "VAL_001")
                first = self.call(method.full_name, request_type(page_size=1))
                token = first.next_page_token
                self.assertTrue(token, "two items, a page of one: a next page")
                tokens[method.full_name] = token
                # The token works for the very request it was given for.
                self.call(method.full_name, request_type(page_size=1, page_token=token))
                tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
                _, details = assert_rpc_error(
                    self, lambda: self.call(method.full_name,
                                            request_type(page_size=1, page_token=tampered)),
                    INVALID, "VAL_003")
                self.assertEqual(details.field_violations[0][0], "page_token")
                if other_filter is not None:
                    other = request_type(page_size=1, page_token=token)
                    other_filter(other)
                    assert_rpc_error(self, lambda: self.call(method.full_name, other),
                                     INVALID, "VAL_003")
        # A token of one list is no token of another.
        for _, method in lists():
            for name, token in tokens.items():
                if name == method.full_name:
                    continue
                with self.subTest(method=method.full_name, token_of=name):
                    request = self.list_request(method, page_token=token)
                    assert_rpc_error(self, lambda: self.call(method.full_name, request),
                                     INVALID, "VAL_003")


class RequestIdTest(KitCase):
    def entity_keys(self):
        """The keys of entities (the data column family): a second entity
        made by a retry shows here; a transcription finishing meanwhile
        only changes values, indexes and the change log."""
        return sorted(key for cf, key, _ in self.twd.store_records() if cf == "data")

    def test_every_create_replays_a_retry_and_refuses_a_reused_id(self):
        for service, method in creates():
            with self.subTest(method=method.full_name):
                self.assertIn(method.full_name, self.CREATES, "no valid request known: add it")
                make = self.CREATES[method.full_name]
                rid = str(uuid.uuid4())
                first_request = make(self, 0)
                set_request_id(first_request, rid)
                first = self.call(method.full_name, first_request)
                records = self.entity_keys()
                again_request = make(self, 0)
                set_request_id(again_request, rid)
                # Not a byte of difference allowed between the two requests.
                if not isinstance(again_request, list):
                    again_request.CopyFrom(first_request)
                again = self.call(method.full_name, again_request)
                self.assertEqual(again, first, "a retry gets the first answer")
                self.assertEqual(self.entity_keys(), records, "a retry stores nothing")
                other = make(self, 1)
                set_request_id(other, rid)
                _, details = assert_rpc_error(self, lambda: self.call(method.full_name, other),
                                              INVALID, "VAL_001")
                self.assertEqual(details.field_violations,
                                 [("request_id", "was already used for a different request")])
                if method.full_name == "tw.v1.FocusService.StartFocusSession":
                    session = first.session
                    self.call("tw.v1.FocusService.AbandonFocusSession",
                              fs.AbandonFocusSessionRequest(session_id=session.id))


class MaskTest(KitCase):
    def test_every_update_refuses_an_empty_mask_and_unknown_paths(self):
        updates = [(s, m) for s, m in api_methods(standard=False)
                   if has_fields(m, "update_mask")]
        self.assertGreater(len(updates), 2)
        for service, method in updates:
            request_type = message_class(method.input_type)
            resource = next(f for f in method.input_type.fields
                            if f.message_type is not None and f.name != "update_mask")
            with self.subTest(method=method.full_name):
                request = request_type()
                getattr(request, resource.name).SetInParent()
                if "id" in resource.message_type.fields_by_name:
                    setattr(getattr(request, resource.name), "id", str(uuid.uuid4()))
                _, details = assert_rpc_error(
                    self, lambda: self.call(method.full_name, request), INVALID, "VAL_004")
                self.assertEqual(details.field_violations[0][0], "update_mask")
                request.update_mask.paths.append("no_such_field")
                _, details = assert_rpc_error(
                    self, lambda: self.call(method.full_name, request), INVALID, "VAL_004")
                self.assertIn("no_such_field", details.field_violations[0][1])


class TwoBadFieldsTest(KitCase):
    def test_two_bad_fields_are_both_reported(self):
        checked = 0
        for service, method in api_methods(standard=False):
            strings = [f for f in method.input_type.fields
                       if f.type == FieldDescriptor.TYPE_STRING and
                       f.label != FieldDescriptor.LABEL_REPEATED]
            if len(strings) < 2:
                continue
            request = message_class(method.input_type)()
            for f in strings[:2]:
                setattr(request, f.name, "bad\x00")
            with self.subTest(method=method.full_name):
                _, details = assert_rpc_error(
                    self, lambda: self.call(method.full_name, request), INVALID, "VAL_001")
                named = {field for field, _ in details.field_violations}
                self.assertLessEqual({f.name for f in strings[:2]}, named)
                checked += 1
        self.assertGreater(checked, 10)


if __name__ == "__main__":
    unittest.main()
