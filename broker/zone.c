/*
 * zone.c - compile a zone: index its RRs by name, check it, build the zone
 * from a file's RRs (zone_load.c) or an update (zone_apply), and look up
 * prepared answers (zone_prep.c) at query time.
 */
#include "broker/zone.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/dnssec.h"
#include "broker/prep.h"
#include "broker/wire.h"
#include "broker/zone_int.h"
#include "common/arena.h"

#define ARENA_CHUNK (64 * 1024)

void
zone_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- the node table --------------------------------------------------- */

struct znode *
zone_node_find(const struct zone *z, const uint8_t *name, size_t len)
{
	uint32_t h = wire_name_hash(name, len);

	for (struct znode *n = z->table[h & z->tmask]; n != NULL; n = n->hnext)
		if (n->hash == h && n->len == len && memcmp(n->name, name, len) == 0)
			return n;
	return NULL;
}

static struct znode *
node_get(struct zone *z, const uint8_t *name, size_t len)
{
	struct znode *n = zone_node_find(z, name, len);
	uint8_t *copy;

	if (n != NULL)
		return n;
	if (z->nnodes == z->capnodes) {
		size_t cap = z->capnodes ? z->capnodes * 2 : 64;
		struct znode **v = reallocarray(z->nodes, cap, sizeof(*v));

		if (v == NULL)
			return NULL;
		z->nodes = v;
		z->capnodes = cap;
	}
	n = arena_alloc(z->arena, sizeof(*n));
	copy = arena_alloc(z->arena, len);
	if (n == NULL || copy == NULL)
		return NULL;
	memset(n, 0, sizeof(*n));
	memcpy(copy, name, len);
	n->name = copy;
	n->len = (uint8_t)len;
	n->hash = wire_name_hash(name, len);
	n->hnext = z->table[n->hash & z->tmask];
	z->table[n->hash & z->tmask] = n;
	z->nodes[z->nnodes++] = n;
	if (len >= 2 && name[0] == 1 && name[1] == '*')
		n->flags |= NODE_WILDCARD;
	return n;
}

struct zrrset *
zone_node_set(const struct znode *n, uint16_t type)
{
	for (size_t i = 0; i < n->nsets; i++)
		if (n->sets[i].type == type)
			return &n->sets[i];
	return NULL;
}

static int
node_add_rr(struct znode *n, ldns_rr *rr)
{
	uint16_t type = (uint16_t)ldns_rr_get_type(rr);
	struct zrrset *s = zone_node_set(n, type);

	if (s == NULL) {
		struct zrrset *v = reallocarray(n->sets, n->nsets + 1, sizeof(*v));

		if (v == NULL)
			return -1;
		n->sets = v;
		s = &n->sets[n->nsets++];
		s->type = type;
		s->flags = 0;
		s->sigs = NULL;
		s->rrs = ldns_rr_list_new();
		if (s->rrs == NULL)
			return -1;
	}
	return ldns_rr_list_push_rr(s->rrs, rr) ? 0 : -1;
}

int
zone_index_added(struct zone *z, ldns_rr *rr)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t len = wire_name_from_rdf(ldns_rr_owner(rr), name, sizeof(name));
	struct znode *n = len > 0 ? node_get(z, name, len) : NULL;

	return n != NULL ? node_add_rr(n, rr) : -1;
}

/* ---- checking and indexing -------------------------------------------- */

void
zone_rr_err(char *err, size_t errlen, const struct zone *z, const struct rrsrc *src, size_t i,
    const char *what)
{
	if (src != NULL)
		zone_seterr(err, errlen, "%s:%d: %s", src[i].file, src[i].line, what);
	else
		zone_seterr(err, errlen, "zone %s: %s", z->name, what);
}

static int
index_rr(struct zone *z, size_t i, const struct rrsrc *src, char *err, size_t errlen)
{
	ldns_rr *rr = ldns_rr_list_rr(z->rrs, i);
	uint8_t name[WIRE_NAME_MAX];
	size_t len = wire_name_from_rdf(ldns_rr_owner(rr), name, sizeof(name));
	struct znode *n;

	if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
		zone_rr_err(err, errlen, z, src, i, "only class IN is served");
		return -1;
	}
	if (len == 0 || !wire_name_is_sub(name, len, z->apex, z->apexlen)) {
		zone_rr_err(err, errlen, z, src, i, "record outside the zone");
		return -1;
	}
	if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && len != z->apexlen) {
		zone_rr_err(err, errlen, z, src, i, "SOA record not at the zone apex");
		return -1;
	}
	n = node_get(z, name, len);
	if (n == NULL || node_add_rr(n, rr) == -1) {
		zone_rr_err(err, errlen, z, src, i, "out of memory");
		return -1;
	}
	return 0;
}

