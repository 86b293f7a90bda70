/* Unit tests for store/counter.c: day buckets, dimensions, per-user
 * counters, and additions that neither conflict nor outlive an abort. */
#include "store_fixture.h"
#include "tw_counter.h"

#include "tw_check.h"

#include <stdio.h>

#include <pthread.h>

struct add {
    const tw_counter *c;
    uint32_t day;
    int64_t delta;
};

static tw_err add_fn(tw_txn *t, void *ctx)
{
    const struct add *a = ctx;
    return tw_txn_counter_add(t, a->c, a->day, a->delta);
}

static void add(const tw_counter *c, uint32_t day, int64_t delta)
{
    ck_assert_int_eq(tw_txn_run(fx.store, add_fn, &(struct add){c, day, delta}), TW_OK);
}

static uint64_t total(const tw_counter *c, uint32_t first, uint32_t ndays)
{
    uint64_t sum = 0;
    ck_assert_int_eq(tw_store_counter_read(fx.store, c, first, ndays, NULL, &sum), TW_OK);
    return sum;
}

START_TEST(days_are_utc_day_numbers)
{
    ck_assert_uint_eq(tw_store_day(0), 0);
    ck_assert_uint_eq(tw_store_day(86400000 - 1), 0);
    ck_assert_uint_eq(tw_store_day(86400000), 1);
    ck_assert_uint_eq(tw_store_day(FX_EPOCH_MS), 19875); /* 2024-06-01 */
    ck_assert_uint_eq(tw_store_day(-1), UINT32_MAX);     /* 1969-12-31 */
}
END_TEST

START_TEST(counts_are_bucketed_by_day_and_dimensions)
{
    const tw_counter free_plan = {.name = "registrations", .dims = "plan=free"};
    const tw_counter premium = {.name = "registrations", .dims = "plan=premium"};
    const tw_counter all = {.name = "registrations"};
    uint32_t today = tw_store_day(FX_EPOCH_MS);
    add(&free_plan, today - 1, 2);
    add(&free_plan, today, 3);
    add(&free_plan, today, 1);
    add(&premium, today, 5);
    add(&all, today, 9);
    uint64_t days[3];
    uint64_t sum;
    ck_assert_int_eq(tw_store_counter_read(fx.store, &free_plan, today - 2, 3, days, &sum), TW_OK);
    ck_assert_uint_eq(days[0], 0);
    ck_assert_uint_eq(days[1], 2);
    ck_assert_uint_eq(days[2], 4);
    ck_assert_uint_eq(sum, 6);
    ck_assert_uint_eq(total(&premium, today - 6, 7), 5);
    ck_assert_uint_eq(total(&all, today, 1), 9);
    add(&premium, today, -2);
    ck_assert_uint_eq(total(&premium, today, 1), 3);
}
END_TEST

START_TEST(per_user_counters_are_apart)
{
    tw_id alice = tw_id_new(), bob = tw_id_new();
    const tw_counter a = {.user = &alice, .name = "tasks_done"};
    const tw_counter b = {.user = &bob, .name = "tasks_done"};
    const tw_counter global = {.name = "tasks_done"};
    add(&a, 10, 1);
    add(&a, 11, 1);
    add(&b, 10, 4);
    ck_assert_uint_eq(total(&a, 10, 2), 2);
    ck_assert_uint_eq(total(&b, 10, 2), 4);
    ck_assert_uint_eq(total(&global, 10, 2), 0);
}
END_TEST

START_TEST(an_aborted_addition_counts_nothing)
{
    const tw_counter c = {.name = "aborted"};
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(fx.store, &t), TW_OK);
    ck_assert_int_eq(tw_txn_counter_add(t, &c, 5, 10), TW_OK);
    tw_txn_abort(t);
    ck_assert_uint_eq(total(&c, 5, 1), 0);
}
END_TEST

