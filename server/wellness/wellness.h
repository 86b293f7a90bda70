/*
 * What the health log and focus features share: the environment their
 * steps run in (the caller, the call's clock and arena, its violation
 * list, the message of a refusal), the checks of text and ranges both
 * make, and the helper their lists use to page through an index. Logical
 * days are tz.h's; the user's day settings come from auth/profile.h.
 *
 * Everything here is free of the RPC engine, so that the rules can be unit
 * tested without a server. What the engine has checked before any step
 * runs is not checked again here (proto/tw/v1/field_rules.proto: strings
 * are UTF-8 without NUL, ids are UUIDs, required fields are set, lists and
 * timestamps are in bounds); the rules here are the features' own.
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
#include "tw_violations.h"
#include "tz.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- The environment of a step ------------------------------------------ */

typedef struct tw_wellness_env {
    tw_store *store; /* committed reads: lists, statistics, counts */
    tw_id user;      /* whose data: every key a step touches is under it */
    tw_arena *arena; /* what a step makes lives here (borrowed) */
    int64_t now_ms;  /* the call's clock */
    /* Focus: a session left in progress this long without a change is
     * abandoned by the server. */
    int64_t abandon_after_ms;
    /* Bad fields, named as in the request (borrowed). */
    tw_violations *violations;
    /* Out: with a refusal (NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION),
     * what the client is told; NULL otherwise. */
    const char *message;
} tw_wellness_env;

/* Sets env->message (formatted into env->arena) and returns err
 * (tw_err_explain), for
 * `return tw_wellness_refuse(env, TW_ERR_NOT_FOUND, "... %s not found", id);`. */
#define tw_wellness_refuse(env, err, ...)                                                          \
    tw_err_explain((env)->arena, &(env)->message, err, __VA_ARGS__)

/* ---- Bad fields --------------------------------------------------------- */

/* Names the fields v gets from now on under prefix ("entries[3]."), after
 * the prefix v already has. Returns the prefix to put back when done:
 * `v->prefix = old;`. */
const char *tw_wellness_prefix(tw_violations *v, const char *prefix);

/* A violation on field unless s has at most max_chars characters (code
 * points) and, when required, at least one. */
void tw_wellness_check_text(tw_violations *v, const char *field, const char *s, size_t max_chars,
                            bool required);

/* A violation for each item of a list of labels or tags ("field[i]") that
 * is empty or longer than max_chars characters. How many items there may
 * be is the engine's rule (max_items). */
void tw_wellness_check_labels(tw_violations *v, const char *field, char *const *items, size_t n,
                              size_t max_chars);

/* ---- Times -------------------------------------------------------------- */

#define TW_MS_PER_S    INT64_C(1000)
#define TW_MS_PER_MIN  INT64_C(60000)
#define TW_MS_PER_HOUR INT64_C(3600000)
#define TW_MS_PER_DAY  INT64_C(86400000)

/* The [start_time, end_time) of a list request, unset ends open (INT64_MIN,
 * INT64_MAX); an end_time not after start_time is a violation. */
void tw_wellness_time_range(const Google__Protobuf__Timestamp *start_time,
                            const Google__Protobuf__Timestamp *end_time, tw_violations *v,
                            int64_t *from_ms, int64_t *to_ms);

/* ---- Logical days ------------------------------------------------------- */

/* Longest range of days a summary or statistics call covers. */
#define TW_DAY_RANGE_MAX 366

/* Reads start_date and end_date ("YYYY-MM-DD", inclusive) of a request:
 * *first gets the first day number (tz.h), *ndays how many
 * (1..TW_DAY_RANGE_MAX). Each bad one is a violation; returns
 * TW_ERR_VALIDATION when there was any. */
tw_err tw_wellness_date_range(tw_violations *v, const char *start_date, const char *end_date,
                              int32_t *first, int32_t *ndays);

/* ---- Paging through an index --------------------------------------------- */

/*
 * One page of a newest-first scan of an owned index whose keys are (user,
 * [some u32], time_ms, id): prefix is the key up to and not including the
 * time; the scan yields keys with time in [from_ms, to_ms) (INT64_MIN /
 * INT64_MAX for open ends), after cursor when there is one (cursor_len >
 * 0: a cursor this function returned for the same prefix, as the kit's
 * page token hands it back). For each key, fn gets the time, the id and
 * the iterator and says whether the item was taken (filters say no); the
 * page ends after limit taken items, or early, with a cursor, after a
 * bounded number of keys passed over. *next gets the cursor of the next
 * page (in arena), NULL at the end.
 */
typedef tw_err (*tw_page_fn)(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it,
                             bool *taken);
tw_err tw_index_page(tw_store *store, const tw_key *prefix, int64_t from_ms, int64_t to_ms,
                     const uint8_t *cursor, size_t cursor_len, uint32_t limit, tw_arena *arena,
                     tw_page_fn fn, void *ctx, const uint8_t **next, size_t *next_len);

/*
 * Every key of such an index with time in [from_ms, to_ms), oldest first,
 * for statistics over a window: fn gets the time, the id, the iterator
 * and a scratch arena (about scratch_bytes) renewed every scratch_keys
 * keys, so a window of many entries runs in little memory; what fn makes
 * in scratch lives until the next renewal. fn's error ends the scan.
 */
typedef tw_err (*tw_window_fn)(void *ctx, int64_t time_ms, const tw_id *id, tw_store_iter *it,
                               tw_arena *scratch);
tw_err tw_index_window(tw_store *store, const tw_key *prefix, int64_t from_ms, int64_t to_ms,
                       uint32_t scratch_keys, size_t scratch_bytes, tw_window_fn fn, void *ctx);

#endif
