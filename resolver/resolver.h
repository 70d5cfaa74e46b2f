/*
 * resolver.h - MX routing: where mail for a domain goes next.
 *
 * The public interface of libresolver for the SMTP relay's delivery and for
 * mxroute.  For each destination domain the route is found in this order
 * (DESIGN.md "resolver", reference/smtp-rules.md, the OpenVMS SMTP rules):
 *
 *   1. a local-alias domain                        -> local delivery
 *   2. outside every zone, with a gateway set      -> the gateway: an address
 *      literal as is, a name routed by MX, then A/AAAA, then hosts
 *   3. the local MX database                       -> its gateways
 *   4. DNS MX (RFC 5321 §5.1, RFC 7505)            -> the exchanges
 *   5. DNS A/AAAA of the domain, only with no MX   -> the domain itself
 *   6. the local hosts database                    -> the domain itself
 *
 * A DNS timeout, SERVFAIL or REFUSED is a temporary failure: it never falls
 * through to a later step.  NXDOMAIN is permanent unless the hosts database
 * has the name.  Names compare case-insensitively; IDNs must be A-labels.
 *
 * Everything is asynchronous on the caller's libevent base: resolver_route
 * returns at once and the callback runs later from the loop (never from
 * inside resolver_route), so many routes can be in flight together.  One
 * resolver belongs to one event loop thread.
 */
#ifndef MXB_RESOLVER_H
#define MXB_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/addr.h"

struct event_base;
struct config_resolver;
struct resolver;
struct resolver_route;

/* Where a hop came from (mxroute prints these names). */
enum route_source {
	ROUTE_SRC_LOCAL,    /* "local": a local-alias domain */
	ROUTE_SRC_LOCAL_MX, /* "local-mx": the local MX database */
	ROUTE_SRC_DNS_MX,   /* "dns-mx": DNS MX records */
	ROUTE_SRC_DNS_A,    /* "dns-a": implicit MX, the domain's A/AAAA */
	ROUTE_SRC_HOSTS,    /* "hosts": the local hosts database */
	ROUTE_SRC_GATEWAY,  /* "gateway": the alternate gateway */
	ROUTE_SRC_LITERAL,  /* "literal": an address literal [192.0.2.1] */
};
const char *route_source_str(enum route_source s);

enum route_status {
	ROUTE_OK,       /* hops[] holds where to deliver, in order */
	ROUTE_LOCAL,    /* deliver locally (one hop, source local) */
	ROUTE_TEMPFAIL, /* try again later: dsn 4.x.x */
	ROUTE_PERMFAIL, /* undeliverable: dsn 5.x.x */
};
const char *route_status_str(enum route_status s);

/*
 * One next hop: try its addresses in order, then the next hop.  Addresses
 * carry port 0 (the caller sets its SMTP port); A records come before AAAA,
 * each in DNS order.  `preference` is the MX preference (0 for implicit MX,
 * hosts, literals).
 */
struct route_hop {
	unsigned preference;
	char *host; /* MX exchange / gateway / domain; lower case */
	struct addr *addrs;
	size_t naddrs;
	enum route_source source;
	/* The MX answer (or the denial of MX, for an implicit MX) and every
	 * address answer of this host were DNSSEC-authenticated by the trusted
	 * validating resolver (resolver { dnssec-validating }): DANE may ask
	 * TLSA for it (RFC 7672 §2.2).  Always false without that statement. */
	bool secure;
};

/*
 * The outcome for one domain.  On failure, `dsn` is an RFC 3463 enhanced
 * status code suggestion ("4.4.3", "5.1.2", "5.1.10", ...), `smtp_code` the
 * matching reply code (451, 550, 556, ...) and `reason` a sentence for logs
 * and bounces.  `steps` lists what was tried and why it was used or skipped
 * (filled only with RESOLVER_EXPLAIN).  `ttl` is the smallest TTL that went
 * into the route: a caller may reuse it that long.
 */
struct route_result {
	char *domain; /* as routed: lower case */
	enum route_status status;
	struct route_hop *hops;
	size_t nhops;
	char dsn[8];
	unsigned smtp_code;
	char *reason; /* NULL when routed */
	char **steps;
	size_t nsteps;
	unsigned ttl;
};

