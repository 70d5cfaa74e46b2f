/* resolver.c - the MX route planner: local aliases, zones and gateway,
 * local MX, DNS MX, implicit MX, hosts (see resolver.h for the order). */
#include <ifaddrs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/log.h"
#include "resolver/dnsclient.h"
#include "resolver/hostsdb.h"
#include "resolver/localmx.h"
#include "resolver/mxlist.h"
#include "resolver/resolver.h"

/* resolv.conf: glibc reads at most 3 nameservers; we allow a few more. */
#define RESOLV_CONF   "/etc/resolv.conf"
#define RESOLV_MAX_NS 8
/* Addresses copied from the hosts database for one name. */
#define HOSTS_MAX_ADDRS 16

struct resolver {
	struct event_base *base;
	struct dnsclient *dns;
	struct localmx *localmx; /* NULL = none configured */
	struct hostsdb *hosts;   /* NULL = none */
	char **zones;
	size_t nzones;
	char *gateway;            /* NULL, a name, or "[literal]" */
	struct addr gateway_addr; /* when the gateway is a literal */
	char hostname[DNSMSG_NAME_MAX];
	char **aliases;
	size_t naliases;
	struct addr *self;
	size_t nself;
	struct resolver_route *routes; /* in flight */
	unsigned long long nroutes, ninflight;
	struct log_ratelimit rl;
};

struct resolver_route {
	struct resolver *r;
	resolver_route_cb cb;
	void *arg;
	int flags;
	struct route_result *res;
	char name[DNSMSG_NAME_MAX]; /* the name routed: domain or gateway */
	enum route_source src;      /* given to the hops found */
	bool operator_route;        /* gateway / local MX: config, not DNS */
	bool implicit;              /* the one target is the name itself */
	size_t self_at;             /* index of this host, or nt */
	struct dnsclient_query *qmx;
	bool mx_secure; /* the MX answer (or its denial) was DNSSEC-secure */
	struct mx_target *t;
	size_t nt, pending;
	struct event *ev_done;
	struct resolver_route *prev, *next;
};

static void mx_cb(const struct dns_answer *a, const struct dnsclient_info *info, void *arg);
static void addr_cb(const struct dns_answer *a, const struct dnsclient_info *info, void *arg);

const char *
route_source_str(enum route_source s)
{
	static const char *const names[] = {
	    "local", "local-mx", "dns-mx", "dns-a", "hosts", "gateway", "literal"};

	return (size_t)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

const char *
route_status_str(enum route_status s)
{
	switch (s) {
	case ROUTE_OK: return "ok";
	case ROUTE_LOCAL: return "local";
	case ROUTE_TEMPFAIL: return "temporary";
	case ROUTE_PERMFAIL: return "permanent";
	}
	return "?";
}

/* --- results ------------------------------------------------------------ */

void
resolver_result_free(struct route_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->nhops; i++) {
		free(res->hops[i].host);
		free(res->hops[i].addrs);
	}
	for (size_t i = 0; i < res->nsteps; i++)
		free(res->steps[i]);
	free(res->hops);
	free(res->steps);
	free(res->reason);
	free(res->domain);
	free(res);
}

/* Record one explain line (only with RESOLVER_EXPLAIN). */
static void __attribute__((format(printf, 2, 3)))
step(struct resolver_route *rt, const char *fmt, ...)
{
	struct route_result *res = rt->res;
	char **v, *line;
	va_list ap;
	int len;

	if (!(rt->flags & RESOLVER_EXPLAIN))
		return;
	va_start(ap, fmt);
	len = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((v = reallocarray(res->steps, res->nsteps + 1, sizeof(*v))) == NULL) {
		free(line);
		return;
	}
	res->steps = v;
	res->steps[res->nsteps++] = line;
}

static int
hop_add(struct route_result *res, unsigned pref, const char *host, const struct addr *addrs,
    size_t naddrs, enum route_source src)
{
	struct route_hop *v, *h;

	if ((v = reallocarray(res->hops, res->nhops + 1, sizeof(*v))) == NULL)
		return -1;
	res->hops = v;
	h = &v[res->nhops];
	memset(h, 0, sizeof(*h));
	h->preference = pref;
	h->source = src;
	h->host = strdup(host);
	h->addrs = naddrs > 0 ? calloc(naddrs, sizeof(*addrs)) : NULL;
	if (h->host == NULL || (naddrs > 0 && h->addrs == NULL)) {
		free(h->host);
		free(h->addrs);
		return -1;
	}
	if (naddrs > 0)
		memcpy(h->addrs, addrs, naddrs * sizeof(*addrs));
	h->naddrs = naddrs;
	res->nhops++;
	return 0;
}

