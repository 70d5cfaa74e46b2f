/* server.c - answer native and lbcd polls from the agent's values (see server.h). */
#include "metrics/server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/log.h"
#include "metrics/agent.h"
#include "metrics/lbcd.h"
#include "metrics/proto.h"

#define SERVER_BURST   64   /* datagrams handled per wake-up */
#define SERVER_BUFSIZE 2048 /* larger requests are malformed anyway */

struct metric_server {
	struct event_base *base;
	struct agent *agent;
	enum metric_server_kind kind;
	struct addr bound;
	int fd;
	struct event *ev;
	struct log_ratelimit rl;
	struct log_ratelimit auth_rl; /* key mismatches: per-packet, from anyone */
};

static void
send_to(struct metric_server *s, const uint8_t *buf, size_t len, const struct addr *to)
{
	char where[ADDR_STRLEN];

	if (len == 0)
		return;
	if (sendto(s->fd, buf, len, 0, addr_sa(to), to->len) == -1)
		log_warnx_rl(&s->rl, "metrics: reply to %s: %s", addr_str(to, where, sizeof(where)),
		    strerror(errno));
}

/*
 * Map a request error to the error code we may answer, or 0 for silence.
 * A keyed agent names only a key mismatch (as TSIG answers BADSIG), so a
 * poller with the wrong key hears why instead of timing out; the parser
 * returns TAG and UNSIGNED only for full-length requests, so the error is
 * still smaller than what provoked it.
 */
static enum metric_code
native_error_code(enum metric_err e, bool keyed)
{
	switch (e) {
	case METRIC_E_VERSION: return keyed ? 0 : METRIC_CODE_VERSION;
	case METRIC_E_TYPE:
	case METRIC_E_LENGTH:
	case METRIC_E_FLAGS:
	case METRIC_E_RESERVED: return keyed ? 0 : METRIC_CODE_MALFORMED;
	case METRIC_E_NO_KEY: return METRIC_CODE_NO_KEY;
	case METRIC_E_TAG: return METRIC_CODE_BADSIG;
	case METRIC_E_UNSIGNED: return METRIC_CODE_SIG_REQUIRED;
	default: return 0;
	}
}

/* Count and log (rate-limited, with the source) a key mismatch we answer. */
static void
note_key_mismatch(struct metric_server *s, enum metric_code code, const struct addr *from)
{
	const struct config_key *key = agent_key(s->agent);
	struct agent_counters *c = agent_counters(s->agent);
	char where[ADDR_STRLEN];

	addr_str(from, where, sizeof(where));
	if (code == METRIC_CODE_BADSIG)
		c->bad_signature++;
	else if (code == METRIC_CODE_SIG_REQUIRED)
		c->signature_required++;
	else
		c->signed_without_key++;
	if (key != NULL)
		log_warnx_rl(&s->auth_rl, "metrics: poll from %s: %s (key \"%s\")", where,
		    metric_code_str(code), key->name);
	else
		log_warnx_rl(
		    &s->auth_rl, "metrics: poll from %s: signed, but this agent has no key", where);
}

static void
handle_native(struct metric_server *s, const uint8_t *buf, size_t len, const struct addr *from)
{
	const struct config_key *key = agent_key(s->agent);
	struct agent_counters *c = agent_counters(s->agent);
	uint8_t out[METRIC_PACKET_MAX];
	struct metric_header req;
	enum metric_err e;
	enum metric_code code;
	char where[ADDR_STRLEN];

	c->requests++;
	e = metric_request_parse(buf, len, key, &req);
	if (e == METRIC_OK) {
		send_to(s, out,
		    metric_reply_build(out, sizeof(out), &req, agent_values(s->agent), key), from);
		c->answered++;
		return;
	}
	code = native_error_code(e, key != NULL);
	if (code != 0) {
		if (metric_code_is_key(code))
			note_key_mismatch(s, code, from);
		send_to(s, out, metric_error_build(out, sizeof(out), &req, code, NULL), from);
		c->errors_sent++;
		return;
	}
	c->dropped_malformed++;
	log_debug("metrics: request from %s dropped: %s", addr_str(from, where, sizeof(where)),
	    metric_strerror(e));
}

