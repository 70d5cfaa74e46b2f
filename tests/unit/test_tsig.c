/*
 * test_tsig.c - TSIG for transfers and NOTIFY (broker/tsig.h): a request
 * checked against the keys (good, unsigned, unknown key, wrong algorithm,
 * bad MAC, clock outside the fudge), a stream of signed messages verified
 * one after the other with ldns, and the signed BADTIME answer.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ldns/ldns.h>

#include "broker/tsig.h"
#include "common/config.h"
#include "tests/unit/tap.h"

static struct config_key key_a = {
    "key-a", CONFIG_HMAC_SHA256, "hmac-sha256", "c2VjcmV0LWE=", (uint8_t *)"secret-a", 8};
static struct config_key key_b = {
    "key-b", CONFIG_HMAC_SHA512, "hmac-sha512", "c2VjcmV0LWI=", (uint8_t *)"secret-b", 8};

/* An AXFR query signed with (name, secret, algorithm), or unsigned with name NULL. */
static ldns_pkt *
request(const char *name, const char *secret, const char *alg)
{
	ldns_rdf *q = NULL;
	ldns_pkt *p;

	if (ldns_str2rdf_dname(&q, "example.test.") != LDNS_STATUS_OK)
		return NULL;
	p = ldns_pkt_query_new(q, LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN, 0);
	if (p != NULL && name != NULL &&
	    ldns_pkt_tsig_sign(p, name, secret, TSIG_FUDGE, alg, NULL) != LDNS_STATUS_OK) {
		ldns_pkt_free(p);
		return NULL;
	}
	return p;
}

/* tsig_check of p as it goes on the wire, at time now. */
static enum tsig_status
check(ldns_pkt *p, uint64_t now, const struct config_key **key, ldns_pkt **parsed)
{
	const struct config_key *keys[] = {&key_a, &key_b};
	uint8_t *wire = NULL;
	size_t len = 0;
	enum tsig_status st = TSIG_BAD_MAC;

	*parsed = NULL;
	if (ldns_pkt2wire(&wire, p, &len) == LDNS_STATUS_OK &&
	    ldns_wire2pkt(parsed, wire, len) == LDNS_STATUS_OK)
		st = tsig_check(*parsed, wire, len, keys, 2, now, key);
	free(wire);
	return st;
}

static void
one(const char *name, const char *secret, const char *alg, uint64_t now, enum tsig_status want,
    const struct config_key *want_key, const char *what)
{
	ldns_pkt *p = request(name, secret, alg), *parsed = NULL;
	const struct config_key *key = &key_b;

	is_int(check(p, now, &key, &parsed), want, "%s", what);
	ok(key == want_key, "%s: key", what);
	ldns_pkt_free(p);
	ldns_pkt_free(parsed);
}

static void
test_check(void)
{
	uint64_t now = (uint64_t)time(NULL);

	one(NULL, NULL, NULL, now, TSIG_UNSIGNED, NULL, "unsigned");
	one("key-a", "c2VjcmV0LWE=", "hmac-sha256.", now, TSIG_OK, &key_a, "good");
	one("KEY-B.", "c2VjcmV0LWI=", "hmac-sha512.", now, TSIG_OK, &key_b, "name in any case");
	one("key-c", "c2VjcmV0LWE=", "hmac-sha256.", now, TSIG_UNKNOWN, NULL, "unknown name");
	one("key-a", "c2VjcmV0LWE=", "hmac-sha1.", now, TSIG_UNKNOWN, NULL, "other algorithm");
	one("key-a", "c2VjcmV0LWI=", "hmac-sha256.", now, TSIG_BAD_MAC, NULL, "wrong secret");
	one("key-a", "c2VjcmV0LWE=", "hmac-sha256.", now + TSIG_FUDGE + 5, TSIG_BAD_TIME, &key_a,
	    "clock ahead of the fudge");
	one("key-a", "c2VjcmV0LWE=", "hmac-sha256.", now - TSIG_FUDGE - 5, TSIG_BAD_TIME, &key_a,
	    "clock behind the fudge");
	ok(strcmp(tsig_status_str(TSIG_BAD_MAC), "bad MAC") == 0, "status words");
}

