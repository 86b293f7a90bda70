/*
 * tw.v1.FocusService: the signed-in user's focus sessions and templates.
 * Each handler checks its request (every bad field into the call's
 * violation list), then runs one step of server/wellness/focus.h as the
 * call's one write (tw_kit_write: one transaction, serialised with the
 * user's other writes, remembered with its request_id) or reads committed
 * data; the state machine and the store layout live there. Sessions are
 * returned with their focused time as of the call's clock. The service's
 * job abandons sessions left in progress too long.
 */
#include "services.h"

#include "tasks/task_fields.h"
#include "tw/v1/focus_service.pb-c.h"
#include "tw_time.h"
#include "wellness/focus.h"
#include "wellness_call.h"

#include <stdio.h>
#include <string.h>

/* One call's environment and the arguments of its step. */
struct focus_call {
    tw_wellness_env env;
    tw_id id; /* the session or template the request names */
    const void *request;
    void *response;
    bool job_enqueued;
};

static tw_err start(tw_call *call, struct focus_call *fc)
{
    memset(fc, 0, sizeof *fc);
    fc->request = tw_call_request(call);
    fc->response = tw_call_response(call);
    return tw_wellness_call_env(call, &fc->env);
}

/* Runs a step as the call's write and wakes the job workers when it
 * enqueued a job. */
static tw_err run(tw_call *call, struct focus_call *fc, tw_txn_fn fn)
{
    tw_err err = tw_kit_write(call, fc->env.store, fn, fc);
    if (err == TW_OK && fc->job_enqueued)
        tw_jobs_wake(((tw_app *)tw_call_service_ctx(call))->jobs);
    return tw_wellness_call_fail(call, &fc->env, err);
}

/* ---- Sessions ------------------------------------------------------------------ */

/* What a session step does, and with what: each handler fills the part it
 * needs; session_step runs the store function for op. */
enum session_op { OP_CREATE, OP_START, OP_TRANSITION, OP_DISTRACT };

struct session_args {
    struct focus_call fc;
    enum session_op op;
    tw_focus_new fresh;
    const tw_id *session_id; /* NULL: a new session (OP_START) */
    tw_focus_event event;
    const Google__Protobuf__Timestamp *event_time;
    const Tw__V1__FocusDistraction *distraction;
    /* The response's session field: every session response has one. */
    Tw__V1__FocusSession **out;
};

static tw_err session_step(tw_txn *t, void *ctx)
{
    struct session_args *a = ctx;
    tw_wellness_env *env = &a->fc.env;
    Tw__V1__FocusSession *s = NULL;
    tw_err err = TW_ERR_INTERNAL;
    a->fc.job_enqueued = false;
    switch (a->op) {
    case OP_CREATE:
        err = tw_focus_create(t, env, &a->fresh, &s);
        break;
    case OP_START:
        err = tw_focus_start(t, env, a->session_id, &a->fresh, a->event_time, &s,
                             &a->fc.job_enqueued);
        break;
    case OP_TRANSITION:
        err = tw_focus_transition(t, env, a->session_id, a->event, a->event_time, &s,
                                  &a->fc.job_enqueued);
        break;
    case OP_DISTRACT:
        err = tw_focus_distract(t, env, a->session_id, a->distraction, &s);
        break;
    }
    if (err == TW_OK && (err = tw_focus_present(s, env->now_ms, env->arena)) == TW_OK)
        *a->out = s;
    return err;
}

/* Runs a, checked, for the caller. */
static tw_err run_session(tw_call *call, struct session_args *a)
{
    if (tw_violations_any(a->fc.env.violations))
        return TW_ERR_VALIDATION;
    return run(call, &a->fc, session_step);
}

/* Starts a session call on the request's session_id (the engine checked
 * it, and made it required where it is). */
static tw_err start_session(tw_call *call, struct session_args *a, const char *session_id,
                            Tw__V1__FocusSession **out)
{
    memset(a, 0, sizeof *a);
    tw_err err = start(call, &a->fc);
    if (tw_kit_id(session_id, &a->fc.id))
        a->session_id = &a->fc.id;
    a->out = out;
    return err;
}

static tw_err create_focus_session(tw_call *call, const ProtobufCMessage *request,
                                   ProtobufCMessage *response)
{
    const Tw__V1__CreateFocusSessionRequest *in = (const void *)request;
    Tw__V1__CreateFocusSessionResponse *out = (void *)response;
    struct session_args a;
    tw_err err = start_session(call, &a, "", &out->session);
    if (err)
        return err;
    a.op = OP_CREATE;
    a.fresh = (tw_focus_new){in->focus_session_id, in->template_id, in->task_id,
                             in->planned_duration, in->tags,        in->n_tags};
    tw_focus_check_new(&a.fresh, a.fc.env.violations);
    return run_session(call, &a);
}

