/*
 * tw.v1.TaskService: a user's tasks. Each handler checks its request, then
 * runs one step of tasks/task_ops.h in one transaction (retried by
 * tw_txn_run on a write conflict) and answers with the stored task. Lists
 * and statistics read committed data through the indexes.
 */
#include "services.h"

#include "list_call.h"
#include "tasks/task_call.h"
#include "tasks/task_list.h"
#include "tasks/task_stats.h"
#include "tw/v1/task_service.pb-c.h"
#include "tw_page.h"
#include "tw_utf8.h"

#include <string.h>

/* How much clock skew a reported completion time may show. */
#define COMPLETE_FUTURE_SKEW_MS 60000

/* One call's environment and the arguments of its step. */
struct task_call {
    tw_task_env env;
    tw_violations violations;
    tw_request_memo memo;
    tw_id id;
    const uint64_t *version;
    uint64_t version_storage;
    const void *request;
    void *response;
};

static tw_err start(tw_call *call, struct task_call *tc, const void *request, void *response)
{
    memset(tc, 0, sizeof *tc);
    tc->request = request;
    tc->response = response;
    return tw_task_call_env(call, tw_call_service_ctx(call), &tc->env, &tc->violations);
}

/* start() for a request naming one task by id, with an optional etag. */
static tw_err start_on(tw_call *call, struct task_call *tc, const void *request, void *response,
                       const char *id, const char *etag)
{
    tw_err err = start(call, tc, request, response);
    if (err == TW_OK)
        err = tw_task_call_id(call, "id", id, &tc->id);
    tc->version = tw_task_call_etag(etag, &tc->version_storage);
    return err;
}

/* Runs a step in a transaction and maps its error onto the call. */
static tw_err run(tw_call *call, struct task_call *tc, tw_txn_fn fn)
{
    return tw_task_call_error(call, &tc->env, tw_txn_run(tc->env.store, fn, tc));
}

/* The violations a validation found, as the call's BadRequest. */
static tw_err invalid(tw_call *call, struct task_call *tc, tw_err err)
{
    return tw_task_call_error(call, &tc->env, err);
}

/* A new page token for cursor, bound to the request without its paging. */
static tw_err page_token(tw_call *call, struct task_call *tc, const ProtobufCMessage *query,
                         const uint8_t *cursor, size_t cursor_len, char **token)
{
    *token = "";
    if (cursor == NULL)
        return TW_OK;
    size_t len = protobuf_c_message_get_packed_size(query);
    uint8_t *packed = tw_arena_alloc(tc->env.arena, len + 1);
    if (packed == NULL)
        return TW_ERR_NO_MEMORY;
    protobuf_c_message_pack(query, packed);
    return tw_store_page_token_make(tc->env.store, &tc->env.user, packed, len, cursor, cursor_len,
                                    tc->env.arena, token);
}

/* The cursor of a request's page token, checked against the request. */
static tw_err page_cursor(tw_call *call, struct task_call *tc, const ProtobufCMessage *query,
                          const char *token, uint8_t **cursor, size_t *cursor_len)
{
    size_t len = protobuf_c_message_get_packed_size(query);
    uint8_t *packed = tw_arena_alloc(tc->env.arena, len + 1);
    if (packed == NULL)
        return TW_ERR_NO_MEMORY;
    protobuf_c_message_pack(query, packed);
    return tw_list_call_token(call,
                              tw_store_page_token_read(tc->env.store, &tc->env.user, packed, len,
                                                       token, tc->env.arena, cursor, cursor_len));
}

/* ---- CreateTask ---------------------------------------------------------------- */

static tw_err create_step(tw_txn *t, void *ctx)
{
    struct task_call *tc = ctx;
    const Tw__V1__CreateTaskRequest *in = tc->request;
    Tw__V1__CreateTaskResponse *out = tc->response;
    bool replayed;
    tw_err err = tw_request_replay(t, &tc->env, &tc->memo, &out->base, &replayed);
    if (err || replayed)
        return err;
    tw_task_record *rec;
    if ((err = tw_task_op_create(t, &tc->env, in->task, tc->env.now_ms, &rec)))
        return err;
    out->task = rec->task;
    return tw_request_remember(t, &tc->env, &tc->memo, &out->base);
}

