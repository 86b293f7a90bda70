/*
 * Unit tests for server/billing/payments.c: Stripe's invoice, payment
 * intent and charge merged into one payment in any order with each
 * attempt, failure and refund counted once; the hourly attempt alerts;
 * refunds (part, the rest, a retry that refunds once, too much); a failed
 * invoice charged again; payment methods attached (the first the
 * default), listed, made default, detached, read again from Stripe on
 * events; cards marked expired by their job; another user's ids.
 */
#include "billing/billing_internal.h"
#include "billing_fixture.h"

#include "tw_check.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define PAY(x) TW__V1__PAYMENT_STATUS__PAYMENT_STATUS_##x

static tw_billing_ctx c;

static Tw__V1__Payment *only_payment(const tw_id *user)
{
    c = bx_ctx(bx.billing, user);
    Tw__V1__ListPaymentsResponse *r;
    ck_assert_int_eq(tw_billing_list_payments(&c, bx_page(0), &r), TW_OK);
    ck_assert_uint_eq(r->n_payments, 1);
    return r->payments[0];
}

static tw_stripe_invoice invoice(const char *status, int attempts)
{
    return (tw_stripe_invoice){.id = "in_1",
                               .customer = "cus_1",
                               .subscription = "sub_1",
                               .status = status,
                               .amount_due = 1500,
                               .amount_paid = 0,
                               .currency = "USD",
                               .payment_intent = "pi_1",
                               .charge = "",
                               .billing_reason = "subscription_cycle",
                               .attempt_count = attempts,
                               .created_ms = 1700000000000};
}

static tw_stripe_payment_intent intent(const char *status, const char *failure)
{
    return (tw_stripe_payment_intent){.id = "pi_1",
                                      .customer = "cus_1",
                                      .invoice = "in_1",
                                      .status = status,
                                      .amount = 1500,
                                      .currency = "USD",
                                      .failure_message = failure,
                                      .created_ms = 1700000001000};
}

static tw_stripe_charge charge(int64_t refunded)
{
    return (tw_stripe_charge){.id = "ch_1",
                              .customer = "cus_1",
                              .invoice = "in_1",
                              .payment_intent = "pi_1",
                              .status = "succeeded",
                              .amount = 1500,
                              .amount_refunded = refunded,
                              .refunded = refunded == 1500,
                              .currency = "USD",
                              .failure_message = "",
                              .created_ms = 1700000002000};
}

/* Applies Stripe's view of one payment's life to user, in an order given
 * as a permutation of its 6 steps. */
static void apply(const tw_id *user, const int order[6])
{
    c = bx_ctx(bx.billing, user);
    for (int i = 0; i < 6; i++) {
        tw_stripe_invoice failed = invoice("open", 1), paid = invoice("paid", 2);
        tw_stripe_payment_intent pi_failed = intent("requires_payment_method", "Card declined");
        tw_stripe_payment_intent pi_ok = intent("succeeded", "");
        tw_stripe_charge refunded = charge(500);
        switch (order[i]) {
        case 0:
            ck_assert_int_eq(billing_merge_invoice(&c, &failed), TW_OK);
            break;
        case 1:
            ck_assert_int_eq(billing_merge_payment_intent(&c, &pi_failed), TW_OK);
            break;
        case 2:
            ck_assert_int_eq(billing_merge_invoice(&c, &paid), TW_OK);
            break;
        case 3:
            ck_assert_int_eq(billing_merge_payment_intent(&c, &pi_ok), TW_OK);
            break;
        case 4:
            ck_assert_int_eq(billing_merge_charge(&c, &refunded), TW_OK);
            break;
        case 5:
            ck_assert_int_eq(billing_merge_invoice(&c, &paid), TW_OK);
            break;
        }
    }
}

