/* Unit tests for server/tasks/tz.c: zone names, local times and instants
 * across daylight-saving changes, day numbers, logical days. */
#include "tasks/tz.h"

#include "tw_check.h"

/* 2024-03-10 is the US spring-forward day, 2024-11-03 the fall-back day;
 * Europe changes on 2024-03-31 and 2024-10-27. */
#define MS(s) ((int64_t)(s)*1000)

static int64_t instant(const char *zone, int y, int mo, int d, int h, int mi)
{
    int64_t ms;
    tw_local_time lt = {y, mo, d, h, mi, 0};
    ck_assert_int_eq(tw_tz_instant(zone, &lt, &ms), TW_OK);
    return ms;
}

START_TEST(init_finds_the_system_zone_data)
{
    char why[200] = "";
    ck_assert_msg(tw_tz_init(why, sizeof why), "%s", why);
}
END_TEST

START_TEST(zone_names_are_checked)
{
    ck_assert(tw_tz_known("Europe/Berlin"));
    ck_assert(tw_tz_known("America/New_York"));
    ck_assert(tw_tz_known("America/Argentina/Buenos_Aires"));
    ck_assert(tw_tz_known("UTC"));
    ck_assert(tw_tz_known("Etc/GMT+5"));
    ck_assert(!tw_tz_known(""));
    ck_assert(!tw_tz_known("Mars/Olympus_Mons"));
    ck_assert(!tw_tz_known("europe/berlin"));
    ck_assert(!tw_tz_known("../../etc/passwd"));
    ck_assert(!tw_tz_known("/usr/share/zoneinfo/UTC"));
    ck_assert(!tw_tz_known("Europe//Berlin"));
    ck_assert(!tw_tz_known("Europe/"));
    ck_assert(!tw_tz_known("zone.tab"));
    ck_assert(!tw_tz_known("Europe/Berlin "));
}
END_TEST

START_TEST(local_times_follow_daylight_saving)
{
    /* 09:00 in New York is 14:00Z before the March change, 13:00Z after. */
    ck_assert_int_eq(instant("America/New_York", 2024, 3, 9, 9, 0), MS(1709992800)); /* 14:00Z */
    ck_assert_int_eq(instant("America/New_York", 2024, 3, 11, 9, 0) -
                         instant("America/New_York", 2024, 3, 10, 9, 0),
                     MS(24 * 3600));
    ck_assert_int_eq(instant("America/New_York", 2024, 3, 10, 9, 0) -
                         instant("America/New_York", 2024, 3, 9, 9, 0),
                     MS(23 * 3600));
    ck_assert_int_eq(instant("America/New_York", 2024, 11, 3, 9, 0) -
                         instant("America/New_York", 2024, 11, 2, 9, 0),
                     MS(25 * 3600));
    ck_assert_int_eq(instant("Europe/Berlin", 2024, 3, 31, 9, 0) -
                         instant("Europe/Berlin", 2024, 3, 30, 9, 0),
                     MS(23 * 3600));
    ck_assert_int_eq(instant("Europe/Berlin", 2024, 10, 27, 9, 0) -
                         instant("Europe/Berlin", 2024, 10, 26, 9, 0),
                     MS(25 * 3600));

    tw_local_time lt;
    /* 2024-07-01T12:00:00Z */
    ck_assert_int_eq(tw_tz_local("Europe/Berlin", MS(1719835200), &lt), TW_OK);
    ck_assert_int_eq(lt.hour, 14);
    ck_assert_int_eq(tw_tz_local("America/New_York", MS(1719835200), &lt), TW_OK);
    ck_assert_int_eq(lt.hour, 8);
    ck_assert_int_eq(lt.day, 1);
    ck_assert_int_eq(tw_tz_local("UTC", MS(1719835200) + 999, &lt), TW_OK);
    ck_assert_int_eq(lt.hour, 12);
    ck_assert_int_eq(tw_tz_local("Nowhere/Town", 0, &lt), TW_ERR_VALIDATION);
}
END_TEST

START_TEST(dates_and_day_numbers)
{
    ck_assert_int_eq(tw_date_to_day(1970, 1, 1), 0);
    ck_assert_int_eq(tw_date_to_day(1969, 12, 31), -1);
    ck_assert_int_eq(tw_date_to_day(2024, 3, 1) - tw_date_to_day(2024, 2, 28), 2);
    int y, m, d;
    tw_day_to_date(tw_date_to_day(2000, 2, 29), &y, &m, &d);
    ck_assert(y == 2000 && m == 2 && d == 29);
    ck_assert(tw_date_valid(2024, 2, 29));
    ck_assert(!tw_date_valid(2023, 2, 29));
    ck_assert(!tw_date_valid(1900, 2, 29));
    ck_assert(!tw_date_valid(2024, 13, 1));
    ck_assert(!tw_date_valid(0, 1, 1));
    ck_assert(!tw_date_valid(2024, 4, 31));
}
END_TEST

START_TEST(logical_days_start_at_the_day_start_hour)
{
    tw_day_settings berlin4 = {"Europe/Berlin", 4};
    int32_t day, expected = tw_date_to_day(2024, 3, 30);
    /* 02:30 on the night of the spring change still belongs to Saturday. */
    ck_assert_int_eq(tw_logical_day(&berlin4, instant("Europe/Berlin", 2024, 3, 31, 3, 30), &day),
                     TW_OK);
    ck_assert_int_eq(day, expected);
    ck_assert_int_eq(tw_logical_day(&berlin4, instant("Europe/Berlin", 2024, 3, 31, 4, 0), &day),
                     TW_OK);
    ck_assert_int_eq(day, expected + 1);
    int64_t start;
    ck_assert_int_eq(tw_logical_day_start(&berlin4, expected + 1, &start), TW_OK);
    ck_assert_int_eq(start, instant("Europe/Berlin", 2024, 3, 31, 4, 0));
    tw_day_settings utc = {"UTC", 0};
    ck_assert_int_eq(tw_logical_day(&utc, MS(86400) - 1, &day), TW_OK);
    ck_assert_int_eq(day, 0);
    ck_assert_int_eq(tw_logical_day(&utc, -1, &day), TW_OK);
    ck_assert_int_eq(day, -1);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tz");
    TCase *tc = tcase_create("tz");
    tcase_add_test(tc, init_finds_the_system_zone_data);
    tcase_add_test(tc, zone_names_are_checked);
    tcase_add_test(tc, local_times_follow_daylight_saving);
    tcase_add_test(tc, dates_and_day_numbers);
    tcase_add_test(tc, logical_days_start_at_the_day_start_hour);
    suite_add_tcase(s, tc);
    return s;
}
