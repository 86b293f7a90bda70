/*
 * Subscriptions. Each user's billing state is one BillingAccountRecord
 * under BILLING_ACCOUNT(user): their Stripe customer, their subscription
 * (one at a time, so a user never holds two live ones), a subscription
 * creation in flight, and what the live gauges count of them. Every write
 * of it goes through save_account, which in the same transaction moves
 * the gauges and day counters by exactly the change (billing_live,
 * billing_live_total, billing_mrr_minor; billing_new_subscriptions,
 * billing_cancellations), keeps BILLING_SUB_BY_PLAN and rewrites the
 * entitlement record. A creation's end is counted once, as its pending
 * record is cleared: billing_subscription_creations "result=succeeded"
 * (Stripe made it) or "result=failed" (Stripe refused it for good, or a
 * creation that died with its process made nothing); one that only timed
 * out stays pending and is counted when a retry ends it.
 *
 * Stripe's state reaches the record only through billing_sync_run, guarded
 * by the account's stripe_sync_seq: a caller reads the sequence, then asks
 * Stripe (a call that changes the subscription, or a plain read), then
 * commits Stripe's answer only if the sequence has not moved meanwhile;
 * if it has, it reads from Stripe again. So the last reading applied was
 * always taken after the one before it was committed, and the record ends
 * as Stripe's newest state whatever order webhook events, retries and
 * users' calls arrive in.
 *
 * CreateSubscription records its Stripe idempotency key (and the
 * customer's) in the account before calling Stripe: a retry after a
 * timeout or a crash sends the same key, and Stripe answers the
 * subscription it made the first time instead of making another.
 */
#include "billing_internal.h"
#include "wellness/wellness.h"

#include "tw_counter.h"
#include "tw_log.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

/* A creation in flight younger than this is another call still running;
 * older, it died with its process, and Stripe is asked what it made. */
#define PENDING_FRESH_MS (2 * MS_PER_MIN)
/* Readings from Stripe before giving up on a busy account. */
#define SYNC_TRIES 4

static const struct {
    const char *stripe;
    int status;
} stripe_statuses[] = {
    {"trialing", TW_SUB_TRIALING},     {"active", TW_SUB_ACTIVE},
    {"past_due", TW_SUB_PAST_DUE},     {"unpaid", TW_SUB_PAST_DUE},
    {"canceled", TW_SUB_CANCELED},     {"incomplete_expired", TW_SUB_CANCELED},
    {"incomplete", TW_SUB_INCOMPLETE}, {"paused", TW_SUB_INCOMPLETE},
};

static const char *const status_names[] = {
    [TW_SUB_TRIALING] = "trialing",   [TW_SUB_ACTIVE] = "active",
    [TW_SUB_PAST_DUE] = "past_due",   [TW_SUB_CANCELED] = "canceled",
    [TW_SUB_SUSPENDED] = "suspended", [TW_SUB_INCOMPLETE] = "incomplete",
};

static int status_from_stripe(const char *s)
{
    for (size_t i = 0; i < sizeof stripe_statuses / sizeof *stripe_statuses; i++)
        if (strcmp(stripe_statuses[i].stripe, s) == 0)
            return stripe_statuses[i].status;
    return TW_SUB_INCOMPLETE;
}

/* The plan's features are on. */
static bool status_live(int status)
{
    return status == TW_SUB_TRIALING || status == TW_SUB_ACTIVE || status == TW_SUB_PAST_DUE;
}

/* The subscription is the user's: live, or suspended by an operator. */
static bool held(const sub_record *s)
{
    return s != NULL && (status_live(s->status) || s->status == TW_SUB_SUSPENDED);
}

/* ---- The account record ------------------------------------------------------------ */

/* The account in t (for update) or as committed (t NULL); an empty one
 * in arena when the user has none yet. */
