/*
 * Billing's context and what its files share (billing_internal.h):
 * refusals, records, keys, paging, calendar arithmetic, counters, and the
 * dispatch of billing's jobs.
 */
#include "billing_internal.h"

#include "tw_counter.h"
#include "tw_log.h"
#include "tw_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

tw_err tw_billing_new(const tw_billing_config *cfg, tw_billing **out)
{
    *out = NULL;
    if (cfg->store == NULL)
        return TW_ERR_VALIDATION;
    tw_billing *b = calloc(1, sizeof *b);
    if (b == NULL)
        return TW_ERR_NO_MEMORY;
    b->store = cfg->store;
    b->blobs = cfg->blobs;
    b->stripe = cfg->stripe;
    b->send_code = cfg->send_code;
    b->send_code_ctx = cfg->send_code_ctx;
    billing_meter_init(b);
    for (int i = 0; i < 2; i++) {
        const char *secret = cfg->webhook_secrets[i];
        if (secret != NULL && secret[0] != '\0' && (b->secrets[i] = strdup(secret)) == NULL) {
            tw_billing_free(b);
            return TW_ERR_NO_MEMORY;
        }
        b->webhook.secrets[i] = b->secrets[i];
    }
    b->webhook.tolerance_s = cfg->webhook_tolerance_s;
    b->webhook.max_body_bytes = cfg->webhook_max_bytes;
    tw_err err = billing_plans_init(b->store, tw_store_now_ms(b->store));
    if (err) {
        tw_billing_free(b);
        return err;
    }
    *out = b;
    return TW_OK;
}

void tw_billing_free(tw_billing *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < 2; i++) {
        if (b->secrets[i] != NULL) {
            memset(b->secrets[i], 0, strlen(b->secrets[i]));
            free(b->secrets[i]);
        }
    }
    billing_meter_free(b);
    free(b);
}

/* ---- Refusals ---------------------------------------------------------------- */

tw_err billing_refuse(tw_billing_ctx *c, tw_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why.message, sizeof c->why.message, fmt, ap);
    va_end(ap);
    return err;
}

tw_err billing_bad(tw_billing_ctx *c, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tw_err err = tw_violations_addv(c->bad, field, fmt, ap);
    va_end(ap);
    return err;
}

tw_err billing_bad_since(const tw_billing_ctx *c, size_t before)
{
    return tw_violations_total(c->bad) > before ? TW_ERR_VALIDATION : TW_OK;
}

tw_err billing_stripe_refusal(tw_billing_ctx *c, tw_err err, const tw_stripe_error *e,
                              const char *what)
{
    char user[TW_ID_TEXT_SIZE];
    tw_id_format(&c->user, user);
    tw_log(TW_LOG_WARN, "stripe call failed",
           json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "call", what, "user_id", user,
                     "reason", tw_err_reason(err), "status", (json_int_t)e->upstream.status, "type",
                     e->type, "code", e->code, "decline_code", e->decline_code, "detail",
                     e->upstream.reason));
    switch (err) {
    case TW_ERR_PAY_CARD_DECLINED:
        /* Stripe writes card errors to be shown to the card's owner. */
        return billing_refuse(c, err, "%s", e->message[0] ? e->message : "Your card was declined.");
    case TW_ERR_PAY_REFUSED:
    case TW_ERR_NOT_FOUND:
        return billing_refuse(c, err, "Stripe: %s", e->message[0] ? e->message : what);
    case TW_ERR_UPSTREAM:
        c->why.retry_after_ms = e->upstream.retry_after_ms > 0 ? e->upstream.retry_after_ms : 0;
        return billing_refuse(c, err, "Stripe did not answer (%s): retry with the same request_id",
                              what);
    default:
        return err;
    }
}

tw_err billing_need_stripe(tw_billing_ctx *c)
{
    if (c->billing->stripe != NULL)
        return TW_OK;
    return billing_refuse(c, TW_ERR_PAY_DISABLED,
                          "this server takes no payments: an administrator grants plans");
}

