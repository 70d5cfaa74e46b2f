/*
 * dnsclient.h - an asynchronous stub DNS client on a libevent base.
 *
 * Queries are built and parsed with ldns (dnsmsg.h) and sent over UDP with
 * EDNS0 from a fresh socket with a kernel-chosen random source port and a
 * random ID; a reply is accepted only from the server asked (connected
 * socket, source checked) and only when ID, question name, type and class
 * match.  A truncated reply is retried over TCP (two-octet length framing).
 * Each server is tried in turn, `attempts` rounds over the list, each try
 * waiting up to `timeout_ms`.  Names are always absolute: no search list.
 *
 * Answers are cached (dnscache.h) and concurrent questions for the same
 * (name, type) share one exchange.  A CNAME chain that an authoritative
 * server leaves unanswered is followed with further queries (bounded).
 *
 * Callbacks always run from the event loop, never from inside
 * dnsclient_query, so a caller may start queries while holding state.
 * Everything runs on the base's thread; not thread-safe.
 */
#ifndef MXB_DNSCLIENT_H
#define MXB_DNSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "resolver/dnsmsg.h"

struct event_base;
struct dnsclient;
struct dnsclient_query;

struct dnsclient_params {
	const struct addr *servers; /* copied; port set (53 unless told) */
	size_t nservers;            /* >= 1 */
	unsigned timeout_ms;        /* per try, > 0 */
	unsigned attempts;          /* rounds over the server list, >= 1 */
	size_t cache_size;          /* entries; 0 = no cache */
	uint16_t edns_size;         /* advertised UDP payload; 0 = no EDNS */
	bool dnssec;                /* set DO and AD; believe AD (the servers
	                             * validate and the path is trusted); else
	                             * dns_answer.secure is always false */
	size_t max_inflight;        /* exchanges with an open socket at
	                             * once (more wait); 0 = default */
};

/* Default bound on concurrent exchanges: keeps well inside RLIMIT_NOFILE. */
#define DNSCLIENT_MAX_INFLIGHT 256

/* How an answer was obtained, for --explain and logs. */
struct dnsclient_info {
	bool cached;              /* from the cache, no packet sent */
	bool tcp;                 /* the final exchange was over TCP */
	bool truncated;           /* a UDP reply had TC set first */
	bool via_cname;           /* an alias was followed (canonical name below) */
	const char *canon;        /* the name the records belong to */
	char server[ADDR_STRLEN]; /* the server that answered, or the
	                           * last one tried on failure ("" if cached) */
};

/*
 * Called once per query with the answer (borrowed: valid only during the
 * call) and how it was obtained.  The query handle is finished when the
 * callback runs: do not cancel it afterwards.
 */
typedef void (*dnsclient_cb)(
    const struct dns_answer *a, const struct dnsclient_info *info, void *arg);

/* NULL on invalid parameters or allocation failure (logged). */
struct dnsclient *dnsclient_new(struct event_base *base, const struct dnsclient_params *p);

/* Cancel everything in flight (no callbacks run) and free; NULL is a no-op. */
void dnsclient_free(struct dnsclient *c);

/*
 * Ask (name, type); `name` is any presentation form, normalised here.
 * Returns a handle for dnsclient_cancel, or NULL (name invalid, out of
 * memory) in which case the callback is never called.
 */
struct dnsclient_query *dnsclient_query(
    struct dnsclient *c, const char *name, uint16_t type, dnsclient_cb cb, void *arg);

/* Forget a query before its callback ran; the callback will not run. */
void dnsclient_cancel(struct dnsclient_query *q);

struct dnsclient_stats {
	uint64_t queries; /* dnsclient_query calls */
	uint64_t sent_udp, sent_tcp;
	uint64_t truncated, timeouts, mismatched, neterrs;
	uint64_t shared; /* joined an exchange already in flight */
	size_t inflight;
	struct dnscache_stats_view {
		size_t entries;
		uint64_t hits, misses, evictions;
	} cache;
};
void dnsclient_get_stats(const struct dnsclient *c, struct dnsclient_stats *out);

/*
 * Read nameserver lines (and "options timeout:N attempts:N") from a
 * resolv.conf-format file.  Fills up to `max` addresses on port 53 and
 * returns how many (0 when none: the caller falls back to 127.0.0.1, as
 * glibc does), or -1 when the file cannot be read.  Timeout and attempts are
 * written only when present.
 */
int dnsclient_read_resolv_conf(
    const char *path, struct addr *out, size_t max, unsigned *timeout_s, unsigned *attempts);

#endif
