/* zone.c - load a zone with ldns, check it, and prepare every answer. */
#include "broker/zone.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/prep.h"
#include "broker/wire.h"

#define ARENA_CHUNK    (64 * 1024)
#define MAX_ITEMS      64 /* RRsets per section of one prepared answer */
#define RCODE_NXDOMAIN 3

/* A bump allocator: everything a compiled zone prepares dies with it. */
struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct zrrset {
	uint16_t type;
	unsigned flags;    /* ZONE_RRSET_* */
	ldns_rr_list *rrs; /* borrowed from zone->rrs */
};

#define NODE_APEX     0x01
#define NODE_DELEG    0x02 /* NS below the apex: a zone cut */
#define NODE_OCCLUDED 0x04 /* below a zone cut: glue at most */
#define NODE_WILDCARD 0x08

struct tprep {
	uint16_t type;
	const struct prep *p;
};

struct znode {
	const uint8_t *name; /* lower-case wire */
	uint8_t len;
	uint8_t flags;
	uint32_t hash;
	struct znode *hnext;
	struct zrrset *sets; /* in order of first appearance */
	size_t nsets;
	struct znode *wild; /* "*.<this>" when it exists */
	struct znode *cut;  /* the zone cut at or above, when DELEG/OCCLUDED */
	const struct prep *referral;
	const struct prep *any, *deflt;
	struct tprep *typed;
	size_t ntyped;
};

struct rflag {
	uint8_t name[WIRE_NAME_MAX];
	size_t len;
	uint16_t type;
	unsigned flags;
};

struct zone {
	char *name;
	char *file;
	uint8_t apex[WIRE_NAME_MAX];
	size_t apexlen;
	ldns_rr_list *rrs; /* owned: SOA first */
	ldns_rr_list *xfr; /* borrowed from rrs, without LOCAL RRsets; NULL = rrs */
	uint32_t serial;
	uint64_t digest; /* zone_digest */
	struct znode **nodes;
	size_t nnodes, capnodes;
	struct znode **table;
	size_t tmask;
	struct znode *apexnode;
	const struct zrrset *soa_set, *ns_set;
	uint32_t neg_ttl;
	const struct prep *nxdomain;
	struct rflag *rflags;
	size_t nrflags;
	uint16_t *types; /* every type in the zone, for CNAME chains */
	size_t ntypes;
	struct arena_chunk *arena;
};

/* Where an RR came from, for file:line errors. */
struct rrsrc {
	const char *file;
	int line;
};

