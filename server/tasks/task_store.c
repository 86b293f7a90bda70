/* Task records, their indexes and the completion log (task_store.h). */
#include "task_store.h"

#include "task_fields.h"
#include "tw_changelog.h"
#include "tw_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of a parent-index order part beyond the order key: NUL + id. */
#define ORDER_TAIL (1 + TW_ID_BYTES)

static const tw_id nil_id;

tw_id tw_task_record_id(const tw_task_record *rec)
{
    tw_id id = {{0}};
    tw_id_parse(rec->task->id, &id);
    return id;
}

static tw_id parent_of(const tw_task_record *rec)
{
    tw_id id = nil_id;
    if (rec->task->parent_id[0] != '\0')
        tw_id_parse(rec->task->parent_id, &id);
    return id;
}

char *tw_task_etag(tw_arena *arena, uint64_t version)
{
    return tw_arena_printf(arena, "%" PRIu64, version);
}

bool tw_task_etag_version(const char *etag, uint64_t *version)
{
    char *end;
    if (etag[0] < '1' || etag[0] > '9')
        return false;
    unsigned long long v = strtoull(etag, &end, 10);
    *version = v;
    return *end == '\0';
}

/* ---- Keys ------------------------------------------------------------------ */

static void task_key(tw_key *k, const tw_id *user, const tw_id *id)
{
    tw_key_init(k, TW_KF_TASK);
    tw_key_id(k, user);
    tw_key_id(k, id);
}

/* The order part of a parent-index key: order key, NUL, id bytes. */
static void order_part(tw_key *k, const char *order_key, const tw_id *id)
{
    char buf[TW_TASK_ORDER_KEY_MAX + ORDER_TAIL];
    size_t len = strlen(order_key);
    if (len > TW_TASK_ORDER_KEY_MAX)
        len = TW_TASK_ORDER_KEY_MAX;
    memcpy(buf, order_key, len);
    buf[len] = '\0';
    memcpy(buf + len + 1, id->bytes, TW_ID_BYTES);
    tw_key_strn(k, buf, len + ORDER_TAIL);
}

static void parent_prefix(tw_key *k, const tw_id *user, const tw_id *parent)
{
    tw_key_init(k, TW_KF_TASK_BY_PARENT);
    tw_key_id(k, user);
    tw_key_id(k, parent ? parent : &nil_id);
}

/* Puts (present) or deletes every index entry of rec. Each names the task,
 * whose record the transaction writes as well (tw_task_put, tw_task_remove),
 * so they are written as index entries (tw_txn_put_index). */
static tw_err index_write(tw_txn *t, const tw_id *user, const tw_task_record *rec, bool present)
{
    const Tw__V1__Task *task = rec->task;
    tw_id id = tw_task_record_id(rec), parent = parent_of(rec);
    uint32_t status = (uint32_t)task->status;
    tw_key k[5];
    tw_key_init(&k[0], TW_KF_TASK_BY_STATUS);
    tw_key_id(&k[0], user);
    tw_key_u32(&k[0], status);
    tw_key_id(&k[0], &id);
    tw_key_init(&k[1], TW_KF_TASK_BY_DUE);
    tw_key_id(&k[1], user);
    tw_key_u32(&k[1], status);
    tw_key_i64(&k[1], rec->has_due ? rec->due_unix_ms : INT64_MAX);
    tw_key_id(&k[1], &id);
    tw_key_init(&k[2], TW_KF_TASK_BY_PRIORITY);
    tw_key_id(&k[2], user);
    tw_key_u32(&k[2], status);
    tw_key_u32(&k[2], (uint32_t)task->priority);
    tw_key_id(&k[2], &id);
    tw_key_init(&k[3], TW_KF_TASK_BY_PARENT);
    tw_key_id(&k[3], user);
    tw_key_id(&k[3], &parent);
    tw_key_u32(&k[3], status);
    order_part(&k[3], task->order_key, &id);
    tw_err err = TW_OK;
    for (size_t i = 0; err == TW_OK && i < 4; i++)
        err = present ? tw_txn_put_index(t, &k[i], NULL) : tw_txn_delete_index(t, &k[i]);
    for (size_t i = 0; err == TW_OK && i < task->n_labels; i++) {
        tw_key_init(&k[4], TW_KF_TASK_BY_LABEL);
        tw_key_id(&k[4], user);
        tw_key_str(&k[4], task->labels[i]);
        tw_key_id(&k[4], &id);
        err = present ? tw_txn_put_index(t, &k[4], NULL) : tw_txn_delete_index(t, &k[4]);
    }
    return err;
}

