/* risefall.c - count good and bad results in a row (risefall.h). */
#include "broker/risefall.h"

bool
risefall_good(struct risefall *rf, unsigned rise)
{
	rf->bads = 0;
	rf->goods++;
	return rf->goods >= rise;
}

bool
risefall_bad(struct risefall *rf, unsigned fall)
{
	rf->goods = 0;
	rf->bads++;
	return rf->bads >= fall;
}

void
risefall_reset(struct risefall *rf)
{
	rf->goods = 0;
	rf->bads = 0;
}
