/* The job that abandons a focus session left in progress too long
 * (TW_FOCUS_ABANDON_JOB, a job of the focus service). */
#ifndef TW_WELLNESS_FOCUS_JOB_H
#define TW_WELLNESS_FOCUS_JOB_H

#include "focus.h"
#include "jobs.h"

/* Runs tw_focus_abandon_due with the server's clock and its
 * focus_abandon_after_minutes setting. */
tw_err tw_focus_abandon_job(tw_app *app, const tw_job *job, tw_job_failure *failure);

#endif