static tw_err load_account(tw_store *s, tw_txn *t, const tw_id *user, tw_arena *arena,
                           account_record **out)
{
    tw_key k;
    billing_account_key(&k, user);
    tw_err err = billing_get(s, t, true, &k, arena, out);
    if (err != TW_ERR_NOT_FOUND)
        return err;
    if ((*out = tw_arena_alloc(arena, sizeof **out)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw__store__v1__billing_account_record__init(*out);
    return TW_OK;
}

/* What a live subscription brings in a month, in its currency's minor
 * unit; trials bring nothing yet. */
static int64_t monthly_minor(const sub_record *s, int interval)
{
    if (s->status == TW_SUB_TRIALING || s->price == NULL)
        return 0;
    return interval == INTERVAL_YEAR ? s->price->amount_minor / 12 : s->price->amount_minor;
}

/* Moves the gauges and counters from what the account last counted to
 * what it holds now, and the plan index with them. */
static tw_err count_live(tw_billing *b, tw_txn *t, const tw_id *user, account_record *a,
                         int64_t now_ms, tw_arena *arena)
{
    const sub_record *s = a->subscription;
    bool live = s != NULL && status_live(s->status);
    int64_t mrr = 0;
    if (live) {
        plan_record *plan;
        tw_err err = billing_plan_load(b, t, s->plan_id, arena, &plan);
        mrr = monthly_minor(s, err == TW_OK ? (int)plan->interval : INTERVAL_MONTH);
    }
    const char *plan_id = live ? s->plan_id : "";
    int status = live ? (int)s->status : 0;
    const char *currency = live && s->price ? s->price->currency : "";
    if (live == a->counted_live && strcmp(plan_id, a->counted_plan_id) == 0 &&
        status == (int)a->counted_status && mrr == a->counted_mrr_minor &&
        strcmp(currency, a->counted_currency) == 0)
        return TW_OK;

    tw_err err = TW_OK;
    tw_key k;
    char dims[160];
    if (a->counted_live) {
        snprintf(dims, sizeof dims, "plan=%s,status=%s", a->counted_plan_id,
                 status_names[a->counted_status]);
        err = billing_gauge(t, "billing_live", dims, -1);
        if (!err)
            err = billing_gauge(t, "billing_live_total", "", -1);
        snprintf(dims, sizeof dims, "plan=%s,currency=%s", a->counted_plan_id, a->counted_currency);
        if (!err)
            err = billing_gauge(t, "billing_mrr_minor", dims, -a->counted_mrr_minor);
        tw_key_init(&k, TW_KF_BILLING_SUB_BY_PLAN);
        tw_key_str(&k, a->counted_plan_id);
        tw_key_id(&k, user);
        if (!err)
            err = tw_txn_delete(t, &k);
        snprintf(dims, sizeof dims, "plan=%s", a->counted_plan_id);
        if (!err && !live)
            err = billing_count(t, "billing_cancellations", dims, now_ms, 1);
    }
    if (live && !err) {
        snprintf(dims, sizeof dims, "plan=%s,status=%s", plan_id, status_names[status]);
        err = billing_gauge(t, "billing_live", dims, 1);
        if (!err)
            err = billing_gauge(t, "billing_live_total", "", 1);
        snprintf(dims, sizeof dims, "plan=%s,currency=%s", plan_id, currency);
        if (!err)
            err = billing_gauge(t, "billing_mrr_minor", dims, mrr);
        tw_key_init(&k, TW_KF_BILLING_SUB_BY_PLAN);
        tw_key_str(&k, plan_id);
        tw_key_id(&k, user);
        if (!err)
            err = tw_txn_put(t, &k, NULL);
        snprintf(dims, sizeof dims, "plan=%s", plan_id);
        if (!err && !a->counted_live)
            err = billing_count(t, "billing_new_subscriptions", dims, now_ms, 1);
    }
    a->counted_live = live;
    a->counted_plan_id = (char *)plan_id;
    a->counted_status = status;
    a->counted_mrr_minor = mrr;
    a->counted_currency = (char *)currency;
    return err;
}

/* Writes the account with its counters and the user's entitlement. */
static tw_err save_account(tw_billing *b, tw_txn *t, const tw_id *user, account_record *a,
                           int64_t now_ms, tw_arena *arena)
{
    if (a->subscription != NULL)
        a->subscription->update_unix_ms = now_ms;
    tw_err err = count_live(b, t, user, a, now_ms, arena);
    tw_key k;
    billing_account_key(&k, user);
    if (!err)
        err = billing_put(t, &k, a);
    return err ? err : billing_entitlement_refresh(t, user, now_ms, arena);
}

tw_err billing_entitlement_refresh(tw_txn *t, const tw_id *user, int64_t now_ms, tw_arena *arena)
{
    account_record *a;
    tw_key k;
    billing_account_key(&k, user);
    tw_err err = billing_get(NULL, t, false, &k, arena, &a);
    if (err == TW_ERR_NOT_FOUND)
        a = NULL;
    else if (err)
        return err;
    entitlement_record e = TW__STORE__V1__ENTITLEMENT_RECORD__INIT;
    e.plan_id = TW_FREE_PLAN;
    e.interval = INTERVAL_MONTH;
    const sub_record *s = a ? a->subscription : NULL;
    if (s != NULL && status_live(s->status)) {
        e.plan_id = s->plan_id;
        e.period_start_unix_ms = s->period_start_unix_ms;
        e.period_end_unix_ms = s->period_end_unix_ms;
        /* Granted plans end at their period's end; so do canceled ones. */
        if (s->cancel_at_period_end || s->provider == PROVIDER_LOCAL)
            e.valid_until_unix_ms = s->period_end_unix_ms;
        tw_key pk;
        billing_plan_key(&pk, s->plan_id);
        plan_record *plan;
        if (billing_get(NULL, t, false, &pk, arena, &plan) == TW_OK)
            e.interval = plan->interval;
    }
    if ((err = billing_student_until(t, user, now_ms, arena, &e.student_until_unix_ms)))
        return err;
    billing_entitlement_key(&k, user);
    return billing_put(t, &k, &e);
}

tw_err billing_customer_user(tw_billing *b, const char *customer, tw_id *user)
{
    if (customer == NULL || customer[0] == '\0')
        return TW_ERR_NOT_FOUND;
    tw_key k;
    billing_customer_key(&k, customer);
    tw_value v;
    tw_err err = tw_store_get(b->store, &k, NULL, &v);
    if (err == TW_OK)
        *user = v.id;
    return err;
}

/* ---- What users see ------------------------------------------------------------------------ */

/* The subscription as the API shows it; none, or an ended one when
 * ended_as_free, is the implicit free plan. */
static Tw__V1__Subscription *present(tw_arena *arena, const sub_record *s, int64_t now_ms,
                                     bool ended_as_free)
{
    Tw__V1__Subscription *out = tw_arena_alloc(arena, sizeof *out);
    if (out == NULL)
        return NULL;
    tw__v1__subscription__init(out);
    if (s == NULL || (ended_as_free && s->status == TW_SUB_CANCELED)) {
        /* The implicit free plan, for the calendar month. */
        static price_record zero = {
            .base = PROTOBUF_C_MESSAGE_INIT(&tw__store__v1__price_record__descriptor),
            .currency = "USD",
            .audience = AUDIENCE_STANDARD,
            .stripe_price_id = "",
        };
        int64_t start = billing_month_start(now_ms);
        out->plan_id = TW_FREE_PLAN;
        out->status = TW_SUB_ACTIVE;
        out->price = billing_present_price(arena, &zero);
        out->current_period_start_time = tw_timestamp_new(arena, start);
        out->current_period_end_time =
            tw_timestamp_new(arena, billing_add_interval(start, INTERVAL_MONTH, 1));
        out->provider = PROVIDER_LOCAL;
        return out->price && out->current_period_end_time ? out : NULL;
    }
    tw_id id;
    out->id = billing_bytes_id(s->id, &id) ? billing_id_text(arena, &id) : "";
    out->plan_id = s->plan_id;
    out->status = s->status;
    if (s->price != NULL)
        out->price = billing_present_price(arena, s->price);
    if (s->renewal_price != NULL)
        out->renewal_price = billing_present_price(arena, s->renewal_price);
    out->current_period_start_time = tw_timestamp_new(arena, s->period_start_unix_ms);
    out->current_period_end_time = tw_timestamp_new(arena, s->period_end_unix_ms);
    out->cancel_at_period_end = s->cancel_at_period_end;
    if (s->cancel_unix_ms > 0)
        out->cancel_time = tw_timestamp_new(arena, s->cancel_unix_ms);
    out->provider = s->provider;
    out->stripe_subscription_id = s->stripe_subscription_id;
    out->suspend_reason = s->suspend_reason;
    out->create_time = tw_timestamp_new(arena, s->create_unix_ms);
    out->update_time = tw_timestamp_new(arena, s->update_unix_ms);
    return out->id && out->update_time ? out : NULL;
}

/* What GetSubscription answers: an ended subscription is the free plan. */
static tw_err answer(tw_billing_ctx *c, const sub_record *s, Tw__V1__Subscription **out)
{
    return (*out = present(c->arena, s, c->now_ms, true)) ? TW_OK : TW_ERR_NO_MEMORY;
}

/* What a change answers: the subscription as it is, ended or not. */
static tw_err answer_as_is(tw_billing_ctx *c, const sub_record *s, Tw__V1__Subscription **out)
{
    return (*out = present(c->arena, s, c->now_ms, false)) ? TW_OK : TW_ERR_NO_MEMORY;
}

/* The user's account as committed. */
static tw_err committed(tw_billing_ctx *c, account_record **a)
{
    return load_account(c->billing->store, NULL, &c->user, c->arena, a);
}

tw_err tw_billing_get_subscription(tw_billing_ctx *c, Tw__V1__Subscription **out)
{
    account_record *a;
    tw_err err = committed(c, &a);
    return err ? err : answer(c, a->subscription, out);
}

/* ---- Stripe's state into the record ----------------------------------------------------- */

static sub_record *new_sub(tw_arena *arena, int64_t created_ms)
{
    sub_record *s = tw_arena_alloc(arena, sizeof *s);
    tw_id *id = tw_arena_alloc(arena, sizeof *id);
    if (s == NULL || id == NULL)
        return NULL;
    tw__store__v1__subscription_record__init(s);
    *id = tw_id_new();
    s->id = billing_id_bytes(id);
    s->create_unix_ms = created_ms;
    return s;
}

static price_record *price_of(tw_arena *arena, const tw_stripe_subscription *s, int audience)
{
    price_record *p = tw_arena_alloc(arena, sizeof *p);
    if (p == NULL)
        return NULL;
    tw__store__v1__price_record__init(p);
    p->currency = (char *)s->currency;
    p->amount_minor = s->amount_minor;
    p->audience = audience;
    p->stripe_price_id = (char *)s->price_id;
    return p;
}

/* The plan a Stripe subscription is for: the plan_id we put in its
 * metadata, else the plan holding its price. */
static tw_err plan_of(tw_billing *b, const tw_stripe_subscription *s, tw_arena *arena,
                      plan_record **plan)
{
    tw_err err = TW_ERR_NOT_FOUND;
    if (s->plan_id[0] != '\0')
        err = billing_plan_load(b, NULL, s->plan_id, arena, plan);
    if (err == TW_ERR_NOT_FOUND)
        err = billing_plan_by_stripe_price(b, s->price_id, arena, plan);
    if (err == TW_OK && *plan == NULL)
        err = TW_ERR_NOT_FOUND;
    return err;
}

/* ---- Applying Stripe's readings, newest last ------------------------------------------ */

static tw_err sync_fn(tw_txn *t, void *ctx)
{
    billing_sync *w = ctx;
    tw_billing_ctx *c = w->c;
    w->moved = false;
    account_record *a;
    tw_err err = load_account(c->billing->store, t, &c->user, c->arena, &a);
    if (err)
        return err;
    if (a->stripe_sync_seq != w->seq) {
        w->moved = true;
        return TW_OK;
    }
    if ((err = w->apply(w, t, a)))
        return err;
    a->stripe_sync_seq++;
    return save_account(c->billing, t, &c->user, a, c->now_ms, c->arena);
}

tw_err billing_sync_run(billing_sync *w)
{
    tw_billing_ctx *c = w->c;
    for (int tries = 0; tries < SYNC_TRIES; tries++) {
        tw_err err = tw_txn_run(c->billing->store, sync_fn, w);
        if (err || !w->moved)
            return err;
        account_record *a;
        if ((err = committed(c, &a)))
            return err;
        w->seq = a->stripe_sync_seq;
        if ((err = w->read(w)))
            return err;
    }
    return billing_refuse(c, TW_ERR_CONFLICT, "the account kept changing: try again");
}

tw_err billing_sync_seq(tw_billing_ctx *c, uint64_t *seq)
{
    account_record *a;
    tw_err err = committed(c, &a);
    *seq = err ? 0 : a->stripe_sync_seq;
    return err;
}

/* A reading of one Stripe subscription and what to record with it. */
typedef struct sub_sync {
    billing_sync sync;             /* first: the sync's callbacks get it */
    tw_stripe_subscription s;      /* the reading */
    const plan_record *plan;       /* the plan s is for */
    bool clear_suspension;         /* an operator's re-sync */
    const char *request_id;        /* a CreateSubscription's, recorded on the subscription */
    const char *change_request_id; /* a ChangePlan's */
    const char *pending_key;       /* the pending creation this answers, cleared */
    bool duplicate;                /* out: s is a second live subscription, not stored */
} sub_sync;

/* Stripe's subscription again, and the plan it is for. */
static tw_err read_sub(billing_sync *sync)
{
    sub_sync *w = (sub_sync *)sync;
    tw_billing_ctx *c = sync->c;
    tw_stripe_error e;
    char id[256];
    snprintf(id, sizeof id, "%s", w->s.id);
    tw_err err = tw_stripe_subscription_get(c->billing->stripe, id, c->arena, &w->s, &e);
    return err ? billing_stripe_refusal(c, err, &e, "read a subscription") : TW_OK;
}

/* Applies Stripe's state to the account's subscription, in place. */
static tw_err apply_sub(billing_sync *sync, tw_txn *t, account_record *a)
{
    sub_sync *w = (sub_sync *)sync;
    tw_billing_ctx *c = sync->c;
    const tw_stripe_subscription *s = &w->s;
    plan_record *plan;
    tw_err err = plan_of(c->billing, s, c->arena, &plan);
    if (err == TW_ERR_NOT_FOUND)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                              "no plan has Stripe price %s (subscription %s)", s->price_id, s->id);
    if (err)
        return err;
    if (w->pending_key != NULL && a->pending != NULL &&
        strcmp(a->pending->idempotency_key, w->pending_key) == 0) {
        a->pending = NULL;
        if ((err = billing_count(t, "billing_subscription_creations", "result=succeeded", c->now_ms,
                                 1)))
            return err;
    }
    w->duplicate = false;
    sub_record *cur = a->subscription;
    int status = status_from_stripe(s->status);
    bool same = cur != NULL && strcmp(cur->stripe_subscription_id, s->id) == 0;
    if (!same && held(cur)) {
        /* Another of the user's Stripe subscriptions: a second live one is
         * refused (the caller cancels it at Stripe), an ended one is old
         * news. A live one replaces an operator's grant: the user pays. */
        if (cur->provider == PROVIDER_STRIPE) {
            w->duplicate = status_live(status);
            return TW_OK;
        }
        if (!status_live(status))
            return TW_OK;
    } else if (!same && cur != NULL && s->created_ms < cur->create_unix_ms) {
        return TW_OK; /* older than the ended one we have */
    }
    bool plan_changed = !same || strcmp(cur->plan_id, plan->id) != 0;
    if (!same && (cur = new_sub(c->arena, s->created_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    /* The audience of the price paid: as the plan lists Stripe's price. */
    int audience = AUDIENCE_STANDARD;
    for (size_t i = 0; i < plan->n_prices; i++)
        if (strcmp(plan->prices[i]->stripe_price_id, s->price_id) == 0)
            audience = plan->prices[i]->audience;
    price_record *stripe_price = price_of(c->arena, s, audience);
    if (stripe_price == NULL)
        return TW_ERR_NO_MEMORY;
    bool renewed = s->period_start_ms > cur->period_start_unix_ms;
    if (plan_changed || renewed || cur->price == NULL) {
        cur->price = stripe_price;
        cur->renewal_price = NULL;
    } else if (strcmp(cur->price->stripe_price_id, s->price_id) != 0) {
        /* The plan's new price, taken from the next renewal on. */
        cur->renewal_price = stripe_price;
    } else {
        cur->renewal_price = NULL;
    }
    cur->plan_id = plan->id;
    cur->period_start_unix_ms = s->period_start_ms;
    cur->period_end_unix_ms = s->period_end_ms;
    cur->cancel_at_period_end = s->cancel_at_period_end;
    cur->cancel_unix_ms = s->canceled_at_ms;
    cur->provider = PROVIDER_STRIPE;
    cur->stripe_subscription_id = (char *)s->id;
    cur->stripe_item_id = (char *)s->item_id;
    cur->stripe_status = (char *)s->status;
    if (cur->suspend_reason == NULL)
        cur->suspend_reason = "";
    if (w->clear_suspension) {
        cur->suspended = false;
        cur->suspend_reason = "";
    }
    cur->status = cur->suspended && status_live(status) ? TW_SUB_SUSPENDED : status;
    if (w->request_id != NULL)
        cur->request_id = (char *)w->request_id;
    if (w->change_request_id != NULL)
        cur->change_request_id = (char *)w->change_request_id;
    a->subscription = cur;
    return TW_OK;
}

/* Cancels a second live subscription Stripe made for the user (from
 * Stripe's dashboard, say): a user holds one at a time. */
static void cancel_duplicate(tw_billing_ctx *c, const char *id)
{
    tw_stripe_subscription gone;
    tw_stripe_error e;
    tw_err err = tw_stripe_subscription_cancel(c->billing->stripe, id, c->arena, &gone, &e);
    char user[TW_ID_TEXT_SIZE];
    tw_id_format(&c->user, user);
    tw_log(TW_LOG_WARN, "second live Stripe subscription of a user canceled",
           json_pack("{s:s, s:s, s:s}", "user_id", user, "stripe_subscription_id", id, "result",
                     err ? e.upstream.reason : "canceled"));
}

/* Commits w->s, read after w->sync.seq was seen (the answer to a change,
 * or a plain reading). */
static tw_err commit_sub(sub_sync *w)
{
    w->sync.read = read_sub;
    w->sync.apply = apply_sub;
    tw_err err = billing_sync_run(&w->sync);
    if (err == TW_OK && w->duplicate)
        cancel_duplicate(w->sync.c, w->s.id);
    return err;
}

/* A sub_sync of c for the reading s, read after seq. */
#define SUB_SYNC(c_, seq_, s_) ((sub_sync){.sync = {.c = (c_), .seq = (seq_)}, .s = (s_)})

tw_err billing_sync_subscription(tw_billing_ctx *c, const char *stripe_id, bool clear_suspension)
{
    sub_sync w = SUB_SYNC(c, 0, (tw_stripe_subscription){.id = stripe_id});
    w.clear_suspension = clear_suspension;
    tw_err err = billing_sync_seq(c, &w.sync.seq);
    if (!err)
        err = read_sub(&w.sync);
    return err ? err : commit_sub(&w);
}

/* ---- Creating a subscription ------------------------------------------------------------------
 */

struct begin {
    tw_billing_ctx *c;
    const plan_record *plan;
    const price_record *price;
    const char *payment_method;
    const char *request_id;
    const uint8_t *hash; /* c->request_sha256: NULL without a request_id */
    enum { GO, REPLAY, RECONCILE } next;
    account_record *a;
};

/* Whether p was recorded by this very request (its request_id, and the
 * kit's hash of what it asked); a request without a request_id is never
 * a retry. */
static bool same_id(const Tw__Store__V1__PendingStripeCall *p, const struct begin *w)
{
    return w->hash != NULL && strcmp(p->request_id, w->request_id) == 0;
}

static bool same_request(const Tw__Store__V1__PendingStripeCall *p, const struct begin *w)
{
    return same_id(p, w) && p->request_hash.len == SHA256_DIGEST_LENGTH &&
           memcmp(p->request_hash.data, w->hash, SHA256_DIGEST_LENGTH) == 0;
}

/* Records the creation (its idempotency keys) before Stripe is called, or
 * finds it already done or in the way. */
static tw_err begin_fn(tw_txn *t, void *ctx)
{
    struct begin *w = ctx;
    tw_billing_ctx *c = w->c;
    account_record *a;
    tw_err err = load_account(c->billing->store, t, &c->user, c->arena, &a);
    if (err)
        return err;
    w->a = a;
    const sub_record *s = a->subscription;
    if (held(s)) {
        if (w->request_id[0] != '\0' && strcmp(s->request_id, w->request_id) == 0) {
            w->next = REPLAY;
            return TW_OK;
        }
        return billing_refuse(c, TW_ERR_ALREADY_EXISTS,
                              "already subscribed to plan %s: use ChangePlan", s->plan_id);
    }
    Tw__Store__V1__PendingStripeCall *p = a->pending;
    if (p != NULL && same_request(p, w)) {
        w->next = GO; /* a retry: the same keys again */
        return TW_OK;
    }
    if (p != NULL && same_id(p, w)) /* as the kit answers a reused request_id */
        return billing_bad(c, "request_id", "was already used for a different request");
    if (p != NULL && c->now_ms - p->start_unix_ms < PENDING_FRESH_MS)
        return billing_refuse(c, TW_ERR_CONFLICT,
                              "another subscription request is in progress: retry in a minute");
    if (p != NULL) {
        w->next = RECONCILE;
        return TW_OK;
    }
    if ((p = tw_arena_alloc(c->arena, sizeof *p)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw__store__v1__pending_stripe_call__init(p);
    tw_id key_id = tw_id_new();
    char user[TW_ID_TEXT_SIZE], key[TW_ID_TEXT_SIZE];
    tw_id_format(&c->user, user);
    tw_id_format(&key_id, key);
    p->kind = "create_subscription";
    p->request_id = (char *)w->request_id;
    p->request_hash = w->hash ? (ProtobufCBinaryData){SHA256_DIGEST_LENGTH, (uint8_t *)w->hash}
                              : (ProtobufCBinaryData){0, NULL};
    p->idempotency_key = tw_arena_printf(c->arena, "twd-sub-%s-%s", user, key);
    p->start_unix_ms = c->now_ms;
    p->plan_id = w->plan->id;
    p->price = (price_record *)w->price;
    p->payment_method_id = (char *)w->payment_method;
    p->plan_price_version = w->plan->price_version;
    a->pending = p;
    if (a->customer_idempotency_key[0] == '\0')
        a->customer_idempotency_key = tw_arena_printf(c->arena, "twd-cus-%s", user);
    if (p->idempotency_key == NULL || a->customer_idempotency_key == NULL)
        return TW_ERR_NO_MEMORY;
    w->next = GO;
    return save_account(c->billing, t, &c->user, a, c->now_ms, c->arena);
}

/* Drops the pending creation keyed key (it failed for good: a new request
 * must use a new key). */
static tw_err end_pending_fn(tw_txn *t, void *ctx)
{
    struct begin *w = ctx;
    account_record *a;
    tw_err err = load_account(w->c->billing->store, t, &w->c->user, w->c->arena, &a);
    if (err || a->pending == NULL ||
        strcmp(a->pending->idempotency_key, w->a->pending->idempotency_key) != 0)
        return err;
    a->pending = NULL;
    if ((err =
             billing_count(t, "billing_subscription_creations", "result=failed", w->c->now_ms, 1)))
        return err;
    return save_account(w->c->billing, t, &w->c->user, a, w->c->now_ms, w->c->arena);
}

/* A creation that died with its process left the account pending: adopt
 * what Stripe made for the customer, or clear the way. */
static tw_err reconcile(struct begin *w)
{
    tw_billing_ctx *c = w->c;
    account_record *a = w->a;
    if (a->stripe_customer_id[0] != '\0') {
        tw_stripe_subscription *subs;
        size_t n;
        tw_stripe_error e;
        tw_err err = tw_stripe_subscription_list(c->billing->stripe, a->stripe_customer_id,
                                                 c->arena, &subs, &n, &e);
        if (err)
            return billing_stripe_refusal(c, err, &e, "list subscriptions");
        for (size_t i = 0; i < n; i++) {
            if (!status_live(status_from_stripe(subs[i].status)))
                continue;
            sub_sync sc = SUB_SYNC(c, a->stripe_sync_seq, subs[i]);
            sc.request_id = a->pending->request_id;
            sc.pending_key = a->pending->idempotency_key;
            return commit_sub(&sc);
        }
    }
    return tw_txn_run(c->billing->store, end_pending_fn, w);
}

struct customer {
    tw_billing_ctx *c;
    const char *id;
    account_record *a;
};

static tw_err record_customer_fn(tw_txn *t, void *ctx)
{
    struct customer *w = ctx;
    tw_billing_ctx *c = w->c;
    tw_err err = load_account(c->billing->store, t, &c->user, c->arena, &w->a);
    if (err || w->a->stripe_customer_id[0] != '\0')
        return err;
    w->a->stripe_customer_id = (char *)w->id;
    tw_key k;
    billing_customer_key(&k, w->id);
    tw_value v = {.id = c->user};
    if ((err = tw_txn_put(t, &k, &v)))
        return err;
    return save_account(c->billing, t, &c->user, w->a, c->now_ms, c->arena);
}

struct customer_key {
    tw_billing_ctx *c;
    account_record *a;
};

static tw_err customer_key_fn(tw_txn *t, void *ctx)
{
    struct customer_key *w = ctx;
    tw_err err = load_account(w->c->billing->store, t, &w->c->user, w->c->arena, &w->a);
    if (err || w->a->customer_idempotency_key[0] != '\0')
        return err;
    char user[TW_ID_TEXT_SIZE];
    tw_id_format(&w->c->user, user);
    if ((w->a->customer_idempotency_key = tw_arena_printf(w->c->arena, "twd-cus-%s", user)) == NULL)
        return TW_ERR_NO_MEMORY;
    return save_account(w->c->billing, t, &w->c->user, w->a, w->c->now_ms, w->c->arena);
}

/* The user's Stripe customer, made once: its key is in the account before
 * Stripe is asked, so a retry after a crash finds the same customer. *a
 * gets the account with the customer. */
tw_err billing_ensure_customer(tw_billing_ctx *c, account_record **a)
{
    tw_err err = committed(c, a);
    if (err || (*a)->stripe_customer_id[0] != '\0')
        return err;
    if ((*a)->customer_idempotency_key[0] == '\0') {
        struct customer_key k = {c, NULL};
        if ((err = tw_txn_run(c->billing->store, customer_key_fn, &k)))
            return err;
        *a = k.a;
    }
    char user[TW_ID_TEXT_SIZE];
    tw_id_format(&c->user, user);
    tw_stripe_customer cus;
    tw_stripe_error e;
    err = tw_stripe_customer_create(c->billing->stripe, NULL, NULL, user,
                                    (*a)->customer_idempotency_key, c->arena, &cus, &e);
    if (err)
        return billing_stripe_refusal(c, err, &e, "create a customer");
    struct customer w = {c, cus.id, NULL};
    if ((err = tw_txn_run(c->billing->store, record_customer_fn, &w)))
        return err;
    *a = w.a;
    return TW_OK;
}

/* The price the user pays for plan in currency: the student price when
 * they may and the plan has one. */
static tw_err choose_price(tw_billing_ctx *c, const plan_record *plan, const char *currency,
                           const price_record **out)
{
    tw_billing_entitlement ent;
    tw_err err = tw_billing_entitlement_get(c->billing, &c->user, c->now_ms, c->arena, &ent);
    if (err)
        return err;
    *out = ent.student ? billing_plan_price(plan, currency, AUDIENCE_STUDENT) : NULL;
    if (*out == NULL)
        *out = billing_plan_price(plan, currency, AUDIENCE_STANDARD);
    if (*out == NULL)
        return billing_bad(c, "currency", "plan %s has no price in %s", plan->id, currency);
    if ((*out)->stripe_price_id[0] == '\0')
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                              "plan %s has no Stripe price: it was made without Stripe", plan->id);
    return TW_OK;
}

/* An active paid plan. */
static tw_err paid_plan(tw_billing_ctx *c, const char *plan_id, plan_record **plan)
{
    if (plan_id[0] == '\0')
        return billing_bad(c, "plan_id", "is required");
    if (strcmp(plan_id, TW_FREE_PLAN) == 0)
        return billing_bad(c, "plan_id", "is the free plan, which needs no subscription");
    tw_err err = billing_plan_load(c->billing, NULL, plan_id, c->arena, plan);
    if (err == TW_ERR_NOT_FOUND)
        return billing_refuse(c, err, "plan %s not found", plan_id);
    if (err == TW_OK && !(*plan)->active)
        return billing_refuse(c, TW_ERR_PLAN_INACTIVE, "plan %s is not offered any more", plan_id);
    return err;
}

tw_err tw_billing_create_subscription(tw_billing_ctx *c, const char *plan_id,
                                      const char *payment_method_id, const char *currency,
                                      const char *request_id, Tw__V1__Subscription **out)
{
    plan_record *plan;
    const price_record *price;
    tw_err err = paid_plan(c, plan_id, &plan);
    if (!err)
        err = billing_need_stripe(c);
    if (!err)
        err = choose_price(c, plan, currency, &price);
    if (err)
        return err;
    struct begin w = {
        .c = c, .plan = plan, .price = price, .request_id = request_id, .hash = c->request_sha256};

    /* The payment method: the one given (saved first), or the default. */
    account_record *a;
    if ((err = committed(c, &a)))
        return err;
    if (held(a->subscription)) {
        /* begin_fn answers: a retry, or ALREADY_EXISTS. */
    } else if (payment_method_id[0] != '\0') {
        Tw__V1__PaymentMethod *pm;
        if ((err = tw_billing_attach_payment_method(c, payment_method_id, request_id, &pm)))
            return err;
        w.payment_method = pm->id;
    } else if (a->default_payment_method_id[0] != '\0') {
        w.payment_method = a->default_payment_method_id;
    } else {
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                              "no payment method: attach one, or give payment_method_id");
    }

    for (int tries = 0;; tries++) {
        if ((err = tw_txn_run(c->billing->store, begin_fn, &w)))
            return err;
        if (w.next != RECONCILE || tries == 2)
            break;
        if ((err = reconcile(&w)))
            return err;
    }
    if (w.next == REPLAY)
        return answer(c, w.a->subscription, out);
    if (w.next != GO)
        return billing_refuse(c, TW_ERR_CONFLICT, "the account kept changing: try again");

    if ((err = billing_ensure_customer(c, &a)))
        return err;
    const Tw__Store__V1__PendingStripeCall *p = a->pending;
    if (p == NULL) /* another call finished it meanwhile */
        return tw_billing_get_subscription(c, out);
    char user[TW_ID_TEXT_SIZE];
    tw_id_format(&c->user, user);
    tw_stripe_subscription_new n = {
        .customer = a->stripe_customer_id,
        .price = p->price->stripe_price_id,
        .payment_method = p->payment_method_id[0] ? p->payment_method_id : NULL,
        .user_id = user,
        .plan_id = p->plan_id,
    };
    uint64_t seq = a->stripe_sync_seq;
    tw_stripe_subscription s;
    tw_stripe_error e;
    err =
        tw_stripe_subscription_create(c->billing->stripe, &n, p->idempotency_key, c->arena, &s, &e);
    if (err && err != TW_ERR_UPSTREAM) {
        /* Stripe said no for good: a new request may try with a new key. */
        w.a = a;
        tw_err end = tw_txn_run(c->billing->store, end_pending_fn, &w);
        if (end == TW_OK && err == TW_ERR_PAY_CARD_DECLINED)
            end = billing_count_lost_attempt(c);
        tw_err refusal = billing_stripe_refusal(c, err, &e, "create a subscription");
        return end ? end : refusal;
    }
    if (err)
        return billing_stripe_refusal(c, err, &e, "create a subscription");
    sub_sync sc = SUB_SYNC(c, seq, s);
    sc.request_id = request_id;
    sc.pending_key = p->idempotency_key;
    if ((err = commit_sub(&sc)))
        return err;
    /* The first payment, before its webhook event (merging is idempotent). */
    tw_stripe_invoice inv;
    if (s.latest_invoice[0] != '\0' &&
        tw_stripe_invoice_get(c->billing->stripe, s.latest_invoice, c->arena, &inv, &e) == TW_OK)
        billing_merge_invoice(c, &inv);
    return tw_billing_get_subscription(c, out);
}

/* ---- Changing, canceling, resuming
 * --------------------------------------------------------------- */

/* The user's live subscription, as committed; *a its account. */
static tw_err live_sub(tw_billing_ctx *c, account_record **a, sub_record **s)
{
    tw_err err = committed(c, a);
    if (err)
        return err;
    *s = (*a)->subscription;
    if (*s == NULL || !status_live((*s)->status))
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                              (*s != NULL && (*s)->status == TW_SUB_SUSPENDED)
                                  ? "the subscription is suspended: contact support"
                                  : "there is no live subscription");
    return TW_OK;
}

/* Sends a change of the Stripe subscription and commits Stripe's answer. */
static tw_err stripe_update(tw_billing_ctx *c, account_record *a, const sub_record *s,
                            const tw_stripe_subscription_change *change, const char *key,
                            const char *change_request_id, const char *what)
{
    uint64_t seq = a->stripe_sync_seq;
    tw_stripe_subscription got;
    tw_stripe_error e;
    tw_err err = tw_stripe_subscription_update(c->billing->stripe, s->stripe_subscription_id,
                                               change, key, c->arena, &got, &e);
    if (err)
        return billing_stripe_refusal(c, err, &e, what);
    sub_sync sc = SUB_SYNC(c, seq, got);
    sc.change_request_id = change_request_id;
    return commit_sub(&sc);
}

/* A change of a granted subscription, in a transaction. */
struct local_change {
    tw_billing_ctx *c;
    enum { CANCEL_NOW, CANCEL_AT_END, RESUME, REVOKE, SUSPEND, UNSUSPEND, PERIOD_END } op;
    const char *reason;
    const char *sub_id; /* PERIOD_END: the subscription the job was made for */
    sub_record *s;      /* out */
};

static tw_err local_change_fn(tw_txn *t, void *ctx)
{
    struct local_change *w = ctx;
    tw_billing_ctx *c = w->c;
    account_record *a;
    tw_err err = load_account(c->billing->store, t, &c->user, c->arena, &a);
    if (err)
        return err;
    sub_record *s = w->s = a->subscription;
    if (w->op == PERIOD_END) {
        tw_id id;
        char text[TW_ID_TEXT_SIZE];
        if (!held(s) || s->provider != PROVIDER_LOCAL || !billing_bytes_id(s->id, &id))
            return TW_OK;
        tw_id_format(&id, text);
        if (strcmp(text, w->sub_id) != 0 || c->now_ms < s->period_end_unix_ms)
            return TW_OK; /* replaced, or extended: its own job ends it */
    }
    if (w->op == UNSUSPEND) {
        if (s == NULL || s->status != TW_SUB_SUSPENDED)
            return TW_OK;
    } else if (!held(s)) {
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "there is no live subscription");
    }
    switch (w->op) {
    case CANCEL_NOW:
    case REVOKE:
    case PERIOD_END:
        s->status = TW_SUB_CANCELED;
        if (s->cancel_unix_ms == 0)
            s->cancel_unix_ms = c->now_ms;
        break;
    case CANCEL_AT_END:
        s->cancel_at_period_end = true;
        s->cancel_unix_ms = c->now_ms;
        break;
    case RESUME:
        s->cancel_at_period_end = false;
        s->cancel_unix_ms = 0;
        break;
    case SUSPEND:
        s->suspended = true;
        s->suspend_reason = (char *)w->reason;
        s->status = TW_SUB_SUSPENDED;
        break;
    case UNSUSPEND:
        s->suspended = false;
        s->suspend_reason = "";
        s->status = c->now_ms < s->period_end_unix_ms ? TW_SUB_ACTIVE : TW_SUB_CANCELED;
        if (s->provider == PROVIDER_STRIPE && s->stripe_status[0] != '\0')
            s->status = status_from_stripe(s->stripe_status);
        break;
    }
    return save_account(c->billing, t, &c->user, a, c->now_ms, c->arena);
}

static tw_err local_change(tw_billing_ctx *c, struct local_change *w, Tw__V1__Subscription **out)
{
    w->c = c;
    tw_err err = tw_txn_run(c->billing->store, local_change_fn, w);
    return err || out == NULL ? err : answer_as_is(c, w->s, out);
}

tw_err tw_billing_change_plan(tw_billing_ctx *c, const char *plan_id, const char *request_id,
                              Tw__V1__Subscription **out)
{
    account_record *a;
    sub_record *s;
    plan_record *plan;
    tw_err err = live_sub(c, &a, &s);
    if (err)
        return err;
    if (request_id[0] != '\0' && strcmp(s->change_request_id, request_id) == 0)
        return answer(c, s, out);
    if ((err = paid_plan(c, plan_id, &plan)))
        return err;
    if (strcmp(plan_id, s->plan_id) == 0)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "already on plan %s", plan_id);
    if (s->provider != PROVIDER_STRIPE)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                              "the plan was granted by an administrator, who changes it");
    const price_record *price = NULL;
    if (s->price != NULL && s->price->audience == AUDIENCE_STUDENT)
        price = billing_plan_price(plan, s->price->currency, AUDIENCE_STUDENT);
    if (price == NULL)
        price = billing_plan_price(plan, s->price ? s->price->currency : "", AUDIENCE_STANDARD);
    if (price == NULL || price->stripe_price_id[0] == '\0')
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "plan %s has no Stripe price in %s",
                              plan_id, s->price ? s->price->currency : "the plan's currency");
    char key[TW_STRIPE_IDEMPOTENCY_KEY_MAX + 1];
    snprintf(key, sizeof key, "twd-change-%s-%s", s->stripe_subscription_id, request_id);
    tw_stripe_subscription_change change = {
        .item_id = s->stripe_item_id,
        .price_id = price->stripe_price_id,
        .proration_behavior = "create_prorations",
        .cancel_at_period_end = -1,
        .pause_collection = -1,
        .plan_id = plan->id,
    };
    err = stripe_update(c, a, s, &change, request_id[0] ? key : NULL, request_id, "change plan");
    return err ? err : tw_billing_get_subscription(c, out);
}

