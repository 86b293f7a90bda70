/* Unit tests for server/tasks/recurrence.c: the RRULE subset, daily,
 * weekly and monthly series (ordinals included), COUNT and UNTIL, EXDATE,
 * 09:00 staying 09:00 across the March and November daylight-saving
 * changes in America/New_York and Europe/Berlin, occurrences in 2027's
 * spring-forward gaps and fall-back overlaps (Berlin, New York, Lord Howe),
 * skipped occurrences and the moving start used by repeat-from-completion. */
#include "tasks/recurrence.h"

#include "tw_check.h"

#include <stdio.h>
#include <string.h>

#define MAX_OCC 64

static int64_t utc_of(const char *zone, tw_local_time lt)
{
    int64_t ms;
    ck_assert_int_eq(tw_tz_instant(zone, &lt, &ms), TW_OK);
    return ms;
}

/* Up to max occurrences of a series from its start, as text
 * "YYYY-MM-DD HH:MM" (or "YYYY-MM-DD" all day), joined by ", ". With
 * via_instants, each occurrence is read as an instant and back, as a
 * stored due is, and the next one is looked for after that reading, the
 * way CompleteTask walks a series (a skipped 02:30 comes back as 03:30). */
static const char *walk_series(const tw_recurrence *r, int max, bool via_instants)
{
    static char out[MAX_OCC * 20];
    out[0] = '\0';
    tw_local_time at;
    const tw_local_time *after = NULL;
    for (int i = 0; i < max; i++) {
        tw_recurrence_step step;
        ck_assert_int_eq(tw_recurrence_step_after(r, after, NULL, &step), TW_OK);
        if (!step.found)
            break;
        at = step.next;
        if (via_instants)
            ck_assert_int_eq(tw_tz_local(r->time_zone, utc_of(r->time_zone, step.next), &at),
                             TW_OK);
        after = &at;
        char one[48];
        if (r->all_day)
            snprintf(one, sizeof one, "%04d-%02d-%02d", at.year, at.month, at.day);
        else
            snprintf(one, sizeof one, "%04d-%02d-%02d %02d:%02d", at.year, at.month, at.day,
                     at.hour, at.minute);
        if (out[0])
            strcat(out, ", ");
        strcat(out, one);
    }
    return out;
}

static const char *walk(const tw_recurrence *r, int max)
{
    return walk_series(r, max, false);
}

static const char *walk_via_instants(const char *rrule, const char *zone, tw_local_time start,
                                     int max)
{
    tw_recurrence r = {.rrule = rrule, .time_zone = zone, .start = start};
    return walk_series(&r, max, true);
}

static tw_recurrence series(const char *rrule, const char *zone, int y, int m, int d, int h)
{
    return (tw_recurrence){.rrule = rrule, .time_zone = zone, .start = {y, m, d, h, 0, 0}};
}

