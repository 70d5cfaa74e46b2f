/* test_metric_proto.c - the metricd poll protocol: round trips, tampering, replay. */
#include <string.h>

#include "common/config.h"
#include "metrics/proto.h"
#include "tests/unit/tap.h"

static uint8_t secret[] = "merge me into a real key\n";
static struct config_key key = {
    (char *)"lb-key", CONFIG_HMAC_SHA256, "hmac-sha256", NULL, secret, sizeof(secret) - 1};
static uint8_t other_secret[] = "a different secret";
static struct config_key other = {(char *)"other", CONFIG_HMAC_SHA256, "hmac-sha256", NULL,
    other_secret, sizeof(other_secret) - 1};
static const uint8_t nonce[METRIC_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 0xf8};

static const struct metric_values sample = {
    .rating = 72345,
    .availability = 18000,
    .workload = 54345,
    .penalty = 0,
    .load = 12345,
    .cpu_rating = 60,
    .flags = METRIC_F_RELAY | METRIC_F_CPU_DERIVED,
    .sessions = 10,
    .capacity = 100,
    .free_bytes = 0x123456789aULL,
    .goal_bytes = 1ULL << 30,
    .computed_ms = 1700000000123ULL,
    .interval = 10,
};

static size_t
make_reply(uint8_t *buf, size_t cap, uint32_t seq, const struct config_key *k)
{
	struct metric_header req = {METRIC_VERSION, METRIC_T_REQUEST, 0, seq, {0}};

	memcpy(req.nonce, nonce, sizeof(nonce));
	return metric_reply_build(buf, cap, &req, &sample, k);
}

static void
test_request_round_trip(void)
{
	uint8_t buf[METRIC_PACKET_MAX];
	struct metric_header h;
	size_t len;

	len = metric_request_build(buf, sizeof(buf), 0xdeadbeef, nonce, NULL);
	is_int((long long)len, METRIC_REQUEST_LEN, "unsigned request is 48 bytes");
	ok(metric_request_parse(buf, len, NULL, &h) == METRIC_OK, "unsigned request parses");
	ok(h.seq == 0xdeadbeef && memcmp(h.nonce, nonce, sizeof(nonce)) == 0,
	    "sequence and nonce read back");
	is_int(metric_request_parse(buf, len, &key, &h), METRIC_E_UNSIGNED,
	    "a keyed agent ignores unsigned requests");

	len = metric_request_build(buf, sizeof(buf), 7, nonce, &key);
	is_int((long long)len, METRIC_REQUEST_LEN + METRIC_TAG_LEN, "signed request is 80 bytes");
	ok(metric_request_parse(buf, len, &key, &h) == METRIC_OK, "signed request verifies");
	is_int(metric_request_parse(buf, len, &other, &h), METRIC_E_TAG, "wrong key: bad tag");
	is_int(metric_request_parse(buf, len, NULL, &h), METRIC_E_NO_KEY,
	    "signed request to an agent without key");
	buf[30] ^= 1;
	is_int(metric_request_parse(buf, len, &key, &h), METRIC_E_TAG, "tampered padding: bad tag");

	len = metric_request_build(buf, sizeof(buf), 7, nonce, NULL);
	buf[40] = 1;
	is_int(metric_request_parse(buf, len, NULL, &h), METRIC_E_RESERVED,
	    "non-zero reserved bytes refused");
	buf[40] = 0;
	buf[4] = 2;
	is_int(metric_request_parse(buf, len, NULL, &h), METRIC_E_VERSION, "version 2 refused");
	ok(h.seq == 7, "header still read for the error reply");
	buf[4] = METRIC_VERSION;
	buf[5] = METRIC_T_REPLY;
	is_int(metric_request_parse(buf, len, NULL, &h), METRIC_E_TYPE, "a reply is no request");
	buf[5] = METRIC_T_REQUEST;
	is_int(metric_request_parse(buf, len - 1, NULL, &h), METRIC_E_LENGTH, "short request");
	is_int(metric_request_parse(buf, 10, NULL, &h), METRIC_E_SHORT, "shorter than a header");
	buf[0] = 'X';
	is_int(metric_request_parse(buf, len, NULL, &h), METRIC_E_MAGIC, "not our magic");
	is_int((long long)metric_request_build(buf, 47, 1, nonce, NULL), 0, "buffer too small");
}

