/*
 * dnsq.h - the one function that parses and validates a DNS query from the
 * network: header, question and the EDNS OPT record.  Code after dnsq_parse
 * trusts its output.
 */
#ifndef MXB_BROKER_DNSQ_H
#define MXB_BROKER_DNSQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/wire.h"

enum dnsq_status {
	DNSQ_OK,
	DNSQ_DROP,    /* not worth an answer: too short, or a response */
	DNSQ_FORMERR, /* answer FORMERR (question echoed when has_question) */
	DNSQ_NOTIMP,  /* an opcode we do not serve */
};

struct dnsq {
	uint16_t id;
	uint16_t flags; /* second header word as received */
	bool has_question;
	uint8_t qname[WIRE_NAME_MAX]; /* lower-case wire */
	size_t qname_len;
	uint16_t qtype, qclass;
	size_t qend; /* offset just after the question */
	bool edns;
	uint16_t udp_size; /* advertised payload, when edns */
	uint8_t edns_version;
	bool edns_do;
};

/*
 * Parse the query pkt[0..len).  Never reads outside it.  Compression is
 * refused in the question, labels over 63 octets and names over 255 are
 * FORMERR, and so are qdcount other than 1, answer records, authority
 * records (except the one SOA of an IXFR query, RFC 1995 3),
 * and OPT records that are not at the root or come twice.
 */
enum dnsq_status dnsq_parse(const uint8_t *pkt, size_t len, struct dnsq *q);

#endif
