/*
 * What the wellness tests share: health log entries of every type that
 * keep every rule, to be changed by each test into the case it checks.
 */
#ifndef TW_WELLNESS_FIXTURE_H
#define TW_WELLNESS_FIXTURE_H

#include "wellness/health.h"

/* A valid entry of type (1-9) starting at start, in arena: instant types
 * without an end, sleep 8 hours, exercise 30 minutes, heart rate and steps
 * an hour, meditation 20 minutes. */
Tw__V1__HealthLog *wx_entry(tw_arena *arena, int type, int64_t start);

#endif
