/* The alive-session cache of session_cache.h. */
#include "session_cache.h"

#include "account.h"
#include "session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Enough shards that the gate's threads rarely wait for one another. */
#define SHARDS          64
#define SLOTS_PER_SHARD (TW_SESSION_CACHE_SLOTS / SHARDS)

struct slot {
    bool used;
    bool admin;
    uint64_t epoch; /* the user's write epoch before the record was read */
    tw_id user, session;
};

struct shard {
    pthread_mutex_t lock;
    struct slot slots[SLOTS_PER_SHARD];
};

struct tw_session_cache {
    struct shard shards[SHARDS];
};

tw_err tw_session_cache_new(tw_session_cache **out)
{
    tw_session_cache *cache = calloc(1, sizeof *cache);
    if (cache == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_init(&cache->shards[i].lock, NULL);
    *out = cache;
    return TW_OK;
}

void tw_session_cache_free(tw_session_cache *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_destroy(&cache->shards[i].lock);
    free(cache);
}

/* Session ids are UUIDv7: their last bytes are random. */
static size_t session_hash(const tw_id *session)
{
    size_t h = 0;
    memcpy(&h, session->bytes + TW_ID_BYTES - sizeof h, sizeof h);
    return h;
}

static bool same(const struct slot *slot, const tw_id *user, const tw_id *session)
{
    return slot->used && memcmp(slot->session.bytes, session->bytes, TW_ID_BYTES) == 0 &&
           memcmp(slot->user.bytes, user->bytes, TW_ID_BYTES) == 0;
}

/* The session's answer as stored now. */
static tw_err read_session(tw_store *s, const tw_id *user, const tw_id *session, tw_arena *arena,
                           bool *admin)
{
    tw_key k;
    tw_session_key(&k, user, session);
    tw_value v;
    tw_err err = tw_store_get(s, &k, arena, &v);
    if (err == TW_ERR_NOT_FOUND)
        return TW_ERR_AUTH_REVOKED;
    if (err)
        return err;
    const Tw__Store__V1__Session *record = (const void *)v.msg;
    if (record->disabled)
        return TW_ERR_AUTH_DISABLED;
    *admin = strcmp(record->role, TW_ROLE_ADMIN) == 0;
    return TW_OK;
}

tw_err tw_session_cache_admit(tw_session_cache *cache, tw_store *s, const tw_id *user,
                              const tw_id *session, tw_arena *arena, bool *admin)
{
    size_t h = session_hash(session);
    struct shard *shard = &cache->shards[h % SHARDS];
    struct slot *slot = &shard->slots[(h / SHARDS) % SLOTS_PER_SHARD];
    /* Noted before the read: a commit that lands during it moves the epoch
     * past what is kept, so the answer is not given from memory again. */
    uint64_t epoch = tw_store_epoch(s, user);

    pthread_mutex_lock(&shard->lock);
    bool hit = same(slot, user, session) && slot->epoch == epoch;
    *admin = slot->admin;
    pthread_mutex_unlock(&shard->lock);
    if (hit)
        return TW_OK;

    tw_err err = read_session(s, user, session, arena, admin);
    if (err == TW_OK) {
        pthread_mutex_lock(&shard->lock);
        *slot = (struct slot){
            .used = true, .admin = *admin, .epoch = epoch, .user = *user, .session = *session};
        pthread_mutex_unlock(&shard->lock);
    }
    return err;
}