START_TEST(one_payment_whatever_the_order_of_its_events)
{
    const int forward[6] = {0, 1, 2, 3, 4, 5}, backward[6] = {5, 4, 3, 2, 1, 0},
              shuffled[6] = {3, 0, 4, 2, 5, 1};
    apply(&fx_alice, forward);
    Tw__V1__Payment *a = only_payment(&fx_alice);
    ck_assert_str_eq(a->id, "in_1");
    ck_assert_int_eq(a->status, PAY(PARTIALLY_REFUNDED));
    ck_assert_int_eq(a->amount_minor, 1500);
    ck_assert_int_eq(a->refunded_minor, 500);
    ck_assert_int_eq(a->attempt_count, 2);
    ck_assert_str_eq(a->failure_message, "");
    ck_assert_str_eq(a->payment_intent_id, "pi_1");
    ck_assert_str_eq(a->stripe_subscription_id, "sub_1");
    ck_assert_int_eq(a->create_time->seconds, 1700000000);
    /* Counted once: two attempts, one failed, one refund of 500. */
    ck_assert_int_eq(bx_today("billing_payments", "status=succeeded"), 1);
    ck_assert_int_eq(bx_today("billing_payments", "status=failed"), 1);
    ck_assert_int_eq(bx_today("billing_refunds", ""), 1);
    ck_assert_int_eq(bx_today("billing_refunded_minor", "currency=USD"), 500);
    apply(&fx_bob, backward);
    Tw__V1__Payment *b = only_payment(&fx_bob);
    tw_id carol = {{0x01, 0xca}};
    apply(&carol, shuffled);
    Tw__V1__Payment *k = only_payment(&carol);
    const Tw__V1__Payment *all[] = {b, k};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(all[i]->status, a->status);
        ck_assert_int_eq(all[i]->refunded_minor, a->refunded_minor);
        ck_assert_int_eq(all[i]->attempt_count, a->attempt_count);
        ck_assert_str_eq(all[i]->failure_message, a->failure_message);
        ck_assert_int_eq(all[i]->create_time->seconds, a->create_time->seconds);
    }
    ck_assert_int_eq(bx_today("billing_payments", "status=succeeded"), 3);
    ck_assert_int_eq(bx_today("billing_payments", "status=failed"), 3);
    ck_assert_int_eq(bx_today("billing_refunds", ""), 3);
    ck_assert_int_eq(bx_today("billing_refunded_minor", "currency=USD"), 1500);
}
END_TEST

START_TEST(a_failure_keeps_its_message_until_paid)
{
    c = bx_ctx(bx.billing, &fx_alice);
    tw_stripe_payment_intent pi = intent("requires_payment_method", "Insufficient funds");
    ck_assert_int_eq(billing_merge_payment_intent(&c, &pi), TW_OK);
    Tw__V1__Payment *p = only_payment(&fx_alice);
    ck_assert_int_eq(p->status, PAY(FAILED));
    ck_assert_str_eq(p->failure_message, "Insufficient funds");
    ck_assert_int_eq(p->attempt_count, 1);
}
END_TEST

START_TEST(many_failures_in_an_hour_raise_an_alert)
{
    c = bx_ctx(bx.billing, &fx_alice);
    for (int i = 1; i <= 6; i++) {
        tw_stripe_invoice inv = invoice("open", i);
        ck_assert_int_eq(billing_merge_invoice(&c, &inv), TW_OK);
    }
    Tw__V1__GetBillingMetricsResponse *m;
    ck_assert_int_eq(tw_billing_metrics(&c, 1, 1, &m), TW_OK);
    ck_assert_uint_eq(m->n_alerts, 2);
    /* More than 3 failures, and more than 5 attempts, in this hour. */
    ck_assert_str_eq(m->alerts[0]->kind, "payment_failures");
    ck_assert_str_eq(m->alerts[1]->kind, "payment_attempts");
    ck_assert_int_eq(m->alerts[0]->time->seconds % 3600, 0);
    ck_assert_int_eq(m->days[0]->payments_failed, 6);
}
END_TEST

/* Alice subscribed to premium (1000 cents) with a visa; her payment. */
static Tw__V1__Payment *subscribed(void)
{
    bx_plan(bx.billing, "premium", 1000, -1, -1);
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__Subscription *s;
    tw_err err = tw_billing_create_subscription(&c, "premium", "pm_card_visa", "", "s", &s);
    ck_assert_msg(err == TW_OK, "%s %s", tw_err_name(err), c.why.message);
    return only_payment(&fx_alice);
}