tw_err tw_billing_cancel_subscription(tw_billing_ctx *c, bool immediately,
                                      Tw__V1__Subscription **out)
{
    account_record *a;
    sub_record *s;
    tw_err err = live_sub(c, &a, &s);
    if (err)
        return err;
    if (s->provider != PROVIDER_STRIPE) {
        struct local_change w = {.op = immediately ? CANCEL_NOW : CANCEL_AT_END};
        return local_change(c, &w, out);
    }
    if (immediately) {
        uint64_t seq = a->stripe_sync_seq;
        tw_stripe_subscription got;
        tw_stripe_error e;
        err = tw_stripe_subscription_cancel(c->billing->stripe, s->stripe_subscription_id, c->arena,
                                            &got, &e);
        if (err)
            return billing_stripe_refusal(c, err, &e, "cancel a subscription");
        sub_sync sc = SUB_SYNC(c, seq, got);
        err = commit_sub(&sc);
    } else {
        tw_stripe_subscription_change change = {.cancel_at_period_end = 1, .pause_collection = -1};
        err = stripe_update(c, a, s, &change, NULL, NULL, "cancel at period end");
    }
    if (err)
        return err;
    /* Answered as it is now, even when ended (not as the free plan). */
    if ((err = committed(c, &a)))
        return err;
    return answer_as_is(c, a->subscription, out);
}

