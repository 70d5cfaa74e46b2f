/*
 * zone_prep.c - resolve every answer a compiled zone can give and encode it
 * once, in wire format, into the zone's arena (prep.h).
 */
#include "broker/zone.h"

#include <stdlib.h>
#include <string.h>

#include "broker/prep.h"
#include "broker/wire.h"
#include "broker/zone_int.h"
#include "common/arena.h"

#define MAX_ITEMS      64 /* RRsets per section of one prepared answer */
#define RCODE_NXDOMAIN 3

/* ---- resolving and preparing answers ---------------------------------- */

struct item {
	const struct zrrset *set;
	const uint8_t *owner; /* NULL: the RRs' own owner */
	bool neg;             /* SOA with the negative TTL */
};

struct resp {
	bool dnssec; /* the signed twin: RRSIGs and NSECs */
	uint16_t hflags;
	struct item an[MAX_ITEMS], ns[MAX_ITEMS], ar[MAX_ITEMS], ar6[MAX_ITEMS];
	size_t nan, nns, nar, nar6;
};

static void
push(struct item *v, size_t *n, const struct zrrset *set, const uint8_t *owner, bool neg)
{
	if (*n < MAX_ITEMS) {
		v[*n].set = set;
		v[*n].owner = owner;
		v[*n].neg = neg;
		(*n)++;
	}
}

static bool
has_set(const struct item *v, size_t n, const struct zrrset *set)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].set == set && v[i].owner == NULL)
			return true;
	return false;
}

/* A and AAAA of the in-zone targets of NS, MX and SRV records. */
static void
add_additional(const struct zone *z, struct resp *r, const struct zrrset *set, bool glue)
{
	size_t field;

	switch (set->type) {
	case LDNS_RR_TYPE_NS: field = 0; break;
	case LDNS_RR_TYPE_MX: field = 1; break;
	case LDNS_RR_TYPE_SRV: field = 3; break;
	default: return;
	}
	for (size_t i = 0; i < ldns_rr_list_rr_count(set->rrs); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(set->rrs, i);
		uint8_t t[WIRE_NAME_MAX];
		size_t len = field < ldns_rr_rd_count(rr)
		    ? wire_name_from_rdf(ldns_rr_rdf(rr, field), t, sizeof(t))
		    : 0;
		const struct znode *n = len ? zone_node_find(z, t, len) : NULL;
		const struct zrrset *a, *aaaa;

		if (n == NULL || ((n->flags & NODE_OCCLUDED) && !glue))
			continue;
		a = zone_node_set(n, LDNS_RR_TYPE_A);
		aaaa = zone_node_set(n, LDNS_RR_TYPE_AAAA);
		if (a != NULL && !has_set(r->an, r->nan, a) && !has_set(r->ar, r->nar, a))
			push(r->ar, &r->nar, a, NULL, false);
		if (aaaa != NULL && !has_set(r->an, r->nan, aaaa) &&
		    !has_set(r->ar6, r->nar6, aaaa))
			push(r->ar6, &r->nar6, aaaa, NULL, false);
	}
}

static void
resolve_referral(const struct zone *z, const struct znode *cut, struct resp *r, bool dnssec)
{
	const struct zrrset *ns = zone_node_set(cut, LDNS_RR_TYPE_NS);
	const struct zrrset *ds = zone_node_set(cut, LDNS_RR_TYPE_DS);
	const struct zrrset *nsec = zone_node_set(cut, LDNS_RR_TYPE_NSEC);

	memset(r, 0, sizeof(*r));
	r->dnssec = dnssec;
	push(r->ns, &r->nns, ns, NULL, false);
	if (ds != NULL)
		push(r->ns, &r->nns, ds, NULL, false);
	else if (dnssec && nsec != NULL)
		push(r->ns, &r->nns, nsec, NULL, false); /* no DS: insecure delegation */
	add_additional(z, r, ns, true);
}

