/*
 * Stripe's API (https://api.stripe.com/v1), the calls billing makes:
 * customers, subscriptions, invoices, refunds, payment methods, products
 * and prices; and Stripe's objects (from answers and from webhook events)
 * read into C structs.
 *
 * Requests are form-encoded as Stripe's reference shows (items[0][price],
 * metadata[user_id]), with "Authorization: Bearer <secret key>" and the API
 * version pinned in Stripe-Version (TW_STRIPE_API_VERSION), so the shape
 * of answers and events does not move under us when Stripe's default
 * changes. Every POST carries an Idempotency-Key: the caller's when the
 * call creates or charges something (recorded in the store before the
 * call, so a retry after a crash sends the same key and Stripe answers
 * the first result), otherwise one made for the call. Every call is
 * therefore safe to retry: timeouts, lost connections, 409, 429 and 5xx
 * are retried with backoff and jitter (http.h), waiting out Retry-After,
 * and Stripe-Should-Retry overrides the status either way.
 *
 * Failures map Stripe's error object to our reasons:
 *   402, or type card_error      TW_ERR_PAY_CARD_DECLINED (PAY_001)
 *   type idempotency_error (400) TW_ERR_PAY_IDEMPOTENCY (PAY_005)
 *   401, 403                     TW_ERR_PAY_MISCONFIGURED (PAY_004)
 *   404                          TW_ERR_NOT_FOUND (RES_001)
 *   other 4xx                    TW_ERR_PAY_REFUSED (PAY_002)
 *   409, 429, 5xx, no answer     TW_ERR_UPSTREAM (UPSTREAM_001), retryable
 * with the error object's fields in tw_stripe_error. The secret key is
 * never logged, and neither are request bodies.
 *
 * Thread-safe. Calls block for as long as Stripe (and the retries) take:
 * run them on a pool or in a job, never on an RPC thread. Everything a
 * call hands back lives in the arena the caller passes.
 */
#ifndef TW_STRIPE_H
#define TW_STRIPE_H

#include "http.h"
#include "tw_arena.h"
#include "tw_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The API version every request pins and every object here is read as. */
#define TW_STRIPE_API_VERSION "2024-06-20"
/* Stripe's limit on an Idempotency-Key. */
#define TW_STRIPE_IDEMPOTENCY_KEY_MAX 255

typedef struct tw_stripe tw_stripe;

typedef struct tw_stripe_config {
    const char *base_url;   /* "https://api.stripe.com", or a local fake in tests */
    const char *secret_key; /* "sk_live_..." or "sk_test_..."; never logged */
    tw_http_policy policy;
} tw_stripe_config;

/* A client; copies cfg. TW_ERR_VALIDATION without a base URL or key. */
tw_err tw_stripe_new(const tw_stripe_config *cfg, tw_stripe **out);
/* Accepts NULL; no call may be running. */
void tw_stripe_free(tw_stripe *s);

/* Why a call failed: the HTTP side, and Stripe's error object when the
 * answer had one (fields "" when absent). Never holds the key. */
typedef struct tw_stripe_error {
    tw_upstream_error upstream;
    char type[32];         /* "card_error", "invalid_request_error", "idempotency_error", ... */
    char code[64];         /* "card_declined", "resource_missing", ... */
    char decline_code[64]; /* "insufficient_funds", ... */
    char param[128];       /* the parameter at fault, "items[0][price]" */
    char message[512];     /* Stripe's text; for card errors fit to show the user */
} tw_stripe_error;

/* ---- Objects (strings "" when Stripe sent null; times in Unix ms) ----------- */

typedef struct tw_stripe_customer {
    const char *id;
    const char *email;
    const char *default_payment_method; /* invoice_settings.default_payment_method */
    const char *user_id;                /* metadata[user_id] */
} tw_stripe_customer;

typedef struct tw_stripe_subscription {
    const char *id;
    const char *customer;
    const char *status; /* Stripe's word: "active", "past_due", "canceled", ... */
    /* Its first (billing's only) item and that item's price. */
    const char *item_id;
    const char *price_id;
    int64_t amount_minor;
    const char *currency; /* upper case, "USD" */
    const char *interval; /* "month", "year" */
    int64_t period_start_ms;
    int64_t period_end_ms;
    bool cancel_at_period_end;
    int64_t canceled_at_ms; /* 0 when not */
    bool collection_paused; /* pause_collection set */
    int64_t created_ms;
    const char *latest_invoice;
    const char *default_payment_method;
    const char *user_id; /* metadata[user_id] */
    const char *plan_id; /* metadata[plan_id] */
} tw_stripe_subscription;

typedef struct tw_stripe_invoice {
    const char *id;
    const char *customer;
    const char *subscription;
    const char *status; /* "draft", "open", "paid", "void", "uncollectible" */
    int64_t amount_due;
    int64_t amount_paid;
    const char *currency; /* upper case */
    const char *payment_intent;
    const char *charge;
    const char *billing_reason;
    int attempt_count;
    int64_t created_ms;
} tw_stripe_invoice;

