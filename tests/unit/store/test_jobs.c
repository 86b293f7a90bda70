/* Unit tests for store/jobs.c: enqueue with the write, leases and their
 * expiry, completion, retries with backoff, dead letters, restarts, and
 * workers racing for jobs. Time is the fixture's clock. */
#include "store_fixture.h"
#include "tw_jobs.h"

#include "tw_check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tick(int64_t ms)
{
    atomic_fetch_add(&fx.clock.ms, ms);
}

struct enqueue {
    const char *type;
    const char *payload;
    tw_job_options opts;
    tw_id id;
};

static tw_err enqueue_fn(tw_txn *t, void *ctx)
{
    struct enqueue *e = ctx;
    return tw_txn_job_enqueue(t, e->type, e->payload, strlen(e->payload), &e->opts, &e->id);
}

static tw_id enqueue(const char *type, const char *payload, int64_t delay_ms, uint32_t attempts)
{
    struct enqueue e = {type, payload, {delay_ms, attempts}, {{0}}};
    ck_assert_int_eq(tw_txn_run(fx.store, enqueue_fn, &e), TW_OK);
    return e.id;
}

static tw_job lease(const char *type, int64_t lease_ms)
{
    tw_job job;
    tw_err err = tw_store_job_lease(fx.store, type, lease_ms, fx.arena, &job);
    ck_assert_msg(err == TW_OK, "lease: %s %s", tw_err_name(err), tw_store_last_error());
    return job;
}

static void none_due(const char *type)
{
    tw_job job;
    ck_assert_int_eq(tw_store_job_lease(fx.store, type, 1000, fx.arena, &job), TW_ERR_NOT_FOUND);
}

START_TEST(a_job_is_leased_once_then_completed)
{
    tw_id id = enqueue("transcribe", "note-1", 0, 0);
    enqueue("notify", "n", 0, 0);
    tw_job job = lease("transcribe", 30000);
    ck_assert_mem_eq(job.id.bytes, id.bytes, TW_ID_BYTES);
    ck_assert_str_eq(job.type, "transcribe");
    ck_assert_uint_eq(job.payload_len, 6);
    ck_assert_mem_eq(job.payload, "note-1", 6);
    ck_assert_uint_eq(job.attempts, 1);
    ck_assert_uint_eq(job.max_attempts, TW_JOB_DEFAULT_ATTEMPTS);
    ck_assert_int_eq(job.due_ms, FX_EPOCH_MS + 30000);
    ck_assert_str_eq(job.last_error, "");
    none_due("transcribe");
    ck_assert_int_eq(tw_store_job_complete(fx.store, &job), TW_OK);
    ck_assert_int_eq(tw_store_job_complete(fx.store, &job), TW_ERR_CONFLICT);
    tick(60000);
    none_due("transcribe");
    lease("notify", 1000);
}
END_TEST

START_TEST(jobs_come_oldest_due_first_and_not_before_due)
{
    tw_id later = enqueue("t", "later", 5000, 0);
    tw_id first = enqueue("t", "first", 0, 0);
    tw_id second = enqueue("t", "second", 0, 0);
    tw_job job = lease("t", 60000);
    ck_assert_mem_eq(job.id.bytes, first.bytes, TW_ID_BYTES);
    job = lease("t", 60000);
    ck_assert_mem_eq(job.id.bytes, second.bytes, TW_ID_BYTES);
    none_due("t");
    tick(5000);
    job = lease("t", 60000);
    ck_assert_mem_eq(job.id.bytes, later.bytes, TW_ID_BYTES);
}
END_TEST

START_TEST(an_aborted_enqueue_leaves_no_job)
{
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_job_enqueue(t, "t", "x", 1, NULL, NULL), TW_OK);
    tw_txn_abort(t);
    none_due("t");
}
END_TEST

START_TEST(an_expired_lease_makes_the_job_due_again)
{
    enqueue("t", "x", 0, 0);
    tw_job first = lease("t", 1000);
    tick(999);
    none_due("t");
    tick(1);
    tw_job second = lease("t", 1000);
    ck_assert_mem_eq(second.id.bytes, first.id.bytes, TW_ID_BYTES);
    ck_assert_uint_eq(second.attempts, 2);
    ck_assert(memcmp(second.lease_id.bytes, first.lease_id.bytes, TW_ID_BYTES) != 0);
    /* The first worker comes back too late. */
    ck_assert_int_eq(tw_store_job_complete(fx.store, &first), TW_ERR_CONFLICT);
    ck_assert_int_eq(tw_store_job_fail(fx.store, &first, "late", 0), TW_ERR_CONFLICT);
    ck_assert_int_eq(tw_store_job_complete(fx.store, &second), TW_OK);
}
END_TEST

