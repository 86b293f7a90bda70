/*
 * Unit tests for clients/stripe.c against fake_stripe.py, which answers as
 * Stripe's API reference shows and keeps state: requests exactly as the
 * reference writes them (form bodies, Stripe-Version, Idempotency-Key),
 * objects read back, a declined card (402), 429 with Retry-After, 500s,
 * Stripe-Should-Retry, a hang past the timeout retried with the same key
 * (one object made), idempotency errors, Stripe's error object mapped to
 * our reasons, ids refused before anything is sent, and webhook events
 * read into their objects.
 */
#include "stripe.h"
#include "vendor_fixture.h"

#include "tw_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "sk_test_4eC39HqLyjWDarjtT1zdp7dc"

static fx_server fake;
static tw_arena *arena;

static void setup(void)
{
    fx_fake_stripe_start(&fake, KEY);
    arena = tw_arena_new(4096);
}

static void teardown(void)
{
    fx_server_stop(&fake);
    tw_arena_free(arena);
}

static tw_stripe *client_with(const char *key, long timeout_ms)
{
    tw_stripe_config cfg = {
        .base_url = fake.base_url,
        .secret_key = key,
        .policy = {.connect_timeout_ms = 2000,
                   .timeout_ms = timeout_ms,
                   .max_attempts = 3,
                   .backoff_base_ms = 1,
                   .backoff_max_ms = 5},
    };
    tw_stripe *s;
    ck_assert_int_eq(tw_stripe_new(&cfg, &s), TW_OK);
    return s;
}

static tw_stripe *client(void)
{
    return client_with(KEY, 5000);
}

/* The i-th request the fake received (borrowed from list). */
static json_t *nth(json_t *list, size_t i)
{
    json_t *r = json_array_get(list, i);
    ck_assert_ptr_nonnull(r);
    return r;
}

static const char *header(json_t *req, const char *name)
{
    return json_string_value(json_object_get(json_object_get(req, "headers"), name));
}

/* How many objects of a kind the fake holds. */
static size_t held(const char *kind)
{
    json_t *state = fx_fake_control(&fake, "GET", "/_state", NULL);
    size_t n = json_object_size(json_object_get(json_object_get(state, "objects"), kind));
    json_decref(state);
    return n;
}

static size_t request_count(void)
{
    json_t *got = fx_fake_requests(&fake);
    size_t n = json_array_size(got);
    json_decref(got);
    return n;
}

/* A customer with a card attached and made its default; the card's id. */
static const char *customer_with_card(tw_stripe *s, const char *card, tw_stripe_customer *cus)
{
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "ada@example.com", "Ada", "u-1", NULL, arena, cus, NULL),
        TW_OK);
    tw_stripe_payment_method pm;
    ck_assert_int_eq(tw_stripe_payment_method_attach(s, card, cus->id, NULL, arena, &pm, NULL),
                     TW_OK);
    ck_assert_int_eq(
        tw_stripe_customer_set_default_payment_method(s, cus->id, pm.id, NULL, arena, cus, NULL),
        TW_OK);
    return pm.id;
}

/* A monthly price of amount USD cents for a new product; its id. */
static const char *monthly_price(tw_stripe *s, int64_t amount)
{
    tw_stripe_product prod;
    ck_assert_int_eq(
        tw_stripe_product_create(s, "Premium", "All features", "premium", NULL, arena, &prod, NULL),
        TW_OK);
    tw_stripe_price price;
    tw_stripe_price_new n = {prod.id, amount, "USD", "month", "premium", "standard"};
    ck_assert_int_eq(tw_stripe_price_create(s, &n, NULL, arena, &price, NULL), TW_OK);
    return price.id;
}

