/* Unit tests for server/auth/session.c: refresh tokens round-trip and
 * refuse tampering; sessions are created under the cap, synced with their
 * account and revoked. And server/auth/session_cache.c: it answers as the
 * store does after every commit. */
#include "tw_check.h"

#include "auth/account.h"
#include "auth/session.h"
#include "auth/session_cache.h"
#include "store_fixture.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

START_TEST(refresh_tokens_parse_back_and_refuse_junk)
{
    tw_id user = tw_id_new(), session = tw_id_new(), u, s;
    uint8_t key[32] = {7}, mac[TW_REFRESH_MAC_BYTES], got[TW_REFRESH_MAC_BYTES];
    tw_refresh_token_mac(key, &user, &session, 42, mac);
    /* Build the token the way session.c does, through a stored session. */
    Tw__Store__V1__Session rec = TW__STORE__V1__SESSION__INIT;
    rec.id = (ProtobufCBinaryData){TW_ID_BYTES, session.bytes};
    rec.refresh_key = (ProtobufCBinaryData){32, key};
    rec.generation = 42;
    rec.expire_unix_ms = 1;
    tw_keyring *ring;
    ck_assert_int_eq(tw_keyring_open(fx.store, &ring), TW_OK);
    Tw__V1__Tokens *tokens;
    ck_assert_int_eq(tw_session_tokens(ring, &user, &rec, FX_EPOCH_MS, fx.arena, &tokens), TW_OK);
    tw_keyring_free(ring);
    uint32_t generation;
    ck_assert(tw_refresh_token_parse(tokens->refresh_token, &u, &s, &generation, got));
    ck_assert_mem_eq(u.bytes, user.bytes, TW_ID_BYTES);
    ck_assert_mem_eq(s.bytes, session.bytes, TW_ID_BYTES);
    ck_assert_uint_eq(generation, 42);
    ck_assert_mem_eq(got, mac, sizeof mac);
    ck_assert_ptr_nonnull(tokens->access_token);
    ck_assert_int_eq(tokens->access_token_expire_time->seconds,
                     FX_EPOCH_MS / 1000 + TW_ACCESS_TOKEN_TTL_S);

    char bad[200];
    snprintf(bad, sizeof bad, "%s", tokens->refresh_token);
    bad[1] = 'x';
    ck_assert(!tw_refresh_token_parse(bad, &u, &s, &generation, got));
    snprintf(bad, sizeof bad, "%s=", tokens->refresh_token);
    ck_assert(!tw_refresh_token_parse(bad, &u, &s, &generation, got));
    ck_assert(!tw_refresh_token_parse("rt1.", &u, &s, &generation, got));
    ck_assert(!tw_refresh_token_parse("", &u, &s, &generation, got));
}
END_TEST

static Tw__Store__V1__Account account;
static tw_id account_id;

struct create {
    int64_t now_ms;
    Tw__Store__V1__Session *out;
};

static tw_err create_txn(tw_txn *t, void *ctx)
{
    struct create *c = ctx;
    return tw_txn_session_create(t, &account, "phone", 1, c->now_ms, fx.arena, &c->out);
}

/* A fresh account (a user) in account and account_id. */
static void new_account(void)
{
    account_id = tw_id_new();
    tw__store__v1__account__init(&account);
    account.id = (ProtobufCBinaryData){TW_ID_BYTES, account_id.bytes};
    account.role = TW_ROLE_USER;
}

/* A fresh account signed in once: its session's id. */
static tw_id signed_in_session(void)
{
    new_account();
    struct create c = {.now_ms = FX_EPOCH_MS};
    ck_assert_int_eq(tw_txn_run(fx.store, create_txn, &c), TW_OK);
    tw_id session;
    ck_assert(tw_session_id_of(c.out, &session));
    return session;
}

static int count_sessions(bool *all_disabled)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_SESSION);
    tw_key_id(&prefix, &account_id);
    tw_store_iter *it;
    ck_assert_int_eq(tw_store_scan(fx.store, &prefix, NULL, 0, false, &it), TW_OK);
    int n = 0;
    *all_disabled = true;
    while (tw_store_iter_next(it)) {
        tw_value v;
        ck_assert_int_eq(tw_store_iter_value(it, fx.arena, &v), TW_OK);
        *all_disabled &= ((Tw__Store__V1__Session *)v.msg)->disabled;
        n++;
    }
    ck_assert_int_eq(tw_store_iter_close(it), TW_OK);
    return n;
}

static tw_err disable_txn(tw_txn *t, void *ctx)
{
    return tw_txn_sessions_sync(t, &account_id, TW_ROLE_USER, true);
}

static tw_err revoke_txn(tw_txn *t, void *ctx)
{
    return tw_txn_sessions_revoke(t, &account_id, ctx, NULL);
}

