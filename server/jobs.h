/*
 * Background workers for the store's durable job queue (tw_jobs.h): work
 * that must finish even across a restart (deleting an account, transcribing
 * a voice note, delivering a push). A handler enqueues a job in the same
 * transaction as the write that causes it; these workers lease due jobs,
 * run them, and complete or fail them (failed jobs come back after a
 * backoff and are dead-lettered after their last attempt). A job whose
 * worker died with twd is leased again when its lease runs out.
 *
 * Each service lists the job types it runs in its tw_service_def
 * (services/services.h): a row per type with its handler and lease time.
 */
#ifndef TW_SERVER_JOBS_H
#define TW_SERVER_JOBS_H

#include "app.h"
#include "tw_jobs.h"

#include <stddef.h>

/* What a handler says of a failed run. */
typedef struct tw_job_failure {
    char error[512]; /* a line kept as the job's last_error, never shown to clients */
    int64_t
        retry_after_ms; /* try again no sooner (an outside service's Retry-After); 0: the backoff */
} tw_job_failure;

/*
 * Runs one job. TW_OK completes it; an error fails it, with what failure
 * says (it starts zeroed). The job and its payload are borrowed for the
 * call. A handler must be safe to run twice for one job: a lease can run
 * out while it works.
 */
typedef tw_err tw_job_handler(tw_app *app, const tw_job *job, tw_job_failure *failure);

typedef struct tw_job_type {
    const char *type; /* as enqueued, for example "delete_account" */
    tw_job_handler *run;
    int64_t lease_ms; /* longer than the slowest run of one job */
} tw_job_type;

typedef struct tw_job_runner tw_job_runner;

/* Starts threads workers over types (borrowed; tw_services_jobs() for twd). */
tw_err tw_jobs_start(tw_app *app, const tw_job_type *types, int threads, tw_job_runner **out);

/* Tells the workers a job was enqueued, so they look now rather than at
 * their next poll. Safe from any thread; accepts NULL. */
void tw_jobs_wake(tw_job_runner *runner);

/* Stops the workers after the jobs they are running; queued jobs stay
 * queued for the next start. Accepts NULL. */
void tw_jobs_stop(tw_job_runner *runner);

#endif
