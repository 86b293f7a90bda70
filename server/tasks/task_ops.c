/* Task steps inside a transaction (task_ops.h). */
#include "task_ops.h"

#include "recurrence.h"
#include "tw_counter.h"

#include <string.h>

static tw_err violation(tw_task_env *env, const char *field, const char *text)
{
    tw_violations_add(env->violations, tw_arena_printf(env->arena, "%s%s", env->prefix, field),
                      "%s", text);
    return TW_ERR_VALIDATION;
}

static tw_err check_version(tw_task_env *env, const tw_task_record *rec, const uint64_t *version)
{
    if (version != NULL && *version != rec->version)
        return tw_task_fail(env, TW_ERR_CONFLICT,
                            "task %s was changed since this etag was read; read it again",
                            rec->task->id);
    return TW_OK;
}

/* Loads the task for update, NOT_FOUND with the same words whether it does
 * not exist or belongs to someone else (it cannot even be named then). */
static tw_err load(tw_txn *t, tw_task_env *env, const tw_id *id, tw_task_record **out)
{
    tw_err err = tw_task_get(env->store, t, &env->user, id, env->arena, out);
    if (err == TW_ERR_NOT_FOUND) {
        char text[TW_ID_TEXT_SIZE];
        tw_id_format(id, text);
        return tw_task_fail(env, err, "task %s not found", text);
    }
    return err;
}

/* A shallow copy of a record, with its own Task to change. */
static tw_task_record *record_copy(tw_arena *arena, const tw_task_record *old)
{
    tw_task_record *rec = tw_arena_alloc(arena, sizeof *rec);
    Tw__V1__Task *task = tw_arena_alloc(arena, sizeof *task);
    if (rec == NULL || task == NULL)
        return NULL;
    *rec = *old;
    *task = *old->task;
    rec->task = task;
    return rec;
}

static tw_err count(tw_txn *t, const char *name, int64_t ms, int64_t delta)
{
    tw_counter c = {.name = name};
    return tw_txn_counter_add(t, &c, tw_store_day(ms), delta);
}

/* ---- Dues and series ---------------------------------------------------------- */

static bool all_day(const Tw__V1__TaskDue *due)
{
    return due->value_case == TW__V1__TASK_DUE__VALUE_DATE;
}

/* The local time of a due in its zone (a date: midnight). */
static tw_err due_local(const Tw__V1__TaskDue *due, tw_local_time *out)
{
    if (all_day(due)) {
        *out = (tw_local_time){due->date->year, due->date->month, due->date->day, 0, 0, 0};
        return TW_OK;
    }
    int64_t ms;
    if (!tw_timestamp_to_ms(due->time, &ms))
        return TW_ERR_VALIDATION;
    return tw_tz_local(due->time_zone, ms, out);
}

/* The instant of a local time in the due's zone (a date: its start). */
static tw_err local_instant(const Tw__V1__TaskDue *due, const tw_local_time *lt, int64_t *ms)
{
    tw_local_time at = *lt;
    if (all_day(due))
        at.hour = at.minute = at.second = 0;
    return tw_tz_instant(due->time_zone, &at, ms);
}

/* Gives a due without a zone the user's, and sets the record's due
 * instant (for the due index). */
static tw_err settle_due(tw_task_env *env, tw_task_record *rec)
{
    Tw__V1__TaskDue *due = rec->task->due;
    rec->has_due = due != NULL;
    rec->due_unix_ms = 0;
    if (due == NULL)
        return TW_OK;
    tw_err err;
    if (due->time_zone[0] == '\0') {
        if ((err = tw_task_env_day(env)))
            return err;
        due->time_zone = (char *)env->day.time_zone;
    }
    tw_local_time lt;
    err = due_local(due, &lt);
    return err ? err : local_instant(due, &lt, &rec->due_unix_ms);
}

/* The series of a recurring record, from series_start; exceptions live in
 * arena. */
static tw_err series_of(tw_arena *arena, const tw_task_record *rec, tw_recurrence *r)
{
    const Tw__V1__Task *task = rec->task;
    const Tw__V1__TaskDue *start = rec->series_start ? rec->series_start : task->due;
    if (task->recurrence == NULL || start == NULL)
        return TW_ERR_INTERNAL;
    int32_t *days = tw_arena_alloc(arena, (task->recurrence->n_exception_dates + 1) * sizeof *days);
    if (days == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < task->recurrence->n_exception_dates; i++)
        days[i] = tw_calendar_date_day(task->recurrence->exception_dates[i]);
    *r = (tw_recurrence){
        .rrule = task->recurrence->rrule,
        .time_zone = start->time_zone,
        .all_day = all_day(start),
        .exception_days = days,
        .exception_count = task->recurrence->n_exception_dates,
        .ignore_count = task->recurrence->repeat_from_completion,
    };
    return due_local(start, &r->start);
}

