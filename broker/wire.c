/* wire.c - DNS names and the answer encoder used when answers are prepared. */
#include "broker/wire.h"

#include <string.h>

static inline uint8_t
lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

size_t
wire_name_len(const uint8_t *p)
{
	size_t n = 0;

	while (p[n] != 0)
		n += (size_t)p[n] + 1;
	return n + 1;
}

bool
wire_name_equal(const uint8_t *a, const uint8_t *b)
{
	size_t la = wire_name_len(a);

	if (la != wire_name_len(b))
		return false;
	for (size_t i = 0; i < la; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

bool
wire_name_is_sub(const uint8_t *name, size_t len, const uint8_t *zone, size_t zlen)
{
	size_t off = 0;

	if (len < zlen)
		return false;
	/* Walk label boundaries so "xexample." never matches "example.". */
	while (len - off > zlen)
		off += (size_t)name[off] + 1;
	return len - off == zlen && memcmp(name + off, zone, zlen) == 0;
}

unsigned
wire_name_labels(const uint8_t *p)
{
	unsigned n = 0;

	for (; *p != 0; p += *p + 1)
		n++;
	return n;
}

uint32_t
wire_name_hash(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

size_t
wire_name_from_rdf(const ldns_rdf *rdf, uint8_t *out, size_t outlen)
{
	size_t len = ldns_rdf_size(rdf);
	const uint8_t *d = ldns_rdf_data(rdf);

	if (ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME || len == 0 || len > outlen ||
	    len > WIRE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		out[i] = lower(d[i]);
	/* ldns keeps names without a root label in some paths: make sure. */
	if (wire_name_len(out) != len)
		return 0;
	return len;
}

void
wenc_init(struct wenc *w, uint8_t *buf, size_t cap, size_t pos, bool compress)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	w->pos = pos;
	w->compress = compress;
}

static void
dict_add(struct wenc *w, size_t off)
{
	if (w->ndict < WIRE_DICT_MAX && off < 0x3fff)
		w->dict[w->ndict++] = (uint16_t)off;
}

void
wenc_seed(struct wenc *w, size_t off)
{
	const uint8_t *p = w->buf + off;

	for (; *p != 0; p += *p + 1)
		dict_add(w, (size_t)(p - w->buf));
}

/* Does the (possibly compressed) name written at off equal the plain name s? */
static bool
buf_name_equal(const struct wenc *w, size_t off, const uint8_t *s)
{
	for (unsigned hops = 0; hops < 64; hops++) {
		uint8_t c = w->buf[off];

		if ((c & 0xc0) == 0xc0) {
			off = (size_t)((c & 0x3f) << 8 | w->buf[off + 1]);
			continue;
		}
		if (c != *s)
			return false;
		if (c == 0)
			return true;
		for (unsigned i = 1; i <= c; i++)
			if (lower(w->buf[off + i]) != lower(s[i]))
				return false;
		off += (size_t)c + 1;
		s += c + 1;
	}
	return false;
}

static long
dict_find(const struct wenc *w, const uint8_t *s)
{
	for (size_t i = 0; i < w->ndict; i++)
		if (buf_name_equal(w, w->dict[i], s))
			return w->dict[i];
	return -1;
}

static void
put(struct wenc *w, const void *p, size_t n)
{
	if (w->failed || w->cap - w->pos < n) {
		w->failed = true;
		return;
	}
	memcpy(w->buf + w->pos, p, n);
	w->pos += n;
}

static void
put16(struct wenc *w, uint16_t v)
{
	uint8_t b[2];

	wire_put16(b, v);
	put(w, b, 2);
}

void
wenc_name(struct wenc *w, const uint8_t *name, bool compressible)
{
	const uint8_t *s = name;

	while (*s != 0) {
		long at = (w->compress && compressible) ? dict_find(w, s) : -1;

		if (at >= 0) {
			put16(w, (uint16_t)(0xc000 | at));
			return;
		}
		if (w->compress && !w->failed)
			dict_add(w, w->pos);
		put(w, s, (size_t)*s + 1);
		s += *s + 1;
	}
	put(w, "", 1);
}

/* RFC 3597 section 4: only the RFC 1035 types have compressible names. */
static bool
type_compresses(ldns_rr_type t)
{
	switch (t) {
	case LDNS_RR_TYPE_NS:
	case LDNS_RR_TYPE_MD:
	case LDNS_RR_TYPE_MF:
	case LDNS_RR_TYPE_CNAME:
	case LDNS_RR_TYPE_SOA:
	case LDNS_RR_TYPE_MB:
	case LDNS_RR_TYPE_MG:
	case LDNS_RR_TYPE_MR:
	case LDNS_RR_TYPE_PTR:
	case LDNS_RR_TYPE_MINFO:
	case LDNS_RR_TYPE_MX: return true;
	default: return false;
	}
}

static void
wenc_rdata(struct wenc *w, const ldns_rr *rr)
{
	bool comp = type_compresses(ldns_rr_get_type(rr));

	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *f = ldns_rr_rdf(rr, i);

		if (ldns_rdf_get_type(f) == LDNS_RDF_TYPE_DNAME)
			wenc_name(w, ldns_rdf_data(f), comp);
		else
			put(w, ldns_rdf_data(f), ldns_rdf_size(f));
	}
}

void
wenc_rr(struct wenc *w, const ldns_rr *rr, const uint8_t *owner, bool ttl_override, uint32_t ttl)
{
	const uint8_t *own = owner != NULL ? owner : ldns_rdf_data(ldns_rr_owner(rr));
	uint8_t fixed[8];
	size_t rdlen_at;

	if (w->qname != NULL && wire_name_equal(own, w->qname))
		put16(w, 0xc000 | WIRE_HDR_LEN);
	else
		wenc_name(w, own, true);
	wire_put16(fixed, (uint16_t)ldns_rr_get_type(rr));
	wire_put16(fixed + 2, (uint16_t)ldns_rr_get_class(rr));
	wire_put32(fixed + 4, ttl_override ? ttl : ldns_rr_ttl(rr));
	put(w, fixed, sizeof(fixed));
	rdlen_at = w->pos;
	put16(w, 0);
	wenc_rdata(w, rr);
	if (!w->failed)
		wire_put16(w->buf + rdlen_at, (uint16_t)(w->pos - rdlen_at - 2));
}
