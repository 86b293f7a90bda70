/* Streak arithmetic (streak.h). */
#include "streak.h"

#define GRACE_MS ((int64_t)TW_STREAK_GRACE_HOURS * 3600 * 1000)

/* The logical day done_ms falls in, its start, and whether done_ms is in
 * its grace window (its first TW_STREAK_GRACE_HOURS). */
static tw_err grace_of(const tw_day_settings *s, int64_t done_ms, int32_t *day, int64_t *day_start,
                       bool *in_grace)
{
    tw_err err = tw_logical_day(s, done_ms, day);
    if (err == TW_OK)
        err = tw_logical_day_start(s, *day, day_start);
    *in_grace = err == TW_OK && done_ms < *day_start + GRACE_MS;
    return err;
}

tw_err tw_streak_occurrence_cutoff(const tw_day_settings *s, int64_t done_ms, int64_t *cutoff_ms)
{
    int32_t day;
    int64_t day_start;
    bool in_grace;
    tw_err err = grace_of(s, done_ms, &day, &day_start, &in_grace);
    if (err == TW_OK)
        *cutoff_ms = in_grace ? day_start - 1 : done_ms;
    return err;
}

tw_err tw_streak_credit(const tw_day_settings *s, int64_t done_ms, bool has_due, int32_t due_day,
                        tw_credit_result *out)
{
    int32_t done_day;
    int64_t day_start;
    bool in_grace;
    tw_err err = grace_of(s, done_ms, &done_day, &day_start, &in_grace);
    if (err)
        return err;
    *out = (tw_credit_result){.credit_ms = done_ms, .credited_day = done_day, .on_time = true};
    if (!has_due || done_day <= due_day)
        return TW_OK;
    if (done_day == due_day + 1 && in_grace) {
        /* Late, within the grace window: it counts for yesterday, and
         * stands for yesterday's last moment. */
        out->credit_ms = day_start - 1;
        out->credited_day = due_day;
        return TW_OK;
    }
    out->on_time = false;
    return TW_OK;
}

tw_err tw_streak_day_gap(const tw_credit *a, const tw_credit *b, int32_t *gap)
{
    int32_t a_in_a, b_in_a, a_in_b, b_in_b;
    tw_err err;
    if ((err = tw_logical_day(&a->settings, a->unix_ms, &a_in_a)) ||
        (err = tw_logical_day(&a->settings, b->unix_ms, &b_in_a)) ||
        (err = tw_logical_day(&b->settings, a->unix_ms, &a_in_b)) ||
        (err = tw_logical_day(&b->settings, b->unix_ms, &b_in_b)))
        return err;
    int32_t in_a = b_in_a - a_in_a, in_b = b_in_b - a_in_b;
    *gap = in_a < in_b ? in_a : in_b;
    if (*gap < 0)
        *gap = 0; /* b is not earlier than a: only a day-start change can say so */
    return TW_OK;
}

tw_err tw_streak_days(const tw_credit *credits, size_t n, const tw_credit *now, tw_streaks *out)
{
    *out = (tw_streaks){0, 0};
    int32_t run = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t gap = 2;
        if (i > 0) {
            tw_err err = tw_streak_day_gap(&credits[i - 1], &credits[i], &gap);
            if (err)
                return err;
        }
        if (gap >= 2)
            run = 1;
        else if (gap == 1)
            run++;
        if (run > out->longest)
            out->longest = run;
    }
    if (n > 0) {
        int32_t gap;
        tw_err err = tw_streak_day_gap(&credits[n - 1], now, &gap);
        if (err)
            return err;
        out->current = gap <= 1 ? run : 0;
    }
    return TW_OK;
}

tw_streaks tw_streak_occurrences(const tw_occurrence_done *done, size_t n, bool open_missed)
{
    tw_streaks s = {0, 0};
    int32_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (done[i].skipped_before > 0)
            run = 0;
        run = done[i].on_time ? run + 1 : 0;
        if (run > s.longest)
            s.longest = run;
    }
    s.current = open_missed ? 0 : run;
    return s;
}
