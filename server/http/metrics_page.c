/*
 * /metrics in Prometheus's text format (version 0.0.4). Everything is read
 * when scraped, nothing is counted here:
 *  - gRPC calls from the engine's per-thread counters (rpc/metrics.h): by
 *    service, method, code and class (ok, client_error, server_error: the
 *    runbook's 4xx and 5xx), latency histograms, in-flight calls, bytes;
 *  - HTTP requests by route and class (http_server.h);
 *  - the store: its probe, sizes and RocksDB's own statistics (read and
 *    write timings among them) as tw_rocksdb_* series;
 *  - the job queue, outside services (upstream_stats.h, the Deepgram
 *    breaker), the last backup, the process (memory, open files, CPU);
 *  - the runbook's business metrics from the store's day-bucketed counters
 *    (tw_counter.h): running totals, the days before today cached once a
 *    day (ops.h), today's bucket read at every scrape; and gauges of the
 *    current hour read from hourly buckets.
 */
#include "routes.h"

#include "auth/auth.h"
#include "deepgram.h"
#include "ops/ops.h"
#include "rpc/engine.h"
#include "rpc/metrics.h"
#include "tw_counter.h"
#include "tw_store_ops.h"
#include "tw_time.h"
#include "upstream_stats.h"

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* gRPC's code names, and which side each outcome is blamed on: the
 * runbook's 4xx (the caller's request) and 5xx (ours). */
static const struct {
    const char *name;
    const char *class;
} codes[TW_RPC_CODES] = {
    {"OK", "ok"},
    {"CANCELLED", "client_error"},
    {"UNKNOWN", "server_error"},
    {"INVALID_ARGUMENT", "client_error"},
    {"DEADLINE_EXCEEDED", "server_error"},
    {"NOT_FOUND", "client_error"},
    {"ALREADY_EXISTS", "client_error"},
    {"PERMISSION_DENIED", "client_error"},
    {"RESOURCE_EXHAUSTED", "client_error"},
    {"FAILED_PRECONDITION", "client_error"},
    {"ABORTED", "client_error"},
    {"OUT_OF_RANGE", "client_error"},
    {"UNIMPLEMENTED", "client_error"},
    {"INTERNAL", "server_error"},
    {"UNAVAILABLE", "server_error"},
    {"DATA_LOSS", "server_error"},
    {"UNAUTHENTICATED", "client_error"},
};

/*
 * The runbook's "Business Metrics" that features count (the counter names
 * are those their writers use). Dimensions become labels: "type=sleep"
 * is {type="sleep"}. Badge unlocks, social interactions, student
 * verifications, subscription conversions, payment success, MRR and churn
 * get a row each as those features land.
 */
static const struct {
    const char *counter, *metric, *help;
} business[] = {
    {"registrations", "tw_registrations_total", "Accounts created (sign-ups and admin-made)."},
    {"account_deletions", "tw_account_deletions_total", "Accounts deleted."},
    {"tasks_created", "tw_tasks_created_total", "Tasks created."},
    {"task_completions", "tw_task_completions_total",
     "Task completions (reopening one takes it back)."},
    {"health_log_entries", "tw_health_log_entries_total", "Health log entries stored, by type."},
    {"focus_sessions", "tw_focus_sessions_total",
     "Focus sessions ended, by template and outcome (completed, abandoned)."},
    {"focus_focused_seconds", "tw_focus_focused_seconds_total",
     "Seconds focused in ended focus sessions, by template and outcome."},
    {"focus_distractions", "tw_focus_distractions_total", "Distractions recorded, by type."},
    {"voice_note_uploads", "tw_voice_note_uploads_total", "Voice notes uploaded, by format."},
    {"voice_transcriptions", "tw_voice_transcriptions_total",
     "Voice note transcriptions ended, by status (transcribed, failed)."},
    {"billing_payments", "tw_payments_total",
     "Payments by status: succeeded charges and failed attempts."},
    {"billing_refunds", "tw_refunds_total", "Refunds made."},
    {"billing_new_subscriptions", "tw_subscriptions_started_total",
     "Subscriptions that became live, by plan."},
    {"billing_cancellations", "tw_subscription_cancellations_total",
     "Subscriptions that ended (canceled or suspended), by plan."},
    {"billing_subscription_creations", "tw_subscription_creations_total",
     "Subscription creations ended, by result: succeeded (Stripe made it) or failed (refused "
     "for good, or died with its process and made nothing)."},
    {"billing_webhook_events", "tw_stripe_webhooks_total",
     "Stripe webhook events by type and outcome: received, then processed, ignored or failed "
     "(a first failed try)."},
};

