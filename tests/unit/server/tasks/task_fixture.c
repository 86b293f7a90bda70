/* Shared by the task tests (task_fixture.h). */
#include "task_fixture.h"

#include "tw_check.h"

#include <string.h>

tw_task_env tf_env;
tw_violations tf_violations;

static void fresh_env(void)
{
    tw_violations_init(&tf_violations, fx.arena, TW_CALL_VIOLATIONS_MAX, TW_CALL_VIOLATIONS_MAX_BYTES);
    tf_env.violations = &tf_violations;
    tf_env.message = NULL;
    tf_env.prefix = "task.";
}

void tf_setup(void)
{
    fx_setup();
    memset(&tf_env, 0, sizeof tf_env);
    tf_env.store = fx.store;
    tf_env.user = fx_alice;
    tf_env.arena = fx.arena;
    tf_env.now_ms = FX_EPOCH_MS;
    tf_env.day = (tw_day_settings){"America/New_York", 0};
    fresh_env();
}

void tf_teardown(void)
{
    fx_teardown();
}

void tf_set_now(int64_t unix_ms)
{
    tf_env.now_ms = unix_ms;
}

int64_t tf_at(const char *zone, int y, int mo, int d, int h, int mi)
{
    int64_t ms;
    tw_local_time lt = {y, mo, d, h, mi, 0};
    ck_assert_int_eq(tw_tz_instant(zone, &lt, &ms), TW_OK);
    return ms;
}

Tw__V1__Task *tf_task(const char *title)
{
    Tw__V1__Task *t = tw_arena_alloc(fx.arena, sizeof *t);
    ck_assert_ptr_nonnull(t);
    tw__v1__task__init(t);
    t->title = tw_arena_strdup(fx.arena, title);
    return t;
}

Tw__V1__TaskDue *tf_due_time(const char *zone, int y, int mo, int d, int h, int mi)
{
    Tw__V1__TaskDue *due = tw_arena_alloc(fx.arena, sizeof *due);
    tw__v1__task_due__init(due);
    due->value_case = TW__V1__TASK_DUE__VALUE_TIME;
    due->time = tw_timestamp_new(fx.arena, tf_at(zone, y, mo, d, h, mi));
    due->time_zone = (char *)zone;
    return due;
}

Tw__V1__TaskDue *tf_due_date(const char *zone, int y, int mo, int d)
{
    Tw__V1__TaskDue *due = tw_arena_alloc(fx.arena, sizeof *due);
    tw__v1__task_due__init(due);
    due->value_case = TW__V1__TASK_DUE__VALUE_DATE;
    due->date = tw_calendar_date_new(fx.arena, tw_date_to_day(y, mo, d));
    due->time_zone = (char *)zone;
    return due;
}

Tw__V1__TaskRecurrence *tf_rrule(const char *rrule)
{
    Tw__V1__TaskRecurrence *r = tw_arena_alloc(fx.arena, sizeof *r);
    tw__v1__task_recurrence__init(r);
    r->rrule = (char *)rrule;
    return r;
}

/* ---- Steps ---------------------------------------------------------------------- */

struct step {
    Tw__V1__Task *task;
    const tw_id *id;
    tw_task_update *update;
    bool force;
    int32_t *deleted;
    int64_t ms;
    const char *parent, *after;
    tw_task_record **rec;
    tw_completion_record **done;
};

static tw_err create_fn(tw_txn *t, void *ctx)
{
    struct step *s = ctx;
    return tw_task_op_create(t, &tf_env, s->task, tf_env.now_ms, s->rec);
}

tw_err tf_create(Tw__V1__Task *task, tw_task_record **out)
{
    fresh_env();
    tw_err err = tw_task_validate(task, TW_TF_ALL, true, "task.", &tf_violations);
    if (err)
        return err;
    struct step s = {.task = task, .rec = out};
    return tw_txn_run(fx.store, create_fn, &s);
}

tw_task_record *tf_create_ok(Tw__V1__Task *task)
{
    tw_task_record *rec = NULL;
    tw_err err = tf_create(task, &rec);
    ck_assert_msg(err == TW_OK, "create: %s %s %s", tw_err_name(err),
                  tf_env.message ? tf_env.message : "", tf_violation_field());
    return rec;
}

static tw_err update_fn(tw_txn *t, void *ctx)
{
    struct step *s = ctx;
    return tw_task_op_update(t, &tf_env, s->id, s->update, s->rec);
}

tw_err tf_update(const tw_id *id, Tw__V1__Task *values, unsigned fields, tw_task_update *u,
                 tw_task_record **out)
{
    fresh_env();
    tw_err err = tw_task_validate(values, fields, false, "task.", &tf_violations);
    if (err)
        return err;
    tw_task_update plain = {0};
    if (u == NULL)
        u = &plain;
    u->values = values;
    u->fields = fields;
    struct step s = {.id = id, .update = u, .rec = out};
    return tw_txn_run(fx.store, update_fn, &s);
}

static tw_err delete_fn(tw_txn *t, void *ctx)
{
    struct step *s = ctx;
    return tw_task_op_delete(t, &tf_env, s->id, s->force, NULL, s->deleted);
}

tw_err tf_delete(const tw_id *id, bool force, int32_t *deleted)
{
    fresh_env();
    struct step s = {.id = id, .force = force, .deleted = deleted};
    return tw_txn_run(fx.store, delete_fn, &s);
}

static tw_err complete_fn(tw_txn *t, void *ctx)
{
    struct step *s = ctx;
    return tw_task_op_complete(t, &tf_env, s->id, NULL, s->ms, s->rec, s->done);
}

tw_err tf_complete(const tw_id *id, int64_t done_ms, tw_task_record **task,
                   tw_completion_record **done)
{
    fresh_env();
    tw_task_record *t;
    tw_completion_record *d;
    struct step s = {.id = id, .ms = done_ms, .rec = task ? task : &t, .done = done ? done : &d};
    return tw_txn_run(fx.store, complete_fn, &s);
}

static tw_err reopen_fn(tw_txn *t, void *ctx)
{
    struct step *s = ctx;
    return tw_task_op_reopen(t, &tf_env, s->id, NULL, s->rec);
}

tw_err tf_reopen(const tw_id *id, tw_task_record **out)
{
    fresh_env();
    struct step s = {.id = id, .rec = out};
    return tw_txn_run(fx.store, reopen_fn, &s);
}

static tw_err move_fn(tw_txn *t, void *ctx)
{
    struct step *s = ctx;
    return tw_task_op_move(t, &tf_env, s->id, s->parent, s->after, NULL, s->rec);
}

tw_err tf_move(const tw_id *id, const char *parent, const char *after, tw_task_record **out)
{
    fresh_env();
    tf_env.prefix = "";
    struct step s = {.id = id, .parent = parent, .after = after, .rec = out};
    return tw_txn_run(fx.store, move_fn, &s);
}

tw_id tf_id(const tw_task_record *rec)
{
    return tw_task_record_id(rec);
}

tw_task_record *tf_get(const tw_id *id)
{
    tw_task_record *rec;
    ck_assert_int_eq(tw_task_get(fx.store, NULL, &fx_alice, id, fx.arena, &rec), TW_OK);
    return rec;
}

uint64_t tf_log_end(void)
{
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, &fx_alice, 0, 0, fx.arena, &page), TW_OK);
    return page.last_sequence;
}

const char *tf_violation_field(void)
{
    return tf_violations.head ? tf_violations.head->field : "";
}
