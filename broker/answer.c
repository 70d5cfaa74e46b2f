/* answer.c - answer one query by copying a prepared answer. */
#include "broker/answer.h"

#include <string.h>

#include "broker/prep.h"
#include "broker/zone.h"

#define RCODE_FORMERR 1
#define RCODE_NOTIMP  4
#define RCODE_REFUSED 5
#define OPT_LEN       11
#define CLASS_IN      1
#define CLASS_ANY     255
#define TYPE_AXFR     252
#define TYPE_IXFR     251
#define TYPE_SOA      6

static void
put_header(
    uint8_t *out, const struct dnsq *q, uint16_t hflags, uint16_t an, uint16_t ns, uint16_t ar)
{
	uint16_t flags = WIRE_QR | (q->flags & (0x7800 | WIRE_RD | WIRE_CD)) | hflags;

	wire_put16(out, q->id);
	wire_put16(out + 2, flags);
	wire_put16(out + 4, q->has_question ? 1 : 0);
	wire_put16(out + 6, an);
	wire_put16(out + 8, ns);
	wire_put16(out + 10, ar);
}

static size_t
put_opt(uint8_t *p, const struct dnsq *q, unsigned rcode)
{
	p[0] = 0;
	wire_put16(p + 1, 41);
	wire_put16(p + 3, ANSWER_EDNS_SIZE);
	p[5] = (uint8_t)(rcode >> 4);
	p[6] = 0; /* version */
	p[7] = q->edns_do ? 0x80 : 0;
	p[8] = 0;
	wire_put16(p + 9, 0);
	return OPT_LEN;
}

size_t
answer_empty(const struct dnsq *q, const uint8_t *pkt, unsigned rcode, uint8_t *out, size_t cap)
{
	size_t n = WIRE_HDR_LEN;
	size_t qlen = q->has_question ? q->qend - WIRE_HDR_LEN : 0;

	if (cap < WIRE_HDR_LEN + qlen + OPT_LEN)
		return 0;
	put_header(out, q, (uint16_t)(rcode & 0xf), 0, 0, q->edns ? 1 : 0);
	memcpy(out + n, pkt + WIRE_HDR_LEN, qlen);
	n += qlen;
	if (q->edns)
		n += put_opt(out + n, q, rcode);
	return n;
}

static const struct zone *
find_zone(struct zone *const *zones, size_t nzones, const struct dnsq *q)
{
	const struct zone *best = NULL;
	size_t bestlen = 0;

	for (size_t i = 0; i < nzones; i++) {
		size_t alen;
		const uint8_t *apex = zone_apex(zones[i], &alen);

		if (alen > bestlen && wire_name_is_sub(q->qname, q->qname_len, apex, alen)) {
			best = zones[i];
			bestlen = alen;
		}
	}
	return best;
}

/* True when the question names z's apex (transfers: xfr.c answers over TCP). */
static bool
is_apex(const struct zone *z, const struct dnsq *q)
{
	size_t alen = 0;
	const uint8_t *apex = zone_apex(z, &alen);

	return alen == q->qname_len && memcmp(apex, q->qname, alen) == 0;
}

/* Copy the rotating RRset starting at record k, `keep` records of it. */
static size_t
copy_rotated(uint8_t *dst, const struct prep *p, unsigned keep)
{
	unsigned k =
	    atomic_fetch_add_explicit((_Atomic uint32_t *)&p->rot_next, 1, memory_order_relaxed) %
	    p->rot_count;
	const uint8_t *rrs = p->body + p->rot_off;
	size_t n = 0;

	for (unsigned i = 0; i < keep; i++, k = (k + 1) % p->rot_count) {
		memcpy(dst + n, rrs + (size_t)k * p->rot_size, p->rot_size);
		n += p->rot_size;
	}
	return n;
}

/*
 * Copy the answer and authority sections, or only the first `an_keep`
 * records of a trimmed answer, rotating where asked.
 */
