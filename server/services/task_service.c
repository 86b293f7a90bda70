/*
 * tw.v1.TaskService: a user's tasks. Each handler checks its request, then
 * runs one step of tasks/task_ops.h as the call's one write (tw_kit_write:
 * one transaction, retried on a conflict, remembered with its request_id)
 * and answers with the stored task. Lists and statistics read committed
 * data through the indexes.
 */
#include "services.h"

#include "task_call.h"
#include "tasks/task_list.h"
#include "tasks/task_stats.h"
#include "tw/v1/task_service.pb-c.h"
#include "kit/raw.h"
#include "tw_utf8.h"

#include <string.h>

/* One call's environment and the arguments of its step. */
struct task_call {
    tw_task_env env;
    tw_id id;                /* the task the request names */
    const uint64_t *version; /* its etag's version; NULL: no check */
    uint64_t version_storage;
    const void *request;
    void *response;
};

static tw_err start(tw_call *call, struct task_call *tc)
{
    memset(tc, 0, sizeof *tc);
    tc->request = tw_call_request(call);
    tc->response = tw_call_response(call);
    return tw_task_call_env(call, tw_call_service_ctx(call), &tc->env);
}

/* start() for a request naming one task by id (checked and required by
 * the engine), with an optional etag. */
static tw_err start_on(tw_call *call, struct task_call *tc, const char *id, const char *etag)
{
    tw_err err = start(call, tc);
    tw_kit_id(id, &tc->id);
    tc->version = tw_task_call_etag(etag, &tc->version_storage);
    return err;
}

/* Runs a step as the call's write. */
static tw_err run(tw_call *call, struct task_call *tc, tw_txn_fn fn)
{
    return tw_task_call_fail(call, &tc->env, tw_kit_write(call, tc->env.store, fn, tc));
}

/* A task the request names that must be one of the caller's. */
static tw_err caller_task(tw_call *call, struct task_call *tc, const char *text)
{
    tw_task_record *rec;
    tw_err err = tw_task_get(tc->env.store, NULL, &tc->env.user, &tc->id, tc->env.arena, &rec);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "task %s not found", text);
    return tw_kit_fail(call, err);
}

/* ---- CreateTask ---------------------------------------------------------------- */

static tw_err create_step(tw_txn *t, void *ctx)
{
    struct task_call *tc = ctx;
    const Tw__V1__CreateTaskRequest *in = tc->request;
    Tw__V1__CreateTaskResponse *out = tc->response;
    tw_task_record *rec;
    tw_err err = tw_task_op_create(t, &tc->env, in->task, tc->env.now_ms, &rec);
    if (err == TW_OK)
        out->task = rec->task;
    return err;
}

static tw_err create_task(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__CreateTaskRequest *in = (const void *)request;
    (void)response;
    struct task_call tc;
    tw_err err = start(call, &tc);
    if (err)
        return err;
    tw_task_check_new_id(in->task->id, false, "task.id", tc.env.violations);
    if (tw_task_validate(in->task, TW_TF_ALL, true, "task.", tc.env.violations) ||
        tw_violations_any(tc.env.violations))
        return TW_ERR_VALIDATION;
    return run(call, &tc, create_step);
}

/* ---- GetTask ----------------------------------------------------------------------- */

/* The task goes out as stored (kit/raw.h). */
static tw_err get_task(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__GetTaskRequest *in = (const void *)request;
    struct task_call tc;
    tw_err err = start_on(call, &tc, in->id, "");
    if (err)
        return err;
    const uint8_t *rec;
    size_t len;
    tw_task_bytes task;
    err = tw_task_get_stored(tc.env.store, &tc.env.user, &tc.id, tc.env.arena, &rec, &len);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "task %s not found", in->id);
    if (err == TW_OK && (err = tw_task_record_bytes(rec, len, &task)) == TW_OK) {
        if (!tw_kit_raw_begin(call, response, 1))
            return TW_ERR_NO_MEMORY;
        tw_kit_raw_add(response, "task", task.prefixed, task.len);
    }
    return tw_kit_fail(call, err);
}

