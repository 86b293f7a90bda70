/*
 * tw.v1.SyncService: Pull pages of changes after a token (sync/sync_pull.h),
 * Watch them live (sync_watch.h), and Push a batch of offline
 * mutations, each applied once in a transaction of its own with its result
 * remembered under its mutation id, so a replayed batch changes nothing.
 */
#include "services.h"

#include "sync/sync_pull.h"
#include "sync_watch.h"
#include "task_call.h"
#include "tw/store/v1/task_records.pb-c.h"
#include "tw/v1/sync_service.pb-c.h"

#include <string.h>

/* Violations one rejected mutation reports, and their text: with the most
 * mutations a Push may carry (sync_service.proto) the answer stays a small
 * multiple of the request. */
#define MUTATION_VIOLATIONS_MAX       5
#define MUTATION_VIOLATIONS_MAX_BYTES 600

/* The user, types and cursor of a Pull or Watch. */
struct sync_request {
    tw_task_env env;
    tw_sync_types types;
    tw_sync_cursor cursor;
};

static tw_err sync_start(tw_call *call, struct sync_request *r, char **types, size_t ntypes,
                         const char *token)
{
    tw_err err = tw_task_call_env(call, tw_call_service_ctx(call), &r->env);
    if (err)
        return err;
    char why[256];
    if (!tw_sync_types_parse(types, ntypes, &r->types, why, sizeof why))
        return tw_call_field_violation(call, "resource_types", "%s", why);
    err =
        tw_sync_token_read(r->env.store, &r->env.user, &r->types, token, r->env.arena, &r->cursor);
    if (err == TW_ERR_BAD_PAGE_TOKEN) {
        tw_call_field_violation(call, "since_token",
                                "is not a token this server gave you for these resource types");
        return err;
    }
    return tw_task_call_fail(call, &r->env, err);
}

/* ---- Pull --------------------------------------------------------------------- */

static tw_err pull(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__PullRequest *in = (const void *)request;
    Tw__V1__PullResponse *out = (void *)response;
    if (in->page_size < 0)
        return tw_call_field_violation(call, "page_size", "must not be negative");
    uint32_t limit = in->page_size == 0                 ? TW_SYNC_PAGE_DEFAULT
                     : in->page_size > TW_SYNC_PAGE_MAX ? TW_SYNC_PAGE_MAX
                                                        : (uint32_t)in->page_size;
    struct sync_request r;
    tw_err err = sync_start(call, &r, in->resource_types, in->n_resource_types, in->since_token);
    if (err)
        return err;
    tw_sync_page page;
    if ((err = tw_sync_read(r.env.store, &r.env.user, &r.types, &r.cursor, limit, r.env.arena,
                            &page)))
        return tw_task_call_fail(call, &r.env, err);
    if (page.resync) {
        out->full_resync_required = true;
        return TW_OK;
    }
    out->changes = page.changes;
    out->n_changes = page.count;
    out->has_more = page.more;
    err = tw_sync_token_make(r.env.store, &r.env.user, &r.types, &r.cursor, r.env.arena,
                             &out->next_token);
    return tw_task_call_fail(call, &r.env, err);
}

/* ---- Watch -------------------------------------------------------------------- */

static tw_err watch(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__WatchRequest *in = (const void *)request;
    if (in->since_token[0] == '\0')
        return tw_call_field_violation(call, "since_token",
                                       "is required: a new device starts with Pull");
    struct sync_request r;
    tw_err err = sync_start(call, &r, in->resource_types, in->n_resource_types, in->since_token);
    if (err)
        return err;
    if (r.cursor.full)
        return tw_call_field_violation(call, "since_token",
                                       "is in the middle of a full sync: Pull until has_more "
                                       "is false, then Watch");
    return tw_sync_watch_start(call, tw_call_state(call), r.env.store, &r.env.user, &r.types,
                               r.cursor.sequence);
}

/* ---- Push ---------------------------------------------------------------------- */

struct push {
    tw_task_env env;
    tw_violations violations;
    const Tw__V1__Mutation *m;
    tw_id mutation_id;
    tw_id task_id;
    int64_t edit_ms;
    int64_t done_ms;
    unsigned fields;
    uint64_t base_version;
    bool has_base;
    Tw__V1__MutationResult *result;
};

static void mutation_key(tw_key *k, const tw_id *user, const tw_id *mutation)
{
    tw_key_init(k, TW_KF_SYNC_MUTATION);
    tw_key_id(k, user);
    tw_key_id(k, mutation);
}

