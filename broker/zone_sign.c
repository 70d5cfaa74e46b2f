/*
 * zone_sign.c - sign a compiled zone when it is built: DNSKEY, CDS and
 * CDNSKEY at the apex, an NSEC chain over the names with data, an RRSIG
 * for every authoritative RRset.  Denial of existence is then fully
 * precomputed (docs/dnssec.md): the query path signs nothing.
 */
#include "broker/zone.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/dnssec.h"
#include "broker/prep.h"
#include "broker/wire.h"
#include "broker/zone_int.h"

#define MAX_LABELS 128

bool
zone_type_is_generated(uint16_t t)
{
	return t == LDNS_RR_TYPE_RRSIG || t == LDNS_RR_TYPE_NSEC || t == LDNS_RR_TYPE_DNSKEY ||
	    t == LDNS_RR_TYPE_CDS || t == LDNS_RR_TYPE_CDNSKEY || t == LDNS_RR_TYPE_NSEC3 ||
	    t == LDNS_RR_TYPE_NSEC3PARAMS;
}

/* Offsets of the labels of a wire name, root excluded; the count. */
static size_t
label_offsets(const uint8_t *p, size_t len, size_t *off)
{
	size_t n = 0;

	for (size_t i = 0; i < len && p[i] != 0 && n < MAX_LABELS; i += (size_t)p[i] + 1)
		off[n++] = i;
	return n;
}

int
zone_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t ao[MAX_LABELS], bo[MAX_LABELS];
	size_t na = label_offsets(a, alen, ao), nb = label_offsets(b, blen, bo);

	while (na > 0 && nb > 0) {
		const uint8_t *la = a + ao[--na], *lb = b + bo[--nb];
		size_t m = la[0] < lb[0] ? la[0] : lb[0];
		int c = memcmp(la + 1, lb + 1, m);

		if (c != 0)
			return c;
		if (la[0] != lb[0])
			return la[0] < lb[0] ? -1 : 1;
	}
	return na > 0 ? 1 : nb > 0 ? -1 : 0;
}

static int
node_cmp(const void *x, const void *y)
{
	const struct znode *a = *(struct znode *const *)x, *b = *(struct znode *const *)y;

	return zone_name_cmp(a->name, a->len, b->name, b->len);
}

/* The last chain node before `name` (the apex is first and before all). */
static struct znode *
chain_before(const struct zone *z, const uint8_t *name, size_t len)
{
	size_t lo = 0, hi = z->nchain; /* chain[lo] < name; answer in [lo, hi) */

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (zone_name_cmp(z->chain[mid]->name, z->chain[mid]->len, name, len) < 0)
			lo = mid;
		else
			hi = mid;
	}
	return z->chain[lo];
}

static int
check_wildcards(const struct zone *z, char *err, size_t errlen)
{
	for (size_t i = 0; i < z->nnodes; i++) {
		char *name;
		ldns_rdf *r;

		if (!(z->nodes[i]->flags & NODE_WILDCARD))
			continue;
		r = ldns_dname_new_frm_data(z->nodes[i]->len, z->nodes[i]->name);
		name = r != NULL ? ldns_rdf2str(r) : NULL;
		zone_seterr(err, errlen, "zone %s: wildcard %s is not supported in a signed zone",
		    z->name, name != NULL ? name : "*");
		free(name);
		ldns_rdf_deep_free(r);
		return -1;
	}
	return 0;
}

/* Append rr to the zone (which owns it from here) and index it. */
static int
add_rr(struct zone *z, ldns_rr *rr)
{
	if (!ldns_rr_list_push_rr(z->rrs, rr)) {
		ldns_rr_free(rr);
		return -1;
	}
	if (z->xfr != NULL && !ldns_rr_list_push_rr(z->xfr, rr))
		return -1;
	return zone_index_added(z, rr);
}

static int
add_apex_keys(struct zone *z)
{
	ldns_rr_list *l = ldns_rr_list_new();
	const ldns_rr *soa = ldns_rr_list_rr(z->soa_set->rrs, 0);
	int rc = 0;

	if (l == NULL || dnssec_apex_rrs(z->keys, ldns_rr_owner(soa), ldns_rr_ttl(soa), l) == -1)
		rc = -1;
	for (size_t i = 0; l != NULL && i < ldns_rr_list_rr_count(l); i++)
		if (rc == 0)
			rc = add_rr(z, ldns_rr_list_rr(l, i));
		else
			ldns_rr_free(ldns_rr_list_rr(l, i));
	ldns_rr_list_free(l);
	return rc;
}

static int
build_chain(struct zone *z)
{
	z->chain = calloc(z->nnodes + 1, sizeof(*z->chain));
	if (z->chain == NULL)
		return -1;
	for (size_t i = 0; i < z->nnodes; i++)
		if (!(z->nodes[i]->flags & NODE_OCCLUDED) && z->nodes[i]->nsets > 0)
			z->chain[z->nchain++] = z->nodes[i];
	qsort(z->chain, z->nchain, sizeof(*z->chain), node_cmp);
	return 0;
}

