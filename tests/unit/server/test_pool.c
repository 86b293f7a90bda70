/* Unit tests for server/pool.c: every job runs, a full queue refuses, and
 * freeing drains what was queued. */
#include "tw_check.h"

#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static atomic_int ran;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;

static void count_job(void *arg)
{
    atomic_fetch_add(&ran, 1);
}

/* Blocks until the test opens the gate, to fill the queue on purpose. */
static void gated_job(void *arg)
{
    pthread_mutex_lock(&gate_lock);
    pthread_mutex_unlock(&gate_lock);
    atomic_fetch_add(&ran, 1);
}

START_TEST(every_job_runs_before_free_returns)
{
    atomic_store(&ran, 0);
    tw_pool *pool;
    ck_assert_int_eq(tw_pool_new("test", 4, 1000, &pool), TW_OK);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(tw_pool_submit(pool, count_job, NULL), TW_OK);
    tw_pool_free(pool);
    ck_assert_int_eq(atomic_load(&ran), 1000);
}
END_TEST

START_TEST(full_queue_refuses_with_busy)
{
    atomic_store(&ran, 0);
    tw_pool *pool;
    ck_assert_int_eq(tw_pool_new("test", 1, 2, &pool), TW_OK);
    pthread_mutex_lock(&gate_lock);
    ck_assert_int_eq(tw_pool_submit(pool, gated_job, NULL), TW_OK);
    /* Wait until the worker has taken the first job, so the queue is empty. */
    for (int i = 0; i < 500 && tw_pool_waiting(pool) > 0; i++)
        usleep(1000);
    ck_assert_int_eq(tw_pool_submit(pool, gated_job, NULL), TW_OK);
    ck_assert_int_eq(tw_pool_submit(pool, gated_job, NULL), TW_OK);
    ck_assert_int_eq(tw_pool_submit(pool, gated_job, NULL), TW_ERR_BUSY);
    pthread_mutex_unlock(&gate_lock);
    tw_pool_free(pool);
    ck_assert_int_eq(atomic_load(&ran), 3);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("jobs");
    tcase_add_test(tc, every_job_runs_before_free_returns);
    tcase_add_test(tc, full_queue_refuses_with_busy);
    suite_add_tcase(s, tc);
    return s;
}
