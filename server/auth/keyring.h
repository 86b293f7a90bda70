/*
 * The access-token signing keys: a ring kept in the store under
 * SIGNING_KEYS("jwt") (the current key first, then previous keys until they
 * retire) and held in memory for the gate, which looks a key up by kid on
 * every call. Rotation writes a new current key to the store and reloads
 * the ring; the key it replaces keeps verifying for the access-token
 * lifetime, so nobody is logged out.
 */
#ifndef TW_KEYRING_H
#define TW_KEYRING_H

#include "jwt.h"
#include "tw_store.h"

/* How long an access token lives; a replaced key verifies this much longer
 * (plus the clock skew jwt.c allows). */
#define TW_ACCESS_TOKEN_TTL_S 900
/* A replaced key verifies this long after its rotation: the access-token
 * lifetime plus the clock skew jwt.c allows for iat. */
#define TW_KEY_RETIRE_AFTER_MS ((TW_ACCESS_TOKEN_TTL_S + 60) * 1000ll)

typedef struct tw_keyring tw_keyring;

/* Loads the ring from s (borrowed for the ring's life), making the first
 * key when the store has none. */
tw_err tw_keyring_open(tw_store *s, tw_keyring **out);

/* Frees the ring. Accepts NULL. */
void tw_keyring_free(tw_keyring *ring);

/* The key new tokens are signed with. */
void tw_keyring_current(tw_keyring *ring, tw_jwt_key *out);

/* A tw_jwt_key_lookup: ctx is the ring; the current key, or a previous one
 * whose retire time (wall clock) has not passed. */
bool tw_keyring_lookup(void *ctx, const char *kid, tw_jwt_key *out);

/* The same at a given time (Unix ms), for tests. */
bool tw_keyring_lookup_at(tw_keyring *ring, const char *kid, int64_t now_ms, tw_jwt_key *out);

/* Rotates in the store at now_ms and reloads the ring; kid (may be NULL;
 * TW_JWT_KID_SIZE bytes) gets the new key's id. */
tw_err tw_keyring_rotate(tw_keyring *ring, int64_t now_ms, char *kid);

/* Rotation on a store no ring is serving from (`twd keys rotate` with no
 * twd running): the same write as tw_keyring_rotate. */
tw_err tw_keys_rotate_in_store(tw_store *s, int64_t now_ms, char *kid);

#endif