static void
test_reply_round_trip(void)
{
	uint8_t buf[METRIC_PACKET_MAX];
	struct metric_reply r;
	size_t len;

	len = make_reply(buf, sizeof(buf), 42, NULL);
	is_int((long long)len, METRIC_REPLY_LEN, "unsigned reply is 80 bytes");
	ok(metric_reply_parse(buf, len, NULL, 42, nonce, &r) == METRIC_OK, "reply parses");
	ok(memcmp(&r.v, &sample, sizeof(sample)) == 0, "every value round-trips");

	len = make_reply(buf, sizeof(buf), 42, &key);
	is_int((long long)len, METRIC_PACKET_MAX, "signed reply is 112 bytes");
	ok(metric_reply_parse(buf, len, &key, 42, nonce, &r) == METRIC_OK, "signed reply verifies");
	ok(memcmp(&r.v, &sample, sizeof(sample)) == 0, "signed values round-trip");
	ok(METRIC_REPLY_LEN * 10 <= METRIC_REQUEST_LEN * 17 &&
	        METRIC_PACKET_MAX * 10 <= (METRIC_REQUEST_LEN + METRIC_TAG_LEN) * 14,
	    "no amplification: reply <= 1.7x request, signed <= 1.4x");
	ok(METRIC_ERROR_LEN <= METRIC_REQUEST_LEN, "an error is smaller than a request");
}

static void
test_reply_rejections(void)
{
	uint8_t buf[METRIC_PACKET_MAX + 1], bad[METRIC_NONCE_LEN];
	struct metric_reply r;
	size_t len;

	len = make_reply(buf, sizeof(buf), 42, &key);
	is_int(metric_reply_parse(buf, len, &key, 43, nonce, &r), METRIC_E_SEQ,
	    "sequence mismatch rejected");
	memcpy(bad, nonce, sizeof(bad));
	bad[7] ^= 0x40;
	is_int(metric_reply_parse(buf, len, &key, 42, bad, &r), METRIC_E_NONCE,
	    "nonce mismatch rejected (replayed reply)");
	is_int(metric_reply_parse(buf, len, &other, 42, nonce, &r), METRIC_E_TAG,
	    "other key rejected");
	is_int(metric_reply_parse(buf, len, NULL, 42, nonce, &r), METRIC_E_NO_KEY,
	    "signed reply where none was expected");
	is_int(metric_reply_parse(buf, len - 1, &key, 42, nonce, &r), METRIC_E_LENGTH,
	    "truncated tag rejected");
	buf[len] = 0;
	is_int(metric_reply_parse(buf, len + 1, &key, 42, nonce, &r), METRIC_E_LENGTH,
	    "trailing byte rejected");

	len = make_reply(buf, sizeof(buf), 42, NULL);
	is_int(metric_reply_parse(buf, len, &key, 42, nonce, &r), METRIC_E_UNSIGNED,
	    "unsigned reply to a signed poll rejected");
	memcpy(bad, nonce, sizeof(bad));
	bad[0] ^= 1;
	is_int(metric_reply_parse(buf, len, NULL, 42, bad, &r), METRIC_E_NONCE,
	    "unsigned: nonce mismatch rejected too");
}

