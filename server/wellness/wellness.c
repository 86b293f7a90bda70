/* Shared rules of the health log and focus features, for wellness.h. */
#include "wellness.h"

#include "tw_page.h"
#include "tw_utf8.h"

#include <stdio.h>
#include <string.h>

/* Keys a page may pass over for filters before it ends early with a cursor. */
#define PAGE_SCAN_FACTOR 20
#define PAGE_SCAN_MIN    2000

/* ---- Bad fields ---------------------------------------------------------- */

const char *tw_wellness_prefix(tw_violations *v, const char *prefix)
{
    const char *old = v->prefix;
    v->prefix = tw_arena_printf(v->arena, "%s%s", old ? old : "", prefix);
    return old;
}

/* Why s breaks the rule of a text field, or NULL; why has room for it. */
static const char *text_problem(const char *s, size_t max_chars, bool required, char *why,
                                size_t why_size)
{
    size_t n = tw_utf8_chars(s);
    if (required && n == 0)
        return "is required";
    if (n <= max_chars)
        return NULL;
    snprintf(why, why_size, "is longer than %zu characters", max_chars);
    return why;
}

void tw_wellness_check_text(tw_violations *v, const char *field, const char *s, size_t max_chars,
                            bool required)
{
    char why[64];
    const char *problem = text_problem(s, max_chars, required, why, sizeof why);
    if (problem != NULL)
        tw_violations_add(v, field, "%s", problem);
}

void tw_wellness_check_labels(tw_violations *v, const char *field, char *const *items, size_t n,
                              size_t max_chars)
{
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        tw_wellness_check_text(v, name, items[i], max_chars, true);
    }
}

/* ---- Times --------------------------------------------------------------- */

void tw_wellness_time_range(const Google__Protobuf__Timestamp *start_time,
                            const Google__Protobuf__Timestamp *end_time, tw_violations *v,
                            int64_t *from_ms, int64_t *to_ms)
{
    /* The engine kept both within protobuf's range: they convert. */
    *from_ms = INT64_MIN;
    *to_ms = INT64_MAX;
    if (start_time != NULL)
        tw_timestamp_to_ms(start_time, from_ms);
    if (end_time != NULL)
        tw_timestamp_to_ms(end_time, to_ms);
    if (*to_ms <= *from_ms)
        tw_violations_add(v, "end_time", "is not after start_time");
}

/* ---- Logical days ---------------------------------------------------------- */

tw_err tw_wellness_date_range(tw_violations *v, const char *start_date, const char *end_date,
                              int32_t *first, int32_t *ndays)
{
    int32_t a = 0, b = 0;
    bool start_ok = tw_date_parse(start_date, &a), end_ok = tw_date_parse(end_date, &b);
    size_t before = tw_violations_total(v);
    if (!start_ok)
        tw_violations_add(v, "start_date", "must be a date as YYYY-MM-DD");
    if (!end_ok)
        tw_violations_add(v, "end_date", "must be a date as YYYY-MM-DD");
    else if (start_ok && b < a)
        tw_violations_add(v, "end_date", "is before start_date");
    else if (start_ok && b - a + 1 > TW_DAY_RANGE_MAX)
        tw_violations_add(v, "end_date", "is more than %d days after start_date",
                          TW_DAY_RANGE_MAX - 1);
    if (tw_violations_total(v) > before)
        return TW_ERR_VALIDATION;
    *first = a;
    *ndays = b - a + 1;
    return TW_OK;
}

/* ---- Paging ------------------------------------------------------------------ */

/* Reads the key parts before the time (the prefix's), then time and id. */
static tw_err read_time_and_id(tw_store_iter *it, uint8_t prefix_parts, tw_arena *arena,
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
    return r.err;
}

/* What tw_index_page's callback needs to be shown a key's time and id. */
struct index_page {
    uint8_t prefix_parts;
    tw_arena *arena;
    tw_page_fn fn;
    void *ctx;
};

static tw_err index_item(void *ctx, tw_store_iter *it, bool *taken)
{
    struct index_page *p = ctx;
    int64_t time_ms;
    tw_id id;
    tw_err err = read_time_and_id(it, p->prefix_parts, p->arena, &time_ms, &id);
    return err ? err : p->fn(p->ctx, time_ms, &id, it, taken);
}

tw_err tw_index_page(tw_store *store, const tw_key *prefix, int64_t from_ms, int64_t to_ms,
                     const uint8_t *cursor, size_t cursor_len, uint32_t limit, tw_arena *arena,
                     tw_page_fn fn, void *ctx, const uint8_t **next, size_t *next_len)
{
    tw_key start = *prefix, stop = *prefix;
    if (cursor_len == 0 && to_ms != INT64_MAX) {
        /* Keys of time to_ms sort after this prefix of them: a reverse scan
         * from here starts just before to_ms. */
        tw_key_i64(&start, to_ms);
        cursor = start.bytes;
        cursor_len = start.len;
    }
    /* Keys of a time before from_ms sort before this one. */
    tw_key_i64(&stop, from_ms);
    uint64_t max_scan = (uint64_t)limit * PAGE_SCAN_FACTOR;
    if (max_scan < PAGE_SCAN_MIN)
        max_scan = PAGE_SCAN_MIN;
    tw_store_page_query q = {
        .prefix = prefix,
        .reverse = true,
        .after = cursor,
        .after_len = cursor_len,
        .stop = &stop,
        .limit = limit,
        .max_scan = max_scan,
    };
    struct index_page p = {prefix->nparts, arena, fn, ctx};
    uint8_t *page_next;
    tw_err err = tw_store_page_scan(store, &q, index_item, &p, arena, &page_next, next_len);
    *next = page_next;
    return err;
}

tw_err tw_index_window(tw_store *store, const tw_key *prefix, int64_t from_ms, int64_t to_ms,
                       uint32_t scratch_keys, size_t scratch_bytes, tw_window_fn fn, void *ctx)
{
    tw_key after = *prefix;
    /* Whole keys of time from_ms sort after this prefix of them. */
    tw_key_i64(&after, from_ms);
    tw_store_iter *it;
    tw_err err = tw_store_scan(store, prefix, after.bytes, after.len, false, &it);
    if (err)
        return err;
    tw_arena *scratch = NULL;
    for (uint32_t n = 0; tw_store_iter_next(it); n++) {
        if (n % scratch_keys == 0) {
            tw_arena_free(scratch);
            if ((scratch = tw_arena_new(scratch_bytes)) == NULL) {
                err = TW_ERR_NO_MEMORY;
                break;
            }
        }
        int64_t time_ms;
        tw_id id;
        if ((err = read_time_and_id(it, prefix->nparts, scratch, &time_ms, &id)))
            break;
        if (time_ms >= to_ms)
            break;
        if ((err = fn(ctx, time_ms, &id, it, scratch)))
            break;
    }
    tw_arena_free(scratch);
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}
