/*
 * Unit tests for server/services/auth_service.c: its handlers called
 * through a real engine (service_fixture.h) over a store in a temporary
 * directory, behind the real gate: Register hands out tokens, and later
 * calls carry them. What the handlers decide: the refusal of bad fields
 * and of a taken email, wrong passwords, UpdateMe's mask, one user's
 * sessions out of another's reach, and times on the call's "now" (the
 * store's clock, which also times the tokens).
 */
#include "tw_check.h"

#include "service_fixture.h"
#include "tw/v1/auth_service.pb-c.h"

#include <stdio.h>
#include <string.h>

#define SVC      "/tw.v1.AuthService/"
#define PASSWORD "correct horse battery staple 42"

static void setup(void)
{
    sf_setup(&tw_auth_service);
}

/* Metadata carrying a token, in a small ring of static buffers. */
static const char *const *bearer(const char *token)
{
    static char values[4][2048];
    static const char *md[4][3];
    static unsigned next;
    unsigned i = next++ % 4;
    snprintf(values[i], sizeof values[i], "Bearer %s", token);
    md[i][0] = "authorization";
    md[i][1] = values[i];
    md[i][2] = NULL;
    return md[i];
}

static sf_result do_register(const char *email, const char *password)
{
    Tw__V1__RegisterRequest req = TW__V1__REGISTER_REQUEST__INIT;
    req.email = (char *)email;
    req.password = (char *)password;
    req.display_name = "Test";
    return sf_call(SVC "Register", &req.base, NULL, &tw__v1__register_response__descriptor);
}

static Tw__V1__RegisterResponse *registered(const char *email)
{
    sf_result r = do_register(email, PASSWORD);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "%d %s %s", r.status, r.reason, r.fields);
    return (Tw__V1__RegisterResponse *)r.response;
}

static sf_result login(const char *email, const char *password)
{
    Tw__V1__LoginRequest req = TW__V1__LOGIN_REQUEST__INIT;
    req.email = (char *)email;
    req.password = (char *)password;
    return sf_call(SVC "Login", &req.base, NULL, &tw__v1__login_response__descriptor);
}

static Tw__V1__User *me(const char *token)
{
    Tw__V1__GetMeRequest req = TW__V1__GET_ME_REQUEST__INIT;
    Tw__V1__GetMeResponse *resp =
        sf_ok(SVC "GetMe", &req.base, bearer(token), &tw__v1__get_me_response__descriptor);
    return resp->user;
}

static sf_result update_me(const char *token, Tw__V1__User *user, char **paths, size_t npaths)
{
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = paths;
    mask.n_paths = npaths;
    Tw__V1__UpdateMeRequest req = TW__V1__UPDATE_ME_REQUEST__INIT;
    req.user = user;
    req.update_mask = &mask;
    return sf_call(SVC "UpdateMe", &req.base, bearer(token),
                   &tw__v1__update_me_response__descriptor);
}

START_TEST(register_refuses_a_bad_email_and_stores_nothing)
{
    sf_result r = do_register("not-an-email", PASSWORD);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "email");
    r = do_register("short@example.com", "pw");
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "password");
    r = login("short@example.com", "pw");
    sf_assert_error(&r, GRPC_STATUS_UNAUTHENTICATED, "AUTH_006");
}
END_TEST

START_TEST(a_registered_user_reads_themselves_with_their_token)
{
    Tw__V1__RegisterResponse *reg = registered("ada@example.com");
    ck_assert_int_eq(reg->user->create_time->seconds, FX_EPOCH_MS / 1000); /* the call's "now" */
    /* Tokens are timed on the same clock: they verify at its "now". */
    ck_assert_int_gt(reg->tokens->access_token_expire_time->seconds, FX_EPOCH_MS / 1000);
    Tw__V1__User *u = me(reg->tokens->access_token);
    ck_assert_str_eq(u->id, reg->user->id);
    ck_assert_str_eq(u->email, "ada@example.com");
    /* Without a token, GetMe is refused before the handler. */
    Tw__V1__GetMeRequest req = TW__V1__GET_ME_REQUEST__INIT;
    sf_result r = sf_call(SVC "GetMe", &req.base, NULL, &tw__v1__get_me_response__descriptor);
    ck_assert_int_eq(r.status, GRPC_STATUS_UNAUTHENTICATED);
}
END_TEST