START_TEST(refunds_in_part_in_full_and_once_per_request)
{
    Tw__V1__Payment *p = subscribed();
    ck_assert_int_eq(p->status, PAY(SUCCEEDED));
    c = bx_ctx(bx.billing, &fx_alice);
    ck_assert_int_eq(tw_billing_refund_payment(&c, p->id, 1001, "r-0", &p), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "amount_minor");
    ck_assert_int_eq(tw_billing_refund_payment(&c, p->id, 400, "r-1", &p), TW_OK);
    ck_assert_int_eq(p->status, PAY(PARTIALLY_REFUNDED));
    ck_assert_int_eq(p->refunded_minor, 400);
    /* The same request again: no second refund. */
    ck_assert_int_eq(tw_billing_refund_payment(&c, p->id, 400, "r-1", &p), TW_OK);
    ck_assert_int_eq(p->refunded_minor, 400);
    ck_assert_uint_eq(bx_stripe_count("refund"), 1);
    /* The rest. */
    ck_assert_int_eq(tw_billing_refund_payment(&c, p->id, 0, "r-2", &p), TW_OK);
    ck_assert_int_eq(p->status, PAY(REFUNDED));
    ck_assert_int_eq(p->refunded_minor, 1000);
    /* Nothing is left: a new request_id is Stripe's to judge (it could be
     * the retry of a refund Stripe made), and Stripe says so; without
     * one, refused here. */
    ck_assert_int_eq(tw_billing_refund_payment(&c, p->id, 0, "r-3", &p), TW_ERR_PAY_REFUSED);
    ck_assert_int_eq(tw_billing_refund_payment(&c, p->id, 0, "", &p),
                     TW_ERR_FAILED_PRECONDITION);
    ck_assert_uint_eq(bx_stripe_count("refund"), 2);
    ck_assert_int_eq(bx_today("billing_refunds", ""), 2);
    ck_assert_int_eq(bx_today("billing_refunded_minor", "currency=USD"), 1000);
    /* Stripe's charge.refunded events change nothing more. */
    bx_deliver_from(bx.billing, 0, false);
    p = only_payment(&fx_alice);
    ck_assert_int_eq(p->refunded_minor, 1000);
    ck_assert_int_eq(bx_today("billing_refunds", ""), 2);
    /* Another user's payment is not found. */
    c = bx_ctx(bx.billing, &fx_bob);
    ck_assert_int_eq(tw_billing_refund_payment(&c, p->id, 0, "", &p), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_billing_refund_payment(&c, "in_../x", 0, "", &p), TW_ERR_VALIDATION);
    /* Without Stripe, nothing to refund through. */
    c = bx_ctx(bx.local, &fx_alice);
    ck_assert_int_eq(tw_billing_refund_payment(&c, "in_1", 0, "", &p), TW_ERR_PAY_DISABLED);
}
END_TEST

