/* updater.c - RFC 2136 UPDATE of cluster RRsets on external primaries. */
#include "broker/updater.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <ldns/ldns.h>

#include "broker/zonestore.h"
#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"

#define TSIG_FUDGE 300

enum updater_step {
	STEP_IDLE,
	STEP_SOA, /* which zone holds the name */
	STEP_A,   /* what the master has now */
	STEP_AAAA,
	STEP_UPDATE, /* our UPDATE is out */
};

/* One family's desired RRset. */
struct want {
	struct addr *v;
	size_t n;
	bool manage;
	bool differs; /* the master disagrees (this round) */
};

struct updater {
	struct event_base *base;
	char *name;
	struct addr *masters;
	size_t nmasters;
	const struct config_key *key;
	struct want want[2]; /* [0] A, [1] AAAA */
	uint32_t ttl;
	bool dirty; /* the desired set moved since the round began */
	enum updater_step step;
	size_t master; /* index of the master of this attempt */
	int fd;
	struct event *io, *backoff;
	unsigned backoff_s;
	uint16_t id;
	char *zone;     /* found by the SOA query */
	ldns_rdf *qmac; /* MAC of our signed UPDATE, to verify the answer */
	struct updater_stats stats;
};

static void start_round(struct updater *u);
static void send_step(struct updater *u);

const char *
updater_tsig_algorithm(const struct config_key *key)
{
	switch (key->algorithm) {
	case CONFIG_HMAC_MD5: return "hmac-md5.sig-alg.reg.int.";
	case CONFIG_HMAC_SHA1: return "hmac-sha1.";
	case CONFIG_HMAC_SHA224: return "hmac-sha224.";
	case CONFIG_HMAC_SHA384: return "hmac-sha384.";
	case CONFIG_HMAC_SHA512: return "hmac-sha512.";
	case CONFIG_HMAC_SHA256:
	default: return "hmac-sha256.";
	}
}

/* The "delete an RRset" record of RFC 2136 2.5.2: class ANY, TTL 0, no rdata. */
static ldns_rr *
delete_rr(const char *name, uint16_t type)
{
	ldns_rr *rr = ldns_rr_new();
	ldns_rdf *owner = NULL;

	if (rr == NULL || ldns_str2rdf_dname(&owner, name) != LDNS_STATUS_OK) {
		ldns_rr_free(rr);
		return NULL;
	}
	ldns_rr_set_owner(rr, owner);
	ldns_rr_set_type(rr, (ldns_rr_type)type);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_ANY);
	ldns_rr_set_ttl(rr, 0);
	return rr;
}

/* Push the delete record and the new records of one family. */
static int
push_family(
    ldns_rr_list *l, const char *name, uint16_t type, uint32_t ttl, const struct addr *v, size_t n)
{
	ldns_rr *del = delete_rr(name, type);
	ldns_rr_list *add;
	bool pushed;

	if (del == NULL || !ldns_rr_list_push_rr(l, del)) {
		ldns_rr_free(del);
		return -1;
	}
	if ((add = zonestore_addr_rrs(name, type, ttl, v, n)) == NULL)
		return -1;
	pushed = ldns_rr_list_cat(l, add);
	ldns_rr_list_free(add); /* the records now belong to l */
	return pushed ? 0 : -1;
}

ldns_pkt *
updater_build(const char *zone, const char *name, uint32_t ttl, const struct addr *v4, size_t n4,
    bool manage4, const struct addr *v6, size_t n6, bool manage6, const struct config_key *key)
{
	ldns_rr_list *up = ldns_rr_list_new();
	ldns_rdf *zrdf = NULL;
	ldns_pkt *pkt = NULL;

	if (up == NULL || ldns_str2rdf_dname(&zrdf, zone) != LDNS_STATUS_OK)
		goto done;
	if ((manage4 && push_family(up, name, LDNS_RR_TYPE_A, ttl, v4, n4) == -1) ||
	    (manage6 && push_family(up, name, LDNS_RR_TYPE_AAAA, ttl, v6, n6) == -1))
		goto done;
	/* The zone name goes into the packet; the update list is cloned. */
	pkt = ldns_update_pkt_new(zrdf, LDNS_RR_CLASS_IN, NULL, up, NULL);
	zrdf = NULL;
	if (pkt == NULL)
		goto done;
	ldns_pkt_set_rd(pkt, false);
	ldns_pkt_set_random_id(pkt);
	if (key != NULL &&
	    ldns_pkt_tsig_sign(pkt, key->name, key->secret_b64, TSIG_FUDGE,
	        updater_tsig_algorithm(key), NULL) != LDNS_STATUS_OK) {
		ldns_pkt_free(pkt);
		pkt = NULL;
	}
done:
	ldns_rdf_deep_free(zrdf);
	ldns_rr_list_deep_free(up);
	return pkt;
}

