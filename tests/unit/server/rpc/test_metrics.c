/* Unit tests for server/rpc/metrics.c: counts from many threads add up
 * exactly, each in its method, code and latency bucket; a thread counting
 * for two registries in turn keeps them apart; quantiles interpolate as
 * Prometheus's histogram_quantile does. */
#include "tw_check.h"

#include "rpc/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define THREADS 8
#define CALLS   20000

static tw_rpc_metrics *shared;

static void *count_calls(void *arg)
{
    size_t method = (size_t)(uintptr_t)arg % 3;
    for (int i = 0; i < CALLS; i++) {
        tw_rpc_metrics_call_started(shared, method);
        /* Every tenth call fails with NOT_FOUND (5) after 2 ms; the rest
         * take 0.3 ms. */
        bool failed = i % 10 == 0;
        tw_rpc_metrics_call_ended(shared, method, failed ? 5 : 0, failed ? 2000000 : 300000, 10,
                                  20);
    }
    return NULL;
}

START_TEST(counts_from_many_threads_add_up)
{
    ck_assert_int_eq(tw_rpc_metrics_new(3, &shared), TW_OK);
    ck_assert_uint_eq(tw_rpc_metrics_slots(shared), 4);
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, count_calls, (void *)(uintptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    uint64_t total = 0;
    for (size_t m = 0; m < 3; m++) {
        tw_rpc_method_stats s;
        tw_rpc_metrics_read(shared, m, &s);
        uint64_t threads_here = m == 0 ? 3 : m == 1 ? 3 : 2; /* t % 3 over 0..7 */
        ck_assert_uint_eq(s.started, threads_here * CALLS);
        ck_assert_uint_eq(s.ended[0], threads_here * CALLS * 9 / 10);
        ck_assert_uint_eq(s.ended[5], threads_here * CALLS / 10);
        ck_assert_uint_eq(s.bytes_in, threads_here * CALLS * 10);
        ck_assert_uint_eq(s.bytes_out, threads_here * CALLS * 20);
        /* 0.3 ms falls under 0.5 ms (bucket 0); 2 ms under 2.5 ms (bucket 2). */
        ck_assert_uint_eq(s.latency[0], threads_here * CALLS * 9 / 10);
        ck_assert_uint_eq(s.latency[2], threads_here * CALLS / 10);
        ck_assert_uint_eq(s.latency_sum_ns,
                          threads_here * CALLS / 10 * (9 * 300000ULL + 2000000ULL));
        total += s.started;
    }
    ck_assert_uint_eq(total, THREADS * CALLS);
    tw_rpc_method_stats unknown;
    tw_rpc_metrics_read(shared, 3, &unknown);
    ck_assert_uint_eq(unknown.started, 0);
    tw_rpc_metrics_free(shared);
}
END_TEST

START_TEST(one_thread_two_registries)
{
    tw_rpc_metrics *a, *b;
    ck_assert_int_eq(tw_rpc_metrics_new(1, &a), TW_OK);
    ck_assert_int_eq(tw_rpc_metrics_new(1, &b), TW_OK);
    for (int i = 0; i < 3; i++) {
        tw_rpc_metrics_call_ended(a, 0, 0, 1000, 0, 0);
        tw_rpc_metrics_call_ended(b, 0, 0, 1000, 0, 0);
        tw_rpc_metrics_call_ended(b, 1, 12, 1000, 0, 0); /* the unknown-method slot */
    }
    tw_rpc_metrics_call_ended(b, 7, 0, 1000, 0, 0); /* no such slot: ignored */
    tw_rpc_metrics_call_ended(NULL, 0, 0, 1000, 0, 0);
    tw_rpc_method_stats s;
    tw_rpc_metrics_read(a, 0, &s);
    ck_assert_uint_eq(s.ended[0], 3);
    tw_rpc_metrics_read(b, 0, &s);
    ck_assert_uint_eq(s.ended[0], 3);
    tw_rpc_metrics_read(b, 1, &s);
    ck_assert_uint_eq(s.ended[12], 3);
    tw_rpc_metrics_free(a);
    tw_rpc_metrics_free(b);
}
END_TEST

START_TEST(quantiles_interpolate_within_buckets)
{
    tw_rpc_method_stats s = {0};
    ck_assert(tw_rpc_latency_quantile_s(&s, 0.99) == 0);
    /* 100 calls, all in the bucket (0.1, 0.2]: the median is 0.15 s. */
    s.latency[8] = 100;
    ck_assert_msg(tw_rpc_latency_bounds_s[7] == 0.1 && tw_rpc_latency_bounds_s[8] == 0.2,
                  "buckets changed");
    double p50 = tw_rpc_latency_quantile_s(&s, 0.5);
    ck_assert_msg(p50 > 0.1499 && p50 < 0.1501, "p50 %g", p50);
    /* Past the last bound: the last bound, as Prometheus answers. */
    s.latency[8] = 0;
    s.latency[TW_RPC_LATENCY_BUCKETS] = 5;
    ck_assert(tw_rpc_latency_quantile_s(&s, 0.5) == 10);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("rpc_metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, counts_from_many_threads_add_up);
    tcase_add_test(tc, one_thread_two_registries);
    tcase_add_test(tc, quantiles_interpolate_within_buckets);
    suite_add_tcase(s, tc);
    return s;
}
