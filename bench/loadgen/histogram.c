/*
 * Log-linear histogram (see histogram.h). Bucket layout: values below
 * SUB_BUCKET_COUNT have a bucket each; above, every power of two [2^k, 2^k+1)
 * is split into SUB_BUCKET_HALF equal buckets, so the width of a bucket is
 * at most 1/SUB_BUCKET_HALF of the values in it.
 */
#include "histogram.h"

#include <math.h>
#include <stdlib.h>

#define SUB_BUCKET_BITS  8
#define SUB_BUCKET_COUNT (1u << SUB_BUCKET_BITS)
#define SUB_BUCKET_HALF  (SUB_BUCKET_COUNT / 2)
/* 2^40 ns is about 18 minutes: more than the longest run loadgen allows. */
#define VALUE_BITS   40
#define VALUE_LIMIT  ((UINT64_C(1) << VALUE_BITS) - 1)
#define BUCKET_COUNT (SUB_BUCKET_COUNT + (VALUE_BITS - SUB_BUCKET_BITS) * SUB_BUCKET_HALF)

struct histogram {
    uint64_t total;
    uint64_t max;
    uint64_t counts[BUCKET_COUNT];
};

static size_t bucket_of(uint64_t value)
{
    if (value > VALUE_LIMIT)
        value = VALUE_LIMIT;
    if (value < SUB_BUCKET_COUNT)
        return (size_t)value;
    unsigned top_bit = 63u - (unsigned)__builtin_clzll(value);
    unsigned shift = top_bit - SUB_BUCKET_BITS + 1;
    return SUB_BUCKET_COUNT + (size_t)(shift - 1) * SUB_BUCKET_HALF +
           (size_t)((value >> shift) - SUB_BUCKET_HALF);
}

static uint64_t highest_in_bucket(size_t bucket)
{
    if (bucket < SUB_BUCKET_COUNT)
        return bucket;
    size_t above = bucket - SUB_BUCKET_COUNT;
    unsigned shift = (unsigned)(above / SUB_BUCKET_HALF) + 1;
    uint64_t top = above % SUB_BUCKET_HALF + SUB_BUCKET_HALF;
    return ((top + 1) << shift) - 1;
}

histogram *histogram_create(void)
{
    return calloc(1, sizeof(histogram));
}

void histogram_destroy(histogram *h)
{
    free(h);
}

void histogram_record(histogram *h, uint64_t value_ns)
{
    h->counts[bucket_of(value_ns)]++;
    h->total++;
    if (value_ns > h->max)
        h->max = value_ns;
}

void histogram_merge(histogram *into, const histogram *from)
{
    for (size_t i = 0; i < BUCKET_COUNT; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t histogram_count(const histogram *h)
{
    return h->total;
}

uint64_t histogram_max(const histogram *h)
{
    return h->max;
}

uint64_t histogram_percentile(const histogram *h, double percentile)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(percentile / 100.0 * (double)h->total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < BUCKET_COUNT; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t value = highest_in_bucket(i);
            return value < h->max ? value : h->max;
        }
    }
    return h->max;
}
