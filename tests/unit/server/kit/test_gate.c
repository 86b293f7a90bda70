/*
 * Unit tests for server/kit/gate.c: every decision the gate takes, seen
 * from a client. The gate runs in a real engine serving the engine's test
 * service (engine_test.proto), its rows given the flags under test, with
 * an auth state built on a test store: the store's signing keys, sessions
 * written as the account code writes them, an API limiter and the
 * maintenance switch.
 */
#include "tw_check.h"

#include "app.h"
#include "auth/account.h"
#include "auth/auth.h"
#include "kit/gate.h"
#include "auth/session.h"
#include "engine_test.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "rpc/engine.h"
#include "rpc_test_client.h"
#include "store_fixture.h"
#include "tw_time.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char engine_test_descriptor_set[];
extern const size_t engine_test_descriptor_set_size;

#define PUBLIC_METHOD   "/twtest.v1.EngineTestService/Echo"
#define USER_METHOD     "/twtest.v1.EngineTestService/Guarded"
#define ADMIN_METHOD    "/twtest.v1.EngineTestService/Count"
#define SIGN_IN_METHOD  "/twtest.v1.EngineTestService/Chat"
#define CALL_TIMEOUT_MS 10000
/* API calls a user may make per hour in these tests. */
#define API_LIMIT 6

/* ---- the service: each row answers with the caller the gate set ----------- */

static tw_err whoami(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    Twtest__V1__EchoResponse *out = (void *)response;
    const tw_id *caller = tw_call_caller(call);
    if (caller != NULL) {
        out->user_id = tw_arena_alloc(tw_call_arena(call), TW_ID_TEXT_SIZE);
        tw_id_format(caller, out->user_id);
    }
    const char *role = tw_call_role(call);
    out->text = (char *)(role ? role : "");
    return TW_OK;
}

static tw_err count(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    return TW_OK; /* no messages: the status is what the tests read */
}

static tw_err chat_message(tw_call *call, const ProtobufCMessage *message,
                           ProtobufCMessage *response)
{
    return TW_OK;
}

static tw_err chat_end(tw_call *call, ProtobufCMessage *response)
{
    return TW_OK;
}

static tw_err sum_message(tw_call *call, const ProtobufCMessage *message,
                          ProtobufCMessage *response)
{
    return TW_OK;
}

static const tw_method methods[] = {
    {"Echo", TW_UNARY, TW_PUBLIC, .handle = whoami},
    {"Guarded", TW_UNARY, 0, .handle = whoami},
    {"Sum", TW_CLIENT_STREAM, TW_WRITE, .on_message = sum_message, .on_end = chat_end},
    {"Count", TW_SERVER_STREAM, TW_ADMIN, .handle = count},
    {"Chat", TW_BIDI_STREAM, TW_PUBLIC | TW_SIGN_IN, .on_message = chat_message,
     .on_end = chat_end},
    {NULL},
};

static const tw_service service = {
    .descriptor = &twtest__v1__engine_test_service__descriptor,
    .methods = methods,
};

/* ---- fixture: a store, the auth state, an engine and two channels ---------- */

static tw_auth auth;
static tw_app app;
static tw_engine *engine;
static grpc_channel *channel;          /* over TCP */
static grpc_channel *operator_channel; /* over the operator socket */
static char socket_path[256];

static grpc_channel *connect_to(const char *target)
{
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *c = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    return c;
}