/* --- finishing a route --------------------------------------------------- */

static void
route_release_queries(struct resolver_route *rt)
{
	dnsclient_cancel(rt->qmx);
	rt->qmx = NULL;
	for (size_t i = 0; i < rt->nt; i++) {
		dnsclient_cancel(rt->t[i].q4);
		dnsclient_cancel(rt->t[i].q6);
		rt->t[i].q4 = rt->t[i].q6 = NULL;
	}
	mxlist_clear(rt->t, rt->nt);
	free(rt->t);
	rt->t = NULL;
	rt->nt = 0;
}

static void
route_free(struct resolver_route *rt)
{
	struct resolver *r = rt->r;

	route_release_queries(rt);
	if (rt->prev != NULL)
		rt->prev->next = rt->next;
	else
		r->routes = rt->next;
	if (rt->next != NULL)
		rt->next->prev = rt->prev;
	r->ninflight--;
	if (rt->ev_done != NULL)
		event_free(rt->ev_done);
	resolver_result_free(rt->res);
	free(rt);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver_route *rt = arg;
	struct route_result *res = rt->res;

	(void)fd;
	(void)what;
	rt->res = NULL;
	rt->cb(res, rt->arg);
	route_free(rt);
}

/* The result is complete: deliver it from the loop. */
static void
route_done(struct resolver_route *rt)
{
	route_release_queries(rt);
	event_active(rt->ev_done, 0, 0);
}

static void __attribute__((format(printf, 5, 6))) route_fail(struct resolver_route *rt,
    enum route_status st, unsigned code, const char *dsn, const char *fmt, ...)
{
	struct route_result *res = rt->res;
	va_list ap;

	/* A broken gateway or local MX entry is the operator's to fix: hold
	 * the mail (4.3.5) rather than bounce it. */
	if (st == ROUTE_PERMFAIL && rt->operator_route) {
		st = ROUTE_TEMPFAIL;
		code = 451;
		dsn = "4.3.5";
	}
	res->status = st;
	res->smtp_code = code;
	snprintf(res->dsn, sizeof(res->dsn), "%s", dsn);
	free(res->reason);
	va_start(ap, fmt);
	if (vasprintf(&res->reason, fmt, ap) < 0)
		res->reason = NULL;
	va_end(ap);
	for (size_t i = 0; i < res->nhops; i++) {
		free(res->hops[i].host);
		free(res->hops[i].addrs);
	}
	res->nhops = 0;
	step(rt, "result: %s failure %s: %s", route_status_str(st), res->dsn,
	    res->reason != NULL ? res->reason : "");
	route_done(rt);
}

static void
route_nomem(struct resolver_route *rt)
{
	rt->operator_route = false;
	route_fail(
	    rt, ROUTE_TEMPFAIL, 451, "4.3.0", "out of memory while routing %s", rt->res->domain);
}

/* --- address lookups for the candidates ---------------------------------- */

static bool
is_absent(enum dns_status s)
{
	return s == DNS_NXDOMAIN || s == DNS_NODATA || s == DNS_CNAME;
}

static void
explain_addrs(struct resolver_route *rt, const struct mx_target *t)
{
	char list[512] = "", a[ADDR_STRLEN];
	size_t off = 0;

	if (!(rt->flags & RESOLVER_EXPLAIN))
		return;
	for (size_t i = 0; i < t->naddrs && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? " " : "",
		    addr_host_str(&t->addrs[i], a, sizeof(a)));
	if (t->naddrs > 0)
		step(rt, "%s: %s%s", t->host, list,
		    t->from_hosts ? " (from the hosts database)" : "");
	else if (rt->implicit && t->st4 == DNS_NXDOMAIN)
		step(rt, "hosts database: no entry for %s", t->host);
	else
		step(rt, "%s: no address (A: %s; AAAA: %s)%s", t->host, dns_status_str(t->st4),
		    dns_status_str(t->st6),
		    is_absent(t->st4) && is_absent(t->st6) ? "; not in the hosts database either"
		                                           : "");
}

