/*
 * zone.h - one authoritative zone, loaded from an RFC 1035 file with ldns
 * and compiled into an immutable lookup structure with every answer
 * prepared in wire format (prep.h).
 *
 * Threads: a compiled zone is never modified.  Any number of threads may
 * call zone_answer and the getters at once; building and freeing happen on
 * one thread (the zone store's owner), see zonestore.h for publication.
 */
#ifndef MXB_BROKER_ZONE_H
#define MXB_BROKER_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <ldns/ldns.h>

struct dnssec_keys;
struct prep;
struct zone;

/* Flags of an RRset (zone_with_rrset), kept across later updates. */
#define ZONE_RRSET_ROTATE 0x01 /* round robin per answer (prep.h) */
#define ZONE_RRSET_TRIM   0x02 /* trim to the UDP size, never TC */
/*
 * Answered by this server only: left out of zone_rrs (so out of AXFR) and
 * out of zone_digest, so replacing it moves no serial and costs no
 * secondary a transfer (the live _status table, cluster.h).
 */
#define ZONE_RRSET_LOCAL 0x04

#define ZONE_MAX_INCLUDE_DEPTH 8
/* Largest zone file (each $INCLUDEd file counted alone) zone_load reads. */
#define ZONE_MAX_FILE_SIZE   (256 * 1024 * 1024)
#define ZONE_MAX_CNAME_CHAIN 8

/*
 * Load the zone `origin` (e.g. "mail.example.test") from `file`, following
 * $INCLUDE (relative to the including file's folder), and compile it.
 * Checks: one SOA at the apex, NS at the apex, no data outside the zone,
 * CNAME alone at its name.  Only regular files are read (a FIFO or a
 * folder is an error, not a hang), each at most ZONE_MAX_FILE_SIZE bytes.
 * Returns NULL and writes "file:line: why" into err on failure.
 */
struct zone *zone_load(const char *origin, const char *file, char *err, size_t errlen);

/*
 * zone_load, then sign the zone with `keys` when not NULL (a reference is
 * taken; zone_apply keeps signing with them): DNSKEY, CDS and CDNSKEY at
 * the apex, an NSEC chain, an RRSIG over every authoritative RRset, every
 * answer prepared a second time with them for DO queries (prep.h).  The
 * file must hold no DNSSEC records; wildcards are refused
 * (docs/dnssec.md).
 */
struct zone *zone_load_signed(
    const char *origin, const char *file, struct dnssec_keys *keys, char *err, size_t errlen);

/* Signed zones: whether z is, and the signing period it was built in (dnssec.h). */
bool zone_is_signed(const struct zone *z);
uint64_t zone_sign_period(const struct zone *z);
/* True when z is signed and `now` lies in a later signing period than z's. */
bool zone_resign_due(const struct zone *z, time_t now);

/*
 * The NSEC records proving that qname (in z, and answered NXDOMAIN) does
 * not exist: the one covering qname and the one covering the wildcard at
 * its closest encloser, as prepared parts (NSEC and RRSIG records in the
 * authority section, names uncompressed).  Writes 0 to 2 parts; returns
 * the count (0 for an unsigned zone).  No allocation, no signing.
 */
size_t zone_denial(
    const struct zone *z, const uint8_t *qname, size_t qlen, const struct prep *parts[2]);

/* One RRset replacement for zone_apply. */
struct zone_change {
	const ldns_rdf *owner; /* absolute name inside the zone */
	uint16_t type;
	const ldns_rr_list *rrs; /* borrowed, cloned; NULL or empty deletes */
	unsigned flags;          /* ZONE_RRSET_*, kept by later zone_apply */
};

/*
 * A new zone equal to `old` with the `n` RRsets of `ch` replaced and the SOA
 * serial set to `serial` (n may be 0: only the serial moves).  Returns NULL
 * with "zone: why" in err when the result would be invalid (owner outside
 * the zone, CNAME beside other data).  `old` is left untouched.  Cost:
 * proportional to the whole zone (every answer is prepared again).
 */
struct zone *zone_apply(const struct zone *old, const struct zone_change *ch, size_t n,
    uint32_t serial, char *err, size_t errlen);

void zone_free(struct zone *z);

/* Getters (borrowed). */
const char *zone_name(const struct zone *z);                 /* no trailing dot */
const uint8_t *zone_apex(const struct zone *z, size_t *len); /* lower-case wire */
const char *zone_file(const struct zone *z);
uint32_t zone_serial(const struct zone *z);
size_t zone_rr_count(const struct zone *z); /* SOA included */
size_t zone_name_count(const struct zone *z);
/*
 * The zone's RRs, SOA first, the rest in file order (for AXFR); RRsets
 * flagged ZONE_RRSET_LOCAL are not among them.
 */
const ldns_rr_list *zone_rrs(const struct zone *z);
/*
 * A digest of the zone's content: every RR but the LOCAL ones, with the SOA
 * serial left out, independent of the order of the RRs.  Two zones with the
 * same digest serve the same data, so they may share a serial (serials
 * across restarts, zonestore.h).
 */
uint64_t zone_digest(const struct zone *z);
const ldns_rr *zone_soa(const struct zone *z);

/*
 * The prepared answer for the lower-case wire name `qname` (which must lie
 * in the zone) and `qtype`: an exact match, a referral, a wildcard answer,
 * NODATA or NXDOMAIN.  Never NULL.  No allocation, no locks.
 */
const struct prep *zone_answer(
    const struct zone *z, const uint8_t *qname, size_t qlen, uint16_t qtype);

#endif
