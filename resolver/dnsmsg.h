/*
 * dnsmsg.h - DNS query packets for the stub client: building a query, and
 * the one function that parses and validates a reply before anything else
 * looks at it.
 *
 * Names cross this interface as presentation strings in lower case without
 * the trailing dot ("mx1.example.test"); the root is "".  Pure functions: no
 * I/O, no clock, no global state, so the unit tests drive them directly.
 */
#ifndef MXB_DNSMSG_H
#define MXB_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

/* Longest presentation name we keep (RFC 1035: 253 characters). */
#define DNSMSG_NAME_MAX 254
/* CNAME hops followed inside one answer or across re-queries (Postfix: 10). */
#define DNSMSG_CNAME_MAX 10
/* EDNS0 payload we advertise (DNS flag day 2020). */
#define DNSMSG_EDNS_SIZE 1232
/* Longest TTL we keep anything for, as Unbound's cache-max-ttl. */
#define DNSMSG_TTL_MAX 86400

/* What one question got, as the route planner needs to tell it apart. */
enum dns_status {
	DNS_OK,          /* NOERROR with records of the type */
	DNS_NODATA,      /* NOERROR, no records of the type */
	DNS_NXDOMAIN,    /* the name does not exist */
	DNS_CNAME,       /* NOERROR, chain ends at a name not answered */
	DNS_SERVFAIL,    /* SERVFAIL from every server */
	DNS_REFUSED,     /* REFUSED, NOTIMP or another error rcode */
	DNS_TIMEOUT,     /* no answer from any server */
	DNS_NETERR,      /* send/receive failed (no route, ...) */
	DNS_CONNREFUSED, /* nothing listens on the server's port: ICMP port
	                  * unreachable on UDP, ECONNREFUSED on TCP */
	DNS_MALFORMED,   /* the reply did not parse or did not match */
	DNS_TRUNCATED,   /* TC set: retry over TCP */
};

/* True for outcomes that mean "ask again later" (RFC 5321 §5.1 R4). */
bool dns_status_is_temporary(enum dns_status s);
const char *dns_status_str(enum dns_status s);

/*
 * A parsed answer: what the question resolved to.  `rrs` holds the records
 * of the asked type owned by the canonical name (deep copies, owned by the
 * struct); `canon` is that name (= qname when no CNAME was followed).
 * `ttl` is the positive TTL (minimum over the RRset and the CNAMEs), or for
 * NXDOMAIN/NODATA the RFC 2308 negative TTL (min of SOA TTL and SOA
 * MINIMUM); `cacheable` is false when a negative answer had no SOA.
 */
struct dns_answer {
	enum dns_status status;
	uint8_t rcode;
	uint16_t qtype;
	char qname[DNSMSG_NAME_MAX];
	char canon[DNSMSG_NAME_MAX];
	bool via_cname;
	bool cacheable;
	/* The reply had AD set (RFC 4035 §3.2.3): DNSSEC-authenticated, if
	 * the resolver asked is trusted to validate (dnsclient masks it
	 * otherwise: dnsclient_params.dnssec). */
	bool secure;
	uint32_t ttl;
	ldns_rr_list *rrs; /* may be NULL when there are none */
};

/* Release what an answer owns (not the struct); safe on a zeroed one. */
void dns_answer_clear(struct dns_answer *a);
/* Deep copy: 0 or -1 (out of memory, `dst` left cleared). */
int dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src);

/*
 * Normalise a presentation name into `out` (lower case, trailing dot
 * removed).  Returns 0, or -1 when it is not a valid host-style domain:
 * empty labels, a label over 63 octets, over 253 characters, or octets
 * outside letters, digits, '-' and '_' (an IDN must be given as A-labels).
 */
int dnsmsg_name_normalize(const char *in, char *out, size_t outlen);

/*
 * Build a query for (name, type) with `id`, RD set and EDNS0 advertising
 * `edns_size` (0 = no OPT record) into `buf`; with `dnssec`, DO (RFC 3225)
 * and AD (RFC 6840 §5.7) are set too, so that a validating resolver
 * reports whether the answer was authenticated.  Returns the length, or -1.
 */
int dnsmsg_build_query(const char *name, uint16_t type, uint16_t id, uint16_t edns_size,
    bool dnssec, uint8_t *buf, size_t buflen);

/*
 * The fields of a TLSA record (RFC 6698 §2.1): 0, or -1 when rr is not a
 * well-formed TLSA record.  *data points into rr.
 */
int dnsmsg_tlsa(const ldns_rr *rr, uint8_t *usage, uint8_t *selector, uint8_t *mtype,
    const uint8_t **data, size_t *len);

/*
 * Parse and validate a reply to the query (id, name, type): QR set, same ID,
 * exactly the one question (names compared case-insensitively, class IN).
 * Returns 0 with `out` filled (caller clears it) when the packet is a reply
 * to that question, or -1 when it is not (wrong ID/question, garbage): the
 * caller keeps waiting for the real one.  A TC reply gives DNS_TRUNCATED.
 */
int dnsmsg_parse_reply(const uint8_t *wire, size_t len, uint16_t id, const char *name,
    uint16_t type, struct dns_answer *out);

#endif
