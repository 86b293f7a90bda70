/*
 * The RPC engine on gRPC core's completion-queue API (libgrpc 1.51).
 *
 * Threads. Each worker thread polls its own completion queue. A call is
 * requested on one queue and all its events complete there, so one thread
 * runs a call's handlers in order. Other threads touch a call only through
 * tw_call_send / tw_call_finish / tw_call_on_cancel, under the call's lock.
 *
 * A call's life. Each registered method keeps calls requested on every
 * queue (replace_request says how many); when one arrives it is replaced
 * at once. The engine admits the call (deadline, gate), decodes the
 * request and runs the handler. The status always goes out with initial
 * metadata (core 1.51 never delivers a status without it). A call is freed
 * when its handler has finished it and every batch it started has
 * completed.
 *
 * Cancellation. RECV_CLOSE_ON_SERVER reports the client's cancel. It is
 * posted on its own only when someone must hear of a cancel before the
 * call ends: a stream (as soon as its handler returns TW_DEFERRED), or a
 * handler that set a cancel hook. Otherwise it rides in the status batch,
 * which still tells the call's outcome: one batch and one completion per
 * unary call instead of two.
 *
 * Memory. Each call has an arena for its request, response and handler
 * scratch; messages of client streams are decoded one at a time with malloc
 * and freed after their handler, so a long stream does not grow the arena.
 */
#include "engine.h"

#include "call_log.h"
#include "descriptor_set.h"
#include "error_details.h"
#include "metrics.h"
#include "pool.h"
#include "request_rules.h"
#include "schema.h"
#include "tw_grpc.h"
#include "tw_id.h"
#include "tw_log.h"
#include "tw_net.h"
#include "tw_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* tw_err.h numbers statuses itself so that it needs no gRPC header. */
_Static_assert((int)TW_GRPC_INVALID_ARGUMENT == (int)GRPC_STATUS_INVALID_ARGUMENT,
               "status numbering");
_Static_assert((int)TW_GRPC_RESOURCE_EXHAUSTED == (int)GRPC_STATUS_RESOURCE_EXHAUSTED,
               "status numbering");
_Static_assert((int)TW_GRPC_UNAUTHENTICATED == (int)GRPC_STATUS_UNAUTHENTICATED,
               "status numbering");

/* Streams of each account, for the per-account caps: a small hash table
 * under one lock that only streaming calls take. */
#define STREAM_BUCKETS 256
/* Without a max_streams setting: this share of the open-file limit. */
#define STREAMS_PER_OPEN_FILES 4
#define STREAMS_DEFAULT_MAX    4096

struct user_streams {
    struct user_streams *next;
    char *user;
    int open[2]; /* [0] client streams (uploads), [1] server streams (watches) */
};

/* How long shutdown waits for handlers to release cancelled calls, and
 * how often it looks. */
#define RELEASE_WAIT_MS  10000
#define SHUTDOWN_POLL_MS 5
#define REQUEST_ID_MAX   TW_REQUEST_ID_MAX
/* A client's deadline timer fires before ours (its deadline is earlier by
 * the time the request took to arrive, more under load) and it then cancels:
 * a cancel this close to our deadline is the deadline passing. */
#define DEADLINE_SLACK_MS 250
/* A worker owing requests (out of memory) tries again at least this often. */
#define OWED_RETRY_MS 100

struct method_entry {
    const tw_service *service;
    const tw_method *method;
    const ProtobufCMethodDescriptor *descriptor;
    const tw_message_rules *rules; /* what every request must meet */
    char *path;                    /* "/package.Service/Method" */
    void *handle;                  /* from grpc_server_register_method */
};

/* A worker's requested calls of one method (the last slot: unknown methods). */
struct method_requests {
    int waiting; /* requested, not yet arrived; only the worker's thread counts */
    /* Requests that could not be made for want of memory. The worker makes
     * them again after its next event, or within OWED_RETRY_MS: a method
     * must never be left with no call requested, or its calls wait for
     * their deadline. */
    atomic_int owed;
};

struct worker {
    tw_engine *engine;
    grpc_completion_queue *cq;
    pthread_t thread;
    bool running;
    struct method_requests *requests; /* per method slot (method_slot) */
    atomic_int owed_total;
};

struct tw_engine {
    tw_engine_config cfg;
    char *listen;
    char *operator_socket;
    tw_schema *schema;
    tw_request_rules *rules;
    tw_pool *write_pool;              /* TW_WRITE handlers; NULL: on the queue threads */
    struct method_requests *requests; /* every worker's (struct worker) */
    tw_gate_fn *gate;
    void *gate_ctx;

    const tw_service **services;
    size_t nservices;
    struct method_entry *methods;
    size_t nmethods;

    grpc_server *server;
    struct worker *workers;
    int nworkers;
    grpc_completion_queue *shutdown_cq;
    bool started;
    atomic_bool shutting_down;
    tw_rpc_metrics *metrics; /* calls by method, code and latency (metrics.h) */

    /* Calls requested but not arrived, and calls arrived but not freed;
     * shutdown waits for both to reach zero, looking every
     * SHUTDOWN_POLL_MS. Atomics, so that calls on different threads share
     * no lock to count themselves. */
    atomic_int pending_requests;
    atomic_int live_calls;

    /* Streaming calls open, in all and per account (take_stream). */
    pthread_mutex_t streams_lock;
    int streams_open;
    struct user_streams *stream_users[STREAM_BUCKETS];
};

/* The events a call waits for; a tag names the call and the event. */
enum op_kind { OP_NEW, OP_CLOSE, OP_RECV, OP_SEND, OP_STATUS, OP__COUNT };

struct call_op {
    struct tw_call *call;
    enum op_kind kind;
};

struct send_item {
    struct send_item *next;
    grpc_byte_buffer *buffer;
    size_t bytes;
};

struct tw_call {
    tw_engine *engine;
    const struct method_entry *entry; /* NULL: a method nobody registered */
    struct worker *worker;
    struct call_op ops[OP__COUNT];

    /* Filled by gRPC when the call arrives. */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_byte_buffer *payload;     /* unary and server streaming */
    grpc_call_details details;     /* unregistered methods only */
    int close_cancelled;           /* from RECV_CLOSE_ON_SERVER */
    grpc_byte_buffer *recv_buffer; /* client and bidi streaming */

    /* Shared with other threads; guarded by lock. */
    pthread_mutex_t lock;
    int batches;  /* started and not completed (the request included), and holds */
    bool started; /* arrived: counted in live_calls */
    bool initial_md_sent;
    bool sending;           /* a SEND_MESSAGE is in flight */
    bool finished;          /* the handler's outcome is known */
    bool status_started;    /* the status batch was started, or skipped on a dead call */
    bool close_posted;      /* RECV_CLOSE_ON_SERVER is in a batch */
    bool close_with_status; /* ... and that batch is the status's */
    bool dead;              /* cancelled or failed: nothing more can be sent */
    bool cancelled;         /* the client cancelled or its deadline passed */
    bool cancel_notified;
    struct send_item *queue_head, *queue_tail;
    struct send_item *in_flight;
    size_t queued_bytes;
    void (*cancel_fn)(tw_call *call, void *ctx);
    void *cancel_ctx;
    void (*drain_fn)(tw_call *call, void *ctx);
    void *drain_ctx;

    /* The outcome, and what it takes to send it. */
    tw_err status;
    const char *error_message;
    const char *error_detail; /* log only */
    tw_violations violations; /* the request's bad fields, bounded */
    int64_t retry_after_ms;
    grpc_metadata initial_md[1];
    grpc_metadata trailing_md[1];
    grpc_byte_buffer *response_buffer;

