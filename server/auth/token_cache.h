/*
 * Verified access tokens, remembered. A client sends the same bearer token
 * with every call for the token's lifetime, and verifying it (two base64
 * parts parsed as JSON, an HMAC-SHA256) was most of what the gate cost per
 * call. The cache keeps, for each token it verified, the claims it found;
 * a later call with the same bytes gets them after a hash, a constant-time
 * compare of the bytes and the two checks whose answer can change after
 * verification:
 *   - the expiry, against the caller's now (TW_ERR_AUTH_EXPIRED_TOKEN, as
 *     tw_jwt_verify answers);
 *   - the signing key: it must still verify (the key ring retires replaced
 *     keys, keyring.h), asked of the same lookup tw_jwt_verify uses.
 * What the cache does not decide: whether the session is alive. The gate
 * asks that of the store on every call (through session_cache.h, exact
 * with every commit), so signing out, revoking a session, disabling or
 * deleting an account take effect on the very next call.
 *
 * Bounded: TW_TOKEN_CACHE_SLOTS tokens of up to TW_TOKEN_CACHE_TOKEN_MAX
 * bytes (longer ones are verified on every call); a token verified into a
 * taken slot replaces the one there. Only tokens that verified are kept, so
 * bad tokens cannot push good ones out. Safe from any thread: slots are
 * split among shards, each with its own lock.
 */
#ifndef TW_AUTH_TOKEN_CACHE_H
#define TW_AUTH_TOKEN_CACHE_H

#include "jwt.h"

#define TW_TOKEN_CACHE_SLOTS 4096
/* Ours are about 420 bytes. */
#define TW_TOKEN_CACHE_TOKEN_MAX 1024

typedef struct tw_token_cache tw_token_cache;

tw_err tw_token_cache_new(tw_token_cache **out);

/* Frees the cache. Accepts NULL. */
void tw_token_cache_free(tw_token_cache *cache);

/*
 * tw_jwt_verify (jwt.h) with its answers remembered: the outcome
 * tw_jwt_verify would give, for every token, at any now not earlier than
 * the one it was verified at (iat and nbf are not checked again). token is
 * borrowed (copied when kept); lookup and ctx as for tw_jwt_verify.
 */
tw_err tw_token_cache_verify(tw_token_cache *cache, const char *token, tw_jwt_key_lookup *lookup,
                             void *ctx, int64_t now, tw_jwt_claims *claims);

#endif
