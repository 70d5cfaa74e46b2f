/* xfr.c - AXFR and IXFR out, with TSIG, and NOTIFY to secondaries. */
#include "broker/xfr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <ldns/ldns.h>

#include "broker/dnsq.h"
#include "broker/journal.h"
#include "broker/tsig.h"
#include "broker/updater.h"
#include "broker/zone.h"
#include "broker/zonestore.h"
#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"

#define XFR_TCP_LEN_SIZE 2     /* the length prefix of a DNS message over TCP */
#define XFR_TCP_MSG_MAX  65535 /* the most that prefix can say */
#define XFR_KEYS_MAX     256   /* distinct TSIG keys the ACLs may name */

bool
xfr_allowed(const struct config_zone *cz, const struct addr *peer, const struct config_key *key)
{
	for (size_t i = 0; cz != NULL && i < cz->allow_transfer.n; i++) {
		const struct config_acl_entry *e = &cz->allow_transfer.v[i];

		if ((e->any_addr || cidr_match(&e->net, peer)) && (e->key == NULL || e->key == key))
			return true;
	}
	return false;
}

/* One transfer answer being written: messages cut by size, each signed. */
struct xfr_out {
	struct evbuffer *buf; /* moved to the caller's output only when complete */
	const ldns_pkt *req;
	struct tsig_stream ts;
	ldns_pkt *p; /* the message being filled, or NULL */
	size_t size; /* bytes of RRs in p, counted uncompressed (an over-estimate) */
	bool first;  /* no message begun yet */
};

/*
 * A response message to the request.  Only the first carries the question
 * (RFC 5936 2.2: later messages may leave it out), as the request had it.
 */
static ldns_pkt *
msg_new(const ldns_pkt *req, bool question)
{
	const ldns_rr_list *ql = ldns_pkt_question(req);
	ldns_pkt *p = ldns_pkt_new();

	if (p == NULL)
		return NULL;
	ldns_pkt_set_id(p, ldns_pkt_id(req));
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_aa(p, true);
	for (size_t i = 0; question && i < ldns_rr_list_rr_count(ql); i++) {
		ldns_rr *q = ldns_rr_clone(ldns_rr_list_rr(ql, i));

		if (q == NULL || !ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q)) {
			ldns_rr_free(q);
			ldns_pkt_free(p);
			return NULL;
		}
	}
	return p;
}

/*
 * Sign the message being filled, append it as one TCP message (RFC 1035
 * 4.2.2: a two-byte length first) and free it.  A message over the 16-bit
 * length cannot be framed, so it fails the transfer rather than being cut.
 */
static int
out_flush(struct xfr_out *o)
{
	uint8_t *wire = NULL;
	uint8_t len[XFR_TCP_LEN_SIZE];
	size_t n = 0;
	int rc = -1;

	if (tsig_stream_sign(&o->ts, o->p) == 0 &&
	    ldns_pkt2wire(&wire, o->p, &n) == LDNS_STATUS_OK && n <= XFR_TCP_MSG_MAX) {
		len[0] = (uint8_t)(n >> 8);
		len[1] = (uint8_t)n;
		if (evbuffer_add(o->buf, len, sizeof(len)) == 0 &&
		    evbuffer_add(o->buf, wire, n) == 0)
			rc = 0;
	}
	free(wire);
	ldns_pkt_free(o->p);
	o->p = NULL;
	o->size = 0;
	return rc;
}

/*
 * Add a copy of rr to the answer.  Messages are cut once they hold
 * XFR_MSG_TARGET bytes of RRs, well under the 64 KiB a TCP message can
 * carry, rather than one RR each: fewer messages (and MACs) for the secondary.
 */
static int
out_push(struct xfr_out *o, const ldns_rr *rr)
{
	ldns_rr *c;

	if (o->p == NULL && (o->p = msg_new(o->req, o->first)) == NULL)
		return -1;
	o->first = false;
	c = ldns_rr_clone(rr);
	if (c == NULL || !ldns_pkt_push_rr(o->p, LDNS_SECTION_ANSWER, c)) {
		ldns_rr_free(c);
		return -1;
	}
	o->size += ldns_rr_uncompressed_size(rr);
	return o->size >= XFR_MSG_TARGET ? out_flush(o) : 0;
}

