/*
 * Unit tests for server/wellness/health_rules.c: every rule an entry keeps,
 * with the field path a client is shown, and what the server derives
 * (type, end time, source, asleep, active and meditation durations).
 */
#include "wellness/health.h"

#include "tw_check.h"
#include "wellness_fixture.h"

#include <math.h>
#include <string.h>

#define NOW   INT64_C(1717243200000) /* 2024-06-01T12:00:00Z */
#define HOUR  TW_MS_PER_HOUR
#define START (NOW - 10 * HOUR)

static tw_arena *arena;

static void setup(void)
{
    arena = tw_arena_new(4096);
}

static void teardown(void)
{
    tw_arena_free(arena);
}

static Google__Protobuf__Timestamp *ts(int64_t ms)
{
    return tw_timestamp_new(arena, ms);
}

static Google__Protobuf__Duration *dur(int64_t ms)
{
    return tw_duration_new(arena, ms);
}

/* An entry of each type that keeps every rule, starting at START. */
static Tw__V1__HealthLog *entry(int type)
{
    return wx_entry(arena, type, START);
}

static Tw__V1__HealthSleepStage *stage(int kind, int64_t from, int64_t to)
{
    Tw__V1__HealthSleepStage *s = tw_arena_alloc(arena, sizeof *s);
    tw__v1__health_sleep_stage__init(s);
    s->stage = (Tw__V1__HealthSleepStageType)kind;
    s->start_time = ts(from);
    s->end_time = ts(to);
    return s;
}

static void set_stages(Tw__V1__HealthLog *e, Tw__V1__HealthSleepStage **stages, size_t n)
{
    e->sleep->stages = stages;
    e->sleep->n_stages = n;
}

/* prepare must refuse e, naming field (under "entries[3].") for why. */
#define ASSERT_REFUSED(e, want_field, why_part)                                                    \
    do {                                                                                           \
        tw_violations *v_ = wx_violations(arena);                                                  \
        Tw__V1__HealthLog *out_;                                                                   \
        ck_assert_int_eq(tw_health_prepare(e, "entries[3].", arena, v_, &out_),                    \
                         TW_ERR_VALIDATION);                                                       \
        ck_assert_ptr_null(out_);                                                                  \
        WX_ASSERT_VIOLATION(v_, want_field, why_part);                                             \
    } while (0)

static Tw__V1__HealthLog *prepared(const Tw__V1__HealthLog *e)
{
    tw_violations *v = wx_violations(arena);
    Tw__V1__HealthLog *out;
    tw_err err = tw_health_prepare(e, "entries[3].", arena, v, &out);
    ck_assert_msg(err == TW_OK, "%s: %s", v->head ? v->head->field : "",
                  v->head ? v->head->description : "");
    return out;
}

START_TEST(every_type_has_a_valid_entry)
{
    int type = _i;
    Tw__V1__HealthLog *out = prepared(entry(type));
    ck_assert_int_eq(out->type, type);
    ck_assert_int_eq(out->source, TW_HEALTH_SOURCE_MANUAL);
    ck_assert_ptr_nonnull(out->end_time);
    ck_assert_int_ge(tw_health_end_ms(out), tw_health_start_ms(out));
    ck_assert_int_eq(tw_health_payload_type(out->payload_case), type);
    ck_assert_int_eq(tw_health_payload_case(type), out->payload_case);
}
END_TEST

START_TEST(output_only_fields_are_dropped)
{
    Tw__V1__HealthLog *e = entry(TW_HEALTH_WATER);
    e->id = "0190b4e0-0000-7000-8000-000000000000";
    e->create_time = ts(NOW);
    e->update_time = ts(NOW);
    Tw__V1__HealthLog *out = prepared(e);
    ck_assert_str_eq(out->id, "");
    ck_assert_ptr_null(out->create_time);
    ck_assert_ptr_null(out->update_time);
    /* The client's message is not touched. */
    ck_assert_ptr_nonnull(e->create_time);
}
END_TEST

