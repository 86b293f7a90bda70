/*
 * tw.v1.HealthLogService: the signed-in user's health log. Each handler
 * checks its request (every bad field into the call's violation list),
 * then runs one step of server/wellness/health.h as the call's one write
 * (tw_kit_write: one transaction, serialised with the user's other
 * writes, remembered with its request_id) or reads committed data; the
 * rules and the store layout live there.
 */
#include "services.h"

#include "tw/v1/health_log_service.pb-c.h"
#include "wellness/health.h"
#include "wellness_call.h"

#include <stdio.h>
#include <string.h>

/* One call's environment and the arguments of its step. */
struct health_call {
    tw_wellness_env env;
    tw_id id;                /* the entry the request names */
    tw_health_write *writes; /* creates */
    size_t n;
    const void *request;
    void *response;
};

static tw_err start(tw_call *call, struct health_call *hc)
{
    memset(hc, 0, sizeof *hc);
    hc->request = tw_call_request(call);
    hc->response = tw_call_response(call);
    return tw_wellness_call_env(call, &hc->env);
}

/* Runs a step as the call's write. */
static tw_err run(tw_call *call, struct health_call *hc, tw_txn_fn fn)
{
    return tw_wellness_call_fail(call, &hc->env, tw_kit_write(call, hc->env.store, fn, hc));
}

/* ---- Creating ----------------------------------------------------------------- */

static tw_err create_step(tw_txn *t, void *ctx)
{
    struct health_call *hc = ctx;
    Tw__V1__CreateHealthLogResponse *out = hc->response;
    tw_err err = tw_health_upsert(t, &hc->env, hc->writes, 1);
    if (err == TW_OK) {
        out->health_log = hc->writes[0].stored;
        out->outcome = hc->writes[0].outcome;
    }
    return err;
}

static tw_err create_health_log(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__CreateHealthLogRequest *in = (const void *)request;
    (void)response;
    struct health_call hc;
    tw_health_write w;
    tw_err err = start(call, &hc);
    if (err || (err = tw_health_prepare_new(in->health_log, in->health_log_id, "health_log_id",
                                            "health_log.", hc.env.arena, hc.env.violations, &w)))
        return err;
    hc.writes = &w;
    return run(call, &hc, create_step);
}

static tw_err batch_step(tw_txn *t, void *ctx)
{
    struct health_call *hc = ctx;
    Tw__V1__BatchCreateHealthLogsResponse *out = hc->response;
    tw_err err = tw_health_upsert(t, &hc->env, hc->writes, hc->n);
    if (err)
        return err;
    out->results = tw_arena_alloc(hc->env.arena, hc->n * sizeof *out->results);
    Tw__V1__HealthLogResult *results = tw_arena_alloc(hc->env.arena, hc->n * sizeof *results);
    if (out->results == NULL || results == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < hc->n; i++) {
        tw__v1__health_log_result__init(&results[i]);
        results[i].health_log = hc->writes[i].stored;
        results[i].outcome = hc->writes[i].outcome;
        out->results[i] = &results[i];
    }
    out->n_results = hc->n;
    return TW_OK;
}

static tw_err batch_create_health_logs(tw_call *call, const ProtobufCMessage *request,
                                       ProtobufCMessage *response)
{
    const Tw__V1__BatchCreateHealthLogsRequest *in = (const void *)request;
    (void)response;
    struct health_call hc;
    tw_err err = start(call, &hc);
    if (err)
        return err;
    /* The engine made entries required and capped them. */
    hc.n = in->n_entries;
    if ((hc.writes = tw_arena_alloc(hc.env.arena, hc.n * sizeof *hc.writes)) == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < hc.n; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "entries[%zu].", i);
        err = tw_health_prepare_new(in->entries[i], "", NULL, prefix, hc.env.arena,
                                    hc.env.violations, &hc.writes[i]);
        if (err && err != TW_ERR_VALIDATION)
            return err;
    }
    tw_health_check_repeats(hc.writes, hc.n, hc.env.arena, hc.env.violations);
    if (tw_violations_any(hc.env.violations))
        return TW_ERR_VALIDATION;
    return run(call, &hc, batch_step);
}

