/*
 * What the task tests share: a store (store_fixture.h) with a task
 * environment for alice, builders for tasks and dues, and each step of
 * task_ops.h run in a transaction as the services run them.
 */
#ifndef TW_TASK_FIXTURE_H
#define TW_TASK_FIXTURE_H

#include "store_fixture.h"
#include "tasks/task_ops.h"
#include "tw_changelog.h"

/* The test's environment: alice, New York days, now = tf_now. */
extern tw_task_env tf_env;
extern tw_violations tf_violations;

/* A Check fixture: a fresh store and environment (now 2024-06-01T12:00Z). */
void tf_setup(void);
void tf_teardown(void);

/* Moves the environment's clock (Unix ms). */
void tf_set_now(int64_t unix_ms);
/* Unix ms of a local time in zone. */
int64_t tf_at(const char *zone, int y, int mo, int d, int h, int mi);

/* Builders, in the fixture's arena. */
Tw__V1__Task *tf_task(const char *title);
Tw__V1__TaskDue *tf_due_time(const char *zone, int y, int mo, int d, int h, int mi);
Tw__V1__TaskDue *tf_due_date(const char *zone, int y, int mo, int d);
Tw__V1__TaskRecurrence *tf_rrule(const char *rrule);

/* The steps, each in its own transaction after tw_task_validate where the
 * service validates; they return the step's error. */
tw_err tf_create(Tw__V1__Task *t, tw_task_record **out);
tw_task_record *tf_create_ok(Tw__V1__Task *t); /* fails the test unless TW_OK */
tw_err tf_update(const tw_id *id, Tw__V1__Task *values, unsigned fields, tw_task_update *u,
                 tw_task_record **out);
tw_err tf_delete(const tw_id *id, bool force, int32_t *deleted);
tw_err tf_complete(const tw_id *id, int64_t done_ms, tw_task_record **task,
                   tw_completion_record **done);
tw_err tf_reopen(const tw_id *id, tw_task_record **out);
tw_err tf_move(const tw_id *id, const char *parent, const char *after, tw_task_record **out);

/* The id of a record, and the record as stored now. */
tw_id tf_id(const tw_task_record *rec);
tw_task_record *tf_get(const tw_id *id);

/* The end of alice's change log (to prove that a failed step wrote
 * nothing). */
uint64_t tf_log_end(void);

/* The first violation's field, or "" when there is none. */
const char *tf_violation_field(void);

#endif
