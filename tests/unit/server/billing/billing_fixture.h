/*
 * What billing's tests share: a store (store_fixture.h) whose clock starts
 * at the real time (so that it agrees with fake_stripe.py's), a blob
 * store, fake_stripe.py with a Stripe client on it, billing with Stripe
 * and the embedded default without it, and helpers to make plans, run
 * billing's jobs, and deliver the events the fake recorded as Stripe
 * would (signed). Every helper fails the running test on an error.
 */
#ifndef TW_BILLING_FIXTURE_H
#define TW_BILLING_FIXTURE_H

#include "billing/billing.h"
#include "store_fixture.h"
#include "vendor_fixture.h"

#include <jansson.h>

#define BX_KEY    "sk_test_billing_fixture"
#define BX_SECRET "whsec_billing_fixture_secret"

typedef struct bx_env {
    fx_server stripe;    /* fake_stripe.py */
    tw_stripe *client;   /* on it, with quick retries */
    tw_billing *billing; /* with Stripe */
    tw_billing *local;   /* the embedded default */
    /* The last code billing sent to an academic address. */
    char code[8];
    char code_email[256];
    int codes_sent;
} bx_env;

extern bx_env bx;

/* A Check fixture: the store, blobs, the fake, both billings. */
void bx_setup(void);
void bx_teardown(void);

/* The test clock (the store's), and moving it. */
int64_t bx_now(void);
void bx_advance(int64_t ms);

/* A call of user on b, with fx.arena, the clock and a violation list. */
tw_billing_ctx bx_ctx(tw_billing *b, const tw_id *user);
/* The fields of c's violations since the last look, comma-separated
 * ("" when none); the list is emptied. */
const char *bx_bad(tw_billing_ctx *c);
/* A first page of size items (0: the default), and the page after page. */
tw_billing_page *bx_page(int32_t size);
tw_billing_page *bx_next(const tw_billing_page *page);

/* Creates a plan on b: id, monthly at amount USD cents, with a student
 * price when student_amount >= 0 and an EUR price when eur_amount >= 0. */
Tw__V1__Plan *bx_plan(tw_billing *b, const char *id, int64_t amount, int64_t student_amount,
                      int64_t eur_amount);

/* Runs b's due jobs (every billing type) until none is due; how many ran. */
int bx_run_jobs(tw_billing *b);
/* How many of b's jobs of type wait (due or not). */
int bx_jobs_waiting(const char *type);

/* A Stripe-Signature header for payload signed at t_s with BX_SECRET. */
char *bx_sign(const char *payload, int64_t t_s);

/* The events the fake recorded, oldest first (json_decref it), and how
 * many there are. */
json_t *bx_events(void);
size_t bx_event_count(void);
/* Delivers event (one of bx_events) to b, signed now; the outcome. */
tw_err bx_deliver(tw_billing *b, json_t *event, tw_webhook_delivery *delivery);
/* Delivers every recorded event after the first `from` (in order, or
 * newest first when reversed) and runs the jobs; returns how many. */
size_t bx_deliver_from(tw_billing *b, size_t from, bool reversed);

/* How many objects of kind the fake holds. */
size_t bx_stripe_count(const char *kind);
/* Renews (or ends) a subscription at the fake now. */
void bx_stripe_advance(const char *subscription_id);

/* A service-wide counter: today's bucket, and a gauge (day 0). */
int64_t bx_today(const char *name, const char *dims);
int64_t bx_gauge(const char *name, const char *dims);

#endif
