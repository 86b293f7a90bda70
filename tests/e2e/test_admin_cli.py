"""
`twd admin`'s one request filler (server/admin_commands.c) against a real
twd: --field PATH=VALUE into nested and repeated fields, --request-json in
proto3 JSON, a command's own options standing for paths; every bad option
one line on stderr, exit code 2 and nothing sent. Then the runbook's
"Subscription Plan Management" as `twd admin billing plan-*` commands:
create, price (new subscribers pay it, existing ones keep theirs),
deactivate and activate, and a request_id's retry.
"""
import json
import unittest
import uuid

from twd_harness import TwdTestCase, run_twd
# Generated stubs import only after twd_harness has put them on the path.
from tw.v1 import billing_service_pb2 as bs  # noqa: E402
from tw.v1 import billing_service_pb2_grpc as bs_grpc  # noqa: E402


class AdminCliTest(TwdTestCase):
    def setUp(self):
        self.admin = bs_grpc.BillingAdminServiceStub(self.twd.operator_channel())

    def admin_cli(self, *args):
        return run_twd("admin", *args, "--data-dir", self.twd.data_dir)

    def ok(self, *args):
        run = self.admin_cli(*args, "--json")
        self.assertEqual(run.returncode, 0, run.stderr)
        return json.loads(run.stdout)

    def plans(self):
        return {p.id: p for p in self.admin.ListAllPlans(bs.ListAllPlansRequest(),
                                                         timeout=10).plans}

    def test_bad_options_are_one_line_exit_2_and_send_nothing(self):
        cases = [
            (["billing", "plan-create", "--id", "x", "--amount", "abc"],
             "plan.prices[0].amount_minor: \"abc\" is not an int64"),
            (["billing", "plan-create", "--field", "plan.nope=1"],
             "plan.nope: tw.v1.Plan has no field nope"),
            (["billing", "plan-create", "--field", "plan.prices.currency=USD"],
             "needs an index [i] into a list of messages"),
            (["billing", "plan-create", "--field", "plan.prices[1].currency=USD"],
             "skips an index"),
            (["billing", "plan-create", "--field", "plan.id.x=1"],
             "goes on past a field that is not a message"),
            (["billing", "plan-create", "--field", "plan.active=yes"], "takes true or false"),
            (["billing", "plan-create", "--field", "plan"], "is not PATH=VALUE"),
            (["billing", "plan-create", "--field", "plan.prices[0]=USD"],
             "takes a JSON object"),
            (["billing", "plan-create", "--interval", "weekly"],
             "plan.interval: \"weekly\" is not a tw.v1.BillingInterval"),
            (["billing", "plan-create", "--request-json", "{\"plan\": "], "not JSON"),
            (["billing", "plan-create", "--request-json", "[1]"], "must be a JSON object"),
            (["billing", "plan-create", "--request-json", "{\"plan\": {\"colour\": 1}}"],
             "plan.colour: tw.v1.Plan has no such field"),
            (["billing", "grant", "--user-id", str(uuid.uuid4()), "--end-time", "tomorrow"],
             "end_time: \"tomorrow\" is not an RFC 3339 time"),
            (["user", "list", "--page-size", "1.5"], "page_size: \"1.5\" is not an int32"),
        ]
        for args, error in cases:
            with self.subTest(args=args):
                run = self.admin_cli(*args)
                self.assertEqual(run.returncode, 2, run.stderr)
                self.assertIn(error, run.stderr)
                self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
                self.assertEqual(run.stdout, "")
        self.assertEqual(sorted(self.plans()), ["free"])

    def test_plan_management_as_subcommands(self):
        made = self.ok("billing", "plan-create", "--id", "premium", "--name", "Premium",
                       "--amount", "999", "--currency", "usd", "--interval", "month",
                       "--feature", "Unlimited tasks", "--feature", "AI planning",
                       "--description", "Everything")["plan"]
        self.assertEqual((made["prices"][0]["currency"], made["prices"][0]["amount_minor"]),
                         ("USD", "999"))
        plan = self.plans()["premium"]
        self.assertEqual((plan.name, plan.description, plan.interval, plan.active),
                         ("Premium", "Everything", bs.BILLING_INTERVAL_MONTH, True))
        self.assertEqual(list(plan.features), ["Unlimited tasks", "AI planning"])

        # A new price, and a student price beside it (that existing Stripe
        # subscribers keep theirs until renewal is test_billing.py's).
        self.ok("billing", "plan-price", "--id", "premium", "--amount", "1299", "--currency",
                "USD")
        self.ok("billing", "plan-price", "--id", "premium", "--amount", "499", "--currency",
                "usd", "--audience", "student")
        prices = {(p.currency, p.audience): p.amount_minor for p in self.plans()["premium"].prices}
        self.assertEqual(prices, {("USD", bs.PRICE_AUDIENCE_STANDARD): 1299,
                                  ("USD", bs.PRICE_AUDIENCE_STUDENT): 499})

        me = self.twd.sign_up()
        self.ok("billing", "grant", "--user-id", me.user_id, "--plan-id", "premium")
        billing = bs_grpc.BillingServiceStub(self.twd.channel())

        def plan_of(me):
            return billing.GetSubscription(bs.GetSubscriptionRequest(), metadata=me.metadata,
                                           timeout=10).subscription.plan_id

        def offered(me):
            return [p.id for p in billing.ListPlans(bs.ListPlansRequest(), metadata=me.metadata,
                                                    timeout=10).plans]
        gone = self.ok("billing", "plan-deactivate", "--id", "premium")["plan"]
        self.assertFalse(gone.get("active", False))
        self.assertNotIn("premium", offered(me))
        self.assertEqual(plan_of(me), "premium")  # its subscribers keep it
        self.assertEqual(self.plans()["premium"].name, "Premium")  # only active changed
        back = self.ok("billing", "plan-activate", "--id", "premium")["plan"]
        self.assertTrue(back["active"])
        self.assertIn("premium", offered(me))
        run = self.admin_cli("billing", "plan-deactivate", "--id", "free")
        self.assertEqual(run.returncode, 1)
        self.assertIn("free", run.stderr)

    def test_fields_and_request_json_reach_nested_and_repeated_fields(self):
        rid = str(uuid.uuid4())
        request = ("{\"plan\": {\"id\": \"pro\", \"name\": \"Pro\", "
                   "\"interval\": \"BILLING_INTERVAL_YEAR\", "
                   "\"prices\": [{\"currency\": \"EUR\", \"amountMinor\": \"5000\"}], "
                   "\"limits\": [{\"resource\": \"USAGE_RESOURCE_AI_REQUESTS\", "
                   "\"limit\": \"5\"}]}}")
        args = ["billing", "plan-create", "--request-json", request,
                "--field", "plan.features=One", "--field", "plan.features=Two",
                "--field", "plan.prices[1]={\"currency\": \"EUR\", \"amount_minor\": 2500, "
                "\"audience\": \"PRICE_AUDIENCE_STUDENT\"}",
                "--field", "plan.limits[0].limit=7", "--request-id", rid]
        first = self.ok(*args)
        plan = self.plans()["pro"]
        self.assertEqual(list(plan.features), ["One", "Two"])
        self.assertEqual([(p.currency, p.amount_minor, p.audience) for p in plan.prices],
                         [("EUR", 5000, bs.PRICE_AUDIENCE_STANDARD),
                          ("EUR", 2500, bs.PRICE_AUDIENCE_STUDENT)])
        self.assertEqual([(u.resource, u.limit) for u in plan.limits],
                         [(bs.USAGE_RESOURCE_AI_REQUESTS, 7)])
        # The same request_id: the same request is answered again, another is refused.
        self.assertEqual(self.ok(*args), first)
        other = self.admin_cli(*[a.replace("Two", "Three") for a in args])
        self.assertEqual(other.returncode, 1)
        self.assertIn("VAL_001", other.stderr)
        self.assertEqual(list(self.plans()["pro"].features), ["One", "Two"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
