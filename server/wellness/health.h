/*
 * Health log entries (tw.v1.HealthLogService): the rules an entry must
 * keep, the digest the time index carries, the daily summary arithmetic
 * (health_rules.c, health_summary.c), and the entries' life in the store
 * (health_store.c): one transaction per call writing the entry (a
 * tw.store.v1.HealthLogRecord), its three indexes, its (source, external
 * id) claim, a "health_log" change-log entry and the per-type counter
 * together.
 */
#ifndef TW_WELLNESS_HEALTH_H
#define TW_WELLNESS_HEALTH_H

#include "kit/mask.h"
#include "tw/store/v1/wellness_records.pb-c.h"
#include "tw/v1/health_log_service.pb-c.h"
#include "tw_txn.h"
#include "wellness.h"

/* Shorter names for the generated enums. */
#define TW_HEALTH_SLEEP      TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_SLEEP
#define TW_HEALTH_EXERCISE   TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_EXERCISE
#define TW_HEALTH_MOOD       TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_MOOD
#define TW_HEALTH_WATER      TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_WATER
#define TW_HEALTH_WEIGHT     TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_WEIGHT
#define TW_HEALTH_HEART_RATE TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_HEART_RATE
#define TW_HEALTH_STEPS      TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_STEPS
#define TW_HEALTH_MEDITATION TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_MEDITATION
#define TW_HEALTH_CUSTOM     TW__V1__HEALTH_LOG_TYPE__HEALTH_LOG_TYPE_CUSTOM
#define TW_HEALTH_TYPE_COUNT 10 /* UNSPECIFIED and the nine types */

#define TW_HEALTH_SOURCE_MANUAL TW__V1__HEALTH_LOG_SOURCE__HEALTH_LOG_SOURCE_MANUAL
#define TW_HEALTH_SOURCE_MAX    TW__V1__HEALTH_LOG_SOURCE__HEALTH_LOG_SOURCE_IMPORT

#define TW_HEALTH_CREATED   TW__V1__HEALTH_LOG_WRITE_OUTCOME__HEALTH_LOG_WRITE_OUTCOME_CREATED
#define TW_HEALTH_UPDATED   TW__V1__HEALTH_LOG_WRITE_OUTCOME__HEALTH_LOG_WRITE_OUTCOME_UPDATED
#define TW_HEALTH_UNCHANGED TW__V1__HEALTH_LOG_WRITE_OUTCOME__HEALTH_LOG_WRITE_OUTCOME_UNCHANGED

/* Longest sleep session, and longest span of any entry. */
#define TW_HEALTH_SLEEP_MAX_MS (24 * TW_MS_PER_HOUR)
#define TW_HEALTH_SPAN_MAX_MS  (7 * TW_MS_PER_DAY)
/* Widest UTC offset an entry may carry. */
#define TW_HEALTH_OFFSET_MAX_S (18 * 3600)

/* The lower-case name of a type ("heart_rate"), for counters and messages;
 * "unspecified" for 0 and unknown values. */
const char *tw_health_type_name(int type);

/* The payload member a type uses, and the type a payload member is. */
Tw__V1__HealthLog__PayloadCase tw_health_payload_case(int type);
int tw_health_payload_type(Tw__V1__HealthLog__PayloadCase c);

/*
 * Checks an entry a client sent (or an update made of one) and makes the
 * entry to store: *out is a copy of in (in arena; in is only read) with
 * the type set from the payload, end_time filled for instant
 * measurements, source MANUAL when unset, the durations the server
 * derives filled (sleep asleep_duration, exercise active_duration,
 * meditation duration) and the output-only fields (id, create and update
 * time) cleared. Every bad field is a violation in v, named under prefix
 * ("entries[3]." or "health_log."); returns TW_ERR_VALIDATION (and *out
 * NULL) when there was any. What the engine checks (times in their
 * window, counts of stages and samples, required sub-fields) is taken as
 * checked.
 */
tw_err tw_health_prepare(const Tw__V1__HealthLog *in, const char *prefix, tw_arena *arena,
                         tw_violations *v, Tw__V1__HealthLog **out);

/* The start and end of a prepared entry, in Unix ms. */
int64_t tw_health_start_ms(const Tw__V1__HealthLog *e);
int64_t tw_health_end_ms(const Tw__V1__HealthLog *e);

/* What the time index keeps of a prepared entry (see wellness_records.proto). */
void tw_health_digest(const Tw__V1__HealthLog *e, Tw__Store__V1__HealthLogDigest *out);

/* True when a and b hold the same entry apart from id, create and update
 * time (what a repeated import must leave alone). */
bool tw_health_same_content(const Tw__V1__HealthLog *a, const Tw__V1__HealthLog *b,
                            tw_arena *arena);

/* The fields UpdateHealthLog's mask may name (tw_health_mask_paths): the
 * times, the offset, the note and one bit per payload member (by type);
 * type, source and external_id are named only to be refused. */
#define TW_HF_START         (1u << 0)
#define TW_HF_END           (1u << 1)
#define TW_HF_OFFSET        (1u << 2)
#define TW_HF_NOTE          (1u << 3)
#define TW_HF_PAYLOAD(type) (1u << (3 + (type))) /* type 1..9: bits 4..12 */
#define TW_HF_PAYLOADS      (((1u << TW_HEALTH_TYPE_COUNT) - 2) << 3)
#define TW_HF_FIXED         (1u << 13)
#define TW_HF_CHANGEABLE    (TW_HF_FIXED - 1)
extern const tw_mask_path tw_health_mask_paths[];