    /* Owned by the call's thread. */
    tw_arena *arena;
    ProtobufCAllocator arena_allocator, heap_allocator;
    bool decode_out_of_memory; /* an allocator above failed */
    ProtobufCMessage *request;
    ProtobufCMessage *response;
    void *state;
    char request_id[REQUEST_ID_MAX + 1];
    bool has_user;
    tw_id user, session;
    char user_id[TW_ID_TEXT_SIZE]; /* user's text, for the log and the stream caps */
    const char *role;
    char *peer;        /* gpr_malloc'd; read on arrival, while the transport is there */
    bool holds_stream; /* counted in the engine's open streams */
    int stream_side;   /* its index in its account's user_streams.open; -1: not counted */
    int64_t start_ns;
    int64_t now_ms;               /* the wall clock at arrival: the call's one "now" */
    uint64_t bytes_in, bytes_out; /* message bytes, for metrics.h */
};

static void call_request(tw_engine *e, struct worker *w, const struct method_entry *entry);
static void replace_request(tw_engine *e, struct worker *w, const struct method_entry *entry);
static void call_release(tw_call *c);
static void start_status_locked(tw_call *c);
static void release_stream(tw_call *c);
static void start_send_locked(tw_call *c);

/* ---- small helpers ------------------------------------------------------ */

/* Decoding allocators, with the call as ctx: protobuf-c answers NULL both
 * for bytes it cannot parse and for an allocation that failed, and these
 * remember the latter so running out of memory is not blamed on the
 * client's request. Requests of unary and server-stream calls are decoded
 * into the call's arena; stream messages on the heap, freed one by one. */
static void *arena_alloc_cb(void *ctx, size_t size)
{
    tw_call *c = ctx;
    void *p = tw_arena_alloc(c->arena, size);
    c->decode_out_of_memory |= p == NULL;
    return p;
}
static void arena_free_cb(void *ctx, void *ptr)
{
    (void)ctx, (void)ptr;
}
static void *heap_alloc_cb(void *ctx, size_t size)
{
    tw_call *c = ctx;
    void *p = malloc(size ? size : 1);
    c->decode_out_of_memory |= p == NULL;
    return p;
}
static void heap_free_cb(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

/* A method's slot, as metrics.h and struct method_requests number them:
 * its place in the engine's table, or nmethods for unregistered methods
 * (answered UNIMPLEMENTED). */
static size_t method_slot(const tw_engine *e, const struct method_entry *entry)
{
    return entry ? (size_t)(entry - e->methods) : e->nmethods;
}

static size_t method_number(const tw_call *c)
{
    return method_slot(c->engine, c->entry);
}

static bool slice_equals(grpc_slice slice, const char *s)
{
    size_t len = strlen(s);
    return GRPC_SLICE_LENGTH(slice) == len && memcmp(GRPC_SLICE_START_PTR(slice), s, len) == 0;
}

/* Packs a message into a byte buffer gRPC can send; NULL when out of memory. */
static grpc_byte_buffer *pack_message(const ProtobufCMessage *message, size_t *bytes)
{
    size_t size = protobuf_c_message_get_packed_size(message);
    grpc_slice slice = grpc_slice_malloc(size);
    protobuf_c_message_pack(message, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    if (bytes != NULL)
        *bytes = size;
    return buffer;
}

/*
 * Decodes a received message into the call's arena (in_arena) or on the
 * heap (free it with the call's heap_allocator) and checks it against the
 * method's request rules (request_rules.h), on the bytes as they came:
 * every bad field goes to the call's violations. On failure *out is NULL
 * and the error says why.
 */
static tw_err read_message(tw_call *c, grpc_byte_buffer *buffer, bool in_arena,
                           ProtobufCMessage **out)
{
    ProtobufCAllocator *allocator = in_arena ? &c->arena_allocator : &c->heap_allocator;
    const ProtobufCMessageDescriptor *type = c->entry->descriptor->input;
    *out = NULL;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, buffer))
        return TW_ERR_NO_MEMORY;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    const uint8_t *bytes = GRPC_SLICE_START_PTR(all);
    size_t len = GRPC_SLICE_LENGTH(all);
    tw_err err = TW_OK;
    c->decode_out_of_memory = false;
    ProtobufCMessage *message = protobuf_c_message_unpack(type, allocator, len, bytes);
    if (message == NULL && c->decode_out_of_memory) {
        err = TW_ERR_NO_MEMORY;
    } else if (message == NULL) {
        err = tw_call_error(c, TW_ERR_MALFORMED_REQUEST, "request is not a valid %s", type->name);
    } else {
        size_t before = tw_violations_total(&c->violations);
        tw_request_check(c->entry->rules, bytes, len, c->now_ms, &c->violations);
        if (tw_violations_total(&c->violations) > before) {
            if (!in_arena)
                protobuf_c_message_free_unpacked(message, allocator);
            message = NULL;
            err = TW_ERR_VALIDATION;
        }
    }
    grpc_slice_unref(all);
    *out = message;
    return err;
}

static bool request_id_is_sane(grpc_slice value)
{
    return tw_request_id_valid((const char *)GRPC_SLICE_START_PTR(value), GRPC_SLICE_LENGTH(value));
}

static void assign_request_id(tw_call *c)
{
    for (size_t i = 0; i < c->request_md.count; i++) {
        const grpc_metadata *md = &c->request_md.metadata[i];
        if (slice_equals(md->key, "x-request-id") && request_id_is_sane(md->value)) {
            memcpy(c->request_id, GRPC_SLICE_START_PTR(md->value), GRPC_SLICE_LENGTH(md->value));
            c->request_id[GRPC_SLICE_LENGTH(md->value)] = '\0';
            return;
        }
    }
    _Static_assert(sizeof c->request_id >= TW_ID_TEXT_SIZE, "a request id holds an id's text");
    tw_id id = tw_id_new();
    tw_id_format(&id, c->request_id);
}

static int64_t call_left_ms(const tw_call *c)
{
    if (gpr_time_cmp(c->deadline, gpr_inf_future(c->deadline.clock_type)) == 0)
        return INT64_MAX;
    gpr_timespec now = gpr_now(c->deadline.clock_type);
    gpr_timespec left = gpr_time_sub(c->deadline, now);
    return gpr_time_to_millis(left);
}

/* Starts a batch counted against the call; the lock must be held. */
static bool start_batch_locked(tw_call *c, const grpc_op *ops, size_t n, enum op_kind kind)
{
    c->batches++;
    grpc_call_error rc = grpc_call_start_batch(c->call, ops, n, &c->ops[kind], NULL);
    if (rc != GRPC_CALL_OK) {
        c->batches--;
        c->dead = true;
        tw_logf(TW_LOG_ERROR, "grpc_call_start_batch failed: %d", (int)rc);
        return false;
    }
    return true;
}

/* The op that reports the client's cancel; the lock must be held. */
static void add_close(tw_call *c, grpc_op *op)
{
    op->op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op->data.recv_close_on_server.cancelled = &c->close_cancelled;
    c->close_posted = true;
}

/* Drops every queued message; the lock must be held. */
static void drop_queue_locked(tw_call *c)
{
    struct send_item *item = c->queue_head;
    while (item != NULL) {
        struct send_item *next = item->next;
        grpc_byte_buffer_destroy(item->buffer);
        free(item);
        item = next;
    }
    c->queue_head = c->queue_tail = NULL;
    c->queued_bytes = 0;
}

/* Releases a batch; frees the call when it was the last one and the
 * outcome has gone out. */
static void batch_done(tw_call *c)
{
    pthread_mutex_lock(&c->lock);
    c->batches--;
    bool release = c->batches == 0 && (!c->started || c->status_started);
    pthread_mutex_unlock(&c->lock);
    if (release)
        call_release(c);
}

/* ---- sending the outcome -------------------------------------------------- */