static ldns_rr *
make_nsec(const struct zone *z, const struct znode *n, const struct znode *next)
{
	ldns_rr_type types[256 + 2];
	size_t nt = 0;
	ldns_rr *rr = ldns_rr_new();
	ldns_rdf *bitmap;

	if (rr == NULL)
		return NULL;
	for (size_t i = 0; i < n->nsets && nt < 256; i++)
		types[nt++] = (ldns_rr_type)n->sets[i].type;
	types[nt++] = LDNS_RR_TYPE_RRSIG;
	types[nt++] = LDNS_RR_TYPE_NSEC;
	bitmap = ldns_dnssec_create_nsec_bitmap(types, nt, LDNS_RR_TYPE_NSEC);
	ldns_rr_set_type(rr, LDNS_RR_TYPE_NSEC);
	ldns_rr_set_owner(rr, ldns_dname_new_frm_data(n->len, n->name));
	ldns_rr_set_ttl(rr, z->neg_ttl);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	if (bitmap == NULL || ldns_rr_owner(rr) == NULL ||
	    !ldns_rr_push_rdf(rr, ldns_dname_new_frm_data(next->len, next->name)) ||
	    ldns_rr_rdf(rr, 0) == NULL || !ldns_rr_push_rdf(rr, bitmap)) {
		ldns_rr_free(rr);
		return NULL;
	}
	return rr;
}

static int
add_nsec_chain(struct zone *z)
{
	/* Made first, added after: indexing moves the nodes' RRset arrays. */
	ldns_rr **v = calloc(z->nchain + 1, sizeof(*v));
	int rc = 0;

	if (v == NULL)
		return -1;
	for (size_t i = 0; i < z->nchain && rc == 0; i++)
		if ((v[i] = make_nsec(z, z->chain[i], z->chain[(i + 1) % z->nchain])) == NULL)
			rc = -1;
	for (size_t i = 0; i < z->nchain; i++)
		if (rc == 0)
			rc = add_rr(z, v[i]);
		else
			ldns_rr_free(v[i]);
	free(v);
	return rc;
}

/* Where each name's denial comes from (zone_int.h: nsec_at, wild_nsec). */
static void
link_denial(struct zone *z)
{
	for (size_t i = 0; i < z->nnodes; i++) {
		struct znode *n = z->nodes[i];
		uint8_t wild[WIRE_NAME_MAX + 2];

		if (n->flags & NODE_OCCLUDED)
			continue;
		n->nsec_at = n->nsets > 0 ? n : chain_before(z, n->name, n->len);
		if ((size_t)n->len + 2 > WIRE_NAME_MAX)
			continue;
		wild[0] = 1;
		wild[1] = '*';
		memcpy(wild + 2, n->name, n->len);
		n->wild_nsec = chain_before(z, wild, (size_t)n->len + 2);
	}
}

static bool
rrset_is_local(const struct zone *z, const struct znode *n, const struct zrrset *s)
{
	for (size_t i = 0; i < z->nrflags; i++)
		if ((z->rflags[i].flags & ZONE_RRSET_LOCAL) && z->rflags[i].type == s->type &&
		    z->rflags[i].len == n->len && memcmp(z->rflags[i].name, n->name, n->len) == 0)
			return true;
	return false;
}

static bool
same_rrs(const ldns_rr_list *a, const ldns_rr_list *b)
{
	size_t n = ldns_rr_list_rr_count(a);

	if (n != ldns_rr_list_rr_count(b))
		return false;
	for (size_t i = 0; i < n; i++) {
		const ldns_rr *x = ldns_rr_list_rr(a, i), *y = ldns_rr_list_rr(b, i);

		if (ldns_rr_ttl(x) != ldns_rr_ttl(y) || ldns_rr_compare(x, y) != 0)
			return false;
	}
	return true;
}

/*
 * A rebuild by zone_apply within the same signing period: an RRset equal to
 * the one of the old zone gets copies of its signatures, so a brokered
 * publish signs only what changed (the new set, the SOA).  0 when reused.
 */
static int
reuse_sigs(const struct zone *z, const struct znode *n, const struct zrrset *s, ldns_rr_list *tmp)
{
	const struct znode *on;
	const struct zrrset *os;

	if (z->old == NULL || z->old->keys != z->keys || z->old->period != z->period)
		return -1;
	on = zone_node_find(z->old, n->name, n->len);
	os = on != NULL ? zone_node_set(on, s->type) : NULL;
	if (os == NULL || os->sigs == NULL || ldns_rr_list_rr_count(os->sigs) == 0 ||
	    !same_rrs(os->rrs, s->rrs))
		return -1;
	for (size_t i = 0; i < ldns_rr_list_rr_count(os->sigs); i++) {
		ldns_rr *c = ldns_rr_clone(ldns_rr_list_rr(os->sigs, i));

		if (c == NULL || !ldns_rr_list_push_rr(tmp, c)) {
			ldns_rr_free(c);
			return -2;
		}
	}
	return 0;
}

/* Free the RRs of l from index i on, and empty l. */
static void
drop_from(ldns_rr_list *l, size_t i)
{
	for (; i < ldns_rr_list_rr_count(l); i++)
		ldns_rr_free(ldns_rr_list_rr(l, i));
	ldns_rr_list_set_rr_count(l, 0);
}

