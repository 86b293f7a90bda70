/* The rules a health log entry keeps, and what the server derives from it. */
#include "health.h"

#include "tasks/task_fields.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits of the fields, as health_log_service.proto documents them (the
 * counts of stages, samples and labels are the engine's: max_items). */
#define NOTE_MAX_CHARS        2000
#define EXTERNAL_ID_MAX_BYTES 255
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

/* Every path an update may name; the payload members in type order. */
const tw_mask_path tw_health_mask_paths[] = {
    {"start_time", TW_HF_START, NULL},
    {"end_time", TW_HF_END, NULL},
    {"utc_offset", TW_HF_OFFSET, NULL},
    {"note", TW_HF_NOTE, NULL},
    {"sleep", TW_HF_PAYLOAD(TW_HEALTH_SLEEP), NULL},
    {"exercise", TW_HF_PAYLOAD(TW_HEALTH_EXERCISE), NULL},
    {"mood", TW_HF_PAYLOAD(TW_HEALTH_MOOD), NULL},
    {"water", TW_HF_PAYLOAD(TW_HEALTH_WATER), NULL},
    {"weight", TW_HF_PAYLOAD(TW_HEALTH_WEIGHT), NULL},
    {"heart_rate", TW_HF_PAYLOAD(TW_HEALTH_HEART_RATE), NULL},
    {"steps", TW_HF_PAYLOAD(TW_HEALTH_STEPS), NULL},
    {"meditation", TW_HF_PAYLOAD(TW_HEALTH_MEDITATION), NULL},
    {"custom", TW_HF_PAYLOAD(TW_HEALTH_CUSTOM), NULL},
    {"type", TW_HF_FIXED, "an entry keeps its type: delete it and create it anew"},
    {"source", TW_HF_FIXED, "an entry keeps its source: delete it and create it anew"},
    {"external_id", TW_HF_FIXED, "an entry keeps its external_id: delete it and create it anew"},
    {NULL},
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

/* One entry's checks: where bad fields go, and its span once known. */
struct entry_check {
    tw_violations *v;
    tw_arena *arena;
    bool span_known; /* start (and end) read and in order */
    int64_t start_ms, end_ms;
    char path[96]; /* scratch for "sleep.stages[3].start_time" */
};

/* "list[index].field" in the scratch path. */
static const char *path(struct entry_check *c, const char *list, size_t index, const char *field)
{
    snprintf(c->path, sizeof c->path, "%s[%zu].%s", list, index, field);
    return c->path;
}

/* A time inside the entry's span; false (with a violation) when not. The
 * engine made it required and in its window. */
static bool inner_time(struct entry_check *c, const char *field,
                       const Google__Protobuf__Timestamp *ts, int64_t *ms)
{
    *ms = 0;
    if (ts == NULL || !tw_timestamp_to_ms(ts, ms) || !c->span_known)
        return false;
    if (*ms >= c->start_ms && *ms <= c->end_ms)
        return true;
    tw_violations_add(c->v, field, "is outside the entry's start_time and end_time");
    return false;
}

/* An optional duration between 0 and max_ms (no more is known of it
 * while the span is not): *ms = the value, or fallback when unset. */
static void duration(struct entry_check *c, const char *field, const Google__Protobuf__Duration *d,
                     int64_t max_ms, int64_t fallback, const char *max_what, int64_t *ms)
{
    *ms = fallback;
    if (d == NULL)
        return;
    if (!tw_duration_to_ms(d, ms))
        tw_violations_add(c->v, field, "is not a valid duration");
    else if (*ms < 0)
        tw_violations_add(c->v, field, "must not be negative");
    else if (c->span_known && *ms > max_ms)
        tw_violations_add(c->v, field, "is longer than %s", max_what);
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
    if (c->span_known && span <= 0)
        tw_violations_add(c->v, "end_time",
                          "a sleep session needs an end_time after its start_time");
    else if (c->span_known && span > TW_HEALTH_SLEEP_MAX_MS)
        tw_violations_add(c->v, "end_time", "a sleep session lasts at most 24 hours");
    int64_t(*asleep)[2] = tw_arena_alloc(c->arena, (in->n_stages + 1) * sizeof *asleep);
    if (asleep == NULL)
        return TW_ERR_NO_MEMORY;
    size_t nasleep = 0;
    for (size_t i = 0; i < in->n_stages; i++) {
        const Tw__V1__HealthSleepStage *st = in->stages[i];
        if (st->stage <= TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_UNSPECIFIED ||
            st->stage > TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_REM)
            tw_violations_add(c->v, path(c, "sleep.stages", i, "stage"), "unknown sleep stage %d",
                              (int)st->stage);
        int64_t a, b;
        bool a_ok = inner_time(c, path(c, "sleep.stages", i, "start_time"), st->start_time, &a);
        bool b_ok = inner_time(c, path(c, "sleep.stages", i, "end_time"), st->end_time, &b);
        if (!a_ok || !b_ok)
            continue;
        if (b <= a) {
            tw_violations_add(c->v, path(c, "sleep.stages", i, "end_time"),
                              "is not after the stage's start_time");
        } else if (st->stage != TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_AWAKE) {
            asleep[nasleep][0] = a;
            asleep[nasleep][1] = b;
            nasleep++;
        }
    }
    int64_t derived = in->n_stages > 0 ? asleep_union_ms(asleep, nasleep) : span, ms;
    duration(c, "sleep.asleep_duration", in->asleep_duration, span, derived, "the sleep session",
             &ms);
    Tw__V1__HealthSleep *out = tw_arena_alloc(c->arena, sizeof *out);
    if (out == NULL || (*out = *in, out->asleep_duration = tw_duration_new(c->arena, ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    e->sleep = out;
    return TW_OK;
}

static tw_err check_exercise(struct entry_check *c, Tw__V1__HealthLog *e)
{
    const Tw__V1__HealthExercise *in = e->exercise;
    tw_wellness_check_text(c->v, "exercise.activity", in->activity, ACTIVITY_MAX_CHARS, false);
    if (!in_range(in->distance_meters, 0, DISTANCE_MAX_M))
        tw_violations_add(c->v, "exercise.distance_meters", "must be between 0 and 1,000,000");
    if (!in_range(in->energy_kcal, 0, ENERGY_MAX_KCAL))
        tw_violations_add(c->v, "exercise.energy_kcal", "must be between 0 and 100,000");
    int64_t span = c->end_ms - c->start_ms, ms;
    duration(c, "exercise.active_duration", in->active_duration, span, span,
             "the entry's span (end_time - start_time)", &ms);
    Tw__V1__HealthExercise *out = tw_arena_alloc(c->arena, sizeof *out);
    if (out == NULL || (*out = *in, out->active_duration = tw_duration_new(c->arena, ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    e->exercise = out;
    return TW_OK;
}

static void check_mood(struct entry_check *c, const Tw__V1__HealthMood *in)
{
    if (!in_range(in->valence, -1, 1))
        tw_violations_add(c->v, "mood.valence", "must be between -1 and 1");
    tw_wellness_check_labels(c->v, "mood.labels", in->labels, in->n_labels, LABEL_MAX_CHARS);
    tw_wellness_check_labels(c->v, "mood.associations", in->associations, in->n_associations,
                             LABEL_MAX_CHARS);
}

static void check_heart_rate(struct entry_check *c, const Tw__V1__HealthHeartRate *in)
{
    for (size_t i = 0; i < in->n_samples; i++) {
        int64_t at;
        inner_time(c, path(c, "heart_rate.samples", i, "sample_time"), in->samples[i]->sample_time,
                   &at);
        if (!in_range(in->samples[i]->beats_per_minute, BPM_MIN, BPM_MAX))
            tw_violations_add(c->v, path(c, "heart_rate.samples", i, "beats_per_minute"),
                              "must be between 1 and 400");
    }
}

static tw_err check_meditation(struct entry_check *c, Tw__V1__HealthLog *e)
{
    int64_t span = c->end_ms - c->start_ms, ms;
    int64_t max = span > 0 ? span : MEDITATION_MAX_MS;
    duration(c, "meditation.duration", e->meditation->duration, max, span,
             span > 0 ? "the entry's span (end_time - start_time)" : "24 hours", &ms);
    Tw__V1__HealthMeditation *out = tw_arena_alloc(c->arena, sizeof *out);
    if (out == NULL ||
        (*out = *e->meditation, out->duration = tw_duration_new(c->arena, ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    e->meditation = out;
    return TW_OK;
}

static void check_custom(struct entry_check *c, const Tw__V1__HealthCustom *in)
{
    tw_wellness_check_text(c->v, "custom.name", in->name, CUSTOM_NAME_MAX_CHARS, false);
    tw_wellness_check_text(c->v, "custom.unit", in->unit, CUSTOM_UNIT_MAX_CHARS, false);
    if (!isfinite(in->value))
        tw_violations_add(c->v, "custom.value", "must be a finite number");
}

/* The payload of its type (the payload member's). */
static tw_err check_payload(struct entry_check *c, Tw__V1__HealthLog *e, int type)
{
    /* A payload member sent as an empty message decodes as present; one
     * built by hand may be NULL: both are "no values". */
    if (e->sleep == NULL) {
        tw_violations_add(c->v, tw_health_type_name(type), "is required");
        return TW_OK;
    }
    switch (type) {
    case TW_HEALTH_SLEEP:
        return check_sleep(c, e);
    case TW_HEALTH_EXERCISE:
        return check_exercise(c, e);
    case TW_HEALTH_MOOD:
        check_mood(c, e->mood);
        return TW_OK;
    case TW_HEALTH_WATER:
        if (!in_range(e->water->volume_ml, 0, WATER_MAX_ML))
            tw_violations_add(c->v, "water.volume_ml",
                              e->water->volume_ml < 0 ? "must not be negative"
                                                      : "must be between 0 and 20,000");
        return TW_OK;
    case TW_HEALTH_WEIGHT:
        if (!(e->weight->weight_kg > 0 && e->weight->weight_kg <= WEIGHT_MAX_KG))
            tw_violations_add(c->v, "weight.weight_kg", "must be more than 0 and at most 1,000");
        return TW_OK;
    case TW_HEALTH_HEART_RATE:
        check_heart_rate(c, e->heart_rate);
        return TW_OK;
    case TW_HEALTH_STEPS:
        if (e->steps->count < 0 || e->steps->count > STEPS_MAX)
            tw_violations_add(c->v, "steps.count", "must be between 0 and 1,000,000");
        return TW_OK;
    case TW_HEALTH_MEDITATION:
        return check_meditation(c, e);
    default: /* TW_HEALTH_CUSTOM */
        check_custom(c, e->custom);
        return TW_OK;
    }
}

/* start_time, end_time and utc_offset; the span is known when they are in
 * order. The engine kept both times in their window. */
static tw_err check_times(struct entry_check *c, Tw__V1__HealthLog *e)
{
    if (e->start_time == NULL || !tw_timestamp_to_ms(e->start_time, &c->start_ms)) {
        tw_violations_add(c->v, "start_time", "is required");
        return TW_OK;
    }
    c->end_ms = c->start_ms;
    if (e->end_time != NULL && tw_timestamp_to_ms(e->end_time, &c->end_ms)) {
        if (c->end_ms < c->start_ms) {
            tw_violations_add(c->v, "end_time", "is before start_time");
            return TW_OK;
        }
        if (c->end_ms - c->start_ms > TW_HEALTH_SPAN_MAX_MS)
            tw_violations_add(c->v, "end_time", "is more than 7 days after start_time");
    }
    c->span_known = true;
    /* Stored at millisecond precision, as every time the server keeps. */
    e->start_time = tw_timestamp_new(c->arena, c->start_ms);
    e->end_time = tw_timestamp_new(c->arena, c->end_ms);
    return e->start_time && e->end_time ? TW_OK : TW_ERR_NO_MEMORY;
}

tw_err tw_health_prepare(const Tw__V1__HealthLog *in, const char *prefix, tw_arena *arena,
                         tw_violations *v, Tw__V1__HealthLog **out)
{
    *out = NULL;
    Tw__V1__HealthLog *e = tw_arena_alloc(arena, sizeof *e);
    if (e == NULL)
        return TW_ERR_NO_MEMORY;
    *e = *in;
    e->id = (char *)protobuf_c_empty_string;
    e->create_time = NULL;
    e->update_time = NULL;
    struct entry_check c = {.v = v, .arena = arena};
    size_t before = tw_violations_total(v);
    const char *outer = tw_wellness_prefix(v, prefix);

    bool type_known = (int)e->type >= 0 && (int)e->type < TW_HEALTH_TYPE_COUNT;
    int payload_type = tw_health_payload_type(e->payload_case);
    if (!type_known)
        tw_violations_add(v, "type", "unknown health log type %d", (int)e->type);
    if (payload_type == 0)
        tw_violations_add(v, "payload",
                          "one of sleep, exercise, mood, water, weight, heart_rate, steps, "
                          "meditation or custom is required");
    else if (type_known && e->type != 0 && (int)e->type != payload_type)
        tw_violations_add(v, "type", "is %s but the payload is %s", tw_health_type_name(e->type),
                          tw_health_type_name(payload_type));
    e->type = (Tw__V1__HealthLogType)payload_type;
    if ((int)e->source < 0 || e->source > TW_HEALTH_SOURCE_MAX)
        tw_violations_add(v, "source", "unknown health log source %d", (int)e->source);
    if (e->source == 0)
        e->source = TW_HEALTH_SOURCE_MANUAL;
    if (strlen(e->external_id) > EXTERNAL_ID_MAX_BYTES)
        tw_violations_add(v, "external_id", "is longer than %d bytes", EXTERNAL_ID_MAX_BYTES);
    tw_wellness_check_text(v, "note", e->note, NOTE_MAX_CHARS, false);
    const Google__Protobuf__Duration *o = e->utc_offset;
    if (o != NULL && (o->nanos != 0 || o->seconds < -TW_HEALTH_OFFSET_MAX_S ||
                      o->seconds > TW_HEALTH_OFFSET_MAX_S))
        tw_violations_add(v, "utc_offset", "must be whole seconds between -18 and +18 hours");
    tw_err err = check_times(&c, e);
    if (err == TW_OK && payload_type != 0)
        err = check_payload(&c, e, payload_type);
    v->prefix = outer;
    if (err == TW_OK && tw_violations_total(v) > before)
        err = TW_ERR_VALIDATION;
    if (err == TW_OK)
        *out = e;
    return err;
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

tw_err tw_health_prepare_new(const Tw__V1__HealthLog *in, const char *id, const char *id_field,
                             const char *prefix, tw_arena *arena, tw_violations *v,
                             tw_health_write *w)
{
    memset(w, 0, sizeof *w);
    size_t before = tw_violations_total(v);
    tw_task_check_new_id(id, false, id_field, v);
    w->has_id = id[0] != '\0' && tw_id_parse(id, &w->id);
    Tw__V1__HealthLog *e;
    tw_err err = tw_health_prepare(in, prefix, arena, v, &e);
    if (err == TW_OK && tw_violations_total(v) > before)
        err = TW_ERR_VALIDATION;
    w->entry = err ? NULL : e;
    return err;
}

/* ---- Repeats within a batch ---------------------------------------------- */

/* An entry of a batch with an external id, where it stands in the batch. */
struct identity {
    int source;
    const char *external_id;
    size_t index;
};

static int cmp_identity(const void *a, const void *b)
{
    const struct identity *x = a, *y = b;
    if (x->source != y->source)
        return x->source < y->source ? -1 : 1;
    int c = strcmp(x->external_id, y->external_id);
    return c != 0 ? c : (x->index < y->index ? -1 : x->index > y->index);
}

void tw_health_check_repeats(const tw_health_write *w, size_t n, tw_arena *arena, tw_violations *v)
{
    struct identity *ids = tw_arena_alloc(arena, (n + 1) * sizeof *ids);
    if (ids == NULL) {
        tw_violations_add(v, "entries", "could not be checked: out of memory");
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i].entry != NULL && w[i].entry->external_id[0] != '\0')
            ids[m++] = (struct identity){w[i].entry->source, w[i].entry->external_id, i};
    qsort(ids, m, sizeof *ids, cmp_identity);
    /* Sorted by index within a group of equals: each repeats the group's
     * first. */
    size_t first = 0;
    for (size_t i = 1; i < m; i++) {
        const struct identity *a = &ids[first], *b = &ids[i];
        if (a->source != b->source || strcmp(a->external_id, b->external_id) != 0) {
            first = i;
            continue;
        }
        char name[48];
        snprintf(name, sizeof name, "entries[%zu].external_id", b->index);
        tw_violations_add(v, name, "repeats the source and external_id of entries[%zu]", a->index);
    }
}