START_TEST(a_customer_is_created_as_the_reference_shows)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    tw_stripe_error err;
    ck_assert_int_eq(tw_stripe_customer_create(s, "ada+billing@example.com", "Ada Lovelace",
                                               "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                                               "twd-customer-1", arena, &cus, &err),
                     TW_OK);
    ck_assert_str_eq(cus.email, "ada+billing@example.com");
    ck_assert_str_eq(cus.user_id, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    ck_assert_str_eq(cus.default_payment_method, "");
    ck_assert(strncmp(cus.id, "cus_", 4) == 0);

    json_t *got = fx_fake_requests(&fake);
    ck_assert_uint_eq(json_array_size(got), 1);
    json_t *req = nth(got, 0);
    ck_assert_str_eq(json_string_value(json_object_get(req, "method")), "POST");
    ck_assert_str_eq(json_string_value(json_object_get(req, "path")), "/v1/customers");
    ck_assert_str_eq(header(req, "authorization"), "Bearer " KEY);
    ck_assert_str_eq(header(req, "stripe-version"), TW_STRIPE_API_VERSION);
    ck_assert_str_eq(header(req, "idempotency-key"), "twd-customer-1");
    ck_assert_str_eq(header(req, "content-type"), "application/x-www-form-urlencoded");
    char *form = json_dumps(json_object_get(req, "form"), JSON_COMPACT);
    ck_assert_str_eq(form, "[[\"email\",\"ada+billing@example.com\"],[\"name\",\"Ada "
                           "Lovelace\"],[\"metadata[user_id]\",\"0190a1b2-c3d4-7e5f-8a9b-"
                           "0c1d2e3f4a5b\"]]");
    free(form);
    json_decref(got);

    /* The customer as Stripe keeps it: what the form said. */
    tw_stripe_customer again;
    ck_assert_int_eq(tw_stripe_customer_get(s, cus.id, arena, &again, NULL), TW_OK);
    ck_assert_str_eq(again.email, "ada+billing@example.com");
    ck_assert_str_eq(again.user_id, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    tw_stripe_free(s);
}
END_TEST

START_TEST(every_post_carries_a_key_and_gets_do_not)
{
    tw_stripe *s = client();
    tw_stripe_customer a, b;
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "a@example.com", NULL, NULL, NULL, arena, &a, NULL), TW_OK);
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "a@example.com", NULL, NULL, NULL, arena, &b, NULL), TW_OK);
    ck_assert_str_ne(a.id, b.id); /* two calls, two keys: two customers */
    ck_assert_int_eq(tw_stripe_customer_get(s, a.id, arena, &b, NULL), TW_OK);
    json_t *got = fx_fake_requests(&fake);
    const char *k0 = header(nth(got, 0), "idempotency-key");
    const char *k1 = header(nth(got, 1), "idempotency-key");
    ck_assert_ptr_nonnull(k0);
    ck_assert_ptr_nonnull(k1);
    ck_assert_str_ne(k0, k1);
    ck_assert_ptr_null(header(nth(got, 2), "idempotency-key"));
    ck_assert_str_eq(header(nth(got, 2), "stripe-version"), TW_STRIPE_API_VERSION);
    json_decref(got);
    tw_stripe_free(s);
}
END_TEST

START_TEST(a_subscription_charges_and_reads_back)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    const char *card = customer_with_card(s, "pm_card_visa", &cus);
    const char *price = monthly_price(s, 999);
    tw_stripe_subscription_new n = {cus.id, price, card, "u-1", "premium"};
    tw_stripe_subscription sub;
    ck_assert_int_eq(tw_stripe_subscription_create(s, &n, "twd-sub-1", arena, &sub, NULL), TW_OK);
    ck_assert_str_eq(sub.status, "active");
    ck_assert_str_eq(sub.customer, cus.id);
    ck_assert_str_eq(sub.price_id, price);
    ck_assert(strncmp(sub.item_id, "si_", 3) == 0);
    ck_assert_int_eq(sub.amount_minor, 999);
    ck_assert_str_eq(sub.currency, "USD");
    ck_assert_str_eq(sub.interval, "month");
    ck_assert_int_gt(sub.period_end_ms, sub.period_start_ms);
    ck_assert(!sub.cancel_at_period_end);
    ck_assert_str_eq(sub.user_id, "u-1");
    ck_assert_str_eq(sub.plan_id, "premium");
    ck_assert_str_eq(sub.default_payment_method, card);

    /* The form as Stripe's reference writes it. */
    json_t *got = fx_fake_requests(&fake);
    json_t *req = nth(got, json_array_size(got) - 1);
    ck_assert_str_eq(json_string_value(json_object_get(req, "path")), "/v1/subscriptions");
    char *form = json_dumps(json_object_get(req, "form"), JSON_COMPACT);
    char want[512];
    snprintf(want, sizeof want,
             "[[\"customer\",\"%s\"],[\"items[0][price]\",\"%s\"],[\"default_payment_method\","
             "\"%s\"],[\"payment_behavior\",\"error_if_incomplete\"],[\"metadata[user_id]\","
             "\"u-1\"],[\"metadata[plan_id]\",\"premium\"]]",
             cus.id, price, card);
    ck_assert_str_eq(form, want);
    free(form);
    json_decref(got);

    tw_stripe_invoice inv;
    ck_assert_int_eq(tw_stripe_invoice_get(s, sub.latest_invoice, arena, &inv, NULL), TW_OK);
    ck_assert_str_eq(inv.status, "paid");
    ck_assert_int_eq(inv.amount_paid, 999);
    ck_assert_str_eq(inv.subscription, sub.id);
    ck_assert_str_eq(inv.billing_reason, "subscription_create");
    ck_assert(strncmp(inv.payment_intent, "pi_", 3) == 0);

    tw_stripe_subscription *list;
    size_t count;
    ck_assert_int_eq(tw_stripe_subscription_list(s, cus.id, arena, &list, &count, NULL), TW_OK);
    ck_assert_uint_eq(count, 1);
    ck_assert_str_eq(list[0].id, sub.id);
    tw_stripe_free(s);
}
END_TEST

