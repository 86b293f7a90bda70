/*
 * tw.v1.AuthService: accounts, sign-in and sessions.
 *
 * Calls that hash a password (Register, Login) run their work on the
 * password pool (auth/auth.h) and finish the call from there; the rest run
 * on the RPC thread like any handler. The gate has already checked the
 * caller's token for everything but Register, Login and RefreshToken.
 */
#include "services.h"

#include "auth/account.h"
#include "auth/auth.h"
#include "auth/session.h"
#include "tw_time.h"
#include "tw_unique.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIME_ZONE "UTC"
#define DEFAULT_LOCALE    "en"

static tw_auth *call_auth(tw_call *call)
{
    return ((tw_app *)tw_call_service_ctx(call))->auth;
}

/* Storage failures: the client gets the table's message, the log the detail. */
static tw_err store_error(tw_call *call, tw_err err)
{
    if (err == TW_ERR_DB || err == TW_ERR_DB_CORRUPT || err == TW_ERR_DB_READ_ONLY ||
        err == TW_ERR_CONFLICT)
        tw_call_log_detail(call, "%s", tw_store_last_error());
    return err;
}

static void caller_ids(tw_call *call, tw_id *user, tw_id *session)
{
    tw_id_parse(tw_call_user_id(call), user);
    if (session != NULL)
        tw_id_parse(tw_call_session_id(call), session);
}

static tw_err check_device(tw_call *call, const Tw__V1__Device *device)
{
    char why[160];
    if (device == NULL)
        return TW_OK;
    if (!tw_display_name_valid(device->name, true, why, sizeof why))
        return tw_call_field_violation(call, "device.name", "%s", why);
    if (device->platform < 0 || device->platform > TW__V1__PLATFORM__PLATFORM_OTHER)
        return tw_call_field_violation(call, "device.platform", "is not a known platform");
    return TW_OK;
}

/* ---- work on the password pool ---------------------------------------------- */

/* A call whose password work runs on the pool. */
struct hash_job {
    tw_call *call;
    tw_auth *auth;
    const ProtobufCMessage *request;
    ProtobufCMessage *response;
    char email[TW_EMAIL_MAX + 1];
    tw_login_ticket ticket; /* Login */
};

static tw_err defer(tw_call *call, void (*run)(void *), const ProtobufCMessage *request,
                    ProtobufCMessage *response, const char *email, const tw_login_ticket *ticket)
{
    struct hash_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return TW_ERR_NO_MEMORY;
    job->call = call;
    job->auth = call_auth(call);
    job->request = request;
    job->response = response;
    snprintf(job->email, sizeof job->email, "%s", email);
    if (ticket != NULL)
        job->ticket = *ticket;
    tw_err err = tw_pool_submit(job->auth->hash_pool, run, job);
    if (err)
        free(job);
    return err;
}

/* What a sign-in writes: the account (rehashed or new) and a new session. */
struct sign_in {
    Tw__Store__V1__Account *account; /* Register: the new account */
    const tw_id *user;               /* Login: whose account to read */
    const char *new_hash;            /* Login: a stronger hash, or NULL */
    const Tw__V1__Device *device;
    int64_t now_ms;
    tw_arena *arena;
    Tw__Store__V1__Session *session; /* out */
};

static tw_err sign_in_txn(tw_txn *t, void *ctx)
{
    struct sign_in *s = ctx;
    tw_err err;
    if (s->user == NULL) {
        err = tw_txn_account_create(t, s->account);
    } else {
        /* Read for update: a concurrent disable, password change or deletion
         * conflicts with this sign-in instead of missing its session. */
        err = tw_txn_account_load(t, s->user, s->arena, &s->account);
        if (!err && s->account->disabled)
            err = TW_ERR_AUTH_DISABLED;
        if (!err && s->new_hash != NULL) {
            s->account->password_hash = (char *)s->new_hash;
            err = tw_txn_account_put(t, s->account);
        }
    }
    if (!err)
        err = tw_txn_session_create(t, s->account, s->device ? s->device->name : "",
                                    s->device ? (int)s->device->platform : 0, s->now_ms, s->arena,
                                    &s->session);
    return err;
}

/* Runs the sign-in write and fills the user and tokens of a response. */
static tw_err sign_in(tw_call *call, tw_auth *auth, struct sign_in *s, Tw__V1__User **user,
                      Tw__V1__Tokens **tokens)
{
    tw_err err = tw_txn_run(auth->store, sign_in_txn, s);
    if (err == TW_ERR_NOT_FOUND) /* deleted meanwhile */
        return TW_ERR_AUTH_BAD_CREDENTIALS;
    if (err)
        return store_error(call, err);
    tw_id id;
    memcpy(id.bytes, s->account->id.data, TW_ID_BYTES);
    *user = tw_account_to_user(s->account, s->arena);
    err = tw_session_tokens(auth->keys, &id, s->session, s->now_ms, s->arena, tokens);
    return err ? err : (*user ? TW_OK : TW_ERR_NO_MEMORY);
}

