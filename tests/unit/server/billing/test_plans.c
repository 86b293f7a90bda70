/*
 * Unit tests for server/billing/plans.c: the free plan always exists;
 * creating a plan makes its product and prices at Stripe once (also on a
 * retry), and every bad field is refused with nothing made; updates by
 * field mask; a new price; lists with the caller's price (currency,
 * student) and pages.
 */
#include "billing_fixture.h"

#include "tw_check.h"

#include <stdio.h>
#include <string.h>

static tw_billing_ctx c;

static Tw__V1__PlanPrice *price(const char *currency, int64_t amount, int audience)
{
    Tw__V1__PlanPrice *p = tw_arena_alloc(fx.arena, sizeof *p);
    tw__v1__plan_price__init(p);
    p->currency = (char *)currency;
    p->amount_minor = amount;
    p->audience = audience;
    return p;
}

/* A valid plan to spoil. */
static Tw__V1__Plan *plan_in(const char *id)
{
    Tw__V1__Plan *p = tw_arena_alloc(fx.arena, sizeof *p);
    tw__v1__plan__init(p);
    p->id = (char *)id;
    p->name = "Premium";
    p->description = "Everything";
    p->interval = TW__V1__BILLING_INTERVAL__BILLING_INTERVAL_YEAR;
    p->prices = tw_arena_alloc(fx.arena, 4 * sizeof *p->prices);
    p->prices[p->n_prices++] = price("usd", 9900, 0);
    p->prices[p->n_prices++] = price("USD", 4900, TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STUDENT);
    p->features = tw_arena_alloc(fx.arena, 2 * sizeof *p->features);
    p->features[0] = "Unlimited tasks";
    p->features[1] = "Voice notes";
    p->n_features = 2;
    return p;
}

START_TEST(the_free_plan_always_exists)
{
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__ListAllPlansResponse *all;
    ck_assert_int_eq(tw_billing_list_all_plans(&c, bx_page(0), &all), TW_OK);
    ck_assert_uint_eq(all->n_plans, 1);
    ck_assert_str_eq(all->plans[0]->id, "free");
    ck_assert(all->plans[0]->active);
    ck_assert_int_eq(all->plans[0]->prices[0]->amount_minor, 0);
    /* It cannot be made, deactivated or priced. */
    Tw__V1__Plan *out;
    ck_assert_int_eq(tw_billing_create_plan(&c, plan_in("free"), "", &out), TW_ERR_ALREADY_EXISTS);
    Tw__V1__Plan *p = plan_in("free");
    p->active = false;
    char *paths[] = {"active"};
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = paths;
    mask.n_paths = 1;
    ck_assert_int_eq(tw_billing_update_plan(&c, p, &mask, &out), TW_ERR_FAILED_PRECONDITION);
    ck_assert_int_eq(tw_billing_set_plan_price(&c, "free", price("USD", 100, 0), "", &out),
                     TW_ERR_VALIDATION);
    /* Its limits can change: they are the free defaults until then. */
    tw_billing_entitlement e;
    ck_assert_int_eq(tw_billing_entitlement_get(bx.billing, &fx_bob, bx_now(), fx.arena, &e),
                     TW_OK);
    ck_assert_int_eq(e.limits[TW_RESOURCE_API_CALLS], 100);
    ck_assert_int_eq(e.limits[TW_RESOURCE_STORAGE_BYTES], 100LL << 20);
    Tw__V1__UsageLimit limit = TW__V1__USAGE_LIMIT__INIT, *limits[] = {&limit};
    limit.resource = TW_RESOURCE_API_CALLS;
    limit.limit = 250;
    p->limits = limits;
    p->n_limits = 1;
    paths[0] = "limits";
    ck_assert_int_eq(tw_billing_update_plan(&c, p, &mask, &out), TW_OK);
    ck_assert_int_eq(tw_billing_entitlement_get(bx.billing, &fx_bob, bx_now(), fx.arena, &e),
                     TW_OK);
    ck_assert_int_eq(e.limits[TW_RESOURCE_API_CALLS], 250);
    ck_assert_int_eq(e.limits[TW_RESOURCE_AI_REQUESTS], 100);
}
END_TEST