START_TEST(an_email_is_taken_once_whatever_its_case)
{
    registered("grace@example.com");
    sf_result r = do_register("Grace@Example.com", PASSWORD);
    sf_assert_error(&r, GRPC_STATUS_ALREADY_EXISTS, "RES_002");
}
END_TEST

START_TEST(login_refuses_a_wrong_password_and_accepts_the_right_one)
{
    registered("alan@example.com");
    sf_result r = login("alan@example.com", "not the password at all");
    sf_assert_error(&r, GRPC_STATUS_UNAUTHENTICATED, "AUTH_006");
    r = login("alan@example.com", PASSWORD);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Tw__V1__LoginResponse *in = (void *)r.response;
    ck_assert_str_eq(me(in->tokens->access_token)->email, "alan@example.com");
}
END_TEST

START_TEST(update_me_needs_a_mask_and_reports_every_bad_field)
{
    Tw__V1__RegisterResponse *reg = registered("edsger@example.com");
    const char *token = reg->tokens->access_token;
    Tw__V1__User u = TW__V1__USER__INIT;
    u.display_name = "Edsger";
    u.time_zone = "Mars/Olympus_Mons";
    u.day_start_hour = 30;
    sf_result r = update_me(token, &u, NULL, 0);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_004");
    char *unknown[] = {"email"};
    r = update_me(token, &u, unknown, 1);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_004");
    ck_assert_msg(strstr(r.fields, "update_mask") != NULL, "fields: %s", r.fields);
    char *bad[] = {"time_zone", "day_start_hour"};
    r = update_me(token, &u, bad, 2);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "user.time_zone,user.day_start_hour");
    ck_assert_str_eq(me(token)->time_zone, reg->user->time_zone); /* unchanged */
}
END_TEST

START_TEST(update_me_changes_the_named_fields_only)
{
    Tw__V1__RegisterResponse *reg = registered("barbara@example.com");
    const char *token = reg->tokens->access_token;
    Tw__V1__User u = TW__V1__USER__INIT;
    u.display_name = "Barbara";
    u.locale = "xx-not-sent"; /* not in the mask */
    char *name[] = {"display_name"};
    sf_result r = update_me(token, &u, name, 1);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "%d %s %s", r.status, r.reason, r.fields);
    Tw__V1__User *after = me(token);
    ck_assert_str_eq(after->display_name, "Barbara");
    ck_assert_str_eq(after->locale, reg->user->locale);
}
END_TEST

START_TEST(a_user_cannot_revoke_another_users_session)
{
    Tw__V1__RegisterResponse *a = registered("one@example.com");
    Tw__V1__RegisterResponse *b = registered("two@example.com");
    Tw__V1__RevokeSessionRequest req = TW__V1__REVOKE_SESSION_REQUEST__INIT;
    req.session_id = b->tokens->session_id;
    sf_result r = sf_call(SVC "RevokeSession", &req.base, bearer(a->tokens->access_token),
                          &tw__v1__revoke_session_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    ck_assert_str_eq(me(b->tokens->access_token)->email, "two@example.com"); /* still signed in */
}
END_TEST

START_TEST(change_password_checks_the_current_one)
{
    Tw__V1__RegisterResponse *reg = registered("donald@example.com");
    Tw__V1__ChangePasswordRequest req = TW__V1__CHANGE_PASSWORD_REQUEST__INIT;
    req.current_password = "a wrong guess of it";
    req.new_password = "another long pass phrase 43";
    sf_result r = sf_call(SVC "ChangePassword", &req.base, bearer(reg->tokens->access_token),
                          &tw__v1__change_password_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_PERMISSION_DENIED, "AUTH_008");
    ck_assert_int_eq(login("donald@example.com", PASSWORD).status, GRPC_STATUS_OK);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("auth_service");
    TCase *tc = tcase_create("handlers");
    tcase_add_checked_fixture(tc, setup, sf_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, register_refuses_a_bad_email_and_stores_nothing);
    tcase_add_test(tc, a_registered_user_reads_themselves_with_their_token);
    tcase_add_test(tc, an_email_is_taken_once_whatever_its_case);
    tcase_add_test(tc, login_refuses_a_wrong_password_and_accepts_the_right_one);
    tcase_add_test(tc, update_me_needs_a_mask_and_reports_every_bad_field);
    tcase_add_test(tc, update_me_changes_the_named_fields_only);
    tcase_add_test(tc, a_user_cannot_revoke_another_users_session);
    tcase_add_test(tc, change_password_checks_the_current_one);
    suite_add_tcase(s, tc);
    return s;
}
