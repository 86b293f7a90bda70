/*
 * Health log entries in the store. Each entry is HEALTH_LOG(user, id), a
 * HealthLogRecord read and written through tw_owned.h, with three index
 * keys under its start time (by time, carrying the summary digest; by
 * type; by source) and, when it has an external id, the claim
 * HEALTH_LOG_BY_EXTERNAL(user, source, external id) -> id that makes
 * imports upserts. Every write appends a "health_log" change and counts
 * new entries by type (counter "health_log_entries", dims "type=<name>").
 */
#include "health.h"

#include "tw_changelog.h"
#include "tw_counter.h"
#include "tw_owned.h"

#include <stdio.h>
#include <string.h>

#define CHANGE_TYPE  "health_log"
#define COUNTER_NAME "health_log_entries"
/* Digests decoded per scratch arena in a summary. */
#define SUMMARY_SCRATCH_ENTRIES 512

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

/* The stored entry id of user (for update in t, or committed from s). */
static tw_err read_entry(tw_store *s, tw_txn *t, const tw_id *user, const tw_id *id,
                         tw_arena *arena, Tw__V1__HealthLog **out)
{
    ProtobufCMessage *msg;
    tw_err err = tw_owned_get(s, t, TW_KF_HEALTH_LOG, user, id, arena, &msg);
    const Tw__Store__V1__HealthLogRecord *rec = (const void *)msg;
    if (err == TW_OK && rec->log == NULL)
        err = TW_ERR_DB_CORRUPT;
    *out = err ? NULL : rec->log;
    return err;
}

tw_err tw_health_get(tw_txn *t, tw_wellness_env *env, const tw_id *id, Tw__V1__HealthLog **out)
{
    tw_err err = read_entry(env->store, t, &env->user, id, env->arena, out);
    if (err != TW_ERR_NOT_FOUND)
        return err;
    char text[TW_ID_TEXT_SIZE];
    tw_id_format(id, text);
    return tw_wellness_refuse(env, err, "health log %s not found", text);
}

/* Writes entry e (id, times set) and its indexes; old (may be NULL) is the
 * stored version, whose index keys go. */
