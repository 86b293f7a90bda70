/* Unit tests for server/tasks/streak.c: credits with the grace window and
 * day-start hour, day gaps across daylight saving and time-zone changes
 * (never broken, never counted twice), overall and per-task streaks. */
#include "tasks/streak.h"

#include "tw_check.h"

#define HOUR_MS (3600 * INT64_C(1000))

static int64_t at(const char *zone, int y, int mo, int d, int h, int mi)
{
    int64_t ms;
    tw_local_time lt = {y, mo, d, h, mi, 0};
    ck_assert_int_eq(tw_tz_instant(zone, &lt, &ms), TW_OK);
    return ms;
}

static tw_credit credit(const char *zone, int hour_start, int64_t ms)
{
    return (tw_credit){ms, {zone, hour_start}};
}

static int32_t gap(tw_credit a, tw_credit b)
{
    int32_t g;
    ck_assert_int_eq(tw_streak_day_gap(&a, &b, &g), TW_OK);
    return g;
}

START_TEST(completions_credit_their_day_or_yesterday_within_grace)
{
    tw_day_settings ny = {"America/New_York", 0};
    int32_t mon = tw_date_to_day(2024, 3, 4), tue = mon + 1;
    tw_credit_result r;
    /* On the day: on time. */
    ck_assert_int_eq(tw_streak_credit(&ny, at(ny.time_zone, 2024, 3, 4, 21, 0), true, mon, &r),
                     TW_OK);
    ck_assert(r.on_time);
    ck_assert_int_eq(r.credited_day, mon);
    /* Early: on time, counted today. */
    ck_assert_int_eq(tw_streak_credit(&ny, at(ny.time_zone, 2024, 3, 3, 21, 0), true, mon, &r),
                     TW_OK);
    ck_assert(r.on_time);
    ck_assert_int_eq(r.credited_day, mon - 1);
    /* Monday's occurrence at 05:59 on Tuesday: counts for Monday, and its
     * credit instant is Monday's last moment. */
    int64_t tue_start = at(ny.time_zone, 2024, 3, 5, 0, 0);
    ck_assert_int_eq(tw_streak_credit(&ny, tue_start + 6 * HOUR_MS - 60000, true, mon, &r), TW_OK);
    ck_assert(r.on_time);
    ck_assert_int_eq(r.credited_day, mon);
    ck_assert_int_eq(r.credit_ms, tue_start - 1);
    /* At 06:00 on Tuesday the grace window is over: late, counts Tuesday. */
    ck_assert_int_eq(tw_streak_credit(&ny, tue_start + 6 * HOUR_MS, true, mon, &r), TW_OK);
    ck_assert(!r.on_time);
    ck_assert_int_eq(r.credited_day, tue);
    /* Two days late: no grace. */
    ck_assert_int_eq(tw_streak_credit(&ny, tue_start + 24 * HOUR_MS + HOUR_MS, true, mon, &r),
                     TW_OK);
    ck_assert(!r.on_time);
    ck_assert_int_eq(r.credited_day, tue + 1);
    /* No due: always on time, today. */
    ck_assert_int_eq(tw_streak_credit(&ny, tue_start + HOUR_MS, false, 0, &r), TW_OK);
    ck_assert(r.on_time);
    ck_assert_int_eq(r.credited_day, tue);
    /* Day starting at 04:00: 02:00 on Tuesday is still Monday. */
    tw_day_settings ny4 = {"America/New_York", 4};
    ck_assert_int_eq(tw_streak_credit(&ny4, tue_start + 2 * HOUR_MS, true, mon, &r), TW_OK);
    ck_assert(r.on_time);
    ck_assert_int_eq(r.credited_day, mon);
    ck_assert_int_eq(r.credit_ms, tue_start + 2 * HOUR_MS);
}
END_TEST

/* Which occurrences have come for a completion: within the grace window
 * only yesterday's and earlier (all-day and timed alike). */
START_TEST(occurrences_come_by_yesterday_within_grace)
{
    tw_day_settings ny = {"America/New_York", 0};
    int64_t dec3 = at(ny.time_zone, 2026, 12, 3, 0, 0), cutoff;
    ck_assert_int_eq(tw_streak_occurrence_cutoff(&ny, dec3 + 5 * HOUR_MS, &cutoff), TW_OK);
    ck_assert_int_eq(cutoff, dec3 - 1);
    ck_assert_int_eq(tw_streak_occurrence_cutoff(&ny, dec3 + 6 * HOUR_MS, &cutoff), TW_OK);
    ck_assert_int_eq(cutoff, dec3 + 6 * HOUR_MS);
    /* A day starting at 04:00: its grace window runs to 10:00. */
    tw_day_settings ny4 = {"America/New_York", 4};
    ck_assert_int_eq(tw_streak_occurrence_cutoff(&ny4, dec3 + 9 * HOUR_MS, &cutoff), TW_OK);
    ck_assert_int_eq(cutoff, dec3 + 4 * HOUR_MS - 1);
    ck_assert_int_eq(tw_streak_occurrence_cutoff(&ny4, dec3 + 3 * HOUR_MS, &cutoff), TW_OK);
    ck_assert_int_eq(cutoff, dec3 + 3 * HOUR_MS); /* still the 2nd, past its grace */
}
END_TEST

