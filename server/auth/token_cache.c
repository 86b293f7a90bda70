/* The verified-token cache of token_cache.h. */
#include "token_cache.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Enough shards that the gate's threads rarely wait for one another. */
#define SHARDS          64
#define SLOTS_PER_SHARD (TW_TOKEN_CACHE_SLOTS / SHARDS)

struct slot {
    char *token; /* NULL: free */
    size_t len;
    tw_jwt_claims claims;
};

struct shard {
    pthread_mutex_t lock;
    struct slot slots[SLOTS_PER_SHARD];
};

struct tw_token_cache {
    struct shard shards[SHARDS];
};

tw_err tw_token_cache_new(tw_token_cache **out)
{
    tw_token_cache *cache = calloc(1, sizeof *cache);
    if (cache == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_init(&cache->shards[i].lock, NULL);
    *out = cache;
    return TW_OK;
}

void tw_token_cache_free(tw_token_cache *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < SHARDS; i++) {
        for (size_t j = 0; j < SLOTS_PER_SHARD; j++)
            free(cache->shards[i].slots[j].token);
        pthread_mutex_destroy(&cache->shards[i].lock);
    }
    free(cache);
}

/* Which slot a token may sit in: FNV-1a over its last HASHED_BYTES, which
 * are the signature's (an HMAC output, as good as random), so hashing the
 * whole token spread them no better and cost more than the rest of a hit.
 * Only tokens that verified are kept, so nobody can fill a slot with
 * tokens made to collide. */
#define HASHED_BYTES 16

static uint64_t token_hash(const char *token, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = len > HASHED_BYTES ? len - HASHED_BYTES : 0; i < len; i++)
        h = (h ^ (uint8_t)token[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* Whether the n bytes at a and b are the same, in a time that depends only
 * on n: eight bytes at a time, where CRYPTO_memcmp goes one at a time (3k
 * instructions for a token, 4 % of a GetTask). */
static bool same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t diff = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    for (; i < n; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

/* The claims remembered for token, if its slot holds it. The compare is
 * constant-time so that how long a miss takes tells nothing of a token
 * someone else holds. */
static bool cached(struct slot *slot, const char *token, size_t len, tw_jwt_claims *claims)
{
    if (slot->token == NULL || slot->len != len || !same_bytes(slot->token, token, len))
        return false;
    *claims = slot->claims;
    return true;
}

static void remember(struct slot *slot, const char *token, size_t len, const tw_jwt_claims *claims)
{
    char *copy = malloc(len);
    if (copy == NULL)
        return; /* not kept; the next call verifies again */
    memcpy(copy, token, len);
    free(slot->token);
    slot->token = copy;
    slot->len = len;
    slot->claims = *claims;
}

/* A remembered token's answer now: what tw_jwt_verify would say, given that
 * its signature and claims held when it was verified. */
static tw_err still_valid(const tw_jwt_claims *claims, tw_jwt_key_lookup *lookup, void *ctx,
                          int64_t now)
{
    tw_jwt_key key;
    bool verifies = lookup(ctx, claims->kid, &key);
    OPENSSL_cleanse(&key, sizeof key);
    if (!verifies)
        return TW_ERR_AUTH_INVALID_TOKEN;
    return claims->exp <= now ? TW_ERR_AUTH_EXPIRED_TOKEN : TW_OK;
}

tw_err tw_token_cache_verify(tw_token_cache *cache, const char *token, tw_jwt_key_lookup *lookup,
                             void *ctx, int64_t now, tw_jwt_claims *claims)
{
    size_t len = strnlen(token, TW_TOKEN_CACHE_TOKEN_MAX + 1);
    if (len > TW_TOKEN_CACHE_TOKEN_MAX)
        return tw_jwt_verify(token, lookup, ctx, now, claims);
    uint64_t h = token_hash(token, len);
    struct shard *shard = &cache->shards[h % SHARDS];
    struct slot *slot = &shard->slots[(h / SHARDS) % SLOTS_PER_SHARD];

    pthread_mutex_lock(&shard->lock);
    bool hit = cached(slot, token, len, claims);
    pthread_mutex_unlock(&shard->lock);
    if (hit)
        return still_valid(claims, lookup, ctx, now);

    tw_err err = tw_jwt_verify(token, lookup, ctx, now, claims);
    if (err == TW_OK) {
        pthread_mutex_lock(&shard->lock);
        remember(slot, token, len, claims);
        pthread_mutex_unlock(&shard->lock);
    }
    return err;
}