/* CNAME and other data (RFC 2181 10.1), DNSSEC types aside. */
static int
check_cname(
    const struct zone *z, const struct znode *n, char *err, size_t errlen, const struct rrsrc *src)
{
	const struct zrrset *c = zone_node_set(n, LDNS_RR_TYPE_CNAME);
	char *name;

	if (c == NULL)
		return 0;
	for (size_t i = 0; i < n->nsets; i++) {
		uint16_t t = n->sets[i].type;

		if (t == LDNS_RR_TYPE_CNAME || t == LDNS_RR_TYPE_RRSIG || t == LDNS_RR_TYPE_NSEC)
			continue;
		goto bad;
	}
	if (ldns_rr_list_rr_count(c->rrs) == 1)
		return 0;
bad:
	name = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(c->rrs, 0)));
	for (size_t i = 0; src != NULL && i < ldns_rr_list_rr_count(z->rrs); i++)
		if (ldns_rr_list_rr(z->rrs, i) == ldns_rr_list_rr(c->rrs, 0)) {
			zone_seterr(err, errlen, "%s:%d: %s: CNAME and other data", src[i].file,
			    src[i].line, name != NULL ? name : "?");
			free(name);
			return -1;
		}
	zone_seterr(
	    err, errlen, "zone %s: %s: CNAME and other data", z->name, name != NULL ? name : "?");
	free(name);
	return -1;
}

/* Add the empty non-terminals between every name and the apex. */
static int
add_parents(struct zone *z)
{
	for (size_t i = 0; i < z->nnodes; i++) {
		const uint8_t *p = z->nodes[i]->name;
		size_t len = z->nodes[i]->len;

		if (len == z->apexlen)
			continue;
		len -= (size_t)p[0] + 1;
		p += p[0] + 1;
		if (node_get(z, p, len) == NULL)
			return -1;
	}
	return 0;
}

/* The topmost zone cut strictly above n, or NULL. */
static struct znode *
cut_above(const struct zone *z, const struct znode *n)
{
	struct znode *cut = NULL;
	const uint8_t *p = n->name;
	size_t len = n->len;

	while (len > z->apexlen) {
		struct znode *a;

		len -= (size_t)p[0] + 1;
		p += p[0] + 1;
		a = len > z->apexlen ? zone_node_find(z, p, len) : NULL;
		if (a != NULL && zone_node_set(a, LDNS_RR_TYPE_NS) != NULL)
			cut = a;
	}
	return cut;
}

static void
mark_cuts(struct zone *z)
{
	for (size_t i = 0; i < z->nnodes; i++) {
		struct znode *n = z->nodes[i], *cut = cut_above(z, n);

		if (cut != NULL) {
			n->flags |= NODE_OCCLUDED;
			n->cut = cut;
		} else if (n != z->apexnode && zone_node_set(n, LDNS_RR_TYPE_NS) != NULL) {
			n->flags |= NODE_DELEG;
			n->cut = n;
		}
		if (n->flags & NODE_WILDCARD) {
			struct znode *parent = zone_node_find(z, n->name + 2, n->len - 2);

			if (parent != NULL)
				parent->wild = n;
		}
	}
}

static void
collect_types(struct zone *z)
{
	for (size_t i = 0; i < z->nnodes; i++)
		for (size_t j = 0; j < z->nodes[i]->nsets; j++) {
			uint16_t t = z->nodes[i]->sets[j].type;
			size_t k;

			for (k = 0; k < z->ntypes && z->types[k] != t; k++)
				;
			if (k == z->ntypes && z->ntypes < 256)
				z->types[z->ntypes++] = t;
		}
}

static void
apply_rflags(struct zone *z)
{
	for (size_t i = 0; i < z->nrflags; i++) {
		struct znode *n = zone_node_find(z, z->rflags[i].name, z->rflags[i].len);
		struct zrrset *s = n != NULL ? zone_node_set(n, z->rflags[i].type) : NULL;

		if (s != NULL)
			s->flags = z->rflags[i].flags;
	}
}