static void setup(void)
{
    fx_setup();
    memset(&auth, 0, sizeof auth);
    auth.store = fx.store;
    ck_assert_int_eq(tw_keyring_open(fx.store, &auth.keys), TW_OK);
    ck_assert_int_eq(tw_token_cache_new(&auth.tokens), TW_OK);
    ck_assert_int_eq(tw_session_cache_new(&auth.sessions), TW_OK);
    const int64_t limits[TW_API__COUNT] = {[TW_API_ALL] = API_LIMIT, [TW_API_WRITE] = API_LIMIT};
    ck_assert_int_eq(tw_api_limiter_new(limits, &auth.api), TW_OK);
    pthread_mutex_init(&auth.maintenance_lock, NULL);
    app = (tw_app){.store = fx.store, .auth = &auth};

    snprintf(socket_path, sizeof socket_path, "%s/twd.sock", fx.dir);
    tw_engine_config cfg = {
        .listen = "127.0.0.1:0",
        .operator_socket = socket_path,
        .workers = 2,
        .max_message_bytes = 65536,
        .requests_per_method = 2,
        .max_stream_backlog = 1 << 20,
        .descriptor_set = engine_test_descriptor_set,
        .descriptor_set_size = engine_test_descriptor_set_size,
    };
    char errbuf[256] = "";
    ck_assert_int_eq(tw_engine_new(&cfg, &engine), TW_OK);
    ck_assert_msg(tw_engine_add_service(engine, &service, errbuf, sizeof errbuf) == TW_OK, "%s",
                  errbuf);
    tw_engine_set_gate(engine, tw_gate_admit, &app);
    int port = 0;
    ck_assert_msg(tw_engine_start(engine, &port, errbuf, sizeof errbuf) == TW_OK, "%s", errbuf);
    char target[300];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    channel = connect_to(target);
    snprintf(target, sizeof target, "unix:%s", socket_path);
    operator_channel = connect_to(target);
}

static void teardown(void)
{
    grpc_channel_destroy(channel);
    grpc_channel_destroy(operator_channel);
    tw_engine_shutdown(engine, 1000);
    tw_engine_free(engine);
    tw_api_limiter_free(auth.api);
    tw_token_cache_free(auth.tokens);
    tw_session_cache_free(auth.sessions);
    tw_keyring_free(auth.keys);
    pthread_mutex_destroy(&auth.maintenance_lock);
    fx_teardown();
}

/* ---- sessions and tokens ---------------------------------------------------- */

typedef struct account {
    tw_id user, session;
} account;

/* Stores a's session as the account code keeps it: the role and disabled
 * flag copied into the session record. */
static void put_session(const account *a, const char *role, bool disabled)
{
    Tw__Store__V1__Session s = TW__STORE__V1__SESSION__INIT;
    s.id = (ProtobufCBinaryData){TW_ID_BYTES, (uint8_t *)a->session.bytes};
    s.role = (char *)role;
    s.disabled = disabled;
    tw_txn *t;
    tw_key k;
    tw_session_key(&k, &a->user, &a->session);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_put(t, &k, &(tw_value){.msg = &s.base}), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
}

static account make_account(const char *role, bool disabled)
{
    account a = {tw_id_new(), tw_id_new()};
    put_session(&a, role, disabled);
    return a;
}

static void revoke(const account *a)
{
    tw_txn *t;
    tw_key k;
    tw_session_key(&k, &a->user, &a->session);
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_delete(t, &k), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
}

/* "Bearer <token>" for a's session, issued at iat and lasting ttl_s,
 * signed with key (NULL: the ring's current one). Freed by the caller. */
static char *bearer_signed(const account *a, int64_t iat, int64_t ttl_s, const tw_jwt_key *key)
{
    tw_jwt_key current;
    if (key == NULL) {
        tw_keyring_current(auth.keys, &current);
        key = &current;
    }
    tw_jwt_claims claims = {.iat = iat, .exp = iat + ttl_s};
    tw_id_format(&a->user, claims.sub);
    tw_id_format(&a->session, claims.sid);
    tw_id jti = tw_id_new();
    tw_id_format(&jti, claims.jti);
    char *token;
    ck_assert_int_eq(tw_jwt_sign(key, &claims, &token), TW_OK);
    char *header;
    ck_assert_int_ge(asprintf(&header, "Bearer %s", token), 0);
    free(token);
    return header;
}

static char *bearer(const account *a)
{
    return bearer_signed(a, tw_wall_ms() / 1000, TW_ACCESS_TOKEN_TTL_S, NULL);
}

/* ---- calls -------------------------------------------------------------------- */

/* What a call got: its status, reason and, when it went through, the
 * caller and role the handler saw. */
typedef struct outcome {
    grpc_status_code status;
    char reason[64];
    char message[256];
    char user_id[TW_ID_TEXT_SIZE];
    char role[16];
    bool retry_info;
} outcome;

