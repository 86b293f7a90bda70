/* Task and completion pages from ordered indexes (task_list.h). */
#include "task_list.h"

#include "task_fields.h"
#include "tw_page.h"

#include <stddef.h>
#include <string.h>

#define I64_FLIP UINT64_C(0x8000000000000000)

/* One prefix scan of a merged list, with the entry it stands on. */
struct stream {
    tw_key prefix;
    tw_store_iter *it;
    bool valid;
    uint8_t tail[TW_KEY_MAX]; /* the key after the prefix */
    size_t tail_len;
    tw_id id; /* the task the entry names */
    /* TASK scans: the value itself, valid until the stream moves */
    const uint8_t *value;
    size_t value_len;
};

struct plan {
    tw_kf family;
    size_t nstreams;
    bool reverse;
    /* Filters checked on each task read (those the index does not hold);
     * decode_records: some of them filter, so each record is decoded. */
    bool check_status, check_label, check_parent, check_due;
    bool decode_records;
    bool statuses[TW_TASK_STATUS_COUNT + 1];
    const char *label;
    bool parent_set, top_level;
    tw_id parent;
    bool due_from_set, due_to_set;
    int64_t due_from, due_to;
    int recurrence; /* -1 either, 0 one-off only, 1 recurring only */
    /* Last and not zeroed (4 KiB of key buffers): add_stream sets what is
     * read before a stream's first entry. */
    struct stream streams[TW_TASK_STATUS_COUNT];
};

static void put_i64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v ^ I64_FLIP;
    for (int i = 7; i >= 0; i--, u >>= 8)
        p[i] = (uint8_t)u;
}

static int64_t get_i64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)(u ^ I64_FLIP);
}

static int tail_cmp(const struct stream *a, const struct stream *b)
{
    size_t n = a->tail_len < b->tail_len ? a->tail_len : b->tail_len;
    int c = memcmp(a->tail, b->tail, n);
    return c ? c : (a->tail_len > b->tail_len) - (a->tail_len < b->tail_len);
}

/* A new stream over the family's keys of user. */
static struct stream *add_stream(struct plan *p, const tw_id *user)
{
    struct stream *st = &p->streams[p->nstreams++];
    st->it = NULL;
    st->valid = false;
    tw_key_init(&st->prefix, p->family);
    tw_key_id(&st->prefix, user);
    return st;
}

/* Builds the streams and the filters left to check from the request. */
static void plan_request(struct plan *p, const tw_id *user, const Tw__V1__ListTasksRequest *req)
{
    memset(p, 0, offsetof(struct plan, streams));
    p->reverse = req->descending;
    for (size_t i = 0; i < req->n_statuses; i++)
        p->statuses[req->statuses[i]] = true;
    p->label = req->label[0] ? req->label : NULL;
    p->parent_set = req->parent_id[0] && tw_id_parse(req->parent_id, &p->parent);
    p->top_level = req->top_level_only;
    int64_t ms;
    if ((p->due_from_set = tw_timestamp_to_ms(req->due_after_time, &ms)))
        p->due_from = ms;
    if ((p->due_to_set = tw_timestamp_to_ms(req->due_before_time, &ms)))
        p->due_to = ms;
    p->recurrence =
        req->has_recurrence == TW__V1__TASK_RECURRENCE_FILTER__TASK_RECURRENCE_FILTER_RECURRING ? 1
        : req->has_recurrence == TW__V1__TASK_RECURRENCE_FILTER__TASK_RECURRENCE_FILTER_ONE_OFF
            ? 0
            : -1;

    bool by_status = true;
    switch (req->order_by) {
    case TW__V1__TASK_ORDER__TASK_ORDER_DUE:
        p->family = TW_KF_TASK_BY_DUE;
        break;
    case TW__V1__TASK_ORDER__TASK_ORDER_PRIORITY:
        p->family = TW_KF_TASK_BY_PRIORITY;
        break;
    case TW__V1__TASK_ORDER__TASK_ORDER_MANUAL:
        p->family = TW_KF_TASK_BY_PARENT;
        break;
    default:
        by_status = req->n_statuses > 0;
        p->family = by_status ? TW_KF_TASK_BY_STATUS : p->label ? TW_KF_TASK_BY_LABEL : TW_KF_TASK;
    }
    p->check_status = !by_status && req->n_statuses > 0;
    p->check_label = p->label && p->family != TW_KF_TASK_BY_LABEL;
    p->check_parent = p->family != TW_KF_TASK_BY_PARENT;
    p->check_due = p->family != TW_KF_TASK_BY_DUE;
    p->decode_records = p->check_status || p->check_label ||
                        (p->check_parent && (p->parent_set || p->top_level)) ||
                        (p->check_due && (p->due_from_set || p->due_to_set)) || p->recurrence >= 0;

    if (!by_status) {
        struct stream *st = add_stream(p, user);
        if (p->family == TW_KF_TASK_BY_LABEL)
            tw_key_str(&st->prefix, p->label);
        return;
    }
    for (uint32_t status = 1; status <= TW_TASK_STATUS_COUNT; status++) {
        if (req->n_statuses > 0 && !p->statuses[status])
            continue;
        struct stream *st = add_stream(p, user);
        if (p->family == TW_KF_TASK_BY_PARENT) {
            static const tw_id top;
            tw_key_id(&st->prefix, p->parent_set ? &p->parent : &top);
        }
        tw_key_u32(&st->prefix, status);
    }
}

