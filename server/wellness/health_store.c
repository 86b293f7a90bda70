/*
 * Health log entries in the store. Each entry is HEALTH_LOG(user, id) with
 * three index keys under its start time (by time, carrying the summary
 * digest; by type; by source) and, when it has an external id, the claim
 * HEALTH_LOG_BY_EXTERNAL(user, source, external id) -> id that makes
 * imports upserts. Every write appends a "health_log" change and counts
 * new entries by type (counter "health_log_entries", dims "type=<name>").
 */
#include "health.h"

#include "tw_changelog.h"
#include "tw_counter.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define CHANGE_TYPE  "health_log"
#define COUNTER_NAME "health_log_entries"
/* Digests decoded per scratch arena in a summary. */
#define SUMMARY_SCRATCH_ENTRIES 512

static void entry_key(tw_key *k, const tw_id *user, const tw_id *id)
{
    tw_key_init(k, TW_KF_HEALTH_LOG);
    tw_key_id(k, user);
    tw_key_id(k, id);
}

static void external_key(tw_key *k, const tw_id *user, const Tw__V1__HealthLog *e)
{
    tw_key_init(k, TW_KF_HEALTH_LOG_BY_EXTERNAL);
    tw_key_id(k, user);
    tw_key_u32(k, (uint32_t)e->source);
    tw_key_str(k, e->external_id);
}

/* The three index keys of an entry: by time, by type, by source. */
static void index_keys(tw_key keys[3], const tw_id *user, const Tw__V1__HealthLog *e,
                       const tw_id *id)
{
    int64_t start = tw_health_start_ms(e);
    tw_key_init(&keys[0], TW_KF_HEALTH_LOG_BY_TIME);
    tw_key_id(&keys[0], user);
    tw_key_init(&keys[1], TW_KF_HEALTH_LOG_BY_TYPE);
    tw_key_id(&keys[1], user);
    tw_key_u32(&keys[1], (uint32_t)e->type);
    tw_key_init(&keys[2], TW_KF_HEALTH_LOG_BY_SOURCE);
    tw_key_id(&keys[2], user);
    tw_key_u32(&keys[2], (uint32_t)e->source);
    for (int i = 0; i < 3; i++) {
        tw_key_i64(&keys[i], start);
        tw_key_id(&keys[i], id);
    }
}

static tw_err put_indexes(tw_txn *t, const tw_id *user, const Tw__V1__HealthLog *e, const tw_id *id)
{
    tw_key keys[3];
    index_keys(keys, user, e, id);
    Tw__Store__V1__HealthLogDigest digest;
    tw_health_digest(e, &digest);
    tw_err err = tw_txn_put(t, &keys[0], &(tw_value){.msg = &digest.base});
    for (int i = 1; i < 3 && !err; i++)
        err = tw_txn_put(t, &keys[i], NULL);
    return err;
}

static tw_err delete_indexes(tw_txn *t, const tw_id *user, const Tw__V1__HealthLog *e,
                             const tw_id *id)
{
    tw_key keys[3];
    index_keys(keys, user, e, id);
    tw_err err = TW_OK;
    for (int i = 0; i < 3 && !err; i++)
        err = tw_txn_delete(t, &keys[i]);
    return err;
}

tw_id tw_health_batch_id(const tw_id *request_id, uint32_t index)
{
    static const char context[] = "tw health batch entry";
    uint8_t in[sizeof context + TW_ID_BYTES + 4], digest[SHA256_DIGEST_LENGTH];
    memcpy(in, context, sizeof context);
    memcpy(in + sizeof context, request_id->bytes, TW_ID_BYTES);
    for (int i = 0; i < 4; i++)
        in[sizeof context + TW_ID_BYTES + i] = (uint8_t)(index >> (24 - 8 * i));
    SHA256(in, sizeof in, digest);
    tw_id id;
    memcpy(id.bytes, digest, TW_ID_BYTES);
    id.bytes[6] = (uint8_t)((id.bytes[6] & 0x0f) | 0x80); /* version 8: custom (RFC 9562) */
    id.bytes[8] = (uint8_t)((id.bytes[8] & 0x3f) | 0x80); /* RFC 9562 variant */
    return id;
}

tw_err tw_health_get(tw_store *s, tw_txn *t, const tw_id *user, const tw_id *id, tw_arena *arena,
                     Tw__V1__HealthLog **out)
{
    tw_key k;
    entry_key(&k, user, id);
    tw_value v;
    tw_err err = t ? tw_txn_get_for_update(t, &k, arena, &v) : tw_store_get(s, &k, arena, &v);
    *out = err ? NULL : (Tw__V1__HealthLog *)v.msg;
    return err;
}

/* Writes entry e (id, times set) and its indexes; old (may be NULL) is the
 * stored version, whose index keys go. */