/* ---- Reading ------------------------------------------------------------------ */

static tw_err get_health_log(tw_call *call, const ProtobufCMessage *request,
                             ProtobufCMessage *response)
{
    const Tw__V1__GetHealthLogRequest *in = (const void *)request;
    Tw__V1__GetHealthLogResponse *out = (void *)response;
    struct health_call hc;
    tw_err err = start(call, &hc);
    if (err)
        return err;
    tw_kit_id(in->id, &hc.id);
    return tw_wellness_call_fail(call, &hc.env,
                                 tw_health_get(NULL, &hc.env, &hc.id, &out->health_log));
}

static tw_err list_health_logs(tw_call *call, const ProtobufCMessage *request,
                               ProtobufCMessage *response)
{
    const Tw__V1__ListHealthLogsRequest *in = (const void *)request;
    Tw__V1__ListHealthLogsResponse *out = (void *)response;
    struct health_call hc;
    tw_kit_page page;
    tw_err err = start(call, &hc);
    if (err)
        return err;
    tw_health_query q = {.type = (int)in->type, .source = (int)in->source};
    tw_violations *v = hc.env.violations;
    tw_wellness_time_range(in->start_time, in->end_time, v, &q.from_ms, &q.to_ms);
    if (q.type < 0 || q.type >= TW_HEALTH_TYPE_COUNT)
        tw_violations_add(v, "type", "unknown health log type %d", q.type);
    if (q.source < 0 || q.source > TW_HEALTH_SOURCE_MAX)
        tw_violations_add(v, "source", "unknown health log source %d", q.source);
    if ((err = tw_kit_page_open(call, hc.env.store, &page)) || tw_violations_any(v))
        return err ? err : TW_ERR_VALIDATION;
    const uint8_t *next;
    size_t next_len;
    if ((err = tw_health_list(&hc.env, &q, page.cursor, page.cursor_len, page.size,
                              &out->health_logs, &out->n_health_logs, &next, &next_len)))
        return tw_kit_fail(call, err);
    return tw_kit_page_close(call, &page, next, next_len, &out->next_page_token);
}

/* ---- Changing ------------------------------------------------------------------ */

struct update_args {
    struct health_call hc;
    unsigned fields;
};

static tw_err update_step(tw_txn *t, void *ctx)
{
    struct update_args *a = ctx;
    const Tw__V1__UpdateHealthLogRequest *in = a->hc.request;
    Tw__V1__UpdateHealthLogResponse *out = a->hc.response;
    return tw_health_update(t, &a->hc.env, &a->hc.id, in->health_log, a->fields, &out->health_log);
}

static tw_err update_health_log(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__UpdateHealthLogRequest *in = (const void *)request;
    (void)response;
    struct update_args a;
    tw_err err = start(call, &a.hc);
    if (err)
        return err;
    tw_violations *v = a.hc.env.violations;
    /* health_log is required by the engine; its id only here, since a
     * create leaves it out. */
    if (!tw_kit_id(in->health_log->id, &a.hc.id))
        tw_violations_add(v, "health_log.id", "is required");
    if ((err = tw_mask_parse(in->update_mask, tw_health_mask_paths, TW_HF_CHANGEABLE, "HealthLog",
                             "update_mask", v, &a.fields)) ||
        tw_violations_any(v))
        return err ? err : TW_ERR_VALIDATION;
    return tw_wellness_call_fail(call, &a.hc.env,
                                 tw_kit_write(call, a.hc.env.store, update_step, &a));
}

static tw_err delete_step(tw_txn *t, void *ctx)
{
    struct health_call *hc = ctx;
    return tw_health_delete(t, &hc->env, &hc->id);
}

