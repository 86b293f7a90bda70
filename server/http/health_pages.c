/*
 * /health, /health/db and /health/detailed, as the runbook's "Health Check
 * Endpoints" table has them:
 *   /health           {"status":"healthy"}; 503 {"status":"shutting_down"}
 *                     once shutdown has begun
 *   /health/db        {"database":"connected"} after a real read through the
 *                     store and from its disk (tw_store_probe), done for this
 *                     request; 503 {"database":"disconnected"} when it fails
 *   /health/detailed  everything an operator looks at first: the store (size,
 *                     pending compaction, migrations, last backup), blob
 *                     storage (its last probe), the job queue (depth, oldest
 *                     due job, dead jobs), each provider (configured, circuit
 *                     breaker, calls, failures, last error), version, uptime
 *                     and maintenance mode; 503 when the store fails its probe
 */
#include "routes.h"

#include "auth/auth.h"
#include "deepgram.h"
#include "ops/ops.h"
#include "rpc/engine.h"
#include "tw_log.h"
#include "tw_migrate.h"
#include "tw_store_ops.h"
#include "tw_time.h"
#include "upstream_stats.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sets res to the JSON text of body (taken). */
static void reply_json(tw_httpd_response *res, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        tw_httpd_reply(res, 500, "{\"error\":\"out of memory\"}\n");
        return;
    }
    tw_httpd_reply(res, status, "%s\n", text);
    free(text);
}

void tw_httpd_health(void *ctx, const tw_httpd_request *req, tw_httpd_response *res)
{
    tw_app *app = ctx;
    (void)req;
    if (tw_engine_shutting_down(tw_ops_engine(app->ops)))
        tw_httpd_reply(res, 503, "{\"status\":\"shutting_down\"}\n");
    else
        tw_httpd_reply(res, 200, "{\"status\":\"healthy\"}\n");
}

void tw_httpd_health_db(void *ctx, const tw_httpd_request *req, tw_httpd_response *res)
{
    tw_app *app = ctx;
    tw_err err = tw_store_probe(app->store, app->cfg->data_dir);
    if (err == TW_OK) {
        tw_httpd_reply(res, 200, "{\"database\":\"connected\"}\n");
        return;
    }
    tw_log(TW_LOG_ERROR, "/health/db: store probe failed",
           json_pack("{s:s, s:s}", "detail", tw_store_last_error(), "request_id", req->request_id));
    tw_httpd_reply(res, 503, "{\"database\":\"disconnected\"}\n");
}

/* ISO 8601 UTC of a Unix time in ms; null for 0. */
static json_t *time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char text[40];
    gmtime_r(&secs, &tm);
    size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(text + n, sizeof text - n, ".%03dZ", (int)(ms % 1000));
    return json_string(text);
}

static json_t *probe_json(const tw_probe *p)
{
    return json_pack("{s:s, s:o, s:f, s:s}", "status", p->ok ? "ok" : "failing", "checked",
                     time_json(p->checked_ms), "took_ms", p->took_ms, "error", p->error);
}

static json_t *store_json(tw_app *app, bool *ok)
{
    tw_probe probe;
    tw_ops_store_probe(app->ops, &probe);
    *ok = probe.ok;
    static const struct {
        const char *key, *property;
    } sizes[] = {
        {"size_bytes", "rocksdb.total-sst-files-size"},
        {"memtable_bytes", "rocksdb.cur-size-all-mem-tables"},
        {"pending_compaction_bytes", "rocksdb.estimate-pending-compaction-bytes"},
        {"estimated_keys", "rocksdb.estimate-num-keys"},
    };
    json_t *out = probe_json(&probe);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t v = 0;
        if (tw_store_property_sum(app->store, sizes[i].property, &v) == TW_OK)
            json_object_set_new(out, sizes[i].key, json_integer((json_int_t)v));
    }
    json_object_set_new(out, "writes_failing", json_boolean(tw_store_writes_failing(app->store)));
    tw_arena *arena = tw_arena_new(1024);
    tw_migration_status *rows;
    size_t n = 0, applied = 0;
    if (arena &&
        tw_store_migrate_status(app->store, &tw_store_migrations, arena, &rows, &n) == TW_OK)
        for (size_t i = 0; i < n; i++)
            applied += rows[i].applied;
    tw_arena_free(arena);
    json_object_set_new(
        out, "migrations",
        json_pack("{s:i, s:i}", "applied", (int)applied, "known", (int)tw_store_migrations.count));
    tw_backup_status b;
    tw_ops_backup_status(app->ops, &b);
    json_object_set_new(
        out, "last_backup",
        json_pack("{s:o, s:s, s:s, s:s, s:i, s:I, s:I}", "time", time_json(b.time_ms), "result",
                  b.time_ms == 0 ? "none"
                  : b.ok         ? "ok"
                                 : "failed",
                  "error", b.error, "directory", b.directory, "id", (int)b.id, "db_bytes",
                  (json_int_t)b.db_bytes, "audio_files", (json_int_t)b.audio_files));
    return out;
}

