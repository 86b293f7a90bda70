/*
 * Unit tests for server/billing/account.c on a real store and
 * fake_stripe.py: subscribing charges once (the customer made once, the
 * subscription once, also when the answer is lost and the client retries,
 * or the server died between the call and its record), a declined card,
 * plan changes, cancellation and resumption, the live gauges and day
 * counters, granted plans of the embedded default and their end,
 * suspension and re-sync, a second live subscription made at Stripe, and
 * a plan's new price reaching subscribers at their renewal.
 */
#include "billing_fixture.h"

#include "tw_check.h"

#include <openssl/sha.h>

#include <stdio.h>
#include <string.h>

static tw_billing_ctx c;

static tw_err create(tw_billing *b, const tw_id *user, const char *plan, const char *pm,
                     const char *request_id, Tw__V1__Subscription **out)
{
    c = bx_ctx(b, user);
    /* What the service kit hands billing with a request_id: a hash of the
     * request without it (here, of what it asks). */
    if (request_id[0] != '\0') {
        uint8_t *hash = tw_arena_alloc(fx.arena, SHA256_DIGEST_LENGTH);
        char *asked = tw_arena_printf(fx.arena, "%s\n%s", plan, pm);
        ck_assert_ptr_nonnull(hash);
        ck_assert_ptr_nonnull(asked);
        SHA256((const unsigned char *)asked, strlen(asked), hash);
        c.request_sha256 = hash;
    }
    return tw_billing_create_subscription(&c, plan, pm, "", request_id, out);
}

static Tw__V1__Subscription *must_create(const tw_id *user, const char *plan, const char *pm,
                                         const char *request_id)
{
    Tw__V1__Subscription *s;
    tw_err err = create(bx.billing, user, plan, pm, request_id, &s);
    ck_assert_msg(err == TW_OK, "create: %s %s %s", tw_err_name(err), bx_bad(&c), c.why.message);
    return s;
}

static Tw__V1__Subscription *get(const tw_id *user)
{
    c = bx_ctx(bx.billing, user);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_get_subscription(&c, &s), TW_OK);
    return s;
}

static tw_billing_entitlement entitlement(const tw_id *user)
{
    tw_billing_entitlement e;
    ck_assert_int_eq(tw_billing_entitlement_get(bx.billing, user, bx_now(), fx.arena, &e), TW_OK);
    return e;
}

static int64_t ms(const Google__Protobuf__Timestamp *t)
{
    return t->seconds * 1000 + t->nanos / 1000000;
}