/*
 * Gauges of the current UTC hour: a counter whose features keep one
 * bucket per hour ("hour=HH" of the day), read for the hour now.
 */
static const struct {
    const char *counter, *metric, *help;
} hourly[] = {
    {"billing_payment_failures_max_per_user", "tw_payment_failed_attempts_max_per_user_1h",
     "The most failed payment attempts of any one user in the current UTC hour."},
};

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newlines escaped. */
static void label_value(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(out, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

/* ---- gRPC calls ------------------------------------------------------------ */

struct method_row {
    char service[128];
    char method[128];
    const char *kind; /* unary, client_stream, server_stream, bidi_stream */
    tw_rpc_method_stats stats;
};

/* A call's kind as a label: only unary latencies say how fast twd
 * answers (a stream's time is as long as the client keeps it). */
static const char *const kind_labels[] = {
    [TW_UNARY] = "unary",
    [TW_CLIENT_STREAM] = "client_stream",
    [TW_SERVER_STREAM] = "server_stream",
    [TW_BIDI_STREAM] = "bidi_stream",
};

struct method_rows {
    struct method_row *rows;
    size_t count;
    tw_rpc_metrics *metrics;
};

static void collect_method(void *ctx, const char *path, const tw_method *m)
{
    struct method_rows *r = ctx;
    struct method_row *row = &r->rows[r->count];
    const char *slash = strrchr(path, '/');
    snprintf(row->service, sizeof row->service, "%.*s", (int)(slash - path - 1), path + 1);
    snprintf(row->method, sizeof row->method, "%s", slash + 1);
    row->kind = kind_labels[m->kind];
    tw_rpc_metrics_read(r->metrics, r->count, &row->stats);
    r->count++;
}

static void method_labels(FILE *out, const struct method_row *row)
{
    fprintf(out, "service=\"%s\",method=\"%s\",kind=\"%s\"", row->service, row->method, row->kind);
}

static void write_rpc(FILE *out, tw_engine *engine)
{
    tw_rpc_metrics *metrics = tw_engine_metrics(engine);
    size_t slots = tw_rpc_metrics_slots(metrics);
    struct method_rows r = {calloc(slots, sizeof *r.rows), 0, metrics};
    if (r.rows == NULL)
        return;
    tw_engine_each_method(engine, collect_method, &r);
    /* The last slot: methods nobody registered. */
    snprintf(r.rows[r.count].service, sizeof r.rows[r.count].service, "unknown");
    snprintf(r.rows[r.count].method, sizeof r.rows[r.count].method, "unknown");
    r.rows[r.count].kind = "unary";
    tw_rpc_metrics_read(metrics, r.count, &r.rows[r.count].stats);
    r.count++;

    uint64_t in_flight = 0;
    family(out, "tw_grpc_server_started_total", "counter", "gRPC calls that arrived.");
    for (size_t i = 0; i < r.count; i++) {
        const tw_rpc_method_stats *s = &r.rows[i].stats;
        uint64_t ended = 0;
        for (int c = 0; c < TW_RPC_CODES; c++)
            ended += s->ended[c];
        in_flight += s->started > ended ? s->started - ended : 0;
        if (s->started == 0)
            continue;
        fputs("tw_grpc_server_started_total{", out);
        method_labels(out, &r.rows[i]);
        fprintf(out, "} %llu\n", (unsigned long long)s->started);
    }
    family(out, "tw_grpc_server_handled_total", "counter",
           "gRPC calls ended, by the status the client saw and its class.");
    for (size_t i = 0; i < r.count; i++) {
        for (int c = 0; c < TW_RPC_CODES; c++) {
            if (r.rows[i].stats.ended[c] == 0)
                continue;
            fputs("tw_grpc_server_handled_total{", out);
            method_labels(out, &r.rows[i]);
            fprintf(out, ",code=\"%s\",class=\"%s\"} %llu\n", codes[c].name, codes[c].class,
                    (unsigned long long)r.rows[i].stats.ended[c]);
        }
    }
    family(out, "tw_grpc_server_handling_seconds", "histogram",
           "Time from a call's arrival to its release, by method.");
    for (size_t i = 0; i < r.count; i++) {
        const tw_rpc_method_stats *s = &r.rows[i].stats;
        uint64_t cumulative = 0;
        for (int b = 0; b <= TW_RPC_LATENCY_BUCKETS; b++)
            cumulative += s->latency[b];
        if (cumulative == 0)
            continue;
        cumulative = 0;
        for (int b = 0; b <= TW_RPC_LATENCY_BUCKETS; b++) {
            cumulative += s->latency[b];
            fputs("tw_grpc_server_handling_seconds_bucket{", out);
            method_labels(out, &r.rows[i]);
            if (b < TW_RPC_LATENCY_BUCKETS)
                fprintf(out, ",le=\"%g\"} %llu\n", tw_rpc_latency_bounds_s[b],
                        (unsigned long long)cumulative);
            else
                fprintf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
        }
        fputs("tw_grpc_server_handling_seconds_sum{", out);
        method_labels(out, &r.rows[i]);
        fprintf(out, "} %.9f\n", (double)s->latency_sum_ns / 1e9);
        fputs("tw_grpc_server_handling_seconds_count{", out);
        method_labels(out, &r.rows[i]);
        fprintf(out, "} %llu\n", (unsigned long long)cumulative);
    }
    static const struct {
        const char *name, *help;
        size_t offset;
    } bytes[] = {
        {"tw_grpc_server_received_bytes_total", "Request message bytes received, by method.",
         offsetof(tw_rpc_method_stats, bytes_in)},
        {"tw_grpc_server_sent_bytes_total", "Response message bytes sent, by method.",
         offsetof(tw_rpc_method_stats, bytes_out)},
    };
    for (size_t k = 0; k < sizeof bytes / sizeof bytes[0]; k++) {
        family(out, bytes[k].name, "counter", bytes[k].help);
        for (size_t i = 0; i < r.count; i++) {
            if (r.rows[i].stats.started == 0)
                continue;
            fprintf(out, "%s{", bytes[k].name);
            method_labels(out, &r.rows[i]);
            fprintf(out, "} %llu\n",
                    (unsigned long long)*(const uint64_t *)((const char *)&r.rows[i].stats +
                                                            bytes[k].offset));
        }
    }
    family(out, "tw_grpc_server_in_flight_calls", "gauge", "gRPC calls arrived and not released.");
    fprintf(out, "tw_grpc_server_in_flight_calls %llu\n", (unsigned long long)in_flight);
    free(r.rows);
}

/* ---- HTTP -------------------------------------------------------------------- */

static void write_http(FILE *out, tw_httpd_server *http)
{
    static const char *const classes[] = {"ok", "client_error", "server_error"};
    family(out, "tw_http_requests_total", "counter", "HTTP requests answered, by route and class.");
    size_t n = 0;
    while (tw_httpd_routes[n].method != NULL)
        n++;
    for (size_t i = 0; i <= n; i++) {
        uint64_t counts[3];
        tw_httpd_counts(http, i, counts);
        for (int c = 0; c < 3; c++) {
            if (counts[c] == 0)
                continue;
            fputs("tw_http_requests_total{path=\"", out);
            label_value(out, i < n ? tw_httpd_routes[i].path : "other");
            fprintf(out, "\",class=\"%s\"} %llu\n", classes[c], (unsigned long long)counts[c]);
        }
    }
}

/* ---- the store ------------------------------------------------------------- */

/* A RocksDB statistics name as a metric name: "rocksdb.db.get.micros" ->
 * "tw_rocksdb_db_get" + the unit suffix the caller adds. */
static void rocks_name(const char *name, size_t len, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "tw_");
    for (size_t i = 0; i < len && n + 1 < cap; i++, n++)
        out[n] = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ? name[i]
                                                                                          : '_';
    out[n] = '\0';
}

/* "NAME COUNT : n" (a counter) or "NAME P50 : x P95 : x P99 : x P100 : x
 * COUNT : n SUM : s" (a histogram; the ".micros" ones become seconds). */
static void write_rocks_line(FILE *out, const char *line)
{
    const char *space = strchr(line, ' ');
    if (space == NULL || strncmp(line, "rocksdb.", 8) != 0)
        return;
    char metric[160];
    double p50, p95, p99, p100, sum;
    unsigned long long count;
    size_t len = (size_t)(space - line);
    if (sscanf(space, " P50 : %lf P95 : %lf P99 : %lf P100 : %lf COUNT : %llu SUM : %lf", &p50,
               &p95, &p99, &p100, &count, &sum) == 6) {
        bool micros = len > 7 && strncmp(line + len - 7, ".micros", 7) == 0;
        rocks_name(line, micros ? len - 7 : len, metric, sizeof metric);
        double scale = micros ? 1e-6 : 1;
        if (micros)
            strncat(metric, "_seconds", sizeof metric - strlen(metric) - 1);
        family(out, metric, "summary", "RocksDB's own statistics histogram.");
        const double qs[] = {0.5, 0.95, 0.99, 1}, vs[] = {p50, p95, p99, p100};
        for (int i = 0; i < 4; i++)
            fprintf(out, "%s{quantile=\"%g\"} %g\n", metric, qs[i], vs[i] * scale);
        fprintf(out, "%s_sum %g\n%s_count %llu\n", metric, sum * scale, metric, count);
    } else if (sscanf(space, " COUNT : %llu", &count) == 1) {
        rocks_name(line, len, metric, sizeof metric);
        strncat(metric, "_total", sizeof metric - strlen(metric) - 1);
        family(out, metric, "counter", "RocksDB's own statistics counter.");
        fprintf(out, "%s %llu\n", metric, count);
    }
}

static void write_store(FILE *out, tw_app *app)
{
    tw_probe probe;
    tw_ops_store_probe(app->ops, &probe);
    family(out, "tw_store_up", "gauge", "1 when the store answered its last probe (a real read).");
    fprintf(out, "tw_store_up %d\n", probe.ok);
    family(out, "tw_store_writes_failing", "gauge",
           "1 after a commit failed for a storage reason (a full disk) until one succeeds.");
    fprintf(out, "tw_store_writes_failing %d\n", tw_store_writes_failing(app->store));
    static const struct {
        const char *metric, *property, *help;
    } props[] = {
        {"tw_store_sst_bytes", "rocksdb.total-sst-files-size", "Bytes of table files."},
        {"tw_store_memtable_bytes", "rocksdb.cur-size-all-mem-tables", "Bytes in memtables."},
        {"tw_store_pending_compaction_bytes", "rocksdb.estimate-pending-compaction-bytes",
         "Bytes compaction still has to rewrite (RocksDB's estimate)."},
        {"tw_store_estimated_keys", "rocksdb.estimate-num-keys", "Keys (RocksDB's estimate)."},
        {"tw_store_running_compactions", "rocksdb.num-running-compactions",
         "Compactions running now."},
    };
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
        uint64_t v;
        if (tw_store_property_sum(app->store, props[i].property, &v) != TW_OK)
            continue;
        family(out, props[i].metric, "gauge", props[i].help);
        fprintf(out, "%s %llu\n", props[i].metric, (unsigned long long)v);
    }
    char *stats = tw_store_statistics(app->store);
    for (char *line = stats, *next; line != NULL && *line; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        write_rocks_line(out, line);
    }
    free(stats);
}

