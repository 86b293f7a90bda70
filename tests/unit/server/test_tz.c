/*
 * Unit tests for server/tz.c: zone names; offsets checked against glibc's
 * own reading of the same tzdata (localtime_r with TZ set; each test runs
 * in a process of its own and is single-threaded), across DST changes, in
 * both hemispheres, with odd offsets, and past 2037; local times that
 * occur twice or never; local hours; calendar dates; logical days and day
 * ranges.
 */
#include "tz.h"

#include "tw_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS(s)   ((int64_t)(s)*1000)
#define HOUR_MS MS(3600)
#define DAY_MS  MS(86400)

static const char *const zones[] = {
    "America/New_York", "Europe/London",    "Australia/Sydney",   "Asia/Kolkata",
    "Pacific/Chatham",  "America/Santiago", "Africa/Casablanca",  "Europe/Dublin",
    "Asia/Kathmandu",   "America/St_Johns", "Pacific/Kiritimati", "Etc/GMT+5",
    "Europe/Paris",     "Antarctica/Troll", "America/Godthab",    "Asia/Tehran",
};
#define NZONES ((int)(sizeof zones / sizeof zones[0]))

/*
 * Where Debian's libical 3.0.16 disagrees with glibc on these zones. It
 * turns each TZif file into VTIMEZONE rules by guessing RRULEs from the
 * transitions, and guesses wrong in some years (London and Dublin's October
 * changes of 1977-78, Santiago's and Tehran's irregular years), and past
 * 2037, where the files keep only a rule, it extends some zones' rules
 * wrongly (St John's reads -01:30 for most of each year; Chatham, Nuuk,
 * Troll and Santiago get a change some hours off). From 2023 to 2036 every
 * zone agrees to the second (every_zone_agrees_at_every_change_2023_2036).
 * Any disagreement not listed here fails the test.
 */
static const struct {
    const char *zone;
    int from_year, to_year; /* UTC years, inclusive */
} libical_wrong[] = {
    {"Europe/London", 1977, 1978},    {"Europe/Dublin", 1977, 1978},
    {"America/Santiago", 1978, 1978}, {"America/Santiago", 1990, 1995},
    {"America/Santiago", 2038, 2070}, {"Asia/Tehran", 1992, 1996},
    {"Asia/Tehran", 2002, 2002},      {"Asia/Tehran", 2018, 2019},
    {"America/St_Johns", 2038, 2070}, {"Pacific/Chatham", 2038, 2070},
    {"Antarctica/Troll", 2038, 2070}, {"America/Godthab", 2038, 2070},
};

static bool known_wrong(const char *zone, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int year = tm.tm_year + 1900;
    for (size_t i = 0; i < sizeof libical_wrong / sizeof libical_wrong[0]; i++)
        if (strcmp(libical_wrong[i].zone, zone) == 0 && year >= libical_wrong[i].from_year &&
            year <= libical_wrong[i].to_year)
            return true;
    return false;
}

static void use_glibc_zone(const char *zone)
{
    setenv("TZ", zone, 1);
    tzset();
}

static long glibc_offset(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return tm.tm_gmtoff;
}

static int32_t offset(const char *zone, int64_t unix_s)
{
    int32_t off;
    ck_assert_int_eq(tw_tz_offset(zone, MS(unix_s), &off), TW_OK);
    return off;
}

static int64_t instant(const char *zone, int y, int mo, int d, int h, int mi)
{
    int64_t ms;
    tw_local_time lt = {y, mo, d, h, mi, 0};
    ck_assert_int_eq(tw_tz_instant(zone, &lt, &ms), TW_OK);
    return ms;
}

/* Seconds of 00:00 UTC on a date. */
static int64_t utc_day_s(int y, int mo, int d)
{
    return (int64_t)tw_date_to_day(y, mo, d) * 86400;
}

START_TEST(init_finds_the_system_zone_data)
{
    char why[200] = "";
    ck_assert_msg(tw_tz_init(why, sizeof why), "%s", why);
}
END_TEST

