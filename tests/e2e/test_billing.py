"""
Billing end to end: a real twd with Stripe pointed at fake_stripe.py (a
loopback server answering as Stripe's API reference shows), webhooks
signed by Stripe's own `stripe` npm package and sent over HTTP, the
student flow, plan limits, and one user never reaching another's billing.
"""
import concurrent.futures
import contextlib
import json
import os
import subprocess
import time
import unittest
import uuid

import grpc

from twd_harness import (REPO_DIR, PortPrinter, Twd, TwdTestCase, assert_rpc_error,
                         run_twd, wait_until)
# Generated stubs import only after twd_harness has put them on the path.
from tw.v1 import auth_service_pb2, auth_service_pb2_grpc  # noqa: E402
from tw.v1 import billing_service_pb2 as bs  # noqa: E402
from tw.v1 import billing_service_pb2_grpc as bs_grpc  # noqa: E402
from tw.v1 import task_service_pb2 as ts  # noqa: E402
from tw.v1 import task_service_pb2_grpc as ts_grpc  # noqa: E402

FAKE_STRIPE = os.path.join(REPO_DIR, "tests", "unit", "clients", "fake_stripe.py")
SIGNER = os.path.join(REPO_DIR, "tests", "unit", "server", "billing", "stripe_sign.js")
NODE_MODULES = os.path.join(REPO_DIR, "node_modules")
SECRET = "whsec_test_billing_e2e"
STRIPE_KEY = "sk_test_fake"
CODE = grpc.StatusCode


def sign(*cases):
    """Stripe-Signature headers made by stripe.webhooks.generateTestHeaderString
    for (payload, secret, timestamp) cases."""
    text = json.dumps([{"payload": p, "secret": s, "timestamp": t} for p, s, t in cases])
    out = subprocess.run(["node", SIGNER, NODE_MODULES], input=text, capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def event(type_, obj, created=None):
    return json.dumps({"id": "evt_" + uuid.uuid4().hex[:24], "object": "event",
                       "api_version": "2024-06-20", "created": created or int(time.time()),
                       "type": type_, "data": {"object": obj}, "livemode": False,
                       "pending_webhooks": 1})


class FakeStripe(PortPrinter):
    def __init__(self):
        super().__init__(["/usr/bin/python3", FAKE_STRIPE, "--key", STRIPE_KEY], "fake Stripe")

    def call(self, path, body=None):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST" if body is not None else "GET", path,
                         body=json.dumps(body) if body is not None else None)
            return json.loads(conn.getresponse().read() or b"null")
        finally:
            conn.close()

    def state(self):
        return self.call("/_state")


def stripe_env(fake):
    return {"TW_STRIPE_SECRET_KEY": STRIPE_KEY,
            "TW_STRIPE_BASE_URL": f"http://127.0.0.1:{fake.port}",
            "TW_STRIPE_WEBHOOK_SECRET": SECRET,
            "TW_STRIPE_TIMEOUT_MS": "2000",
            "TW_STRIPE_MAX_ATTEMPTS": "2",
            "TW_PLAN_LIMITS": "enforce"}


class BillingCase(TwdTestCase):
    """A twd with Stripe (the fake) and enforced plan limits;
    stripe_overrides changes settings of stripe_env."""

    stripe_overrides = {}

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeStripe().__enter__()
        cls.twd_env = dict(stripe_env(cls.fake), **cls.stripe_overrides)
        try:
            super().setUpClass()
        except BaseException:
            cls.fake.__exit__(None, None, None)
            raise
        cls.admin = bs_grpc.BillingAdminServiceStub(cls.twd.operator_channel())
        cls.admin.CreatePlan(bs.CreatePlanRequest(plan=bs.Plan(
            id="premium", name="Premium", interval=bs.BILLING_INTERVAL_MONTH,
            prices=[bs.PlanPrice(currency="USD", amount_minor=999)], active=True)), timeout=30)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.fake.__exit__(None, None, None)

    def user(self):
        me = self.twd.sign_up()
        return me, bs_grpc.BillingServiceStub(self.twd.channel())

    def post_webhook(self, body, header):
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["Stripe-Signature"] = header
        status, _, text = self.twd.http_get("/webhooks/stripe", headers=headers, method="POST",
                                            body=body)
        return status, text

    def post_headers_only(self, length, header):
        """Sends a webhook's headers announcing length bytes of body, then
        reads the answer (status, body): twd answers without waiting for
        the body."""
        import socket
        with socket.create_connection(("127.0.0.1", self.twd.http_port), timeout=30) as sock:
            sock.sendall((f"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"Content-Type: application/json\r\nStripe-Signature: {header}\r\n"
                          f"Content-Length: {length}\r\n\r\n").encode())
            answer = sock.makefile("rb")
            status = int(answer.readline().decode().split()[1])
            headers = {}
            for line in iter(answer.readline, b"\r\n"):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = answer.read(int(headers.get("content-length", "0")))
        return status, body.decode()

    def events(self, **filters):
        return self.admin.ListWebhookEvents(bs.ListWebhookEventsRequest(page_size=500, **filters),
                                            timeout=10).events