static void add_initial_metadata(tw_call *c, grpc_op *op)
{
    c->initial_md[0].key = grpc_slice_from_static_string("x-request-id");
    c->initial_md[0].value = grpc_slice_from_static_string(c->request_id);
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    op->data.send_initial_metadata.count = 1;
    op->data.send_initial_metadata.metadata = c->initial_md;
    c->initial_md_sent = true;
}

static bool sends_response_message(const tw_call *c)
{
    if (c->status != TW_OK || c->entry == NULL || c->response == NULL)
        return false;
    tw_call_kind kind = c->entry->method->kind;
    return kind == TW_UNARY || kind == TW_CLIENT_STREAM;
}

static void start_status_locked(tw_call *c)
{
    c->status_started = true;
    /* The stream's slot is free once its status is on the way: the client
     * may have it, and open its next stream, before this batch completes
     * and the call is released (a phone's uploads one after another would
     * otherwise meet a cap they are within). */
    if (c->holds_stream) {
        release_stream(c);
        c->holds_stream = false;
    }
    if (c->dead)
        return;

    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!c->initial_md_sent)
        add_initial_metadata(c, &ops[n++]);
    if (!c->close_posted) {
        add_close(c, &ops[n++]);
        c->close_with_status = true;
    }

    if (sends_response_message(c)) {
        size_t bytes;
        c->response_buffer = pack_message(c->response, &bytes);
        c->bytes_out += bytes;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->response_buffer;
    }

    grpc_op *status = &ops[n++];
    status->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    status->data.send_status_from_server.status = (grpc_status_code)tw_err_grpc_status(c->status);
    const tw_violation *first = c->violations.head;
    if (c->error_message == NULL && first != NULL && c->status != TW_OK)
        c->error_message = tw_arena_printf(c->arena, "%s: %s", first->field, first->description);
    const char *message = c->error_message ? c->error_message : tw_err_message(c->status);
    /* Core copies status_details, so a slice over our string is enough. */
    grpc_slice details = grpc_slice_from_static_string(message);
    status->data.send_status_from_server.status_details = &details;
    if (c->status != TW_OK && c->arena != NULL) {
        tw_error_report report = {
            .err = c->status,
            .message = message,
            .request_id = c->request_id,
            .violations = &c->violations,
            .retry_after_ms = c->retry_after_ms,
        };
        uint8_t *packed;
        size_t len;
        if (tw_error_details_pack(c->arena, &report, &packed, &len) == TW_OK) {
            c->trailing_md[0].key = grpc_slice_from_static_string("grpc-status-details-bin");
            c->trailing_md[0].value = grpc_slice_from_static_buffer(packed, len);
            status->data.send_status_from_server.trailing_metadata = c->trailing_md;
            status->data.send_status_from_server.trailing_metadata_count = 1;
        }
    }
    start_batch_locked(c, ops, n, OP_STATUS);
}

void tw_call_finish(tw_call *c, tw_err err)
{
    pthread_mutex_lock(&c->lock);
    if (c->finished) {
        pthread_mutex_unlock(&c->lock);
        tw_logf(TW_LOG_ERROR, "call %s finished twice", c->request_id);
        return;
    }
    c->finished = true;
    c->status = err;
    if (!c->sending)
        start_status_locked(c);
    bool release = c->batches == 0 && c->status_started;
    pthread_mutex_unlock(&c->lock);
    if (release)
        call_release(c);
}

/* ---- server streams ------------------------------------------------------- */

static void start_send_locked(tw_call *c)
{
    struct send_item *item = c->queue_head;
    c->queue_head = item->next;
    if (c->queue_head == NULL)
        c->queue_tail = NULL;
    c->queued_bytes -= item->bytes;
    c->in_flight = item;
    c->sending = true;

    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!c->initial_md_sent)
        add_initial_metadata(c, &ops[n++]);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = item->buffer;
    if (!start_batch_locked(c, ops, n, OP_SEND)) {
        c->sending = false;
        c->in_flight = NULL;
        grpc_byte_buffer_destroy(item->buffer);
        free(item);
        drop_queue_locked(c);
    }
}

tw_err tw_call_send(tw_call *c, const ProtobufCMessage *message)
{
    struct send_item *item = calloc(1, sizeof *item);
    if (item == NULL)
        return TW_ERR_NO_MEMORY;
    item->buffer = pack_message(message, &item->bytes);

    pthread_mutex_lock(&c->lock);
    tw_err err = TW_OK;
    if (c->dead || c->finished)
        err = TW_ERR_CANCELLED;
    else if (c->queued_bytes + item->bytes > c->engine->cfg.max_stream_backlog)
        err = TW_ERR_SLOW_READER;
    if (err) {
        pthread_mutex_unlock(&c->lock);
        grpc_byte_buffer_destroy(item->buffer);
        free(item);
        return err;
    }
    if (c->queue_tail)
        c->queue_tail->next = item;
    else
        c->queue_head = item;
    c->queue_tail = item;
    c->queued_bytes += item->bytes;
    c->bytes_out += item->bytes;
    if (!c->sending)
        start_send_locked(c);
    pthread_mutex_unlock(&c->lock);
    return TW_OK;
}

static void on_send(tw_call *c, bool success)
{
    void (*drained)(tw_call *, void *) = NULL;
    void *drained_ctx = NULL;
    pthread_mutex_lock(&c->lock);
    struct send_item *sent = c->in_flight;
    c->in_flight = NULL;
    c->sending = false;
    if (!success) {
        c->dead = true;
        drop_queue_locked(c);
    }
    if (c->queue_head != NULL) {
        start_send_locked(c);
    } else if (c->finished && !c->status_started) {
        start_status_locked(c);
    } else if (c->drain_fn != NULL && !c->dead && !c->finished) {
        /* Both under the lock: once it is released, the handler may
         * register its next drain over them. */
        drained = c->drain_fn;
        drained_ctx = c->drain_ctx;
        c->drain_fn = NULL;
        c->drain_ctx = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (sent != NULL) {
        grpc_byte_buffer_destroy(sent->buffer);
        free(sent);
    }
    /* Before batch_done: this send still holds the call. */
    if (drained != NULL)
        drained(c, drained_ctx);
    batch_done(c);
}

void tw_call_on_drain(tw_call *c, void (*fn)(tw_call *call, void *ctx), void *ctx)
{
    pthread_mutex_lock(&c->lock);
    bool over = c->dead || c->finished;
    bool now = !over && !c->sending && c->queue_head == NULL;
    if (!over && !now) {
        c->drain_fn = fn;
        c->drain_ctx = ctx;
    }
    pthread_mutex_unlock(&c->lock);
    if (now)
        fn(c, ctx);
}

/* ---- cancellation ------------------------------------------------------------ */

/* Posts the call's close unless it is in flight or rides with the status
 * that has gone out; the lock must be held. */
static void listen_for_cancel_locked(tw_call *c)
{
    if (c->close_posted || c->status_started)
        return;
    grpc_op close;
    memset(&close, 0, sizeof close);
    add_close(c, &close);
    start_batch_locked(c, &close, 1, OP_CLOSE);
}

void tw_call_on_cancel(tw_call *c, void (*fn)(tw_call *call, void *ctx), void *ctx)
{
    pthread_mutex_lock(&c->lock);
    bool now = c->dead && !c->cancel_notified;
    if (now)
        c->cancel_notified = true;
    else {
        c->cancel_fn = fn;
        c->cancel_ctx = ctx;
        listen_for_cancel_locked(c);
    }
    pthread_mutex_unlock(&c->lock);
    if (now)
        fn(c, ctx);
}

/* Marks the call dead and tells a waiting handler, outside the lock. */
static void call_cancelled(tw_call *c)
{
    pthread_mutex_lock(&c->lock);
    c->dead = true;
    c->cancelled = true;
    drop_queue_locked(c);
    void (*fn)(tw_call *, void *) = NULL;
    void *ctx = NULL;
    if (c->cancel_fn != NULL && !c->cancel_notified) {
        c->cancel_notified = true;
        fn = c->cancel_fn;
        ctx = c->cancel_ctx;
    }
    pthread_mutex_unlock(&c->lock);
    if (fn != NULL)
        fn(c, ctx);
}

static void on_close(tw_call *c, bool success)
{
    if (!success || c->close_cancelled)
        call_cancelled(c);
    batch_done(c);
}

/* ---- arrival, admission, handlers --------------------------------------- */

/* The outcome of a handler: finish now, or leave it to the handler. */
static void handler_returned(tw_call *c, tw_err err)
{
    if (err != TW_DEFERRED)
        tw_call_finish(c, err);
}

/* ---- stream caps ---------------------------------------------------------- */

static unsigned user_bucket(const char *user)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *user; user++)
        h = (h ^ (unsigned char)*user) * 16777619u;
    return h % STREAM_BUCKETS;
}

