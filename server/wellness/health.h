/*
 * Health log entries (tw.v1.HealthLogService): the rules an entry must
 * keep, the digest the time index carries, the daily summary arithmetic
 * (health_rules.c, health_summary.c), and the entries' life in the store
 * (health_store.c): one transaction per call writing the entry, its three
 * indexes, its (source, external id) claim, a "health_log" change-log entry
 * and the per-type counter together.
 */
#ifndef TW_WELLNESS_HEALTH_H
#define TW_WELLNESS_HEALTH_H

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
/* How far ahead of the server's clock an entry may be. */
#define TW_HEALTH_FUTURE_MS TW_MS_PER_DAY
/* Widest UTC offset an entry may carry. */
#define TW_HEALTH_OFFSET_MAX_S (18 * 3600)

/* The lower-case name of a type ("heart_rate"), for counters and messages;
 * "unspecified" for 0 and unknown values. */
const char *tw_health_type_name(int type);

/* The payload member a type uses, and the type a payload member is. */
Tw__V1__HealthLog__PayloadCase tw_health_payload_case(int type);
int tw_health_payload_type(Tw__V1__HealthLog__PayloadCase c);

/*
 * Checks an entry a client sent and makes the entry to store: *out is a
 * copy of in (in arena; in is only read) with the type set from the
 * payload, end_time filled for instant measurements, source MANUAL when
 * unset, the durations the server derives filled (sleep asleep_duration,
 * exercise active_duration, meditation duration) and the output-only
 * fields (id, create and update time) cleared. Times must lie between 1970
 * and now_ms + TW_HEALTH_FUTURE_MS. On a bad field returns
 * TW_ERR_VALIDATION with bad naming it under prefix ("entries[3]." or
 * "health_log.").
 */
tw_err tw_health_prepare(const Tw__V1__HealthLog *in, const char *prefix, int64_t now_ms,
                         tw_arena *arena, tw_bad_field *bad, Tw__V1__HealthLog **out);

/* The start and end of a prepared entry, in Unix ms. */
int64_t tw_health_start_ms(const Tw__V1__HealthLog *e);
int64_t tw_health_end_ms(const Tw__V1__HealthLog *e);

/* What the time index keeps of a prepared entry (see wellness_records.proto). */
void tw_health_digest(const Tw__V1__HealthLog *e, Tw__Store__V1__HealthLogDigest *out);

/* True when a and b hold the same entry apart from id, create and update
 * time (what a repeated import must leave alone). */
bool tw_health_same_content(const Tw__V1__HealthLog *a, const Tw__V1__HealthLog *b,
                            tw_arena *arena);

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

/* One entry of a create or batch: the prepared entry, and the id a
 * request_id gives it (when has_id). After tw_health_upsert: the entry as
 * stored and what happened. */
typedef struct tw_health_write {
    const Tw__V1__HealthLog *entry;
    bool has_id;
    tw_id id;
    Tw__V1__HealthLog *stored;
    Tw__V1__HealthLogWriteOutcome outcome;
} tw_health_write;

/*
 * Stores n prepared entries of user in t: each with a source and external
 * id updates the entry stored with them (UPDATED, or UNCHANGED when it is
 * the same), one whose request id names a stored entry finds it
 * (UNCHANGED), any other is CREATED. Entries of one call must not share a
 * (source, external id). Results go to each w[i] (in arena).
 */
tw_err tw_health_upsert(tw_txn *t, const tw_id *user, tw_health_write *w, size_t n, int64_t now_ms,
                        tw_arena *arena);

/* Reads an entry; TW_ERR_NOT_FOUND when user has none with that id. t may
 * be NULL (committed data) or a transaction (read for update). */
tw_err tw_health_get(tw_store *s, tw_txn *t, const tw_id *user, const tw_id *id, tw_arena *arena,
                     Tw__V1__HealthLog **out);

/* Replaces stored entry old with the prepared entry e (same id, type,
 * source and external id), keeping create_time. *out gets it as stored. */
tw_err tw_health_replace(tw_txn *t, const tw_id *user, const Tw__V1__HealthLog *old,
                         const Tw__V1__HealthLog *e, int64_t now_ms, tw_arena *arena,
                         Tw__V1__HealthLog **out);

/* Deletes an entry, its indexes and its external id claim. TW_ERR_NOT_FOUND
 * when there is none. */
tw_err tw_health_delete(tw_txn *t, const tw_id *user, const tw_id *id, tw_arena *arena);

/* The filters of a list call. */
typedef struct tw_health_query {
    int type;   /* 0: any */
    int source; /* 0: any */
    int64_t from_ms, to_ms;
} tw_health_query;

/* One page of user's entries, newest first (see tw_index_page). */
tw_err tw_health_list(tw_store *s, const tw_id *user, const tw_health_query *q,
                      const char *page_token, uint32_t limit, tw_arena *arena,
                      Tw__V1__HealthLog ***entries, size_t *count, char **next_token);

/* Adds user's entries to summary s: one scan of the time index. */
tw_err tw_health_summarize(tw_store *store, const tw_id *user, tw_health_summary *s);

/* The id entry index of a batch with request id request_id gets. */
tw_id tw_health_batch_id(const tw_id *request_id, uint32_t index);

#endif
