/* Clock readings for tw_time.h. */
#include "tw_time.h"

#include <time.h>

static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t tw_wall_ms(void)
{
    return clock_ns(CLOCK_REALTIME) / 1000000;
}
int64_t tw_wall_us(void)
{
    return clock_ns(CLOCK_REALTIME) / 1000;
}
int64_t tw_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

struct timespec tw_mono_deadline(int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    return until;
}

int64_t tw_backoff_ceiling_ms(int64_t base_ms, int64_t max_ms, unsigned attempt)
{
    int64_t d = base_ms;
    for (unsigned i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}