/* The account's entry (made when absent and make is set); lock held. */
static struct user_streams **user_streams_slot(tw_engine *e, const char *user)
{
    struct user_streams **slot = &e->stream_users[user_bucket(user)];
    while (*slot != NULL && strcmp((*slot)->user, user) != 0)
        slot = &(*slot)->next;
    return slot;
}

static const char *const stream_side_names[2] = {"uploads", "streams (watches, downloads)"};

/*
 * Counts a streaming call against the server's cap and its account's, or
 * refuses it at once: each open stream may hold a file, a decoder or a
 * watch, and one account must not take the server's share of them.
 */
static tw_err take_stream(tw_call *c)
{
    tw_call_kind kind = c->entry->method->kind;
    if (kind == TW_UNARY)
        return TW_OK;
    tw_engine *e = c->engine;
    int side = kind == TW_SERVER_STREAM;
    int cap = side ? e->cfg.max_server_streams_per_user : e->cfg.max_client_streams_per_user;
    tw_err err = TW_OK;
    int open = 0;
    pthread_mutex_lock(&e->streams_lock);
    struct user_streams **slot = NULL;
    if (e->streams_open >= e->cfg.max_streams) {
        err = TW_ERR_SERVER_STREAMS_FULL;
    } else if (c->has_user && cap > 0) {
        slot = user_streams_slot(e, c->user_id);
        if (*slot == NULL && (*slot = calloc(1, sizeof **slot)) != NULL &&
            ((*slot)->user = strdup(c->user_id)) == NULL) {
            free(*slot);
            *slot = NULL;
        }
        if (*slot == NULL)
            err = TW_ERR_NO_MEMORY;
        else if ((open = (*slot)->open[side]) >= cap)
            err = TW_ERR_USER_STREAMS_FULL;
    }
    if (err == TW_OK) {
        e->streams_open++;
        if (slot != NULL)
            (*slot)->open[side]++;
        c->holds_stream = true;
        c->stream_side = slot != NULL ? side : -1;
    }
    pthread_mutex_unlock(&e->streams_lock);
    if (err == TW_ERR_SERVER_STREAMS_FULL) {
        tw_call_retry_after(c, 1000);
        return tw_call_error(c, err,
                             "the server has %d streams open, the most it serves at once; "
                             "retry later",
                             e->cfg.max_streams);
    }
    if (err == TW_ERR_USER_STREAMS_FULL)
        return tw_call_error(c, err,
                             "this account has %d %s open, the most it may at once: "
                             "finish or cancel one first",
                             open, stream_side_names[side]);
    return err;
}

static void release_stream(tw_call *c)
{
    tw_engine *e = c->engine;
    pthread_mutex_lock(&e->streams_lock);
    e->streams_open--;
    if (c->stream_side >= 0) {
        struct user_streams **slot = user_streams_slot(e, c->user_id);
        struct user_streams *u = *slot;
        if (--u->open[c->stream_side] == 0 && u->open[!c->stream_side] == 0) {
            *slot = u->next;
            free(u->user);
            free(u);
        }
    }
    pthread_mutex_unlock(&e->streams_lock);
}

/* ---- admission ------------------------------------------------------------ */

static tw_err admit(tw_call *c)
{
    if (call_left_ms(c) <= 0)
        return TW_ERR_DEADLINE;
    const tw_method *m = c->entry->method;
    if (m->flags & TW_INFRA)
        return TW_OK;
    if (c->engine->gate != NULL)
        return c->engine->gate(c->engine->gate_ctx, c, m);
    return (m->flags & TW_PUBLIC) ? TW_OK : TW_ERR_AUTH_MISSING_TOKEN;
}

/* Starts reading the call's next message; the lock must be held. */
static bool start_recv_locked(tw_call *c)
{
    grpc_op op = {.op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &c->recv_buffer};
    return start_batch_locked(c, &op, 1, OP_RECV);
}

static void start_recv(tw_call *c)
{
    pthread_mutex_lock(&c->lock);
    start_recv_locked(c);
    pthread_mutex_unlock(&c->lock);
}

void tw_call_hold(tw_call *c)
{
    pthread_mutex_lock(&c->lock);
    c->batches++; /* a hold keeps the call as a batch in flight does */
    pthread_mutex_unlock(&c->lock);
}

void tw_call_unhold(tw_call *c)
{
    batch_done(c);
}

void tw_call_read_next(tw_call *c)
{
    pthread_mutex_lock(&c->lock);
    bool finished = c->finished;
    bool reading = !finished && start_recv_locked(c);
    pthread_mutex_unlock(&c->lock);
    /* A read that cannot start will never complete: end the call here. */
    if (!finished && !reading)
        tw_call_finish(c, TW_ERR_CANCELLED);
}

static ProtobufCMessage *new_message(tw_call *c, const ProtobufCMessageDescriptor *type)
{
    ProtobufCMessage *m = tw_arena_alloc(c->arena, type->sizeof_message);
    if (m != NULL)
        type->message_init(m);
    return m;
}

/* A TW_WRITE handler, on the write pool. */
static void run_write_handler(void *arg)
{
    tw_call *c = arg;
    handler_returned(c, c->entry->method->handle(c, c->request, c->response));
}

/* Runs the method's first handler; streams of client messages go on in on_recv. */
static tw_err dispatch(tw_call *c)
{
    const tw_method *m = c->entry->method;
    const ProtobufCMethodDescriptor *d = c->entry->descriptor;
    c->response = new_message(c, d->output);
    if (c->response == NULL)
        return TW_ERR_NO_MEMORY;
    if (m->state_size > 0 && (c->state = tw_arena_alloc(c->arena, m->state_size)) == NULL)
        return TW_ERR_NO_MEMORY;

    if (m->kind == TW_CLIENT_STREAM || m->kind == TW_BIDI_STREAM) {
        start_recv(c);
        return TW_DEFERRED;
    }
    if (c->payload == NULL)
        return tw_call_error(c, TW_ERR_MALFORMED_REQUEST, "request message is missing");
    tw_err err = read_message(c, c->payload, true, &c->request);
    if (err)
        return err;
    if ((m->flags & TW_WRITE) && c->engine->write_pool != NULL) {
        err = tw_pool_submit(c->engine->write_pool, run_write_handler, c);
        return err == TW_OK ? TW_DEFERRED
                            : tw_call_error(c, TW_ERR_BUSY,
                                            "too many writes are waiting; retry "
                                            "with backoff");
    }
    return m->handle(c, c->request, c->response);
}