/* The last message, unless the last push sent it. */
static int
out_end(struct xfr_out *o)
{
	return o->p != NULL ? out_flush(o) : 0;
}

/* The AXFR form: SOA, every other RR, the SOA again. */
static int
out_axfr(struct xfr_out *o, const struct zone *z)
{
	const ldns_rr_list *rrs = zone_rrs(z);
	size_t n = ldns_rr_list_rr_count(rrs);

	for (size_t i = 0; i <= n; i++)
		if (out_push(o, ldns_rr_list_rr(rrs, i == n ? 0 : i)) == -1)
			return -1;
	return out_end(o);
}

/* The records of a list, in order; -1 when one cannot be added. */
static int
out_list(struct xfr_out *o, const ldns_rr_list *l)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		if (out_push(o, ldns_rr_list_rr(l, i)) == -1)
			return -1;
	return 0;
}

/*
 * The IXFR form (RFC 1995 4): the current SOA; for each step the old SOA,
 * what it removed, the new SOA, what it added; the current SOA again.  No
 * steps: the current SOA alone (the client is up to date).
 */
static int
out_ixfr(struct xfr_out *o, const struct zone *z, const struct journal_step *steps, size_t n)
{
	if (out_push(o, zone_soa(z)) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (out_push(o, steps[i].soa_from) == -1 || out_list(o, steps[i].removed) == -1 ||
		    out_push(o, steps[i].soa_to) == -1 || out_list(o, steps[i].added) == -1)
			return -1;
	if (n > 0 && out_push(o, zone_soa(z)) == -1)
		return -1;
	return out_end(o);
}

/*
 * One error message: `rcode` with the question; with a TSIG error (NOTAUTH)
 * the TSIG record of RFC 8945 5.3.2 instead of a stream signature.
 */
static int
out_error(struct xfr_out *o, ldns_pkt_rcode rcode, enum tsig_error terr,
    const struct config_key *key, uint64_t now)
{
	if ((o->p = msg_new(o->req, true)) == NULL)
		return -1;
	ldns_pkt_set_aa(o->p, false);
	ldns_pkt_set_rcode(o->p, (uint8_t)rcode);
	if (terr != TSIG_NOERROR) {
		tsig_stream_clear(&o->ts);
		if (tsig_error_add(o->p, o->req, terr, key, now) == -1) {
			ldns_pkt_free(o->p);
			o->p = NULL;
			return -1;
		}
	}
	return out_flush(o);
}

/* Append key to v[0..*n) unless it is there already or v is full. */
static void
key_add(const struct config_key **v, size_t *n, size_t max, const struct config_key *key)
{
	for (size_t i = 0; i < *n; i++)
		if (v[i] == key)
			return;
	if (*n < max)
		v[(*n)++] = key;
}

/*
 * Every key some zone's allow-transfer names, each once (at most max): a
 * key that no ACL names is unknown to transfers (BADKEY).
 */
static size_t
transfer_keys(const struct config_broker *cfg, const struct config_key **v, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->nzones; i++)
		for (size_t k = 0; k < cfg->zones[i].allow_transfer.n; k++)
			if (cfg->zones[i].allow_transfer.v[k].key != NULL)
				key_add(v, &n, max, cfg->zones[i].allow_transfer.v[k].key);
	return n;
}

static const struct config_zone *
zone_config(const struct config_broker *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nzones; i++)
		if (strcasecmp(cfg->zones[i].name, name) == 0)
			return &cfg->zones[i];
	return NULL;
}

/* The TSIG key name of a request, for logs ("-" when unsigned). */
static void
request_key_name(const ldns_pkt *req, char *buf, size_t len)
{
	const ldns_rr *t = ldns_pkt_tsig(req);
	char *s = t != NULL ? ldns_rdf2str(ldns_rr_owner(t)) : NULL;

	snprintf(buf, len, "%s", s != NULL ? s : "-");
	free(s);
}