static void read_details(const rpc_result *r, outcome *o)
{
    snprintf(o->message, sizeof o->message, "%s", r->message ? r->message : "");
    Google__Rpc__Status *st =
        r->details ? google__rpc__status__unpack(NULL, r->details_len, r->details) : NULL;
    for (size_t i = 0; st != NULL && i < st->n_details; i++) {
        const Google__Protobuf__Any *any = st->details[i];
        if (strcmp(any->type_url, "type.googleapis.com/google.rpc.RetryInfo") == 0)
            o->retry_info = true;
        if (strcmp(any->type_url, "type.googleapis.com/google.rpc.ErrorInfo") != 0)
            continue;
        Google__Rpc__ErrorInfo *info =
            google__rpc__error_info__unpack(NULL, any->value.len, any->value.data);
        ck_assert_ptr_nonnull(info);
        snprintf(o->reason, sizeof o->reason, "%s", info->reason);
        google__rpc__error_info__free_unpacked(info, NULL);
    }
    if (st != NULL)
        google__rpc__status__free_unpacked(st, NULL);
}

/* A unary call of method on ch with the authorization header (NULL: none). */
static outcome unary(grpc_channel *ch, const char *method, const char *authorization)
{
    outcome o = {0};
    Twtest__V1__EchoRequest req = TWTEST__V1__ECHO_REQUEST__INIT;
    const char *md[] = {"authorization", authorization, NULL};
    rpc_result r;
    rpc_unary(ch, method, &req.base, NULL, 0, CALL_TIMEOUT_MS, authorization ? md : NULL, &r);
    o.status = r.status;
    read_details(&r, &o);
    if (r.status == GRPC_STATUS_OK) {
        Twtest__V1__EchoResponse *resp =
            twtest__v1__echo_response__unpack(NULL, r.response_len, r.response);
        ck_assert_ptr_nonnull(resp);
        snprintf(o.user_id, sizeof o.user_id, "%s", resp->user_id);
        snprintf(o.role, sizeof o.role, "%s", resp->text);
        twtest__v1__echo_response__free_unpacked(resp, NULL);
    }
    rpc_result_free(&r);
    return o;
}

/* A streaming call of method that sends nothing: only its status. */
static outcome stream(grpc_channel *ch, const char *method, const char *authorization,
                      const ProtobufCMessage *first)
{
    outcome o = {0};
    const char *md[] = {"authorization", authorization, NULL};
    rpc_stream *s = rpc_stream_open_md(ch, method, CALL_TIMEOUT_MS, authorization ? md : NULL);
    if (first != NULL)
        rpc_stream_send(s, first);
    rpc_stream_close_send(s);
    while (true) {
        ProtobufCMessage *m = rpc_stream_recv(s, &twtest__v1__count_response__descriptor);
        if (m == NULL)
            break;
        protobuf_c_message_free_unpacked(m, NULL);
    }
    rpc_result r;
    rpc_stream_finish(s, &r);
    o.status = r.status;
    read_details(&r, &o);
    rpc_result_free(&r);
    return o;
}

static outcome admin_call(grpc_channel *ch, const char *authorization)
{
    Twtest__V1__CountRequest req = TWTEST__V1__COUNT_REQUEST__INIT;
    return stream(ch, ADMIN_METHOD, authorization, &req.base);
}

static outcome sign_in_call(grpc_channel *ch)
{
    return stream(ch, SIGN_IN_METHOD, NULL, NULL);
}

#define assert_refused(o, code, want_reason)                                                       \
    do {                                                                                           \
        outcome o_ = (o);                                                                          \
        ck_assert_msg(o_.status == (code), "status %d (%s), wanted %d", (int)o_.status,            \
                      o_.message, (int)(code));                                                    \
        ck_assert_str_eq(o_.reason, want_reason);                                                  \
    } while (0)

