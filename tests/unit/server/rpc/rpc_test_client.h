/*
 * A small blocking gRPC client on the core C API, for tests that drive the
 * engine from the outside. Each call or stream has its own pluck queue, so
 * tests may use several from different threads.
 */
#ifndef RPC_TEST_CLIENT_H
#define RPC_TEST_CLIENT_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rpc_result {
    grpc_status_code status;
    char *message;    /* the status message */
    uint8_t *details; /* grpc-status-details-bin, when sent */
    size_t details_len;
    uint8_t *response; /* the response message, unary and client streams */
    size_t response_len;
    bool has_response;
    char request_id[80]; /* x-request-id from the initial metadata */
} rpc_result;

void rpc_result_free(rpc_result *result);

/* Unary call of method with request packed from message (or raw bytes when
 * message is NULL). metadata is NULL or key, value, ..., NULL. timeout_ms 0:
 * no deadline. */
void rpc_unary(grpc_channel *channel, const char *method, const ProtobufCMessage *message,
               const uint8_t *raw, size_t raw_len, int timeout_ms, const char *const *metadata,
               rpc_result *out);

typedef struct rpc_stream rpc_stream;

/* Opens a call for streaming; the status is collected by rpc_stream_finish. */
rpc_stream *rpc_stream_open(grpc_channel *channel, const char *method, int timeout_ms);
/* The same with request metadata: NULL or key, value, ..., NULL (borrowed
 * until it returns). */
rpc_stream *rpc_stream_open_md(grpc_channel *channel, const char *method, int timeout_ms,
                               const char *const *metadata);
bool rpc_stream_send(rpc_stream *s, const ProtobufCMessage *message);
bool rpc_stream_close_send(rpc_stream *s);
/* The next message decoded as type, or NULL at the end of the stream. The
 * caller frees it with protobuf_c_message_free_unpacked. */
ProtobufCMessage *rpc_stream_recv(rpc_stream *s, const ProtobufCMessageDescriptor *type);
void rpc_stream_cancel(rpc_stream *s);
/* Waits for the status (and for client streams the response) and frees s. */
void rpc_stream_finish(rpc_stream *s, rpc_result *out);

#endif