/* SOA for the negative TTL; signed NODATA at n: the NSEC that says so. */
static void
negative(const struct zone *z, struct resp *r, uint16_t rcode, const struct znode *n)
{
	const struct zrrset *nsec = r->dnssec && n != NULL && n->nsec_at != NULL
	    ? zone_node_set(n->nsec_at, LDNS_RR_TYPE_NSEC)
	    : NULL;

	r->hflags |= rcode;
	push(r->ns, &r->nns, z->soa_set, NULL, true);
	if (nsec != NULL)
		push(r->ns, &r->nns, nsec, NULL, false);
}

/* Follow a CNAME target inside the zone: the next node, or NULL to stop. */
static const struct znode *
chase(const struct zone *z, const ldns_rr *cname, const uint8_t **owner, struct resp *r)
{
	const ldns_rdf *target = ldns_rr_rdf(cname, 0);
	uint8_t t[WIRE_NAME_MAX];
	size_t len = target ? wire_name_from_rdf(target, t, sizeof(t)) : 0;
	const struct znode *n;
	const uint8_t *p = t;

	if (len == 0 || !wire_name_is_sub(t, len, z->apex, z->apexlen))
		return NULL;
	*owner = NULL;
	n = zone_node_find(z, t, len);
	if (n != NULL)
		return (n->flags & (NODE_OCCLUDED | NODE_DELEG)) ? NULL : n;
	while (n == NULL && len > z->apexlen) {
		len -= (size_t)p[0] + 1;
		p += p[0] + 1;
		n = zone_node_find(z, p, len);
	}
	if (n == NULL || (n->flags & (NODE_OCCLUDED | NODE_DELEG)))
		return NULL;
	if (n->wild == NULL) {
		negative(z, r, RCODE_NXDOMAIN, NULL);
		return NULL;
	}
	*owner = ldns_rdf_data(target);
	return n->wild;
}

/*
 * The answer for qtype at node n (qtype 0: a type that is not there) with
 * the answer owners written as `owner` (wildcard synthesis) when not NULL.
 */
static void
resolve(const struct zone *z, const struct znode *n, const uint8_t *owner, uint16_t qtype,
    struct resp *r, bool dnssec)
{
	memset(r, 0, sizeof(*r));
	r->dnssec = dnssec;
	r->hflags = WIRE_AA;
	if (qtype == LDNS_RR_TYPE_ANY) {
		/* RFC 8482 section 4.1: one RRset is enough. */
		if (n->nsets > 0) {
			push(r->an, &r->nan, &n->sets[0], owner, false);
			add_additional(z, r, &n->sets[0], false);
		} else
			negative(z, r, 0, n);
		return;
	}
	for (int chain = 0; n != NULL; chain++) {
		const struct zrrset *s = qtype ? zone_node_set(n, qtype) : NULL;

		if (s != NULL) {
			push(r->an, &r->nan, s, owner, false);
			add_additional(z, r, s, false);
			/* As NSD: no NS in authority beside the apex NS, nor
			 * beside DNSKEY and DS (kept small for validators). */
			if (qtype != LDNS_RR_TYPE_DS &&
			    !(n == z->apexnode &&
			        (qtype == LDNS_RR_TYPE_NS || qtype == LDNS_RR_TYPE_DNSKEY))) {
				push(r->ns, &r->nns, z->ns_set, NULL, false);
				add_additional(z, r, z->ns_set, false);
			}
			return;
		}
		s = qtype != LDNS_RR_TYPE_CNAME ? zone_node_set(n, LDNS_RR_TYPE_CNAME) : NULL;
		if (s == NULL) {
			negative(z, r, 0, n);
			return;
		}
		push(r->an, &r->nan, s, owner, false);
		if (chain >= ZONE_MAX_CNAME_CHAIN)
			return;
		n = chase(z, ldns_rr_list_rr(s->rrs, 0), &owner, r);
	}
}

