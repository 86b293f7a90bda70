/*
 * Unit tests for server/wellness/focus_store.c on a real store: sessions
 * through their life, one session in progress per user (also when two
 * starts race), refused changes that store nothing, client event times,
 * the linked task (one of the user's, credited with the session's
 * focused time), counters, distractions, the auto-abandon job
 * through the real job queue, request-id retries, templates, lists and
 * statistics.
 */
#include "wellness/focus.h"

#include "store_fixture.h"
#include "task_fixture.h"
#include "tw_changelog.h"
#include "tw_check.h"
#include "tw_counter.h"
#include "tw_jobs.h"
#include "wellness_fixture.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define NOW   FX_EPOCH_MS
#define MIN   TW_MS_PER_MIN
#define HOUR  TW_MS_PER_HOUR
#define LIMIT (4 * HOUR)

static Google__Protobuf__Timestamp *at(int64_t ms)
{
    return tw_timestamp_new(fx.arena, ms);
}

/* What a refused step said: its message, and its first violation ("" when
 * none). */
struct why {
    const char *message;
    struct {
        const char *field, *why;
    } bad;
};

/* A step's environment for user as of the fixture's clock, in arena. */
static tw_wellness_env *env_of(const tw_id *user, tw_arena *arena)
{
    tw_wellness_env *env = tw_arena_alloc(arena, sizeof *env);
    *env = (tw_wellness_env){.store = fx.store,
                             .user = *user,
                             .arena = arena,
                             .now_ms = atomic_load(&fx.clock.ms),
                             .abandon_after_ms = LIMIT,
                             .violations = wx_violations(arena)};
    return env;
}

static void explain(const tw_wellness_env *env, struct why *why)
{
    const tw_violation *v = env->violations->head;
    why->message = env->message ? env->message : "";
    why->bad.field = v ? v->field : "";
    why->bad.why = v ? v->description : "";
}

/* A session id given as text ("" for none). */
static const tw_id *session_of(const char *text, tw_id *id)
{
    return text != NULL && tw_id_parse(text, id) ? id : NULL;
}

/* One call of the store, as a handler makes it: its checks, then the
 * step in tw_txn_run. */
struct op {
    enum { CREATE, START, MOVE, DISTRACT } kind;
    const tw_id *user;
    tw_focus_new fresh;
    const char *session_id;
    tw_focus_event ev;
    const Google__Protobuf__Timestamp *event_time;
    const Tw__V1__FocusDistraction *distraction;
    tw_arena *arena;
    tw_wellness_env *env;
    struct why why;
    Tw__V1__FocusSession *out;
    bool job;
};

static tw_err op_fn(tw_txn *t, void *ctx)
{
    struct op *o = ctx;
    tw_id id;
    const tw_id *session = session_of(o->session_id, &id);
    o->env->message = NULL;
    switch (o->kind) {
    case CREATE:
        return tw_focus_create(t, o->env, &o->fresh, &o->out);
    case START:
        return tw_focus_start(t, o->env, session, &o->fresh, o->event_time, &o->out, &o->job);
    case MOVE:
        return tw_focus_transition(t, o->env, session, o->ev, o->event_time, &o->out, &o->job);
    case DISTRACT:
        return tw_focus_distract(t, o->env, session, o->distraction, &o->out);
    }
    return TW_ERR_INTERNAL;
}

static tw_err run(struct op *o)
{
    if (o->arena == NULL)
        o->arena = fx.arena;
    o->env = env_of(o->user, o->arena);
    if (o->session_id == NULL)
        o->session_id = "";
    if (o->fresh.template_id == NULL)
        o->fresh.template_id = "";
    if (o->fresh.task_id == NULL)
        o->fresh.task_id = "";
    if (o->fresh.id == NULL)
        o->fresh.id = "";
    /* The handler's checks, before the store. */
    if (o->kind == CREATE || (o->kind == START && o->session_id[0] == '\0'))
        tw_focus_check_new(&o->fresh, o->env->violations);
    if (o->kind == DISTRACT && o->distraction != NULL)
        tw_focus_check_distraction(o->distraction, o->env->violations);
    tw_err err =
        tw_violations_any(o->env->violations) ? TW_ERR_VALIDATION : tw_txn_run(fx.store, op_fn, o);
    explain(o->env, &o->why);
    return err;
}