START_TEST(daylight_saving_days_are_still_one_day)
{
    /* 23:30 on the Saturday and on the (23-hour) Sunday of the Berlin
     * spring change, then the (25-hour) Sunday in October. */
    const char *b = "Europe/Berlin";
    ck_assert_int_eq(
        gap(credit(b, 0, at(b, 2024, 3, 30, 23, 30)), credit(b, 0, at(b, 2024, 3, 31, 23, 30))), 1);
    ck_assert_int_eq(
        gap(credit(b, 0, at(b, 2024, 3, 31, 0, 10)), credit(b, 0, at(b, 2024, 3, 31, 23, 50))), 0);
    ck_assert_int_eq(
        gap(credit(b, 0, at(b, 2024, 10, 26, 23, 30)), credit(b, 0, at(b, 2024, 10, 27, 23, 30))),
        1);
    ck_assert_int_eq(
        gap(credit(b, 0, at(b, 2024, 10, 27, 0, 10)), credit(b, 0, at(b, 2024, 10, 27, 23, 50))),
        0);
    const char *ny = "America/New_York";
    ck_assert_int_eq(
        gap(credit(ny, 0, at(ny, 2024, 3, 9, 23, 0)), credit(ny, 0, at(ny, 2024, 3, 10, 23, 0))),
        1);
    ck_assert_int_eq(
        gap(credit(ny, 0, at(ny, 2024, 11, 2, 0, 30)), credit(ny, 0, at(ny, 2024, 11, 3, 23, 30))),
        1);
    /* With a 02:00 day start on the night of the US spring change. */
    ck_assert_int_eq(
        gap(credit(ny, 2, at(ny, 2024, 3, 10, 1, 30)), credit(ny, 2, at(ny, 2024, 3, 10, 3, 30))),
        1);
}
END_TEST

START_TEST(time_zone_changes_neither_break_nor_double_count)
{
    /* East: done Monday 20:00 in New York (Tuesday 09:00 in Tokyo), then
     * Wednesday 08:00 in Tokyo after the flight: consecutive days. In New
     * York's calendar alone the second would be Tuesday too. */
    const char *ny = "America/New_York", *tokyo = "Asia/Tokyo";
    tw_credit mon_ny = credit(ny, 0, at(ny, 2024, 6, 3, 20, 0));
    tw_credit wed_tokyo = credit(tokyo, 0, at(tokyo, 2024, 6, 5, 8, 0));
    ck_assert_int_eq(gap(mon_ny, wed_tokyo), 1);
    /* Where the two calendars disagree, either one saying "consecutive" is
     * enough. East: Monday 09:00 in New York, then Wednesday 01:00 in
     * Tokyo (Tuesday noon in New York): Tokyo alone says two days. */
    tw_credit a = credit(ny, 0, at(ny, 2024, 6, 3, 9, 0));
    tw_credit b = credit(tokyo, 0, at(tokyo, 2024, 6, 5, 1, 0));
    tw_day_settings tokyo_days = {tokyo, 0};
    int32_t da, db;
    ck_assert_int_eq(tw_logical_day(&tokyo_days, a.unix_ms, &da), TW_OK);
    ck_assert_int_eq(tw_logical_day(&tokyo_days, b.unix_ms, &db), TW_OK);
    ck_assert_int_eq(db - da, 2);
    ck_assert_int_eq(gap(a, b), 1);
    /* West: Monday 23:00 in Tokyo, then Tuesday 23:00 in New York
     * (Wednesday noon in Tokyo): Tokyo alone says two days. */
    a = credit(tokyo, 0, at(tokyo, 2024, 6, 3, 23, 0));
    b = credit(ny, 0, at(ny, 2024, 6, 4, 23, 0));
    ck_assert_int_eq(tw_logical_day(&tokyo_days, a.unix_ms, &da), TW_OK);
    ck_assert_int_eq(tw_logical_day(&tokyo_days, b.unix_ms, &db), TW_OK);
    ck_assert_int_eq(db - da, 2);
    ck_assert_int_eq(gap(a, b), 1);
    /* West: Monday 23:00 in Tokyo (Monday 10:00 in New York), then Monday
     * 20:00 in New York: one day, not two. */
    tw_credit mon_tokyo = credit(tokyo, 0, at(tokyo, 2024, 6, 3, 23, 0));
    tw_credit mon_ny_evening = credit(ny, 0, at(ny, 2024, 6, 3, 20, 0));
    ck_assert_int_eq(gap(mon_tokyo, mon_ny_evening), 0);
    tw_credit streak[] = {
        credit(tokyo, 0, at(tokyo, 2024, 6, 2, 21, 0)), /* Sunday, Tokyo */
        mon_tokyo,                                      /* Monday, Tokyo */
        mon_ny_evening,                                 /* Monday again, New York */
        credit(ny, 0, at(ny, 2024, 6, 4, 19, 0)),       /* Tuesday, New York */
    };
    tw_credit now = credit(ny, 0, at(ny, 2024, 6, 5, 12, 0));
    tw_streaks s;
    ck_assert_int_eq(tw_streak_days(streak, 4, &now, &s), TW_OK);
    ck_assert_int_eq(s.longest, 3);
    ck_assert_int_eq(s.current, 3);
    /* A real missing day still breaks it. */
    tw_credit broken[] = {mon_ny, credit(ny, 0, at(ny, 2024, 6, 5, 20, 0))};
    ck_assert_int_eq(tw_streak_days(broken, 2, &now, &s), TW_OK);
    ck_assert_int_eq(s.longest, 1);
    ck_assert_int_eq(s.current, 1);
}
END_TEST