static tw_err write_entry(tw_txn *t, const tw_id *user, const tw_id *id,
                          const Tw__V1__HealthLog *old, const Tw__V1__HealthLog *e)
{
    tw_key k;
    entry_key(&k, user, id);
    tw_err err = TW_OK;
    if (old != NULL)
        err = delete_indexes(t, user, old, id);
    if (err || (err = tw_txn_put(t, &k, &(tw_value){.msg = (ProtobufCMessage *)&e->base})) ||
        (err = put_indexes(t, user, e, id)))
        return err;
    return tw_txn_changelog_append(t, user, CHANGE_TYPE, id, TW_CHANGE_UPSERT, NULL);
}

/* The stored form of prepared entry e: with its id and times. */
static Tw__V1__HealthLog *stored_form(const Tw__V1__HealthLog *e, const tw_id *id,
                                      int64_t create_ms, int64_t update_ms, tw_arena *arena)
{
    Tw__V1__HealthLog *out = tw_arena_alloc(arena, sizeof *out);
    char *text = tw_arena_alloc(arena, TW_ID_TEXT_SIZE);
    if (out == NULL || text == NULL)
        return NULL;
    *out = *e;
    tw_id_format(id, text);
    out->id = text;
    out->create_time = tw_timestamp_new(arena, create_ms);
    out->update_time = tw_timestamp_new(arena, update_ms);
    return out->create_time && out->update_time ? out : NULL;
}

tw_err tw_health_replace(tw_txn *t, const tw_id *user, const Tw__V1__HealthLog *old,
                         const Tw__V1__HealthLog *e, int64_t now_ms, tw_arena *arena,
                         Tw__V1__HealthLog **out)
{
    tw_id id;
    if (!tw_id_parse(old->id, &id))
        return TW_ERR_DB_CORRUPT;
    int64_t create_ms = now_ms;
    if (old->create_time != NULL)
        tw_timestamp_to_ms(old->create_time, &create_ms);
    Tw__V1__HealthLog *s = stored_form(e, &id, create_ms, now_ms, arena);
    if (s == NULL)
        return TW_ERR_NO_MEMORY;
    *out = s;
    return write_entry(t, user, &id, old, s);
}

/* Stores one entry of an upsert; *types counts the entries created. */
static tw_err upsert_one(tw_txn *t, const tw_id *user, tw_health_write *w, int64_t now_ms,
                         tw_arena *arena, int64_t types[TW_HEALTH_TYPE_COUNT])
{
    const Tw__V1__HealthLog *e = w->entry;
    Tw__V1__HealthLog *old = NULL;
    tw_key ext;
    tw_value v;
    tw_err err;
    if (e->external_id[0] != '\0') {
        external_key(&ext, user, e);
        err = tw_txn_get_for_update(t, &ext, arena, &v);
        if (err == TW_OK) {
            if ((err = tw_health_get(NULL, t, user, &v.id, arena, &old)))
                return err == TW_ERR_NOT_FOUND ? TW_ERR_DB_CORRUPT : err;
        } else if (err != TW_ERR_NOT_FOUND) {
            return err;
        }
    }
    if (old != NULL) {
        if (tw_health_same_content(old, e, arena)) {
            w->stored = old;
            w->outcome = TW_HEALTH_UNCHANGED;
            return TW_OK;
        }
        w->outcome = TW_HEALTH_UPDATED;
        return tw_health_replace(t, user, old, e, now_ms, arena, &w->stored);
    }
    if (w->has_id) { /* a retry of a request: the entry it stored, as it is */
        err = tw_health_get(NULL, t, user, &w->id, arena, &old);
        if (err == TW_OK) {
            w->stored = old;
            w->outcome = TW_HEALTH_UNCHANGED;
            return TW_OK;
        }
        if (err != TW_ERR_NOT_FOUND)
            return err;
    }
    tw_id id = w->has_id ? w->id : tw_id_new();
    Tw__V1__HealthLog *s = stored_form(e, &id, now_ms, now_ms, arena);
    if (s == NULL)
        return TW_ERR_NO_MEMORY;
    if ((err = write_entry(t, user, &id, NULL, s)))
        return err;
    if (e->external_id[0] != '\0' && (err = tw_txn_put(t, &ext, &(tw_value){.id = id})))
        return err;
    types[e->type]++;
    w->stored = s;
    w->outcome = TW_HEALTH_CREATED;
    return TW_OK;
}

tw_err tw_health_upsert(tw_txn *t, const tw_id *user, tw_health_write *w, size_t n, int64_t now_ms,
                        tw_arena *arena)
{
    int64_t types[TW_HEALTH_TYPE_COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        tw_err err = upsert_one(t, user, &w[i], now_ms, arena, types);
        if (err)
            return err;
    }
    uint32_t day = tw_store_day(now_ms);
    for (int type = 1; type < TW_HEALTH_TYPE_COUNT; type++) {
        if (types[type] == 0)
            continue;
        char dims[32];
        snprintf(dims, sizeof dims, "type=%s", tw_health_type_name(type));
        tw_err err =
            tw_txn_counter_add(t, &(tw_counter){NULL, COUNTER_NAME, dims}, day, types[type]);
        if (err)
            return err;
    }
    return TW_OK;
}

