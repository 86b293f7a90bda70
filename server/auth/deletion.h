/*
 * Deleting an account for good: the delete_account job (server/jobs.c).
 * DeleteAccount marks the account DELETING, ends its sessions, releases
 * its email and enqueues this job in one transaction; the job then removes
 * every key of every user-owned family under the user's id (entities,
 * indexes, change log, counters, the account itself), the user's blobs
 * ("<user id>/..."), and the login failures of the account's email. Each
 * step can run again, so a job cut off by a crash finishes when it is
 * leased again after a restart.
 */
#ifndef TW_DELETION_H
#define TW_DELETION_H

#include "app.h"
#include "jobs.h"

#define TW_DELETE_ACCOUNT_JOB "delete_account"

/* Enqueues the job for user in t (with the account's email). */
tw_err tw_txn_enqueue_account_deletion(tw_txn *t, const tw_id *user, const char *email);

/* The job handler (tw_job_handler). */
tw_err tw_account_deletion_run(tw_app *app, const tw_job *job, tw_job_failure *failure);

#endif
