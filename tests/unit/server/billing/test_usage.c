/*
 * Unit tests for server/billing/usage.c: the free plan's 100 per period
 * (the 101st call refused with the limit and the reset time), an upgrade
 * lifting it at once, the next period starting from zero without anything
 * deleted, concurrent callers never passing the limit together, 80 %
 * alerts counted once, unlimited resources, usage added past a limit,
 * storage as a level (no roll-over, given back, never below zero),
 * GetUsage, and the meter (counts kept in memory, written in batches, and
 * every write of the plan, the entitlement or the count seen by the next
 * count).
 */
#include "billing/billing_internal.h"
#include "billing_fixture.h"

#include "tw_check.h"

#include <pthread.h>
#include <string.h>

static tw_err consume(const tw_id *user, int resource, int64_t amount, tw_billing_quota *q)
{
    return tw_billing_usage_consume(bx.local, user, resource, amount, bx_now(), q);
}

/* amount of user's resource added in a caller's transaction (a negative
 * one given back, as for a deleted note). */
static void add_in_txn(const tw_id *user, int resource, int64_t amount)
{
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_billing_usage_add(t, bx.local, user, resource, amount, bx_now()),
                     TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
}

START_TEST(the_101st_call_of_a_free_user_is_refused)
{
    tw_billing_quota q;
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_OK);
    memset(&q, 0, sizeof q);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.resource, TW_RESOURCE_AI_REQUESTS);
    ck_assert_int_eq(q.used, 100);
    ck_assert_int_eq(q.limit, 100);
    tw_billing_entitlement e;
    ck_assert_int_eq(tw_billing_entitlement_get(bx.local, &fx_alice, bx_now(), fx.arena, &e),
                     TW_OK);
    ck_assert_int_eq(q.reset_ms, e.period_end_ms);
    /* Other resources and users are counted apart. */
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 1, &q), TW_OK);
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_AI_REQUESTS, 100, &q), TW_OK);
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    /* An amount that does not fit is refused whole. */
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_VOICE_MINUTES, 101, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.used, 0);
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_VOICE_MINUTES, 0, &q), TW_ERR_VALIDATION);
    ck_assert_int_eq(consume(&fx_bob, 0, 1, &q), TW_ERR_VALIDATION);
}
END_TEST

START_TEST(an_upgrade_lifts_the_limit_at_once)
{
    bx_plan(bx.local, "premium", 999, -1, -1);
    tw_billing_quota q;
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 100, &q), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    tw_billing_ctx c = bx_ctx(bx.local, &fx_alice);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "premium", 0, &s), TW_OK);
    /* The premium period starts now: its own count, its 1000. */
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1000, &q), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.limit, 1000);
    ck_assert_int_eq(q.reset_ms / 1000, s->current_period_end_time->seconds);
    /* Revoked: back to free, this month's free count again. */
    ck_assert_int_eq(tw_billing_revoke_subscription(&c, &s), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.limit, 100);
    ck_assert_int_eq(q.used, 100);
}
END_TEST

START_TEST(the_next_period_starts_from_zero_and_keeps_the_last)
{
    tw_billing_quota q;
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 100, &q), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    int64_t reset = q.reset_ms;
    atomic_store(&fx.clock.ms, reset);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 100, &q), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_gt(q.reset_ms, reset);
    /* Both periods' counts are kept: nothing was deleted. */
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_BILLING_USAGE);
    tw_key_id(&prefix, &fx_alice);
    tw_store_iter *it;
    ck_assert_int_eq(tw_store_scan(fx.store, &prefix, NULL, 0, false, &it), TW_OK);
    int n = 0;
    while (tw_store_iter_next(it)) {
        tw_value v;
        ck_assert_int_eq(tw_store_iter_value(it, NULL, &v), TW_OK);
        ck_assert_uint_eq(v.u64, 100);
        n++;
    }
    ck_assert_int_eq(tw_store_iter_close(it), TW_OK);
    ck_assert_int_eq(n, 2);
}
END_TEST

