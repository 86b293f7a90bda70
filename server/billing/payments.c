/*
 * Payments and payment methods mirrored from Stripe.
 *
 * A payment is one invoice (or a payment intent without one):
 * BILLING_PAYMENT(user, id) -> PaymentRecord, listed newest first through
 * BILLING_PAYMENT_BY_TIME(user, Stripe's creation time, id). Stripe's
 * objects are merged into it, never overwritten: a success is never undone
 * by a late failure, attempts and refunds only grow. So invoice, payment
 * intent and charge events give the same record in any order, and the
 * counters follow the record's growth (each attempt, success, failure and
 * refund counted once): billing_payments by status, billing_refunds,
 * billing_refunded_minor by currency, and per user and hour
 * billing_payment_attempts and billing_payment_failures, whose crossing of
 * the runbook's thresholds (more than 5 attempts, more than 3 failures in
 * an hour) lists the user in the alert index; and
 * billing_payment_failures_max_per_user (per hour, service-wide), the
 * largest of those hourly failure counts, which /metrics exports.
 *
 * Payment methods: BILLING_PAYMENT_METHOD(user, id). Webhook events make
 * us read the payment method from Stripe again and store what Stripe says
 * now (attached to the user's customer, or gone), through the account's
 * sync sequence. Each card gets a job due when its expiry month ends,
 * which marks it expired.
 */
#include "billing_internal.h"

#include "tw_counter.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define PAYMENT_ID_MAX       255
#define ATTEMPTS_ALERT_ABOVE 5
#define FAILURES_ALERT_ABOVE 3

#define PAY_SUCCEEDED TW__V1__PAYMENT_STATUS__PAYMENT_STATUS_SUCCEEDED
#define PAY_FAILED    TW__V1__PAYMENT_STATUS__PAYMENT_STATUS_FAILED
#define PAY_REFUNDED  TW__V1__PAYMENT_STATUS__PAYMENT_STATUS_REFUNDED
#define PAY_PARTIAL   TW__V1__PAYMENT_STATUS__PAYMENT_STATUS_PARTIALLY_REFUNDED

static void payment_key(tw_key *k, const tw_id *user, const char *id)
{
    tw_key_init(k, TW_KF_BILLING_PAYMENT);
    tw_key_id(k, user);
    tw_key_str(k, id);
}

static void payment_time_key(tw_key *k, const tw_id *user, int64_t ms, const char *id)
{
    tw_key_init(k, TW_KF_BILLING_PAYMENT_BY_TIME);
    tw_key_id(k, user);
    tw_key_i64(k, ms);
    tw_key_str(k, id);
}

static void pm_key(tw_key *k, const tw_id *user, const char *id)
{
    tw_key_init(k, TW_KF_BILLING_PAYMENT_METHOD);
    tw_key_id(k, user);
    if (id != NULL)
        tw_key_str(k, id);
}

/* A Stripe id a client sent: 1..255 of [A-Za-z0-9_]. */
static tw_err check_stripe_id(tw_billing_ctx *c, const char *field, const char *id)
{
    size_t n = strlen(id);
    if (n == 0)
        return billing_bad(c, field, "is required");
    if (n > PAYMENT_ID_MAX)
        return billing_bad(c, field, "is longer than %d characters", PAYMENT_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return billing_bad(c, field, "is not a Stripe id");
    }
    return TW_OK;
}

static bool charged(int status)
{
    return status == PAY_SUCCEEDED || status == PAY_REFUNDED || status == PAY_PARTIAL;
}

/* ---- Merging Stripe's objects into payments ------------------------------------------- */

/* What one of Stripe's objects says of a payment; zero fields say nothing. */
typedef struct payment_facts {
    const char *id; /* the invoice, else the payment intent */
    const char *invoice;
    const char *payment_intent;
    const char *subscription;
    int64_t amount;
    const char *currency;
    int64_t created_ms;
    int status; /* PAY_SUCCEEDED, PAY_FAILED or 0 */
    const char *failure_message;
    int attempts;
    int64_t refunded;
    const char *refund_request_id; /* a refund of ours that this is the answer to */
} payment_facts;

struct merge {
    tw_billing_ctx *c;
    const payment_facts *f;
    payment_record *rec; /* out */
};

static const char *fill(const char *have, const char *got)
{
    return have != NULL && have[0] != '\0' ? have : (got ? got : "");
}

/* Raises the service-wide counter max_name (dims, day) to at least value:
 * read for update, so two users' raises never add up. */
