/* clock.c - the monotonic clock. */
#include "common/clock.h"

#include <time.h>

/* CLOCK_MONOTONIC cannot fail on Linux with a valid clock id and pointer. */
static uint64_t
read_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t
clock_ms(void)
{
	return read_ns(CLOCK_MONOTONIC) / 1000000ULL;
}

uint64_t
clock_us(void)
{
	return read_ns(CLOCK_MONOTONIC) / 1000ULL;
}

uint64_t
clock_coarse_ms(void)
{
	return read_ns(CLOCK_MONOTONIC_COARSE) / 1000000ULL;
}