struct updater *
updater_new(struct event_base *base, const char *name, const struct config_addrs *masters,
    const struct config_key *key)
{
	struct updater *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->base = base;
	u->fd = -1;
	u->key = key;
	u->name = strdup(name);
	u->masters = calloc(masters->n ? masters->n : 1, sizeof(*u->masters));
	u->want[0].v = calloc(UPDATER_MAX_ADDRS, sizeof(struct addr));
	u->want[1].v = calloc(UPDATER_MAX_ADDRS, sizeof(struct addr));
	if (u->name == NULL || u->masters == NULL || u->want[0].v == NULL || u->want[1].v == NULL) {
		updater_free(u);
		return NULL;
	}
	memcpy(u->masters, masters->v, masters->n * sizeof(*u->masters));
	u->nmasters = masters->n;
	return u;
}

static void
close_exchange(struct updater *u)
{
	if (u->io != NULL)
		event_free(u->io);
	u->io = NULL;
	if (u->fd != -1)
		close(u->fd);
	u->fd = -1;
	ldns_rdf_deep_free(u->qmac);
	u->qmac = NULL;
}

static void
backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_round(arg);
}

/* This master failed: say why, try the next one, or back off. */
static void fail(struct updater *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail(struct updater *u, const char *fmt, ...)
{
	char why[128], ms[ADDR_STRLEN];
	struct timeval tv;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	close_exchange(u);
	u->stats.failures++;
	u->stats.in_sync = false;
	addr_str(&u->masters[u->master], ms, sizeof(ms));
	snprintf(u->stats.last_error, sizeof(u->stats.last_error), "%s: %s", ms, why);
	log_warnx("cluster %s: master %s: %s", u->name, ms, why);
	if (++u->master < u->nmasters) {
		u->step = STEP_SOA;
		send_step(u);
		return;
	}
	u->step = STEP_IDLE;
	u->backoff_s = u->backoff_s == 0 ? 1 : u->backoff_s * 2;
	if (u->backoff_s > UPDATER_BACKOFF_MAX)
		u->backoff_s = UPDATER_BACKOFF_MAX;
	tv.tv_sec = u->backoff_s;
	tv.tv_usec = 0;
	log_info("cluster %s: every master failed; next attempt in %u s", u->name, u->backoff_s);
	if (u->backoff == NULL)
		u->backoff = evtimer_new(u->base, backoff_cb, u);
	if (u->backoff != NULL)
		evtimer_add(u->backoff, &tv);
}

static void
succeed(struct updater *u, const char *what)
{
	char ms[ADDR_STRLEN];

	close_exchange(u);
	u->step = STEP_IDLE;
	u->backoff_s = 0;
	u->stats.in_sync = true;
	u->stats.last_error[0] = '\0';
	log_info("cluster %s: master %s: %s", u->name,
	    addr_str(&u->masters[u->master], ms, sizeof(ms)), what);
	if (u->dirty)
		start_round(u);
}

/* The address in the rdata of an A or AAAA record. */
static int
rr_addr(const ldns_rr *rr, struct addr *out)
{
	char *s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
	int rc = s != NULL ? addr_parse(s, 0, out) : -1;

	free(s);
	return rc;
}

/* Do the records of `type` owned by the name in `answer` equal w? */
static bool
same_set(const struct updater *u, const ldns_rr_list *answer, uint16_t type, const struct want *w)
{
	ldns_rdf *owner = NULL;
	size_t seen = 0, matched = 0;

	if (ldns_str2rdf_dname(&owner, u->name) != LDNS_STATUS_OK)
		return false;
	for (size_t i = 0; i < ldns_rr_list_rr_count(answer); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(answer, i);
		struct addr a;

		if ((uint16_t)ldns_rr_get_type(rr) != type || ldns_rr_rd_count(rr) != 1 ||
		    ldns_dname_compare(ldns_rr_owner(rr), owner) != 0)
			continue;
		seen++;
		if (rr_addr(rr, &a) == -1)
			continue;
		for (size_t k = 0; k < w->n; k++)
			if (addr_equal_host(&a, &w->v[k])) {
				matched++;
				break;
			}
	}
	ldns_rdf_deep_free(owner);
	return seen == w->n && matched == w->n;
}

/* The zone named by the SOA in the answer or authority section. */
static char *
soa_zone(const ldns_pkt *resp)
{
	const ldns_rr_list *secs[2] = {ldns_pkt_answer(resp), ldns_pkt_authority(resp)};

	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < ldns_rr_list_rr_count(secs[s]); i++) {
			const ldns_rr *rr = ldns_rr_list_rr(secs[s], i);

			if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA)
				return ldns_rdf2str(ldns_rr_owner(rr));
		}
	return NULL;
}