static void assert_admitted(outcome o, const account *a, const char *role)
{
    ck_assert_msg(o.status == GRPC_STATUS_OK, "status %d (%s %s)", (int)o.status, o.reason,
                  o.message);
    char id[TW_ID_TEXT_SIZE] = "";
    if (a != NULL)
        tw_id_format(&a->user, id);
    ck_assert_str_eq(o.user_id, id);
    ck_assert_str_eq(o.role, role);
}

/* ---- tests ----------------------------------------------------------------------- */

START_TEST(public_methods_need_nobody)
{
    assert_admitted(unary(channel, PUBLIC_METHOD, NULL), NULL, "");
    /* A token sent anyway is not even read: a bad one does not matter. */
    assert_admitted(unary(channel, PUBLIC_METHOD, "Bearer nonsense"), NULL, "");
}
END_TEST

START_TEST(a_valid_token_names_the_caller)
{
    account a = make_account(TW_ROLE_USER, false);
    char *h = bearer(&a);
    assert_admitted(unary(channel, USER_METHOD, h), &a, TW_ROLE_USER);
    free(h);
}
END_TEST

START_TEST(the_scheme_is_case_insensitive)
{
    account a = make_account(TW_ROLE_USER, false);
    char *h = bearer(&a);
    memcpy(h, "bEaReR", 6);
    assert_admitted(unary(channel, USER_METHOD, h), &a, TW_ROLE_USER);
    free(h);
}
END_TEST

START_TEST(a_missing_token_is_refused)
{
    assert_refused(unary(channel, USER_METHOD, NULL), GRPC_STATUS_UNAUTHENTICATED, "AUTH_002");
}
END_TEST

START_TEST(a_malformed_authorization_is_refused)
{
    account a = make_account(TW_ROLE_USER, false);
    char *h = bearer(&a);
    /* Another scheme, no space, garbage tokens. */
    const char *bad[] = {"Basic dXNlcjpwYXNz", "Bearer",       h + strlen("Bearer "),
                         "Bearer abc",         "Bearer a.b.c", "Bearer  x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_refused(unary(channel, USER_METHOD, bad[i]), GRPC_STATUS_UNAUTHENTICATED,
                       "AUTH_001");
    outcome o = unary(channel, USER_METHOD, "Basic dXNlcjpwYXNz");
    ck_assert_str_eq(o.message, "authorization must be \"Bearer <access token>\"");
    free(h);
}
END_TEST

START_TEST(an_oversized_token_is_refused_with_its_size)
{
    size_t len = strlen("Bearer ") + TW_JWT_MAX_BYTES + 1;
    char *h = malloc(len + 1);
    memcpy(h, "Bearer ", 7);
    memset(h + 7, 'a', len - 7);
    h[len] = '\0';
    outcome o = unary(channel, USER_METHOD, h);
    assert_refused(o, GRPC_STATUS_UNAUTHENTICATED, "AUTH_001");
    char want[64];
    snprintf(want, sizeof want, "access token is longer than %d bytes", TW_JWT_MAX_BYTES);
    ck_assert_str_eq(o.message, want);
    free(h);
}
END_TEST

START_TEST(an_expired_token_is_refused)
{
    account a = make_account(TW_ROLE_USER, false);
    int64_t now = tw_wall_ms() / 1000;
    char *h = bearer_signed(&a, now - 2 * TW_ACCESS_TOKEN_TTL_S, TW_ACCESS_TOKEN_TTL_S, NULL);
    assert_refused(unary(channel, USER_METHOD, h), GRPC_STATUS_UNAUTHENTICATED, "AUTH_003");
    free(h);
}
END_TEST

START_TEST(a_token_signed_with_another_key_is_refused)
{
    account a = make_account(TW_ROLE_USER, false);
    tw_jwt_key key;
    tw_keyring_current(auth.keys, &key);
    key.secret[0] ^= 1; /* the same kid, another secret */
    char *h = bearer_signed(&a, tw_wall_ms() / 1000, TW_ACCESS_TOKEN_TTL_S, &key);
    assert_refused(unary(channel, USER_METHOD, h), GRPC_STATUS_UNAUTHENTICATED, "AUTH_001");
    free(h);
    snprintf(key.kid, sizeof key.kid, "no-such-key"); /* a kid the ring does not have */
    h = bearer_signed(&a, tw_wall_ms() / 1000, TW_ACCESS_TOKEN_TTL_S, &key);
    assert_refused(unary(channel, USER_METHOD, h), GRPC_STATUS_UNAUTHENTICATED, "AUTH_001");
    free(h);
}
END_TEST

