/* The per-user change log of tw_changelog.h. */
#include "tw_changelog.h"

#include "store_internal.h"
#include "tw/store/v1/records.pb-c.h"

#include <string.h>

/* Entries removed per trimming transaction. */
#define TRIM_CHUNK 256

static void head_key(tw_key *k, const tw_id *user)
{
    tw_key_init(k, TW_KF_CHANGE_HEAD);
    tw_key_id(k, user);
}

/* The prefix of all of user's entries. */
static void entries_prefix(tw_key *k, const tw_id *user)
{
    tw_key_init(k, TW_KF_CHANGE);
    tw_key_id(k, user);
}

static void entry_key(tw_key *k, const tw_id *user, uint64_t sequence)
{
    entries_prefix(k, user);
    tw_key_u64(k, sequence);
}

/* A log head as stored; an absent head is a log never written. */
struct head {
    uint64_t last_sequence;
    uint64_t trimmed_through;
};

/* The committed head of user's log. */
static tw_err head_read(tw_store *s, const tw_id *user, tw_arena *arena, struct head *out)
{
    tw_key k;
    head_key(&k, user);
    tw_value v;
    tw_err err = tw_store_get(s, &k, arena, &v);
    memset(out, 0, sizeof *out);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    const Tw__Store__V1__ChangeHead *m = (const Tw__Store__V1__ChangeHead *)v.msg;
    out->last_sequence = m->last_sequence;
    out->trimmed_through = m->trimmed_through;
    return TW_OK;
}

/* Puts a log key into t untracked: the log locks guard the user's entries
 * and head, so no other commit writes them meanwhile. */
static tw_err put_untracked(tw_txn *t, const tw_key *k, const ProtobufCMessage *msg)
{
    return store_txn_write_untracked(t, k, &(tw_value){.msg = (ProtobufCMessage *)msg}, false);
}

pthread_mutex_t *store_log_lock(tw_store *s, const tw_id *user)
{
    return &s->log_locks[user->bytes[TW_ID_BYTES - 1] % STORE_LOG_LOCKS];
}

struct store_log *store_log_of(tw_txn *t, const tw_id *user)
{
    for (struct store_log *l = t->logs; l != NULL; l = l->next) {
        if (memcmp(l->user.bytes, user->bytes, TW_ID_BYTES) == 0)
            return l;
    }
    struct store_log *l = tw_arena_alloc(t->arena, sizeof *l);
    if (l == NULL)
        return NULL;
    memset(l, 0, sizeof *l);
    l->user = *user;
    l->appends_end = &l->appends;
    l->next = t->logs;
    t->logs = l;
    return l;
}

/* Writes one log's entries and head; see store_log_apply. */
static tw_err log_apply(tw_txn *t, struct store_log *l)
{
    if (l->appends == NULL && l->trimmed_through == 0)
        return TW_OK; /* only there for its lock (a hint's raise) */
    struct head h;
    tw_err err = head_read(t->store, &l->user, t->arena, &h);
    int64_t now_ms = tw_store_now_ms(t->store);
    for (struct store_append *a = l->appends; err == TW_OK && a != NULL; a = a->next) {
        Tw__Store__V1__ChangeEntry m = TW__STORE__V1__CHANGE_ENTRY__INIT;
        m.sequence = ++h.last_sequence;
        m.resource_type = (char *)a->resource_type;
        m.resource_id = (ProtobufCBinaryData){TW_ID_BYTES, a->resource_id.bytes};
        m.op = (Tw__Store__V1__ChangeOp)a->op;
        m.change_unix_ms = now_ms;
        tw_key k;
        entry_key(&k, &l->user, m.sequence);
        err = put_untracked(t, &k, &m.base);
        if (a->sequence != NULL)
            *a->sequence = m.sequence;
    }
    if (err)
        return err;
    if (l->trimmed_through > h.trimmed_through)
        h.trimmed_through = l->trimmed_through;
    l->last_sequence = h.last_sequence;
    tw_key k;
    head_key(&k, &l->user);
    Tw__Store__V1__ChangeHead m = TW__STORE__V1__CHANGE_HEAD__INIT;
    m.last_sequence = h.last_sequence;
    m.trimmed_through = h.trimmed_through;
    return put_untracked(t, &k, &m.base);
}

tw_err store_log_apply(tw_txn *t)
{
    tw_err err = TW_OK;
    for (struct store_log *l = t->logs; err == TW_OK && l != NULL; l = l->next)
        err = log_apply(t, l);
    return err;
}

tw_err tw_txn_changelog_append(tw_txn *t, const tw_id *user, const char *resource_type,
                               const tw_id *resource_id, tw_change_op op, uint64_t *sequence)
{
    if (op != TW_CHANGE_UPSERT && op != TW_CHANGE_TOMBSTONE)
        return store_fail(TW_ERR_INTERNAL, "change-log op %d", (int)op);
    struct store_log *l = store_log_of(t, user);
    struct store_append *a = tw_arena_alloc(t->arena, sizeof *a);
    char *type = tw_arena_strdup(t->arena, resource_type);
    if (l == NULL || a == NULL || type == NULL)
        return TW_ERR_NO_MEMORY;
    *a = (struct store_append){NULL, type, *resource_id, (int)op, sequence};
    *l->appends_end = a;
    l->appends_end = &a->next;
    return TW_OK;
}

