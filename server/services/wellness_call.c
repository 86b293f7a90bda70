/* The edge between calls and wellness steps (wellness_call.h). */
#include "wellness_call.h"

#include "auth/profile.h"

#include <string.h>

tw_err tw_wellness_call_env(tw_call *call, tw_wellness_env *env)
{
    memset(env, 0, sizeof *env);
    tw_err err = tw_call_user(call, &env->user);
    if (err)
        return err;
    const tw_app *app = tw_call_service_ctx(call);
    env->store = app->store;
    env->arena = tw_call_arena(call);
    env->now_ms = tw_call_now_ms(call);
    env->abandon_after_ms = app->cfg->focus_abandon_after_minutes * TW_MS_PER_MIN;
    env->violations = tw_call_violations(call);
    return TW_OK;
}

tw_err tw_wellness_call_fail(tw_call *call, const tw_wellness_env *env, tw_err err)
{
    if (err != TW_OK && env->message != NULL && !tw_violations_any(env->violations))
        return tw_call_error(call, err, "%s", env->message);
    return tw_kit_fail(call, err);
}

tw_err tw_wellness_call_days(tw_call *call, tw_wellness_env *env, const char *start_date,
                             const char *end_date, tw_day_request *out)
{
    tw_err err = tw_wellness_date_range(env->violations, start_date, end_date, &out->first_day,
                                        &out->ndays);
    if (err)
        return err;
    return tw_kit_fail(call, tw_profile_day_settings(env->store, &env->user, env->arena, &out->days));
}