class WebhookTest(BillingCase):
    def test_a_signed_event_is_stored_and_processed_once(self):
        body = event("customer.updated", {"id": "cus_unknown", "object": "customer"})
        (header,) = sign((body, SECRET, int(time.time())))
        status, text = self.post_webhook(body, header)
        self.assertEqual(status, 200, text)
        event_id = json.loads(body)["id"]
        stored = wait_until(lambda: [e for e in self.events() if e.id == event_id and e.processed],
                            30, "the event processed")
        self.assertEqual(stored[0].type, "customer.updated")

    def test_bad_deliveries_are_400_and_store_nothing(self):
        now = int(time.time())
        body = event("invoice.paid", {"id": "in_x", "object": "invoice"})
        # Ahead by 301 s plus the seconds signing and sending take, so that
        # it is still more than 300 s ahead when twd reads it.
        good, wrong_secret, old, future = sign((body, SECRET, now), (body, "whsec_other", now),
                                               (body, SECRET, now - 301),
                                               (body, SECRET, now + 301 + 30))
        before = len(self.events())
        cases = {
            "tampered body": (body.replace("in_x", "in_y"), good),
            "wrong secret": (body, wrong_secret),
            "301 s old": (body, old),
            "301 s ahead": (body, future),
            "no header": (body, None),
        }
        for name, (sent, header) in cases.items():
            with self.subTest(name):
                status, text = self.post_webhook(sent, header)
                self.assertEqual(status, 400, text)
        # A 2 MB body, well signed, is refused before it is read, like every
        # other bad delivery: 400 and the reason.
        big = body[:-1] + ', "pad": "' + "x" * (2 << 20) + '"}'
        (big_header,) = sign((big, SECRET, now))
        status, text = self.post_headers_only(len(big), big_header)
        self.assertEqual((status, json.loads(text)), (400, {"error": "SIZE_001"}))
        self.assertEqual(len(self.events()), before, "nothing stored")

    def test_the_same_event_five_times_at_once_is_stored_once(self):
        body = event("customer.updated", {"id": "cus_again", "object": "customer"})
        (header,) = sign((body, SECRET, int(time.time())))
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            statuses = list(pool.map(lambda _: self.post_webhook(body, header)[0], range(5)))
        self.assertEqual(statuses, [200] * 5)
        event_id = json.loads(body)["id"]
        stored = wait_until(lambda: [e for e in self.events() if e.id == event_id and e.processed],
                            30, "the event processed")
        self.assertEqual(len(stored), 1)
        self.assertEqual(stored[0].delivery_count, 5)
        self.assertEqual(stored[0].process_attempts, 1, "one effect")