/* Log a refusal (rate-limited) and answer it: TSIG errors NOTAUTH, else REFUSED. */
static int
refuse(const struct xfr_request *r, struct xfr_out *o, enum tsig_status st,
    const struct config_key *key)
{
	static const enum tsig_error terr[] = {[TSIG_UNKNOWN] = TSIG_BADKEY,
	    [TSIG_BAD_MAC] = TSIG_BADSIG,
	    [TSIG_BAD_TIME] = TSIG_BADTIME};
	char a[ADDR_STRLEN], k[LDNS_MAX_DOMAINLEN + 2];
	bool tsig_err = st == TSIG_UNKNOWN || st == TSIG_BAD_MAC || st == TSIG_BAD_TIME;

	request_key_name(o->req, k, sizeof(k));
	log_warnx_rl(r->rl, "xfr: %s %s refused to %s: key %s: %s", zone_name(r->z),
	    r->q->qtype == LDNS_RR_TYPE_IXFR ? "IXFR" : "AXFR", addr_str(r->peer, a, sizeof(a)), k,
	    tsig_err ? tsig_status_str(st) : "not allowed by allow-transfer");
	if (tsig_err)
		return out_error(o, LDNS_RCODE_NOTAUTH, terr[st], key, r->now);
	return out_error(o, LDNS_RCODE_REFUSED, TSIG_NOERROR, NULL, r->now);
}

static bool
serial_ge(uint32_t a, uint32_t b)
{
	return a == b || (int32_t)(a - b) > 0; /* RFC 1982 */
}

/* The client's serial: the SOA in an IXFR's authority section (RFC 1995 3). */
static int
ixfr_serial(const ldns_pkt *req, uint32_t *serial)
{
	const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(req), 0);

	if (soa == NULL || ldns_rr_get_type(soa) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(soa) < 3)
		return -1;
	*serial = ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
	return 0;
}

/*
 * An allowed IXFR: the SOA alone when the client is up to date, the steps
 * from its serial when the journal reaches back to it, else the whole zone
 * (RFC 1995 4 allows the AXFR form).
 */
static enum xfr_result
answer_ixfr(const struct xfr_request *r, struct xfr_out *o, const char *with)
{
	const struct journal_step *steps = NULL;
	uint32_t from = 0, to = zone_serial(r->z);
	size_t n = 0;
	char a[ADDR_STRLEN];
	bool have = ixfr_serial(o->req, &from) == 0;

	addr_str(r->peer, a, sizeof(a));
	if (have && serial_ge(from, to)) {
		if (out_ixfr(o, r->z, NULL, 0) == -1)
			return XFR_FAILED;
		log_info("xfr: IXFR of %s to %s%s: up to date at serial %u", zone_name(r->z), a,
		    with, to);
		return XFR_IXFR;
	}
	if (have && r->zs != NULL &&
	    journal_find(zonestore_journal(r->zs), zone_name(r->z), from, to, &steps, &n) == 0) {
		if (out_ixfr(o, r->z, steps, n) == -1)
			return XFR_FAILED;
		log_info("xfr: IXFR of %s serial %u to %u (%zu steps) to %s%s", zone_name(r->z),
		    from, to, n, a, with);
		return XFR_IXFR;
	}
	if (out_axfr(o, r->z) == -1)
		return XFR_FAILED;
	log_info("xfr: IXFR of %s from serial %u to %s%s: not in the journal, whole zone at "
	         "serial %u",
	    zone_name(r->z), from, a, with, to);
	return XFR_AXFR;
}

/* True when the question names the zone's apex (both lower-case wire). */
static bool
asks_apex(const struct xfr_request *r)
{
	size_t alen = 0;
	const uint8_t *apex = zone_apex(r->z, &alen);

	return alen == r->q->qname_len && memcmp(apex, r->q->qname, alen) == 0;
}

