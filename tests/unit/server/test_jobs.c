/* Unit tests for server/jobs.c: workers run due jobs, fail them into a
 * retry, and leave nothing running after stop. */
#include "tw_check.h"

#include "jobs.h"
#include "tw_txn.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int runs, failures_left;

static tw_err count_run(tw_app *app, const tw_job *job, tw_job_failure *failure)
{
    atomic_fetch_add(&runs, 1);
    if (atomic_fetch_sub(&failures_left, 1) > 0) {
        snprintf(failure->error, sizeof failure->error, "not yet");
        return TW_ERR_UPSTREAM;
    }
    return TW_OK;
}

/* Fails as an outside service answering 429 with Retry-After: 60 would. */
static tw_err busy_run(tw_app *app, const tw_job *job, tw_job_failure *failure)
{
    atomic_fetch_add(&runs, 1);
    snprintf(failure->error, sizeof failure->error, "HTTP 429");
    failure->retry_after_ms = 60000;
    return TW_ERR_UPSTREAM;
}

static const tw_job_type test_types[] = {
    {"count", count_run, 5000},
    {"busy", busy_run, 5000},
    {NULL, NULL, 0},
};

static char data_dir[] = "/tmp/tw-jobs-XXXXXX";
static tw_app app;

static void open_store(void)
{
    strcpy(data_dir, "/tmp/tw-jobs-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(data_dir));
    /* Failed jobs come back after 1 ms, so the retry test needs no sleep. */
    tw_store_options opts = {.data_dir = data_dir,
                             .durability = TW_FAST,
                             .job_backoff_base_ms = 1,
                             .job_backoff_max_ms = 1};
    ck_assert_int_eq(tw_store_open(&opts, &app.store), TW_OK);
    atomic_store(&runs, 0);
    atomic_store(&failures_left, 0);
}

static void close_store(void)
{
    tw_store_close(app.store);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", data_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static tw_err enqueue(tw_txn *t, void *ctx)
{
    return tw_txn_job_enqueue(t, "count", "x", 1, NULL, NULL);
}

static tw_err enqueue_busy(tw_txn *t, void *ctx)
{
    return tw_txn_job_enqueue(t, "busy", "x", 1, NULL, NULL);
}

static void wait_for_runs(int n)
{
    for (int i = 0; i < 1000 && atomic_load(&runs) < n; i++)
        usleep(5000);
}

START_TEST(enqueued_jobs_run_once_each)
{
    tw_job_runner *runner;
    ck_assert_int_eq(tw_jobs_start(&app, test_types, 2, &runner), TW_OK);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(tw_txn_run(app.store, enqueue, NULL), TW_OK);
    tw_jobs_wake(runner);
    wait_for_runs(20);
    usleep(50000); /* a second run would show here */
    tw_jobs_stop(runner);
    ck_assert_int_eq(atomic_load(&runs), 20);
}
END_TEST

START_TEST(failed_jobs_are_retried)
{
    atomic_store(&failures_left, 2);
    ck_assert_int_eq(tw_txn_run(app.store, enqueue, NULL), TW_OK);
    tw_job_runner *runner;
    ck_assert_int_eq(tw_jobs_start(&app, test_types, 1, &runner), TW_OK);
    wait_for_runs(3);
    tw_jobs_stop(runner);
    ck_assert_int_eq(atomic_load(&runs), 3);
}
END_TEST

/* The store's backoff is 1 ms here: only the handler's Retry-After can
 * keep the job from being due again 20 ms later. */
START_TEST(a_handlers_retry_after_holds_the_job_back)
{
    ck_assert_int_eq(tw_txn_run(app.store, enqueue_busy, NULL), TW_OK);
    tw_job_runner *runner;
    ck_assert_int_eq(tw_jobs_start(&app, test_types, 1, &runner), TW_OK);
    wait_for_runs(1);
    tw_jobs_stop(runner);
    ck_assert_int_eq(atomic_load(&runs), 1);
    usleep(20000);
    tw_arena *arena = tw_arena_new(1024);
    tw_job job;
    ck_assert_int_eq(tw_store_job_lease(app.store, "busy", 1000, arena, &job), TW_ERR_NOT_FOUND);
    tw_arena_free(arena);
}
END_TEST

START_TEST(jobs_wait_for_the_next_start)
{
    tw_job_runner *runner;
    ck_assert_int_eq(tw_jobs_start(&app, test_types, 1, &runner), TW_OK);
    tw_jobs_stop(runner);
    ck_assert_int_eq(tw_txn_run(app.store, enqueue, NULL), TW_OK);
    ck_assert_int_eq(atomic_load(&runs), 0);
    ck_assert_int_eq(tw_jobs_start(&app, test_types, 1, &runner), TW_OK);
    wait_for_runs(1);
    tw_jobs_stop(runner);
    ck_assert_int_eq(atomic_load(&runs), 1);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("jobs");
    TCase *tc = tcase_create("runner");
    tcase_add_checked_fixture(tc, open_store, close_store);
    tcase_add_test(tc, enqueued_jobs_run_once_each);
    tcase_add_test(tc, failed_jobs_are_retried);
    tcase_add_test(tc, a_handlers_retry_after_holds_the_job_back);
    tcase_add_test(tc, jobs_wait_for_the_next_start);
    suite_add_tcase(s, tc);
    return s;
}