START_TEST(bad_values_name_their_field_with_the_entry_index)
{
    Tw__V1__HealthLog *e = entry(TW_HEALTH_MOOD);
    e->mood->valence = 2;
    ASSERT_REFUSED(e, "entries[3].mood.valence", "between -1 and 1");
    e->mood->valence = -1.01;
    ASSERT_REFUSED(e, "entries[3].mood.valence", "between -1 and 1");
    e->mood->valence = NAN;
    ASSERT_REFUSED(e, "entries[3].mood.valence", "between -1 and 1");
    e->mood->valence = -1;
    prepared(e);

    e = entry(TW_HEALTH_WATER);
    e->water->volume_ml = -250;
    ASSERT_REFUSED(e, "entries[3].water.volume_ml", "must not be negative");
    e->water->volume_ml = 25000;
    ASSERT_REFUSED(e, "entries[3].water.volume_ml", "between 0 and 20,000");
    e->water->volume_ml = INFINITY;
    ASSERT_REFUSED(e, "entries[3].water.volume_ml", "between 0 and 20,000");

    e = entry(TW_HEALTH_WEIGHT);
    e->weight->weight_kg = 0;
    ASSERT_REFUSED(e, "entries[3].weight.weight_kg", "more than 0");

    e = entry(TW_HEALTH_STEPS);
    e->steps->count = -1;
    ASSERT_REFUSED(e, "entries[3].steps.count", "between 0");

    /* An empty activity is the engine's (required), as are times outside
     * their window and counts of samples. */
    e = entry(TW_HEALTH_EXERCISE);
    e->exercise->energy_kcal = -3;
    ASSERT_REFUSED(e, "entries[3].exercise.energy_kcal", "between 0");
    e = entry(TW_HEALTH_EXERCISE);
    e->exercise->active_duration = dur(HOUR); /* the entry spans half an hour */
    ASSERT_REFUSED(e, "entries[3].exercise.active_duration", "longer than the entry's span");

    e = entry(TW_HEALTH_HEART_RATE);
    e->heart_rate->samples[0]->beats_per_minute = 0;
    ASSERT_REFUSED(e, "entries[3].heart_rate.samples[0].beats_per_minute", "between 1 and 400");
    e = entry(TW_HEALTH_HEART_RATE);
    e->heart_rate->samples[0]->sample_time = ts(START - 1000);
    ASSERT_REFUSED(e, "entries[3].heart_rate.samples[0].sample_time", "outside");
    /* No samples, or a custom entry without a name: the engine's
     * (required). */

    e = entry(TW_HEALTH_CUSTOM);
    e->custom->value = NAN;
    ASSERT_REFUSED(e, "entries[3].custom.value", "finite");

    e = entry(TW_HEALTH_MOOD);
    char *labels[] = {"calm", ""};
    e->mood->labels = labels;
    e->mood->n_labels = 2;
    ASSERT_REFUSED(e, "entries[3].mood.labels[1]", "is required");

    e = entry(TW_HEALTH_MEDITATION);
    e->meditation->duration = dur(-60000);
    ASSERT_REFUSED(e, "entries[3].meditation.duration", "must not be negative");
}
END_TEST

START_TEST(every_bad_field_is_reported)
{
    Tw__V1__HealthLog *e = entry(TW_HEALTH_MOOD);
    e->mood->valence = 2;
    e->note = "";
    e->utc_offset = dur(19 * HOUR);
    e->source = 9;
    tw_violations *v = wx_violations(arena);
    Tw__V1__HealthLog *out;
    ck_assert_int_eq(tw_health_prepare(e, "entries[3].", arena, v, &out), TW_ERR_VALIDATION);
    ck_assert_uint_eq(tw_violations_total(v), 3);
    WX_ASSERT_VIOLATION(v, "entries[3].mood.valence", "between -1 and 1");
    WX_ASSERT_VIOLATION(v, "entries[3].utc_offset", "between -18 and +18 hours");
    WX_ASSERT_VIOLATION(v, "entries[3].source", "unknown health log source 9");
}
END_TEST

START_TEST(times)
{
    Tw__V1__HealthLog *e = entry(TW_HEALTH_STEPS);
    e->end_time = ts(START - 1);
    ASSERT_REFUSED(e, "entries[3].end_time", "is before start_time");
    e = entry(TW_HEALTH_STEPS);
    e->start_time = NULL;
    ASSERT_REFUSED(e, "entries[3].start_time", "is required");
    /* Times outside TIME_WINDOW_PAST (the future, before 1900) and bad
     * nanos are refused by the engine before any rule here runs. */
    e = entry(TW_HEALTH_STEPS);
    e->start_time = ts(START - 10 * TW_MS_PER_DAY);
    ASSERT_REFUSED(e, "entries[3].end_time", "more than 7 days");
    e = entry(TW_HEALTH_STEPS);
    e->utc_offset = dur(19 * HOUR);
    ASSERT_REFUSED(e, "entries[3].utc_offset", "between -18 and +18 hours");
    e = entry(TW_HEALTH_STEPS);
    e->utc_offset = dur(-4 * HOUR + 500);
    ASSERT_REFUSED(e, "entries[3].utc_offset", "whole seconds");
    e = entry(TW_HEALTH_STEPS);
    e->utc_offset = dur(-4 * HOUR);
    ck_assert_int_eq(prepared(e)->utc_offset->seconds, -4 * 3600);

    /* An instant measurement ends when it starts; times keep milliseconds. */
    e = entry(TW_HEALTH_WEIGHT);
    e->start_time->nanos = 123456789;
    Tw__V1__HealthLog *out = prepared(e);
    ck_assert_int_eq(tw_health_end_ms(out), tw_health_start_ms(out));
    ck_assert_int_eq(out->start_time->nanos, 123000000);
}
END_TEST