/* The answer once the request is parsed: TSIG, ACL, then the transfer. */
static enum xfr_result
answer_parsed(const struct xfr_request *r, struct xfr_out *o)
{
	const struct config_key *keys[XFR_KEYS_MAX], *key = NULL;
	size_t nkeys = transfer_keys(r->cfg, keys, XFR_KEYS_MAX);
	enum tsig_status st =
	    tsig_check((ldns_pkt *)o->req, r->wire, r->len, keys, nkeys, r->now, &key);
	char a[ADDR_STRLEN], with[LDNS_MAX_DOMAINLEN + 8];

	if (tsig_stream_init(&o->ts, st == TSIG_OK || st == TSIG_BAD_TIME ? key : NULL, o->req) ==
	    -1)
		return XFR_FAILED;
	if (st != TSIG_OK && st != TSIG_UNSIGNED)
		return refuse(r, o, st, key) == 0 ? XFR_REFUSED : XFR_FAILED;
	if (!xfr_allowed(zone_config(r->cfg, zone_name(r->z)), r->peer, key))
		return refuse(r, o, st, key) == 0 ? XFR_REFUSED : XFR_FAILED;
	/* A name below the apex is no zone we serve (RFC 5936 2.2.1): NOTAUTH. */
	if (!asks_apex(r))
		return out_error(o, LDNS_RCODE_NOTAUTH, TSIG_NOERROR, NULL, r->now) == 0
		    ? XFR_REFUSED
		    : XFR_FAILED;
	snprintf(
	    with, sizeof(with), "%s%s", key != NULL ? " key " : "", key != NULL ? key->name : "");
	if (r->q->qtype == LDNS_RR_TYPE_IXFR)
		return answer_ixfr(r, o, with);
	if (out_axfr(o, r->z) == -1)
		return XFR_FAILED;
	log_info("xfr: AXFR of %s serial %u to %s%s", zone_name(r->z), zone_serial(r->z),
	    addr_str(r->peer, a, sizeof(a)), with);
	return XFR_AXFR;
}

enum xfr_result
xfr_answer(const struct xfr_request *r, struct evbuffer *out)
{
	ldns_pkt *req = NULL;
	struct xfr_out o = {.first = true};
	enum xfr_result res = XFR_FAILED;

	if ((o.buf = evbuffer_new()) == NULL)
		return XFR_FAILED;
	if (ldns_wire2pkt(&req, r->wire, r->len) == LDNS_STATUS_OK) {
		o.req = req;
		res = answer_parsed(r, &o);
	}
	if (res != XFR_FAILED && evbuffer_add_buffer(out, o.buf) == -1)
		res = XFR_FAILED;
	ldns_pkt_free(o.p);
	tsig_stream_clear(&o.ts);
	ldns_pkt_free(req);
	evbuffer_free(o.buf);
	return res;
}

/* ---- NOTIFY ----------------------------------------------------------- */

/*
 * One UDP socket per source address (notify-source, a listen address, or
 * the wildcard of a family), bound at start, before privileges are dropped.
 */
struct notify_source {
	struct notifier *owner;
	struct addr addr;
	int fd;
	struct event *ev;
};

/*
 * One (zone, also-notify address) pair, fixed at start: zones and their
 * also-notify lists are not reloaded.  At most one NOTIFY is pending per
 * target; a newer serial replaces it.
 */
struct notify_target {
	struct notifier *owner;
	const char *zone; /* borrowed from the configuration */
	struct addr to;
	struct notify_source *src;
	bool pending;
	bool answered; /* the current try got an error answer (not a timeout) */
	bool acked_last;
	uint32_t serial;
	uint16_t id;
	uint8_t *wire;
	size_t len;
	const struct config_key *key; /* NULL: unsigned NOTIFY */
	ldns_rdf *mac;                /* our NOTIFY's MAC, to verify the reply */
	unsigned tries;
	struct event *timer;
	struct log_ratelimit rl;
};

struct notifier {
	struct event_base *base;
	struct notify_source *srcs;
	size_t nsrcs;
	struct notify_target *targets;
	size_t ntargets;
	struct notifier_stats stats;
};

/* ldns's name for an rcode ("REFUSED"), or "RCODE<n>" for one it lacks. */
static const char *
rcode_str(unsigned rcode, char *buf, size_t len)
{
	const ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, (int)rcode);

	if (t != NULL)
		return t->name;
	snprintf(buf, len, "RCODE%u", rcode);
	return buf;
}

/* The question of a reply, its name in text without the trailing dot. */
static void
notify_reply_question(const ldns_pkt *p, struct notify_reply *out)
{
	const ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	char *name;
	size_t n;

	if (q == NULL || (name = ldns_rdf2str(ldns_rr_owner(q))) == NULL)
		return;
	n = strlen(name);
	if (n > 1 && name[n - 1] == '.')
		name[n - 1] = '\0';
	snprintf(out->qname, sizeof(out->qname), "%s", name);
	free(name);
	out->qtype = ldns_rr_get_type(q);
	out->qclass = ldns_rr_get_class(q);
	out->has_question = true;
}

