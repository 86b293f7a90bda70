/* The auto-abandon job, for focus_job.h. */
#include "focus_job.h"

#include "tw_time.h"

#include <stdio.h>

tw_err tw_focus_abandon_job(tw_app *app, const tw_job *job, tw_job_failure *failure)
{
    tw_focus_env env = {tw_wall_ms(), app->cfg->focus_abandon_after_minutes * TW_MS_PER_MIN};
    bool enqueued;
    tw_err err = tw_focus_abandon_due(app->store, job->payload, job->payload_len, &env, &enqueued);
    if (err)
        snprintf(failure->error, sizeof failure->error, "%s: %s", tw_err_name(err),
                 tw_store_last_error());
    else if (enqueued)
        tw_jobs_wake(app->jobs);
    return err;
}
