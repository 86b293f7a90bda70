/*
 * The runbook's "Common Database Queries", answered from the store's
 * day-bucketed counters (tw_counter.h) and the accounts' own keys: a
 * handful of reads each, whatever the number of users, tasks or entries.
 * AdminService's handlers call these and fill in the rest of their answers
 * (the slowest methods, from the engine's call histograms, are its own).
 *
 * Day ranges end today (UTC) and go days-1 days back. Each function fills
 * its response (a message of the named type, in arena).
 */
#ifndef TW_OPS_QUERIES_H
#define TW_OPS_QUERIES_H

#include "tw/v1/admin_service.pb-c.h"
#include "tw_store.h"

/* Accounts now (registrations less deletions, all days), created in the
 * last 24 hours (read from the newest account keys back, their ids being
 * time-ordered), and registrations per day. */
tw_err tw_ops_user_stats(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                         Tw__V1__GetUserStatsResponse *out);

/* Tasks created and completed over the days. */
tw_err tw_ops_task_completion(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                              Tw__V1__GetTaskCompletionRateResponse *out);

/* Health log entries over the days by type, most first. */
tw_err tw_ops_health_activity(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                              Tw__V1__GetHealthLogActivityResponse *out);

/* Ended focus sessions over the days by template, most first. */
tw_err tw_ops_focus_completion(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                               Tw__V1__GetFocusCompletionResponse *out);

/* Distractions over the days by type, most first. */
tw_err tw_ops_distractions(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                           Tw__V1__GetDistractionPatternsResponse *out);

#endif