START_TEST(a_declined_card_is_pay_001_with_stripes_error_and_not_retried)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    const char *card = customer_with_card(s, "pm_card_chargeDeclinedInsufficientFunds", &cus);
    const char *price = monthly_price(s, 999);
    size_t before = request_count();
    tw_stripe_subscription_new n = {cus.id, price, card, "u-1", "premium"};
    tw_stripe_subscription sub;
    tw_stripe_error err;
    ck_assert_int_eq(tw_stripe_subscription_create(s, &n, "twd-sub-2", arena, &sub, &err),
                     TW_ERR_PAY_CARD_DECLINED);
    ck_assert_int_eq(err.upstream.status, 402);
    ck_assert_int_eq(err.upstream.attempts, 1);
    ck_assert(!err.upstream.retryable);
    ck_assert_str_eq(err.type, "card_error");
    ck_assert_str_eq(err.code, "card_declined");
    ck_assert_str_eq(err.decline_code, "insufficient_funds");
    ck_assert_str_eq(err.message, "Your card has insufficient funds.");
    ck_assert_ptr_nonnull(strstr(err.upstream.reason, "card_error/card_declined"));
    ck_assert_uint_eq(request_count(), before + 1);
    ck_assert_uint_eq(held("subscription"), 0); /* error_if_incomplete: nothing made */
    tw_stripe_free(s);
}
END_TEST

START_TEST(rate_limits_and_server_errors_are_retried_as_stripe_says)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    tw_stripe_error err;
    /* A 429 with Retry-After, then an answer: one call, two requests. */
    fx_fake_script(&fake,
                   "[{\"status\": 429, \"headers\": {\"Retry-After\": \"1\"}, "
                   "\"body\": \"{\\\"error\\\": {\\\"type\\\": \\\"invalid_request_error\\\", "
                   "\\\"code\\\": \\\"rate_limit\\\", \\\"message\\\": \\\"Too many\\\"}}\"}]");
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "a@example.com", NULL, NULL, "twd-c-429", arena, &cus, &err),
        TW_OK);
    ck_assert_int_eq(err.upstream.attempts, 2);

    /* 500 three times: UPSTREAM_001, retryable, the same key each time. */
    fx_fake_reset(&fake);
    fx_fake_script(&fake, "[{\"status\": 500}, {\"status\": 502}, {\"status\": 500, \"body\": "
                          "\"{\\\"error\\\": {\\\"type\\\": \\\"api_error\\\", \\\"message\\\": "
                          "\\\"Something went wrong\\\"}}\"}]");
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "b@example.com", NULL, NULL, "twd-c-500", arena, &cus, &err),
        TW_ERR_UPSTREAM);
    ck_assert_int_eq(err.upstream.attempts, 3);
    ck_assert(err.upstream.retryable);
    ck_assert_str_eq(err.type, "api_error");
    json_t *got = fx_fake_requests(&fake);
    ck_assert_uint_eq(json_array_size(got), 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_str_eq(header(nth(got, i), "idempotency-key"), "twd-c-500");
    json_decref(got);

    /* Stripe-Should-Retry: false ends it at once. */
    fx_fake_reset(&fake);
    fx_fake_script(&fake, "[{\"status\": 500, \"headers\": {\"Stripe-Should-Retry\": "
                          "\"false\"}}, {\"status\": 200}]");
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "c@example.com", NULL, NULL, "twd-c-no", arena, &cus, &err),
        TW_ERR_UPSTREAM);
    ck_assert_int_eq(err.upstream.attempts, 1);
    ck_assert(!err.upstream.retryable);

    /* A 409 (a request with the key still running) that Stripe says to
     * retry is retried. */
    fx_fake_reset(&fake);
    fx_fake_script(&fake, "[{\"status\": 409, \"headers\": {\"Stripe-Should-Retry\": "
                          "\"true\"}, \"body\": \"{\\\"error\\\": {\\\"type\\\": "
                          "\\\"idempotency_error\\\", \\\"code\\\": "
                          "\\\"idempotency_key_in_use\\\", \\\"message\\\": \\\"in use\\\"}}\"}]");
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "d@example.com", NULL, NULL, "twd-c-409", arena, &cus, &err),
        TW_OK);
    ck_assert_int_eq(err.upstream.attempts, 2);
    tw_stripe_free(s);
}
END_TEST

