/* Entries for the wellness tests (wellness_fixture.h). */
#include "wellness_fixture.h"

#define HOUR TW_MS_PER_HOUR

tw_violations *wx_violations(tw_arena *arena)
{
    tw_violations *v = tw_arena_alloc(arena, sizeof *v);
    tw_violations_init(v, arena, 100, 16 * 1024);
    return v;
}

const tw_violation *wx_violation(const tw_violations *v, const char *field)
{
    for (const tw_violation *e = v->head; e != NULL; e = e->next)
        if (strcmp(e->field, field) == 0)
            return e;
    return NULL;
}

Tw__V1__HealthLog *wx_entry(tw_arena *arena, int type, int64_t start)
{
    Tw__V1__HealthLog *e = tw_arena_alloc(arena, sizeof *e);
    tw__v1__health_log__init(e);
    e->start_time = tw_timestamp_new(arena, start);
    e->payload_case = tw_health_payload_case(type);
    switch (type) {
    case TW_HEALTH_SLEEP: {
        Tw__V1__HealthSleep *p = tw_arena_alloc(arena, sizeof *p);
        tw__v1__health_sleep__init(p);
        e->sleep = p;
        e->end_time = tw_timestamp_new(arena, start + 8 * HOUR);
        break;
    }
    case TW_HEALTH_EXERCISE: {
        Tw__V1__HealthExercise *p = tw_arena_alloc(arena, sizeof *p);
        tw__v1__health_exercise__init(p);
        p->activity = "running";
        p->distance_meters = 5000;
        e->exercise = p;
        e->end_time = tw_timestamp_new(arena, start + HOUR / 2);
        break;
    }
    case TW_HEALTH_MOOD: {
        Tw__V1__HealthMood *p = tw_arena_alloc(arena, sizeof *p);
        tw__v1__health_mood__init(p);
        p->valence = 0.5;
        e->mood = p;
        break;
    }
    case TW_HEALTH_WATER: {
        Tw__V1__HealthWater *p = tw_arena_alloc(arena, sizeof *p);
        tw__v1__health_water__init(p);
        p->volume_ml = 250;
        e->water = p;
        break;
    }
    case TW_HEALTH_WEIGHT: {
        Tw__V1__HealthWeight *p = tw_arena_alloc(arena, sizeof *p);
        tw__v1__health_weight__init(p);
        p->weight_kg = 70.5;
        e->weight = p;
        break;
    }
    case TW_HEALTH_HEART_RATE: {
        Tw__V1__HealthHeartRate *p = tw_arena_alloc(arena, sizeof *p);
        tw__v1__health_heart_rate__init(p);
        Tw__V1__HealthHeartRateSample *s = tw_arena_alloc(arena, sizeof *s);
        tw__v1__health_heart_rate_sample__init(s);
        s->sample_time = tw_timestamp_new(arena, start + 60000);
        s->beats_per_minute = 62;
        p->samples = tw_arena_alloc(arena, sizeof *p->samples);
        p->samples[0] = s;
        p->n_samples = 1;
        e->heart_rate = p;
        e->end_time = tw_timestamp_new(arena, start + HOUR);
        break;
    }
    case TW_HEALTH_STEPS: {
        Tw__V1__HealthSteps *p = tw_arena_alloc(arena, sizeof *p);
        tw__v1__health_steps__init(p);
        p->count = 4000;
        e->steps = p;
        e->end_time = tw_timestamp_new(arena, start + HOUR);
        break;
    }
    case TW_HEALTH_MEDITATION: {
        Tw__V1__HealthMeditation *p = tw_arena_alloc(arena, sizeof *p);
        tw__v1__health_meditation__init(p);
        e->meditation = p;
        e->end_time = tw_timestamp_new(arena, start + 20 * 60000);
        break;
    }
    case TW_HEALTH_CUSTOM: {
        Tw__V1__HealthCustom *p = tw_arena_alloc(arena, sizeof *p);
        tw__v1__health_custom__init(p);
        p->name = "blood glucose";
        p->value = 5.4;
        p->unit = "mmol/L";
        e->custom = p;
        break;
    }
    }
    return e;
}