START_TEST(sessions_are_capped_synced_and_revoked)
{
    new_account();
    struct create c = {.now_ms = FX_EPOCH_MS};
    bool disabled;
    for (int i = 0; i < TW_MAX_SESSIONS + 3; i++) {
        c.now_ms++;
        ck_assert_int_eq(tw_txn_run(fx.store, create_txn, &c), TW_OK);
    }
    ck_assert_int_eq(count_sessions(&disabled), TW_MAX_SESSIONS);
    ck_assert(!disabled);
    ck_assert_int_eq(tw_txn_run(fx.store, disable_txn, NULL), TW_OK);
    ck_assert_int_eq(count_sessions(&disabled), TW_MAX_SESSIONS);
    ck_assert(disabled);
    /* After the refresh lifetime, a new sign-in sweeps the expired ones. */
    c.now_ms += TW_REFRESH_TOKEN_TTL_MS + 1;
    ck_assert_int_eq(tw_txn_run(fx.store, create_txn, &c), TW_OK);
    ck_assert_int_eq(count_sessions(&disabled), 1);
    tw_id keep;
    ck_assert(tw_session_id_of(c.out, &keep));
    ck_assert_int_eq(tw_txn_run(fx.store, create_txn, &c), TW_OK);
    ck_assert_int_eq(tw_txn_run(fx.store, revoke_txn, &keep), TW_OK);
    ck_assert_int_eq(count_sessions(&disabled), 1);
    ck_assert_int_eq(tw_txn_run(fx.store, revoke_txn, NULL), TW_OK);
    ck_assert_int_eq(count_sessions(&disabled), 0);
}
END_TEST

static tw_err role_txn(tw_txn *t, void *ctx)
{
    return tw_txn_sessions_sync(t, &account_id, ctx, false);
}

/* The cache's answer for the session, asked twice: the second comes from
 * memory when nothing was committed in between. */
static tw_err admit_twice(tw_session_cache *cache, const tw_id *session, bool *admin)
{
    bool first = !*admin;
    tw_err err = tw_session_cache_admit(cache, fx.store, &account_id, session, fx.arena, &first);
    ck_assert_int_eq(tw_session_cache_admit(cache, fx.store, &account_id, session, fx.arena, admin),
                     err);
    if (err == TW_OK)
        ck_assert_int_eq(first, *admin);
    return err;
}

START_TEST(the_session_cache_answers_as_the_store_after_each_commit)
{
    tw_id session = signed_in_session(), unknown = tw_id_new();
    tw_session_cache *cache;
    ck_assert_int_eq(tw_session_cache_new(&cache), TW_OK);
    bool admin = true;

    ck_assert_int_eq(admit_twice(cache, &session, &admin), TW_OK);
    ck_assert(!admin);
    ck_assert_int_eq(admit_twice(cache, &unknown, &admin), TW_ERR_AUTH_REVOKED);
    ck_assert_int_eq(tw_txn_run(fx.store, role_txn, TW_ROLE_ADMIN), TW_OK);
    ck_assert_int_eq(admit_twice(cache, &session, &admin), TW_OK);
    ck_assert(admin);
    ck_assert_int_eq(tw_txn_run(fx.store, disable_txn, NULL), TW_OK);
    ck_assert_int_eq(admit_twice(cache, &session, &admin), TW_ERR_AUTH_DISABLED);
    ck_assert_int_eq(tw_txn_run(fx.store, role_txn, TW_ROLE_USER), TW_OK);
    ck_assert_int_eq(admit_twice(cache, &session, &admin), TW_OK);
    ck_assert(!admin);
    ck_assert_int_eq(tw_txn_run(fx.store, revoke_txn, NULL), TW_OK);
    ck_assert_int_eq(admit_twice(cache, &session, &admin), TW_ERR_AUTH_REVOKED);
    tw_session_cache_free(cache);
}
END_TEST

/* Callers asking while a revocation commits. */
struct racer {
    tw_session_cache *cache;
    tw_id session;
    atomic_bool revoked, stop;
    atomic_int after, stale; /* asks begun after the revocation returned; of them, answered OK */
};

static void *race_admits(void *arg)
{
    struct racer *r = arg;
    while (!atomic_load(&r->stop)) {
        tw_arena *arena = tw_arena_new(1024); /* a call's own */
        if (arena == NULL)
            break;
        bool began_after = atomic_load(&r->revoked);
        bool admin;
        tw_err err =
            tw_session_cache_admit(r->cache, fx.store, &account_id, &r->session, arena, &admin);
        if (began_after) {
            atomic_fetch_add(&r->after, 1);
            atomic_fetch_add(&r->stale, err == TW_OK);
        }
        tw_arena_free(arena);
    }
    return NULL;
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

START_TEST(no_call_begun_after_a_revocation_is_admitted_from_memory)
{
    struct racer r = {.session = signed_in_session()};
    ck_assert_int_eq(tw_session_cache_new(&r.cache), TW_OK);
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, race_admits, &r), 0);
    sleep_ms(20); /* the answer is in memory by now */
    ck_assert_int_eq(tw_txn_run(fx.store, revoke_txn, NULL), TW_OK);
    atomic_store(&r.revoked, true);
    sleep_ms(20);
    atomic_store(&r.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    tw_session_cache_free(r.cache);
    int after = atomic_load(&r.after), stale = atomic_load(&r.stale);
    ck_assert_int_gt(after, 0);
    ck_assert_msg(stale == 0, "%d of %d calls begun after the revocation were admitted", stale,
                  after);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("session");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, refresh_tokens_parse_back_and_refuse_junk);
    tcase_add_test(tc, sessions_are_capped_synced_and_revoked);
    tcase_add_test(tc, the_session_cache_answers_as_the_store_after_each_commit);
    tcase_add_test(tc, no_call_begun_after_a_revocation_is_admitted_from_memory);
    suite_add_tcase(s, tc);
    return s;
}
