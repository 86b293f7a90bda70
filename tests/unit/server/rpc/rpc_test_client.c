/* Blocking client calls for rpc_test_client.h. */
#include "rpc_test_client.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rpc_stream {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice status_message;
    bool got_initial_md;
    int status_tag;
};

static gpr_timespec deadline_after(int timeout_ms)
{
    if (timeout_ms <= 0)
        return gpr_inf_future(GPR_CLOCK_REALTIME);
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                        gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

/* Starts a batch and waits for it; false when it failed. */
static bool run_batch(grpc_completion_queue *cq, grpc_call *call, const grpc_op *ops, size_t n,
                      void *tag)
{
    if (grpc_call_start_batch(call, ops, n, tag, NULL) != GRPC_CALL_OK)
        return false;
    grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static grpc_byte_buffer *message_buffer(const ProtobufCMessage *message, const uint8_t *raw,
                                        size_t raw_len)
{
    grpc_slice slice;
    if (message != NULL) {
        slice = grpc_slice_malloc(protobuf_c_message_get_packed_size(message));
        protobuf_c_message_pack(message, GRPC_SLICE_START_PTR(slice));
    } else {
        slice = grpc_slice_from_copied_buffer((const char *)raw, raw_len);
    }
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

static uint8_t *buffer_bytes(grpc_byte_buffer *bb, size_t *len)
{
    grpc_byte_buffer_reader reader;
    grpc_byte_buffer_reader_init(&reader, bb);
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    *len = GRPC_SLICE_LENGTH(all);
    uint8_t *copy = malloc(*len ? *len : 1);
    memcpy(copy, GRPC_SLICE_START_PTR(all), *len);
    grpc_slice_unref(all);
    return copy;
}

static void copy_metadata_value(const grpc_metadata_array *md, const char *key, char *out,
                                size_t outlen, uint8_t **bytes, size_t *bytes_len)
{
    for (size_t i = 0; i < md->count; i++) {
        grpc_slice k = md->metadata[i].key, v = md->metadata[i].value;
        if (GRPC_SLICE_LENGTH(k) != strlen(key) ||
            memcmp(GRPC_SLICE_START_PTR(k), key, strlen(key)))
            continue;
        if (out != NULL)
            snprintf(out, outlen, "%.*s", (int)GRPC_SLICE_LENGTH(v), GRPC_SLICE_START_PTR(v));
        if (bytes != NULL) {
            *bytes_len = GRPC_SLICE_LENGTH(v);
            *bytes = malloc(*bytes_len ? *bytes_len : 1);
            memcpy(*bytes, GRPC_SLICE_START_PTR(v), *bytes_len);
        }
    }
}

static void fill_result(rpc_result *out, grpc_status_code status, grpc_slice message,
                        const grpc_metadata_array *initial, const grpc_metadata_array *trailing)
{
    out->status = status;
    out->message = grpc_slice_to_c_string(message);
    copy_metadata_value(initial, "x-request-id", out->request_id, sizeof out->request_id, NULL,
                        NULL);
    copy_metadata_value(trailing, "grpc-status-details-bin", NULL, 0, &out->details,
                        &out->details_len);
}

void rpc_result_free(rpc_result *r)
{
    gpr_free(r->message);
    free(r->details);
    free(r->response);
    memset(r, 0, sizeof *r);
}

void rpc_unary(grpc_channel *channel, const char *method, const ProtobufCMessage *message,
               const uint8_t *raw, size_t raw_len, int timeout_ms, const char *const *metadata,
               rpc_result *out)
{
    memset(out, 0, sizeof *out);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_call *call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               grpc_slice_from_static_string(method), NULL,
                                               deadline_after(timeout_ms), NULL);
    grpc_metadata md[8];
    size_t nmd = 0;
    for (size_t i = 0; metadata != NULL && metadata[i] != NULL && nmd < 8; i += 2, nmd++) {
        md[nmd].key = grpc_slice_from_static_string(metadata[i]);
        md[nmd].value = grpc_slice_from_static_string(metadata[i + 1]);
    }
    grpc_byte_buffer *request = message_buffer(message, raw, raw_len), *response = NULL;
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice status_message = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &status_message;
    int tag;
    run_batch(cq, call, ops, 6, &tag);

    fill_result(out, status, status_message, &initial, &trailing);
    if (response != NULL) {
        out->response = buffer_bytes(response, &out->response_len);
        out->has_response = true;
        grpc_byte_buffer_destroy(response);
    }
    grpc_byte_buffer_destroy(request);
    grpc_slice_unref(status_message);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
}

rpc_stream *rpc_stream_open(grpc_channel *channel, const char *method, int timeout_ms)
{
    return rpc_stream_open_md(channel, method, timeout_ms, NULL);
}

rpc_stream *rpc_stream_open_md(grpc_channel *channel, const char *method, int timeout_ms,
                               const char *const *metadata)
{
    grpc_metadata md[8];
    size_t nmd = 0;
    for (size_t i = 0; metadata != NULL && metadata[i] != NULL && nmd < 8; i += 2, nmd++) {
        md[nmd].key = grpc_slice_from_static_string(metadata[i]);
        md[nmd].value = grpc_slice_from_static_string(metadata[i + 1]);
    }
    rpc_stream *s = calloc(1, sizeof *s);
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    s->call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                       grpc_slice_from_static_string(method), NULL,
                                       deadline_after(timeout_ms), NULL);
    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);
    s->status_message = grpc_empty_slice();

    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = md;
    int tag;
    run_batch(s->cq, s->call, ops, 1, &tag);
    /* The status may come at any time; collect it in the background. */
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    ops[0].data.recv_status_on_client.status = &s->status;
    ops[0].data.recv_status_on_client.status_details = &s->status_message;
    grpc_call_start_batch(s->call, ops, 1, &s->status_tag, NULL);
    return s;
}

