/*
 * Unit tests for server/services/billing_service.c in the embedded default
 * (no Stripe key): BillingService and BillingAdminService served by a real
 * engine (service_fixture.h) over a billing on the test store. What the
 * handlers decide: the free plan is offered and in force for everybody,
 * usage answers each metered resource, a paid subscription is refused
 * while payments are not configured, an administrator's grant is what the
 * user then holds, and admin methods refuse callers without the role.
 */
#include "tw_check.h"

#include "billing/billing.h"
#include "service_fixture.h"
#include "tw/v1/billing_service.pb-c.h"

#include <string.h>

#define SVC   "/tw.v1.BillingService/"
#define ADMIN "/tw.v1.BillingAdminService/"

static tw_billing *billing;

static void setup(void)
{
    static const tw_service_def *const defs[] = {&tw_billing_service, &tw_billing_admin_service,
                                                 NULL};
    sf_setup_services(defs);
    /* As serve.c's open_billing without a Stripe key. The services read
     * sf_app's billing at each call, so setting it after they are served
     * is enough. */
    tw_billing_config cfg = {.store = sf_app.store};
    ck_assert_int_eq(tw_billing_new(&cfg, &billing), TW_OK);
    sf_app.billing = billing;
}

static void teardown(void)
{
    sf_teardown(); /* the engine is down: no call reaches billing any more */
    tw_billing_free(billing);
    billing = NULL;
}

/* A monthly paid plan "pro" at 9.99 USD, made by an administrator. */
static Tw__V1__Plan *create_pro_plan(void)
{
    Tw__V1__PlanPrice price = TW__V1__PLAN_PRICE__INIT;
    price.currency = "USD";
    price.amount_minor = 999;
    Tw__V1__PlanPrice *prices[] = {&price};
    Tw__V1__Plan plan = TW__V1__PLAN__INIT;
    plan.id = "pro";
    plan.name = "Pro";
    plan.interval = TW__V1__BILLING_INTERVAL__BILLING_INTERVAL_MONTH;
    plan.prices = prices;
    plan.n_prices = 1;
    Tw__V1__CreatePlanRequest req = TW__V1__CREATE_PLAN_REQUEST__INIT;
    req.plan = &plan;
    Tw__V1__CreatePlanResponse *resp =
        sf_ok(ADMIN "CreatePlan", &req.base, sf_admin, &tw__v1__create_plan_response__descriptor);
    ck_assert_ptr_nonnull(resp->plan);
    ck_assert_str_eq(resp->plan->id, "pro");
    ck_assert(resp->plan->active);
    return resp->plan;
}

static Tw__V1__Subscription *subscription_of(const char *const *md)
{
    Tw__V1__GetSubscriptionRequest req = TW__V1__GET_SUBSCRIPTION_REQUEST__INIT;
    Tw__V1__GetSubscriptionResponse *resp =
        sf_ok(SVC "GetSubscription", &req.base, md, &tw__v1__get_subscription_response__descriptor);
    return resp->subscription;
}

static sf_result grant(const char *user_id, const char *plan_id, const char *const *md)
{
    Tw__V1__GrantSubscriptionRequest req = TW__V1__GRANT_SUBSCRIPTION_REQUEST__INIT;
    req.user_id = (char *)user_id;
    req.plan_id = (char *)plan_id;
    return sf_call(ADMIN "GrantSubscription", &req.base, md,
                   &tw__v1__grant_subscription_response__descriptor);
}

static Tw__V1__GetUsageResponse *usage_of(const char *const *md)
{
    Tw__V1__GetUsageRequest req = TW__V1__GET_USAGE_REQUEST__INIT;
    return sf_ok(SVC "GetUsage", &req.base, md, &tw__v1__get_usage_response__descriptor);
}

START_TEST(list_plans_offers_the_free_plan)
{
    Tw__V1__ListPlansRequest req = TW__V1__LIST_PLANS_REQUEST__INIT;
    Tw__V1__ListPlansResponse *resp =
        sf_ok(SVC "ListPlans", &req.base, sf_user_a, &tw__v1__list_plans_response__descriptor);
    ck_assert_uint_eq(resp->n_plans, 1);
    Tw__V1__Plan *free_plan = resp->plans[0];
    ck_assert_str_eq(free_plan->id, "free");
    ck_assert(free_plan->active);
    ck_assert_uint_ge(free_plan->n_prices, 1);
    ck_assert_int_eq(free_plan->prices[0]->amount_minor, 0);
    ck_assert_str_eq(resp->next_page_token, "");

    /* A plan an administrator adds is offered beside it. */
    create_pro_plan();
    resp = sf_ok(SVC "ListPlans", &req.base, sf_user_a, &tw__v1__list_plans_response__descriptor);
    ck_assert_uint_eq(resp->n_plans, 2);
    ck_assert(strcmp(resp->plans[0]->id, "pro") == 0 || strcmp(resp->plans[1]->id, "pro") == 0);
}
END_TEST

