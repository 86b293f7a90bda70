/* The rules a health log entry keeps, and what the server derives from it. */
#include "health.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits of the fields, as health_log_service.proto documents them. */
#define NOTE_MAX_CHARS        2000
#define EXTERNAL_ID_MAX_BYTES 255
#define STAGES_MAX            500
#define SAMPLES_MAX           2000
#define LABELS_MAX            20
#define LABEL_MAX_CHARS       50
#define ACTIVITY_MAX_CHARS    100
#define CUSTOM_NAME_MAX_CHARS 100
#define CUSTOM_UNIT_MAX_CHARS 20
#define DISTANCE_MAX_M        1e6
#define ENERGY_MAX_KCAL       1e5
#define WATER_MAX_ML          20000.0
#define WEIGHT_MAX_KG         1000.0
#define BPM_MIN               1.0
#define BPM_MAX               400.0
#define STEPS_MAX             1000000
#define MEDITATION_MAX_MS     TW_MS_PER_DAY

static const char *const type_names[TW_HEALTH_TYPE_COUNT] = {
    "unspecified", "sleep",      "exercise", "mood",       "water",
    "weight",      "heart_rate", "steps",    "meditation", "custom",
};

const char *tw_health_type_name(int type)
{
    return type > 0 && type < TW_HEALTH_TYPE_COUNT ? type_names[type] : type_names[0];
}

/* The payload members are fields 10-18, in the order of the types 1-9. */
#define PAYLOAD_FIELD_OFFSET 9

Tw__V1__HealthLog__PayloadCase tw_health_payload_case(int type)
{
    return type > 0 && type < TW_HEALTH_TYPE_COUNT
               ? (Tw__V1__HealthLog__PayloadCase)(type + PAYLOAD_FIELD_OFFSET)
               : TW__V1__HEALTH_LOG__PAYLOAD__NOT_SET;
}

int tw_health_payload_type(Tw__V1__HealthLog__PayloadCase c)
{
    int type = (int)c - PAYLOAD_FIELD_OFFSET;
    return type > 0 && type < TW_HEALTH_TYPE_COUNT ? type : 0;
}

int64_t tw_health_start_ms(const Tw__V1__HealthLog *e)
{
    int64_t ms = 0;
    if (e->start_time != NULL)
        tw_timestamp_to_ms(e->start_time, &ms);
    return ms;
}

int64_t tw_health_end_ms(const Tw__V1__HealthLog *e)
{
    int64_t ms = tw_health_start_ms(e);
    if (e->end_time != NULL)
        tw_timestamp_to_ms(e->end_time, &ms);
    return ms;
}

/* A number in [lo, hi]; NaN and infinities are never in range. */
static bool in_range(double v, double lo, double hi)
{
    return v >= lo && v <= hi;
}

/* Where the entry's checks are: its prefix, span and arena. */
struct entry_check {
    const char *prefix;
    int64_t start_ms, end_ms, now_ms;
    tw_arena *arena;
    tw_bad_field *bad;
    char path[96]; /* scratch for "sleep.stages[3].start_time" */
};

/* "list[index].field" in the scratch path. */
static const char *path(struct entry_check *c, const char *list, size_t index, const char *field)
{
    snprintf(c->path, sizeof c->path, "%s[%zu].%s", list, index, field);
    return c->path;
}

/* A time inside the entry's span, required. */
static tw_err check_inner_time(struct entry_check *c, const char *field,
                               const Google__Protobuf__Timestamp *ts, int64_t *ms)
{
    if (ts == NULL)
        return tw_bad(c->bad, c->prefix, field, "is required");
    if (!tw_timestamp_to_ms(ts, ms))
        return tw_bad(c->bad, c->prefix, field, "is not a valid timestamp");
    if (*ms < c->start_ms || *ms > c->end_ms)
        return tw_bad(c->bad, c->prefix, field, "is outside the entry's start_time and end_time");
    return TW_OK;
}