/* A call that waited in the queue past its deadline is not worth hashing for. */
static bool expired_in_queue(struct hash_job *job)
{
    if (tw_call_time_left_ms(job->call) > 0)
        return false;
    tw_call_finish(job->call, TW_ERR_DEADLINE);
    return true;
}

/* ---- Register ------------------------------------------------------------------- */

static void run_register(void *arg)
{
    struct hash_job *job = arg;
    tw_call *call = job->call;
    const Tw__V1__RegisterRequest *in = (const void *)job->request;
    Tw__V1__RegisterResponse *out = (void *)job->response;
    if (expired_in_queue(job)) {
        free(job);
        return;
    }
    tw_arena *arena = tw_call_arena(call);
    char *hash = NULL;
    tw_err err = tw_password_hash(in->password, job->auth->cost, &hash);
    int64_t now = tw_wall_ms();
    tw_id id = tw_id_new();
    Tw__Store__V1__Account account = TW__STORE__V1__ACCOUNT__INIT;
    account.id = (ProtobufCBinaryData){TW_ID_BYTES, id.bytes};
    account.email = tw_arena_strdup(arena, job->email); /* the response outlives job */
    account.password_hash = hash;
    account.display_name = in->display_name;
    account.time_zone = in->time_zone[0] ? in->time_zone : DEFAULT_TIME_ZONE;
    account.locale = in->locale[0] ? in->locale : DEFAULT_LOCALE;
    account.role = TW_ROLE_USER;
    account.state = TW__STORE__V1__ACCOUNT_STATE__ACCOUNT_STATE_ACTIVE;
    account.create_unix_ms = account.update_unix_ms = now;
    struct sign_in s = {.account = &account, .device = in->device, .now_ms = now, .arena = arena};
    if (!err)
        err = sign_in(call, job->auth, &s, &out->user, &out->tokens);
    if (err == TW_ERR_ALREADY_EXISTS)
        err = tw_call_error(call, err, "an account with this email already exists");
    free(hash);
    free(job);
    tw_call_finish(call, err);
}

static tw_err do_register(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__RegisterRequest *in = (const void *)request;
    char email[TW_EMAIL_MAX + 1], why[160];
    if (!tw_email_normalise(in->email, email, why, sizeof why))
        return tw_call_field_violation(call, "email", "%s", why);
    if (!tw_password_acceptable(in->password, why, sizeof why))
        return tw_call_field_violation(call, "password", "%s", why);
    if (!tw_display_name_valid(in->display_name, false, why, sizeof why))
        return tw_call_field_violation(call, "display_name", "%s", why);
    if (in->time_zone[0] && !tw_time_zone_valid(in->time_zone, why, sizeof why))
        return tw_call_field_violation(call, "time_zone", "%s", why);
    if (in->locale[0] && !tw_locale_valid(in->locale, why, sizeof why))
        return tw_call_field_violation(call, "locale", "%s", why);
    tw_err err = check_device(call, in->device);
    if (err)
        return err;
    /* Spare the hash when the email is plainly taken; the write checks again. */
    tw_id owner;
    err = tw_store_unique_lookup(call_auth(call)->store, TW_EMAIL_SPACE, email, &owner);
    if (err == TW_OK)
        return tw_call_error(call, TW_ERR_ALREADY_EXISTS,
                             "an account with this email already exists");
    if (err != TW_ERR_NOT_FOUND)
        return store_error(call, err);
    err = defer(call, run_register, request, response, email, NULL);
    return err ? err : TW_DEFERRED;
}

/* ---- Login ------------------------------------------------------------------------ */