tw_err tw_billing_resume_subscription(tw_billing_ctx *c, Tw__V1__Subscription **out)
{
    account_record *a;
    sub_record *s;
    tw_err err = live_sub(c, &a, &s);
    if (err)
        return err;
    if (!s->cancel_at_period_end)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "the subscription is not canceled");
    if (s->provider != PROVIDER_STRIPE) {
        struct local_change w = {.op = RESUME};
        return local_change(c, &w, out);
    }
    tw_stripe_subscription_change change = {.cancel_at_period_end = 0, .pause_collection = -1};
    err = stripe_update(c, a, s, &change, NULL, NULL, "resume");
    return err ? err : tw_billing_get_subscription(c, out);
}

/* ---- Operators
 * -------------------------------------------------------------------------------------- */

struct grant {
    tw_billing_ctx *c;
    const plan_record *plan;
    int64_t end_ms;
    sub_record *s;
};

static tw_err grant_fn(tw_txn *t, void *ctx)
{
    struct grant *w = ctx;
    tw_billing_ctx *c = w->c;
    account_record *a;
    tw_err err = load_account(c->billing->store, t, &c->user, c->arena, &a);
    if (err)
        return err;
    if (held(a->subscription) && a->subscription->provider == PROVIDER_STRIPE)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                              "the user pays through Stripe: cancel that subscription first");
    sub_record *s = new_sub(c->arena, c->now_ms);
    price_record *price = tw_arena_alloc(c->arena, sizeof *price);
    if (s == NULL || price == NULL)
        return TW_ERR_NO_MEMORY;
    tw__store__v1__price_record__init(price);
    price->currency = w->plan->n_prices ? w->plan->prices[0]->currency : "USD";
    price->audience = AUDIENCE_STANDARD;
    price->stripe_price_id = "";
    s->plan_id = w->plan->id;
    s->status = TW_SUB_ACTIVE;
    s->price = price; /* granted: nothing is charged */
    s->plan_price_version = w->plan->price_version;
    s->period_start_unix_ms = c->now_ms;
    s->period_end_unix_ms = w->end_ms;
    s->provider = PROVIDER_LOCAL;
    s->stripe_subscription_id = s->stripe_item_id = s->stripe_status = "";
    s->suspend_reason = s->request_id = s->change_request_id = "";
    a->subscription = w->s = s;
    tw_id id;
    billing_bytes_id(s->id, &id);
    if ((err = billing_enqueue(t, TW_BILLING_JOB_PERIOD_END, &c->user,
                               billing_id_text(c->arena, &id), w->end_ms, c->now_ms)))
        return err;
    return save_account(c->billing, t, &c->user, a, c->now_ms, c->arena);
}

