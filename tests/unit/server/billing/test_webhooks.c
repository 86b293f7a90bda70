/*
 * Unit tests for server/billing/webhooks.c: deliveries refused for their
 * signature, age, size or shape store nothing; one event delivered five
 * times at once is stored once with one job; a subscription's whole life
 * delivered in order to one store and in reverse to another ends in the
 * same records and counters; events of unknown customers are ignored; a
 * failed event is listed, then replayed; the counters by type and
 * outcome.
 */
#include "billing_fixture.h"

#include "tw_check.h"
#include "tw_counter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tw_billing_ctx c;

/* How many keys of family the store holds. */
static size_t keys_of(tw_store *s, tw_kf family)
{
    tw_key prefix;
    tw_key_init(&prefix, family);
    return (size_t)fx_count_keys(s, &prefix);
}

static const char event[] =
    "{\"id\": \"evt_test_1\", \"object\": \"event\", \"api_version\": \"2024-06-20\", "
    "\"created\": 1700000000, \"type\": \"invoice.paid\", \"data\": {\"object\": {\"id\": "
    "\"in_1\", \"object\": \"invoice\", \"customer\": \"cus_unknown\", \"status\": \"paid\"}}}";

static tw_err receive(const char *header, const char *body, size_t len, tw_webhook_delivery *d)
{
    char why[256];
    return tw_billing_webhook_receive(bx.billing, header, body, len, bx_now(), d, why, sizeof why);
}