START_TEST(subscribing_charges_once_and_entitles_at_once)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    ck_assert_str_eq(entitlement(&fx_alice).plan_id, "free");
    Tw__V1__Subscription *s = must_create(&fx_alice, "premium", "pm_card_visa", "sub-1");
    ck_assert_str_eq(s->plan_id, "premium");
    ck_assert_int_eq(s->status, TW_SUB_ACTIVE);
    ck_assert_int_eq(s->provider, TW__V1__SUBSCRIPTION_PROVIDER__SUBSCRIPTION_PROVIDER_STRIPE);
    ck_assert_int_eq(s->price->amount_minor, 999);
    ck_assert_str_eq(s->price->currency, "USD");
    ck_assert(strncmp(s->stripe_subscription_id, "sub_", 4) == 0);
    ck_assert_int_gt(ms(s->current_period_end_time), ms(s->current_period_start_time));
    ck_assert_uint_eq(bx_stripe_count("customer"), 1);
    ck_assert_uint_eq(bx_stripe_count("subscription"), 1);

    /* Entitled at once, with the plan's limits. */
    tw_billing_entitlement e = entitlement(&fx_alice);
    ck_assert_str_eq(e.plan_id, "premium");
    ck_assert_int_eq(e.limits[TW_RESOURCE_API_CALLS], 1000);
    ck_assert_int_eq(e.period_end_ms, ms(s->current_period_end_time));

    /* Counted once: gauges and today's new subscriptions. */
    ck_assert_int_eq(bx_gauge("billing_live", "plan=premium,status=active"), 1);
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 1);
    ck_assert_int_eq(bx_gauge("billing_mrr_minor", "plan=premium,currency=USD"), 999);
    ck_assert_int_eq(bx_today("billing_new_subscriptions", "plan=premium"), 1);
    /* The first payment is recorded before its webhook arrives. */
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__ListPaymentsResponse *pays;
    ck_assert_int_eq(tw_billing_list_payments(&c, bx_page(0), &pays), TW_OK);
    ck_assert_uint_eq(pays->n_payments, 1);
    ck_assert_int_eq(pays->payments[0]->status, TW__V1__PAYMENT_STATUS__PAYMENT_STATUS_SUCCEEDED);
    ck_assert_int_eq(pays->payments[0]->amount_minor, 999);
    ck_assert_int_eq(bx_today("billing_payments", "status=succeeded"), 1);

    /* A retry answers the same subscription; nothing more is made. */
    Tw__V1__Subscription *again = must_create(&fx_alice, "premium", "pm_card_visa", "sub-1");
    ck_assert_str_eq(again->id, s->id);
    ck_assert_uint_eq(bx_stripe_count("subscription"), 1);
    ck_assert_int_eq(bx_today("billing_new_subscriptions", "plan=premium"), 1);
    ck_assert_str_eq(get(&fx_alice)->id, s->id);

    /* Another request: one live subscription per user. */
    ck_assert_int_eq(create(bx.billing, &fx_alice, "premium", "", "sub-2", &again),
                     TW_ERR_ALREADY_EXISTS);
    ck_assert_ptr_nonnull(strstr(c.why.message, "use ChangePlan"));
    /* Applying Stripe's events changes nothing more. */
    bx_deliver_from(bx.billing, 0, false);
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 1);
    ck_assert_int_eq(bx_today("billing_payments", "status=succeeded"), 1);
    ck_assert_str_eq(get(&fx_alice)->id, s->id);
}
END_TEST

START_TEST(the_customer_is_made_once_per_user)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__PaymentMethod *pm;
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_visa", "a-1", &pm), TW_OK);
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_mastercard", "a-2", &pm), TW_OK);
    must_create(&fx_alice, "premium", "", "sub-1");
    must_create(&fx_bob, "premium", "pm_card_visa", "sub-1");
    ck_assert_uint_eq(bx_stripe_count("customer"), 2);
    ck_assert_uint_eq(bx_stripe_count("subscription"), 2);
}
END_TEST

START_TEST(a_declined_card_is_pay_001_and_leaves_the_way_open)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(create(bx.billing, &fx_alice, "premium", "pm_card_chargeDeclined", "r-1", &s),
                     TW_ERR_PAY_CARD_DECLINED);
    ck_assert_str_eq(c.why.message, "Your card was declined.");
    ck_assert_uint_eq(bx_stripe_count("subscription"), 0);
    ck_assert_int_eq(get(&fx_alice)->status, TW_SUB_ACTIVE);
    ck_assert_str_eq(get(&fx_alice)->plan_id, "free");
    ck_assert_int_eq(bx_today("billing_payments", "status=failed"), 1);
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 0);
    /* The same request again: Stripe answers the same decline. */
    ck_assert_int_eq(create(bx.billing, &fx_alice, "premium", "pm_card_chargeDeclined", "r-1", &s),
                     TW_ERR_PAY_CARD_DECLINED);
    /* Another card, another request: it goes through. */
    s = must_create(&fx_alice, "premium", "pm_card_visa", "r-2");
    ck_assert_int_eq(s->status, TW_SUB_ACTIVE);
    ck_assert_uint_eq(bx_stripe_count("subscription"), 1);
}
END_TEST