START_TEST(zone_names_are_checked)
{
    const char *good[] = {"Europe/Berlin", "America/New_York", "America/Argentina/Buenos_Aires",
                          "UTC",           "Etc/GMT+5",        "America/Godthab"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(tw_tz_known(good[i]), "%s", good[i]);
    const char *bad[] = {"",
                         "Mars/Olympus_Mons",
                         "europe/berlin",
                         "../../etc/passwd",
                         "/usr/share/zoneinfo/UTC",
                         "/etc/localtime",
                         "America/../Europe/Paris",
                         "America",
                         "Europe//Berlin",
                         "Europe/",
                         "zone.tab",
                         "Europe/Berlin ",
                         "Europe\\Paris",
                         "a\nb",
                         "Europe/Paris;"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_tz_known(bad[i]), "%s", bad[i]);
    int32_t off;
    ck_assert_int_eq(tw_tz_offset("Nowhere/Town", 0, &off), TW_ERR_VALIDATION);
    int hour;
    ck_assert_int_eq(tw_tz_hour("../x", 0, &hour, NULL), TW_ERR_VALIDATION);
}
END_TEST

START_TEST(offsets_agree_with_glibc)
{
    const char *zone = zones[_i];
    use_glibc_zone(zone);
    /* Every 6 hours and 17 minutes from 1975 to 2070: past the last
     * transition in the file (2037) the footer's rule decides. */
    int checked = 0, excused = 0;
    for (int64_t t = 157766400; t < 3155760000; t += 6 * 3600 + 17 * 60) {
        long want = glibc_offset(t);
        int32_t got = offset(zone, t);
        checked++;
        if (got == want)
            continue;
        if (!known_wrong(zone, t))
            ck_abort_msg("%s at %lld: %d, glibc says %ld", zone, (long long)t, got, want);
        excused++;
    }
    ck_assert_int_gt(checked, 100000);
    /* The excused years are a small part of the range. */
    ck_assert_int_lt(excused, checked / 3);
}
END_TEST

/* Every change of offset from 2023 to 2036 in every zone of zone1970.tab,
 * found with glibc to the second: the offsets just before and at it. */
START_TEST(every_zone_agrees_at_every_change_2023_2036)
{
    FILE *tab = fopen("/usr/share/zoneinfo/zone1970.tab", "r");
    ck_assert_ptr_nonnull(tab);
    char line[512];
    int nzones = 0, changes = 0;
    const int64_t from = utc_day_s(2023, 1, 1), to = utc_day_s(2037, 1, 1), step = 3 * 3600;
    while (fgets(line, sizeof line, tab) != NULL) {
        char codes[64], coords[64], zone[128];
        if (line[0] == '#' || sscanf(line, "%63s %63s %127s", codes, coords, zone) != 3)
            continue;
        nzones++;
        ck_assert_msg(tw_tz_known(zone), "%s", zone);
        use_glibc_zone(zone);
        long prev = glibc_offset(from);
        ck_assert_int_eq(offset(zone, from), prev);
        for (int64_t t = from + step; t < to; t += step) {
            long now = glibc_offset(t);
            if (now == prev)
                continue;
            int64_t lo = t - step, hi = t;
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (glibc_offset(mid) == prev)
                    lo = mid;
                else
                    hi = mid;
            }
            int32_t before = offset(zone, hi - 1), at = offset(zone, hi);
            if (before != prev || at != now)
                ck_abort_msg("%s at %lld: %d -> %d, glibc says %ld -> %ld", zone, (long long)hi,
                             before, at, prev, now);
            changes++;
            prev = now;
        }
    }
    fclose(tab);
    ck_assert_int_gt(nzones, 300);
    ck_assert_int_gt(changes, 2000);
}
END_TEST

