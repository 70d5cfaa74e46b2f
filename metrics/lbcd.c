/* lbcd.c - lbcd v3 request/reply codec and the weight <-> rating mapping. */
#include "metrics/lbcd.h"

#include <string.h>

#include "common/bytes.h"

/* Reply offsets (reference/lbcd-protocol.md 2.4). */
#define OFF_BOOT       8
#define OFF_CURRENT    12
#define OFF_USER_MTIME 16
#define OFF_L1         20
#define OFF_L5         22
#define OFF_L15        24
#define OFF_TOT        26
#define OFF_UNIQ       28
#define OFF_CONSOLE    30
#define OFF_TMP        32
#define OFF_TMPDIR     33
#define OFF_SERVICES   35
#define OFF_WEIGHTS    36

/* Every lbcd packet starts with the same four big-endian words; one writer keeps them in order. */
static void
put_header(uint8_t *buf, const struct lbcd_header *h)
{
	wire_put16(buf, h->version);
	wire_put16(buf + 2, h->id);
	wire_put16(buf + 4, h->op);
	wire_put16(buf + 6, h->status);
}

/*
 * Callers have checked the length first: the header is read before any
 * field is trusted, so the id and status can be matched against the request.
 */
static void
get_header(const uint8_t *buf, struct lbcd_header *h)
{
	h->version = wire_get16(buf);
	h->id = wire_get16(buf + 2);
	h->op = wire_get16(buf + 4);
	h->status = wire_get16(buf + 6);
}

/*
 * lbcd v3 puts the service count in the status word and pads names with
 * NULs; a name that does not fit is refused rather than truncated, since a
 * truncated name would ask lbcd for a different service.
 */
size_t
lbcd_request_build(uint8_t *buf, size_t len, uint16_t id, const char *const *services, size_t n)
{
	struct lbcd_header h = {LBCD_VERSION, id, LBCD_OP_LBINFO, (uint16_t)n};

	if (n > LBCD_MAX_SERVICES || len < LBCD_REQUEST_LEN(n))
		return 0;
	put_header(buf, &h);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(services[i]);
		uint8_t *field = buf + LBCD_HEADER_LEN + i * LBCD_NAME_LEN;

		if (l == 0 || l >= LBCD_NAME_LEN)
			return 0;
		memset(field, 0, LBCD_NAME_LEN);
		memcpy(field, services[i], l);
	}
	return LBCD_REQUEST_LEN(n);
}

/*
 * Only called after lbcd_reply_parse has matched the length to the service
 * count, so the weights loop cannot read past the packet.
 */
static void
get_reply_body(const uint8_t *buf, struct lbcd_reply *r)
{
	r->boot_time = wire_get32(buf + OFF_BOOT);
	r->current_time = wire_get32(buf + OFF_CURRENT);
	r->user_mtime = wire_get32(buf + OFF_USER_MTIME);
	r->l1 = wire_get16(buf + OFF_L1);
	r->l5 = wire_get16(buf + OFF_L5);
	r->l15 = wire_get16(buf + OFF_L15);
	r->tot_users = wire_get16(buf + OFF_TOT);
	r->uniq_users = wire_get16(buf + OFF_UNIQ);
	r->on_console = buf[OFF_CONSOLE];
	r->tmp_full = buf[OFF_TMP];
	r->tmpdir_full = buf[OFF_TMPDIR];
	r->services = buf[OFF_SERVICES];
	for (unsigned i = 0; i <= r->services; i++) {
		r->weights[i].weight = wire_get32(buf + OFF_WEIGHTS + 8 * i);
		r->weights[i].incr = wire_get32(buf + OFF_WEIGHTS + 8 * i + 4);
	}
}

/*
 * lbcd has no authentication: the id and the exact length for the services
 * we asked are all that stands between a spoofed packet and a rating, so
 * the whole header and the length are checked before the body is read.
 */