START_TEST(a_lost_answer_is_retried_with_the_same_key_and_makes_one_object)
{
    tw_stripe *s = client_with(KEY, 400);
    /* Stripe acts on the request, but its answer never arrives. */
    fx_fake_script(&fake, "[{\"hang_ms\": 2000, \"process\": true}]");
    tw_stripe_customer cus;
    tw_stripe_error err;
    ck_assert_int_eq(tw_stripe_customer_create(s, "ada@example.com", NULL, "u-1", "twd-c-lost",
                                               arena, &cus, &err),
                     TW_OK);
    ck_assert_int_eq(err.upstream.attempts, 2);
    ck_assert_uint_eq(held("customer"), 1);
    json_t *state = fx_fake_control(&fake, "GET", "/_state", NULL);
    ck_assert(json_object_get(json_object_get(json_object_get(state, "objects"), "customer"),
                              cus.id) != NULL);
    json_decref(state);

    /* A hang on every attempt: UPSTREAM_001 after the last. */
    fx_fake_script(&fake, "[{\"hang_ms\": 2000}, {\"hang_ms\": 2000}, {\"hang_ms\": 2000}]");
    ck_assert_int_eq(tw_stripe_customer_get(s, cus.id, arena, &cus, &err), TW_ERR_UPSTREAM);
    ck_assert_int_eq(err.upstream.attempts, 3);
    ck_assert(err.upstream.retryable);
    ck_assert_ptr_nonnull(strstr(err.upstream.reason, "no answer within"));
    tw_stripe_free(s);
}
END_TEST

START_TEST(a_key_reused_for_another_request_is_pay_005)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    tw_stripe_error err;
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "a@example.com", NULL, NULL, "twd-k", arena, &cus, &err),
        TW_OK);
    tw_stripe_customer again;
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "a@example.com", NULL, NULL, "twd-k", arena, &again, &err),
        TW_OK);
    ck_assert_str_eq(again.id, cus.id); /* replayed */
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "b@example.com", NULL, NULL, "twd-k", arena, &again, &err),
        TW_ERR_PAY_IDEMPOTENCY);
    ck_assert_int_eq(err.upstream.status, 400);
    ck_assert_str_eq(err.type, "idempotency_error");
    ck_assert_uint_eq(held("customer"), 1);
    tw_stripe_free(s);
}
END_TEST

START_TEST(stripes_errors_map_to_our_reasons)
{
    tw_stripe *bad = client_with("sk_test_wrong", 5000);
    tw_stripe_customer cus;
    tw_stripe_error err;
    ck_assert_int_eq(tw_stripe_customer_get(bad, "cus_x", arena, &cus, &err),
                     TW_ERR_PAY_MISCONFIGURED);
    ck_assert_int_eq(err.upstream.status, 401);
    /* The key is never part of what a failure says. */
    ck_assert_ptr_null(strstr(err.upstream.reason, "sk_test_wrong"));
    ck_assert_ptr_null(strstr(err.message, "sk_test_wrong"));
    tw_stripe_free(bad);

    tw_stripe *s = client();
    ck_assert_int_eq(tw_stripe_customer_get(s, "cus_missing", arena, &cus, &err), TW_ERR_NOT_FOUND);
    ck_assert_str_eq(err.code, "resource_missing");
    ck_assert_str_eq(err.param, "id");

    /* A subscription for a customer without a payment method: Stripe
     * refuses it (400). */
    ck_assert_int_eq(
        tw_stripe_customer_create(s, "a@example.com", NULL, NULL, NULL, arena, &cus, NULL), TW_OK);
    const char *price = monthly_price(s, 500);
    tw_stripe_subscription_new n = {cus.id, price, NULL, "u", "p"};
    tw_stripe_subscription sub;
    ck_assert_int_eq(tw_stripe_subscription_create(s, &n, NULL, arena, &sub, &err),
                     TW_ERR_PAY_REFUSED);
    ck_assert_int_eq(err.upstream.status, 400);
    ck_assert_str_eq(err.type, "invalid_request_error");
    ck_assert_ptr_nonnull(strstr(err.message, "no attached payment source"));
    tw_stripe_free(s);
}
END_TEST

START_TEST(ids_that_are_not_ids_are_refused_before_sending)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    tw_stripe_payment_method pm;
    ck_assert_int_eq(tw_stripe_customer_get(s, "cus_1/../../v1/charges", arena, &cus, NULL),
                     TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_stripe_customer_get(s, "", arena, &cus, NULL), TW_ERR_VALIDATION);
    ck_assert_int_eq(
        tw_stripe_payment_method_attach(s, "pm_1", "cus_1&customer=cus_2", NULL, arena, &pm, NULL),
        TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_stripe_customer_create(s, "a@example.com", NULL, NULL, "key with spaces",
                                               arena, &cus, NULL),
                     TW_ERR_VALIDATION);
    ck_assert_uint_eq(request_count(), 0);
    tw_stripe_free(s);
}
END_TEST

