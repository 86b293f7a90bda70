/*
 * A blocking unary gRPC call, for twd's own command line: `twd backup
 * create` asks a running server through its operator socket. Kept in
 * server/rpc so that every grpc_* call stays here.
 */
#ifndef TW_RPC_CLIENT_H
#define TW_RPC_CLIENT_H

#include "tw_arena.h"
#include "tw_err.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/*
 * Calls method ("/tw.v1.AdminService/CreateBackup") at target ("unix:/path"
 * or "host:port") with request (borrowed), waiting at most timeout_ms.
 * On TW_OK *response is a message of response_type in arena. On failure
 * errbuf holds the status message, and the result is the error twd named
 * in its ErrorInfo reason, or TW_ERR_UPSTREAM when the answer carried none
 * (nothing listening at target, or not a twd).
 */
tw_err tw_rpc_call(const char *target, const char *method, const ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *response_type, int timeout_ms, tw_arena *arena,
                   ProtobufCMessage **response, char *errbuf, size_t errlen);

#endif