static tw_err raise_max(tw_txn *t, const char *max_name, const char *dims, uint32_t day,
                        int64_t value)
{
    tw_key k;
    tw_key_init(&k, TW_KF_COUNTER);
    tw_key_str(&k, max_name);
    tw_key_str(&k, dims);
    tw_key_u32(&k, day);
    tw_value v = {0};
    tw_err err = tw_txn_get_for_update(t, &k, NULL, &v);
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    int64_t max = err ? 0 : (int64_t)v.u64;
    tw_counter ctr = {NULL, max_name, dims};
    return value > max ? tw_txn_counter_add(t, &ctr, day, value - max) : TW_OK;
}

/* Counts a user's payment attempt in this hour and lists them as an alert
 * when the hour's count passes above; max_name (may be NULL) keeps the
 * hour's largest count of any user (for /metrics). */
static tw_err count_hourly(tw_txn *t, const tw_id *user, const char *name, const char *max_name,
                           int64_t delta, int64_t above, const char *alert, int64_t now_ms,
                           tw_arena *arena)
{
    if (delta <= 0)
        return TW_OK;
    char dims[16];
    snprintf(dims, sizeof dims, "hour=%02d", (int)(now_ms % MS_PER_DAY / MS_PER_HOUR));
    uint32_t day = tw_store_day(now_ms);
    tw_key k;
    tw_key_init(&k, TW_KF_USER_COUNTER);
    tw_key_id(&k, user);
    tw_key_str(&k, name);
    tw_key_str(&k, dims);
    tw_key_u32(&k, day);
    tw_value v = {0};
    tw_err err = tw_txn_get(t, &k, arena, &v);
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    int64_t before = err ? 0 : (int64_t)v.u64;
    tw_counter ctr = {user, name, dims};
    if ((err = tw_txn_counter_add(t, &ctr, day, delta)))
        return err;
    if (max_name != NULL && (err = raise_max(t, max_name, dims, day, before + delta)))
        return err;
    if (before <= above && before + delta > above)
        err = billing_alert(t, now_ms - now_ms % MS_PER_HOUR, user, alert);
    return err;
}

/* Counts attempts (failures among them) of c->user now. */
static tw_err count_attempts(tw_txn *t, tw_billing_ctx *c, int64_t attempts, int64_t successes)
{
    int64_t failures = attempts - successes > 0 ? attempts - successes : 0;
    tw_err err = billing_count(t, "billing_payments", "status=succeeded", c->now_ms, successes);
    if (!err)
        err = billing_count(t, "billing_payments", "status=failed", c->now_ms, failures);
    if (!err)
        err = count_hourly(t, &c->user, "billing_payment_attempts", NULL, attempts,
                           ATTEMPTS_ALERT_ABOVE, "payment_attempts", c->now_ms, c->arena);
    if (!err)
        err = count_hourly(t, &c->user, "billing_payment_failures",
                           "billing_payment_failures_max_per_user", failures, FAILURES_ALERT_ABOVE,
                           "payment_failures", c->now_ms, c->arena);
    return err;
}