/* True when rr belongs to an RRset flagged ZONE_RRSET_LOCAL. */
static bool
rr_is_local(const struct zone *z, const ldns_rr *rr)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t len = 0;

	for (size_t i = 0; i < z->nrflags; i++) {
		const struct rflag *f = &z->rflags[i];

		if (!(f->flags & ZONE_RRSET_LOCAL) || f->type != (uint16_t)ldns_rr_get_type(rr))
			continue;
		if (len == 0 &&
		    (len = wire_name_from_rdf(ldns_rr_owner(rr), name, sizeof(name))) == 0)
			return false;
		if (f->len == len && memcmp(f->name, name, len) == 0)
			return true;
	}
	return false;
}

/* The RRs a secondary transfers, when some are LOCAL; 0 or -1. */
static int
build_xfr_list(struct zone *z)
{
	size_t n = ldns_rr_list_rr_count(z->rrs);
	bool any = false;

	for (size_t i = 0; i < z->nrflags; i++)
		any |= (z->rflags[i].flags & ZONE_RRSET_LOCAL) != 0;
	if (!any)
		return 0;
	if ((z->xfr = ldns_rr_list_new()) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(z->rrs, i);

		if (!rr_is_local(z, rr) && !ldns_rr_list_push_rr(z->xfr, rr))
			return -1;
	}
	return 0;
}

/* A 64-bit FNV-1a hash of one RR in canonical wire form, well mixed. */
static uint64_t
rr_hash(ldns_buffer *b, const ldns_rr *rr)
{
	uint64_t h = 1469598103934665603ULL;

	ldns_buffer_clear(b);
	if (ldns_rr2buffer_wire_canonical(b, rr, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK)
		h = 0; /* does not fit: cannot happen for a parsed RR */
	for (size_t i = 0; h != 0 && i < ldns_buffer_position(b); i++)
		h = (h ^ *ldns_buffer_at(b, i)) * 1099511628211ULL;
	h ^= h >> 31; /* splitmix64 finalizer: sums of hashes stay well spread */
	h *= 0x7fb5d329728ea185ULL;
	h ^= h >> 27;
	return h;
}

/*
 * zone_digest: the sum of the RRs' hashes (order-independent), the SOA
 * hashed with serial 0.  0 or -1 (out of memory).
 */
static int
compute_digest(struct zone *z)
{
	const ldns_rr_list *l = zone_rrs(z);
	ldns_buffer *b = ldns_buffer_new(LDNS_MAX_PACKETLEN);
	ldns_rr *soa = ldns_rr_clone(ldns_rr_list_rr(l, 0));
	ldns_rdf *zero = ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, 0);
	ldns_rdf *old = NULL;
	int rc = -1;

	if (b == NULL || soa == NULL || zero == NULL)
		goto done;
	old = ldns_rr_set_rdf(soa, zero, 2); /* soa owns zero from here */
	zero = NULL;
	z->digest = rr_hash(b, soa);
	for (size_t i = 1; i < ldns_rr_list_rr_count(l); i++)
		z->digest += rr_hash(b, ldns_rr_list_rr(l, i));
	rc = 0;
done:
	ldns_rdf_deep_free(old);
	ldns_rdf_deep_free(zero);
	ldns_rr_free(soa);
	ldns_buffer_free(b);
	return rc;
}

/* ---- building a zone -------------------------------------------------- */

static struct zone *
zone_alloc(const char *name, const char *file, size_t nrr)
{
	struct zone *z = calloc(1, sizeof(*z));
	size_t buckets = 64;
	ldns_rdf *apex = NULL;

	if (z == NULL)
		return NULL;
	while (buckets < nrr * 2)
		buckets *= 2;
	z->name = strdup(name);
	z->file = strdup(file != NULL ? file : "");
	z->table = calloc(buckets, sizeof(*z->table));
	z->types = calloc(256, sizeof(*z->types));
	z->tmask = buckets - 1;
	z->arena = arena_new(ARENA_CHUNK);
	if (z->name == NULL || z->arena == NULL || z->file == NULL || z->table == NULL ||
	    z->types == NULL || ldns_str2rdf_dname(&apex, name) != LDNS_STATUS_OK ||
	    (z->apexlen = wire_name_from_rdf(apex, z->apex, sizeof(z->apex))) == 0) {
		ldns_rdf_deep_free(apex);
		zone_free(z);
		return NULL;
	}
	ldns_rdf_deep_free(apex);
	return z;
}