/* ---- jobs, providers, backups, the process --------------------------------------- */

struct job_rows {
    FILE *out;
    int pass; /* which family is being written */
    int64_t now_ms;
};

static void write_job_type(void *ctx, const char *type, const tw_job_queue_stats *s)
{
    struct job_rows *j = ctx;
    double value = j->pass == 0   ? (double)s->queued
                   : j->pass == 1 ? (double)s->due
                   : j->pass == 2
                       ? (s->oldest_due_ms ? (double)(j->now_ms - s->oldest_due_ms) / 1e3 : 0)
                       : (double)s->dead;
    static const char *const names[] = {"tw_jobs_queued", "tw_jobs_due",
                                        "tw_jobs_oldest_due_age_seconds", "tw_jobs_dead"};
    fprintf(j->out, "%s{type=\"", names[j->pass]);
    label_value(j->out, type);
    fprintf(j->out, "\"} %g\n", value);
}

static void write_jobs(FILE *out, tw_app *app)
{
    static const char *const help[][2] = {
        {"tw_jobs_queued", "Jobs not dead (waiting, due or running), by type."},
        {"tw_jobs_due", "Jobs due now or overdue (a run whose lease ran out included), by type."},
        {"tw_jobs_oldest_due_age_seconds", "How long the longest-due job has waited, by type."},
        {"tw_jobs_dead", "Jobs dead-lettered after their last attempt, by type."},
    };
    struct job_rows j = {out, 0, tw_wall_ms()};
    for (j.pass = 0; j.pass < 4; j.pass++) {
        family(out, help[j.pass][0], "gauge", help[j.pass][1]);
        tw_store_job_stats(app->store, j.now_ms, write_job_type, &j);
    }
}

