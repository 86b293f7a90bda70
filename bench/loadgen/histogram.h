/*
 * A log-linear latency histogram in the spirit of HdrHistogram: exact below
 * 256 ns, then 128 buckets per power of two, so any recorded value is known
 * to within 0.8 % in a fixed 35 KB table however many calls a run makes.
 * One histogram per worker thread (no locking); merge them at the end.
 */
#ifndef LOADGEN_HISTOGRAM_H
#define LOADGEN_HISTOGRAM_H

#include <stdint.h>

typedef struct histogram histogram;

/* A new empty histogram, or NULL when out of memory. */
histogram *histogram_create(void);
void histogram_destroy(histogram *h);

/* Values above about 18 minutes land in the last bucket; max stays exact. */
void histogram_record(histogram *h, uint64_t value_ns);

/* Adds every count of from (borrowed) into into. */
void histogram_merge(histogram *into, const histogram *from);

uint64_t histogram_count(const histogram *h);
uint64_t histogram_max(const histogram *h);

/* The smallest recorded value v such that `percentile` % of the values are
 * <= v, given as the highest value of v's bucket (never above the maximum);
 * 0 when the histogram is empty. percentile is in (0, 100]. */
uint64_t histogram_percentile(const histogram *h, double percentile);

#endif