/* A name DNS does not know: the hosts database may (OpenVMS step 4). */
static void
hosts_fallback(struct resolver_route *rt, struct mx_target *t)
{
	struct addr a[HOSTS_MAX_ADDRS];
	size_t n;

	if (rt->r->hosts == NULL || t->naddrs > 0 || !is_absent(t->st4) || !is_absent(t->st6))
		return;
	n = hostsdb_lookup(rt->r->hosts, t->host, a, HOSTS_MAX_ADDRS);
	if (n > HOSTS_MAX_ADDRS)
		n = HOSTS_MAX_ADDRS;
	for (size_t i = 0; i < n; i++)
		if (mxlist_add_addr(t, &a[i]) == 0)
			t->from_hosts = true;
}

/* The first candidate left without an address by a temporary error. */
static const struct mx_target *
first_temporary(const struct mx_target *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].naddrs == 0 &&
		    (dns_status_is_temporary(v[i].st4) || dns_status_is_temporary(v[i].st6)))
			return &v[i];
	return NULL;
}

/* Why nothing usable is left, when the list came out empty. */
static void
fail_no_hops(struct resolver_route *rt, size_t keep)
{
	const char *d = rt->res->domain;
	const struct mx_target *t = first_temporary(rt->t, keep);

	if (rt->self_at == 0)
		route_fail(rt, ROUTE_PERMFAIL, 554, "5.4.6", "mail for %s loops back to myself", d);
	else if (rt->self_at < rt->nt)
		route_fail(
		    rt, ROUTE_TEMPFAIL, 451, "4.4.4", "unable to find primary relay for %s", d);
	else if (t != NULL)
		route_fail(rt, ROUTE_TEMPFAIL, 451, "4.4.3",
		    "cannot find the address of %s for %s: %s", t->host, d,
		    dns_status_str(dns_status_is_temporary(t->st4) ? t->st4 : t->st6));
	else if (rt->implicit && rt->t[0].st4 == DNS_NXDOMAIN)
		route_fail(rt, ROUTE_PERMFAIL, 550, "5.1.2",
		    "%s: host or domain name not found (NXDOMAIN)", rt->name);
	else if (rt->implicit)
		route_fail(rt, ROUTE_PERMFAIL, 550, "5.1.2", "%s has no MX and no address records",
		    rt->name);
	else
		route_fail(rt, ROUTE_PERMFAIL, 550, "5.4.4",
		    "no mail exchanger for %s has an address", rt->name);
}

/* Every address lookup is in: self-check, then the hops (RFC 5321 §5.1). */
static void
route_aggregate(struct resolver_route *rt)
{
	struct resolver *r = rt->r;
	size_t keep, self;

	for (size_t i = 0; i < rt->nt; i++) {
		hosts_fallback(rt, &rt->t[i]);
		explain_addrs(rt, &rt->t[i]);
	}
	self = mxlist_find_self(rt->t, rt->nt, NULL, r->self, r->nself, true);
	if (self < rt->self_at) {
		rt->self_at = self;
		step(rt,
		    "%s is an address of this host: it and preference %u "
		    "and above dropped",
		    rt->t[self].host, rt->t[self].pref);
	}
	keep = mxlist_keep_before(rt->t, rt->nt, rt->self_at);
	for (size_t i = 0; i < keep; i++) {
		const struct mx_target *t = &rt->t[i];
		enum route_source src = rt->src;

		if (t->naddrs == 0)
			continue;
		if (rt->implicit && t->from_hosts && src == ROUTE_SRC_DNS_A)
			src = ROUTE_SRC_HOSTS;
		if (hop_add(rt->res, t->pref, t->host, t->addrs, t->naddrs, src) == -1) {
			route_nomem(rt);
			return;
		}
		rt->res->hops[rt->res->nhops - 1].secure =
		    rt->mx_secure && !t->insecure && !t->from_hosts;
		if (rt->mx_secure)
			step(rt, "%s: MX and address answers %s", t->host,
			    rt->res->hops[rt->res->nhops - 1].secure ? "DNSSEC-secure"
			                                             : "not all DNSSEC-secure");
	}
	if (rt->res->nhops == 0) {
		fail_no_hops(rt, keep);
		return;
	}
	rt->res->status = ROUTE_OK;
	step(rt, "result: %zu hop%s", rt->res->nhops, rt->res->nhops == 1 ? "" : "s");
	route_done(rt);
}

