/*
 * A server stream produced off the RPC threads and paced by the client:
 * a step function runs on a pool, queues a burst of messages with
 * tw_call_send, and the next step runs once they have drained
 * (tw_call_on_drain), so a large answer (an export) never sits in memory
 * and a slow reader holds no pool thread. The call ends when a step says
 * the stream is over, or with CANCELLED when the client goes away; then
 * `done` runs once to release what the steps used.
 */
#ifndef TW_SERVICES_PACED_STREAM_H
#define TW_SERVICES_PACED_STREAM_H

#include "pool.h"
#include "rpc/call.h"

#include <stdbool.h>

/* Queues the next burst; sets *end (and returns the status to end with,
 * TW_OK when complete) when there is nothing more. On a pool thread. */
typedef tw_err tw_paced_step_fn(tw_call *call, void *ctx, bool *end);
/* Runs once, just before the call ends. */
typedef void tw_paced_done_fn(void *ctx);

/* Starts the stream on call (its state lives in the call's arena) and
 * returns TW_DEFERRED for the handler to return, or an error. ctx is
 * handed to step and done; the pool must outlive the call. */
tw_err tw_paced_stream_start(tw_call *call, tw_pool *pool, tw_paced_step_fn *step,
                             tw_paced_done_fn *done, void *ctx);

#endif