/* A billing whose Stripe calls give up at once: one attempt, 300 ms. */
static tw_billing *impatient(tw_stripe **client)
{
    tw_stripe_config sc = {.base_url = bx.stripe.base_url,
                           .secret_key = BX_KEY,
                           .policy = {.timeout_ms = 300, .max_attempts = 1}};
    ck_assert_int_eq(tw_stripe_new(&sc, client), TW_OK);
    tw_billing_config cfg = {.store = fx.store, .stripe = *client};
    tw_billing *b;
    ck_assert_int_eq(tw_billing_new(&cfg, &b), TW_OK);
    return b;
}

START_TEST(a_lost_answer_and_the_retry_make_one_subscription)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__PaymentMethod *pm;
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_visa", "", &pm), TW_OK);
    /* Stripe makes the subscription, but its answer never comes. */
    tw_stripe *client;
    tw_billing *b = impatient(&client);
    fx_fake_script(&bx.stripe, "[{\"hang_ms\": 2000, \"process\": true}]");
    Tw__V1__Subscription *s;
    ck_assert_int_eq(create(b, &fx_alice, "premium", "", "sub-1", &s), TW_ERR_UPSTREAM);
    ck_assert_ptr_nonnull(strstr(c.why.message, "retry with the same request_id"));
    ck_assert_uint_eq(bx_stripe_count("subscription"), 1);
    ck_assert_str_eq(get(&fx_alice)->plan_id, "free");

    /* Another request while that one may still run: refused. */
    ck_assert_int_eq(create(bx.billing, &fx_alice, "premium", "", "sub-2", &s), TW_ERR_CONFLICT);
    /* The client's retry: the same key, so Stripe answers what it made. */
    s = must_create(&fx_alice, "premium", "", "sub-1");
    ck_assert_int_eq(s->status, TW_SUB_ACTIVE);
    ck_assert_uint_eq(bx_stripe_count("subscription"), 1);
    ck_assert_uint_eq(bx_stripe_count("customer"), 1);
    json_t *reqs = fx_fake_requests(&bx.stripe);
    size_t posts = 0;
    for (size_t i = 0; i < json_array_size(reqs); i++) {
        json_t *r = json_array_get(reqs, i);
        if (strcmp(json_string_value(json_object_get(r, "path")), "/v1/subscriptions") == 0 &&
            strcmp(json_string_value(json_object_get(r, "method")), "POST") == 0)
            posts++;
    }
    json_decref(reqs);
    ck_assert_uint_eq(posts, 2); /* sent twice, made once */
    tw_billing_free(b);
    tw_stripe_free(client);
}
END_TEST

START_TEST(after_a_crash_another_request_finds_what_stripe_made)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__PaymentMethod *pm;
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_visa", "", &pm), TW_OK);
    tw_stripe *client;
    tw_billing *b = impatient(&client);
    fx_fake_script(&bx.stripe, "[{\"hang_ms\": 2000, \"process\": true}]");
    Tw__V1__Subscription *s;
    ck_assert_int_eq(create(b, &fx_alice, "premium", "", "lost", &s), TW_ERR_UPSTREAM);
    /* The client never retries; minutes later it sends a new request. */
    bx_advance(3 * 60 * 1000);
    ck_assert_int_eq(create(bx.billing, &fx_alice, "premium", "", "new", &s),
                     TW_ERR_ALREADY_EXISTS);
    s = get(&fx_alice);
    ck_assert_str_eq(s->plan_id, "premium");
    ck_assert_int_eq(s->status, TW_SUB_ACTIVE);
    ck_assert_uint_eq(bx_stripe_count("subscription"), 1);
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 1);
    tw_billing_free(b);
    tw_stripe_free(client);
}
END_TEST

