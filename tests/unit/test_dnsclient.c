/* test_dnsclient.c - the DNS client: reply validation (dnsmsg), the cache
 * (TTL, RFC 2308 negative TTL, bound), resolv.conf, and the asynchronous
 * exchange against an in-process server that sends forged and truncated
 * replies before the real one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/log.h"
#include "resolver/dnscache.h"
#include "resolver/dnsclient.h"
#include "resolver/dnsmsg.h"
#include "tests/unit/tap.h"

/* Build a reply to (name, type, id) with answer/authority RRs from text. */
static size_t
reply(uint8_t *buf, size_t buflen, const char *name, uint16_t type, uint16_t id,
    ldns_pkt_rcode rcode, const char *const *ans, const char *const *auth, bool tc)
{
	ldns_rdf *owner = NULL;
	ldns_pkt *p;
	uint8_t *wire = NULL;
	size_t len = 0;
	char fqdn[300];

	snprintf(fqdn, sizeof(fqdn), "%s.", name);
	ldns_str2rdf_dname(&owner, fqdn);
	p = ldns_pkt_query_new(owner, type, LDNS_RR_CLASS_IN, LDNS_QR | LDNS_AA);
	ldns_pkt_set_id(p, id);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	ldns_pkt_set_tc(p, tc);
	for (size_t i = 0; ans != NULL && ans[i] != NULL; i++) {
		ldns_rr *rr = NULL;

		ldns_rr_new_frm_str(&rr, ans[i], 0, NULL, NULL);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	}
	for (size_t i = 0; auth != NULL && auth[i] != NULL; i++) {
		ldns_rr *rr = NULL;

		ldns_rr_new_frm_str(&rr, auth[i], 0, NULL, NULL);
		ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, rr);
	}
	ldns_pkt2wire(&wire, p, &len);
	ldns_pkt_free(p);
	if (len > buflen)
		len = 0;
	memcpy(buf, wire, len);
	free(wire);
	return len;
}

static const char *const SOA[] = {
    "example.test. 300 IN SOA ns.example.test. h.example.test. 1 3600 600 86400 60", NULL};