class SubscriptionTest(BillingCase):
    def subscribe(self, me, billing, card="pm_card_visa", request_id=None):
        return billing.CreateSubscription(bs.CreateSubscriptionRequest(
            plan_id="premium", payment_method_id=card,
            request_id=request_id or str(uuid.uuid4())), metadata=me.metadata, timeout=60)

    def forward_events(self, customer, reverse=False):
        """Delivers the fake's events about customer, signed, in order or
        reversed; returns their ids."""
        events = [e for e in self.fake.state()["events"]
                  if customer in json.dumps(e["data"]["object"])]
        if reverse:
            events.reverse()
        bodies = [json.dumps(e) for e in events]
        headers = sign(*[(b, SECRET, int(time.time())) for b in bodies]) if bodies else []
        for body, header in zip(bodies, headers):
            self.assertEqual(self.post_webhook(body, header)[0], 200)
        ids = {e["id"] for e in events}
        wait_until(lambda: ids <= {e.id for e in self.events() if e.processed}, 60,
                   "every event processed")
        return ids

    def test_subscribe_then_events_in_either_order_end_in_the_same_state(self):
        states = []
        for reverse in (False, True):
            me, billing = self.user()
            sub = self.subscribe(me, billing).subscription
            self.assertEqual(sub.status, bs.SUBSCRIPTION_STATUS_ACTIVE)
            customer = self.admin.ExportBillingRecords(bs.ExportBillingRecordsRequest(
                user_id=me.user_id), timeout=10).stripe_customer_id
            self.fake.call("/_advance", {"subscription": sub.stripe_subscription_id})
            self.forward_events(customer, reverse=reverse)
            final = billing.GetSubscription(bs.GetSubscriptionRequest(),
                                            metadata=me.metadata, timeout=10).subscription
            payments = billing.ListPayments(bs.ListPaymentsRequest(), metadata=me.metadata,
                                            timeout=10).payments
            states.append((final.status, final.plan_id, final.cancel_at_period_end,
                           sorted(p.status for p in payments)))
        self.assertEqual(states[0], states[1])

    def test_deleting_the_account_cancels_its_stripe_subscription(self):
        me, billing = self.user()
        sub = self.subscribe(me, billing).subscription
        auth = self.twd.stub(auth_service_pb2_grpc.AuthServiceStub)
        auth.DeleteAccount(auth_service_pb2.DeleteAccountRequest(password=me.password),
                           metadata=me.metadata, timeout=60)

        def status_at_stripe():
            subscriptions = self.fake.state()["objects"].get("subscription", {})
            return subscriptions[sub.stripe_subscription_id]["status"]
        wait_until(lambda: status_at_stripe() == "canceled", 60,
                   "the deleted account's subscription canceled at Stripe")

    def test_a_declined_card_is_pay_001_and_creates_nothing(self):
        me, billing = self.user()
        assert_rpc_error(self, lambda: self.subscribe(me, billing, "pm_card_chargeDeclined"),
                         CODE.FAILED_PRECONDITION, "PAY_001")
        sub = billing.GetSubscription(bs.GetSubscriptionRequest(), metadata=me.metadata,
                                      timeout=10).subscription
        self.assertEqual(sub.plan_id, "free")

    def test_metrics_count_payments_subscriptions_and_webhook_outcomes(self):
        me, billing = self.user()
        self.subscribe(me, billing)
        declined, billing = self.user()
        with self.assertRaises(grpc.RpcError):
            self.subscribe(declined, billing, "pm_card_chargeDeclined")
        body = event("customer.updated", {"id": "cus_unknown", "object": "customer"})
        (header,) = sign((body, SECRET, int(time.time())))
        self.assertEqual(self.post_webhook(body, header)[0], 200)
        wait_until(lambda: [e for e in self.events() if e.id == json.loads(body)["id"]
                            and e.processed], 30, "the event processed")

        def series():
            status, _, text = self.twd.http_get("/metrics")
            self.assertEqual(status, 200)
            return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines() if line and not line.startswith("#")}
        found = series()
        for name in ('tw_payments_total{status="succeeded"}', 'tw_payments_total{status="failed"}',
                     'tw_subscriptions_started_total{plan="premium"}',
                     'tw_subscription_creations_total{result="succeeded"}',
                     'tw_subscription_creations_total{result="failed"}',
                     'tw_payment_failed_attempts_max_per_user_1h'):
            self.assertGreaterEqual(found.get(name, 0), 1, name)
        outcomes = {k for k in found if k.startswith("tw_stripe_webhooks_total{")}
        self.assertTrue(any('outcome="received"' in k for k in outcomes), outcomes)
        self.assertTrue(any('outcome="processed"' in k or 'outcome="ignored"' in k
                            for k in outcomes), outcomes)

    def test_a_retry_with_the_same_request_id_subscribes_once(self):
        me, billing = self.user()
        rid = str(uuid.uuid4())
        first = self.subscribe(me, billing, request_id=rid)
        again = self.subscribe(me, billing, request_id=rid)
        self.assertEqual(first.subscription.id, again.subscription.id)

    def test_a_refund_retried_after_its_webhook_counts_what_stripe_refunded(self):
        """The first try of a refund reaches Stripe but its answer is lost
        (twd's Stripe calls time out), the charge.refunded webhook is
        applied, then the client retries with the same request_id: the
        answer is Stripe's total, not the webhook's plus the refund again,
        and a full refund (amount 0) gets its answer instead of "refunded
        already"."""
        for amount in (300, 0):
            with self.subTest(amount=amount):
                me, billing = self.user()
                self.subscribe(me, billing)
                payment = billing.ListPayments(bs.ListPaymentsRequest(), metadata=me.metadata,
                                               timeout=10).payments[0]
                customer = self.admin.ExportBillingRecords(bs.ExportBillingRecordsRequest(
                    user_id=me.user_id), timeout=10).stripe_customer_id
                request = bs.RefundPaymentRequest(user_id=me.user_id, payment_id=payment.id,
                                                  amount_minor=amount,
                                                  request_id=str(uuid.uuid4()))
                # Both tries of twd hang past its timeout; Stripe acted on the first.
                self.fake.call("/_script", [
                    {"hang_ms": 5000, "process": True, "path": "/v1/refunds"},
                    {"hang_ms": 5000, "path": "/v1/refunds"}])
                with self.assertRaises(grpc.RpcError):
                    self.admin.RefundPayment(request, timeout=60)
                self.forward_events(customer)
                refunded = amount or payment.amount_minor
                webhooked = billing.ListPayments(bs.ListPaymentsRequest(), metadata=me.metadata,
                                                 timeout=10).payments[0]
                self.assertEqual(webhooked.refunded_minor, refunded)
                answer = wait_until(lambda: self.retried(request), 60, "the retry answered")
                self.assertEqual(answer.payment.refunded_minor, refunded)
                self.assertEqual(answer.payment.status,
                                 bs.PAYMENT_STATUS_REFUNDED if amount == 0
                                 else bs.PAYMENT_STATUS_PARTIALLY_REFUNDED)
                refunds = [r for r in self.fake.state()["objects"]["refund"].values()
                           if r["payment_intent"] == payment.payment_intent_id]
                self.assertEqual([r["amount"] for r in refunds], [refunded])

    def retried(self, request):
        try:
            return self.admin.RefundPayment(request, timeout=30)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.ABORTED:
                return None  # the first call's request_id is still held
            raise

    def test_a_new_price_is_for_new_subscribers_existing_ones_pay_it_from_renewal(self):
        def admin_cli(*args):
            run = run_twd("admin", "billing", *args, "--json", "--data-dir", self.twd.data_dir)
            self.assertEqual(run.returncode, 0, run.stderr)
            return json.loads(run.stdout)
        admin_cli("plan-create", "--id", "plus", "--name", "Plus", "--amount", "999",
                  "--currency", "USD", "--interval", "month", "--feature", "More")

        def subscribe(me, billing):
            return billing.CreateSubscription(bs.CreateSubscriptionRequest(
                plan_id="plus", payment_method_id="pm_card_visa", request_id=str(uuid.uuid4())),
                metadata=me.metadata, timeout=60).subscription
        before, billing = self.user()
        old = subscribe(before, billing)
        self.assertEqual(old.price.amount_minor, 999)
        admin_cli("plan-price", "--id", "plus", "--amount", "1299", "--currency", "USD")
        after, _ = self.user()
        self.assertEqual(subscribe(after, billing).price.amount_minor, 1299)

        def subscription(me):
            return billing.GetSubscription(bs.GetSubscriptionRequest(), metadata=me.metadata,
                                           timeout=10).subscription
        # The existing subscriber keeps 999 for the period paid, 1299 from renewal on.
        kept = wait_until(lambda: (lambda s: s if s.renewal_price.amount_minor == 1299 else None)(
            subscription(before)), 60, "the new price set for the renewal")
        self.assertEqual(kept.price.amount_minor, 999)
        at_stripe = self.fake.state()["objects"]["subscription"][old.stripe_subscription_id]
        self.assertEqual(at_stripe["items"]["data"][0]["price"]["unit_amount"], 1299)

    def test_another_users_ids_are_not_found(self):
        alice, billing = self.user()
        self.subscribe(alice, billing)
        pm = billing.ListPaymentMethods(bs.ListPaymentMethodsRequest(), metadata=alice.metadata,
                                        timeout=10).payment_methods[0]
        mallory, _ = self.user()
        calls = {
            "SetDefaultPaymentMethod": lambda: billing.SetDefaultPaymentMethod(
                bs.SetDefaultPaymentMethodRequest(payment_method_id=pm.id),
                metadata=mallory.metadata, timeout=30),
            "DetachPaymentMethod": lambda: billing.DetachPaymentMethod(
                bs.DetachPaymentMethodRequest(payment_method_id=pm.id),
                metadata=mallory.metadata, timeout=30),
        }
        for name, call in calls.items():
            with self.subTest(name):
                assert_rpc_error(self, call, CODE.NOT_FOUND)
        # Nor does she see any of it.
        self.assertEqual(list(billing.ListPaymentMethods(
            bs.ListPaymentMethodsRequest(), metadata=mallory.metadata,
            timeout=10).payment_methods), [])
        self.assertEqual(list(billing.ListPayments(
            bs.ListPaymentsRequest(), metadata=mallory.metadata, timeout=10).payments), [])
        self.assertEqual(billing.GetSubscription(
            bs.GetSubscriptionRequest(), metadata=mallory.metadata,
            timeout=10).subscription.plan_id, "free")
        # Alice's card is untouched.
        self.assertEqual([m.id for m in billing.ListPaymentMethods(
            bs.ListPaymentMethodsRequest(), metadata=alice.metadata,
            timeout=10).payment_methods], [pm.id])