static tw_err start_focus_session(tw_call *call, const ProtobufCMessage *request,
                                  ProtobufCMessage *response)
{
    const Tw__V1__StartFocusSessionRequest *in = (const void *)request;
    Tw__V1__StartFocusSessionResponse *out = (void *)response;
    struct session_args a;
    tw_err err = start_session(call, &a, in->session_id, &out->session);
    if (err)
        return err;
    a.op = OP_START;
    a.event_time = in->event_time;
    a.fresh = (tw_focus_new){in->focus_session_id, in->template_id, in->task_id,
                             in->planned_duration, in->tags,        in->n_tags};
    tw_violations *v = a.fc.env.violations;
    if (a.session_id == NULL) {
        tw_focus_check_new(&a.fresh, v);
        return run_session(call, &a);
    }
    /* Starting a planned session: what a new one is made of has no place. */
    const struct {
        const char *field;
        bool set;
    } fresh_fields[] = {
        {"template_id", in->template_id[0] != '\0'},           {"task_id", in->task_id[0] != '\0'},
        {"planned_duration", in->planned_duration != NULL},    {"tags", in->n_tags > 0},
        {"focus_session_id", in->focus_session_id[0] != '\0'},
    };
    for (size_t i = 0; i < sizeof fresh_fields / sizeof fresh_fields[0]; i++)
        if (fresh_fields[i].set)
            tw_violations_add(v, fresh_fields[i].field,
                              "is for a new session: leave it empty with session_id");
    return run_session(call, &a);
}

/* Pause, resume, break, complete and abandon requests all read as
 * (session_id, event_time) and answer (session). */
#define TRANSITION_HANDLER(fn, Request, Response, ev)                                              \
    static tw_err fn(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)   \
    {                                                                                              \
        const Request *in = (const void *)request;                                                 \
        Response *out = (void *)response;                                                          \
        struct session_args a;                                                                     \
        tw_err err = start_session(call, &a, in->session_id, &out->session);                       \
        if (err)                                                                                   \
            return err;                                                                            \
        a.op = OP_TRANSITION;                                                                      \
        a.event = ev;                                                                              \
        a.event_time = in->event_time;                                                             \
        return run_session(call, &a);                                                              \
    }

TRANSITION_HANDLER(pause_focus_session, Tw__V1__PauseFocusSessionRequest,
                   Tw__V1__PauseFocusSessionResponse, TW_FOCUS_PAUSE)
TRANSITION_HANDLER(resume_focus_session, Tw__V1__ResumeFocusSessionRequest,
                   Tw__V1__ResumeFocusSessionResponse, TW_FOCUS_RESUME)
TRANSITION_HANDLER(start_break, Tw__V1__StartBreakRequest, Tw__V1__StartBreakResponse,
                   TW_FOCUS_BREAK)
TRANSITION_HANDLER(complete_focus_session, Tw__V1__CompleteFocusSessionRequest,
                   Tw__V1__CompleteFocusSessionResponse, TW_FOCUS_COMPLETE)
TRANSITION_HANDLER(abandon_focus_session, Tw__V1__AbandonFocusSessionRequest,
                   Tw__V1__AbandonFocusSessionResponse, TW_FOCUS_ABANDON)

static tw_err record_distraction(tw_call *call, const ProtobufCMessage *request,
                                 ProtobufCMessage *response)
{
    const Tw__V1__RecordDistractionRequest *in = (const void *)request;
    Tw__V1__RecordDistractionResponse *out = (void *)response;
    struct session_args a;
    tw_err err = start_session(call, &a, in->session_id, &out->session);
    if (err)
        return err;
    a.op = OP_DISTRACT;
    a.distraction = in->distraction; /* required by the engine */
    tw_focus_check_distraction(in->distraction, a.fc.env.violations);
    return run_session(call, &a);
}

static tw_err get_focus_session(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__GetFocusSessionRequest *in = (const void *)request;
    Tw__V1__GetFocusSessionResponse *out = (void *)response;
    struct focus_call fc;
    tw_err err = start(call, &fc);
    if (err)
        return err;
    tw_kit_id(in->id, &fc.id);
    if ((err = tw_focus_get(NULL, &fc.env, &fc.id, &out->session)) == TW_OK)
        err = tw_focus_present(out->session, fc.env.now_ms, fc.env.arena);
    return tw_wellness_call_fail(call, &fc.env, err);
}

