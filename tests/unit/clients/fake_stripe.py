#!/usr/bin/python3
"""fake_stripe: a loopback Stripe API that answers as docs.stripe.com/api
shows (API version 2024-06-20), for the tests of clients/stripe.c and of
billing.

Started by the tests (vendor_fixture.c) with /usr/bin/python3; listens on
127.0.0.1 on a free port and prints "PORT <n>" first. It keeps state in
memory: customers, products, prices, payment methods, subscriptions,
invoices, payment intents, charges, refunds and the events Stripe would
send for each change. Requests are form-encoded as Stripe's reference
shows (items[0][price]=..., metadata[key]=...); a parameter an endpoint
does not take is refused with Stripe's 400, as Stripe does.

What it answers (each needs "Authorization: Bearer <--key>", else 401):
  POST /v1/customers, GET|POST /v1/customers/:id
  POST /v1/products, POST /v1/prices
  GET  /v1/payment_methods?customer=&type=card, GET /v1/payment_methods/:id,
  POST /v1/payment_methods/:id/attach|detach. Stripe's test payment
       methods (pm_card_visa, pm_card_mastercard, pm_card_chargeDeclined,
       pm_card_chargeDeclinedInsufficientFunds) make a new payment method
       when attached; charges to the declining ones fail with a 402
       card_error.
  POST /v1/subscriptions (payment_behavior error_if_incomplete: a declined
       first payment is a 402 and nothing is created; allow_incomplete: the
       subscription is "incomplete"), GET /v1/subscriptions?customer=&status=,
       GET|POST|DELETE /v1/subscriptions/:id
  GET  /v1/invoices/:id, POST /v1/invoices/:id/pay
  POST /v1/refunds (expand[]=charge: the charge as an object, after the
       refund)
  GET  /v1/events (newest first; ?type= filters)
Idempotency-Key on a POST: the same key with the same path and body
replays the first answer (with Idempotent-Replayed: true); with another
path or body it is a 400 idempotency_error. Answers to requests refused
for their parameters are not saved, as Stripe does not save them.

Control (never recorded), besides fake_vendor's /_script, /_requests and
/_reset (which also forgets every object):
  GET  /_state           every object, by kind, and the idempotency keys
  POST /_payment_methods {"brand", "last4", "exp_month", "exp_year",
                         "decline_code"}: a card the app made with
                         Stripe's SDK, not attached; answers it
  POST /_advance         {"subscription": id, "decline": code (optional)}:
                         the period ends now: the subscription renews
                         (charging its payment method, declined with code
                         when given, as when the bank refuses a card that
                         paid before) or, with cancel_at_period_end, ends
"""
import argparse
import calendar
import hashlib
import itertools
import json
import sys
import time
from urllib.parse import parse_qsl

import fake_vendor

API_VERSION = "2024-06-20"

TEST_CARDS = {
    "pm_card_visa": ("visa", "4242", None),
    "pm_card_mastercard": ("mastercard", "4444", None),
    "pm_card_chargeDeclined": ("visa", "0002", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995", "insufficient_funds"),
}

DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
}


class StripeError(Exception):
    """An error answer as Stripe sends it; saved for idempotent replays
    unless the parameters were refused before the endpoint ran."""

    def __init__(self, status, type_, message, code=None, param=None, decline_code=None,
                 saved=True):
        super().__init__(message)
        self.status = status
        self.saved = saved
        self.error = {"type": type_, "message": message}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = "https://stripe.com/docs/error-codes/" + code.replace("_", "-")
        if param:
            self.error["param"] = param
        if decline_code:
            self.error["decline_code"] = decline_code


def bad_param(message, param, code="parameter_invalid"):
    return StripeError(400, "invalid_request_error", message, code=code, param=param, saved=False)


def missing(kind, id_, param="id"):
    return StripeError(404, "invalid_request_error", "No such %s: '%s'" % (kind, id_),
                       code="resource_missing", param=param)


