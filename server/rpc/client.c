/* Blocking unary and server-streaming calls for client.h, on a pluck
 * completion queue. */
#include "client.h"

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "tw_grpc.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *arena_alloc_cb(void *ctx, size_t size)
{
    return tw_arena_alloc(ctx, size);
}

static void arena_free_cb(void *ctx, void *ptr)
{
    (void)ctx, (void)ptr;
}

/* The error named by the ErrorInfo in a grpc-status-details-bin value. */
static tw_err error_from_details(grpc_slice value)
{
    tw_err err = TW_ERR_UPSTREAM;
    Google__Rpc__Status *status =
        google__rpc__status__unpack(NULL, GRPC_SLICE_LENGTH(value), GRPC_SLICE_START_PTR(value));
    for (size_t i = 0; status != NULL && i < status->n_details; i++) {
        if (strcmp(status->details[i]->type_url, "type.googleapis.com/google.rpc.ErrorInfo"))
            continue;
        Google__Rpc__ErrorInfo *info = google__rpc__error_info__unpack(
            NULL, status->details[i]->value.len, status->details[i]->value.data);
        if (info != NULL && tw_err_from_reason(info->reason) != TW_ERR__COUNT)
            err = tw_err_from_reason(info->reason);
        google__rpc__error_info__free_unpacked(info, NULL);
    }
    google__rpc__status__free_unpacked(status, NULL);
    return err;
}

/* One call in progress: its channel, queue and what comes back. */
struct client_call {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata auth;
    char *auth_value;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
};

static void call_open(struct client_call *c, const tw_rpc_target *target, const char *method,
                      int timeout_ms)
{
    memset(c, 0, sizeof *c);
    tw_grpc_init();
    grpc_channel_credentials *creds =
        target->tls_roots_pem ? grpc_ssl_credentials_create(target->tls_roots_pem, NULL, NULL, NULL)
                              : grpc_insecure_credentials_create();
    c->channel = grpc_channel_create(target->address, creds, NULL);
    grpc_channel_credentials_release(creds);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    c->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                       grpc_slice_from_static_string(method), NULL, deadline, NULL);
    grpc_metadata_array_init(&c->initial);
    grpc_metadata_array_init(&c->trailing);
    c->status = GRPC_STATUS_UNKNOWN;
    c->details = grpc_empty_slice();
    if (target->token != NULL && asprintf(&c->auth_value, "Bearer %s", target->token) >= 0) {
        c->auth.key = grpc_slice_from_static_string("authorization");
        c->auth.value = grpc_slice_from_static_string(c->auth_value);
    }
}