/*
 * Between messages of a client or bidi stream the engine owns the call, so
 * when the stream breaks (client cancel, deadline, lost connection, a
 * message over the size limit) the engine ends it: it runs the handler's
 * cancel hook, if any, so the handler can clean up, then finishes the call.
 * A NULL message is the client's half-close only when gRPC says the read
 * did not fail; a cancelled upload must never reach on_end.
 */
static void on_recv(tw_call *c, bool success)
{
    grpc_byte_buffer *buffer = c->recv_buffer;
    c->recv_buffer = NULL;
    if (!success || (buffer == NULL && grpc_call_failed_before_recv_message(c->call))) {
        if (buffer != NULL)
            grpc_byte_buffer_destroy(buffer);
        call_cancelled(c);
        tw_call_finish(c, TW_ERR_CANCELLED);
        batch_done(c);
        return;
    }
    const tw_method *m = c->entry->method;
    tw_err err;
    if (buffer == NULL) {
        err = m->on_end(c, c->response);
    } else {
        c->bytes_in += grpc_byte_buffer_length(buffer);
        ProtobufCMessage *message;
        err = read_message(c, buffer, false, &message);
        grpc_byte_buffer_destroy(buffer);
        if (err == TW_OK) {
            err = m->on_message(c, message, c->response);
            protobuf_c_message_free_unpacked(message, &c->heap_allocator);
            if (err == TW_OK) {
                start_recv(c);
                err = TW_DEFERRED;
            }
        }
    }
    handler_returned(c, err);
    batch_done(c);
}

static void call_arrived(tw_call *c)
{
    tw_engine *e = c->engine;
    c->started = true;
    c->start_ns = tw_mono_ns();
    c->peer = grpc_call_get_peer(c->call);
    atomic_fetch_add(&e->live_calls, 1);
    tw_rpc_metrics_call_started(e->metrics, method_number(c));
    if (!atomic_load(&e->shutting_down))
        replace_request(e, c->worker, c->entry);

    assign_request_id(c);
    c->now_ms =
        c->engine->cfg.clock_ms ? c->engine->cfg.clock_ms(c->engine->cfg.clock_ctx) : tw_wall_ms();
    c->arena = tw_arena_new(4096);
    if (c->arena == NULL) {
        tw_call_finish(c, TW_ERR_NO_MEMORY);
        return;
    }
    tw_violations_init(&c->violations, c->arena, TW_CALL_VIOLATIONS_MAX,
                       TW_CALL_VIOLATIONS_MAX_BYTES);
    c->arena_allocator = (ProtobufCAllocator){arena_alloc_cb, arena_free_cb, c};
    c->heap_allocator = (ProtobufCAllocator){heap_alloc_cb, heap_free_cb, c};

    if (c->entry == NULL) {
        c->deadline = c->details.deadline;
        tw_call_finish(c, tw_call_error(c, TW_ERR_UNIMPLEMENTED, "unknown method %.*s",
                                        (int)GRPC_SLICE_LENGTH(c->details.method),
                                        (const char *)GRPC_SLICE_START_PTR(c->details.method)));
        return;
    }
    tw_err err = admit(c);
    if (err == TW_OK)
        err = take_stream(c);
    if (err == TW_OK)
        err = dispatch(c);
    if (err == TW_DEFERRED && c->entry->method->kind != TW_UNARY) {
        /* The arrival's batch still holds the call: its handler cannot
         * have freed it. */
        pthread_mutex_lock(&c->lock);
        listen_for_cancel_locked(c);
        pthread_mutex_unlock(&c->lock);
    }
    handler_returned(c, err);
}

static void on_new(tw_call *c, bool success)
{
    atomic_fetch_sub(&c->engine->pending_requests, 1);
    c->worker->requests[method_number(c)].waiting--;
    if (success)
        call_arrived(c);
    batch_done(c);
}

static void on_status(tw_call *c, bool success)
{
    /* A failed status means the client went away; only a close riding in
     * this batch has a cancel to report. */
    if (c->close_with_status && (!success || c->close_cancelled))
        call_cancelled(c);
    batch_done(c);
}

/* What each completion means, by the kind of operation in its tag. */
static void (*const op_handlers[OP__COUNT])(tw_call *c, bool success) = {
    [OP_NEW] = on_new,   [OP_CLOSE] = on_close,   [OP_RECV] = on_recv,
    [OP_SEND] = on_send, [OP_STATUS] = on_status,
};

/* ---- requesting and releasing calls ---------------------------------------- */

static void call_request(tw_engine *e, struct worker *w, const struct method_entry *entry)
{
    tw_call *c = calloc(1, sizeof *c);
    if (c == NULL) {
        tw_logf(TW_LOG_ERROR, "out of memory requesting a call; trying again later");
        atomic_fetch_add(&w->requests[method_slot(e, entry)].owed, 1);
        atomic_fetch_add(&w->owed_total, 1);
        return;
    }
    c->engine = e;
    c->entry = entry;
    c->worker = w;
    c->retry_after_ms = -1;
    for (int k = 0; k < OP__COUNT; k++)
        c->ops[k] = (struct call_op){c, (enum op_kind)k};
    pthread_mutex_init(&c->lock, NULL);
    grpc_metadata_array_init(&c->request_md);
    c->batches = 1; /* the request itself */
    atomic_fetch_add(&e->pending_requests, 1);

    grpc_call_error rc;
    if (entry == NULL) {
        grpc_call_details_init(&c->details);
        rc = grpc_server_request_call(e->server, &c->call, &c->details, &c->request_md, w->cq,
                                      w->cq, &c->ops[OP_NEW]);
    } else {
        bool has_payload =
            entry->method->kind == TW_UNARY || entry->method->kind == TW_SERVER_STREAM;
        rc = grpc_server_request_registered_call(e->server, entry->handle, &c->call, &c->deadline,
                                                 &c->request_md, has_payload ? &c->payload : NULL,
                                                 w->cq, w->cq, &c->ops[OP_NEW]);
    }
    if (rc != GRPC_CALL_OK) {
        tw_logf(TW_LOG_ERROR, "requesting a call failed: %d", (int)rc);
        atomic_fetch_sub(&e->pending_requests, 1);
        call_release(c);
        return;
    }
    w->requests[method_slot(e, entry)].waiting++;
}

/*
 * Requests the calls that follow one that arrived on w. Each method starts
 * with one call requested per worker. An arrival that took its worker's
 * last one shows the method is busy, so it is replaced twice, up to
 * requests_per_method waiting; a call that finds none waiting is queued by
 * gRPC until the next request, not refused. Idle methods stay at one
 * because Debian's libgrpc (built with its debug checks) searches a list of
 * every operation outstanding on a queue at each completion: ~120
 * methods with eight calls each made that search 8 % of a GetTask's
 * instructions.
 */
static void replace_request(tw_engine *e, struct worker *w, const struct method_entry *entry)
{
    struct method_requests *r = &w->requests[method_slot(e, entry)];
    bool took_last = r->waiting == 0;
    call_request(e, w, entry);
    if (took_last && r->waiting < e->cfg.requests_per_method)
        call_request(e, w, entry);
}

/* The outcome the client saw: a cancelled call never delivered the
 * handler's status. */
static tw_err outcome_seen(tw_call *c)
{
    if (c->cancelled)
        return call_left_ms(c) <= DEADLINE_SLACK_MS ? TW_ERR_DEADLINE : TW_ERR_CANCELLED;
    return c->status;
}

/* Counts the ended call for metrics.h: its outcome, time and bytes. */
static void count_call(tw_call *c, tw_err err)
{
    uint64_t in = c->bytes_in;
    if (c->payload != NULL)
        in += grpc_byte_buffer_length(c->payload);
    tw_rpc_metrics_call_ended(c->engine->metrics, method_number(c), tw_err_grpc_status(err),
                              tw_mono_ns() - c->start_ns, in, c->bytes_out);
}

