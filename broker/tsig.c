/* tsig.c - TSIG (RFC 8945) checks and signatures for transfers and NOTIFY. */
#include "broker/tsig.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "broker/updater.h"
#include "common/config.h"

#define TSIG_TIME_LEN 6 /* Time Signed: 48 bits */

/* The TSIG RDATA fields, in order (RFC 8945 4.2). */
enum { RD_ALG, RD_TIME, RD_FUDGE, RD_MAC, RD_ID, RD_ERROR, RD_OTHER, RD_COUNT };

const char *
tsig_status_str(enum tsig_status st)
{
	switch (st) {
	case TSIG_UNSIGNED: return "unsigned";
	case TSIG_OK: return "ok";
	case TSIG_UNKNOWN: return "unknown key";
	case TSIG_BAD_MAC: return "bad MAC";
	case TSIG_BAD_TIME: return "time outside the fudge";
	}
	return "?";
}

bool
tsig_key_usable(const struct config_key *key)
{
	return key->algorithm != CONFIG_HMAC_SHA224 && key->algorithm != CONFIG_HMAC_SHA384;
}

/* True when dname rdf `d` is the name `text` (no trailing dot), any case. */
static bool
dname_is(const ldns_rdf *d, const char *text)
{
	char *s = d != NULL ? ldns_rdf2str(d) : NULL;
	size_t n;
	bool same;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n > 1 && s[n - 1] == '.')
		s[--n] = '\0';
	same = strcasecmp(s, text) == 0;
	free(s);
	return same;
}

/* True when TSIG record t names `key` and the key's algorithm. */
static bool
names_key(const ldns_rr *t, const struct config_key *key)
{
	char alg[64];
	size_t n;

	snprintf(alg, sizeof(alg), "%s", updater_tsig_algorithm(key));
	n = strlen(alg);
	if (n > 0 && alg[n - 1] == '.')
		alg[n - 1] = '\0';
	return dname_is(ldns_rr_owner(t), key->name) && dname_is(ldns_rr_rdf(t, RD_ALG), alg);
}

static uint64_t
time_signed(const ldns_rr *t)
{
	const ldns_rdf *r = ldns_rr_rdf(t, RD_TIME);
	const uint8_t *b = ldns_rdf_data(r);
	uint64_t v = 0;

	if (ldns_rdf_size(r) != TSIG_TIME_LEN)
		return 0;
	for (int i = 0; i < TSIG_TIME_LEN; i++)
		v = (v << 8) | b[i];
	return v;
}

/* Time Signed within Fudge of now (RFC 8945 5.2.3). */
static bool
time_ok(const ldns_rr *t, uint64_t now)
{
	uint64_t ts = time_signed(t);
	uint64_t fudge = ldns_rdf2native_int16(ldns_rr_rdf(t, RD_FUDGE));

	return ts + fudge >= now && now + fudge >= ts;
}

enum tsig_status
tsig_check(ldns_pkt *p, const uint8_t *wire, size_t len, const struct config_key *const *keys,
    size_t nkeys, uint64_t now, const struct config_key **key)
{
	const ldns_rr *t = ldns_pkt_tsig(p);
	const struct config_key *k = NULL;

	*key = NULL;
	if (t == NULL)
		return TSIG_UNSIGNED;
	if (ldns_rr_rd_count(t) != RD_COUNT)
		return TSIG_BAD_MAC;
	for (size_t i = 0; i < nkeys && k == NULL; i++)
		if (names_key(t, keys[i]))
			k = keys[i];
	/* An algorithm ldns cannot compute is a key we do not have (5.2.1);
	 * it must not reach ldns_pkt_tsig_verify, which then loses the record. */
	if (k == NULL || !tsig_key_usable(k))
		return TSIG_UNKNOWN;
	if (!ldns_pkt_tsig_verify(p, wire, len, k->name, k->secret_b64, NULL))
		return TSIG_BAD_MAC;
	*key = k;
	return time_ok(t, now) ? TSIG_OK : TSIG_BAD_TIME;
}