/*
 * The size is checked here, before anything reads the header, rather than
 * left to ldns; after ldns_wire2pkt only the parsed packet is read, never
 * the wire at an offset.
 */
int
notify_reply_parse(const uint8_t *buf, size_t len, struct notify_reply *out)
{
	ldns_pkt *p = NULL;
	int rc = -1;

	if (buf == NULL || len < LDNS_HEADER_SIZE || len > LDNS_MAX_PACKETLEN)
		return -1;
	if (ldns_wire2pkt(&p, buf, len) != LDNS_STATUS_OK)
		return -1;
	if (!ldns_pkt_qr(p) || ldns_pkt_get_opcode(p) != LDNS_PACKET_NOTIFY ||
	    ldns_pkt_qdcount(p) > 1)
		goto done;
	memset(out, 0, sizeof(*out));
	out->id = ldns_pkt_id(p);
	out->rcode = (uint8_t)(ldns_pkt_get_rcode(p) % NOTIFY_RCODES);
	notify_reply_question(p, out);
	rc = 0;
done:
	ldns_pkt_free(p);
	return rc;
}

bool
notify_reply_answers(const struct notify_reply *r, uint16_t id, const char *zone)
{
	if (r->id != id)
		return false;
	/* RFC 1996 4.7: the response echoes the question; an error may omit it. */
	if (!r->has_question)
		return r->rcode != LDNS_RCODE_NOERROR;
	return strcasecmp(r->qname, zone) == 0 && r->qtype == LDNS_RR_TYPE_SOA &&
	    r->qclass == LDNS_RR_CLASS_IN;
}

static void target_send(struct notify_target *t);

/* No NOTIFY pending for t any more: its wire copy and retry timer go. */
static void
target_stop(struct notify_target *t)
{
	t->pending = false;
	evtimer_del(t->timer);
	free(t->wire);
	t->wire = NULL;
	ldns_rdf_deep_free(t->mac);
	t->mac = NULL;
}

/* NOTIFY_TRIES sends without an acknowledgement: counted and logged once. */
static void
target_gave_up(struct notify_target *t)
{
	char a[ADDR_STRLEN];

	t->owner->stats.failed++;
	t->acked_last = false;
	log_warnx_rl(&t->rl, "notify: %s serial %u to %s: no acknowledgement after %u tries",
	    t->zone, t->serial, addr_str(&t->to, a, sizeof(a)), t->tries);
	target_stop(t);
}

/*
 * A try's time is up.  A try answered with an error rcode is not a timeout
 * (counted already, by rcode), but is retried the same way.
 */
static void
target_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct notify_target *t = arg;
	char a[ADDR_STRLEN];

	(void)fd;
	(void)what;
	if (!t->answered) {
		t->owner->stats.timeout++;
		log_debug("notify: %s serial %u to %s: no answer (try %u of %u)", t->zone,
		    t->serial, addr_str(&t->to, a, sizeof(a)), t->tries, NOTIFY_TRIES);
	}
	if (t->tries < NOTIFY_TRIES)
		target_send(t);
	else
		target_gave_up(t);
}

/*
 * Send (or resend: same ID and wire) t's NOTIFY and arm the retry.  A send
 * that fails still counts as a try, so a peer we cannot reach is given up
 * after NOTIFY_TRIES like a silent one instead of being retried forever.
 */
static void
target_send(struct notify_target *t)
{
	char a[ADDR_STRLEN];
	struct timeval tv;
	unsigned ms = NOTIFY_RETRY_MS << t->tries;

	if (t->src->fd == -1 ||
	    sendto(t->src->fd, t->wire, t->len, 0, addr_sa(&t->to), t->to.len) == -1)
		log_warnx_rl(&t->rl, "notify: %s serial %u to %s: %s", t->zone, t->serial,
		    addr_str(&t->to, a, sizeof(a)),
		    t->src->fd == -1 ? "no socket for this family" : strerror(errno));
	t->tries++;
	t->answered = false;
	t->owner->stats.sent++;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(t->timer, &tv);
}

/* The source address for log lines; a wildcard is "any" (the kernel chooses). */
static const char *
source_str(const struct notify_source *s, char *buf, size_t len)
{
	return addr_is_any(&s->addr) ? "any" : addr_host_str(&s->addr, buf, len);
}