START_TEST(refused_deliveries_store_nothing)
{
    tw_webhook_delivery d;
    int64_t now_s = bx_now() / 1000;
    char *good = bx_sign(event, now_s);
    char tampered[sizeof event];
    memcpy(tampered, event, sizeof event);
    tampered[strlen(tampered) - 5] = 'X';
    ck_assert_int_eq(receive(good, tampered, strlen(tampered), &d), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    ck_assert_int_eq(receive(NULL, event, strlen(event), &d), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    ck_assert_int_eq(receive("t=1,v1=00", event, strlen(event), &d), TW_ERR_WEBHOOK_BAD_SIGNATURE);
    char *old = bx_sign(event, now_s - 301);
    ck_assert_int_eq(receive(old, event, strlen(event), &d), TW_ERR_WEBHOOK_STALE);
    char *ahead = bx_sign(event, now_s + 301);
    ck_assert_int_eq(receive(ahead, event, strlen(event), &d), TW_ERR_WEBHOOK_STALE);
    /* 2 MB, signed: too large all the same. */
    size_t big = 2 * 1024 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, event, strlen(event));
    huge[big] = '\0';
    char *huge_sig = bx_sign(huge, now_s);
    ck_assert_int_eq(receive(huge_sig, huge, big, &d), TW_ERR_TOO_LARGE);
    /* Signed, but not an event. */
    const char *not_event = "{\"hello\": \"world\"}";
    char *sig = bx_sign(not_event, now_s);
    ck_assert_int_eq(receive(sig, not_event, strlen(not_event), &d), TW_ERR_VALIDATION);
    ck_assert_uint_eq(keys_of(fx.store, TW_KF_BILLING_WEBHOOK_EVENT), 0);
    ck_assert_uint_eq(keys_of(fx.store, TW_KF_BILLING_WEBHOOK_BY_TIME), 0);
    ck_assert_int_eq(bx_jobs_waiting(TW_BILLING_JOB_WEBHOOK), 0);
    /* The genuine one is stored. */
    ck_assert_int_eq(receive(good, event, strlen(event), &d), TW_OK);
    ck_assert_int_eq(d, TW_WEBHOOK_STORED);
    ck_assert_uint_eq(keys_of(fx.store, TW_KF_BILLING_WEBHOOK_EVENT), 1);
    free(good);
    free(old);
    free(ahead);
    free(huge);
    free(huge_sig);
    free(sig);
}
END_TEST

struct delivery {
    char *header;
    tw_err err;
    tw_webhook_delivery d;
};

static void *deliver_once(void *arg)
{
    struct delivery *x = arg;
    x->err = receive(x->header, event, strlen(event), &x->d);
    return NULL;
}

START_TEST(five_deliveries_at_once_store_one_event_and_one_job)
{
    struct delivery x[5];
    pthread_t threads[5];
    for (int i = 0; i < 5; i++) {
        x[i].header = bx_sign(event, bx_now() / 1000);
        ck_assert_int_eq(pthread_create(&threads[i], NULL, deliver_once, &x[i]), 0);
    }
    int stored = 0;
    for (int i = 0; i < 5; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(x[i].err, TW_OK);
        stored += x[i].d == TW_WEBHOOK_STORED;
        free(x[i].header);
    }
    ck_assert_int_eq(stored, 1);
    ck_assert_uint_eq(keys_of(fx.store, TW_KF_BILLING_WEBHOOK_EVENT), 1);
    ck_assert_int_eq(bx_jobs_waiting(TW_BILLING_JOB_WEBHOOK), 1);
    ck_assert_int_eq(bx_today("billing_webhook_events", "type=invoice.paid,outcome=received"), 1);
    /* Processed once: a customer that is not ours is ignored. */
    ck_assert_int_eq(bx_run_jobs(bx.billing), 1);
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__ListWebhookEventsResponse *list;
    ck_assert_int_eq(tw_billing_list_webhook_events(&c, "", 0, 0, 0, bx_page(0), &list), TW_OK);
    ck_assert_uint_eq(list->n_events, 1);
    ck_assert_str_eq(list->events[0]->id, "evt_test_1");
    ck_assert_int_eq(list->events[0]->delivery_count, 5);
    ck_assert(list->events[0]->processed);
    ck_assert_str_eq(list->events[0]->payload, "");
    ck_assert_int_eq(bx_today("billing_webhook_events", "type=invoice.paid,outcome=ignored"), 1);
    ck_assert_int_eq(bx_today("billing_webhook_events", "type=invoice.paid,outcome=processed"), 0);
}
END_TEST

/* ---- A subscription's life, in order and in reverse ------------------------------------- */

/* What a store holds of alice's billing, as text to compare. */
static char *snapshot(tw_billing *b)
{
    tw_billing_ctx x = bx_ctx(b, &fx_alice);
    Tw__V1__ExportBillingRecordsResponse *e;
    tw_err err = tw_billing_export(&x, &e);
    ck_assert_msg(err == TW_OK, "%s %s", tw_err_name(err), x.why.message);
    char *text = tw_arena_printf(fx.arena, "%s %d %s %lld %d %lld/%lld", e->subscription->plan_id,
                                 e->subscription->status, e->subscription->stripe_subscription_id,
                                 (long long)e->subscription->price->amount_minor,
                                 e->subscription->cancel_at_period_end,
                                 (long long)e->subscription->current_period_start_time->seconds,
                                 (long long)e->subscription->current_period_end_time->seconds);
    for (size_t i = 0; i < e->n_payments; i++) {
        const Tw__V1__Payment *p = e->payments[i];
        text = tw_arena_printf(fx.arena, "%s | %s %d %lld %s refunded %lld attempts %d [%s]", text,
                               p->id, p->status, (long long)p->amount_minor, p->currency,
                               (long long)p->refunded_minor, p->attempt_count, p->failure_message);
    }
    for (size_t i = 0; i < e->n_payment_methods; i++)
        text =
            tw_arena_printf(fx.arena, "%s | pm %s %s %s", text, e->payment_methods[i]->id,
                            e->payment_methods[i]->card_brand, e->payment_methods[i]->card_last4);
    return text;
}

/* The store's counters, as text to compare. */
static char *figures(tw_store *s)
{
    const char *names[][2] = {
        {"billing_payments", "status=succeeded"},
        {"billing_payments", "status=failed"},
        {"billing_refunds", ""},
        {"billing_refunded_minor", "currency=USD"},
        {"billing_new_subscriptions", "plan=premium"},
        {"billing_cancellations", "plan=premium"},
    };
    char *text = "";
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        uint64_t v = 0;
        tw_counter ctr = {NULL, names[i][0], names[i][1]};
        ck_assert_int_eq(tw_store_counter_read(s, &ctr, tw_store_day(bx_now()), 1, NULL, &v),
                         TW_OK);
        text = tw_arena_printf(fx.arena, "%s %s{%s}=%llu", text, names[i][0], names[i][1],
                               (unsigned long long)v);
    }
    uint64_t live = 0;
    tw_counter ctr = {NULL, "billing_live_total", ""};
    ck_assert_int_eq(tw_store_counter_read(s, &ctr, 0, 1, NULL, &live), TW_OK);
    return tw_arena_printf(fx.arena, "%s live=%llu", text, (unsigned long long)live);
}