START_TEST(a_plan_is_made_at_stripe_once)
{
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__Plan *p;
    ck_assert_int_eq(tw_billing_create_plan(&c, plan_in("premium_yearly"), "plan-1", &p), TW_OK);
    ck_assert_str_eq(p->id, "premium_yearly");
    ck_assert(p->active);
    ck_assert(strncmp(p->stripe_product_id, "prod_", 5) == 0);
    ck_assert_uint_eq(p->n_prices, 2);
    ck_assert_str_eq(p->prices[0]->currency, "USD"); /* upper case */
    ck_assert_int_eq(p->prices[0]->audience, TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STANDARD);
    ck_assert(strncmp(p->prices[1]->stripe_price_id, "price_", 6) == 0);
    ck_assert_uint_eq(bx_stripe_count("product"), 1);
    ck_assert_uint_eq(bx_stripe_count("price"), 2);
    /* A retry answers the plan; another request is refused before Stripe. */
    Tw__V1__Plan *again;
    ck_assert_int_eq(tw_billing_create_plan(&c, plan_in("premium_yearly"), "plan-1", &again),
                     TW_OK);
    ck_assert_str_eq(again->stripe_product_id, p->stripe_product_id);
    ck_assert_int_eq(tw_billing_create_plan(&c, plan_in("premium_yearly"), "plan-2", &again),
                     TW_ERR_ALREADY_EXISTS);
    ck_assert_uint_eq(bx_stripe_count("product"), 1);
    ck_assert_uint_eq(bx_stripe_count("price"), 2);
    /* Without Stripe, no Stripe ids. */
    tw_billing_ctx local = bx_ctx(bx.local, &fx_alice);
    ck_assert_int_eq(tw_billing_create_plan(&local, plan_in("basic"), "", &p), TW_OK);
    ck_assert_str_eq(p->stripe_product_id, "");
    ck_assert_str_eq(p->prices[0]->stripe_price_id, "");
}
END_TEST

START_TEST(every_bad_field_is_refused_and_nothing_made)
{
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__Plan *p, *out;
/* A valid plan spoiled by body, refused for field. */
#define REFUSED(name, body)                                                                        \
    do {                                                                                           \
        p = plan_in("premium");                                                                    \
        body;                                                                                      \
        ck_assert_msg(tw_billing_create_plan(&c, p, "", &out) == TW_ERR_VALIDATION, "%s", name);   \
        ck_assert_str_eq(bx_bad(&c), name);                                                        \
    } while (0)
    REFUSED("plan.id", p->id = "Premium!");
    REFUSED("plan.id", p->id = "");
    REFUSED("plan.name", p->name = "");
    REFUSED("plan.interval", p->interval = 0);
    REFUSED("plan.prices", p->n_prices = 0);
    REFUSED("plan.prices[0].currency", p->prices[0]->currency = "dollars");
    REFUSED("plan.prices[1].amount_minor", p->prices[1]->amount_minor = -1);
    /* The first price is a student's, and so is the second: both said. */
    REFUSED("plan.prices[0].audience,plan.prices[1]",
            p->prices[0]->audience = TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STUDENT);
    REFUSED("plan.prices[1]", p->prices[1]->audience = 0); /* USD standard twice */
    REFUSED("plan.features[1]", p->features[1] = "");
#undef REFUSED
    /* Every bad field at once. */
    p = plan_in("premium");
    p->name = "";
    p->interval = 0;
    p->prices[0]->currency = "dollars";
    p->prices[0]->amount_minor = -1;
    ck_assert_int_eq(tw_billing_create_plan(&c, p, "", &out), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "plan.name,plan.interval,plan.prices[0].currency,"
                                 "plan.prices[0].amount_minor");
    p = plan_in("premium");
    ck_assert_uint_eq(bx_stripe_count("product"), 0);
    Tw__V1__ListAllPlansResponse *all;
    ck_assert_int_eq(tw_billing_list_all_plans(&c, bx_page(0), &all), TW_OK);
    ck_assert_uint_eq(all->n_plans, 1);
    /* Limits: unknown resource, twice, negative. */
    Tw__V1__UsageLimit a = TW__V1__USAGE_LIMIT__INIT, b = TW__V1__USAGE_LIMIT__INIT;
    Tw__V1__UsageLimit *limits[] = {&a, &b};
    p->limits = limits;
    p->n_limits = 2;
    a.resource = 9; /* and b's is unset */
    ck_assert_int_eq(tw_billing_create_plan(&c, p, "", &out), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "plan.limits[0].resource,plan.limits[1].resource");
    a.resource = b.resource = TW_RESOURCE_AI_REQUESTS;
    ck_assert_int_eq(tw_billing_create_plan(&c, p, "", &out), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "plan.limits[1].resource");
    b.resource = TW_RESOURCE_API_CALLS;
    b.limit = -5;
    ck_assert_int_eq(tw_billing_create_plan(&c, p, "", &out), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "plan.limits[1].limit");
    ck_assert_uint_eq(bx_stripe_count("product"), 0);
}
END_TEST