START_TEST(type_source_and_payload)
{
    Tw__V1__HealthLog *e = entry(TW_HEALTH_WATER);
    e->type = (Tw__V1__HealthLogType)42;
    ASSERT_REFUSED(e, "entries[3].type", "unknown health log type 42");
    e = entry(TW_HEALTH_WATER);
    e->type = TW_HEALTH_SLEEP;
    ASSERT_REFUSED(e, "entries[3].type", "is sleep but the payload is water");
    e = entry(TW_HEALTH_WATER);
    e->payload_case = TW__V1__HEALTH_LOG__PAYLOAD__NOT_SET;
    e->water = NULL;
    ASSERT_REFUSED(e, "entries[3].payload", "is required");
    e = entry(TW_HEALTH_WATER);
    e->source = (Tw__V1__HealthLogSource)9;
    ASSERT_REFUSED(e, "entries[3].source", "unknown health log source 9");
    e = entry(TW_HEALTH_WATER);
    e->water = NULL; /* a member said to be there but missing */
    ASSERT_REFUSED(e, "entries[3].water", "is required");
    e = entry(TW_HEALTH_WATER);
    char long_id[300];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    e->external_id = long_id;
    ASSERT_REFUSED(e, "entries[3].external_id", "longer than 255 bytes");
    e = entry(TW_HEALTH_WATER);
    char long_note[2100];
    memset(long_note, 'n', sizeof long_note - 1);
    long_note[sizeof long_note - 1] = '\0';
    e->note = long_note;
    ASSERT_REFUSED(e, "entries[3].note", "longer than 2000 characters");
    /* Characters, not bytes: 2000 two-byte characters are fine. */
    char accents[4001];
    for (int i = 0; i < 2000; i++)
        memcpy(accents + 2 * i, "\xc3\xa9", 2);
    accents[4000] = '\0';
    e->note = accents;
    prepared(e);
}
END_TEST

START_TEST(sleep_stages_stay_inside_the_session)
{
    Tw__V1__HealthLog *e = entry(TW_HEALTH_SLEEP);
    Tw__V1__HealthSleepStage *stages[] = {
        stage(TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_LIGHT, START, START + HOUR),
        stage(TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_DEEP, START + 7 * HOUR,
              START + 9 * HOUR),
    };
    set_stages(e, stages, 2);
    ASSERT_REFUSED(e, "entries[3].sleep.stages[1].end_time", "outside");
    stages[1]->start_time = ts(START - 60000);
    ASSERT_REFUSED(e, "entries[3].sleep.stages[1].start_time", "outside");
    stages[1] = stage(TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_REM,
                      START + 3 * HOUR, START + 3 * HOUR);
    ASSERT_REFUSED(e, "entries[3].sleep.stages[1].end_time", "not after");
    stages[1] = stage(0, START + 3 * HOUR, START + 4 * HOUR);
    ASSERT_REFUSED(e, "entries[3].sleep.stages[1].stage", "unknown sleep stage");

    e = entry(TW_HEALTH_SLEEP);
    e->end_time = NULL;
    ASSERT_REFUSED(e, "entries[3].end_time", "needs an end_time after its start_time");
    e = entry(TW_HEALTH_SLEEP);
    e->start_time = ts(START - 20 * HOUR);
    ASSERT_REFUSED(e, "entries[3].end_time", "at most 24 hours");
    e = entry(TW_HEALTH_SLEEP);
    e->sleep->asleep_duration = dur(9 * HOUR);
    ASSERT_REFUSED(e, "entries[3].sleep.asleep_duration", "longer than the sleep session");
}
END_TEST

START_TEST(asleep_time_is_derived_from_the_stages)
{
    int64_t ms;
    /* No stages: the whole session. */
    Tw__V1__HealthLog *out = prepared(entry(TW_HEALTH_SLEEP));
    ck_assert(tw_duration_to_ms(out->sleep->asleep_duration, &ms));
    ck_assert_int_eq(ms, 8 * HOUR);

    /* Awake stretches do not count; overlapping stages count once. */
    Tw__V1__HealthLog *e = entry(TW_HEALTH_SLEEP);
    Tw__V1__HealthSleepStage *stages[] = {
        stage(TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_AWAKE, START,
              START + HOUR / 2),
        stage(TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_LIGHT, START + HOUR / 2,
              START + 3 * HOUR),
        stage(TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_DEEP, START + 2 * HOUR,
              START + 4 * HOUR),
        stage(TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_AWAKE, START + 4 * HOUR,
              START + 5 * HOUR),
        stage(TW__V1__HEALTH_SLEEP_STAGE_TYPE__HEALTH_SLEEP_STAGE_TYPE_REM, START + 5 * HOUR,
              START + 8 * HOUR),
    };
    set_stages(e, stages, 5);
    out = prepared(e);
    ck_assert(tw_duration_to_ms(out->sleep->asleep_duration, &ms));
    ck_assert_int_eq(ms, 3 * HOUR + HOUR / 2 + 3 * HOUR);
    ck_assert_ptr_null(e->sleep->asleep_duration); /* the client's message is untouched */

    /* A client's own total wins. */
    e->sleep->asleep_duration = dur(5 * HOUR);
    out = prepared(e);
    ck_assert(tw_duration_to_ms(out->sleep->asleep_duration, &ms));
    ck_assert_int_eq(ms, 5 * HOUR);
}
END_TEST

