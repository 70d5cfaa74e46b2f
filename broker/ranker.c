/* ranker.c - order cluster members by score and pick the answer. */
#include "broker/ranker.h"

#include <stdlib.h>

struct rank_ctx {
	const struct ranker_member *m;
	const int64_t *score;
};

int64_t
ranker_score(const struct ranker_member *m, enum config_policy policy, unsigned hysteresis)
{
	int64_t s = m->rating;

	if (m->published)
		s += (int64_t)hysteresis * 1000;
	if (policy == CONFIG_POLICY_WEIGHTED)
		s *= (int64_t)(m->weight != 0 ? m->weight : 1);
	return s;
}

/* Eligible before not; then score, published, weight, configuration order. */
static int
rank_cmp(const void *pa, const void *pb, void *arg)
{
	const struct rank_ctx *c = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	const struct ranker_member *ma = &c->m[a], *mb = &c->m[b];

	if (ma->eligible != mb->eligible)
		return ma->eligible ? -1 : 1;
	if (ma->eligible) {
		if (c->score[a] != c->score[b])
			return c->score[a] > c->score[b] ? -1 : 1;
		if (ma->published != mb->published)
			return ma->published ? -1 : 1;
		if (ma->weight != mb->weight)
			return ma->weight > mb->weight ? -1 : 1;
	}
	return a < b ? -1 : a > b;
}

size_t
ranker_rank(const struct ranker_member *m, size_t n, enum config_policy policy, unsigned hysteresis,
    size_t max, size_t *order, int64_t *scratch)
{
	struct rank_ctx c = {m, scratch};
	size_t eligible = 0;

	for (size_t i = 0; i < n; i++) {
		order[i] = i;
		scratch[i] = ranker_score(&m[i], policy, hysteresis);
		eligible += m[i].eligible;
	}
	if (n > 1)
		qsort_r(order, n, sizeof(order[0]), rank_cmp, &c);
	return eligible < max ? eligible : max;
}