static size_t
copy_sections(uint8_t *dst, const struct prep *p, size_t upto, unsigned an_keep)
{
	size_t rot_end = (size_t)p->rot_off + (size_t)p->rot_size * p->rot_count;
	size_t n;

	if (p->rot_count < 2) {
		memcpy(dst, p->body, upto);
		return upto;
	}
	memcpy(dst, p->body, p->rot_off);
	n = p->rot_off;
	n += copy_rotated(dst + n, p, an_keep);
	if (an_keep == p->rot_count && upto > rot_end) {
		memcpy(dst + n, p->body + rot_end, upto - rot_end);
		n += upto - rot_end;
	}
	return n;
}

/* Fit the prepared answer into room bytes: the body length and the counts. */
static size_t
write_body(uint8_t *dst, const struct prep *p, size_t room, uint16_t *an, uint16_t *ns,
    uint16_t *ar, bool *tc)
{
	size_t upto;

	*an = p->an;
	*ns = p->ns;
	*ar = p->ar;
	if (p->len <= room)
		return copy_sections(dst, p, p->len, p->rot_count);
	if ((p->flags & PREP_F_TRIM) && p->rot_count > 1 && p->an_len >= room) {
		unsigned keep =
		    room > p->rot_off ? (unsigned)((room - p->rot_off) / p->rot_size) : 0;

		if (keep > 0) {
			*an = (uint16_t)(p->an - (p->rot_count - keep));
			*ns = *ar = 0;
			return copy_sections(dst, p, p->an_len, keep);
		}
	}
	if (p->an_ns_len <= room) {
		/* Drop additional records that do not fit; no TC (RFC 2181 9). */
		for (upto = p->an_ns_len, *ar = 0; *ar < p->ar && p->ar_end[*ar] <= room; (*ar)++)
			upto = p->ar_end[*ar];
		return copy_sections(dst, p, upto, p->rot_count);
	}
	*an = *ns = *ar = 0;
	*tc = true;
	return 0;
}

/*
 * A signed NXDOMAIN: the NSEC parts (zone_denial) go after the SOA and its
 * RRSIG; all or nothing (TC), a partial proof would not validate.
 */
static size_t
add_denial(uint8_t *dst, size_t room, const struct prep *const *parts, size_t nparts, uint16_t *ns,
    bool *tc)
{
	size_t n = 0;

	for (size_t i = 0; i < nparts; i++)
		n += parts[i]->len;
	if (*tc || n > room) {
		*tc = true;
		return 0;
	}
	n = 0;
	for (size_t i = 0; i < nparts; i++) {
		memcpy(dst + n, parts[i]->body, parts[i]->len);
		n += parts[i]->len;
		*ns = (uint16_t)(*ns + parts[i]->ns);
	}
	return n;
}

static size_t
reply_prepared(const struct dnsq *q, const uint8_t *pkt, const struct zone *z, const struct prep *p,
    size_t limit, uint8_t *out, struct answer_result *res)
{
	size_t opt = q->edns ? OPT_LEN : 0;
	size_t n = q->qend;
	uint16_t an, ns, ar;
	bool tc = false;

	if (q->edns_do && p->dnssec != NULL)
		p = p->dnssec;
	memcpy(out + WIRE_HDR_LEN, pkt + WIRE_HDR_LEN, q->qend - WIRE_HDR_LEN);
	n += write_body(out + n, p, limit - n - opt, &an, &ns, &ar, &tc);
	if (p->flags & PREP_F_DENIAL) {
		const struct prep *parts[2];
		size_t np = zone_denial(z, q->qname, q->qname_len, parts);

		n += add_denial(out + n, limit - n - opt, parts, np, &ns, &tc);
		if (tc) {
			n = q->qend;
			an = ns = ar = 0;
		}
	}
	put_header(out, q, (uint16_t)(p->hflags | (tc ? WIRE_TC : 0)), an, ns,
	    (uint16_t)(ar + (q->edns ? 1 : 0)));
	if (q->edns)
		n += put_opt(out + n, q, 0);
	res->rcode = p->hflags & 0xf;
	res->truncated = tc;
	return n;
}

