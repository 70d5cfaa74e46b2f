/*
 * prep.h - a prepared answer: the answer, authority and additional sections
 * of one reply in wire format, built when zone data changes and copied
 * behind the client's header and question at query time (answer.c).
 *
 * A prepared body assumes the question name starts at offset 12 and, when
 * PREP_F_SEEDED is set, that it is exactly the owner name it was built for
 * (compression pointers may point into it; case may differ).  Bodies built
 * without the seed use no pointers other than 0xC00C, so they fit behind any
 * question: wildcard answers, NXDOMAIN, referrals.
 *
 * Round robin: when rot_count > 1, the last RRset of the answer section is
 * rot_count records of rot_size bytes each, starting at body offset rot_off,
 * with nothing in the message pointing into them.  The answer writer copies
 * them starting at record k and wrapping, so rotating costs two memcpy and
 * no allocation.  With PREP_F_TRIM the writer drops the authority and
 * additional sections and then whole records of that RRset until the reply
 * fits the client's UDP size, instead of setting TC.
 *
 * Signed zones (zone_load_signed): each answer is prepared twice, and
 * `dnssec` points from the plain one to the one with RRSIGs after every
 * RRset of the answer and authority sections and the NSEC records of
 * NODATA answers and referrals without DS; a query with the DO bit gets
 * that one.  Signed answers are never trimmed (a cut RRset would not
 * validate): they set TC instead.  The rotating RRset's RRSIG follows it.
 */
#ifndef MXB_BROKER_PREP_H
#define MXB_BROKER_PREP_H

#include <stdatomic.h>
#include <stdint.h>

#define PREP_F_SEEDED 0x01 /* compressed against the question name */
#define PREP_F_TRIM   0x02 /* trim the rotating RRset instead of TC */
#define PREP_F_DENIAL 0x04 /* NXDOMAIN of a signed zone: zone_denial adds the NSECs */

struct prep {
	uint16_t hflags;     /* WIRE_AA and the RCODE, ORed into the reply */
	uint16_t flags;      /* PREP_F_* */
	uint16_t an, ns, ar; /* RR counts of the full body */
	uint16_t len;        /* body bytes */
	uint16_t an_len;     /* bytes of the answer section */
	uint16_t an_ns_len;  /* bytes of the answer and authority sections */
	uint16_t rot_off, rot_size, rot_count;
	const uint16_t *ar_end; /* body offset after each additional RR (ar) */
	const uint8_t *body;
	const struct prep *dnssec; /* the signed twin, or NULL */
	_Atomic uint32_t rot_next; /* answers served, for the rotation */
};

#endif
