/*
 * fuzz_metric.c - libFuzzer target: the metric poll protocol both ways.
 *
 * The first input byte picks signed or unsigned; the rest is a datagram fed
 * to the agent's validating function (metric_request_parse) and to the
 * poller's (metric_reply_parse).  An accepted request must yield a reply the
 * poller accepts back (round trip), and no reply may exceed a small multiple
 * of the request (no amplification).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "metrics/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t secret[] = "fuzzing secret fuzzing secret!!";
static struct config_key key = {
    .name = (char *)"fuzz-key",
    .algorithm = CONFIG_HMAC_SHA256,
    .algorithm_name = "hmac-sha256",
    .secret = secret,
    .secret_len = sizeof(secret) - 1,
};

static void
round_trip(const struct metric_header *hdr, const struct config_key *k, size_t reqlen)
{
	struct metric_values v = {.rating = 42000, .capacity = 100, .sessions = 7};
	struct metric_reply back;
	uint8_t out[METRIC_PACKET_MAX];
	size_t n = metric_reply_build(out, sizeof(out), hdr, &v, k);

	if (n == 0 || n > 3 * reqlen)
		abort();
	if (metric_reply_parse(out, n, k, hdr->seq, hdr->nonce, &back) != METRIC_OK)
		abort();
	if (back.v.rating != v.rating || back.v.sessions != v.sessions)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct config_key *k;
	struct metric_header hdr;
	struct metric_reply reply;
	uint32_t seq = 0;

	if (size < 1)
		return 0;
	k = (data[0] & 1) ? &key : NULL;
	data++;
	size--;
	memset(&hdr, 0, sizeof(hdr));
	if (metric_request_parse(data, size, k, &hdr) == METRIC_OK)
		round_trip(&hdr, k, size);
	if (metric_packet_seq(data, size, &seq) && size >= METRIC_HEADER_LEN)
		(void)metric_reply_parse(data, size, k, seq, data + 8, &reply);
	return 0;
}