START_TEST(subscription_updates_send_the_documented_form)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    const char *card = customer_with_card(s, "pm_card_visa", &cus);
    const char *monthly = monthly_price(s, 999);
    const char *dearer = monthly_price(s, 1499);
    tw_stripe_subscription_new n = {cus.id, monthly, card, "u-1", "premium"};
    tw_stripe_subscription sub, got;
    ck_assert_int_eq(tw_stripe_subscription_create(s, &n, NULL, arena, &sub, NULL), TW_OK);

    tw_stripe_subscription_change price = {.item_id = sub.item_id,
                                           .price_id = dearer,
                                           .cancel_at_period_end = -1,
                                           .pause_collection = -1,
                                           .plan_id = "premium_plus"};
    ck_assert_int_eq(
        tw_stripe_subscription_update(s, sub.id, &price, "twd-change-1", arena, &got, NULL), TW_OK);
    ck_assert_str_eq(got.price_id, dearer);
    ck_assert_int_eq(got.amount_minor, 1499);
    ck_assert_str_eq(got.item_id, sub.item_id);
    ck_assert_str_eq(got.plan_id, "premium_plus");

    tw_stripe_subscription_change cancel = {.cancel_at_period_end = 1, .pause_collection = -1};
    ck_assert_int_eq(tw_stripe_subscription_update(s, sub.id, &cancel, NULL, arena, &got, NULL),
                     TW_OK);
    ck_assert(got.cancel_at_period_end);
    ck_assert_int_gt(got.canceled_at_ms, 0);
    tw_stripe_subscription_change resume = {.cancel_at_period_end = 0, .pause_collection = -1};
    ck_assert_int_eq(tw_stripe_subscription_update(s, sub.id, &resume, NULL, arena, &got, NULL),
                     TW_OK);
    ck_assert(!got.cancel_at_period_end);

    tw_stripe_subscription_change pause = {.cancel_at_period_end = -1, .pause_collection = 1};
    ck_assert_int_eq(tw_stripe_subscription_update(s, sub.id, &pause, NULL, arena, &got, NULL),
                     TW_OK);
    ck_assert(got.collection_paused);
    pause.pause_collection = 0;
    ck_assert_int_eq(tw_stripe_subscription_update(s, sub.id, &pause, NULL, arena, &got, NULL),
                     TW_OK);
    ck_assert(!got.collection_paused);

    ck_assert_int_eq(tw_stripe_subscription_cancel(s, sub.id, arena, &got, NULL), TW_OK);
    ck_assert_str_eq(got.status, "canceled");
    ck_assert_int_eq(tw_stripe_subscription_get(s, sub.id, arena, &got, NULL), TW_OK);
    ck_assert_str_eq(got.status, "canceled");

    /* Each went out as the reference writes it. */
    char change_form[512];
    snprintf(change_form, sizeof change_form,
             "[[\"items[0][id]\",\"%s\"],[\"items[0][price]\",\"%s\"],"
             "[\"proration_behavior\",\"create_prorations\"],[\"metadata[plan_id]\","
             "\"premium_plus\"]]",
             sub.item_id, dearer);
    const char *want[] = {
        change_form,
        "[[\"cancel_at_period_end\",\"true\"]]",
        "[[\"cancel_at_period_end\",\"false\"]]",
        "[[\"pause_collection[behavior]\",\"void\"]]",
        "[[\"pause_collection\",\"\"]]",
    };
    json_t *got_requests = fx_fake_requests(&fake);
    size_t n_req = json_array_size(got_requests);
    ck_assert_uint_ge(n_req, 7);
    for (size_t i = 0; i < 5; i++) {
        json_t *req = nth(got_requests, n_req - 7 + i);
        char *form = json_dumps(json_object_get(req, "form"), JSON_COMPACT);
        ck_assert_str_eq(form, want[i]);
        free(form);
        ck_assert_str_eq(json_string_value(json_object_get(req, "method")), "POST");
    }
    json_t *del = nth(got_requests, n_req - 2);
    ck_assert_str_eq(json_string_value(json_object_get(del, "method")), "DELETE");
    ck_assert_ptr_null(header(del, "idempotency-key"));
    json_decref(got_requests);
    tw_stripe_free(s);
}
END_TEST

/* Ends the subscription's period at the fake: it renews (or ends). */
static void advance(const char *sub)
{
    char body[128];
    snprintf(body, sizeof body, "{\"subscription\": \"%s\"}", sub);
    json_decref(fx_fake_control(&fake, "POST", "/_advance", body));
}

/* The form of the n-th last request. */
static char *last_form(size_t n)
{
    json_t *got = fx_fake_requests(&fake);
    char *form =
        json_dumps(json_object_get(nth(got, json_array_size(got) - n), "form"), JSON_COMPACT);
    json_decref(got);
    return form;
}