static void run_login(void *arg)
{
    struct hash_job *job = arg;
    tw_call *call = job->call;
    tw_auth *auth = job->auth;
    const Tw__V1__LoginRequest *in = (const void *)job->request;
    Tw__V1__LoginResponse *out = (void *)job->response;
    tw_arena *arena = tw_call_arena(call);
    if (expired_in_queue(job)) {
        tw_login_end(auth->logins, &job->ticket, false, tw_wall_ms());
        free(job);
        return;
    }
    /* An unknown email costs one hash too, so timing tells nothing. */
    tw_id user;
    Tw__Store__V1__Account *account = NULL;
    tw_err err = tw_store_unique_lookup(auth->store, TW_EMAIL_SPACE, job->email, &user);
    if (err == TW_OK)
        err = tw_account_load(auth->store, &user, arena, &account);
    bool match = false, weaker = false;
    if (err == TW_ERR_NOT_FOUND) {
        tw_password_burn(in->password, auth->cost);
        err = TW_OK;
    } else if (err == TW_OK) {
        err = tw_password_verify(in->password, account->password_hash, auth->cost, &match, &weaker);
    }
    tw_login_end(auth->logins, &job->ticket, !err && !match, tw_wall_ms());
    char *stronger = NULL;
    if (!err && !match)
        err = TW_ERR_AUTH_BAD_CREDENTIALS;
    else if (!err && account->disabled)
        err = TW_ERR_AUTH_DISABLED;
    else if (!err && strcmp(account->role, TW_ROLE_ADMIN) != 0 &&
             tw_auth_maintenance(auth, NULL, 0))
        err = TW_ERR_MAINTENANCE; /* the gate let this sign-in through to find out who */
    else if (!err && weaker)
        err = tw_password_hash(in->password, auth->cost, &stronger);
    if (err == TW_ERR_MAINTENANCE) {
        char message[TW_MAINTENANCE_MESSAGE_MAX + 1];
        if (tw_auth_maintenance(auth, message, sizeof message) && message[0])
            err = tw_call_error(call, err, "%s", message);
    }
    struct sign_in s = {.user = &user,
                        .new_hash = stronger,
                        .device = in->device,
                        .now_ms = tw_wall_ms(),
                        .arena = arena};
    if (!err)
        err = sign_in(call, auth, &s, &out->user, &out->tokens);
    else
        err = store_error(call, err);
    free(stronger);
    free(job);
    tw_call_finish(call, err);
}

static tw_err do_login(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__LoginRequest *in = (const void *)request;
    char email[TW_EMAIL_MAX + 1], why[160];
    if (!tw_email_normalise(in->email, email, why, sizeof why))
        return tw_call_field_violation(call, "email", "%s", why);
    if (in->password[0] == '\0')
        return tw_call_field_violation(call, "password", "is required");
    if (strlen(in->password) > TW_PASSWORD_MAX_BYTES)
        return tw_call_field_violation(call, "password", "must be at most %d bytes",
                                       TW_PASSWORD_MAX_BYTES);
    tw_err err = check_device(call, in->device);
    if (err)
        return err;
    tw_auth *auth = call_auth(call);
    char peer[64];
    tw_login_peer_address(tw_call_peer(call), peer, sizeof peer);
    tw_login_ticket ticket;
    int64_t retry_ms = 0;
    err = tw_login_begin(auth->logins, email, peer, tw_wall_ms(), &ticket, &retry_ms);
    if (err == TW_ERR_RATE_LIMITED) {
        tw_call_retry_after(call, retry_ms);
        return tw_call_error(call, err, "too many failed sign-ins; retry in %lld s",
                             (long long)(retry_ms + 999) / 1000);
    }
    if (err)
        return store_error(call, err);
    err = defer(call, run_login, request, response, email, &ticket);
    if (err)
        tw_login_end(auth->logins, &ticket, false, tw_wall_ms());
    return err ? err : TW_DEFERRED;
}

/* ---- RefreshToken ------------------------------------------------------------------- */

enum refresh_outcome { REFRESHED, REUSED, EXPIRED };

struct refresh {
    tw_id user, session;
    uint32_t generation;
    uint8_t mac[TW_REFRESH_MAC_BYTES];
    int64_t now_ms;
    tw_auth *auth;
    tw_arena *arena;
    enum refresh_outcome outcome;
    Tw__Store__V1__Session *s; /* out */
};

static tw_err refresh_txn(tw_txn *t, void *ctx)
{
    struct refresh *r = ctx;
    tw_key k;
    tw_session_key(&k, &r->user, &r->session);
    tw_value v;
    tw_err err = tw_txn_get_for_update(t, &k, r->arena, &v);
    if (err == TW_ERR_NOT_FOUND)
        return TW_ERR_AUTH_REVOKED;
    if (err)
        return err;
    Tw__Store__V1__Session *s = (void *)v.msg;
    uint8_t expected[TW_REFRESH_MAC_BYTES];
    if (s->refresh_key.len != 32)
        return TW_ERR_DB_CORRUPT;
    tw_refresh_token_mac(s->refresh_key.data, &r->user, &r->session, r->generation, expected);
    /* A forgery changes nothing; a genuine old token means a copy is loose. */
    if (CRYPTO_memcmp(expected, r->mac, sizeof expected) != 0 || r->generation > s->generation)
        return TW_ERR_AUTH_INVALID_TOKEN;
    if (r->generation < s->generation || s->expire_unix_ms <= r->now_ms) {
        r->outcome = r->generation < s->generation ? REUSED : EXPIRED;
        return tw_txn_delete(t, &k);
    }
    if (s->disabled)
        return TW_ERR_AUTH_DISABLED;
    if (strcmp(s->role, TW_ROLE_ADMIN) != 0 && tw_auth_maintenance(r->auth, NULL, 0))
        return TW_ERR_MAINTENANCE;
    s->generation++;
    s->last_seen_unix_ms = r->now_ms;
    s->expire_unix_ms = r->now_ms + TW_REFRESH_TOKEN_TTL_MS;
    r->outcome = REFRESHED;
    r->s = s;
    return tw_txn_put(t, &k, &(tw_value){.msg = &s->base});
}