/* Free a result passed to a callback; NULL is a no-op. */
void resolver_result_free(struct route_result *res);

/*
 * Called once with the result, which the callee owns (free it with
 * resolver_result_free).  The route handle is finished when this runs.
 */
typedef void (*resolver_route_cb)(struct route_result *res, void *arg);

/* What the resolver needs to know about the host it runs on. */
struct resolver_local {
	const char *hostname;             /* relay.hostname: this MTA's name */
	const char *const *local_aliases; /* relay.local-aliases, lower case */
	size_t nlocal_aliases;
	const struct addr *addrs; /* extra own addresses (listen addresses) */
	size_t naddrs;
};

/* resolver_route flags */
#define RESOLVER_EXPLAIN 0x01 /* fill route_result.steps */

/*
 * Build a resolver from the `resolver { }` configuration: nameservers (or
 * /etc/resolv.conf), local MX and hosts files, zones, gateway, timeout,
 * attempts, cache size.  The interface addresses of this machine and
 * `local->addrs` count as "self" for MX loop detection, with
 * `local->hostname`.  With a gateway and no zones, the zone is the parent
 * domain of the hostname (the OpenVMS default).  `cfg` and `local` are
 * copied.  Returns NULL after writing "file:line: message" or another
 * reason into err.  Files are read here, once (blocking is allowed only at
 * construction).
 */
struct resolver *resolver_new(struct event_base *base, const struct config_resolver *cfg,
    const struct resolver_local *local, char *err, size_t errlen);

/* Cancel every route in flight (no callbacks) and free; NULL is a no-op.
 * Never call it from inside a callback of the same resolver. */
void resolver_free(struct resolver *r);

/*
 * Route `dest`: a domain ("example.com", trailing dot allowed), an address
 * literal ("[192.0.2.1]", "[IPv6:2001:db8::1]") or a mailbox
 * ("user@example.com", the part after the last '@' is routed).  Returns a
 * handle for resolver_route_cancel, or NULL when out of memory (the
 * callback then never runs).  Invalid input is reported through the
 * callback as a permanent failure.
 */
struct resolver_route *resolver_route(
    struct resolver *r, const char *dest, int flags, resolver_route_cb cb, void *arg);

/* Abandon a route before its callback ran; the callback will not run. */
void resolver_route_cancel(struct resolver_route *rt);

/*
 * Ask the resolver's DNS client (name, type) directly: for TLSA lookups
 * (DANE).  The callback gets the answer with `secure` (see dnsmsg.h) and
 * runs from the loop.  NULL when out of memory or the name is invalid.
 */
struct dnsclient_query;
struct dns_answer;
struct dnsclient_info;
struct dnsclient_query *resolver_query(struct resolver *r, const char *name, unsigned type,
    void (*cb)(const struct dns_answer *a, const struct dnsclient_info *info, void *arg),
    void *arg);
/* Forget a resolver_query before its callback ran. */
void resolver_query_cancel(struct dnsclient_query *q);

/*
 * The resolver's DNS client (borrowed; lives as long as the resolver), for
 * other modules that ask DNS the way routing does (MTA-STS).
 */
struct dnsclient;
struct dnsclient *resolver_dnsclient(const struct resolver *r);

/*
 * A DNS client configured as the resolver's own from `cfg` (nameservers,
 * else /etc/resolv.conf; timeout, attempts, cache-size, dnssec): for
 * programs that need DNS without a resolver (smtp-relayctl sts-fetch).
 * NULL with err set.
 */
struct dnsclient *resolver_dnsclient_new(
    struct event_base *base, const struct config_resolver *cfg, char *err, size_t errlen);

/* Counters for status pages and benchmarks. */
struct resolver_stats {
	unsigned long long routes, inflight;
	unsigned long long dns_queries, dns_udp, dns_tcp, dns_timeouts;
	unsigned long long dns_truncated, cache_hits, cache_misses;
	size_t cache_entries;
};
void resolver_get_stats(const struct resolver *r, struct resolver_stats *out);

#endif