START_TEST(a_failed_renewal_is_charged_again)
{
    subscribed();
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_get_subscription(&c, &s), TW_OK);
    /* The bank refuses the card at renewal. */
    size_t seen = bx_event_count();
    char body[256];
    snprintf(body, sizeof body, "{\"subscription\": \"%s\", \"decline\": \"do_not_honor\"}",
             s->stripe_subscription_id);
    json_decref(fx_fake_control(&bx.stripe, "POST", "/_advance", body));
    bx_deliver_from(bx.billing, seen, false);
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__ListPaymentsResponse *list;
    ck_assert_int_eq(tw_billing_list_payments(&c, bx_page(0), &list), TW_OK);
    ck_assert_uint_eq(list->n_payments, 2);
    Tw__V1__Payment *renewal = list->payments[0];
    ck_assert_int_eq(renewal->status, PAY(FAILED));
    ck_assert_str_eq(renewal->failure_message, "Your card was declined.");
    ck_assert_int_eq(renewal->attempt_count, 1);
    ck_assert_int_eq(tw_billing_get_subscription(&c, &s), TW_OK);
    ck_assert_int_eq(s->status, TW_SUB_PAST_DUE);
    ck_assert_int_eq(bx_gauge("billing_live", "plan=premium,status=past_due"), 1);
    /* Past due keeps the plan while Stripe retries. */
    tw_billing_entitlement e;
    ck_assert_int_eq(tw_billing_entitlement_get(bx.billing, &fx_alice, bx_now(), fx.arena, &e),
                     TW_OK);
    ck_assert_str_eq(e.plan_id, "premium");
    /* An operator charges it again: the card works this time. */
    ck_assert_int_eq(tw_billing_retry_invoice(&c, renewal->id, &renewal), TW_OK);
    ck_assert_int_eq(renewal->status, PAY(SUCCEEDED));
    ck_assert_int_eq(renewal->attempt_count, 2);
    ck_assert_str_eq(renewal->failure_message, "");
    bx_deliver_from(bx.billing, seen, false);
    ck_assert_int_eq(tw_billing_get_subscription(&c, &s), TW_OK);
    ck_assert_int_eq(s->status, TW_SUB_ACTIVE);
    ck_assert_int_eq(bx_gauge("billing_live", "plan=premium,status=past_due"), 0);
    ck_assert_int_eq(bx_gauge("billing_live", "plan=premium,status=active"), 1);
    /* Paid: nothing to charge again; the first payment neither. */
    ck_assert_int_eq(tw_billing_retry_invoice(&c, renewal->id, &renewal),
                     TW_ERR_FAILED_PRECONDITION);
    ck_assert_int_eq(tw_billing_retry_invoice(&c, "in_unknown", &renewal), TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(payment_methods_attach_default_list_and_detach)
{
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__PaymentMethod *visa, *mc, *got;
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_visa", "", &visa), TW_OK);
    ck_assert(visa->is_default); /* the first one */
    ck_assert_str_eq(visa->card_brand, "visa");
    ck_assert_str_eq(visa->card_last4, "4242");
    ck_assert(!visa->expired);
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_mastercard", "", &mc), TW_OK);
    ck_assert(!mc->is_default);
    Tw__V1__ListPaymentMethodsResponse *r;
    ck_assert_int_eq(tw_billing_list_payment_methods(&c, bx_page(0), &r), TW_OK);
    ck_assert_uint_eq(r->n_payment_methods, 2);
    ck_assert_int_eq(tw_billing_set_default_payment_method(&c, mc->id, &got), TW_OK);
    ck_assert(got->is_default);
    tw_billing_page *first = bx_page(1);
    ck_assert_int_eq(tw_billing_list_payment_methods(&c, first, &r), TW_OK);
    ck_assert_uint_eq(r->n_payment_methods, 1);
    ck_assert_ptr_nonnull(first->next);
    /* Stripe's customer says so too. */
    tw_key k;
    billing_account_key(&k, &fx_alice);
    tw_value v;
    ck_assert_int_eq(tw_store_get(fx.store, &k, fx.arena, &v), TW_OK);
    const Tw__Store__V1__BillingAccountRecord *a = (const void *)v.msg;
    tw_stripe_customer cus;
    ck_assert_int_eq(tw_stripe_customer_get(bx.client, a->stripe_customer_id, fx.arena, &cus, NULL),
                     TW_OK);
    ck_assert_str_eq(cus.default_payment_method, mc->id);
    /* Detach: gone here and at Stripe. */
    ck_assert_int_eq(tw_billing_detach_payment_method(&c, visa->id), TW_OK);
    ck_assert_int_eq(tw_billing_list_payment_methods(&c, bx_page(0), &r), TW_OK);
    ck_assert_uint_eq(r->n_payment_methods, 1);
    ck_assert_str_eq(r->payment_methods[0]->id, mc->id);
    tw_stripe_payment_method pm;
    ck_assert_int_eq(tw_stripe_payment_method_get(bx.client, visa->id, fx.arena, &pm, NULL), TW_OK);
    ck_assert_str_eq(pm.customer, "");
    /* Another user's, or none. */
    c = bx_ctx(bx.billing, &fx_bob);
    ck_assert_int_eq(tw_billing_detach_payment_method(&c, mc->id), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_billing_set_default_payment_method(&c, mc->id, &got), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "", "", &got), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "payment_method_id");
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_missing", "", &got),
                     TW_ERR_NOT_FOUND);
    /* A card attached to alice cannot be taken by bob: to him it does not
     * exist. */
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, mc->id, "", &got), TW_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(c.why.message, "not found"));
    ck_assert_ptr_null(strstr(c.why.message, "attached"));
}
END_TEST