/* Every call ends here, with the outcome the client saw: call_log.c
 * decides whether it gets a line. */
static void log_call(tw_call *c, tw_err err)
{
    char unknown[256];
    if (c->entry == NULL)
        snprintf(unknown, sizeof unknown, "%.*s", (int)GRPC_SLICE_LENGTH(c->details.method),
                 (const char *)GRPC_SLICE_START_PTR(c->details.method));
    tw_call_log(&(tw_call_log_entry){
        .method = c->entry ? c->entry->path : unknown,
        .method_index = c->entry ? (size_t)(c->entry - c->engine->methods) + 1 : 0,
        .unary = c->entry == NULL || c->entry->method->kind == TW_UNARY,
        .err = err,
        .duration_ns = tw_mono_ns() - c->start_ns,
        .peer = c->peer,
        .request_id = c->request_id,
        .user_id = c->has_user ? c->user_id : NULL,
        .error_message = c->error_message,
        .error_detail = c->error_detail,
    });
}

static void call_release(tw_call *c)
{
    tw_engine *e = c->engine;
    bool was_live = c->started;
    if (was_live) {
        tw_err seen = outcome_seen(c);
        log_call(c, seen);
        count_call(c, seen);
    }
    if (c->holds_stream)
        release_stream(c);
    pthread_mutex_lock(&c->lock);
    drop_queue_locked(c);
    pthread_mutex_unlock(&c->lock);
    if (c->response_buffer)
        grpc_byte_buffer_destroy(c->response_buffer);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->entry == NULL)
        grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->request_md);
    if (c->call)
        grpc_call_unref(c->call);
    gpr_free(c->peer);
    if (c->state != NULL && c->entry->method->state_free != NULL)
        c->entry->method->state_free(c->state);
    tw_arena_free(c->arena);
    pthread_mutex_destroy(&c->lock);
    free(c);
    if (was_live)
        atomic_fetch_sub(&e->live_calls, 1);
}

/* ---- the call API for handlers ---------------------------------------------- */

tw_arena *tw_call_arena(tw_call *c)
{
    return c->arena;
}

const char *tw_call_peer(tw_call *c)
{
    return c->peer ? c->peer : "";
}

bool tw_call_from_operator_socket(tw_call *c)
{
    return c->peer != NULL && strncmp(c->peer, "unix:", 5) == 0;
}
void *tw_call_state(tw_call *c)
{
    return c->state;
}
void *tw_call_service_ctx(tw_call *c)
{
    return c->entry ? c->entry->service->ctx : NULL;
}
const char *tw_call_request_id(tw_call *c)
{
    return c->request_id;
}
const tw_id *tw_call_caller(tw_call *c)
{
    return c->has_user ? &c->user : NULL;
}
const tw_id *tw_call_session(tw_call *c)
{
    return c->has_user ? &c->session : NULL;
}
tw_err tw_call_user(tw_call *c, tw_id *user)
{
    if (!c->has_user)
        return tw_call_error(c, TW_ERR_AUTH_MISSING_TOKEN,
                             "this call acts for a signed-in user: send their access token");
    *user = c->user;
    return TW_OK;
}
const char *tw_call_role(tw_call *c)
{
    return c->role;
}
int64_t tw_call_time_left_ms(tw_call *c)
{
    return call_left_ms(c);
}

void tw_call_set_caller(tw_call *c, const tw_id *user, const tw_id *session, const char *role)
{
    c->has_user = user != NULL;
    if (user != NULL) {
        c->user = *user;
        c->session = session ? *session : (tw_id){0};
        tw_id_format(user, c->user_id);
    }
    c->role = role; /* a static string: the gate's roles */
}

const tw_method *tw_call_method(tw_call *c)
{
    return c->entry->method;
}

const char *tw_call_path(tw_call *c)
{
    return c->entry->path;
}

const ProtobufCMessage *tw_call_request(tw_call *c)
{
    return c->request;
}

ProtobufCMessage *tw_call_response(tw_call *c)
{
    return c->response;
}

const char *tw_call_metadata(tw_call *c, const char *key)
{
    for (size_t i = 0; i < c->request_md.count; i++) {
        const grpc_metadata *md = &c->request_md.metadata[i];
        if (slice_equals(md->key, key))
            return tw_arena_strndup(c->arena, (const char *)GRPC_SLICE_START_PTR(md->value),
                                    GRPC_SLICE_LENGTH(md->value));
    }
    return NULL;
}

static char *vformat(tw_arena *arena, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    return arena ? tw_arena_strdup(arena, buf) : NULL;
}

tw_err tw_call_error(tw_call *c, tw_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->error_message = vformat(c->arena, fmt, ap);
    va_end(ap);
    return err;
}

void tw_call_log_detail(tw_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->error_detail = vformat(c->arena, fmt, ap);
    va_end(ap);
}

tw_err tw_call_field_violation(tw_call *c, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tw_violations_addv(&c->violations, field, fmt, ap);
    va_end(ap);
    return TW_ERR_VALIDATION;
}

tw_violations *tw_call_violations(tw_call *c)
{
    return &c->violations;
}

int64_t tw_call_now_ms(tw_call *c)
{
    return c->now_ms;
}

void tw_call_retry_after(tw_call *c, int64_t delay_ms)
{
    c->retry_after_ms = delay_ms;
}

/* ---- the engine ------------------------------------------------------------- */

static const char *service_name(const tw_service *s)
{
    return s->name ? s->name : s->descriptor->name;
}

