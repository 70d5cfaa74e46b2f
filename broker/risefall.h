/*
 * risefall.h - the rise/fall rule of a repeated check: a verdict moves to
 * up only after `rise` good results in a row and to down only after `fall`
 * bad results in a row, so one lost packet does not move an answer.  The
 * metric polls and the service health checks of a cluster member
 * (cluster.h) both count with it.  Pure logic: no I/O, no clock, no
 * allocation; unit tested in tests/unit/test_cluster.c.
 */
#ifndef MXB_BROKER_RISEFALL_H
#define MXB_BROKER_RISEFALL_H

#include <stdbool.h>

/* The current runs of one check (a plain value; zeroed = nothing seen). */
struct risefall {
	unsigned goods; /* good results in a row (0 after a bad one) */
	unsigned bads;  /* bad results in a row (0 after a good one) */
};

/*
 * Count a good result; ends any run of bad ones.  True when the run of
 * good results has reached `rise` (this result and every one after it, so
 * the caller may set "up" again without harm).
 */
bool risefall_good(struct risefall *rf, unsigned rise);

/* Count a bad result, the mirror of risefall_good with `fall`. */
bool risefall_bad(struct risefall *rf, unsigned fall);

/* Forget both runs (the checked address changed). */
void risefall_reset(struct risefall *rf);

#endif
