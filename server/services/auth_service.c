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
#include "auth/deletion.h"
#include "auth/session.h"
#include "jobs.h"
#include "kit/kit.h"
#include "kit/mask.h"
#include "tw_counter.h"
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

static void caller_ids(tw_call *call, tw_id *user, tw_id *session)
{
    *user = *tw_call_caller(call);
    if (session != NULL)
        *session = *tw_call_session(call);
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

/* RESOURCE_EXHAUSTED RATE_001 with a RetryInfo, for sign-ins. */
static tw_err limited(tw_call *call, int64_t retry_ms)
{
    tw_call_retry_after(call, retry_ms);
    return tw_call_error(call, TW_ERR_RATE_LIMITED, "too many failed sign-ins; retry in %lld s",
                         (long long)(retry_ms + 999) / 1000);
}

/* RESOURCE_EXHAUSTED RATE_004 with a RetryInfo: the password pool's queue
 * is full. Come back when what is ahead should be done, give or take a
 * random half of that, so refused clients do not all return at once. */
static tw_err hashing_busy(tw_call *call, tw_auth *auth)
{
    static _Thread_local unsigned seed;
    if (seed == 0)
        seed = (unsigned)tw_mono_ns() | 1;
    int64_t rounds = (int64_t)tw_pool_waiting(auth->hash_pool) / auth->hash_threads + 1;
    int64_t ahead_ms = rounds * tw_password_hash_ms();
    int64_t retry_ms = ahead_ms + (int64_t)(rand_r(&seed) % (unsigned)(ahead_ms / 2 + 1));
    tw_call_retry_after(call, retry_ms);
    return tw_call_error(call, TW_ERR_SIGN_IN_BUSY, "too many sign-ins at once; retry in %lld ms",
                         (long long)retry_ms);
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
    tw_auth *auth = job->auth;
    tw_err err = tw_pool_submit(auth->hash_pool, run, job);
    if (err)
        free(job);
    return err == TW_ERR_BUSY ? hashing_busy(call, auth) : err;
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
        return tw_kit_fail(call, err);
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
    int64_t now = tw_call_now_ms(call);
    struct sign_in s = {.device = in->device, .now_ms = now, .arena = arena};
    if (!err) {
        s.account = tw_account_new(arena, job->email, hash, in->display_name,
                                   in->time_zone[0] ? in->time_zone : DEFAULT_TIME_ZONE,
                                   in->locale[0] ? in->locale : DEFAULT_LOCALE, TW_ROLE_USER, now);
        err = s.account ? TW_OK : TW_ERR_NO_MEMORY;
    }
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
        return tw_kit_fail(call, err);
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
        (void)tw_login_end(auth->logins, &job->ticket, false, tw_call_now_ms(call), NULL);
        free(job);
        return;
    }
    /* An unknown email costs one hash too, so timing tells nothing. */
    tw_id user;
    Tw__Store__V1__Account *account = NULL;
    tw_err err = tw_account_find_by_email(auth->store, in->email, arena, &user);
    if (err == TW_OK)
        err = tw_account_load(auth->store, &user, arena, &account);
    bool match = false, weaker = false;
    if (err == TW_ERR_NOT_FOUND) {
        tw_password_burn(in->password, auth->cost);
        err = TW_OK;
    } else if (err == TW_OK) {
        err = tw_password_verify(in->password, account->password_hash, auth->cost, &match, &weaker);
    }
    if (err)
        (void)tw_login_end(auth->logins, &job->ticket, false, tw_call_now_ms(call), NULL);
    int64_t retry_ms = 0;
    if (!err && tw_login_end(auth->logins, &job->ticket, !match, tw_call_now_ms(call), &retry_ms))
        err = limited(call, retry_ms);
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
                        .now_ms = tw_call_now_ms(call),
                        .arena = arena};
    if (!err)
        err = sign_in(call, auth, &s, &out->user, &out->tokens);
    else
        err = tw_kit_fail(call, err);
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
    err = tw_login_begin(auth->logins, email, peer, tw_call_now_ms(call), &ticket, &retry_ms);
    if (err == TW_ERR_RATE_LIMITED)
        return limited(call, retry_ms);
    if (err)
        return tw_kit_fail(call, err);
    err = defer(call, run_login, request, response, email, &ticket);
    if (err)
        (void)tw_login_end(auth->logins, &ticket, false, tw_call_now_ms(call), NULL);
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
        .now_ms = tw_call_now_ms(call), .auth = call_auth(call), .arena = tw_call_arena(call)};
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
        return tw_kit_fail(call, err);
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
    return tw_kit_fail(call, tw_txn_run(call_auth(call)->store, logout_txn, &l));
}

