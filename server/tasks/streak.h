/*
 * Streak arithmetic on the user's logical day (tz.h), kept apart from
 * storage so it can be tested on its own.
 *
 * A completion credits one logical day: the day it was done, or, when an
 * earlier occurrence was done late within the grace window (the first
 * TW_STREAK_GRACE_HOURS of the next day), the occurrence's own day. The
 * grace window is one rule for all-day and timed occurrences alike: while
 * it lasts, the new day's occurrences have not come yet, so a completion
 * is for yesterday's occurrence when that one is still open (issue 16). It
 * remembers the day settings (time zone, day-start hour) in force when it
 * was made, so later changes of zone never rewrite history.
 *
 * Overall streaks count consecutive logical days with a credit. Whether two
 * credits are on consecutive days is asked in the settings of both: they
 * are the same day, or consecutive, when they are in either one's
 * settings. So flying across zones neither breaks a streak (a day that a
 * jump east made short still counts) nor counts a day twice (the same
 * evening seen from two zones is one day), and daylight-saving changes
 * are only 23- or 25-hour days of the same calendar.
 *
 * Streaks of one recurring task count consecutive occurrences done on
 * time, without an occurrence missed between them.
 */
#ifndef TW_TASKS_STREAK_H
#define TW_TASKS_STREAK_H

#include "tz.h"

#define TW_STREAK_GRACE_HOURS 6

/* A completion's credit: the instant that stands for the day it counts for
 * (inside that day), and the settings it was made under. */
typedef struct tw_credit {
    int64_t unix_ms;
    tw_day_settings settings;
} tw_credit;

/* How a completion done at done_ms counts, under settings s. has_due says
 * whether the task (or occurrence) had a due on logical day due_day. Out:
 * the credit instant, the credited logical day and whether it was done on
 * time (by its day, or within the grace window after it). */
typedef struct tw_credit_result {
    int64_t credit_ms;
    int32_t credited_day;
    bool on_time;
} tw_credit_result;

tw_err tw_streak_credit(const tw_day_settings *s, int64_t done_ms, bool has_due, int32_t due_day,
                        tw_credit_result *out);

/* The instant up to which a recurring task's occurrences count as come for
 * a completion done at done_ms: done_ms, or, within the grace window, the
 * last moment of the logical day before (that day's occurrence is the one
 * done, on time). */
tw_err tw_streak_occurrence_cutoff(const tw_day_settings *s, int64_t done_ms, int64_t *cutoff_ms);

/* How many logical days lie from credit a to the later credit b: the
 * smaller of the two counts, in a's settings and in b's. 0: same day;
 * 1: consecutive days. */
tw_err tw_streak_day_gap(const tw_credit *a, const tw_credit *b, int32_t *gap);

typedef struct tw_streaks {
    int32_t current;
    int32_t longest;
} tw_streaks;

/* Overall streaks from credits in time order (n may be 0). now is a credit
 * for this moment with the settings in force now: the current streak is
 * alive when its last day is today or yesterday (today is not over). */
tw_err tw_streak_days(const tw_credit *credits, size_t n, const tw_credit *now, tw_streaks *out);

/* One recurring task's completed occurrences, in time order. */
typedef struct tw_occurrence_done {
    bool on_time;
    uint32_t skipped_before; /* occurrences missed between the one before and this */
} tw_occurrence_done;

/* Streaks of consecutive on-time occurrences; open_missed says the task's
 * current occurrence is already past its grace window, undone. */
tw_streaks tw_streak_occurrences(const tw_occurrence_done *done, size_t n, bool open_missed);

#endif