START_TEST(a_token_of_a_revoked_session_is_refused)
{
    account a = make_account(TW_ROLE_USER, false);
    char *h = bearer(&a);
    assert_admitted(unary(channel, USER_METHOD, h), &a, TW_ROLE_USER);
    revoke(&a);
    assert_refused(unary(channel, USER_METHOD, h), GRPC_STATUS_UNAUTHENTICATED, "AUTH_004");
    free(h);
}
END_TEST

START_TEST(a_disabled_account_is_refused)
{
    account a = make_account(TW_ROLE_USER, true);
    char *h = bearer(&a);
    assert_refused(unary(channel, USER_METHOD, h), GRPC_STATUS_UNAUTHENTICATED, "AUTH_005");
    free(h);
}
END_TEST

/* The token was admitted (and its verification remembered) before the
 * account was disabled: the next call is refused all the same. */
START_TEST(an_account_disabled_after_a_call_is_refused_at_once)
{
    account a = make_account(TW_ROLE_USER, false);
    char *h = bearer(&a);
    assert_admitted(unary(channel, USER_METHOD, h), &a, TW_ROLE_USER);
    put_session(&a, TW_ROLE_USER, true);
    assert_refused(unary(channel, USER_METHOD, h), GRPC_STATUS_UNAUTHENTICATED, "AUTH_005");
    free(h);
}
END_TEST

/* Likewise a role taken away: the session's role counts, call by call. */
START_TEST(a_role_taken_away_counts_at_once)
{
    account a = make_account(TW_ROLE_ADMIN, false);
    char *h = bearer(&a);
    assert_admitted(unary(channel, USER_METHOD, h), &a, TW_ROLE_ADMIN);
    put_session(&a, TW_ROLE_USER, false);
    assert_admitted(unary(channel, USER_METHOD, h), &a, TW_ROLE_USER);
    assert_refused(admin_call(channel, h), GRPC_STATUS_PERMISSION_DENIED, "AUTH_007");
    free(h);
}
END_TEST

START_TEST(admin_methods_need_the_admin_role)
{
    account user = make_account(TW_ROLE_USER, false);
    account admin = make_account(TW_ROLE_ADMIN, false);
    char *hu = bearer(&user), *ha = bearer(&admin);
    assert_refused(admin_call(channel, hu), GRPC_STATUS_PERMISSION_DENIED, "AUTH_007");
    assert_refused(admin_call(channel, NULL), GRPC_STATUS_UNAUTHENTICATED, "AUTH_002");
    outcome o = admin_call(channel, ha);
    ck_assert_msg(o.status == GRPC_STATUS_OK, "status %d (%s)", (int)o.status, o.message);
    /* An admin is a user too, with the admin role. */
    assert_admitted(unary(channel, USER_METHOD, ha), &admin, TW_ROLE_ADMIN);
    free(hu);
    free(ha);
}
END_TEST

START_TEST(the_operator_socket_is_an_admin_but_no_user)
{
    /* Admin and public methods need no token through the socket... */
    outcome o = admin_call(operator_channel, NULL);
    ck_assert_msg(o.status == GRPC_STATUS_OK, "status %d (%s)", (int)o.status, o.message);
    assert_admitted(unary(operator_channel, PUBLIC_METHOD, NULL), NULL, TW_ROLE_ADMIN);
    /* ...but a user's own calls do, and then act as that user. */
    assert_refused(unary(operator_channel, USER_METHOD, NULL), GRPC_STATUS_UNAUTHENTICATED,
                   "AUTH_002");
    account a = make_account(TW_ROLE_USER, false);
    char *h = bearer(&a);
    assert_admitted(unary(operator_channel, USER_METHOD, h), &a, TW_ROLE_USER);
    free(h);
}
END_TEST