static void
test_build_and_parse(void)
{
	static const char *const mx[] = {"www.example.test. 100 IN CNAME mail.example.test.",
	    "mail.example.test. 200 IN MX 10 mx1.example.test.",
	    "mail.example.test. 50 IN MX 20 mx2.example.test.",
	    "other.example.test. 10 IN MX 5 wrong.example.test.", NULL};
	uint8_t q[512], r[4096];
	struct dns_answer a;
	size_t len;
	int qlen;
	char name[DNSMSG_NAME_MAX];

	qlen = dnsmsg_build_query(
	    "www.example.test", LDNS_RR_TYPE_MX, 0x1234, 1232, false, q, sizeof(q));
	ok(qlen > 12 && q[0] == 0x12 && q[1] == 0x34, "query carries the ID");
	ok(qlen > 0 && q[qlen - 11 + 0] == 0 && q[qlen - 11 + 2] == 41,
	    "query ends with an OPT record");

	len = reply(r, sizeof(r), "www.example.test", LDNS_RR_TYPE_MX, 7, LDNS_RCODE_NOERROR, mx,
	    NULL, false);
	is_int(dnsmsg_parse_reply(r, len, 7, "www.example.test", LDNS_RR_TYPE_MX, &a), 0,
	    "reply accepted");
	is_int(a.status, DNS_OK, "records found through the CNAME");
	ok(a.via_cname && strcmp(a.canon, "mail.example.test") == 0, "canonical name");
	is_int(ldns_rr_list_rr_count(a.rrs), 2, "only the canonical name's MX");
	is_int(a.ttl, 50, "TTL is the minimum over chain and RRset");
	dns_answer_clear(&a);

	is_int(dnsmsg_parse_reply(r, len, 8, "www.example.test", LDNS_RR_TYPE_MX, &a), -1,
	    "wrong ID refused");
	is_int(dnsmsg_parse_reply(r, len, 7, "xxx.example.test", LDNS_RR_TYPE_MX, &a), -1,
	    "wrong name refused");
	is_int(dnsmsg_parse_reply(r, len, 7, "www.example.test", LDNS_RR_TYPE_A, &a), -1,
	    "wrong type refused");
	is_int(dnsmsg_parse_reply(r, 11, 7, "www.example.test", LDNS_RR_TYPE_MX, &a), -1,
	    "short packet refused");
	is_int(dnsmsg_parse_reply(q, (size_t)qlen, 0x1234, "www.example.test", LDNS_RR_TYPE_MX, &a),
	    -1, "a query (QR clear) is not a reply");

	len = reply(r, sizeof(r), "nx.example.test", LDNS_RR_TYPE_MX, 9, LDNS_RCODE_NXDOMAIN, NULL,
	    SOA, false);
	dnsmsg_parse_reply(r, len, 9, "NX.Example.Test", LDNS_RR_TYPE_MX, &a);
	ok(a.status == DNS_NXDOMAIN && a.cacheable && a.ttl == 60,
	    "NXDOMAIN, negative TTL = min(SOA TTL, MINIMUM) = %u", a.ttl);
	len = reply(r, sizeof(r), "nd.example.test", LDNS_RR_TYPE_MX, 9, LDNS_RCODE_NOERROR, NULL,
	    NULL, false);
	dnsmsg_parse_reply(r, len, 9, "nd.example.test", LDNS_RR_TYPE_MX, &a);
	ok(a.status == DNS_NODATA && !a.cacheable, "NODATA without SOA: not cached");
	len = reply(r, sizeof(r), "sf.example.test", LDNS_RR_TYPE_MX, 9, LDNS_RCODE_SERVFAIL, NULL,
	    NULL, false);
	dnsmsg_parse_reply(r, len, 9, "sf.example.test", LDNS_RR_TYPE_MX, &a);
	ok(a.status == DNS_SERVFAIL && dns_status_is_temporary(a.status), "SERVFAIL temporary");
	len = reply(r, sizeof(r), "tc.example.test", LDNS_RR_TYPE_MX, 9, LDNS_RCODE_NOERROR, NULL,
	    NULL, true);
	dnsmsg_parse_reply(r, len, 9, "tc.example.test", LDNS_RR_TYPE_MX, &a);
	is_int(a.status, DNS_TRUNCATED, "TC seen");

	ok(dnsmsg_name_normalize("Ex-Ample.TEST.", name, sizeof(name)) == 0 &&
	        strcmp(name, "ex-ample.test") == 0,
	    "normalised name");
	ok(dnsmsg_name_normalize("xn--bcher-kva.test", name, sizeof(name)) == 0,
	    "A-label accepted");
	is_int(dnsmsg_name_normalize("b\xc3\xbc"
	                             "cher.test",
	           name, sizeof(name)),
	    -1, "U-label refused");
	is_int(dnsmsg_name_normalize("a..b", name, sizeof(name)), -1, "empty label");
	is_int(dnsmsg_name_normalize(".", name, sizeof(name)), -1, "root");
	is_int(dnsmsg_name_normalize(
	           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b", name,
	           sizeof(name)),
	    -1, "64-octet label");
}

static struct dns_answer
answer(const char *name, uint32_t ttl, bool cacheable)
{
	struct dns_answer a;

	memset(&a, 0, sizeof(a));
	a.status = DNS_NXDOMAIN;
	a.qtype = LDNS_RR_TYPE_MX;
	a.ttl = ttl;
	a.cacheable = cacheable;
	snprintf(a.qname, sizeof(a.qname), "%s", name);
	snprintf(a.canon, sizeof(a.canon), "%s", name);
	return a;
}

