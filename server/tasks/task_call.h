/*
 * What the task and sync services share at the edge of a call: the
 * caller's task environment, turning a step's error into the call's status
 * (field violations become google.rpc.BadRequest), and remembering
 * responses of requests made with a request_id so a retry gets the first
 * response again.
 */
#ifndef TW_TASKS_TASK_CALL_H
#define TW_TASKS_TASK_CALL_H

#include "app.h"
#include "rpc/call.h"
#include "task_ops.h"

/* Sets env (and v, its violation list) up for the calling user: the
 * call's arena, the clock, the user's day settings. Fails when the call
 * has no user (the operator socket acts for nobody). */
tw_err tw_task_call_env(tw_call *call, tw_app *app, tw_task_env *env, tw_violations *v);

/* Ends a step's error on the call: violations as BadRequest, or the
 * step's message, or (storage failures) the store's detail in the log.
 * Returns err. */
tw_err tw_task_call_error(tw_call *call, const tw_task_env *env, tw_err err);

/* Parses a required id field into out; a violation on field otherwise. */
tw_err tw_task_call_id(tw_call *call, const char *field, const char *text, tw_id *out);

/* The version an etag stands for; an etag that is no version at all
 * stands for none that can match. Returns NULL for an empty etag. */
const uint64_t *tw_task_call_etag(const char *etag, uint64_t *storage);

/* A protobuf-c allocator on the call's arena (frees nothing). */
ProtobufCAllocator tw_task_arena_allocator(tw_arena *arena);

/*
 * Requests with a request_id. tw_request_replay looks the id up in t:
 * TW_OK and *replayed with the first response unpacked into response when
 * it is there; a violation on request_id when the same id came with
 * another request. tw_request_remember stores response for next time.
 * key_prefix is the method ("CreateTask"); request is packed (without its
 * request_id, which the caller clears) to tell requests apart.
 */
typedef struct tw_request_memo {
    const char *key;    /* "<method>:<request_id>", NULL without a request_id */
    uint8_t sha256[32]; /* of the request without request_id */
} tw_request_memo;

tw_err tw_request_memo_init(tw_call *call, tw_request_memo *memo, const char *method,
                            const char *request_id, const ProtobufCMessage *request);
tw_err tw_request_replay(tw_txn *t, tw_task_env *env, const tw_request_memo *memo,
                         ProtobufCMessage *response, bool *replayed);
tw_err tw_request_remember(tw_txn *t, tw_task_env *env, const tw_request_memo *memo,
                           const ProtobufCMessage *response);

#endif
