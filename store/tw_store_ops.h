/*
 * What operators read of a running store, for /health, /metrics and
 * AdminService: a probe that reads through the store and from its disk,
 * RocksDB's properties and statistics, the job queue's depth, and the
 * "optimize" of the runbook (a full compaction). Each is bounded: none
 * walks user data.
 */
#ifndef TW_STORE_OPS_H
#define TW_STORE_OPS_H

#include "tw_store.h"

/* A real read: the store's own record through RocksDB, and the database's
 * CURRENT file and the manifest it names from the disk under data_dir (a
 * read served from RocksDB's memory alone would not notice a disk or
 * directory that went away). TW_ERR_DB with the reason in
 * tw_store_last_error() when either fails. */
tw_err tw_store_probe(tw_store *s, const char *data_dir);

/* The sum over every column family of RocksDB integer property name
 * ("rocksdb.total-sst-files-size", "rocksdb.estimate-pending-compaction-bytes").
 * TW_ERR_NOT_FOUND when RocksDB does not know it. */
tw_err tw_store_property_sum(tw_store *s, const char *name, uint64_t *out);

/* RocksDB's statistics as it prints them (one line per counter, "NAME
 * COUNT : n", and per histogram, "NAME P50 : x P95 : ... COUNT : n SUM :
 * s"), malloc'd; NULL when the store was opened without statistics. */
char *tw_store_statistics(tw_store *s);

/* Compacts every column family, dropping deleted and overwritten data (the
 * runbook's VACUUM / ANALYZE). Blocks until done: run it off RPC threads.
 * *before and *after (may be NULL) get the table files' bytes. */
tw_err tw_store_compact(tw_store *s, uint64_t *before, uint64_t *after);

/* The job queue of one type, as tw_store_job_stats counts it. */
typedef struct tw_job_queue_stats {
    uint64_t queued;       /* jobs not dead: waiting, due or leased */
    uint64_t due;          /* of those, due now or overdue (a lease that ran out included) */
    int64_t oldest_due_ms; /* when the longest-due one became due; 0 when none is due */
    uint64_t dead;         /* dead-lettered after their last attempt */
    bool capped;           /* more than TW_JOB_STATS_CAP entries: counts stop there */
} tw_job_queue_stats;

/* Entries counted per type and state at most. */
#define TW_JOB_STATS_CAP 1000000

/* Calls fn once per job type present in the queue (type borrowed during
 * the call), in type order. Reads keys only. */
typedef void (*tw_job_stats_fn)(void *ctx, const char *type, const tw_job_queue_stats *stats);
tw_err tw_store_job_stats(tw_store *s, int64_t now_ms, tw_job_stats_fn fn, void *ctx);

#endif
