/* Task statistics (task_stats.h). */
#include "task_stats.h"

#include "streak.h"
#include "task_fields.h"

#include <string.h>

#define GRACE_MS ((int64_t)TW_STREAK_GRACE_HOURS * 3600 * 1000)

/* The windows: the last 7 and 30 logical days, today included. */
struct window {
    int64_t start7, start30, today_start;
    int32_t today;
    int32_t completed7, completed30, missed7, missed30;
};

static void count_in(struct window *w, int64_t ms, bool completed)
{
    if (ms < w->start30)
        return;
    int32_t *n30 = completed ? &w->completed30 : &w->missed30;
    int32_t *n7 = completed ? &w->completed7 : &w->missed7;
    (*n30)++;
    if (ms >= w->start7)
        (*n7)++;
}

/* A growing array in an arena. */
static void *grow(tw_arena *arena, void *items, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return items;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *bigger = tw_arena_alloc(arena, ncap * size);
    if (bigger != NULL && n > 0)
        memcpy(bigger, items, n * size);
    *cap = ncap;
    return bigger;
}

/* Occurrences missed in the windows: skipped by completions (all tasks,
 * or only task). */
static tw_err count_skipped(tw_store *s, const tw_id *user, const tw_id *task, struct window *w)
{
    tw_key prefix, start;
    tw_key_init(&prefix, TW_KF_TASK_MISSED);
    tw_key_id(&prefix, user);
    start = prefix;
    tw_key_i64(&start, w->start30);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, start.bytes, start.len, false, &it);
    if (err)
        return err;
    while (tw_store_iter_next(it)) {
        tw_key_reader r;
        tw_id u, id;
        int64_t due;
        tw_store_iter_read_key(it, &r);
        tw_key_read_id(&r, &u);
        tw_key_read_i64(&r, &due);
        tw_key_read_id(&r, &id);
        if ((err = r.err))
            break;
        if (task == NULL || memcmp(id.bytes, task->bytes, TW_ID_BYTES) == 0)
            count_in(w, due, false);
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

/* Open tasks due on an earlier day of the windows: missed too. */
static tw_err count_overdue(tw_store *s, const tw_id *user, struct window *w)
{
    static const uint32_t open[] = {TW__V1__TASK_STATUS__TASK_STATUS_TODO,
                                    TW__V1__TASK_STATUS__TASK_STATUS_IN_PROGRESS};
    tw_err err = TW_OK;
    for (size_t i = 0; err == TW_OK && i < 2; i++) {
        tw_key prefix, start;
        tw_key_init(&prefix, TW_KF_TASK_BY_DUE);
        tw_key_id(&prefix, user);
        tw_key_u32(&prefix, open[i]);
        start = prefix;
        tw_key_i64(&start, w->start30);
        tw_store_iter *it;
        if ((err = tw_store_scan(s, &prefix, start.bytes, start.len, false, &it)))
            return err;
        while (tw_store_iter_next(it)) {
            tw_key_reader r;
            tw_id u;
            uint32_t status;
            int64_t due;
            tw_store_iter_read_key(it, &r);
            tw_key_read_id(&r, &u);
            tw_key_read_u32(&r, &status);
            tw_key_read_i64(&r, &due);
            if ((err = r.err) || due >= w->today_start)
                break;
            count_in(w, due, false);
        }
        tw_err close_err = tw_store_iter_close(it);
        err = err ? err : close_err;
    }
    return err;
}

/* Every credit of the user, in time order, for overall streaks. */
static tw_err all_credits(tw_store *s, const tw_id *user, tw_arena *arena, struct window *w,
                          tw_credit **credits, size_t *n)
{
    size_t cap = 0;
    *credits = NULL;
    *n = 0;
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_COMPLETION_BY_CREDIT);
    tw_key_id(&prefix, user);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, NULL, 0, false, &it);
    if (err)
        return err;
    while (err == TW_OK && tw_store_iter_next(it)) {
        tw_key_reader r;
        tw_id u;
        int64_t ms;
        tw_value v;
        tw_store_iter_read_key(it, &r);
        tw_key_read_id(&r, &u);
        tw_key_read_i64(&r, &ms);
        if ((err = r.err) || (err = tw_store_iter_value(it, arena, &v)))
            break;
        const Tw__Store__V1__CompletionCredit *c = (const void *)v.msg;
        if ((*credits = grow(arena, *credits, *n, &cap, sizeof **credits)) == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        (*credits)[(*n)++] = (tw_credit){ms, {c->time_zone, c->day_start_hour}};
        count_in(w, ms, true);
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

/* One task's completions (not reverted), oldest first, as streak input. */
static tw_err task_completions(tw_store *s, const tw_id *user, const tw_id *task, tw_arena *arena,
                               struct window *w, tw_occurrence_done **done, size_t *n)
{
    size_t cap = 0;
    *done = NULL;
    *n = 0;
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_COMPLETION_BY_TASK);
    tw_key_id(&prefix, user);
    tw_key_id(&prefix, task);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, NULL, 0, false, &it);
    if (err)
        return err;
    while (err == TW_OK && tw_store_iter_next(it)) {
        const uint8_t *key;
        size_t len;
        tw_id id;
        tw_completion_record *rec;
        tw_store_iter_key(it, &key, &len);
        memcpy(id.bytes, key + len - TW_ID_BYTES, TW_ID_BYTES);
        if ((err = tw_completion_get(s, NULL, user, &id, arena, &rec)))
            break;
        if (rec->completion->revert_time != NULL)
            continue;
        if ((*done = grow(arena, *done, *n, &cap, sizeof **done)) == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        (*done)[(*n)++] = (tw_occurrence_done){rec->completion->on_time,
                                               (uint32_t)rec->completion->skipped_occurrence_count};
        count_in(w, rec->credit_unix_ms, true);
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

/* The logical day of a task's due. */
static tw_err due_day(const tw_day_settings *day, const tw_task_record *rec, int32_t *out)
{
    const Tw__V1__TaskDue *due = rec->task->due;
    if (due->value_case == TW__V1__TASK_DUE__VALUE_DATE) {
        *out = tw_calendar_date_day(due->date);
        return TW_OK;
    }
    return tw_logical_day(day, rec->due_unix_ms, out);
}

static tw_err one_task(tw_store *s, const tw_id *user, const tw_day_settings *day, int64_t now_ms,
                       const tw_id *task, tw_arena *arena, struct window *w, tw_streaks *streaks)
{
    tw_task_record *rec;
    tw_occurrence_done *done;
    size_t n;
    tw_err err;
    if ((err = tw_task_get(s, NULL, user, task, arena, &rec)) ||
        (err = task_completions(s, user, task, arena, w, &done, &n)) ||
        (err = count_skipped(s, user, task, w)))
        return err;
    bool open = rec->task->status == TW__V1__TASK_STATUS__TASK_STATUS_TODO ||
                rec->task->status == TW__V1__TASK_STATUS__TASK_STATUS_IN_PROGRESS;
    bool open_missed = false;
    if (open && rec->has_due) {
        int32_t d;
        int64_t next_day_start;
        if ((err = due_day(day, rec, &d)) ||
            (err = tw_logical_day_start(day, d + 1, &next_day_start)))
            return err;
        open_missed = now_ms >= next_day_start + GRACE_MS;
        if (rec->due_unix_ms < w->today_start)
            count_in(w, rec->due_unix_ms, false);
    }
    *streaks = tw_streak_occurrences(done, n, open_missed);
    return TW_OK;
}

static double rate(int32_t completed, int32_t missed)
{
    return completed + missed > 0 ? (double)completed / (completed + missed) : 0.0;
}

tw_err tw_task_stats(tw_store *s, const tw_id *user, const tw_day_settings *day, int64_t now_ms,
                     const tw_id *task, tw_arena *arena, Tw__V1__GetTaskStatsResponse *out)
{
    struct window w = {0};
    tw_err err;
    if ((err = tw_logical_day(day, now_ms, &w.today)) ||
        (err = tw_logical_day_start(day, w.today, &w.today_start)) ||
        (err = tw_logical_day_start(day, w.today - 6, &w.start7)) ||
        (err = tw_logical_day_start(day, w.today - 29, &w.start30)))
        return err;
    tw_streaks streaks;
    if (task != NULL) {
        err = one_task(s, user, day, now_ms, task, arena, &w, &streaks);
    } else {
        tw_credit *credits, now = {now_ms, *day};
        size_t n;
        if ((err = all_credits(s, user, arena, &w, &credits, &n)) ||
            (err = count_skipped(s, user, NULL, &w)) || (err = count_overdue(s, user, &w)))
            return err;
        err = tw_streak_days(credits, n, &now, &streaks);
    }
    if (err)
        return err;
    out->current_streak = streaks.current;
    out->longest_streak = streaks.longest;
    out->completed_7d = w.completed7;
    out->completed_30d = w.completed30;
    out->missed_7d = w.missed7;
    out->missed_30d = w.missed30;
    out->completion_rate_7d = rate(w.completed7, w.missed7);
    out->completion_rate_30d = rate(w.completed30, w.missed30);
    out->today = tw_calendar_date_new(arena, w.today);
    out->time_zone = (char *)day->time_zone;
    return out->today ? TW_OK : TW_ERR_NO_MEMORY;
}