int
tsig_stream_init(struct tsig_stream *ts, const struct config_key *key, const ldns_pkt *req)
{
	const ldns_rr *t = ldns_pkt_tsig(req);

	ts->key = key;
	ts->mac = NULL;
	ts->first = true;
	if (key == NULL)
		return 0;
	if (t == NULL || ldns_rr_rd_count(t) != RD_COUNT)
		return -1;
	ts->mac = ldns_rdf_clone(ldns_rr_rdf(t, RD_MAC));
	return ts->mac != NULL ? 0 : -1;
}

int
tsig_stream_sign(struct tsig_stream *ts, ldns_pkt *p)
{
	const ldns_rr *t;

	if (ts->key == NULL)
		return 0;
	if (ldns_pkt_tsig_sign_next(p, ts->key->name, ts->key->secret_b64, TSIG_FUDGE,
	        updater_tsig_algorithm(ts->key), ts->mac, ts->first ? 0 : 1) != LDNS_STATUS_OK ||
	    (t = ldns_pkt_tsig(p)) == NULL)
		return -1;
	ldns_rdf_deep_free(ts->mac);
	ts->mac = ldns_rdf_clone(ldns_rr_rdf(t, RD_MAC));
	ts->first = false;
	return ts->mac != NULL ? 0 : -1;
}

void
tsig_stream_clear(struct tsig_stream *ts)
{
	ldns_rdf_deep_free(ts->mac);
	ts->mac = NULL;
	ts->key = NULL;
}

static ldns_rdf *
time_rdf(uint64_t t)
{
	uint8_t b[TSIG_TIME_LEN];

	for (int i = TSIG_TIME_LEN - 1; i >= 0; i--, t >>= 8)
		b[i] = (uint8_t)t;
	return ldns_rdf_new_frm_data(LDNS_RDF_TYPE_TSIGTIME, sizeof(b), b);
}

static const EVP_MD *
hmac_md(const struct config_key *key)
{
	switch (key->algorithm) {
	case CONFIG_HMAC_MD5: return EVP_md5();
	case CONFIG_HMAC_SHA1: return EVP_sha1();
	case CONFIG_HMAC_SHA224: return EVP_sha224();
	case CONFIG_HMAC_SHA384: return EVP_sha384();
	case CONFIG_HMAC_SHA512: return EVP_sha512();
	case CONFIG_HMAC_SHA256: break;
	}
	return EVP_sha256();
}

/*
 * The MAC of a signed error answer (BADTIME), which ldns cannot make (it
 * signs with Error 0 and no Other Data): request MAC, the message without
 * its TSIG, then every TSIG variable (RFC 8945 4.3.3), keyed with the
 * decoded secret.
 */
static ldns_rdf *
error_mac(
    const ldns_pkt *p, const ldns_rr *t, const ldns_rdf *req_mac, const struct config_key *key)
{
	ldns_buffer *b = ldns_buffer_new(LDNS_MAX_PACKETLEN);
	uint8_t *wire = NULL, mac[2 + EVP_MAX_MD_SIZE];
	unsigned maclen = EVP_MAX_MD_SIZE;
	ldns_rdf *owner = ldns_rdf_clone(ldns_rr_owner(t)),
	         *alg = ldns_rdf_clone(ldns_rr_rdf(t, 0));
	ldns_rdf *out = NULL;
	size_t n = 0;

	if (b == NULL || owner == NULL || alg == NULL ||
	    ldns_pkt2wire(&wire, p, &n) != LDNS_STATUS_OK)
		goto done;
	ldns_dname2canonical(owner);
	ldns_dname2canonical(alg);
	ldns_rdf2buffer_wire(b, req_mac);
	ldns_buffer_write(b, wire, n);
	ldns_rdf2buffer_wire(b, owner);
	ldns_buffer_write_u16(b, LDNS_RR_CLASS_ANY);
	ldns_buffer_write_u32(b, 0);
	ldns_rdf2buffer_wire(b, alg);
	for (int i = RD_TIME; i < RD_COUNT; i++)
		if (i != RD_MAC && i != RD_ID)
			ldns_rdf2buffer_wire(b, ldns_rr_rdf(t, (size_t)i));
	if (ldns_buffer_status_ok(b) &&
	    HMAC(hmac_md(key), key->secret, (int)key->secret_len, ldns_buffer_begin(b),
	        ldns_buffer_position(b), mac + 2, &maclen) != NULL) {
		mac[0] = (uint8_t)(maclen >> 8);
		mac[1] = (uint8_t)maclen;
		out = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA, maclen + 2, mac);
	}