START_TEST(local_hours_end_where_tz_hour_says)
{
    const char *zone = zones[_i];
    int64_t t = MS(utc_day_s(2024, 1, 1)) + 123;
    for (int n = 0; n < 24 * 366; n++) {
        int hour, later_hour;
        int64_t next;
        ck_assert_int_eq(tw_tz_hour(zone, t, &hour, &next), TW_OK);
        ck_assert_int_gt(next, t);
        ck_assert_int_le(next - t, HOUR_MS);
        /* Nothing changes in between ... */
        ck_assert_int_eq(tw_tz_hour(zone, next - 1, &later_hour, NULL), TW_OK);
        ck_assert_int_eq(later_hour, hour);
        ck_assert_int_eq(offset(zone, tw_floor_div(next - 1, 1000)),
                         offset(zone, tw_floor_div(t, 1000)));
        /* ... and something does at next. */
        ck_assert_int_eq(tw_tz_hour(zone, next, &later_hour, NULL), TW_OK);
        ck_assert(later_hour != hour ||
                  offset(zone, tw_floor_div(next, 1000)) != offset(zone, tw_floor_div(t, 1000)));
        tw_local_time lt;
        ck_assert_int_eq(tw_tz_local(zone, t, &lt), TW_OK);
        ck_assert_int_eq(lt.hour, hour);
        t = next;
    }
}
END_TEST

START_TEST(utc_never_changes)
{
    ck_assert_int_eq(offset("UTC", 1717243200), 0);
    ck_assert_int_eq(instant("UTC", 2024, 6, 1, 12, 0), MS(1717243200));
    int hour;
    int64_t next;
    ck_assert_int_eq(tw_tz_hour("UTC", MS(1717243200) + 5, &hour, &next), TW_OK);
    ck_assert_int_eq(hour, 12);
    ck_assert_int_eq(next, MS(1717243200 + 3600));
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
    ck_assert_int_eq(lt.second, 0);
    /* Before 1970, seconds round down. */
    ck_assert_int_eq(tw_tz_local("UTC", -1, &lt), TW_OK);
    ck_assert(lt.year == 1969 && lt.month == 12 && lt.day == 31 && lt.hour == 23 &&
              lt.minute == 59 && lt.second == 59);
    ck_assert_int_eq(tw_tz_local("Nowhere/Town", 0, &lt), TW_ERR_VALIDATION);
}
END_TEST

/* 2024-03-10 in New York: clocks jump from 02:00 EST to 03:00 EDT at
 * 07:00 UTC. 2024-11-03: back from 02:00 EDT to 01:00 EST at 06:00 UTC. */
START_TEST(local_times_in_gaps_and_overlaps)
{
    const char *ny = "America/New_York";
    int64_t mar10 = MS(utc_day_s(2024, 3, 10));
    /* Before the gap: EST. */
    ck_assert_int_eq(instant(ny, 2024, 3, 10, 1, 0), mar10 + 6 * HOUR_MS);
    /* 02:30 never happens: read with the offset before the gap (EST),
     * 07:30 UTC, which is 03:30 EDT (RFC 5545). */
    ck_assert_int_eq(instant(ny, 2024, 3, 10, 2, 30), mar10 + 7 * HOUR_MS + HOUR_MS / 2);
    ck_assert_int_eq(instant(ny, 2024, 3, 10, 2, 0), mar10 + 7 * HOUR_MS);
    /* 03:00 EDT is the instant of the jump; 04:00 an hour later. */
    ck_assert_int_eq(instant(ny, 2024, 3, 10, 3, 0), mar10 + 7 * HOUR_MS);
    ck_assert_int_eq(instant(ny, 2024, 3, 10, 4, 0), mar10 + 8 * HOUR_MS);

    int64_t nov3 = MS(utc_day_s(2024, 11, 3));
    /* 01:30 happens twice: the first, in EDT (05:30 UTC). */
    ck_assert_int_eq(instant(ny, 2024, 11, 3, 1, 30), nov3 + 5 * HOUR_MS + HOUR_MS / 2);
    /* 02:00 only once, in EST (07:00 UTC). */
    ck_assert_int_eq(instant(ny, 2024, 11, 3, 2, 0), nov3 + 7 * HOUR_MS);
    /* Midnight that day and the next, in EDT then EST. */
    ck_assert_int_eq(instant(ny, 2024, 11, 3, 0, 0), nov3 + 4 * HOUR_MS);
    ck_assert_int_eq(instant(ny, 2024, 11, 4, 0, 0), nov3 + DAY_MS + 5 * HOUR_MS);

    /* Every whole local hour of 2024 maps back to itself when it exists,
     * and to the hour after it when the clocks skipped it. */
    for (int32_t day = tw_date_to_day(2024, 1, 1); day < tw_date_to_day(2025, 1, 1); day++) {
        for (int h = 0; h < 24; h++) {
            tw_local_time lt = {.hour = h}, back;
            tw_day_to_date(day, &lt.year, &lt.month, &lt.day);
            int64_t t;
            ck_assert_int_eq(tw_tz_instant(ny, &lt, &t), TW_OK);
            ck_assert_int_eq(tw_tz_local(ny, t, &back), TW_OK);
            ck_assert(back.day == lt.day && (back.hour == h || back.hour == h + 1));
        }
    }

    /* Logical days starting at 02:00 start when the clocks jump past it,
     * and when it first comes when it comes twice. */
    tw_day_settings two = {ny, 2};
    int32_t d10 = tw_date_to_day(2024, 3, 10), d3 = tw_date_to_day(2024, 11, 3);
    int64_t start;
    ck_assert_int_eq(tw_logical_day_start(&two, d10, &start), TW_OK);
    ck_assert_int_eq(start, mar10 + 7 * HOUR_MS);
    ck_assert_int_eq(tw_logical_day_start(&(tw_day_settings){ny, 1}, d3, &start), TW_OK);
    ck_assert_int_eq(start, nov3 + 5 * HOUR_MS);
}
END_TEST

