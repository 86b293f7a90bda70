/*
 * Unit tests for common/tw_tz.c: zone offsets checked against glibc's own
 * reading of the same tzdata (localtime_r with TZ set; this program is
 * single-threaded), across DST changes, in both hemispheres, with odd
 * offsets, and past 2037 where only the files' POSIX rules apply; local
 * times that occur twice or never; calendar dates.
 */
#include "tw_tz.h"

#include "tw_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const zones[] = {
    "America/New_York", "Europe/London",    "Australia/Sydney",   "Asia/Kolkata",
    "Pacific/Chatham",  "America/Santiago", "Africa/Casablanca",  "Europe/Dublin",
    "Asia/Kathmandu",   "America/St_Johns", "Pacific/Kiritimati", "Etc/GMT+5",
    "Europe/Paris",     "Antarctica/Troll", "America/Godthab",    "Asia/Tehran",
};

static long glibc_offset(const char *zone, int64_t t)
{
    setenv("TZ", zone, 1);
    tzset();
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return tm.tm_gmtoff;
}

START_TEST(offsets_agree_with_glibc)
{
    const char *zone = zones[_i];
    const tw_tz *tz;
    ck_assert_int_eq(tw_tz_get(zone, &tz), TW_OK);
    ck_assert_str_eq(tw_tz_name(tz), zone);
    /* Every 6 hours and 17 minutes from 1975 to 2070: past the last
     * transition in the file (2037) the footer's rule decides. */
    int checked = 0;
    for (int64_t t = 157766400; t < 3155760000; t += 6 * 3600 + 17 * 60) {
        long want = glibc_offset(zone, t);
        int32_t got = tw_tz_offset(tz, t);
        if (got != want)
            ck_abort_msg("%s at %lld: %d, glibc says %ld", zone, (long long)t, got, want);
        checked++;
    }
    ck_assert_int_gt(checked, 100000);
}
END_TEST

START_TEST(changes_happen_where_next_change_says)
{
    const tw_tz *tz;
    ck_assert_int_eq(tw_tz_get(zones[_i], &tz), TW_OK);
    int64_t t = 946684800; /* 2000 */
    for (int n = 0; n < 200; n++) {
        int64_t next = tw_tz_next_change(tz, t);
        if (next == INT64_MAX)
            break;
        ck_assert_int_gt(next, t);
        /* Nothing changes in between. */
        int32_t off = tw_tz_offset(tz, t);
        ck_assert_int_eq(tw_tz_offset(tz, next - 1), off);
        ck_assert_int_eq(tw_tz_offset(tz, (t + next) / 2), off);
        t = next;
    }
}
END_TEST

START_TEST(utc_needs_no_file)
{
    setenv("TZDIR", "/nonexistent", 1);
    const tw_tz *tz;
    ck_assert_int_eq(tw_tz_get("UTC", &tz), TW_OK);
    ck_assert_int_eq(tw_tz_offset(tz, 1717243200), 0);
    ck_assert_int_eq(tw_tz_next_change(tz, 0), INT64_MAX);
    ck_assert_int_eq(tw_tz_local_to_unix(tz, 1717243200), 1717243200);
    unsetenv("TZDIR");
}
END_TEST

START_TEST(unknown_and_hostile_names_are_not_found)
{
    const tw_tz *tz;
    const char *bad[] = {"Mars/Olympus",
                         "",
                         "../../etc/passwd",
                         "/etc/localtime",
                         "America/../Europe/Paris",
                         "America",
                         "Europe/Paris ",
                         "a\nb",
                         "zone.tab"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(tw_tz_get(bad[i], &tz) == TW_ERR_NOT_FOUND && tz == NULL, "%s", bad[i]);
}
END_TEST

START_TEST(a_file_that_is_not_tzif_is_corrupt)
{
    char dir[] = "/tmp/tw-tz-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/Bad_Zone", dir);
    FILE *f = fopen(path, "w");
    fputs("TZif2 but not really", f);
    fclose(f);
    setenv("TZDIR", dir, 1);
    const tw_tz *tz;
    ck_assert_int_eq(tw_tz_get("Bad_Zone", &tz), TW_ERR_DB_CORRUPT);
    unsetenv("TZDIR");
    remove(path);
    rmdir(dir);
}
END_TEST

START_TEST(zones_are_loaded_once)
{
    const tw_tz *a, *b;
    ck_assert_int_eq(tw_tz_get("Europe/Berlin", &a), TW_OK);
    ck_assert_int_eq(tw_tz_get("Europe/Berlin", &b), TW_OK);
    ck_assert_ptr_eq(a, b);
}
END_TEST

/* 2024-03-10 in New York: clocks jump from 02:00 EST to 03:00 EDT at
 * 07:00 UTC. 2024-11-03: back from 02:00 EDT to 01:00 EST at 06:00 UTC. */
