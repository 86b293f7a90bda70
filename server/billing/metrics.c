/*
 * The runbook's billing figures, read from the counters billing keeps up
 * to date on every change (a read of each counter per plan over the days
 * asked, never a scan of subscriptions or payments), the alert index, and
 * one user's export.
 *
 * Churn of a month: subscriptions that ended in it over those live when
 * it began, where the live count at a month's start is today's live
 * gauge less the net of new subscriptions and endings since that day.
 */
#include "billing_internal.h"

#include "tw_counter.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEFAULT_DAYS   30
#define MAX_DAYS       366
#define DEFAULT_MONTHS 3
#define MAX_MONTHS     12
#define MAX_ALERTS     1000
#define MAX_PLANS      1000

static const char *const live_statuses[] = {"trialing", "active", "past_due"};
static const char *const outcomes[] = {"received", "processed", "ignored", "failed"};

/* Reads counter name/dims over days first .. first + n - 1 into per_day
 * (added to what it holds) and returns the sum in *total (may be NULL). */
static tw_err add_series(tw_store *s, const char *name, const char *dims, uint32_t first,
                         uint32_t n, int64_t *per_day, int64_t *total)
{
    uint64_t got[TW_COUNTER_MAX_DAYS], sum;
    tw_counter ctr = {NULL, name, dims};
    tw_err err = tw_store_counter_read(s, &ctr, first, n, got, &sum);
    if (err)
        return err;
    for (uint32_t i = 0; per_day != NULL && i < n; i++)
        per_day[i] += (int64_t)got[i];
    if (total != NULL)
        *total += (int64_t)sum;
    return TW_OK;
}

static int64_t gauge(tw_store *s, const char *name, const char *dims, tw_err *err)
{
    uint64_t v = 0;
    tw_counter ctr = {NULL, name, dims};
    if (*err == TW_OK)
        *err = tw_store_counter_read(s, &ctr, 0, 1, NULL, &v);
    return (int64_t)v;
}