bool rpc_stream_send(rpc_stream *s, const ProtobufCMessage *message)
{
    grpc_byte_buffer *bb = message_buffer(message, NULL, 0);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    int tag;
    bool ok = run_batch(s->cq, s->call, &op, 1, &tag);
    grpc_byte_buffer_destroy(bb);
    return ok;
}

bool rpc_stream_close_send(rpc_stream *s)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    int tag;
    return run_batch(s->cq, s->call, &op, 1, &tag);
}

ProtobufCMessage *rpc_stream_recv(rpc_stream *s, const ProtobufCMessageDescriptor *type)
{
    grpc_byte_buffer *bb = NULL;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!s->got_initial_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
        s->got_initial_md = true;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &bb;
    int tag;
    if (!run_batch(s->cq, s->call, ops, n, &tag) || bb == NULL)
        return NULL;
    size_t len;
    uint8_t *bytes = buffer_bytes(bb, &len);
    grpc_byte_buffer_destroy(bb);
    ProtobufCMessage *m = protobuf_c_message_unpack(type, NULL, len, bytes);
    free(bytes);
    return m;
}

void rpc_stream_cancel(rpc_stream *s)
{
    grpc_call_cancel(s->call, NULL);
}

void rpc_stream_finish(rpc_stream *s, rpc_result *out)
{
    memset(out, 0, sizeof *out);
    grpc_byte_buffer *response = NULL;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!s->got_initial_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &response;
    int tag;
    run_batch(s->cq, s->call, ops, n, &tag);
    grpc_completion_queue_pluck(s->cq, &s->status_tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

    fill_result(out, s->status, s->status_message, &s->initial_md, &s->trailing_md);
    if (response != NULL) {
        out->response = buffer_bytes(response, &out->response_len);
        out->has_response = true;
        grpc_byte_buffer_destroy(response);
    }
    grpc_slice_unref(s->status_message);
    grpc_metadata_array_destroy(&s->initial_md);
    grpc_metadata_array_destroy(&s->trailing_md);
    grpc_call_unref(s->call);
    grpc_completion_queue_shutdown(s->cq);
    grpc_completion_queue_destroy(s->cq);
    free(s);
}