/* The first result of this mutation, if it was applied before. */
static tw_err remembered(tw_txn *t, struct push *p, bool *found)
{
    tw_key k;
    tw_value v;
    mutation_key(&k, &p->env.user, &p->mutation_id);
    tw_err err = tw_txn_get_for_update(t, &k, p->env.arena, &v);
    *found = err == TW_OK;
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    const Tw__Store__V1__MutationRecord *rec = (const void *)v.msg;
    if (rec->result == NULL)
        return TW_ERR_DB_CORRUPT;
    *p->result = *rec->result;
    p->result->replayed = true;
    return TW_OK;
}

static tw_err remember(tw_txn *t, struct push *p)
{
    tw_key k;
    mutation_key(&k, &p->env.user, &p->mutation_id);
    Tw__Store__V1__MutationRecord rec = TW__STORE__V1__MUTATION_RECORD__INIT;
    rec.result = p->result;
    return tw_txn_put(t, &k, &(tw_value){.msg = &rec.base});
}

/* The names of the fields set in bits, in arena. */
static char **field_names(tw_arena *arena, unsigned bits, size_t *n)
{
    *n = 0;
    char **names = tw_arena_alloc(arena, 16 * sizeof *names);
    for (unsigned bit = 1; names != NULL && bit <= TW_TF_ALL; bit <<= 1)
        if (bits & bit)
            names[(*n)++] = (char *)tw_task_field_name(bit);
    return names;
}

/* The server's version of the mutation's task, or none when it is gone. */
static tw_err server_version(tw_txn *t, struct push *p)
{
    tw_task_record *rec;
    tw_err err = tw_task_get(p->env.store, t, &p->env.user, &p->task_id, p->env.arena, &rec);
    p->result->task = err == TW_OK ? rec->task : NULL;
    return err == TW_ERR_NOT_FOUND ? TW_OK : err;
}

/* Loads the mutation's task into the result. A task the user deleted
 * leaves it unset with *deleted true; an id the user never had is
 * TW_ERR_NOT_FOUND. */
static tw_err existing_task(tw_txn *t, struct push *p, bool *deleted)
{
    *deleted = false;
    tw_err err = server_version(t, p);
    if (err || p->result->task != NULL ||
        (err = tw_task_was_deleted(t, &p->env.user, &p->task_id, deleted)) || *deleted)
        return err;
    return tw_task_fail(&p->env, TW_ERR_NOT_FOUND, "task %s not found",
                        tw_task_format_id(p->env.arena, &p->task_id));
}

/* Applies one mutation in t. Errors of the mutation itself (invalid, not
 * found, not allowed now) abort t and make it REJECTED. A mutation of a
 * task the user deleted is a CONFLICT with no task (deleting it again is
 * APPLIED: deleting is idempotent); of an id the user never had
 * (another user's included), REJECTED. */
static tw_err push_step(tw_txn *t, void *ctx)
{
    struct push *p = ctx;
    Tw__V1__MutationResult *res = p->result;
    bool found;
    tw_err err = remembered(t, p, &found);
    if (err || found)
        return err;
    tw__v1__mutation_result__init(res);
    res->mutation_id = p->m->mutation_id;
    res->outcome = TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED;
    tw_task_record *rec;
    if (p->m->operation_case != TW__V1__MUTATION__OPERATION_CREATE_TASK) {
        bool deleted;
        if ((err = existing_task(t, p, &deleted)))
            return err;
        if (deleted) {
            if (p->m->operation_case != TW__V1__MUTATION__OPERATION_DELETE_TASK)
                res->outcome = TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT;
            return remember(t, p);
        }
    }
    switch (p->m->operation_case) {
    case TW__V1__MUTATION__OPERATION_CREATE_TASK:
        err = tw_task_op_create(t, &p->env, p->m->create_task, p->edit_ms, &rec);
        if (err == TW_ERR_ALREADY_EXISTS) {
            /* Created before, by another mutation: the server's version wins. */
            res->outcome = TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT;
            err = server_version(t, p);
        } else if (err == TW_OK) {
            res->task = rec->task;
        }
        break;
    case TW__V1__MUTATION__OPERATION_UPDATE_TASK: {
        tw_task_update u = {
            .values = p->m->update_task->task,
            .fields = p->fields,
            .merge = true,
            .base_version = p->base_version,
            .edit_ms = p->edit_ms,
        };
        if ((err = tw_task_op_update(t, &p->env, &p->task_id, &u, &rec)))
            break;
        res->task = rec->task;
        res->conflicting_fields =
            field_names(p->env.arena, u.conflicting, &res->n_conflicting_fields);
        res->server_won_fields = field_names(p->env.arena, u.server_won, &res->n_server_won_fields);
        if (u.conflicting)
            res->outcome = TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT;
        break;
    }
    case TW__V1__MUTATION__OPERATION_DELETE_TASK: {
        int32_t deleted;
        err = tw_task_op_delete(t, &p->env, &p->task_id, p->m->delete_task->force, NULL, &deleted);
        res->task = NULL;
        break;
    }
    case TW__V1__MUTATION__OPERATION_COMPLETE_TASK: {
        tw_completion_record *done;
        uint64_t version;
        if (p->has_base &&
            (!tw_task_etag_version(res->task->etag, &version) || version != p->base_version)) {
            /* Changed (perhaps completed) on the server since: not applied. */
            res->outcome = TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT;
            break;
        }
        if ((err = tw_task_op_complete(t, &p->env, &p->task_id, NULL, p->done_ms, &rec, &done)))
            break;
        res->task = rec->task;
        res->completion = done->completion;
        break;
    }
    default:
        return TW_ERR_INTERNAL;
    }
    return err ? err : remember(t, p);
}