START_TEST(local_times_in_gaps_and_overlaps)
{
    const tw_tz *ny;
    ck_assert_int_eq(tw_tz_get("America/New_York", &ny), TW_OK);
    int64_t mar10 = tw_date_to_days(2024, 3, 10) * 86400;
    /* Before the gap: EST. */
    ck_assert_int_eq(tw_tz_local_to_unix(ny, mar10 + 3600), mar10 + 3600 + 5 * 3600);
    /* 02:30 never happens: the instant the clocks jumped, 07:00 UTC. */
    ck_assert_int_eq(tw_tz_local_to_unix(ny, mar10 + 2 * 3600 + 1800), mar10 + 7 * 3600);
    ck_assert_int_eq(tw_tz_local_to_unix(ny, mar10 + 2 * 3600), mar10 + 7 * 3600);
    /* 03:00 EDT is that same instant; 04:00 an hour later. */
    ck_assert_int_eq(tw_tz_local_to_unix(ny, mar10 + 3 * 3600), mar10 + 7 * 3600);
    ck_assert_int_eq(tw_tz_local_to_unix(ny, mar10 + 4 * 3600), mar10 + 8 * 3600);

    int64_t nov3 = tw_date_to_days(2024, 11, 3) * 86400;
    /* 01:30 happens twice: the first, in EDT (05:30 UTC). */
    ck_assert_int_eq(tw_tz_local_to_unix(ny, nov3 + 5400), nov3 + 5400 + 4 * 3600);
    /* 02:00 only once, in EST (07:00 UTC). */
    ck_assert_int_eq(tw_tz_local_to_unix(ny, nov3 + 7200), nov3 + 7 * 3600);
    /* Midnight that day and the next, in EDT then EST. */
    ck_assert_int_eq(tw_tz_local_to_unix(ny, nov3), nov3 + 4 * 3600);
    ck_assert_int_eq(tw_tz_local_to_unix(ny, nov3 + 86400), nov3 + 86400 + 5 * 3600);

    /* Every whole local hour of 2024 maps back to itself when it exists. */
    for (int64_t local = tw_date_to_days(2024, 1, 1) * 86400;
         local < tw_date_to_days(2025, 1, 1) * 86400; local += 3600) {
        int64_t t = tw_tz_local_to_unix(ny, local);
        int64_t back = t + tw_tz_offset(ny, t);
        ck_assert(back == local || (back > local && back - local <= 3600));
    }
}
END_TEST

START_TEST(southern_hemisphere_after_2037)
{
    /* Sydney: DST from the first Sunday of October to the first Sunday of
     * April, known only from the footer rule by 2050. */
    const tw_tz *syd;
    ck_assert_int_eq(tw_tz_get("Australia/Sydney", &syd), TW_OK);
    int64_t jan = tw_date_to_days(2050, 1, 15) * 86400;
    int64_t jul = tw_date_to_days(2050, 7, 15) * 86400;
    ck_assert_int_eq(tw_tz_offset(syd, jan), 11 * 3600);
    ck_assert_int_eq(tw_tz_offset(syd, jul), 10 * 3600);
}
END_TEST

START_TEST(dates)
{
    int64_t d;
    ck_assert(tw_date_parse("1970-01-01", &d) && d == 0);
    ck_assert(tw_date_parse("2024-02-29", &d) && d == 19782);
    ck_assert(tw_date_parse("0001-01-01", &d));
    ck_assert(tw_date_parse("9999-12-31", &d));
    const char *bad[] = {"2023-02-29",  "2024-13-01", "2024-00-10", "2024-01-00", "2024-1-01",
                         "2024-01-011", "20240101",   "0000-01-01", "2024/01/01", "",
                         " 2024-01-01", "2024-04-31", "1900-02-29"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_date_parse(bad[i], &d), "%s", bad[i]);
    ck_assert(tw_date_parse("2000-02-29", &d));
    char text[TW_DATE_TEXT_SIZE];
    for (int64_t day = -800000; day < 2932896; day += 997) {
        int64_t y;
        int m, dd;
        tw_date_from_days(day, &y, &m, &dd);
        ck_assert_int_eq(tw_date_to_days(y, m, dd), day);
        if (y >= 1) {
            tw_date_format(day, text);
            int64_t parsed;
            ck_assert(tw_date_parse(text, &parsed));
            ck_assert_int_eq(parsed, day);
        }
    }
    tw_date_format(19782, text);
    ck_assert_str_eq(text, "2024-02-29");
    ck_assert_int_eq(tw_floor_div(-1, 86400), -1);
    ck_assert_int_eq(tw_floor_div(86400, 86400), 1);
    ck_assert_int_eq(tw_floor_div(-86400, 86400), -1);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tz");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    int nzones = (int)(sizeof zones / sizeof zones[0]);
    tcase_add_loop_test(tc, offsets_agree_with_glibc, 0, nzones);
    tcase_add_loop_test(tc, changes_happen_where_next_change_says, 0, nzones);
    tcase_add_test(tc, utc_needs_no_file);
    tcase_add_test(tc, unknown_and_hostile_names_are_not_found);
    tcase_add_test(tc, a_file_that_is_not_tzif_is_corrupt);
    tcase_add_test(tc, zones_are_loaded_once);
    tcase_add_test(tc, local_times_in_gaps_and_overlaps);
    tcase_add_test(tc, southern_hemisphere_after_2037);
    tcase_add_test(tc, dates);
    suite_add_tcase(s, tc);
    return s;
}