/* ---- Records ------------------------------------------------------------------- */

tw_err billing_get(tw_store *s, tw_txn *t, bool for_update, const tw_key *k, tw_arena *arena,
                   void *out_msg)
{
    tw_value v;
    tw_err err = t == NULL    ? tw_store_get(s, k, arena, &v)
                 : for_update ? tw_txn_get_for_update(t, k, arena, &v)
                              : tw_txn_get(t, k, arena, &v);
    *(ProtobufCMessage **)out_msg = err ? NULL : v.msg;
    return err;
}

tw_err billing_put(tw_txn *t, const tw_key *k, const void *msg)
{
    return tw_txn_put(t, k, &(tw_value){.msg = (ProtobufCMessage *)msg});
}

void billing_account_key(tw_key *k, const tw_id *user)
{
    tw_key_init(k, TW_KF_BILLING_ACCOUNT);
    tw_key_id(k, user);
}

void billing_entitlement_key(tw_key *k, const tw_id *user)
{
    tw_key_init(k, TW_KF_BILLING_ENTITLEMENT);
    tw_key_id(k, user);
}

void billing_student_key(tw_key *k, const tw_id *user)
{
    tw_key_init(k, TW_KF_BILLING_STUDENT);
    tw_key_id(k, user);
}

void billing_plan_key(tw_key *k, const char *plan)
{
    tw_key_init(k, TW_KF_BILLING_PLAN);
    if (plan != NULL)
        tw_key_str(k, plan);
}

void billing_customer_key(tw_key *k, const char *customer)
{
    tw_key_init(k, TW_KF_BILLING_STRIPE_CUSTOMER);
    tw_key_str(k, customer);
}

ProtobufCBinaryData billing_id_bytes(const tw_id *id)
{
    return (ProtobufCBinaryData){TW_ID_BYTES, (uint8_t *)id->bytes};
}

bool billing_bytes_id(ProtobufCBinaryData b, tw_id *out)
{
    if (b.len != TW_ID_BYTES)
        return false;
    memcpy(out->bytes, b.data, TW_ID_BYTES);
    return true;
}

char *billing_id_text(tw_arena *arena, const tw_id *id)
{
    char *text = tw_arena_alloc(arena, TW_ID_TEXT_SIZE);
    if (text != NULL)
        tw_id_format(id, text);
    return text;
}

/* ---- Paging -------------------------------------------------------------------- */

tw_err billing_page(tw_billing_ctx *c, const tw_key *prefix, const tw_key *first_after,
                    const tw_key *stop, bool reverse, tw_billing_page *page, tw_store_page_fn fn,
                    void *ctx)
{
    tw_store_page_query q = {
        .prefix = prefix,
        .reverse = reverse,
        .after = page->cursor,
        .after_len = page->cursor_len,
        .stop = stop,
        .limit = page->size,
    };
    if (q.after == NULL && first_after != NULL) {
        q.after = first_after->bytes;
        q.after_len = first_after->len;
    }
    uint8_t *next;
    tw_err err =
        tw_store_page_scan(c->billing->store, &q, fn, ctx, c->arena, &next, &page->next_len);
    page->next = next;
    return err;
}

/* ---- Time --------------------------------------------------------------------- */

