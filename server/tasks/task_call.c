/* The edge between calls and task steps (task_call.h). */
#include "task_call.h"

#include "auth/profile.h"
#include "tw_time.h"

#include <openssl/sha.h>
#include <string.h>

tw_err tw_task_call_env(tw_call *call, tw_app *app, tw_task_env *env, tw_violations *v)
{
    tw_arena *arena = tw_call_arena(call);
    memset(env, 0, sizeof *env);
    tw_violations_init(v, arena);
    tw_err err = tw_call_user(call, &env->user);
    if (err)
        return err;
    env->store = app->store;
    env->arena = arena;
    env->now_ms = tw_wall_ms();
    env->prefix = "task.";
    env->violations = v;
    err = tw_profile_day_settings(app->store, &env->user, arena, &env->day);
    if (err)
        tw_call_log_detail(call, "profile: %s", tw_store_last_error());
    return err;
}

tw_err tw_task_call_error(tw_call *call, const tw_task_env *env, tw_err err)
{
    if (err == TW_OK || err == TW_DEFERRED)
        return err;
    if (env->violations != NULL && env->violations->count > 0) {
        for (const tw_violation_item *i = env->violations->head; i != NULL; i = i->next)
            tw_call_field_violation(call, i->field, "%s", i->description);
        return err;
    }
    if (env->message != NULL)
        return tw_call_error(call, err, "%s", env->message);
    tw_call_log_detail(call, "%s", tw_store_last_error());
    return err;
}

tw_err tw_task_call_id(tw_call *call, const char *field, const char *text, tw_id *out)
{
    if (text[0] == '\0')
        return tw_call_field_violation(call, field, "is required");
    if (!tw_id_parse(text, out))
        return tw_call_field_violation(call, field, "is not a task id (a UUID)");
    return TW_OK;
}

const uint64_t *tw_task_call_etag(const char *etag, uint64_t *storage)
{
    if (etag[0] == '\0')
        return NULL;
    if (!tw_task_etag_version(etag, storage))
        *storage = 0; /* versions start at 1: matches nothing */
    return storage;
}

static void *arena_alloc(void *ctx, size_t size)
{
    return tw_arena_alloc(ctx, size);
}

static void arena_free(void *ctx, void *ptr)
{
    (void)ctx;
    (void)ptr;
}

ProtobufCAllocator tw_task_arena_allocator(tw_arena *arena)
{
    return (ProtobufCAllocator){arena_alloc, arena_free, arena};
}

/* ---- Request ids ------------------------------------------------------------ */

tw_err tw_request_memo_init(tw_call *call, tw_request_memo *memo, const char *method,
                            const char *request_id, const ProtobufCMessage *request)
{
    memset(memo, 0, sizeof *memo);
    if (request_id[0] == '\0')
        return TW_OK;
    tw_id parsed;
    if (!tw_id_parse(request_id, &parsed))
        return tw_call_field_violation(call, "request_id", "is not a UUID");
    tw_arena *arena = tw_call_arena(call);
    memo->key = tw_arena_printf(arena, "%s:%s", method, request_id);
    /* The request as packed without its request_id. */
    const ProtobufCMessageDescriptor *d = request->descriptor;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(d, "request_id");
    ProtobufCMessage *copy = tw_arena_alloc(arena, d->sizeof_message);
    if (memo->key == NULL || f == NULL || copy == NULL)
        return TW_ERR_NO_MEMORY;
    memcpy(copy, request, d->sizeof_message);
    *(const char **)((char *)copy + f->offset) = "";
    size_t len = protobuf_c_message_get_packed_size(copy);
    uint8_t *packed = tw_arena_alloc(arena, len + 1);
    if (packed == NULL)
        return TW_ERR_NO_MEMORY;
    protobuf_c_message_pack(copy, packed);
    SHA256(packed, len, memo->sha256);
    return TW_OK;
}

tw_err tw_request_replay(tw_txn *t, tw_task_env *env, const tw_request_memo *memo,
                         ProtobufCMessage *response, bool *replayed)
{
    *replayed = false;
    if (memo->key == NULL)
        return TW_OK;
    Tw__Store__V1__RequestRecord *rec;
    tw_err err = tw_request_get(t, &env->user, memo->key, env->arena, &rec);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    if (rec->request_sha256.len != sizeof memo->sha256 ||
        memcmp(rec->request_sha256.data, memo->sha256, sizeof memo->sha256) != 0) {
        tw_violations_add(env->violations, "request_id",
                          "was already used for a different request");
        return TW_ERR_VALIDATION;
    }
    ProtobufCAllocator alloc = tw_task_arena_allocator(env->arena);
    ProtobufCMessage *first = protobuf_c_message_unpack(response->descriptor, &alloc,
                                                        rec->response.len, rec->response.data);
    if (first == NULL)
        return TW_ERR_DB_CORRUPT;
    memcpy(response, first, response->descriptor->sizeof_message);
    *replayed = true;
    return TW_OK;
}

tw_err tw_request_remember(tw_txn *t, tw_task_env *env, const tw_request_memo *memo,
                           const ProtobufCMessage *response)
{
    if (memo->key == NULL)
        return TW_OK;
    size_t len = protobuf_c_message_get_packed_size(response);
    uint8_t *packed = tw_arena_alloc(env->arena, len + 1);
    if (packed == NULL)
        return TW_ERR_NO_MEMORY;
    protobuf_c_message_pack(response, packed);
    Tw__Store__V1__RequestRecord rec = TW__STORE__V1__REQUEST_RECORD__INIT;
    rec.request_sha256 = (ProtobufCBinaryData){sizeof memo->sha256, (uint8_t *)memo->sha256};
    rec.response = (ProtobufCBinaryData){len, packed};
    return tw_request_put(t, &env->user, memo->key, &rec);
}
