/* Daily summary arithmetic: which logical day an entry counts for, the
 * day's totals, and the weight trend. */
#include "health.h"

#include <string.h>

tw_err tw_health_summary_init(tw_health_summary *s, const tw_day_settings *settings,
                              int32_t first_day, int32_t ndays, tw_arena *arena)
{
    memset(s, 0, sizeof *s);
    s->day_start_hour = settings->day_start_hour;
    tw_err err = tw_day_range_init(&s->range, settings, first_day, ndays, arena);
    if (err)
        return err;
    s->days = tw_arena_alloc(arena, (size_t)ndays * sizeof *s->days);
    return s->days == NULL ? TW_ERR_NO_MEMORY : TW_OK;
}

void tw_health_summary_window(const tw_health_summary *s, int64_t *from_ms, int64_t *to_ms)
{
    const tw_day_range *r = &s->range;
    int64_t hour = s->day_start_hour * TW_MS_PER_HOUR;
    int64_t max_offset = TW_HEALTH_OFFSET_MAX_S * TW_MS_PER_S;
    /* An entry recorded at offset o counts for day d when its local start
     * (start + o) is in d's local hours; o is within +-18 h. */
    int64_t lo = r->first_day * TW_MS_PER_DAY + hour - max_offset;
    int64_t hi = (r->first_day + r->ndays) * TW_MS_PER_DAY + hour + max_offset;
    int64_t zone_lo = r->starts[0];
    int64_t zone_hi = r->starts[r->ndays];
    lo = zone_lo < lo ? zone_lo : lo;
    hi = zone_hi > hi ? zone_hi : hi;
    /* Sleep counts for the day it ended: it may have started a day earlier. */
    *from_ms = lo - TW_HEALTH_SLEEP_MAX_MS;
    *to_ms = hi;
}

void tw_health_summary_add(tw_health_summary *s, int64_t start_ms,
                           const Tw__Store__V1__HealthLogDigest *d)
{
    int64_t at = d->type == TW_HEALTH_SLEEP ? d->end_unix_ms : start_ms;
    int64_t i = d->has_utc_offset ? (int64_t)tw_logical_day_at_offset(s->day_start_hour, at,
                                                                      d->utc_offset_seconds) -
                                        s->range.first_day
                                  : tw_day_range_index(&s->range, at);
    if (i < 0 || i >= s->range.ndays)
        return;
    tw_health_day *t = &s->days[i];
    t->entry_count++;
    switch (d->type) {
    case TW_HEALTH_SLEEP:
        t->sleep_ms += (int64_t)d->value;
        break;
    case TW_HEALTH_EXERCISE:
        t->exercise_ms += (int64_t)d->value;
        break;
    case TW_HEALTH_MEDITATION:
        t->meditation_ms += (int64_t)d->value;
        break;
    case TW_HEALTH_WATER:
        t->water_ml += d->value;
        break;
    case TW_HEALTH_STEPS:
        t->steps += (int64_t)d->value;
        break;
    case TW_HEALTH_MOOD:
        t->mood_sum += d->value;
        t->mood_count++;
        break;
    case TW_HEALTH_WEIGHT:
        /* The day's last measurement; of two at one time the lighter, so
         * that the order entries arrive in does not matter. */
        if (t->weight_kg == 0 || start_ms > t->weight_at_ms ||
            (start_ms == t->weight_at_ms && d->value < t->weight_kg)) {
            t->weight_kg = d->value;
            t->weight_at_ms = start_ms;
        }
        break;
    default:
        break;
    }
}

void tw_health_weight_trend(const tw_health_summary *s, int32_t *days, double *change_kg,
                            double *kg_per_week)
{
    /* Least squares of weight against the day's index: slope =
     * (n Sxy - Sx Sy) / (n Sxx - Sx^2). */
    double n = 0, sx = 0, sy = 0, sxy = 0, sxx = 0, first = 0, last = 0;
    for (int32_t i = 0; i < s->range.ndays; i++) {
        double w = s->days[i].weight_kg;
        if (w == 0)
            continue;
        if (n == 0)
            first = w;
        last = w;
        n++;
        sx += i;
        sy += w;
        sxy += i * w;
        sxx += (double)i * i;
    }
    *days = (int32_t)n;
    *change_kg = 0;
    *kg_per_week = 0;
    if (n < 2)
        return;
    *change_kg = last - first;
    double denom = n * sxx - sx * sx;
    if (denom != 0)
        *kg_per_week = (n * sxy - sx * sy) / denom * 7;
}