START_TEST(the_meter_sees_every_write_of_what_it_checks_against)
{
    /* Each first count leaves the meter's slot knowing the limit and the
     * stored count; each change below must reach the next count. */
    tw_billing_quota q;
    bx_plan(bx.local, "premium", 999, -1, -1);
    tw_billing_ctx c = bx_ctx(bx.local, &fx_alice);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "premium", 0, &s), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 10, &q), TW_OK);

    /* A plan's new limit (a shared record): at the next count. */
    Tw__V1__Plan in = TW__V1__PLAN__INIT, *out;
    Tw__V1__UsageLimit twenty = TW__V1__USAGE_LIMIT__INIT, *limits[] = {&twenty};
    twenty.resource = TW_RESOURCE_AI_REQUESTS;
    twenty.limit = 20;
    in.id = "premium";
    in.limits = limits;
    in.n_limits = 1;
    char *paths[] = {"limits"};
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = paths;
    mask.n_paths = 1;
    ck_assert_int_eq(tw_billing_update_plan(&c, &in, &mask, &out), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 11, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.limit, 20);
    ck_assert_int_eq(q.used, 10);

    /* A count written by a caller's transaction: at the next count. */
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_OK);
    add_in_txn(&fx_bob, TW_RESOURCE_AI_REQUESTS, 50);
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_AI_REQUESTS, 50, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.used, 51);
    ck_assert_int_eq(
        tw_billing_usage_check(bx.local, &fx_bob, TW_RESOURCE_AI_REQUESTS, 50, bx_now(), &q),
        TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_AI_REQUESTS, 49, &q), TW_OK);

    /* A grant that runs out: the free plan's limit from that instant on,
     * with no write to tell. */
    ck_assert_int_eq(tw_billing_revoke_subscription(&c, &s), TW_OK);
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "premium", bx_now() + 60000, &s), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 101, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.limit, 20);
    atomic_store(&fx.clock.ms, bx_now() + 60000);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 101, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.limit, 100);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 100, &q), TW_OK);
}
END_TEST

static void *consume_many(void *arg)
{
    int *ok = arg;
    for (int i = 0; i < 40; i++) {
        tw_billing_quota q;
        if (consume(&fx_alice, TW_RESOURCE_VOICE_MINUTES, 1, &q) == TW_OK)
            (*ok)++;
    }
    return NULL;
}

START_TEST(concurrent_callers_never_pass_the_limit)
{
    pthread_t t[4];
    int ok[4] = {0};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, consume_many, &ok[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(ok[0] + ok[1] + ok[2] + ok[3], 100);
    tw_billing_ctx c = bx_ctx(bx.local, &fx_alice);
    Tw__V1__GetUsageResponse *u;
    ck_assert_int_eq(tw_billing_get_usage(&c, &u), TW_OK);
    ck_assert_int_eq(u->usages[TW_RESOURCE_VOICE_MINUTES - 1]->used, 100);
}
END_TEST

/* The sum of user's counts as stored, every resource and period. */
static int64_t stored(const tw_id *user)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_BILLING_USAGE);
    tw_key_id(&prefix, user);
    tw_store_iter *it;
    ck_assert_int_eq(tw_store_scan(fx.store, &prefix, NULL, 0, false, &it), TW_OK);
    int64_t sum = 0;
    while (tw_store_iter_next(it)) {
        tw_value v;
        ck_assert_int_eq(tw_store_iter_value(it, NULL, &v), TW_OK);
        sum += (int64_t)v.u64;
    }
    ck_assert_int_eq(tw_store_iter_close(it), TW_OK);
    return sum;
}

static int64_t used(const tw_id *user, int resource)
{
    tw_billing_ctx c = bx_ctx(bx.local, user);
    Tw__V1__GetUsageResponse *u;
    ck_assert_int_eq(tw_billing_get_usage(&c, &u), TW_OK);
    return u->usages[resource - 1]->used;
}

START_TEST(the_meter_keeps_counts_in_memory_and_writes_them_in_batches)
{
    tw_billing_quota q;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 1, &q), TW_OK);
    /* Not written yet, but counted by every reader. */
    ck_assert_int_eq(stored(&fx_alice), 0);
    ck_assert_int_eq(used(&fx_alice, TW_RESOURCE_API_CALLS), 10);
    ck_assert_int_eq(
        tw_billing_usage_check(bx.local, &fx_alice, TW_RESOURCE_API_CALLS, 91, bx_now(), &q),
        TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.used, 10);
    /* The 64th count writes the batch. */
    for (int i = 0; i < 54; i++)
        ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 1, &q), TW_OK);
    ck_assert_int_eq(stored(&fx_alice), 64);
    /* A count a second after the oldest pending one writes them all. */
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 1, &q), TW_OK);
    bx_advance(1000);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 1, &q), TW_OK);
    ck_assert_int_eq(stored(&fx_alice), 66);
    /* Writing every slot (twd stopping) leaves nothing in memory. */
    ck_assert_int_eq(tw_billing_usage_add(bx.local, &fx_bob, TW_RESOURCE_API_CALLS, 3, bx_now()),
                     TW_OK);
    ck_assert_int_eq(stored(&fx_bob), 0);
    ck_assert_int_eq(tw_billing_usage_flush(bx.local, bx_now()), TW_OK);
    ck_assert_int_eq(stored(&fx_bob), 3);
    ck_assert_int_eq(used(&fx_bob, TW_RESOURCE_API_CALLS), 3);
    /* A forgotten user's counts are dropped, never written. */
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_API_CALLS, 1, &q), TW_OK);
    billing_meter_forget(bx.local, &fx_bob);
    ck_assert_int_eq(tw_billing_usage_flush(bx.local, bx_now()), TW_OK);
    ck_assert_int_eq(stored(&fx_bob), 3);
}
END_TEST