START_TEST(maintenance_lets_only_admins_and_sign_ins_through)
{
    account user = make_account(TW_ROLE_USER, false);
    account admin = make_account(TW_ROLE_ADMIN, false);
    char *hu = bearer(&user), *ha = bearer(&admin);
    ck_assert_int_eq(tw_auth_set_maintenance(&auth, true, "back at noon"), TW_OK);
    outcome o = unary(channel, USER_METHOD, hu);
    assert_refused(o, GRPC_STATUS_UNAVAILABLE, "MAINTENANCE");
    ck_assert_str_eq(o.message, "back at noon");
    assert_refused(unary(channel, PUBLIC_METHOD, NULL), GRPC_STATUS_UNAVAILABLE, "MAINTENANCE");
    /* Signing in still works, so that admins can. */
    o = sign_in_call(channel);
    ck_assert_msg(o.status == GRPC_STATUS_OK, "status %d (%s)", (int)o.status, o.message);
    assert_admitted(unary(channel, USER_METHOD, ha), &admin, TW_ROLE_ADMIN);
    /* Without a message the table's own. */
    ck_assert_int_eq(tw_auth_set_maintenance(&auth, true, ""), TW_OK);
    o = unary(channel, USER_METHOD, hu);
    assert_refused(o, GRPC_STATUS_UNAVAILABLE, "MAINTENANCE");
    ck_assert_str_eq(o.message, tw_err_message(TW_ERR_MAINTENANCE));
    ck_assert_int_eq(tw_auth_set_maintenance(&auth, false, ""), TW_OK);
    assert_admitted(unary(channel, USER_METHOD, hu), &user, TW_ROLE_USER);
    free(hu);
    free(ha);
}
END_TEST

START_TEST(each_user_has_an_api_rate_limit)
{
    account a = make_account(TW_ROLE_USER, false);
    account b = make_account(TW_ROLE_USER, false);
    char *ha = bearer(&a), *hb = bearer(&b);
    int admitted = 0;
    outcome o = {0};
    for (int i = 0; i < 2 * API_LIMIT && o.status == GRPC_STATUS_OK; i++) {
        o = unary(channel, USER_METHOD, ha);
        admitted += o.status == GRPC_STATUS_OK;
    }
    ck_assert_int_eq(admitted, API_LIMIT);
    assert_refused(o, GRPC_STATUS_RESOURCE_EXHAUSTED, "RATE_001");
    ck_assert(o.retry_info);
    ck_assert_msg(strncmp(o.message, "too many calls; retry in ", 25) == 0, "%s", o.message);
    /* Another user is not held up; public methods count for nobody. */
    assert_admitted(unary(channel, USER_METHOD, hb), &b, TW_ROLE_USER);
    assert_admitted(unary(channel, PUBLIC_METHOD, NULL), NULL, "");
    free(ha);
    free(hb);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("gate");
    TCase *tc = tcase_create("gate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, public_methods_need_nobody);
    tcase_add_test(tc, a_valid_token_names_the_caller);
    tcase_add_test(tc, the_scheme_is_case_insensitive);
    tcase_add_test(tc, a_missing_token_is_refused);
    tcase_add_test(tc, a_malformed_authorization_is_refused);
    tcase_add_test(tc, an_oversized_token_is_refused_with_its_size);
    tcase_add_test(tc, an_expired_token_is_refused);
    tcase_add_test(tc, a_token_signed_with_another_key_is_refused);
    tcase_add_test(tc, a_token_of_a_revoked_session_is_refused);
    tcase_add_test(tc, a_disabled_account_is_refused);
    tcase_add_test(tc, an_account_disabled_after_a_call_is_refused_at_once);
    tcase_add_test(tc, a_role_taken_away_counts_at_once);
    tcase_add_test(tc, admin_methods_need_the_admin_role);
    tcase_add_test(tc, the_operator_socket_is_an_admin_but_no_user);
    tcase_add_test(tc, maintenance_lets_only_admins_and_sign_ins_through);
    tcase_add_test(tc, each_user_has_an_api_rate_limit);
    suite_add_tcase(s, tc);
    return s;
}
