/* Protobuf time values for pbtime.h. */
#include "pbtime.h"

#define TIMESTAMP_MIN_S INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define TIMESTAMP_MAX_S INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define DURATION_MAX_S  INT64_C(315576000000) /* 10,000 years */
#define NANOS_PER_MS    1000000

/* Seconds and the milliseconds left over, rounding toward minus infinity so
 * that nanos stay non-negative before 1970. */
static int64_t floor_seconds(int64_t ms)
{
    return ms / 1000 - (ms % 1000 < 0);
}

Google__Protobuf__Timestamp *tw_timestamp_new(tw_arena *arena, int64_t unix_ms)
{
    Google__Protobuf__Timestamp *t = tw_arena_alloc(arena, sizeof *t);
    if (t == NULL)
        return NULL;
    google__protobuf__timestamp__init(t);
    t->seconds = floor_seconds(unix_ms);
    t->nanos = (int32_t)(unix_ms - t->seconds * 1000) * NANOS_PER_MS;
    return t;
}

bool tw_timestamp_to_ms(const Google__Protobuf__Timestamp *t, int64_t *unix_ms)
{
    if (t == NULL || t->nanos < 0 || t->nanos > 999999999 || t->seconds < TIMESTAMP_MIN_S ||
        t->seconds > TIMESTAMP_MAX_S)
        return false;
    *unix_ms = t->seconds * 1000 + t->nanos / NANOS_PER_MS;
    return true;
}

Google__Protobuf__Duration *tw_duration_new(tw_arena *arena, int64_t ms)
{
    Google__Protobuf__Duration *d = tw_arena_alloc(arena, sizeof *d);
    if (d == NULL)
        return NULL;
    google__protobuf__duration__init(d);
    d->seconds = ms / 1000; /* a Duration's seconds and nanos share ms's sign */
    d->nanos = (int32_t)(ms % 1000) * NANOS_PER_MS;
    return d;
}

bool tw_duration_to_ms(const Google__Protobuf__Duration *d, int64_t *ms)
{
    if (d == NULL || d->nanos < -999999999 || d->nanos > 999999999 ||
        d->seconds < -DURATION_MAX_S || d->seconds > DURATION_MAX_S ||
        (d->seconds > 0 && d->nanos < 0) || (d->seconds < 0 && d->nanos > 0))
        return false;
    *ms = d->seconds * 1000 + d->nanos / NANOS_PER_MS;
    return true;
}
