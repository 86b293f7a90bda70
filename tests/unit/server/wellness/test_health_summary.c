/*
 * Unit tests for server/wellness/health_summary.c: which logical day an
 * entry counts for (its recorded offset, else the profile's zone; sleep by
 * its end; a late day-start hour), each day's totals, the window of start
 * times a summary reads, and the weight trend.
 */
#include "wellness/health.h"

#include "tw_check.h"

#include <math.h>

#define HOUR TW_MS_PER_HOUR
#define DAY  TW_MS_PER_DAY

static tw_arena *arena;
static int32_t jun1; /* day number of 2024-06-01 */

static void setup(void)
{
    arena = tw_arena_new(4096);
    jun1 = tw_date_to_day(2024, 6, 1);
}

static void teardown(void)
{
    tw_arena_free(arena);
}

static tw_health_summary summary(const char *zone, int hour, int32_t first, int32_t ndays)
{
    tw_day_settings c = {zone, hour};
    tw_health_summary s;
    ck_assert_int_eq(tw_health_summary_init(&s, &c, first, ndays, arena), TW_OK);
    return s;
}

static Tw__Store__V1__HealthLogDigest digest(int type, int64_t end_ms, double value)
{
    Tw__Store__V1__HealthLogDigest d = TW__STORE__V1__HEALTH_LOG_DIGEST__INIT;
    d.type = (uint32_t)type;
    d.end_unix_ms = end_ms;
    d.value = value;
    return d;
}

START_TEST(totals_of_a_day)
{
    tw_health_summary s = summary("UTC", 0, jun1, 2);
    int64_t day = jun1 * DAY;
    Tw__Store__V1__HealthLogDigest d;
    d = digest(TW_HEALTH_WATER, day + 9 * HOUR, 250);
    tw_health_summary_add(&s, day + 9 * HOUR, &d);
    d = digest(TW_HEALTH_WATER, day + 13 * HOUR, 500.5);
    tw_health_summary_add(&s, day + 13 * HOUR, &d);
    d = digest(TW_HEALTH_STEPS, day + 11 * HOUR, 4000);
    tw_health_summary_add(&s, day + 10 * HOUR, &d);
    d = digest(TW_HEALTH_EXERCISE, day + 19 * HOUR, (double)(45 * 60000));
    tw_health_summary_add(&s, day + 18 * HOUR, &d);
    d = digest(TW_HEALTH_MEDITATION, day + 7 * HOUR, (double)(10 * 60000));
    tw_health_summary_add(&s, day + 7 * HOUR, &d);
    d = digest(TW_HEALTH_MOOD, day + 8 * HOUR, 0.5);
    tw_health_summary_add(&s, day + 8 * HOUR, &d);
    d = digest(TW_HEALTH_MOOD, day + 20 * HOUR, -0.25);
    tw_health_summary_add(&s, day + 20 * HOUR, &d);
    d = digest(TW_HEALTH_WEIGHT, day + 21 * HOUR, 70.4);
    tw_health_summary_add(&s, day + 21 * HOUR, &d);
    d = digest(TW_HEALTH_WEIGHT, day + 7 * HOUR, 71.0); /* earlier: not the day's last */
    tw_health_summary_add(&s, day + 7 * HOUR, &d);
    d = digest(TW_HEALTH_CUSTOM, day + 7 * HOUR, 0);
    tw_health_summary_add(&s, day + 7 * HOUR, &d);

    const tw_health_day *t = &s.days[0];
    ck_assert_double_eq(t->water_ml, 750.5);
    ck_assert_int_eq(t->steps, 4000);
    ck_assert_int_eq(t->exercise_ms, 45 * 60000);
    ck_assert_int_eq(t->meditation_ms, 10 * 60000);
    ck_assert_int_eq(t->mood_count, 2);
    ck_assert_double_eq(t->mood_sum / t->mood_count, 0.125);
    ck_assert_double_eq(t->weight_kg, 70.4);
    ck_assert_int_eq(t->entry_count, 10);
    ck_assert_int_eq(s.days[1].entry_count, 0);
}
END_TEST

START_TEST(sleep_counts_for_the_day_it_ended)
{
    tw_health_summary s = summary("UTC", 0, jun1, 2);
    /* 23:00 on May 31 to 07:00 on June 1. */
    Tw__Store__V1__HealthLogDigest d =
        digest(TW_HEALTH_SLEEP, jun1 * DAY + 7 * HOUR, (double)(8 * HOUR));
    tw_health_summary_add(&s, jun1 * DAY - HOUR, &d);
    ck_assert_int_eq(s.days[0].sleep_ms, 8 * HOUR);
    /* The window reaches back a day for such sessions. */
    int64_t from, to;
    tw_health_summary_window(&s, &from, &to);
    ck_assert_int_le(from, jun1 * DAY - HOUR);
    ck_assert_int_ge(to, (jun1 + 2) * DAY);
}
END_TEST

