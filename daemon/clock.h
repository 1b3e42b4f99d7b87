/* clock.h -- the two clocks of the daemon: wall (ms since the epoch: event
 * time checks, dead-letter and alert stamps, dedup horizon) and monotonic
 * (ms: timeouts, backoff, rate limits). */
#ifndef NOUSU_CLOCK_H
#define NOUSU_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t wall_ms(void) { return clock_ms(CLOCK_REALTIME); }
static inline int64_t mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

static inline int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