START_TEST(the_plan_changes_with_proration_and_once_per_request)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    bx_plan(bx.billing, "premium_plus", 1999, -1, -1);
    must_create(&fx_alice, "premium", "pm_card_visa", "s");
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_change_plan(&c, "premium_plus", "change-1", &s), TW_OK);
    ck_assert_str_eq(s->plan_id, "premium_plus");
    ck_assert_int_eq(s->price->amount_minor, 1999);
    ck_assert_ptr_null(s->renewal_price);
    ck_assert_int_eq(bx_gauge("billing_live", "plan=premium,status=active"), 0);
    ck_assert_int_eq(bx_gauge("billing_live", "plan=premium_plus,status=active"), 1);
    ck_assert_int_eq(bx_gauge("billing_mrr_minor", "plan=premium,currency=USD"), 0);
    ck_assert_int_eq(bx_gauge("billing_mrr_minor", "plan=premium_plus,currency=USD"), 1999);
    ck_assert_str_eq(entitlement(&fx_alice).plan_id, "premium_plus");
    json_t *reqs = fx_fake_requests(&bx.stripe);
    json_t *last = json_array_get(reqs, json_array_size(reqs) - 1);
    char *form = json_dumps(json_object_get(last, "form"), JSON_COMPACT);
    ck_assert_ptr_nonnull(strstr(form, "[\"proration_behavior\",\"create_prorations\"]"));
    free(form);
    size_t before = json_array_size(reqs);
    json_decref(reqs);
    /* A retry sends nothing. */
    ck_assert_int_eq(tw_billing_change_plan(&c, "premium_plus", "change-1", &s), TW_OK);
    reqs = fx_fake_requests(&bx.stripe);
    ck_assert_uint_eq(json_array_size(reqs), before);
    json_decref(reqs);
    /* Refusals. */
    ck_assert_int_eq(tw_billing_change_plan(&c, "premium_plus", "change-2", &s),
                     TW_ERR_FAILED_PRECONDITION);
    ck_assert_int_eq(tw_billing_change_plan(&c, "free", "change-3", &s), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "plan_id");
    ck_assert_int_eq(tw_billing_change_plan(&c, "nope", "change-4", &s), TW_ERR_NOT_FOUND);
    c = bx_ctx(bx.billing, &fx_bob);
    ck_assert_int_eq(tw_billing_change_plan(&c, "premium", "", &s), TW_ERR_FAILED_PRECONDITION);
}
END_TEST

START_TEST(cancel_at_period_end_resume_and_the_end)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    Tw__V1__Subscription *s = must_create(&fx_alice, "premium", "pm_card_visa", "s");
    c = bx_ctx(bx.billing, &fx_alice);
    ck_assert_int_eq(tw_billing_resume_subscription(&c, &s), TW_ERR_FAILED_PRECONDITION);
    ck_assert_int_eq(tw_billing_cancel_subscription(&c, false, &s), TW_OK);
    ck_assert(s->cancel_at_period_end);
    ck_assert_int_eq(s->status, TW_SUB_ACTIVE);
    ck_assert_ptr_nonnull(s->cancel_time);
    /* Still entitled until the period ends. */
    tw_billing_entitlement e = entitlement(&fx_alice);
    ck_assert_str_eq(e.plan_id, "premium");
    ck_assert_int_eq(tw_billing_resume_subscription(&c, &s), TW_OK);
    ck_assert(!s->cancel_at_period_end);
    ck_assert_int_eq(tw_billing_cancel_subscription(&c, false, &s), TW_OK);

    /* The period ends at Stripe: its events end it here. */
    size_t seen = bx_event_count();
    bx_stripe_advance(s->stripe_subscription_id);
    bx_deliver_from(bx.billing, seen, false);
    s = get(&fx_alice);
    ck_assert_str_eq(s->plan_id, "free");
    ck_assert_str_eq(entitlement(&fx_alice).plan_id, "free");
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 0);
    ck_assert_int_eq(bx_gauge("billing_mrr_minor", "plan=premium,currency=USD"), 0);
    ck_assert_int_eq(bx_today("billing_cancellations", "plan=premium"), 1);
    ck_assert_int_eq(tw_billing_cancel_subscription(&c, false, &s), TW_ERR_FAILED_PRECONDITION);

    /* Subscribing again is a new subscription; ending it now is at once. */
    Tw__V1__Subscription *again = must_create(&fx_alice, "premium", "", "s-2");
    ck_assert_str_ne(again->id, s->id);
    c = bx_ctx(bx.billing, &fx_alice);
    ck_assert_int_eq(tw_billing_cancel_subscription(&c, true, &s), TW_OK);
    ck_assert_int_eq(s->status, TW_SUB_CANCELED);
    ck_assert_str_eq(s->id, again->id);
    ck_assert_str_eq(entitlement(&fx_alice).plan_id, "free");
    ck_assert_int_eq(bx_today("billing_cancellations", "plan=premium"), 2);
    ck_assert_int_eq(bx_today("billing_new_subscriptions", "plan=premium"), 2);
}
END_TEST

