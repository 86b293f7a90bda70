/*
 * Every service twd serves, and how a service plugs into the rest of twd:
 * each service file defines one tw_service_def (its method table for the
 * engine and its hooks) and services.c lists them once. Account deletion,
 * the job workers and start-up ask the list, so adding a service never
 * means editing them.
 */
#ifndef TW_SERVICES_H
#define TW_SERVICES_H

#include "app.h"
#include "jobs.h"
#include "rpc/engine.h"

#include <stddef.h>
#include <stdio.h>

/* A business counter a service keeps in the store (tw_counter.h), shown
 * on /metrics as a Prometheus counter: the stored counter's name, the
 * metric's name and its help. Dimensions ("type=sleep") become labels. */
typedef struct tw_service_counter {
    const char *counter, *metric, *help;
} tw_service_counter;

typedef struct tw_service_def {
    /* What the engine serves (rpc.ctx is set to the app). */
    tw_service rpc;
    /* Optional: called once before serving, with the engine (health and
     * reflection describe it) and the app. */
    tw_err (*attach)(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);
    /* Optional: account deletion calls it before it sweeps every key under
     * the user's id, for what that sweep cannot reach (shared indexes,
     * blobs). Must be safe to run again. */
    tw_err (*forget_user)(tw_app *app, const tw_id *user);
    /* Optional: its background job types, ending with a NULL type. */
    const tw_job_type *jobs;
    /* Optional, for /metrics (server/http/metrics_page.c, which names no
     * service): its business counters, ending with a NULL counter. */
    const tw_service_counter *counters;
    /* Optional, for /metrics: writes the service's own metric families,
     * read when scraped, to out in Prometheus's text format (# HELP and
     * # TYPE, then the samples of each). On the HTTP side's thread: reads
     * only, no network. */
    void (*write_metrics)(tw_app *app, FILE *out);
} tw_service_def;

/* Registers every service with the engine and attaches them; on failure
 * errbuf names the service and why. */
tw_err tw_services_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen);

/* Registers one service: attaches it and serves def->rpc with ctx app
 * through served (filled here; it must outlive the engine). For tests that
 * serve one service. */
tw_err tw_service_register(tw_engine *engine, tw_app *app, const tw_service_def *def,
                           tw_service *served, char *errbuf, size_t errlen);

/* Every service's forget_user, in order (app->forget_user). */
tw_err tw_services_forget_user(tw_app *app, const tw_id *user);

/* Calls fn with each service's definition, in the order they are served. */
void tw_services_each(void (*fn)(void *ctx, const tw_service_def *def), void *ctx);

/* Every job type of every service, ending with a NULL type (static). */
const tw_job_type *tw_services_jobs(void);

/* The services, each defined in its own file. */
extern const tw_service_def tw_server_info_service, tw_admin_service, tw_auth_service,
    tw_task_service, tw_sync_service, tw_health_log_service, tw_focus_service, tw_voice_service,
    tw_export_service, tw_billing_service, tw_billing_admin_service, tw_health_service,
    tw_reflection_v1_service, tw_reflection_v1alpha_service;

/* Streams user's data export on a server-streaming call whose response
 * message (the handler's, of the method's output type) has one field,
 * `chunk`, an ExportChunk (export_service.c). Returns what the handler
 * returns: TW_DEFERRED, or an error. */
tw_err tw_export_stream(tw_call *call, tw_app *app, const tw_id *user, ProtobufCMessage *response);

/* grpc.health.v1: the store answers its probe (SERVING) or not
 * (NOT_SERVING); watchers hear each change. Any thread. */
void tw_health_service_set_store_ok(bool ok);

#endif