static tw_err merge_fn(tw_txn *t, void *ctx)
{
    struct merge *w = ctx;
    tw_billing_ctx *c = w->c;
    const payment_facts *f = w->f;
    tw_key k;
    payment_key(&k, &c->user, f->id);
    payment_record *r;
    tw_err err = billing_get(NULL, t, true, &k, c->arena, &r);
    bool fresh = err == TW_ERR_NOT_FOUND;
    if (fresh) {
        if ((r = tw_arena_alloc(c->arena, sizeof *r)) == NULL)
            return TW_ERR_NO_MEMORY;
        tw__store__v1__payment_record__init(r);
        r->id = (char *)f->id;
        r->create_unix_ms = f->created_ms ? f->created_ms : c->now_ms;
    } else if (err) {
        return err;
    }
    bool was_charged = charged(r->status);
    int old_attempts = r->attempt_count;
    int64_t old_refunded = r->refunded_minor;
    /* Listed by the earliest creation time any of its objects has. */
    int64_t old_created = fresh ? 0 : r->create_unix_ms;
    if (f->created_ms > 0 && f->created_ms < r->create_unix_ms)
        r->create_unix_ms = f->created_ms;

    r->invoice_id = (char *)fill(r->invoice_id, f->invoice);
    r->payment_intent_id = (char *)fill(r->payment_intent_id, f->payment_intent);
    r->stripe_subscription_id = (char *)fill(r->stripe_subscription_id, f->subscription);
    r->currency = (char *)fill(r->currency, f->currency);
    if (f->amount > r->amount_minor)
        r->amount_minor = f->amount;
    int attempts = f->attempts;
    if (attempts == 0 && f->status != 0)
        attempts = 1; /* a success or failure is at least one attempt */
    if (attempts > r->attempt_count)
        r->attempt_count = attempts;
    if (f->status == PAY_SUCCEEDED)
        r->status = PAY_SUCCEEDED;
    else if (f->status == PAY_FAILED && !charged(r->status))
        r->status = PAY_FAILED;
    /* A failure's message, while it is one: once paid, there is none (so
     * the record is the same whichever of the two arrived first). */
    if (f->failure_message != NULL && f->failure_message[0] != '\0')
        r->failure_message = (char *)f->failure_message;
    r->failure_message = charged(r->status) ? "" : (char *)fill(r->failure_message, "");
    if (f->refunded > r->refunded_minor)
        r->refunded_minor = f->refunded;
    if (charged(r->status) && r->refunded_minor > 0)
        r->status = r->refunded_minor >= r->amount_minor ? PAY_REFUNDED : PAY_PARTIAL;
    if (f->refund_request_id != NULL && f->refund_request_id[0] != '\0') {
        char **ids = tw_arena_alloc(c->arena, (r->n_refund_request_ids + 1) * sizeof *ids);
        if (ids == NULL)
            return TW_ERR_NO_MEMORY;
        if (r->n_refund_request_ids > 0) /* none: the list may be NULL */
            memcpy(ids, r->refund_request_ids, r->n_refund_request_ids * sizeof *ids);
        ids[r->n_refund_request_ids++] = (char *)f->refund_request_id;
        r->refund_request_ids = ids;
    }
    r->update_unix_ms = c->now_ms;
    w->rec = r;

    /* Counted by what grew. */
    err = count_attempts(t, c, r->attempt_count - old_attempts,
                         charged(r->status) && !was_charged ? 1 : 0);
    int64_t refunded = r->refunded_minor - old_refunded;
    char dims[32];
    snprintf(dims, sizeof dims, "currency=%s", r->currency);
    if (!err && refunded > 0)
        err = billing_count(t, "billing_refunds", "", c->now_ms, 1);
    if (!err)
        err = billing_count(t, "billing_refunded_minor", dims, c->now_ms, refunded);
    if (!err && old_created != r->create_unix_ms) {
        tw_key by_time;
        if (!fresh) {
            payment_time_key(&by_time, &c->user, old_created, r->id);
            err = tw_txn_delete(t, &by_time);
        }
        payment_time_key(&by_time, &c->user, r->create_unix_ms, r->id);
        if (!err)
            err = tw_txn_put(t, &by_time, NULL);
    }
    return err ? err : billing_put(t, &k, r);
}

static tw_err merge(tw_billing_ctx *c, const payment_facts *f, payment_record **out)
{
    if (f->id == NULL || f->id[0] == '\0')
        return TW_OK; /* nothing to key it by */
    struct merge w = {c, f, NULL};
    tw_err err = tw_txn_run(c->billing->store, merge_fn, &w);
    if (out != NULL)
        *out = w.rec;
    return err;
}

static payment_facts invoice_facts(const tw_stripe_invoice *inv)
{
    int status = 0;
    if (strcmp(inv->status, "paid") == 0)
        status = PAY_SUCCEEDED;
    else if (inv->attempt_count > 0 &&
             (strcmp(inv->status, "open") == 0 || strcmp(inv->status, "uncollectible") == 0))
        status = PAY_FAILED;
    return (payment_facts){
        .id = inv->id,
        .invoice = inv->id,
        .payment_intent = inv->payment_intent,
        .subscription = inv->subscription,
        .amount = inv->amount_due,
        .currency = inv->currency,
        .created_ms = inv->created_ms,
        .status = status,
        .attempts = inv->attempt_count,
    };
}

tw_err billing_merge_invoice(tw_billing_ctx *c, const tw_stripe_invoice *inv)
{
    payment_facts f = invoice_facts(inv);
    return merge(c, &f, NULL);
}