/* Wire p, parse it back and verify it with ldns over mac (timers only after the first). */
static bool
verified(ldns_pkt *p, const ldns_rdf *mac, int timers_only, ldns_rdf **next)
{
	uint8_t *wire = NULL;
	size_t len = 0;
	ldns_pkt *back = NULL;
	bool good = false;

	if (ldns_pkt2wire(&wire, p, &len) == LDNS_STATUS_OK &&
	    ldns_wire2pkt(&back, wire, len) == LDNS_STATUS_OK) {
		good = ldns_pkt_tsig_verify_next(
		    back, wire, len, "key-a", "c2VjcmV0LWE=", mac, timers_only);
		*next = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(back), 3));
	}
	ldns_pkt_free(back);
	free(wire);
	return good;
}

/* A response message to req with one TXT record. */
static ldns_pkt *
answer(const ldns_pkt *req, const char *txt)
{
	ldns_pkt *p = ldns_pkt_new();
	ldns_rr *rr = NULL;

	ldns_pkt_set_id(p, ldns_pkt_id(req));
	ldns_pkt_set_qr(p, true);
	if (ldns_rr_new_frm_str(&rr, txt, 0, NULL, NULL) == LDNS_STATUS_OK)
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	return p;
}

static void
test_stream(void)
{
	ldns_pkt *req = request("key-a", "c2VjcmV0LWE=", "hmac-sha256.");
	ldns_rdf *mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(req), 3)), *next = NULL;
	struct tsig_stream ts;

	ok(tsig_stream_init(&ts, &key_a, req) == 0, "stream init");
	for (int i = 0; i < 3; i++) {
		ldns_pkt *p = answer(
		    req, i == 0 ? "a.example.test. 0 IN TXT one" : "b.example.test. 0 IN TXT more");

		ok(tsig_stream_sign(&ts, p) == 0, "message %d signed", i);
		ok(verified(p, mac, i > 0, &next), "message %d verifies over the %s MAC", i,
		    i == 0 ? "request's" : "previous");
		ldns_rdf_deep_free(mac);
		mac = next;
		ldns_pkt_free(p);
	}
	tsig_stream_clear(&ts);
	ldns_rdf_deep_free(mac);
	ok(tsig_stream_init(&ts, NULL, req) == 0 && ts.mac == NULL, "unsigned stream");
	tsig_stream_clear(&ts);
	ldns_pkt_free(req);
}

static void
test_badtime(void)
{
	ldns_pkt *req = request("key-a", "c2VjcmV0LWE=", "hmac-sha256.");
	ldns_rdf *mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(req), 3)), *next = NULL;
	ldns_pkt *p = answer(req, "a.example.test. 0 IN TXT x");
	const ldns_rr *t;

	ldns_pkt_set_rcode(p, LDNS_RCODE_NOTAUTH);
	ok(tsig_error_add(p, req, TSIG_BADTIME, &key_a, 1234567) == 0, "BADTIME added");
	t = ldns_pkt_tsig(p);
	is_int(ldns_rdf2native_int16(ldns_rr_rdf(t, 5)), TSIG_BADTIME, "error BADTIME");
	is_int((long long)ldns_rdf_size(ldns_rr_rdf(t, 6)), 2 + 6, "our time in Other Data");
	ok(verified(p, mac, 0, &next), "BADTIME is signed over the request's MAC");
	ldns_rdf_deep_free(next);
	ldns_pkt_free(p);
	p = answer(req, "a.example.test. 0 IN TXT x");
	ok(tsig_error_add(p, req, TSIG_BADSIG, NULL, 1234567) == 0, "BADSIG added");
	t = ldns_pkt_tsig(p);
	is_int((long long)ldns_rdf_size(ldns_rr_rdf(t, 3)), 2, "BADSIG unsigned: empty MAC");
	is_int(ldns_rdf2native_int16(ldns_rr_rdf(t, 5)), TSIG_BADSIG, "error BADSIG");
	ldns_pkt_free(p);
	ldns_rdf_deep_free(mac);
	ldns_pkt_free(req);
}

int
main(void)
{
	test_check();
	test_stream();
	test_badtime();
	return tap_done();
}