/* An answer to the pending NOTIFY of t: NOERROR acknowledges, anything else fails. */
static void
target_answered(struct notify_target *t, unsigned rcode)
{
	char a[ADDR_STRLEN], s[ADDR_STRLEN], r[16];

	addr_str(&t->to, a, sizeof(a));
	source_str(t->src, s, sizeof(s));
	if (rcode == LDNS_RCODE_NOERROR) {
		t->owner->stats.acked++;
		if (t->acked_last)
			log_debug("notify: %s serial %u acknowledged by %s (from %s)", t->zone,
			    t->serial, a, s);
		else
			log_info("notify: %s serial %u acknowledged by %s (from %s)", t->zone,
			    t->serial, a, s);
		t->acked_last = true;
		target_stop(t);
		return;
	}
	t->owner->stats.rcode[rcode % NOTIFY_RCODES]++;
	t->acked_last = false;
	t->answered = true;
	log_warnx_rl(&t->rl, "notify: %s serial %u to %s: %s (from %s, try %u of %u)", t->zone,
	    t->serial, a, rcode_str(rcode, r, sizeof(r)), s, t->tries, NOTIFY_TRIES);
}

/* True when reply r, received by t's socket from `from`, answers t's NOTIFY. */
static bool
target_matches(const struct notify_target *t, const struct notify_reply *r, const struct addr *from)
{
	return t->pending && addr_equal(&t->to, from) && notify_reply_answers(r, t->id, t->zone);
}

/*
 * A reply to a signed NOTIFY counts only when signed with the same key
 * over our MAC (RFC 8945 5.3): anything else is logged (rate-limited) and
 * is no acknowledgement, nor an error answer; the NOTIFY is retried.
 */
static bool
reply_signed_ok(struct notify_target *t, const uint8_t *buf, size_t len, unsigned rcode)
{
	ldns_pkt *p = NULL;
	char a[ADDR_STRLEN], r[16];
	bool ok;

	if (t->key == NULL)
		return true;
	ok = ldns_wire2pkt(&p, buf, len) == LDNS_STATUS_OK &&
	    tsig_response_ok(p, buf, len, t->key, t->mac, (uint64_t)time(NULL));
	if (!ok)
		log_warnx_rl(&t->rl,
		    "notify: %s serial %u to %s: %s reply without a valid TSIG of key %s: "
		    "not an acknowledgement",
		    t->zone, t->serial, addr_str(&t->to, a, sizeof(a)),
		    rcode_str(rcode, r, sizeof(r)), t->key->name);
	ldns_pkt_free(p);
	return ok;
}

/*
 * Every datagram waiting on a source socket (it is non-blocking: read until
 * EAGAIN).  Anything that does not pass notify_reply_parse, or answers no
 * pending NOTIFY of this socket from the address it went to, is dropped
 * without a word: a spoofed or late reply must not be able to fill the log.
 */
static void
notify_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct notify_source *src = arg;
	struct notifier *n = src->owner;
	uint8_t buf[LDNS_MAX_PACKETLEN];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ssize_t r;
	struct addr from;
	struct notify_reply reply;

	(void)what;
	while ((r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl)) >= 0) {
		int bad = addr_from_sockaddr((struct sockaddr *)&ss, sl, &from) == -1 ||
		    notify_reply_parse(buf, (size_t)r, &reply) == -1;

		sl = sizeof(ss);
		if (bad)
			continue;
		for (size_t i = 0; i < n->ntargets; i++) {
			struct notify_target *t = &n->targets[i];

			if (t->src == src && target_matches(t, &reply, &from)) {
				if (reply_signed_ok(t, buf, (size_t)r, reply.rcode))
					target_answered(t, reply.rcode);
				break;
			}
		}
	}
}

/*
 * Where NOTIFY for a zone to `to` leaves from: notify-source when set and of
 * to's family; else the first listen address of that family unless it is a
 * wildcard; else the wildcard (the kernel chooses).  The port is the
 * notify-source port, or 0 (any).
 */
static void
source_choose(const struct config_broker *cfg, const struct config_zone *cz, const struct addr *to,
    struct addr *out)
{
	int family = addr_family(to);