static void write_upstream_one(void *ctx, const tw_upstream_stats *s)
{
    FILE *out = ctx;
    fprintf(out, "tw_upstream_requests_total{service=\"%s\"} %llu\n", s->service,
            (unsigned long long)s->calls);
}

static void write_upstream_failures(void *ctx, const tw_upstream_stats *s)
{
    FILE *out = ctx;
    fprintf(out, "tw_upstream_failures_total{service=\"%s\"} %llu\n", s->service,
            (unsigned long long)s->failures);
}

static void write_upstream_latency(void *ctx, const tw_upstream_stats *s)
{
    FILE *out = ctx;
    uint64_t cumulative = 0;
    for (int b = 0; b <= TW_UPSTREAM_LATENCY_BUCKETS; b++) {
        cumulative += s->latency[b];
        if (b < TW_UPSTREAM_LATENCY_BUCKETS)
            fprintf(out, "tw_upstream_request_seconds_bucket{service=\"%s\",le=\"%g\"} %llu\n",
                    s->service, tw_upstream_latency_bounds_s[b], (unsigned long long)cumulative);
        else
            fprintf(out, "tw_upstream_request_seconds_bucket{service=\"%s\",le=\"+Inf\"} %llu\n",
                    s->service, (unsigned long long)cumulative);
    }
    fprintf(out, "tw_upstream_request_seconds_sum{service=\"%s\"} %.6f\n", s->service,
            s->latency_sum_s);
    fprintf(out, "tw_upstream_request_seconds_count{service=\"%s\"} %llu\n", s->service,
            (unsigned long long)cumulative);
}