/* Flip every bit pattern of every byte: nothing may verify. */
static void
test_every_tampered_byte(void)
{
	static const uint8_t flips[] = {0x01, 0x80, 0xff};
	uint8_t good[METRIC_PACKET_MAX], buf[METRIC_PACKET_MAX];
	struct metric_reply r;
	size_t len = make_reply(good, sizeof(good), 99, &key);
	unsigned accepted = 0, tried = 0;

	for (size_t i = 0; i < len; i++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			memcpy(buf, good, len);
			buf[i] ^= flips[f];
			tried++;
			if (metric_reply_parse(buf, len, &key, 99, nonce, &r) == METRIC_OK) {
				accepted++;
				tap_diag("byte %zu ^ 0x%02x accepted", i, flips[f]);
			}
		}
	}
	is_int(accepted, 0, "all %u tampered signed replies rejected", tried);
	memcpy(buf, good, len);
	ok(metric_reply_parse(buf, len, &key, 99, nonce, &r) == METRIC_OK,
	    "the untouched reply still verifies");
}

static void
test_errors(void)
{
	struct metric_header req = {METRIC_VERSION, METRIC_T_REQUEST, 0, 5, {0}};
	uint8_t buf[METRIC_PACKET_MAX];
	struct metric_reply r;
	size_t len;

	memcpy(req.nonce, nonce, sizeof(nonce));
	len = metric_error_build(buf, sizeof(buf), &req, METRIC_CODE_VERSION, NULL);
	is_int((long long)len, METRIC_ERROR_LEN, "error packet is 28 bytes");
	is_int(metric_reply_parse(buf, len, NULL, 5, nonce, &r), METRIC_E_REMOTE,
	    "error packet recognised");
	is_int(r.code, METRIC_CODE_VERSION, "error code read back");
	is_int(r.remote_version, METRIC_VERSION, "agent's version read back");
	is_int(metric_reply_parse(buf, len, &key, 5, nonce, &r), METRIC_E_UNSIGNED,
	    "an unsigned error cannot fail a signed poll");
	len = metric_error_build(buf, sizeof(buf), &req, METRIC_CODE_MALFORMED, &key);
	is_int(metric_reply_parse(buf, len, &key, 5, nonce, &r), METRIC_E_REMOTE,
	    "signed error packet verifies");
	ok(strcmp(metric_strerror(METRIC_E_NONCE), "nonce mismatch") == 0, "strerror");
	ok(strcmp(metric_strerror((enum metric_err)999), "unknown error") == 0,
	    "strerror out of range");
}