/* Moves a stream to its next entry, reading its tail and task id. */
static tw_err advance(struct plan *p, struct stream *st, tw_arena *arena)
{
    st->valid = tw_store_iter_next(st->it);
    if (!st->valid)
        return TW_OK;
    const uint8_t *key;
    size_t len;
    tw_store_iter_key(st->it, &key, &len);
    if (len < st->prefix.len + TW_ID_BYTES || len - st->prefix.len > sizeof st->tail)
        return TW_ERR_DB_CORRUPT;
    st->tail_len = len - st->prefix.len;
    memcpy(st->tail, key + st->prefix.len, st->tail_len);
    if (p->family == TW_KF_TASK_BY_PARENT) {
        /* The order part is the order key, a NUL and the id. */
        tw_key_reader r;
        tw_id skip;
        uint32_t status;
        char *order;
        size_t olen = 0;
        tw_store_iter_read_key(st->it, &r);
        tw_key_read_id(&r, &skip);
        tw_key_read_id(&r, &skip);
        tw_key_read_u32(&r, &status);
        tw_key_read_str(&r, arena, &order, &olen);
        if (r.err || olen < TW_ID_BYTES + 1)
            return TW_ERR_DB_CORRUPT;
        memcpy(st->id.bytes, order + olen - TW_ID_BYTES, TW_ID_BYTES);
    } else {
        memcpy(st->id.bytes, key + len - TW_ID_BYTES, TW_ID_BYTES);
    }
    if (p->family == TW_KF_TASK)
        tw_store_iter_bytes(st->it, &st->value, &st->value_len);
    return TW_OK;
}

/* Where each stream starts: after the cursor, or at the due bound. */
static tw_err open_streams(struct plan *p, tw_store *s, const uint8_t *cursor, size_t cursor_len,
                           tw_arena *arena)
{
    for (size_t i = 0; i < p->nstreams; i++) {
        struct stream *st = &p->streams[i];
        uint8_t after[TW_KEY_MAX + 8];
        size_t after_len = 0;
        bool bounded =
            p->family == TW_KF_TASK_BY_DUE && (p->reverse ? p->due_to_set : p->due_from_set);
        if (cursor_len > 0 || bounded) {
            if (st->prefix.len + (cursor_len ? cursor_len : 8) > TW_KEY_MAX)
                return TW_ERR_BAD_PAGE_TOKEN;
            memcpy(after, st->prefix.bytes, st->prefix.len);
            after_len = st->prefix.len;
            if (cursor_len > 0) {
                memcpy(after + after_len, cursor, cursor_len);
                after_len += cursor_len;
            } else {
                put_i64(after + after_len, p->reverse ? p->due_to : p->due_from);
                after_len += 8;
            }
        }
        tw_err err = tw_store_scan(s, &st->prefix, after, after_len, p->reverse, &st->it);
        if (err == TW_OK)
            err = advance(p, st, arena);
        if (err)
            return err;
    }
    return TW_OK;
}