START_TEST(the_embedded_default_grants_and_revokes_plans)
{
    bx_plan(bx.local, "premium", 999, -1, -1);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(create(bx.local, &fx_alice, "premium", "pm_card_visa", "", &s),
                     TW_ERR_PAY_DISABLED);
    c = bx_ctx(bx.local, &fx_bob);
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "free", 0, &s), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "plan_id");
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "free", bx_now() - 1, &s),
                     TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "plan_id,end_time");
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "gold", 0, &s), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "premium", bx_now() - 1, &s),
                     TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "end_time");
    int64_t end = bx_now() + 3 * 86400000;
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "premium", end, &s), TW_OK);
    ck_assert_int_eq(s->status, TW_SUB_ACTIVE);
    ck_assert_int_eq(s->provider, TW__V1__SUBSCRIPTION_PROVIDER__SUBSCRIPTION_PROVIDER_LOCAL);
    ck_assert_int_eq(s->price->amount_minor, 0);
    ck_assert_str_eq(entitlement(&fx_bob).plan_id, "premium");
    ck_assert_int_eq(bx_gauge("billing_live", "plan=premium,status=active"), 1);
    ck_assert_int_eq(bx_gauge("billing_mrr_minor", "plan=premium,currency=USD"), 0);
    ck_assert_uint_eq(bx_stripe_count("customer"), 0);

    /* Its end: the entitlement lapses at once, the job ends it. */
    bx_advance(3 * 86400000 + 1);
    ck_assert_str_eq(entitlement(&fx_bob).plan_id, "free");
    ck_assert_int_eq(bx_run_jobs(bx.local), 1);
    c = bx_ctx(bx.local, &fx_bob);
    ck_assert_int_eq(tw_billing_get_subscription(&c, &s), TW_OK);
    ck_assert_str_eq(s->plan_id, "free");
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 0);

    /* Granted again, then revoked: at once; its old job does nothing. */
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "premium", 0, &s), TW_OK);
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "premium", 0, &s), TW_OK); /* replaces */
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 1);
    ck_assert_int_eq(tw_billing_revoke_subscription(&c, &s), TW_OK);
    ck_assert_int_eq(s->status, TW_SUB_CANCELED);
    ck_assert_int_eq(tw_billing_revoke_subscription(&c, &s), TW_ERR_FAILED_PRECONDITION);
    /* Today: the first grant's end and the revocation. */
    ck_assert_int_eq(bx_today("billing_cancellations", "plan=premium"), 2);
    /* The jobs of the replaced and revoked grants end nothing more. */
    bx_advance(40LL * 86400000);
    ck_assert_int_eq(bx_run_jobs(bx.local), 2);
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 0);
    ck_assert_int_eq(bx_today("billing_cancellations", "plan=premium"), 0);
}
END_TEST

