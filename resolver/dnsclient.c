/* dnsclient.c - asynchronous stub resolver: UDP+EDNS0, TCP on truncation. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/random.h"
#include "resolver/dnscache.h"
#include "resolver/dnsclient.h"

/* A query with the largest name and an OPT record fits easily. */
#define QUERY_MAX 512
/* Datagrams read per readiness event before yielding to the loop. */
#define READ_BURST 8

struct dnstx;

struct dnsclient_query {
	struct dnsclient *c;
	struct dnstx *tx;           /* exchange we wait on, or NULL */
	struct dnscache_entry *hit; /* cached answer awaiting delivery */
	struct event *ev_defer;     /* delivers `hit` from the loop */
	dnsclient_cb cb;
	void *arg;
	struct dns_answer failure; /* delivered instead when `failed` */
	bool failed;
	unsigned hops; /* CNAME re-queries so far */
	bool via_cname;
	bool insecure;                         /* some answer on the alias chain was not secure */
	struct dnsclient_query *wprev, *wnext; /* tx waiters */
	struct dnsclient_query *qprev, *qnext; /* every live query */
};

/* One question on the wire, shared by every query that asks it. */
struct dnstx {
	struct dnsclient *c;
	char name[DNSMSG_NAME_MAX];
	uint16_t type;
	uint16_t id;
	uint8_t query[QUERY_MAX];
	size_t qlen;
	unsigned tries; /* sends so far */
	size_t server;  /* index asked last */
	bool started, active, tcp, truncated;
	enum dns_status failure; /* most telling failure seen; DNS_OK = none */
	size_t failure_server;   /* the server that gave it */
	int fd;
	struct event *ev_read;
	struct event *ev_timer; /* start, then per-try timeout */
	struct bufferevent *bev;
	struct dnsclient_query *waiters;
	struct dnstx *prev, *next; /* in flight */
	struct dnstx *wait_next;   /* queued for a free slot */
};

struct dnsclient {
	struct event_base *base;
	struct addr *servers;
	size_t nservers;
	struct timeval timeout;
	unsigned attempts;
	uint16_t edns_size;
	bool dnssec;
	struct dnscache *cache;
	struct dnstx *inflight;
	size_t active, max_active;           /* exchanges holding a socket */
	struct dnstx *wait_head, *wait_tail; /* exchanges waiting for a slot */
	struct dnsclient_query *queries;
	struct dnsclient_stats stats;
	struct log_ratelimit rl;
	uint8_t buf[65536];
};

static void tx_try(struct dnstx *tx);
static void query_start(struct dnsclient_query *q, const char *name, uint16_t type);

static uint64_t
now_sec(void)
{
	return clock_ms() / 1000;
}

struct dnsclient *
dnsclient_new(struct event_base *base, const struct dnsclient_params *p)
{
	struct dnsclient *c;

	if (p->nservers == 0 || p->timeout_ms == 0 || p->attempts == 0) {
		log_warnx("resolver: no nameserver, timeout or attempts configured");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->base = base;
	c->servers = calloc(p->nservers, sizeof(*c->servers));
	c->cache = dnscache_new(p->cache_size);
	if (c->servers == NULL || c->cache == NULL)
		goto fail;
	memcpy(c->servers, p->servers, p->nservers * sizeof(*c->servers));
	c->nservers = p->nservers;
	c->timeout.tv_sec = p->timeout_ms / 1000;
	c->timeout.tv_usec = (p->timeout_ms % 1000) * 1000;
	c->attempts = p->attempts;
	c->edns_size = p->edns_size;
	c->dnssec = p->dnssec;
	c->max_active = p->max_inflight > 0 ? p->max_inflight : DNSCLIENT_MAX_INFLIGHT;
	c->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 60);
	return c;
fail:
	log_warn("resolver: dnsclient_new");
	if (c != NULL) {
		free(c->servers);
		dnscache_free(c->cache);
		free(c);
	}
	return NULL;
}

