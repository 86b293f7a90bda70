/* The operations state of ops.h: probes, the backup schedule's thread, the
 * HTTP server and what /metrics caches between scrapes. */
#include "ops.h"

#include "backup.h"
#include "http/http_server.h"
#include "tw_log.h"
#include "tw_store_ops.h"
#include "tw_time.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_PROBE_EVERY_MS 1000
#define BLOB_PROBE_EVERY_MS  10000
/* A blob key nothing stores (keys of audio are "<user>/<note>"). */
#define BLOB_PROBE_KEY "health-probe"

struct cached_total {
    struct cached_total *next;
    uint32_t day;
    uint64_t before;
    char key[]; /* "name\0dims" */
};

struct tw_ops {
    tw_app *app;
    struct tw_engine *engine;
    void (*store_health)(bool ok);
    struct tw_httpd_server *http;
    int64_t start_ms;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    bool stopping;
    tw_probe store, blobs;
    tw_backup_status backup;
    struct cached_total *totals;

    pthread_t prober, scheduler;
    bool prober_running, scheduler_running;
};

/* Waits until ms have passed or the ops stop; false when stopping. The
 * lock must be held. */
static bool sleep_locked(tw_ops *ops, int64_t ms)
{
    struct timespec until = tw_mono_deadline(ms);
    while (!ops->stopping && pthread_cond_timedwait(&ops->wake, &ops->lock, &until) == 0)
        ;
    return !ops->stopping;
}

static void probe_store(tw_ops *ops)
{
    tw_probe p = {.checked_ms = tw_wall_ms()};
    int64_t start = tw_mono_ns();
    p.ok = tw_store_probe(ops->app->store, ops->app->cfg->data_dir) == TW_OK;
    p.took_ms = (double)(tw_mono_ns() - start) / 1e6;
    if (!p.ok)
        snprintf(p.error, sizeof p.error, "%s", tw_store_last_error());
    pthread_mutex_lock(&ops->lock);
    bool changed = ops->store.ok != p.ok || ops->store.checked_ms == 0;
    ops->store = p;
    pthread_mutex_unlock(&ops->lock);
    if (changed) {
        if (ops->store_health != NULL)
            ops->store_health(p.ok);
        if (!p.ok)
            tw_log(TW_LOG_ERROR, "store probe failed", json_pack("{s:s}", "detail", p.error));
        else
            tw_log(TW_LOG_INFO, "store probe ok", NULL);
    }
}

static void probe_blobs(tw_ops *ops)
{
    tw_probe p = {.checked_ms = tw_wall_ms()};
    int64_t start = tw_mono_ns();
    tw_blob_info info;
    tw_err err = tw_blob_stat(ops->app->blobs, BLOB_PROBE_KEY, &info);
    p.ok = err == TW_OK || err == TW_ERR_NOT_FOUND;
    p.took_ms = (double)(tw_mono_ns() - start) / 1e6;
    if (!p.ok)
        snprintf(p.error, sizeof p.error, "%s", tw_store_last_error());
    pthread_mutex_lock(&ops->lock);
    ops->blobs = p;
    pthread_mutex_unlock(&ops->lock);
}

static void *prober_main(void *arg)
{
    tw_ops *ops = arg;
    int64_t next_blob_ms = 0;
    for (;;) {
        probe_store(ops);
        if (tw_wall_ms() >= next_blob_ms) {
            probe_blobs(ops);
            next_blob_ms = tw_wall_ms() + BLOB_PROBE_EVERY_MS;
        }
        pthread_mutex_lock(&ops->lock);
        bool go_on = sleep_locked(ops, STORE_PROBE_EVERY_MS);
        pthread_mutex_unlock(&ops->lock);
        if (!go_on)
            return NULL;
    }
}

/* Scheduled backups: the first one when the last in backup_dir is older
 * than the interval (or there is none), then one per interval. */
static void *scheduler_main(void *arg)
{
    tw_ops *ops = arg;
    const tw_config *cfg = ops->app->cfg;
    int64_t interval_ms = cfg->backup_interval_s * 1000;
    int64_t last_ms = tw_ops_backup_latest_ms(cfg->backup_dir);
    int64_t wait_ms = last_ms > 0 ? last_ms + interval_ms - tw_wall_ms() : 0;
    for (;;) {
        pthread_mutex_lock(&ops->lock);
        bool go_on = wait_ms <= 0 || sleep_locked(ops, wait_ms);
        go_on = go_on && !ops->stopping;
        pthread_mutex_unlock(&ops->lock);
        if (!go_on)
            return NULL;
        tw_backup_status status;
        tw_ops_backup_scheduled(ops->app, &status);
        wait_ms = interval_ms;
    }
}

