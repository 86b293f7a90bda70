/*
 * What a service sees of the RPC engine: method tables, handler shapes and
 * the call they are handed. No gRPC type appears here; services speak in
 * protobuf-c messages and tw_err codes, and the engine does the rest.
 *
 * A service file declares one static table of tw_method rows and one
 * tw_service, and registers it with tw_engine_add_service(). Before any
 * handler runs, the engine has decoded the request, checked the deadline,
 * and passed the call through the gate (authentication, role, rate limit,
 * maintenance), according to the row's flags.
 *
 * Every call ends exactly once with a status. Handlers return it: TW_OK or an
 * error ends the call right away; TW_DEFERRED keeps it open, and the handler
 * (or any thread it hands the work to) ends it later with tw_call_finish().
 */
#ifndef TW_RPC_CALL_H
#define TW_RPC_CALL_H

#include "rpc_layer.h"

#include "tw_arena.h"
#include "tw_err.h"
#include "tw_id.h"
#include "tw_violations.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returned by a handler that will end the call later with tw_call_finish(). */
#define TW_DEFERRED ((tw_err)-1)

typedef struct tw_call tw_call;

/* How messages flow; protoc-c drops `stream` from service descriptors, so
 * the table says it, and the engine checks it against the .proto. */
typedef enum tw_call_kind {
    TW_UNARY,
    TW_CLIENT_STREAM,
    TW_SERVER_STREAM,
    TW_BIDI_STREAM,
} tw_call_kind;

/* What the engine checks before a handler runs. */
enum tw_method_flag {
    TW_PUBLIC = 1u << 0, /* no token needed (Register, Login, ...) */
    TW_INFRA = 1u << 1,  /* health, reflection: no token, no limits, served in maintenance */
    TW_ADMIN = 1u << 2,  /* only callers with the admin role */
    /* Changes stored data: counted against the write rate limit, run on the
     * engine's write threads. (1u << 4 was TW_IDEMPOTENT, which nothing
     * read: retries are made safe by request_id, see kit/kit.h.) */
    TW_WRITE = 1u << 3,
    /* With TW_PUBLIC: a sign-in (Login, RefreshToken). In maintenance mode
     * the gate lets it through, because only its handler learns who signs
     * in, and the handler refuses everyone but admins. */
    TW_SIGN_IN = 1u << 5,
    /* Consumes one API call of the caller's plan for the period: the gate
     * counts it before the handler runs and refuses it over the plan's
     * limit (RESOURCE_EXHAUSTED, QUOTA_001), so no handler can forget. */
    TW_METERED = 1u << 6,
    /* With TW_METERED: stores audio, which uses voice minutes and storage
     * bytes of the plan. Their amounts are known only once the audio is
     * in, so the gate refuses the call when either is used up already,
     * and the handler consumes both in the write that stores the audio
     * (app->use), refused there if they go over. */
    TW_METERED_AUDIO = 1u << 7,
};

/*
 * Unary and server streaming: called once with the decoded request (borrowed
 * for the call's lifetime) and a response message of the method's output type,
 * initialised and owned by the call's arena. A unary handler fills response
 * and returns TW_OK. A server-streaming handler may use response as scratch
 * space for tw_call_send() and returns TW_OK when the stream is complete.
 */
typedef tw_err tw_handler(tw_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage *response);

/*
 * Client and bidirectional streaming: on_message gets each message in turn
 * (borrowed only until it returns: copy what you keep) and returns TW_OK to
 * read the next one, an error to end the call, or TW_DEFERRED to take the
 * call over: the engine reads nothing more until the handler, from any
 * thread, calls tw_call_read_next() (work on a pool paces the stream, so a
 * slow disk holds the client back instead of filling memory) or ends the
 * call with tw_call_finish() (a client-streaming handler may answer before
 * the client is done, for example a retried upload it already has). Work
 * on a pool may also run beside the stream, holding the call
 * (tw_call_hold), while on_message returns TW_OK until the work's backlog
 * is full and TW_DEFERRED then: the client's next bytes arrive while the
 * last ones are written. on_end runs when the client has sent its last
 * message; a client-streaming on_end fills response.
 */
