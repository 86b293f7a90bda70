/*
 * Time zones, calendar dates and logical days (tz.h). libical answers one
 * question, under one lock: the offset of a zone at an instant. Local
 * times, instants of local times and day boundaries are worked out here
 * from that answer, so that gaps and overlaps are resolved the one way
 * tz.h promises rather than as libical 3.0 happens to (it reads a skipped
 * 02:30 as 01:30 and a repeated 01:30 as its second occurrence).
 */
#include "tz_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Zones looked up recently, so a busy zone is not searched for by name
 * among libical's few hundred on every conversion. */
#define ZONE_CACHE_SIZE 16
#define SECS_PER_DAY    INT64_C(86400)
#define SECS_PER_HOUR   INT64_C(3600)
#define MS_PER_S        INT64_C(1000)
#define MS_PER_HOUR     INT64_C(3600000)

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

/* The offset of zone at Unix second t; the lock is held. */
static int32_t offset_locked(icaltimezone *zone, int64_t t)
{
    icaltimezone *utc = icaltimezone_get_utc_timezone();
    if (zone == utc)
        return 0;
    struct icaltimetype at = icaltime_from_timet_with_zone((time_t)t, 0, utc);
    int is_daylight = 0;
    return (int32_t)icaltimezone_get_utc_offset_of_utc_time(zone, &at, &is_daylight);
}

/* The first second in (lo, hi] whose offset is not `offset`, the offset at
 * lo, when the offset at hi differs (one change in between); the lock is
 * held. */
static int64_t first_change_locked(icaltimezone *zone, int64_t lo, int64_t hi, int32_t offset)
{
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (offset_locked(zone, mid) == offset)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/*
 * The instant (Unix second) of local second local_s (seconds of the local
 * calendar counted like Unix time) in zone; the lock is held. Offsets are
 * taken a day either side, where no instant reading local_s can lie (zones
 * are within -12 h and +14 h of UTC), assuming at most one change of
 * offset in those two days. A local time read before a change (with the
 * earlier offset) wins: the first of two occurrences. For a local time in
 * a gap, to_jump picks the instant the clocks jumped over it; otherwise
 * the local time is read with the offset before the gap (RFC 5545).
 */
static int64_t resolve_locked(icaltimezone *zone, int64_t local_s, bool to_jump)
{
    int32_t before = offset_locked(zone, local_s - SECS_PER_DAY);
    int32_t after = offset_locked(zone, local_s + SECS_PER_DAY);
    int64_t early = local_s - before, late = local_s - after;
    if (offset_locked(zone, early) == before)
        return early;
    if (offset_locked(zone, late) == after)
        return late;
    if (!to_jump || late >= early)
        return early;
    /* In a gap: late reads before the jump, early after it. */
    return first_change_locked(zone, late, early, before);
}

/* ---- Calendar dates ----------------------------------------------------- */

int64_t tw_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static bool is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

bool tw_date_valid(int year, int month, int day)
{
    static const int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1)
        return false;
    return day <= days_in_month[month - 1] + (month == 2 && is_leap(year));
}

/* Howard Hinnant's days_from_civil and civil_from_days: plain Gregorian
 * arithmetic, valid far beyond the years dates may have. */
