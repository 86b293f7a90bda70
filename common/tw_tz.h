/*
 * Time zones and calendar dates: what "the user's day" means.
 *
 * Zones are the IANA tz database as the system installs it (TZif files
 * under $TZDIR or /usr/share/zoneinfo, Debian's tzdata), read once per zone
 * and kept for the life of the process: a zone is a list of transitions
 * and, for times after the last one, the POSIX TZ rule in the file's footer.
 * "UTC" needs no file. Everything here is thread-safe.
 *
 * Dates are proleptic Gregorian days counted from 1970-01-01 (day 0), the
 * same numbering as tw_store_day() for UTC.
 */
#ifndef TW_TZ_H
#define TW_TZ_H

#include "tw_err.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct tw_tz tw_tz;

/* Longest zone name accepted ("America/Argentina/ComodRivadavia" is 32). */
#define TW_TZ_NAME_MAX 64

/*
 * The zone named name ("Europe/Paris", "UTC"), loaded on first use and then
 * shared; the pointer stays valid until the process exits. TW_ERR_NOT_FOUND
 * when there is no such zone (or the name is not a zone name at all, such as
 * "../x"); TW_ERR_DB_CORRUPT when its file cannot be read as TZif;
 * TW_ERR_NO_MEMORY.
 */
tw_err tw_tz_get(const char *name, const tw_tz **out);

/* The zone's name as given to tw_tz_get. */
const char *tw_tz_name(const tw_tz *tz);

/* The offset of local time from UTC at the instant unix_s, in seconds east
 * of UTC (New York in winter: -18000). */
int32_t tw_tz_offset(const tw_tz *tz, int64_t unix_s);

/* The first instant after unix_s at which the zone's offset may change;
 * INT64_MAX when it never changes again. */
int64_t tw_tz_next_change(const tw_tz *tz, int64_t unix_s);

/* The first instant whose local time is local_s (seconds of a local
 * calendar counted like Unix time) or later: for a local time that occurs
 * twice (clocks set back) its first occurrence, for one that never occurs
 * (clocks set forward) the instant the clocks jumped. */
int64_t tw_tz_local_to_unix(const tw_tz *tz, int64_t local_s);

/* ---- Calendar dates --------------------------------------------------- */

/* The day number of a date; month 1-12, day 1-31 (not checked). */
int64_t tw_date_to_days(int64_t year, int month, int day);

/* The date of a day number. */
void tw_date_from_days(int64_t days, int64_t *year, int *month, int *day);

/* Parses an ISO 8601 calendar date "YYYY-MM-DD" (years 0001-9999, a real
 * day of that month); false otherwise. */
bool tw_date_parse(const char *text, int64_t *days);

/* Formats a day number as "YYYY-MM-DD" (years 0-9999) into out. */
#define TW_DATE_TEXT_SIZE 11
void tw_date_format(int64_t days, char out[TW_DATE_TEXT_SIZE]);

/* Floor division, for day and hour arithmetic on times before 1970. */
int64_t tw_floor_div(int64_t a, int64_t b);

#endif
