/*
 * What the wellness tests share: health log entries of every type that
 * keep every rule, to be changed by each test into the case it checks.
 */
#ifndef TW_WELLNESS_FIXTURE_H
#define TW_WELLNESS_FIXTURE_H

#include "wellness/health.h"

#include <string.h>

/* A valid entry of type (1-9) starting at start, in arena: instant types
 * without an end, sleep 8 hours, exercise 30 minutes, heart rate and steps
 * an hour, meditation 20 minutes. */
Tw__V1__HealthLog *wx_entry(tw_arena *arena, int type, int64_t start);

/* An empty violation list in arena, with the engine's budget. */
tw_violations *wx_violations(tw_arena *arena);

/* The violation of v on field, or NULL. */
const tw_violation *wx_violation(const tw_violations *v, const char *field);

/* Fails the test unless v has a violation on field whose description
 * contains why_part. */
#define WX_ASSERT_VIOLATION(v, on, why_part)                                                       \
    do {                                                                                           \
        const tw_violation *found_ = wx_violation(v, on);                                          \
        ck_assert_msg(found_ != NULL, "no violation on %s (first: %s)", on,                        \
                      (v)->head ? (v)->head->field : "none");                                      \
        ck_assert_msg(strstr(found_->description, why_part) != NULL, "%s: %s", on,                 \
                      found_->description);                                                        \
    } while (0)

#endif