/* ---- Tasks ------------------------------------------------------------------- */

tw_err tw_task_get(tw_store *s, tw_txn *t, const tw_id *user, const tw_id *id, tw_arena *arena,
                   tw_task_record **out)
{
    tw_key k;
    task_key(&k, user, id);
    tw_value v;
    tw_err err = t ? tw_txn_get_for_update(t, &k, arena, &v) : tw_store_get(s, &k, arena, &v);
    if (err)
        return err;
    tw_task_record *rec = (tw_task_record *)v.msg;
    if (rec->task == NULL)
        return TW_ERR_DB_CORRUPT;
    *out = rec;
    return TW_OK;
}

tw_err tw_task_get_stored(tw_store *s, const tw_id *user, const tw_id *id, tw_arena *arena,
                          const uint8_t **rec, size_t *len)
{
    tw_key k;
    task_key(&k, user, id);
    return tw_store_get_bytes(s, &k, arena, rec, len);
}

tw_err tw_task_record_bytes(const uint8_t *rec, size_t len, tw_task_bytes *out)
{
    /* A record wraps its API message in field 1 (docs/adding-a-service.md):
     * a lookup by name was a binary search with strcmp per task of a page. */
    enum { RECORD_MESSAGE_FIELD = 1 };
    const uint8_t *value;
    size_t value_len;
    if (!tw_wire_find(rec, len, RECORD_MESSAGE_FIELD, &out->prefixed, &out->len, &value,
                      &value_len))
        return TW_ERR_DB_CORRUPT;
    return TW_OK;
}

tw_err tw_task_put(tw_txn *t, const tw_id *user, const tw_task_record *old, tw_task_record *rec,
                   int64_t now_ms, tw_arena *arena)
{
    rec->version = old ? old->version + 1 : 1;
    rec->task->etag = tw_task_etag(arena, rec->version);
    rec->task->update_time = tw_timestamp_new(arena, now_ms);
    if (rec->task->etag == NULL || rec->task->update_time == NULL)
        return TW_ERR_NO_MEMORY;
    tw_id id = tw_task_record_id(rec);
    tw_key k;
    task_key(&k, user, &id);
    tw_id parent = parent_of(rec);
    tw_key siblings;
    parent_prefix(&siblings, user, &parent);
    tw_err err;
    if ((old && (err = index_write(t, user, old, false))) ||
        (err = index_write(t, user, rec, true)) ||
        (err = tw_txn_put(t, &k, &(tw_value){.msg = &rec->base})) ||
        (err = tw_txn_hint_raise(t, user, &siblings, rec->task->order_key)))
        return err;
    return tw_txn_changelog_append(t, user, TW_RESOURCE_TASK, &id, TW_CHANGE_UPSERT, NULL);
}

static void deleted_key(tw_key *k, const tw_id *user, const tw_id *id)
{
    tw_key_init(k, TW_KF_TASK_DELETED);
    tw_key_id(k, user);
    tw_key_id(k, id);
}

tw_err tw_task_remove(tw_txn *t, const tw_id *user, const tw_task_record *old)
{
    tw_id id = tw_task_record_id(old);
    tw_key k, deleted;
    task_key(&k, user, &id);
    deleted_key(&deleted, user, &id);
    tw_err err;
    if ((err = index_write(t, user, old, false)) || (err = tw_txn_delete(t, &k)) ||
        (err = tw_txn_put(t, &deleted, NULL)))
        return err;
    return tw_txn_changelog_append(t, user, TW_RESOURCE_TASK, &id, TW_CHANGE_TOMBSTONE, NULL);
}

