/*
 * The access-token signing keys: a ring kept in the store under
 * SIGNING_KEYS("jwt") (the current key first, then every key it replaced
 * that still verifies, newest first) and held in memory for the gate, which
 * looks a key up by kid on every call. Rotation writes a new current key to
 * the store and reloads the ring; every key it replaced keeps verifying for
 * the access-token lifetime plus clock skew after its replacement, however
 * often rotation runs, so nobody is logged out.
 *
 * The ring holds at most TW_KEYRING_MAX_KEYS keys. A rotation that would
 * need one more slot (that many rotations within one token lifetime) is
 * refused with TW_ERR_RATE_LIMITED and the time the oldest key retires:
 * a key that still verifies tokens is never dropped early.
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
#define TW_KEY_RETIRE_AFTER_MS ((TW_ACCESS_TOKEN_TTL_S + TW_JWT_IAT_SKEW_S) * 1000ll)
/* The current key and up to 31 replaced ones: a rotation every 31 s for a
 * whole token lifetime plus skew. Each key costs ~90 bytes in the store and
 * at most one kid comparison per lookup. */
#define TW_KEYRING_MAX_KEYS 32

typedef struct tw_keyring tw_keyring;

/* Loads the ring from s (borrowed for the ring's life), making the first
 * key when the store has none. */
tw_err tw_keyring_open(tw_store *s, tw_keyring **out);

/* Frees the ring. Accepts NULL. */
void tw_keyring_free(tw_keyring *ring);

/* The key new tokens are signed with. */
void tw_keyring_current(tw_keyring *ring, tw_jwt_key *out);

/* A tw_jwt_key_lookup: ctx is the ring; the current key, or a previous one
 * whose retire time has not passed on the store's clock (tw_store_now_ms). */
bool tw_keyring_lookup(void *ctx, const char *kid, tw_jwt_key *out);

/* The same at a given time (Unix ms), for tests. */
bool tw_keyring_lookup_at(tw_keyring *ring, const char *kid, int64_t now_ms, tw_jwt_key *out);

/* What a rotation made, or why it was refused. */
typedef struct tw_key_rotation {
    char kid[TW_JWT_KID_SIZE]; /* the new current key's id */
    int64_t retry_after_ms;    /* TW_ERR_RATE_LIMITED: until a slot frees */
} tw_key_rotation;

/* Rotates in the store at now_ms and reloads the ring; *out (may be NULL)
 * gets the new key's id. TW_ERR_RATE_LIMITED, and nothing changes, when
 * TW_KEYRING_MAX_KEYS keys still verify tokens. */
tw_err tw_keyring_rotate(tw_keyring *ring, int64_t now_ms, tw_key_rotation *out);

/* Why a rotation was refused with TW_ERR_RATE_LIMITED, in one line for the
 * operator: how many keys still verify and when the oldest retires. */
void tw_key_rotation_refusal(const tw_key_rotation *refused, char *out, size_t len);

/* Rotation on a store no ring is serving from (`twd keys rotate` with no
 * twd running): the same write as tw_keyring_rotate. */
tw_err tw_keys_rotate_in_store(tw_store *s, int64_t now_ms, tw_key_rotation *out);

#endif
