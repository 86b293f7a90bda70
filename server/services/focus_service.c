/*
 * tw.v1.FocusService: the signed-in user's focus sessions and templates.
 * Handlers check the request, then do one transaction through
 * server/wellness/focus.h, where the state machine and the store layout
 * live. Sessions are returned with their focused time as of the server's
 * clock.
 */
#include "services.h"

#include "list_call.h"
#include "jobs.h"
#include "tw/v1/focus_service.pb-c.h"
#include "tw_time.h"
#include "wellness/focus.h"
#include "wellness/focus_job.h"
#include "wellness_call.h"

#include <string.h>

static tw_app *app_of(tw_call *call)
{
    return tw_call_service_ctx(call);
}

static tw_focus_env env_now(tw_call *call)
{
    return (tw_focus_env){tw_wall_ms(),
                          app_of(call)->cfg->focus_abandon_after_minutes * TW_MS_PER_MIN};
}

/* ---- Sessions ------------------------------------------------------------------ */

/* One session call: what it acts on and what it returns. Each handler fills
 * the part it needs; session_in_txn runs the store function for op. */
enum session_op { OP_CREATE, OP_START, OP_TRANSITION, OP_DISTRACT };

struct session_call {
    enum session_op op;
    const tw_id *user;
    tw_focus_new fresh;
    const char *session_id;
    tw_focus_event event;
    const Google__Protobuf__Timestamp *event_time;
    const Tw__V1__FocusDistraction *distraction;
    tw_focus_env env;
    tw_arena *arena;
    tw_focus_refusal why;
    Tw__V1__FocusSession *session;
    bool job_enqueued;
};

static tw_err session_in_txn(tw_txn *t, void *ctx)
{
    struct session_call *c = ctx;
    memset(&c->why, 0, sizeof c->why);
    c->job_enqueued = false;
    switch (c->op) {
    case OP_CREATE:
        return tw_focus_create(t, c->user, &c->fresh, &c->env, c->arena, &c->why, &c->session);
    case OP_START:
        return tw_focus_start(t, c->user, c->session_id, &c->fresh, c->event_time, &c->env,
                              c->arena, &c->why, &c->session, &c->job_enqueued);
    case OP_TRANSITION:
        return tw_focus_transition(t, c->user, c->session_id, c->event, c->event_time, &c->env,
                                   c->arena, &c->why, &c->session, &c->job_enqueued);
    case OP_DISTRACT:
        return tw_focus_distract(t, c->user, c->session_id, c->distraction, &c->env, c->arena,
                                 &c->why, &c->session);
    }
    return TW_ERR_INTERNAL;
}

/* Runs c for the caller and returns its session, presented as of now, in
 * *session (the response's field). */
static tw_err run_session_call(tw_call *call, struct session_call *c,
                               Tw__V1__FocusSession **session)
{
    tw_id user;
    tw_err err = tw_call_user(call, &user);
    if (err)
        return err;
    c->user = &user;
    c->env = env_now(call);
    c->arena = tw_call_arena(call);
    err = tw_txn_run(app_of(call)->store, session_in_txn, c);
    if (err)
        return tw_wellness_fail(call, err, &c->why.bad, c->why.message);
    if (c->job_enqueued)
        tw_jobs_wake(app_of(call)->jobs);
    if ((err = tw_focus_present(c->session, c->env.now_ms, c->arena)))
        return err;
    *session = c->session;
    return TW_OK;
}

static tw_err create_focus_session(tw_call *call, const ProtobufCMessage *request,
                                   ProtobufCMessage *response)
{
    const Tw__V1__CreateFocusSessionRequest *in = (const void *)request;
    Tw__V1__CreateFocusSessionResponse *out = (void *)response;
    struct session_call c = {
        .op = OP_CREATE,
        .fresh = {in->template_id, in->task_id, in->planned_duration, in->tags, in->n_tags,
                  in->request_id},
    };
    return run_session_call(call, &c, &out->session);
}

static tw_err start_focus_session(tw_call *call, const ProtobufCMessage *request,
                                  ProtobufCMessage *response)
{
    const Tw__V1__StartFocusSessionRequest *in = (const void *)request;
    Tw__V1__StartFocusSessionResponse *out = (void *)response;
    struct session_call c = {
        .op = OP_START,
        .session_id = in->session_id,
        .event_time = in->event_time,
        .fresh = {in->template_id, in->task_id, in->planned_duration, in->tags, in->n_tags,
                  in->request_id},
    };
    return run_session_call(call, &c, &out->session);
}

/* Pause, resume, break, complete and abandon requests all read as
 * (session_id, event_time) and answer (session). */
#define TRANSITION_HANDLER(fn, Request, Response, ev)                                              \
    static tw_err fn(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)   \
    {                                                                                              \
        const Request *in = (const void *)request;                                                 \
        Response *out = (void *)response;                                                          \
        struct session_call c = {.op = OP_TRANSITION,                                              \
                                 .session_id = in->session_id,                                     \
                                 .event = ev,                                                      \
                                 .event_time = in->event_time};                                    \
        return run_session_call(call, &c, &out->session);                                          \
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
    struct session_call c = {
        .op = OP_DISTRACT, .session_id = in->session_id, .distraction = in->distraction};
    return run_session_call(call, &c, &out->session);
}