/* Key complaints: the one unsigned answer a signed poll takes, and only as a failure. */
static void
test_key_errors(void)
{
	struct metric_header req = {METRIC_VERSION, METRIC_T_REQUEST, 0, 6, {0}};
	uint8_t buf[METRIC_PACKET_MAX], bad[METRIC_NONCE_LEN];
	struct metric_reply r;
	size_t len;

	memcpy(req.nonce, nonce, sizeof(nonce));
	len = metric_error_build(buf, sizeof(buf), &req, METRIC_CODE_BADSIG, NULL);
	is_int((long long)len, METRIC_ERROR_LEN, "BADSIG error is 28 bytes, unsigned");
	ok(len < METRIC_REQUEST_LEN + METRIC_TAG_LEN, "smaller than the signed request");
	is_int(metric_reply_parse(buf, len, &key, 6, nonce, &r), METRIC_E_REMOTE,
	    "a signed poll takes an unsigned BADSIG");
	is_int(r.code, METRIC_CODE_BADSIG, "code 4");
	ok(!r.authenticated, "flagged unauthenticated");
	is_int(metric_reply_parse(buf, len, &key, 7, nonce, &r), METRIC_E_SEQ,
	    "BADSIG for another sequence number: discarded");
	memcpy(bad, nonce, sizeof(bad));
	bad[2] ^= 4;
	is_int(metric_reply_parse(buf, len, &key, 6, bad, &r), METRIC_E_NONCE,
	    "forged BADSIG with a wrong nonce: discarded");
	is_int(metric_reply_parse(buf, len, NULL, 6, nonce, &r), METRIC_E_REMOTE,
	    "an unsigned poll takes it too");

	len = metric_error_build(buf, sizeof(buf), &req, METRIC_CODE_SIG_REQUIRED, NULL);
	is_int(metric_reply_parse(buf, len, &key, 6, nonce, &r), METRIC_E_REMOTE,
	    "unsigned SIG_REQUIRED accepted");
	is_int(r.code, METRIC_CODE_SIG_REQUIRED, "code 5");
	len = metric_error_build(buf, sizeof(buf), &req, METRIC_CODE_NO_KEY, NULL);
	is_int(metric_reply_parse(buf, len, &key, 6, nonce, &r), METRIC_E_REMOTE,
	    "unsigned NO_KEY accepted");
	len = metric_error_build(buf, sizeof(buf), &req, METRIC_CODE_MALFORMED, NULL);
	is_int(metric_reply_parse(buf, len, &key, 6, nonce, &r), METRIC_E_UNSIGNED,
	    "an unsigned non-key error still cannot fail a signed poll");
	len = metric_error_build(buf, sizeof(buf), &req, METRIC_CODE_BADSIG, &key);
	is_int(metric_reply_parse(buf, len, &key, 6, nonce, &r), METRIC_E_REMOTE,
	    "a signed BADSIG verifies");
	ok(r.authenticated, "and is authenticated");
	buf[len - 1] ^= 1;
	is_int(metric_reply_parse(buf, len, &key, 6, nonce, &r), METRIC_E_TAG,
	    "a signed one with a broken tag is discarded");

	is_str(metric_code_str(METRIC_CODE_BADSIG), "bad signature", "code 4 string");
	is_str(metric_code_str(METRIC_CODE_SIG_REQUIRED), "signature required", "code 5 string");
	ok(metric_code_is_key(3) && metric_code_is_key(4) && metric_code_is_key(5) &&
	        !metric_code_is_key(1) && !metric_code_is_key(2) && !metric_code_is_key(6),
	    "key codes are 3, 4 and 5");
}

static void
test_unavailable_str(void)
{
	ok(metric_unavailable_str(0) == NULL, "no flags: available");
	ok(metric_unavailable_str(METRIC_F_RELAY | METRIC_F_DRAINING | METRIC_F_PENALTY |
	       METRIC_F_CPU_DERIVED) == NULL,
	    "other flags: available");
	is_str(metric_unavailable_str(METRIC_F_RELAY_DOWN), "relay not answering", "relay-down");
	is_str(metric_unavailable_str(METRIC_F_RELAY_FULL | METRIC_F_PAUSED),
	    "relay at max-sessions", "the first bit wins");
	is_str(metric_unavailable_str(METRIC_F_QUEUE_FAIL), "queue not writable", "queue");
	is_str(metric_unavailable_str(METRIC_F_DISK_RESERVE), "disk below reserve", "disk");
	is_str(metric_unavailable_str(METRIC_F_PAUSED), "relay paused", "paused");
	is_int(METRIC_F_UNAVAILABLE, 0x01e4, "METRIC_F_UNAVAILABLE is 0x0004|0x0020..0x0100");
}

static void
test_packet_seq(void)
{
	uint8_t buf[METRIC_PACKET_MAX];
	uint32_t seq = 0;
	size_t len = make_reply(buf, sizeof(buf), 0x00010002, NULL);

	ok(metric_packet_seq(buf, len, &seq) && seq == 0x00010002, "sequence peeked");
	ok(!metric_packet_seq(buf, 19, &seq), "too short to peek");
	buf[1] = 0;
	ok(!metric_packet_seq(buf, len, &seq), "foreign packet not peeked");
}

int
main(void)
{
	test_request_round_trip();
	test_reply_round_trip();
	test_reply_rejections();
	test_every_tampered_byte();
	test_errors();
	test_key_errors();
	test_unavailable_str();
	test_packet_seq();
	return tap_done();
}
