/*
 * tw-bare-server: the bare gRPC server twd's engine is judged against
 * (DESIGN.md section 5). It does the least a gRPC core server can do and
 * still answer correctly: /grpc.health.v1.Health/Check gets SERVING from a
 * constant, /tw.v1.VoiceService/UploadVoiceNote reads a client stream to its
 * end, dropping every message, and answers an empty response (the baseline
 * of voice uploads, bench/voice), every other method UNIMPLEMENTED. No
 * decoding, logging, arenas, storage or checks, so the gap between its
 * figures and twd's under the same load on the same machine is what twd
 * costs.
 *
 *   tw-bare-server [HOST:PORT]      (default $TW_LISTEN, else 127.0.0.1:50051)
 *
 * SIGTERM or SIGINT stops it (exit 0). bench/run starts it in place of twd
 * with TW_BENCH_SERVER_CMD. Same set-up and shutdown as NOTES.md describes.
 */
#include "tw_grpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* As many workers as the 2-core bench machines have cores. */
#define WORKER_COUNT 2
/* Requests kept waiting for calls, per route and worker queue. */
#define WAITING_PER_ROUTE 16
#define SHUTDOWN_GRACE_S  2
#define DEFAULT_LISTEN    "127.0.0.1:50051"

/* What the server answers. The last row, without a path, takes every
 * method not registered (a generic request), as a server must. */
struct route {
    const char *path;
    grpc_status_code status;
    const char *details;
    const char *reply; /* serialized response, or NULL for none */
    size_t reply_len;
    bool client_stream; /* read every message first, then answer */
    void *registered;   /* grpc_server_register_method's handle, set at start */
};

static struct route routes[] = {
    /* grpc.health.v1.HealthCheckResponse{status: SERVING} */
    {"/grpc.health.v1.Health/Check", GRPC_STATUS_OK, "", "\x08\x01", 2, false, NULL},
    /* An empty tw.v1.UploadVoiceNoteResponse after the whole stream. */
    {"/tw.v1.VoiceService/UploadVoiceNote", GRPC_STATUS_OK, "", "", 0, true, NULL},
    {NULL, GRPC_STATUS_UNIMPLEMENTED, "method not implemented by tw-bare-server", NULL, 0, false,
     NULL},
};
#define ROUTE_COUNT (sizeof routes / sizeof routes[0])

/* A completion queue tag: the call and which of its batches completed.
 * A client stream has two batches in flight, its reads and its close. */
struct call_tag {
    struct server_call *call;
    bool close;
};

/* One call from request to completion. */
struct server_call {
    struct route *route;
    grpc_completion_queue *cq;
    struct call_tag main, close_tag;
    bool arrived;    /* a call came for this request */
    bool answered;   /* answer() started its batch */
    bool main_busy;  /* the request, a read or the answer is in flight */
    bool close_busy; /* a client stream's RECV_CLOSE_ON_SERVER is in flight */
    grpc_call *call;
    grpc_call_details details; /* generic route only */
    gpr_timespec deadline;
    grpc_metadata_array request_metadata;
    grpc_byte_buffer *request;
    grpc_byte_buffer *reply;
    grpc_slice status_details;
    int cancelled;
};

static grpc_server *server;
static atomic_bool stopping;
/* States not yet freed: the server may be destroyed only at zero, since a
 * worker may still be asking it for a call until its state is freed. */
static atomic_int live_calls;

static bool wait_for_call(struct server_call *c)
{
    memset(&c->details, 0, sizeof c->details);
    grpc_metadata_array_init(&c->request_metadata);
    c->arrived = c->answered = c->close_busy = false;
    c->main_busy = true;
    c->request = NULL;
    c->reply = NULL;
    c->main = (struct call_tag){c, false};
    c->close_tag = (struct call_tag){c, true};
    /* A client stream's messages are read one by one: no payload here. */
    grpc_byte_buffer **payload = c->route->client_stream ? NULL : &c->request;
    grpc_call_error rc =
        c->route->registered
            ? grpc_server_request_registered_call(server, c->route->registered, &c->call,
                                                  &c->deadline, &c->request_metadata, payload,
                                                  c->cq, c->cq, &c->main)
            : grpc_server_request_call(server, &c->call, &c->details, &c->request_metadata, c->cq,
                                       c->cq, &c->main);
    if (rc != GRPC_CALL_OK) {
        fprintf(stderr, "tw-bare-server: cannot request a call: %s\n",
                grpc_call_error_to_string(rc));
        grpc_metadata_array_destroy(&c->request_metadata);
    }
    return rc == GRPC_CALL_OK;
}