static void
test_cache(void)
{
	struct dnscache *c = dnscache_new(2);
	struct dnscache_entry *e, *held;
	struct dnscache_stats st;
	struct dns_answer a;

	a = answer("a.test", 10, true);
	held = dnscache_insert(c, &a, 100);
	ok(held != NULL, "inserted");
	e = dnscache_lookup(c, "a.test", LDNS_RR_TYPE_MX, 105);
	ok(e != NULL && dnscache_ttl_left(e, 105) == 5, "hit with 5 s left");
	dnscache_release(e);
	ok(dnscache_lookup(c, "a.test", LDNS_RR_TYPE_A, 105) == NULL, "type is part of the key");
	ok(dnscache_lookup(c, "a.test", LDNS_RR_TYPE_MX, 110) == NULL, "expired at TTL");
	ok(strcmp(dnscache_answer(held)->qname, "a.test") == 0, "a held entry outlives its expiry");
	dnscache_release(held);

	a = answer("b.test", 10, true);
	dnscache_release(dnscache_insert(c, &a, 200));
	a = answer("c.test", 10, true);
	dnscache_release(dnscache_insert(c, &a, 200));
	dnscache_release(dnscache_lookup(c, "b.test", LDNS_RR_TYPE_MX, 201));
	a = answer("d.test", 10, true);
	dnscache_release(dnscache_insert(c, &a, 202));
	ok(dnscache_lookup(c, "c.test", LDNS_RR_TYPE_MX, 203) == NULL,
	    "least recently used evicted at the bound");
	e = dnscache_lookup(c, "b.test", LDNS_RR_TYPE_MX, 203);
	ok(e != NULL, "recently used kept");
	dnscache_release(e);
	dnscache_get_stats(c, &st);
	is_int(st.entries, 2, "bounded to 2 entries");
	is_int(st.evictions, 1, "one eviction");

	a = answer("e.test", 10, false);
	ok(dnscache_insert(c, &a, 300) == NULL, "uncacheable refused");
	a = answer("f.test", 0, true);
	ok(dnscache_insert(c, &a, 300) == NULL, "TTL 0 refused");
	dnscache_free(c);

	c = dnscache_new(0);
	a = answer("g.test", 10, true);
	ok(dnscache_insert(c, &a, 1) == NULL, "cache-size 0 disables the cache");
	ok(strcmp(a.qname, "g.test") == 0 && a.status == DNS_NXDOMAIN,
	    "a refused answer is left to the caller");
	dns_answer_clear(&a);
	dnscache_free(c);
}

static void
test_resolv_conf(void)
{
	char path[] = "/tmp/test_resolv_XXXXXX";
	int fd = mkstemp(path);
	struct addr ns[3];
	unsigned timeout = 0, attempts = 0;
	char buf[ADDR_STRLEN];
	const char *text = "# comment\nsearch example.com\nnameserver 192.0.2.53\n"
	                   "nameserver 2001:db8::53 ; trailing\nnameserver bogus\n"
	                   "options rotate timeout:3 attempts:4\nnameserver 192.0.2.54\n"
	                   "nameserver 192.0.2.55\n";

	ok(fd != -1 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "temp file");
	close(fd);
	is_int(dnsclient_read_resolv_conf(path, ns, 3, &timeout, &attempts), 3,
	    "three nameservers kept (bogus skipped, max 3)");
	is_str(addr_str(&ns[1], buf, sizeof(buf)), "[2001:db8::53]:53", "IPv6 on port 53");
	is_int(timeout, 3, "options timeout");
	is_int(attempts, 4, "options attempts");
	unlink(path);
	is_int(dnsclient_read_resolv_conf(path, ns, 3, &timeout, &attempts), -1, "missing file");
}

/* --- an in-process server on the same event loop ------------------------- */

struct fake {
	struct event_base *base;
	int udp;
	struct event *ev;
	struct evconnlistener *tcp;
	unsigned udp_queries, tcp_queries;
	int done;
};

