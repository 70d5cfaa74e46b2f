/*
 * dnssec.h - a zone's signing keys (BIND/ldns key files read with ldns) and
 * the signing of one RRset, for zones signed when they are built (zone.c).
 *
 * Keys: every K<zone>.+<alg>+<tag>.key/.private pair in the key directory
 * (what ldns-keygen writes).  Algorithms 13 (ECDSAP256SHA256) and 15
 * (ED25519).  DNSKEY flags 257 (SEP) make a KSK, 256 a ZSK; with no ZSK the
 * KSKs sign everything (a CSK).  At least one KSK is required.
 *
 * Signature times are taken from a period counter, not from the clock of
 * each build: period = now / refresh; inception = period * refresh -
 * inception-offset; expiration = period * refresh + validity.  Every build
 * within one period signs with the same times; a new period (the re-sign
 * timer, brokerd) makes new signatures.  The remaining validity never
 * falls below validity - refresh.
 *
 * Threads: a key set is read-only after dnssec_keys_load except for the
 * signing times ldns keeps in each key, so one key set is used by one
 * thread at a time (the zone store's owner).  Reference counted: each zone
 * built with it holds a reference.
 */
#ifndef MXB_BROKER_DNSSEC_H
#define MXB_BROKER_DNSSEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <ldns/ldns.h>

struct dnssec_keys;

/* Largest number of key pairs read for one zone. */
#define DNSSEC_MAX_KEYS 8

struct dnssec_params {
	uint32_t validity;         /* seconds a signature is valid after its period starts */
	uint32_t refresh;          /* seconds between re-signings (< validity) */
	uint32_t inception_offset; /* inception back-dated by this (clock skew) */
};

/*
 * Read the keys of `zone` (no trailing dot) from the folder `dir`.  NULL
 * with "dnssec: zone Z: <path>: why" in err when the folder cannot be read,
 * holds no key of the zone, a key has another algorithm, a .private does
 * not match its .key, or there is no KSK.  The result has one reference.
 */
struct dnssec_keys *dnssec_keys_load(
    const char *zone, const char *dir, const struct dnssec_params *p, char *err, size_t errlen);

/* Another reference to k (returned). */
struct dnssec_keys *dnssec_keys_ref(struct dnssec_keys *k);

/* Drop one reference; the last frees.  NULL is a no-op. */
void dnssec_keys_free(struct dnssec_keys *k);

/* Number of keys, and the key tags for logs ("12345 (KSK) 2345 (ZSK)"). */
size_t dnssec_keys_count(const struct dnssec_keys *k);
void dnssec_keys_describe(const struct dnssec_keys *k, char *buf, size_t len);

/* The signing period at time `now` (see above). */
uint64_t dnssec_period(const struct dnssec_keys *k, time_t now);

/* The expiration of signatures made in `period`, as seconds since 1970. */
uint64_t dnssec_expiration(const struct dnssec_keys *k, uint64_t period);

/*
 * Append to `out` (which then owns them) the apex records: DNSKEY of every
 * key, and CDS (SHA-256) and CDNSKEY of the KSKs (RFC 7344), owned by
 * `apex` with `ttl`.  0 or -1 (no memory).
 */
int dnssec_apex_rrs(
    const struct dnssec_keys *k, const ldns_rdf *apex, uint32_t ttl, ldns_rr_list *out);

/*
 * Sign the RRset `rrset` (one owner, type and class; not modified) with the
 * times of `period`: with the KSKs for DNSKEY, CDS and CDNSKEY, else with
 * the ZSKs.  The RRSIGs are appended to out (which owns them).  0 or -1.
 */
int dnssec_sign_rrset(
    struct dnssec_keys *k, const ldns_rr_list *rrset, uint64_t period, ldns_rr_list *out);

#endif