static void
addr_from_rr(const ldns_rr *rr, struct addr *out)
{
	const ldns_rdf *rdf = ldns_rr_rdf(rr, 0);

	memset(out, 0, sizeof(*out));
	if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_A && ldns_rdf_size(rdf) == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ldns_rdf_data(rdf), 4);
		out->len = sizeof(*sin);
	} else if (ldns_rdf_size(rdf) == 16) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ldns_rdf_data(rdf), 16);
		out->len = sizeof(*sin6);
	}
}

static void
addr_cb(const struct dns_answer *a, const struct dnsclient_info *info, void *arg)
{
	struct mx_target *t = arg;
	struct resolver_route *rt = t->rt;
	bool v4 = a->qtype == LDNS_RR_TYPE_A;

	if (v4) {
		t->q4 = NULL;
		t->st4 = a->status;
	} else {
		t->q6 = NULL;
		t->st6 = a->status;
	}
	/* An unanswered or unauthenticated A/AAAA: not secure (RFC 7672 §2.2.2). */
	if (!a->secure)
		t->insecure = true;
	for (size_t i = 0; a->status == DNS_OK && i < ldns_rr_list_rr_count(a->rrs); i++) {
		struct addr ad;

		addr_from_rr(ldns_rr_list_rr(a->rrs, i), &ad);
		if (ad.len > 0 && mxlist_add_addr(t, &ad) == -1) {
			route_nomem(rt);
			return;
		}
	}
	if (info->via_cname && !t->alias && !rt->implicit) {
		t->alias = true;
		log_warnx_rl(&rt->r->rl,
		    "resolver: %s: mail exchanger %s is an alias "
		    "for %s (RFC 2181 10.3); following it",
		    rt->name, t->host, info->canon);
		step(rt,
		    "%s is an alias (CNAME) for %s: not allowed by RFC 2181 "
		    "§10.3, followed anyway",
		    t->host, info->canon);
	}
	if (--rt->pending == 0)
		route_aggregate(rt);
}

/* Ask A and AAAA for every candidate before the self cut, all at once. */
static void
resolve_targets(struct resolver_route *rt)
{
	struct dnsclient *dns = rt->r->dns;
	size_t keep = mxlist_keep_before(rt->t, rt->nt, rt->self_at);

	for (size_t i = 0; i < keep; i++) {
		struct mx_target *t = &rt->t[i];

		t->rt = rt;
		t->st4 = t->st6 = DNS_TIMEOUT;
		t->q4 = dnsclient_query(dns, t->host, LDNS_RR_TYPE_A, addr_cb, t);
		t->q6 = dnsclient_query(dns, t->host, LDNS_RR_TYPE_AAAA, addr_cb, t);
		if (t->q4 == NULL || t->q6 == NULL) {
			route_nomem(rt);
			return;
		}
		rt->pending += 2;
	}
	if (rt->pending == 0)
		fail_no_hops(rt, keep);
}

/* Sort the candidates, cut at this host by name, then resolve the rest. */
static void
targets_ready(struct resolver_route *rt)
{
	struct resolver *r = rt->r;

	mxlist_sort(rt->t, rt->nt);
	rt->self_at = mxlist_find_self(rt->t, rt->nt, r->hostname, NULL, 0, false);
	if (rt->self_at < rt->nt)
		step(rt,
		    "%s (this host) is listed at preference %u: it and "
		    "preference %u and above dropped",
		    rt->t[rt->self_at].host, rt->t[rt->self_at].pref, rt->t[rt->self_at].pref);
	resolve_targets(rt);
}

static int
targets_alloc(struct resolver_route *rt, size_t n)
{
	rt->t = calloc(n, sizeof(*rt->t));
	rt->nt = rt->t != NULL ? n : 0;
	rt->self_at = rt->nt;
	return rt->t != NULL ? 0 : -1;
}

/* No MX RRset, or the name does not exist: the name is its own target. */
static void
implicit_mx(struct resolver_route *rt, enum dns_status mx_status)
{
	rt->implicit = true;
	if (rt->src == ROUTE_SRC_DNS_MX)
		rt->src = ROUTE_SRC_DNS_A;
	if (targets_alloc(rt, 1) == -1) {
		route_nomem(rt);
		return;
	}
	snprintf(rt->t[0].host, sizeof(rt->t[0].host), "%s", rt->name);
	if (mx_status == DNS_NXDOMAIN) { /* no A/AAAA can exist either */
		rt->t[0].st4 = rt->t[0].st6 = DNS_NXDOMAIN;
		route_aggregate(rt);
		return;
	}
	step(rt, "no MX records: implicit MX, the A/AAAA records of %s", rt->name);
	targets_ready(rt);
}