static void write_providers(FILE *out, tw_app *app)
{
    family(out, "tw_upstream_requests_total", "counter",
           "Requests to outside services (retries within one included once).");
    tw_upstream_each(write_upstream_one, out);
    family(out, "tw_upstream_failures_total", "counter",
           "Requests to outside services that got no answer, or 429 / 5xx, in the end.");
    tw_upstream_each(write_upstream_failures, out);
    family(out, "tw_upstream_request_seconds", "histogram",
           "Time of requests to outside services, retries included.");
    tw_upstream_each(write_upstream_latency, out);
    family(out, "tw_upstream_circuit_state", "gauge",
           "1 for the state each outside service's circuit breaker is in.");
    if (app->deepgram != NULL) {
        const char *state = tw_deepgram_breaker_state(app->deepgram);
        static const char *const states[] = {"closed", "open", "half_open"};
        for (int i = 0; i < 3; i++)
            fprintf(out, "tw_upstream_circuit_state{service=\"deepgram\",state=\"%s\"} %d\n",
                    states[i], strcmp(state, states[i]) == 0);
    }
}

static void write_backup(FILE *out, tw_app *app)
{
    tw_backup_status b;
    tw_ops_backup_status(app->ops, &b);
    family(out, "tw_backups_total", "counter", "Backups taken since start-up, by result.");
    fprintf(out, "tw_backups_total{result=\"ok\"} %llu\n", (unsigned long long)b.ok_count);
    fprintf(out, "tw_backups_total{result=\"failed\"} %llu\n", (unsigned long long)b.failed_count);
    if (b.time_ms == 0)
        return;
    family(out, "tw_backup_last_timestamp_seconds", "gauge", "When the last backup finished.");
    fprintf(out, "tw_backup_last_timestamp_seconds %.3f\n", (double)b.time_ms / 1e3);
    family(out, "tw_backup_last_success", "gauge", "1 when the last backup succeeded.");
    fprintf(out, "tw_backup_last_success %d\n", b.ok);
    family(out, "tw_backup_last_audio_bytes_copied", "gauge",
           "Audio bytes the last backup copied (recordings it had already are not copied).");
    fprintf(out, "tw_backup_last_audio_bytes_copied %llu\n",
            (unsigned long long)b.audio_bytes_copied);
}

