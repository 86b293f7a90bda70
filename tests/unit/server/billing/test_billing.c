/*
 * Unit tests for server/billing/billing.c: calendar arithmetic of billing
 * periods, request ids, Stripe's failures as refusals, the context's
 * set-up, and the dispatch of billing's jobs (unknown types and payloads
 * refused, a job for something gone doing nothing).
 */
#include "billing/billing_internal.h"
#include "billing_fixture.h"

#include "tw_check.h"

#include <string.h>
#include <time.h>

/* Unix ms of a UTC date and time. */
static int64_t at(int y, int mon, int d, int h, int min)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h, .tm_min = min};
    return (int64_t)timegm(&tm) * 1000;
}

START_TEST(periods_follow_the_calendar)
{
    int M = INTERVAL_MONTH, Y = INTERVAL_YEAR;
    ck_assert_int_eq(billing_add_interval(at(2024, 1, 31, 10, 5), M, 1), at(2024, 2, 29, 10, 5));
    ck_assert_int_eq(billing_add_interval(at(2023, 1, 31, 0, 0), M, 1), at(2023, 2, 28, 0, 0));
    ck_assert_int_eq(billing_add_interval(at(2024, 12, 15, 0, 0), M, 1), at(2025, 1, 15, 0, 0));
    ck_assert_int_eq(billing_add_interval(at(2024, 3, 31, 0, 0), M, -1), at(2024, 2, 29, 0, 0));
    ck_assert_int_eq(billing_add_interval(at(2024, 1, 15, 0, 0), M, -2), at(2023, 11, 15, 0, 0));
    ck_assert_int_eq(billing_add_interval(at(2024, 2, 29, 0, 0), Y, 1), at(2025, 2, 28, 0, 0));
    ck_assert_int_eq(billing_add_interval(at(2024, 5, 1, 0, 0) + 123, M, 1),
                     at(2024, 6, 1, 0, 0) + 123);
    ck_assert_int_eq(billing_month_start(at(2024, 5, 17, 13, 45) + 999), at(2024, 5, 1, 0, 0));
    ck_assert_int_eq(billing_month_start(at(2024, 5, 1, 0, 0)), at(2024, 5, 1, 0, 0));
}
END_TEST

START_TEST(stripes_failures_become_refusals)
{
    tw_billing_ctx c = bx_ctx(bx.billing, &fx_alice);
    tw_stripe_error e = {.type = "card_error",
                         .code = "card_declined",
                         .message = "Your card has insufficient funds."};
    ck_assert_int_eq(billing_stripe_refusal(&c, TW_ERR_PAY_CARD_DECLINED, &e, "charge"),
                     TW_ERR_PAY_CARD_DECLINED);
    ck_assert_str_eq(c.why.message, "Your card has insufficient funds.");
    e = (tw_stripe_error){.upstream = {.retry_after_ms = 2000}};
    ck_assert_int_eq(billing_stripe_refusal(&c, TW_ERR_UPSTREAM, &e, "charge"), TW_ERR_UPSTREAM);
    ck_assert_int_eq(c.why.retry_after_ms, 2000);
    ck_assert_ptr_nonnull(strstr(c.why.message, "retry with the same request_id"));
    /* What a client should not see stays in the log. */
    c = bx_ctx(bx.billing, &fx_alice);
    e = (tw_stripe_error){.type = "invalid_request_error", .message = "Invalid API Key sk_live_x"};
    ck_assert_int_eq(billing_stripe_refusal(&c, TW_ERR_PAY_MISCONFIGURED, &e, "charge"),
                     TW_ERR_PAY_MISCONFIGURED);
    ck_assert_str_eq(c.why.message, "");
    c = bx_ctx(bx.local, &fx_alice);
    ck_assert_int_eq(billing_need_stripe(&c), TW_ERR_PAY_DISABLED);
}
END_TEST

START_TEST(a_billing_needs_a_store)
{
    tw_billing_config cfg = {0};
    tw_billing *b = (tw_billing *)1;
    ck_assert_int_eq(tw_billing_new(&cfg, &b), TW_ERR_VALIDATION);
    ck_assert_ptr_null(b);
    tw_billing_free(NULL);
}
END_TEST

/* Enqueues a billing job and leases it back. */
static tw_job leased(const char *type, const void *payload, size_t len)
{
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_job_enqueue(t, type, payload, len, NULL, NULL), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    tw_job job;
    ck_assert_int_eq(tw_store_job_lease(fx.store, type, 60000, fx.arena, &job), TW_OK);
    return job;
}

START_TEST(jobs_are_dispatched_by_type)
{
    char error[256];
    int64_t retry;
    /* Not a BillingJob. */
    tw_job job = leased(TW_BILLING_JOB_PERIOD_END, "\xff\xff\xff", 3);
    ck_assert_int_eq(tw_billing_job_run(bx.billing, &job, bx_now(), error, sizeof error, &retry),
                     TW_ERR_DB_CORRUPT);
    ck_assert_str_eq(error, "payload is not a BillingJob");
    /* A type that is not billing's. */
    job = leased("focus_abandon", "", 0);
    ck_assert_int_eq(tw_billing_job_run(bx.billing, &job, bx_now(), error, sizeof error, &retry),
                     TW_ERR_INTERNAL);
    ck_assert_str_eq(error, "focus_abandon is not a billing job");
    /* A user's job without a user. */
    job = leased(TW_BILLING_JOB_CARD_EXPIRY, "", 0);
    ck_assert_int_eq(tw_billing_job_run(bx.billing, &job, bx_now(), error, sizeof error, &retry),
                     TW_ERR_DB_CORRUPT);
    ck_assert_str_eq(error, "payload is not a BillingJob for a user");
    /* Jobs for what is gone do nothing, and say so by succeeding. */
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(
        billing_enqueue(t, TW_BILLING_JOB_CARD_EXPIRY, &fx_alice, "pm_gone", 0, bx_now()), TW_OK);
    ck_assert_int_eq(billing_enqueue(t, TW_BILLING_JOB_STUDENT_EXPIRY, &fx_alice,
                                     "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", 0, bx_now()),
                     TW_OK);
    ck_assert_int_eq(billing_enqueue(t, TW_BILLING_JOB_PERIOD_END, &fx_alice,
                                     "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", 0, bx_now()),
                     TW_OK);
    ck_assert_int_eq(billing_enqueue(t, TW_BILLING_JOB_WEBHOOK, NULL, "evt_gone", 0, bx_now()),
                     TW_OK);
    ck_assert_int_eq(billing_enqueue(t, TW_BILLING_JOB_REPRICE, NULL, "gone_plan", 0, bx_now()),
                     TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    for (size_t i = 0; tw_billing_job_type(i) != NULL; i++) {
        const char *type = tw_billing_job_type(i);
        ck_assert_int_eq(tw_store_job_lease(fx.store, type, 60000, fx.arena, &job), TW_OK);
        tw_err err = tw_billing_job_run(bx.billing, &job, bx_now(), error, sizeof error, &retry);
        ck_assert_msg(err == TW_OK, "%s: %s %s", type, tw_err_name(err), error);
    }
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("billing");
    TCase *tc = tcase_create("billing");
    tcase_add_checked_fixture(tc, bx_setup, bx_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, periods_follow_the_calendar);
    tcase_add_test(tc, stripes_failures_become_refusals);
    tcase_add_test(tc, a_billing_needs_a_store);
    tcase_add_test(tc, jobs_are_dispatched_by_type);
    suite_add_tcase(s, tc);
    return s;
}
