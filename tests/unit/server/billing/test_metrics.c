/*
 * Unit tests for server/billing/metrics.c: the runbook's figures after
 * some billing (new subscriptions and cancellations per day, live
 * subscriptions and MRR by plan, churn by month, payments, webhook events
 * by type and outcome), the bounds of the request, and one user's export.
 */
#include "billing/billing_internal.h"
#include "billing_fixture.h"

#include "tw_check.h"

#include <string.h>

#define DAY INT64_C(86400000)

static tw_billing_ctx c;

static Tw__V1__Subscription *subscribe(const tw_id *user, const char *plan)
{
    c = bx_ctx(bx.billing, user);
    Tw__V1__Subscription *s;
    tw_err err = tw_billing_create_subscription(&c, plan, "pm_card_visa", "", "s", &s);
    ck_assert_msg(err == TW_OK, "%s %s", tw_err_name(err), c.why.message);
    return s;
}

static Tw__V1__GetBillingMetricsResponse *metrics(int days, int months)
{
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__GetBillingMetricsResponse *m;
    tw_err err = tw_billing_metrics(&c, days, months, &m);
    ck_assert_msg(err == TW_OK, "%s %s", tw_err_name(err), bx_bad(&c));
    return m;
}

static const Tw__V1__PlanFigures *plan_figures(const Tw__V1__GetBillingMetricsResponse *m,
                                               const char *id)
{
    for (size_t i = 0; i < m->n_plans; i++)
        if (strcmp(m->plans[i]->plan_id, id) == 0)
            return m->plans[i];
    return NULL;
}

START_TEST(figures_of_a_day_of_billing)
{
    bx_plan(bx.billing, "premium", 1000, -1, 900);
    Tw__V1__Plan in = TW__V1__PLAN__INIT, *yearly;
    Tw__V1__PlanPrice p = TW__V1__PLAN_PRICE__INIT, *prices[] = {&p};
    p.currency = "USD";
    p.amount_minor = 12000;
    in.id = "yearly";
    in.name = "Yearly";
    in.description = "";
    in.interval = TW__V1__BILLING_INTERVAL__BILLING_INTERVAL_YEAR;
    in.prices = prices;
    in.n_prices = 1;
    c = bx_ctx(bx.billing, &fx_alice);
    ck_assert_int_eq(tw_billing_create_plan(&c, &in, "", &yearly), TW_OK);
    tw_id carol = {{0x01, 0xca}};
    subscribe(&fx_alice, "premium");
    subscribe(&fx_bob, "yearly");
    subscribe(&carol, "premium");
    c = bx_ctx(bx.billing, &carol);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_cancel_subscription(&c, true, &s), TW_OK);
    bx_deliver_from(bx.billing, 0, false);

    Tw__V1__GetBillingMetricsResponse *m = metrics(7, 1);
    ck_assert_uint_eq(m->n_days, 7);
    const Tw__V1__DailyBillingFigures *today = m->days[6];
    ck_assert_int_eq(today->new_subscriptions, 3);
    ck_assert_int_eq(today->cancellations, 1);
    ck_assert_int_eq(today->payments_succeeded, 3);
    ck_assert_int_eq(today->payments_failed, 0);
    ck_assert_int_eq(m->days[5]->new_subscriptions, 0);
    ck_assert_uint_eq(strlen(today->date), 10);
    /* Live by plan, and MRR: a yearly price counts a twelfth. */
    const Tw__V1__PlanFigures *premium = plan_figures(m, "premium");
    ck_assert_ptr_nonnull(premium);
    ck_assert_int_eq(premium->active, 1);
    ck_assert_uint_eq(premium->n_mrr, 1);
    ck_assert_str_eq(premium->mrr[0]->currency, "USD");
    ck_assert_int_eq(premium->mrr[0]->amount_minor, 1000);
    const Tw__V1__PlanFigures *y = plan_figures(m, "yearly");
    ck_assert_int_eq(y->active, 1);
    ck_assert_int_eq(y->mrr[0]->amount_minor, 1000);
    ck_assert_ptr_null(plan_figures(m, "free"));
    /* This month: nobody was live when it began. */
    ck_assert_uint_eq(m->n_churn, 1);
    ck_assert_int_eq(m->churn[0]->live_at_start, 0);
    ck_assert_int_eq(m->churn[0]->ended, 1);
    ck_assert(m->churn[0]->rate == 0);
    /* Webhook events by type and outcome. */
    bool seen = false;
    for (size_t i = 0; i < m->n_webhook_events; i++) {
        const Tw__V1__WebhookEventCount *w = m->webhook_events[i];
        ck_assert_int_gt(w->count, 0);
        if (strcmp(w->type, "invoice.paid") == 0 && strcmp(w->outcome, "processed") == 0) {
            ck_assert_int_eq(w->count, 3);
            seen = true;
        }
    }
    ck_assert(seen);

    /* Next month: one of the two live ones ends. */
    atomic_store(&fx.clock.ms,
                 billing_add_interval(billing_month_start(bx_now()), INTERVAL_MONTH, 1) + DAY);
    c = bx_ctx(bx.billing, &fx_bob);
    ck_assert_int_eq(tw_billing_cancel_subscription(&c, true, &s), TW_OK);
    m = metrics(0, 2);
    ck_assert_uint_eq(m->n_days, 30);
    ck_assert_uint_eq(m->n_churn, 2);
    ck_assert_int_eq(m->churn[1]->live_at_start, 2);
    ck_assert_int_eq(m->churn[1]->ended, 1);
    ck_assert(m->churn[1]->rate == 0.5);
    ck_assert_int_eq(m->churn[0]->live_at_start, 0);
    ck_assert_ptr_null(plan_figures(m, "yearly"));
}
END_TEST