tw_err billing_merge_payment_intent(tw_billing_ctx *c, const tw_stripe_payment_intent *pi)
{
    int status = 0;
    if (strcmp(pi->status, "succeeded") == 0)
        status = PAY_SUCCEEDED;
    else if (pi->failure_message[0] != '\0')
        status = PAY_FAILED;
    payment_facts f = {
        .id = pi->invoice[0] ? pi->invoice : pi->id,
        .invoice = pi->invoice,
        .payment_intent = pi->id,
        .amount = pi->amount,
        .currency = pi->currency,
        .created_ms = pi->created_ms,
        .status = status,
        .failure_message = pi->failure_message,
    };
    return merge(c, &f, NULL);
}

tw_err billing_merge_charge(tw_billing_ctx *c, const tw_stripe_charge *ch)
{
    payment_facts f = {
        .id = ch->invoice[0] ? ch->invoice : ch->payment_intent,
        .invoice = ch->invoice,
        .payment_intent = ch->payment_intent,
        .amount = ch->amount,
        .currency = ch->currency,
        .created_ms = ch->created_ms,
        .status = strcmp(ch->status, "succeeded") == 0 ? PAY_SUCCEEDED
                  : strcmp(ch->status, "failed") == 0  ? PAY_FAILED
                                                       : 0,
        .failure_message = ch->failure_message,
        .refunded = ch->amount_refunded,
    };
    return merge(c, &f, NULL);
}

static tw_err lost_attempt_fn(tw_txn *t, void *ctx)
{
    return count_attempts(t, ctx, 1, 0);
}

tw_err billing_count_lost_attempt(tw_billing_ctx *c)
{
    return tw_txn_run(c->billing->store, lost_attempt_fn, c);
}

/* ---- Payments as users and operators see them ----------------------------------------- */

static Tw__V1__Payment *present_payment(tw_arena *arena, const payment_record *r)
{
    Tw__V1__Payment *p = tw_arena_alloc(arena, sizeof *p);
    if (p == NULL)
        return NULL;
    tw__v1__payment__init(p);
    p->id = r->id;
    p->amount_minor = r->amount_minor;
    p->currency = r->currency;
    p->status = r->status;
    p->failure_message = r->failure_message;
    p->invoice_id = r->invoice_id;
    p->payment_intent_id = r->payment_intent_id;
    p->stripe_subscription_id = r->stripe_subscription_id;
    p->refunded_minor = r->refunded_minor;
    p->attempt_count = r->attempt_count;
    p->create_time = tw_timestamp_new(arena, r->create_unix_ms);
    p->update_time = tw_timestamp_new(arena, r->update_unix_ms);
    return p->create_time && p->update_time ? p : NULL;
}

struct payments {
    tw_billing_ctx *c;
    Tw__V1__Payment **items;
    size_t n;
};

static tw_err payment_item(void *ctx, tw_store_iter *it, bool *taken)
{
    struct payments *l = ctx;
    tw_key_reader r;
    tw_store_iter_read_key(it, &r);
    tw_id user;
    int64_t ms;
    char *id;
    tw_key_read_id(&r, &user);
    tw_key_read_i64(&r, &ms);
    tw_key_read_str(&r, l->c->arena, &id, NULL);
    if (r.err)
        return r.err;
    tw_key k;
    payment_key(&k, &user, id);
    payment_record *rec;
    tw_err err = billing_get(l->c->billing->store, NULL, false, &k, l->c->arena, &rec);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    if ((l->items[l->n++] = present_payment(l->c->arena, rec)) == NULL)
        return TW_ERR_NO_MEMORY;
    *taken = true;
    return TW_OK;
}

