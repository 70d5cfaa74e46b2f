/* xfr.c - AXFR out and NOTIFY to secondaries. */
#include "broker/xfr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <ldns/ldns.h>

#include "broker/dnsq.h"
#include "broker/zone.h"
#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"

bool
xfr_allowed(const struct config_zone *cz, const struct addr *peer)
{
	for (size_t i = 0; cz != NULL && i < cz->allow_transfer.n; i++)
		if (cidr_match(&cz->allow_transfer.v[i], peer))
			return true;
	return false;
}

static ldns_pkt *
axfr_msg(const struct zone *z, const struct dnsq *q, bool first)
{
	ldns_pkt *p = ldns_pkt_new();
	ldns_rdf *name = NULL;
	ldns_rr *question;

	if (p == NULL)
		return NULL;
	ldns_pkt_set_id(p, q->id);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_aa(p, true);
	if (!first)
		return p;
	question = ldns_rr_new();
	if (question == NULL || ldns_str2rdf_dname(&name, zone_name(z)) != LDNS_STATUS_OK) {
		ldns_rr_free(question);
		ldns_pkt_free(p);
		return NULL;
	}
	ldns_rr_set_owner(question, name);
	ldns_rr_set_question(question, true);
	ldns_rr_set_type(question, (ldns_rr_type)q->qtype);
	ldns_rr_set_class(question, LDNS_RR_CLASS_IN);
	ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, question);
	return p;
}

static int
axfr_flush(ldns_pkt *p, struct evbuffer *out)
{
	uint8_t *wire = NULL;
	uint8_t len[2];
	size_t n = 0;
	int rc = -1;

	if (ldns_pkt2wire(&wire, p, &n) == LDNS_STATUS_OK && n <= 65535) {
		len[0] = (uint8_t)(n >> 8);
		len[1] = (uint8_t)n;
		if (evbuffer_add(out, len, 2) == 0 && evbuffer_add(out, wire, n) == 0)
			rc = 0;
	}
	free(wire);
	ldns_pkt_free(p);
	return rc;
}

int
xfr_axfr(const struct zone *z, const struct dnsq *q, struct evbuffer *out)
{
	const ldns_rr_list *rrs = zone_rrs(z);
	size_t n = ldns_rr_list_rr_count(rrs), size = 0;
	ldns_pkt *p = axfr_msg(z, q, true);

	/* SOA (index 0), the rest, then the SOA again (index n). */
	for (size_t i = 0; p != NULL && i <= n; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(rrs, i == n ? 0 : i);
		ldns_rr *c = ldns_rr_clone(rr);

		if (c == NULL || !ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, c)) {
			ldns_rr_free(c);
			ldns_pkt_free(p);
			return -1;
		}
		size += ldns_rr_uncompressed_size(rr);
		if (size >= XFR_MSG_TARGET && i < n) {
			if (axfr_flush(p, out) == -1)
				return -1;
			p = axfr_msg(z, q, false);
			size = 0;
		}
	}
	return p != NULL ? axfr_flush(p, out) : -1;
}

/* ---- NOTIFY ----------------------------------------------------------- */

struct notify_job {
	struct notifier *owner;
	struct notify_job *next;
	struct addr to;
	char zone[256];
	uint32_t serial;
	uint16_t id;
	uint8_t *wire;
	size_t len;
	unsigned tries;
	struct event *timer;
};

struct notifier {
	struct event_base *base;
	const struct config_broker *cfg;
	int fd[2]; /* IPv4, IPv6 */
	struct event *ev[2];
	struct notify_job *jobs;
	struct notifier_stats stats;
};

static void
job_free(struct notify_job *j)
{
	struct notify_job **pp;

	for (pp = &j->owner->jobs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (j->timer != NULL)
		event_free(j->timer);
	free(j->wire);
	free(j);
}

static void
job_send(struct notify_job *j)
{
	int fd = j->owner->fd[addr_family(&j->to) == AF_INET6];
	char a[ADDR_STRLEN];
	struct timeval tv;
	unsigned ms = NOTIFY_RETRY_MS << j->tries;

	if (fd == -1 || sendto(fd, j->wire, j->len, 0, addr_sa(&j->to), j->to.len) == -1)
		log_warn("notify: %s serial %u to %s", j->zone, j->serial,
		    addr_str(&j->to, a, sizeof(a)));
	j->tries++;
	j->owner->stats.sent++;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(j->timer, &tv);
}

static void
job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct notify_job *j = arg;
	char a[ADDR_STRLEN];

	(void)fd;
	(void)what;
	if (j->tries < NOTIFY_TRIES) {
		job_send(j);
		return;
	}
	log_warnx("notify: %s serial %u to %s: no answer after %u tries", j->zone, j->serial,
	    addr_str(&j->to, a, sizeof(a)), j->tries);
	j->owner->stats.failed++;
	job_free(j);
}

