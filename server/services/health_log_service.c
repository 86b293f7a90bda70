/*
 * tw.v1.HealthLogService: the signed-in user's health log. Handlers check
 * the request, then do one transaction through server/wellness/health.h;
 * the rules and the store layout live there.
 */
#include "services.h"

#include "tw/v1/health_log_service.pb-c.h"
#include "tw_page.h"
#include "tw_time.h"
#include "wellness/health.h"
#include "wellness_call.h"

#include <stdlib.h>
#include <string.h>

static tw_app *app_of(tw_call *call)
{
    return tw_call_service_ctx(call);
}

/* ---- Creating ----------------------------------------------------------------- */

struct upsert {
    const tw_id *user;
    tw_health_write *writes;
    size_t n;
    int64_t now_ms;
    tw_arena *arena;
};

static tw_err upsert_in_txn(tw_txn *t, void *ctx)
{
    struct upsert *u = ctx;
    return tw_health_upsert(t, u->user, u->writes, u->n, u->now_ms, u->arena);
}

static tw_err create_health_log(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__CreateHealthLogRequest *in = (const void *)request;
    Tw__V1__CreateHealthLogResponse *out = (void *)response;
    tw_arena *arena = tw_call_arena(call);
    tw_id user;
    tw_err err = tw_call_user(call, &user);
    if (err)
        return err;
    if (in->health_log == NULL)
        return tw_call_field_violation(call, "health_log", "is required");
    int64_t now = tw_wall_ms();
    tw_bad_field bad;
    tw_health_write w = {0};
    Tw__V1__HealthLog *e;
    if ((err = tw_health_prepare(in->health_log, "health_log.", now, arena, &bad, &e)))
        return tw_wellness_fail(call, err, &bad, NULL);
    w.entry = e;
    if (in->request_id[0] != '\0') {
        if (!tw_id_parse(in->request_id, &w.id))
            return tw_call_field_violation(call, "request_id", "must be a UUID");
        w.has_id = true;
    }
    struct upsert u = {&user, &w, 1, now, arena};
    if ((err = tw_txn_run(app_of(call)->store, upsert_in_txn, &u)))
        return tw_wellness_fail(call, err, NULL, NULL);
    out->health_log = w.stored;
    out->outcome = w.outcome;
    return TW_OK;
}

/* An entry's identity for finding repeats in a batch. */
struct identity {
    int source;
    const char *external_id;
    size_t index;
};

static int cmp_identity(const void *a, const void *b)
{
    const struct identity *x = a, *y = b;
    if (x->source != y->source)
        return x->source < y->source ? -1 : 1;
    int c = strcmp(x->external_id, y->external_id);
    return c != 0 ? c : (x->index < y->index ? -1 : x->index > y->index);
}

/* Two entries of one batch with the same source and external id would be
 * one entry written twice: refused, naming the later one. */
static tw_err check_repeats(tw_call *call, tw_health_write *w, size_t n, tw_arena *arena)
{
    struct identity *ids = tw_arena_alloc(arena, (n + 1) * sizeof *ids);
    if (ids == NULL)
        return TW_ERR_NO_MEMORY;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i].entry->external_id[0] != '\0')
            ids[m++] = (struct identity){w[i].entry->source, w[i].entry->external_id, i};
    qsort(ids, m, sizeof *ids, cmp_identity);
    size_t worst = n, first = n;
    for (size_t i = 1; i < m; i++) {
        if (ids[i].source == ids[i - 1].source &&
            strcmp(ids[i].external_id, ids[i - 1].external_id) == 0 && ids[i].index < worst) {
            worst = ids[i].index;
            first = ids[i - 1].index;
        }
    }
    if (worst == n)
        return TW_OK;
    char field[48];
    snprintf(field, sizeof field, "entries[%zu].external_id", worst);
    return tw_call_field_violation(call, field,
                                   "repeats the source and external_id of entries[%zu]", first);
}