static tw_err list_focus_sessions(tw_call *call, const ProtobufCMessage *request,
                                  ProtobufCMessage *response)
{
    const Tw__V1__ListFocusSessionsRequest *in = (const void *)request;
    Tw__V1__ListFocusSessionsResponse *out = (void *)response;
    struct focus_call fc;
    tw_kit_page page;
    tw_err err = start(call, &fc);
    if (err)
        return err;
    tw_violations *v = fc.env.violations;
    int64_t from, to;
    tw_wellness_time_range(in->start_time, in->end_time, v, &from, &to);
    if ((int)in->state < 0 || (int)in->state >= TW_FOCUS_STATE_COUNT)
        tw_violations_add(v, "state", "unknown state %d", (int)in->state);
    if ((err = tw_kit_page_open(call, fc.env.store, &page)) || tw_violations_any(v))
        return err ? err : TW_ERR_VALIDATION;
    const uint8_t *next;
    size_t next_len;
    if ((err = tw_focus_list(&fc.env, (int)in->state, from, to, page.cursor, page.cursor_len,
                             page.size, &out->sessions, &out->n_sessions, &next, &next_len)))
        return tw_kit_fail(call, err);
    for (size_t i = 0; i < out->n_sessions; i++)
        if ((err = tw_focus_present(out->sessions[i], fc.env.now_ms, fc.env.arena)))
            return err;
    return tw_kit_page_close(call, &page, next, next_len, &out->next_page_token);
}

/* ---- Statistics ---------------------------------------------------------------- */