struct enc {
	struct wenc w;
	size_t start;
	uint16_t count;
	uint16_t ar_end[MAX_ITEMS * 8];
	size_t nar_end;
	size_t rot_off, rot_size, rot_count;
};

/* The RRSIGs of item v (signed answers), with its owner and TTL override. */
static void
encode_sigs(struct enc *e, const struct item *v, uint32_t neg_ttl)
{
	const ldns_rr_list *sigs = v->set->sigs;

	for (size_t j = 0; sigs != NULL && j < ldns_rr_list_rr_count(sigs); j++) {
		wenc_rr(&e->w, ldns_rr_list_rr(sigs, j), v->owner, v->neg, neg_ttl);
		e->count++;
	}
}

static void
encode_items(struct enc *e, const struct item *v, size_t n, uint32_t neg_ttl, bool is_ar,
    bool rotate_last, bool sigs)
{
	for (size_t i = 0; i < n; i++) {
		const ldns_rr_list *l = v[i].set->rrs;
		bool rot = rotate_last && i + 1 == n && (v[i].set->flags & ZONE_RRSET_ROTATE) &&
		    ldns_rr_list_rr_count(l) > 1;
		size_t before = e->w.pos, size = 0;

		for (size_t j = 0; j < ldns_rr_list_rr_count(l); j++) {
			size_t at = e->w.pos;

			/* Additional data is optional: stop where we stop counting. */
			if (is_ar && e->nar_end == sizeof(e->ar_end) / sizeof(e->ar_end[0]))
				return;
			wenc_rr(&e->w, ldns_rr_list_rr(l, j), v[i].owner, v[i].neg, neg_ttl);
			e->count++;
			if (is_ar)
				e->ar_end[e->nar_end++] = (uint16_t)(e->w.pos - e->start);
			if (j == 0)
				size = e->w.pos - at;
			else if (e->w.pos - at != size)
				rot = false;
		}
		if (rot) {
			e->rot_off = before - e->start;
			e->rot_size = size;
			e->rot_count = ldns_rr_list_rr_count(l);
		}
		if (sigs)
			encode_sigs(e, &v[i], neg_ttl);
	}
}

/*
 * The state of preparing one zone's answers, passed down instead of kept in
 * statics so that zones can be built on several threads at once: the
 * message being encoded (with room for the seeded question in front).
 */
struct prepctx {
	struct zone *z;
	char *err;
	size_t errlen;
	uint8_t buf[WIRE_MSG_MAX];
	struct enc enc;
};

/* Copy an encoded answer into the zone's arena. */
static struct prep *
prep_store(struct zone *z, const struct enc *e, const struct resp *r, uint16_t an, uint16_t ns,
    size_t an_len, size_t an_ns_len, uint16_t flags)
{
	size_t len = e->w.pos - e->start;
	struct prep *p = arena_alloc(z->arena, sizeof(*p));
	uint8_t *body = arena_alloc(z->arena, len + 1);
	uint16_t *ar_end = arena_alloc(z->arena, (e->nar_end + 1) * sizeof(uint16_t));

	if (p == NULL || body == NULL || ar_end == NULL)
		return NULL;
	memcpy(body, e->w.buf + e->start, len);
	memcpy(ar_end, e->ar_end, e->nar_end * sizeof(uint16_t));
	memset(p, 0, sizeof(*p));
	p->hflags = r->hflags;
	p->flags = flags;
	p->an = an;
	p->ns = ns;
	p->ar = (uint16_t)e->nar_end;
	p->len = (uint16_t)len;
	p->an_len = (uint16_t)an_len;
	p->an_ns_len = (uint16_t)an_ns_len;
	p->rot_off = (uint16_t)e->rot_off;
	p->rot_size = (uint16_t)e->rot_size;
	p->rot_count = (uint16_t)e->rot_count;
	p->ar_end = ar_end;
	p->body = body;
	atomic_init(&p->rot_next, 0);
	return p;
}