START_TEST(ranges_are_bounded)
{
    const tw_counter c = {.name = "x"};
    uint64_t sum;
    ck_assert_int_eq(tw_store_counter_read(fx.store, &c, 0, 0, NULL, &sum), TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_store_counter_read(fx.store, &c, 0, TW_COUNTER_MAX_DAYS + 1, NULL, &sum),
                     TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_store_counter_read(fx.store, &c, 0, TW_COUNTER_MAX_DAYS, NULL, &sum),
                     TW_OK);
    ck_assert_uint_eq(sum, 0);
}
END_TEST

#define THREADS 4
#define ADDS    500

static const tw_counter hot = {.name = "hot"};

/* Each addition in its own transaction, committed directly: a conflict
 * would show as a failed commit, since nothing retries here. */
static void *add_many(void *arg)
{
    long failures = 0;
    for (int i = 0; i < ADDS; i++) {
        tw_txn *t;
        if (tw_txn_begin(fx.store, &t) || tw_txn_counter_add(t, &hot, 1, 1) || tw_txn_commit(t))
            failures++;
    }
    return (void *)failures;
}

START_TEST(concurrent_additions_never_conflict)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, add_many, NULL);
    for (int i = 0; i < THREADS; i++) {
        void *failures;
        pthread_join(th[i], &failures);
        ck_assert_ptr_null(failures);
    }
    ck_assert_uint_eq(total(&hot, 1, 1), THREADS * ADDS);
}
END_TEST

/* What tw_store_counter_series listed: up to 8 series. */
struct listed {
    char dims[8][32];
    uint64_t totals[8];
    int n;
};

static tw_err list_fn(void *ctx, const char *dims, uint64_t total)
{
    struct listed *l = ctx;
    ck_assert_int_lt(l->n, 8);
    snprintf(l->dims[l->n], sizeof l->dims[0], "%s", dims);
    l->totals[l->n++] = total;
    return TW_OK;
}

START_TEST(series_list_every_dimension_with_its_total_over_days)
{
    const tw_counter sleep = {.name = "entries", .dims = "type=sleep"};
    const tw_counter water = {.name = "entries", .dims = "type=water"};
    const tw_counter other = {.name = "entriesX", .dims = "type=sleep"};
    add(&sleep, 100, 2);
    add(&sleep, 101, 3);
    add(&sleep, 250, 7);
    add(&water, 50, 1);
    add(&other, 101, 9);
    struct listed l = {.n = 0};
    ck_assert_int_eq(tw_store_counter_series(fx.store, NULL, "entries", 100, 200, list_fn, &l),
                     TW_OK);
    ck_assert_int_eq(l.n, 2); /* a series with nothing in the range is still listed */
    ck_assert_str_eq(l.dims[0], "type=sleep");
    ck_assert_uint_eq(l.totals[0], 5);
    ck_assert_str_eq(l.dims[1], "type=water");
    ck_assert_uint_eq(l.totals[1], 0);
    l.n = 0;
    ck_assert_int_eq(tw_store_counter_series(fx.store, NULL, "entries", 0, 1000, list_fn, &l),
                     TW_OK);
    ck_assert_uint_eq(l.totals[0], 12);
    ck_assert_uint_eq(l.totals[1], 1);
    l.n = 0;
    tw_id user = tw_id_new();
    ck_assert_int_eq(tw_store_counter_series(fx.store, &user, "entries", 0, 1000, list_fn, &l),
                     TW_OK);
    ck_assert_int_eq(l.n, 0);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("counter");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, days_are_utc_day_numbers);
    tcase_add_test(tc, counts_are_bucketed_by_day_and_dimensions);
    tcase_add_test(tc, per_user_counters_are_apart);
    tcase_add_test(tc, an_aborted_addition_counts_nothing);
    tcase_add_test(tc, ranges_are_bounded);
    tcase_add_test(tc, concurrent_additions_never_conflict);
    tcase_add_test(tc, series_list_every_dimension_with_its_total_over_days);
    suite_add_tcase(s, tc);
    return s;
}
