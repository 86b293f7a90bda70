/*
 * Clocks. Wall time (Unix epoch) is for timestamps stored or shown;
 * monotonic time is for durations, deadlines and rate windows, which must
 * not jump when the wall clock is set.
 */
#ifndef TW_TIME_H
#define TW_TIME_H

#include <stdint.h>

/* Milliseconds since the Unix epoch. */
int64_t tw_wall_ms(void);

/* Microseconds since the Unix epoch. */
int64_t tw_wall_us(void);

/* Nanoseconds on the monotonic clock (arbitrary origin). */
int64_t tw_mono_ns(void);

#endif
