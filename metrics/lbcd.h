/*
 * lbcd.h - the lbcd version 3 wire protocol (rra/lbcd, Debian package lbcd).
 *
 * Both ends: a client builds requests and validates replies (the broker
 * polls real lbcd daemons with this), and metricd answers lbcd requests on
 * `lbcd-listen` so an lbnamed-style poller can read our agents.  Layout and
 * semantics: /work/shared/reference/lbcd-protocol.md, summarised in
 * docs/protocol-metrics.md.  lbcd has no authentication: the only defence is
 * matching the reply's source address and 16-bit id to the request.
 *
 * Weight is lbcd's "busyness" (lower is better, LBCD_WEIGHT_DOWN means do
 * not use this host); our rating is the other way round.  The mapping, one
 * formula in each direction, is:
 *
 *   rating = 100 * LBCD_SCALE / (LBCD_SCALE + weight)        (0 when DOWN)
 *   weight = 100 * LBCD_SCALE / rating - LBCD_SCALE          (DOWN when 0)
 *
 * so weight 0 rates 100, one lbcd load step (200) rates 83, and the order
 * of hosts is preserved exactly.  All functions are pure and thread-safe.
 */
#ifndef MXB_METRICS_LBCD_H
#define MXB_METRICS_LBCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LBCD_VERSION        3
#define LBCD_OP_LBINFO      1
#define LBCD_HEADER_LEN     8
#define LBCD_NAME_LEN       32 /* NUL-padded service name */
#define LBCD_MAX_SERVICES   5
#define LBCD_REPLY_FIXED    36 /* header + host figures, before weights */
#define LBCD_REPLY_LEN(n)   (44 + 8 * (size_t)(n))
#define LBCD_REQUEST_LEN(n) (LBCD_HEADER_LEN + LBCD_NAME_LEN * (size_t)(n))
#define LBCD_PACKET_MAX     LBCD_REPLY_LEN(LBCD_MAX_SERVICES)
#define LBCD_WEIGHT_DOWN    0xffffffffU
#define LBCD_SCALE          1000 /* weight at which the rating halves */
#define LBCD_DEFAULT_INCR   200  /* lbcd's own load increment */

/* Header status codes. */
enum lbcd_status {
	LBCD_ST_REQUEST = 0,
	LBCD_ST_OK = 1,
	LBCD_ST_ERROR = 2, /* service not allowed */
	LBCD_ST_VERSION = 3,
	LBCD_ST_PROTOCOL = 4,
	LBCD_ST_UNKNOWN_OP = 5,
};

/* Outcome of lbcd_reply_parse / lbcd_request_parse. */
enum lbcd_err {
	LBCD_OK = 0,
	LBCD_E_SHORT,    /* shorter than a header */
	LBCD_E_LENGTH,   /* length does not match the service count */
	LBCD_E_VERSION,  /* not the version asked (or not 2/3 for a server) */
	LBCD_E_ID,       /* id is not the one sent */
	LBCD_E_OP,       /* op is not LBINFO */
	LBCD_E_STATUS,   /* reply status is an error: see out->hdr.status */
	LBCD_E_SERVICES, /* service count or name not acceptable */
};

struct lbcd_header {
	uint16_t version;
	uint16_t id;
	uint16_t op;
	uint16_t status; /* v3 request: number of services */
};

struct lbcd_weight {
	uint32_t weight;
	uint32_t incr;
};

struct lbcd_reply {
	struct lbcd_header hdr;
	uint32_t boot_time;
	uint32_t current_time;
	uint32_t user_mtime;
	uint16_t l1, l5, l15; /* load averages x 100 */
	uint16_t tot_users;
	uint16_t uniq_users;
	uint8_t on_console;
	uint8_t tmp_full;    /* percent */
	uint8_t tmpdir_full; /* percent */
	uint8_t services;    /* n: weights[0] is "default", then n more */
	struct lbcd_weight weights[LBCD_MAX_SERVICES + 1];
};

/* A parsed request, for the agent side. */
struct lbcd_request {
	struct lbcd_header hdr;
	unsigned nservices;
	char services[LBCD_MAX_SERVICES][LBCD_NAME_LEN]; /* NUL-terminated */
};

/*
 * Build a v3 request for `n` (0..5) services, each at most 31 characters
 * (n = 0 asks for the default weight only, which is what the broker does).
 * Returns the length, or 0 when buf is too small or a name does not fit.
 */
size_t lbcd_request_build(
    uint8_t *buf, size_t len, uint16_t id, const char *const *services, size_t n);

/*
 * The client's validating function: accept `buf` only as the reply to the
 * v3 request with `id` for `nservices` services.  LBCD_OK fills every field;
 * LBCD_E_STATUS means a well-formed error header (out->hdr.status); anything
 * else must be discarded.
 */
enum lbcd_err lbcd_reply_parse(
    const uint8_t *buf, size_t len, uint16_t id, unsigned nservices, struct lbcd_reply *out);

/*
 * The agent's validating function (as strict as lbcd: a wrong length gets
 * no answer).  LBCD_OK: answer with lbcd_reply_build.  LBCD_E_VERSION,
 * LBCD_E_OP, LBCD_E_SERVICES: answer with lbcd_error_build and
 * lbcd_err_status(e).  Anything else: stay silent.
 */
enum lbcd_err lbcd_request_parse(const uint8_t *buf, size_t len, struct lbcd_request *out);

/* The header status an agent answers for a request error. */
enum lbcd_status lbcd_err_status(enum lbcd_err e);

/* Write an 8-byte error header echoing `req`; returns 8, or 0 if buf is small. */
size_t lbcd_error_build(
    uint8_t *buf, size_t len, const struct lbcd_header *req, enum lbcd_status status);

/*
 * Write an OK reply for `req` from the figures in `r` (hdr and services are
 * taken from req; r->weights[0..req services] must be set).  Returns the
 * length, or 0 when buf is too small.
 */
size_t lbcd_reply_build(
    uint8_t *buf, size_t len, const struct lbcd_request *req, const struct lbcd_reply *r);

/* Weight to rating in thousandths (0 for LBCD_WEIGHT_DOWN), and back. */
int32_t lbcd_weight_to_rating(uint32_t weight);
uint32_t lbcd_rating_to_weight(int32_t rating_milli, bool draining);

const char *lbcd_strerror(enum lbcd_err e);
const char *lbcd_status_str(unsigned status);

#endif