typedef struct tw_stripe_payment_intent {
    const char *id;
    const char *customer;
    const char *invoice;
    const char *status; /* "succeeded", "requires_payment_method", ... */
    int64_t amount;
    const char *currency;        /* upper case */
    const char *failure_message; /* last_payment_error.message */
    int64_t created_ms;
} tw_stripe_payment_intent;

typedef struct tw_stripe_charge {
    const char *id;
    const char *customer;
    const char *invoice;
    const char *payment_intent;
    const char *status;
    int64_t amount;
    int64_t amount_refunded;
    bool refunded;
    const char *currency; /* upper case */
    const char *failure_message;
    int64_t created_ms;
} tw_stripe_charge;

typedef struct tw_stripe_refund {
    const char *id;
    const char *charge;
    /* The charge's amount_refunded as Stripe reports it with this refund
     * (the charge expanded): every refund of the charge so far, this one
     * included; -1 when the charge came as an id only. */
    int64_t charge_amount_refunded;
    const char *payment_intent;
    const char *status;
    int64_t amount;
    const char *currency; /* upper case */
    int64_t created_ms;
} tw_stripe_refund;

typedef struct tw_stripe_payment_method {
    const char *id;
    const char *customer; /* "" once detached */
    const char *type;     /* "card", ... */
    const char *card_brand;
    const char *card_last4;
    int card_exp_month;
    int card_exp_year;
    int64_t created_ms;
} tw_stripe_payment_method;

typedef struct tw_stripe_checkout_session {
    const char *id;
    const char *customer;
    const char *subscription;
    const char *client_reference_id; /* billing sets the user's id */
    const char *mode;                /* "subscription", "payment", "setup" */
    const char *status;              /* "complete", "open", "expired" */
} tw_stripe_checkout_session;

typedef struct tw_stripe_product {
    const char *id;
    const char *name;
    bool active;
} tw_stripe_product;

typedef struct tw_stripe_price {
    const char *id;
    const char *product;
    int64_t unit_amount;
    const char *currency; /* upper case */
    const char *interval;
    bool active;
} tw_stripe_price;

/* A webhook event: its envelope, and its data.object read as the kind of
 * object it is (the member for that kind set, the others NULL; all NULL
 * for kinds billing does not read). */
typedef struct tw_stripe_event {
    const char *id;   /* "evt_..." */
    const char *type; /* "invoice.paid" */
    int64_t created_ms;
    const char *api_version;
    const char *object_type; /* data.object.object: "subscription", "invoice", ... */
    const char *object_id;
    /* data.previous_attributes.customer: whose a detached payment method was. */
    const char *previous_customer;
    tw_stripe_subscription *subscription;
    tw_stripe_invoice *invoice;
    tw_stripe_payment_intent *payment_intent;
    tw_stripe_charge *charge;
    tw_stripe_payment_method *payment_method;
    tw_stripe_checkout_session *checkout_session;
    tw_stripe_customer *customer;
} tw_stripe_event;

/* Reads an event delivered to a webhook (n bytes of JSON). TW_ERR_VALIDATION
 * when it is not an event as Stripe documents one (no id, type, created or
 * data.object). */
tw_err tw_stripe_event_parse(const char *json, size_t n, tw_arena *arena, tw_stripe_event *out);

/* ---- Calls -----------------------------------------------------------------
 * Each: TW_OK with *out in arena, or an error as the table above says with
 * err (may be NULL) filled. idempotency_key: the caller's key (at most
 * TW_STRIPE_IDEMPOTENCY_KEY_MAX printable ASCII characters), or NULL for
 * one made for this call. Strings are borrowed during the call. */

/* POST /v1/customers with email, name and metadata[user_id]. */
tw_err tw_stripe_customer_create(tw_stripe *s, const char *email, const char *name,
                                 const char *user_id, const char *idempotency_key, tw_arena *arena,
                                 tw_stripe_customer *out, tw_stripe_error *err);
/* GET /v1/customers/:id */
tw_err tw_stripe_customer_get(tw_stripe *s, const char *id, tw_arena *arena,
                              tw_stripe_customer *out, tw_stripe_error *err);
/* POST /v1/customers/:id with invoice_settings[default_payment_method]. */
tw_err tw_stripe_customer_set_default_payment_method(tw_stripe *s, const char *customer,
                                                     const char *payment_method,
                                                     const char *idempotency_key, tw_arena *arena,
                                                     tw_stripe_customer *out, tw_stripe_error *err);

/* What a new subscription is made of. */
typedef struct tw_stripe_subscription_new {
    const char *customer;
    const char *price;          /* a Price id */
    const char *payment_method; /* default_payment_method; NULL: the customer's default */
    const char *user_id;        /* metadata[user_id] */
    const char *plan_id;        /* metadata[plan_id] */
} tw_stripe_subscription_new;

/* POST /v1/subscriptions with payment_behavior=error_if_incomplete: the
 * first period is charged at once, and a declined card is a 402 with
 * nothing created. */