static tw_err create_task(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response)
{
    const Tw__V1__CreateTaskRequest *in = (const void *)request;
    struct task_call tc;
    tw_err err = start(call, &tc, request, response);
    if (err)
        return err;
    if (in->task == NULL)
        return tw_call_field_violation(call, "task", "is required");
    tw_id id;
    if (in->task->id[0] != '\0' && (!tw_id_parse(in->task->id, &id) || !tw_id_is_v7(&id)))
        tw_violations_add(&tc.violations, "task.id", "must be empty or a UUIDv7");
    tw_task_validate(in->task, TW_TF_ALL, true, "task.", &tc.violations);
    if (tc.violations.count > 0)
        return invalid(call, &tc, TW_ERR_VALIDATION);
    if ((err = tw_request_memo_init(call, &tc.memo, "CreateTask", in->request_id, request)))
        return err;
    return run(call, &tc, create_step);
}

/* ---- GetTask ----------------------------------------------------------------------- */

static tw_err get_task(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__GetTaskRequest *in = (const void *)request;
    Tw__V1__GetTaskResponse *out = (void *)response;
    struct task_call tc;
    tw_err err;
    if ((err = start(call, &tc, request, response)) ||
        (err = tw_task_call_id(call, "id", in->id, &tc.id)))
        return err;
    tw_task_record *rec;
    err = tw_task_get(tc.env.store, NULL, &tc.env.user, &tc.id, tc.env.arena, &rec);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "task %s not found", in->id);
    if (err)
        return tw_task_call_error(call, &tc.env, err);
    out->task = rec->task;
    return TW_OK;
}

/* ---- ListTasks --------------------------------------------------------------------- */

static tw_err check_list_request(tw_call *call, struct task_call *tc,
                                 const Tw__V1__ListTasksRequest *in)
{
    tw_violations *v = &tc->violations;
    for (size_t i = 0; i < in->n_statuses; i++) {
        if (in->statuses[i] < TW__V1__TASK_STATUS__TASK_STATUS_TODO ||
            in->statuses[i] > TW__V1__TASK_STATUS__TASK_STATUS_ARCHIVED) {
            tw_violations_add(v, "statuses",
                              "status %zu is not TODO, IN_PROGRESS, DONE or "
                              "ARCHIVED",
                              i);
            break;
        }
    }
    if (in->parent_id[0] != '\0' && !tw_id_parse(in->parent_id, &tc->id))
        tw_violations_add(v, "parent_id", "is not a task id (a UUID)");
    if (in->parent_id[0] != '\0' && in->top_level_only)
        tw_violations_add(v, "top_level_only", "cannot be combined with parent_id");
    if (in->order_by > TW__V1__TASK_ORDER__TASK_ORDER_MANUAL || in->order_by < 0)
        tw_violations_add(v, "order_by", "is not a TaskOrder");
    if (in->has_recurrence < 0 ||
        in->has_recurrence > TW__V1__TASK_RECURRENCE_FILTER__TASK_RECURRENCE_FILTER_ONE_OFF)
        tw_violations_add(v, "has_recurrence", "is not a TaskRecurrenceFilter");
    int64_t ms;
    if (in->due_after_time != NULL && !tw_timestamp_to_ms(in->due_after_time, &ms))
        tw_violations_add(v, "due_after_time", "is out of range");
    if (in->due_before_time != NULL && !tw_timestamp_to_ms(in->due_before_time, &ms))
        tw_violations_add(v, "due_before_time", "is out of range");
    if (in->label[0] != '\0' && tw_utf8_chars(in->label) > TW_TASK_LABEL_MAX)
        tw_violations_add(v, "label", "is longer than %d characters", TW_TASK_LABEL_MAX);
    return v->count > 0 ? invalid(call, tc, TW_ERR_VALIDATION) : TW_OK;
}