struct loadctx {
	ldns_rr_list *rrs;
	struct rrsrc *src;
	size_t nsrc, capsrc;
	char **files;
	size_t nfiles;
	ldns_rdf *origin;
	ldns_rdf *prev;
	uint32_t ttl;
	char *err;
	size_t errlen;
};

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void *
arena_alloc(struct zone *z, size_t n)
{
	struct arena_chunk *c = z->arena;
	void *p;

	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;

		c = calloc(1, sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->cap = cap;
		c->next = z->arena;
		z->arena = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

/* ---- loading ---------------------------------------------------------- */

static int
src_push(struct loadctx *c, const char *file, int line)
{
	if (c->nsrc == c->capsrc) {
		size_t cap = c->capsrc ? c->capsrc * 2 : 64;
		struct rrsrc *v = reallocarray(c->src, cap, sizeof(*v));

		if (v == NULL)
			return -1;
		c->src = v;
		c->capsrc = cap;
	}
	c->src[c->nsrc].file = file;
	c->src[c->nsrc].line = line;
	c->nsrc++;
	return 0;
}

static char *
read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		return NULL;
	do {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (nb == NULL) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int load_file(struct loadctx *c, const char *path, int depth);

/* Parse the records of one stretch of a file (between $INCLUDE lines). */
static int
load_segment(struct loadctx *c, const char *path, char *text, size_t len, int first_line)
{
	FILE *fp;
	int line = first_line - 1;
	int rc = 0;

	if (len == 0)
		return 0;
	fp = fmemopen(text, len, "r");
	if (fp == NULL) {
		seterr(c->err, c->errlen, "%s:%d: %s", path, first_line, strerror(errno));
		return -1;
	}
	while (!feof(fp)) {
		ldns_rr *rr = NULL;
		ldns_status s = ldns_rr_new_frm_fp_l(&rr, fp, &c->ttl, &c->origin, &c->prev, &line);

		if (s == LDNS_STATUS_OK) {
			if (!ldns_rr_list_push_rr(c->rrs, rr) || src_push(c, path, line) == -1) {
				ldns_rr_free(rr);
				seterr(c->err, c->errlen, "%s:%d: out of memory", path, line);
				rc = -1;
				break;
			}
			continue;
		}
		if (s == LDNS_STATUS_SYNTAX_EMPTY || s == LDNS_STATUS_SYNTAX_TTL ||
		    s == LDNS_STATUS_SYNTAX_ORIGIN)
			continue;
		seterr(c->err, c->errlen, "%s:%d: %s", path, line, ldns_get_errorstr_by_id(s));
		rc = -1;
		break;
	}
	fclose(fp);
	return rc;
}

/* "$INCLUDE file [origin]": load `file` with its own origin, then restore. */
static int
load_include(struct loadctx *c, const char *path, char *args, int lineno, int depth)
{
	char *save = NULL, *file = strtok_r(args, " \t\r;", &save);
	char *org = strtok_r(NULL, " \t\r;", &save);
	char full[PATH_MAX], dir[PATH_MAX];
	ldns_rdf *saved = c->origin;
	int rc;

	if (file == NULL) {
		seterr(c->err, c->errlen, "%s:%d: $INCLUDE without a file name", path, lineno);
		return -1;
	}
	if (file[0] == '"' && file[1] != '\0' && file[strlen(file) - 1] == '"') {
		file[strlen(file) - 1] = '\0';
		file++;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if (file[0] == '/')
		snprintf(full, sizeof(full), "%s", file);
	else
		snprintf(full, sizeof(full), "%s/%s", dirname(dir), file);
	if (org != NULL) {
		ldns_rdf *o = NULL;

		if (ldns_str2rdf_dname(&o, org) != LDNS_STATUS_OK) {
			seterr(c->err, c->errlen, "%s:%d: bad $INCLUDE origin '%s'", path, lineno,
			    org);
			return -1;
		}
		if (!ldns_dname_str_absolute(org) && saved != NULL &&
		    ldns_dname_cat(o, saved) != LDNS_STATUS_OK) {
			ldns_rdf_deep_free(o);
			seterr(c->err, c->errlen, "%s:%d: bad $INCLUDE origin", path, lineno);
			return -1;
		}
		c->origin = o;
	} else {
		c->origin = saved != NULL ? ldns_rdf_clone(saved) : NULL;
	}
	rc = load_file(c, full, depth + 1);
	if (rc == -1 && strncmp(c->err, full, strlen(full)) == 0 &&
	    strncmp(c->err + strlen(full), ":0:", 3) == 0) {
		char inner[512];

		snprintf(inner, sizeof(inner), "%s", c->err);
		seterr(c->err, c->errlen, "%s:%d: $INCLUDE %s: %s", path, lineno, full, inner);
	}
	ldns_rdf_deep_free(c->origin);
	c->origin = saved;
	return rc;
}

static bool
is_include_line(const char *p)
{
	return strncasecmp(p, "$INCLUDE", 8) == 0 && (p[8] == ' ' || p[8] == '\t');
}

static int
load_file(struct loadctx *c, const char *path, int depth)
{
	size_t len, seg = 0;
	char *text, *p, *keep;
	int line = 1, seg_line = 1;
	int rc = 0;

	if (depth > ZONE_MAX_INCLUDE_DEPTH) {
		seterr(c->err, c->errlen, "%s:0: $INCLUDE nested too deep", path);
		return -1;
	}
	text = read_text(path, &len);
	if (text == NULL) {
		seterr(c->err, c->errlen, "%s:0: cannot read: %s", path, strerror(errno));
		return -1;
	}
	keep = strdup(path);
	c->files = reallocarray(c->files, c->nfiles + 1, sizeof(char *));
	if (keep == NULL || c->files == NULL) {
		free(keep);
		free(text);
		seterr(c->err, c->errlen, "%s:0: out of memory", path);
		return -1;
	}
	c->files[c->nfiles++] = keep;
	for (p = text; rc == 0 && p < text + len; line++) {
		char *eol = strchr(p, '\n');
		char *next = eol != NULL ? eol + 1 : text + len;

		if (is_include_line(p)) {
			if (eol != NULL)
				*eol = '\0';
			rc = load_segment(c, keep, text + seg, (size_t)(p - text) - seg, seg_line);
			if (rc == 0)
				rc = load_include(c, keep, p + 8, line, depth);
			seg = (size_t)(next - text);
			seg_line = line + 1;
		}
		p = next;
	}
	if (rc == 0)
		rc = load_segment(c, keep, text + seg, len - seg, seg_line);
	free(text);
	return rc;
}

/* ---- the node table --------------------------------------------------- */

static struct znode *
node_find(const struct zone *z, const uint8_t *name, size_t len)
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
	struct znode *n = node_find(z, name, len);
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
	n = arena_alloc(z, sizeof(*n));
	copy = arena_alloc(z, len);
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

static struct zrrset *
node_set(const struct znode *n, uint16_t type)
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
	struct zrrset *s = node_set(n, type);

	if (s == NULL) {
		struct zrrset *v = reallocarray(n->sets, n->nsets + 1, sizeof(*v));

		if (v == NULL)
			return -1;
		n->sets = v;
		s = &n->sets[n->nsets++];
		s->type = type;
		s->flags = 0;
		s->rrs = ldns_rr_list_new();
		if (s->rrs == NULL)
			return -1;
	}
	return ldns_rr_list_push_rr(s->rrs, rr) ? 0 : -1;
}

/* ---- checking and indexing -------------------------------------------- */

static void
rr_err(char *err, size_t errlen, const struct zone *z, const struct rrsrc *src, size_t i,
    const char *what)
{
	if (src != NULL)
		seterr(err, errlen, "%s:%d: %s", src[i].file, src[i].line, what);
	else
		seterr(err, errlen, "zone %s: %s", z->name, what);
}

static int
index_rr(struct zone *z, size_t i, const struct rrsrc *src, char *err, size_t errlen)
{
	ldns_rr *rr = ldns_rr_list_rr(z->rrs, i);
	uint8_t name[WIRE_NAME_MAX];
	size_t len = wire_name_from_rdf(ldns_rr_owner(rr), name, sizeof(name));
	struct znode *n;

	if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
		rr_err(err, errlen, z, src, i, "only class IN is served");
		return -1;
	}
	if (len == 0 || !wire_name_is_sub(name, len, z->apex, z->apexlen)) {
		rr_err(err, errlen, z, src, i, "record outside the zone");
		return -1;
	}
	if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && len != z->apexlen) {
		rr_err(err, errlen, z, src, i, "SOA record not at the zone apex");
		return -1;
	}
	n = node_get(z, name, len);
	if (n == NULL || node_add_rr(n, rr) == -1) {
		rr_err(err, errlen, z, src, i, "out of memory");
		return -1;
	}
	return 0;
}

/* CNAME and other data (RFC 2181 10.1), DNSSEC types aside. */
static int
check_cname(
    const struct zone *z, const struct znode *n, char *err, size_t errlen, const struct rrsrc *src)
{
	const struct zrrset *c = node_set(n, LDNS_RR_TYPE_CNAME);
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
			seterr(err, errlen, "%s:%d: %s: CNAME and other data", src[i].file,
			    src[i].line, name != NULL ? name : "?");
			free(name);
			return -1;
		}
	seterr(
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
		a = len > z->apexlen ? node_find(z, p, len) : NULL;
		if (a != NULL && node_set(a, LDNS_RR_TYPE_NS) != NULL)
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
		} else if (n != z->apexnode && node_set(n, LDNS_RR_TYPE_NS) != NULL) {
			n->flags |= NODE_DELEG;
			n->cut = n;
		}
		if (n->flags & NODE_WILDCARD) {
			struct znode *parent = node_find(z, n->name + 2, n->len - 2);

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
		struct znode *n = node_find(z, z->rflags[i].name, z->rflags[i].len);
		struct zrrset *s = n != NULL ? node_set(n, z->rflags[i].type) : NULL;

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

/* ---- resolving and preparing answers ---------------------------------- */

struct item {
	const struct zrrset *set;
	const uint8_t *owner; /* NULL: the RRs' own owner */
	bool neg;             /* SOA with the negative TTL */
};

struct resp {
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
		const struct znode *n = len ? node_find(z, t, len) : NULL;
		const struct zrrset *a, *aaaa;

		if (n == NULL || ((n->flags & NODE_OCCLUDED) && !glue))
			continue;
		a = node_set(n, LDNS_RR_TYPE_A);
		aaaa = node_set(n, LDNS_RR_TYPE_AAAA);
		if (a != NULL && !has_set(r->an, r->nan, a) && !has_set(r->ar, r->nar, a))
			push(r->ar, &r->nar, a, NULL, false);
		if (aaaa != NULL && !has_set(r->an, r->nan, aaaa) &&
		    !has_set(r->ar6, r->nar6, aaaa))
			push(r->ar6, &r->nar6, aaaa, NULL, false);
	}
}

static void
resolve_referral(const struct zone *z, const struct znode *cut, struct resp *r)
{
	const struct zrrset *ns = node_set(cut, LDNS_RR_TYPE_NS);
	const struct zrrset *ds = node_set(cut, LDNS_RR_TYPE_DS);

	memset(r, 0, sizeof(*r));
	push(r->ns, &r->nns, ns, NULL, false);
	if (ds != NULL)
		push(r->ns, &r->nns, ds, NULL, false);
	add_additional(z, r, ns, true);
}

static void
negative(const struct zone *z, struct resp *r, uint16_t rcode)
{
	r->hflags |= rcode;
	push(r->ns, &r->nns, z->soa_set, NULL, true);
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
	n = node_find(z, t, len);
	if (n != NULL)
		return (n->flags & (NODE_OCCLUDED | NODE_DELEG)) ? NULL : n;
	while (n == NULL && len > z->apexlen) {
		len -= (size_t)p[0] + 1;
		p += p[0] + 1;
		n = node_find(z, p, len);
	}
	if (n == NULL || (n->flags & (NODE_OCCLUDED | NODE_DELEG)))
		return NULL;
	if (n->wild == NULL) {
		negative(z, r, RCODE_NXDOMAIN);
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
    struct resp *r)
{
	memset(r, 0, sizeof(*r));
	r->hflags = WIRE_AA;
	if (qtype == LDNS_RR_TYPE_ANY) {
		/* RFC 8482 section 4.1: one RRset is enough. */
		if (n->nsets > 0) {
			push(r->an, &r->nan, &n->sets[0], owner, false);
			add_additional(z, r, &n->sets[0], false);
		} else
			negative(z, r, 0);
		return;
	}
	for (int chain = 0; n != NULL; chain++) {
		const struct zrrset *s = qtype ? node_set(n, qtype) : NULL;

		if (s != NULL) {
			push(r->an, &r->nan, s, owner, false);
			add_additional(z, r, s, false);
			if (!(n == z->apexnode && qtype == LDNS_RR_TYPE_NS)) {
				push(r->ns, &r->nns, z->ns_set, NULL, false);
				add_additional(z, r, z->ns_set, false);
			}
			return;
		}
		s = qtype != LDNS_RR_TYPE_CNAME ? node_set(n, LDNS_RR_TYPE_CNAME) : NULL;
		if (s == NULL) {
			negative(z, r, 0);
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

static void
encode_items(
    struct enc *e, const struct item *v, size_t n, uint32_t neg_ttl, bool is_ar, bool rotate_last)
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
	}
}

/* Copy an encoded answer into the zone's arena. */
static const struct prep *
prep_store(struct zone *z, const struct enc *e, const struct resp *r, uint16_t an, uint16_t ns,
    size_t an_len, size_t an_ns_len, uint16_t flags)
{
	size_t len = e->w.pos - e->start;
	struct prep *p = arena_alloc(z, sizeof(*p));
	uint8_t *body = arena_alloc(z, len + 1);
	uint16_t *ar_end = arena_alloc(z, (e->nar_end + 1) * sizeof(uint16_t));

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
static const struct prep *
prepare(struct zone *z, const struct znode *qn, const struct resp *r, bool seeded, char *err,
    size_t errlen)
{
	static uint8_t buf[WIRE_MSG_MAX];
	static struct enc e;
	const struct prep *p;
	uint16_t an, flags = seeded ? PREP_F_SEEDED : 0;
	size_t an_len, an_ns_len;

	memset(&e, 0, sizeof(e));
	e.start = seeded ? WIRE_HDR_LEN + qn->len + 4u : WIRE_HDR_LEN;
	wenc_init(&e.w, buf, sizeof(buf), e.start, seeded);
	if (seeded) {
		memcpy(buf + WIRE_HDR_LEN, qn->name, qn->len);
		wenc_seed(&e.w, WIRE_HDR_LEN);
	}
	e.w.qname = qn != NULL ? qn->name : NULL;
	encode_items(&e, r->an, r->nan, z->neg_ttl, false, true);
	an = e.count;
	an_len = e.w.pos - e.start;
	encode_items(&e, r->ns, r->nns, z->neg_ttl, false, false);
	an_ns_len = e.w.pos - e.start;
	encode_items(&e, r->ar, r->nar, z->neg_ttl, true, false);
	encode_items(&e, r->ar6, r->nar6, z->neg_ttl, true, false);
	if (e.w.failed || e.w.pos - e.start > WIRE_MSG_MAX - 512) {
		seterr(err, errlen, "zone %s: an answer does not fit in a DNS message", z->name);
		return NULL;
	}
	if (r->nan > 0 && (r->an[r->nan - 1].set->flags & ZONE_RRSET_TRIM))
		flags |= PREP_F_TRIM;
	p = prep_store(
	    z, &e, r, an, (uint16_t)(e.count - an - e.nar_end), an_len, an_ns_len, flags);
	if (p == NULL)
		seterr(err, errlen, "zone %s: out of memory", z->name);
	return p;
}

static const struct prep *
prepare_for(struct zone *z, struct znode *n, uint16_t qtype, char *err, size_t errlen)
{
	struct resp r;
	bool seeded = !(n->flags & NODE_WILDCARD);

	resolve(z, n, NULL, qtype, &r);
	return prepare(z, n, &r, seeded, err, errlen);
}

static int
add_typed(struct zone *z, struct znode *n, uint16_t type, char *err, size_t errlen)
{
	const struct prep *p;

	for (size_t i = 0; i < n->ntyped; i++)
		if (n->typed[i].type == type)
			return 0;
	p = prepare_for(z, n, type, err, errlen);
	if (p == NULL)
		return -1;
	n->typed[n->ntyped].type = type;
	n->typed[n->ntyped].p = p;
	n->ntyped++;
	return 0;
}

static int
prepare_node(struct zone *z, struct znode *n, char *err, size_t errlen)
{
	bool cname = node_set(n, LDNS_RR_TYPE_CNAME) != NULL;
	size_t max = n->nsets + (cname ? z->ntypes : 0);

	if (n->flags & NODE_OCCLUDED) {
		n->referral = n->cut->referral;
		return 0;
	}
	n->typed = arena_alloc(z, (max + 1) * sizeof(*n->typed));
	if (n->typed == NULL)
		return -1;
	n->deflt = prepare_for(z, n, 0, err, errlen);
	if (n->deflt == NULL)
		return -1;
	if (n->flags & NODE_DELEG) {
		/* Only DS is answered from this side of the cut. */
		return node_set(n, LDNS_RR_TYPE_DS) != NULL
		    ? add_typed(z, n, LDNS_RR_TYPE_DS, err, errlen)
		    : 0;
	}
	n->any = prepare_for(z, n, LDNS_RR_TYPE_ANY, err, errlen);
	if (n->any == NULL)
		return -1;
	for (size_t i = 0; i < n->nsets; i++)
		if (add_typed(z, n, n->sets[i].type, err, errlen) == -1)
			return -1;
	for (size_t i = 0; cname && i < z->ntypes; i++)
		if (add_typed(z, n, z->types[i], err, errlen) == -1)
			return -1;
	return 0;
}

static int
prepare_all(struct zone *z, char *err, size_t errlen)
{
	struct resp r;

	memset(&r, 0, sizeof(r));
	r.hflags = WIRE_AA;
	negative(z, &r, RCODE_NXDOMAIN);
	z->nxdomain = prepare(z, NULL, &r, false, err, errlen);
	if (z->nxdomain == NULL)
		return -1;
	for (size_t i = 0; i < z->nnodes; i++) {
		struct znode *n = z->nodes[i];

		if (!(n->flags & NODE_DELEG))
			continue;
		resolve_referral(z, n, &r);
		n->referral = prepare(z, NULL, &r, false, err, errlen);
		if (n->referral == NULL)
			return -1;
	}
	for (size_t i = 0; i < z->nnodes; i++)
		if (prepare_node(z, z->nodes[i], err, errlen) == -1)
			return -1;
	return 0;
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
	if (z->name == NULL || z->file == NULL || z->table == NULL || z->types == NULL ||
	    ldns_str2rdf_dname(&apex, name) != LDNS_STATUS_OK ||
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
			rr_err(err, errlen, z, src, i, "a second SOA record");
			return -1;
		}
		at = i;
	}
	if (at == n) {
		seterr(err, errlen, "%s:0: zone %s has no SOA record",
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
	z->apexnode = node_find(z, z->apex, z->apexlen);
	z->soa_set = node_set(z->apexnode, LDNS_RR_TYPE_SOA);
	z->ns_set = node_set(z->apexnode, LDNS_RR_TYPE_NS);
	if (z->ns_set == NULL) {
		seterr(err, errlen, "%s:0: zone %s has no NS records at the apex",
		    z->file[0] ? z->file : "zone", z->name);
		return -1;
	}
	soa = ldns_rr_list_rr(z->soa_set->rrs, 0);
	if (ldns_rr_rd_count(soa) != 7) {
		rr_err(err, errlen, z, src, 0, "malformed SOA record");
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

/* Takes ownership of rrs (freed deeply with the zone, or here on error). */
static struct zone *
zone_build(const char *name, const char *file, ldns_rr_list *rrs, struct rrsrc *src,
    const struct rflag *rflags, size_t nrflags, char *err, size_t errlen)
{
	struct zone *z = zone_alloc(name, file, ldns_rr_list_rr_count(rrs));

	if (z == NULL) {
		ldns_rr_list_deep_free(rrs);
		seterr(err, errlen, "zone %s: out of memory or bad name", name);
		return NULL;
	}
	z->rrs = rrs;
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
	if (prepare_all(z, err, errlen) == -1)
		goto fail;
	return z;
fail:
	if (err[0] == '\0')
		seterr(err, errlen, "zone %s: out of memory", name);
	zone_free(z);
	return NULL;
}

struct zone *
zone_load(const char *origin, const char *file, char *err, size_t errlen)
{
	struct loadctx c;
	struct zone *z = NULL;

	memset(&c, 0, sizeof(c));
	err[0] = '\0';
	c.err = err;
	c.errlen = errlen;
	c.ttl = 3600;
	c.rrs = ldns_rr_list_new();
	if (c.rrs == NULL || ldns_str2rdf_dname(&c.origin, origin) != LDNS_STATUS_OK) {
		seterr(err, errlen, "%s:0: bad zone name '%s'", file, origin);
		goto done;
	}
	if (load_file(&c, file, 0) == -1)
		goto done;
	z = zone_build(origin, file, c.rrs, c.src, NULL, 0, err, errlen);
	c.rrs = NULL;
done:
	ldns_rr_list_deep_free(c.rrs);
	ldns_rdf_deep_free(c.origin);
	ldns_rdf_deep_free(c.prev);
	for (size_t i = 0; i < c.nfiles; i++)
		free(c.files[i]);
	free(c.files);
	free(c.src);
	return z;
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
    uint32_t serial)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(from); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(from, i);
		ldns_rr *c;

		if (change_matches(ch, n, rr))
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
		if (ch[i].type == LDNS_RR_TYPE_SOA) {
			ldns_rr_list_free(rrs);
			seterr(err, errlen, "zone %s: the SOA cannot be replaced", old->name);
			return NULL;
		}
	rf = merge_rflags(old, ch, n, &nrf);
	if (rrs == NULL || rf == NULL || copy_rrs(rrs, old->rrs, ch, n, serial) == -1) {
		ldns_rr_list_deep_free(rrs);
		free(rf);
		seterr(err, errlen, "zone %s: out of memory", old->name);
		return NULL;
	}
	z = zone_build(old->name, old->file, rrs, NULL, rf, nrf, err, errlen);
	free(rf);
	return z;
}

void
zone_free(struct zone *z)
{
	if (z == NULL)
		return;
	for (size_t i = 0; i < z->nnodes; i++) {
		for (size_t j = 0; j < z->nodes[i]->nsets; j++)
			ldns_rr_list_free(z->nodes[i]->sets[j].rrs);
		free(z->nodes[i]->sets);
	}
	while (z->arena != NULL) {
		struct arena_chunk *next = z->arena->next;

		free(z->arena);
		z->arena = next;
	}
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
	const struct znode *n = node_find(z, qname, qlen);

	if (n != NULL) {
		if (n->referral != NULL && !((n->flags & NODE_DELEG) && qtype == LDNS_RR_TYPE_DS))
			return n->referral;
		return node_answer(n, qtype);
	}
	/* Not there: find the closest encloser (RFC 4592 section 3.3.1). */
	while (n == NULL && qlen > z->apexlen) {
		qlen -= (size_t)qname[0] + 1;
		qname += qname[0] + 1;
		n = node_find(z, qname, qlen);
	}
	if (n == NULL)
		return z->nxdomain;
	if (n->referral != NULL)
		return n->referral;
	if (n->wild != NULL)
		return node_answer(n->wild, qtype);
	return z->nxdomain;
}