/* Starts a new pomodoro for user at event time ms; returns it. */
static Tw__V1__FocusSession *start_new(const tw_id *user, int64_t ms, const char *task_id)
{
    struct op o = {.kind = START, .user = user, .event_time = at(ms)};
    o.fresh.template_id = "pomodoro";
    o.fresh.task_id = task_id;
    tw_err err = run(&o);
    ck_assert_msg(err == TW_OK, "%s %s %s", tw_err_name(err), o.why.bad.field, o.why.message);
    ck_assert(o.job);
    return o.out;
}

static tw_err move(const tw_id *user, const char *id, tw_focus_event ev, int64_t ms, struct op *o)
{
    *o = (struct op){
        .kind = MOVE, .user = user, .session_id = id, .ev = ev, .event_time = ms ? at(ms) : NULL};
    return run(o);
}

static void must_move(const char *id, tw_focus_event ev, int64_t ms)
{
    struct op o;
    tw_err err = move(&fx_alice, id, ev, ms, &o);
    ck_assert_msg(err == TW_OK, "%s: %s %s", tw_err_name(err), o.why.bad.field, o.why.message);
}

/* Reads a session of user committed, or fails with its refusal in why. */
static tw_err try_get(const tw_id *user, const char *id, struct why *why, Tw__V1__FocusSession **s)
{
    tw_wellness_env *env = env_of(user, fx.arena);
    tw_id parsed;
    ck_assert(tw_id_parse(id, &parsed));
    tw_err err = tw_focus_get(NULL, env, &parsed, s);
    explain(env, why);
    return err;
}

static Tw__V1__FocusSession *get(const tw_id *user, const char *id)
{
    struct why why;
    Tw__V1__FocusSession *s;
    ck_assert_int_eq(try_get(user, id, &why, &s), TW_OK);
    return s;
}

/* A new task of user (made as TaskService makes it); its id. */
static const char *new_task(const tw_id *user, tw_id *id)
{
    tw_id saved = tf_env.user;
    tf_env.user = *user;
    *id = tf_id(tf_create_ok(tf_task("Write the report")));
    tf_env.user = saved;
    char *text = tw_arena_alloc(fx.arena, TW_ID_TEXT_SIZE);
    tw_id_format(id, text);
    return text;
}

/* The focus a task tracks, in ms; -1 when the task is gone. */
static int64_t tracked_focus_ms(const tw_id *task)
{
    tw_task_record *rec;
    tw_err err = tw_task_get(fx.store, NULL, &fx_alice, task, fx.arena, &rec);
    if (err == TW_ERR_NOT_FOUND)
        return -1;
    ck_assert_int_eq(err, TW_OK);
    const Google__Protobuf__Duration *d = rec->task->tracked_focus_duration;
    return d == NULL ? 0 : d->seconds * 1000 + d->nanos / 1000000;
}

static uint64_t last_sequence(void)
{
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(fx.store, &fx_alice, 0, 0, fx.arena, &page), TW_OK);
    return page.last_sequence;
}

static uint64_t counter(const char *name, const char *dims)
{
    uint64_t total;
    ck_assert_int_eq(tw_store_counter_read(fx.store, &(tw_counter){NULL, name, dims},
                                           tw_store_day(NOW), 1, NULL, &total),
                     TW_OK);
    return total;
}

