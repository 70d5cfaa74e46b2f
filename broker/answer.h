/*
 * answer.h - the query path: parse a query (dnsq.h), pick the zone and the
 * prepared answer (zone.h), and write the reply by copying and patching.
 * No allocation, no locks; safe on any number of threads at once.
 */
#ifndef MXB_BROKER_ANSWER_H
#define MXB_BROKER_ANSWER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/dnsq.h"

struct zone;

#define ANSWER_EDNS_SIZE     1232 /* our advertised and maximum UDP payload */
#define ANSWER_UDP_MIN       512
#define ANSWER_RCODE_BADVERS 16
#define ANSWER_NRCODES       17

enum answer_kind {
	ANSWER_DROP,  /* send nothing */
	ANSWER_REPLY, /* out[0..res->len) is the reply */
	ANSWER_XFR,   /* AXFR/IXFR over TCP for res->zone: the caller decides */
};

struct answer_result {
	size_t len;
	unsigned rcode; /* 0..16 (16 = BADVERS) */
	bool truncated;
	const struct zone *zone; /* the zone asked about, or NULL */
	struct dnsq q;
};

/* Counters of one thread; read by others with relaxed loads. */
struct answer_stats {
	_Atomic uint64_t rcode[ANSWER_NRCODES];
	_Atomic uint64_t udp, tcp, dropped, truncated, xfr;
	_Atomic uint64_t rrl_dropped, rrl_slipped; /* response rate limiting */
};

static inline void
answer_count(_Atomic uint64_t *c)
{
	atomic_store_explicit(
	    c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

/*
 * Answer the query pkt[0..len) from `zones` (the current snapshot) into out,
 * which must hold at least 65535 bytes over TCP or ANSWER_EDNS_SIZE over
 * UDP.  Counts into `stats` when not NULL (one writer per stats).
 */
enum answer_kind answer_query(struct zone *const *zones, size_t nzones, const uint8_t *pkt,
    size_t len, bool tcp, uint8_t *out, size_t cap, struct answer_result *res,
    struct answer_stats *stats);

/* Write a reply with no records and `rcode` for q (REFUSED to a transfer). */
size_t answer_empty(
    const struct dnsq *q, const uint8_t *pkt, unsigned rcode, uint8_t *out, size_t cap);

#endif