typedef tw_err tw_message_handler(tw_call *call, const ProtobufCMessage *message,
                                  ProtobufCMessage *response);
typedef tw_err tw_end_handler(tw_call *call, ProtobufCMessage *response);

/* One row per RPC of a service, in any order; the table ends with a row
 * whose name is NULL. */
typedef struct tw_method {
    const char *name; /* as in the .proto, e.g. "GetServerInfo" */
    tw_call_kind kind;
    unsigned flags;                 /* enum tw_method_flag bits */
    tw_handler *handle;             /* TW_UNARY, TW_SERVER_STREAM */
    tw_message_handler *on_message; /* TW_CLIENT_STREAM, TW_BIDI_STREAM */
    tw_end_handler *on_end;         /* TW_CLIENT_STREAM, TW_BIDI_STREAM */
    size_t state_size;              /* bytes of zeroed per-call state, see tw_call_state() */
    /* Optional: run when the call is freed, after every batch and hold, for
     * what the state holds outside the arena (a lock). */
    void (*state_free)(void *state);
} tw_method;

typedef struct tw_service {
    /* Generated by protoc-c: the service's full name and message types. */
    const ProtobufCServiceDescriptor *descriptor;
    /* The name to serve under when it differs from descriptor->name (one
     * implementation serving two wire-identical versions); usually NULL. */
    const char *name;
    const tw_method *methods;
    /* Optional: called once when shutdown begins, to end long-lived
     * streams cleanly before the grace period runs out. */
    void (*shutdown)(void *ctx);
    void *ctx;
} tw_service;

/* ---- Inside a handler ---------------------------------------------------- */

/* The call's arena: everything allocated here is freed when the call ends. */
tw_arena *tw_call_arena(tw_call *call);

/* The method's zeroed per-call state (tw_method.state_size bytes), or NULL. */
void *tw_call_state(tw_call *call);

/* The service's ctx pointer, as given in its tw_service. */
void *tw_call_service_ctx(tw_call *call);

/* The method's row in its service's table, and its full path
 * ("/tw.v1.TaskService/ListTasks"). */
const tw_method *tw_call_method(tw_call *call);
const char *tw_call_path(tw_call *call);

/* The decoded request of a unary or server-streaming call, and the
 * response the call will answer with (both owned by the call). */
const ProtobufCMessage *tw_call_request(tw_call *call);
ProtobufCMessage *tw_call_response(tw_call *call);

/* The value of a request metadata entry (key in lower case), copied into the
 * call's arena and NUL-terminated; NULL when absent. */
const char *tw_call_metadata(tw_call *call, const char *key);

/* Where the call came from, as gRPC says: "ipv4:127.0.0.1:5000", or
 * "unix:..." for the operator socket. */
const char *tw_call_peer(tw_call *call);

/* True when the call came through the operator socket: the caller could
 * open a socket only the account running twd can reach. */
bool tw_call_from_operator_socket(tw_call *call);

/* This call's request id: the client's x-request-id when it sent a sane one,
 * otherwise one made by the server. Sent back as x-request-id. */
const char *tw_call_request_id(tw_call *call);

/*
 * The caller, as the gate found it once per call: the signed-in user and
 * the session of their access token (both NULL for public calls and the
 * operator socket) and their role. Handlers never look at tokens.
 */
void tw_call_set_caller(tw_call *call, const tw_id *user, const tw_id *session, const char *role);
const tw_id *tw_call_caller(tw_call *call);
const tw_id *tw_call_session(tw_call *call);
const char *tw_call_role(tw_call *call);
/* The signed-in user a call acts for, for handlers of a user's data. A
 * call through the operator socket acts for nobody: it ends with
 * UNAUTHENTICATED (AUTH_002), returned for the handler to return. */
