/*
 * Unit tests for server/services/admin_service.c: its handlers called
 * through a real engine (service_fixture.h) over a store in a temporary
 * directory, as an admin. What the handlers decide: bad fields, a taken
 * email, not-found, an admin who would disable themselves, maintenance
 * mode reaching the auth state, queries' bounds, and times on the call's
 * "now" (the store's clock).
 */
#include "tw_check.h"

#include "auth/auth.h"
#include "service_fixture.h"
#include "tw/v1/admin_service.pb-c.h"

#include <string.h>

#define SVC      "/tw.v1.AdminService/"
#define PASSWORD "correct horse battery staple 42"

static void setup(void)
{
    sf_setup(&tw_admin_service);
}

static sf_result create_user(const char *email, Tw__V1__Role role)
{
    Tw__V1__CreateUserRequest req = TW__V1__CREATE_USER_REQUEST__INIT;
    req.email = (char *)email;
    req.password = PASSWORD;
    req.role = role;
    return sf_call(SVC "CreateUser", &req.base, sf_admin,
                   &tw__v1__create_user_response__descriptor);
}

static Tw__V1__User *created(const char *email)
{
    sf_result r = create_user(email, TW__V1__ROLE__ROLE_USER);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "%d %s %s", r.status, r.reason, r.fields);
    return ((Tw__V1__CreateUserResponse *)r.response)->user;
}

static sf_result lookup(const char *email, const char *user_id)
{
    Tw__V1__LookupUserRequest req = TW__V1__LOOKUP_USER_REQUEST__INIT;
    req.email = (char *)email;
    req.user_id = (char *)user_id;
    return sf_call(SVC "LookupUser", &req.base, sf_admin,
                   &tw__v1__lookup_user_response__descriptor);
}

static sf_result disable(const char *user_id)
{
    Tw__V1__DisableUserRequest req = TW__V1__DISABLE_USER_REQUEST__INIT;
    req.user_id = (char *)user_id;
    return sf_call(SVC "DisableUser", &req.base, sf_admin,
                   &tw__v1__disable_user_response__descriptor);
}

START_TEST(create_user_refuses_bad_fields_and_a_taken_email)
{
    sf_result r = create_user("not-an-email", TW__V1__ROLE__ROLE_USER);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "email");
    r = create_user("role@example.com", (Tw__V1__Role)99);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "role");
    r = lookup("role@example.com", "");
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");

    Tw__V1__User *u = created("kay@example.com");
    ck_assert_str_eq(u->email, "kay@example.com");
    ck_assert_int_eq(u->create_time->seconds, FX_EPOCH_MS / 1000); /* the call's "now" */
    r = create_user("KAY@example.com", TW__V1__ROLE__ROLE_ADMIN);
    sf_assert_error(&r, GRPC_STATUS_ALREADY_EXISTS, "RES_002");
}
END_TEST

START_TEST(lookup_finds_by_email_or_id_and_needs_one)
{
    Tw__V1__User *u = created("ken@example.com");
    sf_result r = lookup("Ken@Example.com", "");
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    ck_assert_str_eq(((Tw__V1__LookupUserResponse *)r.response)->user->id, u->id);
    r = lookup("", u->id);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    ck_assert_str_eq(((Tw__V1__LookupUserResponse *)r.response)->user->email, "ken@example.com");
    r = lookup("", sf_uuid());
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    r = lookup("", "");
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "user_id");
}
END_TEST

START_TEST(disable_user_marks_the_account_and_refuses_the_caller_itself)
{
    Tw__V1__User *u = created("dennis@example.com");
    sf_result r = disable(u->id);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Tw__V1__User *after = ((Tw__V1__DisableUserResponse *)r.response)->user;
    ck_assert(after->disabled);
    r = lookup("", u->id);
    ck_assert(((Tw__V1__LookupUserResponse *)r.response)->user->disabled);

    r = disable(SF_ADMIN); /* the caller */
    sf_assert_error(&r, GRPC_STATUS_FAILED_PRECONDITION, "STATE_001");
    r = disable(sf_uuid());
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
}
END_TEST

START_TEST(maintenance_mode_reaches_the_auth_state)
{
    ck_assert(!tw_auth_maintenance(sf_app.auth, NULL, 0));
    Tw__V1__SetMaintenanceModeRequest req = TW__V1__SET_MAINTENANCE_MODE_REQUEST__INIT;
    req.enabled = true;
    req.message = "back at noon";
    Tw__V1__SetMaintenanceModeResponse *resp =
        sf_ok(SVC "SetMaintenanceMode", &req.base, sf_admin,
              &tw__v1__set_maintenance_mode_response__descriptor);
    ck_assert(resp->enabled);
    char message[64];
    ck_assert(tw_auth_maintenance(sf_app.auth, message, sizeof message));
    ck_assert_str_eq(message, "back at noon");
}
END_TEST

START_TEST(queries_check_their_bounds)
{
    Tw__V1__GetUserStatsRequest stats = TW__V1__GET_USER_STATS_REQUEST__INIT;
    stats.days = 401;
    sf_result r = sf_call(SVC "GetUserStats", &stats.base, sf_admin,
                          &tw__v1__get_user_stats_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "days");
    created("barbara@example.com");
    stats.days = 1;
    Tw__V1__GetUserStatsResponse *got = sf_ok(SVC "GetUserStats", &stats.base, sf_admin,
                                              &tw__v1__get_user_stats_response__descriptor);
    ck_assert_uint_eq(got->user_count, 1);

    Tw__V1__GetSlowestMethodsRequest slow = TW__V1__GET_SLOWEST_METHODS_REQUEST__INIT;
    slow.limit = 101;
    r = sf_call(SVC "GetSlowestMethods", &slow.base, sf_admin,
                &tw__v1__get_slowest_methods_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "limit");
    slow.limit = 5; /* no ops state here: no call metrics */
    r = sf_call(SVC "GetSlowestMethods", &slow.base, sf_admin,
                &tw__v1__get_slowest_methods_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_UNIMPLEMENTED, "RPC_001");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("admin_service");
    TCase *tc = tcase_create("handlers");
    tcase_add_checked_fixture(tc, setup, sf_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, create_user_refuses_bad_fields_and_a_taken_email);
    tcase_add_test(tc, lookup_finds_by_email_or_id_and_needs_one);
    tcase_add_test(tc, disable_user_marks_the_account_and_refuses_the_caller_itself);
    tcase_add_test(tc, maintenance_mode_reaches_the_auth_state);
    tcase_add_test(tc, queries_check_their_bounds);
    suite_add_tcase(s, tc);
    return s;
}