START_TEST(a_stripe_subscriber_cannot_be_granted_over)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    must_create(&fx_alice, "premium", "pm_card_visa", "s");
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_grant_subscription(&c, "premium", 0, &s),
                     TW_ERR_FAILED_PRECONDITION);
    ck_assert_int_eq(tw_billing_revoke_subscription(&c, &s), TW_ERR_FAILED_PRECONDITION);
}
END_TEST

START_TEST(suspension_holds_until_an_operator_resyncs)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    Tw__V1__Subscription *s = must_create(&fx_alice, "premium", "pm_card_visa", "s");
    c = bx_ctx(bx.billing, &fx_alice);
    ck_assert_int_eq(tw_billing_suspend_subscription(&c, "", &s), TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_billing_suspend_subscription(&c, "chargeback fraud", &s), TW_OK);
    ck_assert_int_eq(s->status, TW_SUB_SUSPENDED);
    ck_assert_str_eq(s->suspend_reason, "chargeback fraud");
    ck_assert_str_eq(entitlement(&fx_alice).plan_id, "free");
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 0);
    ck_assert_int_eq(bx_today("billing_cancellations", "plan=premium"), 1);
    /* Collection is paused at Stripe. */
    json_t *state = fx_fake_control(&bx.stripe, "GET", "/_state", NULL);
    json_t *sub =
        json_object_get(json_object_get(json_object_get(state, "objects"), "subscription"),
                        s->stripe_subscription_id);
    ck_assert(json_is_object(json_object_get(sub, "pause_collection")));
    json_decref(state);
    /* Stripe's events do not undo it. */
    bx_deliver_from(bx.billing, 0, false);
    ck_assert_int_eq(get(&fx_alice)->status, TW_SUB_SUSPENDED);
    /* The user can do nothing with it. */
    ck_assert_int_eq(tw_billing_cancel_subscription(&c, false, &s), TW_ERR_FAILED_PRECONDITION);
    ck_assert_ptr_nonnull(strstr(c.why.message, "suspended"));
    /* An operator's re-sync reads Stripe again, and resumes collection. */
    ck_assert_int_eq(tw_billing_resync_subscription(&c, &s), TW_OK);
    ck_assert_int_eq(s->status, TW_SUB_ACTIVE);
    ck_assert_str_eq(s->suspend_reason, "");
    ck_assert_str_eq(entitlement(&fx_alice).plan_id, "premium");
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 1);
    state = fx_fake_control(&bx.stripe, "GET", "/_state", NULL);
    sub = json_object_get(json_object_get(json_object_get(state, "objects"), "subscription"),
                          s->stripe_subscription_id);
    ck_assert(json_is_null(json_object_get(sub, "pause_collection")));
    json_decref(state);
    c = bx_ctx(bx.billing, &fx_bob);
    ck_assert_int_eq(tw_billing_resync_subscription(&c, &s), TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(a_second_live_subscription_made_at_stripe_is_canceled)
{
    Tw__V1__Plan *plan = bx_plan(bx.billing, "premium", 999, -1, -1);
    Tw__V1__Subscription *s = must_create(&fx_alice, "premium", "pm_card_visa", "s");
    /* Someone makes a second one in Stripe's dashboard. */
    json_t *state = fx_fake_control(&bx.stripe, "GET", "/_state", NULL);
    const char *customer = NULL, *key;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(state, "objects"), "customer"), key, v)
        customer = key;
    tw_stripe_subscription_new n = {customer, plan->prices[0]->stripe_price_id, NULL, NULL,
                                    "premium"};
    tw_stripe_subscription dup;
    ck_assert_int_eq(tw_stripe_subscription_create(bx.client, &n, NULL, fx.arena, &dup, NULL),
                     TW_OK);
    json_decref(state);
    bx_deliver_from(bx.billing, 0, false);
    ck_assert_str_eq(get(&fx_alice)->stripe_subscription_id, s->stripe_subscription_id);
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 1);
    tw_stripe_subscription now;
    ck_assert_int_eq(tw_stripe_subscription_get(bx.client, dup.id, fx.arena, &now, NULL), TW_OK);
    ck_assert_str_eq(now.status, "canceled");
}
END_TEST