/* The value of a "Name:   123 kB" line of /proc/self/status, in bytes. */
static uint64_t status_kb(const char *status, const char *name)
{
    const char *p = strstr(status, name);
    return p ? strtoull(p + strlen(name), NULL, 10) * 1024 : 0;
}

/* The cgroup v2 memory limit when there is one (a container's), else the
 * machine's memory, in bytes: what "memory usage > 80%" is measured by. */
static uint64_t memory_limit(void)
{
    char text[64] = "";
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    if (f != NULL) {
        if (fgets(text, sizeof text, f) == NULL)
            text[0] = '\0';
        fclose(f);
    }
    if (text[0] >= '0' && text[0] <= '9')
        return strtoull(text, NULL, 10);
    char meminfo[512] = "";
    if ((f = fopen("/proc/meminfo", "r")) != NULL) {
        size_t n = fread(meminfo, 1, sizeof meminfo - 1, f);
        meminfo[n] = '\0';
        fclose(f);
    }
    return status_kb(meminfo, "MemTotal:");
}

static void write_process(FILE *out, tw_app *app)
{
    char status[8192] = "";
    FILE *f = fopen("/proc/self/status", "r");
    if (f != NULL) {
        size_t n = fread(status, 1, sizeof status - 1, f);
        status[n] = '\0';
        fclose(f);
    }
    family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    fprintf(out, "process_resident_memory_bytes %llu\n",
            (unsigned long long)status_kb(status, "VmRSS:"));
    family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    fprintf(out, "process_virtual_memory_bytes %llu\n",
            (unsigned long long)status_kb(status, "VmSize:"));
    family(out, "tw_process_peak_resident_memory_bytes", "gauge",
           "Largest resident memory size so far, in bytes.");
    fprintf(out, "tw_process_peak_resident_memory_bytes %llu\n",
            (unsigned long long)status_kb(status, "VmHWM:"));
    family(out, "tw_process_memory_limit_bytes", "gauge",
           "Memory twd may use: its cgroup's memory.max, else the machine's memory.");
    fprintf(out, "tw_process_memory_limit_bytes %llu\n", (unsigned long long)memory_limit());
    unsigned long long fds = 0;
    DIR *d = opendir("/proc/self/fd");
    while (d != NULL && readdir(d) != NULL)
        fds++;
    if (d != NULL)
        closedir(d);
    family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
    fprintf(out, "process_open_fds %llu\n", fds > 3 ? fds - 3 : 0); /* ., .. and the dir's own */
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        fprintf(out, "process_max_fds %llu\n", (unsigned long long)lim.rlim_cur);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        family(out, "process_cpu_seconds_total", "counter", "User and system CPU time, seconds.");
        fprintf(out, "process_cpu_seconds_total %.6f\n",
                (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    }
    family(out, "process_start_time_seconds", "gauge", "When twd started serving, Unix seconds.");
    fprintf(out, "process_start_time_seconds %.3f\n", (double)tw_ops_start_ms(app->ops) / 1e3);
    family(out, "tw_build_info", "gauge", "twd's version and the gRPC core it runs on.");
    fprintf(out, "tw_build_info{version=\"%s\",grpc_core=\"%s\"} 1\n", TW_VERSION,
            tw_engine_grpc_version());
    family(out, "tw_maintenance_mode", "gauge", "1 while maintenance mode is on.");
    fprintf(out, "tw_maintenance_mode %d\n", tw_auth_maintenance(app->auth, NULL, 0));
}

/* ---- business counters --------------------------------------------------------- */

struct series {
    char *dims;
    uint64_t value;
};

struct series_list {
    struct series *items;
    size_t count, cap;
};

static tw_err add_series(void *ctx, const char *dims, uint64_t total)
{
    struct series_list *l = ctx;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct series *grown = realloc(l->items, cap * sizeof *grown);
        if (grown == NULL)
            return TW_ERR_NO_MEMORY;
        l->items = grown;
        l->cap = cap;
    }
    if ((l->items[l->count].dims = strdup(dims)) == NULL)
        return TW_ERR_NO_MEMORY;
    l->items[l->count++].value = total;
    return TW_OK;
}