START_TEST(overall_streaks)
{
    const char *z = "Europe/Berlin";
    tw_credit c[] = {
        credit(z, 0, at(z, 2024, 3, 1, 9, 0)),  credit(z, 0, at(z, 2024, 3, 2, 9, 0)),
        credit(z, 0, at(z, 2024, 3, 2, 22, 0)), credit(z, 0, at(z, 2024, 3, 3, 9, 0)),
        credit(z, 0, at(z, 2024, 3, 5, 9, 0)),  credit(z, 0, at(z, 2024, 3, 6, 9, 0)),
    };
    tw_streaks s;
    /* On 7 March the streak of 5-6 March is alive (today is not over). */
    tw_credit now = credit(z, 0, at(z, 2024, 3, 7, 8, 0));
    ck_assert_int_eq(tw_streak_days(c, 6, &now, &s), TW_OK);
    ck_assert_int_eq(s.longest, 3);
    ck_assert_int_eq(s.current, 2);
    /* On 8 March it is over. */
    now = credit(z, 0, at(z, 2024, 3, 8, 8, 0));
    ck_assert_int_eq(tw_streak_days(c, 6, &now, &s), TW_OK);
    ck_assert_int_eq(s.current, 0);
    ck_assert_int_eq(s.longest, 3);
    ck_assert_int_eq(tw_streak_days(NULL, 0, &now, &s), TW_OK);
    ck_assert(s.current == 0 && s.longest == 0);
    tw_credit bad = credit("Nowhere/Town", 0, 0);
    ck_assert_int_eq(tw_streak_days(&bad, 1, &now, &s), TW_ERR_VALIDATION);
}
END_TEST

START_TEST(task_streaks_count_on_time_occurrences)
{
    tw_occurrence_done d[] = {
        {true, 0}, {true, 0}, {false, 0}, {true, 0}, {true, 0}, {true, 0}, {true, 0}, {true, 2},
    };
    tw_streaks s = tw_streak_occurrences(d, 8, false);
    ck_assert_int_eq(s.longest, 4); /* the four after the late one */
    ck_assert_int_eq(s.current, 1); /* two missed before the last */
    s = tw_streak_occurrences(d, 8, true);
    ck_assert_int_eq(s.current, 0); /* the open occurrence is missed already */
    s = tw_streak_occurrences(d, 7, false);
    ck_assert_int_eq(s.current, 4);
    s = tw_streak_occurrences(d, 3, false);
    ck_assert(s.current == 0 && s.longest == 2);
    s = tw_streak_occurrences(NULL, 0, false);
    ck_assert(s.current == 0 && s.longest == 0);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("streak");
    TCase *tc = tcase_create("streak");
    tcase_add_test(tc, completions_credit_their_day_or_yesterday_within_grace);
    tcase_add_test(tc, occurrences_come_by_yesterday_within_grace);
    tcase_add_test(tc, daylight_saving_days_are_still_one_day);
    tcase_add_test(tc, time_zone_changes_neither_break_nor_double_count);
    tcase_add_test(tc, overall_streaks);
    tcase_add_test(tc, task_streaks_count_on_time_occurrences);
    suite_add_tcase(s, tc);
    return s;
}
