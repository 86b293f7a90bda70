/*
 * What authentication shares in a running twd: the signing keys, the
 * limits, the maintenance switch and the pool that hashes passwords. Built
 * once by `twd serve` (tw_auth_open) and kept in tw_app; the gate and the
 * account services read it.
 */
#ifndef TW_AUTH_H
#define TW_AUTH_H

#include "config.h"
#include "keyring.h"
#include "limits.h"
#include "password.h"
#include "pool.h"
#include "session_cache.h"
#include "token_cache.h"
#include "tw_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define TW_MAINTENANCE_MESSAGE_MAX 500

typedef struct tw_auth {
    tw_store *store; /* borrowed */
    tw_keyring *keys;
    tw_token_cache *tokens;     /* verified access tokens (token_cache.h) */
    tw_session_cache *sessions; /* sessions that may call (session_cache.h) */
    tw_login_limiter *logins;
    tw_api_limiter *api;
    /* Password hashing only: each hash holds ~128 MiB (at N=2^17) for a few
     * hundred ms, so its threads bound memory, and its queue (the sign-in
     * admission queue) bounds the wait: when full, submit answers BUSY at
     * once and the caller is told when to come back. */
    tw_pool *hash_pool;
    int hash_threads;
    tw_password_cost cost; /* for new hashes */

    atomic_bool maintenance;
    pthread_mutex_t maintenance_lock; /* guards the message */
    char maintenance_message[TW_MAINTENANCE_MESSAGE_MAX + 1];
} tw_auth;

/* Loads keys and the maintenance switch from s (borrowed) and starts the
 * hash pool, configured by cfg (read during the call). */
tw_err tw_auth_open(tw_store *s, const tw_config *cfg, tw_auth **out);

/* Stops the hash pool after its queued work and frees everything. Accepts
 * NULL. */
void tw_auth_close(tw_auth *auth);

/* Whether maintenance mode is on; message (may be NULL, len bytes) gets its
 * message. */
bool tw_auth_maintenance(tw_auth *auth, char *message, size_t len);

/* Turns maintenance mode on or off with a message (borrowed), stored so it
 * survives a restart. */
tw_err tw_auth_set_maintenance(tw_auth *auth, bool enabled, const char *message);

#endif