int32_t tw_date_to_day(int year, int month, int day)
{
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = tw_floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

void tw_day_to_date(int32_t day, int *year, int *month, int *day_of_month)
{
    int64_t z = (int64_t)day + 719468;
    int64_t era = tw_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day_of_month = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

bool tw_date_parse(const char *text, int32_t *day)
{
    int digits[8], n = 0;
    for (int i = 0; i < 10; i++) {
        char c = text[i];
        if (i == 4 || i == 7) {
            if (c != '-')
                return false;
        } else if (c >= '0' && c <= '9') {
            digits[n++] = c - '0';
        } else {
            return false; /* also the end of a short string */
        }
    }
    if (text[10] != '\0')
        return false;
    int year = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3];
    int month = digits[4] * 10 + digits[5];
    int mday = digits[6] * 10 + digits[7];
    if (!tw_date_valid(year, month, mday))
        return false;
    *day = tw_date_to_day(year, month, mday);
    return true;
}

void tw_date_format(int32_t day, char out[TW_DATE_TEXT_SIZE])
{
    int y, m, d;
    tw_day_to_date(day, &y, &m, &d);
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999;
    snprintf(out, TW_DATE_TEXT_SIZE, "%04d-%02d-%02d", y, m, d);
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

static int64_t local_seconds(const tw_local_time *lt)
{
    return (int64_t)tw_date_to_day(lt->year, lt->month, lt->day) * SECS_PER_DAY +
           lt->hour * SECS_PER_HOUR + lt->minute * 60 + lt->second;
}

static tw_local_time local_time_of(int64_t local_s)
{
    int64_t day = tw_floor_div(local_s, SECS_PER_DAY);
    int64_t rest = local_s - day * SECS_PER_DAY;
    tw_local_time lt = {.hour = (int)(rest / SECS_PER_HOUR),
                        .minute = (int)(rest % SECS_PER_HOUR / 60),
                        .second = (int)(rest % 60)};
    tw_day_to_date((int32_t)day, &lt.year, &lt.month, &lt.day);
    return lt;
}

/* ---- Zones ---------------------------------------------------------------- */

bool tw_tz_known(const char *name)
{
    tw_tz_lock();
    bool known = tw_tz_zone_locked(name) != NULL;
    tw_tz_unlock();
    return known;
}

tw_err tw_tz_offset(const char *zone, int64_t unix_ms, int32_t *offset_s)
{
    tw_tz_lock();
    icaltimezone *z = tw_tz_zone_locked(zone);
    if (z != NULL)
        *offset_s = offset_locked(z, tw_floor_div(unix_ms, MS_PER_S));
    tw_tz_unlock();
    return z != NULL ? TW_OK : TW_ERR_VALIDATION;
}

tw_err tw_tz_local(const char *zone, int64_t unix_ms, tw_local_time *out)
{
    int32_t offset;
    tw_err err = tw_tz_offset(zone, unix_ms, &offset);
    if (err == TW_OK)
        *out = local_time_of(tw_floor_div(unix_ms, MS_PER_S) + offset);
    return err;
}

int64_t tw_tz_instant_locked(icaltimezone *zone, const tw_local_time *local)
{
    return resolve_locked(zone, local_seconds(local), false);
}

tw_err tw_tz_instant(const char *zone, const tw_local_time *local, int64_t *unix_ms)
{
    tw_tz_lock();
    icaltimezone *z = tw_tz_zone_locked(zone);
    if (z != NULL)
        *unix_ms = tw_tz_instant_locked(z, local) * MS_PER_S;
    tw_tz_unlock();
    return z != NULL ? TW_OK : TW_ERR_VALIDATION;
}

tw_err tw_tz_hour(const char *zone, int64_t unix_ms, int *hour, int64_t *next_ms)
{
    tw_tz_lock();
    icaltimezone *z = tw_tz_zone_locked(zone);
    if (z == NULL) {
        tw_tz_unlock();
        return TW_ERR_VALIDATION;
    }
    int64_t s = tw_floor_div(unix_ms, MS_PER_S);
    int32_t offset = offset_locked(z, s);
    int64_t local_hour = tw_floor_div(unix_ms + offset * MS_PER_S, MS_PER_HOUR);
    *hour = (int)(local_hour - tw_floor_div(local_hour, 24) * 24);
    if (next_ms != NULL) {
        /* The next hour, unless the offset changes first; it changes at
         * most once within an hour, at a whole second. */
        int64_t next = (local_hour + 1) * MS_PER_HOUR - offset * MS_PER_S;
        int64_t last = tw_floor_div(next - 1, MS_PER_S);
        if (last > s && offset_locked(z, last) != offset)
            next = first_change_locked(z, s, last, offset) * MS_PER_S;
        *next_ms = next;
    }
    tw_tz_unlock();
    return TW_OK;
}

/* ---- Logical days --------------------------------------------------------- */

int32_t tw_logical_day_at_offset(int day_start_hour, int64_t unix_ms, int32_t utc_offset_s)
{
    int64_t local_ms = unix_ms + utc_offset_s * MS_PER_S;
    return (int32_t)tw_floor_div(local_ms - day_start_hour * MS_PER_HOUR, SECS_PER_DAY * MS_PER_S);
}

tw_err tw_logical_day(const tw_day_settings *s, int64_t unix_ms, int32_t *day)
{
    int32_t offset;
    tw_err err = tw_tz_offset(s->time_zone, unix_ms, &offset);
    if (err == TW_OK)
        *day = tw_logical_day_at_offset(s->day_start_hour, unix_ms, offset);
    return err;
}

static int64_t day_start_locked(icaltimezone *z, const tw_day_settings *s, int32_t day)
{
    int64_t local_s = day * SECS_PER_DAY + s->day_start_hour * SECS_PER_HOUR;
    return resolve_locked(z, local_s, true) * MS_PER_S;
}

tw_err tw_logical_day_start(const tw_day_settings *s, int32_t day, int64_t *unix_ms)
{
    tw_tz_lock();
    icaltimezone *z = tw_tz_zone_locked(s->time_zone);
    if (z != NULL)
        *unix_ms = day_start_locked(z, s, day);
    tw_tz_unlock();
    return z != NULL ? TW_OK : TW_ERR_VALIDATION;
}

tw_err tw_day_range_init(tw_day_range *r, const tw_day_settings *s, int32_t first_day,
                         int32_t ndays, tw_arena *arena)
{
    *r = (tw_day_range){first_day, ndays, NULL};
    if (ndays < 1)
        return TW_ERR_VALIDATION;
    r->starts = tw_arena_alloc(arena, ((size_t)ndays + 1) * sizeof *r->starts);
    if (r->starts == NULL)
        return TW_ERR_NO_MEMORY;
    tw_tz_lock();
    icaltimezone *z = tw_tz_zone_locked(s->time_zone);
    for (int32_t i = 0; z != NULL && i <= ndays; i++)
        r->starts[i] = day_start_locked(z, s, first_day + i);
    tw_tz_unlock();
    return z != NULL ? TW_OK : TW_ERR_VALIDATION;
}

int32_t tw_day_range_index(const tw_day_range *r, int64_t unix_ms)
{
    if (unix_ms < r->starts[0] || unix_ms >= r->starts[r->ndays])
        return -1;
    /* The last day starting at or before unix_ms (days the clocks skipped
     * whole start and end at one instant and hold nothing). */
    int32_t lo = 0, hi = r->ndays - 1;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo + 1) / 2;
        if (r->starts[mid] <= unix_ms)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}
