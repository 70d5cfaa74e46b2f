/* rating.c - the rating formula (see rating.h and docs/metrics.md). */
#include "metrics/rating.h"

static double
clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void
rating_compute(const struct rating_input *in, struct rating_result *out)
{
	double cpu = clamp((double)in->cpu_rating, 1.0, RATING_CPU_MAX);
	double load = clamp(in->load, 0.0, 100.0);
	double room = (double)in->goal_pages + RATING_PENALTY_PAGES;
	double penalty;

	if (in->capacity == 0 || in->sessions >= in->capacity)
		out->availability = 0.0;
	else
		out->availability = RATING_AVAILABILITY_MAX *
		    (double)(in->capacity - in->sessions) / (double)in->capacity;
	out->workload = cpu * 100.0 / (100.0 + load);
	penalty = RATING_PENALTY_MAX * (room - (double)in->free_pages) / room;
	out->penalty = clamp(penalty, 0.0, RATING_PENALTY_MAX);
	out->rating = out->availability + out->workload - out->penalty;
	if (out->rating < 0.0 || in->draining)
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
