/*
 * The durable job queue (transcription, notifications, webhook processing).
 *
 * A job is a type string and an opaque payload. It is enqueued in the same
 * transaction as the write that causes it, so the two exist together or not
 * at all. Workers lease the next due job of a type for a while; a worker
 * completes it, or fails it, and then it waits base * 2^(attempts-1) ms
 * (store options) before it is due again. A lease that runs out (the worker
 * crashed, twd was killed) makes the job due again by itself. After
 * max_attempts leases it is dead-lettered: kept, listable and requeueable.
 * Everything is in RocksDB and survives restarts; delivery is at least
 * once, so a job's work must be safe to repeat.
 */
#ifndef TW_JOBS_H
#define TW_JOBS_H

#include "tw_txn.h"

#define TW_JOB_TYPE_MAX         64
#define TW_JOB_PAYLOAD_MAX      (1024 * 1024)
#define TW_JOB_DEFAULT_ATTEMPTS 5

typedef struct tw_job_options {
    int64_t delay_ms;      /* due this long after enqueueing; 0 at once */
    uint32_t max_attempts; /* 0: TW_JOB_DEFAULT_ATTEMPTS */
} tw_job_options;

/* Enqueues a job in t. type (1..TW_JOB_TYPE_MAX bytes) and payload (up to
 * TW_JOB_PAYLOAD_MAX bytes) are copied; opts may be NULL; *id (may be NULL)
 * gets the job's id. */
tw_err tw_txn_job_enqueue(tw_txn *t, const char *type, const void *payload, size_t payload_len,
                          const tw_job_options *opts, tw_id *id);

/* tw_txn_job_enqueue with msg (a tw.store.v1 job message, borrowed) packed
 * as the payload, so that no feature packs its own. */
tw_err tw_txn_job_enqueue_msg(tw_txn *t, const char *type, const ProtobufCMessage *msg,
                              const tw_job_options *opts, tw_id *id);

/* A leased (or dead) job; strings and payload live in the caller's arena. */
typedef struct tw_job {
    tw_id id;
    const char *type;
    const uint8_t *payload;
    size_t payload_len;
    uint32_t attempts; /* leases so far, this one included */
    uint32_t max_attempts;
    int64_t due_ms;         /* leased: when the lease runs out; dead: when it died */
    tw_id lease_id;         /* the lease, presented to complete and fail */
    const char *last_error; /* "" when none */
    int64_t create_ms;
} tw_job;

/* Leases the job of type that has been due longest, for lease_ms.
 * TW_ERR_NOT_FOUND when none is due. */
tw_err tw_store_job_lease(tw_store *s, const char *type, int64_t lease_ms, tw_arena *arena,
                          tw_job *out);

/* Done: the job is removed. TW_ERR_CONFLICT when the lease is no longer
 * this one (it ran out and the job was leased again, completed or failed). */
tw_err tw_store_job_complete(tw_store *s, const tw_job *job);

/* Failed: due again after the backoff, or after retry_after_ms when that
 * is longer (an outside service's Retry-After; 0 when it did not say), or
 * dead-lettered when it has had max_attempts. error (borrowed) is kept as
 * last_error. TW_ERR_CONFLICT as for complete. */
tw_err tw_store_job_fail(tw_store *s, const tw_job *job, const char *error, int64_t retry_after_ms);

/* Dead jobs of type, most recent first, at most limit, in arena. */
tw_err tw_store_job_list_dead(tw_store *s, const char *type, uint32_t limit, tw_arena *arena,
                              tw_job **jobs, size_t *count);

/* Makes a dead job due now with its attempts reset (an operator replaying
 * it). TW_ERR_NOT_FOUND when there is no such job; TW_ERR_FAILED_PRECONDITION
 * when it is not dead. */
tw_err tw_store_job_requeue(tw_store *s, const tw_id *id);

#endif