tw_err tw_call_user(tw_call *call, tw_id *user);

/* The call's "now": the wall clock (Unix ms) read once when it arrived, so
 * every check and record of one call agrees on the time. */
int64_t tw_call_now_ms(tw_call *call);

/* Milliseconds until the client's deadline; INT64_MAX when it set none. */
int64_t tw_call_time_left_ms(tw_call *call);

/*
 * Error details. tw_call_error() sets the message the client sees (instead of
 * the error table's) and returns err, so a handler can `return
 * tw_call_error(call, TW_ERR_NOT_FOUND, "task %s not found", id);`.
 * Field violations become google.rpc.BadRequest, a retry delay
 * google.rpc.RetryInfo; both are sent only with an error status. The
 * call's violation list (tw_violations.h) is bounded: past its budget
 * violations are only counted, and the client gets one "and N more" entry,
 * so the answer always fits a client's metadata limit. Without a message
 * of its own, the status message is the first violation.
 */
tw_err tw_call_error(tw_call *call, tw_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
tw_err tw_call_field_violation(tw_call *call, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The call's violation list, for validators that fill one (borrowed). */
tw_violations *tw_call_violations(tw_call *call);
void tw_call_retry_after(tw_call *call, int64_t delay_ms);

/* Adds detail for the call's log line only (a storage error's text, an
 * upstream answer); clients never see it. */
void tw_call_log_detail(tw_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- Streams and deferred calls (any thread) ----------------------------- */

/*
 * Queues one message of a server stream (packed at once: message is only
 * borrowed). Messages go out in order, one in flight at a time. Returns
 * TW_ERR_CANCELLED once the call is over, and TW_ERR_SLOW_READER when the
 * client has left too much unread; the handler should then finish.
 */
tw_err tw_call_send(tw_call *call, const ProtobufCMessage *message);

/* Ends a call whose handler returned TW_DEFERRED: the status goes out after
 * any queued messages. For unary and client streaming, response (filled by
 * then) is sent when err is TW_OK. Call it exactly once. */
void tw_call_finish(tw_call *call, tw_err err);

/*
 * After on_message returned TW_DEFERRED: reads the next message of the
 * stream, so on_message (or on_end) runs again on an engine thread. Call it
 * at most once per deferral and never after tw_call_finish(); the handler
 * must not touch the call's state once it has (the engine may already be
 * running on_message). When the call is over, the engine ends it instead.
 */
void tw_call_read_next(tw_call *call);

/*
 * Keeps the call's memory (arena and state) past its end, for a task on
 * another thread that may still touch the state: work a client-stream
 * handler keeps running while the engine reads on (on_message returned
 * TW_OK), which a cancel or a refused message may end under it. Such work
 * ends the call only once the engine has handed it over (TW_DEFERRED, or
 * on_end). Each hold is dropped once, by tw_call_unhold(), as the task's
 * last touch of the call: the call may be freed inside it.
 */
void tw_call_hold(tw_call *call);
void tw_call_unhold(tw_call *call);

/*
 * Flow control for a server stream: asks to be told once every message
 * queued so far has been sent. fn runs once, on an engine thread with no
 * engine lock held, or before this returns when nothing is queued; it does
 * not run once the call is over (the cancel hook tells of that). A handler
 * with more to send than the backlog allows queues a few messages, asks
 * for the drain, and queues the next few from fn.
 */
void tw_call_on_drain(tw_call *call, void (*fn)(tw_call *call, void *ctx), void *ctx);

/*
 * Asks to be told when a deferred call is cancelled (client cancel, deadline,
 * connection lost, server shutdown). fn runs once, on an engine thread, with
 * no engine lock held; the handler must still call tw_call_finish().
 * If the call is already cancelled, fn runs before this returns.
 */
void tw_call_on_cancel(tw_call *call, void (*fn)(tw_call *call, void *ctx), void *ctx);

#endif