/* Leases the job once it is due: not before half of ceiling_ms after
 * now, and by ceiling_ms (the backoff's jitter). */
static tw_job lease_after_backoff(const char *type, int64_t ceiling_ms)
{
    tick(ceiling_ms / 2 - 1);
    none_due(type);
    tick(ceiling_ms - ceiling_ms / 2 + 1);
    return lease(type, 60000);
}

START_TEST(failures_back_off_exponentially_with_jitter)
{
    enqueue("t", "x", 0, 10);
    int64_t ceilings[] = {1000, 2000, 4000, 8000};
    tw_job job = lease("t", 60000);
    for (size_t i = 0; i < sizeof ceilings / sizeof ceilings[0]; i++) {
        ck_assert_uint_eq(job.attempts, i + 1);
        ck_assert_int_eq(tw_store_job_fail(fx.store, &job, "upstream 503", 0), TW_OK);
        job = lease_after_backoff("t", ceilings[i]);
    }
    ck_assert_str_eq(job.last_error, "upstream 503");
}
END_TEST

/* Jobs failing at the same moment do not all come back at the same one. */
START_TEST(jobs_failing_together_come_back_apart)
{
    enum { JOBS = 20 };
    for (int i = 0; i < JOBS; i++)
        enqueue("t", "x", 0, 10);
    for (int i = 0; i < JOBS; i++) {
        tw_job job = lease("t", 60000);
        ck_assert_int_eq(tw_store_job_fail(fx.store, &job, "e", 0), TW_OK);
    }
    int due_at_once = 0;
    tick(500); /* half the 1 s ceiling: the earliest any may be due */
    for (int ms = 500; ms <= 1000 && due_at_once == 0; ms++, tick(1)) {
        tw_job job;
        while (tw_store_job_lease(fx.store, "t", 60000, fx.arena, &job) == TW_OK)
            due_at_once++;
    }
    ck_assert_int_lt(due_at_once, JOBS);
}
END_TEST

/* An outside service's Retry-After longer than the backoff wins; a
 * shorter one leaves the backoff. */
START_TEST(a_retry_after_longer_than_the_backoff_is_waited_out)
{
    enqueue("t", "x", 0, 10);
    tw_job job = lease("t", 60000);
    ck_assert_int_eq(tw_store_job_fail(fx.store, &job, "HTTP 429", 30000), TW_OK);
    tick(29999);
    none_due("t");
    tick(1);
    job = lease("t", 60000);
    ck_assert_int_eq(tw_store_job_fail(fx.store, &job, "HTTP 429", 1), TW_OK);
    lease_after_backoff("t", 2000);
}
END_TEST

START_TEST(the_backoff_is_capped)
{
    tw_store_close(fx.store);
    tw_store_options o = {.data_dir = fx.dir,
                          .clock_ms = fx_clock_now,
                          .clock_ctx = &fx.clock,
                          .job_backoff_base_ms = 100,
                          .job_backoff_max_ms = 250};
    ck_assert_int_eq(tw_store_open(&o, &fx.store), TW_OK);
    enqueue("t", "x", 0, 10);
    int64_t ceilings[] = {100, 200, 250, 250};
    tw_job job = lease("t", 60000);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(tw_store_job_fail(fx.store, &job, "e", 0), TW_OK);
        job = lease_after_backoff("t", ceilings[i]);
    }
}
END_TEST