static struct server_call *new_call(struct route *route, grpc_completion_queue *cq)
{
    struct server_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->route = route;
    c->cq = cq;
    atomic_fetch_add(&live_calls, 1);
    if (!wait_for_call(c)) {
        atomic_fetch_sub(&live_calls, 1);
        free(c);
        return NULL;
    }
    return c;
}

/* Releases what one request-answer round held, leaving c reusable. */
static void release_round(struct server_call *c)
{
    if (c->request)
        grpc_byte_buffer_destroy(c->request);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    grpc_metadata_array_destroy(&c->request_metadata);
    if (!c->route->registered)
        grpc_call_details_destroy(&c->details);
    if (c->answered)
        grpc_slice_unref(c->status_details);
    if (c->arrived)
        grpc_call_unref(c->call);
}

static void free_call(struct server_call *c)
{
    free(c);
    atomic_fetch_sub(&live_calls, 1);
}

/* One batch, as NOTES.md says: initial metadata with the status, or core
 * sends nothing. A client stream posted its close when it arrived. */
static bool answer(struct server_call *c)
{
    const struct route *route = c->route;
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (route->reply) {
        grpc_slice reply = grpc_slice_from_static_buffer(route->reply, route->reply_len);
        c->reply = grpc_raw_byte_buffer_create(&reply, 1);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->reply;
    }
    c->status_details = grpc_slice_from_static_string(route->details);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = route->status;
    ops[n++].data.send_status_from_server.status_details = &c->status_details;
    if (!route->client_stream) {
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    }
    c->answered = true;
    grpc_call_error rc = grpc_call_start_batch(c->call, ops, n, &c->main, NULL);
    if (rc != GRPC_CALL_OK)
        fprintf(stderr, "tw-bare-server: cannot answer: %s\n", grpc_call_error_to_string(rc));
    c->main_busy = rc == GRPC_CALL_OK;
    return c->main_busy;
}

/* A client stream: asks for its next message (into c->request). */
static bool read_next(struct server_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->request;
    c->main_busy = grpc_call_start_batch(c->call, &op, 1, &c->main, NULL) == GRPC_CALL_OK;
    return c->main_busy;
}

/* A client stream has arrived: its close (which tells of a cancel) and its
 * first read go in flight. */
static bool start_reading(struct server_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    c->close_busy = grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) == GRPC_CALL_OK;
    return c->close_busy && read_next(c);
}

/* A read of a client stream completed: a message (dropped, read on), the
 * end of the stream (answer) or a broken stream (nothing more). */
static void on_read(struct server_call *c, bool success)
{
    if (success && c->request != NULL) {
        grpc_byte_buffer_destroy(c->request);
        c->request = NULL;
        read_next(c);
    } else if (success) {
        answer(c);
    }
}