tw_err tw_billing_grant_subscription(tw_billing_ctx *c, const char *plan_id, int64_t end_ms,
                                     Tw__V1__Subscription **out)
{
    /* The engine saw to it that plan_id is set. */
    size_t before = tw_violations_total(c->bad);
    if (strcmp(plan_id, TW_FREE_PLAN) == 0)
        billing_bad(c, "plan_id", "is the free plan, which everybody has");
    if (end_ms != 0 && end_ms <= c->now_ms)
        billing_bad(c, "end_time", "must be in the future");
    tw_err err = billing_bad_since(c, before);
    if (err)
        return err;
    plan_record *plan;
    err = billing_plan_load(c->billing, NULL, plan_id, c->arena, &plan);
    if (err == TW_ERR_NOT_FOUND)
        return billing_refuse(c, err, "plan %s not found", plan_id);
    if (err)
        return err;
    if (end_ms == 0)
        end_ms = billing_add_interval(c->now_ms, plan->interval, 1);
    struct grant w = {c, plan, end_ms, NULL};
    if ((err = tw_txn_run(c->billing->store, grant_fn, &w)))
        return err;
    return answer_as_is(c, w.s, out);
}

tw_err tw_billing_revoke_subscription(tw_billing_ctx *c, Tw__V1__Subscription **out)
{
    account_record *a;
    tw_err err = committed(c, &a);
    if (err)
        return err;
    if (!held(a->subscription) || a->subscription->provider != PROVIDER_LOCAL)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "the user has no granted plan");
    struct local_change w = {.op = REVOKE};
    return local_change(c, &w, out);
}