/* An optional duration between 0 and max_ms; *ms = fallback when unset. */
static tw_err check_duration(struct entry_check *c, const char *field,
                             const Google__Protobuf__Duration *d, int64_t max_ms, int64_t fallback,
                             const char *max_what, int64_t *ms)
{
    if (d == NULL) {
        *ms = fallback;
        return TW_OK;
    }
    if (!tw_duration_to_ms(d, ms))
        return tw_bad(c->bad, c->prefix, field, "is not a valid duration");
    if (*ms < 0)
        return tw_bad(c->bad, c->prefix, field, "must not be negative");
    if (*ms > max_ms)
        return tw_bad(c->bad, c->prefix, field, "is longer than %s", max_what);
    return TW_OK;
}

static int cmp_interval(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* The time covered by the asleep stages (stages may overlap). */
static int64_t asleep_union_ms(int64_t (*iv)[2], size_t n)
{
    qsort(iv, n, sizeof *iv, cmp_interval);
    int64_t total = 0, cur_start = 0, cur_end = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (iv[i][0] > cur_end) {
            if (cur_end != INT64_MIN)
                total += cur_end - cur_start;
            cur_start = iv[i][0];
            cur_end = iv[i][1];
        } else if (iv[i][1] > cur_end) {
            cur_end = iv[i][1];
        }
    }
    if (cur_end != INT64_MIN)
        total += cur_end - cur_start;
    return total;
}