tw_err billing_list_payments(tw_billing_ctx *c, tw_billing_page *page, Tw__V1__Payment ***items,
                             size_t *n)
{
    struct payments l = {c, NULL, 0};
    if ((l.items = tw_arena_alloc(c->arena, (TW_PAGE_SIZE_MAX + 1) * sizeof *l.items)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_BILLING_PAYMENT_BY_TIME);
    tw_key_id(&prefix, &c->user);
    tw_err err = billing_page(c, &prefix, NULL, NULL, true, page, payment_item, &l);
    *items = l.items;
    *n = l.n;
    return err;
}

tw_err tw_billing_list_payments(tw_billing_ctx *c, tw_billing_page *page,
                                Tw__V1__ListPaymentsResponse **out)
{
    Tw__V1__ListPaymentsResponse *r = tw_arena_alloc(c->arena, sizeof *r);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__list_payments_response__init(r);
    tw_err err = billing_list_payments(c, page, &r->payments, &r->n_payments);
    *out = r;
    return err;
}

/* The user's payment id, as committed. */
static tw_err load_payment(tw_billing_ctx *c, const char *id, payment_record **out)
{
    tw_err err = check_stripe_id(c, "payment_id", id);
    if (err)
        return err;
    tw_key k;
    payment_key(&k, &c->user, id);
    err = billing_get(c->billing->store, NULL, false, &k, c->arena, out);
    if (err == TW_ERR_NOT_FOUND)
        return billing_refuse(c, err, "payment %s not found", id);
    return err;
}

tw_err tw_billing_refund_payment(tw_billing_ctx *c, const char *payment_id, int64_t amount_minor,
                                 const char *request_id, Tw__V1__Payment **out)
{
    payment_record *r;
    tw_err err = billing_need_stripe(c);
    if (!err)
        err = load_payment(c, payment_id, &r);
    if (err)
        return err;
    for (size_t i = 0; request_id[0] != '\0' && i < r->n_refund_request_ids; i++)
        if (strcmp(r->refund_request_ids[i], request_id) == 0)
            return (*out = present_payment(c->arena, r)) ? TW_OK : TW_ERR_NO_MEMORY;
    if (!charged(r->status) || r->payment_intent_id[0] == '\0')
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "payment %s was not charged",
                              payment_id);
    /* With a request_id, what is left is Stripe's to judge: a retry whose
     * first try reached Stripe (and whose charge.refunded may be counted
     * here already) gets that first answer through the idempotency key,
     * and a new refund of too much gets Stripe's refusal. */
    int64_t left = r->amount_minor - (request_id[0] ? 0 : r->refunded_minor);
    if (left <= 0)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "payment %s is refunded already",
                              payment_id);
    if (amount_minor < 0 || amount_minor > left)
        return billing_bad(c, "amount_minor", "must be between 0 and %lld (what is left)",
                           (long long)left);
    char user[TW_ID_TEXT_SIZE], key[TW_STRIPE_IDEMPOTENCY_KEY_MAX + 1];
    tw_id_format(&c->user, user);
    snprintf(key, sizeof key, "twd-refund-%s-%s", payment_id, request_id);
    tw_stripe_refund re;
    tw_stripe_error e;
    err = tw_stripe_refund_create(c->billing->stripe, r->payment_intent_id, amount_minor,
                                  request_id[0] ? key : NULL, c->arena, &re, &e);
    if (err)
        return billing_stripe_refusal(c, err, &e, "refund");
    /* The charge's total refunded as Stripe reports it, never our sum:
     * a replayed answer or a charge.refunded applied meanwhile then end
     * in the same state (merge keeps the largest total it was told). */
    if (re.charge_amount_refunded < 0)
        return billing_refuse(c, TW_ERR_UPSTREAM,
                              "Stripe's refund %s did not say what its charge has refunded", re.id);
    payment_facts f = {
        .id = r->id,
        .refunded = re.charge_amount_refunded,
        .refund_request_id = request_id,
    };
    if ((err = merge(c, &f, &r)))
        return err;
    return (*out = present_payment(c->arena, r)) ? TW_OK : TW_ERR_NO_MEMORY;
}

tw_err tw_billing_retry_invoice(tw_billing_ctx *c, const char *payment_id, Tw__V1__Payment **out)
{
    payment_record *r;
    tw_err err = billing_need_stripe(c);
    if (!err)
        err = load_payment(c, payment_id, &r);
    if (err)
        return err;
    if (r->invoice_id[0] == '\0' || r->status != PAY_FAILED)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "payment %s is not a failed invoice",
                              payment_id);
    /* One key per attempt: a repeated click pays once. */
    char key[TW_STRIPE_IDEMPOTENCY_KEY_MAX + 1];
    snprintf(key, sizeof key, "twd-pay-%s-%d", r->invoice_id, r->attempt_count);
    tw_stripe_invoice inv;
    tw_stripe_error e;
    tw_err paid = tw_stripe_invoice_pay(c->billing->stripe, r->invoice_id, key, c->arena, &inv, &e);
    if (paid == TW_ERR_PAY_CARD_DECLINED || paid == TW_OK) {
        /* Either way the invoice moved: read it as it is now. */
        tw_stripe_error e2;
        if (paid == TW_OK || tw_stripe_invoice_get(c->billing->stripe, r->invoice_id, c->arena,
                                                   &inv, &e2) == TW_OK) {
            payment_facts f = invoice_facts(&inv);
            f.failure_message = paid ? e.message : NULL;
            if ((err = merge(c, &f, &r)))
                return err;
        }
    }
    if (paid)
        return billing_stripe_refusal(c, paid, &e, "pay an invoice");
    return (*out = present_payment(c->arena, r)) ? TW_OK : TW_ERR_NO_MEMORY;
}

