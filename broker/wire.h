/*
 * wire.h - DNS wire-format helpers for brokerd: names as lower-case wire
 * bytes, and a small message encoder with name compression used when
 * answers are prepared (never on the query path).
 */
#ifndef MXB_BROKER_WIRE_H
#define MXB_BROKER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

#include "common/bytes.h"

#define WIRE_NAME_MAX  255 /* RFC 1035 2.3.4, octets on the wire */
#define WIRE_LABEL_MAX 63
#define WIRE_HDR_LEN   12
#define WIRE_MSG_MAX   65535
#define WIRE_DICT_MAX  256 /* compression targets remembered per message */

/* Header flag bits (second 16-bit word). */
#define WIRE_QR        0x8000
#define WIRE_AA        0x0400
#define WIRE_TC        0x0200
#define WIRE_RD        0x0100
#define WIRE_RA        0x0080
#define WIRE_CD        0x0010
#define WIRE_OPCODE(f) (((f) >> 11) & 0xf)

/* Length of the uncompressed wire name at p (trusted input), root included. */
size_t wire_name_len(const uint8_t *p);

/* True when the trusted wire names a and b are equal ignoring ASCII case. */
bool wire_name_equal(const uint8_t *a, const uint8_t *b);

/* True when `name` equals or lies below `zone` (both lower case, trusted). */
bool wire_name_is_sub(const uint8_t *name, size_t len, const uint8_t *zone, size_t zlen);

/* Number of labels before the root. */
unsigned wire_name_labels(const uint8_t *p);

/* FNV-1a over a lower-case wire name. */
uint32_t wire_name_hash(const uint8_t *p, size_t len);

/*
 * Copy the owner or rdata name `rdf` (an LDNS_RDF_TYPE_DNAME) into out as
 * lower-case wire; returns the length, or 0 when it does not fit in outlen.
 */
size_t wire_name_from_rdf(const ldns_rdf *rdf, uint8_t *out, size_t outlen);

/*
 * The encoder: writes RRs into a caller-owned buffer starting at `pos`,
 * compressing names against what it wrote before (and what wenc_seed saw).
 */
struct wenc {
	uint8_t *buf;
	size_t cap;
	size_t pos;
	bool failed;          /* set when anything did not fit */
	bool compress;        /* false: names are written in full */
	const uint8_t *qname; /* owner equal to this is written as 0xC00C */
	size_t ndict;
	uint16_t dict[WIRE_DICT_MAX]; /* offsets of names written in full */
};

void wenc_init(struct wenc *w, uint8_t *buf, size_t cap, size_t pos, bool compress);

/* Remember the name already present in buf at `off` as a compression target. */
void wenc_seed(struct wenc *w, size_t off);

/* Write `name` (wire, any case) compressed when allowed. */
void wenc_name(struct wenc *w, const uint8_t *name, bool compressible);

/*
 * Write one RR; `owner` overrides the RR's owner when not NULL (wildcard
 * synthesis) and `ttl` its TTL when ttl_override.  Names inside the RDATA
 * are compressed only for the RFC 1035 types (RFC 3597 section 4).
 */
void wenc_rr(
    struct wenc *w, const ldns_rr *rr, const uint8_t *owner, bool ttl_override, uint32_t ttl);

#endif