static const char *const BIG[] = {
    "big.test. 300 IN MX 10 mx1.big.test.", "big.test. 300 IN MX 20 mx2.big.test.", NULL};

static bool
parse_query(const uint8_t *q, size_t len, char *name, size_t namelen, uint16_t *type, uint16_t *id)
{
	ldns_pkt *p = NULL;
	char *s;

	if (ldns_wire2pkt(&p, q, len) != LDNS_STATUS_OK)
		return false;
	*id = ldns_pkt_id(p);
	*type = ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(p), 0));
	s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
	snprintf(name, namelen, "%.*s", (int)strlen(s) - 1, s);
	free(s);
	ldns_pkt_free(p);
	return true;
}

/* UDP: forge two wrong replies, then answer big.test truncated, the rest
 * NXDOMAIN with a SOA. */
static void
fake_udp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fake *f = arg;
	uint8_t q[512], r[2048];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
	char name[256];
	uint16_t type, id;
	size_t len;

	(void)what;
	if (n <= 0 || !parse_query(q, (size_t)n, name, sizeof(name), &type, &id))
		return;
	f->udp_queries++;
	len = reply(
	    r, sizeof(r), name, type, (uint16_t)(id + 1), LDNS_RCODE_NOERROR, BIG, NULL, false);
	sendto(fd, r, len, 0, (struct sockaddr *)&from, fl);
	len = reply(r, sizeof(r), "forged.test", type, id, LDNS_RCODE_NOERROR, BIG, NULL, false);
	sendto(fd, r, len, 0, (struct sockaddr *)&from, fl);
	if (strcmp(name, "big.test") == 0)
		len = reply(r, sizeof(r), name, type, id, LDNS_RCODE_NOERROR, NULL, NULL, true);
	else
		len = reply(r, sizeof(r), name, type, id, LDNS_RCODE_NXDOMAIN, NULL, SOA, false);
	sendto(fd, r, len, 0, (struct sockaddr *)&from, fl);
}

static void
fake_tcp_read(struct bufferevent *bev, void *arg)
{
	struct fake *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t q[514], r[2048], hdr[2];
	size_t qlen, len;
	char name[256];
	uint16_t type, id;

	if (evbuffer_copyout(in, hdr, 2) < 2)
		return;
	qlen = (size_t)hdr[0] << 8 | hdr[1];
	if (evbuffer_get_length(in) < qlen + 2 || qlen > 512)
		return;
	evbuffer_remove(in, q, qlen + 2);
	if (!parse_query(q + 2, qlen, name, sizeof(name), &type, &id))
		return;
	f->tcp_queries++;
	len = reply(r, sizeof(r), name, type, id, LDNS_RCODE_NOERROR, BIG, NULL, false);
	hdr[0] = (uint8_t)(len >> 8);
	hdr[1] = (uint8_t)len;
	bufferevent_write(bev, hdr, 2);
	bufferevent_write(bev, r, len);
}

static void
fake_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent *bev =
	    bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);

	(void)sa;
	(void)salen;
	bufferevent_setcb(bev, fake_tcp_read, NULL, fake_tcp_event, arg);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct got {
	struct fake *f;
	enum dns_status status;
	size_t nrr;
	struct dnsclient_info info;
	bool called;
};

static void
got_cb(const struct dns_answer *a, const struct dnsclient_info *info, void *arg)
{
	struct got *g = arg;

	g->called = true;
	g->status = a->status;
	g->nrr = a->rrs != NULL ? ldns_rr_list_rr_count(a->rrs) : 0;
	g->info = *info;
	if (--g->f->done == 0)
		event_base_loopexit(g->f->base, NULL);
}

