/* The runbook's queries from counters and indexes (queries.h). */
#include "queries.h"

#include "tw_counter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY (24LL * 3600 * 1000)

/* The first day of a range of days ending today. */
static uint32_t first_day(int64_t now_ms, uint32_t days)
{
    uint32_t today = tw_store_day(now_ms);
    return days > today ? 0 : today - (days - 1);
}

static tw_err add_total(void *ctx, const char *dims, uint64_t total)
{
    (void)dims;
    *(uint64_t *)ctx += total;
    return TW_OK;
}

/* A counter over a day range, all its series together. */
static tw_err counter_sum(tw_store *s, const char *name, uint32_t first, uint32_t last,
                          uint64_t *total)
{
    *total = 0;
    return tw_store_counter_series(s, NULL, name, first, last, add_total, total);
}

static Tw__V1__CalendarDate *date_of_day(uint32_t day, tw_arena *arena)
{
    Tw__V1__CalendarDate *d = tw_arena_alloc(arena, sizeof *d);
    if (d == NULL)
        return NULL;
    tw__v1__calendar_date__init(d);
    time_t t = (time_t)day * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    d->year = tm.tm_year + 1900;
    d->month = tm.tm_mon + 1;
    d->day = tm.tm_mday;
    return d;
}

/* Accounts whose keys (time-ordered ids) are newer than since_ms. */
static tw_err accounts_since(tw_store *s, int64_t since_ms, uint64_t *count)
{
    tw_key prefix;
    tw_key_init(&prefix, TW_KF_USER);
    tw_store_iter *it;
    tw_err err = tw_store_scan(s, &prefix, NULL, 0, true, &it);
    *count = 0;
    while (err == TW_OK && tw_store_iter_next(it)) {
        tw_key_reader r;
        tw_id user;
        tw_store_iter_read_key(it, &r);
        tw_key_read_id(&r, &user);
        if (r.err || tw_id_unix_ms(&user) < since_ms)
            break;
        (*count)++;
    }
    tw_err close_err = tw_store_iter_close(it);
    return err ? err : close_err;
}

tw_err tw_ops_user_stats(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                         Tw__V1__GetUserStatsResponse *out)
{
    uint32_t today = tw_store_day(now_ms), first = first_day(now_ms, days);
    uint64_t created, deleted;
    tw_err err = counter_sum(s, "registrations", 0, today, &created);
    if (!err)
        err = counter_sum(s, "account_deletions", 0, today, &deleted);
    if (!err)
        err = accounts_since(s, now_ms - MS_PER_DAY, &out->registrations_last_24h);
    if (err)
        return err;
    out->user_count = created > deleted ? created - deleted : 0;
    uint32_t n = today - first + 1;
    uint64_t *per_day = tw_arena_alloc(arena, n * sizeof *per_day);
    out->registrations_per_day = tw_arena_alloc(arena, n * sizeof *out->registrations_per_day);
    if (per_day == NULL || out->registrations_per_day == NULL)
        return TW_ERR_NO_MEMORY;
    if ((err = tw_store_counter_read(s, &(tw_counter){.name = "registrations"}, first, n, per_day,
                                     NULL)))
        return err;
    for (uint32_t i = 0; i < n; i++) { /* newest first */
        Tw__V1__DayCount *dc = tw_arena_alloc(arena, sizeof *dc);
        if (dc == NULL)
            return TW_ERR_NO_MEMORY;
        tw__v1__day_count__init(dc);
        dc->date = date_of_day(today - i, arena);
        dc->count = per_day[n - 1 - i];
        out->registrations_per_day[out->n_registrations_per_day++] = dc;
    }
    return TW_OK;
}

tw_err tw_ops_task_completion(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                              Tw__V1__GetTaskCompletionRateResponse *out)
{
    (void)arena;
    uint32_t today = tw_store_day(now_ms), first = first_day(now_ms, days);
    tw_err err = counter_sum(s, "tasks_created", first, today, &out->tasks_created);
    if (!err)
        err = counter_sum(s, "task_completions", first, today, &out->tasks_completed);
    if (!err && out->tasks_created > 0)
        out->completion_rate_percent =
            100.0 * (double)out->tasks_completed / (double)out->tasks_created;
    return err;
}

/* ---- counts by a dimension -------------------------------------------------- */

/* Totals by the value of one dimension ("type" of "type=sleep"). */
struct by_value {
    const char *dim; /* "type=" */
    struct {
        char value[64];
        uint64_t total;
        uint64_t extra; /* a second total per value, for focus outcomes */
    } rows[64];
    size_t count;
};

/* The value of dimension "name=" in dims ("a=x,b=y"), into out. */
static bool dim_value(const char *dims, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    for (const char *p = dims; *p;) {
        if (strncmp(p, name, nlen) == 0) {
            size_t len = strcspn(p + nlen, ",");
            snprintf(out, cap, "%.*s", (int)len, p + nlen);
            return true;
        }
        p += strcspn(p, ",");
        p += *p == ',';
    }
    return false;
}

static size_t row_of(struct by_value *b, const char *value)
{
    for (size_t i = 0; i < b->count; i++)
        if (strcmp(b->rows[i].value, value) == 0)
            return i;
    if (b->count == sizeof b->rows / sizeof b->rows[0])
        return b->count - 1; /* more kinds than any feature has: fold the rest */
    snprintf(b->rows[b->count].value, sizeof b->rows[0].value, "%s", value);
    b->rows[b->count].total = b->rows[b->count].extra = 0;
    return b->count++;
}