class ExportTest(BillingCase):
    def test_export_holds_every_payment_method_past_one_page(self):
        me, billing = self.user()
        count = 503  # a page is 500

        def attach(_):
            request = bs.AttachPaymentMethodRequest(payment_method_id="pm_card_visa",
                                                    request_id=str(uuid.uuid4()))
            for _ in range(20):  # writers of one account meet: ABORTED, retried
                try:
                    return billing.AttachPaymentMethod(request, metadata=me.metadata,
                                                       timeout=60).payment_method.id
                except grpc.RpcError as e:
                    if e.code() != CODE.ABORTED:
                        raise
            self.fail("AttachPaymentMethod kept being ABORTED")
        attached = {attach(0)}  # the Stripe customer, made once
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            attached |= set(pool.map(attach, range(count - 1)))
        self.assertEqual(len(attached), count)
        exported = self.admin.ExportBillingRecords(bs.ExportBillingRecordsRequest(
            user_id=me.user_id), timeout=60)
        self.assertEqual({m.id for m in exported.payment_methods}, attached)
        self.assertFalse(exported.truncated)


class QuotaTest(BillingCase):
    def test_the_101st_metered_call_is_refused_until_an_upgrade(self):
        me, billing = self.user()
        tasks = ts_grpc.TaskServiceStub(self.twd.channel())

        def create():
            return tasks.CreateTask(ts.CreateTaskRequest(task=ts.Task(title="t")),
                                    metadata=me.metadata, timeout=10)
        for _ in range(100):
            create()
        _, details = assert_rpc_error(self, create, CODE.RESOURCE_EXHAUSTED, "QUOTA_001")
        usage = billing.GetUsage(bs.GetUsageRequest(), metadata=me.metadata, timeout=10)
        api = next(u for u in usage.usages if u.resource == bs.USAGE_RESOURCE_API_CALLS)
        self.assertEqual((api.used, api.limit), (100, 100))
        # Upgrading lifts it at once.
        self.admin.GrantSubscription(bs.GrantSubscriptionRequest(user_id=me.user_id,
                                                                 plan_id="premium"), timeout=10)
        create()