START_TEST(a_failed_renewal_is_paid_again_and_refunded)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    const char *good = customer_with_card(s, "pm_card_visa", &cus);
    const char *price = monthly_price(s, 1200);
    tw_stripe_subscription_new n = {cus.id, price, NULL, "u-1", "premium"};
    tw_stripe_subscription sub;
    ck_assert_int_eq(tw_stripe_subscription_create(s, &n, NULL, arena, &sub, NULL), TW_OK);

    /* The customer's default becomes a card that declines; the renewal fails. */
    tw_stripe_payment_method bad;
    ck_assert_int_eq(tw_stripe_payment_method_attach(s, "pm_card_chargeDeclined", cus.id, NULL,
                                                     arena, &bad, NULL),
                     TW_OK);
    ck_assert_int_eq(
        tw_stripe_customer_set_default_payment_method(s, cus.id, bad.id, NULL, arena, &cus, NULL),
        TW_OK);
    ck_assert_str_eq(cus.default_payment_method, bad.id);
    advance(sub.id);
    ck_assert_int_eq(tw_stripe_subscription_get(s, sub.id, arena, &sub, NULL), TW_OK);
    ck_assert_str_eq(sub.status, "past_due");
    tw_stripe_invoice inv;
    ck_assert_int_eq(tw_stripe_invoice_get(s, sub.latest_invoice, arena, &inv, NULL), TW_OK);
    ck_assert_str_eq(inv.status, "open");
    ck_assert_str_eq(inv.billing_reason, "subscription_cycle");
    ck_assert_int_eq(inv.attempt_count, 1);

    tw_stripe_error err;
    ck_assert_int_eq(tw_stripe_invoice_pay(s, inv.id, "twd-pay-1", arena, &inv, &err),
                     TW_ERR_PAY_CARD_DECLINED);
    ck_assert_str_eq(err.decline_code, "generic_decline");
    ck_assert_int_eq(
        tw_stripe_customer_set_default_payment_method(s, cus.id, good, NULL, arena, &cus, NULL),
        TW_OK);
    ck_assert_int_eq(tw_stripe_invoice_pay(s, sub.latest_invoice, "twd-pay-2", arena, &inv, NULL),
                     TW_OK);
    ck_assert_str_eq(inv.status, "paid");
    ck_assert_int_eq(inv.amount_paid, 1200);
    ck_assert_int_eq(inv.attempt_count, 3);
    ck_assert_int_eq(tw_stripe_subscription_get(s, sub.id, arena, &sub, NULL), TW_OK);
    ck_assert_str_eq(sub.status, "active");

    /* Refunds: part, the rest, then nothing is left (Stripe's 400). */
    tw_stripe_refund re;
    ck_assert_int_eq(
        tw_stripe_refund_create(s, inv.payment_intent, 200, "twd-re-1", arena, &re, NULL), TW_OK);
    ck_assert_int_eq(re.amount, 200);
    ck_assert_str_eq(re.currency, "USD");
    ck_assert_str_eq(re.payment_intent, inv.payment_intent);
    ck_assert_int_eq(re.charge_amount_refunded, 200); /* the charge, expanded */
    char want[256];
    snprintf(want, sizeof want,
             "[[\"payment_intent\",\"%s\"],[\"amount\",\"200\"],[\"expand[]\",\"charge\"]]",
             inv.payment_intent);
    char *form = last_form(1);
    ck_assert_str_eq(form, want);
    free(form);
    ck_assert_int_eq(
        tw_stripe_refund_create(s, inv.payment_intent, 0, "twd-re-2", arena, &re, NULL), TW_OK);
    ck_assert_int_eq(re.amount, 1000);
    ck_assert_int_eq(re.charge_amount_refunded, 1200); /* both refunds */
    ck_assert_int_eq(
        tw_stripe_refund_create(s, inv.payment_intent, 0, "twd-re-3", arena, &re, &err),
        TW_ERR_PAY_REFUSED);
    ck_assert_str_eq(err.code, "charge_already_refunded");
    tw_stripe_free(s);
}
END_TEST

