"""
One user never reaches another's billing, end to end: every BillingService
method that takes an id (a request field named `id` or ending in `_id`,
read from the generated descriptor, so a new one fails this test until it
is covered) is called by Mallory with Alice's ids. Ids of Alice's records
answer NOT_FOUND; Alice's request_ids are Mallory's own (they never replay
Alice's answer); and Alice's billing is the same afterwards.
"""
import unittest
import uuid

import grpc

from test_billing import BillingCase
from twd_harness import assert_rpc_error
# Generated stubs import only after twd_harness has put them on the path.
from tw.v1 import billing_service_pb2 as bs  # noqa: E402

CODE = grpc.StatusCode

# Ids that name no user's record: the plan catalogue is shared by everyone.
SHARED_IDS = {"plan_id"}


def id_fields(message, prefix=""):
    """Names (dotted for nested messages) of the id fields of message."""
    names = []
    for field in message.fields:
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            names += id_fields(field.message_type, prefix + field.name + ".")
        elif field.name == "id" or field.name.endswith("_id"):
            names.append(prefix + field.name)
    return names


class BolaTest(BillingCase):
    def test_every_id_taking_method_with_another_users_ids(self):
        service = bs.DESCRIPTOR.services_by_name["BillingService"]
        taking = {(m.name, f) for m in service.methods for f in id_fields(m.input_type)
                  if f not in SHARED_IDS}

        self.admin.CreatePlan(bs.CreatePlanRequest(plan=bs.Plan(
            id="pro", name="Pro", interval=bs.BILLING_INTERVAL_MONTH,
            prices=[bs.PlanPrice(currency="USD", amount_minor=1999)], active=True)), timeout=30)
        alice, billing = self.user()
        rid = {name: str(uuid.uuid4()) for name in ("sub", "attach", "student", "change")}
        billing.CreateSubscription(bs.CreateSubscriptionRequest(
            plan_id="premium", payment_method_id="pm_card_visa", request_id=rid["sub"]),
            metadata=alice.metadata, timeout=60)
        billing.AttachPaymentMethod(bs.AttachPaymentMethodRequest(
            payment_method_id="pm_card_mastercard", request_id=rid["attach"]),
            metadata=alice.metadata, timeout=60)
        billing.ChangePlan(bs.ChangePlanRequest(plan_id="pro", request_id=rid["change"]),
                           metadata=alice.metadata, timeout=60)
        billing.SubmitStudentVerification(bs.SubmitStudentVerificationRequest(
            academic_email="alice@mit.edu", request_id=rid["student"]),
            metadata=alice.metadata, timeout=30)
        cards = billing.ListPaymentMethods(bs.ListPaymentMethodsRequest(),
                                           metadata=alice.metadata, timeout=10).payment_methods
        default = next(m.id for m in cards if m.is_default)
        other = next(m.id for m in cards if not m.is_default)
        before = self.snapshot(alice, billing)

        mallory, _ = self.user()
        as_mallory = {"metadata": mallory.metadata, "timeout": 60}
        not_found = {
            ("CreateSubscription", "payment_method_id"): lambda: billing.CreateSubscription(
                bs.CreateSubscriptionRequest(plan_id="premium", payment_method_id=default,
                                             request_id=str(uuid.uuid4())), **as_mallory),
            ("AttachPaymentMethod", "payment_method_id"): lambda: billing.AttachPaymentMethod(
                bs.AttachPaymentMethodRequest(payment_method_id=other), **as_mallory),
            ("DetachPaymentMethod", "payment_method_id"): lambda: billing.DetachPaymentMethod(
                bs.DetachPaymentMethodRequest(payment_method_id=other), **as_mallory),
            ("SetDefaultPaymentMethod", "payment_method_id"):
                lambda: billing.SetDefaultPaymentMethod(
                    bs.SetDefaultPaymentMethodRequest(payment_method_id=other), **as_mallory),
        }
        for (method, field), call in not_found.items():
            with self.subTest(method=method, field=field):
                assert_rpc_error(self, call, CODE.NOT_FOUND)

        # Alice's request_ids, sent by Mallory, are Mallory's own requests.
        mine = {}
        mine[("CreateSubscription", "request_id")] = lambda: self.assertNotIn(
            billing.CreateSubscription(bs.CreateSubscriptionRequest(
                plan_id="premium", payment_method_id="pm_card_visa", request_id=rid["sub"]),
                **as_mallory).subscription.id.encode(), before["subscription"])
        mine[("AttachPaymentMethod", "request_id")] = lambda: self.assertNotIn(
            billing.AttachPaymentMethod(bs.AttachPaymentMethodRequest(
                payment_method_id="pm_card_mastercard", request_id=rid["attach"]),
                **as_mallory).payment_method.id.encode(), before["payment_methods"])
        mine[("ChangePlan", "request_id")] = lambda: self.assertNotIn(
            billing.ChangePlan(bs.ChangePlanRequest(plan_id="pro", request_id=rid["change"]),
                               **as_mallory).subscription.id.encode(), before["subscription"])
        mine[("SubmitStudentVerification", "request_id")] = lambda: self.assertNotIn(
            billing.SubmitStudentVerification(bs.SubmitStudentVerificationRequest(
                academic_email="mallory@mit.edu", request_id=rid["student"]),
                **as_mallory).verification.id.encode(), before["student"])
        for (method, field), call in mine.items():
            with self.subTest(method=method, field=field):
                call()

        self.assertEqual(set(not_found) | set(mine), taking,
                         "every id-taking method and field is covered")
        # Nothing of Alice's changed.
        self.assertEqual(self.snapshot(alice, billing), before)

    @staticmethod
    def snapshot(me, billing):
        """Alice's billing as she sees it, serialized."""
        call = {"metadata": me.metadata, "timeout": 10}
        return {
            "subscription": billing.GetSubscription(bs.GetSubscriptionRequest(),
                                                    **call).SerializeToString(),
            "payment_methods": billing.ListPaymentMethods(bs.ListPaymentMethodsRequest(),
                                                          **call).SerializeToString(),
            "payments": billing.ListPayments(bs.ListPaymentsRequest(),
                                             **call).SerializeToString(),
            "student": billing.GetStudentVerification(bs.GetStudentVerificationRequest(),
                                                      **call).SerializeToString(),
        }


if __name__ == "__main__":
    unittest.main(verbosity=2)