static tw_err list_tasks(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__ListTasksRequest *in = (const void *)request;
    Tw__V1__ListTasksResponse *out = (void *)response;
    struct task_call tc;
    uint32_t size;
    tw_err err;
    if ((err = start(call, &tc, request, response)) || (err = check_list_request(call, &tc, in)) ||
        (err = tw_list_call_page_size(call, in->page_size, &size)))
        return err;
    if (in->parent_id[0] != '\0') {
        /* Another user's task is as unknown as a missing one. */
        tw_task_record *parent;
        err = tw_task_get(tc.env.store, NULL, &tc.env.user, &tc.id, tc.env.arena, &parent);
        if (err == TW_ERR_NOT_FOUND)
            return tw_call_error(call, err, "task %s not found", in->parent_id);
        if (err)
            return tw_task_call_error(call, &tc.env, err);
    }
    Tw__V1__ListTasksRequest query = *in;
    query.page_size = 0;
    query.page_token = "";
    uint8_t *cursor, *next;
    size_t cursor_len, next_len, count;
    Tw__V1__Task **tasks;
    if ((err = page_cursor(call, &tc, &query.base, in->page_token, &cursor, &cursor_len)) ||
        (err = tw_task_list(tc.env.store, &tc.env.user, in, cursor, cursor_len, size, tc.env.arena,
                            &tasks, &count, &next, &next_len)) ||
        (err = page_token(call, &tc, &query.base, next, next_len, &out->next_page_token)))
        return tw_task_call_error(call, &tc.env, err);
    out->tasks = tasks;
    out->n_tasks = count;
    return TW_OK;
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
    struct update_args a;
    tw_err err = start(call, &a.tc, request, response);
    if (err)
        return err;
    if (in->task == NULL)
        return tw_call_field_violation(call, "task", "is required");
    if ((err = tw_task_call_id(call, "task.id", in->task->id, &a.tc.id)))
        return err;
    unsigned fields;
    if ((err = tw_task_mask_parse(in->update_mask, TW_TF_ALL & ~TW_TF_PARENT, "update_mask",
                                  &a.tc.violations, &fields)))
        return invalid(call, &a.tc, err);
    if ((err = tw_task_validate(in->task, fields, false, "task.", &a.tc.violations)))
        return invalid(call, &a.tc, err);
    a.update = (tw_task_update){
        .values = in->task,
        .fields = fields,
        .version = tw_task_call_etag(in->etag, &a.tc.version_storage),
    };
    return tw_task_call_error(call, &a.tc.env, tw_txn_run(a.tc.env.store, update_step, &a));
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
    struct task_call tc;
    tw_err err = start_on(call, &tc, request, response, in->id, in->etag);
    if (err)
        return err;
    return run(call, &tc, delete_step);
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
    bool replayed;
    tw_err err = tw_request_replay(t, &a->tc.env, &a->tc.memo, &out->base, &replayed);
    if (err || replayed)
        return err;
    tw_task_record *rec;
    tw_completion_record *done;
    if ((err =
             tw_task_op_complete(t, &a->tc.env, &a->tc.id, a->tc.version, a->done_ms, &rec, &done)))
        return err;
    out->task = rec->task;
    out->completion = done->completion;
    return tw_request_remember(t, &a->tc.env, &a->tc.memo, &out->base);
}

static tw_err complete_task(tw_call *call, const ProtobufCMessage *request,
                            ProtobufCMessage *response)
{
    const Tw__V1__CompleteTaskRequest *in = (const void *)request;
    struct complete_args a;
    tw_err err = start_on(call, &a.tc, request, response, in->id, in->etag);
    if (err)
        return err;
    a.done_ms = a.tc.env.now_ms;
    if (in->complete_time != NULL) {
        if (!tw_timestamp_to_ms(in->complete_time, &a.done_ms) ||
            a.done_ms > a.tc.env.now_ms + COMPLETE_FUTURE_SKEW_MS ||
            a.done_ms < a.tc.env.now_ms - TW_TASK_COMPLETE_PAST_MS)
            return tw_call_field_violation(call, "complete_time",
                                           "must be within the last 7 days, not in the future");
        if (a.done_ms > a.tc.env.now_ms)
            a.done_ms = a.tc.env.now_ms;
    }
    if ((err = tw_request_memo_init(call, &a.tc.memo, "CompleteTask", in->request_id, request)))
        return err;
    return tw_task_call_error(call, &a.tc.env, tw_txn_run(a.tc.env.store, complete_step, &a));
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
    struct task_call tc;
    tw_err err = start_on(call, &tc, request, response, in->id, in->etag);
    if (err)
        return err;
    return run(call, &tc, reopen_step);
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
    struct task_call tc;
    tw_err err = start_on(call, &tc, request, response, in->id, in->etag);
    if (err)
        return err;
    tc.env.prefix = "";
    return run(call, &tc, move_step);
}