START_TEST(southern_hemisphere_after_2037)
{
    /* Sydney: DST from the first Sunday of October to the first Sunday of
     * April, known only from the footer rule by 2050. */
    ck_assert_int_eq(offset("Australia/Sydney", utc_day_s(2050, 1, 15)), 11 * 3600);
    ck_assert_int_eq(offset("Australia/Sydney", utc_day_s(2050, 7, 15)), 10 * 3600);
}
END_TEST

START_TEST(dates)
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

    int32_t day;
    ck_assert(tw_date_parse("1970-01-01", &day) && day == 0);
    ck_assert(tw_date_parse("2024-02-29", &day) && day == 19782);
    ck_assert(tw_date_parse("0001-01-01", &day));
    ck_assert(tw_date_parse("9999-12-31", &day));
    ck_assert(tw_date_parse("2000-02-29", &day));
    const char *bad[] = {"2023-02-29",  "2024-13-01", "2024-00-10", "2024-01-00", "2024-1-01",
                         "2024-01-011", "20240101",   "0000-01-01", "2024/01/01", "",
                         " 2024-01-01", "2024-04-31", "1900-02-29", "2024-01-0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tw_date_parse(bad[i], &day), "%s", bad[i]);
    char text[TW_DATE_TEXT_SIZE];
    for (int32_t n = -800000; n < 2932896; n += 997) {
        tw_day_to_date(n, &y, &m, &d);
        ck_assert_int_eq(tw_date_to_day(y, m, d), n);
        if (y >= 1) {
            tw_date_format(n, text);
            int32_t parsed;
            ck_assert(tw_date_parse(text, &parsed));
            ck_assert_int_eq(parsed, n);
        }
    }
    tw_date_format(19782, text);
    ck_assert_str_eq(text, "2024-02-29");
    ck_assert_int_eq(tw_floor_div(-1, 86400), -1);
    ck_assert_int_eq(tw_floor_div(86400, 86400), 1);
    ck_assert_int_eq(tw_floor_div(-86400, 86400), -1);
}
END_TEST

START_TEST(logical_days_start_at_the_day_start_hour)
{
    tw_day_settings berlin4 = {"Europe/Berlin", 4};
    int32_t day, expected = tw_date_to_day(2024, 3, 30);
    /* 03:30 on the night of the spring change still belongs to Saturday. */
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
    /* By a recorded offset: 03:30 UTC at -04:00 is 23:30 the day before. */
    int32_t d = tw_date_to_day(2024, 6, 1);
    ck_assert_int_eq(
        tw_logical_day_at_offset(0, MS(utc_day_s(2024, 6, 2)) + 7 * HOUR_MS / 2, -4 * 3600), d);
    ck_assert_int_eq(tw_logical_day_at_offset(4, MS(utc_day_s(2024, 6, 2)) + 3 * HOUR_MS, 0), d);
    ck_assert_int_eq(tw_logical_day_at_offset(0, -1, 0), -1);
    ck_assert_int_eq(tw_logical_day(&(tw_day_settings){"Mars/Base", 0}, 0, &day),
                     TW_ERR_VALIDATION);
}
END_TEST