/* Move the SOA to the front (AXFR starts with it) and check there is one. */
static int
find_soa(struct zone *z, struct rrsrc *src, char *err, size_t errlen)
{
	size_t n = ldns_rr_list_rr_count(z->rrs), at = n;

	for (size_t i = 0; i < n; i++) {
		if (ldns_rr_get_type(ldns_rr_list_rr(z->rrs, i)) != LDNS_RR_TYPE_SOA)
			continue;
		if (at != n) {
			zone_rr_err(err, errlen, z, src, i, "a second SOA record");
			return -1;
		}
		at = i;
	}
	if (at == n) {
		zone_seterr(err, errlen, "%s:0: zone %s has no SOA record",
		    z->file[0] ? z->file : "zone", z->name);
		return -1;
	}
	for (size_t i = at; i > 0; i--) {
		ldns_rr *prev = ldns_rr_list_rr(z->rrs, i - 1);

		ldns_rr_list_set_rr(z->rrs, ldns_rr_list_rr(z->rrs, i), i - 1);
		ldns_rr_list_set_rr(z->rrs, prev, i);
		if (src != NULL) {
			struct rrsrc t = src[i - 1];

			src[i - 1] = src[i];
			src[i] = t;
		}
	}
	return 0;
}

static int
zone_index(struct zone *z, struct rrsrc *src, char *err, size_t errlen)
{
	const ldns_rr *soa;

	if (find_soa(z, src, err, errlen) == -1)
		return -1;
	for (size_t i = 0; i < ldns_rr_list_rr_count(z->rrs); i++)
		if (index_rr(z, i, src, err, errlen) == -1)
			return -1;
	z->apexnode = zone_node_find(z, z->apex, z->apexlen);
	z->soa_set = zone_node_set(z->apexnode, LDNS_RR_TYPE_SOA);
	z->ns_set = zone_node_set(z->apexnode, LDNS_RR_TYPE_NS);
	if (z->ns_set == NULL) {
		zone_seterr(err, errlen, "%s:0: zone %s has no NS records at the apex",
		    z->file[0] ? z->file : "zone", z->name);
		return -1;
	}
	soa = ldns_rr_list_rr(z->soa_set->rrs, 0);
	if (ldns_rr_rd_count(soa) != 7) {
		zone_rr_err(err, errlen, z, src, 0, "malformed SOA record");
		return -1;
	}
	z->serial = ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
	z->neg_ttl = ldns_rdf2native_int32(ldns_rr_rdf(soa, 6));
	if (ldns_rr_ttl(soa) < z->neg_ttl)
		z->neg_ttl = ldns_rr_ttl(soa); /* RFC 2308 section 5 */
	for (size_t i = 0; i < z->nnodes; i++)
		if (check_cname(z, z->nodes[i], err, errlen, src) == -1)
			return -1;
	return 0;
}

/* A signed zone's file holds no DNSSEC records: brokerd makes them. */
static int
check_unsigned(const struct zone *z, const struct rrsrc *src, char *err, size_t errlen)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(z->rrs); i++)
		if (zone_type_is_generated(
		        (uint16_t)ldns_rr_get_type(ldns_rr_list_rr(z->rrs, i)))) {
			zone_rr_err(err, errlen, z, src, i,
			    "DNSSEC record in a zone brokerd signs (remove RRSIG, NSEC, NSEC3, "
			    "DNSKEY, "
			    "CDS and CDNSKEY records: brokerd makes its own)");
			return -1;
		}
	return 0;
}

/*
 * Signing: the digest covers the content and the signing period, never the
 * signatures, so a rebuild (restart, reload, re-sign) within one period keeps
 * the serial and a new period moves it once (secondaries fetch the fresh
 * RRSIGs).
 */
static int
sign_zone(struct zone *z, char *err, size_t errlen)
{
	uint64_t h = (z->period + 1) * 0x9e3779b97f4a7c15ULL;

	z->digest += h ^ (h >> 29);
	return zone_sign(z, err, errlen);
}

/*
 * Takes ownership of rrs (freed deeply with the zone, or here on error);
 * `old` (zone_apply) lends signatures of unchanged RRsets.
 */