static tw_err batch_create_health_logs(tw_call *call, const ProtobufCMessage *request,
                                       ProtobufCMessage *response)
{
    const Tw__V1__BatchCreateHealthLogsRequest *in = (const void *)request;
    Tw__V1__BatchCreateHealthLogsResponse *out = (void *)response;
    tw_arena *arena = tw_call_arena(call);
    tw_id user, request_id;
    tw_err err = tw_call_user(call, &user);
    if (err)
        return err;
    if (in->n_entries == 0)
        return tw_call_field_violation(call, "entries", "needs at least one entry");
    bool has_request_id = in->request_id[0] != '\0';
    if (has_request_id && !tw_id_parse(in->request_id, &request_id))
        return tw_call_field_violation(call, "request_id", "must be a UUID");
    int64_t now = tw_wall_ms();
    tw_health_write *w = tw_arena_alloc(arena, in->n_entries * sizeof *w);
    if (w == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < in->n_entries; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "entries[%zu].", i);
        tw_bad_field bad;
        Tw__V1__HealthLog *e;
        if ((err = tw_health_prepare(in->entries[i], prefix, now, arena, &bad, &e)))
            return tw_wellness_fail(call, err, &bad, NULL);
        w[i] = (tw_health_write){.entry = e, .has_id = has_request_id};
        if (has_request_id)
            w[i].id = tw_health_batch_id(&request_id, (uint32_t)i);
    }
    if ((err = check_repeats(call, w, in->n_entries, arena)))
        return err;
    struct upsert u = {&user, w, in->n_entries, now, arena};
    if ((err = tw_txn_run(app_of(call)->store, upsert_in_txn, &u)))
        return tw_wellness_fail(call, err, NULL, NULL);
    out->results = tw_arena_alloc(arena, in->n_entries * sizeof *out->results);
    Tw__V1__HealthLogResult *results = tw_arena_alloc(arena, in->n_entries * sizeof *results);
    if (out->results == NULL || results == NULL)
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < in->n_entries; i++) {
        tw__v1__health_log_result__init(&results[i]);
        results[i].health_log = w[i].stored;
        results[i].outcome = w[i].outcome;
        out->results[i] = &results[i];
    }
    out->n_results = in->n_entries;
    return TW_OK;
}

/* ---- Reading ------------------------------------------------------------------ */

static tw_err not_found(tw_call *call, const char *id)
{
    return tw_call_error(call, TW_ERR_NOT_FOUND, "health log %s not found", id);
}

static tw_err get_health_log(tw_call *call, const ProtobufCMessage *request,
                             ProtobufCMessage *response)
{
    const Tw__V1__GetHealthLogRequest *in = (const void *)request;
    Tw__V1__GetHealthLogResponse *out = (void *)response;
    tw_id user, id;
    tw_bad_field bad;
    tw_err err = tw_call_user(call, &user);
    if (err || (err = tw_check_id(&bad, "", "id", in->id, &id)))
        return tw_wellness_fail(call, err, &bad, NULL);
    err =
        tw_health_get(app_of(call)->store, NULL, &user, &id, tw_call_arena(call), &out->health_log);
    return err == TW_ERR_NOT_FOUND ? not_found(call, in->id)
                                   : tw_wellness_fail(call, err, NULL, NULL);
}