START_TEST(payment_methods_attach_list_and_detach)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    const char *visa = customer_with_card(s, "pm_card_visa", &cus);
    tw_stripe_payment_method mc, got;
    ck_assert_int_eq(tw_stripe_payment_method_attach(s, "pm_card_mastercard", cus.id, "twd-pm-1",
                                                     arena, &mc, NULL),
                     TW_OK);
    ck_assert_str_eq(mc.customer, cus.id);
    ck_assert_str_eq(mc.type, "card");
    ck_assert_str_eq(mc.card_brand, "mastercard");
    ck_assert_str_eq(mc.card_last4, "4444");
    ck_assert_int_eq(mc.card_exp_month, 12);
    ck_assert_int_gt(mc.card_exp_year, 2024);
    char *form = last_form(1);
    char want[128];
    snprintf(want, sizeof want, "[[\"customer\",\"%s\"]]", cus.id);
    ck_assert_str_eq(form, want);
    free(form);

    tw_stripe_payment_method *list;
    size_t count;
    ck_assert_int_eq(tw_stripe_payment_method_list(s, cus.id, arena, &list, &count, NULL), TW_OK);
    ck_assert_uint_eq(count, 2);
    ck_assert(strcmp(list[0].id, mc.id) == 0 || strcmp(list[1].id, mc.id) == 0);
    ck_assert(strcmp(list[0].id, visa) == 0 || strcmp(list[1].id, visa) == 0);
    json_t *reqs = fx_fake_requests(&fake);
    json_t *q = json_object_get(nth(reqs, json_array_size(reqs) - 1), "query");
    char *query = json_dumps(q, JSON_COMPACT);
    snprintf(want, sizeof want, "[[\"customer\",\"%s\"],[\"type\",\"card\"],[\"limit\",\"100\"]]",
             cus.id);
    ck_assert_str_eq(query, want);
    free(query);
    json_decref(reqs);

    ck_assert_int_eq(tw_stripe_payment_method_detach(s, mc.id, NULL, arena, &got, NULL), TW_OK);
    ck_assert_str_eq(got.customer, "");
    ck_assert_int_eq(tw_stripe_payment_method_get(s, mc.id, arena, &got, NULL), TW_OK);
    ck_assert_str_eq(got.customer, "");
    ck_assert_int_eq(tw_stripe_payment_method_list(s, cus.id, arena, &list, &count, NULL), TW_OK);
    ck_assert_uint_eq(count, 1);
    tw_stripe_error err;
    ck_assert_int_eq(tw_stripe_payment_method_detach(s, mc.id, NULL, arena, &got, &err),
                     TW_ERR_PAY_REFUSED);
    ck_assert_str_eq(err.code, "payment_method_unexpected_state");
    tw_stripe_free(s);
}
END_TEST

START_TEST(products_and_prices_for_plans)
{
    tw_stripe *s = client();
    tw_stripe_product prod;
    ck_assert_int_eq(tw_stripe_product_create(s, "Premium Yearly", "Everything, for a year",
                                              "premium_yearly", "twd-prod-1", arena, &prod, NULL),
                     TW_OK);
    ck_assert_str_eq(prod.name, "Premium Yearly");
    ck_assert(prod.active);
    tw_stripe_price price;
    tw_stripe_price_new n = {prod.id, 9999, "EUR", "year", "premium_yearly", "student"};
    ck_assert_int_eq(tw_stripe_price_create(s, &n, "twd-price-1", arena, &price, NULL), TW_OK);
    ck_assert_str_eq(price.product, prod.id);
    ck_assert_int_eq(price.unit_amount, 9999);
    ck_assert_str_eq(price.currency, "EUR");
    ck_assert_str_eq(price.interval, "year");
    char *form = last_form(1);
    char want[512];
    snprintf(want, sizeof want,
             "[[\"product\",\"%s\"],[\"unit_amount\",\"9999\"],[\"currency\",\"eur\"],"
             "[\"recurring[interval]\",\"year\"],[\"metadata[plan_id]\",\"premium_yearly\"],"
             "[\"metadata[audience]\",\"student\"]]",
             prod.id);
    ck_assert_str_eq(form, want);
    free(form);
    tw_stripe_free(s);
}
END_TEST

/* The newest event of type at the fake, as its JSON text (malloc'd). */
static char *event_of(const char *type)
{
    json_t *state = fx_fake_control(&fake, "GET", "/_state", NULL);
    json_t *events = json_object_get(state, "events");
    char *text = NULL;
    for (size_t i = json_array_size(events); i-- > 0 && text == NULL;) {
        json_t *e = json_array_get(events, i);
        if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0)
            text = json_dumps(e, JSON_COMPACT);
    }
    json_decref(state);
    ck_assert_msg(text != NULL, "no %s event", type);
    return text;
}