class StudentTest(BillingCase):
    def code_sent(self, me):
        lines = [line for line in self.twd.logs()
                 if line.get("msg") == "student verification code"
                 and line.get("user_id") == me.user_id]
        return lines[-1]["code"] if lines else None

    def test_code_flow_and_five_wrong_codes_lock(self):
        me, billing = self.user()
        submit = billing.SubmitStudentVerification(bs.SubmitStudentVerificationRequest(
            academic_email="ada@mit.edu", request_id=str(uuid.uuid4())),
            metadata=me.metadata, timeout=30).verification
        self.assertEqual(submit.status, bs.STUDENT_VERIFICATION_STATUS_PENDING_CODE)
        code = wait_until(lambda: self.code_sent(me), 10, "the code in the log")
        done = billing.ConfirmStudentEmail(bs.ConfirmStudentEmailRequest(code=code),
                                           metadata=me.metadata, timeout=10).verification
        self.assertEqual(done.status, bs.STUDENT_VERIFICATION_STATUS_APPROVED)
        self.assertTrue(done.HasField("expire_time"))

        other, _ = self.user()
        billing.SubmitStudentVerification(bs.SubmitStudentVerificationRequest(
            academic_email="bob@ox.ac.uk"), metadata=other.metadata, timeout=30)
        real = wait_until(lambda: self.code_sent(other), 10, "the code in the log")
        wrong = "000000" if real != "000000" else "111111"
        for _ in range(4):
            assert_rpc_error(self, lambda: billing.ConfirmStudentEmail(
                bs.ConfirmStudentEmailRequest(code=wrong), metadata=other.metadata, timeout=10),
                CODE.INVALID_ARGUMENT, "STUDENT_002")
        # The fifth wrong code uses up the tries.
        with self.assertRaises(grpc.RpcError):
            billing.ConfirmStudentEmail(bs.ConfirmStudentEmailRequest(code=wrong),
                                        metadata=other.metadata, timeout=10)
        # Locked: even the right code no longer works.
        assert_rpc_error(self, lambda: billing.ConfirmStudentEmail(
            bs.ConfirmStudentEmailRequest(code=real), metadata=other.metadata, timeout=10),
            CODE.FAILED_PRECONDITION, "STUDENT_003")

    def test_a_document_is_approved_by_an_admin(self):
        me, billing = self.user()
        billing.SubmitStudentVerification(bs.SubmitStudentVerificationRequest(
            document=bs.StudentDocument(file_name="card.pdf", content_type="application/pdf",
                                        content=b"%PDF-1.4 student card")),
            metadata=me.metadata, timeout=30)
        queue = self.admin.ListStudentVerifications(bs.ListStudentVerificationsRequest(),
                                                    timeout=10).verifications
        self.assertIn(me.user_id, [v.user_id for v in queue])
        chunks = self.admin.DownloadStudentDocument(bs.DownloadStudentDocumentRequest(
            user_id=me.user_id), timeout=10)
        self.assertEqual(b"".join(c.chunk for c in chunks), b"%PDF-1.4 student card")
        approved = self.admin.ApproveStudentVerification(bs.ApproveStudentVerificationRequest(
            user_id=me.user_id), timeout=10).verification
        self.assertEqual(approved.status, bs.STUDENT_VERIFICATION_STATUS_APPROVED)


