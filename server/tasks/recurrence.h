/*
 * Recurring tasks: RFC 5545 RRULEs (the subset tasks accept) with EXDATE
 * days, evaluated by libical on wall-clock times of the task's own time
 * zone, so an occurrence at 09:00 stays at 09:00 local time across
 * daylight-saving changes. Occurrences are wall-clock times: one that a
 * spring-forward gap skips (02:30) is still 02:30 here, and becomes an
 * instant (03:30 after the jump) only through tw_tz_instant; the ones after
 * it are 02:30 again (issue 16, as python-dateutil with zoneinfo).
 *
 * A series is an RRULE, a zone and its first occurrence (DTSTART, a local
 * time in that zone, or a date for all-day tasks). Moving a task along its
 * series asks which occurrence a completion is for (the latest that has
 * come), which ones were passed over undone, and which comes next.
 * Every call takes tw_tz_lock(): libical's iterator reads zone data.
 */
#ifndef TW_TASKS_RECURRENCE_H
#define TW_TASKS_RECURRENCE_H

#include "tz.h"

/* Longest RRULE value accepted. */
#define TW_RRULE_MAX 512
/* Occurrences one step may walk through before giving up on a series
 * (daily for 270 years). */
#define TW_RECURRENCE_MAX_WALK 100000

typedef struct tw_recurrence {
    const char *rrule;             /* checked by tw_rrule_check */
    const char *time_zone;         /* the zone occurrences are local to */
    bool all_day;                  /* occurrences are dates; times are ignored */
    tw_local_time start;           /* DTSTART: the first occurrence */
    const int32_t *exception_days; /* EXDATE: day numbers (tz.h) never occurring */
    size_t exception_count;
    /* Repeat from completion: the caller counts occurrences itself, so
     * the rule's COUNT is not applied from this (moving) start. */
    bool ignore_count;
} tw_recurrence;

/* Whether rrule is an RRULE value tasks accept: FREQ (DAILY, WEEKLY,
 * MONTHLY, YEARLY), INTERVAL, BYDAY (ordinals with MONTHLY and YEARLY
 * only), BYMONTHDAY, BYMONTH, BYSETPOS (with another BY part), COUNT or
 * UNTIL (not both), WKST. When not, why gets a sentence for the client. */
bool tw_rrule_check(const char *rrule, char *why, size_t why_len);

/* The COUNT of a checked rrule; 0 when it has none. */
int tw_rrule_count(const char *rrule);

/* Whether t falls on one of r's exception days (EXDATE). */
bool tw_recurrence_excludes(const tw_recurrence *r, const tw_local_time *t);

typedef struct tw_recurrence_step {
    bool found;         /* false: the series has no occurrence left */
    tw_local_time next; /* the first occurrence after `after`, not before `not_before` */
} tw_recurrence_step;

/*
 * Walks r: out->next is the first occurrence strictly after `after` that
 * is not before `not_before` (either may be NULL: no bound). Occurrences on
 * an exception day are not occurrences at all. For all-day series only
 * the dates of the bounds count. TW_ERR_VALIDATION: a bad rule or zone;
 * TW_ERR_FAILED_PRECONDITION: no occurrence within TW_RECURRENCE_MAX_WALK.
 */
tw_err tw_recurrence_step_after(const tw_recurrence *r, const tw_local_time *after,
                                const tw_local_time *not_before, tw_recurrence_step *out);

typedef struct tw_catch_up {
    tw_local_time current; /* the occurrence a completion at `now` is for */
    uint32_t skipped;      /* occurrences from `due` up to current, not done */
    bool found_next;       /* false: current is the series' last */
    tw_local_time next;    /* the occurrence after current */
} tw_catch_up;

/*
 * Where a series stands when its occurrence `due` is done at `now`: the
 * latest occurrence that has come by then, counting from due (due itself
 * when it has not come yet: done early), the ones passed over on the way
 * (the first skipped_cap of them go to skipped_times, which may be NULL
 * when skipped_cap is 0), and the next occurrence after it. Errors as for
 * tw_recurrence_step_after.
 */
tw_err tw_recurrence_catch_up(const tw_recurrence *r, const tw_local_time *due,
                              const tw_local_time *now, tw_local_time *skipped_times,
                              uint32_t skipped_cap, tw_catch_up *out);

#endif