/* One count at a time, the one that crosses 80 % is written at once with
 * its alert; the limit is exact with counts still in memory. */
START_TEST(counts_one_at_a_time_alert_on_time_and_stop_at_the_limit)
{
    tw_billing_quota q;
    for (int i = 0; i < 80; i++)
        ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_OK);
    ck_assert_int_eq(bx_today("billing_usage_high", "resource=ai_requests"), 0);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_OK);
    ck_assert_int_eq(bx_today("billing_usage_high", "resource=ai_requests"), 1);
    ck_assert_int_eq(stored(&fx_alice), 81);
    for (int i = 0; i < 19; i++)
        ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.used, 100);
    ck_assert_int_eq(stored(&fx_alice), 81); /* the last 19 are in memory */
    ck_assert_int_eq(bx_today("billing_usage_high", "resource=ai_requests"), 1);
}
END_TEST

START_TEST(crossing_80_percent_is_counted_once)
{
    tw_billing_quota q;
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 80, &q), TW_OK);
    ck_assert_int_eq(bx_today("billing_usage_high", "resource=ai_requests"), 0);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_OK);
    ck_assert_int_eq(bx_today("billing_usage_high", "resource=ai_requests"), 1);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_AI_REQUESTS, 19, &q), TW_OK);
    ck_assert_int_eq(bx_today("billing_usage_high", "resource=ai_requests"), 1);
    tw_billing_ctx c = bx_ctx(bx.local, &fx_alice);
    Tw__V1__GetBillingMetricsResponse *m;
    ck_assert_int_eq(tw_billing_metrics(&c, 1, 1, &m), TW_OK);
    ck_assert_uint_eq(m->n_alerts, 1);
    ck_assert_str_eq(m->alerts[0]->kind, "usage_above_80_percent:ai_requests");
    char alice[TW_ID_TEXT_SIZE];
    tw_id_format(&fx_alice, alice);
    ck_assert_str_eq(m->alerts[0]->user_id, alice);
    ck_assert_int_eq(m->days[0]->users_above_80_percent, 1);
}
END_TEST

START_TEST(unlimited_and_added_usage)
{
    tw_billing_ctx c = bx_ctx(bx.local, &fx_alice);
    Tw__V1__Plan in = TW__V1__PLAN__INIT, *plan;
    Tw__V1__PlanPrice price = TW__V1__PLAN_PRICE__INIT, *prices[] = {&price};
    Tw__V1__UsageLimit unlimited = TW__V1__USAGE_LIMIT__INIT, *limits[] = {&unlimited};
    price.currency = "USD";
    price.amount_minor = 100;
    unlimited.resource = TW_RESOURCE_STORAGE_BYTES;
    unlimited.unlimited = true;
    in.id = "hoarder";
    in.name = "Hoarder";
    in.description = "";
    in.interval = TW__V1__BILLING_INTERVAL__BILLING_INTERVAL_MONTH;
    in.prices = prices;
    in.n_prices = 1;
    in.limits = limits;
    in.n_limits = 1;
    ck_assert_int_eq(tw_billing_create_plan(&c, &in, "", &plan), TW_OK);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "hoarder", 0, &s), TW_OK);
    tw_billing_quota q;
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_STORAGE_BYTES, INT64_C(1) << 40, &q), TW_OK);
    /* Added in a caller's transaction whatever the limit. */
    add_in_txn(&fx_bob, TW_RESOURCE_AI_REQUESTS, 250);
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.used, 250);
    /* And in a transaction of its own (plan_limits count): every call
     * counted, past the limit too. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(
            tw_billing_usage_add(bx.local, &fx_bob, TW_RESOURCE_AI_REQUESTS, 2, bx_now()), TW_OK);
    ck_assert_int_eq(consume(&fx_bob, TW_RESOURCE_AI_REQUESTS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.used, 256);
    Tw__V1__GetUsageResponse *u;
    ck_assert_int_eq(tw_billing_get_usage(&c, &u), TW_OK);
    ck_assert_str_eq(u->plan_id, "hoarder");
    ck_assert_uint_eq(u->n_usages, 4);
    const Tw__V1__ResourceUsage *storage = u->usages[TW_RESOURCE_STORAGE_BYTES - 1];
    ck_assert_int_eq(storage->resource, TW_RESOURCE_STORAGE_BYTES);
    ck_assert(storage->unlimited);
    ck_assert_int_eq(storage->used, INT64_C(1) << 40);
    ck_assert_int_eq(u->usages[0]->limit, 1000); /* the default of a paid plan */
    ck_assert_int_eq(storage->period_end_time->seconds, s->current_period_end_time->seconds);
    ck_assert_str_eq(tw_billing_resource_name(TW_RESOURCE_VOICE_MINUTES), "voice_minutes");
    ck_assert_str_eq(tw_billing_resource_name(9), "");
}
END_TEST