class CrashTest(unittest.TestCase):
    def test_kill_9_during_create_subscription_then_a_retry_subscribes_once(self):
        with FakeStripe() as fake:
            env = stripe_env(fake)
            with Twd(env=env) as twd:
                admin = bs_grpc.BillingAdminServiceStub(twd.operator_channel())
                admin.CreatePlan(bs.CreatePlanRequest(plan=bs.Plan(
                    id="premium", name="Premium", interval=bs.BILLING_INTERVAL_MONTH,
                    prices=[bs.PlanPrice(currency="USD", amount_minor=999)], active=True)),
                    timeout=30)
                me = twd.sign_up()
                billing = bs_grpc.BillingServiceStub(twd.channel())
                request = bs.CreateSubscriptionRequest(plan_id="premium",
                                                       payment_method_id="pm_card_visa",
                                                       request_id=str(uuid.uuid4()))
                # Stripe makes the subscription, but its answer never comes.
                fake.call("/_script", [{"hang_ms": 20000, "process": True}])
                future = billing.CreateSubscription.future(request, metadata=me.metadata,
                                                           timeout=60)
                wait_until(lambda: fake.state()["objects"].get("subscription"), 30,
                           "Stripe making the subscription")
                twd.kill()
                with self.assertRaises(grpc.RpcError):
                    future.result()
                with Twd(env=env, data_dir=twd.data_dir) as again:
                    billing = bs_grpc.BillingServiceStub(again.channel())
                    sub = wait_until(lambda: self.retry(billing, request, me), 90,
                                     "the retry answered").subscription
                    self.assertEqual(sub.plan_id, "premium")
                    objects = fake.state()["objects"]
                    self.assertEqual(len(objects.get("customer", {})), 1)
                    self.assertEqual(len(objects.get("subscription", {})), 1)

    @staticmethod
    def retry(billing, request, me):
        try:
            return billing.CreateSubscription(request, metadata=me.metadata, timeout=30)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE):
                return None  # the pending call is still fresh, or Stripe hangs: again
            raise