static bool
is_null_mx(const ldns_rr *rr)
{
	const ldns_rdf *x = ldns_rr_mx_exchange(rr);

	return x != NULL && ldns_rdf_size(x) == 1; /* the root label */
}

static void
mx_answer(struct resolver_route *rt, const struct dns_answer *a)
{
	size_t n = ldns_rr_list_rr_count(a->rrs);

	for (size_t i = 0; i < n; i++) {
		if (is_null_mx(ldns_rr_list_rr(a->rrs, i))) {
			rt->operator_route = false;
			route_fail(rt, ROUTE_PERMFAIL, 556, "5.1.10",
			    "%s does not accept mail (null MX, RFC 7505)", rt->name);
			return;
		}
	}
	if (targets_alloc(rt, n) == -1) {
		route_nomem(rt);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(a->rrs, i);
		char *s = ldns_rdf2str(ldns_rr_mx_exchange(rr));

		rt->t[i].pref = ldns_rdf2native_int16(ldns_rr_mx_preference(rr));
		if (s == NULL ||
		    dnsmsg_name_normalize(s, rt->t[i].host, sizeof(rt->t[i].host)) == -1)
			snprintf(rt->t[i].host, sizeof(rt->t[i].host), "invalid.");
		free(s);
	}
	targets_ready(rt);
}

static void
mx_cb(const struct dns_answer *a, const struct dnsclient_info *info, void *arg)
{
	struct resolver_route *rt = arg;

	rt->qmx = NULL;
	rt->mx_secure = a->secure;
	step(rt, "DNS MX %s: %s%s%s%s%s", rt->name,
	    a->status == DNS_OK ? "records found" : dns_status_str(a->status),
	    info->via_cname ? ", via alias " : "", info->via_cname ? info->canon : "",
	    info->cached          ? " (cached)"
	        : info->truncated ? " (UDP reply truncated, retried over TCP)"
	                          : "",
	    a->secure ? " (DNSSEC-secure)" : "");
	if (a->status == DNS_OK) {
		mx_answer(rt, a);
	} else if (a->status == DNS_NODATA || a->status == DNS_CNAME || a->status == DNS_NXDOMAIN) {
		implicit_mx(rt, a->status);
	} else {
		route_fail(rt, ROUTE_TEMPFAIL, 451, "4.4.3",
		    "MX lookup of %s failed: %s (nameserver %s)", rt->name,
		    dns_status_str(a->status), info->server);
	}
}

/* Route `name` by DNS MX, then A/AAAA, then hosts; hops get `src`. */
static void
mx_start(struct resolver_route *rt, const char *name, enum route_source src)
{
	snprintf(rt->name, sizeof(rt->name), "%s", name);
	rt->src = src;
	rt->qmx = dnsclient_query(rt->r->dns, name, LDNS_RR_TYPE_MX, mx_cb, rt);
	if (rt->qmx == NULL)
		route_nomem(rt);
}

/* --- the steps before DNS ------------------------------------------------ */

static bool
in_list(char *const *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], name) == 0)
			return true;
	return false;
}

/* True when `d` is a zone or lies below one. */
static bool
in_zones(const struct resolver *r, const char *d, const char **zone)
{
	size_t dl = strlen(d);

	for (size_t i = 0; i < r->nzones; i++) {
		size_t zl = strlen(r->zones[i]);

		if (strcmp(d, r->zones[i]) == 0 ||
		    (dl > zl && d[dl - zl - 1] == '.' && strcmp(d + dl - zl, r->zones[i]) == 0)) {
			*zone = r->zones[i];
			return true;
		}
	}
	return false;
}

/* Parse "[192.0.2.1]" or "[IPv6:2001:db8::1]"; 0 or -1. */
static int
parse_literal(const char *s, struct addr *out)
{
	char inner[64];
	size_t len = strlen(s);

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof(inner))
		return -1;
	snprintf(inner, sizeof(inner), "%.*s", (int)(len - 2), s + 1);
	if (strncasecmp(inner, "ipv6:", 5) == 0)
		return strchr(inner + 5, ':') != NULL && addr_parse(inner + 5, 0, out) == 0 ? 0
		                                                                            : -1;
	return strchr(inner, ':') == NULL && addr_parse(inner, 0, out) == 0 ? 0 : -1;
}