START_TEST(days_in_utc)
{
    tw_day_settings c = {"UTC", 0};
    int32_t d = tw_date_to_day(2024, 6, 1), day;
    int64_t start;
    ck_assert(tw_logical_day(&c, d * DAY_MS, &day) == TW_OK && day == d);
    ck_assert(tw_logical_day(&c, d * DAY_MS - 1, &day) == TW_OK && day == d - 1);
    ck_assert(tw_logical_day_start(&c, d, &start) == TW_OK && start == d * DAY_MS);
    /* Days that start at 04:00: 03:59 still belongs to yesterday. */
    c.day_start_hour = 4;
    ck_assert(tw_logical_day(&c, d * DAY_MS + 4 * HOUR_MS - 1, &day) == TW_OK && day == d - 1);
    ck_assert(tw_logical_day(&c, d * DAY_MS + 4 * HOUR_MS, &day) == TW_OK && day == d);
    ck_assert(tw_logical_day_start(&c, d, &start) == TW_OK && start == d * DAY_MS + 4 * HOUR_MS);
    /* At a recorded offset: 23:30 in New York (-4 h) is 03:30 UTC next day. */
    ck_assert_int_eq(
        tw_logical_day_at_offset(0, (d + 1) * DAY_MS + 3 * HOUR_MS + HOUR_MS / 2, -4 * 3600), d);
    ck_assert_int_eq(tw_logical_day_at_offset(0, d * DAY_MS - HOUR_MS, 2 * 3600), d);
}
END_TEST

static int64_t day_start(const tw_day_settings *s, int32_t day)
{
    int64_t ms;
    ck_assert_int_eq(tw_logical_day_start(s, day, &ms), TW_OK);
    return ms;
}

static int32_t logical_day(const tw_day_settings *s, int64_t ms)
{
    int32_t day;
    ck_assert_int_eq(tw_logical_day(s, ms, &day), TW_OK);
    return day;
}

START_TEST(days_across_dst)
{
    tw_day_settings c = {"America/New_York", 0};
    int32_t mar10 = tw_date_to_day(2024, 3, 10), nov3 = tw_date_to_day(2024, 11, 3);
    /* 2024-03-10 is 23 hours long, 2024-11-03 25. */
    ck_assert_int_eq(day_start(&c, mar10 + 1) - day_start(&c, mar10), 23 * HOUR_MS);
    ck_assert_int_eq(day_start(&c, nov3 + 1) - day_start(&c, nov3), 25 * HOUR_MS);
    ck_assert_int_eq(day_start(&c, mar10), mar10 * DAY_MS + 5 * HOUR_MS);
    ck_assert_int_eq(logical_day(&c, day_start(&c, mar10 + 1) - 1), mar10);
    ck_assert_int_eq(logical_day(&c, day_start(&c, mar10 + 1)), mar10 + 1);
    /* A day starting at 02:00 on the day 02:00 does not exist starts when
     * the clocks jump (03:00 EDT, 07:00 UTC). */
    c.day_start_hour = 2;
    ck_assert_int_eq(day_start(&c, mar10), mar10 * DAY_MS + 7 * HOUR_MS);
    ck_assert_int_eq(logical_day(&c, mar10 * DAY_MS + 7 * HOUR_MS - 1), mar10 - 1);

    /* Local hours: 01:00-01:59 happens twice on 2024-11-03. */
    int64_t t = nov3 * DAY_MS + 5 * HOUR_MS; /* 01:00 EDT */
    int64_t next;
    int hour;
    ck_assert(tw_tz_hour(c.time_zone, t, &hour, &next) == TW_OK && hour == 1);
    ck_assert_int_eq(next, t + HOUR_MS); /* 01:00 EST: the offset changes */
    ck_assert(tw_tz_hour(c.time_zone, next, &hour, &next) == TW_OK && hour == 1);
    ck_assert(tw_tz_hour(c.time_zone, next, &hour, NULL) == TW_OK && hour == 2);
    /* Half an hour into an hour: the rest of it. */
    ck_assert(tw_tz_hour(c.time_zone, t + HOUR_MS / 2, &hour, &next) == TW_OK && hour == 1);
    ck_assert_int_eq(next, t + HOUR_MS);
    /* Kathmandu is 5:45 ahead: its hours end at a quarter past UTC's. */
    ck_assert(tw_tz_hour("Asia/Kathmandu", MS(utc_day_s(2024, 6, 1)), &hour, &next) == TW_OK);
    ck_assert_int_eq(hour, 5);
    ck_assert_int_eq(next, MS(utc_day_s(2024, 6, 1)) + HOUR_MS / 4);
}
END_TEST