/* A checkout.session.completed naming alice, customer and subscription. */
static json_t *checkout(const char *customer, const char *subscription)
{
    char user[TW_ID_TEXT_SIZE];
    tw_id_format(&fx_alice, user);
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s}}}", "id",
                     "evt_checkout_1", "object", "event", "api_version", "2024-06-20", "created",
                     (json_int_t)(bx_now() / 1000), "type", "checkout.session.completed", "data",
                     "object", "id", "cs_test_1", "object", "checkout.session", "customer",
                     customer, "subscription", subscription, "client_reference_id", user, "mode",
                     "subscription", "status", "complete");
}

START_TEST(any_delivery_order_ends_in_the_same_records)
{
    Tw__V1__Plan *plan = bx_plan(bx.billing, "premium", 1000, -1, -1);
    /* The customer and a card, through billing; the rest happens at Stripe. */
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__PaymentMethod *visa;
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_visa", "", &visa), TW_OK);
    json_t *state = fx_fake_control(&bx.stripe, "GET", "/_state", NULL);
    const char *key;
    json_t *v;
    char customer[64] = "";
    json_object_foreach(json_object_get(json_object_get(state, "objects"), "customer"), key, v)
        snprintf(customer, sizeof customer, "%s", key);
    json_decref(state);
    size_t from = 0; /* the card's attachment too */
    tw_stripe_subscription_new n = {customer, plan->prices[0]->stripe_price_id, NULL, NULL,
                                    "premium"};
    tw_stripe_subscription sub;
    ck_assert_int_eq(tw_stripe_subscription_create(bx.client, &n, NULL, fx.arena, &sub, NULL),
                     TW_OK);
    /* A renewal on a declining card, paid after the card is changed, then
     * part refunded; a card detached; the end asked for. */
    tw_stripe_payment_method bad;
    tw_stripe_customer cus;
    ck_assert_int_eq(tw_stripe_payment_method_attach(bx.client, "pm_card_chargeDeclined", customer,
                                                     NULL, fx.arena, &bad, NULL),
                     TW_OK);
    ck_assert_int_eq(tw_stripe_customer_set_default_payment_method(bx.client, customer, bad.id,
                                                                   NULL, fx.arena, &cus, NULL),
                     TW_OK);
    bx_stripe_advance(sub.id);
    ck_assert_int_eq(tw_stripe_customer_set_default_payment_method(bx.client, customer, visa->id,
                                                                   NULL, fx.arena, &cus, NULL),
                     TW_OK);
    ck_assert_int_eq(tw_stripe_subscription_get(bx.client, sub.id, fx.arena, &sub, NULL), TW_OK);
    tw_stripe_invoice inv;
    ck_assert_int_eq(
        tw_stripe_invoice_pay(bx.client, sub.latest_invoice, NULL, fx.arena, &inv, NULL), TW_OK);
    tw_stripe_refund re;
    ck_assert_int_eq(
        tw_stripe_refund_create(bx.client, inv.payment_intent, 300, NULL, fx.arena, &re, NULL),
        TW_OK);
    ck_assert_int_eq(tw_stripe_payment_method_detach(bx.client, bad.id, NULL, fx.arena, &bad, NULL),
                     TW_OK);
    tw_stripe_subscription_change end = {.cancel_at_period_end = 1, .pause_collection = -1};
    ck_assert_int_eq(
        tw_stripe_subscription_update(bx.client, sub.id, &end, NULL, fx.arena, &sub, NULL), TW_OK);

    /* In order, to this store. */
    size_t delivered = bx_deliver_from(bx.billing, from, false);
    ck_assert_uint_ge(delivered, 12);
    char *in_order = snapshot(bx.billing);
    char *in_order_figures = figures(fx.store);

    /* In reverse, to another store that learns of the customer from a
     * checkout session, delivered last. */
    fx_store other;
    fx_open(&other);
    atomic_store(&other.clock.ms, bx_now());
    tw_billing_config cfg = {
        .store = other.store, .stripe = bx.client, .webhook_secrets = {BX_SECRET, NULL}};
    tw_billing *b;
    ck_assert_int_eq(tw_billing_new(&cfg, &b), TW_OK);
    c = bx_ctx(b, &fx_alice);
    /* The same plan: Stripe answers the same product and price. */
    char *price_id = plan->prices[0]->stripe_price_id;
    Tw__V1__Plan *made;
    ck_assert_int_eq(tw_billing_create_plan(&c, plan, "", &made), TW_OK);
    ck_assert_str_eq(made->prices[0]->stripe_price_id, price_id);
    json_t *events = bx_events();
    size_t total = json_array_size(events);
    for (size_t i = total; i-- > from;) {
        tw_webhook_delivery d;
        ck_assert_int_eq(bx_deliver(b, json_array_get(events, i), &d), TW_OK);
    }
    json_decref(events);
    /* Unknown customer so far: stored, ignored. */
    tw_store *saved = fx.store;
    fx.store = other.store;
    bx_run_jobs(b);
    json_t *co = checkout(customer, sub.id);
    tw_webhook_delivery d;
    ck_assert_int_eq(bx_deliver(b, co, &d), TW_OK);
    json_decref(co);
    bx_run_jobs(b);
    /* The ignored ones again, now that the customer is known, newest
     * first. */
    c = bx_ctx(b, &fx_alice);
    Tw__V1__ListWebhookEventsResponse *list;
    ck_assert_int_eq(tw_billing_list_webhook_events(&c, "", 0, 0, 0, bx_page(500), &list), TW_OK);
    for (size_t i = 0; i < list->n_events; i++) {
        Tw__V1__WebhookEvent *ev;
        ck_assert_int_eq(tw_billing_replay_webhook_event(&c, list->events[i]->id, &ev), TW_OK);
    }
    char *reversed = snapshot(b);
    fx.store = saved;
    ck_assert_str_eq(reversed, in_order);
    ck_assert_ptr_nonnull(strstr(in_order, "premium 2 sub_"));                      /* active, */
    ck_assert_ptr_nonnull(strstr(in_order, " 1 "));                                 /* ending */
    ck_assert_ptr_nonnull(strstr(in_order, " 4 1000 USD refunded 300 attempts 2")); /* partial */
    ck_assert_ptr_nonnull(strstr(in_order, " 1 1000 USD refunded 0 attempts 1"));
    ck_assert_ptr_null(strstr(in_order, bad.id));
    /* Counted alike. */
    ck_assert_str_eq(figures(other.store), in_order_figures);
    tw_billing_free(b);
    fx_close(&other);
}
END_TEST