tw_err tw_stripe_subscription_create(tw_stripe *s, const tw_stripe_subscription_new *n,
                                     const char *idempotency_key, tw_arena *arena,
                                     tw_stripe_subscription *out, tw_stripe_error *err);
/* GET /v1/subscriptions/:id (canceled ones included, as Stripe keeps them). */
tw_err tw_stripe_subscription_get(tw_stripe *s, const char *id, tw_arena *arena,
                                  tw_stripe_subscription *out, tw_stripe_error *err);
/* GET /v1/subscriptions?customer=&status=all: every subscription of a
 * customer, newest first (at most 1000). */
tw_err tw_stripe_subscription_list(tw_stripe *s, const char *customer, tw_arena *arena,
                                   tw_stripe_subscription **out, size_t *count,
                                   tw_stripe_error *err);

/* A change to a subscription; each part optional. */
typedef struct tw_stripe_subscription_change {
    /* A new price for the item (item_id and price_id both set), prorated
     * as proration_behavior says ("create_prorations" or "none"). */
    const char *item_id;
    const char *price_id;
    const char *proration_behavior;
    /* cancel_at_period_end: -1 leave, 0 false (resume), 1 true. */
    int cancel_at_period_end;
    /* pause_collection: -1 leave, 0 resume collection, 1 pause (void invoices). */
    int pause_collection;
    const char *plan_id; /* metadata[plan_id]; NULL leaves it */
} tw_stripe_subscription_change;

/* POST /v1/subscriptions/:id with the change. */
tw_err tw_stripe_subscription_update(tw_stripe *s, const char *id,
                                     const tw_stripe_subscription_change *change,
                                     const char *idempotency_key, tw_arena *arena,
                                     tw_stripe_subscription *out, tw_stripe_error *err);
/* DELETE /v1/subscriptions/:id: ends it now (idempotent at Stripe). */
tw_err tw_stripe_subscription_cancel(tw_stripe *s, const char *id, tw_arena *arena,
                                     tw_stripe_subscription *out, tw_stripe_error *err);

/* GET /v1/invoices/:id */
tw_err tw_stripe_invoice_get(tw_stripe *s, const char *id, tw_arena *arena, tw_stripe_invoice *out,
                             tw_stripe_error *err);
/* POST /v1/invoices/:id/pay: charges an open invoice again. */
tw_err tw_stripe_invoice_pay(tw_stripe *s, const char *id, const char *idempotency_key,
                             tw_arena *arena, tw_stripe_invoice *out, tw_stripe_error *err);

/* POST /v1/refunds with payment_intent, amount (0: what is left) and
 * expand[]=charge, so the answer says what the charge has refunded in all
 * (an idempotent replay says it as of the first answer). */
tw_err tw_stripe_refund_create(tw_stripe *s, const char *payment_intent, int64_t amount,
                               const char *idempotency_key, tw_arena *arena, tw_stripe_refund *out,
                               tw_stripe_error *err);

/* GET /v1/payment_methods?customer=&type=card: the customer's cards,
 * newest first (at most 1000). */
tw_err tw_stripe_payment_method_list(tw_stripe *s, const char *customer, tw_arena *arena,
                                     tw_stripe_payment_method **out, size_t *count,
                                     tw_stripe_error *err);
/* GET /v1/payment_methods/:id */
tw_err tw_stripe_payment_method_get(tw_stripe *s, const char *id, tw_arena *arena,
                                    tw_stripe_payment_method *out, tw_stripe_error *err);
/* POST /v1/payment_methods/:id/attach with customer. */
tw_err tw_stripe_payment_method_attach(tw_stripe *s, const char *id, const char *customer,
                                       const char *idempotency_key, tw_arena *arena,
                                       tw_stripe_payment_method *out, tw_stripe_error *err);
/* POST /v1/payment_methods/:id/detach */
tw_err tw_stripe_payment_method_detach(tw_stripe *s, const char *id, const char *idempotency_key,
                                       tw_arena *arena, tw_stripe_payment_method *out,
                                       tw_stripe_error *err);

/* POST /v1/products with name, description and metadata[plan_id]. */
tw_err tw_stripe_product_create(tw_stripe *s, const char *name, const char *description,
                                const char *plan_id, const char *idempotency_key, tw_arena *arena,
                                tw_stripe_product *out, tw_stripe_error *err);

/* What a new recurring price is made of. */
typedef struct tw_stripe_price_new {
    const char *product;
    int64_t unit_amount;  /* minor units, 0 or more */
    const char *currency; /* ISO 4217, any case (sent lower case) */
    const char *interval; /* "month" or "year" */
    const char *plan_id;  /* metadata[plan_id] */
    const char *audience; /* metadata[audience]: "standard", "student" */
} tw_stripe_price_new;

/* POST /v1/prices with product, unit_amount, currency, recurring[interval]. */
tw_err tw_stripe_price_create(tw_stripe *s, const tw_stripe_price_new *n,
                              const char *idempotency_key, tw_arena *arena, tw_stripe_price *out,
                              tw_stripe_error *err);

#endif
