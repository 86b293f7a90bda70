/* Sync tokens and pages of changes (sync_pull.h). */
#include "pbtime.h"
#include "sync_pull.h"

#include "tw_changelog.h"
#include "tw_page.h"

#include <stdio.h>
#include <string.h>

enum { CURSOR_INCREMENTAL = 1, CURSOR_FULL = 2 };
#define CURSOR_HEAD 13 /* kind, sequence, type */

bool tw_sync_types_parse(char **names, size_t n, tw_sync_types *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    size_t ntypes = tw_sync_resource_count();
    for (size_t i = 0; i < n; i++) {
        int idx = tw_sync_resource_index(names[i]);
        if (idx < 0) {
            size_t len = (size_t)snprintf(why, why_len,
                                          "\"%.64s\" is not a resource type (known:", names[i]);
            for (size_t t = 0; t < ntypes && len < why_len; t++)
                len += (size_t)snprintf(why + len, why_len - len, "%s %s", t ? "," : "",
                                        tw_sync_resources[t].type);
            if (len < why_len)
                snprintf(why + len, why_len - len, ")");
            return false;
        }
        if (out->want[idx]) {
            snprintf(why, why_len, "\"%.64s\" is named twice", names[i]);
            return false;
        }
        out->want[idx] = true;
    }
    size_t len = (size_t)snprintf(out->query, sizeof out->query, "sync:");
    for (size_t i = 0; i < ntypes; i++) {
        if (n == 0)
            out->want[i] = true;
        else if (out->want[i])
            len += (size_t)snprintf(out->query + len, sizeof out->query - len, "%s,",
                                    tw_sync_resources[i].type);
    }
    if (n == 0)
        snprintf(out->query + len, sizeof out->query - len, "*");
    return true;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* The end of user's log. */
static tw_err log_end(tw_store *s, const tw_id *user, tw_arena *arena, uint64_t *last)
{
    tw_change_page head;
    tw_err err = tw_store_changelog_read(s, user, 0, 0, arena, &head);
    if (err == TW_OK)
        *last = head.last_sequence;
    return err;
}

tw_err tw_sync_token_read(tw_store *s, const tw_id *user, const tw_sync_types *types,
                          const char *token, tw_arena *arena, tw_sync_cursor *out)
{
    memset(out, 0, sizeof *out);
    if (token[0] == '\0') {
        out->full = true;
        return log_end(s, user, arena, &out->sequence);
    }
    uint8_t *cursor;
    size_t len;
    tw_err err = tw_store_page_token_read(s, user, types->query, strlen(types->query), token, arena,
                                          &cursor, &len);
    if (err)
        return err;
    bool full = len >= 9 && cursor[0] == CURSOR_FULL;
    if (len < 9 || (cursor[0] != CURSOR_INCREMENTAL && !full) ||
        (full && (len < CURSOR_HEAD || len - CURSOR_HEAD > sizeof out->key)))
        return TW_ERR_BAD_PAGE_TOKEN;
    out->sequence = get_u64(cursor + 1);
    if (full) {
        out->full = true;
        out->type = (uint32_t)cursor[9] << 24 | (uint32_t)cursor[10] << 16 |
                    (uint32_t)cursor[11] << 8 | cursor[12];
        out->key_len = len - CURSOR_HEAD;
        memcpy(out->key, cursor + CURSOR_HEAD, out->key_len);
    }
    return TW_OK;
}

tw_err tw_sync_token_make(tw_store *s, const tw_id *user, const tw_sync_types *types,
                          const tw_sync_cursor *c, tw_arena *arena, char **token)
{
    uint8_t buf[CURSOR_HEAD + TW_KEY_MAX];
    size_t len = 9;
    buf[0] = c->full ? CURSOR_FULL : CURSOR_INCREMENTAL;
    put_u64(buf + 1, c->sequence);
    if (c->full) {
        buf[9] = (uint8_t)(c->type >> 24);
        buf[10] = (uint8_t)(c->type >> 16);
        buf[11] = (uint8_t)(c->type >> 8);
        buf[12] = (uint8_t)c->type;
        memcpy(buf + CURSOR_HEAD, c->key, c->key_len);
        len = CURSOR_HEAD + c->key_len;
    }
    return tw_store_page_token_make(s, user, types->query, strlen(types->query), buf, len, arena,
                                    token);
}

static Tw__V1__Change *new_change(tw_arena *arena, const char *type, const tw_id *id)
{
    Tw__V1__Change *c = tw_arena_alloc(arena, sizeof *c);
    char *text = tw_arena_alloc(arena, TW_ID_TEXT_SIZE);
    if (c == NULL || text == NULL)
        return NULL;
    tw__v1__change__init(c);
    tw_id_format(id, text);
    c->resource_type = (char *)type;
    c->resource_id = text;
    return c;
}

/* Incremental: the latest change of each resource in the next entries. */
static tw_err read_log(tw_store *s, const tw_id *user, const tw_sync_types *types,
                       tw_sync_cursor *c, uint32_t limit, tw_arena *arena, tw_sync_page *out)
{
    tw_change_page log;
    tw_err err = tw_store_changelog_read(s, user, c->sequence, limit, arena, &log);
    if (err)
        return err;
    out->last_sequence = log.last_sequence;
    if (log.resync) {
        out->resync = true;
        return TW_OK;
    }
    for (size_t i = 0; i < log.count; i++) {
        const tw_change *e = &log.changes[i];
        int type = tw_sync_resource_index(e->resource_type);
        if (type < 0 || !types->want[type])
            continue;
        bool superseded = false;
        for (size_t j = i + 1; j < log.count && !superseded; j++)
            superseded =
                strcmp(log.changes[j].resource_type, e->resource_type) == 0 &&
                memcmp(log.changes[j].resource_id.bytes, e->resource_id.bytes, TW_ID_BYTES) == 0;
        if (superseded)
            continue;
        const tw_sync_resource *r = &tw_sync_resources[type];
        Tw__V1__Change *change = new_change(arena, r->type, &e->resource_id);
        if (change == NULL || (change->change_time = tw_timestamp_new(arena, e->time_ms)) == NULL)
            return TW_ERR_NO_MEMORY;
        change->sequence = e->sequence;
        if (e->op == TW_CHANGE_TOMBSTONE) {
            change->deleted = true;
        } else {
            tw_key k;
            tw_value v;
            tw_sync_resource_key(r, user, &e->resource_id, &k);
            err = tw_store_get(s, &k, arena, &v);
            if (err == TW_ERR_NOT_FOUND)
                continue; /* deleted since: its tombstone comes later */
            if (err)
                return err;
            if (!tw_sync_resource_fill(r, v.msg, change, arena))
                return TW_ERR_DB_CORRUPT;
        }
        out->changes[out->count++] = change;
    }
    if (log.count > 0)
        c->sequence = log.changes[log.count - 1].sequence;
    out->more = log.more;
    return TW_OK;
}

/* Full sync: every resource of the wanted types, type by type. */
static tw_err read_all(tw_store *s, const tw_id *user, const tw_sync_types *types,
                       tw_sync_cursor *c, uint32_t limit, tw_arena *arena, tw_sync_page *out)
{
    size_t ntypes = tw_sync_resource_count();
    tw_err err = TW_OK;
    while (err == TW_OK && c->type < ntypes && out->count < limit) {
        const tw_sync_resource *r = &tw_sync_resources[c->type];
        if (!types->want[c->type]) {
            c->type++;
            c->key_len = 0;
            continue;
        }
        tw_key prefix;
        tw_key_init(&prefix, r->family);
        tw_key_id(&prefix, user);
        tw_store_iter *it;
        if ((err = tw_store_scan(s, &prefix, c->key, c->key_len, false, &it)))
            return err;
        bool exhausted = true;
        while (err == TW_OK && tw_store_iter_next(it)) {
            if (out->count == limit) {
                exhausted = false;
                break;
            }
            tw_key_reader kr;
            tw_id u, id;
            tw_value v;
            tw_store_iter_read_key(it, &kr);
            tw_key_read_id(&kr, &u);
            if (r->per_user)
                id = u;
            else
                tw_key_read_id(&kr, &id);
            if ((err = kr.err) || (err = tw_store_iter_value(it, arena, &v)))
                break;
            Tw__V1__Change *change = new_change(arena, r->type, &id);
            if (change == NULL) {
                err = TW_ERR_NO_MEMORY;
                break;
            }
            if (!tw_sync_resource_fill(r, v.msg, change, arena)) {
                err = TW_ERR_DB_CORRUPT;
                break;
            }
            out->changes[out->count++] = change;
            const uint8_t *key;
            tw_store_iter_key(it, &key, &c->key_len);
            memcpy(c->key, key, c->key_len);
        }
        tw_err close_err = tw_store_iter_close(it);
        err = err ? err : close_err;
        if (err == TW_OK && exhausted) {
            c->type++;
            c->key_len = 0;
        }
    }
    if (err)
        return err;
    uint64_t last;
    if ((err = log_end(s, user, arena, &last)))
        return err;
    out->last_sequence = last;
    if (c->type >= ntypes) {
        /* Everything sent: go on from where the full sync began. */
        c->full = false;
        c->key_len = 0;
        out->more = last > c->sequence;
    } else {
        out->more = true;
    }
    return TW_OK;
}

tw_err tw_sync_read(tw_store *s, const tw_id *user, const tw_sync_types *types, tw_sync_cursor *c,
                    uint32_t limit, tw_arena *arena, tw_sync_page *out)
{
    memset(out, 0, sizeof *out);
    if (limit == 0 || limit > TW_SYNC_PAGE_MAX)
        limit = TW_SYNC_PAGE_MAX;
    if ((out->changes = tw_arena_alloc(arena, limit * sizeof *out->changes)) == NULL)
        return TW_ERR_NO_MEMORY;
    return c->full ? read_all(s, user, types, c, limit, arena, out)
                   : read_log(s, user, types, c, limit, arena, out);
}
