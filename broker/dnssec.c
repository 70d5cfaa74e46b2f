/* dnssec.c - read a zone's ldns key files and sign RRsets with them. */
#include "broker/dnssec.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldns/ldns.h>

struct dnssec_keys {
	_Atomic unsigned refs;
	struct dnssec_params p;
	ldns_key_list *ksk; /* sign DNSKEY, CDS, CDNSKEY */
	ldns_key_list *zsk; /* sign the rest; the KSKs when there is no ZSK */
	ldns_rr_list *dnskeys;
	bool ksk_flag[DNSSEC_MAX_KEYS]; /* per dnskeys[i] */
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "K<zone>.+NNN+TTTTT.private" for this zone (case-insensitive), else false. */
static bool
is_key_file(const char *name, const char *zone)
{
	size_t zl = strlen(zone), nl = strlen(name);
	const char *p = name + 1 + zl;

	if (name[0] != 'K' || nl < zl + 2 || strncasecmp(name + 1, zone, zl) != 0)
		return false;
	if (strcmp(p, ".+") == 0 || strncmp(p, ".+", 2) != 0)
		return false;
	p += 2;
	if (strlen(p) != 3 + 1 + 5 + 8 || p[3] != '+' || strcmp(p + 9, ".private") != 0)
		return false;
	for (int i = 0; i < 9; i++)
		if (i != 3 && (p[i] < '0' || p[i] > '9'))
			return false;
	return true;
}

/* The DNSKEY of path (a .key file); NULL with err set. */
static ldns_rr *
read_dnskey(const char *path, const char *zone, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");
	ldns_rr *rr = NULL;
	ldns_rdf *owner = NULL;
	ldns_status s;

	if (fp == NULL) {
		seterr(err, errlen, "dnssec: zone %s: %s: %s", zone, path, strerror(errno));
		return NULL;
	}
	do
		s = ldns_rr_new_frm_fp(&rr, fp, NULL, NULL, NULL);
	while (s == LDNS_STATUS_SYNTAX_EMPTY);
	fclose(fp);
	if (s != LDNS_STATUS_OK || ldns_rr_get_type(rr) != LDNS_RR_TYPE_DNSKEY ||
	    ldns_rr_rd_count(rr) != 4) {
		seterr(err, errlen, "dnssec: zone %s: %s: not a DNSKEY record", zone, path);
		ldns_rr_free(rr);
		return NULL;
	}
	if (ldns_str2rdf_dname(&owner, zone) != LDNS_STATUS_OK ||
	    ldns_dname_compare(owner, ldns_rr_owner(rr)) != 0) {
		seterr(
		    err, errlen, "dnssec: zone %s: %s: the key is not for this zone", zone, path);
		ldns_rdf_deep_free(owner);
		ldns_rr_free(rr);
		return NULL;
	}
	ldns_rdf_deep_free(owner);
	return rr;
}

/* The private key of path (a .private file), matched against its DNSKEY. */
static ldns_key *
read_private(const char *path, const char *zone, const ldns_rr *dnskey, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");
	ldns_key *k = NULL;
	ldns_rr *derived;
	ldns_status s;
	uint8_t alg = ldns_rdf2native_int8(ldns_rr_rdf(dnskey, 2));

	if (fp == NULL) {
		seterr(err, errlen, "dnssec: zone %s: %s: %s", zone, path, strerror(errno));
		return NULL;
	}
	s = ldns_key_new_frm_fp(&k, fp);
	fclose(fp);
	if (s != LDNS_STATUS_OK) {
		seterr(
		    err, errlen, "dnssec: zone %s: %s: %s", zone, path, ldns_get_errorstr_by_id(s));
		return NULL;
	}
	if (alg != LDNS_ECDSAP256SHA256 && alg != LDNS_ED25519) {
		seterr(err, errlen,
		    "dnssec: zone %s: %s: algorithm %u is not supported (13 ECDSAP256SHA256 or 15 "
		    "ED25519)",
		    zone, path, alg);
		ldns_key_deep_free(k);
		return NULL;
	}
	ldns_key_set_flags(k, ldns_rdf2native_int16(ldns_rr_rdf(dnskey, 0)));
	ldns_key_set_pubkey_owner(k, ldns_rdf_clone(ldns_rr_owner(dnskey)));
	ldns_key_set_keytag(k, ldns_calc_keytag(dnskey));
	derived = ldns_key2rr(k);
	if (derived == NULL || (uint8_t)ldns_key_algorithm(k) != alg ||
	    ldns_calc_keytag(derived) != ldns_calc_keytag(dnskey)) {
		seterr(
		    err, errlen, "dnssec: zone %s: %s: does not match its .key file", zone, path);
		ldns_rr_free(derived);
		ldns_key_deep_free(k);
		return NULL;
	}
	ldns_rr_free(derived);
	return k;
}

/* Read one key pair named by its .private file into k. */
static int
load_pair(struct dnssec_keys *k, const char *zone, const char *dir, const char *name, char *err,
    size_t errlen)
{
	char priv[4096], pub[4096];
	ldns_rr *dnskey;
	ldns_key *key;
	bool ksk;

	snprintf(priv, sizeof(priv), "%s/%s", dir, name);
	snprintf(pub, sizeof(pub), "%s/%.*s.key", dir, (int)(strlen(name) - 8), name);
	if (ldns_rr_list_rr_count(k->dnskeys) == DNSSEC_MAX_KEYS) {
		seterr(err, errlen, "dnssec: zone %s: %s: more than %d keys", zone, dir,
		    DNSSEC_MAX_KEYS);
		return -1;
	}
	if ((dnskey = read_dnskey(pub, zone, err, errlen)) == NULL)
		return -1;
	if ((key = read_private(priv, zone, dnskey, err, errlen)) == NULL) {
		ldns_rr_free(dnskey);
		return -1;
	}
	ksk = (ldns_key_flags(key) & LDNS_KEY_SEP_KEY) != 0;
	k->ksk_flag[ldns_rr_list_rr_count(k->dnskeys)] = ksk;
	if (!ldns_rr_list_push_rr(k->dnskeys, dnskey) ||
	    !ldns_key_list_push_key(ksk ? k->ksk : k->zsk, key)) {
		seterr(err, errlen, "dnssec: zone %s: out of memory", zone);
		ldns_key_deep_free(key);
		return -1;
	}
	return 0;
}

static int
scan_dir(struct dnssec_keys *k, const char *zone, const char *dir, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (d == NULL) {
		seterr(err, errlen, "dnssec: zone %s: key-directory %s: %s", zone, dir,
		    strerror(errno));
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL)
		if (is_key_file(e->d_name, zone))
			rc = load_pair(k, zone, dir, e->d_name, err, errlen);
	closedir(d);
	return rc;
}

/* With no ZSK, the KSKs sign everything: the same ldns_key objects, not owned twice. */
static int
use_csk(struct dnssec_keys *k)
{
	for (size_t i = 0; i < ldns_key_list_key_count(k->ksk); i++)
		if (!ldns_key_list_push_key(k->zsk, ldns_key_list_key(k->ksk, i)))
			return -1;
	return 0;
}

struct dnssec_keys *
dnssec_keys_load(
    const char *zone, const char *dir, const struct dnssec_params *p, char *err, size_t errlen)
{
	struct dnssec_keys *k = calloc(1, sizeof(*k));

	if (k == NULL || (k->ksk = ldns_key_list_new()) == NULL ||
	    (k->zsk = ldns_key_list_new()) == NULL || (k->dnskeys = ldns_rr_list_new()) == NULL) {
		seterr(err, errlen, "dnssec: zone %s: out of memory", zone);
		goto fail;
	}
	atomic_init(&k->refs, 1);
	k->p = *p;
	if (k->p.refresh == 0 || k->p.refresh >= k->p.validity) {
		seterr(err, errlen,
		    "dnssec: zone %s: signature-refresh must be shorter than signature-validity",
		    zone);
		goto fail;
	}
	if (scan_dir(k, zone, dir, err, errlen) == -1)
		goto fail;
	if (ldns_key_list_key_count(k->ksk) == 0) {
		seterr(err, errlen,
		    "dnssec: zone %s: %s: no KSK (DNSKEY flags 257) for the zone; make one with: "
		    "ldns-keygen -a ECDSAP256SHA256 -k %s",
		    zone, dir, zone);
		goto fail;
	}
	if (ldns_key_list_key_count(k->zsk) == 0 && use_csk(k) == -1) {
		seterr(err, errlen, "dnssec: zone %s: out of memory", zone);
		goto fail;
	}
	return k;
fail:
	dnssec_keys_free(k);
	return NULL;
}

struct dnssec_keys *
dnssec_keys_ref(struct dnssec_keys *k)
{
	atomic_fetch_add(&k->refs, 1);
	return k;
}

/* Free the key list, not the keys the KSK list also holds (CSK). */
static void
free_zsk(struct dnssec_keys *k)
{
	for (size_t i = 0; i < ldns_key_list_key_count(k->zsk); i++) {
		ldns_key *z = ldns_key_list_key(k->zsk, i);
		bool shared = false;

		for (size_t j = 0; j < ldns_key_list_key_count(k->ksk); j++)
			shared |= ldns_key_list_key(k->ksk, j) == z;
		if (!shared)
			ldns_key_deep_free(z);
	}
	ldns_key_list_set_key_count(k->zsk, 0);
	ldns_key_list_free(k->zsk);
}

void
dnssec_keys_free(struct dnssec_keys *k)
{
	if (k == NULL || atomic_fetch_sub(&k->refs, 1) > 1)
		return;
	if (k->zsk != NULL)
		free_zsk(k);
	if (k->ksk != NULL)
		ldns_key_list_free(k->ksk); /* with its keys */
	ldns_rr_list_deep_free(k->dnskeys);
	free(k);
}

size_t
dnssec_keys_count(const struct dnssec_keys *k)
{
	return ldns_rr_list_rr_count(k->dnskeys);
}

void
dnssec_keys_describe(const struct dnssec_keys *k, char *buf, size_t len)
{
	size_t n = ldns_rr_list_rr_count(k->dnskeys), used = 0;
	bool csk = n == ldns_key_list_key_count(k->ksk); /* no ZSK: the KSKs sign all */

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(k->dnskeys, i);
		const char *role = !k->ksk_flag[i] ? "ZSK" : csk ? "CSK" : "KSK";
		int w = snprintf(buf + used, len - used, "%s%u (alg %u, %s)", i ? ", " : "",
		    ldns_calc_keytag(rr), ldns_rdf2native_int8(ldns_rr_rdf(rr, 2)), role);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

uint64_t
dnssec_period(const struct dnssec_keys *k, time_t now)
{
	return now > 0 ? (uint64_t)now / k->p.refresh : 0;
}

uint64_t
dnssec_expiration(const struct dnssec_keys *k, uint64_t period)
{
	return period * k->p.refresh + k->p.validity;
}

static int
push_clone(
    ldns_rr_list *out, const ldns_rr *rr, const ldns_rdf *apex, uint32_t ttl, ldns_rr_type type)
{
	ldns_rr *c = ldns_rr_clone(rr);

	if (c == NULL)
		return -1;
	ldns_rdf_deep_free(ldns_rr_owner(c));
	ldns_rr_set_owner(c, ldns_rdf_clone(apex));
	ldns_rr_set_ttl(c, ttl);
	ldns_rr_set_class(c, LDNS_RR_CLASS_IN);
	ldns_rr_set_type(c, type);
	if (!ldns_rr_list_push_rr(out, c)) {
		ldns_rr_free(c);
		return -1;
	}
	return 0;
}

int
dnssec_apex_rrs(const struct dnssec_keys *k, const ldns_rdf *apex, uint32_t ttl, ldns_rr_list *out)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(k->dnskeys); i++) {
		const ldns_rr *key = ldns_rr_list_rr(k->dnskeys, i);
		ldns_rr *ds;
		int rc;

		if (push_clone(out, key, apex, ttl, LDNS_RR_TYPE_DNSKEY) == -1)
			return -1;
		if (!k->ksk_flag[i])
			continue;
		if (push_clone(out, key, apex, ttl, LDNS_RR_TYPE_CDNSKEY) == -1)
			return -1;
		if ((ds = ldns_key_rr2ds(key, LDNS_SHA256)) == NULL)
			return -1;
		rc = push_clone(out, ds, apex, ttl, LDNS_RR_TYPE_CDS);
		ldns_rr_free(ds);
		if (rc == -1)
			return -1;
	}
	return 0;
}

