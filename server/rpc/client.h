/*
 * Blocking gRPC calls for twd's own command line: `twd backup create` and
 * `twd admin ...` ask a running server, through its operator socket or,
 * with --server, over the network with an admin's token and TLS. Kept in
 * server/rpc so that every grpc_* call stays here.
 */
#ifndef TW_RPC_CLIENT_H
#define TW_RPC_CLIENT_H

#include "rpc_layer.h"

#include "tw_arena.h"
#include "tw_err.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Where a call goes; every string is borrowed during the call. */
typedef struct tw_rpc_target {
    const char *address;       /* "unix:/path" or "host:port" */
    const char *tls_roots_pem; /* trusted certificates: TLS; NULL: plaintext */
    const char *token;         /* sent as "authorization: Bearer <token>"; NULL: none */
} tw_rpc_target;

/*
 * Calls method ("/tw.v1.AdminService/CreateBackup") at target with request
 * (borrowed), waiting at most timeout_ms. On TW_OK *response is a message
 * of response_type in arena. On failure errbuf holds the status message,
 * and the result is the error twd named in its ErrorInfo reason, or
 * TW_ERR_UPSTREAM when the answer carried none (nothing listening at
 * target, or not a twd).
 */
tw_err tw_rpc_call(const tw_rpc_target *target, const char *method, const ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *response_type, int timeout_ms, tw_arena *arena,
                   ProtobufCMessage **response, char *errbuf, size_t errlen);

/* Each message of a server stream, borrowed during the call (it is freed
 * after); an error stops the stream (the call is cancelled) and is
 * returned. */
typedef tw_err (*tw_rpc_message_fn)(void *ctx, const ProtobufCMessage *message);

/* A server-streaming call: fn gets every message, in order; errors as for
 * tw_rpc_call. */
tw_err tw_rpc_stream(const tw_rpc_target *target, const char *method,
                     const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_type, int timeout_ms,
                     tw_rpc_message_fn fn, void *ctx, char *errbuf, size_t errlen);

#endif