static void
test_exchange(void)
{
	struct fake f = {0};
	struct addr srv;
	struct dnsclient_params p = {
	    .nservers = 1, .timeout_ms = 2000, .attempts = 1, .cache_size = 100, .edns_size = 1232};
	struct dnsclient *c;
	struct dnsclient_stats st;
	struct got g1 = {.f = &f}, g2 = {.f = &f}, g3 = {.f = &f}, g4 = {.f = &f};
	int tfd;

	f.base = event_base_new();
	addr_parse("127.0.0.1", 0, &srv);
	tfd = sock_bind(&srv, SOCK_STREAM, SOCK_F_LISTEN);
	sock_local_addr(tfd, &srv);
	f.udp = sock_bind(&srv, SOCK_DGRAM, 0);
	ok(tfd != -1 && f.udp != -1, "fake server bound on port %u", addr_port(&srv));
	f.ev = event_new(f.base, f.udp, EV_READ | EV_PERSIST, fake_udp_cb, &f);
	event_add(f.ev, NULL);
	f.tcp = evconnlistener_new(f.base, fake_accept, &f, LEV_OPT_CLOSE_ON_FREE, 0, tfd);
	p.servers = &srv;
	c = dnsclient_new(f.base, &p);

	/* Two queries for the same question share one exchange. */
	f.done = 3;
	dnsclient_query(c, "big.test", LDNS_RR_TYPE_MX, got_cb, &g1);
	dnsclient_query(c, "BIG.test.", LDNS_RR_TYPE_MX, got_cb, &g2);
	dnsclient_query(c, "nx.test", LDNS_RR_TYPE_MX, got_cb, &g3);
	ok(!g1.called, "never called back from inside dnsclient_query");
	event_base_dispatch(f.base);
	ok(g1.status == DNS_OK && g1.nrr == 2, "answer after forged replies (%d, %zu)", g1.status,
	    g1.nrr);
	ok(g1.info.truncated && g1.info.tcp, "truncated over UDP, answered over TCP");
	ok(g2.status == DNS_OK && g2.nrr == 2, "the shared query got it too");
	is_int(g3.status, DNS_NXDOMAIN, "NXDOMAIN");
	is_int(f.udp_queries, 2, "two UDP queries for three lookups");
	is_int(f.tcp_queries, 1, "one TCP query");
	dnsclient_get_stats(c, &st);
	is_int(st.mismatched, 4, "four forged replies ignored");
	is_int(st.shared, 1, "one shared exchange");

	/* Both answers are now cached (NXDOMAIN for its negative TTL). */
	f.done = 2;
	g1.called = false;
	dnsclient_query(c, "big.test", LDNS_RR_TYPE_MX, got_cb, &g1);
	dnsclient_query(c, "nx.test", LDNS_RR_TYPE_MX, got_cb, &g4);
	ok(!g1.called, "a cache hit is still delivered from the loop");
	event_base_dispatch(f.base);
	ok(g1.info.cached && g1.nrr == 2, "positive answer from the cache");
	ok(g4.info.cached && g4.status == DNS_NXDOMAIN, "negative answer from the cache");
	is_int(f.udp_queries, 2, "no packet for cached answers");

	/* A cancelled query never calls back. */
	g1.called = false;
	dnsclient_cancel(dnsclient_query(c, "other.test", LDNS_RR_TYPE_A, got_cb, &g1));
	f.done = 1;
	dnsclient_query(c, "other2.test", LDNS_RR_TYPE_A, got_cb, &g2);
	event_base_dispatch(f.base);
	ok(!g1.called, "cancelled query silent");

	dnsclient_free(c);

	/* cache-size 0: no cache, and the answer still reaches the callers
	 * (it used to be cleared by the refused cache insert first). */
	p.cache_size = 0;
	c = dnsclient_new(f.base, &p);
	f.done = 2;
	g1.called = g2.called = false;
	g1.nrr = g2.nrr = 0;
	dnsclient_query(c, "big.test", LDNS_RR_TYPE_MX, got_cb, &g1);
	dnsclient_query(c, "big.test", LDNS_RR_TYPE_MX, got_cb, &g2);
	event_base_dispatch(f.base);
	ok(g1.status == DNS_OK && g1.nrr == 2, "cache-size 0: the records reach the callback (%zu)",
	    g1.nrr);
	ok(g2.status == DNS_OK && g2.nrr == 2, "cache-size 0: and the shared waiter's (%zu)",
	    g2.nrr);
	ok(!g1.info.cached, "cache-size 0: not from a cache");
	dnsclient_free(c);
	{ /* let the fake server see the TCP connection close (and free it) */
		struct timeval t = {0, 100000};

		event_base_loopexit(f.base, &t);
		event_base_dispatch(f.base);
	}
	evconnlistener_free(f.tcp);
	event_free(f.ev);
	close(f.udp);
	event_base_free(f.base);
}