/* A due like `like` (its zone, all-day or not) at local time lt. */
static tw_err due_at(tw_task_env *env, const Tw__V1__TaskDue *like, const tw_local_time *lt,
                     Tw__V1__TaskDue **out)
{
    Tw__V1__TaskDue *due = tw_arena_alloc(env->arena, sizeof *due);
    if (due == NULL)
        return TW_ERR_NO_MEMORY;
    *due = *like;
    if (all_day(like)) {
        due->date = tw_calendar_date_new(env->arena, tw_date_to_day(lt->year, lt->month, lt->day));
        if (due->date == NULL)
            return TW_ERR_NO_MEMORY;
    } else {
        int64_t ms;
        tw_err err = local_instant(like, lt, &ms);
        if (err)
            return err;
        if ((due->time = tw_timestamp_new(env->arena, ms)) == NULL)
            return TW_ERR_NO_MEMORY;
    }
    *out = due;
    return TW_OK;
}

/* A recurring task needs a due, and its series an occurrence on or after
 * it. Restarts the series at the current due. A due on an exception day
 * is no occurrence (RFC 5545 removes EXDATEs from the set): it moves to the
 * next occurrence not excluded, while the series still starts (and COUNT
 * counts) from the due as given. */
static tw_err settle_series(tw_task_env *env, tw_task_record *rec)
{
    const Tw__V1__Task *task = rec->task;
    rec->series_start = task->recurrence ? task->due : NULL;
    if (task->recurrence == NULL)
        return TW_OK;
    if (task->due == NULL)
        return violation(env, "recurrence", "a recurring task needs a due");
    if (!all_day(task->due) && task->due->value_case != TW__V1__TASK_DUE__VALUE_TIME)
        return violation(env, "due", "needs a date or a time");
    tw_recurrence r;
    tw_local_time first;
    tw_err err = series_of(env->arena, rec, &r);
    if (err == TW_OK)
        err = due_local(task->due, &first);
    if (err)
        return err == TW_ERR_VALIDATION ? violation(env, "due", "cannot be read in its zone") : err;
    r.ignore_count = false;
    tw_recurrence_step step;
    bool excluded = tw_recurrence_excludes(&r, &first);
    err = tw_recurrence_step_after(&r, NULL, &first, &step);
    if (err == TW_OK && !step.found && excluded)
        return violation(env, "recurrence.exception_dates", "exclude every occurrence");
    if (err == TW_OK && !step.found)
        return violation(env, "recurrence.rrule", "has no occurrence on or after the due");
    if (err)
        return violation(env, "recurrence.rrule", "cannot be evaluated from the due");
    if (!excluded)
        return TW_OK;
    if ((err = due_at(env, task->due, &step.next, &rec->task->due)))
        return err;
    return settle_due(env, rec);
}

/* ---- Field stamps ---------------------------------------------------------------- */

static Tw__Store__V1__FieldStamp *find_stamp(const tw_task_record *rec, const char *field)
{
    for (size_t i = 0; i < rec->n_field_stamps; i++)
        if (strcmp(rec->field_stamps[i]->field, field) == 0)
            return rec->field_stamps[i];
    return NULL;
}

/* Stamps fields of rec (its stamps array replaced by a new one in arena)
 * as changed in version at edit_ms. */
static tw_err stamp(tw_arena *arena, tw_task_record *rec, unsigned fields, uint64_t version,
                    int64_t edit_ms)
{
    size_t cap = rec->n_field_stamps + 16;
    Tw__Store__V1__FieldStamp **stamps = tw_arena_alloc(arena, cap * sizeof *stamps);
    if (stamps == NULL)
        return TW_ERR_NO_MEMORY;
    size_t n = 0;
    for (size_t i = 0; i < rec->n_field_stamps; i++)
        stamps[n++] = rec->field_stamps[i];
    for (unsigned bit = 1; bit <= TW_TF_ALL; bit <<= 1) {
        if (!(fields & bit))
            continue;
        const char *name = tw_task_field_name(bit);
        Tw__Store__V1__FieldStamp *s = tw_arena_alloc(arena, sizeof *s);
        if (s == NULL)
            return TW_ERR_NO_MEMORY;
        tw__store__v1__field_stamp__init(s);
        s->field = (char *)name;
        s->version = version;
        s->edit_unix_ms = edit_ms;
        size_t i = 0;
        while (i < n && strcmp(stamps[i]->field, name) != 0)
            i++;
        stamps[i] = s;
        if (i == n)
            n++;
    }
    rec->field_stamps = stamps;
    rec->n_field_stamps = n;
    return TW_OK;
}