/* A day range places every instant in the day tw_logical_day names, across
 * both changes of a year and with day starts in and out of the gaps. */
START_TEST(day_ranges_agree_with_logical_days)
{
    static const tw_day_settings settings[] = {
        {"America/New_York", 0},    {"America/New_York", 2}, {"Europe/Berlin", 4},
        {"Australia/Lord_Howe", 2}, {"Asia/Kathmandu", 5},   {"UTC", 23},
    };
    tw_arena *arena = tw_arena_new(1 << 14);
    ck_assert_ptr_nonnull(arena);
    for (size_t k = 0; k < sizeof settings / sizeof settings[0]; k++) {
        const tw_day_settings *s = &settings[k];
        int32_t first = tw_date_to_day(2024, 1, 1);
        tw_day_range r;
        ck_assert_int_eq(tw_day_range_init(&r, s, first, 366, arena), TW_OK);
        for (int32_t i = 0; i < 366; i++) {
            int64_t start;
            ck_assert_int_eq(tw_logical_day_start(s, first + i, &start), TW_OK);
            ck_assert_int_eq(r.starts[i], start);
        }
        ck_assert_int_eq(tw_day_range_index(&r, r.starts[0] - 1), -1);
        ck_assert_int_eq(tw_day_range_index(&r, r.starts[366]), -1);
        for (int64_t t = r.starts[0]; t < r.starts[366]; t += 17 * 60 * 1000 + 31) {
            int32_t day;
            ck_assert_int_eq(tw_logical_day(s, t, &day), TW_OK);
            ck_assert_msg(tw_day_range_index(&r, t) == day - first, "%s/%d at %lld", s->time_zone,
                          s->day_start_hour, (long long)t);
        }
        /* The instants either side of each boundary. */
        for (int32_t i = 1; i < 366; i++) {
            ck_assert_int_eq(tw_day_range_index(&r, r.starts[i]), i);
            ck_assert_int_eq(tw_day_range_index(&r, r.starts[i] - 1), i - 1);
        }
    }
    tw_day_range r;
    ck_assert_int_eq(tw_day_range_init(&r, &(tw_day_settings){"Mars/Base", 0}, 0, 1, arena),
                     TW_ERR_VALIDATION);
    tw_arena_free(arena);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("tz");
    TCase *tc = tcase_create("tz");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, init_finds_the_system_zone_data);
    tcase_add_test(tc, zone_names_are_checked);
    tcase_add_loop_test(tc, offsets_agree_with_glibc, 0, NZONES);
    tcase_add_test(tc, every_zone_agrees_at_every_change_2023_2036);
    tcase_add_loop_test(tc, local_hours_end_where_tz_hour_says, 0, NZONES);
    tcase_add_test(tc, utc_never_changes);
    tcase_add_test(tc, local_times_follow_daylight_saving);
    tcase_add_test(tc, local_times_in_gaps_and_overlaps);
    tcase_add_test(tc, southern_hemisphere_after_2037);
    tcase_add_test(tc, dates);
    tcase_add_test(tc, logical_days_start_at_the_day_start_hour);
    tcase_add_test(tc, days_in_utc);
    tcase_add_test(tc, days_across_dst);
    tcase_add_test(tc, day_ranges_agree_with_logical_days);
    suite_add_tcase(s, tc);
    return s;
}
