/*
 * The rich error model (AIP-193): a google.rpc.Status carrying ErrorInfo
 * (reason, domain "timeandwellness", the request id), BadRequest field
 * violations and RetryInfo, packed for the grpc-status-details-bin trailer.
 * Internal to server/rpc.
 */
#ifndef TW_RPC_ERROR_DETAILS_H
#define TW_RPC_ERROR_DETAILS_H

#include "rpc_layer.h"

#include "tw_arena.h"
#include "tw_err.h"
#include "tw_violations.h"

#include <stddef.h>
#include <stdint.h>

#define TW_ERROR_DOMAIN "timeandwellness"

typedef struct tw_error_report {
    tw_err err;
    const char *message;            /* shown to the client */
    const char *request_id;         /* borrowed */
    const tw_violations *violations; /* borrowed; may be NULL; its dropped
                                      * ones become one "and N more" entry */
    int64_t retry_after_ms;         /* < 0: no RetryInfo */
} tw_error_report;

/* Packs the report into the arena; *out and *len describe the bytes. */
tw_err tw_error_details_pack(tw_arena *arena, const tw_error_report *report, uint8_t **out,
                             size_t *len);

#endif
