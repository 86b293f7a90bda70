/*
 * What the files of server/billing share and nothing else sees: the
 * billing context, refusals, reading and writing records, paging, time
 * arithmetic, counters, and the few functions one file offers another.
 */
#ifndef TW_BILLING_INTERNAL_H
#define TW_BILLING_INTERNAL_H

#include "billing.h"
#include "pbtime.h"
#include "stripe_webhook.h"
#include "tw/store/v1/billing_records.pb-c.h"
#include "tw_page.h"
#include "tw_txn.h"

#include <pthread.h>
#include <stdarg.h>

typedef Tw__Store__V1__PlanRecord plan_record;
typedef Tw__Store__V1__PriceRecord price_record;
typedef Tw__Store__V1__LimitRecord limit_record;
typedef Tw__Store__V1__BillingAccountRecord account_record;
typedef Tw__Store__V1__SubscriptionRecord sub_record;
typedef Tw__Store__V1__PaymentRecord payment_record;
typedef Tw__Store__V1__PaymentMethodRecord pm_record;
typedef Tw__Store__V1__EntitlementRecord entitlement_record;
typedef Tw__Store__V1__StudentVerificationRecord student_record;
typedef Tw__Store__V1__WebhookEventRecord event_record;

#define AUDIENCE_STANDARD TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STANDARD
#define AUDIENCE_STUDENT  TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STUDENT
#define INTERVAL_MONTH    TW__V1__BILLING_INTERVAL__BILLING_INTERVAL_MONTH
#define INTERVAL_YEAR     TW__V1__BILLING_INTERVAL__BILLING_INTERVAL_YEAR
#define PROVIDER_LOCAL    TW__V1__SUBSCRIPTION_PROVIDER__SUBSCRIPTION_PROVIDER_LOCAL
#define PROVIDER_STRIPE   TW__V1__SUBSCRIPTION_PROVIDER__SUBSCRIPTION_PROVIDER_STRIPE

#define MS_PER_S    INT64_C(1000)
#define MS_PER_MIN  INT64_C(60000)
#define MS_PER_HOUR INT64_C(3600000)
#define MS_PER_DAY  INT64_C(86400000)

/* A count kept in memory by the meter (usage.c): one user's use of one
 * resource in one period, not written yet, and what it is checked against. */
struct billing_meter_slot {
    pthread_mutex_t lock;
    bool held;
    tw_id user;
    int resource;
    int64_t period_start_ms;
    int64_t pending;    /* counted, not written */
    int64_t pending_ms; /* when the oldest pending count was made */
    /* Read from the store while the user's write epoch and the shared one
     * were epoch and shared_epoch; trusted while they are, until until_ms. */
    bool known;
    uint64_t epoch, shared_epoch;
    int64_t until_ms;
    int64_t period_end_ms;
    int64_t limit;  /* the plan's; -1: none */
    int64_t stored; /* the count written */
};

#define BILLING_METER_SLOTS 1024

struct tw_billing {
    tw_store *store;
    tw_blob_store *blobs;
    tw_stripe *stripe;
    char *secrets[2];
    tw_stripe_webhook_config webhook;
    void (*send_code)(void *ctx, const tw_id *user, const char *email, const char *code);
    void *send_code_ctx;
    struct billing_meter_slot meter[BILLING_METER_SLOTS];
};

/* ---- Refusals (billing.c) --------------------------------------------------------- */