static size_t
udp_limit(const struct dnsq *q, bool tcp, size_t cap)
{
	size_t limit = ANSWER_UDP_MIN;

	if (tcp)
		limit = WIRE_MSG_MAX;
	else if (q->edns)
		limit = q->udp_size < ANSWER_UDP_MIN ? ANSWER_UDP_MIN
		    : q->udp_size > ANSWER_EDNS_SIZE ? ANSWER_EDNS_SIZE
		                                     : q->udp_size;
	return limit < cap ? limit : cap;
}

static enum answer_kind
answer_parsed(struct zone *const *zones, size_t nzones, const uint8_t *pkt, bool tcp, uint8_t *out,
    size_t cap, struct answer_result *res)
{
	const struct dnsq *q = &res->q;
	const struct zone *z;

	if (q->edns && q->edns_version > 0) {
		res->rcode = ANSWER_RCODE_BADVERS;
		res->len = answer_empty(q, pkt, ANSWER_RCODE_BADVERS, out, cap);
		return ANSWER_REPLY;
	}
	z = q->qclass == CLASS_IN ? find_zone(zones, nzones, q) : NULL;
	res->zone = z;
	if (z != NULL && (q->qtype == TYPE_AXFR || q->qtype == TYPE_IXFR)) {
		if (tcp)
			return ANSWER_XFR;
		/* RFC 1995 2: an IXFR over UDP gets the current SOA (the apex's SOA
		 * answer), which tells the client to ask over TCP (xfr.c). */
		if (q->qtype == TYPE_IXFR && is_apex(z, q)) {
			res->len = reply_prepared(q, pkt, z,
			    zone_answer(z, q->qname, q->qname_len, TYPE_SOA),
			    udp_limit(q, tcp, cap), out, res);
			return ANSWER_REPLY;
		}
		z = NULL;
	}
	if (z == NULL) {
		res->rcode = RCODE_REFUSED;
		res->len = answer_empty(q, pkt, RCODE_REFUSED, out, cap);
		return ANSWER_REPLY;
	}
	res->len = reply_prepared(q, pkt, z, zone_answer(z, q->qname, q->qname_len, q->qtype),
	    udp_limit(q, tcp, cap), out, res);
	return ANSWER_REPLY;
}

static void
count(struct answer_stats *st, enum answer_kind k, const struct answer_result *res, bool tcp)
{
	if (st == NULL)
		return;
	if (k == ANSWER_DROP) {
		answer_count(&st->dropped);
		return;
	}
	answer_count(tcp ? &st->tcp : &st->udp);
	if (k == ANSWER_XFR) {
		answer_count(&st->xfr);
		return;
	}
	answer_count(&st->rcode[res->rcode < ANSWER_NRCODES ? res->rcode : 0]);
	if (res->truncated)
		answer_count(&st->truncated);
}

enum answer_kind
answer_query(struct zone *const *zones, size_t nzones, const uint8_t *pkt, size_t len, bool tcp,
    uint8_t *out, size_t cap, struct answer_result *res, struct answer_stats *st)
{
	enum answer_kind k = ANSWER_REPLY;

	res->len = 0;
	res->rcode = 0;
	res->truncated = false;
	res->zone = NULL;
	switch (dnsq_parse(pkt, len, &res->q)) {
	case DNSQ_OK: k = answer_parsed(zones, nzones, pkt, tcp, out, cap, res); break;
	case DNSQ_DROP: k = ANSWER_DROP; break;
	case DNSQ_FORMERR:
		res->rcode = RCODE_FORMERR;
		res->len = answer_empty(&res->q, pkt, RCODE_FORMERR, out, cap);
		break;
	case DNSQ_NOTIMP:
		res->rcode = RCODE_NOTIMP;
		res->len = answer_empty(&res->q, pkt, RCODE_NOTIMP, out, cap);
		break;
	}
	if (k == ANSWER_REPLY && res->len == 0)
		k = ANSWER_DROP;
	count(st, k, res, tcp);
	return k;
}