START_TEST(the_default_card_of_a_live_subscription_stays)
{
    subscribed();
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__ListPaymentMethodsResponse *r;
    ck_assert_int_eq(tw_billing_list_payment_methods(&c, bx_page(0), &r), TW_OK);
    ck_assert_int_eq(tw_billing_detach_payment_method(&c, r->payment_methods[0]->id),
                     TW_ERR_FAILED_PRECONDITION);
}
END_TEST

START_TEST(events_bring_payment_methods_as_stripe_has_them)
{
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__PaymentMethod *visa;
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_visa", "", &visa), TW_OK);
    tw_key k;
    billing_account_key(&k, &fx_alice);
    tw_value v;
    ck_assert_int_eq(tw_store_get(fx.store, &k, fx.arena, &v), TW_OK);
    const char *customer = ((const Tw__Store__V1__BillingAccountRecord *)v.msg)->stripe_customer_id;
    /* Attached and detached at Stripe directly. */
    tw_stripe_payment_method mc;
    ck_assert_int_eq(tw_stripe_payment_method_attach(bx.client, "pm_card_mastercard", customer,
                                                     NULL, fx.arena, &mc, NULL),
                     TW_OK);
    ck_assert_int_eq(
        tw_stripe_payment_method_detach(bx.client, visa->id, NULL, fx.arena, &mc, NULL), TW_OK);
    bx_deliver_from(bx.billing, 0, true); /* newest first */
    Tw__V1__ListPaymentMethodsResponse *r;
    ck_assert_int_eq(tw_billing_list_payment_methods(&c, bx_page(0), &r), TW_OK);
    ck_assert_uint_eq(r->n_payment_methods, 1);
    ck_assert_str_eq(r->payment_methods[0]->card_brand, "mastercard");
    ck_assert(!r->payment_methods[0]->is_default);
}
END_TEST

START_TEST(a_card_is_marked_expired_when_its_month_ends)
{
    c = bx_ctx(bx.billing, &fx_alice);
    /* A card the app made that expires at the end of this month. */
    time_t now = (time_t)(bx_now() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    char spec[128];
    snprintf(spec, sizeof spec,
             "{\"brand\": \"amex\", \"last4\": \"0005\", \"exp_month\": %d, \"exp_year\": %d}",
             tm.tm_mon + 1, tm.tm_year + 1900);
    json_t *card = fx_fake_control(&bx.stripe, "POST", "/_payment_methods", spec);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(card, "id")));
    json_decref(card);
    Tw__V1__PaymentMethod *pm;
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, id, "", &pm), TW_OK);
    ck_assert(!pm->expired);
    ck_assert_int_eq(bx_run_jobs(bx.billing), 0); /* not due */
    bx_advance(32LL * 86400000);
    ck_assert_int_eq(bx_run_jobs(bx.billing), 1);
    Tw__V1__ListPaymentMethodsResponse *r;
    ck_assert_int_eq(tw_billing_list_payment_methods(&c, bx_page(0), &r), TW_OK);
    ck_assert(r->payment_methods[0]->expired);
    ck_assert_int_eq(r->payment_methods[0]->card_exp_month, tm.tm_mon + 1);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("billing_payments");
    TCase *tc = tcase_create("payments");
    tcase_add_checked_fixture(tc, bx_setup, bx_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, one_payment_whatever_the_order_of_its_events);
    tcase_add_test(tc, a_failure_keeps_its_message_until_paid);
    tcase_add_test(tc, many_failures_in_an_hour_raise_an_alert);
    tcase_add_test(tc, refunds_in_part_in_full_and_once_per_request);
    tcase_add_test(tc, a_failed_renewal_is_charged_again);
    tcase_add_test(tc, payment_methods_attach_default_list_and_detach);
    tcase_add_test(tc, the_default_card_of_a_live_subscription_stays);
    tcase_add_test(tc, events_bring_payment_methods_as_stripe_has_them);
    tcase_add_test(tc, a_card_is_marked_expired_when_its_month_ends);
    suite_add_tcase(s, tc);
    return s;
}