def nest(pairs):
    """Stripe's form encoding to nested values: a[b][0][c]=v, a[]=v."""
    root = {}
    for name, value in pairs:
        head, _, rest = name.partition("[")
        keys = [head] + (rest[:-1].split("][") if rest else [])
        node = root
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if key == "":
                key = str(len(node))
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
    return listify(root)


def listify(node):
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [listify(node[k]) for k in sorted(node, key=int)]
    return {k: listify(v) for k, v in node.items()}


def add_months(ts, months):
    t = time.gmtime(ts)
    month0 = t.tm_mon - 1 + months
    year, month = t.tm_year + month0 // 12, month0 % 12 + 1
    day = min(t.tm_mday, calendar.monthrange(year, month)[1])
    return calendar.timegm((year, month, day, t.tm_hour, t.tm_min, t.tm_sec))


def as_bool(value, param):
    if value not in ("true", "false"):
        raise bad_param("Invalid boolean: %s" % value, param)
    return value == "true"


def as_int(value, param):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_param("Invalid integer: %s" % value, param)


class StripeState(fake_vendor.State):
    def __init__(self, args):
        super().__init__(args)
        self.reset_objects()

    def reset_objects(self):
        self.objects = {}  # kind -> {id: object}
        self.idempotency = {}  # key -> (fingerprint, status, body)
        self.events = []
        self.ids = itertools.count(1)

    def new_id(self, prefix):
        return "%s_%014d" % (prefix, next(self.ids))

    def kind(self, kind):
        return self.objects.setdefault(kind, {})

    def get(self, kind, id_, label, param="id"):
        obj = self.kind(kind).get(id_)
        if obj is None:
            raise missing(label, id_, param)
        return obj

    def event(self, type_, obj, previous=None, key=None):
        data = {"object": json.loads(json.dumps(obj))}
        if previous:
            data["previous_attributes"] = previous
        self.events.append({
            "id": self.new_id("evt"), "object": "event", "api_version": API_VERSION,
            "created": int(time.time()), "data": data, "livemode": False,
            "pending_webhooks": 1, "request": {"id": self.new_id("req"), "idempotency_key": key},
            "type": type_,
        })


