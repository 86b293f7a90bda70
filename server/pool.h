/*
 * A bounded pool of worker threads for work that must not run on a
 * completion-queue thread: password hashing, calls to outside services,
 * decoding audio. A handler submits a job and returns TW_DEFERRED; the job
 * finishes the call. When the queue is full, submit refuses at once so a
 * burst turns into RESOURCE_EXHAUSTED answers instead of unbounded memory.
 */
#ifndef TW_POOL_H
#define TW_POOL_H

#include "tw_err.h"

#include <stddef.h>

typedef struct tw_pool tw_pool;

/* threads workers and room for queue_cap waiting jobs. name is for logs. */
tw_err tw_pool_new(const char *name, int threads, size_t queue_cap, tw_pool **out);

/* Queues fn(arg); arg must stay valid until fn runs, and fn owns it then.
 * TW_ERR_BUSY when the queue is full, TW_ERR_SHUTTING_DOWN once
 * tw_pool_free has begun. */
tw_err tw_pool_submit(tw_pool *pool, void (*fn)(void *arg), void *arg);

/* Jobs waiting, for metrics and tests. */
size_t tw_pool_waiting(tw_pool *pool);

/* Runs every queued job to completion, stops the workers and frees the
 * pool. Accepts NULL. */
void tw_pool_free(tw_pool *pool);

#endif