START_TEST(a_failed_event_is_listed_and_replayed)
{
    /* A subscription whose price is in no plan yet: processing fails. */
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__PaymentMethod *pm;
    ck_assert_int_eq(tw_billing_attach_payment_method(&c, "pm_card_visa", "", &pm), TW_OK);
    tw_stripe_product prod;
    tw_stripe_price price;
    ck_assert_int_eq(
        tw_stripe_product_create(bx.client, "Elsewhere", "", NULL, NULL, fx.arena, &prod, NULL),
        TW_OK);
    tw_stripe_price_new pn = {prod.id, 500, "USD", "month", NULL, NULL};
    ck_assert_int_eq(tw_stripe_price_create(bx.client, &pn, NULL, fx.arena, &price, NULL), TW_OK);
    json_t *state = fx_fake_control(&bx.stripe, "GET", "/_state", NULL);
    const char *customer = NULL, *key;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(state, "objects"), "customer"), key, v)
        customer = key;
    size_t from = bx_event_count();
    tw_stripe_subscription_new n = {customer, price.id, NULL, NULL, NULL};
    tw_stripe_subscription sub;
    ck_assert_int_eq(tw_stripe_subscription_create(bx.client, &n, NULL, fx.arena, &sub, NULL),
                     TW_OK);
    json_decref(state);
    bx_deliver_from(bx.billing, from, false);
    Tw__V1__ListWebhookEventsResponse *failed;
    ck_assert_int_eq(tw_billing_list_webhook_events(
                         &c, "", TW__V1__WEBHOOK_EVENT_FILTER__WEBHOOK_EVENT_FILTER_FAILED, 0, 0,
                         bx_page(0), &failed),
                     TW_OK);
    ck_assert_uint_eq(failed->n_events, 1);
    ck_assert_str_eq(failed->events[0]->type, "customer.subscription.created");
    ck_assert_ptr_nonnull(strstr(failed->events[0]->error, "no plan has Stripe price"));
    ck_assert(!failed->events[0]->processed);
    ck_assert_int_eq(
        bx_today("billing_webhook_events", "type=customer.subscription.created,outcome=failed"), 1);
    /* By type, and only what is processed. */
    Tw__V1__ListWebhookEventsResponse *paid;
    ck_assert_int_eq(
        tw_billing_list_webhook_events(&c, "invoice.paid",
                                       TW__V1__WEBHOOK_EVENT_FILTER__WEBHOOK_EVENT_FILTER_PROCESSED,
                                       0, 0, bx_page(0), &paid),
        TW_OK);
    ck_assert_uint_eq(paid->n_events, 1);
    /* Before a time range, nothing. */
    ck_assert_int_eq(tw_billing_list_webhook_events(&c, "", 0, 1000, 2000, bx_page(0), &paid),
                     TW_OK);
    ck_assert_uint_eq(paid->n_events, 0);

    /* The plan appears; the operator replays the event. */
    Tw__V1__Plan *plan = bx_plan(bx.billing, "elsewhere", 500, -1, -1);
    (void)plan;
    Tw__V1__WebhookEvent *ev;
    ck_assert_int_eq(tw_billing_replay_webhook_event(&c, failed->events[0]->id, &ev),
                     TW_ERR_FAILED_PRECONDITION); /* the plan has another Stripe price */
    /* Metadata naming the plan settles it. */
    tw_stripe_subscription_change meta = {
        .cancel_at_period_end = -1, .pause_collection = -1, .plan_id = "elsewhere"};
    ck_assert_int_eq(
        tw_stripe_subscription_update(bx.client, sub.id, &meta, NULL, fx.arena, &sub, NULL), TW_OK);
    ck_assert_int_eq(tw_billing_replay_webhook_event(&c, failed->events[0]->id, &ev), TW_OK);
    ck_assert(ev->processed);
    ck_assert_str_eq(ev->error, "");
    ck_assert_ptr_nonnull(strstr(ev->payload, "\"customer.subscription.created\""));
    ck_assert_int_ge(ev->process_attempts, 2);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_get_subscription(&c, &s), TW_OK);
    ck_assert_str_eq(s->plan_id, "elsewhere");
    ck_assert_int_eq(
        bx_today("billing_webhook_events", "type=customer.subscription.created,outcome=processed"),
        1);
    /* Replaying again changes nothing and counts nothing. */
    ck_assert_int_eq(tw_billing_replay_webhook_event(&c, failed->events[0]->id, &ev), TW_OK);
    ck_assert_int_eq(
        bx_today("billing_webhook_events", "type=customer.subscription.created,outcome=processed"),
        1);
    ck_assert_int_eq(bx_gauge("billing_live_total", ""), 1);
    ck_assert_int_eq(tw_billing_replay_webhook_event(&c, "evt_nope", &ev), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_billing_replay_webhook_event(&c, "", &ev), TW_ERR_VALIDATION);
}
END_TEST