class RequestIdCrashTest(unittest.TestCase):
    """kill -9 of twd while Stripe carries out a ChangePlan or a refund,
    then retries with the same request_id after a restart: another request
    is refused (VAL_001 on request_id), the same one is answered, and
    Stripe acted once."""

    def test_kill_9_during_stripe_calls_then_retries_with_the_same_request_id(self):
        with FakeStripe() as fake, contextlib.ExitStack() as twds:
            env = stripe_env(fake)
            twd = twds.enter_context(Twd(env=env))
            admin = bs_grpc.BillingAdminServiceStub(twd.operator_channel())
            for plan, amount in (("premium", 999), ("pro", 1999), ("max", 2999)):
                admin.CreatePlan(bs.CreatePlanRequest(plan=bs.Plan(
                    id=plan, name=plan.title(), interval=bs.BILLING_INTERVAL_MONTH,
                    prices=[bs.PlanPrice(currency="USD", amount_minor=amount)],
                    active=True)), timeout=30)
            me = twd.sign_up()
            sub = bs_grpc.BillingServiceStub(twd.channel()).CreateSubscription(
                bs.CreateSubscriptionRequest(plan_id="premium",
                                             payment_method_id="pm_card_visa"),
                metadata=me.metadata, timeout=60).subscription
            payment = bs_grpc.BillingServiceStub(twd.channel()).ListPayments(
                bs.ListPaymentsRequest(), metadata=me.metadata, timeout=10).payments[0]

            def stripe_sub():
                return fake.state()["objects"]["subscription"][sub.stripe_subscription_id]

            def refunds():
                return list(fake.state()["objects"].get("refund", {}).values())
            updates = len(fake.state()["events"])
            cases = [
                ("ChangePlan", lambda twd: bs_grpc.BillingServiceStub(twd.channel()).ChangePlan,
                 lambda rid, plan="pro": bs.ChangePlanRequest(plan_id=plan, request_id=rid),
                 {"plan": "max"}, {"metadata": me.metadata},
                 lambda: stripe_sub()["items"]["data"][0]["price"]["unit_amount"] == 1999),
                ("RefundPayment", lambda twd: bs_grpc.BillingAdminServiceStub(
                    twd.operator_channel()).RefundPayment,
                 lambda rid, amount=100: bs.RefundPaymentRequest(
                     user_id=me.user_id, payment_id=payment.id, amount_minor=amount,
                     request_id=rid),
                 {"amount": 200}, {}, lambda: len(refunds()) == 1),
            ]
            for name, rpc, request, other, kwargs, stripe_acted in cases:
                with self.subTest(name):
                    rid = str(uuid.uuid4())
                    # Stripe acts, but its answer never comes: twd dies waiting.
                    fake.call("/_script", [{"hang_ms": 20000, "process": True}])
                    future = rpc(twd).future(request(rid), timeout=60, **kwargs)
                    wait_until(stripe_acted, 30, f"Stripe carrying out {name}")
                    twd.kill()
                    with self.assertRaises(grpc.RpcError):
                        future.result()
                    twd = twds.enter_context(Twd(env=env, data_dir=twd.data_dir))
                    assert_rpc_error(self, lambda: rpc(twd)(request(rid, **other), timeout=30,
                                                            **kwargs),
                                     CODE.INVALID_ARGUMENT, "VAL_001")
                    answer = wait_until(lambda: self.retry(rpc(twd), request(rid), kwargs),
                                        90, f"the retry of {name} answered")
                    again = rpc(twd)(request(rid), timeout=30, **kwargs)
                    self.assertEqual(answer, again)
            self.assertEqual(stripe_sub()["items"]["data"][0]["price"]["unit_amount"], 1999)
            self.assertEqual([r["amount"] for r in refunds()], [100])
            changes = [e for e in fake.state()["events"][updates:]
                       if e["type"] == "customer.subscription.updated"]
            self.assertEqual(len(changes), 1, "one plan change at Stripe")

    @staticmethod
    def retry(rpc, request, kwargs):
        try:
            return rpc(request, timeout=30, **kwargs)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE):
                return None  # Stripe still hangs on the first call: again
            raise