static tw_err do_logout_all(tw_call *call, const ProtobufCMessage *request,
                            ProtobufCMessage *response)
{
    struct logout l = {.all = true};
    caller_ids(call, &l.user, NULL);
    tw_err err = tw_txn_run(call_auth(call)->store, logout_txn, &l);
    ((Tw__V1__LogoutAllResponse *)response)->session_count = l.count;
    return tw_kit_fail(call, err);
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
        return tw_kit_fail(call, err);
    out->user = tw_account_to_user(account, tw_call_arena(call));
    return out->user ? TW_OK : TW_ERR_NO_MEMORY;
}

/* ---- UpdateMe ----------------------------------------------------------------------------- */

enum { SET_NAME = 1, SET_ZONE = 2, SET_LOCALE = 4, SET_HOUR = 8, SET_ALL = 15 };

/* The paths UpdateMe reads (kit/mask.h); "*" names all four. */
static const tw_mask_path profile_paths[] = {
    {"display_name", SET_NAME, NULL},   {"time_zone", SET_ZONE, NULL}, {"locale", SET_LOCALE, NULL},
    {"day_start_hour", SET_HOUR, NULL}, {"*", SET_ALL, NULL},          {NULL},
};

struct update_me {
    tw_id user;
    const Tw__V1__User *in;
    unsigned fields;
    int64_t now_ms;
    tw_arena *arena;
    Tw__Store__V1__Account *account; /* out */
};

static tw_err update_me_txn(tw_txn *t, void *ctx)
{
    struct update_me *u = ctx;
    tw_err err = tw_txn_account_load(t, &u->user, u->arena, &u->account);
    if (err)
        return err;
    Tw__Store__V1__Account *a = u->account;
    if (u->fields & SET_NAME)
        a->display_name = u->in->display_name;
    if (u->fields & SET_ZONE)
        a->time_zone = u->in->time_zone;
    if (u->fields & SET_LOCALE)
        a->locale = u->in->locale;
    if (u->fields & SET_HOUR)
        a->day_start_hour = u->in->day_start_hour;
    a->update_unix_ms = u->now_ms;
    return tw_txn_account_put(t, a);
}

/* Every bad field of the profile, into the call's violations. */
static void check_profile(tw_call *call, const Tw__V1__User *in, unsigned fields)
{
    char why[160];
    if ((fields & SET_NAME) && !tw_display_name_valid(in->display_name, false, why, sizeof why))
        tw_call_field_violation(call, "user.display_name", "%s", why);
    if ((fields & SET_ZONE) && !tw_time_zone_valid(in->time_zone, why, sizeof why))
        tw_call_field_violation(call, "user.time_zone", "%s", why);
    if ((fields & SET_LOCALE) && !tw_locale_valid(in->locale, why, sizeof why))
        tw_call_field_violation(call, "user.locale", "%s", why);
    if ((fields & SET_HOUR) && (in->day_start_hour < 0 || in->day_start_hour > 23))
        tw_call_field_violation(call, "user.day_start_hour", "must be from 0 to 23");
}