tw_err tw_ops_start(tw_app *app, struct tw_engine *engine, const struct tw_httpd_route *routes,
                    void (*store_health)(bool ok), const char *tls_cert_pem,
                    const char *tls_key_pem, int *http_port, char *errbuf, size_t errlen)
{
    tw_ops *ops = calloc(1, sizeof *ops);
    if (ops == NULL)
        return TW_ERR_NO_MEMORY;
    ops->app = app;
    ops->engine = engine;
    ops->store_health = store_health;
    ops->start_ms = tw_wall_ms();
    ops->store.ok = true; /* the store opened a moment ago */
    ops->blobs.ok = true;
    pthread_mutex_init(&ops->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ops->wake, &attr);
    pthread_condattr_destroy(&attr);
    app->ops = ops;

    const tw_config *cfg = app->cfg;
    tw_httpd_config hcfg = {
        .listen = cfg->http_listen,
        .tls_cert_pem = tls_cert_pem,
        .tls_key_pem = tls_key_pem,
        .max_connections = (unsigned)cfg->http_max_connections,
        .timeout_s = (unsigned)cfg->http_timeout_s,
    };
    tw_err err = tw_httpd_start(&hcfg, routes, app, &ops->http, http_port, errbuf, errlen);
    if (err == TW_OK && pthread_create(&ops->prober, NULL, prober_main, ops) != 0) {
        snprintf(errbuf, errlen, "cannot start the health prober");
        err = TW_ERR_INTERNAL;
    }
    ops->prober_running = err == TW_OK;
    if (err == TW_OK && cfg->backup_dir != NULL &&
        pthread_create(&ops->scheduler, NULL, scheduler_main, ops) != 0) {
        snprintf(errbuf, errlen, "cannot start the backup schedule");
        err = TW_ERR_INTERNAL;
    }
    ops->scheduler_running = err == TW_OK && cfg->backup_dir != NULL;
    if (err) {
        tw_ops_stop(ops);
        app->ops = NULL;
    }
    return err;
}

void tw_ops_stop(tw_ops *ops)
{
    if (ops == NULL)
        return;
    tw_httpd_stop(ops->http);
    pthread_mutex_lock(&ops->lock);
    ops->stopping = true;
    pthread_cond_broadcast(&ops->wake);
    pthread_mutex_unlock(&ops->lock);
    if (ops->prober_running)
        pthread_join(ops->prober, NULL);
    if (ops->scheduler_running)
        pthread_join(ops->scheduler, NULL);
    while (ops->totals != NULL) {
        struct cached_total *t = ops->totals;
        ops->totals = t->next;
        free(t);
    }
    pthread_cond_destroy(&ops->wake);
    pthread_mutex_destroy(&ops->lock);
    ops->app->ops = NULL;
    free(ops);
}

int64_t tw_ops_start_ms(const tw_ops *ops)
{
    return ops->start_ms;
}

struct tw_engine *tw_ops_engine(const tw_ops *ops)
{
    return ops->engine;
}

struct tw_httpd_server *tw_ops_http(const tw_ops *ops)
{
    return ops->http;
}

void tw_ops_store_probe(tw_ops *ops, tw_probe *out)
{
    pthread_mutex_lock(&ops->lock);
    *out = ops->store;
    pthread_mutex_unlock(&ops->lock);
}

void tw_ops_blob_probe(tw_ops *ops, tw_probe *out)
{
    pthread_mutex_lock(&ops->lock);
    *out = ops->blobs;
    pthread_mutex_unlock(&ops->lock);
}

void tw_ops_backup_record(tw_ops *ops, const tw_backup_status *status)
{
    pthread_mutex_lock(&ops->lock);
    uint64_t ok_count = ops->backup.ok_count, failed_count = ops->backup.failed_count;
    ops->backup = *status;
    ops->backup.ok_count = ok_count + status->ok;
    ops->backup.failed_count = failed_count + !status->ok;
    pthread_mutex_unlock(&ops->lock);
}

void tw_ops_backup_status(tw_ops *ops, tw_backup_status *out)
{
    pthread_mutex_lock(&ops->lock);
    *out = ops->backup;
    pthread_mutex_unlock(&ops->lock);
}

/* The cache entry of (name, dims); the lock must be held. */
static struct cached_total *find_total_locked(tw_ops *ops, const char *name, const char *dims)
{
    size_t nlen = strlen(name);
    for (struct cached_total *t = ops->totals; t != NULL; t = t->next)
        if (strcmp(t->key, name) == 0 && strcmp(t->key + nlen + 1, dims) == 0)
            return t;
    return NULL;
}

bool tw_ops_counter_cache_get(tw_ops *ops, const char *name, const char *dims, uint32_t today,
                              uint64_t *before)
{
    pthread_mutex_lock(&ops->lock);
    struct cached_total *t = find_total_locked(ops, name, dims);
    bool hit = t != NULL && t->day == today;
    if (hit)
        *before = t->before;
    pthread_mutex_unlock(&ops->lock);
    return hit;
}

void tw_ops_counter_cache_put(tw_ops *ops, const char *name, const char *dims, uint32_t today,
                              uint64_t before)
{
    pthread_mutex_lock(&ops->lock);
    struct cached_total *t = find_total_locked(ops, name, dims);
    if (t == NULL) {
        size_t nlen = strlen(name), dlen = strlen(dims);
        if ((t = malloc(sizeof *t + nlen + dlen + 2)) != NULL) {
            memcpy(t->key, name, nlen + 1);
            memcpy(t->key + nlen + 1, dims, dlen + 1);
            t->next = ops->totals;
            ops->totals = t;
        }
    }
    if (t != NULL) {
        t->day = today;
        t->before = before;
    }
    pthread_mutex_unlock(&ops->lock);
}