/*
 * Turn a resolved answer into a prepared one.  Seeded: the question (qn's
 * name) is at offset 12 and names compress against it and each other;
 * otherwise nothing is compressed but owners equal to qn's name (0xC00C).
 */
static struct prep *
prepare(struct prepctx *ctx, const struct znode *qn, const struct resp *r, bool seeded)
{
	struct zone *z = ctx->z;
	uint8_t *buf = ctx->buf;
	struct enc *e = &ctx->enc;
	struct prep *p;
	uint16_t an, flags = seeded ? PREP_F_SEEDED : 0;
	size_t an_len, an_ns_len;

	memset(e, 0, sizeof(*e));
	e->start = seeded ? WIRE_HDR_LEN + qn->len + 4u : WIRE_HDR_LEN;
	wenc_init(&e->w, buf, sizeof(ctx->buf), e->start, seeded);
	if (seeded) {
		memcpy(buf + WIRE_HDR_LEN, qn->name, qn->len);
		wenc_seed(&e->w, WIRE_HDR_LEN);
	}
	e->w.qname = qn != NULL ? qn->name : NULL;
	encode_items(e, r->an, r->nan, z->neg_ttl, false, true, r->dnssec);
	an = e->count;
	an_len = e->w.pos - e->start;
	encode_items(e, r->ns, r->nns, z->neg_ttl, false, false, r->dnssec);
	an_ns_len = e->w.pos - e->start;
	encode_items(e, r->ar, r->nar, z->neg_ttl, true, false, false);
	encode_items(e, r->ar6, r->nar6, z->neg_ttl, true, false, false);
	if (e->w.failed || e->w.pos - e->start > WIRE_MSG_MAX - 512) {
		zone_seterr(ctx->err, ctx->errlen,
		    "zone %s: an answer does not fit in a DNS message", z->name);
		return NULL;
	}
	if (r->nan > 0 && (r->an[r->nan - 1].set->flags & ZONE_RRSET_TRIM) && !r->dnssec)
		flags |= PREP_F_TRIM;
	p = prep_store(
	    z, e, r, an, (uint16_t)(e->count - an - e->nar_end), an_len, an_ns_len, flags);
	if (p == NULL)
		zone_seterr(ctx->err, ctx->errlen, "zone %s: out of memory", z->name);
	return p;
}

static const struct prep *
prepare_for(struct prepctx *ctx, struct znode *n, uint16_t qtype)
{
	struct resp r;
	bool seeded = !(n->flags & NODE_WILDCARD);
	struct prep *p;

	resolve(ctx->z, n, NULL, qtype, &r, false);
	p = prepare(ctx, n, &r, seeded);
	if (p == NULL || ctx->z->keys == NULL)
		return p;
	resolve(ctx->z, n, NULL, qtype, &r, true);
	p->dnssec = prepare(ctx, n, &r, seeded);
	return p->dnssec != NULL ? p : NULL;
}

/* A chain node's NSEC and its RRSIGs alone, for NXDOMAIN proofs. */
static int
prepare_nsec_part(struct prepctx *ctx, struct znode *n)
{
	const struct zrrset *nsec = zone_node_set(n, LDNS_RR_TYPE_NSEC);
	struct resp r;

	if (nsec == NULL)
		return 0;
	memset(&r, 0, sizeof(r));
	r.dnssec = true;
	push(r.ns, &r.nns, nsec, NULL, false);
	n->nsec_part = prepare(ctx, NULL, &r, false);
	return n->nsec_part != NULL ? 0 : -1;
}