static void
route_gateway(struct resolver_route *rt, const char *zone_note)
{
	struct resolver *r = rt->r;

	rt->operator_route = true;
	if (r->gateway[0] == '[') {
		step(rt, "%s: gateway %s, an address literal: used as is", zone_note, r->gateway);
		if (hop_add(rt->res, 0, r->gateway, &r->gateway_addr, 1, ROUTE_SRC_GATEWAY) == -1) {
			route_nomem(rt);
			return;
		}
		rt->res->status = ROUTE_OK;
		route_done(rt);
		return;
	}
	step(rt, "%s: routed through gateway %s (by its MX, then A/AAAA)", zone_note, r->gateway);
	mx_start(rt, r->gateway, ROUTE_SRC_GATEWAY);
}

static void
route_localmx(struct resolver_route *rt, const struct localmx_entry *e, size_t n)
{
	step(rt, "local MX database: %zu entr%s for %s", n, n == 1 ? "y" : "ies", rt->res->domain);
	rt->operator_route = true;
	rt->src = ROUTE_SRC_LOCAL_MX;
	snprintf(rt->name, sizeof(rt->name), "%s", rt->res->domain);
	if (targets_alloc(rt, n) == -1) {
		route_nomem(rt);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		rt->t[i].pref = e[i].preference;
		snprintf(rt->t[i].host, sizeof(rt->t[i].host), "%s", e[i].gateway);
	}
	targets_ready(rt);
}

/*
 * The gateway (step 2) comes before the local MX database (step 3): an entry
 * for a domain outside the zones is never used.  Say so, or the operator
 * wonders why the entry has no effect.
 */
static void
explain_localmx_overridden(
    struct resolver_route *rt, const char *d, const struct localmx_entry *e, size_t n)
{
	if (n == 0)
		return;
	step(rt,
	    "local MX database: %zu entr%s for %s (line %d: preference %u, %s) "
	    "overridden by gateway %s: %s is outside the zones, and the gateway "
	    "comes before the local MX database",
	    n, n == 1 ? "y" : "ies", d, e[0].line, e[0].preference, e[0].gateway, rt->r->gateway,
	    d);
}

/* Steps 1-3 of the route order, then DNS. */
static void
route_domain(struct resolver_route *rt, const char *d)
{
	struct resolver *r = rt->r;
	const struct localmx_entry *e = NULL;
	const char *zone = NULL;
	size_t n;

	if (in_list(r->aliases, r->naliases, d)) {
		step(rt, "local aliases: %s is a local-alias domain", d);
		rt->res->status = ROUTE_LOCAL;
		if (hop_add(rt->res, 0, d, NULL, 0, ROUTE_SRC_LOCAL) == -1)
			route_nomem(rt);
		else
			route_done(rt);
		return;
	}
	step(rt, "local aliases: %s is not a local-alias domain", d);
	n = r->localmx != NULL ? localmx_lookup(r->localmx, d, &e) : 0;
	if (r->gateway != NULL) {
		if (!in_zones(r, d, &zone)) {
			explain_localmx_overridden(rt, d, e, n);
			route_gateway(rt, "outside the zones");
			return;
		}
		step(rt, "zones: %s is inside zone %s: routed by MX", d, zone);
	}
	if (n > 0) {
		route_localmx(rt, e, n);
		return;
	}
	if (r->localmx != NULL)
		step(rt, "local MX database: no entry for %s", d);
	mx_start(rt, d, ROUTE_SRC_DNS_MX);
}

/* Pull the domain out of "user@domain", "<user@domain>" or "domain". */
static void
route_begin(struct resolver_route *rt, const char *dest)
{
	char buf[512], d[DNSMSG_NAME_MAX];
	const char *at;
	struct addr lit;
	size_t len;

	snprintf(buf, sizeof(buf), "%s", dest);
	len = strlen(buf);
	if (len >= 2 && buf[0] == '<' && buf[len - 1] == '>') {
		buf[len - 1] = '\0';
		memmove(buf, buf + 1, len - 1);
	}
	at = strrchr(buf, '@');
	at = at != NULL ? at + 1 : buf;
	if ((rt->res->domain = strdup(at)) == NULL) {
		route_nomem(rt);
		return;
	}
	if (parse_literal(at, &lit) == 0) {
		step(rt, "%s is an address literal: used as is", at);
		rt->res->status = ROUTE_OK;
		if (hop_add(rt->res, 0, at, &lit, 1, ROUTE_SRC_LITERAL) == -1)
			route_nomem(rt);
		else
			route_done(rt);
		return;
	}
	if (dnsmsg_name_normalize(at, d, sizeof(d)) == -1) {
		route_fail(rt, ROUTE_PERMFAIL, 553, "5.1.3",
		    "'%s' is not a valid "
		    "domain name (IDNs must be given in A-label form, xn--...)",
		    at);
		return;
	}
	free(rt->res->domain);
	if ((rt->res->domain = strdup(d)) == NULL) {
		route_nomem(rt);
		return;
	}
	route_domain(rt, d);
}