/* ---- ListTasks --------------------------------------------------------------------- */

static void check_list_request(const Tw__V1__ListTasksRequest *in, tw_violations *v)
{
    for (size_t i = 0; i < in->n_statuses; i++) {
        if (in->statuses[i] < TW__V1__TASK_STATUS__TASK_STATUS_TODO ||
            in->statuses[i] > TW__V1__TASK_STATUS__TASK_STATUS_ARCHIVED) {
            tw_violations_add(v, "statuses",
                              "status %zu is not TODO, IN_PROGRESS, DONE or ARCHIVED", i);
            break;
        }
    }
    if (in->parent_id[0] != '\0' && in->top_level_only)
        tw_violations_add(v, "top_level_only", "cannot be combined with parent_id");
    if (in->order_by > TW__V1__TASK_ORDER__TASK_ORDER_MANUAL || in->order_by < 0)
        tw_violations_add(v, "order_by", "is not a TaskOrder");
    if (in->has_recurrence < 0 ||
        in->has_recurrence > TW__V1__TASK_RECURRENCE_FILTER__TASK_RECURRENCE_FILTER_ONE_OFF)
        tw_violations_add(v, "has_recurrence", "is not a TaskRecurrenceFilter");
    if (in->label[0] != '\0' && tw_utf8_chars(in->label) > TW_TASK_LABEL_MAX)
        tw_violations_add(v, "label", "is longer than %d characters", TW_TASK_LABEL_MAX);
}

static tw_err list_tasks(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__ListTasksRequest *in = (const void *)request;
    Tw__V1__ListTasksResponse *out = (void *)response;
    struct task_call tc;
    tw_kit_page page;
    tw_err err = start(call, &tc);
    if (err)
        return err;
    check_list_request(in, tc.env.violations);
    if (tw_violations_any(tc.env.violations))
        return TW_ERR_VALIDATION;
    if ((err = tw_kit_page_open(call, tc.env.store, &page)))
        return err;
    /* Another user's task is as unknown as a missing one. */
    if (tw_kit_id(in->parent_id, &tc.id) && (err = caller_task(call, &tc, in->parent_id)))
        return err;
    uint8_t *next;
    size_t next_len, count;
    tw_task_bytes *tasks;
    if ((err = tw_task_list(tc.env.store, &tc.env.user, in, page.cursor, page.cursor_len, page.size,
                            tc.env.arena, &tasks, &count, &next, &next_len)))
        return tw_kit_fail(call, err);
    if ((err = tw_kit_page_close(call, &page, next, next_len, &out->next_page_token)))
        return err;
    /* The tasks go out as stored (kit/raw.h), then the token: the fields
     * in number order, as packing the decoded tasks would give them. */
    if (!tw_kit_raw_begin(call, response, count + 1))
        return TW_ERR_NO_MEMORY;
    for (size_t i = 0; i < count; i++)
        tw_kit_raw_add(response, "tasks", tasks[i].prefixed, tasks[i].len);
    bool added = tw_kit_raw_add_text(call, response, "next_page_token", out->next_page_token);
    out->next_page_token = (char *)"";
    return added ? TW_OK : TW_ERR_NO_MEMORY;
}

/* ---- UpdateTask -------------------------------------------------------------------- */

struct update_args {
    struct task_call tc;
    tw_task_update update;
};

static tw_err update_step(tw_txn *t, void *ctx)
{
    struct update_args *a = ctx;
    Tw__V1__UpdateTaskResponse *out = a->tc.response;
    tw_task_record *rec;
    tw_err err = tw_task_op_update(t, &a->tc.env, &a->tc.id, &a->update, &rec);
    if (err == TW_OK)
        out->task = rec->task;
    return err;
}