static tw_err write_entry(tw_txn *t, const tw_id *user, const tw_id *id,
                          const Tw__V1__HealthLog *old, const Tw__V1__HealthLog *e)
{
    Tw__Store__V1__HealthLogRecord rec = TW__STORE__V1__HEALTH_LOG_RECORD__INIT;
    rec.log = (Tw__V1__HealthLog *)e;
    tw_err err = old != NULL ? delete_indexes(t, user, old, id) : TW_OK;
    if (err || (err = tw_owned_put(t, TW_KF_HEALTH_LOG, user, id, &rec.base)) ||
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

/* Replaces stored entry old with the prepared entry e (same id, type,
 * source and external id), keeping create_time. *out gets it as stored. */
static tw_err replace(tw_txn *t, tw_wellness_env *env, const Tw__V1__HealthLog *old,
                      const Tw__V1__HealthLog *e, Tw__V1__HealthLog **out)
{
    tw_id id;
    if (!tw_id_parse(old->id, &id))
        return TW_ERR_DB_CORRUPT;
    int64_t create_ms = env->now_ms;
    if (old->create_time != NULL)
        tw_timestamp_to_ms(old->create_time, &create_ms);
    Tw__V1__HealthLog *s = stored_form(e, &id, create_ms, env->now_ms, env->arena);
    if (s == NULL)
        return TW_ERR_NO_MEMORY;
    *out = s;
    return write_entry(t, &env->user, &id, old, s);
}

/* Stores one entry of an upsert; *types counts the entries created. */
static tw_err upsert_one(tw_txn *t, tw_wellness_env *env, tw_health_write *w,
                         int64_t types[TW_HEALTH_TYPE_COUNT])
{
    const Tw__V1__HealthLog *e = w->entry;
    Tw__V1__HealthLog *old = NULL;
    tw_key ext;
    tw_value v;
    tw_err err;
    if (e->external_id[0] != '\0') {
        external_key(&ext, &env->user, e);
        err = tw_txn_get_for_update(t, &ext, env->arena, &v);
        if (err == TW_OK) {
            if ((err = read_entry(NULL, t, &env->user, &v.id, env->arena, &old)))
                return err == TW_ERR_NOT_FOUND ? TW_ERR_DB_CORRUPT : err;
        } else if (err != TW_ERR_NOT_FOUND) {
            return err;
        }
    }
    if (old != NULL) {
        if (tw_health_same_content(old, e, env->arena)) {
            w->stored = old;
            w->outcome = TW_HEALTH_UNCHANGED;
            return TW_OK;
        }
        w->outcome = TW_HEALTH_UPDATED;
        return replace(t, env, old, e, &w->stored);
    }
    tw_id id = w->has_id ? w->id : tw_id_new();
    if (w->has_id) {
        err = tw_owned_check(NULL, t, TW_KF_HEALTH_LOG, &env->user, &id);
        if (err == TW_OK) {
            char text[TW_ID_TEXT_SIZE];
            tw_id_format(&id, text);
            return tw_wellness_refuse(env, TW_ERR_ALREADY_EXISTS, "health log %s already exists",
                                      text);
        }
        if (err != TW_ERR_NOT_FOUND)
            return err;
    }
    Tw__V1__HealthLog *s = stored_form(e, &id, env->now_ms, env->now_ms, env->arena);
    if (s == NULL)
        return TW_ERR_NO_MEMORY;
    if ((err = write_entry(t, &env->user, &id, NULL, s)))
        return err;
    if (e->external_id[0] != '\0' && (err = tw_txn_put(t, &ext, &(tw_value){.id = id})))
        return err;
    types[e->type]++;
    w->stored = s;
    w->outcome = TW_HEALTH_CREATED;
    return TW_OK;
}

tw_err tw_health_upsert(tw_txn *t, tw_wellness_env *env, tw_health_write *w, size_t n)
{
    int64_t types[TW_HEALTH_TYPE_COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        tw_err err = upsert_one(t, env, &w[i], types);
        if (err)
            return err;
    }
    uint32_t day = tw_store_day(env->now_ms);
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

tw_err tw_health_update(tw_txn *t, tw_wellness_env *env, const tw_id *id,
                        const Tw__V1__HealthLog *values, unsigned fields, Tw__V1__HealthLog **out)
{
    tw_violations *v = env->violations;
    size_t before = tw_violations_total(v);
    int named = 0; /* the payload's type, when the mask names one */
    for (int type = 1; type < TW_HEALTH_TYPE_COUNT; type++) {
        if (!(fields & TW_HF_PAYLOAD(type)))
            continue;
        named = type;
        if (tw_health_payload_type(values->payload_case) != type)
            tw_violations_add(v, "health_log",
                              "update_mask names %s but health_log has no %s payload",
                              tw_health_type_name(type), tw_health_type_name(type));
    }
    if (tw_violations_total(v) > before)
        return TW_ERR_VALIDATION;
    Tw__V1__HealthLog *old, merged;
    tw_err err = tw_health_get(t, env, id, &old);
    if (err)
        return err;
    if (named != 0 && named != (int)old->type)
        return tw_violations_add(v, "update_mask", "the entry is %s: it has no %s payload",
                                 tw_health_type_name(old->type), tw_health_type_name(named));
    merged = *old;
    if (fields & TW_HF_START)
        merged.start_time = values->start_time;
    if (fields & TW_HF_END)
        merged.end_time = values->end_time;
    if (fields & TW_HF_OFFSET)
        merged.utc_offset = values->utc_offset;
    if (fields & TW_HF_NOTE)
        merged.note = values->note;
    if (named != 0) {
        merged.payload_case = values->payload_case;
        merged.sleep = values->sleep; /* the union's members share one pointer */
    }
    Tw__V1__HealthLog *e;
    if ((err = tw_health_prepare(&merged, "health_log.", env->arena, v, &e)))
        return err;
    return replace(t, env, old, e, out);
}

tw_err tw_health_delete(tw_txn *t, tw_wellness_env *env, const tw_id *id)
{
    Tw__V1__HealthLog *old;
    tw_err err = tw_health_get(t, env, id, &old);
    if (err || (err = tw_owned_delete(t, TW_KF_HEALTH_LOG, &env->user, id)) ||
        (err = delete_indexes(t, &env->user, old, id)))
        return err;
    if (old->external_id[0] != '\0') {
        tw_key k;
        external_key(&k, &env->user, old);
        if ((err = tw_txn_delete(t, &k)))
            return err;
    }
    return tw_txn_changelog_append(t, &env->user, CHANGE_TYPE, id, TW_CHANGE_TOMBSTONE, NULL);
}

/* ---- Lists ------------------------------------------------------------------ */

struct list_ctx {
    tw_wellness_env *env;
    const tw_health_query *q;
    Tw__V1__HealthLog **entries;
    size_t count;
};

static tw_err list_item(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it, bool *taken)
{
    (void)time_ms, (void)it;
    struct list_ctx *c = ctx;
    Tw__V1__HealthLog *e;
    tw_err err = read_entry(c->env->store, NULL, &c->env->user, id, c->env->arena, &e);
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

tw_err tw_health_list(tw_wellness_env *env, const tw_health_query *q, const uint8_t *cursor,
                      size_t cursor_len, uint32_t limit, Tw__V1__HealthLog ***entries,
                      size_t *count, const uint8_t **next, size_t *next_len)
{
    tw_key prefix;
    /* The narrowest index the filters allow; the rest is filtered. */
    if (q->type) {
        tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_TYPE);
        tw_key_id(&prefix, &env->user);
        tw_key_u32(&prefix, (uint32_t)q->type);
    } else if (q->source) {
        tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_SOURCE);
        tw_key_id(&prefix, &env->user);
        tw_key_u32(&prefix, (uint32_t)q->source);
    } else {
        tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_TIME);
        tw_key_id(&prefix, &env->user);
    }
    struct list_ctx c = {env, q, tw_arena_alloc(env->arena, (limit + 1) * sizeof(void *)), 0};
    if (c.entries == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = tw_index_page(env->store, &prefix, q->from_ms, q->to_ms, cursor, cursor_len, limit,
                               env->arena, list_item, &c, next, next_len);
    *entries = c.entries;
    *count = c.count;
    return err;
}

/* ---- Summaries ------------------------------------------------------------ */

static tw_err summary_item(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it,
                           tw_arena *scratch)
{
    (void)id;
    tw_value v;
    tw_err err = tw_store_iter_value(it, scratch, &v);
    if (err == TW_OK)
        tw_health_summary_add(ctx, time_ms, (const Tw__Store__V1__HealthLogDigest *)v.msg);
    return err;
}

tw_err tw_health_summarize(tw_store *store, const tw_id *user, tw_health_summary *s)
{
    int64_t from_ms, to_ms;
    tw_health_summary_window(s, &from_ms, &to_ms);
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_HEALTH_LOG_BY_TIME);
    tw_key_id(&prefix, user);
    /* Digests are decoded into a scratch arena renewed every so often, so a
     * summary of many entries runs in little memory. */
    return tw_index_window(store, &prefix, from_ms, to_ms, SUMMARY_SCRATCH_ENTRIES,
                           SUMMARY_SCRATCH_ENTRIES * 64, summary_item, s);
}
