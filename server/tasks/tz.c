/* Time zones and calendar days (tz.h) on libical, under one lock. */
#include "tz_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Zones looked up recently, so a busy zone is not searched for by name
 * among libical's few hundred on every conversion. */
#define ZONE_CACHE_SIZE 16

static pthread_mutex_t tz_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t tz_once = PTHREAD_ONCE_INIT;
static const char *tz_init_error; /* set once by tz_setup */

static struct {
    char name[TW_TZ_NAME_MAX + 1];
    icaltimezone *zone;
} zone_cache[ZONE_CACHE_SIZE];
static unsigned zone_cache_next;

void tw_tz_lock(void)
{
    pthread_mutex_lock(&tz_mutex);
}

void tw_tz_unlock(void)
{
    pthread_mutex_unlock(&tz_mutex);
}

static void tz_setup(void)
{
    /* A bad RRULE or zone must come back as an error, never abort(). */
    icalerror_set_errors_are_fatal(0);
    /* The system's zoneinfo (tzdata), not a copy compiled into libical. */
    icaltimezone_set_builtin_tzdata(0);
    const char *dir = icaltzutil_get_zone_directory();
    if (dir == NULL)
        tz_init_error = "no time zone data: install Debian's tzdata package (/usr/share/zoneinfo)";
    else if (icaltimezone_get_builtin_timezone("Europe/Berlin") == NULL)
        tz_init_error = "the system time zone data has no Europe/Berlin";
}

bool tw_tz_init(char *errbuf, size_t errlen)
{
    tw_tz_lock();
    pthread_once(&tz_once, tz_setup);
    tw_tz_unlock();
    if (tz_init_error != NULL && errbuf != NULL)
        snprintf(errbuf, errlen, "%s", tz_init_error);
    return tz_init_error == NULL;
}

/* IANA names are paths of [A-Za-z0-9_+-] segments; anything else (".."
 * above all, which would make libical read any file) is refused before a
 * file is looked up. */
static bool name_shaped(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TW_TZ_NAME_MAX)
        return false;
    bool segment_start = true;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (c == '/') {
            if (segment_start)
                return false; /* leading or doubled slash */
            segment_start = true;
            continue;
        }
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '+' || (c == '-' && !segment_start);
        if (!ok)
            return false;
        segment_start = false;
    }
    return !segment_start;
}

icaltimezone *tw_tz_zone_locked(const char *name)
{
    pthread_once(&tz_once, tz_setup);
    if (tz_init_error != NULL || !name_shaped(name))
        return NULL;
    if (strcmp(name, "UTC") == 0)
        return icaltimezone_get_utc_timezone();
    for (unsigned i = 0; i < ZONE_CACHE_SIZE; i++)
        if (zone_cache[i].zone != NULL && strcmp(zone_cache[i].name, name) == 0)
            return zone_cache[i].zone;
    icaltimezone *zone = icaltimezone_get_builtin_timezone(name);
    if (zone != NULL) {
        unsigned slot = zone_cache_next++ % ZONE_CACHE_SIZE;
        snprintf(zone_cache[slot].name, sizeof zone_cache[slot].name, "%s", name);
        zone_cache[slot].zone = zone;
    }
    return zone;
}

int64_t tw_tz_floor_seconds(int64_t unix_ms)
{
    return unix_ms >= 0 ? unix_ms / 1000 : -((-unix_ms + 999) / 1000);
}

bool tw_tz_known(const char *name)
{
    tw_tz_lock();
    bool known = tw_tz_zone_locked(name) != NULL;
    tw_tz_unlock();
    return known;
}

tw_err tw_tz_local(const char *zone, int64_t unix_ms, tw_local_time *out)
{
    tw_tz_lock();
    icaltimezone *z = tw_tz_zone_locked(zone);
    if (z == NULL) {
        tw_tz_unlock();
        return TW_ERR_VALIDATION;
    }
    struct icaltimetype t =
        icaltime_from_timet_with_zone((time_t)tw_tz_floor_seconds(unix_ms), 0, z);
    tw_tz_unlock();
    *out = (tw_local_time){t.year, t.month, t.day, t.hour, t.minute, t.second};
    return TW_OK;
}

tw_err tw_tz_instant(const char *zone, const tw_local_time *local, int64_t *unix_ms)
{
    struct icaltimetype t = icaltime_null_time();
    t.year = local->year;
    t.month = local->month;
    t.day = local->day;
    t.hour = local->hour;
    t.minute = local->minute;
    t.second = local->second;
    tw_tz_lock();
    icaltimezone *z = tw_tz_zone_locked(zone);
    if (z == NULL) {
        tw_tz_unlock();
        return TW_ERR_VALIDATION;
    }
    t.zone = z;
    time_t secs = icaltime_as_timet_with_zone(t, z);
    tw_tz_unlock();
    *unix_ms = (int64_t)secs * 1000;
    return TW_OK;
}

bool tw_date_valid(int year, int month, int day)
{
    static const int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1)
        return false;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return day <= days_in_month[month - 1] + (month == 2 && leap);
}

/* Dates and day numbers through glibc's UTC calendar (timegm, gmtime_r):
 * plain Gregorian arithmetic, no zone involved. */
int32_t tw_date_to_day(int year, int month, int day)
{
    struct tm tm = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day, .tm_hour = 12};
    time_t t = timegm(&tm);
    return (int32_t)((t - 12 * 3600) / 86400);
}

void tw_day_to_date(int32_t day, int *year, int *month, int *day_of_month)
{
    time_t t = (time_t)day * 86400 + 12 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    *year = tm.tm_year + 1900;
    *month = tm.tm_mon + 1;
    *day_of_month = tm.tm_mday;
}

int tw_local_time_cmp(const tw_local_time *a, const tw_local_time *b)
{
    const int av[] = {a->year, a->month, a->day, a->hour, a->minute, a->second};
    const int bv[] = {b->year, b->month, b->day, b->hour, b->minute, b->second};
    for (size_t i = 0; i < sizeof av / sizeof av[0]; i++)
        if (av[i] != bv[i])
            return av[i] < bv[i] ? -1 : 1;
    return 0;
}

tw_err tw_logical_day(const tw_day_settings *s, int64_t unix_ms, int32_t *day)
{
    tw_local_time lt;
    tw_err err = tw_tz_local(s->time_zone, unix_ms, &lt);
    if (err)
        return err;
    /* Before the day-start hour, the wall clock still reads yesterday. */
    *day = tw_date_to_day(lt.year, lt.month, lt.day) - (lt.hour < s->day_start_hour ? 1 : 0);
    return TW_OK;
}

tw_err tw_logical_day_start(const tw_day_settings *s, int32_t day, int64_t *unix_ms)
{
    tw_local_time lt = {.hour = s->day_start_hour};
    tw_day_to_date(day, &lt.year, &lt.month, &lt.day);
    return tw_tz_instant(s->time_zone, &lt, unix_ms);
}