static tw_err list_health_logs(tw_call *call, const ProtobufCMessage *request,
                               ProtobufCMessage *response)
{
    const Tw__V1__ListHealthLogsRequest *in = (const void *)request;
    Tw__V1__ListHealthLogsResponse *out = (void *)response;
    tw_id user;
    tw_err err = tw_call_user(call, &user);
    if (err)
        return err;
    tw_health_query q = {.type = (int)in->type, .source = (int)in->source};
    uint32_t limit;
    if ((err = tw_wellness_list_bounds(call, in->page_size, in->start_time, in->end_time, &limit,
                                       &q.from_ms, &q.to_ms)))
        return err;
    if ((int)in->type < 0 || (int)in->type >= TW_HEALTH_TYPE_COUNT)
        return tw_call_field_violation(call, "type", "unknown health log type %d", (int)in->type);
    if ((int)in->source < 0 || in->source > TW_HEALTH_SOURCE_MAX)
        return tw_call_field_violation(call, "source", "unknown health log source %d",
                                       (int)in->source);
    Tw__V1__HealthLog **entries;
    size_t count;
    err = tw_health_list(app_of(call)->store, &user, &q, in->page_token, limit, tw_call_arena(call),
                         &entries, &count, &out->next_page_token);
    if (err)
        return tw_wellness_fail(call, err, NULL, NULL);
    out->health_logs = entries;
    out->n_health_logs = count;
    return TW_OK;
}

/* ---- Changing ------------------------------------------------------------------ */

/* The paths an update may name, and where they lead. */
enum update_path { PATH_START, PATH_END, PATH_OFFSET, PATH_NOTE, PATH_PAYLOAD, PATH_COUNT };

struct update {
    const tw_id *user;
    tw_id id;
    const Tw__V1__HealthLog *in;
    bool paths[PATH_COUNT];
    const char *payload_path;
    int64_t now_ms;
    tw_arena *arena;
    tw_bad_field bad;
    char message[160];
    Tw__V1__HealthLog *stored;
};

static tw_err update_in_txn(tw_txn *t, void *ctx)
{
    struct update *u = ctx;
    Tw__V1__HealthLog *old, merged;
    tw_err err = tw_health_get(NULL, t, u->user, &u->id, u->arena, &old);
    if (err)
        return err;
    merged = *old;
    const Tw__V1__HealthLog *in = u->in;
    if (u->paths[PATH_START])
        merged.start_time = in->start_time;
    if (u->paths[PATH_END])
        merged.end_time = in->end_time;
    if (u->paths[PATH_OFFSET])
        merged.utc_offset = in->utc_offset;
    if (u->paths[PATH_NOTE])
        merged.note = in->note;
    if (u->paths[PATH_PAYLOAD]) {
        if (tw_health_payload_type(in->payload_case) != (int)old->type) {
            snprintf(u->message, sizeof u->message, "the entry is %s: it has no %s payload",
                     tw_health_type_name(old->type), u->payload_path);
            return tw_bad(&u->bad, "", "update_mask", "%s", u->message);
        }
        merged.sleep = in->sleep; /* the union's members share one pointer */
    }
    Tw__V1__HealthLog *e;
    if ((err = tw_health_prepare(&merged, "health_log.", u->now_ms, u->arena, &u->bad, &e)))
        return err;
    return tw_health_replace(t, u->user, old, e, u->now_ms, u->arena, &u->stored);
}

/* Reads the update mask into u->paths: named paths, or (no mask) every
 * updatable field the request sets. */
static tw_err read_mask(tw_call *call, const Tw__V1__UpdateHealthLogRequest *in, struct update *u)
{
    const Tw__V1__HealthLog *e = in->health_log;
    if (in->update_mask == NULL || in->update_mask->n_paths == 0) {
        u->paths[PATH_START] = e->start_time != NULL;
        u->paths[PATH_END] = e->end_time != NULL;
        u->paths[PATH_OFFSET] = e->utc_offset != NULL;
        u->paths[PATH_NOTE] = e->note[0] != '\0';
        u->paths[PATH_PAYLOAD] = e->payload_case != TW__V1__HEALTH_LOG__PAYLOAD__NOT_SET;
        u->payload_path = tw_health_type_name(tw_health_payload_type(e->payload_case));
        return TW_OK;
    }
    static const char *const names[PATH_PAYLOAD] = {"start_time", "end_time", "utc_offset", "note"};
    for (size_t i = 0; i < in->update_mask->n_paths; i++) {
        const char *p = in->update_mask->paths[i];
        bool known = false;
        for (int j = 0; j < PATH_PAYLOAD && !known; j++)
            if (strcmp(p, names[j]) == 0)
                known = u->paths[j] = true;
        for (int type = 1; type < TW_HEALTH_TYPE_COUNT && !known; type++) {
            if (strcmp(p, tw_health_type_name(type)) == 0) {
                known = u->paths[PATH_PAYLOAD] = true;
                u->payload_path = tw_health_type_name(type);
                if (tw_health_payload_type(e->payload_case) != type)
                    return tw_call_field_violation(call, "health_log",
                                                   "update_mask names %s but health_log has no "
                                                   "%s payload",
                                                   p, p);
            }
        }
        if (!known)
            return tw_call_error(call, TW_ERR_BAD_FIELD_MASK,
                                 "update_mask names %s: only start_time, end_time, utc_offset, "
                                 "note and the payload (sleep, mood, ...) can change",
                                 p);
    }
    return TW_OK;
}