/* ---- Parents ------------------------------------------------------------------------ */

/* How deep parent sits (1: a top-level task), walking up; *cycle when
 * self is among its ancestors (or is parent). */
static tw_err depth_of(tw_txn *t, tw_task_env *env, const tw_id *parent, const tw_id *self,
                       int *depth, bool *cycle)
{
    *depth = 0;
    *cycle = false;
    tw_id at = *parent;
    for (int i = 0; i <= TW_TASK_DEPTH_MAX; i++) {
        if (self != NULL && memcmp(at.bytes, self->bytes, TW_ID_BYTES) == 0) {
            *cycle = true;
            return TW_OK;
        }
        tw_task_record *rec;
        tw_err err = tw_task_get(env->store, t, &env->user, &at, env->arena, &rec);
        if (err)
            return err;
        (*depth)++;
        if (rec->task->parent_id[0] == '\0' || !tw_id_parse(rec->task->parent_id, &at))
            return TW_OK;
    }
    *depth = TW_TASK_DEPTH_MAX + 1;
    return TW_OK;
}

/* Levels of the subtree under id, id included (1: no subtasks), up to
 * TW_TASK_DEPTH_MAX + 1. */
static tw_err height_of(tw_task_env *env, const tw_id *id, int *height)
{
    tw_id *level = (tw_id *)id;
    size_t nlevel = 1;
    *height = 1;
    while (*height <= TW_TASK_DEPTH_MAX) {
        tw_id *next = NULL;
        size_t nnext = 0;
        for (size_t i = 0; i < nlevel; i++) {
            tw_id *kids;
            size_t n;
            bool more;
            tw_err err = tw_task_children(env->store, &env->user, &level[i], TW_TASK_DELETE_MAX,
                                          env->arena, &kids, &n, &more);
            if (err)
                return err;
            if (n == 0)
                continue;
            tw_id *grown = tw_arena_alloc(env->arena, (nnext + n) * sizeof *grown);
            if (grown == NULL)
                return TW_ERR_NO_MEMORY;
            if (nnext)
                memcpy(grown, next, nnext * sizeof *grown);
            memcpy(grown + nnext, kids, n * sizeof *grown);
            next = grown;
            nnext += n;
        }
        if (nnext == 0)
            return TW_OK;
        (*height)++;
        level = next;
        nlevel = nnext;
    }
    return TW_OK;
}

/* Checks that a task (self, NULL when new; of height `height`) may go
 * under parent: it exists, is not the task or below it, and the nesting
 * stays within TW_TASK_DEPTH_MAX levels. */
static tw_err check_parent(tw_txn *t, tw_task_env *env, const char *field, const tw_id *parent,
                           const tw_id *self, int height)
{
    int depth;
    bool cycle;
    tw_err err = depth_of(t, env, parent, self, &depth, &cycle);
    if (err == TW_ERR_NOT_FOUND)
        return tw_task_fail(env, err, "parent task %s not found",
                            tw_task_format_id(env->arena, parent));
    if (err)
        return err;
    if (cycle)
        return violation(env, field, "is the task itself or one of its subtasks");
    if (depth + height > TW_TASK_DEPTH_MAX)
        return violation(env, field, "would nest tasks deeper than 8 levels");
    return TW_OK;
}

/* The order key that puts a task last among parent's children: after the
 * greatest one stored there, which may be the task's own. */
