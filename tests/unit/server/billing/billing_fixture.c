/* Shared helpers of billing's tests (billing_fixture.h). */
#include "billing_fixture.h"

#include "tw_check.h"
#include "tw_counter.h"
#include "tw_hex.h"
#include "tw_jobs.h"
#include "tw_page.h"
#include "tw_time.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bx_env bx;

static void remember_code(void *ctx, const tw_id *user, const char *email, const char *code)
{
    bx_env *env = ctx;
    snprintf(env->code, sizeof env->code, "%s", code);
    snprintf(env->code_email, sizeof env->code_email, "%s", email);
    env->codes_sent++;
}

void bx_setup(void)
{
    fx_setup();
    fxb_setup();
    atomic_store(&fx.clock.ms, tw_wall_ms());
    memset(&bx, 0, sizeof bx);
    fx_fake_stripe_start(&bx.stripe, BX_KEY);
    tw_stripe_config sc = {
        .base_url = bx.stripe.base_url,
        .secret_key = BX_KEY,
        .policy = {.connect_timeout_ms = 2000,
                   .timeout_ms = 5000,
                   .max_attempts = 3,
                   .backoff_base_ms = 1,
                   .backoff_max_ms = 5},
    };
    ck_assert_int_eq(tw_stripe_new(&sc, &bx.client), TW_OK);
    tw_billing_config cfg = {
        .store = fx.store,
        .blobs = fxb.blobs,
        .stripe = bx.client,
        .webhook_secrets = {BX_SECRET, NULL},
        .send_code = remember_code,
        .send_code_ctx = &bx,
    };
    ck_assert_int_eq(tw_billing_new(&cfg, &bx.billing), TW_OK);
    cfg.stripe = NULL;
    ck_assert_int_eq(tw_billing_new(&cfg, &bx.local), TW_OK);
}

void bx_teardown(void)
{
    tw_billing_free(bx.billing);
    tw_billing_free(bx.local);
    tw_stripe_free(bx.client);
    fx_server_stop(&bx.stripe);
    fxb_teardown();
    fx_teardown();
}

int64_t bx_now(void)
{
    return atomic_load(&fx.clock.ms);
}

void bx_advance(int64_t ms)
{
    atomic_fetch_add(&fx.clock.ms, ms);
}

tw_billing_ctx bx_ctx(tw_billing *b, const tw_id *user)
{
    tw_violations *bad = tw_arena_alloc(fx.arena, sizeof *bad);
    ck_assert_ptr_nonnull(bad);
    tw_violations_init(bad, fx.arena, TW_CALL_VIOLATIONS_MAX, TW_CALL_VIOLATIONS_MAX_BYTES);
    return (tw_billing_ctx){
        .billing = b, .user = *user, .now_ms = bx_now(), .arena = fx.arena, .bad = bad};
}

const char *bx_bad(tw_billing_ctx *c)
{
    char *fields = tw_arena_strdup(fx.arena, "");
    for (const tw_violation *v = c->bad->head; v != NULL; v = v->next)
        fields = tw_arena_printf(fx.arena, "%s%s%s", fields, fields[0] ? "," : "", v->field);
    tw_violations_init(c->bad, fx.arena, TW_CALL_VIOLATIONS_MAX, TW_CALL_VIOLATIONS_MAX_BYTES);
    return fields;
}

tw_billing_page *bx_page(int32_t size)
{
    tw_billing_page *page = tw_arena_alloc(fx.arena, sizeof *page);
    ck_assert_ptr_nonnull(page);
    *page = (tw_billing_page){.size = size > 0 ? (uint32_t)size : TW_PAGE_SIZE_DEFAULT};
    return page;
}

tw_billing_page *bx_next(const tw_billing_page *page)
{
    tw_billing_page *next = bx_page((int32_t)page->size);
    next->cursor = page->next;
    next->cursor_len = page->next_len;
    return next;
}

static Tw__V1__PlanPrice *price(tw_arena *arena, const char *currency, int64_t amount, int audience)
{
    Tw__V1__PlanPrice *p = tw_arena_alloc(arena, sizeof *p);
    ck_assert_ptr_nonnull(p);
    tw__v1__plan_price__init(p);
    p->currency = (char *)currency;
    p->amount_minor = amount;
    p->audience = audience;
    return p;
}

Tw__V1__Plan *bx_plan(tw_billing *b, const char *id, int64_t amount, int64_t student_amount,
                      int64_t eur_amount)
{
    Tw__V1__Plan in = TW__V1__PLAN__INIT;
    Tw__V1__PlanPrice *prices[3];
    in.id = (char *)id;
    in.name = (char *)id;
    in.description = "A plan made by a test";
    in.interval = TW__V1__BILLING_INTERVAL__BILLING_INTERVAL_MONTH;
    prices[in.n_prices++] =
        price(fx.arena, "USD", amount, TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STANDARD);
    if (student_amount >= 0)
        prices[in.n_prices++] =
            price(fx.arena, "USD", student_amount, TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STUDENT);
    if (eur_amount >= 0)
        prices[in.n_prices++] =
            price(fx.arena, "EUR", eur_amount, TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STANDARD);
    in.prices = prices;
    tw_billing_ctx c = bx_ctx(b, &fx_alice);
    Tw__V1__Plan *out;
    tw_err err = tw_billing_create_plan(&c, &in, "", &out);
    ck_assert_msg(err == TW_OK, "create plan %s: %s %s %s", id, tw_err_name(err), bx_bad(&c),
                  c.why.message);
    return out;
}