/* The stream whose entry comes next in the list; NULL when all are done
 * or the next entry is beyond the due range. */
static struct stream *next_stream(struct plan *p)
{
    struct stream *best = NULL;
    for (size_t i = 0; i < p->nstreams; i++) {
        struct stream *st = &p->streams[i];
        if (!st->valid)
            continue;
        int c = best ? tail_cmp(st, best) : 0;
        if (best == NULL || (p->reverse ? c > 0 : c < 0))
            best = st;
    }
    if (best != NULL && p->family == TW_KF_TASK_BY_DUE) {
        int64_t due = get_i64(best->tail);
        if ((!p->reverse && p->due_to_set && due >= p->due_to) ||
            (p->reverse && p->due_from_set && due < p->due_from))
            return NULL;
    }
    return best;
}

static bool matches(const struct plan *p, const tw_task_record *rec)
{
    const Tw__V1__Task *t = rec->task;
    if (p->check_status && ((unsigned)t->status > TW_TASK_STATUS_COUNT || !p->statuses[t->status]))
        return false;
    if (p->check_label) {
        bool found = false;
        for (size_t i = 0; i < t->n_labels && !found; i++)
            found = strcmp(t->labels[i], p->label) == 0;
        if (!found)
            return false;
    }
    if (p->check_parent) {
        tw_id parent;
        bool has_parent = t->parent_id[0] && tw_id_parse(t->parent_id, &parent);
        if (p->top_level && has_parent)
            return false;
        if (p->parent_set &&
            (!has_parent || memcmp(parent.bytes, p->parent.bytes, TW_ID_BYTES) != 0))
            return false;
    }
    if (p->check_due && (p->due_from_set || p->due_to_set)) {
        if (!rec->has_due || (p->due_from_set && rec->due_unix_ms < p->due_from) ||
            (p->due_to_set && rec->due_unix_ms >= p->due_to))
            return false;
    }
    if (p->recurrence >= 0 && (t->recurrence != NULL) != (p->recurrence == 1))
        return false;
    return true;
}

/* The task of the entry st stands on, as stored, in arena; *listed is
 * false when a filter leaves it out or it was deleted since the scan
 * began. */
static tw_err read_entry(struct plan *p, struct stream *st, tw_store *s, const tw_id *user,
                         tw_arena *arena, tw_task_bytes *task, bool *listed)
{
    *listed = false;
    const uint8_t *rec = st->value;
    size_t len = st->value_len;
    if (p->family != TW_KF_TASK) {
        tw_err err = tw_task_get_stored(s, user, &st->id, arena, &rec, &len);
        if (err)
            return err == TW_ERR_NOT_FOUND ? TW_OK : err;
    }
    if (p->decode_records) {
        tw_value v;
        tw_err err = tw_store_decode(TW_KF_TASK, rec, len, arena, &v);
        if (err)
            return err;
        const tw_task_record *decoded = (const tw_task_record *)v.msg;
        if (decoded->task == NULL)
            return TW_ERR_DB_CORRUPT;
        if (!matches(p, decoded))
            return TW_OK;
    }
    tw_err err = tw_task_record_bytes(rec, len, task);
    if (err || p->family != TW_KF_TASK) {
        *listed = err == TW_OK;
        return err;
    }
    /* A scan's value lives until the stream moves: keep the task's bytes. */
    if ((task->prefixed = tw_arena_memdup(arena, task->prefixed, task->len)) == NULL)
        return TW_ERR_NO_MEMORY;
    *listed = true;
    return TW_OK;
}