/* "NOTAUTH (TSIG BADKEY)" and the like, for the log. */
static void
describe_refusal(const ldns_pkt *resp, char *buf, size_t len)
{
	const ldns_rr *tsig = ldns_pkt_tsig(resp);
	ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, ldns_pkt_get_rcode(resp));
	const char *rname = rc != NULL ? rc->name : "RCODE?";
	uint16_t terr = 0;

	if (tsig != NULL && ldns_rr_rd_count(tsig) > 5)
		terr = ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5));
	if (terr == 16 || terr == 17 || terr == 18)
		snprintf(buf, len,
		    "UPDATE refused: %s (TSIG %s: the master does not accept our key)", rname,
		    terr == 16       ? "BADSIG"
		        : terr == 17 ? "BADKEY"
		                     : "BADTIME");
	else if (terr != 0)
		snprintf(buf, len, "UPDATE refused: %s (TSIG error %u)", rname, terr);
	else
		snprintf(buf, len, "UPDATE refused: %s", rname);
}

static void
on_update(struct updater *u, ldns_pkt *resp, const uint8_t *wire, size_t len)
{
	char why[160];

	if (ldns_pkt_get_rcode(resp) != LDNS_RCODE_NOERROR) {
		describe_refusal(resp, why, sizeof(why));
		fail(u, "%s", why);
		return;
	}
	if (u->key != NULL &&
	    !ldns_pkt_tsig_verify(resp, wire, len, u->key->name, u->key->secret_b64, u->qmac)) {
		fail(u, "answer to our UPDATE has no valid TSIG signature");
		return;
	}
	u->stats.updates_ok++;
	succeed(u, "UPDATE accepted");
}

/* A query answered: move to the next step. */
static void
on_answer(struct updater *u, ldns_pkt *resp)
{
	int fam = u->step == STEP_A ? 0 : 1;

	if (u->step == STEP_SOA) {
		free(u->zone);
		if ((u->zone = soa_zone(resp)) == NULL) {
			fail(u, "no SOA for %s: is the name in a zone the master serves?", u->name);
			return;
		}
		u->step = u->want[0].manage ? STEP_A : STEP_AAAA;
	} else {
		if (ldns_pkt_get_rcode(resp) != LDNS_RCODE_NOERROR &&
		    ldns_pkt_get_rcode(resp) != LDNS_RCODE_NXDOMAIN) {
			fail(u, "query answered with rcode %d", (int)ldns_pkt_get_rcode(resp));
			return;
		}
		u->want[fam].differs = !same_set(u, ldns_pkt_answer(resp),
		    fam == 0 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA, &u->want[fam]);
		if (u->step == STEP_A && u->want[1].manage)
			u->step = STEP_AAAA;
		else if (u->want[0].differs || u->want[1].differs)
			u->step = STEP_UPDATE;
		else {
			succeed(u, "already holds the published set");
			return;
		}
	}
	close_exchange(u);
	send_step(u);
}

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct updater *u = arg;
	uint8_t buf[LDNS_MAX_PACKETLEN];
	ldns_pkt *resp = NULL;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		fail(u, "no answer within %d ms", UPDATER_TIMEOUT_MS);
		return;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			fail(u, "recv: %s", strerror(errno));
		return;
	}
	/* A connected socket sees only the master; still match the id. */
	if (ldns_wire2pkt(&resp, buf, (size_t)n) != LDNS_STATUS_OK || !ldns_pkt_qr(resp) ||
	    ldns_pkt_id(resp) != u->id) {
		ldns_pkt_free(resp);
		return;
	}
	if (ldns_pkt_tc(resp))
		fail(u, "answer truncated");
	else if (u->step == STEP_UPDATE)
		on_update(u, resp, buf, (size_t)n);
	else
		on_answer(u, resp);
	ldns_pkt_free(resp);
}