START_TEST(a_new_price_reaches_subscribers_at_their_renewal)
{
    bx_plan(bx.billing, "premium", 999, -1, -1);
    Tw__V1__Subscription *s = must_create(&fx_alice, "premium", "pm_card_visa", "s");
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__PlanPrice p = TW__V1__PLAN_PRICE__INIT;
    p.currency = "USD";
    p.amount_minor = 1299;
    Tw__V1__Plan *plan;
    ck_assert_int_eq(tw_billing_set_plan_price(&c, "premium", &p, "price-1", &plan), TW_OK);
    ck_assert_int_eq(plan->prices[0]->amount_minor, 1299);
    ck_assert_int_eq(bx_run_jobs(bx.billing), 1);
    /* Stripe bills the new price from the renewal on; the period paid keeps its own. */
    s = get(&fx_alice);
    ck_assert_int_eq(s->price->amount_minor, 999);
    ck_assert_ptr_nonnull(s->renewal_price);
    ck_assert_int_eq(s->renewal_price->amount_minor, 1299);
    ck_assert_int_eq(bx_gauge("billing_mrr_minor", "plan=premium,currency=USD"), 999);
    json_t *reqs = fx_fake_requests(&bx.stripe);
    json_t *last = json_array_get(reqs, json_array_size(reqs) - 1);
    char *form = json_dumps(json_object_get(last, "form"), JSON_COMPACT);
    ck_assert_ptr_nonnull(strstr(form, "[\"proration_behavior\",\"none\"]"));
    free(form);
    json_decref(reqs);
    /* New subscribers pay the new price at once. */
    Tw__V1__Subscription *bob = must_create(&fx_bob, "premium", "pm_card_visa", "s");
    ck_assert_int_eq(bob->price->amount_minor, 1299);
    /* Alice's renewal. */
    size_t seen = bx_event_count();
    bx_stripe_advance(s->stripe_subscription_id);
    bx_deliver_from(bx.billing, seen, false);
    s = get(&fx_alice);
    ck_assert_int_eq(s->price->amount_minor, 1299);
    ck_assert_ptr_null(s->renewal_price);
    ck_assert_int_eq(bx_gauge("billing_mrr_minor", "plan=premium,currency=USD"), 2 * 1299);
    /* The job again: nobody to move. */
    ck_assert_int_eq(tw_billing_set_plan_price(&c, "premium", &p, "price-1", &plan), TW_OK);
    ck_assert_int_eq(bx_run_jobs(bx.billing), 0);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("billing_account");
    TCase *tc = tcase_create("subscriptions");
    tcase_add_checked_fixture(tc, bx_setup, bx_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, subscribing_charges_once_and_entitles_at_once);
    tcase_add_test(tc, the_customer_is_made_once_per_user);
    tcase_add_test(tc, a_declined_card_is_pay_001_and_leaves_the_way_open);
    tcase_add_test(tc, a_lost_answer_and_the_retry_make_one_subscription);
    tcase_add_test(tc, after_a_crash_another_request_finds_what_stripe_made);
    tcase_add_test(tc, the_plan_changes_with_proration_and_once_per_request);
    tcase_add_test(tc, cancel_at_period_end_resume_and_the_end);
    tcase_add_test(tc, the_embedded_default_grants_and_revokes_plans);
    tcase_add_test(tc, a_stripe_subscriber_cannot_be_granted_over);
    tcase_add_test(tc, suspension_holds_until_an_operator_resyncs);
    tcase_add_test(tc, a_second_live_subscription_made_at_stripe_is_canceled);
    tcase_add_test(tc, a_new_price_reaches_subscribers_at_their_renewal);
    suite_add_tcase(s, tc);
    return s;
}