tw_err tw_task_list(tw_store *s, const tw_id *user, const Tw__V1__ListTasksRequest *req,
                    const uint8_t *cursor, size_t cursor_len, uint32_t page_size, tw_arena *arena,
                    tw_task_bytes **tasks, size_t *count, uint8_t **next, size_t *next_len)
{
    *count = 0;
    *next = NULL;
    *next_len = 0;
    if ((*tasks = tw_arena_alloc(arena, (page_size + 1) * sizeof **tasks)) == NULL)
        return TW_ERR_NO_MEMORY;
    struct plan plan;
    struct plan *p = &plan;
    plan_request(p, user, req);
    tw_err err = open_streams(p, s, cursor, cursor_len, arena);
    size_t scanned = 0;
    struct stream *st = NULL;
    uint8_t last[TW_KEY_MAX];
    size_t last_len = 0;
    while (err == TW_OK && *count < page_size && scanned < TW_TASK_LIST_SCAN_MAX &&
           (st = next_stream(p)) != NULL) {
        memcpy(last, st->tail, st->tail_len);
        last_len = st->tail_len;
        scanned++;
        bool listed;
        err = read_entry(p, st, s, user, arena, &(*tasks)[*count], &listed);
        if (err == TW_OK && listed)
            (*count)++;
        if (err == TW_OK)
            err = advance(p, st, arena);
    }
    if (err == TW_OK && last_len > 0 && next_stream(p) != NULL)
        err = tw_store_page_cursor(arena, last, last_len, next, next_len);
    for (size_t i = 0; i < p->nstreams; i++) {
        tw_err close_err = tw_store_iter_close(p->streams[i].it);
        err = err ? err : close_err;
    }
    return err;
}

tw_err tw_completion_list(tw_store *s, const tw_id *user, const tw_id *task, const uint8_t *cursor,
                          size_t cursor_len, uint32_t page_size, tw_arena *arena,
                          Tw__V1__TaskCompletion ***completions, size_t *count, uint8_t **next,
                          size_t *next_len)
{
    *count = 0;
    *next = NULL;
    *next_len = 0;
    if ((*completions = tw_arena_alloc(arena, (page_size + 1) * sizeof **completions)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_key prefix;
    tw_key_init(&prefix, task ? TW_KF_COMPLETION_BY_TASK : TW_KF_TASK_COMPLETION);
    tw_key_id(&prefix, user);
    if (task != NULL)
        tw_key_id(&prefix, task);
    uint8_t after[TW_KEY_MAX];
    size_t after_len = 0;
    if (cursor_len > 0) {
        if (prefix.len + cursor_len > sizeof after)
            return TW_ERR_BAD_PAGE_TOKEN;
        memcpy(after, prefix.bytes, prefix.len);
        memcpy(after + prefix.len, cursor, cursor_len);
        after_len = prefix.len + cursor_len;
    }
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, after, after_len, true, &it);
    if (err)
        return err;
    while (err == TW_OK && tw_store_iter_next(it)) {
        const uint8_t *key;
        size_t len;
        tw_store_iter_key(it, &key, &len);
        if (*count == page_size) {
            /* One more exists: the page ends at the previous entry. */
            tw_id id;
            const Tw__V1__TaskCompletion *prev = (*completions)[*count - 1];
            tw_id_parse(prev->id, &id);
            if ((*next = tw_arena_alloc(arena, TW_ID_BYTES)) == NULL)
                err = TW_ERR_NO_MEMORY;
            else
                memcpy(*next, id.bytes, *next_len = TW_ID_BYTES);
            break;
        }
        tw_completion_record *rec;
        if (task == NULL) {
            tw_value v;
            if ((err = tw_store_iter_value(it, arena, &v)))
                break;
            rec = (tw_completion_record *)v.msg;
        } else {
            tw_id id;
            memcpy(id.bytes, key + len - TW_ID_BYTES, TW_ID_BYTES);
            if ((err = tw_completion_get(s, NULL, user, &id, arena, &rec)))
                break;
        }
        if (rec->completion == NULL)
            err = TW_ERR_DB_CORRUPT;
        else
            (*completions)[(*count)++] = rec->completion;
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}