static void
tx_close_transport(struct dnstx *tx)
{
	if (tx->ev_read != NULL) {
		event_free(tx->ev_read);
		tx->ev_read = NULL;
	}
	if (tx->fd != -1) {
		close(tx->fd);
		tx->fd = -1;
	}
	if (tx->bev != NULL) {
		bufferevent_free(tx->bev);
		tx->bev = NULL;
	}
	evtimer_del(tx->ev_timer);
}

/* Start the exchange from the loop (never re-entrantly) in a free slot. */
static void
tx_activate(struct dnstx *tx)
{
	static const struct timeval now = {0, 0};

	tx->active = true;
	tx->c->active++;
	evtimer_add(tx->ev_timer, &now);
}

/* Drop `tx` from the slot queue if it waits there. */
static void
wait_remove(struct dnsclient *c, struct dnstx *tx)
{
	struct dnstx **pp, *prev = NULL;

	for (pp = &c->wait_head; *pp != NULL; prev = *pp, pp = &(*pp)->wait_next) {
		if (*pp == tx) {
			*pp = tx->wait_next;
			if (c->wait_tail == tx)
				c->wait_tail = prev;
			return;
		}
	}
}

static void
tx_free(struct dnstx *tx)
{
	struct dnsclient *c = tx->c;

	if (tx->active) {
		c->active--;
		if (c->wait_head != NULL) {
			struct dnstx *next = c->wait_head;

			c->wait_head = next->wait_next;
			if (c->wait_head == NULL)
				c->wait_tail = NULL;
			tx_activate(next);
		}
	} else {
		wait_remove(c, tx);
	}
	tx_close_transport(tx);
	event_free(tx->ev_timer);
	if (tx->prev != NULL)
		tx->prev->next = tx->next;
	else if (c->inflight == tx)
		c->inflight = tx->next;
	if (tx->next != NULL)
		tx->next->prev = tx->prev;
	c->stats.inflight--;
	free(tx);
}

static void
waiter_unlink(struct dnsclient_query *q)
{
	struct dnstx *tx = q->tx;

	if (q->wprev != NULL)
		q->wprev->wnext = q->wnext;
	else
		tx->waiters = q->wnext;
	if (q->wnext != NULL)
		q->wnext->wprev = q->wprev;
	q->wprev = q->wnext = NULL;
	q->tx = NULL;
}

static void
query_free(struct dnsclient_query *q)
{
	struct dnsclient *c = q->c;

	if (q->tx != NULL)
		waiter_unlink(q);
	dnscache_release(q->hit);
	if (q->ev_defer != NULL)
		event_free(q->ev_defer);
	if (q->qprev != NULL)
		q->qprev->qnext = q->qnext;
	else
		c->queries = q->qnext;
	if (q->qnext != NULL)
		q->qnext->qprev = q->qprev;
	free(q);
}

void
dnsclient_free(struct dnsclient *c)
{
	if (c == NULL)
		return;
	while (c->queries != NULL)
		query_free(c->queries);
	c->wait_head = c->wait_tail = NULL;
	while (c->inflight != NULL) {
		c->inflight->active = false;
		tx_free(c->inflight);
	}
	dnscache_free(c->cache);
	free(c->servers);
	free(c);
}

void
dnsclient_cancel(struct dnsclient_query *q)
{
	if (q != NULL)
		query_free(q);
}

/*
 * Hand an answer to one query: an alias an authoritative server left
 * unanswered is asked again under its canonical name; anything else goes
 * to the caller and ends the query.
 */
static void
query_finish(
    struct dnsclient_query *q, const struct dns_answer *a, const struct dnsclient_info *info_in)
{
	struct dnsclient_info info = *info_in;
	struct dns_answer ans = *a; /* shallow: `secure` for the whole chain */

	if (a->status == DNS_CNAME && q->hops < DNSMSG_CNAME_MAX) {
		q->hops++;
		q->via_cname = true;
		q->insecure |= !a->secure;
		query_start(q, a->canon, a->qtype);
		return;
	}
	ans.secure = a->secure && !q->insecure;
	info.via_cname = info.via_cname || q->via_cname;
	info.canon = a->canon;
	q->cb(&ans, &info, q->arg);
	query_free(q);
}