static tw_err add_by_value(void *ctx, const char *dims, uint64_t total)
{
    struct by_value *b = ctx;
    char value[64];
    if (total > 0 && dim_value(dims, b->dim, value, sizeof value))
        b->rows[row_of(b, value)].total += total;
    return TW_OK;
}

static int most_first(const void *a, const void *b)
{
    const Tw__V1__TypeCount *x = *(Tw__V1__TypeCount *const *)a,
                            *y = *(Tw__V1__TypeCount *const *)b;
    return (x->count < y->count) - (x->count > y->count);
}

/* The counts of counter name by dimension dim, most first, as TypeCounts. */
static tw_err type_counts(tw_store *s, const char *name, const char *dim, int64_t now_ms,
                          uint32_t days, tw_arena *arena, Tw__V1__TypeCount ***out, size_t *n)
{
    struct by_value *b = calloc(1, sizeof *b);
    if (b == NULL)
        return TW_ERR_NO_MEMORY;
    b->dim = dim;
    tw_err err = tw_store_counter_series(s, NULL, name, first_day(now_ms, days),
                                         tw_store_day(now_ms), add_by_value, b);
    *n = 0;
    *out = tw_arena_alloc(arena, (b->count + 1) * sizeof **out);
    if (!err && *out == NULL)
        err = TW_ERR_NO_MEMORY;
    for (size_t i = 0; !err && i < b->count; i++) {
        Tw__V1__TypeCount *tc = tw_arena_alloc(arena, sizeof *tc);
        if (tc == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        tw__v1__type_count__init(tc);
        tc->type = tw_arena_strdup(arena, b->rows[i].value);
        tc->count = b->rows[i].total;
        (*out)[(*n)++] = tc;
    }
    if (!err && *n > 1) /* qsort's base may not be NULL, even for none */
        qsort(*out, *n, sizeof **out, most_first);
    free(b);
    return err;
}

tw_err tw_ops_health_activity(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                              Tw__V1__GetHealthLogActivityResponse *out)
{
    return type_counts(s, "health_log_entries", "type=", now_ms, days, arena, &out->entries,
                       &out->n_entries);
}

tw_err tw_ops_distractions(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                           Tw__V1__GetDistractionPatternsResponse *out)
{
    return type_counts(s, "focus_distractions", "type=", now_ms, days, arena, &out->distractions,
                       &out->n_distractions);
}

/* ---- focus -------------------------------------------------------------------- */

/* Sessions by template, with completed ones in extra. */
static tw_err add_session(void *ctx, const char *dims, uint64_t total)
{
    struct by_value *b = ctx;
    char template[64], outcome[32];
    if (total == 0 || !dim_value(dims, "template=", template, sizeof template) ||
        !dim_value(dims, "outcome=", outcome, sizeof outcome))
        return TW_OK;
    size_t i = row_of(b, template);
    b->rows[i].total += total;
    if (strcmp(outcome, "completed") == 0)
        b->rows[i].extra += total;
    return TW_OK;
}

/* Seconds focused by template, in total. */
static tw_err add_seconds(void *ctx, const char *dims, uint64_t total)
{
    struct by_value *b = ctx;
    char template[64];
    if (total > 0 && dim_value(dims, "template=", template, sizeof template))
        b->rows[row_of(b, template)].total += total;
    return TW_OK;
}

static int most_sessions_first(const void *a, const void *b)
{
    const Tw__V1__FocusTemplateCompletion *x = *(Tw__V1__FocusTemplateCompletion *const *)a,
                                          *y = *(Tw__V1__FocusTemplateCompletion *const *)b;
    return (x->sessions < y->sessions) - (x->sessions > y->sessions);
}

tw_err tw_ops_focus_completion(tw_store *s, int64_t now_ms, uint32_t days, tw_arena *arena,
                               Tw__V1__GetFocusCompletionResponse *out)
{
    struct by_value *sessions = calloc(1, sizeof *sessions), *seconds = calloc(1, sizeof *seconds);
    uint32_t first = first_day(now_ms, days), last = tw_store_day(now_ms);
    tw_err err = sessions && seconds ? TW_OK : TW_ERR_NO_MEMORY;
    if (!err)
        err =
            tw_store_counter_series(s, NULL, "focus_sessions", first, last, add_session, sessions);
    if (!err)
        err = tw_store_counter_series(s, NULL, "focus_focused_seconds", first, last, add_seconds,
                                      seconds);
    if (!err && (out->templates =
                     tw_arena_alloc(arena, (sessions->count + 1) * sizeof *out->templates)) == NULL)
        err = TW_ERR_NO_MEMORY;
    for (size_t i = 0; !err && i < sessions->count; i++) {
        Tw__V1__FocusTemplateCompletion *t = tw_arena_alloc(arena, sizeof *t);
        if (t == NULL) {
            err = TW_ERR_NO_MEMORY;
            break;
        }
        tw__v1__focus_template_completion__init(t);
        t->template_ = tw_arena_strdup(arena, sessions->rows[i].value);
        t->sessions = sessions->rows[i].total;
        t->completed = sessions->rows[i].extra;
        t->abandoned = t->sessions - t->completed;
        t->completion_rate_percent = 100.0 * (double)t->completed / (double)t->sessions;
        uint64_t secs = 0;
        for (size_t k = 0; k < seconds->count; k++)
            if (strcmp(seconds->rows[k].value, sessions->rows[i].value) == 0)
                secs = seconds->rows[k].total;
        t->average_focused_minutes = (double)secs / 60.0 / (double)t->sessions;
        out->templates[out->n_templates++] = t;
    }
    if (!err && out->n_templates > 1)
        qsort(out->templates, out->n_templates, sizeof *out->templates, most_sessions_first);
    free(sessions);
    free(seconds);
    return err;
}
