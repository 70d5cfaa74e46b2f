/* fuzz_lbcd.c - libFuzzer target: lbcd v3 requests (agent) and replies (poller). */
#include <stdint.h>
#include <stdlib.h>

#include "metrics/lbcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lbcd_request req;
	struct lbcd_reply reply;
	uint16_t id = size >= 4 ? (uint16_t)(data[2] << 8 | data[3]) : 0;

	if (lbcd_request_parse(data, size, &req) == LBCD_OK && req.nservices > LBCD_MAX_SERVICES)
		abort();
	for (unsigned n = 0; n <= LBCD_MAX_SERVICES; n++)
		if (lbcd_reply_parse(data, size, id, n, &reply) == LBCD_OK &&
		    reply.services > LBCD_MAX_SERVICES)
			abort();
	return 0;
}