static tw_err do_refresh_token(tw_call *call, const ProtobufCMessage *request,
                               ProtobufCMessage *response)
{
    const Tw__V1__RefreshTokenRequest *in = (const void *)request;
    Tw__V1__RefreshTokenResponse *out = (void *)response;
    struct refresh r = {
        .now_ms = tw_wall_ms(), .auth = call_auth(call), .arena = tw_call_arena(call)};
    if (in->refresh_token[0] == '\0')
        return tw_call_field_violation(call, "refresh_token", "is required");
    if (!tw_refresh_token_parse(in->refresh_token, &r.user, &r.session, &r.generation, r.mac))
        return tw_call_error(call, TW_ERR_AUTH_INVALID_TOKEN, "refresh token is not valid");
    tw_err err = tw_txn_run(r.auth->store, refresh_txn, &r);
    if (err == TW_ERR_MAINTENANCE) {
        char message[TW_MAINTENANCE_MESSAGE_MAX + 1];
        if (tw_auth_maintenance(r.auth, message, sizeof message) && message[0])
            return tw_call_error(call, err, "%s", message);
    }
    if (err)
        return store_error(call, err);
    if (r.outcome == REUSED)
        return tw_call_error(call, TW_ERR_AUTH_REVOKED,
                             "refresh token was already used; the session has been ended");
    if (r.outcome == EXPIRED)
        return tw_call_error(call, TW_ERR_AUTH_EXPIRED_TOKEN, "refresh token has expired");
    return tw_session_tokens(r.auth->keys, &r.user, r.s, r.now_ms, r.arena, &out->tokens);
}

/* ---- Logout, LogoutAll ----------------------------------------------------------------- */

struct logout {
    tw_id user, session;
    bool all;
    int count;
};

static tw_err logout_txn(tw_txn *t, void *ctx)
{
    struct logout *l = ctx;
    if (l->all)
        return tw_txn_sessions_revoke(t, &l->user, NULL, &l->count);
    tw_key k;
    tw_session_key(&k, &l->user, &l->session);
    l->count = 1;
    return tw_txn_delete(t, &k);
}

static tw_err do_logout(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    struct logout l = {.all = false};
    caller_ids(call, &l.user, &l.session);
    return store_error(call, tw_txn_run(call_auth(call)->store, logout_txn, &l));
}

static tw_err do_logout_all(tw_call *call, const ProtobufCMessage *request,
                            ProtobufCMessage *response)
{
    struct logout l = {.all = true};
    caller_ids(call, &l.user, NULL);
    tw_err err = tw_txn_run(call_auth(call)->store, logout_txn, &l);
    ((Tw__V1__LogoutAllResponse *)response)->session_count = l.count;
    return store_error(call, err);
}

/* ---- GetMe ------------------------------------------------------------------------------- */

static tw_err do_get_me(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    Tw__V1__GetMeResponse *out = (void *)response;
    tw_id user;
    caller_ids(call, &user, NULL);
    Tw__Store__V1__Account *account;
    tw_err err = tw_account_load(call_auth(call)->store, &user, tw_call_arena(call), &account);
    if (err)
        return store_error(call, err);
    out->user = tw_account_to_user(account, tw_call_arena(call));
    return out->user ? TW_OK : TW_ERR_NO_MEMORY;
}

static const tw_method auth_methods[] = {
    {"Register", TW_UNARY, TW_PUBLIC | TW_WRITE, .handle = do_register},
    {"Login", TW_UNARY, TW_PUBLIC | TW_SIGN_IN | TW_WRITE, .handle = do_login},
    {"RefreshToken", TW_UNARY, TW_PUBLIC | TW_SIGN_IN | TW_WRITE, .handle = do_refresh_token},
    {"Logout", TW_UNARY, TW_WRITE | TW_IDEMPOTENT, .handle = do_logout},
    {"LogoutAll", TW_UNARY, TW_WRITE | TW_IDEMPOTENT, .handle = do_logout_all},
    {"GetMe", TW_UNARY, 0, .handle = do_get_me},
    {NULL},
};

tw_err tw_auth_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    static tw_service auth_service = {
        .descriptor = &tw__v1__auth_service__descriptor,
        .methods = auth_methods,
    };
    auth_service.ctx = app;
    return tw_engine_add_service(engine, &auth_service, errbuf, errlen);
}
