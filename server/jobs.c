/* Job workers for jobs.h, and the table of job types. */
#include "jobs.h"

#include "tw_log.h"
#include "tw_time.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often idle workers look for due jobs (retries become due by time,
 * with nobody to wake the workers). */
#define POLL_INTERVAL_MS 500

struct tw_job_runner {
    tw_app *app;
    const tw_job_type *types;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    unsigned wakeups; /* bumped by tw_jobs_wake, so no wake-up is lost */
    pthread_t *threads;
    int nthreads;
};

/* Leases and runs one due job of type; false when none was due. */
static bool run_one(tw_job_runner *r, const tw_job_type *type)
{
    tw_arena *arena = tw_arena_new(4096);
    if (arena == NULL)
        return false;
    tw_job job;
    tw_err err = tw_store_job_lease(r->app->store, type->type, type->lease_ms, arena, &job);
    if (err) {
        if (err != TW_ERR_NOT_FOUND)
            tw_log(TW_LOG_ERROR, "job lease failed",
                   json_pack("{s:s, s:s}", "type", type->type, "detail", tw_store_last_error()));
        tw_arena_free(arena);
        return false;
    }
    char id[TW_ID_TEXT_SIZE];
    tw_id_format(&job.id, id);
    tw_job_failure failure = {.error = ""};
    err = type->run(r->app, &job, &failure);
    const char *error = failure.error[0] ? failure.error : err ? tw_err_message(err) : "";
    tw_err done = err ? tw_store_job_fail(r->app->store, &job, error, failure.retry_after_ms)
                      : tw_store_job_complete(r->app->store, &job);
    tw_log(err ? TW_LOG_WARN : TW_LOG_INFO, err ? "job failed" : "job done",
           json_pack("{s:s, s:s, s:i, s:s, s:I}", "type", type->type, "job_id", id, "attempt",
                     (int)job.attempts, "error", error, "retry_after_ms",
                     (json_int_t)failure.retry_after_ms));
    if (done == TW_ERR_CONFLICT)
        tw_log(TW_LOG_WARN, "job lease ran out while it ran; it will run again",
               json_pack("{s:s, s:s}", "type", type->type, "job_id", id));
    tw_arena_free(arena);
    return true;
}

static void *worker_main(void *arg)
{
    tw_job_runner *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stopping = r->stopping;
        unsigned seen = r->wakeups;
        pthread_mutex_unlock(&r->lock);
        if (stopping)
            break;

        bool ran = false;
        for (const tw_job_type *t = r->types; t->type != NULL; t++)
            ran |= run_one(r, t);
        if (ran)
            continue;

        struct timespec until = tw_mono_deadline(POLL_INTERVAL_MS);
        pthread_mutex_lock(&r->lock);
        while (!r->stopping && r->wakeups == seen &&
               pthread_cond_timedwait(&r->wake, &r->lock, &until) == 0)
            ;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

tw_err tw_jobs_start(tw_app *app, const tw_job_type *types, int threads, tw_job_runner **out)
{
    *out = NULL;
    tw_job_runner *r = calloc(1, sizeof *r);
    if (r == NULL || (r->threads = calloc((size_t)threads, sizeof *r->threads)) == NULL) {
        free(r);
        return TW_ERR_NO_MEMORY;
    }
    r->app = app;
    r->types = types;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &attr);
    pthread_condattr_destroy(&attr);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&r->threads[r->nthreads], NULL, worker_main, r) != 0)
            break;
        r->nthreads++;
    }
    if (r->nthreads == 0) {
        tw_jobs_stop(r);
        return TW_ERR_INTERNAL;
    }
    *out = r;
    return TW_OK;
}

void tw_jobs_wake(tw_job_runner *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->wakeups++;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

void tw_jobs_stop(tw_job_runner *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < r->nthreads; i++)
        pthread_join(r->threads[i], NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r->threads);
    free(r);
}