static tw_err check_sleep(struct entry_check *c, Tw__V1__HealthLog *e)
{
    const Tw__V1__HealthSleep *in = e->sleep;
    int64_t span = c->end_ms - c->start_ms;
    if (span <= 0)
        return tw_bad(c->bad, c->prefix, "end_time",
                      "a sleep session needs an end_time after its start_time");
    if (span > TW_HEALTH_SLEEP_MAX_MS)
        return tw_bad(c->bad, c->prefix, "end_time", "a sleep session lasts at most 24 hours");
    if (in->n_stages > STAGES_MAX)
        return tw_bad(c->bad, c->prefix, "sleep.stages", "has more than %d stages", STAGES_MAX);
    int64_t(*asleep)[2] = tw_arena_alloc(c->arena, (in->n_stages + 1) * sizeof *asleep);
    if (asleep == NULL)
        return TW_ERR_NO_MEMORY;
    size_t nasleep = 0;
    for (size_t i = 0; i < in->n_stages; i++) {
        const Tw__V1__HealthSleepStage *st = in->stages[i];
        int64_t a, b;
        tw_err err;
        if (st->stage <= TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_UNSPECIFIED ||
            st->stage > TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_REM)
            return tw_bad(c->bad, c->prefix, path(c, "sleep.stages", i, "stage"),
                          "unknown sleep stage %d", (int)st->stage);
        if ((err = check_inner_time(c, path(c, "sleep.stages", i, "start_time"), st->start_time,
                                    &a)) ||
            (err = check_inner_time(c, path(c, "sleep.stages", i, "end_time"), st->end_time, &b)))
            return err;
        if (b <= a)
            return tw_bad(c->bad, c->prefix, path(c, "sleep.stages", i, "end_time"),
                          "is not after the stage's start_time");
        if (st->stage != TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_AWAKE) {
            asleep[nasleep][0] = a;
            asleep[nasleep][1] = b;
            nasleep++;
        }
    }
    int64_t derived = in->n_stages > 0 ? asleep_union_ms(asleep, nasleep) : span;
    int64_t ms;
    tw_err err = check_duration(c, "sleep.asleep_duration", in->asleep_duration, span, derived,
                                "the sleep session", &ms);
    if (err)
        return err;
    Tw__V1__HealthSleep *out = tw_arena_alloc(c->arena, sizeof *out);
    if (out == NULL || (*out = *in, out->asleep_duration = tw_duration_new(c->arena, ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    e->sleep = out;
    return TW_OK;
}

static tw_err check_exercise(struct entry_check *c, Tw__V1__HealthLog *e)
{
    const Tw__V1__HealthExercise *in = e->exercise;
    tw_err err = tw_check_text(c->bad, c->prefix, "exercise.activity", in->activity,
                               ACTIVITY_MAX_CHARS, true);
    if (err)
        return err;
    if (!in_range(in->distance_meters, 0, DISTANCE_MAX_M))
        return tw_bad(c->bad, c->prefix, "exercise.distance_meters",
                      "must be between 0 and 1,000,000");
    if (!in_range(in->energy_kcal, 0, ENERGY_MAX_KCAL))
        return tw_bad(c->bad, c->prefix, "exercise.energy_kcal", "must be between 0 and 100,000");
    int64_t span = c->end_ms - c->start_ms, ms;
    if ((err = check_duration(c, "exercise.active_duration", in->active_duration, span, span,
                              "the entry's span (end_time - start_time)", &ms)))
        return err;
    Tw__V1__HealthExercise *out = tw_arena_alloc(c->arena, sizeof *out);
    if (out == NULL || (*out = *in, out->active_duration = tw_duration_new(c->arena, ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    e->exercise = out;
    return TW_OK;
}

static tw_err check_mood(struct entry_check *c, const Tw__V1__HealthMood *in)
{
    if (!in_range(in->valence, -1, 1))
        return tw_bad(c->bad, c->prefix, "mood.valence", "must be between -1 and 1");
    tw_err err = tw_check_labels(c->bad, c->prefix, "mood.labels", in->labels, in->n_labels,
                                 LABELS_MAX, LABEL_MAX_CHARS);
    return err ? err
               : tw_check_labels(c->bad, c->prefix, "mood.associations", in->associations,
                                 in->n_associations, LABELS_MAX, LABEL_MAX_CHARS);
}

static tw_err check_heart_rate(struct entry_check *c, const Tw__V1__HealthHeartRate *in)
{
    if (in->n_samples == 0)
        return tw_bad(c->bad, c->prefix, "heart_rate.samples", "needs at least one sample");
    if (in->n_samples > SAMPLES_MAX)
        return tw_bad(c->bad, c->prefix, "heart_rate.samples", "has more than %d samples",
                      SAMPLES_MAX);
    for (size_t i = 0; i < in->n_samples; i++) {
        int64_t at;
        tw_err err = check_inner_time(c, path(c, "heart_rate.samples", i, "sample_time"),
                                      in->samples[i]->sample_time, &at);
        if (err)
            return err;
        if (!in_range(in->samples[i]->beats_per_minute, BPM_MIN, BPM_MAX))
            return tw_bad(c->bad, c->prefix, path(c, "heart_rate.samples", i, "beats_per_minute"),
                          "must be between 1 and 400");
    }
    return TW_OK;
}

static tw_err check_meditation(struct entry_check *c, Tw__V1__HealthLog *e)
{
    int64_t span = c->end_ms - c->start_ms, ms;
    int64_t max = span > 0 ? span : MEDITATION_MAX_MS;
    tw_err err =
        check_duration(c, "meditation.duration", e->meditation->duration, max, span,
                       span > 0 ? "the entry's span (end_time - start_time)" : "24 hours", &ms);
    if (err)
        return err;
    Tw__V1__HealthMeditation *out = tw_arena_alloc(c->arena, sizeof *out);
    if (out == NULL ||
        (*out = *e->meditation, out->duration = tw_duration_new(c->arena, ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    e->meditation = out;
    return TW_OK;
}

static tw_err check_payload(struct entry_check *c, Tw__V1__HealthLog *e)
{
    const char *member = tw_health_type_name(e->type);
    /* A payload member sent as an empty message decodes as present; one
     * built by hand may be NULL: both are "no values". */
    if (e->sleep == NULL)
        return tw_bad(c->bad, c->prefix, member, "is required");
    switch (e->type) {
    case TW_HEALTH_SLEEP:
        return check_sleep(c, e);
    case TW_HEALTH_EXERCISE:
        return check_exercise(c, e);
    case TW_HEALTH_MOOD:
        return check_mood(c, e->mood);
    case TW_HEALTH_WATER:
        if (!in_range(e->water->volume_ml, 0, WATER_MAX_ML))
            return tw_bad(c->bad, c->prefix, "water.volume_ml",
                          e->water->volume_ml < 0 ? "must not be negative"
                                                  : "must be between 0 and 20,000");
        return TW_OK;
    case TW_HEALTH_WEIGHT:
        if (!(e->weight->weight_kg > 0 && e->weight->weight_kg <= WEIGHT_MAX_KG))
            return tw_bad(c->bad, c->prefix, "weight.weight_kg",
                          "must be more than 0 and at most 1,000");
        return TW_OK;
    case TW_HEALTH_HEART_RATE:
        return check_heart_rate(c, e->heart_rate);
    case TW_HEALTH_STEPS:
        if (e->steps->count < 0 || e->steps->count > STEPS_MAX)
            return tw_bad(c->bad, c->prefix, "steps.count", "must be between 0 and 1,000,000");
        return TW_OK;
    case TW_HEALTH_MEDITATION:
        return check_meditation(c, e);
    case TW_HEALTH_CUSTOM: {
        tw_err err;
        if ((err = tw_check_text(c->bad, c->prefix, "custom.name", e->custom->name,
                                 CUSTOM_NAME_MAX_CHARS, true)) ||
            (err = tw_check_text(c->bad, c->prefix, "custom.unit", e->custom->unit,
                                 CUSTOM_UNIT_MAX_CHARS, false)))
            return err;
        if (!isfinite(e->custom->value))
            return tw_bad(c->bad, c->prefix, "custom.value", "must be a finite number");
        return TW_OK;
    }
    default:
        return tw_bad(c->bad, c->prefix, "type", "unknown health log type %d", (int)e->type);
    }
}

/* start_time, end_time and utc_offset. */
static tw_err check_times(struct entry_check *c, Tw__V1__HealthLog *e)
{
    int64_t latest = c->now_ms + TW_HEALTH_FUTURE_MS;
    if (e->start_time == NULL)
        return tw_bad(c->bad, c->prefix, "start_time", "is required");
    if (!tw_timestamp_to_ms(e->start_time, &c->start_ms) || c->start_ms < 0)
        return tw_bad(c->bad, c->prefix, "start_time",
                      "must be a valid timestamp after 1970-01-01");
    if (c->start_ms > latest)
        return tw_bad(c->bad, c->prefix, "start_time", "is more than a day in the future");
    c->end_ms = c->start_ms;
    if (e->end_time != NULL) {
        if (!tw_timestamp_to_ms(e->end_time, &c->end_ms))
            return tw_bad(c->bad, c->prefix, "end_time", "is not a valid timestamp");
        if (c->end_ms < c->start_ms)
            return tw_bad(c->bad, c->prefix, "end_time", "is before start_time");
        if (c->end_ms > latest)
            return tw_bad(c->bad, c->prefix, "end_time", "is more than a day in the future");
        if (c->end_ms - c->start_ms > TW_HEALTH_SPAN_MAX_MS)
            return tw_bad(c->bad, c->prefix, "end_time", "is more than 7 days after start_time");
    }
    /* Stored at millisecond precision, as every time the server keeps. */
    e->start_time = tw_timestamp_new(c->arena, c->start_ms);
    e->end_time = tw_timestamp_new(c->arena, c->end_ms);
    if (e->start_time == NULL || e->end_time == NULL)
        return TW_ERR_NO_MEMORY;
    if (e->utc_offset != NULL) {
        const Google__Protobuf__Duration *o = e->utc_offset;
        if (o->nanos != 0 || o->seconds < -TW_HEALTH_OFFSET_MAX_S ||
            o->seconds > TW_HEALTH_OFFSET_MAX_S)
            return tw_bad(c->bad, c->prefix, "utc_offset",
                          "must be whole seconds between -18 and +18 hours");
    }
    return TW_OK;
}

tw_err tw_health_prepare(const Tw__V1__HealthLog *in, const char *prefix, int64_t now_ms,
                         tw_arena *arena, tw_bad_field *bad, Tw__V1__HealthLog **out)
{
    *out = NULL;
    Tw__V1__HealthLog *e = tw_arena_alloc(arena, sizeof *e);
    if (e == NULL)
        return TW_ERR_NO_MEMORY;
    *e = *in;
    e->id = (char *)protobuf_c_empty_string;
    e->create_time = NULL;
    e->update_time = NULL;
    struct entry_check c = {.prefix = prefix, .now_ms = now_ms, .arena = arena, .bad = bad};

    if ((int)e->type < 0 || (int)e->type >= TW_HEALTH_TYPE_COUNT)
        return tw_bad(bad, prefix, "type", "unknown health log type %d", (int)e->type);
    int payload_type = tw_health_payload_type(e->payload_case);
    if (payload_type == 0)
        return tw_bad(bad, prefix, "payload",
                      "one of sleep, exercise, mood, water, weight, heart_rate, steps, "
                      "meditation or custom is required");
    if (e->type != 0 && (int)e->type != payload_type)
        return tw_bad(bad, prefix, "type", "is %s but the payload is %s",
                      tw_health_type_name(e->type), tw_health_type_name(payload_type));
    e->type = (Tw__V1__HealthLogType)payload_type;
    if ((int)e->source < 0 || e->source > TW_HEALTH_SOURCE_MAX)
        return tw_bad(bad, prefix, "source", "unknown health log source %d", (int)e->source);
    if (e->source == 0)
        e->source = TW_HEALTH_SOURCE_MANUAL;
    if (strlen(e->external_id) > EXTERNAL_ID_MAX_BYTES)
        return tw_bad(bad, prefix, "external_id", "is longer than %d bytes", EXTERNAL_ID_MAX_BYTES);
    tw_err err = tw_check_text(bad, prefix, "note", e->note, NOTE_MAX_CHARS, false);
    if (err || (err = check_times(&c, e)) || (err = check_payload(&c, e)))
        return err;
    *out = e;
    return TW_OK;
}

void tw_health_digest(const Tw__V1__HealthLog *e, Tw__Store__V1__HealthLogDigest *out)
{
    tw__store__v1__health_log_digest__init(out);
    out->type = (uint32_t)e->type;
    out->end_unix_ms = tw_health_end_ms(e);
    if (e->utc_offset != NULL) {
        out->has_utc_offset = true;
        out->utc_offset_seconds = (int32_t)e->utc_offset->seconds;
    }
    int64_t ms = 0;
    switch (e->type) {
    case TW_HEALTH_SLEEP:
        tw_duration_to_ms(e->sleep->asleep_duration, &ms);
        out->value = (double)ms;
        break;
    case TW_HEALTH_EXERCISE:
        tw_duration_to_ms(e->exercise->active_duration, &ms);
        out->value = (double)ms;
        break;
    case TW_HEALTH_MEDITATION:
        tw_duration_to_ms(e->meditation->duration, &ms);
        out->value = (double)ms;
        break;
    case TW_HEALTH_WATER:
        out->value = e->water->volume_ml;
        break;
    case TW_HEALTH_STEPS:
        out->value = (double)e->steps->count;
        break;
    case TW_HEALTH_MOOD:
        out->value = e->mood->valence;
        break;
    case TW_HEALTH_WEIGHT:
        out->value = e->weight->weight_kg;
        break;
    default:
        break;
    }
}

/* The entry packed without its id and times, in arena. */
static uint8_t *pack_content(const Tw__V1__HealthLog *e, tw_arena *arena, size_t *len)
{
    Tw__V1__HealthLog copy = *e;
    copy.id = (char *)protobuf_c_empty_string;
    copy.create_time = NULL;
    copy.update_time = NULL;
    *len = tw__v1__health_log__get_packed_size(&copy);
    uint8_t *buf = tw_arena_alloc(arena, *len + 1);
    if (buf != NULL)
        tw__v1__health_log__pack(&copy, buf);
    return buf;
}

bool tw_health_same_content(const Tw__V1__HealthLog *a, const Tw__V1__HealthLog *b, tw_arena *arena)
{
    size_t alen, blen;
    uint8_t *pa = pack_content(a, arena, &alen);
    uint8_t *pb = pack_content(b, arena, &blen);
    return pa != NULL && pb != NULL && alen == blen && memcmp(pa, pb, alen) == 0;
}
