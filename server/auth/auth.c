/* The shared authentication state of auth.h. */
#include "auth.h"

#include "tw/store/v1/accounts.pb-c.h"
#include "tw_txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODE_NAME "mode"

static void maintenance_key(tw_key *k)
{
    tw_key_init(k, TW_KF_MAINTENANCE);
    tw_key_str(k, MODE_NAME);
}

static tw_err maintenance_load(tw_auth *auth)
{
    tw_arena *arena = tw_arena_new(1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key k;
    maintenance_key(&k);
    tw_value v;
    tw_err err = tw_store_get(auth->store, &k, arena, &v);
    if (err == TW_OK) {
        const Tw__Store__V1__Maintenance *m = (const void *)v.msg;
        snprintf(auth->maintenance_message, sizeof auth->maintenance_message, "%s", m->message);
        atomic_store(&auth->maintenance, m->enabled);
    }
    tw_arena_free(arena);
    return err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

tw_err tw_auth_open(tw_store *s, const tw_config *cfg, tw_auth **out)
{
    *out = NULL;
    tw_auth *auth = calloc(1, sizeof *auth);
    if (auth == NULL)
        return TW_ERR_NO_MEMORY;
    auth->store = s;
    auth->cost = TW_PASSWORD_COST_DEFAULT;
    auth->cost.log2_n = (int)cfg->password_scrypt_log2_n;
    pthread_mutex_init(&auth->maintenance_lock, NULL);
    tw_login_limits logins = {cfg->login_failures_per_account, cfg->login_failures_per_peer,
                              cfg->login_failure_window_s * 1000};
    int64_t api[TW_API__COUNT] = {
        [TW_API_ALL] = cfg->api_calls_per_hour, [TW_API_WRITE] = cfg->api_write_calls_per_hour};
    tw_err err = tw_keyring_open(s, &auth->keys);
    if (!err)
        err = tw_token_cache_new(&auth->tokens);
    if (!err)
        err = tw_session_cache_new(&auth->sessions);
    if (!err)
        err = maintenance_load(auth);
    if (!err)
        err = tw_login_limiter_new(s, &logins, &auth->logins);
    if (!err)
        err = tw_api_limiter_new(api, &auth->api);
    auth->hash_threads = (int)cfg->password_hash_threads;
    if (!err)
        err = tw_pool_new("password", auth->hash_threads, (size_t)cfg->password_hash_queue,
                          &auth->hash_pool);
    if (err) {
        tw_auth_close(auth);
        return err;
    }
    *out = auth;
    return TW_OK;
}

void tw_auth_close(tw_auth *auth)
{
    if (auth == NULL)
        return;
    tw_pool_free(auth->hash_pool);
    tw_api_limiter_free(auth->api);
    tw_login_limiter_free(auth->logins);
    tw_session_cache_free(auth->sessions);
    tw_token_cache_free(auth->tokens);
    tw_keyring_free(auth->keys);
    pthread_mutex_destroy(&auth->maintenance_lock);
    free(auth);
}

bool tw_auth_maintenance(tw_auth *auth, char *message, size_t len)
{
    if (!atomic_load(&auth->maintenance))
        return false;
    if (message != NULL) {
        pthread_mutex_lock(&auth->maintenance_lock);
        snprintf(message, len, "%s", auth->maintenance_message);
        pthread_mutex_unlock(&auth->maintenance_lock);
    }
    return true;
}

struct set_mode {
    bool enabled;
    const char *message;
};

static tw_err set_mode_txn(tw_txn *t, void *ctx)
{
    const struct set_mode *m = ctx;
    Tw__Store__V1__Maintenance rec = TW__STORE__V1__MAINTENANCE__INIT;
    rec.enabled = m->enabled;
    rec.message = (char *)m->message;
    rec.update_unix_ms = tw_store_now_ms(tw_txn_store(t));
    tw_key k;
    maintenance_key(&k);
    return tw_txn_put(t, &k, &(tw_value){.msg = &rec.base});
}

tw_err tw_auth_set_maintenance(tw_auth *auth, bool enabled, const char *message)
{
    struct set_mode m = {enabled, message};
    /* The lock keeps the stored and the served state in one order. */
    pthread_mutex_lock(&auth->maintenance_lock);
    tw_err err = tw_txn_run(auth->store, set_mode_txn, &m);
    if (!err) {
        snprintf(auth->maintenance_message, sizeof auth->maintenance_message, "%s", message);
        atomic_store(&auth->maintenance, enabled);
    }
    pthread_mutex_unlock(&auth->maintenance_lock);
    return err;
}