struct resolver_route *
resolver_route(struct resolver *r, const char *dest, int flags, resolver_route_cb cb, void *arg)
{
	struct resolver_route *rt = calloc(1, sizeof(*rt));

	if (rt == NULL)
		return NULL;
	rt->res = calloc(1, sizeof(*rt->res));
	rt->ev_done = event_new(r->base, -1, 0, done_cb, rt);
	if (rt->res == NULL || rt->ev_done == NULL) {
		if (rt->ev_done != NULL)
			event_free(rt->ev_done);
		free(rt->res);
		free(rt);
		return NULL;
	}
	rt->r = r;
	rt->cb = cb;
	rt->arg = arg;
	rt->flags = flags;
	rt->next = r->routes;
	if (r->routes != NULL)
		r->routes->prev = rt;
	r->routes = rt;
	r->nroutes++;
	r->ninflight++;
	route_begin(rt, dest);
	return rt;
}

void
resolver_route_cancel(struct resolver_route *rt)
{
	if (rt != NULL)
		route_free(rt);
}

/* --- construction -------------------------------------------------------- */

static char **
strv_copy(const char *const *v, size_t n)
{
	char **out = calloc(n + 1, sizeof(*out));

	for (size_t i = 0; out != NULL && i < n; i++) {
		char d[DNSMSG_NAME_MAX];

		if (dnsmsg_name_normalize(v[i], d, sizeof(d)) == -1)
			snprintf(d, sizeof(d), "%s", v[i]);
		if ((out[i] = strdup(d)) == NULL)
			return NULL; /* leak on OOM at startup only */
	}
	return out;
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

/* This machine's interface addresses plus the caller's: the "self" set. */
static int
self_addrs(struct resolver *r, const struct resolver_local *local)
{
	struct ifaddrs *ifa = NULL;
	size_t n = local->naddrs;

	if (getifaddrs(&ifa) == -1)
		ifa = NULL;
	for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next)
		n++;
	if ((r->self = calloc(n + 1, sizeof(*r->self))) == NULL) {
		freeifaddrs(ifa);
		return -1;
	}
	for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (addr_from_sockaddr(i->ifa_addr,
		        i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                          : sizeof(struct sockaddr_in6),
		        &r->self[r->nself]) == 0)
			r->nself++;
	}
	for (size_t i = 0; i < local->naddrs; i++)
		r->self[r->nself++] = local->addrs[i];
	freeifaddrs(ifa);
	return 0;
}

struct dnsclient *
resolver_dnsclient_new(
    struct event_base *base, const struct config_resolver *cfg, char *err, size_t errlen)
{
	struct addr ns[RESOLV_MAX_NS];
	struct dnsclient_params p = {
	    .timeout_ms = cfg->timeout * 1000,
	    .attempts = cfg->attempts,
	    .cache_size = cfg->cache_size,
	    .edns_size = DNSMSG_EDNS_SIZE,
	    .dnssec = cfg->dnssec_validating,
	};
	unsigned timeout = cfg->timeout, attempts = cfg->attempts;
	struct dnsclient *c;
	int n;

	if (cfg->nameservers.n > 0) {
		p.servers = cfg->nameservers.v;
		p.nservers = cfg->nameservers.n;
	} else {
		n = dnsclient_read_resolv_conf(RESOLV_CONF, ns, RESOLV_MAX_NS, &timeout, &attempts);
		if (n <= 0) { /* as glibc: the local host */
			addr_parse("127.0.0.1", 53, &ns[0]);
			n = 1;
		}
		p.servers = ns;
		p.nservers = (size_t)n;
		if (!cfg->present) { /* no resolver block: resolv.conf options */
			p.timeout_ms = timeout * 1000;
			p.attempts = attempts;
		}
	}
	if ((c = dnsclient_new(base, &p)) == NULL)
		snprintf(err, errlen, "resolver: cannot create the DNS client");
	return c;
}