	if (cz->notify_source.len != 0 && addr_family(&cz->notify_source) == family) {
		*out = cz->notify_source;
		return;
	}
	for (size_t i = 0; i < cfg->listen.n; i++)
		if (addr_family(&cfg->listen.v[i]) == family) {
			*out = cfg->listen.v[i];
			addr_set_port(out, 0);
			if (!addr_is_any(out))
				return;
			break;
		}
	addr_parse(family == AF_INET6 ? "::" : "0.0.0.0", 0, out);
}

/* The socket for source address a, opened on first use; NULL when it cannot be. */
/*
 * The source socket for address a, bound now if it is new: sources are
 * shared by every target with the same source address, so a peer answering
 * several zones' NOTIFYs is read on one socket.
 */
static struct notify_source *
source_get(struct notifier *n, const struct addr *a)
{
	struct notify_source *s;
	char text[ADDR_STRLEN];

	for (size_t i = 0; i < n->nsrcs; i++)
		if (addr_equal(&n->srcs[i].addr, a))
			return &n->srcs[i];
	s = &n->srcs[n->nsrcs++];
	s->owner = n;
	s->addr = *a;
	s->fd = sock_bind(a, SOCK_DGRAM, 0);
	if (s->fd == -1) {
		log_warn("notify: cannot bind %s", addr_str(a, text, sizeof(text)));
		/* A family this host lacks is survivable; a named source is not. */
		return addr_is_any(a) ? s : NULL;
	}
	s->ev = event_new(n->base, s->fd, EV_READ | EV_PERSIST, notify_read_cb, s);
	if (s->ev == NULL || event_add(s->ev, NULL) == -1)
		return NULL;
	return s;
}

/* Add the (zone, peer) target `to` of cz; -1 when its source cannot be had. */
static int
target_init(
    struct notifier *n, const struct config_broker *cfg, const struct config_zone *cz, size_t k)
{
	struct notify_target *t = &n->targets[n->ntargets++];
	const struct addr *to = &cz->also_notify.v[k];
	struct addr src;

	t->owner = n;
	t->zone = cz->name;
	t->to = *to;
	t->key = cz->also_notify_keys[k];
	t->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(3, 60);
	source_choose(cfg, cz, to, &src);
	t->src = source_get(n, &src);
	t->timer = evtimer_new(n->base, target_timer_cb, t);
	return t->src != NULL && t->timer != NULL ? 0 : -1;
}

struct notifier *
notifier_new(struct event_base *base, const struct config_broker *cfg)
{
	struct notifier *n = calloc(1, sizeof(*n));
	size_t total = 0;

	if (n == NULL)
		return NULL;
	n->base = base;
	for (size_t i = 0; i < cfg->nzones; i++)
		total += cfg->zones[i].also_notify.n;
	n->targets = calloc(total + 1, sizeof(*n->targets));
	n->srcs = calloc(total + 1, sizeof(*n->srcs));
	if (n->targets == NULL || n->srcs == NULL)
		goto fail;
	for (size_t i = 0; i < cfg->nzones; i++)
		for (size_t k = 0; k < cfg->zones[i].also_notify.n; k++)
			if (target_init(n, cfg, &cfg->zones[i], k) == -1)
				goto fail;
	return n;
fail:
	notifier_free(n);
	return NULL;
}

/* Drop every target (a NOTIFY being retried is abandoned). */
/* Drop every target (and what it has pending); the sources stay bound. */
static void
targets_free(struct notifier *n)
{
	for (size_t i = 0; i < n->ntargets; i++) {
		if (n->targets[i].timer != NULL)
			event_free(n->targets[i].timer);
		free(n->targets[i].wire);
		ldns_rdf_deep_free(n->targets[i].mac);
	}
	free(n->targets);
	n->targets = NULL;
	n->ntargets = 0;
}

/* Move the sources into an array with room for `more`; events follow them. */
static int
sources_grow(struct notifier *n, size_t more)
{
	struct notify_source *v = calloc(n->nsrcs + more + 1, sizeof(*v));

	if (v == NULL)
		return -1;
	for (size_t i = 0; i < n->nsrcs; i++) {
		v[i] = n->srcs[i];
		if (v[i].ev == NULL)
			continue;
		event_free(v[i].ev);
		v[i].ev = event_new(n->base, v[i].fd, EV_READ | EV_PERSIST, notify_read_cb, &v[i]);
		if (v[i].ev == NULL || event_add(v[i].ev, NULL) == -1)
			log_warnx("notify: cannot watch a source socket");
	}
	free(n->srcs);
	n->srcs = v;
	return 0;
}

