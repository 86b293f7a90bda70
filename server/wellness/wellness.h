/*
 * What the health log and focus features share: reporting a bad field with
 * its path, converting protobuf times and durations, the date ranges of
 * summaries and statistics, and the helpers their list calls use to page
 * through an index. Logical days are tz.h's; the user's day settings come
 * from auth/profile.h.
 *
 * Everything here is free of the RPC engine, so that the rules can be unit
 * tested without a server; services turn a tw_bad_field into
 * tw_call_field_violation().
 */
#ifndef TW_WELLNESS_H
#define TW_WELLNESS_H

#include "pbtime.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "tw_arena.h"
#include "tw_err.h"
#include "tw_id.h"
#include "tw_store.h"
#include "tz.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- Bad fields ------------------------------------------------------- */

/* The first field found wrong: its path ("entries[3].mood.valence") and
 * why, both shown to the client. */
typedef struct tw_bad_field {
    char field[160];
    char why[200];
} tw_bad_field;

/* Records prefix + field (prefix "" or "entries[3]."; field may be
 * "entries[3]" itself when prefix is "") and the reason; returns
 * TW_ERR_VALIDATION so a check can `return tw_bad(...)`. bad may be NULL. */
tw_err tw_bad(tw_bad_field *bad, const char *prefix, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks a user string: at most max_chars characters (code points; the
 * engine has already checked it is UTF-8), at least one when required. */
tw_err tw_check_text(tw_bad_field *bad, const char *prefix, const char *field, const char *s,
                     size_t max_chars, bool required);

/* Checks a list of labels or tags: at most max_items, each 1..max_chars. */
tw_err tw_check_labels(tw_bad_field *bad, const char *prefix, const char *field, char *const *items,
                       size_t n, size_t max_items, size_t max_chars);

/* Parses a UUID field; TW_ERR_VALIDATION with "must be a UUID" otherwise. */
tw_err tw_check_id(tw_bad_field *bad, const char *prefix, const char *field, const char *text,
                   tw_id *out);

/* ---- Times ------------------------------------------------------------ */

#define TW_MS_PER_S    INT64_C(1000)
#define TW_MS_PER_MIN  INT64_C(60000)
#define TW_MS_PER_HOUR INT64_C(3600000)
#define TW_MS_PER_DAY  INT64_C(86400000)

/* Reads an optional Timestamp field: *ms = the value, or fallback when the
 * field is unset; TW_ERR_VALIDATION when set but invalid. */
tw_err tw_check_time(tw_bad_field *bad, const char *prefix, const char *field,
                     const Google__Protobuf__Timestamp *ts, int64_t fallback, int64_t *ms);

/* ---- Logical days ----------------------------------------------------- */

/* Longest range of days a summary or statistics call covers. */
#define TW_DAY_RANGE_MAX 366

/* Parses start_date and end_date ("YYYY-MM-DD", inclusive) of a request:
 * *first gets the first day number (tz.h), *ndays how many
 * (1..TW_DAY_RANGE_MAX). */
tw_err tw_check_date_range(tw_bad_field *bad, const char *start_date, const char *end_date,
                           int32_t *first, int32_t *ndays);

/* ---- Paging through an index --------------------------------------------- */

/*
 * One page of a newest-first scan of an owned index whose keys are (user,
 * [some u32], time_ms, id): prefix is the key up to and not including the
 * time; the scan yields keys with time in [from_ms, to_ms) (INT64_MIN /
 * INT64_MAX for open ends), after the page token's cursor when there is
 * one. For each key, fn gets the time, the id and the value and returns
 * whether the item was taken (filters say no); the page ends after limit
 * taken items. *next_token gets the token of the next page, or "" at the
 * end. query (query_len bytes) binds the token to the request's filters.
 */
typedef tw_err (*tw_page_fn)(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it,
                             bool *taken);
tw_err tw_index_page(tw_store *store, const tw_id *user, const tw_key *prefix, int64_t from_ms,
                     int64_t to_ms, const void *query, size_t query_len, const char *page_token,
                     uint32_t limit, tw_arena *arena, tw_page_fn fn, void *ctx, char **next_token);

#endif
