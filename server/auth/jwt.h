/*
 * Access tokens: JWTs signed with HS256 and nothing else. The header names
 * the signing key (`kid`) so keys can rotate without logging anyone out:
 * verification asks for the key by kid, and the key ring (keyring.h)
 * answers for the current key and every replaced one until it retires.
 *
 * Claims: iss "timeandwellness", aud "tw-app", sub (user id), sid (session
 * id), jti (token id), iat and exp (Unix seconds).
 */
#ifndef TW_JWT_H
#define TW_JWT_H

#include "tw_err.h"
#include "tw_id.h"

#include <stdbool.h>
#include <stdint.h>

#define TW_JWT_ISSUER       "timeandwellness"
#define TW_JWT_AUDIENCE     "tw-app"
#define TW_JWT_SECRET_BYTES 32
#define TW_JWT_KID_SIZE     40
/* Longest token accepted; ours are about 400 bytes. */
#define TW_JWT_MAX_BYTES 4096
/* Clocks of servers behind one balancer may differ this much: a token
 * issued up to this far in the future is accepted. */
#define TW_JWT_IAT_SKEW_S 60

typedef struct tw_jwt_key {
    char kid[TW_JWT_KID_SIZE];
    uint8_t secret[TW_JWT_SECRET_BYTES];
} tw_jwt_key;

typedef struct tw_jwt_claims {
    char sub[TW_ID_TEXT_SIZE];
    char sid[TW_ID_TEXT_SIZE];
    char jti[TW_ID_TEXT_SIZE];
    int64_t iat;
    int64_t exp;
    /* Set by verification: the id of the key that verified the token.
     * Signing ignores it (the key says). */
    char kid[TW_JWT_KID_SIZE];
} tw_jwt_claims;

/* Fills *out with the key named kid and returns true, or returns false when
 * there is no such key. Called from any thread. */
typedef bool tw_jwt_key_lookup(void *ctx, const char *kid, tw_jwt_key *out);

/* Signs claims with key; *token is malloc'd, the caller frees it. */
tw_err tw_jwt_sign(const tw_jwt_key *key, const tw_jwt_claims *claims, char **token);

/*
 * Verifies token at time now (Unix seconds) and fills *claims. Refuses, with
 * TW_ERR_AUTH_INVALID_TOKEN, a token longer than TW_JWT_MAX_BYTES, any alg
 * but HS256, an unknown kid, a bad
 * signature (compared in constant time), a wrong iss or aud, missing claims,
 * malformed parts; with TW_ERR_AUTH_EXPIRED_TOKEN an exp at or before now.
 * claims->kid is set once the signature holds.
 */
tw_err tw_jwt_verify(const char *token, tw_jwt_key_lookup *lookup, void *ctx, int64_t now,
                     tw_jwt_claims *claims);

#endif