START_TEST(rules_outside_the_subset_are_refused)
{
    static const char *const good[] = {
        "FREQ=DAILY",
        "FREQ=DAILY;INTERVAL=3",
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        "freq=weekly;byday=mo",
        "FREQ=MONTHLY;BYDAY=2TU,-1FR",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        "FREQ=DAILY;COUNT=10",
        "FREQ=DAILY;UNTIL=20241231T235959Z",
        "FREQ=WEEKLY;WKST=SU;BYDAY=SU,SA",
    };
    static const char *const bad[] = {
        "",
        "RRULE:FREQ=DAILY",
        "INTERVAL=2",
        "FREQ=HOURLY",
        "FREQ=MINUTELY",
        "FREQ=SECONDLY",
        "FREQ=FORTNIGHTLY",
        "FREQ=DAILY;BYHOUR=9",
        "FREQ=YEARLY;BYWEEKNO=20",
        "FREQ=YEARLY;BYYEARDAY=100",
        "FREQ=DAILY;COUNT=3;UNTIL=20241231T235959Z",
        "FREQ=DAILY;FREQ=WEEKLY",
        "FREQ=WEEKLY;BYDAY=2MO",
        "FREQ=MONTHLY;BYMONTHDAY=40",
        "FREQ=MONTHLY;BYDAY=XX",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;BYSETPOS=1",
        "FREQ=DAILY;X-NAME=1",
        "FREQ=DAILY;COUNT",
        "garbage",
    };
    char why[200];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(tw_rrule_check(good[i], why, sizeof why), "%s refused: %s", good[i], why);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        ck_assert_msg(!tw_rrule_check(bad[i], why, sizeof why), "%s accepted", bad[i]);
        ck_assert_msg(why[0] != '\0', "%s refused without a reason", bad[i]);
    }
    char long_rule[TW_RRULE_MAX + 16] = "FREQ=DAILY;BYMONTH=1";
    while (strlen(long_rule) < TW_RRULE_MAX)
        strcat(long_rule, ",1");
    ck_assert(!tw_rrule_check(long_rule, why, sizeof why));
    ck_assert_int_eq(tw_rrule_count("FREQ=DAILY;COUNT=7"), 7);
    ck_assert_int_eq(tw_rrule_count("FREQ=DAILY"), 0);
}
END_TEST

START_TEST(daily_at_nine_across_the_us_changes)
{
    tw_recurrence r = series("FREQ=DAILY", "America/New_York", 2024, 3, 9, 9);
    ck_assert_str_eq(walk(&r, 3), "2024-03-09 09:00, 2024-03-10 09:00, 2024-03-11 09:00");
    /* The wall clock stays at 09:00, so the instants are 23 h apart. */
    tw_local_time sat = {2024, 3, 9, 9, 0, 0}, sun = {2024, 3, 10, 9, 0, 0};
    ck_assert_int_eq(utc_of("America/New_York", sun) - utc_of("America/New_York", sat),
                     23 * 3600 * 1000);
    r = series("FREQ=DAILY", "America/New_York", 2024, 11, 2, 9);
    ck_assert_str_eq(walk(&r, 3), "2024-11-02 09:00, 2024-11-03 09:00, 2024-11-04 09:00");
    tw_local_time n2 = {2024, 11, 2, 9, 0, 0}, n3 = {2024, 11, 3, 9, 0, 0};
    ck_assert_int_eq(utc_of("America/New_York", n3) - utc_of("America/New_York", n2),
                     25 * 3600 * 1000);
}
END_TEST

START_TEST(daily_at_nine_across_the_european_changes)
{
    tw_recurrence r = series("FREQ=DAILY", "Europe/Berlin", 2024, 3, 30, 9);
    ck_assert_str_eq(walk(&r, 3), "2024-03-30 09:00, 2024-03-31 09:00, 2024-04-01 09:00");
    tw_local_time a = {2024, 3, 30, 9, 0, 0}, b = {2024, 3, 31, 9, 0, 0};
    ck_assert_int_eq(utc_of("Europe/Berlin", b) - utc_of("Europe/Berlin", a), 23 * 3600 * 1000);
    r = series("FREQ=DAILY", "Europe/Berlin", 2024, 10, 26, 9);
    ck_assert_str_eq(walk(&r, 3), "2024-10-26 09:00, 2024-10-27 09:00, 2024-10-28 09:00");
    tw_local_time c = {2024, 10, 26, 9, 0, 0}, d = {2024, 10, 27, 9, 0, 0};
    ck_assert_int_eq(utc_of("Europe/Berlin", d) - utc_of("Europe/Berlin", c), 25 * 3600 * 1000);
    /* Weekly across the change keeps the hour too. */
    r = series("FREQ=WEEKLY", "Europe/Berlin", 2024, 3, 25, 9);
    ck_assert_str_eq(walk(&r, 2), "2024-03-25 09:00, 2024-04-01 09:00");
}
END_TEST