static struct zone *
zone_build(const char *name, const char *file, ldns_rr_list *rrs, struct rrsrc *src,
    const struct rflag *rflags, size_t nrflags, struct dnssec_keys *keys, const struct zone *old,
    char *err, size_t errlen)
{
	struct zone *z = zone_alloc(name, file, ldns_rr_list_rr_count(rrs));

	if (z == NULL) {
		ldns_rr_list_deep_free(rrs);
		zone_seterr(err, errlen, "zone %s: out of memory or bad name", name);
		return NULL;
	}
	z->rrs = rrs;
	if (keys != NULL) {
		z->keys = dnssec_keys_ref(keys);
		z->period = dnssec_period(keys, time(NULL));
		if (check_unsigned(z, src, err, errlen) == -1)
			goto fail;
	}
	if (nrflags > 0) {
		z->rflags = calloc(nrflags, sizeof(*z->rflags));
		if (z->rflags == NULL)
			goto fail;
		memcpy(z->rflags, rflags, nrflags * sizeof(*rflags));
		z->nrflags = nrflags;
	}
	if (zone_index(z, src, err, errlen) == -1)
		goto fail;
	if (add_parents(z) == -1)
		goto fail;
	mark_cuts(z);
	collect_types(z);
	apply_rflags(z);
	if (build_xfr_list(z) == -1 || compute_digest(z) == -1)
		goto fail;
	z->old = old;
	if (z->keys != NULL && sign_zone(z, err, errlen) == -1)
		goto fail;
	z->old = NULL;
	if (zone_prepare_all(z, err, errlen) == -1)
		goto fail;
	return z;
fail:
	if (err[0] == '\0')
		zone_seterr(err, errlen, "zone %s: out of memory", name);
	zone_free(z);
	return NULL;
}

/* zone_build_rrs for zone_apply: unchanged RRsets keep old's signatures. */
static struct zone *
zone_build_rrs_from(const struct zone *old, ldns_rr_list *rrs, const struct rflag *rflags,
    size_t nrflags, char *err, size_t errlen)
{
	return zone_build(
	    old->name, old->file, rrs, NULL, rflags, nrflags, old->keys, old, err, errlen);
}

struct zone *
zone_build_rrs(const char *name, const char *file, ldns_rr_list *rrs, struct rrsrc *src,
    const struct rflag *rflags, size_t nrflags, struct dnssec_keys *keys, char *err, size_t errlen)
{
	return zone_build(name, file, rrs, src, rflags, nrflags, keys, NULL, err, errlen);
}

static bool
change_matches(const struct zone_change *ch, size_t n, const ldns_rr *rr)
{
	for (size_t i = 0; i < n; i++)
		if ((uint16_t)ldns_rr_get_type(rr) == ch[i].type &&
		    ldns_dname_compare(ldns_rr_owner(rr), ch[i].owner) == 0)
			return true;
	return false;
}

/* The RR flags of old plus those of the changes (a change wins). */
static struct rflag *
merge_rflags(const struct zone *old, const struct zone_change *ch, size_t n, size_t *count)
{
	struct rflag *v = calloc(old->nrflags + n + 1, sizeof(*v));
	size_t k = 0;

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[k].len = wire_name_from_rdf(ch[i].owner, v[k].name, sizeof(v[k].name));
		v[k].type = ch[i].type;
		v[k].flags = ch[i].flags;
		if (v[k].len > 0 && ch[i].flags != 0)
			k++;
	}
	for (size_t i = 0; i < old->nrflags; i++) {
		bool replaced = false;

		for (size_t j = 0; j < n; j++) {
			uint8_t nm[WIRE_NAME_MAX];
			size_t len = wire_name_from_rdf(ch[j].owner, nm, sizeof(nm));

			if (ch[j].type == old->rflags[i].type && len == old->rflags[i].len &&
			    memcmp(nm, old->rflags[i].name, len) == 0)
				replaced = true;
		}
		if (!replaced)
			v[k++] = old->rflags[i];
	}
	*count = k;
	return v;
}

static int
copy_rrs(ldns_rr_list *to, const ldns_rr_list *from, const struct zone_change *ch, size_t n,
    uint32_t serial, bool signed_zone)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(from); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(from, i);
		ldns_rr *c;

		if (change_matches(ch, n, rr) ||
		    (signed_zone && zone_type_is_generated((uint16_t)ldns_rr_get_type(rr))))
			continue;
		c = ldns_rr_clone(rr);
		if (c == NULL || !ldns_rr_list_push_rr(to, c)) {
			ldns_rr_free(c);
			return -1;
		}
		if (ldns_rr_get_type(c) == LDNS_RR_TYPE_SOA) {
			ldns_rdf *s = ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, serial);
			ldns_rdf *old = s ? ldns_rr_set_rdf(c, s, 2) : NULL;

			if (old == NULL) {
				ldns_rdf_deep_free(s);
				return -1;
			}
			ldns_rdf_deep_free(old);
		}
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; ch[i].rrs && j < ldns_rr_list_rr_count(ch[i].rrs); j++) {
			ldns_rr *c = ldns_rr_clone(ldns_rr_list_rr(ch[i].rrs, j));

			if (c == NULL || !ldns_rr_list_push_rr(to, c)) {
				ldns_rr_free(c);
				return -1;
			}
		}
	return 0;
}