START_TEST(a_session_through_its_life)
{
    tw_id task_id;
    const char *task = new_task(&fx_alice, &task_id);
    uint64_t before = last_sequence();
    Tw__V1__FocusSession *s = start_new(&fx_alice, NOW - 60 * MIN, task);
    char id[TW_ID_TEXT_SIZE];
    snprintf(id, sizeof id, "%s", s->id);
    ck_assert_int_eq(s->state, TW_FOCUS_RUNNING);
    ck_assert_int_eq(s->planned_duration->seconds, 25 * 60);
    ck_assert_str_eq(s->template_->id, "pomodoro");
    must_move(id, TW_FOCUS_PAUSE, NOW - 50 * MIN);
    must_move(id, TW_FOCUS_RESUME, NOW - 45 * MIN);
    must_move(id, TW_FOCUS_BREAK, NOW - 30 * MIN);
    must_move(id, TW_FOCUS_RESUME, NOW - 25 * MIN);
    must_move(id, TW_FOCUS_COMPLETE, NOW - 5 * MIN);
    s = get(&fx_alice, id);
    ck_assert_int_eq(s->state, TW_FOCUS_COMPLETED);
    ck_assert_int_eq(s->cycle_index, 1);
    ck_assert_int_eq(s->n_state_changes, 6);
    ck_assert_int_eq(tw_focus_focused_ms(s, NOW), 45 * MIN);
    ck_assert_int_eq(s->focused_duration->seconds, 45 * 60); /* stored as of the last change */
    /* Each write is one change to sync, and the task's credit one more. */
    ck_assert_int_eq(last_sequence() - before, 6 + 1);
    /* The task got the focus; counters saw one completed pomodoro. */
    ck_assert_int_eq(tracked_focus_ms(&task_id), 45 * MIN);
    ck_assert_int_eq(counter("focus_sessions", "template=pomodoro,outcome=completed"), 1);
    ck_assert_int_eq(counter("focus_focused_seconds", "template=pomodoro,outcome=completed"),
                     45 * 60);
    /* A second session adds to it. */
    s = start_new(&fx_alice, NOW - 4 * MIN, task);
    snprintf(id, sizeof id, "%s", s->id);
    must_move(id, TW_FOCUS_COMPLETE, NOW - MIN);
    ck_assert_int_eq(tracked_focus_ms(&task_id), 48 * MIN);
    /* Another user cannot see or touch it. */
    struct why why;
    ck_assert_int_eq(try_get(&fx_bob, id, &why, &s), TW_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(why.message, id));
    struct op o;
    ck_assert_int_eq(move(&fx_bob, id, TW_FOCUS_ABANDON, 0, &o), TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(refused_changes_store_nothing)
{
    Tw__V1__FocusSession *s = start_new(&fx_alice, NOW - 10 * MIN, "");
    char id[TW_ID_TEXT_SIZE];
    snprintf(id, sizeof id, "%s", s->id);
    uint64_t seq = last_sequence();
    struct op o;
    ck_assert_int_eq(move(&fx_alice, id, TW_FOCUS_RESUME, 0, &o), TW_ERR_FAILED_PRECONDITION);
    ck_assert_str_eq(o.why.message, "cannot resume a session that is RUNNING");
    must_move(id, TW_FOCUS_ABANDON, 0);
    seq = last_sequence();
    for (int ev = TW_FOCUS_START; ev <= TW_FOCUS_ABANDON; ev++) {
        tw_err err =
            ev == TW_FOCUS_START
                ? (o = (struct op){.kind = START, .user = &fx_alice, .session_id = id}, run(&o))
                : move(&fx_alice, id, (tw_focus_event)ev, 0, &o);
        ck_assert_int_eq(err, TW_ERR_FAILED_PRECONDITION);
        ck_assert_ptr_nonnull(strstr(o.why.message, "ABANDONED"));
    }
    Tw__V1__FocusDistraction d = TW__V1__FOCUS_DISTRACTION__INIT;
    d.type = TW__V1__FOCUS_DISTRACTION_TYPE__FOCUS_DISTRACTION_TYPE_PHONE;
    o = (struct op){.kind = DISTRACT, .user = &fx_alice, .session_id = id, .distraction = &d};
    ck_assert_int_eq(run(&o), TW_ERR_FAILED_PRECONDITION);
    ck_assert_int_eq(last_sequence(), seq);
    ck_assert_int_eq(get(&fx_alice, id)->n_state_changes, 2);
    /* An event time before the session's last change is a bad field (one
     * outside TIME_WINDOW_LIVE, or a session id that is no UUID, is the
     * engine's). */
    s = start_new(&fx_alice, NOW - 10 * MIN, "");
    ck_assert_int_eq(move(&fx_alice, s->id, TW_FOCUS_PAUSE, NOW - 11 * MIN, &o), TW_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(o.why.bad.why, "before the session's last change"));
    ck_assert_int_eq(get(&fx_alice, s->id)->state, TW_FOCUS_RUNNING);
}
END_TEST

START_TEST(one_session_in_progress_per_user)
{
    Tw__V1__FocusSession *a = start_new(&fx_alice, NOW - 10 * MIN, "");
    char a_id[TW_ID_TEXT_SIZE];
    snprintf(a_id, sizeof a_id, "%s", a->id);
    must_move(a_id, TW_FOCUS_PAUSE, 0);
    struct op o = {.kind = START, .user = &fx_alice};
    o.fresh.template_id = "flowtime";
    ck_assert_int_eq(run(&o), TW_ERR_FAILED_PRECONDITION);
    ck_assert_ptr_nonnull(strstr(o.why.message, a_id));
    ck_assert_ptr_nonnull(strstr(o.why.message, "PAUSED"));
    /* A planned session cannot start either, but can be planned. */
    o = (struct op){.kind = CREATE, .user = &fx_alice};
    o.fresh.template_id = "countdown";
    ck_assert_int_eq(run(&o), TW_OK);
    ck_assert_int_eq(o.out->state, TW_FOCUS_PLANNED);
    char planned[TW_ID_TEXT_SIZE];
    snprintf(planned, sizeof planned, "%s", o.out->id);
    o = (struct op){.kind = START, .user = &fx_alice, .session_id = planned};
    ck_assert_int_eq(run(&o), TW_ERR_FAILED_PRECONDITION);
    /* Bob is not Alice. */
    start_new(&fx_bob, NOW, "");
    /* Once A ends, the planned one starts. */
    must_move(a_id, TW_FOCUS_COMPLETE, 0);
    o = (struct op){.kind = START, .user = &fx_alice, .session_id = planned};
    ck_assert_int_eq(run(&o), TW_OK);
    ck_assert_int_eq(o.out->state, TW_FOCUS_RUNNING);
    ck_assert_int_eq(o.out->n_state_changes, 2);
    ck_assert_int_eq(o.out->state_changes[0]->state, TW_FOCUS_PLANNED);
    /* (Fields of a new session with session_id: the handler refuses
     * them, e2e test_focus.) */
}
END_TEST

struct starter {
    pthread_barrier_t *go;
    tw_err err;
};

static void *race_start(void *arg)
{
    struct starter *r = arg;
    struct op o = {.kind = START, .user = &fx_alice, .arena = tw_arena_new(4096)};
    o.fresh.template_id = "pomodoro";
    pthread_barrier_wait(r->go);
    r->err = run(&o);
    tw_arena_free(o.arena);
    return NULL;
}

START_TEST(two_parallel_starts_one_wins)
{
    for (int round = 0; round < 10; round++) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        struct starter r[2] = {{&go, TW_OK}, {&go, TW_OK}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, race_start, &r[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        ck_assert_msg((r[0].err == TW_OK) != (r[1].err == TW_OK), "round %d: %s %s", round,
                      tw_err_name(r[0].err), tw_err_name(r[1].err));
        ck_assert(r[0].err == TW_ERR_FAILED_PRECONDITION || r[1].err == TW_ERR_FAILED_PRECONDITION);
        /* End the winner for the next round. */
        Tw__V1__FocusSession **list;
        size_t n;
        const uint8_t *next;
        size_t next_len;
        ck_assert_int_eq(tw_focus_list(env_of(&fx_alice, fx.arena), TW_FOCUS_RUNNING, INT64_MIN,
                                       INT64_MAX, NULL, 0, 10, &list, &n, &next, &next_len),
                         TW_OK);
        ck_assert_int_eq(n, 1);
        must_move(list[0]->id, TW_FOCUS_ABANDON, 0);
    }
}
END_TEST

START_TEST(client_chosen_session_ids)
{
    /* The id is the client's (focus_session_id); a retry of the same
     * request is the kit's (request_id), not the store's. */
    const char *sid = "0190b4e0-0000-7000-8000-0000000000aa";
    struct op o = {.kind = CREATE, .user = &fx_alice};
    o.fresh.template_id = "pomodoro";
    o.fresh.id = sid;
    ck_assert_int_eq(run(&o), TW_OK);
    ck_assert_str_eq(o.out->id, sid);
    uint64_t seq = last_sequence();
    ck_assert_int_eq(run(&o), TW_ERR_ALREADY_EXISTS);
    ck_assert_ptr_nonnull(strstr(o.why.message, sid));
    ck_assert_int_eq(last_sequence(), seq);

    const char *sid2 = "0190b4e0-0000-7000-8000-0000000000bb";
    o = (struct op){.kind = START, .user = &fx_alice};
    o.fresh.template_id = "pomodoro";
    o.fresh.id = sid2;
    ck_assert_int_eq(run(&o), TW_OK);
    ck_assert_str_eq(o.out->id, sid2);
    must_move(sid2, TW_FOCUS_ABANDON, 0);
    ck_assert_int_eq(run(&o), TW_ERR_ALREADY_EXISTS);
    /* Not a UUIDv7: refused before the store. */
    o.fresh.id = "0190b4e0-0000-4000-8000-0000000000cc";
    ck_assert_int_eq(run(&o), TW_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(o.why.bad.why, "UUIDv7"));
    ck_assert_int_eq(last_sequence(), seq + 2); /* the start, the abandon */
}
END_TEST

START_TEST(new_sessions_are_checked)
{
    tw_id bobs_task, gone;
    const char *bobs = new_task(&fx_bob, &bobs_task);
    const char *deleted = new_task(&fx_alice, &gone);
    int32_t removed;
    ck_assert_int_eq(tf_delete(&gone, false, &removed), TW_OK);
    uint64_t before = last_sequence();
    struct {
        const char *template_id, *task_id, *field, *why;
        int64_t planned_ms;
        tw_err err;
    } cases[] = {
        /* An empty template_id, a task_id that is no UUID, more than 20
         * tags: the engine's rules. */
        {"tomato", "", "template_id", "built-in template", 0, TW_ERR_VALIDATION},
        {"0190b4e0-0000-7000-8000-000000000001", "", "", "not found", 0, TW_ERR_NOT_FOUND},
        {"pomodoro", "0190b4e0-0000-7000-8000-000000000a5c", "", "task", 0, TW_ERR_NOT_FOUND},
        {"pomodoro", bobs, "", bobs, 0, TW_ERR_NOT_FOUND},
        {"pomodoro", deleted, "", "not found", 0, TW_ERR_NOT_FOUND},
        {"pomodoro", "", "planned_duration", "between 1 minute and 12 hours", 30000,
         TW_ERR_VALIDATION},
        {"pomodoro", "", "planned_duration", "between 1 minute and 12 hours", 13 * HOUR,
         TW_ERR_VALIDATION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* Created or started, the same refusal. */
        for (int kind = CREATE; kind <= START; kind++) {
            struct op o = {.kind = kind, .user = &fx_alice};
            o.fresh.template_id = cases[i].template_id;
            o.fresh.task_id = cases[i].task_id;
            if (cases[i].planned_ms)
                o.fresh.planned_duration = tw_duration_new(fx.arena, cases[i].planned_ms);
            ck_assert_int_eq(run(&o), cases[i].err);
            ck_assert_str_eq(o.why.bad.field, cases[i].field);
            const char *text = cases[i].err == TW_ERR_VALIDATION ? o.why.bad.why : o.why.message;
            ck_assert_msg(strstr(text, cases[i].why) != NULL, "%zu: %s", i, text);
        }
    }
    ck_assert_int_eq(last_sequence(), before); /* nothing stored */
    char *tags[2] = {"t", "t"};
    struct op o = {.kind = CREATE, .user = &fx_alice};
    o.fresh.template_id = "flowtime";
    o.fresh.tags = tags;
    o.fresh.n_tags = 2;
    ck_assert_int_eq(run(&o), TW_OK);
    ck_assert_ptr_null(o.out->planned_duration); /* flowtime is open-ended */
    ck_assert_int_eq(o.out->n_tags, 2);
    ck_assert_int_eq(last_sequence(), before + 1);
}

/* A task deleted while its session runs gets nothing; the session still
 * completes. */
START_TEST(a_task_deleted_meanwhile_is_left_alone)
{
    tw_id task_id;
    const char *task = new_task(&fx_alice, &task_id);
    Tw__V1__FocusSession *s = start_new(&fx_alice, NOW - 30 * MIN, task);
    char id[TW_ID_TEXT_SIZE];
    snprintf(id, sizeof id, "%s", s->id);
    int32_t removed;
    ck_assert_int_eq(tf_delete(&task_id, false, &removed), TW_OK);
    uint64_t before = last_sequence();
    must_move(id, TW_FOCUS_COMPLETE, NOW - 5 * MIN);
    ck_assert_int_eq(get(&fx_alice, id)->state, TW_FOCUS_COMPLETED);
    ck_assert_int_eq(tracked_focus_ms(&task_id), -1);
    ck_assert_int_eq(last_sequence(), before + 1); /* the session's change only */
}
END_TEST

START_TEST(distractions)
{
    Tw__V1__FocusSession *s = start_new(&fx_alice, NOW - 10 * MIN, "");
    char id[TW_ID_TEXT_SIZE];
    snprintf(id, sizeof id, "%s", s->id);
    Tw__V1__FocusDistraction d = TW__V1__FOCUS_DISTRACTION__INIT;
    struct op o = {.kind = DISTRACT, .user = &fx_alice, .session_id = id, .distraction = &d};
    ck_assert_int_eq(run(&o), TW_ERR_VALIDATION);
    ck_assert_str_eq(o.why.bad.field, "distraction.type");
    d.type = TW__V1__FOCUS_DISTRACTION_TYPE__FOCUS_DISTRACTION_TYPE_NOISE;
    d.occur_time = at(NOW - 11 * MIN);
    ck_assert_int_eq(run(&o), TW_ERR_VALIDATION);
    ck_assert_str_eq(o.why.bad.field, "distraction.occur_time");
    d.occur_time = at(NOW - 5 * MIN);
    d.note = "drill next door";
    ck_assert_int_eq(run(&o), TW_OK);
    d.occur_time = NULL;
    must_move(id, TW_FOCUS_PAUSE, 0);
    ck_assert_int_eq(run(&o), TW_OK); /* paused: still allowed */
    s = get(&fx_alice, id);
    ck_assert_int_eq(s->n_distractions, 2);
    ck_assert_str_eq(s->distractions[0]->note, "drill next door");
    ck_assert_int_eq(s->distractions[1]->occur_time->seconds, NOW / 1000);
    ck_assert_int_eq(counter("focus_distractions", "type=noise"), 2);
    must_move(id, TW_FOCUS_BREAK, 0);
    ck_assert_int_eq(run(&o), TW_ERR_FAILED_PRECONDITION);
    ck_assert_str_eq(o.why.message, "cannot record a distraction in a session that is ON_BREAK");
}
END_TEST

/* Runs the abandon job of payload as the service's job does, with a limit
 * of limit_ms. */
struct abandon_run {
    tw_wellness_env *env;
    tw_focus_abandon job;
    bool enqueued;
};

static tw_err abandon_step(tw_txn *t, void *ctx)
{
    struct abandon_run *r = ctx;
    return tw_focus_abandon_due(t, r->env, &r->job, &r->enqueued);
}

static tw_err abandon_due(const void *payload, size_t len, int64_t limit_ms, bool *enqueued)
{
    struct abandon_run r = {0};
    if (!tw_focus_abandon_read(payload, len, &r.job))
        return TW_ERR_VALIDATION;
    r.env = env_of(&r.job.user, fx.arena);
    r.env->abandon_after_ms = limit_ms;
    tw_err err = tw_txn_run(fx.store, abandon_step, &r);
    *enqueued = r.enqueued;
    return err;
}

/* Leases the next due abandon job and runs it as the job worker would. */
static bool run_abandon_job(int64_t limit_ms, bool *enqueued)
{
    tw_job job;
    tw_err err = tw_store_job_lease(fx.store, TW_FOCUS_ABANDON_JOB, 30000, fx.arena, &job);
    if (err == TW_ERR_NOT_FOUND)
        return false;
    ck_assert_int_eq(err, TW_OK);
    ck_assert_int_eq(abandon_due(job.payload, job.payload_len, limit_ms, enqueued), TW_OK);
    ck_assert_int_eq(tw_store_job_complete(fx.store, &job), TW_OK);
    return true;
}

START_TEST(sessions_left_too_long_are_abandoned)
{
    /* Started 5 hours ago and never touched: the job is due at once. */
    Tw__V1__FocusSession *s = start_new(&fx_alice, NOW - 5 * HOUR, "");
    char id[TW_ID_TEXT_SIZE];
    snprintf(id, sizeof id, "%s", s->id);
    bool enqueued;
    ck_assert(run_abandon_job(LIMIT, &enqueued));
    ck_assert(!enqueued);
    s = get(&fx_alice, id);
    ck_assert_int_eq(s->state, TW_FOCUS_ABANDONED);
    ck_assert(s->abandoned_by_server);
    /* As of the moment the limit passed: 4 hours of focus. */
    int64_t end;
    ck_assert(tw_timestamp_to_ms(s->end_time, &end));
    ck_assert_int_eq(end, NOW - HOUR);
    ck_assert_int_eq(tw_focus_focused_ms(s, NOW), LIMIT);
    ck_assert_int_eq(counter("focus_sessions", "template=pomodoro,outcome=abandoned"), 1);
    /* Run again (a lease that ran out): nothing more happens. */
    uint64_t seq = last_sequence();
    uint8_t payload[36];
    memcpy(payload, fx_alice.bytes, 16);
    tw_id sid;
    ck_assert(tw_id_parse(id, &sid));
    memcpy(payload + 16, sid.bytes, 16);
    memcpy(payload + 32, "\0\0\0\1", 4);
    ck_assert_int_eq(abandon_due(payload, sizeof payload, LIMIT, &enqueued), TW_OK);
    ck_assert_int_eq(last_sequence(), seq);
    ck_assert_int_eq(abandon_due(payload, 3, LIMIT, &enqueued), TW_ERR_VALIDATION);
    /* The user can start another. */
    start_new(&fx_alice, NOW, "");
}
END_TEST

START_TEST(a_session_that_changes_is_not_abandoned)
{
    Tw__V1__FocusSession *s = start_new(&fx_alice, NOW - 3 * HOUR, "");
    char id[TW_ID_TEXT_SIZE];
    snprintf(id, sizeof id, "%s", s->id);
    bool enqueued;
    ck_assert(!run_abandon_job(LIMIT, &enqueued)); /* due in an hour */
    must_move(id, TW_FOCUS_PAUSE, NOW - 30 * MIN); /* a second job, due in 3.5 h */
    atomic_store(&fx.clock.ms, NOW + HOUR + MIN);
    /* The first job finds the session changed since; the second is not due. */
    ck_assert(run_abandon_job(LIMIT, &enqueued));
    ck_assert(!enqueued);
    ck_assert(!run_abandon_job(LIMIT, &enqueued));
    ck_assert_int_eq(get(&fx_alice, id)->state, TW_FOCUS_PAUSED);
    /* The limit was raised since the job was queued: it queues itself
     * again for the new limit. */
    atomic_store(&fx.clock.ms, NOW + 4 * HOUR);
    ck_assert(run_abandon_job(8 * HOUR, &enqueued));
    ck_assert(enqueued);
    ck_assert_int_eq(get(&fx_alice, id)->state, TW_FOCUS_PAUSED);
    atomic_store(&fx.clock.ms, NOW + 8 * HOUR);
    ck_assert(run_abandon_job(8 * HOUR, &enqueued));
    s = get(&fx_alice, id);
    ck_assert_int_eq(s->state, TW_FOCUS_ABANDONED);
    ck_assert_int_eq(tw_focus_last_change_ms(s), NOW - 30 * MIN + 8 * HOUR);
    ck_assert_int_eq(tw_focus_focused_ms(s, NOW + 9 * HOUR), 150 * MIN);
}
END_TEST

START_TEST(templates)
{
    Tw__V1__FocusTemplate t = TW__V1__FOCUS_TEMPLATE__INIT;
    t.display_name = "Deep work";
    t.kind = TW_FOCUS_CYCLES;
    t.focus_duration = tw_duration_new(fx.arena, 90 * MIN);
    t.short_break_duration = tw_duration_new(fx.arena, 20 * MIN);
    Tw__V1__FocusTemplate *made;
    tw_txn *txn;
    ck_assert_int_eq(tw_txn_begin(fx.store, &txn), TW_OK);
    ck_assert_int_eq(tw_focus_template_create(txn, env_of(&fx_alice, fx.arena), &t, NULL, &made),
                     TW_OK);
    ck_assert_int_eq(tw_txn_commit(txn), TW_OK);
    char tid[TW_ID_TEXT_SIZE];
    snprintf(tid, sizeof tid, "%s", made->id);

    /* A session of it keeps its copy after the template goes. */
    struct op o = {.kind = CREATE, .user = &fx_alice};
    o.fresh.template_id = tid;
    ck_assert_int_eq(run(&o), TW_OK);
    char sid[TW_ID_TEXT_SIZE];
    snprintf(sid, sizeof sid, "%s", o.out->id);
    ck_assert_int_eq(o.out->planned_duration->seconds, 90 * 60);
    /* Bob cannot use it. */
    o = (struct op){.kind = CREATE, .user = &fx_bob};
    o.fresh.template_id = tid;
    ck_assert_int_eq(run(&o), TW_ERR_NOT_FOUND);

    Tw__V1__FocusTemplate **list;
    size_t n;
    const uint8_t *next;
    size_t next_len;
    ck_assert_int_eq(tw_focus_template_list(env_of(&fx_alice, fx.arena), NULL, 0, 3, &list, &n,
                                            &next, &next_len),
                     TW_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(list[0]->id, "pomodoro");
    ck_assert_int_eq(tw_focus_template_list(env_of(&fx_alice, fx.arena), next, next_len, 3, &list,
                                            &n, &next, &next_len),
                     TW_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(list[0]->id, "countdown");
    ck_assert_str_eq(list[1]->id, tid);
    ck_assert_ptr_null(next);
    ck_assert_int_eq(
        tw_focus_template_list(env_of(&fx_bob, fx.arena), NULL, 0, 50, &list, &n, &next, &next_len),
        TW_OK);
    ck_assert_int_eq(n, 4);

    /* (A built-in's name is no UUID: the engine refuses it for
     * DeleteFocusTemplate.) */
    tw_id template_id;
    ck_assert(tw_id_parse(tid, &template_id));
    ck_assert_int_eq(tw_txn_begin(fx.store, &txn), TW_OK);
    ck_assert_int_eq(tw_focus_template_delete(txn, env_of(&fx_bob, fx.arena), &template_id),
                     TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_focus_template_delete(txn, env_of(&fx_alice, fx.arena), &template_id),
                     TW_OK);
    ck_assert_int_eq(tw_txn_commit(txn), TW_OK);
    Tw__V1__FocusSession *s = get(&fx_alice, sid);
    ck_assert_str_eq(s->template_->display_name, "Deep work");
    ck_assert_int_eq(s->template_->short_break_duration->seconds, 20 * 60);
}
END_TEST

START_TEST(at_most_fifty_templates)
{
    Tw__V1__FocusTemplate t = TW__V1__FOCUS_TEMPLATE__INIT;
    t.display_name = "Mine";
    t.kind = TW_FOCUS_FLOWTIME;
    Tw__V1__FocusTemplate *made;
    for (int i = 0; i <= TW_FOCUS_USER_TEMPLATES_MAX; i++) {
        tw_txn *txn;
        ck_assert_int_eq(tw_txn_begin(fx.store, &txn), TW_OK);
        tw_wellness_env *env = env_of(&fx_alice, fx.arena);
        tw_err err = tw_focus_template_create(txn, env, &t, NULL, &made);
        if (i < TW_FOCUS_USER_TEMPLATES_MAX) {
            ck_assert_int_eq(err, TW_OK);
            ck_assert_int_eq(tw_txn_commit(txn), TW_OK);
        } else {
            ck_assert_int_eq(err, TW_ERR_FAILED_PRECONDITION);
            ck_assert_ptr_nonnull(strstr(env->message, "50 templates"));
            tw_txn_abort(txn);
        }
    }
}
END_TEST

START_TEST(stats_from_the_store)
{
    /* Two sessions yesterday (UTC), one completed, one abandoned. */
    int32_t day = (int32_t)tw_floor_div(NOW, TW_MS_PER_DAY) - 1;
    int64_t t0 = day * TW_MS_PER_DAY + 9 * HOUR;
    Tw__V1__FocusSession *a = start_new(&fx_alice, t0, "");
    must_move(a->id, TW_FOCUS_COMPLETE, t0 + 25 * MIN);
    Tw__V1__FocusSession *b = start_new(&fx_alice, t0 + HOUR, "");
    must_move(b->id, TW_FOCUS_ABANDON, t0 + HOUR + 10 * MIN);
    start_new(&fx_bob, t0, "");
    tw_focus_stats st;
    ck_assert_int_eq(tw_focus_stats_init(&st, &(tw_day_settings){"UTC", 0}, day, 1, fx.arena),
                     TW_OK);
    ck_assert_int_eq(tw_focus_collect_stats(fx.store, &fx_alice, &st, NOW), TW_OK);
    ck_assert_int_eq(st.sessions, 2);
    ck_assert_int_eq(st.completed, 1);
    ck_assert_int_eq(st.focused_ms, 35 * MIN);
    ck_assert_int_eq(st.hour_focused_ms[9], 25 * MIN);
    ck_assert_int_eq(st.hour_focused_ms[10], 10 * MIN);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("focus_store");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, tf_setup, tf_teardown);
    tcase_add_test(tc, a_session_through_its_life);
    tcase_add_test(tc, a_task_deleted_meanwhile_is_left_alone);
    tcase_add_test(tc, refused_changes_store_nothing);
    tcase_add_test(tc, one_session_in_progress_per_user);
    tcase_add_test(tc, two_parallel_starts_one_wins);
    tcase_add_test(tc, client_chosen_session_ids);
    tcase_add_test(tc, new_sessions_are_checked);
    tcase_add_test(tc, distractions);
    tcase_add_test(tc, sessions_left_too_long_are_abandoned);
    tcase_add_test(tc, a_session_that_changes_is_not_abandoned);
    tcase_add_test(tc, templates);
    tcase_add_test(tc, at_most_fifty_templates);
    tcase_add_test(tc, stats_from_the_store);
    suite_add_tcase(s, tc);
    return s;
}