START_TEST(updates_follow_the_mask)
{
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__Plan *p;
    ck_assert_int_eq(tw_billing_create_plan(&c, plan_in("premium"), "", &p), TW_OK);
    Tw__V1__Plan *in = plan_in("premium"), *out;
    in->name = "Premium Plus";
    in->description = "ignored: not in the mask";
    in->active = false;
    char *paths[] = {"name", "active"};
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = paths;
    mask.n_paths = 2;
    ck_assert_int_eq(tw_billing_update_plan(&c, in, &mask, &out), TW_OK);
    ck_assert_str_eq(out->name, "Premium Plus");
    ck_assert_str_eq(out->description, "Everything");
    ck_assert(!out->active);
    /* Inactive plans are not offered, nor subscribed to. */
    Tw__V1__ListPlansResponse *offered;
    ck_assert_int_eq(tw_billing_list_plans(&c, "", bx_page(0), &offered), TW_OK);
    ck_assert_uint_eq(offered->n_plans, 1);
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_create_subscription(&c, "premium", "pm_card_visa", "", "", &s),
                     TW_ERR_PLAN_INACTIVE);
    /* Refusals. */
    mask.n_paths = 0;
    ck_assert_int_eq(tw_billing_update_plan(&c, in, &mask, &out), TW_ERR_BAD_FIELD_MASK);
    ck_assert_str_eq(bx_bad(&c), "update_mask");
    paths[0] = "prices";
    mask.n_paths = 1;
    ck_assert_int_eq(tw_billing_update_plan(&c, in, &mask, &out), TW_ERR_BAD_FIELD_MASK);
    ck_assert_str_eq(bx_bad(&c), "update_mask");
    paths[0] = "name";
    in->name = "";
    ck_assert_int_eq(tw_billing_update_plan(&c, in, &mask, &out), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "plan.name");
    in->id = "gold";
    in->name = "Gold";
    ck_assert_int_eq(tw_billing_update_plan(&c, in, &mask, &out), TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(a_new_price_is_a_new_stripe_price)
{
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__Plan *p;
    ck_assert_int_eq(tw_billing_create_plan(&c, plan_in("premium"), "", &p), TW_OK);
    char *old = p->prices[0]->stripe_price_id;
    ck_assert_int_eq(tw_billing_set_plan_price(&c, "premium", price("USD", 11900, 0), "np-1", &p),
                     TW_OK);
    ck_assert_uint_eq(p->n_prices, 2);
    ck_assert_int_eq(p->prices[0]->amount_minor, 11900);
    ck_assert_str_ne(p->prices[0]->stripe_price_id, old);
    /* A retry changes nothing more; a new currency is added. */
    ck_assert_int_eq(tw_billing_set_plan_price(&c, "premium", price("USD", 11900, 0), "np-1", &p),
                     TW_OK);
    ck_assert_uint_eq(bx_stripe_count("price"), 3);
    ck_assert_int_eq(tw_billing_set_plan_price(&c, "premium", price("eur", 9900, 0), "np-2", &p),
                     TW_OK);
    ck_assert_uint_eq(p->n_prices, 3);
    ck_assert_str_eq(p->prices[2]->currency, "EUR");
    ck_assert_int_eq(tw_billing_set_plan_price(&c, "premium", price("EU", 1, 0), "", &p),
                     TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "price.currency");
    ck_assert_int_eq(tw_billing_set_plan_price(&c, "gold", price("EUR", 1, 0), "", &p),
                     TW_ERR_NOT_FOUND);
    /* Each change has a job for the plan's Stripe subscribers. */
    ck_assert_int_eq(bx_jobs_waiting(TW_BILLING_JOB_REPRICE), 2);
}
END_TEST

START_TEST(lists_price_for_the_caller_and_page)
{
    c = bx_ctx(bx.billing, &fx_alice);
    bx_plan(bx.billing, "a_plan", 500, 250, 450);
    bx_plan(bx.billing, "b_plan", 900, -1, -1);
    Tw__V1__ListPlansResponse *r;
    ck_assert_int_eq(tw_billing_list_plans(&c, "", bx_page(0), &r), TW_OK);
    ck_assert_uint_eq(r->n_plans, 3);
    ck_assert_str_eq(r->plans[0]->id, "a_plan");
    ck_assert_str_eq(r->plans[2]->id, "free");
    ck_assert_int_eq(r->plans[0]->caller_price->amount_minor, 500);
    /* In euros where a plan has them, else in its own currency. */
    ck_assert_int_eq(tw_billing_list_plans(&c, "eur", bx_page(0), &r), TW_OK);
    ck_assert_str_eq(r->plans[0]->caller_price->currency, "EUR");
    ck_assert_int_eq(r->plans[0]->caller_price->amount_minor, 450);
    ck_assert_str_eq(r->plans[1]->caller_price->currency, "USD");
    ck_assert_int_eq(tw_billing_list_plans(&c, "euro", bx_page(0), &r), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "currency");
    /* Pages of one. */
    tw_billing_page *first = bx_page(1);
    ck_assert_int_eq(tw_billing_list_plans(&c, "", first, &r), TW_OK);
    ck_assert_uint_eq(r->n_plans, 1);
    ck_assert_int_eq(tw_billing_list_plans(&c, "", bx_next(first), &r), TW_OK);
    ck_assert_str_eq(r->plans[0]->id, "b_plan");
}
END_TEST

START_TEST(a_verified_student_sees_the_student_price)
{
    bx_plan(bx.billing, "a_plan", 500, 250, -1);
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__SubmitStudentVerificationRequest req =
        TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__INIT;
    req.proof_case = TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__PROOF_ACADEMIC_EMAIL;
    req.academic_email = "ada@cam.ac.uk";
    req.request_id = "";
    Tw__V1__StudentVerification *v;
    ck_assert_int_eq(tw_billing_submit_student(&c, &req, &v), TW_OK);
    ck_assert_int_eq(tw_billing_confirm_student_email(&c, bx.code, &v), TW_OK);
    Tw__V1__ListPlansResponse *r;
    ck_assert_int_eq(tw_billing_list_plans(&c, "", bx_page(0), &r), TW_OK);
    ck_assert_int_eq(r->plans[0]->caller_price->amount_minor, 250);
    ck_assert_int_eq(r->plans[0]->caller_price->audience,
                     TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STUDENT);
    /* And pays it. */
    Tw__V1__Subscription *s;
    ck_assert_int_eq(tw_billing_create_subscription(&c, "a_plan", "pm_card_visa", "", "s", &s),
                     TW_OK);
    ck_assert_int_eq(s->price->amount_minor, 250);
    ck_assert_int_eq(s->price->audience, TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STUDENT);
    /* Others do not. */
    c = bx_ctx(bx.billing, &fx_bob);
    ck_assert_int_eq(tw_billing_list_plans(&c, "", bx_page(0), &r), TW_OK);
    ck_assert_int_eq(r->plans[0]->caller_price->amount_minor, 500);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("billing_plans");
    TCase *tc = tcase_create("plans");
    tcase_add_checked_fixture(tc, bx_setup, bx_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_free_plan_always_exists);
    tcase_add_test(tc, a_plan_is_made_at_stripe_once);
    tcase_add_test(tc, every_bad_field_is_refused_and_nothing_made);
    tcase_add_test(tc, updates_follow_the_mask);
    tcase_add_test(tc, a_new_price_is_a_new_stripe_price);
    tcase_add_test(tc, lists_price_for_the_caller_and_page);
    tcase_add_test(tc, a_verified_student_sees_the_student_price);
    suite_add_tcase(s, tc);
    return s;
}