START_TEST(recorded_offsets_decide_the_day)
{
    /* A user on New York time who flew to London on June 2. */
    tw_health_summary s = summary("America/New_York", 0, jun1, 3);
    Tw__Store__V1__HealthLogDigest d = digest(TW_HEALTH_WATER, 0, 100);
    /* 23:30 in New York on June 1 (EDT, -4 h) = 03:30 UTC June 2. */
    d.has_utc_offset = true;
    d.utc_offset_seconds = -4 * 3600;
    tw_health_summary_add(&s, (jun1 + 1) * DAY + 3 * HOUR + HOUR / 2, &d);
    /* 00:30 in London on June 3 (BST, +1 h) = 23:30 UTC June 2, which is
     * still June 2 in New York: the recorded offset wins. */
    d.utc_offset_seconds = 3600;
    d.value = 10;
    tw_health_summary_add(&s, (jun1 + 1) * DAY + 23 * HOUR + HOUR / 2, &d);
    /* Without an offset the profile's zone decides: 02:00 UTC June 3 is
     * 22:00 June 2 in New York. */
    d.has_utc_offset = false;
    d.value = 1;
    tw_health_summary_add(&s, (jun1 + 2) * DAY + 2 * HOUR, &d);
    ck_assert_double_eq(s.days[0].water_ml, 100);
    ck_assert_double_eq(s.days[1].water_ml, 1);
    ck_assert_double_eq(s.days[2].water_ml, 10);
}
END_TEST

START_TEST(late_day_start_and_dst)
{
    /* Days start at 04:00 in New York; 2024-03-10 loses an hour. */
    int32_t mar9 = tw_date_to_day(2024, 3, 9);
    tw_health_summary s = summary("America/New_York", 4, mar9, 3);
    Tw__Store__V1__HealthLogDigest d = digest(TW_HEALTH_STEPS, 0, 1);
    /* 03:30 EDT on March 10 (07:30 UTC): still March 9's logical day. */
    tw_health_summary_add(&s, (mar9 + 1) * DAY + 7 * HOUR + HOUR / 2, &d);
    /* 04:00 EDT on March 10 (08:00 UTC): March 10. */
    d.value = 10;
    tw_health_summary_add(&s, (mar9 + 1) * DAY + 8 * HOUR, &d);
    /* 03:59 EDT on March 11 (07:59 UTC): still March 10. */
    d.value = 100;
    tw_health_summary_add(&s, (mar9 + 2) * DAY + 8 * HOUR - 60000, &d);
    ck_assert_int_eq(s.days[0].steps, 1);
    ck_assert_int_eq(s.days[1].steps, 110);
    ck_assert_int_eq(s.days[2].steps, 0);
    /* Entries outside the range are not counted anywhere. */
    d.value = 1000;
    tw_health_summary_add(&s, mar9 * DAY, &d);
    tw_health_summary_add(&s, (mar9 + 5) * DAY, &d);
    ck_assert_int_eq(s.days[0].steps + s.days[1].steps + s.days[2].steps, 111);
}
END_TEST

START_TEST(the_window_covers_every_offset)
{
    tw_health_summary s = summary("Pacific/Kiritimati", 0, jun1, 1); /* +14 h */
    int64_t from, to;
    tw_health_summary_window(&s, &from, &to);
    /* At +14 h, June 1 starts at 10:00 UTC on May 31; at -18 h an entry
     * recorded late on June 1 has a UTC start of June 2 18:00. */
    ck_assert_int_le(from, jun1 * DAY - 18 * HOUR - TW_HEALTH_SLEEP_MAX_MS);
    ck_assert_int_ge(to, (jun1 + 1) * DAY + 18 * HOUR);
}
END_TEST

START_TEST(weight_trend)
{
    tw_health_summary s = summary("UTC", 0, jun1, 15);
    int32_t days;
    double change, slope;
    tw_health_weight_trend(&s, &days, &change, &slope);
    ck_assert_int_eq(days, 0);
    ck_assert_double_eq(slope, 0);
    /* One day: no trend yet. */
    s.days[0].weight_kg = 80;
    tw_health_weight_trend(&s, &days, &change, &slope);
    ck_assert_int_eq(days, 1);
    ck_assert_double_eq(change, 0);
    ck_assert_double_eq(slope, 0);
    /* Losing 0.1 kg a day on days 0, 7 and 14: 0.7 kg a week. */
    s.days[7].weight_kg = 79.3;
    s.days[14].weight_kg = 78.6;
    tw_health_weight_trend(&s, &days, &change, &slope);
    ck_assert_int_eq(days, 3);
    ck_assert_double_eq_tol(change, -1.4, 1e-9);
    ck_assert_double_eq_tol(slope, -0.7, 1e-9);
    /* Noise around a flat line: the slope of the least-squares fit. */
    s.days[7].weight_kg = 80;
    s.days[14].weight_kg = 80.6;
    tw_health_weight_trend(&s, &days, &change, &slope);
    /* x = 0, 7, 14; y = 80, 80, 80.6: slope 0.6 / 14 per day. */
    ck_assert_double_eq_tol(slope, 0.3, 1e-9);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("health_summary");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, totals_of_a_day);
    tcase_add_test(tc, sleep_counts_for_the_day_it_ended);
    tcase_add_test(tc, recorded_offsets_decide_the_day);
    tcase_add_test(tc, late_day_start_and_dst);
    tcase_add_test(tc, the_window_covers_every_offset);
    tcase_add_test(tc, weight_trend);
    suite_add_tcase(s, tc);
    return s;
}