START_TEST(the_request_is_bounded)
{
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__GetBillingMetricsResponse *m;
    ck_assert_int_eq(tw_billing_metrics(&c, -1, 0, &m), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "days");
    ck_assert_int_eq(tw_billing_metrics(&c, 367, 0, &m), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "days");
    ck_assert_int_eq(tw_billing_metrics(&c, 0, 13, &m), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "months");
    ck_assert_int_eq(tw_billing_metrics(&c, -1, 13, &m), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "days,months");
    ck_assert_int_eq(tw_billing_metrics(&c, 366, 12, &m), TW_OK);
    ck_assert_uint_eq(m->n_days, 366);
    ck_assert_uint_eq(m->n_churn, 12);
    m = metrics(0, 0);
    ck_assert_uint_eq(m->n_days, 30);
    ck_assert_uint_eq(m->n_churn, 3);
    ck_assert_uint_eq(m->n_plans, 0);
}
END_TEST

START_TEST(an_export_holds_every_record_of_the_user)
{
    bx_plan(bx.billing, "premium", 1000, -1, -1);
    subscribe(&fx_alice, "premium");
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__PaymentMethod *pm;
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_mastercard", "", &pm), TW_OK);
    ck_assert_int_eq(
        tw_billing_usage_consume(bx.billing, &fx_alice, TW_RESOURCE_AI_REQUESTS, 7, bx_now(), NULL),
        TW_OK);
    Tw__V1__ExportBillingRecordsResponse *e;
    ck_assert_int_eq(tw_billing_export(&c, &e), TW_OK);
    ck_assert_str_eq(e->subscription->plan_id, "premium");
    ck_assert_uint_eq(e->n_payments, 1);
    ck_assert_uint_eq(e->n_payment_methods, 2);
    ck_assert_ptr_null(e->student_verification);
    ck_assert_uint_eq(e->n_usages, 4);
    ck_assert_int_eq(e->usages[TW_RESOURCE_AI_REQUESTS - 1]->used, 7);
    ck_assert(strncmp(e->stripe_customer_id, "cus_", 4) == 0);
    /* A user without billing: the free plan and nothing else. */
    c = bx_ctx(bx.billing, &fx_bob);
    ck_assert_int_eq(tw_billing_export(&c, &e), TW_OK);
    ck_assert_str_eq(e->subscription->plan_id, "free");
    ck_assert_uint_eq(e->n_payments, 0);
    ck_assert_str_eq(e->stripe_customer_id, "");
    ck_assert_str_eq(c.why.message, "");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("billing_metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_checked_fixture(tc, bx_setup, bx_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, figures_of_a_day_of_billing);
    tcase_add_test(tc, the_request_is_bounded);
    tcase_add_test(tc, an_export_holds_every_record_of_the_user);
    suite_add_tcase(s, tc);
    return s;
}