struct job_types {
    json_t *types;
    int64_t now_ms; /* the store's clock, which due times are on */
};

static void add_job_type(void *ctx, const char *type, const tw_job_queue_stats *s)
{
    struct job_types *j = ctx;
    int64_t age_ms = s->oldest_due_ms ? j->now_ms - s->oldest_due_ms : 0;
    json_object_set_new(j->types, type,
                        json_pack("{s:I, s:I, s:f, s:I, s:b}", "queued", (json_int_t)s->queued,
                                  "due", (json_int_t)s->due, "oldest_due_age_s",
                                  (double)age_ms / 1000.0, "dead", (json_int_t)s->dead, "capped",
                                  s->capped));
}

static json_t *jobs_json(tw_app *app)
{
    json_t *types = json_object();
    struct job_types j = {types, tw_store_now_ms(app->store)};
    if (tw_store_job_stats(app->store, j.now_ms, add_job_type, &j) != TW_OK)
        return json_pack("{s:s, s:o}", "error", tw_store_last_error(), "types", types);
    json_int_t queued = 0, dead = 0;
    double oldest = 0;
    const char *type;
    json_t *row;
    json_object_foreach(types, type, row)
    {
        queued += json_integer_value(json_object_get(row, "queued"));
        dead += json_integer_value(json_object_get(row, "dead"));
        double age = json_real_value(json_object_get(row, "oldest_due_age_s"));
        oldest = age > oldest ? age : oldest;
    }
    return json_pack("{s:I, s:f, s:I, s:o}", "depth", queued, "oldest_due_age_s", oldest, "failed",
                     dead, "types", types);
}

/* One provider: configured or not, its breaker, and what its calls did. */
static json_t *provider_json(const char *service, bool configured, const char *breaker)
{
    tw_upstream_stats s;
    bool called = tw_upstream_get(service, &s);
    json_t *out =
        json_pack("{s:b, s:s}", "configured", configured, "breaker", breaker ? breaker : "none");
    json_object_set_new(out, "calls", json_integer(called ? (json_int_t)s.calls : 0));
    json_object_set_new(out, "failures", json_integer(called ? (json_int_t)s.failures : 0));
    json_object_set_new(out, "last_error", json_string(called ? s.last_error : ""));
    json_object_set_new(out, "last_error_time", time_json(called ? s.last_error_ms : 0));
    return out;
}

void tw_httpd_health_detailed(void *ctx, const tw_httpd_request *req, tw_httpd_response *res)
{
    tw_app *app = ctx;
    (void)req;
    const tw_config *cfg = app->cfg;
    bool store_ok;
    json_t *store = store_json(app, &store_ok);
    tw_probe blob_probe;
    tw_ops_blob_probe(app->ops, &blob_probe);
    json_t *blobs = probe_json(&blob_probe);
    json_object_set_new(blobs, "backend",
                        json_string(cfg->blob_backend == TW_BLOB_BACKEND_S3 ? "s3" : "fs"));
    const char *breaker = app->deepgram ? tw_deepgram_breaker_state(app->deepgram) : NULL;
    json_t *providers = json_pack(
        "{s:o, s:o}", "deepgram", provider_json("deepgram", app->deepgram != NULL, breaker), "s3",
        provider_json("s3", cfg->blob_backend == TW_BLOB_BACKEND_S3 || cfg->backup_upload, NULL));
    char message[TW_MAINTENANCE_MESSAGE_MAX + 1] = "";
    bool maintenance = tw_auth_maintenance(app->auth, message, sizeof message);
    tw_backup_status backup;
    tw_ops_backup_status(app->ops, &backup);
    bool shutting_down = tw_engine_shutting_down(tw_ops_engine(app->ops));
    bool degraded = !blob_probe.ok || (breaker && strcmp(breaker, "closed") != 0) ||
                    (backup.time_ms != 0 && !backup.ok) || tw_store_writes_failing(app->store);
    const char *status = !store_ok || shutting_down ? "unhealthy"
                         : degraded                 ? "degraded"
                                                    : "healthy";
    json_t *body =
        json_pack("{s:s, s:s, s:o, s:f, s:{s:b, s:s}, s:o, s:o, s:o, s:o}", "status", status,
                  "version", TW_VERSION, "started", time_json(tw_ops_start_ms(app->ops)),
                  "uptime_s", (double)(tw_wall_ms() - tw_ops_start_ms(app->ops)) / 1000.0,
                  "maintenance", "enabled", maintenance, "message", message, "store", store,
                  "blob_storage", blobs, "job_queue", jobs_json(app), "providers", providers);
    reply_json(res, store_ok && !shutting_down ? 200 : 503, body);
}
