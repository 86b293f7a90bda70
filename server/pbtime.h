/*
 * google.protobuf.Timestamp and Duration, to and from Unix milliseconds:
 * the one place every service converts the API's times. Valid ranges are
 * the protobuf documentation's: Timestamps from 0001-01-01 to 9999-12-31
 * (UTC), nanos in [0, 1e9); Durations within 10,000 years, seconds and
 * nanos of one sign.
 */
#ifndef TW_PBTIME_H
#define TW_PBTIME_H

#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "tw_arena.h"

#include <stdbool.h>
#include <stdint.h>

/* A Timestamp in arena for unix_ms (times before 1970 included); NULL when
 * out of memory. */
Google__Protobuf__Timestamp *tw_timestamp_new(tw_arena *arena, int64_t unix_ms);

/* The Timestamp in Unix ms (sub-millisecond nanos dropped); false when t is
 * NULL or not a valid Timestamp. */
bool tw_timestamp_to_ms(const Google__Protobuf__Timestamp *t, int64_t *unix_ms);

/* A Duration in arena for ms; NULL when out of memory. */
Google__Protobuf__Duration *tw_duration_new(tw_arena *arena, int64_t ms);

/* The Duration in ms; false when d is NULL or not a valid Duration. */
bool tw_duration_to_ms(const Google__Protobuf__Duration *d, int64_t *ms);

#endif
