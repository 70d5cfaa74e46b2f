/*
 * fuzz_metric.c - libFuzzer target: the metric poll protocol both ways.
 *
 * The first input byte picks signed or unsigned (bit 0) and what the rest
 * is (bit 1): a datagram fed to the agent's validating function
 * (metric_request_parse) and to the poller's (metric_reply_parse), or a
 * relay /status body fed to relay_status_parse.  An accepted request must
 * yield a reply the poller accepts back (round trip), and no reply may
 * exceed a small multiple of the request (no amplification); an
 * unauthenticated error a keyed poller takes must be a key complaint; a
 * relay verdict is one of the documented flags.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "metrics/proto.h"
#include "metrics/relay.h"

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

static void
relay(const uint8_t *data, size_t size)
{
	struct relay_result r;
	int rc = relay_status_parse((const char *)data, size, &r);

	if ((rc == 0) != r.ok || (r.unavailable & ~METRIC_F_UNAVAILABLE) != 0 ||
	    (r.unavailable & METRIC_F_RELAY_DOWN) != 0)
		abort();
	if (strlen(r.reason) >= sizeof(r.reason) || strlen(r.detail) >= sizeof(r.detail))
		abort();
}

/* Only a key complaint may get past a keyed poller without a tag. */
static void
reply(const uint8_t *data, size_t size, const struct config_key *k, uint32_t seq)
{
	struct metric_reply out;
	enum metric_err e = metric_reply_parse(data, size, k, seq, data + 12, &out);

	if (k != NULL && e == METRIC_E_REMOTE && !out.authenticated &&
	    !metric_code_is_key(out.code))
		abort();
	if (k != NULL && e == METRIC_OK && !out.authenticated)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct config_key *k;
	struct metric_header hdr;
	uint32_t seq = 0;

	if (size < 1)
		return 0;
	k = (data[0] & 1) ? &key : NULL;
	if (data[0] & 2) {
		relay(data + 1, size - 1);
		return 0;
	}
	data++;
	size--;
	memset(&hdr, 0, sizeof(hdr));
	if (metric_request_parse(data, size, k, &hdr) == METRIC_OK)
		round_trip(&hdr, k, size);
	if (metric_packet_seq(data, size, &seq) && size >= METRIC_HEADER_LEN)
		reply(data, size, k, seq);
	return 0;
}
