/*
 * Call metrics of the RPC engine: calls by method and gRPC code, latency
 * histograms by method, calls in flight, bytes in and out. /metrics reads
 * them (server/http/metrics_page.c); AdminService's slowest methods too.
 *
 * Counting costs no shared lock and no shared cache line: every thread that
 * starts or ends a call counts into a block of its own (found through a
 * thread-local pointer; a thread takes the registry's lock once, the first
 * time it counts), and a reader sums the blocks. A block's counters have
 * one writer, so a relaxed load and store is enough, and a reader may see a
 * count a few calls old, never a torn one.
 *
 * Methods are numbered 0 .. nmethods-1 in the engine's order
 * (tw_engine_each_method); number nmethods counts calls to methods nobody
 * registered.
 */
#ifndef TW_RPC_METRICS_H
#define TW_RPC_METRICS_H

#include "rpc_layer.h"

#include "tw_err.h"

#include <stddef.h>
#include <stdint.h>

/* gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED). */
#define TW_RPC_CODES 17
/* Upper bounds of the latency buckets, in seconds; a last bucket (+Inf)
 * takes the rest. */
#define TW_RPC_LATENCY_BUCKETS 14
extern const double tw_rpc_latency_bounds_s[TW_RPC_LATENCY_BUCKETS];

typedef struct tw_rpc_metrics tw_rpc_metrics;

/* What a reader gets for one method, summed over every thread. */
typedef struct tw_rpc_method_stats {
    uint64_t started;                             /* calls that arrived */
    uint64_t ended[TW_RPC_CODES];                 /* calls released, by the code the client saw */
    uint64_t latency[TW_RPC_LATENCY_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
    uint64_t latency_sum_ns;                      /* of every ended call */
    uint64_t bytes_in, bytes_out;                 /* message bytes */
} tw_rpc_method_stats;

/* Metrics for nmethods methods (plus the unknown-method slot). */
tw_err tw_rpc_metrics_new(size_t nmethods, tw_rpc_metrics **out);

/* Frees the metrics and every thread's block; nobody may count any more.
 * Accepts NULL. */
void tw_rpc_metrics_free(tw_rpc_metrics *m);

/* A call to method arrived. Any thread; m may be NULL (counts nothing). */
void tw_rpc_metrics_call_started(tw_rpc_metrics *m, size_t method);

/* A call to method ended with gRPC status code after duration_ns, having
 * read bytes_in and sent bytes_out message bytes. Any thread; m may be
 * NULL. */
void tw_rpc_metrics_call_ended(tw_rpc_metrics *m, size_t method, int code, int64_t duration_ns,
                               uint64_t bytes_in, uint64_t bytes_out);

/* The number of method slots: nmethods + 1. */
size_t tw_rpc_metrics_slots(const tw_rpc_metrics *m);

/* Sums method's counters over every thread into out. */
void tw_rpc_metrics_read(tw_rpc_metrics *m, size_t method, tw_rpc_method_stats *out);

/* The latency under which a share q (0..1) of the calls in s fell,
 * interpolated inside its bucket as Prometheus's histogram_quantile does;
 * 0 when s has no calls. */
double tw_rpc_latency_quantile_s(const tw_rpc_method_stats *s, double q);

#endif