/* The host figures of an lbcd reply; the weights come from our rating. */
static void
lbcd_figures(struct metric_server *s, const struct lbcd_request *req, struct lbcd_reply *r)
{
	const struct metric_values *v = agent_values(s->agent);
	uint32_t w = lbcd_rating_to_weight(v->rating, (v->flags & METRIC_F_DRAINING) != 0);
	struct sysinfo si;
	time_t now = time(NULL);

	memset(r, 0, sizeof(*r));
	r->current_time = (uint32_t)now;
	if (sysinfo(&si) == 0) {
		double scale = 100.0 / (double)(1 << SI_LOAD_SHIFT);

		r->boot_time = (uint32_t)(now - si.uptime);
		r->l1 = (uint16_t)(si.loads[0] * scale > 65535 ? 65535 : si.loads[0] * scale);
		r->l5 = (uint16_t)(si.loads[1] * scale > 65535 ? 65535 : si.loads[1] * scale);
		r->l15 = (uint16_t)(si.loads[2] * scale > 65535 ? 65535 : si.loads[2] * scale);
	}
	if (req->hdr.version == 2) {
		/* As lbcd does: old pollers compute their weight from l1. */
		r->l1 = r->l5 = r->l15 = (uint16_t)(w > 65535 ? 65535 : w);
	}
	for (unsigned i = 0; i <= req->nservices; i++) {
		r->weights[i].weight = w;
		r->weights[i].incr = LBCD_DEFAULT_INCR;
	}
}

static void
handle_lbcd(struct metric_server *s, const uint8_t *buf, size_t len, const struct addr *from)
{
	struct agent_counters *c = agent_counters(s->agent);
	uint8_t out[LBCD_PACKET_MAX];
	struct lbcd_request req;
	struct lbcd_reply r;
	enum lbcd_err e;

	c->lbcd_requests++;
	e = lbcd_request_parse(buf, len, &req);
	if (e == LBCD_OK) {
		lbcd_figures(s, &req, &r);
		send_to(s, out, lbcd_reply_build(out, sizeof(out), &req, &r), from);
		c->lbcd_answered++;
	} else if (e == LBCD_E_VERSION || e == LBCD_E_OP || e == LBCD_E_SERVICES) {
		send_to(
		    s, out, lbcd_error_build(out, sizeof(out), &req.hdr, lbcd_err_status(e)), from);
		c->lbcd_errors_sent++;
	} else {
		c->lbcd_dropped++; /* as lbcd: a wrong length gets no answer */
	}
}

static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct metric_server *s = arg;
	uint8_t buf[SERVER_BUFSIZE];

	(void)what;
	for (int i = 0; i < SERVER_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct addr from;
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&ss, &sl);

		if (n == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warnx_rl(&s->rl, "metrics: recvfrom: %s", strerror(errno));
			return;
		}
		if (addr_from_sockaddr((struct sockaddr *)&ss, sl, &from) == -1)
			continue;
		/* MSG_TRUNC: an oversized datagram reports its real length and fails. */
		if (s->kind == METRIC_SERVER_NATIVE)
			handle_native(s, buf, (size_t)n > sizeof(buf) ? 0 : (size_t)n, &from);
		else
			handle_lbcd(s, buf, (size_t)n > sizeof(buf) ? 0 : (size_t)n, &from);
	}
}

struct metric_server *
metric_server_new(struct event_base *base, const struct addr *listen, enum metric_server_kind kind,
    struct agent *agent)
{
	struct metric_server *s = calloc(1, sizeof(*s));
	char where[ADDR_STRLEN];

	addr_str(listen, where, sizeof(where));
	if (s == NULL) {
		log_warnx("metrics: %s: out of memory", where);
		return NULL;
	}
	s->base = base;
	s->agent = agent;
	s->kind = kind;
	s->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 60);
	s->auth_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 60);
	s->fd = sock_bind(listen, SOCK_DGRAM, 0);
	if (s->fd == -1) {
		log_warn("metrics: cannot listen on %s%s", where,
		    kind == METRIC_SERVER_LBCD ? " (lbcd)" : "");
		free(s);
		return NULL;
	}
	if (sock_local_addr(s->fd, &s->bound) == -1)
		s->bound = *listen;
	s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, read_cb, s);
	if (s->ev == NULL) {
		log_warnx("metrics: %s: cannot create the read event", where);
		metric_server_free(s);
		return NULL;
	}
	return s;
}

int
metric_server_enable(struct metric_server *s)
{
	return event_add(s->ev, NULL);
}

const struct addr *
metric_server_addr(const struct metric_server *s)
{
	return &s->bound;
}

void
metric_server_free(struct metric_server *s)
{
	if (s == NULL)
		return;
	if (s->ev != NULL)
		event_free(s->ev);
	close(s->fd);
	free(s);
}
