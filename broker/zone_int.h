/*
 * zone_int.h - the compiled zone's private structures, shared by zone.c
 * (indexing, checks, building, lookups), zone_load.c (reading files) and
 * zone_prep.c (preparing answers).  Not for use outside broker/zone*.c.
 */
#ifndef MXB_BROKER_ZONE_INT_H
#define MXB_BROKER_ZONE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

#include "broker/wire.h"

struct arena;
struct prep;

struct zrrset {
	uint16_t type;
	unsigned flags;    /* ZONE_RRSET_* */
	ldns_rr_list *rrs; /* borrowed from zone->rrs */
};

#define NODE_APEX     0x01
#define NODE_DELEG    0x02 /* NS below the apex: a zone cut */
#define NODE_OCCLUDED 0x04 /* below a zone cut: glue at most */
#define NODE_WILDCARD 0x08

struct tprep {
	uint16_t type;
	const struct prep *p;
};

struct znode {
	const uint8_t *name; /* lower-case wire */
	uint8_t len;
	uint8_t flags;
	uint32_t hash;
	struct znode *hnext;
	struct zrrset *sets; /* in order of first appearance */
	size_t nsets;
	struct znode *wild; /* "*.<this>" when it exists */
	struct znode *cut;  /* the zone cut at or above, when DELEG/OCCLUDED */
	const struct prep *referral;
	const struct prep *any, *deflt;
	struct tprep *typed;
	size_t ntyped;
};

struct rflag {
	uint8_t name[WIRE_NAME_MAX];
	size_t len;
	uint16_t type;
	unsigned flags;
};

struct zone {
	char *name;
	char *file;
	uint8_t apex[WIRE_NAME_MAX];
	size_t apexlen;
	ldns_rr_list *rrs; /* owned: SOA first */
	ldns_rr_list *xfr; /* borrowed from rrs, without LOCAL RRsets; NULL = rrs */
	uint32_t serial;
	uint64_t digest; /* zone_digest */
	struct znode **nodes;
	size_t nnodes, capnodes;
	struct znode **table;
	size_t tmask;
	struct znode *apexnode;
	const struct zrrset *soa_set, *ns_set;
	uint32_t neg_ttl;
	const struct prep *nxdomain;
	struct rflag *rflags;
	size_t nrflags;
	uint16_t *types; /* every type in the zone, for CNAME chains */
	size_t ntypes;
	struct arena *arena; /* everything prepared dies with the zone */
};

/* Where an RR came from, for file:line errors. */
struct rrsrc {
	const char *file;
	int line;
};

/* snprintf into err; for "file:line: why" and "zone NAME: why" messages. */
void zone_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The node of the lower-case wire name, or NULL; its RRset of `type`, or NULL. */
struct znode *zone_node_find(const struct zone *z, const uint8_t *name, size_t len);
struct zrrset *zone_node_set(const struct znode *n, uint16_t type);

/* Report RR i as "file:line: what" when its source is known (src), else "zone NAME: what". */
void zone_rr_err(char *err, size_t errlen, const struct zone *z, const struct rrsrc *src, size_t i,
    const char *what);

/*
 * Compile rrs (ownership taken: freed with the zone, or here on error) with
 * the RRset flags rflags[0..nrflags) into a zone; src[i] says where RR i came
 * from (NULL for zone_apply).  NULL with err set on failure.
 */
struct zone *zone_build_rrs(const char *name, const char *file, ldns_rr_list *rrs,
    struct rrsrc *src, const struct rflag *rflags, size_t nrflags, char *err, size_t errlen);

/*
 * Prepare every answer of the indexed zone z into its arena (zone_prep.c).
 * 0, or -1 with err set.  Uses no static state: zones may be built on
 * several threads at once.
 */
int zone_prepare_all(struct zone *z, char *err, size_t errlen);

#endif