/* The NXDOMAIN answer; signed: its twin with the SOA's RRSIG, the NSECs come per query. */
static int
prepare_nxdomain(struct prepctx *ctx)
{
	struct zone *z = ctx->z;
	struct resp r;
	struct prep *p, *s;

	memset(&r, 0, sizeof(r));
	r.hflags = WIRE_AA;
	negative(z, &r, RCODE_NXDOMAIN, NULL);
	z->nxdomain = p = prepare(ctx, NULL, &r, false);
	if (p == NULL || z->keys == NULL)
		return p != NULL ? 0 : -1;
	r.dnssec = true;
	p->dnssec = s = prepare(ctx, NULL, &r, false);
	if (s == NULL)
		return -1;
	s->flags |= PREP_F_DENIAL;
	for (size_t i = 0; i < z->nchain; i++)
		if (prepare_nsec_part(ctx, z->chain[i]) == -1)
			return -1;
	return 0;
}

static int
add_typed(struct prepctx *ctx, struct znode *n, uint16_t type)
{
	const struct prep *p;

	for (size_t i = 0; i < n->ntyped; i++)
		if (n->typed[i].type == type)
			return 0;
	p = prepare_for(ctx, n, type);
	if (p == NULL)
		return -1;
	n->typed[n->ntyped].type = type;
	n->typed[n->ntyped].p = p;
	n->ntyped++;
	return 0;
}

static int
prepare_node(struct prepctx *ctx, struct znode *n)
{
	struct zone *z = ctx->z;
	bool cname = zone_node_set(n, LDNS_RR_TYPE_CNAME) != NULL;
	size_t max = n->nsets + (cname ? z->ntypes : 0);

	if (n->flags & NODE_OCCLUDED) {
		n->referral = n->cut->referral;
		return 0;
	}
	n->typed = arena_alloc(z->arena, (max + 1) * sizeof(*n->typed));
	if (n->typed == NULL)
		return -1;
	n->deflt = prepare_for(ctx, n, 0);
	if (n->deflt == NULL)
		return -1;
	if (n->flags & NODE_DELEG) {
		/* Only DS is answered from this side of the cut. */
		return zone_node_set(n, LDNS_RR_TYPE_DS) != NULL
		    ? add_typed(ctx, n, LDNS_RR_TYPE_DS)
		    : 0;
	}
	n->any = prepare_for(ctx, n, LDNS_RR_TYPE_ANY);
	if (n->any == NULL)
		return -1;
	for (size_t i = 0; i < n->nsets; i++)
		if (add_typed(ctx, n, n->sets[i].type) == -1)
			return -1;
	for (size_t i = 0; cname && i < z->ntypes; i++)
		if (add_typed(ctx, n, z->types[i]) == -1)
			return -1;
	return 0;
}

/* Every answer of the zone, the nodes' own after the shared ones they point to. */
static int
prepare_zone(struct prepctx *ctx)
{
	struct zone *z = ctx->z;
	struct resp r;

	if (prepare_nxdomain(ctx) == -1)
		return -1;
	for (size_t i = 0; i < z->nnodes; i++) {
		struct znode *n = z->nodes[i];
		struct prep *p;

		if (!(n->flags & NODE_DELEG))
			continue;
		resolve_referral(z, n, &r, false);
		n->referral = p = prepare(ctx, NULL, &r, false);
		if (p == NULL)
			return -1;
		if (z->keys == NULL)
			continue;
		resolve_referral(z, n, &r, true);
		if ((p->dnssec = prepare(ctx, NULL, &r, false)) == NULL)
			return -1;
	}
	for (size_t i = 0; i < z->nnodes; i++)
		if (prepare_node(ctx, z->nodes[i]) == -1)
			return -1;
	return 0;
}

/* The encoding buffer is 64 KiB: on the heap, once per zone built. */
int
zone_prepare_all(struct zone *z, char *err, size_t errlen)
{
	struct prepctx *ctx = calloc(1, sizeof(*ctx));
	int rc;

	if (ctx == NULL) {
		zone_seterr(err, errlen, "zone %s: out of memory", z->name);
		return -1;
	}
	ctx->z = z;
	ctx->err = err;
	ctx->errlen = errlen;
	rc = prepare_zone(ctx);
	free(ctx);
	return rc;
}