static tw_err update_task(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__UpdateTaskRequest *in = (const void *)request;
    (void)response;
    struct update_args a;
    tw_err err = start_on(call, &a.tc, in->task->id, in->etag);
    if (err)
        return err;
    if (!tw_kit_id(in->task->id, &a.tc.id))
        return tw_call_field_violation(call, "task.id", "is required");
    unsigned fields;
    if ((err = tw_mask_parse(in->update_mask, tw_task_mask_paths, TW_TF_ALL & ~TW_TF_PARENT, "Task",
                             "update_mask", a.tc.env.violations, &fields)) ||
        (err = tw_task_validate(in->task, fields, false, "task.", a.tc.env.violations)))
        return err;
    a.update = (tw_task_update){
        .values = in->task,
        .fields = fields,
        .version = a.tc.version,
    };
    return tw_task_call_fail(call, &a.tc.env, tw_kit_write(call, a.tc.env.store, update_step, &a));
}

/* ---- DeleteTask -------------------------------------------------------------------- */

static tw_err delete_step(tw_txn *t, void *ctx)
{
    struct task_call *tc = ctx;
    const Tw__V1__DeleteTaskRequest *in = tc->request;
    Tw__V1__DeleteTaskResponse *out = tc->response;
    return tw_task_op_delete(t, &tc->env, &tc->id, in->force, tc->version, &out->deleted_count);
}

static tw_err delete_task(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__DeleteTaskRequest *in = (const void *)request;
    (void)response;
    struct task_call tc;
    tw_err err = start_on(call, &tc, in->id, in->etag);
    return err ? err : run(call, &tc, delete_step);
}

/* ---- CompleteTask and ReopenTask ---------------------------------------------------- */

struct complete_args {
    struct task_call tc;
    int64_t done_ms;
};

static tw_err complete_step(tw_txn *t, void *ctx)
{
    struct complete_args *a = ctx;
    Tw__V1__CompleteTaskResponse *out = a->tc.response;
    tw_task_record *rec;
    tw_completion_record *done;
    tw_err err =
        tw_task_op_complete(t, &a->tc.env, &a->tc.id, a->tc.version, a->done_ms, &rec, &done);
    if (err == TW_OK) {
        out->task = rec->task;
        out->completion = done->completion;
    }
    return err;
}

static tw_err complete_task(tw_call *call, const ProtobufCMessage *request,
                            ProtobufCMessage *response)
{
    const Tw__V1__CompleteTaskRequest *in = (const void *)request;
    (void)response;
    struct complete_args a;
    tw_err err = start_on(call, &a.tc, in->id, in->etag);
    if (err)
        return err;
    /* The engine kept complete_time within its window (RECENT); a little
     * ahead of our clock counts as now. */
    a.done_ms = a.tc.env.now_ms;
    if (in->complete_time != NULL && tw_timestamp_to_ms(in->complete_time, &a.done_ms) &&
        a.done_ms > a.tc.env.now_ms)
        a.done_ms = a.tc.env.now_ms;
    return tw_task_call_fail(call, &a.tc.env,
                             tw_kit_write(call, a.tc.env.store, complete_step, &a));
}

static tw_err reopen_step(tw_txn *t, void *ctx)
{
    struct task_call *tc = ctx;
    Tw__V1__ReopenTaskResponse *out = tc->response;
    tw_task_record *rec;
    tw_err err = tw_task_op_reopen(t, &tc->env, &tc->id, tc->version, &rec);
    if (err == TW_OK)
        out->task = rec->task;
    return err;
}

static tw_err reopen_task(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__ReopenTaskRequest *in = (const void *)request;
    (void)response;
    struct task_call tc;
    tw_err err = start_on(call, &tc, in->id, in->etag);
    return err ? err : run(call, &tc, reopen_step);
}

/* ---- MoveTask --------------------------------------------------------------------- */

static tw_err move_step(tw_txn *t, void *ctx)
{
    struct task_call *tc = ctx;
    const Tw__V1__MoveTaskRequest *in = tc->request;
    Tw__V1__MoveTaskResponse *out = tc->response;
    tw_task_record *rec;
    tw_err err =
        tw_task_op_move(t, &tc->env, &tc->id, in->parent_id, in->after_id, tc->version, &rec);
    if (err == TW_OK)
        out->task = rec->task;
    return err;
}