static bool
is_key_type(ldns_rr_type t)
{
	return t == LDNS_RR_TYPE_DNSKEY || t == LDNS_RR_TYPE_CDS || t == LDNS_RR_TYPE_CDNSKEY;
}

int
dnssec_sign_rrset(
    struct dnssec_keys *k, const ldns_rr_list *rrset, uint64_t period, ldns_rr_list *out)
{
	ldns_key_list *keys =
	    is_key_type(ldns_rr_get_type(ldns_rr_list_rr(rrset, 0))) ? k->ksk : k->zsk;
	uint64_t start = period * k->p.refresh;
	ldns_rr_list *sigs;
	int rc = 0;

	for (size_t i = 0; i < ldns_key_list_key_count(keys); i++) {
		ldns_key *key = ldns_key_list_key(keys, i);

		ldns_key_set_inception(key, (uint32_t)(start - k->p.inception_offset));
		ldns_key_set_expiration(key, (uint32_t)(start + k->p.validity));
	}
	/* ldns_sign_public clones and sorts the set; it does not change it. */
	sigs = ldns_sign_public((ldns_rr_list *)rrset, keys);
	if (sigs == NULL)
		return -1;
	for (size_t i = 0; i < ldns_rr_list_rr_count(sigs); i++)
		if (!ldns_rr_list_push_rr(out, ldns_rr_list_rr(sigs, i))) {
			ldns_rr_free(ldns_rr_list_rr(sigs, i));
			rc = -1;
		}
	ldns_rr_list_free(sigs);
	return rc;
}
