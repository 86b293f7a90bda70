/* Per-thread call counters for metrics.h. */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const double tw_rpc_latency_bounds_s[TW_RPC_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10,
};

/* Where each counter of a method sits among its slots. */
enum {
    SLOT_STARTED = 0,
    SLOT_ENDED = 1,
    SLOT_LATENCY = SLOT_ENDED + TW_RPC_CODES,
    SLOT_SUM_NS = SLOT_LATENCY + TW_RPC_LATENCY_BUCKETS + 1,
    SLOT_BYTES_IN,
    SLOT_BYTES_OUT,
    SLOTS_PER_METHOD,
};

/* One thread's counters for every method of one tw_rpc_metrics. */
struct block {
    struct block *next;
    pthread_t thread;
    _Atomic uint64_t slots[]; /* nslots * SLOTS_PER_METHOD */
};

struct tw_rpc_metrics {
    uint64_t serial; /* tells this registry from one freed at the same address */
    size_t nslots;   /* methods + 1 */
    pthread_mutex_t lock;
    struct block *blocks;
};

static atomic_uint_fast64_t next_serial = 1;

/* The block this thread last counted into, and whose registry it was. */
static _Thread_local struct {
    uint64_t serial;
    struct block *block;
} mine;

tw_err tw_rpc_metrics_new(size_t nmethods, tw_rpc_metrics **out)
{
    tw_rpc_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return TW_ERR_NO_MEMORY;
    m->serial = atomic_fetch_add(&next_serial, 1);
    m->nslots = nmethods + 1;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return TW_OK;
}

void tw_rpc_metrics_free(tw_rpc_metrics *m)
{
    if (m == NULL)
        return;
    while (m->blocks != NULL) {
        struct block *b = m->blocks;
        m->blocks = b->next;
        free(b);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

size_t tw_rpc_metrics_slots(const tw_rpc_metrics *m)
{
    return m->nslots;
}

/* This thread's block in m, made on its first count; NULL without memory.
 * A thread counting for two registries in turn (tests) finds its block
 * again in the list rather than making another. */
static struct block *my_block(tw_rpc_metrics *m)
{
    if (mine.serial == m->serial)
        return mine.block;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&m->lock);
    struct block *b = m->blocks;
    while (b != NULL && !pthread_equal(b->thread, self))
        b = b->next;
    if (b == NULL) {
        b = calloc(1, sizeof *b + m->nslots * SLOTS_PER_METHOD * sizeof b->slots[0]);
        if (b != NULL) {
            b->thread = self;
            b->next = m->blocks;
            m->blocks = b;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (b != NULL) {
        mine.serial = m->serial;
        mine.block = b;
    }
    return b;
}

/* Adds to a counter only this thread writes. */
static void bump(_Atomic uint64_t *slot, uint64_t by)
{
    atomic_store_explicit(slot, atomic_load_explicit(slot, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static _Atomic uint64_t *method_slots(struct block *b, size_t method)
{
    return &b->slots[method * SLOTS_PER_METHOD];
}

void tw_rpc_metrics_call_started(tw_rpc_metrics *m, size_t method)
{
    struct block *b = m && method < m->nslots ? my_block(m) : NULL;
    if (b != NULL)
        bump(&method_slots(b, method)[SLOT_STARTED], 1);
}

void tw_rpc_metrics_call_ended(tw_rpc_metrics *m, size_t method, int code, int64_t duration_ns,
                               uint64_t bytes_in, uint64_t bytes_out)
{
    struct block *b = m && method < m->nslots ? my_block(m) : NULL;
    if (b == NULL)
        return;
    _Atomic uint64_t *s = method_slots(b, method);
    if (code < 0 || code >= TW_RPC_CODES)
        code = 2; /* UNKNOWN */
    if (duration_ns < 0)
        duration_ns = 0;
    double seconds = (double)duration_ns / 1e9;
    size_t bucket = 0;
    while (bucket < TW_RPC_LATENCY_BUCKETS && seconds > tw_rpc_latency_bounds_s[bucket])
        bucket++;
    bump(&s[SLOT_ENDED + code], 1);
    bump(&s[SLOT_LATENCY + bucket], 1);
    bump(&s[SLOT_SUM_NS], (uint64_t)duration_ns);
    bump(&s[SLOT_BYTES_IN], bytes_in);
    bump(&s[SLOT_BYTES_OUT], bytes_out);
}

void tw_rpc_metrics_read(tw_rpc_metrics *m, size_t method, tw_rpc_method_stats *out)
{
    memset(out, 0, sizeof *out);
    if (method >= m->nslots)
        return;
    uint64_t sum[SLOTS_PER_METHOD] = {0};
    pthread_mutex_lock(&m->lock);
    for (struct block *b = m->blocks; b != NULL; b = b->next) {
        _Atomic uint64_t *s = method_slots(b, method);
        for (int i = 0; i < SLOTS_PER_METHOD; i++)
            sum[i] += atomic_load_explicit(&s[i], memory_order_relaxed);
    }
    pthread_mutex_unlock(&m->lock);
    out->started = sum[SLOT_STARTED];
    memcpy(out->ended, &sum[SLOT_ENDED], sizeof out->ended);
    memcpy(out->latency, &sum[SLOT_LATENCY], sizeof out->latency);
    out->latency_sum_ns = sum[SLOT_SUM_NS];
    out->bytes_in = sum[SLOT_BYTES_IN];
    out->bytes_out = sum[SLOT_BYTES_OUT];
}

double tw_rpc_latency_quantile_s(const tw_rpc_method_stats *s, double q)
{
    uint64_t total = 0;
    for (int i = 0; i <= TW_RPC_LATENCY_BUCKETS; i++)
        total += s->latency[i];
    if (total == 0)
        return 0;
    double rank = q * (double)total, below = 0;
    for (int i = 0; i < TW_RPC_LATENCY_BUCKETS; i++) {
        double in_bucket = (double)s->latency[i];
        if (below + in_bucket >= rank && in_bucket > 0) {
            double lower = i == 0 ? 0 : tw_rpc_latency_bounds_s[i - 1];
            return lower + (tw_rpc_latency_bounds_s[i] - lower) * (rank - below) / in_bucket;
        }
        below += in_bucket;
    }
    /* In the +Inf bucket: the highest finite bound, as Prometheus answers. */
    return tw_rpc_latency_bounds_s[TW_RPC_LATENCY_BUCKETS - 1];
}
