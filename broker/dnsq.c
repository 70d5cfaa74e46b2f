/* dnsq.c - parse and validate one DNS query. */
#include "broker/dnsq.h"

#include <string.h>

#define OPCODE_QUERY 0
#define TYPE_OPT     41
#define TYPE_SOA     6
#define TYPE_IXFR    251

/* The question name: plain labels only; lower-cased into q->qname. */
static bool
parse_qname(const uint8_t *pkt, size_t len, size_t *off, struct dnsq *q)
{
	size_t o = *off, n = 0;

	for (;;) {
		uint8_t l;

		if (o >= len)
			return false;
		l = pkt[o];
		if (l > WIRE_LABEL_MAX || n + l + 1 > WIRE_NAME_MAX)
			return false; /* pointer, extended label or too long */
		q->qname[n++] = l;
		o++;
		if (l == 0)
			break;
		if (len - o < l)
			return false;
		for (unsigned i = 0; i < l; i++) {
			uint8_t c = pkt[o + i];

			q->qname[n++] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
		}
		o += l;
	}
	q->qname_len = n;
	*off = o;
	return true;
}

/* Skip a possibly compressed name in a record; false when malformed. */
static bool
skip_name(const uint8_t *pkt, size_t len, size_t *off, bool *is_root)
{
	size_t o = *off;

	*is_root = o < len && pkt[o] == 0;
	for (size_t total = 0; o < len;) {
		uint8_t l = pkt[o];

		if ((l & 0xc0) == 0xc0) {
			if (len - o < 2)
				return false;
			*off = o + 2;
			return true;
		}
		if (l > WIRE_LABEL_MAX)
			return false;
		total += (size_t)l + 1;
		if (total > WIRE_NAME_MAX || len - o < (size_t)l + 1)
			return false;
		o += (size_t)l + 1;
		if (l == 0) {
			*off = o;
			return true;
		}
	}
	return false;
}

/* The additional section: find the OPT record (RFC 6891 section 6.1.1). */
static enum dnsq_status
parse_additional(const uint8_t *pkt, size_t len, size_t off, unsigned arcount, struct dnsq *q)
{
	for (unsigned i = 0; i < arcount; i++) {
		bool root;
		uint16_t type, rdlen;

		if (!skip_name(pkt, len, &off, &root) || len - off < 10)
			return DNSQ_FORMERR;
		type = wire_get16(pkt + off);
		rdlen = wire_get16(pkt + off + 8);
		if (len - off - 10 < rdlen)
			return DNSQ_FORMERR;
		if (type == TYPE_OPT) {
			if (q->edns || !root)
				return DNSQ_FORMERR;
			q->edns = true;
			q->udp_size = wire_get16(pkt + off + 2);
			q->edns_version = pkt[off + 5];
			q->edns_do = (pkt[off + 6] & 0x80) != 0;
		}
		off += 10u + rdlen;
	}
	return DNSQ_OK;
}

/*
 * The authority section: empty, except the one SOA of an IXFR query (RFC
 * 1995 3), which is skipped here (xfr.c reads it); *off moves past it.
 */
static bool
authority_ok(const uint8_t *pkt, size_t len, const struct dnsq *q, size_t *off)
{
	unsigned nscount = wire_get16(pkt + 8);
	bool root;
	size_t o = q->qend;

	*off = o;
	if (nscount == 0)
		return true;
	if (nscount != 1 || q->qtype != TYPE_IXFR || !skip_name(pkt, len, &o, &root) ||
	    len - o < 10 || wire_get16(pkt + o) != TYPE_SOA ||
	    len - o - 10 < wire_get16(pkt + o + 8))
		return false;
	*off = o + 10u + wire_get16(pkt + o + 8);
	return true;
}

enum dnsq_status
dnsq_parse(const uint8_t *pkt, size_t len, struct dnsq *q)
{
	size_t off = WIRE_HDR_LEN;
	enum dnsq_status st;

	memset(q, 0, offsetof(struct dnsq, qname));
	q->qname_len = 0;
	q->edns = false;
	q->edns_do = false;
	q->edns_version = 0;
	if (len < WIRE_HDR_LEN)
		return DNSQ_DROP;
	q->id = wire_get16(pkt);
	q->flags = wire_get16(pkt + 2);
	if (q->flags & WIRE_QR)
		return DNSQ_DROP;
	if (wire_get16(pkt + 4) != 1)
		return DNSQ_FORMERR;
	if (!parse_qname(pkt, len, &off, q) || len - off < 4)
		return DNSQ_FORMERR;
	q->qtype = wire_get16(pkt + off);
	q->qclass = wire_get16(pkt + off + 2);
	q->qend = off + 4;
	q->has_question = true;
	if (WIRE_OPCODE(q->flags) != OPCODE_QUERY)
		return DNSQ_NOTIMP;
	if (wire_get16(pkt + 6) != 0 || !authority_ok(pkt, len, q, &off))
		return DNSQ_FORMERR;
	st = parse_additional(pkt, len, off, wire_get16(pkt + 10), q);
	if (st != DNSQ_OK)
		q->edns = false;
	return st;
}
