/*
 * What the health log and focus services share at the edge of a call: the
 * caller's wellness environment (server/wellness/wellness.h), a step's
 * refusal as the call's status, and the range of days summaries and
 * statistics ask for. Everything else (writes, request ids, pages, masks)
 * comes from the kit (kit/kit.h).
 */
#ifndef TW_SERVICES_WELLNESS_CALL_H
#define TW_SERVICES_WELLNESS_CALL_H

#include "app.h"
#include "kit/kit.h"
#include "wellness/wellness.h"

/* Sets env up for the calling user: the app's store (the service's ctx),
 * the call's arena, its "now" and its violation list, the focus settings.
 * Fails when the call has no user (the operator socket acts for nobody). */
tw_err tw_wellness_call_env(tw_call *call, tw_wellness_env *env);

/* A step's error as the call's: with its message (env->message) when it
 * set one and found no bad field, otherwise as tw_kit_fail. Returns err. */
tw_err tw_wellness_call_fail(tw_call *call, const tw_wellness_env *env, tw_err err);

/* The logical days a summary or statistics request is about, and how the
 * caller's days are cut (strings in the call's arena). */
typedef struct tw_day_request {
    int32_t first_day;
    int32_t ndays;
    tw_day_settings days;
} tw_day_request;

/* Reads start_date..end_date (every bad one a violation) and the caller's
 * profile settings. Returns the error to return from the handler. */
tw_err tw_wellness_call_days(tw_call *call, tw_wellness_env *env, const char *start_date,
                             const char *end_date, tw_day_request *out);

#endif