static tw_err store_rejection(tw_txn *t, void *ctx)
{
    struct push *p = ctx;
    Tw__V1__MutationResult rejected = *p->result;
    bool found;
    tw_err err = remembered(t, p, &found);
    if (err || found)
        return err;
    *p->result = rejected;
    return remember(t, p);
}

/* Fills a REJECTED result from the mutation's error. */
static void reject(struct push *p, tw_err err)
{
    Tw__V1__MutationResult *res = p->result;
    tw__v1__mutation_result__init(res);
    res->mutation_id = p->m->mutation_id;
    res->outcome = TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED;
    res->error_reason = (char *)tw_err_reason(err);
    res->error_message = (char *)(p->env.message ? p->env.message : tw_err_message(err));
    const char *more = tw_violations_more(&p->violations);
    size_t n = p->violations.count + (more != NULL);
    if (n == 0)
        return;
    res->field_violations = tw_arena_alloc(p->env.arena, n * sizeof *res->field_violations);
    Tw__V1__PushFieldViolation *rows = tw_arena_alloc(p->env.arena, n * sizeof *rows);
    if (res->field_violations == NULL || rows == NULL)
        return;
    for (const tw_violation *i = p->violations.head; i != NULL; i = i->next) {
        Tw__V1__PushFieldViolation *fv = &rows[res->n_field_violations];
        tw__v1__push_field_violation__init(fv);
        fv->field = (char *)i->field;
        fv->description = (char *)i->description;
        res->field_violations[res->n_field_violations++] = fv;
    }
    if (more != NULL) {
        Tw__V1__PushFieldViolation *fv = &rows[res->n_field_violations];
        tw__v1__push_field_violation__init(fv);
        fv->description = (char *)more;
        res->field_violations[res->n_field_violations++] = fv;
    }
    if (res->n_field_violations > 0 && res->error_message == tw_err_message(err))
        res->error_message =
            tw_arena_printf(p->env.arena, "%s: %s", res->field_violations[0]->field,
                            res->field_violations[0]->description);
}

/* Checks a mutation before any transaction; TW_OK or its error. */
static tw_err check_mutation(struct push *p)
{
    const Tw__V1__Mutation *m = p->m;
    tw_violations *v = &p->violations;
    tw_task_env *env = &p->env;
    p->edit_ms = env->now_ms;
    int64_t ms;
    if (m->edit_time != NULL && tw_timestamp_to_ms(m->edit_time, &ms) && ms < env->now_ms)
        p->edit_ms = ms;
    switch (m->operation_case) {
    case TW__V1__MUTATION__OPERATION_CREATE_TASK: {
        Tw__V1__Task *task = m->create_task;
        env->prefix = "create_task.";
        tw_task_check_new_id(task->id, true, "create_task.id", v);
        tw_task_validate(task, TW_TF_ALL, true, "create_task.", v);
        return tw_violations_any(v) ? TW_ERR_VALIDATION : TW_OK;
    }
    case TW__V1__MUTATION__OPERATION_UPDATE_TASK: {
        const Tw__V1__TaskPatch *patch = m->update_task;
        env->prefix = "update_task.task.";
        if (!tw_kit_id(patch->task->id, &p->task_id))
            return tw_violations_add(v, "update_task.task.id", "is required");
        tw_err err = tw_mask_parse(patch->update_mask, tw_task_mask_paths, TW_TF_ALL, "Task",
                                   "update_task.update_mask", v, &p->fields);
        if (err)
            return err;
        if (patch->base_etag[0] != '\0' &&
            !tw_task_etag_version(patch->base_etag, &p->base_version))
            return tw_violations_add(v, "update_task.base_etag", "is not an etag of this server");
        return tw_task_validate(patch->task, p->fields, false, "update_task.task.", v);
    }
    case TW__V1__MUTATION__OPERATION_DELETE_TASK:
        env->prefix = "delete_task.";
        tw_kit_id(m->delete_task->task_id, &p->task_id); /* required, checked by the engine */
        return TW_OK;
    case TW__V1__MUTATION__OPERATION_COMPLETE_TASK: {
        const Tw__V1__TaskCompletionMutation *c = m->complete_task;
        env->prefix = "complete_task.";
        tw_kit_id(c->task_id, &p->task_id); /* required, checked by the engine */
        /* complete_time is within its window (the engine checked); a
         * little ahead of our clock counts as now. */
        p->done_ms = p->edit_ms;
        if (c->complete_time != NULL && tw_timestamp_to_ms(c->complete_time, &p->done_ms) &&
            p->done_ms > env->now_ms)
            p->done_ms = env->now_ms;
        p->has_base = c->base_etag[0] != '\0';
        if (p->has_base && !tw_task_etag_version(c->base_etag, &p->base_version))
            return tw_violations_add(v, "complete_task.base_etag", "is not an etag of this server");
        return TW_OK;
    }
    default:
        return tw_violations_add(v, "operation", "is required");
    }
}