static tw_err get_focus_session(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__GetFocusSessionRequest *in = (const void *)request;
    Tw__V1__GetFocusSessionResponse *out = (void *)response;
    tw_arena *arena = tw_call_arena(call);
    tw_id user;
    tw_focus_refusal why = {0};
    tw_err err = tw_call_user(call, &user);
    if (err ||
        (err = tw_focus_get(app_of(call)->store, &user, in->id, arena, &why, &out->session)) ||
        (err = tw_focus_present(out->session, tw_wall_ms(), arena)))
        return tw_wellness_fail(call, err, &why.bad, why.message);
    return TW_OK;
}

static tw_err list_focus_sessions(tw_call *call, const ProtobufCMessage *request,
                                  ProtobufCMessage *response)
{
    const Tw__V1__ListFocusSessionsRequest *in = (const void *)request;
    Tw__V1__ListFocusSessionsResponse *out = (void *)response;
    tw_arena *arena = tw_call_arena(call);
    tw_id user;
    uint32_t limit;
    int64_t from, to;
    tw_err err = tw_call_user(call, &user);
    if (err || (err = tw_wellness_list_bounds(call, in->page_size, in->start_time, in->end_time,
                                              &limit, &from, &to)))
        return err;
    if ((int)in->state < 0 || (int)in->state >= TW_FOCUS_STATE_COUNT)
        return tw_call_field_violation(call, "state", "unknown state %d", (int)in->state);
    if ((err =
             tw_focus_list(app_of(call)->store, &user, (int)in->state, from, to, in->page_token,
                           limit, arena, &out->sessions, &out->n_sessions, &out->next_page_token)))
        return tw_wellness_fail(call, err, NULL, NULL);
    int64_t now = tw_wall_ms();
    for (size_t i = 0; i < out->n_sessions; i++)
        if ((err = tw_focus_present(out->sessions[i], now, arena)))
            return err;
    return TW_OK;
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
    tw_arena *arena = tw_call_arena(call);
    tw_store *store = app_of(call)->store;
    tw_day_request r;
    tw_focus_stats st;
    tw_err err = tw_wellness_day_request(call, store, in->start_date, in->end_date, &r);
    if (err)
        return err;
    if ((err = tw_focus_stats_init(&st, &r.days, r.first_day, r.ndays, arena)) ||
        (err = tw_focus_collect_stats(store, &r.user, &st, tw_wall_ms(), arena)))
        return tw_wellness_fail(call, err, NULL, NULL);
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

struct template_call {
    tw_store *store;
    const tw_id *user;
    const Tw__V1__CreateFocusTemplateRequest *create;
    const char *delete_id;
    int64_t now_ms;
    tw_arena *arena;
    tw_focus_refusal why;
    Tw__V1__FocusTemplate *made;
};

static tw_err template_in_txn(tw_txn *t, void *ctx)
{
    struct template_call *c = ctx;
    memset(&c->why, 0, sizeof c->why);
    if (c->create != NULL)
        return tw_focus_template_create(c->store, t, c->user, c->create->template_,
                                        c->create->request_id, c->now_ms, c->arena, &c->why,
                                        &c->made);
    return tw_focus_template_delete(t, c->user, c->delete_id, c->arena, &c->why);
}

static tw_err run_template_call(tw_call *call, struct template_call *c)
{
    tw_id user;
    tw_err err = tw_call_user(call, &user);
    if (err)
        return err;
    c->store = app_of(call)->store;
    c->user = &user;
    c->now_ms = tw_wall_ms();
    c->arena = tw_call_arena(call);
    err = tw_txn_run(c->store, template_in_txn, c);
    return err ? tw_wellness_fail(call, err, &c->why.bad, c->why.message) : TW_OK;
}

static tw_err create_focus_template(tw_call *call, const ProtobufCMessage *request,
                                    ProtobufCMessage *response)
{
    Tw__V1__CreateFocusTemplateResponse *out = (void *)response;
    struct template_call c = {.create = (const void *)request};
    tw_err err = run_template_call(call, &c);
    out->template_ = c.made;
    return err;
}

static tw_err delete_focus_template(tw_call *call, const ProtobufCMessage *request,
                                    ProtobufCMessage *response)
{
    const Tw__V1__DeleteFocusTemplateRequest *in = (const void *)request;
    struct template_call c = {.delete_id = in->id};
    return run_template_call(call, &c);
}

static tw_err list_focus_templates(tw_call *call, const ProtobufCMessage *request,
                                   ProtobufCMessage *response)
{
    const Tw__V1__ListFocusTemplatesRequest *in = (const void *)request;
    Tw__V1__ListFocusTemplatesResponse *out = (void *)response;
    tw_id user;
    tw_err err = tw_call_user(call, &user);
    if (err)
        return err;
    uint32_t limit;
    if ((err = tw_list_call_page_size(call, in->page_size, &limit)))
        return err;
    err = tw_focus_template_list(app_of(call)->store, &user, in->page_token, limit,
                                 tw_call_arena(call), &out->templates, &out->n_templates,
                                 &out->next_page_token);
    return tw_wellness_fail(call, err, NULL, NULL);
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

/* A session left running too long is abandoned by a job (wellness/focus_job.h). */
static const tw_job_type focus_jobs[] = {
    {TW_FOCUS_ABANDON_JOB, tw_focus_abandon_job, 30000},
    {NULL},
};

const tw_service_def tw_focus_service = {
    .rpc = {.descriptor = &tw__v1__focus_service__descriptor, .methods = focus_methods},
    .jobs = focus_jobs,
};