/* Every plan's id, in arena. */
static tw_err plan_ids(tw_billing_ctx *c, plan_record ***plans, size_t *n)
{
    *plans = tw_arena_alloc(c->arena, MAX_PLANS * sizeof **plans);
    *n = 0;
    if (*plans == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key prefix;
    billing_plan_key(&prefix, NULL);
    tw_store_iter *it;
    tw_err err = tw_store_scan(c->billing->store, &prefix, NULL, 0, false, &it);
    while (err == TW_OK && *n < MAX_PLANS && tw_store_iter_next(it)) {
        tw_value v;
        if ((err = tw_store_iter_value(it, c->arena, &v)) == TW_OK)
            (*plans)[(*n)++] = (plan_record *)v.msg;
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

static char *date_of(tw_arena *arena, int64_t ms, bool month_only)
{
    time_t secs = (time_t)(ms / MS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    return month_only ? tw_arena_printf(arena, "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1)
                      : tw_arena_printf(arena, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                                        tm.tm_mday);
}

struct alerts {
    tw_billing_ctx *c;
    int64_t since_ms;
    Tw__V1__UserAlert **items;
    size_t n;
};

static tw_err read_alerts(struct alerts *a)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_BILLING_ALERT);
    tw_store_iter *it;
    tw_err err = tw_store_scan(a->c->billing->store, &prefix, NULL, 0, true, &it);
    while (err == TW_OK && a->n < MAX_ALERTS && tw_store_iter_next(it)) {
        tw_key_reader r;
        tw_store_iter_read_key(it, &r);
        int64_t ms;
        tw_id user;
        char *kind;
        tw_key_read_i64(&r, &ms);
        tw_key_read_id(&r, &user);
        tw_key_read_str(&r, a->c->arena, &kind, NULL);
        if ((err = r.err) || ms < a->since_ms)
            break;
        Tw__V1__UserAlert *u = tw_arena_alloc(a->c->arena, sizeof *u);
        if (u == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        tw__v1__user_alert__init(u);
        u->user_id = billing_id_text(a->c->arena, &user);
        u->kind = kind;
        u->time = tw_timestamp_new(a->c->arena, ms);
        if (u->user_id == NULL || u->time == NULL)
            err = TW_ERR_NO_MEMORY;
        a->items[a->n++] = u;
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

tw_err tw_billing_metrics(tw_billing_ctx *c, int32_t days, int32_t months,
                          Tw__V1__GetBillingMetricsResponse **out)
{
    size_t before = tw_violations_total(c->bad);
    if (days < 0 || days > MAX_DAYS)
        billing_bad(c, "days", "must be 0 to %d", MAX_DAYS);
    if (months < 0 || months > MAX_MONTHS)
        billing_bad(c, "months", "must be 0 to %d", MAX_MONTHS);
    if (billing_bad_since(c, before))
        return TW_ERR_VALIDATION;
    days = days ? days : DEFAULT_DAYS;
    months = months ? months : DEFAULT_MONTHS;
    tw_store *s = c->billing->store;
    uint32_t today = tw_store_day(c->now_ms);
    int64_t oldest_month =
        billing_add_interval(billing_month_start(c->now_ms), INTERVAL_MONTH, -(months - 1));
    uint32_t first = today - (uint32_t)days + 1;
    if (tw_store_day(oldest_month) < first)
        first = tw_store_day(oldest_month);
    uint32_t span = today - first + 1; /* <= 366 + 12 months' days: under the counters' bound */

    Tw__V1__GetBillingMetricsResponse *r = tw_arena_alloc(c->arena, sizeof *r);
    int64_t *new_subs = tw_arena_alloc(c->arena, span * sizeof *new_subs);
    int64_t *ended = tw_arena_alloc(c->arena, span * sizeof *ended);
    int64_t *ok = tw_arena_alloc(c->arena, span * sizeof *ok);
    int64_t *failed = tw_arena_alloc(c->arena, span * sizeof *failed);
    int64_t *refunds = tw_arena_alloc(c->arena, span * sizeof *refunds);
    int64_t *high = tw_arena_alloc(c->arena, span * sizeof *high);
    if (!r || !new_subs || !ended || !ok || !failed || !refunds || !high)
        return TW_ERR_NO_MEMORY;
    tw__v1__get_billing_metrics_response__init(r);
    plan_record **plans;
    size_t n_plans;
    tw_err err = plan_ids(c, &plans, &n_plans);
    if (err)
        return err;

    /* Per plan: the daily flows, today's gauges. */
    r->plans = tw_arena_alloc(c->arena, (n_plans + 1) * sizeof *r->plans);
    if (r->plans == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t p = 0; p < n_plans && !err; p++) {
        char dims[128];
        snprintf(dims, sizeof dims, "plan=%s", plans[p]->id);
        if ((err = add_series(s, "billing_new_subscriptions", dims, first, span, new_subs, NULL)) ||
            (err = add_series(s, "billing_cancellations", dims, first, span, ended, NULL)))
            break;
        int64_t live[3];
        for (int i = 0; i < 3; i++) {
            snprintf(dims, sizeof dims, "plan=%s,status=%s", plans[p]->id, live_statuses[i]);
            live[i] = gauge(s, "billing_live", dims, &err);
        }
        if (live[0] + live[1] + live[2] == 0)
            continue;
        Tw__V1__PlanFigures *f = tw_arena_alloc(c->arena, sizeof *f);
        Tw__V1__PlanPrice **mrr = tw_arena_alloc(c->arena, (plans[p]->n_prices + 1) * sizeof *mrr);
        if (f == NULL || mrr == NULL)
            return TW_ERR_NO_MEMORY;
        tw__v1__plan_figures__init(f);
        f->plan_id = plans[p]->id;
        f->trialing = live[0];
        f->active = live[1];
        f->past_due = live[2];
        f->mrr = mrr;
        for (size_t i = 0; i < plans[p]->n_prices; i++) {
            const char *cur = plans[p]->prices[i]->currency;
            bool seen = false;
            for (size_t j = 0; j < f->n_mrr; j++)
                seen |= strcmp(f->mrr[j]->currency, cur) == 0;
            snprintf(dims, sizeof dims, "plan=%s,currency=%s", plans[p]->id, cur);
            int64_t amount = seen ? 0 : gauge(s, "billing_mrr_minor", dims, &err);
            if (seen || amount == 0)
                continue;
            price_record pr = TW__STORE__V1__PRICE_RECORD__INIT;
            pr.currency = (char *)cur;
            pr.amount_minor = amount;
            pr.stripe_price_id = "";
            if ((f->mrr[f->n_mrr++] = billing_present_price(c->arena, &pr)) == NULL)
                return TW_ERR_NO_MEMORY;
        }
        r->plans[r->n_plans++] = f;
    }
    if (!err)
        err = add_series(s, "billing_payments", "status=succeeded", first, span, ok, NULL);
    if (!err)
        err = add_series(s, "billing_payments", "status=failed", first, span, failed, NULL);
    if (!err)
        err = add_series(s, "billing_refunds", "", first, span, refunds, NULL);
    for (int res = 1; res < TW_RESOURCE_COUNT && !err; res++) {
        char dims[48];
        snprintf(dims, sizeof dims, "resource=%s", tw_billing_resource_name(res));
        err = add_series(s, "billing_usage_high", dims, first, span, high, NULL);
    }
    if (err)
        return err;

    /* The days asked, oldest first. */
    uint32_t skip = span - (uint32_t)days;
    r->days = tw_arena_alloc(c->arena, (size_t)days * sizeof *r->days);
    if (r->days == NULL)
        return TW_ERR_NO_MEMORY;
    for (uint32_t i = skip; i < span; i++) {
        Tw__V1__DailyBillingFigures *d = tw_arena_alloc(c->arena, sizeof *d);
        if (d == NULL)
            return TW_ERR_NO_MEMORY;
        tw__v1__daily_billing_figures__init(d);
        d->date = date_of(c->arena, (int64_t)(first + i) * MS_PER_DAY, false);
        d->new_subscriptions = new_subs[i];
        d->cancellations = ended[i];
        d->payments_succeeded = ok[i];
        d->payments_failed = failed[i];
        d->refunds = refunds[i];
        d->users_above_80_percent = high[i];
        if (d->date == NULL)
            return TW_ERR_NO_MEMORY;
        r->days[r->n_days++] = d;
    }

    /* Churn by month: the live count walks back from today. */
    int64_t live_now = gauge(s, "billing_live_total", "", &err);
    r->churn = tw_arena_alloc(c->arena, (size_t)months * sizeof *r->churn);
    if (err || r->churn == NULL)
        return err ? err : TW_ERR_NO_MEMORY;
    for (int m = 0; m < months; m++) {
        int64_t start = billing_add_interval(oldest_month, INTERVAL_MONTH, m);
        int64_t end = billing_add_interval(start, INTERVAL_MONTH, 1);
        uint32_t from = tw_store_day(start) - first, to = tw_store_day(end) - first;
        int64_t net_since = 0, ended_in = 0;
        for (uint32_t i = from; i < span; i++) {
            net_since += new_subs[i] - ended[i];
            if (i < to)
                ended_in += ended[i];
        }
        Tw__V1__MonthlyChurn *mc = tw_arena_alloc(c->arena, sizeof *mc);
        if (mc == NULL)
            return TW_ERR_NO_MEMORY;
        tw__v1__monthly_churn__init(mc);
        mc->month = date_of(c->arena, start, true);
        mc->live_at_start = live_now - net_since;
        mc->ended = ended_in;
        mc->rate = mc->live_at_start > 0 ? (double)ended_in / (double)mc->live_at_start : 0;
        r->churn[r->n_churn++] = mc;
    }

    /* Webhook events by type and outcome over the days asked. */
    size_t n_types = 0;
    while (billing_webhook_type(n_types) != NULL)
        n_types++;
    r->webhook_events = tw_arena_alloc(c->arena, n_types * 4 * sizeof *r->webhook_events);
    if (r->webhook_events == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t t = 0; t < n_types && !err; t++) {
        for (int o = 0; o < 4 && !err; o++) {
            char dims[128];
            snprintf(dims, sizeof dims, "type=%s,outcome=%s", billing_webhook_type(t), outcomes[o]);
            int64_t count = 0;
            err = add_series(s, "billing_webhook_events", dims, first + skip, (uint32_t)days, NULL,
                             &count);
            if (err || count == 0)
                continue;
            Tw__V1__WebhookEventCount *w = tw_arena_alloc(c->arena, sizeof *w);
            if (w == NULL)
                return TW_ERR_NO_MEMORY;
            tw__v1__webhook_event_count__init(w);
            w->type = (char *)billing_webhook_type(t);
            w->outcome = (char *)outcomes[o];
            w->count = count;
            r->webhook_events[r->n_webhook_events++] = w;
        }
    }

    struct alerts a = {c, (int64_t)(first + skip) * MS_PER_DAY, NULL, 0};
    if (!err && (a.items = tw_arena_alloc(c->arena, MAX_ALERTS * sizeof *a.items)) == NULL)
        return TW_ERR_NO_MEMORY;
    if (!err)
        err = read_alerts(&a);
    r->alerts = a.items;
    r->n_alerts = a.n;
    *out = r;
    return err;
}

/* ---- Export ------------------------------------------------------------------------------- */

/* One page of a user's payments or payment methods, as messages. */
typedef tw_err export_page_fn(tw_billing_ctx *c, tw_billing_page *page, ProtobufCMessage ***items,
                              size_t *n);

static tw_err payments_page(tw_billing_ctx *c, tw_billing_page *page, ProtobufCMessage ***items,
                            size_t *n)
{
    Tw__V1__Payment **got = NULL;
    tw_err err = billing_list_payments(c, page, &got, n);
    *items = (ProtobufCMessage **)got;
    return err;
}

static tw_err payment_methods_page(tw_billing_ctx *c, tw_billing_page *page,
                                   ProtobufCMessage ***items, size_t *n)
{
    Tw__V1__PaymentMethod **got = NULL;
    tw_err err = billing_list_payment_methods(c, page, &got, n);
    *items = (ProtobufCMessage **)got;
    return err;
}

/* Every item of one list, page by page, up to TW_BILLING_EXPORT_MAX (the
 * answer stays bounded); *truncated says that more were left out. */
static tw_err export_list(tw_billing_ctx *c, export_page_fn *next_page, ProtobufCMessage ***all,
                          size_t *n, protobuf_c_boolean *truncated)
{
    tw_billing_page page = {.size = TW_PAGE_SIZE_MAX};
    ProtobufCMessage **out = tw_arena_alloc(c->arena, (TW_BILLING_EXPORT_MAX + 1) * sizeof *out);
    if (out == NULL)
        return TW_ERR_NO_MEMORY;
    *all = out;
    *n = 0;
    do {
        page.size = TW_BILLING_EXPORT_MAX - *n < TW_PAGE_SIZE_MAX
                        ? (uint32_t)(TW_BILLING_EXPORT_MAX - *n)
                        : TW_PAGE_SIZE_MAX;
        ProtobufCMessage **items;
        size_t got;
        tw_err err = next_page(c, &page, &items, &got);
        if (err)
            return err;
        if (got > 0) /* none: the list may be NULL */
            memcpy(out + *n, items, got * sizeof *out);
        *n += got;
        page.cursor = page.next;
        page.cursor_len = page.next_len;
    } while (page.cursor != NULL && *n < TW_BILLING_EXPORT_MAX);
    *truncated = *truncated || page.cursor != NULL;
    return TW_OK;
}

tw_err tw_billing_export(tw_billing_ctx *c, Tw__V1__ExportBillingRecordsResponse **out)
{
    Tw__V1__ExportBillingRecordsResponse *r = tw_arena_alloc(c->arena, sizeof *r);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__export_billing_records_response__init(r);
    tw_err err = tw_billing_get_subscription(c, &r->subscription);
    if (!err)
        err = export_list(c, payments_page, (ProtobufCMessage ***)&r->payments, &r->n_payments,
                          &r->truncated);
    if (!err)
        err = export_list(c, payment_methods_page, (ProtobufCMessage ***)&r->payment_methods,
                          &r->n_payment_methods, &r->truncated);
    if (!err) {
        err = tw_billing_get_student(c, &r->student_verification);
        if (err == TW_ERR_NOT_FOUND) {
            err = TW_OK;
            c->why.message[0] = '\0';
        }
    }
    tw_billing_entitlement ent;
    if (!err)
        err = tw_billing_entitlement_get(c->billing, &c->user, c->now_ms, c->arena, &ent);
    if (!err)
        err = billing_usages(c->billing, &c->user, &ent, c->arena, &r->usages, &r->n_usages);
    tw_key k;
    billing_account_key(&k, &c->user);
    account_record *a;
    tw_err got = err ? err : billing_get(c->billing->store, NULL, false, &k, c->arena, &a);
    r->stripe_customer_id = got == TW_OK ? a->stripe_customer_id : "";
    if (!err && got != TW_ERR_NOT_FOUND)
        err = got;
    *out = r;
    return err;
}