/* The RRSIGs of s into tmp: the old zone's while still good, else new ones. */
static int
sigs_for(struct zone *z, const struct znode *n, const struct zrrset *s, ldns_rr_list *tmp)
{
	int r = reuse_sigs(z, n, s, tmp);

	if (r == 0)
		return 0;
	drop_from(tmp, 0);
	return r == -2 ? -1 : dnssec_sign_rrset(z->keys, s->rrs, z->period, tmp);
}

/* Sign s; its RRSIGs join z->rrs (the owner), s->sigs and, unless LOCAL, z->xfr. */
static int
sign_set(struct zone *z, const struct znode *n, struct zrrset *s, ldns_rr_list *tmp)
{
	bool local = rrset_is_local(z, n, s);

	ldns_rr_list_set_rr_count(tmp, 0);
	if ((s->sigs = ldns_rr_list_new()) == NULL || sigs_for(z, n, s, tmp) == -1)
		return -1;
	for (size_t i = 0; i < ldns_rr_list_rr_count(tmp); i++) {
		ldns_rr *sig = ldns_rr_list_rr(tmp, i);

		if (!ldns_rr_list_push_rr(z->rrs, sig)) {
			drop_from(tmp, i);
			return -1;
		}
		if (!ldns_rr_list_push_rr(s->sigs, sig) ||
		    (z->xfr != NULL && !local && !ldns_rr_list_push_rr(z->xfr, sig))) {
			drop_from(tmp, i + 1);
			return -1;
		}
	}
	ldns_rr_list_set_rr_count(tmp, 0);
	return 0;
}

/* Every authoritative RRset; at a zone cut only DS and NSEC (RFC 4035 2.2). */
static int
sign_all(struct zone *z)
{
	ldns_rr_list *tmp = ldns_rr_list_new();
	int rc = tmp != NULL ? 0 : -1;

	for (size_t i = 0; i < z->nnodes && rc == 0; i++) {
		struct znode *n = z->nodes[i];

		if (n->flags & NODE_OCCLUDED)
			continue;
		for (size_t j = 0; j < n->nsets && rc == 0; j++) {
			uint16_t t = n->sets[j].type;

			if ((n->flags & NODE_DELEG) && t != LDNS_RR_TYPE_DS &&
			    t != LDNS_RR_TYPE_NSEC)
				continue;
			rc = sign_set(z, n, &n->sets[j], tmp);
		}
	}
	ldns_rr_list_set_rr_count(tmp, 0);
	ldns_rr_list_free(tmp);
	return rc;
}

int
zone_sign(struct zone *z, char *err, size_t errlen)
{
	size_t first_sig;

	if (check_wildcards(z, err, errlen) == -1)
		return -1;
	if (add_apex_keys(z) == -1 || build_chain(z) == -1 || add_nsec_chain(z) == -1)
		goto nomem;
	z->soa_set = zone_node_set(z->apexnode, LDNS_RR_TYPE_SOA);
	z->ns_set = zone_node_set(z->apexnode, LDNS_RR_TYPE_NS);
	link_denial(z);
	first_sig = ldns_rr_list_rr_count(z->rrs);
	if (sign_all(z) == -1) {
		zone_seterr(err, errlen, "zone %s: signing failed", z->name);
		return -1;
	}
	/* The RRSIGs are an RRset of their own too, for qtype RRSIG (as NSD). */
	for (size_t i = first_sig; i < ldns_rr_list_rr_count(z->rrs); i++)
		if (zone_index_added(z, ldns_rr_list_rr(z->rrs, i)) == -1)
			goto nomem;
	z->soa_set = zone_node_set(z->apexnode, LDNS_RR_TYPE_SOA);
	z->ns_set = zone_node_set(z->apexnode, LDNS_RR_TYPE_NS);
	return 0;
nomem:
	zone_seterr(err, errlen, "zone %s: out of memory signing", z->name);
	return -1;
}

size_t
zone_denial(const struct zone *z, const uint8_t *qname, size_t qlen, const struct prep *parts[2])
{
	const struct znode *enc = NULL, *p;
	size_t n = 0;

	if (z->keys == NULL || z->nchain == 0)
		return 0;
	p = chain_before(z, qname, qlen);
	if (p->nsec_part != NULL)
		parts[n++] = p->nsec_part;
	while (enc == NULL && qlen > z->apexlen) {
		qlen -= (size_t)qname[0] + 1;
		qname += qname[0] + 1;
		enc = zone_node_find(z, qname, qlen);
	}
	if (enc != NULL && enc->wild_nsec != NULL && enc->wild_nsec != p &&
	    enc->wild_nsec->nsec_part != NULL)
		parts[n++] = enc->wild_nsec->nsec_part;
	return n;
}

bool
zone_is_signed(const struct zone *z)
{
	return z->keys != NULL;
}

uint64_t
zone_sign_period(const struct zone *z)
{
	return z->period;
}

bool
zone_resign_due(const struct zone *z, time_t now)
{
	return z->keys != NULL && dnssec_period(z->keys, now) != z->period;
}
