/*
 * Counters: u64 totals bucketed by UTC day and by whatever dimensions a
 * feature needs, kept up to date in the same transaction as the write they
 * count, so that the runbook's metrics ("registrations in the last 24 h",
 * "task completion rate over 7 days") are a handful of point reads.
 *
 * A counter is a name ("registrations"), dimensions ("" or, by convention,
 * "plan=premium,platform=ios"; each distinct string is its own series) and,
 * for per-user statistics, the user it belongs to. Additions are RocksDB
 * merges that are not conflict-checked: any number of transactions can
 * count on one hot counter at once without conflicting, and each addition
 * still commits or vanishes with its transaction.
 */
#ifndef TW_COUNTER_H
#define TW_COUNTER_H

#include "tw_txn.h"

/* Which counter; every pointer is borrowed during the call. */
typedef struct tw_counter {
    const tw_id *user; /* NULL: service-wide */
    const char *name;
    const char *dims; /* NULL or "": no dimensions */
} tw_counter;

/* Longest day range one read may cover. */
#define TW_COUNTER_MAX_DAYS 400

/* The UTC day number of a Unix time in ms (day 0 is 1970-01-01). */
uint32_t tw_store_day(int64_t unix_ms);

/* Adds delta (negative subtracts, modulo 2^64) to the counter's bucket for
 * day when t commits. */
tw_err tw_txn_counter_add(tw_txn *t, const tw_counter *c, uint32_t day, int64_t delta);

/* Reads days first_day .. first_day + ndays - 1 (ndays at most
 * TW_COUNTER_MAX_DAYS) in one batch of point reads: per_day (ndays slots,
 * may be NULL) gets each day's value, *total (may be NULL) their sum;
 * days never counted read as 0. */
tw_err tw_store_counter_read(tw_store *s, const tw_counter *c, uint32_t first_day, uint32_t ndays,
                             uint64_t *per_day, uint64_t *total);

/*
 * Every dimensions series of counter name (service-wide when user is NULL),
 * in dims order, with its total over days first_day .. last_day: fn gets
 * the dims string ("" for none; borrowed during the call) and the total,
 * also 0 for a series with no count in the range. The time is a seek per
 * series plus one read per counted day in the range, never a walk of other
 * days: "health log entries by type in the last 24 h" reads two days of
 * each type. An error from fn stops the listing and is returned.
 */
typedef tw_err (*tw_counter_series_fn)(void *ctx, const char *dims, uint64_t total);
tw_err tw_store_counter_series(tw_store *s, const tw_id *user, const char *name,
                               uint32_t first_day, uint32_t last_day, tw_counter_series_fn fn,
                               void *ctx);

#endif
