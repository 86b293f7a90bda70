/*
 * Time zones, calendar dates and the user's logical day, for every part of
 * twd: tasks (due times, recurrence, streaks), health logs and focus
 * sessions (daily summaries, statistics) and accounts (the profile's zone).
 *
 * Zones come from Debian's libical (issue 5: a well-kept library rather
 * than a hand-written one), reading the system's zoneinfo (Debian's tzdata,
 * /usr/share/zoneinfo): libical 3.0 as Debian builds it has no zone data of
 * its own, and tw_tz_init() insists on the system data so that answers do
 * not depend on how a machine's libical was built. libical turns each TZif
 * file into VTIMEZONE rules; with Debian's libical 3.0.16 they agree with
 * glibc to the second at every change of offset from 2023 to 2036 in every
 * zone of zone1970.tab, but are wrong for hours to months of some years
 * in a few zones before 2023 and after 2037 (tests/unit/server/test_tz.c
 * lists where, for the zones it compares).
 *
 * libical's zone cache (the table of zones it has loaded, grown on first
 * use of each zone) is not safe to use from several threads at once, so
 * every libical call in twd goes through this file and
 * server/tasks/recurrence.c under one lock (tw_tz_lock). Code that converts
 * many instants (a summary of many entries) converts the few day
 * boundaries once (tw_day_range) rather than each instant.
 *
 * Day numbers count days since 1970-01-01 (day 0) on the proleptic
 * Gregorian calendar; they name calendar dates, not instants. Nothing here
 * allocates memory the caller must free.
 */
#ifndef TW_TZ_H
#define TW_TZ_H

#include "tw_arena.h"
#include "tw_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest zone name accepted ("America/Argentina/ComodRivadavia" is 32). */
#define TW_TZ_NAME_MAX 64

/* A wall-clock time in some zone. */
typedef struct tw_local_time {
    int year, month, day;
    int hour, minute, second;
} tw_local_time;

/* ---- Zones ------------------------------------------------------------- */

/* Sets libical up once (errors not fatal, system zone data). Any function
 * here calls it; twd's start-up calls it first, so that twd refuses to
 * start, with a line in errbuf, when the system zone data is missing. */
bool tw_tz_init(char *errbuf, size_t errlen);

/* True when name is an IANA zone the system knows ("Europe/Berlin",
 * "Etc/GMT+5", "UTC"). Names are checked for shape ([A-Za-z0-9_+-]
 * segments joined by '/', at most TW_TZ_NAME_MAX bytes) before any file is
 * looked up, so "../x" and "/etc/localtime" are never read. */
bool tw_tz_known(const char *name);

/* The offset of local time in zone from UTC at unix_ms, in seconds east of
 * UTC (New York in winter: -18000). TW_ERR_VALIDATION: unknown zone. */
tw_err tw_tz_offset(const char *zone, int64_t unix_ms, int32_t *offset_s);

/* The local time of unix_ms in zone (its second, rounding down).
 * TW_ERR_VALIDATION: unknown zone. */
tw_err tw_tz_local(const char *zone, int64_t unix_ms, tw_local_time *out);

/* The instant of a local time in zone, in Unix ms, as RFC 5545 (3.3.5)
 * reads a DATE-TIME with a TZID: a local time that occurs twice (clocks
 * set back) is its first occurrence; one that never occurs (clocks set
 * forward) is read with the offset in effect before the change, so 02:30
 * on New York's spring-forward day is 03:30 EDT. TW_ERR_VALIDATION:
 * unknown zone. */
tw_err tw_tz_instant(const char *zone, const tw_local_time *local, int64_t *unix_ms);

/* The local hour (0-23) in zone at unix_ms and, when next_ms is not NULL,
 * the first instant after unix_ms at which the local hour changes or the
 * zone's offset does, whichever is sooner: what splits a stretch of time
 * into the local hours it was spent in. TW_ERR_VALIDATION: unknown zone. */
tw_err tw_tz_hour(const char *zone, int64_t unix_ms, int *hour, int64_t *next_ms);

/* The lock every libical call holds; recurrence.c takes it too. */
void tw_tz_lock(void);
void tw_tz_unlock(void);

/* ---- Calendar dates (no zone involved) ---------------------------------- */

/* A real date of the years 0001-9999. */
bool tw_date_valid(int year, int month, int day);
/* The day number of a date (not checked: tw_date_valid first). */
int32_t tw_date_to_day(int year, int month, int day);
void tw_day_to_date(int32_t day, int *year, int *month, int *day_of_month);

/* Parses an ISO 8601 calendar date "YYYY-MM-DD" (a valid date); false
 * otherwise. */
bool tw_date_parse(const char *text, int32_t *day);

/* Formats a day number as "YYYY-MM-DD" (years clamped to 0000-9999). */
#define TW_DATE_TEXT_SIZE 11
void tw_date_format(int32_t day, char out[TW_DATE_TEXT_SIZE]);

/* Compares two local times as wall-clock readings: <0, 0, >0. */
int tw_local_time_cmp(const tw_local_time *a, const tw_local_time *b);

/* Floor division (b > 0), for day and second arithmetic before 1970. */
int64_t tw_floor_div(int64_t a, int64_t b);

/* ---- The user's logical day ------------------------------------------- */

/*
 * Days in time_zone that start at day_start_hour (0-23) rather than at
 * midnight, so a night owl's 01:00 still belongs to the evening before
 * when the day starts at 04:00. time_zone is borrowed.
 */
typedef struct tw_day_settings {
    const char *time_zone;
    int day_start_hour;
} tw_day_settings;

/* The logical day unix_ms falls in. */
tw_err tw_logical_day(const tw_day_settings *s, int64_t unix_ms, int32_t *day);

/* The first instant of logical day `day`: when the wall clock first reads
 * its day_start_hour (the first time, when the clocks are set back over
 * it; the instant they jump past it, when they are set forward over it).
 * So day d holds exactly the instants from its start to the next day's. */
tw_err tw_logical_day_start(const tw_day_settings *s, int32_t day, int64_t *unix_ms);

/* The logical day unix_ms falls in for someone whose local time was
 * utc_offset_s seconds east of UTC then (no zone involved). */
int32_t tw_logical_day_at_offset(int day_start_hour, int64_t unix_ms, int32_t utc_offset_s);

/* A range of logical days with their boundaries worked out once, so that
 * placing many instants in their days needs no zone conversion each. */
typedef struct tw_day_range {
    int32_t first_day, ndays;
    int64_t *starts; /* ndays + 1: starts[i] begins day first_day + i */
} tw_day_range;

/* The range of ndays (>= 1) logical days from first_day; starts in arena. */
tw_err tw_day_range_init(tw_day_range *r, const tw_day_settings *s, int32_t first_day,
                         int32_t ndays, tw_arena *arena);

/* The index (0 .. ndays - 1) of the range's day unix_ms falls in, or -1
 * when it is outside the range. */
int32_t tw_day_range_index(const tw_day_range *r, int64_t unix_ms);

#endif
