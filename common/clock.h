/* clock.h - the monotonic clock, for timeouts and intervals. */
#ifndef MXB_CLOCK_H
#define MXB_CLOCK_H

#include <stdint.h>

/*
 * Milliseconds / microseconds of CLOCK_MONOTONIC: never steps with the wall
 * clock, so differences are true durations.  The origin is arbitrary (boot);
 * only compare values from these functions with each other.  Thread-safe.
 */
uint64_t clock_ms(void);
uint64_t clock_us(void);

/*
 * CLOCK_MONOTONIC_COARSE in milliseconds: a few ms of resolution (the
 * scheduler tick) for a tenth of the cost, for per-packet stamps.
 */
uint64_t clock_coarse_ms(void);

#endif