static tw_err do_update_me(tw_call *call, const ProtobufCMessage *request,
                           ProtobufCMessage *response)
{
    const Tw__V1__UpdateMeRequest *in = (const void *)request;
    struct update_me u = {
        .in = in->user, .now_ms = tw_call_now_ms(call), .arena = tw_call_arena(call)};
    tw_err err = tw_mask_parse(in->update_mask, profile_paths, SET_ALL, "User", "update_mask",
                               tw_call_violations(call), &u.fields);
    if (in->user == NULL)
        tw_call_field_violation(call, "user", "is required");
    else
        check_profile(call, in->user, u.fields);
    if (err || tw_violations_any(tw_call_violations(call)))
        return err ? err : TW_ERR_VALIDATION;
    caller_ids(call, &u.user, NULL);
    if ((err = tw_txn_run(call_auth(call)->store, update_me_txn, &u)))
        return tw_kit_fail(call, err);
    Tw__V1__UpdateMeResponse *out = (void *)response;
    out->user = tw_account_to_user(u.account, u.arena);
    return out->user ? TW_OK : TW_ERR_NO_MEMORY;
}

/* ---- ChangePassword, DeleteAccount: the password again ------------------------------------ */

/* What a password-confirmed change writes. */
struct confirmed {
    tw_id user, session;
    const char *checked_hash; /* the hash the password was checked against */
    const char *new_hash;     /* ChangePassword */
    tw_arena *arena;
    int64_t now_ms; /* the call's */
    int revoked;
};

/* Loads the caller's account, read for update, unchanged since the check. */
static tw_err load_checked(tw_txn *t, struct confirmed *c, Tw__Store__V1__Account **a)
{
    tw_err err = tw_txn_account_load(t, &c->user, c->arena, a);
    if (!err && strcmp((*a)->password_hash, c->checked_hash) != 0)
        err = TW_ERR_CONFLICT; /* changed meanwhile: the check no longer holds */
    return err;
}

static tw_err change_password_txn(tw_txn *t, void *ctx)
{
    struct confirmed *c = ctx;
    Tw__Store__V1__Account *a;
    tw_err err = load_checked(t, c, &a);
    if (err)
        return err;
    a->password_hash = (char *)c->new_hash;
    a->update_unix_ms = c->now_ms;
    err = tw_txn_account_put(t, a);
    return err ? err : tw_txn_sessions_revoke(t, &c->user, &c->session, &c->revoked);
}

static tw_err delete_account_txn(tw_txn *t, void *ctx)
{
    struct confirmed *c = ctx;
    Tw__Store__V1__Account *a;
    tw_err err = load_checked(t, c, &a);
    if (err)
        return err;
    a->state = TW__STORE__V1__ACCOUNT_STATE__ACCOUNT_STATE_DELETING;
    a->update_unix_ms = c->now_ms;
    tw_key k;
    tw_account_key(&k, &c->user);
    if ((err = tw_txn_put(t, &k, &(tw_value){.msg = &a->base})) ||
        (err = tw_txn_account_release_email(t, a, c->arena)) ||
        (err = tw_txn_sessions_revoke(t, &c->user, NULL, NULL)) ||
        (err = tw_txn_counter_add(t, &(tw_counter){.name = "account_deletions"},
                                  tw_store_day(a->update_unix_ms), 1)))
        return err;
    return tw_txn_enqueue_account_deletion(t, &c->user, a->email);
}

/* Checks the caller's password on the pool; TW_OK when it is right. The
 * attempt counts against the account's sign-in budget. */
static tw_err confirm_password(struct hash_job *job, const char *password,
                               Tw__Store__V1__Account **account)
{
    tw_call *call = job->call;
    tw_id user;
    caller_ids(call, &user, NULL);
    tw_err err = tw_account_load(job->auth->store, &user, tw_call_arena(call), account);
    bool match = false, weaker;
    if (!err)
        err = tw_password_verify(password, (*account)->password_hash, job->auth->cost, &match,
                                 &weaker);
    int64_t retry_ms = 0;
    if (!err &&
        tw_login_end(job->auth->logins, &job->ticket, !match, tw_call_now_ms(call), &retry_ms))
        err = limited(call, retry_ms);
    else if (err)
        (void)tw_login_end(job->auth->logins, &job->ticket, false, tw_call_now_ms(call), NULL);
    if (!err && !match)
        err = tw_call_error(call, TW_ERR_AUTH_WRONG_PASSWORD, "the password is incorrect");
    return err;
}

