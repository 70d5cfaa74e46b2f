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
struct dnssec_keys;
struct prep;

struct zrrset {
	uint16_t type;
	unsigned flags;     /* ZONE_RRSET_* */
	ldns_rr_list *rrs;  /* borrowed from zone->rrs */
	ldns_rr_list *sigs; /* its RRSIGs (signed zones), borrowed from zone->rrs; or NULL */
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
	/* Signed zones: the node of the NSEC that denies data here (this node,
	 * or the one before it for an empty non-terminal), the node of the NSEC
	 * covering "*.<this>", and this node's NSEC with its RRSIGs alone,
	 * uncompressed, for NXDOMAIN proofs (dnssec_denial). */
	struct znode *nsec_at, *wild_nsec;
	const struct prep *nsec_part;
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
	/* Signed zones (zone_sign.c): the keys (one reference), the signing
	 * period, and the NSEC chain: the nodes with data, in canonical order. */
	struct dnssec_keys *keys;
	uint64_t period;
	struct znode **chain;
	size_t nchain;
	const struct zone *old; /* while zone_apply builds: signatures to reuse */
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
    struct rrsrc *src, const struct rflag *rflags, size_t nrflags, struct dnssec_keys *keys,
    char *err, size_t errlen);

/* True for the types a signed zone makes itself (RRSIG, NSEC, DNSKEY, CDS, CDNSKEY, NSEC3*). */
bool zone_type_is_generated(uint16_t type);

/*
 * Sign the indexed zone z (z->keys set) in zone_sign.c: refuse wildcards,
 * add DNSKEY, CDS, CDNSKEY at the apex and the NSEC chain, sign every
 * authoritative RRset, and append the new records to z->rrs (and z->xfr)
 * so AXFR carries them.  Called after the digest is taken.  0, or -1 with
 * err set.
 */
int zone_sign(struct zone *z, char *err, size_t errlen);

/* Add rr (owned by z->rrs already) to the node of its owner; 0 or -1. */
int zone_index_added(struct zone *z, ldns_rr *rr);

/* Canonical DNS name order (RFC 4034 6.1) of lower-case wire names. */
int zone_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/*
 * Prepare every answer of the indexed zone z into its arena (zone_prep.c).
 * 0, or -1 with err set.  Uses no static state: zones may be built on
 * several threads at once.
 */
int zone_prepare_all(struct zone *z, char *err, size_t errlen);

#endif