int bx_run_jobs(tw_billing *b)
{
    int ran = 0;
    for (bool any = true; any && ran < 10000;) {
        any = false;
        for (size_t i = 0; tw_billing_job_type(i) != NULL; i++) {
            tw_arena *arena = tw_arena_new(4096);
            tw_job job;
            tw_err err = tw_store_job_lease(fx.store, tw_billing_job_type(i), 60000, arena, &job);
            if (err == TW_ERR_NOT_FOUND) {
                tw_arena_free(arena);
                continue;
            }
            ck_assert_int_eq(err, TW_OK);
            char error[512];
            int64_t retry_after;
            err = tw_billing_job_run(b, &job, bx_now(), error, sizeof error, &retry_after);
            ck_assert_int_eq(err ? tw_store_job_fail(fx.store, &job, error, retry_after)
                                 : tw_store_job_complete(fx.store, &job),
                             TW_OK);
            tw_arena_free(arena);
            ran++;
            any = true;
        }
    }
    return ran;
}

int bx_jobs_waiting(const char *type)
{
    /* Every ready or leased job of the type has a key in the due index. */
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_JOB_DUE);
    tw_key_str(&prefix, type);
    return fx_count_keys(fx.store, &prefix);
}

char *bx_sign(const char *payload, int64_t t_s)
{
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)t_s);
    size_t n = strlen(t) + 1 + strlen(payload);
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    snprintf(text, n + 1, "%s.%s", t, payload);
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), BX_SECRET, (int)strlen(BX_SECRET), (const unsigned char *)text, n, mac,
         &len);
    free(text);
    char hex[65];
    tw_hex_encode(mac, sizeof mac, hex);
    char *header = malloc(128);
    ck_assert_ptr_nonnull(header);
    snprintf(header, 128, "t=%s,v1=%s", t, hex);
    return header;
}

json_t *bx_events(void)
{
    json_t *state = fx_fake_control(&bx.stripe, "GET", "/_state", NULL);
    json_t *events = json_incref(json_object_get(state, "events"));
    json_decref(state);
    return events;
}

size_t bx_event_count(void)
{
    json_t *events = bx_events();
    size_t n = json_array_size(events);
    json_decref(events);
    return n;
}

tw_err bx_deliver(tw_billing *b, json_t *event, tw_webhook_delivery *delivery)
{
    char *payload = json_dumps(event, JSON_COMPACT);
    char *header = bx_sign(payload, bx_now() / 1000);
    char why[256];
    tw_err err = tw_billing_webhook_receive(b, header, payload, strlen(payload), bx_now(), delivery,
                                            why, sizeof why);
    free(payload);
    free(header);
    return err;
}

size_t bx_deliver_from(tw_billing *b, size_t from, bool reversed)
{
    json_t *events = bx_events();
    size_t n = json_array_size(events), count = 0;
    for (size_t k = from; k < n; k++) {
        size_t i = reversed ? n - 1 - (k - from) : k;
        tw_webhook_delivery d;
        ck_assert_int_eq(bx_deliver(b, json_array_get(events, i), &d), TW_OK);
        count++;
    }
    json_decref(events);
    bx_run_jobs(b);
    return count;
}

size_t bx_stripe_count(const char *kind)
{
    json_t *state = fx_fake_control(&bx.stripe, "GET", "/_state", NULL);
    size_t n = json_object_size(json_object_get(json_object_get(state, "objects"), kind));
    json_decref(state);
    return n;
}

void bx_stripe_advance(const char *subscription_id)
{
    char body[256];
    snprintf(body, sizeof body, "{\"subscription\": \"%s\"}", subscription_id);
    json_decref(fx_fake_control(&bx.stripe, "POST", "/_advance", body));
}

int64_t bx_today(const char *name, const char *dims)
{
    uint64_t v = 0;
    tw_counter ctr = {NULL, name, dims};
    ck_assert_int_eq(tw_store_counter_read(fx.store, &ctr, tw_store_day(bx_now()), 1, NULL, &v),
                     TW_OK);
    return (int64_t)v;
}

int64_t bx_gauge(const char *name, const char *dims)
{
    uint64_t v = 0;
    tw_counter ctr = {NULL, name, dims};
    ck_assert_int_eq(tw_store_counter_read(fx.store, &ctr, 0, 1, NULL, &v), TW_OK);
    return (int64_t)v;
}