/* ---- ListCompletions and GetTaskStats --------------------------------------------- */

/* Parses an optional task id that must name one of the caller's tasks. */
static tw_err existing_task(tw_call *call, struct task_call *tc, const char *field,
                            const char *text, const tw_id **out)
{
    *out = NULL;
    if (text[0] == '\0')
        return TW_OK;
    tw_err err = tw_task_call_id(call, field, text, &tc->id);
    if (err)
        return err;
    tw_task_record *rec;
    err = tw_task_get(tc->env.store, NULL, &tc->env.user, &tc->id, tc->env.arena, &rec);
    if (err == TW_ERR_NOT_FOUND)
        return tw_call_error(call, err, "task %s not found", text);
    if (err)
        return tw_task_call_error(call, &tc->env, err);
    *out = &tc->id;
    return TW_OK;
}

static tw_err list_completions(tw_call *call, const ProtobufCMessage *request,
                               ProtobufCMessage *response)
{
    const Tw__V1__ListCompletionsRequest *in = (const void *)request;
    Tw__V1__ListCompletionsResponse *out = (void *)response;
    struct task_call tc;
    const tw_id *task;
    uint32_t size;
    tw_err err;
    if ((err = start(call, &tc, request, response)) ||
        (err = tw_list_call_page_size(call, in->page_size, &size)) ||
        (err = existing_task(call, &tc, "task_id", in->task_id, &task)))
        return err;
    Tw__V1__ListCompletionsRequest query = *in;
    query.page_size = 0;
    query.page_token = "";
    uint8_t *cursor, *next;
    size_t cursor_len, next_len, count;
    if ((err = page_cursor(call, &tc, &query.base, in->page_token, &cursor, &cursor_len)) ||
        (err = tw_completion_list(tc.env.store, &tc.env.user, task, cursor, cursor_len, size,
                                  tc.env.arena, &out->completions, &count, &next, &next_len)) ||
        (err = page_token(call, &tc, &query.base, next, next_len, &out->next_page_token)))
        return tw_task_call_error(call, &tc.env, err);
    out->n_completions = count;
    return TW_OK;
}

static tw_err get_task_stats(tw_call *call, const ProtobufCMessage *request,
                             ProtobufCMessage *response)
{
    const Tw__V1__GetTaskStatsRequest *in = (const void *)request;
    struct task_call tc;
    const tw_id *task;
    tw_err err;
    if ((err = start(call, &tc, request, response)) ||
        (err = existing_task(call, &tc, "task_id", in->task_id, &task)))
        return err;
    err = tw_task_stats(tc.env.store, &tc.env.user, &tc.env.day, tc.env.now_ms, task, tc.env.arena,
                        (Tw__V1__GetTaskStatsResponse *)response);
    return tw_task_call_error(call, &tc.env, err);
}

static const tw_method task_methods[] = {
    {"CreateTask", TW_UNARY, TW_WRITE, .handle = create_task},
    {"GetTask", TW_UNARY, TW_IDEMPOTENT, .handle = get_task},
    {"ListTasks", TW_UNARY, TW_IDEMPOTENT, .handle = list_tasks},
    {"UpdateTask", TW_UNARY, TW_WRITE, .handle = update_task},
    {"DeleteTask", TW_UNARY, TW_WRITE | TW_IDEMPOTENT, .handle = delete_task},
    {"CompleteTask", TW_UNARY, TW_WRITE, .handle = complete_task},
    {"ReopenTask", TW_UNARY, TW_WRITE, .handle = reopen_task},
    {"MoveTask", TW_UNARY, TW_WRITE, .handle = move_task},
    {"ListCompletions", TW_UNARY, TW_IDEMPOTENT, .handle = list_completions},
    {"GetTaskStats", TW_UNARY, TW_IDEMPOTENT, .handle = get_task_stats},
    {NULL},
};

tw_err tw_task_service_register(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    static tw_service task_service = {
        .descriptor = &tw__v1__task_service__descriptor,
        .methods = task_methods,
    };
    task_service.ctx = app;
    return tw_engine_add_service(engine, &task_service, errbuf, errlen);
}