/* Series across 2027's daylight-saving changes walked as CompleteTask walks
 * them, and what python-dateutil's rrule with zoneinfo gives for each
 * (tests/e2e/test_recurrence_dst.py checks the same through the API).
 * Spring forward: an occurrence in the gap moves forward by the gap's
 * length (the wall clock reads it after the jump), and only that one; the
 * next ones are back at the rule's time (issue 16). Fall back: a time that
 * occurs twice is its first occurrence (dateutil's fold=0). */
static const struct {
    const char *rrule, *zone;
    tw_local_time start;
    int count;
    const char *expected;
} dst_cases[] = {
    {"FREQ=DAILY",
     "Europe/Berlin",
     {2027, 3, 26, 2, 30, 0},
     5,
     "2027-03-26 02:30, 2027-03-27 02:30, 2027-03-28 03:30, 2027-03-29 02:30, 2027-03-30 02:30"},
    {"FREQ=DAILY",
     "America/New_York",
     {2027, 3, 13, 2, 15, 0},
     4,
     "2027-03-13 02:15, 2027-03-14 03:15, 2027-03-15 02:15, 2027-03-16 02:15"},
    /* Lord Howe Island moves its clocks by 30 minutes, 02:00 -> 02:30. */
    {"FREQ=DAILY",
     "Australia/Lord_Howe",
     {2027, 10, 2, 2, 15, 0},
     4,
     "2027-10-02 02:15, 2027-10-03 02:45, 2027-10-04 02:15, 2027-10-05 02:15"},
    {"FREQ=WEEKLY",
     "Europe/Berlin",
     {2027, 3, 21, 2, 30, 0},
     4,
     "2027-03-21 02:30, 2027-03-28 03:30, 2027-04-04 02:30, 2027-04-11 02:30"},
    {"FREQ=MONTHLY",
     "America/New_York",
     {2027, 2, 14, 2, 15, 0},
     4,
     "2027-02-14 02:15, 2027-03-14 03:15, 2027-04-14 02:15, 2027-05-14 02:15"},
    /* Fall back. */
    {"FREQ=DAILY",
     "Europe/Berlin",
     {2027, 10, 30, 2, 30, 0},
     3,
     "2027-10-30 02:30, 2027-10-31 02:30, 2027-11-01 02:30"},
    {"FREQ=WEEKLY",
     "America/New_York",
     {2027, 10, 31, 1, 30, 0},
     3,
     "2027-10-31 01:30, 2027-11-07 01:30, 2027-11-14 01:30"},
    {"FREQ=MONTHLY",
     "Australia/Lord_Howe",
     {2027, 3, 4, 1, 45, 0},
     3,
     "2027-03-04 01:45, 2027-04-04 01:45, 2027-05-04 01:45"},
};

START_TEST(daylight_saving_changes_move_only_a_gaps_occurrence)
{
    for (size_t i = 0; i < sizeof dst_cases / sizeof dst_cases[0]; i++) {
        const char *got = walk_via_instants(dst_cases[i].rrule, dst_cases[i].zone,
                                            dst_cases[i].start, dst_cases[i].count);
        ck_assert_msg(strcmp(got, dst_cases[i].expected) == 0, "%s in %s: %s, not %s",
                      dst_cases[i].rrule, dst_cases[i].zone, got, dst_cases[i].expected);
    }
    /* The walk itself yields the rule's wall-clock times: the gap's
     * occurrence is 02:30 there, read as 03:30 CEST (01:30Z). */
    tw_recurrence r = series("FREQ=DAILY", "Europe/Berlin", 2027, 3, 27, 2);
    r.start.minute = 30;
    ck_assert_str_eq(walk(&r, 3), "2027-03-27 02:30, 2027-03-28 02:30, 2027-03-29 02:30");
    tw_local_time gap = {2027, 3, 28, 2, 30, 0}, after = {2027, 3, 29, 2, 30, 0};
    ck_assert_int_eq(utc_of("Europe/Berlin", after) - utc_of("Europe/Berlin", gap),
                     23 * 3600 * 1000);
    /* A UTC UNTIL is compared with that instant. */
    r.rrule = "FREQ=DAILY;UNTIL=20270328T013000Z";
    ck_assert_str_eq(walk(&r, 5), "2027-03-27 02:30, 2027-03-28 02:30");
    r.rrule = "FREQ=DAILY;UNTIL=20270328T012959Z";
    ck_assert_str_eq(walk(&r, 5), "2027-03-27 02:30");
    /* 02:30 on 31 October happens twice in Berlin: the first is 00:30Z. */
    tw_local_time twice = {2027, 10, 31, 2, 30, 0};
    ck_assert_int_eq(utc_of("Europe/Berlin", twice), INT64_C(1824942600000));
}
END_TEST

