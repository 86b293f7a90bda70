"""
Stripe failing under twd, end to end: fake_stripe answers the call that
creates a subscription with Stripe's own error answers (a 402 card error,
a 429, a 500) or not at all (a hang past twd's timeout, set small here).
Each reaches the app as the BillingService documents it (PAY_001, or
UNAVAILABLE / UPSTREAM_001 to retry with the same request_id); twd sends
a call again only when that is safe (every POST keyed, the same key each
time; a card error never again), counted at the fake; and nothing is
half-created: the user stays on the free plan with no payment, in the API
and in the store, and Stripe holds no subscription.
"""
import json
import unittest
import uuid

import grpc

from test_billing import BillingCase
from twd_harness import assert_rpc_error
# Generated stubs import only after twd_harness has put them on the path.
from tw.v1 import billing_service_pb2 as bs  # noqa: E402

CODE = grpc.StatusCode
ATTEMPTS = 3
TIMEOUT_MS = 1000
# Key families (store/tw_keyspace.h) that a subscription writes.
BILLING_PAYMENT = 0xA3
BILLING_SUB_BY_PLAN = 0xAD


def stripe_error(type_, message, code=None, **more):
    error = {"type": type_, "message": message}
    if code:
        error["code"] = code
    error.update(more)
    return json.dumps({"error": error})


CASES = {
    # name: (the fake's answer to one attempt, how many attempts, status, reason)
    "402 card error": ({"status": 402, "body": stripe_error(
        "card_error", "Your card was declined.", "card_declined",
        decline_code="generic_decline")}, 1, CODE.FAILED_PRECONDITION, "PAY_001"),
    "429": ({"status": 429, "body": stripe_error(
        "invalid_request_error", "Too many requests hit the API too quickly.",
        "rate_limit")}, ATTEMPTS, CODE.UNAVAILABLE, "UPSTREAM_001"),
    "500": ({"status": 500, "body": stripe_error(
        "api_error", "An unknown error occurred.")}, ATTEMPTS, CODE.UNAVAILABLE, "UPSTREAM_001"),
    "hang": ({"hang_ms": 4 * TIMEOUT_MS}, ATTEMPTS, CODE.UNAVAILABLE, "UPSTREAM_001"),
}


class OutboundErrorTest(BillingCase):
    stripe_overrides = {"TW_STRIPE_TIMEOUT_MS": str(TIMEOUT_MS),
                        "TW_STRIPE_MAX_ATTEMPTS": str(ATTEMPTS)}

    def requests(self):
        return self.fake.call("/_requests")

    def test_each_failure_is_mapped_and_creates_nothing(self):
        for name, (step, attempts, status, reason) in CASES.items():
            with self.subTest(name):
                me, billing = self.user()
                # The customer and the card first, so that the failure hits
                # the subscription itself.
                billing.AttachPaymentMethod(bs.AttachPaymentMethodRequest(
                    payment_method_id="pm_card_visa"), metadata=me.metadata, timeout=30)
                seen = len(self.requests())
                self.fake.call("/_script", [dict(step, path="/v1/subscriptions")] * attempts)
                assert_rpc_error(self, lambda: billing.CreateSubscription(
                    bs.CreateSubscriptionRequest(plan_id="premium",
                                                 request_id=str(uuid.uuid4())),
                    metadata=me.metadata, timeout=60), status, reason)

                sent = [r for r in self.requests()[seen:] if r["path"] == "/v1/subscriptions"]
                self.assertEqual(len(sent), attempts, "attempts at Stripe")
                keys = {r["headers"].get("idempotency-key") for r in sent}
                self.assertEqual(len(keys), 1, "one Idempotency-Key for every attempt")
                self.assertTrue(keys.pop())
                self.assert_nothing_created(me, billing)

    def test_a_safe_read_is_retried_without_a_key(self):
        me, billing = self.user()
        sub = billing.CreateSubscription(bs.CreateSubscriptionRequest(
            plan_id="premium", payment_method_id="pm_card_visa", request_id=str(uuid.uuid4())),
            metadata=me.metadata, timeout=60).subscription
        path = "/v1/subscriptions/" + sub.stripe_subscription_id
        seen = len(self.requests())
        self.fake.call("/_script", [{"path": path, "status": 500, "body": stripe_error(
            "api_error", "An unknown error occurred.")}] * ATTEMPTS)
        assert_rpc_error(self, lambda: self.admin.ResyncSubscription(
            bs.ResyncSubscriptionRequest(user_id=me.user_id), timeout=60),
            CODE.UNAVAILABLE, "UPSTREAM_001")
        sent = [r for r in self.requests()[seen:] if r["path"] == path]
        self.assertEqual([r["method"] for r in sent], ["GET"] * ATTEMPTS)
        self.assertFalse([r for r in sent if "idempotency-key" in r["headers"]])
        # The subscription is as it was.
        again = billing.GetSubscription(bs.GetSubscriptionRequest(), metadata=me.metadata,
                                        timeout=10).subscription
        self.assertEqual((again.id, again.status, again.plan_id),
                         (sub.id, sub.status, sub.plan_id))

    def assert_nothing_created(self, me, billing):
        sub = billing.GetSubscription(bs.GetSubscriptionRequest(), metadata=me.metadata,
                                      timeout=10).subscription
        self.assertEqual((sub.id, sub.plan_id), ("", "free"))
        self.assertEqual(list(billing.ListPayments(bs.ListPaymentsRequest(),
                                                   metadata=me.metadata, timeout=10).payments),
                         [])
        self.assertEqual(billing.GetUsage(bs.GetUsageRequest(), metadata=me.metadata,
                                          timeout=10).plan_id, "free")
        user = uuid.UUID(me.user_id).bytes
        written = [key for _, key, _ in self.twd.store_records()
                   if (key[0] == BILLING_PAYMENT and key[1:17] == user)
                   or (key[0] == BILLING_SUB_BY_PLAN and user in key)]
        self.assertEqual(written, [], "no subscription or payment in the store")
        customer = self.admin.ExportBillingRecords(bs.ExportBillingRecordsRequest(
            user_id=me.user_id), timeout=10).stripe_customer_id
        subs = [s for s in self.fake.state()["objects"].get("subscription", {}).values()
                if s["customer"] == customer]
        self.assertEqual(subs, [], "no subscription at Stripe")


if __name__ == "__main__":
    unittest.main(verbosity=2)