static void run_change_password(void *arg)
{
    struct hash_job *job = arg;
    tw_call *call = job->call;
    const Tw__V1__ChangePasswordRequest *in = (const void *)job->request;
    Tw__Store__V1__Account *account;
    char *hash = NULL;
    tw_err err = confirm_password(job, in->current_password, &account);
    if (!err)
        err = tw_password_hash(in->new_password, job->auth->cost, &hash);
    struct confirmed c = {
        .arena = tw_call_arena(call), .now_ms = tw_call_now_ms(call), .new_hash = hash};
    if (!err) {
        caller_ids(call, &c.user, &c.session);
        c.checked_hash = account->password_hash;
        err = tw_kit_fail(call, tw_txn_run(job->auth->store, change_password_txn, &c));
    }
    ((Tw__V1__ChangePasswordResponse *)job->response)->revoked_session_count = c.revoked;
    free(hash);
    free(job);
    tw_call_finish(call, err);
}

static void run_delete_account(void *arg)
{
    struct hash_job *job = arg;
    tw_call *call = job->call;
    const Tw__V1__DeleteAccountRequest *in = (const void *)job->request;
    Tw__Store__V1__Account *account;
    tw_err err = confirm_password(job, in->password, &account);
    struct confirmed c = {.arena = tw_call_arena(call), .now_ms = tw_call_now_ms(call)};
    if (!err) {
        caller_ids(call, &c.user, NULL);
        c.checked_hash = account->password_hash;
        err = tw_kit_fail(call, tw_txn_run(job->auth->store, delete_account_txn, &c));
    }
    if (!err)
        tw_jobs_wake(((tw_app *)tw_call_service_ctx(call))->jobs);
    free(job);
    tw_call_finish(call, err);
}

/* Reserves a sign-in attempt for the caller's account and defers run. */
static tw_err defer_confirmed(tw_call *call, void (*run)(void *), const ProtobufCMessage *request,
                              ProtobufCMessage *response)
{
    tw_auth *auth = call_auth(call);
    tw_id user;
    caller_ids(call, &user, NULL);
    Tw__Store__V1__Account *account;
    tw_err err = tw_account_load(auth->store, &user, tw_call_arena(call), &account);
    if (err)
        return tw_kit_fail(call, err);
    char peer[64];
    tw_login_peer_address(tw_call_peer(call), peer, sizeof peer);
    tw_login_ticket ticket;
    int64_t retry_ms = 0;
    err = tw_login_begin(auth->logins, account->email, peer, tw_call_now_ms(call), &ticket,
                         &retry_ms);
    if (err == TW_ERR_RATE_LIMITED)
        return limited(call, retry_ms);
    if (err)
        return tw_kit_fail(call, err);
    err = defer(call, run, request, response, account->email, &ticket);
    if (err)
        (void)tw_login_end(auth->logins, &ticket, false, tw_call_now_ms(call), NULL);
    return err ? err : TW_DEFERRED;
}

static tw_err do_change_password(tw_call *call, const ProtobufCMessage *request,
                                 ProtobufCMessage *response)
{
    const Tw__V1__ChangePasswordRequest *in = (const void *)request;
    char why[160];
    if (in->current_password[0] == '\0')
        return tw_call_field_violation(call, "current_password", "is required");
    if (!tw_password_acceptable(in->new_password, why, sizeof why))
        return tw_call_field_violation(call, "new_password", "%s", why);
    if (strcmp(in->new_password, in->current_password) == 0)
        return tw_call_field_violation(call, "new_password", "must differ from the current one");
    return defer_confirmed(call, run_change_password, request, response);
}

static tw_err do_delete_account(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__DeleteAccountRequest *in = (const void *)request;
    if (in->password[0] == '\0')
        return tw_call_field_violation(call, "password", "is required");
    return defer_confirmed(call, run_delete_account, request, response);
}

/* ---- ListSessions, RevokeSession ----------------------------------------------------------- */