/* ---- Payment methods -------------------------------------------------------------------- */

static Tw__V1__PaymentMethod *present_pm(tw_arena *arena, const pm_record *r, bool is_default)
{
    Tw__V1__PaymentMethod *p = tw_arena_alloc(arena, sizeof *p);
    if (p == NULL)
        return NULL;
    tw__v1__payment_method__init(p);
    p->id = r->id;
    p->type = r->type;
    p->card_brand = r->card_brand;
    p->card_last4 = r->card_last4;
    p->card_exp_month = r->card_exp_month;
    p->card_exp_year = r->card_exp_year;
    p->is_default = is_default;
    p->expired = r->expired;
    p->create_time = tw_timestamp_new(arena, r->create_unix_ms);
    return p->create_time ? p : NULL;
}

/* The first instant after a card's expiry month (UTC). */
static int64_t expiry_ms(const pm_record *r)
{
    struct tm tm = {
        .tm_year = r->card_exp_year - 1900, .tm_mon = r->card_exp_month - 1, .tm_mday = 1};
    return billing_add_interval((int64_t)timegm(&tm) * MS_PER_S, INTERVAL_MONTH, 1);
}

static pm_record *pm_of(tw_arena *arena, const tw_stripe_payment_method *pm, int64_t now_ms)
{
    pm_record *r = tw_arena_alloc(arena, sizeof *r);
    if (r == NULL)
        return NULL;
    tw__store__v1__payment_method_record__init(r);
    r->id = (char *)pm->id;
    r->type = (char *)pm->type;
    r->card_brand = (char *)pm->card_brand;
    r->card_last4 = (char *)pm->card_last4;
    r->card_exp_month = pm->card_exp_month;
    r->card_exp_year = pm->card_exp_year;
    r->create_unix_ms = pm->created_ms ? pm->created_ms : now_ms;
    r->expired = pm->card_exp_year > 0 && now_ms >= expiry_ms(r);
    return r;
}

/* A reading of one payment method from Stripe, applied to the user's
 * records (through the account's sync sequence). */
typedef struct pm_sync {
    billing_sync sync;
    tw_stripe_payment_method pm;
    bool make_default_if_none; /* the first one saved becomes the default */
    bool stored;               /* out: it is the user's now */
    bool is_default;           /* out */
} pm_sync;

static tw_err read_pm(billing_sync *sync)
{
    pm_sync *w = (pm_sync *)sync;
    char id[256];
    snprintf(id, sizeof id, "%s", w->pm.id);
    tw_stripe_error e;
    tw_err err =
        tw_stripe_payment_method_get(sync->c->billing->stripe, id, sync->c->arena, &w->pm, &e);
    return err ? billing_stripe_refusal(sync->c, err, &e, "read a payment method") : TW_OK;
}

static tw_err apply_pm(billing_sync *sync, tw_txn *t, account_record *a)
{
    pm_sync *w = (pm_sync *)sync;
    tw_billing_ctx *c = sync->c;
    tw_key k;
    pm_key(&k, &c->user, w->pm.id);
    w->stored =
        a->stripe_customer_id[0] != '\0' && strcmp(w->pm.customer, a->stripe_customer_id) == 0;
    if (!w->stored) {
        if (strcmp(a->default_payment_method_id, w->pm.id) == 0)
            a->default_payment_method_id = "";
        w->is_default = false;
        return tw_txn_delete(t, &k);
    }
    pm_record *old;
    tw_err err = billing_get(NULL, t, false, &k, c->arena, &old);
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    pm_record *r = pm_of(c->arena, &w->pm, c->now_ms);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    if (err == TW_OK)
        r->create_unix_ms = old->create_unix_ms;
    if (w->make_default_if_none && a->default_payment_method_id[0] == '\0')
        a->default_payment_method_id = r->id;
    w->is_default = strcmp(a->default_payment_method_id, r->id) == 0;
    /* Its expiry job, once, when it is first stored. */
    if (err == TW_ERR_NOT_FOUND && r->card_exp_year > 0 && !r->expired &&
        (err = billing_enqueue(t, TW_BILLING_JOB_CARD_EXPIRY, &c->user, r->id, expiry_ms(r),
                               c->now_ms)))
        return err;
    return billing_put(t, &k, r);
}

static tw_err commit_pm(pm_sync *w)
{
    w->sync.read = read_pm;
    w->sync.apply = apply_pm;
    return billing_sync_run(&w->sync);
}

