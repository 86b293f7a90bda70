/* The signing-key ring of keyring.h. */
#include "keyring.h"

#include "tw/store/v1/accounts.pb-c.h"
#include "tw_txn.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING_NAME "jwt"
#define MAX_KEYS  TW_KEYRING_MAX_KEYS

struct ring_key {
    tw_jwt_key key;
    int64_t retire_ms; /* 0: current */
};

struct tw_keyring {
    tw_store *store;
    pthread_rwlock_t lock;
    struct ring_key keys[MAX_KEYS];
    size_t count;
};

static void ring_key_key(tw_key *k)
{
    tw_key_init(k, TW_KF_SIGNING_KEYS);
    tw_key_str(k, RING_NAME);
}

static tw_err new_key(Tw__Store__V1__SigningKey *out, uint8_t *secret, char *kid, int64_t now_ms)
{
    if (RAND_bytes(secret, TW_JWT_SECRET_BYTES) != 1)
        return TW_ERR_INTERNAL;
    tw_id id = tw_id_new();
    tw_id_format(&id, kid);
    tw__store__v1__signing_key__init(out);
    out->kid = kid;
    out->secret = (ProtobufCBinaryData){TW_JWT_SECRET_BYTES, secret};
    out->create_unix_ms = now_ms;
    return TW_OK;
}

struct rotate {
    int64_t now_ms;
    bool only_if_empty; /* first start: make a key only when there is none */
    tw_key_rotation *out;
};

/* Writes the ring with a new current key. The old current key retires
 * TW_KEY_RETIRE_AFTER_MS from now; keys whose retire time has passed go;
 * every other key stays. When that leaves no slot for the new key, nothing
 * is written: TW_ERR_RATE_LIMITED, with the time until the oldest key
 * retires and frees one. */