/* The entry at the iterator, checked: what it says must be possible. */
static tw_err entry_read(tw_store_iter *it, tw_arena *arena, tw_change *out)
{
    tw_value v;
    tw_err err = tw_store_iter_value(it, arena, &v);
    if (err)
        return err;
    const Tw__Store__V1__ChangeEntry *m = (const Tw__Store__V1__ChangeEntry *)v.msg;
    if (m->resource_id.len != TW_ID_BYTES ||
        (m->op != TW__STORE__V1__CHANGE_OP__CHANGE_OP_UPSERT &&
         m->op != TW__STORE__V1__CHANGE_OP__CHANGE_OP_TOMBSTONE))
        return store_fail(TW_ERR_DB_CORRUPT, "change %llu: bad id or op",
                          (unsigned long long)m->sequence);
    out->sequence = m->sequence;
    out->resource_type = m->resource_type;
    memcpy(out->resource_id.bytes, m->resource_id.data, TW_ID_BYTES);
    out->op = (tw_change_op)m->op;
    out->time_ms = m->change_unix_ms;
    return TW_OK;
}

tw_err tw_store_changelog_read(tw_store *s, const tw_id *user, uint64_t since, uint32_t limit,
                               tw_arena *arena, tw_change_page *out)
{
    memset(out, 0, sizeof *out);
    if (limit > TW_CHANGELOG_MAX_LIMIT)
        limit = TW_CHANGELOG_MAX_LIMIT;
    struct head head;
    tw_err err = head_read(s, user, arena, &head);
    if (err)
        return err;
    out->last_sequence = head.last_sequence;
    out->oldest_sequence = head.trimmed_through + 1;
    if (since < head.trimmed_through || since > head.last_sequence) {
        out->resync = true;
        return TW_OK;
    }
    if (limit == 0)
        return TW_OK;
    if ((out->changes = tw_arena_alloc(arena, limit * sizeof *out->changes)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key prefix, after;
    entries_prefix(&prefix, user);
    entry_key(&after, user, since);
    tw_store_iter *it;
    if ((err = tw_store_scan(s, &prefix, after.bytes, after.len, false, &it)))
        return err;
    while (err == TW_OK && tw_store_iter_next(it)) {
        if (out->count == limit) {
            out->more = true;
            break;
        }
        err = entry_read(it, arena, &out->changes[out->count++]);
    }
    tw_err close_err = tw_store_iter_close(it);
    if (err == TW_OK && (err = close_err) == TW_OK && out->count > 0 &&
        out->changes[out->count - 1].sequence > out->last_sequence)
        out->last_sequence = out->changes[out->count - 1].sequence; /* committed since */
    /* A client keeps what it was handed as its cursor: only durable
     * entries may be handed out (store/txn.c). */
    return err ? err : store_sync_committed(s);
}

struct trim_chunk {
    tw_id user;
    size_t count;
    uint64_t sequences[TRIM_CHUNK];
};

static tw_err trim_apply(tw_txn *t, void *ctx)
{
    const struct trim_chunk *c = ctx;
    struct store_log *l = store_log_of(t, &c->user);
    tw_err err = l ? TW_OK : TW_ERR_NO_MEMORY;
    for (size_t i = 0; err == TW_OK && i < c->count; i++) {
        tw_key k;
        entry_key(&k, &c->user, c->sequences[i]);
        err = tw_txn_delete(t, &k);
        if (c->sequences[i] > l->trimmed_through)
            l->trimmed_through = c->sequences[i]; /* into the head at commit */
    }
    return err;
}

/* Fills c with the next entries of c->user older than before_ms, oldest
 * first; *older_left says the chunk was cut short by TRIM_CHUNK, not by
 * reaching a newer entry or the end. */
static tw_err trim_collect(tw_store *s, struct trim_chunk *c, int64_t before_ms, bool *older_left)
{
    tw_key prefix;
    entries_prefix(&prefix, &c->user);
    tw_arena *arena = tw_arena_new(16 * 1024);
    tw_store_iter *it = NULL;
    tw_err err = TW_ERR_NO_MEMORY;
    c->count = 0;
    *older_left = false;
    if (arena == NULL || (err = tw_store_scan(s, &prefix, NULL, 0, false, &it)))
        goto out;
    while (tw_store_iter_next(it)) {
        tw_change e;
        if ((err = entry_read(it, arena, &e)))
            goto out;
        if (e.time_ms >= before_ms)
            break;
        if (c->count == TRIM_CHUNK) {
            *older_left = true;
            break;
        }
        c->sequences[c->count++] = e.sequence;
    }
out:;
    tw_err close_err = tw_store_iter_close(it);
    tw_arena_free(arena);
    return err ? err : close_err;
}

static tw_err trim_user(tw_store *s, const tw_id *user, int64_t before_ms, uint64_t *removed)
{
    struct trim_chunk c = {.user = *user};
    bool older_left = true;
    tw_err err = TW_OK;
    while (err == TW_OK && older_left) {
        if ((err = trim_collect(s, &c, before_ms, &older_left)) || c.count == 0)
            break;
        if ((err = tw_txn_run(s, trim_apply, &c)) == TW_OK)
            *removed += c.count;
    }
    return err;
}

tw_err tw_store_changelog_trim(tw_store *s, const tw_id *user, int64_t before_ms, uint64_t *removed)
{
    uint64_t n = 0;
    tw_err err = TW_OK;
    if (user != NULL) {
        err = trim_user(s, user, before_ms, &n);
    } else {
        tw_key heads;
        tw_key_init(&heads, TW_KF_CHANGE_HEAD);
        tw_store_iter *it;
        if ((err = tw_store_scan(s, &heads, NULL, 0, false, &it)))
            return err;
        while (err == TW_OK && tw_store_iter_next(it)) {
            tw_key_reader r;
            tw_id u;
            tw_store_iter_read_key(it, &r);
            tw_key_read_id(&r, &u);
            err = r.err ? store_fail(r.err, "bad change-log head key")
                        : trim_user(s, &u, before_ms, &n);
        }
        tw_err close_err = tw_store_iter_close(it);
        err = err ? err : close_err;
    }
    if (removed != NULL)
        *removed = n;
    return err;
}
