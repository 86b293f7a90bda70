/* The auto-abandon job, for focus_job.h. */
#include "focus_job.h"

#include "tw_time.h"

#include <stdio.h>

tw_err tw_focus_abandon_job(tw_app *app, const tw_job *job, char *error, size_t error_len)
{
    tw_focus_env env = {tw_wall_ms(), app->cfg->focus_abandon_after_minutes * TW_MS_PER_MIN};
    bool enqueued;
    tw_err err = tw_focus_abandon_due(app->store, job->payload, job->payload_len, &env, &enqueued);
    if (err)
        snprintf(error, error_len, "%s: %s", tw_err_name(err), tw_store_last_error());
    else if (enqueued)
        tw_jobs_wake(app->jobs);
    return err;
}