struct fill_cache {
    tw_ops *ops;
    const char *name;
    uint32_t today;
};

static tw_err cache_before(void *ctx, const char *dims, uint64_t total)
{
    struct fill_cache *f = ctx;
    tw_ops_counter_cache_put(f->ops, f->name, dims, f->today, total);
    return TW_OK;
}

/* "a=b,c=d" as Prometheus labels: a="b",c="d". */
static void dims_labels(FILE *out, const char *dims)
{
    while (*dims) {
        size_t key = strcspn(dims, "=,");
        if (dims[key] != '=')
            return;
        fprintf(out, "%.*s=\"", (int)key, dims);
        dims += key + 1;
        size_t vlen = strcspn(dims, ",");
        char value[128];
        snprintf(value, sizeof value, "%.*s", (int)vlen, dims);
        label_value(out, value);
        fputc('"', out);
        dims += vlen;
        if (*dims == ',') {
            fputc(',', out);
            dims++;
        }
    }
}

static void write_business(FILE *out, tw_app *app)
{
    uint32_t today = tw_store_day(tw_wall_ms());
    for (size_t i = 0; i < sizeof business / sizeof business[0]; i++) {
        struct series_list today_counts = {0};
        const char *name = business[i].counter;
        if (tw_store_counter_series(app->store, NULL, name, today, today, add_series,
                                    &today_counts) != TW_OK) {
            goto next;
        }
        bool cached = true;
        for (size_t k = 0; k < today_counts.count && cached; k++) {
            uint64_t before;
            cached = tw_ops_counter_cache_get(app->ops, name, today_counts.items[k].dims, today,
                                              &before);
        }
        struct fill_cache fill = {app->ops, name, today};
        if (!cached && today > 0 &&
            tw_store_counter_series(app->store, NULL, name, 0, today - 1, cache_before, &fill) !=
                TW_OK)
            goto next;
        family(out, business[i].metric, "counter", business[i].help);
        for (size_t k = 0; k < today_counts.count; k++) {
            uint64_t before = 0;
            tw_ops_counter_cache_get(app->ops, name, today_counts.items[k].dims, today, &before);
            const char *dims = today_counts.items[k].dims;
            fputs(business[i].metric, out);
            if (dims[0] != '\0') {
                fputc('{', out);
                dims_labels(out, dims);
                fputc('}', out);
            }
            fprintf(out, " %llu\n", (unsigned long long)(before + today_counts.items[k].value));
        }
    next:
        for (size_t k = 0; k < today_counts.count; k++)
            free(today_counts.items[k].dims);
        free(today_counts.items);
    }
}

static void write_hourly(FILE *out, tw_app *app)
{
    int64_t now_ms = tw_wall_ms();
    char dims[16];
    snprintf(dims, sizeof dims, "hour=%02d",
             (int)(now_ms / 3600000 % 24)); /* UTC hour of the day */
    for (size_t i = 0; i < sizeof hourly / sizeof hourly[0]; i++) {
        uint64_t value = 0;
        tw_counter ctr = {NULL, hourly[i].counter, dims};
        if (tw_store_counter_read(app->store, &ctr, tw_store_day(now_ms), 1, NULL, &value))
            continue;
        family(out, hourly[i].metric, "gauge", hourly[i].help);
        fprintf(out, "%s %llu\n", hourly[i].metric, (unsigned long long)value);
    }
}

void tw_httpd_metrics(void *ctx, const tw_httpd_request *req, tw_httpd_response *res)
{
    tw_app *app = ctx;
    (void)req;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL) {
        tw_httpd_reply(res, 500, "{\"error\":\"out of memory\"}\n");
        return;
    }
    write_rpc(out, tw_ops_engine(app->ops));
    write_http(out, tw_ops_http(app->ops));
    write_store(out, app);
    write_jobs(out, app);
    write_providers(out, app);
    write_backup(out, app);
    write_process(out, app);
    write_business(out, app);
    write_hourly(out, app);
    fclose(out);
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    res->body = text;
    res->body_len = len;
}