START_TEST(weekly_with_days_and_interval)
{
    /* 2024-01-01 is a Monday. */
    tw_recurrence r = series("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR", "UTC", 2024, 1, 1, 7);
    ck_assert_str_eq(walk(&r, 5), "2024-01-01 07:00, 2024-01-05 07:00, 2024-01-15 07:00, "
                                  "2024-01-19 07:00, 2024-01-29 07:00");
}
END_TEST

START_TEST(monthly_with_ordinals_and_month_days)
{
    tw_recurrence r = series("FREQ=MONTHLY;BYDAY=2TU,-1FR", "America/New_York", 2024, 1, 1, 9);
    ck_assert_str_eq(walk(&r, 5), "2024-01-09 09:00, 2024-01-26 09:00, 2024-02-13 09:00, "
                                  "2024-02-23 09:00, 2024-03-12 09:00");
    /* The 31st skips the months without one. */
    r = series("FREQ=MONTHLY;BYMONTHDAY=31", "UTC", 2024, 1, 31, 8);
    ck_assert_str_eq(walk(&r, 3), "2024-01-31 08:00, 2024-03-31 08:00, 2024-05-31 08:00");
    /* The last day of each month. */
    r = series("FREQ=MONTHLY;BYMONTHDAY=-1", "UTC", 2024, 1, 31, 8);
    ck_assert_str_eq(walk(&r, 3), "2024-01-31 08:00, 2024-02-29 08:00, 2024-03-31 08:00");
    /* The last weekday of the month. */
    r = series("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "UTC", 2024, 3, 1, 8);
    ck_assert_str_eq(walk(&r, 2), "2024-03-29 08:00, 2024-04-30 08:00");
    /* Yearly on 29 February: leap years only. */
    r = series("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "UTC", 2024, 2, 29, 8);
    ck_assert_str_eq(walk(&r, 2), "2024-02-29 08:00, 2028-02-29 08:00");
    /* The first Monday of September (Labor Day). */
    r = series("FREQ=YEARLY;BYMONTH=9;BYDAY=1MO", "America/New_York", 2024, 1, 1, 10);
    ck_assert_str_eq(walk(&r, 2), "2024-09-02 10:00, 2025-09-01 10:00");
}
END_TEST

START_TEST(count_and_until_end_a_series)
{
    tw_recurrence r = series("FREQ=DAILY;COUNT=3", "Europe/Berlin", 2024, 3, 30, 9);
    ck_assert_str_eq(walk(&r, 10), "2024-03-30 09:00, 2024-03-31 09:00, 2024-04-01 09:00");
    /* UNTIL is inclusive, in UTC: 09:00 Berlin on 3 April is 07:00Z. */
    r = series("FREQ=DAILY;UNTIL=20240403T070000Z", "Europe/Berlin", 2024, 4, 1, 9);
    ck_assert_str_eq(walk(&r, 10), "2024-04-01 09:00, 2024-04-02 09:00, 2024-04-03 09:00");
    r = series("FREQ=DAILY;UNTIL=20240403T065959Z", "Europe/Berlin", 2024, 4, 1, 9);
    ck_assert_str_eq(walk(&r, 10), "2024-04-01 09:00, 2024-04-02 09:00");
    /* ignore_count: the caller counts (repeat from completion). */
    r = series("FREQ=DAILY;COUNT=2", "UTC", 2024, 4, 1, 9);
    r.ignore_count = true;
    ck_assert_str_eq(walk(&r, 4), "2024-04-01 09:00, 2024-04-02 09:00, 2024-04-03 09:00, "
                                  "2024-04-04 09:00");
    /* A rule with no occurrence at all ends at once. */
    r = series("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "UTC", 2024, 1, 1, 9);
    ck_assert_str_eq(walk(&r, 3), "");
}
END_TEST

START_TEST(exception_dates_are_skipped)
{
    int32_t exdates[] = {tw_date_to_day(2024, 3, 10), tw_date_to_day(2024, 3, 12)};
    tw_recurrence r = series("FREQ=DAILY;COUNT=5", "America/New_York", 2024, 3, 9, 9);
    r.exception_days = exdates;
    r.exception_count = 2;
    /* COUNT counts the rule's occurrences; EXDATE then removes two. */
    ck_assert_str_eq(walk(&r, 10), "2024-03-09 09:00, 2024-03-11 09:00, 2024-03-13 09:00");
}
END_TEST

START_TEST(all_day_series_are_dates)
{
    tw_recurrence r = series("FREQ=WEEKLY;BYDAY=SA,SU", "Europe/Berlin", 2024, 10, 26, 0);
    r.all_day = true;
    ck_assert_str_eq(walk(&r, 4), "2024-10-26, 2024-10-27, 2024-11-02, 2024-11-03");
    /* Bounds compare dates only: a time on the 27th is not after the 27th. */
    tw_local_time after = {2024, 10, 26, 23, 59, 59};
    tw_recurrence_step step;
    ck_assert_int_eq(tw_recurrence_step_after(&r, &after, NULL, &step), TW_OK);
    ck_assert(step.found);
    ck_assert_int_eq(step.next.day, 27);
}
END_TEST

START_TEST(completions_catch_up_with_the_latest_occurrence)
{
    /* Due daily at 09:00 since 1 March; done on 5 March at 10:00: that is
     * 5 March's occurrence, and 1-4 March were passed over. */
    tw_recurrence r = series("FREQ=DAILY", "America/New_York", 2024, 3, 1, 9);
    tw_local_time due = {2024, 3, 1, 9, 0, 0}, now = {2024, 3, 5, 10, 0, 0};
    tw_local_time skipped[2];
    tw_catch_up cu;
    ck_assert_int_eq(tw_recurrence_catch_up(&r, &due, &now, skipped, 2, &cu), TW_OK);
    ck_assert_int_eq(cu.current.day, 5);
    ck_assert_int_eq(cu.skipped, 4);
    ck_assert_int_eq(skipped[0].day, 1);
    ck_assert_int_eq(skipped[1].day, 2);
    ck_assert(cu.found_next);
    ck_assert_int_eq(cu.next.day, 6);
    ck_assert_int_eq(cu.next.hour, 9);
    /* At 08:00 the 5th's has not come: the 4th's is done, late. */
    now.hour = 8;
    ck_assert_int_eq(tw_recurrence_catch_up(&r, &due, &now, NULL, 0, &cu), TW_OK);
    ck_assert_int_eq(cu.current.day, 4);
    ck_assert_int_eq(cu.skipped, 3);
    ck_assert_int_eq(cu.next.day, 5);
    /* Done early: the due itself. */
    tw_local_time early = {2024, 2, 28, 12, 0, 0};
    ck_assert_int_eq(tw_recurrence_catch_up(&r, &due, &early, NULL, 0, &cu), TW_OK);
    ck_assert_int_eq(cu.current.day, 1);
    ck_assert_int_eq(cu.skipped, 0);
    ck_assert_int_eq(cu.next.day, 2);
    /* The last occurrence of a series has no next. */
    r = series("FREQ=DAILY;COUNT=2", "UTC", 2024, 3, 1, 9);
    tw_local_time later = {2024, 3, 9, 0, 0, 0};
    ck_assert_int_eq(tw_recurrence_catch_up(&r, &due, &later, NULL, 0, &cu), TW_OK);
    ck_assert_int_eq(cu.current.day, 2);
    ck_assert(!cu.found_next);
    /* Exception days are never occurrences, so never missed. */
    int32_t ex[] = {tw_date_to_day(2024, 3, 2)};
    r = series("FREQ=DAILY", "UTC", 2024, 3, 1, 9);
    r.exception_days = ex;
    r.exception_count = 1;
    ck_assert_int_eq(tw_recurrence_catch_up(&r, &due, &now, NULL, 0, &cu), TW_OK);
    ck_assert_int_eq(cu.skipped, 2); /* 1 and 3 March */
}
END_TEST

START_TEST(repeat_from_completion_moves_the_start)
{
    /* "Every 3 days after I did it": the series restarts on the day of
     * completion at the first due's time of day, and the next occurrence
     * is the first after that day. Done on 10 March (the US change) at
     * 18:00 local, next due is 13 March at 09:00 local. */
    tw_recurrence r = series("FREQ=DAILY;INTERVAL=3;COUNT=2", "America/New_York", 2024, 3, 10, 9);
    r.ignore_count = true;
    tw_local_time end_of_day = {2024, 3, 10, 23, 59, 59};
    tw_recurrence_step step;
    ck_assert_int_eq(tw_recurrence_step_after(&r, &end_of_day, NULL, &step), TW_OK);
    ck_assert(step.found);
    ck_assert_int_eq(step.next.month, 3);
    ck_assert_int_eq(step.next.day, 13);
    ck_assert_int_eq(step.next.hour, 9);
    /* Weekly on Mondays and Thursdays from a Tuesday completion: Thursday. */
    r = series("FREQ=WEEKLY;BYDAY=MO,TH", "Europe/Berlin", 2024, 10, 22, 7);
    r.ignore_count = true;
    tw_local_time tue = {2024, 10, 22, 23, 59, 59};
    ck_assert_int_eq(tw_recurrence_step_after(&r, &tue, NULL, &step), TW_OK);
    ck_assert_int_eq(step.next.day, 24);
}
END_TEST

START_TEST(bad_series_are_errors)
{
    tw_recurrence r = series("FREQ=DAILY", "Nowhere/Town", 2024, 3, 1, 9);
    tw_recurrence_step step;
    ck_assert_int_eq(tw_recurrence_step_after(&r, NULL, NULL, &step), TW_ERR_VALIDATION);
    r = series("FREQ=NEVER", "UTC", 2024, 3, 1, 9);
    ck_assert_int_eq(tw_recurrence_step_after(&r, NULL, NULL, &step), TW_ERR_VALIDATION);
    /* A walk is bounded: daily from 1970, asked for the year 2400. */
    r = series("FREQ=DAILY", "UTC", 1970, 1, 1, 0);
    tw_local_time far = {2400, 1, 1, 0, 0, 0};
    ck_assert_int_eq(tw_recurrence_step_after(&r, &far, NULL, &step), TW_ERR_FAILED_PRECONDITION);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("recurrence");
    TCase *tc = tcase_create("recurrence");
    tcase_add_test(tc, rules_outside_the_subset_are_refused);
    tcase_add_test(tc, daily_at_nine_across_the_us_changes);
    tcase_add_test(tc, daily_at_nine_across_the_european_changes);
    tcase_add_test(tc, daylight_saving_changes_move_only_a_gaps_occurrence);
    tcase_add_test(tc, weekly_with_days_and_interval);
    tcase_add_test(tc, monthly_with_ordinals_and_month_days);
    tcase_add_test(tc, count_and_until_end_a_series);
    tcase_add_test(tc, exception_dates_are_skipped);
    tcase_add_test(tc, all_day_series_are_dates);
    tcase_add_test(tc, completions_catch_up_with_the_latest_occurrence);
    tcase_add_test(tc, repeat_from_completion_moves_the_start);
    tcase_add_test(tc, bad_series_are_errors);
    suite_add_tcase(s, tc);
    return s;
}