struct zone *
zone_apply(const struct zone *old, const struct zone_change *ch, size_t n, uint32_t serial,
    char *err, size_t errlen)
{
	ldns_rr_list *rrs = ldns_rr_list_new();
	struct rflag *rf;
	size_t nrf = 0;
	struct zone *z;

	err[0] = '\0';
	for (size_t i = 0; i < n; i++)
		if (ch[i].type == LDNS_RR_TYPE_SOA ||
		    (old->keys != NULL && zone_type_is_generated(ch[i].type))) {
			ldns_rr_list_free(rrs);
			zone_seterr(err, errlen,
			    "zone %s: the SOA and DNSSEC records cannot be replaced", old->name);
			return NULL;
		}
	rf = merge_rflags(old, ch, n, &nrf);
	if (rrs == NULL || rf == NULL ||
	    copy_rrs(rrs, old->rrs, ch, n, serial, old->keys != NULL) == -1) {
		ldns_rr_list_deep_free(rrs);
		free(rf);
		zone_seterr(err, errlen, "zone %s: out of memory", old->name);
		return NULL;
	}
	z = zone_build_rrs_from(old, rrs, rf, nrf, err, errlen);
	free(rf);
	return z;
}

void
zone_free(struct zone *z)
{
	if (z == NULL)
		return;
	for (size_t i = 0; i < z->nnodes; i++) {
		for (size_t j = 0; j < z->nodes[i]->nsets; j++) {
			ldns_rr_list_free(z->nodes[i]->sets[j].rrs);
			ldns_rr_list_free(z->nodes[i]->sets[j].sigs);
		}
		free(z->nodes[i]->sets);
	}
	arena_free(z->arena);
	dnssec_keys_free(z->keys);
	free(z->chain);
	ldns_rr_list_free(z->xfr);
	ldns_rr_list_deep_free(z->rrs);
	free(z->nodes);
	free(z->table);
	free(z->types);
	free(z->rflags);
	free(z->name);
	free(z->file);
	free(z);
}

const char *
zone_name(const struct zone *z)
{
	return z->name;
}

const uint8_t *
zone_apex(const struct zone *z, size_t *len)
{
	*len = z->apexlen;
	return z->apex;
}

const char *
zone_file(const struct zone *z)
{
	return z->file;
}

uint32_t
zone_serial(const struct zone *z)
{
	return z->serial;
}

size_t
zone_rr_count(const struct zone *z)
{
	return ldns_rr_list_rr_count(z->rrs);
}

size_t
zone_name_count(const struct zone *z)
{
	return z->nnodes;
}

const ldns_rr_list *
zone_rrs(const struct zone *z)
{
	return z->xfr != NULL ? z->xfr : z->rrs;
}

uint64_t
zone_digest(const struct zone *z)
{
	return z->digest;
}

const ldns_rr *
zone_soa(const struct zone *z)
{
	return ldns_rr_list_rr(z->rrs, 0);
}

static const struct prep *
node_answer(const struct znode *n, uint16_t qtype)
{
	if (qtype == LDNS_RR_TYPE_ANY)
		return n->any;
	for (size_t i = 0; i < n->ntyped; i++)
		if (n->typed[i].type == qtype)
			return n->typed[i].p;
	return n->deflt;
}

const struct prep *
zone_answer(const struct zone *z, const uint8_t *qname, size_t qlen, uint16_t qtype)
{
	const struct znode *n = zone_node_find(z, qname, qlen);

	if (n != NULL) {
		if (n->referral != NULL && !((n->flags & NODE_DELEG) && qtype == LDNS_RR_TYPE_DS))
			return n->referral;
		return node_answer(n, qtype);
	}
	/* Not there: find the closest encloser (RFC 4592 section 3.3.1). */
	while (n == NULL && qlen > z->apexlen) {
		qlen -= (size_t)qname[0] + 1;
		qname += qname[0] + 1;
		n = zone_node_find(z, qname, qlen);
	}
	if (n == NULL)
		return z->nxdomain;
	if (n->referral != NULL)
		return n->referral;
	if (n->wild != NULL)
		return node_answer(n->wild, qtype);
	return z->nxdomain;
}
