/*
 * What the task and sync services share at the edge of a call: the
 * caller's task environment (server/tasks/task_ops.h) and a step's refusal
 * as the call's status. Everything else (writes, request ids, pages,
 * masks) comes from the kit (kit/kit.h).
 */
#ifndef TW_SERVICES_TASK_CALL_H
#define TW_SERVICES_TASK_CALL_H

#include "app.h"
#include "kit/kit.h"
#include "tasks/task_ops.h"

/* Sets env up for the calling user: the call's arena, its "now", its
 * violation list, and the user's day settings read from the account when
 * a step first needs them (tw_task_env_day). Fails when the call has no
 * user (the operator socket acts for nobody). */
tw_err tw_task_call_env(tw_call *call, tw_app *app, tw_task_env *env);

/* A step's error as the call's: its message (env->message) when it set
 * one, otherwise as tw_kit_fail. Returns err. */
tw_err tw_task_call_fail(tw_call *call, const tw_task_env *env, tw_err err);

/* The version an etag stands for; an etag that is no version at all
 * stands for none that can match. Returns NULL for an empty etag. */
const uint64_t *tw_task_call_etag(const char *etag, uint64_t *storage);

#endif
