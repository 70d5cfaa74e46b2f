/* rating.c - the rating formula (see rating.h and docs/metrics.md). */
#include "metrics/rating.h"

static double
clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* The free share of the session capacity; 1 when there is no capacity figure. */
static double
session_room(unsigned capacity, unsigned sessions)
{
	if (capacity == 0)
		return 1.0;
	if (sessions >= capacity)
		return 0.0;
	return (double)(capacity - sessions) / (double)capacity;
}

void
rating_compute(const struct rating_input *in, struct rating_result *out)
{
	double cpu = clamp((double)in->cpu_rating, 1.0, RATING_CPU_MAX);
	double load = clamp(in->load, 0.0, 100.0);
	double slack = (double)in->goal_pages + RATING_PENALTY_PAGES;
	double penalty;

	out->room = session_room(in->capacity, in->sessions);
	out->availability = in->capacity == 0 ? 0.0 : RATING_AVAILABILITY_MAX * out->room;
	out->workload = out->room * cpu * 100.0 / (100.0 + load);
	penalty = RATING_PENALTY_MAX * (slack - (double)in->free_pages) / slack;
	out->penalty = clamp(penalty, 0.0, RATING_PENALTY_MAX);
	out->rating = out->availability + out->workload - out->penalty;
	if (out->rating < 0.0 || in->draining || in->unavailable)
		out->rating = 0.0;
}

double
rating_load_step(double load, double busy_percent)
{
	return RATING_LOAD_KEEP * load + (1.0 - RATING_LOAD_KEEP) * clamp(busy_percent, 0.0, 100.0);
}

unsigned
rating_cpu_derive(unsigned ncpu)
{
	if (ncpu == 0)
		ncpu = 1;
	if (ncpu >= RATING_CPU_MAX / RATING_CPU_PER_CPU)
		return RATING_CPU_MAX;
	return ncpu * RATING_CPU_PER_CPU;
}
