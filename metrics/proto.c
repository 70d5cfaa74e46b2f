/* proto.c - encode and validate metricd poll packets (docs/protocol-metrics.md). */
#include "metrics/proto.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/config.h"
#include "common/bytes.h"

/* Header offsets. */
#define OFF_MAGIC   0
#define OFF_VERSION 4
#define OFF_TYPE    5
#define OFF_FLAGS   6
#define OFF_SEQ     8
#define OFF_NONCE   12

/* Reply body offsets. */
#define OFF_RATING   20
#define OFF_AVAIL    24
#define OFF_WORK     28
#define OFF_PENALTY  32
#define OFF_LOAD     36
#define OFF_CPU      40
#define OFF_STATUS   42
#define OFF_SESSIONS 44
#define OFF_CAPACITY 48
#define OFF_FREE     52
#define OFF_GOAL     60
#define OFF_COMPUTED 68
#define OFF_INTERVAL 76

/* Error body offsets. */
#define OFF_CODE   20
#define OFF_OURVER 22

static bool
has_key(const struct config_key *key)
{
	return key != NULL && key->secret_len > 0;
}

/* HMAC-SHA256 of buf[0..len) into tag; 0 or -1. */
static int
compute_tag(
    const struct config_key *key, const uint8_t *buf, size_t len, uint8_t tag[METRIC_TAG_LEN])
{
	unsigned int tlen = METRIC_TAG_LEN;

	if (HMAC(EVP_sha256(), key->secret, (int)key->secret_len, buf, len, tag, &tlen) == NULL ||
	    tlen != METRIC_TAG_LEN)
		return -1;
	return 0;
}

/* Append the tag to a body of `len` bytes; returns the new length or 0. */
static size_t
sign(const struct config_key *key, uint8_t *buf, size_t len)
{
	if (!has_key(key))
		return len;
	if (compute_tag(key, buf, len, buf + len) == -1)
		return 0;
	return len + METRIC_TAG_LEN;
}

/* True when the tag at buf[len] verifies for buf[0..len), in constant time. */
static bool
tag_ok(const struct config_key *key, const uint8_t *buf, size_t len)
{
	uint8_t want[METRIC_TAG_LEN];

	if (compute_tag(key, buf, len, want) == -1)
		return false;
	return CRYPTO_memcmp(want, buf + len, METRIC_TAG_LEN) == 0;
}

static void
put_header(
    uint8_t *buf, uint8_t type, uint32_t seq, const uint8_t *nonce, const struct config_key *key)
{
	wire_put32(buf + OFF_MAGIC, METRIC_MAGIC);
	buf[OFF_VERSION] = METRIC_VERSION;
	buf[OFF_TYPE] = type;
	wire_put16(buf + OFF_FLAGS, has_key(key) ? METRIC_H_SIGNED : 0);
	wire_put32(buf + OFF_SEQ, seq);
	memcpy(buf + OFF_NONCE, nonce, METRIC_NONCE_LEN);
}