class EmbeddedDefaultTest(TwdTestCase):
    """No Stripe configured: payments are refused with a clear reason,
    plans and grants work."""

    def test_payment_calls_say_why_and_grants_work(self):
        me = self.twd.sign_up()
        billing = bs_grpc.BillingServiceStub(self.twd.channel())
        admin = bs_grpc.BillingAdminServiceStub(self.twd.operator_channel())
        admin.CreatePlan(bs.CreatePlanRequest(plan=bs.Plan(
            id="premium", name="Premium", interval=bs.BILLING_INTERVAL_MONTH,
            prices=[bs.PlanPrice(currency="USD", amount_minor=999)], active=True)), timeout=10)
        error, _ = assert_rpc_error(self, lambda: billing.CreateSubscription(
            bs.CreateSubscriptionRequest(plan_id="premium", payment_method_id="pm_card_visa"),
            metadata=me.metadata, timeout=10), CODE.FAILED_PRECONDITION, "PAY_003")
        self.assertIn("administrator", error.details())
        plans = billing.ListPlans(bs.ListPlansRequest(), metadata=me.metadata, timeout=10).plans
        self.assertEqual(sorted(p.id for p in plans), ["free", "premium"])
        admin.GrantSubscription(bs.GrantSubscriptionRequest(user_id=me.user_id,
                                                            plan_id="premium"), timeout=10)
        sub = billing.GetSubscription(bs.GetSubscriptionRequest(), metadata=me.metadata,
                                      timeout=10).subscription
        self.assertEqual((sub.plan_id, sub.provider),
                         ("premium", bs.SUBSCRIPTION_PROVIDER_LOCAL))
        # The runbook's procedures as twd subcommands, over the operator socket.
        revoked = run_twd("admin", "billing", "revoke", "--user-id", me.user_id,
                          "--data-dir", self.twd.data_dir)
        self.assertEqual(revoked.returncode, 0, revoked.stderr)
        self.assertIn("SUBSCRIPTION_STATUS_CANCELED", revoked.stdout)
        exported = run_twd("admin", "billing", "export", "--user-id", me.user_id, "--json",
                           "--data-dir", self.twd.data_dir)
        self.assertEqual(exported.returncode, 0, exported.stderr)
        self.assertEqual(json.loads(exported.stdout)["subscription"]["plan_id"], "free")
        # A webhook with no signing secret configured is refused, stored nowhere.
        status, _, _ = self.twd.http_get("/webhooks/stripe", method="POST", body="{}",
                                         headers={"Stripe-Signature": "t=1,v1=00"})
        self.assertEqual(status, 400)


if __name__ == "__main__":
    unittest.main(verbosity=2)