static tw_err do_list_sessions(tw_call *call, const ProtobufCMessage *request,
                               ProtobufCMessage *response)
{
    Tw__V1__ListSessionsResponse *out = (void *)response;
    tw_store *store = call_auth(call)->store;
    tw_kit_page page;
    tw_err err = tw_kit_page_open(call, store, &page);
    if (err)
        return err;
    tw_id user, current;
    caller_ids(call, &user, &current);
    uint8_t *next;
    size_t next_len, count;
    if ((err = tw_session_list(store, &user, &current, page.cursor, page.cursor_len, page.size,
                               tw_call_arena(call), &out->sessions, &count, &next, &next_len)))
        return tw_kit_fail(call, err);
    out->n_sessions = count;
    return tw_kit_page_close(call, &page, next, next_len, &out->next_page_token);
}

static tw_err revoke_txn(tw_txn *t, void *ctx)
{
    const tw_id *ids = ctx; /* user, session */
    tw_key k;
    tw_session_key(&k, &ids[0], &ids[1]);
    tw_value v;
    tw_arena *arena = tw_arena_new(512);
    tw_err err = arena ? tw_txn_get_for_update(t, &k, arena, &v) : TW_ERR_NO_MEMORY;
    tw_arena_free(arena);
    return err ? err : tw_txn_delete(t, &k);
}

static tw_err do_revoke_session(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__RevokeSessionRequest *in = (const void *)request;
    tw_id ids[2];
    if (!tw_id_parse(in->session_id, &ids[1]))
        return tw_call_field_violation(call, "session_id", "must be a session id (a UUID)");
    caller_ids(call, &ids[0], NULL);
    tw_err err = tw_txn_run(call_auth(call)->store, revoke_txn, ids);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "no session %s", in->session_id);
    return tw_kit_fail(call, err);
}

static const tw_method auth_methods[] = {
    {"Register", TW_UNARY, TW_PUBLIC | TW_WRITE, .handle = do_register},
    {"Login", TW_UNARY, TW_PUBLIC | TW_SIGN_IN | TW_WRITE, .handle = do_login},
    {"RefreshToken", TW_UNARY, TW_PUBLIC | TW_SIGN_IN | TW_WRITE, .handle = do_refresh_token},
    {"Logout", TW_UNARY, TW_WRITE, .handle = do_logout},
    {"LogoutAll", TW_UNARY, TW_WRITE, .handle = do_logout_all},
    {"GetMe", TW_UNARY, 0, .handle = do_get_me},
    {"UpdateMe", TW_UNARY, TW_WRITE, .handle = do_update_me},
    {"ChangePassword", TW_UNARY, TW_WRITE, .handle = do_change_password},
    {"DeleteAccount", TW_UNARY, TW_WRITE, .handle = do_delete_account},
    {"ListSessions", TW_UNARY, 0, .handle = do_list_sessions},
    {"RevokeSession", TW_UNARY, TW_WRITE, .handle = do_revoke_session},
    {NULL},
};

/* Deleting an account for good runs as a durable job (auth/deletion.h). */
static const tw_job_type auth_jobs[] = {
    {TW_DELETE_ACCOUNT_JOB, tw_account_deletion_run, 10 * 60 * 1000},
    {NULL},
};

/* The runbook's account figures (account.c and DeleteAccount count them). */
static const tw_service_counter auth_counters[] = {
    {"registrations", "tw_registrations_total", "Accounts created (sign-ups and admin-made)."},
    {"account_deletions", "tw_account_deletions_total", "Accounts deleted."},
    {NULL},
};

static void auth_write_metrics(tw_app *app, FILE *out)
{
    fprintf(out,
            "# HELP tw_maintenance_mode 1 while maintenance mode is on.\n"
            "# TYPE tw_maintenance_mode gauge\n"
            "tw_maintenance_mode %d\n",
            app->auth ? tw_auth_maintenance(app->auth, NULL, 0) : 0);
}

const tw_service_def tw_auth_service = {
    .rpc = {.descriptor = &tw__v1__auth_service__descriptor, .methods = auth_methods},
    .jobs = auth_jobs,
    .counters = auth_counters,
    .write_metrics = auth_write_metrics,
};