/* Makes the requests w owes (call_request), unless shutting down. */
static void request_owed(struct worker *w)
{
    tw_engine *e = w->engine;
    if (atomic_load(&w->owed_total) == 0 || atomic_load(&e->shutting_down))
        return;
    for (size_t i = 0; i <= e->nmethods; i++) {
        int n = atomic_exchange(&w->requests[i].owed, 0);
        atomic_fetch_sub(&w->owed_total, n);
        for (int k = 0; k < n; k++)
            call_request(e, w, i < e->nmethods ? &e->methods[i] : NULL);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        gpr_timespec until = gpr_inf_future(GPR_CLOCK_MONOTONIC);
        if (atomic_load(&w->owed_total) > 0)
            until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                 gpr_time_from_millis(OWED_RETRY_MS, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(w->cq, until, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            struct call_op *op = ev.tag;
            op_handlers[op->kind](op->call, ev.success != 0);
        }
        request_owed(w);
    }
    return NULL;
}

/* gRPC's own log lines join ours as JSON. */
static void grpc_log_to_json(gpr_log_func_args *args)
{
    static const tw_log_level levels[] = {
        [GPR_LOG_SEVERITY_DEBUG] = TW_LOG_DEBUG,
        [GPR_LOG_SEVERITY_INFO] = TW_LOG_INFO,
        [GPR_LOG_SEVERITY_ERROR] = TW_LOG_ERROR,
    };
    tw_log(levels[args->severity], args->message,
           json_pack("{s:s, s:s, s:i}", "source", "grpc", "file", args->file, "line", args->line));
}

tw_err tw_engine_new(const tw_engine_config *cfg, tw_engine **out)
{
    *out = NULL;
    tw_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return TW_ERR_NO_MEMORY;
    e->cfg = *cfg;
    e->listen = strdup(cfg->listen);
    e->cfg.listen = e->listen;
    if (cfg->operator_socket != NULL) {
        e->operator_socket = strdup(cfg->operator_socket);
        e->cfg.operator_socket = e->operator_socket;
    }
    pthread_mutex_init(&e->streams_lock, NULL);
    if (e->cfg.max_streams <= 0) {
        struct rlimit files;
        rlim_t share = getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY
                           ? files.rlim_cur / STREAMS_PER_OPEN_FILES
                           : STREAMS_DEFAULT_MAX;
        e->cfg.max_streams = share < STREAMS_DEFAULT_MAX ? (int)share : STREAMS_DEFAULT_MAX;
    }
    if (e->cfg.descriptor_set == NULL) {
        e->cfg.descriptor_set = tw_descriptor_set;
        e->cfg.descriptor_set_size = tw_descriptor_set_size;
    }
    tw_err err = e->listen
                     ? tw_schema_load(e->cfg.descriptor_set, e->cfg.descriptor_set_size, &e->schema)
                     : TW_ERR_NO_MEMORY;
    if (err == TW_OK)
        err = tw_request_rules_new(e->schema, &e->rules);
    if (err == TW_OK && e->cfg.write_threads > 0)
        err = tw_pool_new("writes", e->cfg.write_threads,
                          e->cfg.write_queue ? e->cfg.write_queue : 1, &e->write_pool);
    if (err) {
        tw_request_rules_free(e->rules);
        tw_schema_free(e->schema);
        free(e->listen);
        free(e);
        return err;
    }
    gpr_set_log_function(grpc_log_to_json);
    tw_grpc_init();
    *out = e;
    return TW_OK;
}

static const char *kind_names[] = {
    [TW_UNARY] = "unary",
    [TW_CLIENT_STREAM] = "client streaming",
    [TW_SERVER_STREAM] = "server streaming",
    [TW_BIDI_STREAM] = "bidirectional streaming",
};

/* Checks one row against the .proto and its handler fields against its kind. */
static bool method_matches_proto(const tw_engine *e, const char *service, const tw_method *m,
                                 char *errbuf, size_t errlen)
{
    bool client, server;
    if (!tw_schema_method_streaming(e->schema, service, m->name, &client, &server)) {
        snprintf(errbuf, errlen, "%s/%s is in the method table but not in the .proto", service,
                 m->name);
        return false;
    }
    tw_call_kind proto_kind = client ? (server ? TW_BIDI_STREAM : TW_CLIENT_STREAM)
                                     : (server ? TW_SERVER_STREAM : TW_UNARY);
    if (proto_kind != m->kind) {
        snprintf(errbuf, errlen, "%s/%s is %s in the .proto but %s in its method table", service,
                 m->name, kind_names[proto_kind], kind_names[m->kind]);
        return false;
    }
    bool reads_stream = client;
    if (reads_stream ? (m->on_message == NULL || m->on_end == NULL) : (m->handle == NULL)) {
        snprintf(errbuf, errlen, "%s/%s has no handler for a %s method", service, m->name,
                 kind_names[m->kind]);
        return false;
    }
    return true;
}

tw_err tw_engine_add_service(tw_engine *e, const tw_service *svc, char *errbuf, size_t errlen)
{
    const ProtobufCServiceDescriptor *d = svc->descriptor;
    const char *name = service_name(svc);
    size_t nrows = 0;
    for (const tw_method *m = svc->methods; m->name != NULL; m++, nrows++) {
        if (!method_matches_proto(e, name, m, errbuf, errlen))
            return TW_ERR_INTERNAL;
        if (protobuf_c_service_descriptor_get_method_by_name(d, m->name) == NULL) {
            snprintf(errbuf, errlen, "%s/%s is not in the generated descriptor", name, m->name);
            return TW_ERR_INTERNAL;
        }
    }
    if (nrows != d->n_methods) {
        for (unsigned i = 0; i < d->n_methods; i++) {
            const tw_method *m = svc->methods;
            while (m->name != NULL && strcmp(m->name, d->methods[i].name) != 0)
                m++;
            if (m->name == NULL) {
                snprintf(errbuf, errlen, "%s/%s is in the .proto but has no row in the table", name,
                         d->methods[i].name);
                return TW_ERR_INTERNAL;
            }
        }
        snprintf(errbuf, errlen, "%s lists a method twice", name);
        return TW_ERR_INTERNAL;
    }

    const tw_service **services = realloc(e->services, (e->nservices + 1) * sizeof *services);
    struct method_entry *methods = realloc(e->methods, (e->nmethods + nrows) * sizeof *methods);
    if (services)
        e->services = services;
    if (methods)
        e->methods = methods;
    if (!services || !methods)
        return TW_ERR_NO_MEMORY;
    e->services[e->nservices++] = svc;
    for (const tw_method *m = svc->methods; m->name != NULL; m++) {
        struct method_entry *entry = &e->methods[e->nmethods];
        size_t len = strlen(name) + strlen(m->name) + 3;
        entry->path = malloc(len);
        if (entry->path == NULL)
            return TW_ERR_NO_MEMORY;
        snprintf(entry->path, len, "/%s/%s", name, m->name);
        entry->service = svc;
        entry->method = m;
        entry->descriptor = protobuf_c_service_descriptor_get_method_by_name(d, m->name);
        entry->handle = NULL;
        entry->rules = tw_request_rules_for(e->rules, entry->descriptor->input);
        if (entry->rules == NULL) {
            snprintf(errbuf, errlen, "%s: cannot read the request rules of %s", entry->path,
                     entry->descriptor->input->name);
            free(entry->path);
            return TW_ERR_INTERNAL;
        }
        e->nmethods++;
    }
    return TW_OK;
}

void tw_engine_set_gate(tw_engine *e, tw_gate_fn *gate, void *ctx)
{
    e->gate = gate;
    e->gate_ctx = ctx;
}

/*
 * Tries to bind the address ourselves first, as gRPC will (SO_REUSEADDR, no
 * SO_REUSEPORT), so that a taken or bad address is reported in one line with
 * the system's reason; gRPC's add_port would only log its own error chain.
 */
bool tw_engine_address_available(const char *listen, char *errbuf, size_t errlen)
{
    char host[256];
    const char *port;
    if (!tw_net_split_listen(listen, host, sizeof host, &port)) {
        snprintf(errbuf, errlen, "cannot listen on %s: expected host:port", listen);
        return false;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", listen, gai_strerror(rc));
        return false;
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0), one = 1;
    bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
              bind(fd, res->ai_addr, res->ai_addrlen) == 0;
    if (!ok)
        snprintf(errbuf, errlen, "cannot listen on %s: %s", listen, strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return ok;
}

/* The operator socket: plaintext gRPC on a Unix socket whose file only the
 * account running twd can open (gRPC replaces a stale file). */
static bool add_operator_socket(tw_engine *e, char *errbuf, size_t errlen)
{
    struct sockaddr_un sun;
    if (strlen(e->cfg.operator_socket) >= sizeof sun.sun_path) {
        snprintf(errbuf, errlen, "operator socket path is longer than %zu bytes: %s",
                 sizeof sun.sun_path - 1, e->cfg.operator_socket);
        return false;
    }
    char address[sizeof sun.sun_path + 8];
    snprintf(address, sizeof address, "unix:%s", e->cfg.operator_socket);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int ok = grpc_server_add_http2_port(e->server, address, creds);
    grpc_server_credentials_release(creds);
    if (!ok) {
        snprintf(errbuf, errlen, "cannot listen on operator socket %s", e->cfg.operator_socket);
        return false;
    }
    chmod(e->cfg.operator_socket, 0600);
    return true;
}

tw_err tw_engine_start(tw_engine *e, int *bound_port, char *errbuf, size_t errlen)
{
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)e->cfg.max_message_bytes},
        /* A second server on our port must fail, not share our connections. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
        /* Request headers up to 256 KiB reach the gate, which answers an
         * oversized token UNAUTHENTICATED (AUTH_001). Core 1.51 has this one
         * hard limit (no GRPC_ARG_ABSOLUTE_MAX_METADATA_SIZE yet); its 8 KiB
         * default refused such a call RESOURCE_EXHAUSTED before any check. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_METADATA_SIZE, .value.integer = 256 * 1024},
        /* How much of an upload may wait unread in core (engine.h). */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_BDP_PROBE,
         .value.integer = e->cfg.bdp_probe},
    };
    grpc_channel_args channel_args = {sizeof args / sizeof args[0], args};
    e->server = grpc_server_create(&channel_args, NULL);

    if (tw_rpc_metrics_new(e->nmethods, &e->metrics))
        return TW_ERR_NO_MEMORY;
    e->nworkers = e->cfg.workers > 0 ? e->cfg.workers : 1;
    e->workers = calloc((size_t)e->nworkers, sizeof *e->workers);
    if (e->workers == NULL)
        return TW_ERR_NO_MEMORY;
    size_t slots = e->nmethods + 1;
    e->requests = calloc((size_t)e->nworkers * slots, sizeof *e->requests);
    if (e->requests == NULL)
        return TW_ERR_NO_MEMORY;
    for (int i = 0; i < e->nworkers; i++) {
        e->workers[i].engine = e;
        e->workers[i].requests = e->requests + (size_t)i * slots;
        e->workers[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(e->server, e->workers[i].cq, NULL);
    }
    e->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);

    for (size_t i = 0; i < e->nmethods; i++) {
        struct method_entry *entry = &e->methods[i];
        tw_call_kind kind = entry->method->kind;
        bool has_payload = kind == TW_UNARY || kind == TW_SERVER_STREAM;
        entry->handle = grpc_server_register_method(
            e->server, entry->path, NULL,
            has_payload ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
        if (entry->handle == NULL) {
            snprintf(errbuf, errlen, "cannot register method %s", entry->path);
            return TW_ERR_INTERNAL;
        }
    }

    if (!tw_engine_address_available(e->cfg.listen, errbuf, errlen))
        return TW_ERR_INTERNAL;
    grpc_server_credentials *creds;
    if (e->cfg.tls_cert_pem != NULL) {
        grpc_ssl_pem_key_cert_pair pair = {e->cfg.tls_key_pem, e->cfg.tls_cert_pem};
        creds = grpc_ssl_server_credentials_create_ex(
            NULL, &pair, 1, GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, NULL);
    } else {
        creds = grpc_insecure_server_credentials_create();
    }
    if (creds == NULL) {
        snprintf(errbuf, errlen, "cannot use the TLS certificate and key");
        return TW_ERR_INTERNAL;
    }
    int port = grpc_server_add_http2_port(e->server, e->cfg.listen, creds);
    grpc_server_credentials_release(creds);
    if (port == 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: gRPC could not add the port", e->cfg.listen);
        return TW_ERR_INTERNAL;
    }
    *bound_port = port;
    if (e->cfg.operator_socket != NULL && !add_operator_socket(e, errbuf, errlen))
        return TW_ERR_INTERNAL;

    grpc_server_start(e->server);
    e->started = true;
    for (int i = 0; i < e->nworkers; i++) {
        struct worker *w = &e->workers[i];
        for (size_t m = 0; m <= e->nmethods; m++)
            call_request(e, w, m < e->nmethods ? &e->methods[m] : NULL);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(errbuf, errlen, "cannot start worker thread");
            return TW_ERR_INTERNAL;
        }
        w->running = true;
    }
    return TW_OK;
}