START_TEST(durations_default_to_the_span)
{
    int64_t ms;
    Tw__V1__HealthLog *out = prepared(entry(TW_HEALTH_EXERCISE));
    ck_assert(tw_duration_to_ms(out->exercise->active_duration, &ms));
    ck_assert_int_eq(ms, HOUR / 2);
    out = prepared(entry(TW_HEALTH_MEDITATION));
    ck_assert(tw_duration_to_ms(out->meditation->duration, &ms));
    ck_assert_int_eq(ms, 20 * 60000);
    /* A meditation logged as an instant with its length. */
    Tw__V1__HealthLog *e = entry(TW_HEALTH_MEDITATION);
    e->end_time = NULL;
    e->meditation->duration = dur(15 * 60000);
    out = prepared(e);
    ck_assert(tw_duration_to_ms(out->meditation->duration, &ms));
    ck_assert_int_eq(ms, 15 * 60000);
}
END_TEST

START_TEST(digests_carry_what_summaries_add_up)
{
    Tw__Store__V1__HealthLogDigest d;
    Tw__V1__HealthLog *e = entry(TW_HEALTH_SLEEP);
    e->utc_offset = dur(2 * HOUR);
    tw_health_digest(prepared(e), &d);
    ck_assert_int_eq(d.type, TW_HEALTH_SLEEP);
    ck_assert_int_eq(d.end_unix_ms, START + 8 * HOUR);
    ck_assert(d.has_utc_offset);
    ck_assert_int_eq(d.utc_offset_seconds, 7200);
    ck_assert_double_eq(d.value, (double)(8 * HOUR));
    tw_health_digest(prepared(entry(TW_HEALTH_WATER)), &d);
    ck_assert(!d.has_utc_offset);
    ck_assert_double_eq(d.value, 250);
    tw_health_digest(prepared(entry(TW_HEALTH_MOOD)), &d);
    ck_assert_double_eq(d.value, 0.5);
    tw_health_digest(prepared(entry(TW_HEALTH_CUSTOM)), &d);
    ck_assert_double_eq(d.value, 0);
}
END_TEST

START_TEST(same_content_ignores_id_and_times)
{
    Tw__V1__HealthLog *a = prepared(entry(TW_HEALTH_MOOD));
    Tw__V1__HealthLog *b = prepared(entry(TW_HEALTH_MOOD));
    b->id = "0190b4e0-0000-7000-8000-000000000000";
    b->create_time = ts(NOW);
    ck_assert(tw_health_same_content(a, b, arena));
    b->mood->valence = 0.25;
    ck_assert(!tw_health_same_content(a, b, arena));
}
END_TEST

START_TEST(type_names)
{
    ck_assert_str_eq(tw_health_type_name(TW_HEALTH_HEART_RATE), "heart_rate");
    ck_assert_str_eq(tw_health_type_name(0), "unspecified");
    ck_assert_str_eq(tw_health_type_name(99), "unspecified");
    ck_assert_int_eq(tw_health_payload_type(TW__V1__HEALTH_LOG__PAYLOAD__NOT_SET), 0);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("health_rules");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, every_type_has_a_valid_entry, 1, TW_HEALTH_TYPE_COUNT);
    tcase_add_test(tc, output_only_fields_are_dropped);
    tcase_add_test(tc, bad_values_name_their_field_with_the_entry_index);
    tcase_add_test(tc, every_bad_field_is_reported);
    tcase_add_test(tc, times);
    tcase_add_test(tc, type_source_and_payload);
    tcase_add_test(tc, sleep_stages_stay_inside_the_session);
    tcase_add_test(tc, asleep_time_is_derived_from_the_stages);
    tcase_add_test(tc, durations_default_to_the_span);
    tcase_add_test(tc, digests_carry_what_summaries_add_up);
    tcase_add_test(tc, same_content_ignores_id_and_times);
    tcase_add_test(tc, type_names);
    suite_add_tcase(s, tc);
    return s;
}
