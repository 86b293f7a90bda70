/*
 * Alive sessions, remembered. The gate asks on every call whether the
 * caller's session may still call, and reading the session record was the
 * largest part of what the gate cost a GetTask. The cache keeps the answer
 * read from the store together with the user's write epoch at the time of
 * the read (tw_store_epoch), and gives it again only while that epoch has
 * not moved. SESSION is an OWNED_CACHED family (tw_keyspace.h), so every
 * commit that writes a session (signing out, revoking, disabling an
 * account, changing its role, deleting it, refreshing) advances the epoch
 * before it returns, and the next call reads the store again: all of these
 * still take effect on the very next call.
 *
 * Bounded: TW_SESSION_CACHE_SLOTS sessions; a session read into a taken
 * slot replaces the one there. Only sessions that may call are kept. Safe
 * from any thread: slots are split among shards, each with its own lock.
 */
#ifndef TW_AUTH_SESSION_CACHE_H
#define TW_AUTH_SESSION_CACHE_H

#include "tw_store.h"

#define TW_SESSION_CACHE_SLOTS 4096

typedef struct tw_session_cache tw_session_cache;

tw_err tw_session_cache_new(tw_session_cache **out);

/* Frees the cache. Accepts NULL. */
void tw_session_cache_free(tw_session_cache *cache);

/*
 * Whether user's session may call, as the store says now: TW_OK with
 * *admin set when the session's role is admin; TW_ERR_AUTH_REVOKED when
 * the session is gone; TW_ERR_AUTH_DISABLED when its account is disabled;
 * the store's error otherwise. arena holds the record when it is read.
 */
tw_err tw_session_cache_admit(tw_session_cache *cache, tw_store *s, const tw_id *user,
                              const tw_id *session, tw_arena *arena, bool *admin);

#endif