static ldns_pkt *
step_packet(struct updater *u)
{
	ldns_rr_type t = u->step == STEP_SOA ? LDNS_RR_TYPE_SOA
	    : u->step == STEP_A              ? LDNS_RR_TYPE_A
	                                     : LDNS_RR_TYPE_AAAA;
	ldns_pkt *pkt = NULL;

	if (u->step != STEP_UPDATE) {
		if (ldns_pkt_query_new_frm_str(&pkt, u->name, t, LDNS_RR_CLASS_IN, 0) ==
		    LDNS_STATUS_OK)
			ldns_pkt_set_random_id(pkt);
		return pkt;
	}
	u->stats.updates++;
	return updater_build(u->zone, u->name, u->ttl, u->want[0].v, u->want[0].n,
	    u->want[0].manage && u->want[0].differs, u->want[1].v, u->want[1].n,
	    u->want[1].manage && u->want[1].differs, u->key);
}

/* Send the packet of the current step to the current master. */
static void
send_step(struct updater *u)
{
	struct timeval tv = {UPDATER_TIMEOUT_MS / 1000, (UPDATER_TIMEOUT_MS % 1000) * 1000};
	const struct addr *m = &u->masters[u->master];
	ldns_pkt *pkt = step_packet(u);
	uint8_t *wire = NULL;
	size_t len = 0;

	if (pkt == NULL || ldns_pkt2wire(&wire, pkt, &len) != LDNS_STATUS_OK) {
		ldns_pkt_free(pkt);
		fail(u, "cannot build the %s message", u->step == STEP_UPDATE ? "UPDATE" : "query");
		return;
	}
	u->id = ldns_pkt_id(pkt);
	if (u->step == STEP_UPDATE && u->key != NULL && ldns_pkt_tsig(pkt) != NULL)
		u->qmac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(pkt), 3));
	ldns_pkt_free(pkt);
	u->fd = socket(addr_family(m), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd == -1 || connect(u->fd, addr_sa(m), m->len) == -1 ||
	    send(u->fd, wire, len, 0) != (ssize_t)len) {
		free(wire);
		fail(u, "send: %s", strerror(errno));
		return;
	}
	free(wire);
	u->io = event_new(u->base, u->fd, EV_READ | EV_PERSIST, io_cb, u);
	if (u->io == NULL || event_add(u->io, &tv) == -1)
		fail(u, "cannot wait for the answer");
}

static void
start_round(struct updater *u)
{
	if (u->nmasters == 0 || u->step != STEP_IDLE)
		return;
	if (u->backoff != NULL)
		evtimer_del(u->backoff);
	u->dirty = false;
	u->master = 0;
	u->want[0].differs = u->want[1].differs = false;
	u->stats.rounds++;
	u->step = STEP_SOA;
	send_step(u);
}

void
updater_set(struct updater *u, const struct addr *v4, size_t n4, bool manage4,
    const struct addr *v6, size_t n6, bool manage6, uint32_t ttl)
{
	n4 = n4 < UPDATER_MAX_ADDRS ? n4 : UPDATER_MAX_ADDRS;
	n6 = n6 < UPDATER_MAX_ADDRS ? n6 : UPDATER_MAX_ADDRS;
	memcpy(u->want[0].v, v4, n4 * sizeof(*v4));
	memcpy(u->want[1].v, v6, n6 * sizeof(*v6));
	u->want[0].n = n4;
	u->want[1].n = n6;
	u->want[0].manage = manage4;
	u->want[1].manage = manage6;
	u->ttl = ttl;
	u->dirty = true;
	if (!manage4 && !manage6)
		return;
	u->backoff_s = 0;
	start_round(u); /* no-op while a round runs: it restarts when done */
}

void
updater_get_stats(const struct updater *u, struct updater_stats *out)
{
	*out = u->stats;
}

void
updater_free(struct updater *u)
{
	if (u == NULL)
		return;
	close_exchange(u);
	if (u->backoff != NULL)
		event_free(u->backoff);
	free(u->zone);
	free(u->want[0].v);
	free(u->want[1].v);
	free(u->masters);
	free(u->name);
	free(u);
}