/* The exchange is over: cache the answer and give it to every waiter. */
static void
tx_deliver(struct dnstx *tx, struct dns_answer *a, const struct dnsclient_info *info)
{
	struct dnsclient *c = tx->c;
	struct dnscache_entry *e = NULL;
	const struct dns_answer *out = a;
	struct dnsclient_query *q;

	tx_close_transport(tx);
	/* Out of the in-flight list first: callbacks may ask the same again. */
	if (tx->prev != NULL)
		tx->prev->next = tx->next;
	else
		c->inflight = tx->next;
	if (tx->next != NULL)
		tx->next->prev = tx->prev;
	tx->prev = tx->next = NULL;
	if (a->cacheable && a->ttl > 0 && (e = dnscache_insert(c->cache, a, now_sec())) != NULL)
		out = dnscache_answer(e);
	while ((q = tx->waiters) != NULL) {
		waiter_unlink(q);
		query_finish(q, out, info);
	}
	dnscache_release(e);
	dns_answer_clear(a);
	tx_free(tx);
}

static void
tx_info(const struct dnstx *tx, struct dnsclient_info *info)
{
	memset(info, 0, sizeof(*info));
	info->tcp = tx->tcp;
	info->truncated = tx->truncated;
	addr_str(&tx->c->servers[tx->server], info->server, sizeof(info->server));
}

/* Every try failed: deliver the most telling failure (never cached). */
static void
tx_fail(struct dnstx *tx)
{
	struct dns_answer a;
	struct dnsclient_info info;

	memset(&a, 0, sizeof(a));
	a.status = tx->failure != DNS_OK ? tx->failure : DNS_TIMEOUT;
	if (tx->failure != DNS_OK) /* name the server the failure came from */
		tx->server = tx->failure_server;
	a.qtype = tx->type;
	snprintf(a.qname, sizeof(a.qname), "%s", tx->name);
	snprintf(a.canon, sizeof(a.canon), "%s", tx->name);
	tx_info(tx, &info);
	tx_deliver(tx, &a, &info);
}

static int
failure_rank(enum dns_status s)
{
	switch (s) {
	case DNS_SERVFAIL: return 6;
	case DNS_REFUSED: return 5;
	case DNS_MALFORMED: return 4;
	case DNS_CONNREFUSED: return 3;
	case DNS_TIMEOUT: return 2;
	case DNS_NETERR: return 1;
	default: return 0;
	}
}

/* A failed send, receive or connect: a closed port is told apart (an
 * operator looks for a stopped server, not a lossy network). */
static enum dns_status
neterr_status(int err)
{
	return err == ECONNREFUSED ? DNS_CONNREFUSED : DNS_NETERR;
}

/* Keep the most telling failure and the server that gave it. */
static void
tx_note_failure(struct dnstx *tx, enum dns_status why)
{
	if (failure_rank(why) > failure_rank(tx->failure)) {
		tx->failure = why;
		tx->failure_server = tx->server;
	}
}

/* This try failed with `why`: remember it and ask the next server. */
static void
tx_next(struct dnstx *tx, enum dns_status why)
{
	tx_note_failure(tx, why);
	tx_close_transport(tx);
	tx_try(tx);
}

/* A validated reply arrived (over UDP or TCP). */
static void
tx_reply(struct dnstx *tx, struct dns_answer *a)
{
	struct dnsclient_info info;

	/* AD means something only from a validator we were told to trust. */
	a->secure = a->secure && tx->c->dnssec;
	switch (a->status) {
	case DNS_SERVFAIL:
	case DNS_REFUSED:
	case DNS_MALFORMED:
		dns_answer_clear(a);
		tx_next(tx, a->status);
		return;
	default: break;
	}
	tx_info(tx, &info);
	tx_deliver(tx, a, &info);
}

