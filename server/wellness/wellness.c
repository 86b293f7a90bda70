/* Shared rules of the health log and focus features, for wellness.h. */
#include "wellness.h"

#include "tw_page.h"
#include "tw_utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Timestamps run from 0001-01-01 to 9999-12-31 (google/protobuf/timestamp.proto). */
/* Durations run to about +-10000 years (google/protobuf/duration.proto). */
/* Keys a page may pass over for filters before it ends early with a token. */
#define PAGE_SCAN_FACTOR 20
#define PAGE_SCAN_MIN    2000

tw_err tw_bad(tw_bad_field *bad, const char *prefix, const char *field, const char *fmt, ...)
{
    if (bad == NULL)
        return TW_ERR_VALIDATION;
    snprintf(bad->field, sizeof bad->field, "%s%s", prefix, field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bad->why, sizeof bad->why, fmt, ap);
    va_end(ap);
    return TW_ERR_VALIDATION;
}

tw_err tw_check_text(tw_bad_field *bad, const char *prefix, const char *field, const char *s,
                     size_t max_chars, bool required)
{
    size_t n = tw_utf8_chars(s);
    if (required && n == 0)
        return tw_bad(bad, prefix, field, "is required");
    if (n > max_chars)
        return tw_bad(bad, prefix, field, "is longer than %zu characters", max_chars);
    return TW_OK;
}

tw_err tw_check_labels(tw_bad_field *bad, const char *prefix, const char *field, char *const *items,
                       size_t n, size_t max_items, size_t max_chars)
{
    if (n > max_items)
        return tw_bad(bad, prefix, field, "has more than %zu items", max_items);
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        tw_err err = tw_check_text(bad, prefix, name, items[i], max_chars, true);
        if (err)
            return err;
    }
    return TW_OK;
}

tw_err tw_check_id(tw_bad_field *bad, const char *prefix, const char *field, const char *text,
                   tw_id *out)
{
    if (text[0] == '\0')
        return tw_bad(bad, prefix, field, "is required");
    if (!tw_id_parse(text, out))
        return tw_bad(bad, prefix, field, "must be a UUID");
    return TW_OK;
}

tw_err tw_check_time(tw_bad_field *bad, const char *prefix, const char *field,
                     const Google__Protobuf__Timestamp *ts, int64_t fallback, int64_t *ms)
{
    if (ts == NULL) {
        *ms = fallback;
        return TW_OK;
    }
    if (!tw_timestamp_to_ms(ts, ms))
        return tw_bad(bad, prefix, field, "is not a valid timestamp");
    return TW_OK;
}

/* ---- Logical days ---------------------------------------------------------- */

tw_err tw_check_date_range(tw_bad_field *bad, const char *start_date, const char *end_date,
                           int32_t *first, int32_t *ndays)
{
    int32_t a, b;
    if (start_date[0] == '\0')
        return tw_bad(bad, "", "start_date", "is required");
    if (!tw_date_parse(start_date, &a))
        return tw_bad(bad, "", "start_date", "must be a date as YYYY-MM-DD");
    if (end_date[0] == '\0')
        return tw_bad(bad, "", "end_date", "is required");
    if (!tw_date_parse(end_date, &b))
        return tw_bad(bad, "", "end_date", "must be a date as YYYY-MM-DD");
    if (b < a)
        return tw_bad(bad, "", "end_date", "is before start_date");
    if (b - a + 1 > TW_DAY_RANGE_MAX)
        return tw_bad(bad, "", "end_date", "is more than %d days after start_date",
                      TW_DAY_RANGE_MAX - 1);
    *first = a;
    *ndays = b - a + 1;
    return TW_OK;
}

/* ---- Paging ------------------------------------------------------------------ */

/* Reads the key parts before the time (the prefix's), then time and id. */
static bool read_time_and_id(tw_store_iter *it, uint8_t prefix_parts, tw_arena *arena,
                             int64_t *time_ms, tw_id *id)
{
    tw_key_reader r;
    tw_store_iter_read_key(it, &r);
    const tw_key_family *f = tw_keyspace_family(r.family);
    for (uint8_t p = 0; p < prefix_parts; p++) {
        tw_id skip_id;
        uint32_t skip_u32;
        uint64_t skip_u64;
        char *skip_str;
        switch (f->parts[p].type) {
        case TW_KP_ID:
            tw_key_read_id(&r, &skip_id);
            break;
        case TW_KP_U32:
            tw_key_read_u32(&r, &skip_u32);
            break;
        case TW_KP_U64:
            tw_key_read_u64(&r, &skip_u64);
            break;
        case TW_KP_I64:
            tw_key_read_i64(&r, (int64_t *)&skip_u64);
            break;
        case TW_KP_STR:
            tw_key_read_str(&r, arena, &skip_str, NULL);
            break;
        }
    }
    tw_key_read_i64(&r, time_ms);
    tw_key_read_id(&r, id);
    return r.err == TW_OK;
}

tw_err tw_index_page(tw_store *store, const tw_id *user, const tw_key *prefix, int64_t from_ms,
                     int64_t to_ms, const void *query, size_t query_len, const char *page_token,
                     uint32_t limit, tw_arena *arena, tw_page_fn fn, void *ctx, char **next_token)
{
    *next_token = "";
    uint8_t *cursor;
    size_t cursor_len;
    tw_err err = tw_store_page_token_read(store, user, query, query_len, page_token, arena, &cursor,
                                          &cursor_len);
    if (err)
        return err;
    tw_key start = *prefix;
    if (cursor_len == 0 && to_ms != INT64_MAX) {
        /* Keys of time to_ms sort after this prefix of them: a reverse scan
         * from here starts just before to_ms. */
        tw_key_i64(&start, to_ms);
        cursor = start.bytes;
        cursor_len = start.len;
    }
    tw_store_iter *it;
    if ((err = tw_store_scan(store, prefix, cursor, cursor_len, true, &it)))
        return err;
    uint32_t taken = 0;
    uint64_t scanned = 0, max_scan = (uint64_t)limit * PAGE_SCAN_FACTOR;
    if (max_scan < PAGE_SCAN_MIN)
        max_scan = PAGE_SCAN_MIN;
    const uint8_t *last = NULL;
    size_t last_len = 0;
    bool more = false;
    while (tw_store_iter_next(it)) {
        int64_t time_ms;
        tw_id id;
        if (!read_time_and_id(it, prefix->nparts, arena, &time_ms, &id)) {
            err = TW_ERR_DB_CORRUPT;
            break;
        }
        if (time_ms < from_ms)
            break;
        if (taken == limit || scanned == max_scan) {
            more = true;
            break;
        }
        bool took = false;
        if ((err = fn(ctx, time_ms, &id, it, &took)))
            break;
        taken += took;
        scanned++;
        tw_store_iter_key(it, &last, &last_len);
        uint8_t *copy = tw_arena_alloc(arena, last_len);
        if (copy == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        memcpy(copy, last, last_len);
        last = copy;
    }
    tw_err close_err = tw_store_iter_close(it);
    if (err == TW_OK)
        err = close_err;
    if (err == TW_OK && more && last != NULL)
        err = tw_store_page_token_make(store, user, query, query_len, last, last_len, arena,
                                       next_token);
    return err;
}