static void
notify_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;
	uint8_t buf[512];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ssize_t r;
	struct addr from;

	(void)what;
	while ((r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl)) >= 0) {
		uint16_t id = wire_get16(buf);

		if (r < 12 || !(buf[2] & 0x80) || ((buf[2] >> 3) & 0xf) != LDNS_PACKET_NOTIFY ||
		    addr_from_sockaddr((struct sockaddr *)&ss, sl, &from) == -1)
			continue;
		for (struct notify_job *j = n->jobs; j != NULL; j = j->next) {
			char a[ADDR_STRLEN];

			if (j->id != id || !addr_equal(&j->to, &from))
				continue;
			log_info("notify: %s serial %u acknowledged by %s (rcode %d)", j->zone,
			    j->serial, addr_str(&from, a, sizeof(a)), buf[3] & 0xf);
			n->stats.acked++;
			job_free(j);
			break;
		}
		sl = sizeof(ss);
	}
}

static int
notify_socket(struct notifier *n, int family)
{
	struct addr any;
	int i = family == AF_INET6;

	if (addr_parse(family == AF_INET6 ? "::" : "0.0.0.0", 0, &any) == -1)
		return -1;
	n->fd[i] = sock_bind(&any, SOCK_DGRAM, 0);
	if (n->fd[i] == -1)
		return family == AF_INET6 ? 0 : -1; /* no IPv6 here is fine */
	n->ev[i] = event_new(n->base, n->fd[i], EV_READ | EV_PERSIST, notify_read_cb, n);
	if (n->ev[i] == NULL || event_add(n->ev[i], NULL) == -1)
		return -1;
	return 0;
}

struct notifier *
notifier_new(struct event_base *base, const struct config_broker *cfg)
{
	struct notifier *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->base = base;
	n->cfg = cfg;
	n->fd[0] = n->fd[1] = -1;
	if (notify_socket(n, AF_INET) == -1 || notify_socket(n, AF_INET6) == -1) {
		log_warn("notify: cannot open a UDP socket");
		notifier_free(n);
		return NULL;
	}
	return n;
}

void
notifier_free(struct notifier *n)
{
	if (n == NULL)
		return;
	while (n->jobs != NULL)
		job_free(n->jobs);
	for (int i = 0; i < 2; i++) {
		if (n->ev[i] != NULL)
			event_free(n->ev[i]);
		if (n->fd[i] != -1)
			close(n->fd[i]);
	}
	free(n);
}

static uint8_t *
notify_wire(const struct zone *z, uint16_t id, size_t *len)
{
	ldns_rdf *name = NULL;
	ldns_pkt *p;
	uint8_t *wire = NULL;
	ldns_rr *soa = ldns_rr_clone(zone_soa(z));

	if (soa == NULL || ldns_str2rdf_dname(&name, zone_name(z)) != LDNS_STATUS_OK) {
		ldns_rr_free(soa);
		return NULL;
	}
	p = ldns_pkt_query_new(name, LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, LDNS_AA);
	if (p == NULL) {
		ldns_rr_free(soa);
		return NULL;
	}
	ldns_pkt_set_opcode(p, LDNS_PACKET_NOTIFY);
	ldns_pkt_set_id(p, id);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, soa);
	if (ldns_pkt2wire(&wire, p, len) != LDNS_STATUS_OK) {
		free(wire);
		wire = NULL;
	}
	ldns_pkt_free(p);
	return wire;
}

static void
notify_one(struct notifier *n, const struct zone *z, const struct addr *to)
{
	struct notify_job *j;

	/* A newer serial supersedes a NOTIFY still being retried. */
	for (j = n->jobs; j != NULL; j = j->next)
		if (strcmp(j->zone, zone_name(z)) == 0 && addr_equal(&j->to, to)) {
			job_free(j);
			break;
		}
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->owner = n;
	j->to = *to;
	snprintf(j->zone, sizeof(j->zone), "%s", zone_name(z));
	j->serial = zone_serial(z);
	j->id = ldns_get_random();
	j->wire = notify_wire(z, j->id, &j->len);
	j->timer = evtimer_new(n->base, job_timer_cb, j);
	j->next = n->jobs;
	n->jobs = j;
	if (j->wire == NULL || j->timer == NULL) {
		log_warnx("notify: %s: out of memory", j->zone);
		job_free(j);
		return;
	}
	job_send(j);
}

void
notifier_zone_changed(struct notifier *n, const struct zone *z)
{
	for (size_t i = 0; i < n->cfg->nzones; i++) {
		const struct config_zone *cz = &n->cfg->zones[i];

		if (strcasecmp(cz->name, zone_name(z)) != 0)
			continue;
		for (size_t k = 0; k < cz->also_notify.n; k++)
			notify_one(n, z, &cz->also_notify.v[k]);
	}
}

void
notifier_stats(const struct notifier *n, struct notifier_stats *out)
{
	*out = n->stats;
}