int
notifier_reload(struct notifier *n, const struct config_broker *cfg)
{
	size_t total = 0;
	int rc = 0;

	for (size_t i = 0; i < cfg->nzones; i++)
		total += cfg->zones[i].also_notify.n;
	targets_free(n);
	if (sources_grow(n, total) == -1 ||
	    (n->targets = calloc(total + 1, sizeof(*n->targets))) == NULL) {
		log_warnx("notify: out of memory: no NOTIFY until a restart");
		return -1;
	}
	for (size_t i = 0; i < cfg->nzones; i++)
		for (size_t k = 0; k < cfg->zones[i].also_notify.n; k++) {
			if (target_init(n, cfg, &cfg->zones[i], k) == 0)
				continue;
			/* A source that cannot be bound after the privilege drop. */
			n->ntargets--;
			if (n->targets[n->ntargets].timer != NULL)
				event_free(n->targets[n->ntargets].timer);
			memset(&n->targets[n->ntargets], 0, sizeof(n->targets[0]));
			log_warnx("notify: zone %s: no NOTIFY to this peer until a restart",
			    cfg->zones[i].name);
			rc = -1;
		}
	return rc;
}

void
notifier_free(struct notifier *n)
{
	if (n == NULL)
		return;
	targets_free(n);
	for (size_t i = 0; i < n->nsrcs; i++) {
		if (n->srcs[i].ev != NULL)
			event_free(n->srcs[i].ev);
		if (n->srcs[i].fd != -1)
			close(n->srcs[i].fd);
	}
	free(n->srcs);
	free(n);
}

/*
 * The NOTIFY message for t: question <zone> SOA IN with AA set, and z's
 * current SOA in the answer section (RFC 1996 3.7) so a secondary may skip
 * its SOA query when the serial is not newer.  Signed when t has a key
 * (its MAC kept in t->mac to verify the reply).  Sets t->wire and t->len.
 */
static int
notify_wire(struct notify_target *t, const struct zone *z)
{
	ldns_rdf *name = NULL;
	ldns_pkt *p;
	ldns_rr *soa = ldns_rr_clone(zone_soa(z));
	int rc = -1;

	if (soa == NULL || ldns_str2rdf_dname(&name, zone_name(z)) != LDNS_STATUS_OK) {
		ldns_rr_free(soa);
		return -1;
	}
	p = ldns_pkt_query_new(name, LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, LDNS_AA);
	if (p == NULL) {
		ldns_rr_free(soa);
		return -1;
	}
	ldns_pkt_set_opcode(p, LDNS_PACKET_NOTIFY);
	ldns_pkt_set_id(p, t->id);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, soa);
	if (t->key != NULL &&
	    (ldns_pkt_tsig_sign(p, t->key->name, t->key->secret_b64, TSIG_FUDGE,
	         updater_tsig_algorithm(t->key), NULL) != LDNS_STATUS_OK ||
	        (t->mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(p), 3))) == NULL))
		goto done;
	if (ldns_pkt2wire(&t->wire, p, &t->len) == LDNS_STATUS_OK)
		rc = 0;
done:
	ldns_pkt_free(p);
	return rc;
}

/* Start over for t with z's serial: a pending NOTIFY for an older one is dropped. */
static void
target_start(struct notify_target *t, const struct zone *z)
{
	target_stop(t);
	t->serial = zone_serial(z);
	t->id = ldns_get_random();
	t->tries = 0;
	if (notify_wire(t, z) == -1) {
		target_stop(t);
		log_warnx("notify: %s: out of memory", t->zone);
		return;
	}
	t->pending = true;
	target_send(t);
}

void
notifier_zone_changed(struct notifier *n, const struct zone *z)
{
	for (size_t i = 0; i < n->ntargets; i++)
		if (strcasecmp(n->targets[i].zone, zone_name(z)) == 0)
			target_start(&n->targets[i], z);
}

void
notifier_stats(const struct notifier *n, struct notifier_stats *out)
{
	*out = n->stats;
}