START_TEST(get_usage_answers_each_resource_of_the_free_plan)
{
    Tw__V1__GetUsageResponse *u = usage_of(sf_user_a);
    ck_assert_str_eq(u->plan_id, "free");
    ck_assert_uint_eq(u->n_usages, TW_RESOURCE_COUNT - 1);
    bool seen[TW_RESOURCE_COUNT] = {false};
    for (size_t i = 0; i < u->n_usages; i++) {
        Tw__V1__ResourceUsage *r = u->usages[i];
        ck_assert_int_gt(r->resource, 0);
        ck_assert_int_lt(r->resource, TW_RESOURCE_COUNT);
        ck_assert_msg(!seen[r->resource], "resource %d answered twice", r->resource);
        seen[r->resource] = true;
        ck_assert_int_ge(r->used, 0);
        ck_assert(r->unlimited || r->limit >= r->used);
    }
}
END_TEST

START_TEST(create_subscription_without_stripe_is_refused)
{
    create_pro_plan();
    Tw__V1__CreateSubscriptionRequest req = TW__V1__CREATE_SUBSCRIPTION_REQUEST__INIT;
    req.plan_id = "pro";
    req.payment_method_id = "pm_card_visa";
    sf_result r = sf_call(SVC "CreateSubscription", &req.base, sf_user_a,
                          &tw__v1__create_subscription_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_FAILED_PRECONDITION, "PAY_003");

    /* Nothing was made: the user is still on the free plan. */
    ck_assert_str_eq(usage_of(sf_user_a)->plan_id, "free");

    /* The free plan needs no subscription at all, an unknown one is not
     * found: both before payments come into it. */
    req.plan_id = "free";
    r = sf_call(SVC "CreateSubscription", &req.base, sf_user_a,
                &tw__v1__create_subscription_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "plan_id");
    req.plan_id = "no-such-plan";
    r = sf_call(SVC "CreateSubscription", &req.base, sf_user_a,
                &tw__v1__create_subscription_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
}
END_TEST

START_TEST(an_admin_grant_is_the_users_subscription)
{
    create_pro_plan();
    sf_result r = grant(SF_USER_A, "pro", sf_admin);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "%d %s %s", r.status, r.reason, r.message);
    Tw__V1__Subscription *granted = ((Tw__V1__GrantSubscriptionResponse *)r.response)->subscription;
    ck_assert_ptr_nonnull(granted);
    ck_assert_str_eq(granted->plan_id, "pro");

    Tw__V1__Subscription *s = subscription_of(sf_user_a);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->plan_id, "pro");
    ck_assert_str_eq(s->id, granted->id);
    ck_assert_int_eq(s->provider, TW__V1__SUBSCRIPTION_PROVIDER__SUBSCRIPTION_PROVIDER_LOCAL);
    ck_assert_int_eq(s->status, TW__V1__SUBSCRIPTION_STATUS__SUBSCRIPTION_STATUS_ACTIVE);
    ck_assert_ptr_nonnull(s->current_period_end_time);
    ck_assert_int_gt(s->current_period_end_time->seconds, FX_EPOCH_MS / 1000);
    ck_assert_str_eq(usage_of(sf_user_a)->plan_id, "pro");

    /* User B is untouched. */
    Tw__V1__Subscription *other = subscription_of(sf_user_b);
    ck_assert(other == NULL || strcmp(other->plan_id, "pro") != 0);
    ck_assert_str_eq(usage_of(sf_user_b)->plan_id, "free");

    /* The free plan and an unknown plan cannot be granted. */
    r = grant(SF_USER_B, "free", sf_admin);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "plan_id");
    r = grant(SF_USER_B, "no-such-plan", sf_admin);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
}
END_TEST

START_TEST(admin_methods_refuse_a_user)
{
    create_pro_plan();
    sf_result r = grant(SF_USER_A, "pro", sf_user_a); /* granting oneself a plan */
    sf_assert_error(&r, GRPC_STATUS_PERMISSION_DENIED, "AUTH_007");
    ck_assert_str_eq(usage_of(sf_user_a)->plan_id, "free");

    Tw__V1__ListAllPlansRequest list = TW__V1__LIST_ALL_PLANS_REQUEST__INIT;
    r = sf_call(ADMIN "ListAllPlans", &list.base, sf_user_b,
                &tw__v1__list_all_plans_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_PERMISSION_DENIED, "AUTH_007");

    r = grant(SF_USER_A, "pro", NULL); /* nobody signed in */
    sf_assert_error(&r, GRPC_STATUS_UNAUTHENTICATED, "AUTH_002");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("billing_service");
    TCase *tc = tcase_create("handlers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, list_plans_offers_the_free_plan);
    tcase_add_test(tc, get_usage_answers_each_resource_of_the_free_plan);
    tcase_add_test(tc, create_subscription_without_stripe_is_refused);
    tcase_add_test(tc, an_admin_grant_is_the_users_subscription);
    tcase_add_test(tc, admin_methods_refuse_a_user);
    suite_add_tcase(s, tc);
    return s;
}