tw_err tw_billing_suspend_subscription(tw_billing_ctx *c, const char *reason,
                                       Tw__V1__Subscription **out)
{
    size_t before = tw_violations_total(c->bad);
    tw_wellness_check_text(c->bad, "reason", reason, 500, true);
    tw_err err = billing_bad_since(c, before);
    account_record *a;
    if (!err)
        err = committed(c, &a);
    if (err)
        return err;
    if (!held(a->subscription))
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "there is no live subscription");
    struct local_change w = {.op = SUSPEND, .reason = reason};
    if ((err = local_change(c, &w, out)))
        return err;
    if (w.s->provider != PROVIDER_STRIPE)
        return TW_OK;
    /* Stop charging too. The suspension above stands whatever Stripe says;
     * a failure here is worth retrying (the call is idempotent). */
    tw_stripe_subscription got;
    tw_stripe_error e;
    tw_stripe_subscription_change pause = {.cancel_at_period_end = -1, .pause_collection = 1};
    err = tw_stripe_subscription_update(c->billing->stripe, w.s->stripe_subscription_id, &pause,
                                        NULL, c->arena, &got, &e);
    if (err)
        return billing_stripe_refusal(c, err, &e,
                                      "pause collection (the subscription is suspended)");
    return TW_OK;
}

