/*
 * What keeps a running twd operable, beside the RPC services: the HTTP
 * side (/health, /health/db, /health/detailed, /metrics; server/http), the
 * health probes behind it and behind grpc.health.v1, and scheduled
 * backups. `twd serve` starts it once the engine serves (tw_ops_start) and
 * stops it first at shutdown (tw_ops_stop).
 *
 * Probes run on a thread of their own, so no health answer waits on a disk
 * or a network: the store every second (a real read, tw_store_probe), blob
 * storage every ten (a stat of a key that does not exist: a round trip to
 * S3 on that backend). /health/db probes the store again itself, as the
 * runbook expects of it.
 */
#ifndef TW_OPS_H
#define TW_OPS_H

#include "app.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_engine;
struct tw_httpd_server;
struct tw_httpd_route;

typedef struct tw_ops tw_ops;

/* The outcome of the last backup twd took (scheduled or asked for). */
typedef struct tw_backup_status {
    int64_t time_ms;                 /* when it finished; 0: none since start-up */
    bool ok;                         /* it succeeded (and was uploaded, when configured) */
    char error[256];                 /* why not; "" when ok */
    char directory[256];             /* where it went */
    uint32_t id;                     /* its number in the directory */
    uint64_t db_bytes;               /* database files' bytes in it */
    uint32_t db_files;               /* database files in it */
    uint64_t audio_files;            /* voice notes' audio it holds */
    uint64_t audio_bytes_copied;     /* audio copied this time (the rest was there already) */
    uint64_t ok_count, failed_count; /* since start-up */
} tw_backup_status;

/* A probe's last result. */
typedef struct tw_probe {
    bool ok;
    int64_t checked_ms; /* Unix ms; 0: not yet probed */
    double took_ms;
    char error[256]; /* why not ok */
} tw_probe;

/* Makes the state of app (borrowed; app->ops gets it) and starts its
 * threads and the HTTP server, serving routes (borrowed: http/routes.h).
 * engine serves already; ops keeps it for the HTTP side (call metrics,
 * shutdown) and never calls it. store_health,
 * when not NULL, hears each change of the store probe's result (the first
 * one too), on the prober's thread: grpc.health.v1's watchers. On failure
 * errbuf says why in one line. *http_port gets the HTTP port bound. */
tw_err tw_ops_start(tw_app *app, struct tw_engine *engine, const struct tw_httpd_route *routes,
                    void (*store_health)(bool ok), const char *tls_cert_pem,
                    const char *tls_key_pem, int *http_port, char *errbuf, size_t errlen);

/* Stops the HTTP server, the probes and the backup schedule (a backup
 * under way finishes first) and frees the state. Accepts NULL. */
void tw_ops_stop(tw_ops *ops);

/* Unix ms when twd started serving. */
int64_t tw_ops_start_ms(const tw_ops *ops);

/* The engine, for call metrics and whether shutdown has begun. */
struct tw_engine *tw_ops_engine(const tw_ops *ops);

/* The HTTP server, for its request counts. */
struct tw_httpd_server *tw_ops_http(const tw_ops *ops);

/* The last probes of the store and of blob storage. */
void tw_ops_store_probe(tw_ops *ops, tw_probe *out);
void tw_ops_blob_probe(tw_ops *ops, tw_probe *out);

/* Records a backup's outcome, and reads the last one. */
void tw_ops_backup_record(tw_ops *ops, const tw_backup_status *status);
void tw_ops_backup_status(tw_ops *ops, tw_backup_status *out);

/* The running total of a business counter series before today, cached per
 * UTC day so /metrics reads only today's buckets (metrics_page.c).
 * *before gets it; false when this day's value is not cached yet. */
bool tw_ops_counter_cache_get(tw_ops *ops, const char *name, const char *dims, uint32_t today,
                              uint64_t *before);
void tw_ops_counter_cache_put(tw_ops *ops, const char *name, const char *dims, uint32_t today,
                              uint64_t before);

#endif