static int cmp_distraction_counts(const void *a, const void *b)
{
    const Tw__V1__FocusDistractionCount *x = *(Tw__V1__FocusDistractionCount *const *)a;
    const Tw__V1__FocusDistractionCount *y = *(Tw__V1__FocusDistractionCount *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (int)x->type - (int)y->type;
}

/* Fills the response's per-day, per-hour and distraction lists. */
static tw_err fill_stats(const tw_focus_stats *st, tw_arena *arena,
                         Tw__V1__GetFocusStatsResponse *out)
{
    out->days = tw_arena_alloc(arena, (size_t)st->ndays * sizeof *out->days);
    Tw__V1__FocusDayStats *days = tw_arena_alloc(arena, (size_t)st->ndays * sizeof *days);
    out->hours = tw_arena_alloc(arena, 24 * sizeof *out->hours);
    Tw__V1__FocusHourStats *hours = tw_arena_alloc(arena, 24 * sizeof *hours);
    out->distractions =
        tw_arena_alloc(arena, TW_FOCUS_DISTRACTION_TYPE_COUNT * sizeof *out->distractions);
    Tw__V1__FocusDistractionCount *counts =
        tw_arena_alloc(arena, TW_FOCUS_DISTRACTION_TYPE_COUNT * sizeof *counts);
    out->best_hours = tw_arena_alloc(arena, 3 * sizeof *out->best_hours);
    if (!out->days || !days || !out->hours || !hours || !out->distractions || !counts ||
        !out->best_hours)
        return TW_ERR_NO_MEMORY;
    for (int32_t i = 0; i < st->ndays; i++) {
        tw__v1__focus_day_stats__init(&days[i]);
        if ((days[i].date = tw_arena_alloc(arena, TW_DATE_TEXT_SIZE)) == NULL ||
            (days[i].focused_duration = tw_duration_new(arena, st->day_focused_ms[i])) == NULL)
            return TW_ERR_NO_MEMORY;
        tw_date_format(st->first_day + i, days[i].date);
        days[i].session_count = st->day_sessions[i];
        days[i].completed_count = st->day_completed[i];
        out->days[i] = &days[i];
    }
    out->n_days = (size_t)st->ndays;
    for (int h = 0; h < 24; h++) {
        tw__v1__focus_hour_stats__init(&hours[h]);
        hours[h].hour = h;
        if ((hours[h].focused_duration = tw_duration_new(arena, st->hour_focused_ms[h])) == NULL)
            return TW_ERR_NO_MEMORY;
        hours[h].session_count = st->hour_sessions[h];
        hours[h].completed_count = st->hour_completed[h];
        out->hours[h] = &hours[h];
    }
    out->n_hours = 24;
    for (int type = 1; type < TW_FOCUS_DISTRACTION_TYPE_COUNT; type++) {
        if (st->distractions[type] == 0)
            continue;
        tw__v1__focus_distraction_count__init(&counts[out->n_distractions]);
        counts[out->n_distractions].type = (Tw__V1__FocusDistractionType)type;
        counts[out->n_distractions].count = st->distractions[type];
        out->distractions[out->n_distractions] = &counts[out->n_distractions];
        out->n_distractions++;
    }
    qsort(out->distractions, out->n_distractions, sizeof *out->distractions,
          cmp_distraction_counts);
    tw_focus_stats_best_hours(st, out->best_hours, &out->n_best_hours);
    return TW_OK;
}

static tw_err get_focus_stats(tw_call *call, const ProtobufCMessage *request,
                              ProtobufCMessage *response)
{
    const Tw__V1__GetFocusStatsRequest *in = (const void *)request;
    Tw__V1__GetFocusStatsResponse *out = (void *)response;
    struct focus_call fc;
    tw_day_request r;
    tw_focus_stats st;
    tw_err err = start(call, &fc);
    if (err || (err = tw_wellness_call_days(call, &fc.env, in->start_date, in->end_date, &r)))
        return err;
    tw_arena *arena = fc.env.arena;
    if ((err = tw_focus_stats_init(&st, &r.days, r.first_day, r.ndays, arena)) ||
        (err = tw_focus_collect_stats(fc.env.store, &fc.env.user, &st, fc.env.now_ms)))
        return tw_kit_fail(call, err);
    out->session_count = st.sessions;
    out->completed_count = st.completed;
    out->abandoned_count = st.abandoned;
    out->completion_rate = tw_focus_stats_completion_rate(&st);
    out->focused_duration = tw_duration_new(arena, st.focused_ms);
    out->average_focused_duration =
        tw_duration_new(arena, st.ended > 0 ? st.ended_focused_ms / st.ended : 0);
    out->time_zone = (char *)r.days.time_zone;
    out->day_start_hour = r.days.day_start_hour;
    if (out->focused_duration == NULL || out->average_focused_duration == NULL)
        return TW_ERR_NO_MEMORY;
    return fill_stats(&st, arena, out);
}

/* ---- Templates ------------------------------------------------------------------ */

struct template_args {
    struct focus_call fc;
    Tw__V1__FocusTemplate *prepared;
    bool has_id;
};

static tw_err template_create_step(tw_txn *t, void *ctx)
{
    struct template_args *a = ctx;
    Tw__V1__CreateFocusTemplateResponse *out = a->fc.response;
    return tw_focus_template_create(t, &a->fc.env, a->prepared, a->has_id ? &a->fc.id : NULL,
                                    &out->template_);
}

static tw_err create_focus_template(tw_call *call, const ProtobufCMessage *request,
                                    ProtobufCMessage *response)
{
    const Tw__V1__CreateFocusTemplateRequest *in = (const void *)request;
    (void)response;
    struct template_args a = {0};
    tw_err err = start(call, &a.fc);
    if (err)
        return err;
    /* template is required by the engine. */
    tw_task_check_new_id(in->focus_template_id, false, "focus_template_id", a.fc.env.violations);
    a.has_id = tw_kit_id(in->focus_template_id, &a.fc.id);
    err =
        tw_focus_template_prepare(in->template_, a.fc.env.arena, a.fc.env.violations, &a.prepared);
    if (err || tw_violations_any(a.fc.env.violations))
        return err ? err : TW_ERR_VALIDATION;
    return run(call, &a.fc, template_create_step);
}

static tw_err template_delete_step(tw_txn *t, void *ctx)
{
    struct focus_call *fc = ctx;
    return tw_focus_template_delete(t, &fc->env, &fc->id);
}

static tw_err delete_focus_template(tw_call *call, const ProtobufCMessage *request,
                                    ProtobufCMessage *response)
{
    const Tw__V1__DeleteFocusTemplateRequest *in = (const void *)request;
    (void)response;
    struct focus_call fc;
    tw_err err = start(call, &fc);
    if (err)
        return err;
    tw_kit_id(in->id, &fc.id);
    return run(call, &fc, template_delete_step);
}

static tw_err list_focus_templates(tw_call *call, const ProtobufCMessage *request,
                                   ProtobufCMessage *response)
{
    Tw__V1__ListFocusTemplatesResponse *out = (void *)response;
    (void)request;
    struct focus_call fc;
    tw_kit_page page;
    tw_err err = start(call, &fc);
    if (err || (err = tw_kit_page_open(call, fc.env.store, &page)))
        return err;
    const uint8_t *next;
    size_t next_len;
    if ((err = tw_focus_template_list(&fc.env, page.cursor, page.cursor_len, page.size,
                                      &out->templates, &out->n_templates, &next, &next_len)))
        return tw_kit_fail(call, err);
    return tw_kit_page_close(call, &page, next, next_len, &out->next_page_token);
}

/* ---- The auto-abandon job -------------------------------------------------------- */

struct abandon_run {
    tw_wellness_env env;
    tw_focus_abandon job;
    bool enqueued;
};

static tw_err abandon_step(tw_txn *t, void *ctx)
{
    struct abandon_run *r = ctx;
    r->env.message = NULL;
    return tw_focus_abandon_due(t, &r->env, &r->job, &r->enqueued);
}

/* Abandons a session left in progress past the server's limit, as of the
 * job's clock (the abandon job of wellness/focus.h), serialised with the
 * user's calls as their writes are. */
static tw_err abandon_job(tw_app *app, const tw_job *job, tw_job_failure *failure)
{
    struct abandon_run r = {0};
    if (!tw_focus_abandon_read(job->payload, job->payload_len, &r.job)) {
        snprintf(failure->error, sizeof failure->error, "a payload of %zu bytes is none of ours",
                 job->payload_len);
        return TW_ERR_VALIDATION;
    }
    tw_violations none;
    if ((r.env.arena = tw_arena_new(4096)) == NULL)
        return TW_ERR_NO_MEMORY;
    tw_violations_init(&none, r.env.arena, 1, 256);
    r.env.store = app->store;
    r.env.user = r.job.user;
    r.env.now_ms = tw_store_now_ms(app->store);
    r.env.abandon_after_ms = app->cfg->focus_abandon_after_minutes * TW_MS_PER_MIN;
    r.env.violations = &none;
    tw_err err = tw_txn_run(app->store, abandon_step, &r);
    if (err)
        snprintf(failure->error, sizeof failure->error, "%s: %s", tw_err_name(err),
                 r.env.message ? r.env.message : tw_store_last_error());
    else if (r.enqueued)
        tw_jobs_wake(app->jobs);
    tw_arena_free(r.env.arena);
    return err;
}

static const tw_method focus_methods[] = {
    {"CreateFocusTemplate", TW_UNARY, TW_WRITE, .handle = create_focus_template},
    {"ListFocusTemplates", TW_UNARY, 0, .handle = list_focus_templates},
    {"DeleteFocusTemplate", TW_UNARY, TW_WRITE, .handle = delete_focus_template},
    {"CreateFocusSession", TW_UNARY, TW_WRITE | TW_METERED, .handle = create_focus_session},
    {"GetFocusSession", TW_UNARY, 0, .handle = get_focus_session},
    {"StartFocusSession", TW_UNARY, TW_WRITE | TW_METERED, .handle = start_focus_session},
    {"PauseFocusSession", TW_UNARY, TW_WRITE, .handle = pause_focus_session},
    {"ResumeFocusSession", TW_UNARY, TW_WRITE, .handle = resume_focus_session},
    {"StartBreak", TW_UNARY, TW_WRITE, .handle = start_break},
    {"CompleteFocusSession", TW_UNARY, TW_WRITE, .handle = complete_focus_session},
    {"AbandonFocusSession", TW_UNARY, TW_WRITE, .handle = abandon_focus_session},
    {"RecordDistraction", TW_UNARY, TW_WRITE, .handle = record_distraction},
    {"ListFocusSessions", TW_UNARY, 0, .handle = list_focus_sessions},
    {"GetFocusStats", TW_UNARY, 0, .handle = get_focus_stats},
    {NULL},
};

static const tw_job_type focus_jobs[] = {
    {TW_FOCUS_ABANDON_JOB, abandon_job, 30000},
    {NULL},
};

static const tw_service_counter focus_counters[] = {
    {"focus_sessions", "tw_focus_sessions_total",
     "Focus sessions ended, by template and outcome (completed, abandoned)."},
    {"focus_focused_seconds", "tw_focus_focused_seconds_total",
     "Seconds focused in ended focus sessions, by template and outcome."},
    {"focus_distractions", "tw_focus_distractions_total", "Distractions recorded, by type."},
    {NULL},
};

const tw_service_def tw_focus_service = {
    .rpc = {.descriptor = &tw__v1__focus_service__descriptor, .methods = focus_methods},
    .jobs = focus_jobs,
    .counters = focus_counters,
};