static tw_err move_task(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__MoveTaskRequest *in = (const void *)request;
    (void)response;
    struct task_call tc;
    tw_err err = start_on(call, &tc, in->id, in->etag);
    if (err)
        return err;
    tc.env.prefix = "";
    return run(call, &tc, move_step);
}

/* ---- ListCompletions and GetTaskStats --------------------------------------------- */

/* An optional task id that must name one of the caller's tasks: *out is
 * NULL when the field is empty. */
static tw_err optional_task(tw_call *call, struct task_call *tc, const char *text,
                            const tw_id **out)
{
    *out = NULL;
    if (!tw_kit_id(text, &tc->id))
        return TW_OK;
    *out = &tc->id;
    return caller_task(call, tc, text);
}

static tw_err list_completions(tw_call *call, const ProtobufCMessage *request,
                               ProtobufCMessage *response)
{
    const Tw__V1__ListCompletionsRequest *in = (const void *)request;
    Tw__V1__ListCompletionsResponse *out = (void *)response;
    struct task_call tc;
    tw_kit_page page;
    const tw_id *task;
    tw_err err;
    if ((err = start(call, &tc)) || (err = tw_kit_page_open(call, tc.env.store, &page)) ||
        (err = optional_task(call, &tc, in->task_id, &task)))
        return err;
    uint8_t *next;
    size_t next_len, count;
    if ((err = tw_completion_list(tc.env.store, &tc.env.user, task, page.cursor, page.cursor_len,
                                  page.size, tc.env.arena, &out->completions, &count, &next,
                                  &next_len)))
        return tw_kit_fail(call, err);
    out->n_completions = count;
    return tw_kit_page_close(call, &page, next, next_len, &out->next_page_token);
}

static tw_err get_task_stats(tw_call *call, const ProtobufCMessage *request,
                             ProtobufCMessage *response)
{
    const Tw__V1__GetTaskStatsRequest *in = (const void *)request;
    struct task_call tc;
    const tw_id *task;
    tw_err err;
    if ((err = start(call, &tc)) || (err = optional_task(call, &tc, in->task_id, &task)))
        return err;
    if ((err = tw_task_env_day(&tc.env)))
        return tw_kit_fail(call, err);
    err = tw_task_stats(tc.env.store, &tc.env.user, &tc.env.day, tc.env.now_ms, task, tc.env.arena,
                        (Tw__V1__GetTaskStatsResponse *)response);
    return tw_kit_fail(call, err);
}

static const tw_method task_methods[] = {
    {"CreateTask", TW_UNARY, TW_WRITE | TW_METERED, .handle = create_task},
    {"GetTask", TW_UNARY, 0, .handle = get_task},
    {"ListTasks", TW_UNARY, 0, .handle = list_tasks},
    {"UpdateTask", TW_UNARY, TW_WRITE, .handle = update_task},
    {"DeleteTask", TW_UNARY, TW_WRITE, .handle = delete_task},
    {"CompleteTask", TW_UNARY, TW_WRITE, .handle = complete_task},
    {"ReopenTask", TW_UNARY, TW_WRITE, .handle = reopen_task},
    {"MoveTask", TW_UNARY, TW_WRITE, .handle = move_task},
    {"ListCompletions", TW_UNARY, 0, .handle = list_completions},
    {"GetTaskStats", TW_UNARY, 0, .handle = get_task_stats},
    {NULL},
};

static const tw_service_counter task_counters[] = {
    {TW_COUNTER_TASKS_CREATED, "tw_tasks_created_total", "Tasks created."},
    {TW_COUNTER_TASK_COMPLETIONS, "tw_task_completions_total",
     "Task completions (reopening one takes it back)."},
    {NULL},
};

const tw_service_def tw_task_service = {
    .rpc = {.descriptor = &tw__v1__task_service__descriptor, .methods = task_methods},
    .counters = task_counters,
};