/* Read the header; SHORT or MAGIC when it is not one of ours. */
static enum metric_err
get_header(const uint8_t *buf, size_t len, struct metric_header *h)
{
	if (len < METRIC_HEADER_LEN)
		return METRIC_E_SHORT;
	if (wire_get32(buf + OFF_MAGIC) != METRIC_MAGIC)
		return METRIC_E_MAGIC;
	h->version = buf[OFF_VERSION];
	h->type = buf[OFF_TYPE];
	h->flags = wire_get16(buf + OFF_FLAGS);
	h->seq = wire_get32(buf + OFF_SEQ);
	memcpy(h->nonce, buf + OFF_NONCE, METRIC_NONCE_LEN);
	if (h->version != METRIC_VERSION)
		return METRIC_E_VERSION;
	if ((h->flags & ~METRIC_H_SIGNED) != 0)
		return METRIC_E_FLAGS;
	return METRIC_OK;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/*
 * Check length and tag of a packet whose body is `body` bytes: the common
 * tail of every validating function.
 */
static enum metric_err
check_auth(const uint8_t *buf, size_t len, size_t body, const struct metric_header *h,
    const struct config_key *key)
{
	bool is_signed = (h->flags & METRIC_H_SIGNED) != 0;

	if (len != body + (is_signed ? METRIC_TAG_LEN : 0))
		return METRIC_E_LENGTH;
	if (!is_signed)
		return has_key(key) ? METRIC_E_UNSIGNED : METRIC_OK;
	if (!has_key(key))
		return METRIC_E_NO_KEY;
	return tag_ok(key, buf, body) ? METRIC_OK : METRIC_E_TAG;
}

size_t
metric_request_build(uint8_t *buf, size_t len, uint32_t seq, const uint8_t nonce[METRIC_NONCE_LEN],
    const struct config_key *key)
{
	if (len < METRIC_REQUEST_LEN + (has_key(key) ? METRIC_TAG_LEN : 0))
		return 0;
	memset(buf, 0, METRIC_REQUEST_LEN);
	put_header(buf, METRIC_T_REQUEST, seq, nonce, key);
	return sign(key, buf, METRIC_REQUEST_LEN);
}

enum metric_err
metric_request_parse(
    const uint8_t *buf, size_t len, const struct config_key *key, struct metric_header *hdr)
{
	enum metric_err e = get_header(buf, len, hdr);

	if (e != METRIC_OK)
		return e;
	if (hdr->type != METRIC_T_REQUEST)
		return METRIC_E_TYPE;
	if (len < METRIC_REQUEST_LEN)
		return METRIC_E_LENGTH;
	e = check_auth(buf, len, METRIC_REQUEST_LEN, hdr, key);
	if (e != METRIC_OK)
		return e;
	if (!all_zero(buf + METRIC_HEADER_LEN, METRIC_REQUEST_LEN - METRIC_HEADER_LEN))
		return METRIC_E_RESERVED;
	return METRIC_OK;
}

size_t
metric_reply_build(uint8_t *buf, size_t len, const struct metric_header *req,
    const struct metric_values *v, const struct config_key *key)
{
	if (len < METRIC_REPLY_LEN + (has_key(key) ? METRIC_TAG_LEN : 0))
		return 0;
	put_header(buf, METRIC_T_REPLY, req->seq, req->nonce, key);
	wire_put32(buf + OFF_RATING, (uint32_t)v->rating);
	wire_put32(buf + OFF_AVAIL, (uint32_t)v->availability);
	wire_put32(buf + OFF_WORK, (uint32_t)v->workload);
	wire_put32(buf + OFF_PENALTY, (uint32_t)v->penalty);
	wire_put32(buf + OFF_LOAD, v->load);
	wire_put16(buf + OFF_CPU, v->cpu_rating);
	wire_put16(buf + OFF_STATUS, (uint16_t)(v->flags & ~METRIC_F_LBCD));
	wire_put32(buf + OFF_SESSIONS, v->sessions);
	wire_put32(buf + OFF_CAPACITY, v->capacity);
	wire_put64(buf + OFF_FREE, v->free_bytes);
	wire_put64(buf + OFF_GOAL, v->goal_bytes);
	wire_put64(buf + OFF_COMPUTED, v->computed_ms);
	wire_put32(buf + OFF_INTERVAL, v->interval);
	return sign(key, buf, METRIC_REPLY_LEN);
}

size_t
metric_error_build(uint8_t *buf, size_t len, const struct metric_header *req, enum metric_code code,
    const struct config_key *key)
{
	if (len < METRIC_ERROR_LEN + (has_key(key) ? METRIC_TAG_LEN : 0))
		return 0;
	memset(buf, 0, METRIC_ERROR_LEN);
	put_header(buf, METRIC_T_ERROR, req->seq, req->nonce, key);
	wire_put16(buf + OFF_CODE, (uint16_t)code);
	wire_put16(buf + OFF_OURVER, METRIC_VERSION);
	return sign(key, buf, METRIC_ERROR_LEN);
}

static void
get_values(const uint8_t *buf, struct metric_values *v)
{
	v->rating = (int32_t)wire_get32(buf + OFF_RATING);
	v->availability = (int32_t)wire_get32(buf + OFF_AVAIL);
	v->workload = (int32_t)wire_get32(buf + OFF_WORK);
	v->penalty = (int32_t)wire_get32(buf + OFF_PENALTY);
	v->load = wire_get32(buf + OFF_LOAD);
	v->cpu_rating = wire_get16(buf + OFF_CPU);
	v->flags = wire_get16(buf + OFF_STATUS);
	v->sessions = wire_get32(buf + OFF_SESSIONS);
	v->capacity = wire_get32(buf + OFF_CAPACITY);
	v->free_bytes = wire_get64(buf + OFF_FREE);
	v->goal_bytes = wire_get64(buf + OFF_GOAL);
	v->computed_ms = wire_get64(buf + OFF_COMPUTED);
	v->interval = wire_get32(buf + OFF_INTERVAL);
}

/*
 * An unsigned error packet (length already checked) saying our key and the
 * agent's disagree: a keyed poller accepts it, since an agent with another
 * key (or none) cannot sign it.
 */
static bool
is_key_complaint(const uint8_t *buf, enum metric_err e, const struct metric_header *h)
{
	return e == METRIC_E_UNSIGNED && h->type == METRIC_T_ERROR &&
	    metric_code_is_key(wire_get16(buf + OFF_CODE));
}

enum metric_err
metric_reply_parse(const uint8_t *buf, size_t len, const struct config_key *key, uint32_t seq,
    const uint8_t nonce[METRIC_NONCE_LEN], struct metric_reply *out)
{
	size_t body;
	enum metric_err e;

	memset(out, 0, sizeof(*out));
	e = get_header(buf, len, &out->hdr);
	if (e != METRIC_OK)
		return e;
	if (out->hdr.type == METRIC_T_REPLY)
		body = METRIC_REPLY_LEN;
	else if (out->hdr.type == METRIC_T_ERROR)
		body = METRIC_ERROR_LEN;
	else
		return METRIC_E_TYPE;
	e = check_auth(buf, len, body, &out->hdr, key);
	if (e == METRIC_OK)
		out->authenticated = has_key(key);
	else if (is_key_complaint(buf, e, &out->hdr))
		e = METRIC_OK; /* unauthenticated: it can only fail the poll */
	if (e != METRIC_OK)
		return e;
	if (out->hdr.seq != seq)
		return METRIC_E_SEQ;
	if (CRYPTO_memcmp(out->hdr.nonce, nonce, METRIC_NONCE_LEN) != 0)
		return METRIC_E_NONCE;
	if (out->hdr.type == METRIC_T_ERROR) {
		if (!all_zero(buf + OFF_OURVER + 2, METRIC_ERROR_LEN - OFF_OURVER - 2))
			return METRIC_E_RESERVED;
		out->code = wire_get16(buf + OFF_CODE);
		out->remote_version = wire_get16(buf + OFF_OURVER);
		return METRIC_E_REMOTE;
	}
	get_values(buf, &out->v);
	if (out->v.load > 100000 || out->v.rating < 0 || out->v.penalty < 0)
		return METRIC_E_RESERVED;
	return METRIC_OK;
}

bool
metric_packet_seq(const uint8_t *buf, size_t len, uint32_t *seq)
{
	if (len < METRIC_HEADER_LEN || wire_get32(buf + OFF_MAGIC) != METRIC_MAGIC)
		return false;
	*seq = wire_get32(buf + OFF_SEQ);
	return true;
}

const char *
metric_strerror(enum metric_err e)
{
	static const char *const names[] = {
	    [METRIC_OK] = "ok",
	    [METRIC_E_SHORT] = "packet too short",
	    [METRIC_E_MAGIC] = "not a metricd packet",
	    [METRIC_E_VERSION] = "unsupported protocol version",
	    [METRIC_E_TYPE] = "unexpected packet type",
	    [METRIC_E_LENGTH] = "wrong packet length",
	    [METRIC_E_FLAGS] = "unknown header flags",
	    [METRIC_E_RESERVED] = "invalid field or reserved bytes",
	    [METRIC_E_UNSIGNED] = "unsigned packet where a key is required",
	    [METRIC_E_NO_KEY] = "signed packet but no key configured",
	    [METRIC_E_TAG] = "bad HMAC tag",
	    [METRIC_E_SEQ] = "sequence number mismatch",
	    [METRIC_E_NONCE] = "nonce mismatch",
	    [METRIC_E_REMOTE] = "agent answered with an error",
	};

	if ((unsigned)e >= sizeof(names) / sizeof(names[0]) || names[e] == NULL)
		return "unknown error";
	return names[e];
}

const char *
metric_code_str(unsigned code)
{
	switch (code) {
	case METRIC_CODE_VERSION: return "protocol version not supported";
	case METRIC_CODE_MALFORMED: return "malformed request";
	case METRIC_CODE_NO_KEY: return "agent has no key for signed requests";
	case METRIC_CODE_BADSIG: return "bad signature";
	case METRIC_CODE_SIG_REQUIRED: return "signature required";
	default: return "unknown error code";
	}
}

bool
metric_code_is_key(unsigned code)
{
	return code == METRIC_CODE_NO_KEY || code == METRIC_CODE_BADSIG ||
	    code == METRIC_CODE_SIG_REQUIRED;
}

const char *
metric_unavailable_str(uint16_t flags)
{
	static const struct {
		uint16_t bit;
		const char *why;
	} reasons[] = {
	    {METRIC_F_RELAY_DOWN, "relay not answering"},
	    {METRIC_F_RELAY_FULL, "relay at max-sessions"},
	    {METRIC_F_QUEUE_FAIL, "queue not writable"},
	    {METRIC_F_DISK_RESERVE, "disk below reserve"},
	    {METRIC_F_PAUSED, "relay paused"},
	};

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if ((flags & reasons[i].bit) != 0)
			return reasons[i].why;
	return NULL;
}