/* Runs one batch and waits for it. */
static bool batch(struct client_call *c, const grpc_op *ops, size_t n)
{
    static int tag;
    if (grpc_call_start_batch(c->call, ops, n, &tag, NULL) != GRPC_CALL_OK)
        return false;
    return grpc_completion_queue_pluck(c->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
        .success;
}

/* Sends the request and half-closes: the first batch of both kinds. */
static void send_request(struct client_call *c, const ProtobufCMessage *request)
{
    size_t size = protobuf_c_message_get_packed_size(request);
    grpc_slice slice = grpc_slice_malloc(size);
    protobuf_c_message_pack(request, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *sent = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (c->auth_value != NULL) {
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &c->auth;
    }
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = sent;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial;
    batch(c, ops, 4);
    grpc_byte_buffer_destroy(sent);
}

/* Reads the next message into *out (NULL at the end of the stream). */
static bool recv_message(struct client_call *c, grpc_byte_buffer **out)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = out;
    *out = NULL;
    return batch(c, &op, 1);
}

/* Decodes a received buffer with allocator (NULL: malloc). */
static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *type,
                                ProtobufCAllocator *allocator, grpc_byte_buffer *buffer)
{
    grpc_byte_buffer_reader reader;
    grpc_byte_buffer_reader_init(&reader, buffer);
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    ProtobufCMessage *m = protobuf_c_message_unpack(type, allocator, GRPC_SLICE_LENGTH(all),
                                                    GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    return m;
}

/* Waits for the status; returns it as tw_rpc_call's result, with errbuf. */
static tw_err call_close(struct client_call *c, tw_err err, const char *target, char *errbuf,
                         size_t errlen)
{
    if (err != TW_OK)
        grpc_call_cancel(c->call, NULL);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &c->trailing;
    op.data.recv_status_on_client.status = &c->status;
    op.data.recv_status_on_client.status_details = &c->details;
    batch(c, &op, 1);
    if (err == TW_OK && c->status != GRPC_STATUS_OK) {
        char *text = grpc_slice_to_c_string(c->details);
        snprintf(errbuf, errlen, "%s", text[0] ? text : "no answer");
        gpr_free(text);
        err = TW_ERR_UPSTREAM;
        for (size_t i = 0; i < c->trailing.count; i++) {
            grpc_slice key = c->trailing.metadata[i].key;
            if (GRPC_SLICE_LENGTH(key) == 23 &&
                memcmp(GRPC_SLICE_START_PTR(key), "grpc-status-details-bin", 23) == 0)
                err = error_from_details(c->trailing.metadata[i].value);
        }
    } else if (err == TW_ERR_UPSTREAM && errbuf[0] == '\0') {
        snprintf(errbuf, errlen, "%s answered with a message that does not decode", target);
    }
    grpc_slice_unref(c->details);
    grpc_metadata_array_destroy(&c->initial);
    grpc_metadata_array_destroy(&c->trailing);
    grpc_call_unref(c->call);
    grpc_completion_queue_shutdown(c->cq);
    grpc_completion_queue_destroy(c->cq);
    grpc_channel_destroy(c->channel);
    free(c->auth_value);
    grpc_shutdown();
    return err;
}

tw_err tw_rpc_call(const tw_rpc_target *target, const char *method, const ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *response_type, int timeout_ms, tw_arena *arena,
                   ProtobufCMessage **response, char *errbuf, size_t errlen)
{
    struct client_call c;
    *response = NULL;
    errbuf[0] = '\0';
    call_open(&c, target, method, timeout_ms);
    send_request(&c, request);
    grpc_byte_buffer *received = NULL;
    tw_err err = TW_OK;
    if (recv_message(&c, &received) && received != NULL) {
        ProtobufCAllocator allocator = {arena_alloc_cb, arena_free_cb, arena};
        *response = decode(response_type, &allocator, received);
        grpc_byte_buffer_destroy(received);
        if (*response == NULL)
            err = TW_ERR_UPSTREAM;
    }
    err = call_close(&c, err, target->address, errbuf, errlen);
    if (err == TW_OK && *response == NULL) {
        snprintf(errbuf, errlen, "%s sent no answer", target->address);
        err = TW_ERR_UPSTREAM;
    }
    return err;
}

tw_err tw_rpc_stream(const tw_rpc_target *target, const char *method,
                     const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_type, int timeout_ms,
                     tw_rpc_message_fn fn, void *ctx, char *errbuf, size_t errlen)
{
    struct client_call c;
    errbuf[0] = '\0';
    call_open(&c, target, method, timeout_ms);
    send_request(&c, request);
    tw_err err = TW_OK;
    grpc_byte_buffer *received = NULL;
    while (err == TW_OK && recv_message(&c, &received) && received != NULL) {
        ProtobufCMessage *m = decode(response_type, NULL, received);
        grpc_byte_buffer_destroy(received);
        if (m == NULL) {
            err = TW_ERR_UPSTREAM;
            break;
        }
        err = fn(ctx, m);
        protobuf_c_message_free_unpacked(m, NULL);
        if (err)
            snprintf(errbuf, errlen, "stopped: %s", tw_err_message(err));
    }
    return call_close(&c, err, target->address, errbuf, errlen);
}