bool tw_engine_shutting_down(const tw_engine *e)
{
    return atomic_load(&e->shutting_down);
}

bool tw_engine_has_service(const tw_engine *e, const char *name)
{
    if (name[0] == '\0')
        return true;
    for (size_t i = 0; i < e->nservices; i++)
        if (strcmp(service_name(e->services[i]), name) == 0)
            return true;
    return false;
}

void tw_engine_each_service(const tw_engine *e, void (*fn)(void *ctx, const char *name), void *ctx)
{
    for (size_t i = 0; i < e->nservices; i++)
        fn(ctx, service_name(e->services[i]));
}

const tw_schema *tw_engine_schema(const tw_engine *e)
{
    return e->schema;
}

void tw_engine_each_method(const tw_engine *e,
                           void (*fn)(void *ctx, const char *path, const tw_method *method),
                           void *ctx)
{
    for (size_t i = 0; i < e->nmethods; i++)
        fn(ctx, e->methods[i].path, e->methods[i].method);
}

/* Waits until no call is live (and, when requests_too, no request is
 * pending), up to ms, looking every SHUTDOWN_POLL_MS. */
static bool wait_for_calls(tw_engine *e, int ms, bool requests_too)
{
    int64_t until_ns = tw_mono_ns() + (int64_t)ms * 1000000;
    for (;;) {
        bool done = atomic_load(&e->live_calls) == 0 &&
                    (!requests_too || atomic_load(&e->pending_requests) == 0);
        if (done || tw_mono_ns() >= until_ns)
            return done;
        struct timespec pause = {0, SHUTDOWN_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

void tw_engine_shutdown(tw_engine *e, int grace_ms)
{
    if (!e->started || atomic_exchange(&e->shutting_down, true))
        return;
    for (size_t i = 0; i < e->nservices; i++)
        if (e->services[i]->shutdown != NULL)
            e->services[i]->shutdown(e->services[i]->ctx);

    /* Refuse new calls (GOAWAY), let the ones in flight finish within the
     * grace period, then cancel what is left. Core's own notification also
     * waits for idle client connections to close, which may be never:
     * cancel_all_calls is what disconnects them, so it always runs. */
    static int shutdown_tag;
    grpc_server_shutdown_and_notify(e->server, e->shutdown_cq, &shutdown_tag);
    if (!wait_for_calls(e, grace_ms, false))
        tw_logf(TW_LOG_WARN, "shutdown: grace period of %d ms over, cancelling calls", grace_ms);
    grpc_server_cancel_all_calls(e->server);
    grpc_completion_queue_pluck(e->shutdown_cq, &shutdown_tag, gpr_inf_future(GPR_CLOCK_REALTIME),
                                NULL);
    if (!wait_for_calls(e, RELEASE_WAIT_MS, true))
        tw_logf(TW_LOG_ERROR, "shutdown: %d calls were never released",
                atomic_load(&e->live_calls));
}

void tw_engine_free(tw_engine *e)
{
    if (e == NULL)
        return;
    if (e->server != NULL) {
        if (e->started && !atomic_load(&e->shutting_down))
            tw_engine_shutdown(e, 0);
        grpc_server_destroy(e->server);
    }
    /* Every call has ended, so no write is waiting or running. */
    tw_pool_free(e->write_pool);
    for (int i = 0; i < e->nworkers; i++) {
        grpc_completion_queue_shutdown(e->workers[i].cq);
        if (e->workers[i].running)
            pthread_join(e->workers[i].thread, NULL);
        else /* never polled: drain here */
            while (
                grpc_completion_queue_next(e->workers[i].cq, gpr_inf_past(GPR_CLOCK_REALTIME), NULL)
                    .type != GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(e->workers[i].cq);
    }
    if (e->shutdown_cq != NULL) {
        grpc_completion_queue_shutdown(e->shutdown_cq);
        grpc_completion_queue_destroy(e->shutdown_cq);
    }
    for (size_t i = 0; i < e->nmethods; i++)
        free(e->methods[i].path);
    free(e->methods);
    free(e->services);
    free(e->workers);
    free(e->requests);
    tw_request_rules_free(e->rules);
    tw_schema_free(e->schema);
    tw_rpc_metrics_free(e->metrics);
    pthread_mutex_destroy(&e->streams_lock);
    free(e->listen);
    free(e->operator_socket);
    free(e);
    grpc_shutdown();
}

tw_rpc_metrics *tw_engine_metrics(const tw_engine *e)
{
    return e->metrics;
}

const char *tw_engine_grpc_version(void)
{
    return grpc_version_string();
}
