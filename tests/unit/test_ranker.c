/* test_ranker.c - ranking, weights, hysteresis and ties (broker/ranker.h). */
#include <stddef.h>

#include "broker/ranker.h"
#include "tests/unit/tap.h"

#define R(rating, w, el, pub)                                                                      \
	{                                                                                          \
		(rating) * 1000, (w), (el), (pub)                                                  \
	}

static size_t order[16];
static int64_t scratch[16];

static void
test_ranked(void)
{
	struct ranker_member m[] = {R(20, 1, true, false), R(50, 1, true, false),
	    R(90, 1, true, false), R(70, 1, false, false)};
	size_t n = ranker_rank(m, 4, CONFIG_POLICY_RANKED, 0, 2, order, scratch);

	is_int(n, 2, "two chosen");
	is_int(order[0], 2, "best first");
	is_int(order[1], 1, "second");
	is_int(order[2], 0, "third eligible");
	is_int(order[3], 3, "ineligible last");
}

static void
test_fewer_than_max(void)
{
	struct ranker_member m[] = {R(20, 1, false, false), R(50, 1, true, false)};

	is_int(ranker_rank(m, 2, CONFIG_POLICY_RANKED, 0, 5, order, scratch), 1,
	    "only the eligible count");
	is_int(ranker_rank(m, 0, CONFIG_POLICY_RANKED, 0, 5, order, scratch), 0, "empty");
}

static void
test_hysteresis(void)
{
	/* .0 is published at 50; .1 at 52 does not beat it with hysteresis 5. */
	struct ranker_member m[] = {R(50, 1, true, true), R(52, 1, true, false)};

	ranker_rank(m, 2, CONFIG_POLICY_RANKED, 5, 1, order, scratch);
	is_int(order[0], 0, "published member kept within hysteresis");
	ranker_rank(m, 2, CONFIG_POLICY_RANKED, 0, 1, order, scratch);
	is_int(order[0], 1, "without hysteresis the better one wins");
	m[1].rating = 56000;
	ranker_rank(m, 2, CONFIG_POLICY_RANKED, 5, 1, order, scratch);
	is_int(order[0], 1, "beyond hysteresis the challenger wins");
}

static void
test_weighted(void)
{
	struct ranker_member m[] = {R(100, 1, true, false), R(40, 3, true, false)};

	ranker_rank(m, 2, CONFIG_POLICY_WEIGHTED, 0, 1, order, scratch);
	is_int(order[0], 1, "weight 3 x 40 beats 1 x 100");
	ranker_rank(m, 2, CONFIG_POLICY_RANKED, 0, 1, order, scratch);
	is_int(order[0], 0, "ranked ignores weight for the score");
	is_int(ranker_score(&m[1], CONFIG_POLICY_WEIGHTED, 0), 120000, "score");
}

static void
test_ties(void)
{
	struct ranker_member m[] = {R(50, 1, true, false), R(50, 2, true, false),
	    R(50, 1, true, true), R(50, 1, true, false)};

	ranker_rank(m, 4, CONFIG_POLICY_RANKED, 0, 4, order, scratch);
	is_int(order[0], 2, "tie: published first");
	is_int(order[1], 1, "tie: then higher weight");
	is_int(order[2], 0, "tie: then configuration order");
	is_int(order[3], 3, "tie: last");
}

static void
test_negative(void)
{
	struct ranker_member m[] = {R(-5, 1, true, false), R(0, 1, true, false)};

	ranker_rank(m, 2, CONFIG_POLICY_RANKED, 0, 1, order, scratch);
	is_int(order[0], 1, "negative ratings rank below zero");
}

int
main(void)
{
	test_ranked();
	test_fewer_than_max();
	test_hysteresis();
	test_weighted();
	test_ties();
	test_negative();
	return tap_done();
}