/* Errors that belong to a mutation (it is rejected) rather than to the
 * server (the call fails and the client retries the batch). */
static bool mutation_error(tw_err err)
{
    return err == TW_ERR_VALIDATION || err == TW_ERR_BAD_FIELD_MASK || err == TW_ERR_NOT_FOUND ||
           err == TW_ERR_FAILED_PRECONDITION || err == TW_ERR_ALREADY_EXISTS;
}

static tw_err push(tw_call *call, const ProtobufCMessage *request, ProtobufCMessage *response)
{
    const Tw__V1__PushRequest *in = (const void *)request;
    Tw__V1__PushResponse *out = (void *)response;
    tw_arena *arena = tw_call_arena(call);
    out->results = tw_arena_alloc(arena, (in->n_mutations + 1) * sizeof *out->results);
    if (out->results == NULL)
        return TW_ERR_NO_MEMORY;
    /* The caller's environment, read once for the whole batch. */
    tw_task_env env;
    tw_err err = tw_task_call_env(call, tw_call_service_ctx(call), &env);
    if (err)
        return err;
    for (size_t i = 0; i < in->n_mutations; i++) {
        struct push p;
        memset(&p, 0, sizeof p);
        p.env = env;
        tw_violations_init(&p.violations, arena, MUTATION_VIOLATIONS_MAX,
                           MUTATION_VIOLATIONS_MAX_BYTES);
        p.env.violations = &p.violations;
        p.m = in->mutations[i];
        if ((p.result = tw_arena_alloc(arena, sizeof *p.result)) == NULL)
            return TW_ERR_NO_MEMORY;
        out->results[out->n_results++] = p.result;
        tw_kit_id(p.m->mutation_id, &p.mutation_id); /* required, checked by the engine */
        if ((err = check_mutation(&p)) == TW_OK)
            err = tw_txn_run(p.env.store, push_step, &p);
        if (err && mutation_error(err)) {
            reject(&p, err);
            err = tw_txn_run(p.env.store, store_rejection, &p);
        }
        if (err) {
            tw_call_log_detail(call, "mutation %zu: %s", i, tw_store_last_error());
            return tw_call_error(call, err,
                                 "mutation %zu (%s) could not be applied: %s; the "
                                 "ones before it were, retry the batch",
                                 i, p.m->mutation_id, tw_err_message(err));
        }
    }
    return TW_OK;
}

static const tw_method sync_methods[] = {
    {"Pull", TW_UNARY, 0, .handle = pull},
    {"Watch", TW_SERVER_STREAM, 0, .handle = watch, .state_size = sizeof(tw_sync_watcher)},
    {"Push", TW_UNARY, TW_WRITE, .handle = push},
    {NULL},
};

static void sync_shutdown(void *ctx)
{
    (void)ctx;
    tw_sync_watch_shutdown();
}

static tw_err sync_attach(tw_engine *engine, tw_app *app, char *errbuf, size_t errlen)
{
    (void)engine, (void)errbuf, (void)errlen;
    if (app->store != NULL)
        tw_sync_watch_attach(app->store);
    return TW_OK;
}

const tw_service_def tw_sync_service = {
    .rpc = {.descriptor = &tw__v1__sync_service__descriptor,
            .methods = sync_methods,
            .shutdown = sync_shutdown},
    .attach = sync_attach,
};