/* Sets c->why.message; returns err, so a check can `return billing_refuse(...)`. */
tw_err billing_refuse(tw_billing_ctx *c, tw_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A bad field, added to c->bad: TW_ERR_VALIDATION. Checks go on after
 * one, so that the client learns every bad field at once. */
tw_err billing_bad(tw_billing_ctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* TW_ERR_VALIDATION when the checks since before (tw_violations_total
 * of c->bad, read before them) found a bad field. */
tw_err billing_bad_since(const tw_billing_ctx *c, size_t before);
/* A failed Stripe call: the refusal a client sees (Stripe's message for a
 * card error, Retry-After for an outage), logged with Stripe's detail. */
tw_err billing_stripe_refusal(tw_billing_ctx *c, tw_err err, const tw_stripe_error *e,
                              const char *what);
/* Payments need Stripe: PAY_003 without it. */
tw_err billing_need_stripe(tw_billing_ctx *c);

/* ---- Records (billing.c) -------------------------------------------------------------- */

/* Reads k's message: in t (for update when for_update) or, t NULL, as
 * committed. TW_ERR_NOT_FOUND when absent. */
tw_err billing_get(tw_store *s, tw_txn *t, bool for_update, const tw_key *k, tw_arena *arena,
                   void *out_msg);
tw_err billing_put(tw_txn *t, const tw_key *k, const void *msg);

void billing_account_key(tw_key *k, const tw_id *user);
void billing_entitlement_key(tw_key *k, const tw_id *user);
void billing_student_key(tw_key *k, const tw_id *user);
void billing_plan_key(tw_key *k, const char *plan);
void billing_customer_key(tw_key *k, const char *customer);

/* The 16 bytes of an id as a bytes field (borrowing id), and back. */
ProtobufCBinaryData billing_id_bytes(const tw_id *id);
bool billing_bytes_id(ProtobufCBinaryData b, tw_id *out);
/* An id's text in arena. */
char *billing_id_text(tw_arena *arena, const tw_id *id);

/* ---- Paging (billing.c) ---------------------------------------------------------------- */

/* One page of a scan of prefix (reverse: last key first) through
 * tw_store_page_scan: page->size items from page's cursor, or from
 * first_after (when not NULL) on the first page, up to stop (NULL: the
 * prefix's end); fn is shown each key and says whether it took the item;
 * page->next is set when there is more. */
tw_err billing_page(tw_billing_ctx *c, const tw_key *prefix, const tw_key *first_after,
                    const tw_key *stop, bool reverse, tw_billing_page *page, tw_store_page_fn fn,
                    void *ctx);

/* ---- Time (billing.c) ------------------------------------------------------------------------ */

/* ms plus n intervals (calendar months or years, UTC, the day of the month
 * clamped to the month's length). */
int64_t billing_add_interval(int64_t ms, int interval, int n);
/* The start of the UTC month holding ms. */
int64_t billing_month_start(int64_t ms);

/* ---- Counters (billing.c) -----------------------------------------------------------------------
 */

/* Adds delta to a service-wide counter's bucket for now's day. */
tw_err billing_count(tw_txn *t, const char *name, const char *dims, int64_t now_ms, int64_t delta);
/* Adds delta to a gauge: a counter kept in day 0, read as the current value. */
tw_err billing_gauge(tw_txn *t, const char *name, const char *dims, int64_t delta);
/* Lists user under kind at time_ms in the alert index (metrics.c reads it). */
tw_err billing_alert(tw_txn *t, int64_t time_ms, const tw_id *user, const char *kind);

/* ---- Between files
 * ------------------------------------------------------------------------------- */

/* plans.c: stores the built-in free plan unless the store has one
 * (tw_billing_new). */
tw_err billing_plans_init(tw_store *s, int64_t now_ms);
/* plans.c: a plan as stored (the built-in free plan when "free" was never
 * written); TW_ERR_NOT_FOUND for an unknown id. In t when t is set. */
tw_err billing_plan_load(tw_billing *b, tw_txn *t, const char *id, tw_arena *arena,
                         plan_record **out);
/* The plan's price in currency ("" or NULL: its own) for audience; NULL
 * when it has none. */
const price_record *billing_plan_price(const plan_record *p, const char *currency, int audience);
/* The plan's limit of resource: its own, else the default; -1 unlimited. */
int64_t billing_plan_limit(const plan_record *p, int resource);
/* A price as the API shows it. */
Tw__V1__PlanPrice *billing_present_price(tw_arena *arena, const price_record *p);
/* The plan whose prices include Stripe's price_id; NULL when none. */
tw_err billing_plan_by_stripe_price(tw_billing *b, const char *price_id, tw_arena *arena,
                                    plan_record **out);

/* account.c: rewrites user's entitlement record in t from their account
 * and student verification as t sees them. */
tw_err billing_entitlement_refresh(tw_txn *t, const tw_id *user, int64_t now_ms, tw_arena *arena);
/* The user's Stripe customer, made once (its idempotency key is stored
 * before Stripe is asked); *a gets the account holding it. */
tw_err billing_ensure_customer(tw_billing_ctx *c, account_record **a);
/*
 * Stripe's readings into a user's records, the newest winning: a caller
 * reads the account's stripe_sync_seq (billing_sync_seq), asks Stripe
 * (a change, or a plain read), then billing_sync_run calls apply in a
 * transaction holding the account for update, if the sequence has not
 * moved (apply changes the account in place, and may write other records
 * in t; the account is then written with the sequence bumped). When it
 * moved, read takes a fresh reading and it tries again.
 */
typedef struct billing_sync {
    tw_billing_ctx *c;
    uint64_t seq;
    tw_err (*read)(struct billing_sync *w);
    tw_err (*apply)(struct billing_sync *w, tw_txn *t, account_record *a);
    bool moved; /* internal */
} billing_sync;
tw_err billing_sync_run(billing_sync *w);
tw_err billing_sync_seq(tw_billing_ctx *c, uint64_t *seq);
/* Account deletion: the user's subscription leaves the counters and the
 * by-plan index, their customer leaves the customer index (in t). */
tw_err billing_account_forget(tw_billing *b, tw_txn *t, const tw_id *user, int64_t now_ms,
                              tw_arena *arena);
/* Whose Stripe customer this is; TW_ERR_NOT_FOUND when not ours. */
tw_err billing_customer_user(tw_billing *b, const char *customer, tw_id *user);
/* Reads Stripe's subscription stripe_id and stores what it says for user,
 * the newest reading winning (see BillingAccountRecord.stripe_sync_seq).
 * clear_suspension: an operator's re-sync. */
tw_err billing_sync_subscription(tw_billing_ctx *c, const char *stripe_id, bool clear_suspension);
/* The period-end and reprice jobs. */
tw_err billing_period_end_job(tw_billing *b, const tw_id *user, const char *sub_id, int64_t now_ms,
                              tw_arena *arena);
tw_err billing_reprice_job(tw_billing_ctx *c, const char *plan_id);

/* payments.c: Stripe's objects merged into the user's payment records, and
 * a payment method read from Stripe again and stored as it is there. */
tw_err billing_merge_invoice(tw_billing_ctx *c, const tw_stripe_invoice *inv);
tw_err billing_merge_payment_intent(tw_billing_ctx *c, const tw_stripe_payment_intent *pi);
tw_err billing_merge_charge(tw_billing_ctx *c, const tw_stripe_charge *ch);
tw_err billing_sync_payment_method(tw_billing_ctx *c, const char *pm_id);
/* One page of c->user's payments (newest first) or payment methods (by
 * id), as billing_page pages, in c->arena. */
tw_err billing_list_payments(tw_billing_ctx *c, tw_billing_page *page, Tw__V1__Payment ***items,
                             size_t *n);
tw_err billing_list_payment_methods(tw_billing_ctx *c, tw_billing_page *page,
                                    Tw__V1__PaymentMethod ***items, size_t *n);
/* Counts a payment attempt of c->user that left no payment record (a
 * first charge declined before Stripe made anything). */
tw_err billing_count_lost_attempt(tw_billing_ctx *c);
tw_err billing_card_expiry_job(tw_billing *b, const tw_id *user, const char *pm_id, int64_t now_ms,
                               tw_arena *arena);

/* usage.c: every resource's use in ent's period, in arena. */
tw_err billing_usages(tw_billing *b, const tw_id *user, const tw_billing_entitlement *ent,
                      tw_arena *arena, Tw__V1__ResourceUsage ***out, size_t *n);
/* The meter's slots (tw_billing_usage_flush writes them): made ready,
 * one user's dropped unwritten (for a deleted account), put away. */
void billing_meter_init(tw_billing *b);
void billing_meter_forget(tw_billing *b, const tw_id *user);
void billing_meter_free(tw_billing *b);

/* student.c */
tw_err billing_student_expiry_job(tw_billing *b, const tw_id *user, const char *verification_id,
                                  int64_t now_ms, tw_arena *arena);
/* Account deletion: the verification leaves the review index (in t);
 * *blob_key gets its document's blob (NULL: none), to delete after commit. */
tw_err billing_student_forget(tw_billing *b, tw_txn *t, const tw_id *user, tw_arena *arena,
                              const char **blob_key);
/* When user's approved verification runs out as t sees it; 0 when none. */
tw_err billing_student_until(tw_txn *t, const tw_id *user, int64_t now_ms, tw_arena *arena,
                             int64_t *until_ms);

/* webhooks.c: the i-th event type counted (billing's own, then "other");
 * NULL past the last. */
const char *billing_webhook_type(size_t i);
/* webhooks.c: processes a stored event (the "billing_webhook" job). */
tw_err billing_webhook_job(tw_billing *b, const char *event_id, int64_t now_ms, tw_arena *arena,
                           char *error, size_t error_len, int64_t *retry_after_ms);

/* Enqueues a billing job in t for user (NULL for none) and ref, due at due_ms. */
tw_err billing_enqueue(tw_txn *t, const char *type, const tw_id *user, const char *ref,
                       int64_t due_ms, int64_t now_ms);

#endif
