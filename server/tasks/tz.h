/*
 * Time zones and calendar days for tasks, on Debian's libical.
 *
 * libical answers every question about zones here (what local time an
 * instant is in a zone, which instant a local time is, daylight saving
 * included), reading the system's zoneinfo (Debian's tzdata package,
 * /usr/share/zoneinfo): libical 3.0 as Debian builds it does not use its
 * own copy of the zone data, and tw_tz_init() insists on the system data
 * so that answers do not depend on how a machine's libical was built.
 *
 * libical's zone cache (the table of zones it has loaded, grown on first
 * use of each zone) is not safe to use from several threads at once, so
 * every libical call in twd goes through this file and the recurrence file
 * under one lock (tw_tz_lock). Nothing here allocates memory the caller
 * must free.
 *
 * Day numbers count days since 1970-01-01 (day 0) on the proleptic
 * Gregorian calendar; they name calendar dates, not instants.
 */
#ifndef TW_TASKS_TZ_H
#define TW_TASKS_TZ_H

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

/* Sets libical up once (errors not fatal, system zone data). Any function
 * here calls it; TaskService's registration calls it first, so that twd
 * refuses to start, with a line in errbuf, when the system zone data is
 * missing. */
bool tw_tz_init(char *errbuf, size_t errlen);

/* True when name is an IANA zone the system knows ("Europe/Berlin",
 * "UTC"). Names are checked for shape before any file is looked up. */
bool tw_tz_known(const char *name);

/* The local time of unix_ms in zone. TW_ERR_VALIDATION: unknown zone. */
tw_err tw_tz_local(const char *zone, int64_t unix_ms, tw_local_time *out);

/* The instant of a local time in zone, in Unix ms. A local time that does
 * not exist (skipped by a daylight-saving change) or exists twice is
 * resolved as libical resolves it. TW_ERR_VALIDATION: unknown zone. */
tw_err tw_tz_instant(const char *zone, const tw_local_time *local, int64_t *unix_ms);

/* Calendar dates and day numbers (no zone involved). */
bool tw_date_valid(int year, int month, int day);
int32_t tw_date_to_day(int year, int month, int day);
void tw_day_to_date(int32_t day, int *year, int *month, int *day_of_month);

/* Compares two local times as wall-clock readings: <0, 0, >0. */
int tw_local_time_cmp(const tw_local_time *a, const tw_local_time *b);

/*
 * The user's logical day: days in time_zone that start at day_start_hour
 * (0-23) rather than at midnight, so a night owl's 01:00 still belongs to
 * the evening before when the day starts at 04:00.
 */
typedef struct tw_day_settings {
    const char *time_zone;
    int day_start_hour;
} tw_day_settings;

/* The logical day unix_ms falls in. */
tw_err tw_logical_day(const tw_day_settings *s, int64_t unix_ms, int32_t *day);

/* The first instant of logical day `day`. */
tw_err tw_logical_day_start(const tw_day_settings *s, int32_t day, int64_t *unix_ms);

/* Unix ms to seconds, rounding down (also before 1970). */
int64_t tw_tz_floor_seconds(int64_t unix_ms);

/* The lock every libical call holds; recurrence.c takes it too. */
void tw_tz_lock(void);
void tw_tz_unlock(void);

#endif
