/*
 * ranker.h - which members of a cluster go into the answer: pure logic, no
 * I/O, no clock, no allocation (the caller owns every array), so it is unit
 * tested on its own (tests/unit/test_ranker.c).
 *
 * Eligible members (up, healthy, not drained) are ordered by score, highest
 * first; the answer is the first `max` of them.  Score: the rating
 * (thousandths) under policy ranked, the rating times the member's weight
 * under policy weighted.  Hysteresis: a member already in the answer has
 * `hysteresis` rating points (scaled like the rating) added to its score,
 * so a challenger must beat it by more than that to take its place; the
 * published set does not flap between two members of near-equal load.
 * Ties go to the published member, then the higher weight, then the member
 * listed first in the configuration, so the order is total and stable.
 */
#ifndef MXB_BROKER_RANKER_H
#define MXB_BROKER_RANKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

/* What the ranker needs to know of one member (a plain value). */
struct ranker_member {
	int32_t rating;  /* thousandths; negative ratings rank below zero */
	unsigned weight; /* 1..1000 */
	bool eligible;   /* up, healthy and not drained */
	bool published;  /* in the answer now (hysteresis applies) */
};

/*
 * Rank the n members of m.  order (room for n) receives every index: the
 * eligible members best first, then the others in configuration order.
 * Returns how many of the first entries of order form the answer:
 * min(max, number of eligible members).  `scratch` must have room for n
 * int64_t (the scores).  Thread-safe: no state.
 */
size_t ranker_rank(const struct ranker_member *m, size_t n, enum config_policy policy,
    unsigned hysteresis, size_t max, size_t *order, int64_t *scratch);

/* The score ranker_rank orders by, for /status and the logs. */
int64_t ranker_score(const struct ranker_member *m, enum config_policy policy, unsigned hysteresis);

#endif