static void *worker_main(void *arg)
{
    grpc_completion_queue *cq = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
        struct call_tag *tag = ev.tag;
        struct server_call *c = tag->call;
        if (tag->close) {
            c->close_busy = false;
        } else if (!c->arrived) {
            /* A request that fails means the server is shutting down. */
            c->main_busy = false;
            c->arrived = ev.success;
            if (ev.success && c->route->client_stream)
                start_reading(c);
            else if (ev.success)
                answer(c);
        } else if (!c->answered) {
            c->main_busy = false;
            on_read(c, ev.success);
        } else {
            c->main_busy = false;
        }
        /* The round is over once nothing of the call is in flight. */
        if (c->main_busy || c->close_busy)
            continue;
        release_round(c);
        if (!(c->arrived && !atomic_load(&stopping) && wait_for_call(c)))
            free_call(c);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Stops accepting, gives calls in flight SHUTDOWN_GRACE_S, cancels the rest
 * and waits (bounded) until every call state is freed. */
static bool shut_down_server(void)
{
    atomic_store(&stopping, true);
    grpc_completion_queue *pluck = grpc_completion_queue_create_for_pluck(NULL);
    grpc_server_shutdown_and_notify(server, pluck, NULL);
    gpr_timespec grace = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                      gpr_time_from_seconds(SHUTDOWN_GRACE_S, GPR_TIMESPAN));
    if (grpc_completion_queue_pluck(pluck, NULL, grace, NULL).type == GRPC_QUEUE_TIMEOUT) {
        grpc_server_cancel_all_calls(server);
        grpc_completion_queue_pluck(pluck, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    }
    grpc_completion_queue_shutdown(pluck);
    grpc_completion_queue_pluck(pluck, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_completion_queue_destroy(pluck);
    for (int waited_ms = 0; atomic_load(&live_calls) > 0; waited_ms += 10) {
        if (waited_ms >= SHUTDOWN_GRACE_S * 1000) {
            fprintf(stderr, "tw-bare-server: %d calls still alive after shutdown\n",
                    atomic_load(&live_calls));
            return false;
        }
        sleep_ms(10);
    }
    grpc_server_destroy(server);
    return true;
}

int main(int argc, char **argv)
{
    const char *address = argc > 1              ? argv[1]
                          : getenv("TW_LISTEN") ? getenv("TW_LISTEN")
                                                : DEFAULT_LISTEN;
    if (argc > 2 || address[0] == '-') {
        fprintf(stderr, "usage: tw-bare-server [HOST:PORT]   (default $TW_LISTEN, else %s)\n",
                DEFAULT_LISTEN);
        return 2;
    }
    /* gRPC's threads inherit this mask, so the signals reach only sigwait. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    int rc = 1;
    grpc_completion_queue *queues[WORKER_COUNT] = {0};
    pthread_t workers[WORKER_COUNT];
    int started = 0;
    tw_grpc_init();
    /* With SO_REUSEPORT a taken port would be shared, not refused. */
    grpc_arg arg = {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0};
    grpc_channel_args args = {1, &arg};
    server = grpc_server_create(&args, NULL);
    for (size_t r = 0; r < ROUTE_COUNT; r++)
        if (routes[r].path)
            routes[r].registered = grpc_server_register_method(
                server, routes[r].path, NULL,
                routes[r].client_stream ? GRPC_SRM_PAYLOAD_NONE
                                        : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
                0);
    for (int w = 0; w < WORKER_COUNT; w++) {
        queues[w] = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(server, queues[w], NULL);
    }
    grpc_server_credentials *credentials = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(server, address, credentials);
    grpc_server_credentials_release(credentials);
    if (port == 0) {
        fprintf(stderr, "tw-bare-server: cannot listen on %s\n", address);
        grpc_server_destroy(server);
        goto out;
    }
    grpc_server_start(server);
    for (; started < WORKER_COUNT; started++)
        if (pthread_create(&workers[started], NULL, worker_main, queues[started]) != 0)
            break;
    /* Calls are requested only on the queues of workers that run. */
    for (int w = 0; w < started; w++)
        for (size_t r = 0; r < ROUTE_COUNT; r++)
            for (int i = 0; i < WAITING_PER_ROUTE; i++)
                new_call(&routes[r], queues[w]);
    if (started == WORKER_COUNT) {
        fprintf(stderr, "tw-bare-server: listening on %s\n", address);
        int signal_number;
        sigwait(&stop_signals, &signal_number);
        rc = 0;
    } else {
        fprintf(stderr, "tw-bare-server: cannot start worker threads\n");
    }
    if (!shut_down_server())
        return 1; /* calls still hold the server: leave it to the exit */
out:
    for (int w = 0; w < WORKER_COUNT; w++)
        if (queues[w])
            grpc_completion_queue_shutdown(queues[w]);
    for (int w = 0; w < started; w++)
        pthread_join(workers[w], NULL);
    for (int w = 0; w < WORKER_COUNT; w++)
        if (queues[w]) {
            /* Nothing was pending on a queue whose worker never started. */
            while (w >= started &&
                   grpc_completion_queue_next(queues[w], gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                           .type != GRPC_QUEUE_SHUTDOWN)
                ;
            grpc_completion_queue_destroy(queues[w]);
        }
    grpc_shutdown();
    return rc;
}