START_TEST(webhook_events_read_into_their_objects)
{
    tw_stripe *s = client();
    tw_stripe_customer cus;
    const char *card = customer_with_card(s, "pm_card_visa", &cus);
    const char *price = monthly_price(s, 700);
    tw_stripe_subscription_new n = {cus.id, price, card, "u-9", "premium"};
    tw_stripe_subscription sub;
    ck_assert_int_eq(tw_stripe_subscription_create(s, &n, NULL, arena, &sub, NULL), TW_OK);

    tw_stripe_event ev;
    char *text = event_of("customer.subscription.created");
    ck_assert_int_eq(tw_stripe_event_parse(text, strlen(text), arena, &ev), TW_OK);
    free(text);
    ck_assert(strncmp(ev.id, "evt_", 4) == 0);
    ck_assert_str_eq(ev.type, "customer.subscription.created");
    ck_assert_str_eq(ev.api_version, TW_STRIPE_API_VERSION);
    ck_assert_str_eq(ev.object_type, "subscription");
    ck_assert_str_eq(ev.object_id, sub.id);
    ck_assert_int_gt(ev.created_ms, 0);
    ck_assert_ptr_nonnull(ev.subscription);
    ck_assert_ptr_null(ev.invoice);
    ck_assert_str_eq(ev.subscription->user_id, "u-9");
    ck_assert_str_eq(ev.subscription->status, "active");

    text = event_of("invoice.paid");
    ck_assert_int_eq(tw_stripe_event_parse(text, strlen(text), arena, &ev), TW_OK);
    free(text);
    ck_assert_ptr_nonnull(ev.invoice);
    ck_assert_str_eq(ev.invoice->subscription, sub.id);
    ck_assert_int_eq(ev.invoice->amount_paid, 700);

    text = event_of("payment_intent.succeeded");
    ck_assert_int_eq(tw_stripe_event_parse(text, strlen(text), arena, &ev), TW_OK);
    free(text);
    ck_assert_ptr_nonnull(ev.payment_intent);
    ck_assert_str_eq(ev.payment_intent->status, "succeeded");
    ck_assert_str_eq(ev.payment_intent->currency, "USD");

    text = event_of("payment_method.attached");
    ck_assert_int_eq(tw_stripe_event_parse(text, strlen(text), arena, &ev), TW_OK);
    free(text);
    ck_assert_ptr_nonnull(ev.payment_method);
    ck_assert_str_eq(ev.payment_method->customer, cus.id);
    ck_assert_str_eq(ev.previous_customer, "");
    tw_stripe_payment_method detached;
    ck_assert_int_eq(tw_stripe_payment_method_detach(s, card, NULL, arena, &detached, NULL), TW_OK);
    text = event_of("payment_method.detached");
    ck_assert_int_eq(tw_stripe_event_parse(text, strlen(text), arena, &ev), TW_OK);
    free(text);
    ck_assert_str_eq(ev.payment_method->customer, "");
    ck_assert_str_eq(ev.previous_customer, cus.id);

    /* Not events as Stripe documents them. */
    const char *bad[] = {
        "",
        "[]",
        "{\"id\": \"evt_1\", \"type\": \"invoice.paid\", \"created\": 1}",
        "{\"id\": \"evt_1\", \"type\": \"x\", \"created\": \"1\", \"data\": {\"object\": "
        "{\"object\": \"invoice\"}}}",
        "{\"id\": 7, \"type\": \"x\", \"created\": 1, \"data\": {\"object\": {\"object\": \"x\"}}}",
        "{\"id\": \"evt_1\", \"id\": \"evt_2\", \"type\": \"x\", \"created\": 1, \"data\": "
        "{\"object\": {\"object\": \"x\"}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(tw_stripe_event_parse(bad[i], strlen(bad[i]), arena, &ev) ==
                          TW_ERR_VALIDATION,
                      "%s", bad[i]);
    /* A kind billing does not read: the envelope only. */
    const char *other = "{\"id\": \"evt_3\", \"type\": \"coupon.created\", \"created\": 5, "
                        "\"data\": {\"object\": {\"object\": \"coupon\", \"id\": \"co_1\"}}}";
    ck_assert_int_eq(tw_stripe_event_parse(other, strlen(other), arena, &ev), TW_OK);
    ck_assert_str_eq(ev.object_type, "coupon");
    ck_assert_str_eq(ev.object_id, "co_1");
    ck_assert_int_eq(ev.created_ms, 5000);
    ck_assert_ptr_null(ev.subscription);
    ck_assert_ptr_null(ev.customer);
    tw_stripe_free(s);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("stripe");
    TCase *tc = tcase_create("calls");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_customer_is_created_as_the_reference_shows);
    tcase_add_test(tc, every_post_carries_a_key_and_gets_do_not);
    tcase_add_test(tc, a_subscription_charges_and_reads_back);
    tcase_add_test(tc, a_declined_card_is_pay_001_with_stripes_error_and_not_retried);
    tcase_add_test(tc, rate_limits_and_server_errors_are_retried_as_stripe_says);
    tcase_add_test(tc, a_lost_answer_is_retried_with_the_same_key_and_makes_one_object);
    tcase_add_test(tc, a_key_reused_for_another_request_is_pay_005);
    tcase_add_test(tc, stripes_errors_map_to_our_reasons);
    tcase_add_test(tc, ids_that_are_not_ids_are_refused_before_sending);
    tcase_add_test(tc, subscription_updates_send_the_documented_form);
    tcase_add_test(tc, a_failed_renewal_is_paid_again_and_refunded);
    tcase_add_test(tc, payment_methods_attach_list_and_detach);
    tcase_add_test(tc, products_and_prices_for_plans);
    tcase_add_test(tc, webhook_events_read_into_their_objects);
    suite_add_tcase(s, tc);
    return s;
}