tw_err tw_billing_resync_subscription(tw_billing_ctx *c, Tw__V1__Subscription **out)
{
    account_record *a;
    tw_err err = committed(c, &a);
    if (err)
        return err;
    sub_record *s = a->subscription;
    if (s == NULL)
        return billing_refuse(c, TW_ERR_NOT_FOUND, "the user never subscribed");
    if (s->provider != PROVIDER_STRIPE) {
        struct local_change w = {.op = UNSUSPEND};
        return local_change(c, &w, out);
    }
    if ((err = billing_need_stripe(c)))
        return err;
    if (s->suspended) {
        tw_stripe_subscription got;
        tw_stripe_error e;
        tw_stripe_subscription_change resume = {.cancel_at_period_end = -1, .pause_collection = 0};
        err = tw_stripe_subscription_update(c->billing->stripe, s->stripe_subscription_id, &resume,
                                            NULL, c->arena, &got, &e);
        if (err && err != TW_ERR_PAY_REFUSED) /* an ended one cannot be resumed: fine */
            return billing_stripe_refusal(c, err, &e, "resume collection");
    }
    if ((err = billing_sync_subscription(c, s->stripe_subscription_id, true)))
        return err;
    if ((err = committed(c, &a)))
        return err;
    return answer_as_is(c, a->subscription, out);
}