static tw_err delete_health_log(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__DeleteHealthLogRequest *in = (const void *)request;
    (void)response;
    struct health_call hc;
    tw_err err = start(call, &hc);
    if (err)
        return err;
    tw_kit_id(in->id, &hc.id);
    return run(call, &hc, delete_step);
}

/* ---- Summaries ------------------------------------------------------------------ */

static tw_err get_daily_summary(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__GetDailySummaryRequest *in = (const void *)request;
    Tw__V1__GetDailySummaryResponse *out = (void *)response;
    struct health_call hc;
    tw_day_request r;
    tw_health_summary s;
    tw_err err = start(call, &hc);
    if (err || (err = tw_wellness_call_days(call, &hc.env, in->start_date, in->end_date, &r)))
        return err;
    tw_arena *arena = hc.env.arena;
    int32_t first = r.first_day;
    int32_t ndays = r.ndays;
    if ((err = tw_health_summary_init(&s, &r.days, first, ndays, arena)) ||
        (err = tw_health_summarize(hc.env.store, &hc.env.user, &s)))
        return tw_kit_fail(call, err);
    out->days = tw_arena_alloc(arena, (size_t)ndays * sizeof *out->days);
    Tw__V1__HealthDailySummary *d = tw_arena_alloc(arena, (size_t)ndays * sizeof *d);
    if (out->days == NULL || d == NULL)
        return TW_ERR_NO_MEMORY;
    for (int32_t i = 0; i < ndays; i++) {
        const tw_health_day *t = &s.days[i];
        tw__v1__health_daily_summary__init(&d[i]);
        if ((d[i].date = tw_arena_alloc(arena, TW_DATE_TEXT_SIZE)) == NULL ||
            (d[i].sleep_duration = tw_duration_new(arena, t->sleep_ms)) == NULL ||
            (d[i].exercise_duration = tw_duration_new(arena, t->exercise_ms)) == NULL ||
            (d[i].meditation_duration = tw_duration_new(arena, t->meditation_ms)) == NULL)
            return TW_ERR_NO_MEMORY;
        tw_date_format(first + i, d[i].date);
        d[i].water_ml = t->water_ml;
        d[i].steps = t->steps;
        d[i].mood_count = t->mood_count;
        d[i].mood_average = t->mood_count ? t->mood_sum / t->mood_count : 0;
        d[i].weight_kg = t->weight_kg;
        d[i].entry_count = t->entry_count;
        out->days[i] = &d[i];
    }
    out->n_days = (size_t)ndays;
    out->time_zone = (char *)r.days.time_zone;
    out->day_start_hour = r.days.day_start_hour;
    tw_health_weight_trend(&s, &out->weight_days, &out->weight_change_kg,
                           &out->weight_trend_kg_per_week);
    return TW_OK;
}

static const tw_method health_log_methods[] = {
    {"CreateHealthLog", TW_UNARY, TW_WRITE | TW_METERED, .handle = create_health_log},
    {"BatchCreateHealthLogs", TW_UNARY, TW_WRITE | TW_METERED, .handle = batch_create_health_logs},
    {"GetHealthLog", TW_UNARY, 0, .handle = get_health_log},
    {"ListHealthLogs", TW_UNARY, 0, .handle = list_health_logs},
    {"UpdateHealthLog", TW_UNARY, TW_WRITE, .handle = update_health_log},
    {"DeleteHealthLog", TW_UNARY, TW_WRITE, .handle = delete_health_log},
    {"GetDailySummary", TW_UNARY, 0, .handle = get_daily_summary},
    {NULL},
};

static const tw_service_counter health_log_counters[] = {
    {"health_log_entries", "tw_health_log_entries_total", "Health log entries stored, by type."},
    {NULL},
};

const tw_service_def tw_health_log_service = {
    .rpc = {.descriptor = &tw__v1__health_log_service__descriptor, .methods = health_log_methods},
    .counters = health_log_counters,
};