static void
tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct dnstx *tx = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[2];
	size_t len;
	struct dns_answer a;

	if (evbuffer_copyout(in, hdr, 2) < 2)
		return;
	len = wire_get16(hdr);
	if (evbuffer_get_length(in) < 2 + len)
		return;
	evbuffer_drain(in, 2);
	evbuffer_remove(in, tx->c->buf, len);
	if (dnsmsg_parse_reply(tx->c->buf, len, tx->id, tx->name, tx->type, &a) == -1 ||
	    a.status == DNS_TRUNCATED) {
		dns_answer_clear(&a);
		tx->c->stats.mismatched++;
		tx_next(tx, DNS_MALFORMED);
		return;
	}
	tx_reply(tx, &a);
}

static void
tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dnstx *tx = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	tx->c->stats.neterrs++;
	tx_next(tx, (what & BEV_EVENT_ERROR) ? neterr_status(EVUTIL_SOCKET_ERROR()) : DNS_NETERR);
}

/* Retry the same question on the same server over TCP (RFC 7766). */
static void
tcp_start(struct dnstx *tx)
{
	struct dnsclient *c = tx->c;
	const struct addr *srv = &c->servers[tx->server];
	uint8_t hdr[2] = {(uint8_t)(tx->qlen >> 8), (uint8_t)tx->qlen};

	tx_close_transport(tx);
	tx->tcp = true;
	c->stats.sent_tcp++;
	tx->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (tx->bev == NULL) {
		tx_next(tx, DNS_NETERR);
		return;
	}
	bufferevent_setcb(tx->bev, tcp_read_cb, NULL, tcp_event_cb, tx);
	bufferevent_enable(tx->bev, EV_READ | EV_WRITE);
	if (bufferevent_write(tx->bev, hdr, 2) == -1 ||
	    bufferevent_write(tx->bev, tx->query, tx->qlen) == -1 ||
	    bufferevent_socket_connect(tx->bev, addr_sa(srv), srv->len) == -1) {
		c->stats.neterrs++;
		tx_next(tx, DNS_NETERR);
		return;
	}
	evtimer_add(tx->ev_timer, &c->timeout);
}

/* One datagram: 1 = consumed and the exchange moved on, 0 = keep reading. */
static int
udp_datagram(struct dnstx *tx, size_t len)
{
	struct dns_answer a;

	if (dnsmsg_parse_reply(tx->c->buf, len, tx->id, tx->name, tx->type, &a) == -1) {
		tx->c->stats.mismatched++;
		log_warnx_rl(&tx->c->rl,
		    "resolver: %s: ignored a reply that does not "
		    "match the query",
		    tx->name);
		return 0;
	}
	if (a.status == DNS_TRUNCATED) {
		tx->truncated = true;
		tx->c->stats.truncated++;
		tcp_start(tx);
		return 1;
	}
	tx_reply(tx, &a);
	return 1;
}

static void
udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dnstx *tx = arg;
	const struct addr *srv = &tx->c->servers[tx->server];
	struct sockaddr_storage from;
	socklen_t fromlen;
	struct addr src;

	(void)what;
	for (int i = 0; i < READ_BURST; i++) {
		ssize_t n;

		fromlen = sizeof(from);
		n = recvfrom(
		    fd, tx->c->buf, sizeof(tx->c->buf), 0, (struct sockaddr *)&from, &fromlen);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			tx->c->stats.neterrs++;
			tx_next(tx, neterr_status(errno));
			return;
		}
		if (addr_from_sockaddr((struct sockaddr *)&from, fromlen, &src) == -1 ||
		    !addr_equal(&src, srv))
			continue;
		if (udp_datagram(tx, (size_t)n))
			return;
	}
}