tw_err tw_task_was_deleted(tw_txn *t, const tw_id *user, const tw_id *id, bool *deleted)
{
    tw_key k;
    tw_value v;
    deleted_key(&k, user, id);
    tw_err err = tw_txn_get_for_update(t, &k, NULL, &v);
    *deleted = err == TW_OK;
    return err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

/* The id at the end of a parent-index key's order part. */
static tw_err read_parent_entry(tw_store_iter *it, tw_arena *arena, tw_id *id, char **order_key)
{
    tw_key_reader r;
    tw_store_iter_read_key(it, &r);
    tw_id skip;
    uint32_t status;
    char *order;
    size_t len = 0;
    tw_key_read_id(&r, &skip);
    tw_key_read_id(&r, &skip);
    tw_key_read_u32(&r, &status);
    tw_key_read_str(&r, arena, &order, &len);
    if (r.err)
        return r.err;
    if (len < ORDER_TAIL)
        return TW_ERR_DB_CORRUPT;
    memcpy(id->bytes, order + len - TW_ID_BYTES, TW_ID_BYTES);
    order[len - ORDER_TAIL] = '\0';
    if (order_key != NULL)
        *order_key = order;
    return TW_OK;
}

tw_err tw_task_children(tw_store *s, const tw_id *user, const tw_id *parent, size_t limit,
                        tw_arena *arena, tw_id **ids, size_t *n, bool *more)
{
    *n = 0;
    *more = false;
    if ((*ids = tw_arena_alloc(arena, (limit ? limit : 1) * sizeof **ids)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key prefix;
    parent_prefix(&prefix, user, parent);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, NULL, 0, false, &it);
    if (err)
        return err;
    while (err == TW_OK && tw_store_iter_next(it)) {
        if (*n == limit) {
            *more = true;
            break;
        }
        err = read_parent_entry(it, arena, &(*ids)[*n], NULL);
        (*n)++;
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

tw_err tw_task_sibling_key(tw_store *s, const tw_id *user, const tw_id *parent, const char *after,
                           const tw_id *self, tw_arena *arena, char **key)
{
    *key = NULL;
    tw_err err = TW_OK;
    for (uint32_t status = 1; err == TW_OK && status <= TW_TASK_STATUS_COUNT; status++) {
        tw_key prefix;
        parent_prefix(&prefix, user, parent);
        tw_key_u32(&prefix, status);
        /* After every entry whose order key is `after`: the key, the NUL
         * (encoded 00 ff) and more 0xff than an id can hold. */
        uint8_t start[TW_KEY_MAX];
        size_t start_len = 0;
        if (after != NULL) {
            size_t alen = strlen(after);
            if (prefix.len + alen + 2 + TW_ID_BYTES + 1 > sizeof start)
                return TW_ERR_INTERNAL;
            memcpy(start, prefix.bytes, prefix.len);
            memcpy(start + prefix.len, after, alen);
            start_len = prefix.len + alen;
            start[start_len++] = 0x00;
            memset(start + start_len, 0xff, 1 + TW_ID_BYTES + 1);
            start_len += 1 + TW_ID_BYTES + 1;
        }
        tw_store_iter *it;
        if ((err = tw_store_scan(s, &prefix, start, start_len, after == NULL, &it)))
            return err;
        while (err == TW_OK && tw_store_iter_next(it)) {
            tw_id id;
            char *order;
            if ((err = read_parent_entry(it, arena, &id, &order)))
                break;
            if (self != NULL && memcmp(id.bytes, self->bytes, TW_ID_BYTES) == 0)
                continue;
            int cmp = *key == NULL ? 0 : strcmp(order, *key);
            if (*key == NULL || (after == NULL ? cmp > 0 : cmp < 0))
                *key = order;
            break;
        }
        tw_err close_err = tw_store_iter_close(it);
        err = err ? err : close_err;
    }
    return err;
}

_Static_assert(TW_TASK_ORDER_KEY_MAX < TW_HINT_VALUE_MAX, "an order key fits a hint");

struct last_scan {
    tw_store *s;
    const tw_id *user, *parent;
};

static tw_err scan_last_key(void *ctx, char *value, size_t cap)
{
    struct last_scan *l = ctx;
    tw_arena *arena = tw_arena_new(512);
    if (arena == NULL)
        return TW_ERR_NO_MEMORY;
    char *key;
    tw_err err = tw_task_sibling_key(l->s, l->user, l->parent, NULL, NULL, arena, &key);
    if (err == TW_OK)
        snprintf(value, cap, "%s", key ? key : ""); /* stored keys are valid: they fit */
    tw_arena_free(arena);
    return err;
}

tw_err tw_task_last_order_key(tw_store *s, const tw_id *user, const tw_id *parent, char *out)
{
    tw_key siblings;
    parent_prefix(&siblings, user, parent);
    struct last_scan l = {s, user, parent};
    return tw_store_hint(s, user, &siblings, scan_last_key, &l, out);
}

/* ---- Completions ------------------------------------------------------------- */

static void completion_key(tw_key *k, const tw_id *user, const tw_id *id)
{
    tw_key_init(k, TW_KF_TASK_COMPLETION);
    tw_key_id(k, user);
    tw_key_id(k, id);
}

tw_err tw_completion_get(tw_store *s, tw_txn *t, const tw_id *user, const tw_id *id,
                         tw_arena *arena, tw_completion_record **out)
{
    tw_key k;
    completion_key(&k, user, id);
    tw_value v;
    tw_err err = t ? tw_txn_get_for_update(t, &k, arena, &v) : tw_store_get(s, &k, arena, &v);
    if (err)
        return err;
    *out = (tw_completion_record *)v.msg;
    return (*out)->completion != NULL ? TW_OK : TW_ERR_DB_CORRUPT;
}

tw_err tw_completion_put(tw_txn *t, const tw_id *user, tw_completion_record *rec, bool indexed)
{
    const Tw__V1__TaskCompletion *c = rec->completion;
    tw_id id, task;
    if (!tw_id_parse(c->id, &id) || !tw_id_parse(c->task_id, &task))
        return TW_ERR_INTERNAL;
    tw_key k, by_task, by_credit;
    completion_key(&k, user, &id);
    tw_key_init(&by_task, TW_KF_COMPLETION_BY_TASK);
    tw_key_id(&by_task, user);
    tw_key_id(&by_task, &task);
    tw_key_id(&by_task, &id);
    tw_key_init(&by_credit, TW_KF_COMPLETION_BY_CREDIT);
    tw_key_id(&by_credit, user);
    tw_key_i64(&by_credit, rec->credit_unix_ms);
    tw_key_id(&by_credit, &id);
    Tw__Store__V1__CompletionCredit credit = TW__STORE__V1__COMPLETION_CREDIT__INIT;
    credit.time_zone = c->time_zone;
    credit.day_start_hour = rec->day_start_hour;
    tw_err err;
    if ((err = tw_txn_put(t, &k, &(tw_value){.msg = &rec->base})) ||
        (err = tw_txn_put(t, &by_task, NULL)) ||
        (err = indexed ? tw_txn_put(t, &by_credit, &(tw_value){.msg = &credit.base})
                       : tw_txn_delete(t, &by_credit)))
        return err;
    return tw_txn_changelog_append(t, user, TW_RESOURCE_TASK_COMPLETION, &id, TW_CHANGE_UPSERT,
                                   NULL);
}

tw_err tw_task_missed_put(tw_txn *t, const tw_id *user, const tw_id *task, int64_t due_ms,
                          bool present)
{
    tw_key k;
    tw_key_init(&k, TW_KF_TASK_MISSED);
    tw_key_id(&k, user);
    tw_key_i64(&k, due_ms);
    tw_key_id(&k, task);
    return present ? tw_txn_put(t, &k, NULL) : tw_txn_delete(t, &k);
}

/* ---- Remembered requests ------------------------------------------------------- */

static void request_key(tw_key *k, const tw_id *user, const char *key)
{
    tw_key_init(k, TW_KF_REQUEST);
    tw_key_id(k, user);
    tw_key_str(k, key);
}

tw_err tw_request_get(tw_txn *t, const tw_id *user, const char *key, tw_arena *arena,
                      Tw__Store__V1__RequestRecord **out)
{
    tw_key k;
    request_key(&k, user, key);
    tw_value v;
    tw_err err = tw_txn_get_for_update(t, &k, arena, &v);
    if (err == TW_OK)
        *out = (Tw__Store__V1__RequestRecord *)v.msg;
    return err;
}

tw_err tw_request_put(tw_txn *t, const tw_id *user, const char *key,
                      const Tw__Store__V1__RequestRecord *rec)
{
    tw_key k;
    request_key(&k, user, key);
    return tw_txn_put(t, &k, &(tw_value){.msg = (ProtobufCMessage *)&rec->base});
}
