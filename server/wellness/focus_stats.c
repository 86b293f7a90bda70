/* Focus statistics over a range of logical days: sessions and outcomes by
 * the day and hour they started, focused time by the days and hours it was
 * spent in, distractions by type. */
#include "focus.h"

#include <string.h>

tw_err tw_focus_stats_init(tw_focus_stats *st, const tw_day_settings *settings, int32_t first_day,
                           int32_t ndays, tw_arena *arena)
{
    memset(st, 0, sizeof *st);
    st->time_zone = settings->time_zone;
    st->first_day = first_day;
    st->ndays = ndays;
    tw_err err = tw_day_range_init(&st->range, settings, first_day, ndays, arena);
    if (err)
        return err;
    st->from_ms = st->range.starts[0];
    st->to_ms = st->range.starts[ndays];
    st->day_focused_ms = tw_arena_alloc(arena, (size_t)ndays * sizeof *st->day_focused_ms);
    st->day_sessions = tw_arena_alloc(arena, (size_t)ndays * sizeof *st->day_sessions);
    st->day_completed = tw_arena_alloc(arena, (size_t)ndays * sizeof *st->day_completed);
    return st->day_focused_ms && st->day_sessions && st->day_completed ? TW_OK : TW_ERR_NO_MEMORY;
}

/* Splits a running stretch at the local hours (which the logical days
 * start on) and counts each piece inside the range. */
static void add_focus(void *ctx, int64_t from_ms, int64_t to_ms)
{
    tw_focus_stats *st = ctx;
    if (from_ms < st->from_ms)
        from_ms = st->from_ms;
    if (to_ms > st->to_ms)
        to_ms = st->to_ms;
    while (from_ms < to_ms && st->err == TW_OK) {
        int64_t next;
        int hour;
        if ((st->err = tw_tz_hour(st->time_zone, from_ms, &hour, &next)))
            return;
        int64_t end = next < to_ms ? next : to_ms;
        int32_t day = tw_day_range_index(&st->range, from_ms);
        if (day >= 0) {
            st->day_focused_ms[day] += end - from_ms;
            st->hour_focused_ms[hour] += end - from_ms;
            st->focused_ms += end - from_ms;
        }
        from_ms = end;
    }
}

tw_err tw_focus_stats_add(tw_focus_stats *st, const Tw__V1__FocusSession *s, int64_t now_ms)
{
    int64_t start_ms;
    if (s->start_time == NULL || !tw_timestamp_to_ms(s->start_time, &start_ms))
        return TW_OK; /* planned, never started */
    tw_focus_running_spans(s, now_ms, add_focus, st);
    if (st->err)
        return st->err;
    int32_t day = tw_day_range_index(&st->range, start_ms);
    if (day < 0)
        return TW_OK;
    int hour;
    if ((st->err = tw_tz_hour(st->time_zone, start_ms, &hour, NULL)))
        return st->err;
    bool completed = s->state == TW_FOCUS_COMPLETED;
    st->sessions++;
    st->day_sessions[day]++;
    st->hour_sessions[hour]++;
    st->completed += completed;
    st->day_completed[day] += completed;
    st->hour_completed[hour] += completed;
    st->abandoned += s->state == TW_FOCUS_ABANDONED;
    if (tw_focus_state_final(s->state)) {
        st->ended++;
        st->ended_focused_ms += tw_focus_focused_ms(s, now_ms);
    }
    for (size_t i = 0; i < s->n_distractions; i++) {
        int type = s->distractions[i]->type;
        if (type > 0 && type < TW_FOCUS_DISTRACTION_TYPE_COUNT)
            st->distractions[type]++;
    }
    return TW_OK;
}

double tw_focus_stats_completion_rate(const tw_focus_stats *st)
{
    int32_t ended = st->completed + st->abandoned;
    return ended > 0 ? (double)st->completed / ended : 0;
}

void tw_focus_stats_best_hours(const tw_focus_stats *st, int32_t best[3], size_t *n)
{
    *n = 0;
    bool used[24] = {false};
    for (int rank = 0; rank < 3; rank++) {
        int pick = -1;
        for (int h = 0; h < 24; h++)
            if (!used[h] && st->hour_focused_ms[h] > 0 &&
                (pick < 0 || st->hour_focused_ms[h] > st->hour_focused_ms[pick]))
                pick = h;
        if (pick < 0)
            return;
        used[pick] = true;
        best[(*n)++] = pick;
    }
}