START_TEST(jobs_are_dead_lettered_after_their_attempts)
{
    tw_id id = enqueue("webhook", "evt_1", 0, 3);
    for (int i = 0; i < 3; i++) {
        tw_job job = lease("webhook", 60000);
        ck_assert_int_eq(tw_store_job_fail(fx.store, &job, "bad signature", 0), TW_OK);
        tick(3600 * 1000);
    }
    none_due("webhook");
    tw_job *dead;
    size_t n;
    ck_assert_int_eq(tw_store_job_list_dead(fx.store, "webhook", 10, fx.arena, &dead, &n), TW_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_mem_eq(dead[0].id.bytes, id.bytes, TW_ID_BYTES);
    ck_assert_uint_eq(dead[0].attempts, 3);
    ck_assert_str_eq(dead[0].last_error, "bad signature");
    ck_assert_mem_eq(dead[0].payload, "evt_1", 5);

    ck_assert_int_eq(tw_store_job_requeue(fx.store, &id), TW_OK);
    ck_assert_int_eq(tw_store_job_requeue(fx.store, &id), TW_ERR_FAILED_PRECONDITION);
    tw_id nobody = tw_id_new();
    ck_assert_int_eq(tw_store_job_requeue(fx.store, &nobody), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_store_job_list_dead(fx.store, "webhook", 10, fx.arena, &dead, &n), TW_OK);
    ck_assert_uint_eq(n, 0);
    tw_job job = lease("webhook", 60000);
    ck_assert_uint_eq(job.attempts, 1);
    ck_assert_int_eq(tw_store_job_complete(fx.store, &job), TW_OK);
}
END_TEST

START_TEST(a_job_whose_last_lease_expires_is_dead_lettered)
{
    enqueue("t", "crashes the worker", 0, 2);
    lease("t", 1000);
    tick(1000);
    lease("t", 1000);
    tick(1000);
    none_due("t");
    tw_job *dead;
    size_t n;
    ck_assert_int_eq(tw_store_job_list_dead(fx.store, "t", 10, fx.arena, &dead, &n), TW_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(dead[0].last_error, "lease expired on the last attempt");
}
END_TEST

START_TEST(the_queue_survives_a_restart)
{
    enqueue("t", "a", 0, 0);
    enqueue("t", "b", 0, 0);
    enqueue("t", "c", 0, 0);
    tw_job leased = lease("t", 10000); /* and then twd is killed */
    tw_store_close(fx.store);
    fx_reopen(&fx);
    ck_assert_mem_eq(lease("t", 10000).payload, "b", 1);
    ck_assert_mem_eq(lease("t", 10000).payload, "c", 1);
    none_due("t");
    tick(10000);
    tw_job again = lease("t", 10000);
    ck_assert_mem_eq(again.id.bytes, leased.id.bytes, TW_ID_BYTES);
    ck_assert_uint_eq(again.attempts, 2);
}
END_TEST

START_TEST(bad_input_is_refused)
{
    tw_txn *t;
    char long_type[TW_JOB_TYPE_MAX + 2];
    memset(long_type, 'x', sizeof long_type - 1);
    long_type[sizeof long_type - 1] = '\0';
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_job_enqueue(t, "", "x", 1, NULL, NULL), TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_txn_job_enqueue(t, long_type, "x", 1, NULL, NULL), TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_txn_job_enqueue(t, "t", "x", TW_JOB_PAYLOAD_MAX + 1, NULL, NULL),
                     TW_ERR_VALIDATION);
    tw_txn_abort(t);
    tw_job job;
    ck_assert_int_eq(tw_store_job_lease(fx.store, "t", 0, fx.arena, &job), TW_ERR_VALIDATION);
}
END_TEST

#define WORKERS 4
#define JOBS    100

struct worker {
    int leased[JOBS];
    int count;
    tw_err err;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    tw_arena *a = tw_arena_new(4096);
    for (;;) {
        tw_job job;
        tw_err err = tw_store_job_lease(fx.store, "race", 60000, a, &job);
        if (err == TW_ERR_NOT_FOUND)
            break;
        if (err || (err = tw_store_job_complete(fx.store, &job))) {
            w->err = err;
            break;
        }
        char text[8] = {0};
        memcpy(text, job.payload, job.payload_len < 7 ? job.payload_len : 7);
        w->leased[w->count++] = atoi(text);
    }
    tw_arena_free(a);
    return NULL;
}

START_TEST(racing_workers_each_get_distinct_jobs)
{
    for (int i = 0; i < JOBS; i++) {
        char payload[8];
        snprintf(payload, sizeof payload, "%d", i);
        enqueue("race", payload, 0, 0);
    }
    static struct worker workers[WORKERS];
    pthread_t th[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&th[i], NULL, work, &workers[i]);
    bool seen[JOBS] = {false};
    int total = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(workers[i].err == TW_OK, "%s", tw_err_name(workers[i].err));
        for (int j = 0; j < workers[i].count; j++) {
            ck_assert(!seen[workers[i].leased[j]]);
            seen[workers[i].leased[j]] = true;
            total++;
        }
    }
    ck_assert_int_eq(total, JOBS);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("jobs");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, a_job_is_leased_once_then_completed);
    tcase_add_test(tc, jobs_come_oldest_due_first_and_not_before_due);
    tcase_add_test(tc, an_aborted_enqueue_leaves_no_job);
    tcase_add_test(tc, an_expired_lease_makes_the_job_due_again);
    tcase_add_test(tc, failures_back_off_exponentially_with_jitter);
    tcase_add_test(tc, jobs_failing_together_come_back_apart);
    tcase_add_test(tc, a_retry_after_longer_than_the_backoff_is_waited_out);
    tcase_add_test(tc, the_backoff_is_capped);
    tcase_add_test(tc, jobs_are_dead_lettered_after_their_attempts);
    tcase_add_test(tc, a_job_whose_last_lease_expires_is_dead_lettered);
    tcase_add_test(tc, the_queue_survives_a_restart);
    tcase_add_test(tc, bad_input_is_refused);
    tcase_add_test(tc, racing_workers_each_get_distinct_jobs);
    suite_add_tcase(s, tc);
    return s;
}