START_TEST(event_lists_page_newest_first)
{
    for (int i = 0; i < 7; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"id\": \"evt_page_%d\", \"type\": \"coupon.created\", \"created\": 1, "
                 "\"data\": {\"object\": {\"object\": \"coupon\", \"id\": \"co_%d\"}}}",
                 i, i);
        char *h = bx_sign(body, bx_now() / 1000);
        tw_webhook_delivery d;
        ck_assert_int_eq(receive(h, body, strlen(body), &d), TW_OK);
        free(h);
        bx_advance(1);
    }
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__ListWebhookEventsResponse *page;
    tw_billing_page *first = bx_page(3);
    ck_assert_int_eq(tw_billing_list_webhook_events(&c, "", 0, 0, 0, first, &page), TW_OK);
    ck_assert_uint_eq(page->n_events, 3);
    ck_assert_str_eq(page->events[0]->id, "evt_page_6");
    ck_assert_ptr_nonnull(first->next);
    /* Page sizes and tokens are the service kit's (tests/e2e/test_kit.py). */
    ck_assert_int_eq(tw_billing_list_webhook_events(&c, "", 0, 0, 0, bx_next(first), &page), TW_OK);
    ck_assert_str_eq(page->events[0]->id, "evt_page_3");
    bx_run_jobs(bx.billing);
    ck_assert_int_eq(bx_today("billing_webhook_events", "type=other,outcome=received"), 7);
    ck_assert_int_eq(bx_today("billing_webhook_events", "type=other,outcome=ignored"), 7);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("billing_webhooks");
    TCase *tc = tcase_create("events");
    tcase_add_checked_fixture(tc, bx_setup, bx_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, refused_deliveries_store_nothing);
    tcase_add_test(tc, five_deliveries_at_once_store_one_event_and_one_job);
    tcase_add_test(tc, any_delivery_order_ends_in_the_same_records);
    tcase_add_test(tc, a_failed_event_is_listed_and_replayed);
    tcase_add_test(tc, event_lists_page_newest_first);
    suite_add_tcase(s, tc);
    return s;
}