tw_err tw_health_delete(tw_txn *t, const tw_id *user, const tw_id *id, tw_arena *arena)
{
    Tw__V1__HealthLog *old;
    tw_err err = tw_health_get(NULL, t, user, id, arena, &old);
    if (err)
        return err;
    tw_key k;
    entry_key(&k, user, id);
    if ((err = tw_txn_delete(t, &k)) || (err = delete_indexes(t, user, old, id)))
        return err;
    if (old->external_id[0] != '\0') {
        external_key(&k, user, old);
        if ((err = tw_txn_delete(t, &k)))
            return err;
    }
    return tw_txn_changelog_append(t, user, CHANGE_TYPE, id, TW_CHANGE_TOMBSTONE, NULL);
}

/* ---- Lists ------------------------------------------------------------------ */

struct list_ctx {
    tw_store *store;
    const tw_id *user;
    const tw_health_query *q;
    tw_arena *arena;
    Tw__V1__HealthLog **entries;
    size_t count;
};

static tw_err list_item(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it, bool *taken)
{
    struct list_ctx *c = ctx;
    Tw__V1__HealthLog *e;
    tw_err err = tw_health_get(c->store, NULL, c->user, id, c->arena, &e);
    if (err == TW_ERR_NOT_FOUND) /* deleted since the scan began */
        return TW_OK;
    if (err)
        return err;
    if ((c->q->type && (int)e->type != c->q->type) ||
        (c->q->source && (int)e->source != c->q->source))
        return TW_OK;
    c->entries[c->count++] = e;
    *taken = true;
    return TW_OK;
}

tw_err tw_health_list(tw_store *s, const tw_id *user, const tw_health_query *q,
                      const char *page_token, uint32_t limit, tw_arena *arena,
                      Tw__V1__HealthLog ***entries, size_t *count, char **next_token)
{
    tw_key prefix;
    /* The narrowest index the filters allow; the rest is filtered. */
    if (q->type) {
        tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_TYPE);
        tw_key_id(&prefix, user);
        tw_key_u32(&prefix, (uint32_t)q->type);
    } else if (q->source) {
        tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_SOURCE);
        tw_key_id(&prefix, user);
        tw_key_u32(&prefix, (uint32_t)q->source);
    } else {
        tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_TIME);
        tw_key_id(&prefix, user);
    }
    struct list_ctx c = {s, user, q, arena, tw_arena_alloc(arena, (limit + 1) * sizeof(void *)), 0};
    if (c.entries == NULL)
        return TW_ERR_NO_MEMORY;
    /* The token is bound to the filters. */
    int64_t query[4] = {q->type, q->source, q->from_ms, q->to_ms};
    tw_err err = tw_index_page(s, user, &prefix, q->from_ms, q->to_ms, query, sizeof query,
                               page_token, limit, arena, list_item, &c, next_token);
    *entries = c.entries;
    *count = c.count;
    return err;
}

/* ---- Summaries ------------------------------------------------------------ */

tw_err tw_health_summarize(tw_store *store, const tw_id *user, tw_health_summary *s)
{
    int64_t from_ms, to_ms;
    tw_health_summary_window(s, &from_ms, &to_ms);
    tw_key prefix, after;
    tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_TIME);
    tw_key_id(&prefix, user);
    after = prefix;
    /* Whole keys of time from_ms sort after this prefix of them. */
    tw_key_i64(&after, from_ms);
    tw_store_iter *it;
    tw_err err = tw_store_scan(store, &prefix, after.bytes, after.len, false, &it);
    if (err)
        return err;
    /* Digests are decoded into a scratch arena renewed every so often, so a
     * summary of many entries runs in little memory. */
    tw_arena *scratch = NULL;
    for (uint32_t n = 0; tw_store_iter_next(it); n++) {
        if (n % SUMMARY_SCRATCH_ENTRIES == 0) {
            tw_arena_free(scratch);
            if ((scratch = tw_arena_new(SUMMARY_SCRATCH_ENTRIES * 64)) == NULL) {
                err = TW_ERR_NO_MEMORY;
                break;
            }
        }
        tw_key_reader r;
        tw_id skip;
        int64_t start_ms;
        tw_store_iter_read_key(it, &r);
        tw_key_read_id(&r, &skip);
        tw_key_read_i64(&r, &start_ms);
        if (r.err) {
            err = r.err;
            break;
        }
        if (start_ms >= to_ms)
            break;
        tw_value v;
        if ((err = tw_store_iter_value(it, scratch, &v)))
            break;
        tw_health_summary_add(s, start_ms, (const Tw__Store__V1__HealthLogDigest *)v.msg);
    }
    tw_arena_free(scratch);
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}