done:
	free(wire);
	ldns_rdf_deep_free(owner);
	ldns_rdf_deep_free(alg);
	ldns_buffer_free(b);
	return out;
}

int
tsig_error_add(ldns_pkt *p, const ldns_pkt *req, enum tsig_error err, const struct config_key *key,
    uint64_t now)
{
	const ldns_rr *rt = ldns_pkt_tsig(req);
	bool badtime = err == TSIG_BADTIME && key != NULL;
	ldns_rr *t = ldns_rr_new();
	uint8_t other[TSIG_TIME_LEN];
	ldns_rdf *mac;

	if (t == NULL || rt == NULL || ldns_rr_rd_count(rt) != RD_COUNT) {
		ldns_rr_free(t);
		return -1;
	}
	for (int i = TSIG_TIME_LEN - 1, j = 0; i >= 0; i--, j++)
		other[i] = (uint8_t)(now >> (8 * j));
	ldns_rr_set_owner(t, ldns_rdf_clone(ldns_rr_owner(rt)));
	ldns_rr_set_type(t, LDNS_RR_TYPE_TSIG);
	ldns_rr_set_class(t, LDNS_RR_CLASS_ANY);
	ldns_rr_set_ttl(t, 0);
	ldns_rr_push_rdf(t, ldns_rdf_clone(ldns_rr_rdf(rt, RD_ALG)));
	ldns_rr_push_rdf(t, badtime ? ldns_rdf_clone(ldns_rr_rdf(rt, RD_TIME)) : time_rdf(now));
	ldns_rr_push_rdf(t, ldns_rdf_clone(ldns_rr_rdf(rt, RD_FUDGE)));
	ldns_rr_push_rdf(t, ldns_native2rdf_int16_data(0, NULL));
	ldns_rr_push_rdf(t, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, ldns_pkt_id(p)));
	ldns_rr_push_rdf(t, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, (uint16_t)err));
	ldns_rr_push_rdf(t, ldns_native2rdf_int16_data(badtime ? sizeof(other) : 0, other));
	for (size_t i = 0; i < RD_COUNT; i++)
		if (ldns_rr_rdf(t, i) == NULL) {
			ldns_rr_free(t);
			return -1;
		}
	if (badtime) {
		if ((mac = error_mac(p, t, ldns_rr_rdf(rt, RD_MAC), key)) == NULL) {
			ldns_rr_free(t);
			return -1;
		}
		ldns_rdf_deep_free(ldns_rr_set_rdf(t, mac, RD_MAC));
	}
	ldns_pkt_set_tsig(p, t);
	return 0;
}

bool
tsig_response_ok(ldns_pkt *p, const uint8_t *wire, size_t len, const struct config_key *key,
    const ldns_rdf *req_mac, uint64_t now)
{
	const ldns_rr *t = ldns_pkt_tsig(p);

	if (t == NULL || ldns_rr_rd_count(t) != RD_COUNT || !names_key(t, key) ||
	    !tsig_key_usable(key))
		return false;
	if (!ldns_pkt_tsig_verify(p, wire, len, key->name, key->secret_b64, req_mac))
		return false;
	return ldns_rdf2native_int16(ldns_rr_rdf(t, RD_ERROR)) == TSIG_NOERROR && time_ok(t, now);
}
