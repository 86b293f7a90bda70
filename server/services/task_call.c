/* The edge between calls and task steps (task_call.h). */
#include "task_call.h"

#include "auth/profile.h"

#include <string.h>

static tw_err read_day(tw_task_env *env)
{
    return tw_profile_day_settings(env->store, &env->user, env->arena, &env->day);
}

tw_err tw_task_call_env(tw_call *call, tw_app *app, tw_task_env *env)
{
    memset(env, 0, sizeof *env);
    tw_err err = tw_call_user(call, &env->user);
    if (err)
        return err;
    env->store = app->store;
    env->arena = tw_call_arena(call);
    env->now_ms = tw_call_now_ms(call);
    env->prefix = "task.";
    env->violations = tw_call_violations(call);
    env->read_day = read_day;
    return TW_OK;
}

tw_err tw_task_call_fail(tw_call *call, const tw_task_env *env, tw_err err)
{
    if (err != TW_OK && env->message != NULL && !tw_violations_any(env->violations))
        return tw_call_error(call, err, "%s", env->message);
    return tw_kit_fail(call, err);
}

const uint64_t *tw_task_call_etag(const char *etag, uint64_t *storage)
{
    if (etag[0] == '\0')
        return NULL;
    if (!tw_task_etag_version(etag, storage))
        *storage = 0; /* versions start at 1: matches nothing */
    return storage;
}