static int
udp_send(struct dnstx *tx)
{
	struct dnsclient *c = tx->c;
	const struct addr *srv = &c->servers[tx->server];

	tx->fd = socket(addr_family(srv), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (tx->fd == -1)
		return -1;
	/* connect: the kernel picks a random source port and filters sources. */
	if (connect(tx->fd, addr_sa(srv), srv->len) == -1 ||
	    send(tx->fd, tx->query, tx->qlen, 0) != (ssize_t)tx->qlen)
		return -1;
	tx->ev_read = event_new(c->base, tx->fd, EV_READ | EV_PERSIST, udp_read_cb, tx);
	if (tx->ev_read == NULL || event_add(tx->ev_read, NULL) == -1)
		return -1;
	c->stats.sent_udp++;
	return evtimer_add(tx->ev_timer, &c->timeout);
}

/* Send the next try: server after server, `attempts` rounds; else fail. */
static void
tx_try(struct dnstx *tx)
{
	struct dnsclient *c = tx->c;
	enum dns_status why;
	int len;

	while (tx->tries < c->attempts * c->nservers) {
		tx->server = tx->tries % c->nservers;
		tx->tries++;
		tx->tcp = false;
		tx->id = (uint16_t)random_u32();
		len = dnsmsg_build_query(tx->name, tx->type, tx->id, c->edns_size, c->dnssec,
		    tx->query, sizeof(tx->query));
		if (len < 0) {
			tx_note_failure(tx, DNS_MALFORMED);
			break;
		}
		tx->qlen = (size_t)len;
		if (udp_send(tx) == 0)
			return;
		why = neterr_status(errno);
		c->stats.neterrs++;
		tx_note_failure(tx, why);
		tx_close_transport(tx);
	}
	tx_fail(tx);
}

static void
tx_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dnstx *tx = arg;

	(void)fd;
	(void)what;
	if (!tx->started) {
		tx->started = true;
		tx_try(tx);
		return;
	}
	tx->c->stats.timeouts++;
	tx_next(tx, DNS_TIMEOUT);
}

static struct dnstx *
tx_find(struct dnsclient *c, const char *name, uint16_t type)
{
	for (struct dnstx *tx = c->inflight; tx != NULL; tx = tx->next)
		if (tx->type == type && strcmp(tx->name, name) == 0)
			return tx;
	return NULL;
}

/* A new exchange: started from the loop when a slot is free, else queued. */
static struct dnstx *
tx_new(struct dnsclient *c, const char *name, uint16_t type)
{
	struct dnstx *tx = calloc(1, sizeof(*tx));

	if (tx == NULL)
		return NULL;
	tx->c = c;
	tx->fd = -1;
	tx->type = type;
	tx->failure = DNS_OK;
	snprintf(tx->name, sizeof(tx->name), "%s", name);
	if ((tx->ev_timer = evtimer_new(c->base, tx_timer_cb, tx)) == NULL) {
		free(tx);
		return NULL;
	}
	if (c->active < c->max_active)
		tx_activate(tx);
	else if (c->wait_tail != NULL)
		c->wait_tail = c->wait_tail->wait_next = tx;
	else
		c->wait_head = c->wait_tail = tx;
	tx->next = c->inflight;
	if (c->inflight != NULL)
		c->inflight->prev = tx;
	c->inflight = tx;
	c->stats.inflight++;
	return tx;
}

static void
defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dnsclient_query *q = arg;
	struct dnscache_entry *e = q->hit;
	struct dnsclient_info info;

	(void)fd;
	(void)what;
	memset(&info, 0, sizeof(info));
	if (q->failed) {
		q->failed = false;
		query_finish(q, &q->failure, &info);
		return;
	}
	info.cached = true;
	q->hit = NULL;
	query_finish(q, dnscache_answer(e), &info);
	dnscache_release(e);
}

/* Deliver a failure from the loop for a name we cannot even ask. */
static void
query_fail_later(struct dnsclient_query *q, const char *name, uint16_t type)
{
	struct dns_answer *a = &q->failure;

	memset(a, 0, sizeof(*a));
	a->status = DNS_MALFORMED;
	a->qtype = type;
	snprintf(a->qname, sizeof(a->qname), "%.*s", (int)sizeof(a->qname) - 1, name);
	snprintf(a->canon, sizeof(a->canon), "%s", a->qname);
	q->failed = true;
	if (q->ev_defer == NULL)
		q->ev_defer = event_new(q->c->base, -1, 0, defer_cb, q);
	if (q->ev_defer != NULL)
		event_active(q->ev_defer, 0, 0);
	else
		log_warn("resolver: %s: event_new", a->qname);
}