START_TEST(storage_is_a_level_that_never_rolls_over_and_is_given_back)
{
    tw_billing_quota q;
    int64_t mib = INT64_C(1) << 20;
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_STORAGE_BYTES, 60 * mib, &q), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 100, &q), TW_OK);
    /* A check counts nothing; over the free 100 MiB it says why, with no
     * reset (a level is freed by deleting, not by time). */
    ck_assert_int_eq(tw_billing_usage_check(bx.local, &fx_alice, TW_RESOURCE_STORAGE_BYTES,
                                            40 * mib, bx_now(), &q),
                     TW_OK);
    ck_assert_int_eq(tw_billing_usage_check(bx.local, &fx_alice, TW_RESOURCE_STORAGE_BYTES,
                                            41 * mib, bx_now(), &q),
                     TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.used, 60 * mib);
    ck_assert_int_eq(q.reset_ms, 0);
    /* The next period: API calls start again, storage does not. */
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 1, &q), TW_ERR_QUOTA_EXCEEDED);
    atomic_store(&fx.clock.ms, q.reset_ms);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_API_CALLS, 1, &q), TW_OK);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_STORAGE_BYTES, 41 * mib, &q),
                     TW_ERR_QUOTA_EXCEEDED);
    ck_assert_int_eq(q.used, 60 * mib);
    /* Given back, never below 0. */
    add_in_txn(&fx_alice, TW_RESOURCE_STORAGE_BYTES, -20 * mib);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_STORAGE_BYTES, 60 * mib, &q), TW_OK);
    add_in_txn(&fx_alice, TW_RESOURCE_STORAGE_BYTES, -500 * mib);
    ck_assert_int_eq(consume(&fx_alice, TW_RESOURCE_STORAGE_BYTES, 100 * mib, &q), TW_OK);
    /* Consumed in a caller's transaction: refused whole over the limit. */
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_billing_usage_consume(t, bx.local, &fx_alice, TW_RESOURCE_STORAGE_BYTES,
                                                  1, bx_now(), &q),
                     TW_ERR_QUOTA_EXCEEDED);
    tw_txn_abort(t);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("billing_usage");
    TCase *tc = tcase_create("usage");
    tcase_add_checked_fixture(tc, bx_setup, bx_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_101st_call_of_a_free_user_is_refused);
    tcase_add_test(tc, an_upgrade_lifts_the_limit_at_once);
    tcase_add_test(tc, the_next_period_starts_from_zero_and_keeps_the_last);
    tcase_add_test(tc, concurrent_callers_never_pass_the_limit);
    tcase_add_test(tc, crossing_80_percent_is_counted_once);
    tcase_add_test(tc, the_meter_keeps_counts_in_memory_and_writes_them_in_batches);
    tcase_add_test(tc, the_meter_sees_every_write_of_what_it_checks_against);
    tcase_add_test(tc, counts_one_at_a_time_alert_on_time_and_stop_at_the_limit);
    tcase_add_test(tc, unlimited_and_added_usage);
    tcase_add_test(tc, storage_is_a_level_that_never_rolls_over_and_is_given_back);
    suite_add_tcase(s, tc);
    return s;
}