int64_t billing_add_interval(int64_t ms, int interval, int n)
{
    time_t secs = (time_t)(ms / MS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int months = interval == INTERVAL_YEAR ? 12 * n : n;
    int month = tm.tm_mon + months;
    int year = tm.tm_year + 1900 + (month >= 0 ? month / 12 : (month - 11) / 12);
    month = ((month % 12) + 12) % 12;
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    int last = days[month] + (month == 1 && leap);
    tm.tm_year = year - 1900;
    tm.tm_mon = month;
    if (tm.tm_mday > last)
        tm.tm_mday = last;
    return (int64_t)timegm(&tm) * MS_PER_S + ms % MS_PER_S;
}

int64_t billing_month_start(int64_t ms)
{
    time_t secs = (time_t)(ms / MS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return (int64_t)timegm(&tm) * MS_PER_S;
}

/* ---- Counters ------------------------------------------------------------------- */

tw_err billing_count(tw_txn *t, const char *name, const char *dims, int64_t now_ms, int64_t delta)
{
    tw_counter ctr = {NULL, name, dims};
    return delta ? tw_txn_counter_add(t, &ctr, tw_store_day(now_ms), delta) : TW_OK;
}

tw_err billing_gauge(tw_txn *t, const char *name, const char *dims, int64_t delta)
{
    tw_counter ctr = {NULL, name, dims};
    return delta ? tw_txn_counter_add(t, &ctr, 0, delta) : TW_OK;
}

tw_err billing_alert(tw_txn *t, int64_t time_ms, const tw_id *user, const char *kind)
{
    tw_key k;
    tw_key_init(&k, TW_KF_BILLING_ALERT);
    tw_key_i64(&k, time_ms);
    tw_key_id(&k, user);
    tw_key_str(&k, kind);
    return tw_txn_put(t, &k, NULL);
}

/* ---- Jobs ------------------------------------------------------------------------- */

tw_err billing_enqueue(tw_txn *t, const char *type, const tw_id *user, const char *ref,
                       int64_t due_ms, int64_t now_ms)
{
    Tw__Store__V1__BillingJob job = TW__STORE__V1__BILLING_JOB__INIT;
    if (user != NULL)
        job.user_id = billing_id_bytes(user);
    job.ref = (char *)ref;
    tw_job_options opts = {.delay_ms = due_ms > now_ms ? due_ms - now_ms : 0};
    return tw_txn_job_enqueue_msg(t, type, &job.base, &opts, NULL);
}

/* Billing's jobs: each runs with the job's context (c->user the user the
 * job is for, when it has one) and its ref. */
typedef tw_err (*job_fn)(tw_billing_ctx *c, const char *ref, char *error, size_t error_len,
                         int64_t *retry_after_ms);

static tw_err webhook_job(tw_billing_ctx *c, const char *ref, char *error, size_t error_len,
                          int64_t *retry_after_ms)
{
    return billing_webhook_job(c->billing, ref, c->now_ms, c->arena, error, error_len,
                               retry_after_ms);
}

static tw_err period_end_job(tw_billing_ctx *c, const char *ref, char *error, size_t error_len,
                             int64_t *retry_after_ms)
{
    return billing_period_end_job(c->billing, &c->user, ref, c->now_ms, c->arena);
}

static tw_err reprice_job(tw_billing_ctx *c, const char *ref, char *error, size_t error_len,
                          int64_t *retry_after_ms)
{
    return billing_reprice_job(c, ref);
}

static tw_err card_expiry_job(tw_billing_ctx *c, const char *ref, char *error, size_t error_len,
                              int64_t *retry_after_ms)
{
    return billing_card_expiry_job(c->billing, &c->user, ref, c->now_ms, c->arena);
}

static tw_err student_expiry_job(tw_billing_ctx *c, const char *ref, char *error, size_t error_len,
                                 int64_t *retry_after_ms)
{
    return billing_student_expiry_job(c->billing, &c->user, ref, c->now_ms, c->arena);
}

static const struct {
    const char *type;
    bool for_a_user;
    job_fn run;
} jobs[] = {
    {TW_BILLING_JOB_WEBHOOK, false, webhook_job},
    {TW_BILLING_JOB_PERIOD_END, true, period_end_job},
    {TW_BILLING_JOB_REPRICE, false, reprice_job},
    {TW_BILLING_JOB_CARD_EXPIRY, true, card_expiry_job},
    {TW_BILLING_JOB_STUDENT_EXPIRY, true, student_expiry_job},
};

const char *tw_billing_job_type(size_t i)
{
    return i < sizeof jobs / sizeof *jobs ? jobs[i].type : NULL;
}

tw_err tw_billing_job_run(tw_billing *b, const tw_job *job, int64_t now_ms, char *error,
                          size_t error_len, int64_t *retry_after_ms)
{
    *retry_after_ms = 0;
    error[0] = '\0';
    size_t i = 0;
    while (i < sizeof jobs / sizeof *jobs && strcmp(jobs[i].type, job->type) != 0)
        i++;
    if (i == sizeof jobs / sizeof *jobs) {
        snprintf(error, error_len, "%s is not a billing job", job->type);
        return TW_ERR_INTERNAL;
    }
    Tw__Store__V1__BillingJob *p =
        tw__store__v1__billing_job__unpack(NULL, job->payload_len, job->payload);
    tw_billing_ctx c = {.billing = b, .now_ms = now_ms};
    if (p == NULL || (jobs[i].for_a_user && !billing_bytes_id(p->user_id, &c.user))) {
        snprintf(error, error_len, "payload is not a BillingJob%s", p == NULL ? "" : " for a user");
        tw__store__v1__billing_job__free_unpacked(p, NULL);
        return TW_ERR_DB_CORRUPT;
    }
    tw_err err = TW_ERR_NO_MEMORY;
    if ((c.arena = tw_arena_new(8192)) != NULL)
        err = jobs[i].run(&c, p->ref, error, error_len, retry_after_ms);
    if (err && error[0] == '\0')
        snprintf(error, error_len, "%s%s%s", tw_err_message(err), c.why.message[0] ? ": " : "",
                 c.why.message);
    if (c.why.retry_after_ms > *retry_after_ms)
        *retry_after_ms = c.why.retry_after_ms;
    tw_arena_free(c.arena);
    tw__store__v1__billing_job__free_unpacked(p, NULL);
    return err;
}

/* ---- Account deletion ---------------------------------------------------------------------- */

struct forget {
    tw_billing *b;
    const tw_id *user;
    int64_t now_ms;
    tw_arena *arena;
    const char *blob_key;
};

static tw_err forget_fn(tw_txn *t, void *ctx)
{
    struct forget *f = ctx;
    tw_err err = billing_account_forget(f->b, t, f->user, f->now_ms, f->arena);
    return err ? err : billing_student_forget(f->b, t, f->user, f->arena, &f->blob_key);
}

/* A live subscription ends now, at Stripe too, before its records go: a
 * deleted account is never charged again. A refusal for want of a live
 * subscription is nothing to do; a Stripe failure fails this step, and the
 * deletion job retries it later with the records still there. */
static tw_err cancel_live_subscription(tw_billing *b, const tw_id *user, int64_t now_ms,
                                       tw_arena *arena)
{
    tw_billing_ctx c = {.billing = b, .user = *user, .now_ms = now_ms, .arena = arena};
    Tw__V1__Subscription *ended;
    tw_err err = tw_billing_cancel_subscription(&c, true, &ended);
    return err == TW_ERR_FAILED_PRECONDITION || err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

tw_err tw_billing_forget_user(tw_billing *b, const tw_id *user, int64_t now_ms)
{
    struct forget f = {.b = b, .user = user, .now_ms = now_ms};
    if ((f.arena = tw_arena_new(4096)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = cancel_live_subscription(b, user, now_ms, f.arena);
    billing_meter_forget(b, user); /* its counts must not come back */
    if (err == TW_OK)
        err = tw_txn_run(b->store, forget_fn, &f);
    if (err == TW_OK && f.blob_key != NULL && b->blobs != NULL) {
        err = tw_blob_delete(b->blobs, f.blob_key);
        if (err == TW_ERR_NOT_FOUND)
            err = TW_OK;
    }
    tw_arena_free(f.arena);
    return err;
}
