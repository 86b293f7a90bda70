/*
 * What the services of a running twd share, built once by `twd serve`
 * (server/serve.c) and handed to each service's register function, which
 * keeps it as its service ctx (tw_call_service_ctx).
 */
#ifndef TW_APP_H
#define TW_APP_H

#include "config.h"
#include "pool.h"
#include "tw_blob.h"
#include "tw_store.h"
#include "tw_txn.h"

struct tw_auth;
struct tw_job_runner;
struct tw_deepgram;
struct tw_voice;
struct tw_ops;
struct tw_billing;
struct tw_call;

typedef struct tw_app {
    const tw_config *cfg;
    tw_store *store;
    tw_blob_store *blobs;
    /* Blocking work (backups, outside services): never on an RPC thread. */
    tw_pool *slow_pool;
    /* Durable background jobs (jobs.h): wake it after enqueueing one. */
    struct tw_job_runner *jobs;
    /* Keys, limits, maintenance and password hashing (auth/auth.h); NULL
     * in `twd methods`, which serves nothing. */
    struct tw_auth *auth;
    /* Deepgram's API (clients/deepgram.h); NULL without deepgram_api_key. */
    struct tw_deepgram *deepgram;
    /* Voice notes (server/voice/voice.h): NULL until started. */
    struct tw_voice *voice;
    /* Billing (server/billing/billing.h): plans, subscriptions, usage,
     * Stripe's webhooks; NULL in `twd methods`, which serves nothing. */
    struct tw_billing *billing;
    /* Counts a TW_METERED call against the caller's plan before its
     * handler runs (set by the billing service): TW_OK, or the refusal
     * (QUOTA_001) the gate returns. NULL: nothing is metered. */
    tw_err (*meter)(struct tw_app *app, struct tw_call *call);
    /* Counts amount of a usage resource (tw.v1.UsageResource) of user in
     * t, the write that uses it (set by the billing service; NULL: nothing
     * is counted). A positive amount is refused over the plan's limit
     * (TW_ERR_QUOTA_EXCEEDED, and, with call, the call's QUOTA_001 answer
     * with the limit and reset time) unless plan_limits is count; a
     * negative one gives back (a deleted note's storage bytes). */
    tw_err (*use)(struct tw_app *app, struct tw_call *call, tw_txn *t, const tw_id *user,
                  int resource, int64_t amount, int64_t now_ms);
    /* Every service's step of account deletion (services.h), set when they
     * are registered. */
    tw_err (*forget_user)(struct tw_app *app, const tw_id *user);

    /* Health probes, the HTTP side, scheduled backups (server/ops/ops.h):
     * NULL until serving. */
    struct tw_ops *ops;
} tw_app;

#endif