enum lbcd_err
lbcd_reply_parse(
    const uint8_t *buf, size_t len, uint16_t id, unsigned nservices, struct lbcd_reply *out)
{
	memset(out, 0, sizeof(*out));
	if (len < LBCD_HEADER_LEN)
		return LBCD_E_SHORT;
	get_header(buf, &out->hdr);
	if (out->hdr.id != id)
		return LBCD_E_ID;
	if (out->hdr.status != LBCD_ST_OK) {
		/* Error replies are a bare header and always say version 3. */
		if (len != LBCD_HEADER_LEN || out->hdr.version != LBCD_VERSION)
			return LBCD_E_LENGTH;
		return LBCD_E_STATUS;
	}
	if (out->hdr.version != LBCD_VERSION)
		return LBCD_E_VERSION;
	if (out->hdr.op != LBCD_OP_LBINFO)
		return LBCD_E_OP;
	if (nservices > LBCD_MAX_SERVICES || len != LBCD_REPLY_LEN(nservices))
		return LBCD_E_LENGTH;
	if (buf[OFF_SERVICES] != nservices)
		return LBCD_E_SERVICES;
	get_reply_body(buf, out);
	return LBCD_OK;
}

/*
 * As strict as lbcd itself (a wrong length gets no answer), so that an
 * lbnamed poller sees the same behaviour from us as from a real lbcd, and a
 * forged packet cannot make us answer with more than it sent.
 */
enum lbcd_err
lbcd_request_parse(const uint8_t *buf, size_t len, struct lbcd_request *out)
{
	memset(out, 0, sizeof(*out));
	if (len < LBCD_HEADER_LEN)
		return LBCD_E_SHORT;
	get_header(buf, &out->hdr);
	if (out->hdr.version == 2) {
		if (len != LBCD_HEADER_LEN)
			return LBCD_E_LENGTH;
	} else if (out->hdr.version == LBCD_VERSION) {
		if (out->hdr.status > LBCD_MAX_SERVICES)
			return LBCD_E_LENGTH;
		if (len != LBCD_REQUEST_LEN(out->hdr.status))
			return LBCD_E_LENGTH;
		out->nservices = out->hdr.status;
	} else {
		return LBCD_E_VERSION;
	}
	if (out->hdr.op != LBCD_OP_LBINFO)
		return LBCD_E_OP;
	for (unsigned i = 0; i < out->nservices; i++) {
		const uint8_t *field = buf + LBCD_HEADER_LEN + i * LBCD_NAME_LEN;

		memcpy(out->services[i], field, LBCD_NAME_LEN - 1);
		out->services[i][LBCD_NAME_LEN - 1] = '\0';
		/* We compute one weight only: "default" is the one service. */
		if (strcmp(out->services[i], "default") != 0)
			return LBCD_E_SERVICES;
	}
	return LBCD_OK;
}

/* lbcd answers a bad version, op or service with these codes; pollers key on them. */
enum lbcd_status
lbcd_err_status(enum lbcd_err e)
{
	switch (e) {
	case LBCD_E_VERSION: return LBCD_ST_VERSION;
	case LBCD_E_OP: return LBCD_ST_UNKNOWN_OP;
	case LBCD_E_SERVICES: return LBCD_ST_ERROR;
	default: return LBCD_ST_PROTOCOL;
	}
}

/*
 * An error reply is a bare header that echoes the request's id and op, so a
 * poller can match it; it always says version 3, as lbcd does.
 */
size_t
lbcd_error_build(uint8_t *buf, size_t len, const struct lbcd_header *req, enum lbcd_status status)
{
	struct lbcd_header h = {LBCD_VERSION, req->id, req->op, (uint16_t)status};

	if (len < LBCD_HEADER_LEN)
		return 0;
	put_header(buf, &h);
	return LBCD_HEADER_LEN;
}

/*
 * The header echoes the request's version and id (lbnamed matches on them);
 * the buffer is zeroed first so no stale bytes of the caller's buffer leave
 * in the fields we do not fill.
 */