/* ---- Daily summaries (health_summary.c) ---------------------------------- */

/* The totals of one logical day. */
typedef struct tw_health_day {
    int64_t sleep_ms, exercise_ms, meditation_ms;
    double water_ml;
    int64_t steps;
    double mood_sum;
    int32_t mood_count;
    double weight_kg; /* the last weight of the day, 0 when none */
    int64_t weight_at_ms;
    int32_t entry_count;
} tw_health_day;

typedef struct tw_health_summary {
    int day_start_hour;  /* the profile's, for entries with their own offset */
    tw_day_range range;  /* the days, cut by the profile's zone */
    tw_health_day *days; /* range.ndays of them */
} tw_health_summary;

/* Starts a summary of the logical days (settings: the profile's zone and
 * day-start hour) first_day .. first_day + ndays - 1 with zeroed totals,
 * in arena; the days' boundaries are converted here, once, so that adding
 * an entry converts nothing. TW_ERR_VALIDATION: unknown zone. */
tw_err tw_health_summary_init(tw_health_summary *s, const tw_day_settings *settings,
                              int32_t first_day, int32_t ndays, tw_arena *arena);

/* The start times of the entries that may count for the summary's days:
 * [*from_ms, *to_ms). Wider than the days, for entries recorded at other
 * offsets and for sleep that ended inside the range. */
void tw_health_summary_window(const tw_health_summary *s, int64_t *from_ms, int64_t *to_ms);

/* Counts one entry (its start and digest) for the day it belongs to, if
 * that day is in the summary. */
void tw_health_summary_add(tw_health_summary *s, int64_t start_ms,
                           const Tw__Store__V1__HealthLogDigest *d);

/* The weight over the range: how many days have one, the last minus the
 * first, and the least-squares slope in kg per week (both 0 below two
 * days). */
void tw_health_weight_trend(const tw_health_summary *s, int32_t *days, double *change_kg,
                            double *kg_per_week);

/* ---- The store (health_store.c) ------------------------------------------ */

/* One entry of a create or batch: the prepared entry and the id its client
 * chose (when has_id). After tw_health_upsert: the entry as stored and
 * what happened. */
typedef struct tw_health_write {
    const Tw__V1__HealthLog *entry;
    bool has_id;
    tw_id id;
    Tw__V1__HealthLog *stored;
    Tw__V1__HealthLogWriteOutcome outcome;
} tw_health_write;

/* A new entry of a create or batch: checks in as tw_health_prepare does,
 * and id, the id its client chose ("" for none; a batch has none), as a
 * UUIDv7 named id_field; fills w (w->entry NULL when in is refused). */
tw_err tw_health_prepare_new(const Tw__V1__HealthLog *in, const char *id, const char *id_field,
                             const char *prefix, tw_arena *arena, tw_violations *v,
                             tw_health_write *w);

/* A violation on "entries[i].external_id" (named under v's prefix) for
 * each entry of a batch that repeats the source and external id of an
 * earlier one (entries refused already are left out). */
void tw_health_check_repeats(const tw_health_write *w, size_t n, tw_arena *arena, tw_violations *v);

/*
 * Stores n prepared entries of env->user in t: each with a source and
 * external id updates the entry stored with them (UPDATED, or UNCHANGED
 * when it is the same), which keeps its id; any other is CREATED, with the
 * id its client chose (TW_ERR_ALREADY_EXISTS, with env->message, when that
 * id is taken) or a new one. Entries of one call must not repeat each
 * other (tw_health_check_repeats). Results go to each w[i] (in env->arena).
 */
tw_err tw_health_upsert(tw_txn *t, tw_wellness_env *env, tw_health_write *w, size_t n);

/* Reads an entry of env->user: for update in t, or committed when t is
 * NULL. TW_ERR_NOT_FOUND, with env->message, when there is none. */
tw_err tw_health_get(tw_txn *t, tw_wellness_env *env, const tw_id *id, Tw__V1__HealthLog **out);

/*
 * Changes the fields of entry id named by fields (TW_HF_* bits, parsed by
 * tw_mask_parse from tw_health_mask_paths) to their values in values: a
 * field named and left unset is cleared; a payload member named must be
 * set in values and be the entry's type. The entry is then checked whole
 * (bad fields named under "health_log.") and stored, keeping its id,
 * type, source, external id and create time. *out gets it as stored.
 */
tw_err tw_health_update(tw_txn *t, tw_wellness_env *env, const tw_id *id,
                        const Tw__V1__HealthLog *values, unsigned fields, Tw__V1__HealthLog **out);

/* Deletes an entry, its indexes and its external id claim. TW_ERR_NOT_FOUND,
 * with env->message, when there is none. */
tw_err tw_health_delete(tw_txn *t, tw_wellness_env *env, const tw_id *id);

/* The filters of a list call. */
typedef struct tw_health_query {
    int type;   /* 0: any */
    int source; /* 0: any */
    int64_t from_ms, to_ms;
} tw_health_query;

/* One page of env->user's entries, newest first, from cursor (see
 * tw_index_page): *next is the cursor of the next page, NULL at the end. */
tw_err tw_health_list(tw_wellness_env *env, const tw_health_query *q, const uint8_t *cursor,
                      size_t cursor_len, uint32_t limit, Tw__V1__HealthLog ***entries,
                      size_t *count, const uint8_t **next, size_t *next_len);

/* Adds user's entries to summary s: one scan of the time index. */
tw_err tw_health_summarize(tw_store *store, const tw_id *user, tw_health_summary *s);

#endif
