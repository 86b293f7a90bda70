/*
 * What each outside service (s3, deepgram, and the vendors to come) has
 * done for this process: calls, failures, latency and the last failure,
 * recorded by tw_http_perform for every request, for /metrics and
 * /health/detailed. A failure is a request that got no answer, or a 429 or
 * 5xx after its retries; a 4xx answer (a missing S3 key, a rejected audio
 * file) means the service is up and counts as answered.
 */
#ifndef TW_UPSTREAM_STATS_H
#define TW_UPSTREAM_STATS_H

#include <stdbool.h>
#include <stdint.h>

/* Upper bounds of the latency buckets, in seconds (a last +Inf bucket
 * takes the rest). */
#define TW_UPSTREAM_LATENCY_BUCKETS 10
extern const double tw_upstream_latency_bounds_s[TW_UPSTREAM_LATENCY_BUCKETS];

typedef struct tw_upstream_stats {
    char service[32];
    uint64_t calls;    /* tw_http_perform calls, retries inside one included once */
    uint64_t failures; /* of those, no answer or 429 / 5xx in the end */
    uint64_t latency[TW_UPSTREAM_LATENCY_BUCKETS + 1]; /* per bucket; last: +Inf */
    double latency_sum_s;
    char last_error[256];  /* the last failure's reason; "" when none */
    int64_t last_error_ms; /* when, Unix ms; 0 when none */
} tw_upstream_stats;

/* Records one call of service (borrowed) that took duration_ms; error
 * (borrowed, may be NULL) is its reason when it failed. Thread-safe. */
void tw_upstream_record(const char *service, bool failed, int64_t duration_ms, const char *error);

/* Calls fn with each service's stats (a copy), in the order first seen. */
void tw_upstream_each(void (*fn)(void *ctx, const tw_upstream_stats *stats), void *ctx);

/* The stats of service into out; false when it was never called. */
bool tw_upstream_get(const char *service, tw_upstream_stats *out);

#endif