class StripeHandler(fake_vendor.Handler):
    server_version = "fake-stripe"

    def control(self, path, body):
        state = self.server.state
        if path == "/_reset":
            with state.lock:
                state.reset_objects()
        elif path in ("/_state", "/_payment_methods", "/_advance"):
            with state.lock:
                try:
                    if path == "/_state":
                        answer = {"objects": state.objects, "events": state.events,
                                  "idempotency_keys": sorted(state.idempotency)}
                    elif path == "/_payment_methods":
                        answer = self.test_card(json.loads(body))
                    else:
                        asked = json.loads(body)
                        answer = self.advance(asked["subscription"], asked.get("decline"))
                except StripeError as e:
                    self.send(e.status, json.dumps({"error": e.error}).encode())
                    return
            self.send(200, json.dumps(answer).encode())
            return
        super().control(path, body)

    def vendor(self, url, body):
        state = self.server.state
        if self.headers.get("Authorization") != "Bearer " + state.args.key:
            return 401, json.dumps({"error": {
                "type": "invalid_request_error",
                "message": "Invalid API Key provided: sk_test_****"}}).encode(), None
        method, path = self.command, url.path
        params = nest(parse_qsl(url.query if method in ("GET", "DELETE") else body.decode(),
                                keep_blank_values=True))
        key = self.headers.get("Idempotency-Key") if method == "POST" else None
        fingerprint = hashlib.sha256(("%s %s " % (method, path)).encode() + body).hexdigest()
        with state.lock:
            if key is not None and key in state.idempotency:
                first, status, answer = state.idempotency[key]
                if first != fingerprint:
                    return 400, json.dumps({"error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same "
                                   "parameters they were first used with. Try using a key other "
                                   "than '%s' if you meant to execute a different request." % key,
                    }}).encode(), None
                return status, answer, {"Idempotent-Replayed": "true"}
            try:
                status, answer, saved = 200, self.route(method, path.split("/")[1:], params, key), True
            except StripeError as e:
                status, answer, saved = e.status, {"error": e.error}, e.saved
            text = json.dumps(answer).encode()
            if key is not None and saved:
                state.idempotency[key] = (fingerprint, status, text)
            return status, text, None

    # ---- routing -------------------------------------------------------

    def route(self, method, parts, params, key):
        if parts[:1] != ["v1"]:
            raise missing("route", "/" + "/".join(parts))
        parts = parts[1:]
        table = {
            ("POST", "customers", 1): self.customer_create,
            ("GET", "customers", 2): self.customer_get,
            ("POST", "customers", 2): self.customer_update,
            ("POST", "products", 1): self.product_create,
            ("POST", "prices", 1): self.price_create,
            ("GET", "payment_methods", 1): self.payment_method_list,
            ("GET", "payment_methods", 2): self.payment_method_get,
            ("POST", "payment_methods", 3): self.payment_method_action,
            ("POST", "subscriptions", 1): self.subscription_create,
            ("GET", "subscriptions", 1): self.subscription_list,
            ("GET", "subscriptions", 2): self.subscription_get,
            ("POST", "subscriptions", 2): self.subscription_update,
            ("DELETE", "subscriptions", 2): self.subscription_cancel,
            ("GET", "invoices", 2): self.invoice_get,
            ("POST", "invoices", 3): self.invoice_pay,
            ("POST", "refunds", 1): self.refund_create,
            ("GET", "events", 1): self.event_list,
        }
        handler = table.get((method, parts[0] if parts else "", len(parts)))
        if handler is None:
            raise StripeError(404, "invalid_request_error",
                              "Unrecognized request URL (%s: /v1/%s)." % (method, "/".join(parts)))
        self.key = key
        return handler(parts, params)

    def allow(self, params, *names):
        for name in params:
            if name not in names:
                raise bad_param("Received unknown parameter: %s" % name, name,
                                code="parameter_unknown")

    def require(self, params, name):
        if not params.get(name):
            raise bad_param("Missing required param: %s." % name, name,
                            code="parameter_missing")
        return params[name]

    def metadata(self, params):
        meta = params.get("metadata", {})
        if not isinstance(meta, dict):
            raise bad_param("Invalid object", "metadata")
        return meta

    # ---- customers, products, prices -----------------------------------

    def customer_create(self, parts, p):
        self.allow(p, "email", "name", "metadata", "description")
        state = self.server.state
        c = {"id": state.new_id("cus"), "object": "customer", "created": int(time.time()),
             "email": p.get("email"), "name": p.get("name"), "description": p.get("description"),
             "metadata": self.metadata(p), "livemode": False,
             "invoice_settings": {"default_payment_method": None, "custom_fields": None,
                                  "footer": None, "rendering_options": None}}
        state.kind("customer")[c["id"]] = c
        state.event("customer.created", c, key=self.key)
        return c

    def customer_get(self, parts, p):
        self.allow(p, "expand")
        return self.server.state.get("customer", parts[1], "customer")

    def customer_update(self, parts, p):
        self.allow(p, "email", "name", "metadata", "invoice_settings")
        state = self.server.state
        c = state.get("customer", parts[1], "customer")
        settings = p.get("invoice_settings", {})
        for name in settings:
            if name != "default_payment_method":
                raise bad_param("Received unknown parameter: invoice_settings[%s]" % name,
                                "invoice_settings[%s]" % name, code="parameter_unknown")
        if "default_payment_method" in settings:
            pm_id = settings["default_payment_method"]
            pm = state.get("payment_method", pm_id, "PaymentMethod",
                           "invoice_settings[default_payment_method]")
            if pm["customer"] != c["id"]:
                raise StripeError(400, "invalid_request_error",
                                  "The customer does not have a payment method with the ID %s. "
                                  "The payment method must be attached to the customer." % pm_id,
                                  code="resource_missing",
                                  param="invoice_settings[default_payment_method]")
            c["invoice_settings"]["default_payment_method"] = pm_id
        for name in ("email", "name"):
            if name in p:
                c[name] = p[name]
        c["metadata"].update(self.metadata(p))
        state.event("customer.updated", c, key=self.key)
        return c

    def product_create(self, parts, p):
        self.allow(p, "name", "description", "metadata", "active")
        state = self.server.state
        prod = {"id": state.new_id("prod"), "object": "product", "active": True,
                "name": self.require(p, "name"), "description": p.get("description"),
                "metadata": self.metadata(p), "created": int(time.time()), "livemode": False}
        state.kind("product")[prod["id"]] = prod
        return prod

    def price_create(self, parts, p):
        self.allow(p, "product", "unit_amount", "currency", "recurring", "metadata", "nickname")
        state = self.server.state
        product = state.get("product", self.require(p, "product"), "product", "product")
        currency = self.require(p, "currency")
        if currency != currency.lower() or len(currency) != 3:
            raise bad_param("Invalid currency: %s." % currency, "currency")
        amount = as_int(self.require(p, "unit_amount"), "unit_amount")
        recurring = p.get("recurring", {})
        if recurring.get("interval") not in ("day", "week", "month", "year"):
            raise bad_param("Invalid recurring[interval]", "recurring[interval]")
        price = {"id": state.new_id("price"), "object": "price", "active": True,
                 "currency": currency, "product": product["id"], "unit_amount": amount,
                 "recurring": {"interval": recurring["interval"], "interval_count": 1,
                               "usage_type": "licensed"},
                 "type": "recurring", "nickname": p.get("nickname"),
                 "metadata": self.metadata(p), "created": int(time.time()), "livemode": False}
        state.kind("price")[price["id"]] = price
        return price

    # ---- payment methods --------------------------------------------------

    def new_card(self, brand, last4, exp_month, exp_year, decline_code):
        state = self.server.state
        pm = {"id": state.new_id("pm"), "object": "payment_method", "type": "card",
              "card": {"brand": brand, "last4": last4, "exp_month": exp_month,
                       "exp_year": exp_year, "country": "US", "funding": "credit"},
              "customer": None, "created": int(time.time()), "metadata": {},
              "billing_details": {}, "livemode": False, "_decline": decline_code}
        state.kind("payment_method")[pm["id"]] = pm
        return pm

    def test_card(self, spec):
        return self.public(self.new_card(spec.get("brand", "visa"), spec.get("last4", "4242"),
                                         spec.get("exp_month", 12), spec.get("exp_year", 2034),
                                         spec.get("decline_code")))

    @staticmethod
    def public(obj):
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def payment_method_list(self, parts, p):
        self.allow(p, "customer", "type", "limit", "starting_after")
        state = self.server.state
        customer = self.require(p, "customer")
        state.get("customer", customer, "customer", "customer")
        found = [self.public(pm) for pm in state.kind("payment_method").values()
                 if pm["customer"] == customer and pm["type"] == p.get("type", "card")]
        return self.page(found, p, "/v1/payment_methods")

    def page(self, items, p, url):
        items.sort(key=lambda o: (o["created"], o["id"]), reverse=True)
        if "starting_after" in p:
            ids = [o["id"] for o in items]
            items = items[ids.index(p["starting_after"]) + 1:] if p["starting_after"] in ids else []
        limit = as_int(p.get("limit", "10"), "limit")
        if not 1 <= limit <= 100:
            raise bad_param("Invalid limit", "limit")
        return {"object": "list", "data": items[:limit], "has_more": len(items) > limit,
                "url": url}

    def payment_method_get(self, parts, p):
        self.allow(p, "expand")
        return self.public(self.server.state.get("payment_method", parts[1], "PaymentMethod"))

    def payment_method_action(self, parts, p):
        state = self.server.state
        pm_id, action = parts[1], parts[2]
        if action == "attach":
            self.allow(p, "customer")
            customer = state.get("customer", self.require(p, "customer"), "customer", "customer")
            if pm_id in TEST_CARDS:
                brand, last4, decline = TEST_CARDS[pm_id]
                pm = self.new_card(brand, last4, 12, time.gmtime().tm_year + 3, decline)
            else:
                pm = state.get("payment_method", pm_id, "PaymentMethod")
                if pm["customer"] not in (None, customer["id"]):
                    raise StripeError(400, "invalid_request_error",
                                      "The payment method you provided has already been attached "
                                      "to a customer.", code="payment_method_unexpected_state")
            pm["customer"] = customer["id"]
            state.event("payment_method.attached", self.public(pm), key=self.key)
            return self.public(pm)
        if action == "detach":
            self.allow(p)
            pm = state.get("payment_method", pm_id, "PaymentMethod")
            if pm["customer"] is None:
                raise StripeError(400, "invalid_request_error",
                                  "The payment method you provided is not attached to a "
                                  "customer so detachment is impossible.",
                                  code="payment_method_unexpected_state")
            previous = {"customer": pm["customer"]}
            customer = state.kind("customer").get(pm["customer"])
            if customer and customer["invoice_settings"]["default_payment_method"] == pm_id:
                customer["invoice_settings"]["default_payment_method"] = None
            pm["customer"] = None
            state.event("payment_method.detached", self.public(pm), previous, key=self.key)
            return self.public(pm)
        raise missing("route", action)

    # ---- charging ---------------------------------------------------------

    def charge(self, customer, pm, amount, currency, invoice, decline=None):
        """Charges pm for invoice (a dict, changed in place), declined with
        decline when given; returns the StripeError of a decline, or None."""
        state = self.server.state
        now = int(time.time())
        pi = {"id": state.new_id("pi"), "object": "payment_intent", "amount": amount,
              "currency": currency, "customer": customer, "invoice": invoice["id"],
              "payment_method": pm["id"] if pm else None, "created": now,
              "status": "succeeded", "last_payment_error": None, "latest_charge": None,
              "livemode": False}
        ch = {"id": state.new_id("ch"), "object": "charge", "amount": amount,
              "amount_refunded": 0, "refunded": False, "currency": currency,
              "customer": customer, "invoice": invoice["id"], "payment_intent": pi["id"],
              "created": now, "status": "succeeded", "paid": True, "failure_code": None,
              "failure_message": None, "livemode": False}
        pi["latest_charge"] = ch["id"]
        invoice["payment_intent"], invoice["charge"] = pi["id"], ch["id"]
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        decline = decline or (pm["_decline"] if pm else "generic_decline")
        error = None
        if decline:
            message = DECLINE_MESSAGES.get(decline, "Your card was declined.")
            error = StripeError(402, "card_error", message, code="card_declined",
                                decline_code=decline)
            error.error["charge"] = ch["id"]
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = dict(error.error)
            ch.update(status="failed", paid=False, failure_code="card_declined",
                      failure_message=message)
            invoice["status"] = "open"
        else:
            invoice.update(status="paid", paid=True, amount_paid=amount, amount_remaining=0)
        state.kind("payment_intent")[pi["id"]] = pi
        state.kind("charge")[ch["id"]] = ch
        return error

    def new_invoice(self, sub, amount, currency, reason):
        state = self.server.state
        inv = {"id": state.new_id("in"), "object": "invoice", "customer": sub["customer"],
               "subscription": sub["id"], "status": "open", "amount_due": amount,
               "amount_paid": 0, "amount_remaining": amount, "currency": currency,
               "payment_intent": None, "charge": None, "created": int(time.time()),
               "attempt_count": 0, "attempted": False, "paid": False, "billing_reason": reason,
               "period_start": sub["current_period_start"],
               "period_end": sub["current_period_end"], "livemode": False}
        return inv

    def announce_invoice(self, inv):
        state = self.server.state
        pi = state.kind("payment_intent").get(inv["payment_intent"])
        if inv["status"] == "paid":
            state.event("invoice.paid", inv, key=self.key)
            if pi:
                state.event("payment_intent.succeeded", pi, key=self.key)
        elif inv["attempted"]:
            state.event("invoice.payment_failed", inv, key=self.key)
            if pi:
                state.event("payment_intent.payment_failed", pi, key=self.key)

    def payment_method_of(self, sub):
        state = self.server.state
        pm_id = sub.get("default_payment_method") or \
            state.kind("customer")[sub["customer"]]["invoice_settings"]["default_payment_method"]
        return state.kind("payment_method").get(pm_id) if pm_id else None

    # ---- subscriptions ------------------------------------------------------

    def subscription_create(self, parts, p):
        self.allow(p, "customer", "items", "default_payment_method", "payment_behavior",
                   "metadata", "expand", "trial_period_days", "proration_behavior")
        state = self.server.state
        customer = state.get("customer", self.require(p, "customer"), "customer", "customer")
        items = p.get("items")
        if not isinstance(items, list) or len(items) != 1 or "price" not in items[0]:
            raise bad_param("Missing required param: items[0][price].", "items[0][price]",
                            code="parameter_missing")
        price = state.get("price", items[0]["price"], "price", "items[0][price]")
        behavior = p.get("payment_behavior", "allow_incomplete")
        if behavior not in ("allow_incomplete", "error_if_incomplete", "default_incomplete"):
            raise bad_param("Invalid payment_behavior", "payment_behavior")
        pm = None
        if p.get("default_payment_method"):
            pm = state.get("payment_method", p["default_payment_method"], "PaymentMethod",
                           "default_payment_method")
            if pm["customer"] != customer["id"]:
                raise StripeError(400, "invalid_request_error",
                                  "The customer does not have a payment method with the ID %s. "
                                  "The payment method must be attached to the customer." % pm["id"],
                                  code="resource_missing", param="default_payment_method")
        trial_days = as_int(p.get("trial_period_days", "0"), "trial_period_days")
        now = int(time.time())
        sub = {"id": state.new_id("sub"), "object": "subscription", "customer": customer["id"],
               "status": "active", "created": now, "start_date": now,
               "current_period_start": now, "current_period_end": self.period_end(now, price),
               "cancel_at_period_end": False, "cancel_at": None, "canceled_at": None,
               "ended_at": None, "latest_invoice": None,
               "default_payment_method": pm["id"] if pm else None,
               "collection_method": "charge_automatically", "pause_collection": None,
               "metadata": self.metadata(p), "trial_end": None, "livemode": False,
               "items": {"object": "list", "has_more": False, "url": "/v1/subscription_items",
                         "data": [{"id": state.new_id("si"), "object": "subscription_item",
                                   "price": price, "quantity": 1, "created": now}]}}
        if trial_days > 0:
            sub.update(status="trialing", trial_end=now + trial_days * 86400,
                       current_period_end=now + trial_days * 86400)
        if pm is None:
            pm = self.payment_method_of(sub)
        if pm is None and trial_days == 0:
            raise StripeError(400, "invalid_request_error",
                              "This customer has no attached payment source or default payment "
                              "method. Please consider adding a default payment method.",
                              code="resource_missing")
        amount = 0 if trial_days > 0 else price["unit_amount"]
        inv = self.new_invoice(sub, amount, price["currency"], "subscription_create")
        error = None
        if amount > 0:
            error = self.charge(customer["id"], pm, amount, price["currency"], inv)
        else:
            inv.update(status="paid", paid=True, attempted=True)
        if error is not None and behavior == "error_if_incomplete":
            raise error
        if error is not None:
            sub["status"] = "incomplete"
        sub["latest_invoice"] = inv["id"]
        state.kind("invoice")[inv["id"]] = inv
        state.kind("subscription")[sub["id"]] = sub
        state.event("customer.subscription.created", sub, key=self.key)
        self.announce_invoice(inv)
        return sub

    def period_end(self, start, price):
        return add_months(start, 12 if price["recurring"]["interval"] == "year" else 1)

    def subscription_list(self, parts, p):
        self.allow(p, "customer", "status", "limit", "starting_after", "price")
        state = self.server.state
        wanted = p.get("status")
        found = [s for s in state.kind("subscription").values()
                 if s["customer"] == p.get("customer", s["customer"])
                 and (wanted == "all" or s["status"] == wanted
                      or (wanted is None and s["status"] != "canceled"))]
        return self.page(found, p, "/v1/subscriptions")

    def subscription_get(self, parts, p):
        self.allow(p, "expand")
        return self.server.state.get("subscription", parts[1], "subscription")

    def subscription_update(self, parts, p):
        self.allow(p, "items", "proration_behavior", "cancel_at_period_end", "pause_collection",
                   "metadata", "default_payment_method", "payment_behavior")
        state = self.server.state
        sub = state.get("subscription", parts[1], "subscription")
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(400, "invalid_request_error",
                              "A canceled subscription can only update its cancellation_details "
                              "and metadata.")
        previous = {}
        if "proration_behavior" in p and p["proration_behavior"] not in (
                "create_prorations", "none", "always_invoice"):
            raise bad_param("Invalid proration_behavior", "proration_behavior")
        if "items" in p:
            items = p["items"]
            if not isinstance(items, list) or len(items) != 1:
                raise bad_param("Invalid array", "items")
            item = sub["items"]["data"][0]
            if items[0].get("id") != item["id"]:
                raise missing("subscription item", items[0].get("id"), "items[0][id]")
            price = state.get("price", self.require(items[0], "price"), "price", "items[0][price]")
            previous["items"] = json.loads(json.dumps(sub["items"]))
            item["price"] = price
        if "cancel_at_period_end" in p:
            previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
            sub["cancel_at_period_end"] = as_bool(p["cancel_at_period_end"],
                                                  "cancel_at_period_end")
            sub["canceled_at"] = int(time.time()) if sub["cancel_at_period_end"] else None
            sub["cancel_at"] = sub["current_period_end"] if sub["cancel_at_period_end"] else None
        if "pause_collection" in p:
            previous["pause_collection"] = sub["pause_collection"]
            pause = p["pause_collection"]
            if pause == "":
                sub["pause_collection"] = None
            elif isinstance(pause, dict) and pause.get("behavior") in (
                    "keep_as_draft", "mark_uncollectible", "void"):
                sub["pause_collection"] = {"behavior": pause["behavior"], "resumes_at": None}
            else:
                raise bad_param("Invalid pause_collection", "pause_collection[behavior]")
        if "default_payment_method" in p:
            previous["default_payment_method"] = sub["default_payment_method"]
            sub["default_payment_method"] = p["default_payment_method"] or None
        if "metadata" in p:
            previous["metadata"] = dict(sub["metadata"])
            sub["metadata"].update(self.metadata(p))
        state.event("customer.subscription.updated", sub, previous, key=self.key)
        return sub

    def subscription_cancel(self, parts, p):
        self.allow(p, "invoice_now", "prorate")
        state = self.server.state
        sub = state.get("subscription", parts[1], "subscription")
        if sub["status"] == "canceled":
            return sub
        self.end(sub)
        return sub

    def end(self, sub):
        now = int(time.time())
        sub.update(status="canceled", ended_at=now, canceled_at=sub["canceled_at"] or now)
        self.server.state.event("customer.subscription.deleted", sub, key=self.key)

    def advance(self, sub_id, decline=None):
        state = self.server.state
        self.key = None
        sub = state.get("subscription", sub_id, "subscription")
        if sub["status"] == "canceled":
            raise StripeError(400, "invalid_request_error", "The subscription has ended.")
        if sub["cancel_at_period_end"]:
            self.end(sub)
            return sub
        price = sub["items"]["data"][0]["price"]
        previous = {"current_period_start": sub["current_period_start"],
                    "current_period_end": sub["current_period_end"], "status": sub["status"]}
        start = sub["current_period_end"]
        sub.update(current_period_start=start, current_period_end=self.period_end(start, price))
        inv = self.new_invoice(sub, price["unit_amount"], price["currency"], "subscription_cycle")
        if sub["pause_collection"] and sub["pause_collection"]["behavior"] == "void":
            inv.update(status="void")
        else:
            error = self.charge(sub["customer"], self.payment_method_of(sub),
                                price["unit_amount"], price["currency"], inv, decline)
            sub["status"] = "past_due" if error else "active"
        sub["latest_invoice"] = inv["id"]
        state.kind("invoice")[inv["id"]] = inv
        state.event("customer.subscription.updated", sub, previous)
        self.announce_invoice(inv)
        return sub

    # ---- invoices and refunds -----------------------------------------------

    def invoice_get(self, parts, p):
        self.allow(p, "expand")
        return self.server.state.get("invoice", parts[1], "invoice")

    def invoice_pay(self, parts, p):
        self.allow(p, "payment_method", "off_session")
        state = self.server.state
        if parts[2] != "pay":
            raise missing("route", parts[2])
        inv = state.get("invoice", parts[1], "invoice")
        if inv["status"] != "open":
            raise StripeError(400, "invalid_request_error", "Invoice is already paid.",
                              code="invoice_not_open" if inv["status"] != "paid" else None)
        sub = state.kind("subscription").get(inv["subscription"])
        pm = state.kind("payment_method").get(p.get("payment_method")) or \
            (self.payment_method_of(sub) if sub else None)
        error = self.charge(inv["customer"], pm, inv["amount_due"], inv["currency"], inv)
        self.announce_invoice(inv)
        if error is None and sub and sub["status"] in ("past_due", "incomplete"):
            previous = {"status": sub["status"]}
            sub["status"] = "active"
            state.event("customer.subscription.updated", sub, previous, key=self.key)
        if error is not None:
            raise error
        return inv

    def refund_create(self, parts, p):
        self.allow(p, "payment_intent", "charge", "amount", "reason", "metadata", "expand")
        state = self.server.state
        if "charge" in p:
            ch = state.get("charge", p["charge"], "charge", "charge")
        else:
            pi = state.get("payment_intent", self.require(p, "payment_intent"), "payment_intent",
                           "payment_intent")
            ch = state.kind("charge")[pi["latest_charge"]]
        if ch["status"] != "succeeded":
            raise StripeError(400, "invalid_request_error",
                              "This charge has no funds to refund.", code="charge_not_refundable")
        left = ch["amount"] - ch["amount_refunded"]
        if left == 0:
            raise StripeError(400, "invalid_request_error",
                              "Charge %s has already been refunded." % ch["id"],
                              code="charge_already_refunded")
        amount = as_int(p.get("amount", str(left)), "amount")
        if amount <= 0 or amount > left:
            raise StripeError(400, "invalid_request_error",
                              "Refund amount ($%.2f) is greater than unrefunded amount on charge "
                              "($%.2f)" % (amount / 100, left / 100), code="amount_too_large",
                              param="amount")
        if p.get("reason") not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise bad_param("Invalid reason", "reason")
        re = {"id": state.new_id("re"), "object": "refund", "amount": amount,
              "charge": ch["id"], "payment_intent": ch["payment_intent"],
              "currency": ch["currency"], "status": "succeeded", "reason": p.get("reason"),
              "metadata": self.metadata(p), "created": int(time.time())}
        state.kind("refund")[re["id"]] = re
        previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] == ch["amount"]
        state.event("charge.refunded", ch, previous, key=self.key)
        if "charge" in p.get("expand", []):
            return dict(re, charge=json.loads(json.dumps(ch)))
        return re

    def event_list(self, parts, p):
        self.allow(p, "limit", "type", "starting_after")
        found = [e for e in self.server.state.events if e["type"] == p.get("type", e["type"])]
        return self.page(found, p, "/v1/events")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", default="sk_test_fake", help="the secret key that is accepted")
    parser.add_argument("--data", default=".", help="folder of answers for script body_file")
    args = parser.parse_args()
    fake_vendor.serve(StripeHandler, StripeState(args))


if __name__ == "__main__":
    sys.exit(main())
