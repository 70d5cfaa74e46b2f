/*
 * rating.h - the load rating: the OpenVMS load-broker formula, mapped to
 * Linux, with the workload scaled by the free share of the session capacity.
 *
 *   rating       = availability + workload - penalty      (clamped at 0)
 *   room         = (capacity - sessions) / capacity       (0..1; 1 when capacity 0)
 *   availability = 20 * room                              (0 when capacity 0)
 *   workload     = room * cpu_rating * 100 / (100 + load)
 *   penalty      = 40 * (goal + 2048 - free) / (goal + 2048), only when > 0
 *   load         = 0.979 * load + 0.021 * cpu_busy_percent, once a second
 *
 * OpenVMS added the unscaled workload, so sessions moved a host by at most
 * 20 of 120 points and a host at its session limit could still rank first;
 * scaling by `room` makes a host with sessions/capacity = s rate (1 - s) of
 * its idle rating (before the penalty), 0 when full.  Higher is better; an
 * idle host with cpu-rating 100 and no sessions rates 120.  `free` and
 * `goal` are in pages.  Everything here is pure arithmetic; docs/metrics.md
 * explains each input and where metricd takes it from.
 */
#ifndef MXB_METRICS_RATING_H
#define MXB_METRICS_RATING_H

#include <stdbool.h>
#include <stdint.h>

#define RATING_AVAILABILITY_MAX 20.0
#define RATING_PENALTY_MAX      40.0
#define RATING_PENALTY_PAGES    2048  /* the OpenVMS slack above the goal */
#define RATING_LOAD_KEEP        0.979 /* per-second smoothing of the load */
#define RATING_CPU_MAX          100
#define RATING_CPU_PER_CPU      25 /* derived cpu-rating per online CPU */

struct rating_input {
	unsigned capacity;   /* session limit; 0 = unknown: no session terms */
	unsigned sessions;   /* open sessions; above capacity counts as full */
	unsigned cpu_rating; /* 1..100 (values outside are clamped) */
	double load;         /* smoothed CPU busy percent, 0..100 */
	uint64_t free_pages; /* memory available to new work */
	uint64_t goal_pages; /* the free-memory goal */
	bool draining;       /* rating forced to 0; the terms are still reported */
	bool unavailable;    /* cannot take mail (proto.h METRIC_F_UNAVAILABLE): as draining */
};

struct rating_result {
	double room;         /* free share of the capacity, 0..1 */
	double availability; /* 0..20 */
	double workload;     /* room * (cpu_rating/2 .. cpu_rating), as applied */
	double penalty;      /* 0..40, as applied */
	double rating;       /* >= 0 */
};

/* Apply the formula; never fails, every input is clamped to its range. */
void rating_compute(const struct rating_input *in, struct rating_result *out);

/* One second of smoothing: the new load from the old one and a busy sample. */
double rating_load_step(double load, double busy_percent);

/* cpu-rating 0 means "derive": 25 per online CPU, at least 25, at most 100. */
unsigned rating_cpu_derive(unsigned ncpu);

#endif