static tw_err rotate_txn(tw_txn *t, void *ctx)
{
    struct rotate *r = ctx;
    tw_arena *arena = tw_arena_new(1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key k;
    ring_key_key(&k);
    tw_value v;
    tw_err err = tw_txn_get_for_update(t, &k, arena, &v);
    Tw__Store__V1__SigningKeys *old = err == TW_OK ? (void *)v.msg : NULL;
    if (err == TW_ERR_NOT_FOUND)
        err = TW_OK;
    if (err || (r->only_if_empty && old != NULL && old->n_keys > 0)) {
        tw_arena_free(arena);
        return err;
    }
    Tw__Store__V1__SigningKey fresh, *list[MAX_KEYS];
    uint8_t secret[TW_JWT_SECRET_BYTES];
    size_t n = 1; /* list[0] is the new key */
    int64_t first_retire_ms = INT64_MAX;
    for (size_t i = 0; old != NULL && i < old->n_keys; i++) {
        Tw__Store__V1__SigningKey *key = old->keys[i];
        if (key->retire_unix_ms == 0)
            key->retire_unix_ms = r->now_ms + TW_KEY_RETIRE_AFTER_MS;
        if (key->retire_unix_ms <= r->now_ms)
            continue;
        if (key->retire_unix_ms < first_retire_ms)
            first_retire_ms = key->retire_unix_ms;
        if (n < MAX_KEYS)
            list[n] = key;
        n++;
    }
    if (n > MAX_KEYS) { /* full of keys that still verify: refuse */
        r->out->retry_after_ms = first_retire_ms - r->now_ms;
        tw_arena_free(arena);
        return TW_ERR_RATE_LIMITED;
    }
    if ((err = new_key(&fresh, secret, r->out->kid, r->now_ms))) {
        tw_arena_free(arena);
        return err;
    }
    list[0] = &fresh;
    Tw__Store__V1__SigningKeys ring = TW__STORE__V1__SIGNING_KEYS__INIT;
    ring.n_keys = n;
    ring.keys = list;
    err = tw_txn_put(t, &k, &(tw_value){.msg = &ring.base});
    OPENSSL_cleanse(secret, sizeof secret);
    tw_arena_free(arena);
    return err;
}

tw_err tw_keys_rotate_in_store(tw_store *s, int64_t now_ms, tw_key_rotation *out)
{
    tw_key_rotation scratch;
    struct rotate r = {.now_ms = now_ms, .out = out ? out : &scratch};
    memset(r.out, 0, sizeof *r.out);
    return tw_txn_run(s, rotate_txn, &r);
}

void tw_key_rotation_refusal(const tw_key_rotation *refused, char *out, size_t len)
{
    snprintf(out, len,
             "%d signing keys still verify tokens; the oldest retires in %lld s, then rotate again",
             TW_KEYRING_MAX_KEYS, (long long)(refused->retry_after_ms + 999) / 1000);
}

/* Reads the stored ring into memory. */
static tw_err ring_load(tw_keyring *ring)
{
    tw_arena *arena = tw_arena_new(1024);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key k;
    ring_key_key(&k);
    tw_value v;
    tw_err err = tw_store_get(ring->store, &k, arena, &v);
    struct ring_key keys[MAX_KEYS];
    size_t n = 0;
    const Tw__Store__V1__SigningKeys *stored = err ? NULL : (const void *)v.msg;
    for (size_t i = 0; stored != NULL && i < stored->n_keys && n < MAX_KEYS; i++) {
        const Tw__Store__V1__SigningKey *key = stored->keys[i];
        if (strlen(key->kid) >= TW_JWT_KID_SIZE || key->secret.len != TW_JWT_SECRET_BYTES) {
            err = TW_ERR_DB_CORRUPT;
            break;
        }
        memset(&keys[n], 0, sizeof keys[n]);
        memcpy(keys[n].key.kid, key->kid, strlen(key->kid) + 1);
        memcpy(keys[n].key.secret, key->secret.data, TW_JWT_SECRET_BYTES);
        keys[n++].retire_ms = key->retire_unix_ms;
    }
    if (!err && (n == 0 || keys[0].retire_ms != 0))
        err = TW_ERR_DB_CORRUPT; /* no current key */
    if (!err) {
        pthread_rwlock_wrlock(&ring->lock);
        memcpy(ring->keys, keys, sizeof keys);
        ring->count = n;
        pthread_rwlock_unlock(&ring->lock);
    }
    OPENSSL_cleanse(keys, sizeof keys);
    tw_arena_free(arena);
    return err;
}

tw_err tw_keyring_open(tw_store *s, tw_keyring **out)
{
    *out = NULL;
    tw_keyring *ring = calloc(1, sizeof *ring);
    if (ring == NULL)
        return TW_ERR_NO_MEMORY;
    ring->store = s;
    pthread_rwlock_init(&ring->lock, NULL);
    tw_key_rotation made;
    struct rotate first = {.now_ms = tw_store_now_ms(s), .only_if_empty = true, .out = &made};
    tw_err err = tw_txn_run(s, rotate_txn, &first);
    if (!err)
        err = ring_load(ring);
    if (err) {
        tw_keyring_free(ring);
        return err;
    }
    *out = ring;
    return TW_OK;
}

void tw_keyring_free(tw_keyring *ring)
{
    if (ring == NULL)
        return;
    pthread_rwlock_destroy(&ring->lock);
    OPENSSL_cleanse(ring->keys, sizeof ring->keys);
    free(ring);
}

void tw_keyring_current(tw_keyring *ring, tw_jwt_key *out)
{
    pthread_rwlock_rdlock(&ring->lock);
    *out = ring->keys[0].key;
    pthread_rwlock_unlock(&ring->lock);
}

bool tw_keyring_lookup_at(tw_keyring *ring, const char *kid, int64_t now_ms, tw_jwt_key *out)
{
    bool found = false;
    pthread_rwlock_rdlock(&ring->lock);
    for (size_t i = 0; i < ring->count && !found; i++) {
        const struct ring_key *k = &ring->keys[i];
        if (strcmp(k->key.kid, kid) == 0 && (k->retire_ms == 0 || k->retire_ms > now_ms)) {
            *out = k->key;
            found = true;
        }
    }
    pthread_rwlock_unlock(&ring->lock);
    return found;
}

bool tw_keyring_lookup(void *ctx, const char *kid, tw_jwt_key *out)
{
    tw_keyring *ring = ctx;
    return tw_keyring_lookup_at(ring, kid, tw_store_now_ms(ring->store), out);
}

tw_err tw_keyring_rotate(tw_keyring *ring, int64_t now_ms, tw_key_rotation *out)
{
    tw_err err = tw_keys_rotate_in_store(ring->store, now_ms, out);
    return err ? err : ring_load(ring);
}