static tw_err update_health_log(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__UpdateHealthLogRequest *in = (const void *)request;
    Tw__V1__UpdateHealthLogResponse *out = (void *)response;
    tw_id user;
    struct update u = {.user = &user, .now_ms = tw_wall_ms(), .arena = tw_call_arena(call)};
    tw_err err = tw_call_user(call, &user);
    if (err)
        return err;
    if (in->health_log == NULL)
        return tw_call_field_violation(call, "health_log", "is required");
    u.in = in->health_log;
    if ((err = tw_check_id(&u.bad, "health_log.", "id", in->health_log->id, &u.id)) ||
        (err = read_mask(call, in, &u)))
        return tw_wellness_fail(call, err, &u.bad, NULL);
    err = tw_txn_run(app_of(call)->store, update_in_txn, &u);
    if (err == TW_ERR_NOT_FOUND)
        return not_found(call, in->health_log->id);
    if (err)
        return tw_wellness_fail(call, err, &u.bad, NULL);
    out->health_log = u.stored;
    return TW_OK;
}

struct removal {
    const tw_id *user;
    tw_id id;
    tw_arena *arena;
};

static tw_err delete_in_txn(tw_txn *t, void *ctx)
{
    struct removal *r = ctx;
    return tw_health_delete(t, r->user, &r->id, r->arena);
}

static tw_err delete_health_log(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__DeleteHealthLogRequest *in = (const void *)request;
    tw_id user;
    tw_bad_field bad;
    struct removal r = {.user = &user, .arena = tw_call_arena(call)};
    tw_err err = tw_call_user(call, &user);
    if (err || (err = tw_check_id(&bad, "", "id", in->id, &r.id)))
        return tw_wellness_fail(call, err, &bad, NULL);
    err = tw_txn_run(app_of(call)->store, delete_in_txn, &r);
    return err == TW_ERR_NOT_FOUND ? not_found(call, in->id)
                                   : tw_wellness_fail(call, err, NULL, NULL);
}

/* ---- Summaries ------------------------------------------------------------------ */

static tw_err get_daily_summary(tw_call *call, const ProtobufCMessage *request,
                                ProtobufCMessage *response)
{
    const Tw__V1__GetDailySummaryRequest *in = (const void *)request;
    Tw__V1__GetDailySummaryResponse *out = (void *)response;
    tw_arena *arena = tw_call_arena(call);
    tw_store *store = app_of(call)->store;
    tw_day_request r;
    tw_health_summary s;
    tw_err err = tw_wellness_day_request(call, store, in->start_date, in->end_date, &r);
    if (err)
        return err;
    int32_t first = r.first_day;
    int32_t ndays = r.ndays;
    if ((err = tw_health_summary_init(&s, &r.days, first, ndays, arena)) ||
        (err = tw_health_summarize(store, &r.user, &s)))
        return tw_wellness_fail(call, err, NULL, NULL);
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

const tw_service_def tw_health_log_service = {
    .rpc = {.descriptor = &tw__v1__health_log_service__descriptor, .methods = health_log_methods},
};
