/*
 * Clocks. Wall time (Unix epoch) is for timestamps stored or shown;
 * monotonic time is for durations, deadlines and rate windows, which must
 * not jump when the wall clock is set.
 */
#ifndef TW_TIME_H
#define TW_TIME_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch. */
int64_t tw_wall_ms(void);

/* Microseconds since the Unix epoch. */
int64_t tw_wall_us(void);

/* Nanoseconds on the monotonic clock (arbitrary origin). */
int64_t tw_mono_ns(void);

/* The monotonic instant ms milliseconds (0 or more) from now, as the
 * absolute time pthread_cond_timedwait takes on a condition variable whose
 * clock is CLOCK_MONOTONIC. */
struct timespec tw_mono_deadline(int64_t ms);

/* The longest wait before retry number attempt (1 for the first retry):
 * base * 2^(attempt-1), at most max. Callers add their jitter under it, so
 * that clients failing together do not come back together. */
int64_t tw_backoff_ceiling_ms(int64_t base_ms, int64_t max_ms, unsigned attempt);

#endif
