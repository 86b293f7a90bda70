/*
 * Sessions: one per signed-in device, stored under SESSION(user, session)
 * (see Session in proto/tw/store/v1/accounts.proto), and the tokens that
 * carry them. The refresh token is
 *     "rt1." base64url(user id | session id | generation (4 bytes, big
 *     endian) | HMAC-SHA256(session's refresh_key, the same 36 bytes))
 * so a token names its record, and a token of an older generation can be
 * told apart from a forgery: the first revokes the session, the second
 * changes nothing.
 */
#ifndef TW_SESSION_H
#define TW_SESSION_H

#include "keyring.h"
#include "tw/store/v1/accounts.pb-c.h"
#include "tw/v1/auth_service.pb-c.h"
#include "tw_txn.h"

#include <stdint.h>

/* A refresh token works for this long after its session's last use. */
#define TW_REFRESH_TOKEN_TTL_MS (30ll * 24 * 3600 * 1000)
/* Sessions one account may hold; signing in beyond ends the least recently
 * used. */
#define TW_MAX_SESSIONS      50
#define TW_REFRESH_MAC_BYTES 32

void tw_session_key(tw_key *k, const tw_id *user, const tw_id *session);

/* The refresh token's MAC over (user, session, generation). */
void tw_refresh_token_mac(const uint8_t *refresh_key, const tw_id *user, const tw_id *session,
                          uint32_t generation, uint8_t mac[TW_REFRESH_MAC_BYTES]);

/* Splits a refresh token; false when it is not one. */
bool tw_refresh_token_parse(const char *token, tw_id *user, tw_id *session, uint32_t *generation,
                            uint8_t mac[TW_REFRESH_MAC_BYTES]);

/*
 * Starts a session of account (read for update in t by the caller) for a
 * device, in t: removes the account's expired sessions and, at
 * TW_MAX_SESSIONS, the least recently used one. *out lives in arena.
 */
tw_err tw_txn_session_create(tw_txn *t, const Tw__Store__V1__Account *account,
                             const char *device_name, int platform, int64_t now_ms, tw_arena *arena,
                             Tw__Store__V1__Session **out);

/* Deletes every session of user except `except` (may be NULL), in t;
 * *count (may be NULL) gets how many. */
tw_err tw_txn_sessions_revoke(tw_txn *t, const tw_id *user, const tw_id *except, int *count);

/* Copies the account's role and disabled flag to every session of user. */
tw_err tw_txn_sessions_sync(tw_txn *t, const tw_id *user, const char *role, bool disabled);

/* Signs an access token for session and builds its refresh token, in arena. */
tw_err tw_session_tokens(tw_keyring *ring, const tw_id *user, const Tw__Store__V1__Session *session,
                         int64_t now_ms, tw_arena *arena, Tw__V1__Tokens **out);

/* The API form of a stored session, in arena; current (may be NULL) is the
 * caller's own session, marked as such. NULL when out of memory. */
Tw__V1__Session *tw_session_to_api(const Tw__Store__V1__Session *s, const tw_id *current,
                                   tw_arena *arena);

/* A page of user's sessions in API form, newest first, from after the key
 * cursor (cursor_len bytes; NULL: the newest): at most size of them into
 * *out (*count), in arena. *next is the key to go on from (in arena), NULL
 * when the list is done. current as in tw_session_to_api. */
tw_err tw_session_list(tw_store *store, const tw_id *user, const tw_id *current,
                       const uint8_t *cursor, size_t cursor_len, uint32_t size, tw_arena *arena,
                       Tw__V1__Session ***out, size_t *count, uint8_t **next, size_t *next_len);

/* The Unix ms of a session's UUIDv7 id text, for listings. */
bool tw_session_id_of(const Tw__Store__V1__Session *session, tw_id *out);

#endif