static tw_err last_order_key(tw_task_env *env, const tw_id *parent, char **key)
{
    char last[TW_HINT_VALUE_MAX];
    tw_err err = tw_task_last_order_key(env->store, &env->user, parent, last);
    if (err)
        return err;
    if ((*key = tw_arena_alloc(env->arena, TW_TASK_ORDER_KEY_MAX + 2)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_order_key_after(last, *key);
    return TW_OK;
}

tw_err tw_task_env_day(tw_task_env *env)
{
    if (env->read_day == NULL || env->day_read)
        return TW_OK;
    tw_err err = env->read_day(env);
    env->day_read = err == TW_OK;
    return err;
}

/* ---- Create -------------------------------------------------------------------- */

tw_err tw_task_op_create(tw_txn *t, tw_task_env *env, Tw__V1__Task *in, int64_t edit_ms,
                         tw_task_record **out)
{
    tw_id id = tw_id_new(), parent;
    tw_err err = TW_OK;
    if (in->id[0] != '\0') {
        /* A client's id may be taken; one made here is new (a UUIDv7's
         * random bits), so it is not looked up. */
        if (!tw_id_parse(in->id, &id))
            return violation(env, "id", "is not a UUID");
        tw_task_record *old;
        err = tw_task_get(env->store, t, &env->user, &id, env->arena, &old);
        if (err == TW_OK)
            return tw_task_fail(env, TW_ERR_ALREADY_EXISTS, "task %s already exists", in->id);
        if (err != TW_ERR_NOT_FOUND)
            return err;
    }

    tw_task_record *rec = tw_arena_alloc(env->arena, sizeof *rec);
    Tw__V1__Task *task = tw_arena_alloc(env->arena, sizeof *task);
    if (rec == NULL || task == NULL)
        return TW_ERR_NO_MEMORY;
    tw__store__v1__task_record__init(rec);
    *task = *in;
    rec->task = task;
    task->id = tw_task_format_id(env->arena, &id);
    task->create_time = tw_timestamp_new(env->arena, edit_ms);
    task->complete_time = NULL;
    task->tracked_focus_duration = NULL;
    task->completed_occurrence_count = 0;
    if (task->id == NULL || task->create_time == NULL)
        return TW_ERR_NO_MEMORY;

    const tw_id *parent_ptr = NULL;
    if (task->parent_id[0] != '\0') {
        if (!tw_id_parse(task->parent_id, &parent))
            return violation(env, "parent_id", "is not a task id (a UUID)");
        if ((err = check_parent(t, env, "parent_id", &parent, &id, 1)))
            return err;
        parent_ptr = &parent;
        task->parent_id = tw_task_format_id(env->arena, &parent);
    }
    if (task->order_key[0] == '\0' &&
        (err = last_order_key(env, parent_ptr, &task->order_key)))
        return err;
    if ((err = settle_due(env, rec)))
        return err == TW_ERR_VALIDATION ? violation(env, "due", "cannot be read in its zone") : err;
    if ((err = settle_series(env, rec)) || (err = stamp(env->arena, rec, TW_TF_ALL, 1, edit_ms)) ||
        (err = tw_task_put(t, &env->user, NULL, rec, env->now_ms, env->arena)) ||
        (err = count(t, TW_COUNTER_TASKS_CREATED, env->now_ms, 1)))
        return err;
    *out = rec;
    return TW_OK;
}

/* ---- Update -------------------------------------------------------------------- */

/* Which of u's fields apply, deciding fields edited on both sides by the
 * later edit. */
static unsigned merge_fields(const tw_task_record *rec, tw_task_update *u)
{
    unsigned apply = u->fields;
    if (!u->merge)
        return apply;
    for (unsigned bit = 1; bit <= TW_TF_ALL; bit <<= 1) {
        if (!(u->fields & bit))
            continue;
        const Tw__Store__V1__FieldStamp *s = find_stamp(rec, tw_task_field_name(bit));
        if (s == NULL || s->version <= u->base_version)
            continue; /* the server has not touched it since the client's base */
        u->conflicting |= bit;
        if (u->edit_ms <= s->edit_unix_ms) {
            u->server_won |= bit;
            apply &= ~bit;
        }
    }
    return apply;
}

tw_err tw_task_op_update(tw_txn *t, tw_task_env *env, const tw_id *id, tw_task_update *u,
                         tw_task_record **out)
{
    tw_task_record *old, *rec;
    tw_err err;
    u->applied = u->conflicting = u->server_won = 0;
    if ((err = load(t, env, id, &old)) || (err = check_version(env, old, u->version)))
        return err;
    unsigned fields = merge_fields(old, u);
    *out = old;
    if (fields == 0)
        return TW_OK; /* everything kept the server's value */
    if ((rec = record_copy(env->arena, old)) == NULL)
        return TW_ERR_NO_MEMORY;
    Tw__V1__Task *task = rec->task;
    tw_task_copy_fields(task, u->values, fields);

    if ((fields & TW_TF_STATUS) && old->task->status == TW__V1__TASK_STATUS__TASK_STATUS_DONE &&
        task->status != TW__V1__TASK_STATUS__TASK_STATUS_ARCHIVED &&
        task->status != TW__V1__TASK_STATUS__TASK_STATUS_DONE)
        return violation(env, "status", "a DONE task is reopened with ReopenTask, or archived");
    if (fields & TW_TF_PARENT) {
        tw_id parent;
        const tw_id *parent_ptr = NULL;
        if (task->parent_id[0] != '\0') {
            int height;
            if (!tw_id_parse(task->parent_id, &parent))
                return violation(env, "parent_id", "is not a task id (a UUID)");
            if ((err = height_of(env, id, &height)) ||
                (err = check_parent(t, env, "parent_id", &parent, id, height)))
                return err;
            parent_ptr = &parent;
            task->parent_id = tw_task_format_id(env->arena, &parent);
        }
        if (!(fields & TW_TF_ORDER_KEY) &&
            (err = last_order_key(env, parent_ptr, &task->order_key)))
            return err;
    }
    if ((fields & TW_TF_ORDER_KEY) && task->order_key[0] == '\0') {
        tw_id parent;
        bool has_parent = task->parent_id[0] != '\0' && tw_id_parse(task->parent_id, &parent);
        if ((err = last_order_key(env, has_parent ? &parent : NULL, &task->order_key)))
            return err;
    }
    if (fields & (TW_TF_DUE | TW_TF_RECURRENCE)) {
        if ((err = settle_due(env, rec)))
            return err == TW_ERR_VALIDATION ? violation(env, "due", "cannot be read in its zone")
                                            : err;
        if ((err = settle_series(env, rec)))
            return err;
    }
    if ((err = stamp(env->arena, rec, fields, old->version + 1,
                     u->merge ? u->edit_ms : env->now_ms)) ||
        (err = tw_task_put(t, &env->user, old, rec, env->now_ms, env->arena)))
        return err;
    u->applied = fields;
    *out = rec;
    return TW_OK;
}

/* ---- Delete -------------------------------------------------------------------- */

tw_err tw_task_op_delete(tw_txn *t, tw_task_env *env, const tw_id *id, bool force,
                         const uint64_t *version, int32_t *deleted)
{
    tw_task_record *rec;
    tw_err err;
    *deleted = 0;
    if ((err = load(t, env, id, &rec)) || (err = check_version(env, rec, version)))
        return err;
    /* The subtree, breadth first: ids[0] is the task itself. */
    tw_id *ids = tw_arena_alloc(env->arena, (TW_TASK_DELETE_MAX + 1) * sizeof *ids);
    if (ids == NULL)
        return TW_ERR_NO_MEMORY;
    ids[0] = *id;
    size_t n = 1;
    for (size_t i = 0; i < n; i++) {
        tw_id *kids;
        size_t nkids;
        bool more;
        if ((err = tw_task_children(env->store, &env->user, &ids[i], TW_TASK_DELETE_MAX + 1 - n,
                                    env->arena, &kids, &nkids, &more)))
            return err;
        if (nkids > 0 && !force)
            return tw_task_fail(env, TW_ERR_FAILED_PRECONDITION,
                                "task %s has subtasks: delete with force to delete them too",
                                rec->task->id);
        if (more)
            return tw_task_fail(env, TW_ERR_FAILED_PRECONDITION,
                                "more than %d tasks would be deleted at once", TW_TASK_DELETE_MAX);
        memcpy(ids + n, kids, nkids * sizeof *ids);
        n += nkids;
    }
    for (size_t i = 0; i < n; i++) {
        tw_task_record *victim = rec;
        if (i > 0) {
            err = tw_task_get(env->store, t, &env->user, &ids[i], env->arena, &victim);
            if (err == TW_ERR_NOT_FOUND)
                continue; /* its index entry outlived it: nothing to delete */
            if (err)
                return err;
        }
        if ((err = tw_task_remove(t, &env->user, victim)))
            return err;
        (*deleted)++;
    }
    return TW_OK;
}

/* ---- Complete and reopen ----------------------------------------------------------- */

/*
 * A recurring task done at done_ms. *occurrence gets the occurrence the
 * completion is for: the latest one that has come by then, where within
 * the grace window the new day's have not come yet (earlier ones still
 * undone are recorded in done as missed), or the current due when
 * repeating from completion. The task's due moves to the next occurrence,
 * or *found is false when the series is over.
 */
static tw_err advance(tw_txn *t, tw_task_env *env, tw_task_record *rec, int64_t done_ms,
                      tw_completion_record *done, Tw__V1__TaskDue **occurrence, bool *found)
{
    Tw__V1__Task *task = rec->task;
    const Tw__V1__TaskDue *due = task->due;
    tw_recurrence r;
    tw_err err = series_of(env->arena, rec, &r);
    if (err)
        return err;
    *occurrence = task->due;
    *found = false;
    tw_local_time next;
    if (task->recurrence->repeat_from_completion) {
        int limit = tw_rrule_count(task->recurrence->rrule);
        if (limit > 0 && task->completed_occurrence_count >= limit)
            return TW_OK;
        /* The series starts again on the day it was done, at the first
         * due's time of day; the next occurrence is after that day. */
        tw_local_time when;
        tw_recurrence_step step;
        if ((err = tw_tz_local(due->time_zone, done_ms, &when)))
            return err;
        r.start.year = when.year;
        r.start.month = when.month;
        r.start.day = when.day;
        tw_local_time end_of_day = {when.year, when.month, when.day, 23, 59, 59};
        if ((err = tw_recurrence_step_after(&r, &end_of_day, NULL, &step)))
            return err;
        *found = step.found;
        next = step.next;
    } else {
        /* Occurrences that have come by the cutoff (within the grace
         * window: by the end of yesterday), for both kinds of due. */
        tw_local_time current, now;
        int64_t cutoff_ms;
        if ((err = due_local(due, &current)) ||
            (err = tw_streak_occurrence_cutoff(&env->day, done_ms, &cutoff_ms)))
            return err;
        if (all_day(due)) {
            int32_t today;
            if ((err = tw_logical_day(&env->day, cutoff_ms, &today)))
                return err;
            now = (tw_local_time){0};
            tw_day_to_date(today, &now.year, &now.month, &now.day);
        } else if ((err = tw_tz_local(due->time_zone, cutoff_ms, &now))) {
            return err;
        }
        tw_local_time *skipped = tw_arena_alloc(env->arena, TW_TASK_MISSED_KEEP * sizeof *skipped);
        tw_catch_up cu;
        if (skipped == NULL)
            return TW_ERR_NO_MEMORY;
        if ((err = tw_recurrence_catch_up(&r, &current, &now, skipped, TW_TASK_MISSED_KEEP, &cu)))
            return err;
        uint32_t kept = cu.skipped < TW_TASK_MISSED_KEEP ? cu.skipped : TW_TASK_MISSED_KEEP;
        if (kept > 0 && (done->skipped_due_unix_ms =
                             tw_arena_alloc(env->arena, kept * sizeof(int64_t))) == NULL)
            return TW_ERR_NO_MEMORY;
        tw_id task_id = tw_task_record_id(rec);
        for (uint32_t i = 0; i < kept; i++) {
            int64_t ms;
            if ((err = local_instant(due, &skipped[i], &ms)) ||
                (err = tw_task_missed_put(t, &env->user, &task_id, ms, true)))
                return err;
            done->skipped_due_unix_ms[done->n_skipped_due_unix_ms++] = ms;
        }
        done->completion->skipped_occurrence_count = (int32_t)cu.skipped;
        if (cu.skipped > 0 && (err = due_at(env, due, &cu.current, occurrence)))
            return err;
        *found = cu.found_next;
        next = cu.next;
    }
    if (!*found)
        return TW_OK;
    if ((err = due_at(env, due, &next, &task->due)))
        return err;
    return settle_due(env, rec);
}

/* The user's logical day of an occurrence's due. */
static tw_err due_day(const tw_task_env *env, const Tw__V1__TaskDue *due, int32_t *day)
{
    if (all_day(due)) {
        *day = tw_calendar_date_day(due->date);
        return TW_OK;
    }
    int64_t ms;
    if (!tw_timestamp_to_ms(due->time, &ms))
        return TW_ERR_DB_CORRUPT;
    return tw_logical_day(&env->day, ms, day);
}

tw_err tw_task_op_complete(tw_txn *t, tw_task_env *env, const tw_id *id, const uint64_t *version,
                           int64_t done_ms, tw_task_record **task_out,
                           tw_completion_record **done_out)
{
    tw_task_record *old, *rec;
    tw_err err;
    if ((err = load(t, env, id, &old)) || (err = check_version(env, old, version)) ||
        (err = tw_task_env_day(env)))
        return err;
    if (old->task->status == TW__V1__TASK_STATUS__TASK_STATUS_DONE)
        return tw_task_fail(env, TW_ERR_FAILED_PRECONDITION, "task %s is already done",
                            old->task->id);
    if (old->task->status == TW__V1__TASK_STATUS__TASK_STATUS_ARCHIVED)
        return tw_task_fail(env, TW_ERR_FAILED_PRECONDITION,
                            "task %s is archived: unarchive it before completing it",
                            old->task->id);
    if ((rec = record_copy(env->arena, old)) == NULL)
        return TW_ERR_NO_MEMORY;
    Tw__V1__Task *task = rec->task;

    tw_completion_record *done = tw_arena_alloc(env->arena, sizeof *done);
    Tw__V1__TaskCompletion *c = tw_arena_alloc(env->arena, sizeof *c);
    if (done == NULL || c == NULL)
        return TW_ERR_NO_MEMORY;
    tw__store__v1__completion_record__init(done);
    tw__v1__task_completion__init(c);
    done->completion = c;
    done->day_start_hour = env->day.day_start_hour;
    done->previous_due = old->task->due;
    done->previous_status = old->task->status;
    int64_t previous_complete = 0;
    if (old->task->complete_time != NULL)
        tw_timestamp_to_ms(old->task->complete_time, &previous_complete);
    done->previous_complete_unix_ms = previous_complete;
    done->previous_completion_id = old->last_completion_id;

    /* The task: done, or on to its next occurrence. */
    tw_id completion_id = tw_id_new();
    uint8_t *id_bytes = tw_arena_alloc(env->arena, TW_ID_BYTES);
    if (id_bytes == NULL)
        return TW_ERR_NO_MEMORY;
    memcpy(id_bytes, completion_id.bytes, TW_ID_BYTES);
    task->completed_occurrence_count++;
    task->complete_time = tw_timestamp_new(env->arena, done_ms);
    rec->last_completion_id = (ProtobufCBinaryData){TW_ID_BYTES, id_bytes};
    Tw__V1__TaskDue *occurrence = old->task->due;
    bool found = false;
    if (task->recurrence != NULL && task->due != NULL &&
        (err = advance(t, env, rec, done_ms, done, &occurrence, &found)))
        return err;
    task->status =
        found ? TW__V1__TASK_STATUS__TASK_STATUS_TODO : TW__V1__TASK_STATUS__TASK_STATUS_DONE;

    /* The log entry: which day it counts for, and whether it was on time. */
    int32_t occurrence_day = 0;
    tw_credit_result credit;
    if ((occurrence && (err = due_day(env, occurrence, &occurrence_day))) ||
        (err = tw_streak_credit(&env->day, done_ms, occurrence != NULL, occurrence_day, &credit)))
        return err;
    c->id = tw_task_format_id(env->arena, &completion_id);
    c->task_id = task->id;
    c->task_title = task->title;
    c->complete_time = task->complete_time;
    c->occurrence_due = occurrence;
    c->credited_date = tw_calendar_date_new(env->arena, credit.credited_day);
    c->on_time = credit.on_time;
    c->time_zone = (char *)env->day.time_zone;
    if (c->id == NULL || c->complete_time == NULL || c->credited_date == NULL)
        return TW_ERR_NO_MEMORY;
    done->credit_unix_ms = credit.credit_ms;
    if ((err = tw_task_put(t, &env->user, old, rec, env->now_ms, env->arena)) ||
        (err = tw_completion_put(t, &env->user, done, true)) ||
        (err = count(t, TW_COUNTER_TASK_COMPLETIONS, done_ms, 1)))
        return err;
    *task_out = rec;
    *done_out = done;
    return TW_OK;
}

tw_err tw_task_op_reopen(tw_txn *t, tw_task_env *env, const tw_id *id, const uint64_t *version,
                         tw_task_record **out)
{
    tw_task_record *old, *rec;
    tw_completion_record *done;
    tw_id completion_id;
    tw_err err;
    if ((err = load(t, env, id, &old)) || (err = check_version(env, old, version)))
        return err;
    if (old->last_completion_id.len != TW_ID_BYTES)
        return tw_task_fail(env, TW_ERR_FAILED_PRECONDITION, "task %s has no completion to undo",
                            old->task->id);
    memcpy(completion_id.bytes, old->last_completion_id.data, TW_ID_BYTES);
    if ((err = tw_completion_get(env->store, t, &env->user, &completion_id, env->arena, &done)))
        return err == TW_ERR_NOT_FOUND ? TW_ERR_DB_CORRUPT : err;
    if ((rec = record_copy(env->arena, old)) == NULL)
        return TW_ERR_NO_MEMORY;
    Tw__V1__Task *task = rec->task;
    task->due = done->previous_due;
    task->status = done->previous_status;
    task->complete_time = done->previous_complete_unix_ms
                              ? tw_timestamp_new(env->arena, done->previous_complete_unix_ms)
                              : NULL;
    if (task->completed_occurrence_count > 0)
        task->completed_occurrence_count--;
    rec->last_completion_id = done->previous_completion_id;
    if ((err = settle_due(env, rec)))
        return err;

    Tw__V1__TaskCompletion *c = tw_arena_alloc(env->arena, sizeof *c);
    if (c == NULL)
        return TW_ERR_NO_MEMORY;
    *c = *done->completion;
    c->revert_time = tw_timestamp_new(env->arena, env->now_ms);
    done->completion = c;
    for (size_t i = 0; i < done->n_skipped_due_unix_ms; i++)
        if ((err = tw_task_missed_put(t, &env->user, id, done->skipped_due_unix_ms[i], false)))
            return err;
    int64_t done_ms = 0;
    tw_timestamp_to_ms(c->complete_time, &done_ms);
    if ((err = tw_task_put(t, &env->user, old, rec, env->now_ms, env->arena)) ||
        (err = tw_completion_put(t, &env->user, done, false)) ||
        (err = count(t, TW_COUNTER_TASK_COMPLETIONS, done_ms, -1)))
        return err;
    *out = rec;
    return TW_OK;
}

/* ---- Move and focus ---------------------------------------------------------------- */

tw_err tw_task_op_move(tw_txn *t, tw_task_env *env, const tw_id *id, const char *parent_text,
                       const char *after_text, const uint64_t *version, tw_task_record **out)
{
    tw_task_record *old, *rec;
    tw_err err;
    if ((err = load(t, env, id, &old)) || (err = check_version(env, old, version)))
        return err;
    tw_id parent, after;
    const tw_id *parent_ptr = NULL;
    if (parent_text[0] != '\0') {
        int height;
        if (!tw_id_parse(parent_text, &parent))
            return violation(env, "parent_id", "is not a task id (a UUID)");
        if ((err = height_of(env, id, &height)) ||
            (err = check_parent(t, env, "parent_id", &parent, id, height)))
            return err;
        parent_ptr = &parent;
    }
    char *before_key = NULL, *after_key = NULL;
    if (after_text[0] != '\0') {
        tw_task_record *sibling;
        if (!tw_id_parse(after_text, &after))
            return violation(env, "after_id", "is not a task id (a UUID)");
        if (memcmp(after.bytes, id->bytes, TW_ID_BYTES) == 0)
            return violation(env, "after_id", "is the task itself");
        if ((err = tw_task_get(env->store, t, &env->user, &after, env->arena, &sibling)))
            return err == TW_ERR_NOT_FOUND ? tw_task_fail(env, err, "task %s not found", after_text)
                                           : err;
        tw_id sibling_parent;
        bool same = sibling->task->parent_id[0] == '\0'
                        ? parent_ptr == NULL
                        : parent_ptr != NULL &&
                              tw_id_parse(sibling->task->parent_id, &sibling_parent) &&
                              memcmp(sibling_parent.bytes, parent.bytes, TW_ID_BYTES) == 0;
        if (!same)
            return violation(env, "after_id", "is not a child of parent_id");
        after_key = sibling->task->order_key;
    }
    /* Between the sibling (or the start) and the next one. */
    if ((err = tw_task_sibling_key(env->store, &env->user, parent_ptr, after_key ? after_key : "",
                                   id, env->arena, &before_key)))
        return err;
    char *key = tw_arena_alloc(env->arena, TW_TASK_ORDER_KEY_MAX + 2);
    if (key == NULL)
        return TW_ERR_NO_MEMORY;
    if (after_key != NULL && before_key == NULL)
        tw_order_key_after(after_key, key);
    else if (!tw_order_key_between(after_key, before_key, key))
        return tw_task_fail(env, TW_ERR_FAILED_PRECONDITION,
                            "too many moves to this place: move a neighbour first");
    if ((rec = record_copy(env->arena, old)) == NULL)
        return TW_ERR_NO_MEMORY;
    rec->task->parent_id = parent_ptr ? tw_task_format_id(env->arena, parent_ptr) : "";
    rec->task->order_key = key;
    if ((err = stamp(env->arena, rec, TW_TF_PARENT | TW_TF_ORDER_KEY, old->version + 1,
                     env->now_ms)) ||
        (err = tw_task_put(t, &env->user, old, rec, env->now_ms, env->arena)))
        return err;
    *out = rec;
    return TW_OK;
}

tw_err tw_task_op_add_focus(tw_txn *t, tw_task_env *env, const tw_id *id, int64_t ms)
{
    tw_task_record *old, *rec;
    tw_err err;
    if ((err = load(t, env, id, &old)))
        return err;
    if ((rec = record_copy(env->arena, old)) == NULL)
        return TW_ERR_NO_MEMORY;
    int64_t total = 0; /* none yet (or not a valid Duration): from zero */
    if (!tw_duration_to_ms(old->task->tracked_focus_duration, &total))
        total = 0;
    total += ms;
    if (total < 0)
        total = 0;
    if ((rec->task->tracked_focus_duration = tw_duration_new(env->arena, total)) == NULL)
        return TW_ERR_NO_MEMORY;
    return tw_task_put(t, &env->user, old, rec, env->now_ms, env->arena);
}