size_t
lbcd_reply_build(
    uint8_t *buf, size_t len, const struct lbcd_request *req, const struct lbcd_reply *r)
{
	struct lbcd_header h = {req->hdr.version, req->hdr.id, LBCD_OP_LBINFO, LBCD_ST_OK};
	size_t n = req->nservices, total = LBCD_REPLY_LEN(n);

	if (len < total)
		return 0;
	memset(buf, 0, total);
	put_header(buf, &h);
	wire_put32(buf + OFF_BOOT, r->boot_time);
	wire_put32(buf + OFF_CURRENT, r->current_time);
	wire_put32(buf + OFF_USER_MTIME, r->user_mtime);
	wire_put16(buf + OFF_L1, r->l1);
	wire_put16(buf + OFF_L5, r->l5);
	wire_put16(buf + OFF_L15, r->l15);
	wire_put16(buf + OFF_TOT, r->tot_users);
	wire_put16(buf + OFF_UNIQ, r->uniq_users);
	buf[OFF_CONSOLE] = r->on_console;
	buf[OFF_TMP] = r->tmp_full;
	buf[OFF_TMPDIR] = r->tmpdir_full;
	buf[OFF_SERVICES] = (uint8_t)n;
	for (size_t i = 0; i <= n; i++) {
		wire_put32(buf + OFF_WEIGHTS + 8 * i, r->weights[i].weight);
		wire_put32(buf + OFF_WEIGHTS + 8 * i + 4, r->weights[i].incr);
	}
	return total;
}

/*
 * Integer arithmetic with rounding keeps the mapping exact and monotonic, so
 * the broker orders lbcd hosts exactly as lbcd's weights do (lbcd.h).
 */
int32_t
lbcd_weight_to_rating(uint32_t weight)
{
	if (weight == LBCD_WEIGHT_DOWN)
		return 0;
	/* 100 * SCALE / (SCALE + w), in thousandths, rounded. */
	return (int32_t)((100000ULL * LBCD_SCALE + (LBCD_SCALE + (uint64_t)weight) / 2) /
	    (LBCD_SCALE + (uint64_t)weight));
}

/*
 * The inverse of lbcd_weight_to_rating.  A rating of 0 maps just below DOWN:
 * a busy host is still usable; only draining means "do not use".
 */
uint32_t
lbcd_rating_to_weight(int32_t rating_milli, bool draining)
{
	uint64_t w;

	if (draining)
		return LBCD_WEIGHT_DOWN;
	if (rating_milli <= 0)
		return LBCD_WEIGHT_DOWN - 1; /* busiest, yet not "do not use" */
	if (rating_milli >= 100000)
		return 0;
	w = (100000ULL * LBCD_SCALE + (uint64_t)rating_milli / 2) / (uint64_t)rating_milli -
	    LBCD_SCALE;
	return w >= LBCD_WEIGHT_DOWN ? LBCD_WEIGHT_DOWN - 1 : (uint32_t)w;
}

/* For log lines: a parse failure is logged once, with the peer, by the caller. */
const char *
lbcd_strerror(enum lbcd_err e)
{
	switch (e) {
	case LBCD_OK: return "ok";
	case LBCD_E_SHORT: return "packet too short";
	case LBCD_E_LENGTH: return "wrong packet length";
	case LBCD_E_VERSION: return "unsupported protocol version";
	case LBCD_E_ID: return "request id mismatch";
	case LBCD_E_OP: return "unknown operation";
	case LBCD_E_STATUS: return "lbcd answered with an error";
	case LBCD_E_SERVICES: return "service not available";
	}
	return "unknown error";
}

/* A status comes from the network, so any value must map to a name. */
const char *
lbcd_status_str(unsigned status)
{
	static const char *const names[] = {"request", "ok", "service not allowed",
	    "version not supported", "protocol error", "unknown operation"};

	return status < sizeof(names) / sizeof(names[0]) ? names[status] : "unknown status";
}