/* Attach a query to a cached answer, an exchange in flight, or a new one. */
static void
query_start(struct dnsclient_query *q, const char *name_in, uint16_t type)
{
	struct dnsclient *c = q->c;
	char name[DNSMSG_NAME_MAX];
	struct dnstx *tx;

	if (dnsmsg_name_normalize(name_in, name, sizeof(name)) == -1) {
		query_fail_later(q, name_in, type);
		return;
	}
	if ((q->hit = dnscache_lookup(c->cache, name, type, now_sec())) != NULL) {
		if (q->ev_defer == NULL)
			q->ev_defer = event_new(c->base, -1, 0, defer_cb, q);
		if (q->ev_defer != NULL) {
			event_active(q->ev_defer, 0, 0);
			return;
		}
		dnscache_release(q->hit);
		q->hit = NULL;
	}
	if ((tx = tx_find(c, name, type)) != NULL)
		c->stats.shared++;
	else if ((tx = tx_new(c, name, type)) == NULL) {
		log_warn("resolver: %s: cannot start a query", name);
		query_fail_later(q, name, type);
		return;
	}
	q->tx = tx;
	q->wnext = tx->waiters;
	if (tx->waiters != NULL)
		tx->waiters->wprev = q;
	tx->waiters = q;
}

struct dnsclient_query *
dnsclient_query(struct dnsclient *c, const char *name, uint16_t type, dnsclient_cb cb, void *arg)
{
	struct dnsclient_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->c = c;
	q->cb = cb;
	q->arg = arg;
	q->qnext = c->queries;
	if (c->queries != NULL)
		c->queries->qprev = q;
	c->queries = q;
	c->stats.queries++;
	query_start(q, name, type);
	return q;
}

void
dnsclient_get_stats(const struct dnsclient *c, struct dnsclient_stats *out)
{
	struct dnscache_stats cs;

	*out = c->stats;
	dnscache_get_stats(c->cache, &cs);
	out->cache.entries = cs.entries;
	out->cache.hits = cs.hits;
	out->cache.misses = cs.misses;
	out->cache.evictions = cs.evictions;
}

/* One "nameserver ADDR" or "options ..." line of resolv.conf. */
static void
resolv_conf_line(
    char *line, struct addr *out, size_t max, int *n, unsigned *timeout_s, unsigned *attempts)
{
	char *save = NULL, *key = strtok_r(line, " \t\r\n", &save), *w;

	if (key == NULL)
		return;
	if (strcmp(key, "nameserver") == 0) {
		w = strtok_r(NULL, " \t\r\n", &save);
		if (w != NULL && (size_t)*n < max && addr_parse(w, 53, &out[*n]) == 0)
			(*n)++;
		return;
	}
	if (strcmp(key, "options") != 0)
		return;
	while ((w = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
		unsigned long v;
		char *end;

		if (strncmp(w, "timeout:", 8) == 0 || strncmp(w, "attempts:", 9) == 0) {
			errno = 0;
			v = strtoul(strchr(w, ':') + 1, &end, 10);
			if (errno != 0 || *end != '\0' || v < 1 || v > 30)
				continue;
			if (w[0] == 't')
				*timeout_s = (unsigned)v;
			else
				*attempts = (unsigned)v;
		}
	}
}

int
dnsclient_read_resolv_conf(
    const char *path, struct addr *out, size_t max, unsigned *timeout_s, unsigned *attempts)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash = strpbrk(line, "#;");

		if (hash != NULL)
			*hash = '\0';
		resolv_conf_line(line, out, max, &n, timeout_s, attempts);
	}
	fclose(f);
	return n;
}
