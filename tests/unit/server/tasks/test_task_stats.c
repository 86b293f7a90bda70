/* Unit tests for server/tasks/task_stats.c: overall and per-task streaks
 * and completion rates from the stored log, across a time-zone change. */
#include "task_fixture.h"
#include "tasks/task_stats.h"

#include "tw_check.h"

#define NY "America/New_York"

static Tw__V1__GetTaskStatsResponse stats(const tw_id *task)
{
    Tw__V1__GetTaskStatsResponse out = TW__V1__GET_TASK_STATS_RESPONSE__INIT;
    ck_assert_int_eq(
        tw_task_stats(fx.store, &fx_alice, &tf_env.day, tf_env.now_ms, task, fx.arena, &out),
        TW_OK);
    return out;
}

/* Completes a new one-off task at a local time in the current zone. */
static void done_at(int y, int mo, int d, int h)
{
    tw_id id = tf_id(tf_create_ok(tf_task("one-off")));
    tf_set_now(tf_at(tf_env.day.time_zone, y, mo, d, h, 0));
    ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, NULL, NULL), TW_OK);
}

START_TEST(overall_streaks_and_rates)
{
    done_at(2024, 6, 1, 10);
    done_at(2024, 6, 2, 10);
    done_at(2024, 6, 2, 22); /* same day: counted once */
    done_at(2024, 6, 3, 23);
    done_at(2024, 6, 5, 8);
    done_at(2024, 6, 6, 8);
    /* An open task due on 4 June: missed. */
    Tw__V1__Task *late = tf_task("Missed it");
    late->due = tf_due_time(NY, 2024, 6, 4, 9, 0);
    tf_create_ok(late);
    tf_set_now(tf_at(NY, 2024, 6, 7, 12, 0));
    Tw__V1__GetTaskStatsResponse s = stats(NULL);
    ck_assert_int_eq(s.longest_streak, 3);
    ck_assert_int_eq(s.current_streak, 2); /* 5-6 June, alive on the 7th */
    ck_assert_int_eq(s.completed_7d, 6);
    ck_assert_int_eq(s.missed_7d, 1);
    ck_assert(s.completion_rate_7d > 0.857 && s.completion_rate_7d < 0.858);
    ck_assert_int_eq(s.today->day, 7);
    ck_assert_str_eq(s.time_zone, NY);
    tf_set_now(tf_at(NY, 2024, 6, 8, 12, 0));
    s = stats(NULL);
    ck_assert_int_eq(s.current_streak, 0);
    /* Five weeks later nothing is in the windows. */
    tf_set_now(tf_at(NY, 2024, 7, 15, 12, 0));
    s = stats(NULL);
    ck_assert_int_eq(s.completed_30d, 0);
    ck_assert_int_eq(s.missed_30d, 0);
    ck_assert(s.completion_rate_30d == 0.0);
    ck_assert_int_eq(s.longest_streak, 3);
}
END_TEST

START_TEST(a_flight_east_keeps_the_streak)
{
    /* Sunday and Monday evenings in New York, then Wednesday morning in
     * Tokyo after the flight (Tuesday evening in New York). */
    done_at(2024, 6, 2, 20);
    done_at(2024, 6, 3, 20);
    tf_env.day = (tw_day_settings){"Asia/Tokyo", 0};
    done_at(2024, 6, 5, 8);
    tf_set_now(tf_at("Asia/Tokyo", 2024, 6, 5, 12, 0));
    Tw__V1__GetTaskStatsResponse s = stats(NULL);
    ck_assert_int_eq(s.current_streak, 3);
    ck_assert_int_eq(s.longest_streak, 3);
    ck_assert_str_eq(s.time_zone, "Asia/Tokyo");
}
END_TEST

START_TEST(a_recurring_tasks_own_streak)
{
    Tw__V1__Task *t = tf_task("Meditate");
    t->due = tf_due_time(NY, 2024, 6, 1, 7, 0);
    t->recurrence = tf_rrule("FREQ=DAILY");
    tw_id id = tf_id(tf_create_ok(t));
    int days[] = {1, 2, 3, 6, 7}; /* the 6th's completion passes over the 4th and 5th */
    for (size_t i = 0; i < 5; i++) {
        tf_set_now(tf_at(NY, 2024, 6, days[i], 7, 30));
        ck_assert_int_eq(tf_complete(&id, tf_env.now_ms, NULL, NULL), TW_OK);
    }
    tf_set_now(tf_at(NY, 2024, 6, 8, 6, 0)); /* the 8th's not due yet */
    Tw__V1__GetTaskStatsResponse s = stats(&id);
    ck_assert_int_eq(s.longest_streak, 3);
    ck_assert_int_eq(s.current_streak, 2); /* the 6th and the 7th */
    ck_assert_int_eq(s.completed_7d, 4);   /* 2-8 June: not the 1st */
    ck_assert_int_eq(s.completed_30d, 5);
    ck_assert_int_eq(s.missed_7d, 2); /* the 4th and the 5th */
    ck_assert(s.completion_rate_7d > 0.666 && s.completion_rate_7d < 0.667);
    /* A day on with the 8th undone: the streak is gone. */
    tf_set_now(tf_at(NY, 2024, 6, 9, 12, 0));
    s = stats(&id);
    ck_assert_int_eq(s.current_streak, 0);
    ck_assert_int_eq(s.missed_7d, 3); /* and the 8th is overdue */
    tw_id nobody = tw_id_new();
    Tw__V1__GetTaskStatsResponse out = TW__V1__GET_TASK_STATS_RESPONSE__INIT;
    ck_assert_int_eq(
        tw_task_stats(fx.store, &fx_alice, &tf_env.day, tf_env.now_ms, &nobody, fx.arena, &out),
        TW_ERR_NOT_FOUND);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("task_stats");
    TCase *tc = tcase_create("task_stats");
    tcase_add_checked_fixture(tc, tf_setup, tf_teardown);
    tcase_add_test(tc, overall_streaks_and_rates);
    tcase_add_test(tc, a_flight_east_keeps_the_streak);
    tcase_add_test(tc, a_recurring_tasks_own_streak);
    suite_add_tcase(s, tc);
    return s;
}
