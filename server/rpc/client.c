/* One blocking unary call for client.h, on a pluck completion queue. */
#include "client.h"

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
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

tw_err tw_rpc_call(const char *target, const char *method, const ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *response_type, int timeout_ms, tw_arena *arena,
                   ProtobufCMessage **response, char *errbuf, size_t errlen)
{
    *response = NULL;
    grpc_init();
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *channel = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_call *call =
        grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string(method), NULL, deadline, NULL);

    size_t size = protobuf_c_message_get_packed_size(request);
    grpc_slice slice = grpc_slice_malloc(size);
    protobuf_c_message_pack(request, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *sent = grpc_raw_byte_buffer_create(&slice, 1), *received = NULL;
    grpc_slice_unref(slice);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = sent;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &received;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    static int tag;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK)
        grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

    tw_err err = TW_OK;
    if (status == GRPC_STATUS_OK && received != NULL) {
        grpc_byte_buffer_reader reader;
        grpc_byte_buffer_reader_init(&reader, received);
        grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        ProtobufCAllocator allocator = {arena_alloc_cb, arena_free_cb, arena};
        *response = protobuf_c_message_unpack(response_type, &allocator, GRPC_SLICE_LENGTH(all),
                                              GRPC_SLICE_START_PTR(all));
        grpc_slice_unref(all);
        if (*response == NULL) {
            snprintf(errbuf, errlen, "%s answered with a message that does not decode", target);
            err = TW_ERR_UPSTREAM;
        }
    } else {
        char *text = grpc_slice_to_c_string(details);
        snprintf(errbuf, errlen, "%s", text);
        gpr_free(text);
        err = TW_ERR_UPSTREAM;
        for (size_t i = 0; i < trailing.count; i++) {
            grpc_slice key = trailing.metadata[i].key;
            if (GRPC_SLICE_LENGTH(key) == 23 &&
                memcmp(GRPC_SLICE_START_PTR(key), "grpc-status-details-bin", 23) == 0)
                err = error_from_details(trailing.metadata[i].value);
        }
    }

    if (received)
        grpc_byte_buffer_destroy(received);
    grpc_byte_buffer_destroy(sent);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(channel);
    grpc_shutdown();
    return err;
}