tw_err billing_sync_payment_method(tw_billing_ctx *c, const char *pm_id)
{
    pm_sync w = {.sync = {.c = c}, .pm = {.id = pm_id}};
    tw_err err = billing_sync_seq(c, &w.sync.seq);
    if (!err)
        err = read_pm(&w.sync);
    return err ? err : commit_pm(&w);
}

struct pms {
    tw_billing_ctx *c;
    const char *default_id;
    Tw__V1__PaymentMethod **items;
    size_t n;
};

static tw_err pm_item(void *ctx, tw_store_iter *it, bool *taken)
{
    struct pms *l = ctx;
    tw_value v;
    tw_err err = tw_store_iter_value(it, l->c->arena, &v);
    if (err)
        return err;
    const pm_record *r = (const pm_record *)v.msg;
    if ((l->items[l->n++] = present_pm(l->c->arena, r, strcmp(r->id, l->default_id) == 0)) == NULL)
        return TW_ERR_NO_MEMORY;
    *taken = true;
    return TW_OK;
}

tw_err billing_list_payment_methods(tw_billing_ctx *c, tw_billing_page *page,
                                    Tw__V1__PaymentMethod ***items, size_t *n)
{
    tw_key k;
    billing_account_key(&k, &c->user);
    account_record *a;
    tw_err err = billing_get(c->billing->store, NULL, false, &k, c->arena, &a);
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    struct pms l = {c, err ? "" : a->default_payment_method_id, NULL, 0};
    if ((l.items = tw_arena_alloc(c->arena, (TW_PAGE_SIZE_MAX + 1) * sizeof *l.items)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key prefix;
    pm_key(&prefix, &c->user, NULL);
    err = billing_page(c, &prefix, NULL, NULL, false, page, pm_item, &l);
    *items = l.items;
    *n = l.n;
    return err;
}

tw_err tw_billing_list_payment_methods(tw_billing_ctx *c, tw_billing_page *page,
                                       Tw__V1__ListPaymentMethodsResponse **out)
{
    Tw__V1__ListPaymentMethodsResponse *r = tw_arena_alloc(c->arena, sizeof *r);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__list_payment_methods_response__init(r);
    tw_err err = billing_list_payment_methods(c, page, &r->payment_methods, &r->n_payment_methods);
    *out = r;
    return err;
}

tw_err tw_billing_attach_payment_method(tw_billing_ctx *c, const char *payment_method_id,
                                        const char *request_id, Tw__V1__PaymentMethod **out)
{
    tw_err err = check_stripe_id(c, "payment_method_id", payment_method_id);
    if (!err)
        err = billing_need_stripe(c);
    account_record *a;
    if (!err)
        err = billing_ensure_customer(c, &a);
    if (err)
        return err;
    char user[TW_ID_TEXT_SIZE], key[TW_STRIPE_IDEMPOTENCY_KEY_MAX + 1];
    tw_id_format(&c->user, user);
    snprintf(key, sizeof key, "twd-attach-%s-%s-%s", user, payment_method_id, request_id);
    pm_sync w = {.sync = {.c = c, .seq = a->stripe_sync_seq}, .make_default_if_none = true};
    tw_stripe_error e;
    err = tw_stripe_payment_method_attach(c->billing->stripe, payment_method_id,
                                          a->stripe_customer_id, key, c->arena, &w.pm, &e);
    /* Stripe refuses a payment method attached to another customer (or
     * detached for good): to this caller it is one that does not exist, as
     * another user's ids are everywhere, and Stripe's text, which says it
     * belongs to someone, stays in the log. */
    if (err == TW_ERR_PAY_REFUSED && strcmp(e.code, "payment_method_unexpected_state") == 0) {
        billing_stripe_refusal(c, err, &e, "attach a payment method");
        return billing_refuse(c, TW_ERR_NOT_FOUND, "payment method %s not found",
                              payment_method_id);
    }
    if (err)
        return billing_stripe_refusal(c, err, &e, "attach a payment method");
    if ((err = commit_pm(&w)))
        return err;
    if (!w.stored)
        return billing_refuse(c, TW_ERR_PAY_REFUSED, "Stripe did not attach payment method %s",
                              payment_method_id);
    if (w.is_default && (err = tw_billing_set_default_payment_method(c, w.pm.id, out)))
        return err;
    pm_record *r = pm_of(c->arena, &w.pm, c->now_ms);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    return (*out = present_pm(c->arena, r, w.is_default)) ? TW_OK : TW_ERR_NO_MEMORY;
}

/* The user's payment method id and their account, as committed. */
static tw_err load_pm(tw_billing_ctx *c, const char *id, pm_record **r, account_record **a)
{
    tw_err err = check_stripe_id(c, "payment_method_id", id);
    if (err)
        return err;
    tw_key k;
    pm_key(&k, &c->user, id);
    if ((err = billing_get(c->billing->store, NULL, false, &k, c->arena, r)) == TW_ERR_NOT_FOUND)
        return billing_refuse(c, err, "payment method %s not found", id);
    billing_account_key(&k, &c->user);
    return err ? err : billing_get(c->billing->store, NULL, false, &k, c->arena, a);
}

tw_err tw_billing_detach_payment_method(tw_billing_ctx *c, const char *payment_method_id)
{
    pm_record *r;
    account_record *a;
    tw_err err = billing_need_stripe(c);
    if (!err)
        err = load_pm(c, payment_method_id, &r, &a);
    if (err)
        return err;
    const sub_record *s = a->subscription;
    if (strcmp(a->default_payment_method_id, r->id) == 0 && s != NULL &&
        (s->status == TW_SUB_ACTIVE || s->status == TW_SUB_TRIALING ||
         s->status == TW_SUB_PAST_DUE) &&
        s->provider == PROVIDER_STRIPE)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                              "it pays the live subscription: set another default first");
    pm_sync w = {.sync = {.c = c, .seq = a->stripe_sync_seq}, .pm = {.id = r->id}};
    tw_stripe_error e;
    err = tw_stripe_payment_method_detach(c->billing->stripe, r->id, NULL, c->arena, &w.pm, &e);
    if (err == TW_ERR_PAY_REFUSED && strcmp(e.code, "payment_method_unexpected_state") == 0)
        err = read_pm(&w.sync); /* detached already: store what Stripe has */
    else if (err)
        return billing_stripe_refusal(c, err, &e, "detach a payment method");
    return err ? err : commit_pm(&w);
}

struct set_default {
    tw_billing_ctx *c;
    const char *id;
};

static tw_err set_default_fn(tw_txn *t, void *ctx)
{
    struct set_default *w = ctx;
    tw_key k;
    billing_account_key(&k, &w->c->user);
    account_record *a;
    tw_err err = billing_get(NULL, t, true, &k, w->c->arena, &a);
    if (err)
        return err;
    a->default_payment_method_id = (char *)w->id;
    return billing_put(t, &k, a);
}

tw_err tw_billing_set_default_payment_method(tw_billing_ctx *c, const char *payment_method_id,
                                             Tw__V1__PaymentMethod **out)
{
    pm_record *r;
    account_record *a;
    tw_err err = billing_need_stripe(c);
    if (!err)
        err = load_pm(c, payment_method_id, &r, &a);
    if (err)
        return err;
    tw_stripe_customer cus;
    tw_stripe_error e;
    err = tw_stripe_customer_set_default_payment_method(c->billing->stripe, a->stripe_customer_id,
                                                        r->id, NULL, c->arena, &cus, &e);
    if (err)
        return billing_stripe_refusal(c, err, &e, "set the default payment method");
    struct set_default w = {c, r->id};
    if ((err = tw_txn_run(c->billing->store, set_default_fn, &w)))
        return err;
    return (*out = present_pm(c->arena, r, true)) ? TW_OK : TW_ERR_NO_MEMORY;
}

/* ---- The expiry job --------------------------------------------------------------------- */

struct expire {
    const tw_id *user;
    const char *id;
    int64_t now_ms;
    tw_arena *arena;
};

static tw_err expire_fn(tw_txn *t, void *ctx)
{
    struct expire *w = ctx;
    tw_key k;
    pm_key(&k, w->user, w->id);
    pm_record *r;
    tw_err err = billing_get(NULL, t, true, &k, w->arena, &r);
    if (err == TW_ERR_NOT_FOUND || (err == TW_OK && (r->expired || w->now_ms < expiry_ms(r))))
        return TW_OK; /* removed, marked, or a date moved by an update */
    if (err)
        return err;
    r->expired = true;
    return billing_put(t, &k, r);
}

tw_err billing_card_expiry_job(tw_billing *b, const tw_id *user, const char *pm_id, int64_t now_ms,
                               tw_arena *arena)
{
    struct expire w = {user, pm_id, now_ms, arena};
    return tw_txn_run(b->store, expire_fn, &w);
}
