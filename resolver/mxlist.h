/*
 * mxlist.h - the candidate list of one route: MX exchanges (or local MX
 * gateways, or the implicit MX) with their addresses, and the RFC 5321
 * §5.1 rules applied to it: ascending preference with equal preferences in
 * random order, and the relay self-check (drop the local host and every
 * entry of equal or worse preference).
 */
#ifndef MXB_MXLIST_H
#define MXB_MXLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/addr.h"
#include "resolver/dnsmsg.h"

struct dnsclient_query;
struct resolver_route;

/* One candidate host while its addresses are looked up. */
struct mx_target {
	unsigned pref;
	char host[DNSMSG_NAME_MAX];
	struct addr *addrs; /* IPv4 first, then IPv6 (see mxlist_add_addr) */
	size_t naddrs, nv4, cap;
	enum dns_status st4, st6; /* outcome of the A and AAAA queries */
	bool from_hosts;          /* addresses came from the hosts database */
	bool alias;               /* the name was a CNAME (RFC 2181 §10.3) */
	bool insecure;            /* an A/AAAA answer was not DNSSEC-secure */
	struct dnsclient_query *q4, *q6;
	struct resolver_route *rt; /* owner, for the query callbacks */
};

/* Sort by ascending preference; shuffle each run of equal preferences
 * (RFC 5321 §5.1: the sender MUST randomize them). */
void mxlist_sort(struct mx_target *v, size_t n);

/*
 * Index of the first candidate that is this host: its name equals
 * `hostname` (case-insensitively; NULL = no name check), or, when
 * `use_addrs`, one of its addresses is in `self`.  Returns n when none.
 */
size_t mxlist_find_self(const struct mx_target *v, size_t n, const char *hostname,
    const struct addr *self, size_t nself, bool use_addrs);

/* How many candidates stay when the one at `self` is this host: those with
 * a strictly better (lower) preference.  `self` = n keeps all. */
size_t mxlist_keep_before(const struct mx_target *v, size_t n, size_t self);

/* Add an address: IPv4 ones before every IPv6 one, each in arrival order.
 * Returns 0 or -1 (out of memory). */
int mxlist_add_addr(struct mx_target *t, const struct addr *a);

/* Free the addresses of every candidate (not the array). */
void mxlist_clear(struct mx_target *v, size_t n);

#endif