/* A port nothing listens on: bound for a moment, then closed. */
static int
closed_udp_port(struct addr *a)
{
	int fd;

	addr_parse("127.0.0.1", 0, a);
	if ((fd = sock_bind(a, SOCK_DGRAM, 0)) == -1 || sock_local_addr(fd, a) == -1)
		return -1;
	close(fd);
	return 0;
}

static void
stop_cb(const struct dns_answer *a, const struct dnsclient_info *info, void *arg)
{
	struct got *g = arg;

	g->called = true;
	g->status = a->status;
	g->info = *info;
	event_base_loopexit(g->f->base, NULL);
}

/*
 * ICMP port unreachable (ECONNREFUSED on the connected UDP socket) is
 * "connection refused", at once, not "timed out" after the timeout; with a
 * silent second server it is still the failure reported, naming its server.
 */
static void
test_connection_refused(void)
{
	struct fake f = {0};
	struct addr srv[2];
	struct dnsclient_params p = {
	    .servers = srv, .nservers = 1, .timeout_ms = 3000, .attempts = 2, .edns_size = 1232};
	struct dnsclient *c;
	struct dnsclient_stats st;
	struct got g = {.f = &f};
	char want[ADDR_STRLEN];
	struct timespec t0, t1;
	int silent;

	f.base = event_base_new();
	ok(closed_udp_port(&srv[0]) == 0, "a closed port: %u", addr_port(&srv[0]));
	addr_str(&srv[0], want, sizeof(want));
	c = dnsclient_new(f.base, &p);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	dnsclient_query(c, "refused.test", LDNS_RR_TYPE_MX, stop_cb, &g);
	event_base_dispatch(f.base);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	is_str(dns_status_str(g.status), "connection refused", "reported as connection refused");
	ok(t1.tv_sec - t0.tv_sec < 2, "without waiting for the timeout");
	dnsclient_get_stats(c, &st);
	ok(st.timeouts == 0 && st.neterrs == 2, "two refused tries, no timeout (%llu, %llu)",
	    (unsigned long long)st.timeouts, (unsigned long long)st.neterrs);
	dnsclient_free(c);

	addr_parse("127.0.0.1", 0, &srv[1]);
	silent = sock_bind(&srv[1], SOCK_DGRAM, 0);
	sock_local_addr(silent, &srv[1]);
	p.nservers = 2;
	p.attempts = 1;
	p.timeout_ms = 200;
	c = dnsclient_new(f.base, &p);
	g.called = false;
	dnsclient_query(c, "refused.test", LDNS_RR_TYPE_MX, stop_cb, &g);
	event_base_dispatch(f.base);
	is_int(g.status, DNS_CONNREFUSED, "refused beats a silent second server");
	is_str(g.info.server, want, "and names the server that refused");
	dnsclient_free(c);
	close(silent);
	event_base_free(f.base);
}

int
main(void)
{
	log_init("test_dnsclient", LOG_LEVEL_ERR, false);
	test_build_and_parse();
	test_cache();
	test_resolv_conf();
	test_exchange();
	test_connection_refused();
	return tap_done();
}
