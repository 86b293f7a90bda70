/* Per-service call statistics of upstream_stats.h. Vendor calls take
 * milliseconds to seconds, so one mutex around a small table costs
 * nothing that shows; the RPC path never comes here. */
#include "upstream_stats.h"

#include "tw_time.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

const double tw_upstream_latency_bounds_s[TW_UPSTREAM_LATENCY_BUCKETS] = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* More vendors than twd will ever talk to. */
#define MAX_SERVICES 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tw_upstream_stats table[MAX_SERVICES];
static size_t nservices;

/* The row of service, made on first sight; NULL when the table is full.
 * The lock must be held. */
static tw_upstream_stats *row_locked(const char *service)
{
    for (size_t i = 0; i < nservices; i++)
        if (strcmp(table[i].service, service) == 0)
            return &table[i];
    if (nservices == MAX_SERVICES)
        return NULL;
    tw_upstream_stats *row = &table[nservices++];
    memset(row, 0, sizeof *row);
    snprintf(row->service, sizeof row->service, "%s", service);
    return row;
}

void tw_upstream_record(const char *service, bool failed, int64_t duration_ms, const char *error)
{
    double seconds = (double)duration_ms / 1000.0;
    size_t bucket = 0;
    while (bucket < TW_UPSTREAM_LATENCY_BUCKETS && seconds > tw_upstream_latency_bounds_s[bucket])
        bucket++;
    pthread_mutex_lock(&lock);
    tw_upstream_stats *row = row_locked(service ? service : "http");
    if (row != NULL) {
        row->calls++;
        row->latency[bucket]++;
        row->latency_sum_s += seconds;
        if (failed) {
            row->failures++;
            snprintf(row->last_error, sizeof row->last_error, "%s", error ? error : "failed");
            row->last_error_ms = tw_wall_ms();
        }
    }
    pthread_mutex_unlock(&lock);
}

void tw_upstream_each(void (*fn)(void *ctx, const tw_upstream_stats *stats), void *ctx)
{
    tw_upstream_stats copy[MAX_SERVICES];
    pthread_mutex_lock(&lock);
    size_t n = nservices;
    memcpy(copy, table, n * sizeof copy[0]);
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < n; i++)
        fn(ctx, &copy[i]);
}

bool tw_upstream_get(const char *service, tw_upstream_stats *out)
{
    bool found = false;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nservices && !found; i++) {
        if (strcmp(table[i].service, service) == 0) {
            *out = table[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&lock);
    return found;
}