/* ---- Jobs
 * ----------------------------------------------------------------------------------------- */

tw_err billing_period_end_job(tw_billing *b, const tw_id *user, const char *sub_id, int64_t now_ms,
                              tw_arena *arena)
{
    tw_billing_ctx c = {.billing = b, .user = *user, .now_ms = now_ms, .arena = arena};
    struct local_change w = {.op = PERIOD_END, .sub_id = sub_id};
    return local_change(&c, &w, NULL);
}

tw_err billing_reprice_job(tw_billing_ctx *c, const char *plan_id)
{
    plan_record *plan;
    tw_err err = billing_plan_load(c->billing, NULL, plan_id, c->arena, &plan);
    if (err == TW_ERR_NOT_FOUND || c->billing->stripe == NULL)
        return TW_OK; /* nothing to move */
    if (err)
        return err;
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_BILLING_SUB_BY_PLAN);
    tw_key_str(&prefix, plan_id);
    tw_store_iter *it;
    if ((err = tw_store_scan(c->billing->store, &prefix, NULL, 0, false, &it)))
        return err;
    tw_err first = TW_OK;
    while (tw_store_iter_next(it)) {
        tw_key_reader r;
        tw_store_iter_read_key(it, &r);
        char *skip;
        tw_key_read_str(&r, c->arena, &skip, NULL);
        tw_key_read_id(&r, &c->user);
        account_record *a;
        if (r.err || committed(c, &a))
            continue;
        sub_record *s = a->subscription;
        if (!held(s) || s->provider != PROVIDER_STRIPE || strcmp(s->plan_id, plan_id) != 0 ||
            s->price == NULL)
            continue;
        const price_record *want = billing_plan_price(plan, s->price->currency, s->price->audience);
        const price_record *coming = s->renewal_price ? s->renewal_price : s->price;
        if (want == NULL || want->stripe_price_id[0] == '\0' ||
            strcmp(coming->stripe_price_id, want->stripe_price_id) == 0)
            continue;
        /* Without proration: the period paid keeps its price; the next
         * renewal charges the new one. */
        char key[TW_STRIPE_IDEMPOTENCY_KEY_MAX + 1];
        snprintf(key, sizeof key, "twd-reprice-%s-%s", s->stripe_subscription_id,
                 want->stripe_price_id);
        tw_stripe_subscription_change change = {
            .item_id = s->stripe_item_id,
            .price_id = want->stripe_price_id,
            .proration_behavior = "none",
            .cancel_at_period_end = -1,
            .pause_collection = -1,
        };
        tw_err one = stripe_update(c, a, s, &change, key, NULL, "move to the plan's new price");
        if (one && first == TW_OK)
            first = one;
    }
    tw_err close_err = tw_store_iter_close(it);
    return first ? first : close_err;
}

/* ---- Account deletion ------------------------------------------------------------------------ */

tw_err billing_account_forget(tw_billing *b, tw_txn *t, const tw_id *user, int64_t now_ms,
                              tw_arena *arena)
{
    account_record *a;
    tw_err err = load_account(b->store, t, user, arena, &a);
    if (err)
        return err;
    /* Without a subscription the counters forget it (a cancellation) and
     * its entry in the by-plan index goes. */
    a->subscription = NULL;
    if ((err = count_live(b, t, user, a, now_ms, arena)))
        return err;
    if (a->stripe_customer_id[0] == '\0')
        return TW_OK;
    tw_key k;
    billing_customer_key(&k, a->stripe_customer_id);
    return tw_txn_delete(t, &k);
}