/* Zones: as configured; with a gateway and none, the hostname's parent. */
static int
zones_init(struct resolver *r, const struct config_resolver *cfg)
{
	const char *parent = strchr(r->hostname, '.');

	if (cfg->zones.n > 0) {
		r->zones = strv_copy((const char *const *)cfg->zones.v, cfg->zones.n);
		r->nzones = cfg->zones.n;
		return r->zones != NULL ? 0 : -1;
	}
	if (cfg->gateway == NULL || parent == NULL || strchr(parent + 1, '.') == NULL)
		return 0;
	parent++;
	r->zones = strv_copy(&parent, 1);
	r->nzones = 1;
	return r->zones != NULL ? 0 : -1;
}

static int
databases_init(struct resolver *r, const struct config_resolver *cfg, char *err, size_t errlen)
{
	if (cfg->local_mx != NULL &&
	    (r->localmx = localmx_load(cfg->local_mx, err, errlen)) == NULL)
		return -1;
	if (cfg->hosts != NULL && (r->hosts = hostsdb_load(cfg->hosts, err, errlen)) == NULL)
		return -1;
	if (cfg->gateway != NULL) {
		if ((r->gateway = strdup(cfg->gateway)) == NULL)
			return -1;
		if (r->gateway[0] == '[' && parse_literal(r->gateway, &r->gateway_addr) == -1) {
			snprintf(err, errlen, "resolver: gateway '%s' is not an address literal",
			    r->gateway);
			return -1;
		}
	}
	return 0;
}

struct resolver *
resolver_new(struct event_base *base, const struct config_resolver *cfg,
    const struct resolver_local *local, char *err, size_t errlen)
{
	struct resolver *r = calloc(1, sizeof(*r));

	snprintf(err, errlen, "resolver: out of memory");
	if (r == NULL)
		return NULL;
	r->base = base;
	r->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 60);
	if (local->hostname != NULL &&
	    dnsmsg_name_normalize(local->hostname, r->hostname, sizeof(r->hostname)) == -1)
		r->hostname[0] = '\0';
	r->aliases = strv_copy(local->local_aliases, local->nlocal_aliases);
	r->naliases = local->nlocal_aliases;
	if (r->aliases == NULL || self_addrs(r, local) == -1 || zones_init(r, cfg) == -1)
		goto fail;
	if (databases_init(r, cfg, err, errlen) == -1)
		goto fail;
	if ((r->dns = resolver_dnsclient_new(base, cfg, err, errlen)) == NULL)
		goto fail;
	return r;
fail:
	resolver_free(r);
	return NULL;
}

void
resolver_free(struct resolver *r)
{
	if (r == NULL)
		return;
	while (r->routes != NULL)
		route_free(r->routes);
	dnsclient_free(r->dns);
	localmx_free(r->localmx);
	hostsdb_free(r->hosts);
	strv_free(r->zones, r->nzones);
	strv_free(r->aliases, r->naliases);
	free(r->gateway);
	free(r->self);
	free(r);
}

void
resolver_get_stats(const struct resolver *r, struct resolver_stats *out)
{
	struct dnsclient_stats s;

	dnsclient_get_stats(r->dns, &s);
	memset(out, 0, sizeof(*out));
	out->routes = r->nroutes;
	out->inflight = r->ninflight;
	out->dns_queries = s.queries;
	out->dns_udp = s.sent_udp;
	out->dns_tcp = s.sent_tcp;
	out->dns_timeouts = s.timeouts;
	out->dns_truncated = s.truncated;
	out->cache_hits = s.cache.hits;
	out->cache_misses = s.cache.misses;
	out->cache_entries = s.cache.entries;
}

struct dnsclient *
resolver_dnsclient(const struct resolver *r)
{
	return r->dns;
}

struct dnsclient_query *
resolver_query(struct resolver *r, const char *name, unsigned type,
    void (*cb)(const struct dns_answer *a, const struct dnsclient_info *info, void *arg), void *arg)
{
	return dnsclient_query(r->dns, name, (uint16_t)type, cb, arg);
}

void
resolver_query_cancel(struct dnsclient_query *q)
{
	dnsclient_cancel(q);
}
