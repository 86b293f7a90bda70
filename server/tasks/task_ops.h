/*
 * What can be done to a task, as steps inside a transaction, shared by
 * TaskService (one step per call) and SyncService.Push (one per mutation).
 *
 * Each step reads what it decides on through its transaction (so a
 * concurrent change makes tw_txn_run run it again), writes the task, its
 * indexes, completions and change-log entries, and returns TW_OK or an
 * error with env->message saying why (field errors go to env->violations).
 * Steps may be run several times by tw_txn_run: they change nothing
 * outside the transaction except env->message and env->violations, which
 * only an error (never retried) leaves behind. Inputs are validated with
 * tw_task_validate before a step runs.
 */
#ifndef TW_TASKS_TASK_OPS_H
#define TW_TASKS_TASK_OPS_H

#include "streak.h"
#include "task_fields.h"
#include "task_store.h"

/* Occurrences skipped by one completion that are indexed as missed. */
#define TW_TASK_MISSED_KEEP 1000
/* Most tasks one forced delete removes. */
#define TW_TASK_DELETE_MAX 10000
/* How far in the past a completion may be reported. */
#define TW_TASK_COMPLETE_PAST_MS (7 * 86400 * INT64_C(1000))

typedef struct tw_task_env {
    tw_store *store;
    tw_id user;
    tw_arena *arena;
    int64_t now_ms;
    /* The user's logical day: read by read_day when a step first needs it
     * (tw_task_env_day), or given (read_day NULL). */
    tw_day_settings day;
    tw_err (*read_day)(struct tw_task_env *env);
    bool day_read;
    const char *prefix;        /* field paths of the task in the request: "task." */
    tw_violations *violations; /* field errors found by a step */
    const char *message;       /* with an error: what the client is told */
} tw_task_env;

/* Makes env->day the user's, reading it at most once per call. */
tw_err tw_task_env_day(tw_task_env *env);

/* Sets env->message (formatted into env->arena) and returns err
 * (tw_err_explain). */
#define tw_task_fail(env, err, ...) tw_err_explain((env)->arena, &(env)->message, err, __VA_ARGS__)

/* Creates `in` (its id, when set, a UUIDv7 the client chose), edited at
 * edit_ms. TW_ERR_ALREADY_EXISTS when the id is taken. */
tw_err tw_task_op_create(tw_txn *t, tw_task_env *env, Tw__V1__Task *in, int64_t edit_ms,
                         tw_task_record **out);

/* An update: the values of some fields, with an etag check (UpdateTask)
 * or a field-by-field merge against what changed since base_version
 * (Push): a field the server changed after base_version goes to the later
 * edit by edit time. */
typedef struct tw_task_update {
    const Tw__V1__Task *values;
    unsigned fields;
    const uint64_t *version; /* must be current; NULL: no check */
    bool merge;
    uint64_t base_version; /* 0: unknown, every field competes */
    int64_t edit_ms;
    /* Out: fields written, fields changed on both sides, and of those the
     * ones that kept the server's value. */
    unsigned applied, conflicting, server_won;
} tw_task_update;

tw_err tw_task_op_update(tw_txn *t, tw_task_env *env, const tw_id *id, tw_task_update *u,
                         tw_task_record **out);

/* Deletes a task (with its subtasks when force); *deleted counts them. */
tw_err tw_task_op_delete(tw_txn *t, tw_task_env *env, const tw_id *id, bool force,
                         const uint64_t *version, int32_t *deleted);

/* Completes the task's current occurrence, done at done_ms. */
tw_err tw_task_op_complete(tw_txn *t, tw_task_env *env, const tw_id *id, const uint64_t *version,
                           int64_t done_ms, tw_task_record **task, tw_completion_record **done);

/* Undoes the task's latest completion. */
tw_err tw_task_op_reopen(tw_txn *t, tw_task_env *env, const tw_id *id, const uint64_t *version,
                         tw_task_record **out);

/* Moves a task under parent (text id, "" for the top level), right after
 * the sibling after ("" for first). */
tw_err tw_task_op_move(tw_txn *t, tw_task_env *env, const tw_id *id, const char *parent,
                       const char *after, const uint64_t *version, tw_task_record **out);

/* Adds focus time to a task (for focus sessions): ms may be negative to
 * take back time wrongly added, never below zero. */
tw_err tw_task_op_add_focus(tw_txn *t, tw_task_env *env, const tw_id *id, int64_t ms);

#endif
