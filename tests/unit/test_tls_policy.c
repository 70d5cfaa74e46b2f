/* test_tls_policy.c - per-destination outbound TLS levels, the policy
 * file, the DANE narrowing per hop (RFC 7672 §2.2) and TLSA usability. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/config.h"
#include "resolver/dnsmsg.h"
#include "smtp-relay/tls_client.h"
#include "smtp-relay/tls_policy.h"
#include "tests/unit/tap.h"

static struct config *
load(const char *text)
{
	char err[512];
	struct config *cfg = config_load_string("t.conf", text, err, sizeof(err));

	if (cfg == NULL)
		tap_diag("%s", err);
	return cfg;
}

static void
test_lookup(void)
{
	char path[] = "/tmp/test_tls_policy.XXXXXX", text[1024], err[512];
	int fd = mkstemp(path);
	struct config *cfg;
	struct tls_policy *p;
	struct tls_policy_result r;

	ok(fd != -1 &&
	        write(fd, "# comment\nfile.test encrypt\n.sub.test Verify # tail\n\n", 52) == 52,
	    "policy file written");
	close(fd);
	snprintf(text, sizeof(text),
	    "relay { tls-policy \"exact.test\" verify; tls-policy \".wild.test\" dane-only;"
	    " tls-policy \"file.test\" none; tls-policy-file \"%s\"; };",
	    path);
	cfg = load(text);
	ok(cfg != NULL, "loads");
	p = tls_policy_new(cfg, err, sizeof(err));
	ok(p != NULL, "built");
	tls_policy_lookup(p, "exact.test", &r);
	is_int(r.level, CONFIG_TLS_VERIFY, "exact entry");
	is_str(r.reason, "tls-policy \"exact.test\"", "reason names the statement");
	ok(r.configured, "an entry is the operator's (MTA-STS not consulted)");
	tls_policy_lookup(p, "a.b.wild.test", &r);
	is_int(r.level, CONFIG_TLS_DANE_ONLY, "suffix entry matches subdomains");
	tls_policy_lookup(p, "wild.test", &r);
	is_int(r.level, CONFIG_TLS_MAY, "not the parent itself: the default");
	ok(strstr(r.reason, "default") != NULL, "default reason");
	ok(!r.configured, "the default is not an explicit entry");
	tls_policy_lookup(p, "file.test", &r);
	is_int(r.level, CONFIG_TLS_NONE, "the statement before the file");
	tls_policy_lookup(p, "x.sub.test", &r);
	is_int(r.level, CONFIG_TLS_VERIFY, "file entry, level case-insensitive");
	ok(strstr(r.reason, "tls-policy-file") != NULL && strstr(r.reason, ":3") != NULL,
	    "file reason has the line");
	tls_policy_free(p);
	config_free(cfg);

	/* A bad level in the file is an error with the line. */
	fd = open(path, O_WRONLY | O_TRUNC);
	ok(fd != -1 && write(fd, "ok.test may\nbad.test sometimes\n", 31) == 31, "rewritten");
	close(fd);
	cfg = load(text);
	p = tls_policy_new(cfg, err, sizeof(err));
	ok(p == NULL && strstr(err, ":2: unknown level 'sometimes'") != NULL, "bad file: %s", err);
	config_free(cfg);
	unlink(path);

	cfg = load("relay { tls-policy \"x.test\" maybe; };");
	ok(cfg == NULL, "unknown level in the configuration is an error");
	cfg = load("relay { tls-policy \"x.test\" may; tls-policy \"X.test.\" none; };");
	ok(cfg == NULL, "the same domain twice is an error");
}

static void
test_defaults(void)
{
	char err[512];
	struct config *cfg = load("resolver { dnssec-validating yes; };");
	struct tls_policy *p = tls_policy_new(cfg, err, sizeof(err));
	struct tls_policy_result r;

	tls_policy_lookup(p, "any.test", &r);
	is_int(r.level, CONFIG_TLS_DANE, "validating resolver: dane by default");
	tls_policy_free(p);
	config_free(cfg);
	cfg = load("resolver { dnssec-validating yes; }; relay { tls-default-policy encrypt; };");
	p = tls_policy_new(cfg, err, sizeof(err));
	tls_policy_lookup(p, "any.test", &r);
	is_int(r.level, CONFIG_TLS_ENCRYPT, "tls-default-policy wins over auto");
	tls_policy_free(p);
	config_free(cfg);
}

static void
test_hop(void)
{
	struct tls_policy_result r = {CONFIG_TLS_DANE, "", 0, false};
	char why[200] = "";

	is_int(tls_policy_hop(&r, TLSA_USABLE, why, sizeof(why)), CONFIG_TLS_DANE, "usable: dane");
	is_int(tls_policy_hop(&r, TLSA_UNUSABLE, why, sizeof(why)), CONFIG_TLS_ENCRYPT,
	    "all unusable: encrypt (§2.2)");
	is_int(tls_policy_hop(&r, TLSA_NONE, why, sizeof(why)), CONFIG_TLS_MAY, "no TLSA: may");
	is_int(
	    tls_policy_hop(&r, TLSA_INSECURE, why, sizeof(why)), CONFIG_TLS_MAY, "insecure: may");
	is_int(tls_policy_hop(&r, TLSA_TEMPFAIL, why, sizeof(why)), -1, "TLSA SERVFAIL: defer");
	ok(strstr(why, "TLSA lookup failed") != NULL, "why: %s", why);
	r.level = CONFIG_TLS_DANE_ONLY;
	is_int(tls_policy_hop(&r, TLSA_NONE, why, sizeof(why)), -1, "dane-only, no TLSA: defer");
	is_int(
	    tls_policy_hop(&r, TLSA_INSECURE, why, sizeof(why)), -1, "dane-only insecure: defer");
	ok(strstr(why, "not DNSSEC-secure") != NULL, "why: %s", why);
	r.level = CONFIG_TLS_VERIFY;
	is_int(tls_policy_hop(&r, TLSA_INSECURE, why, sizeof(why)), CONFIG_TLS_VERIFY,
	    "non-DANE levels are as set");
	/* MTA-STS hook: enforce raises may to verify; DANE stays and wins. */
	r.level = CONFIG_TLS_MAY;
	tls_policy_apply_sts(&r, TLS_STS_ENFORCE);
	is_int(r.level, CONFIG_TLS_VERIFY, "STS enforce: verify");
	r.level = CONFIG_TLS_DANE;
	tls_policy_apply_sts(&r, TLS_STS_ENFORCE);
	is_int(r.level, CONFIG_TLS_DANE, "STS enforce under dane: still dane");
	is_int(tls_policy_hop(&r, TLSA_NONE, why, sizeof(why)), CONFIG_TLS_VERIFY,
	    "dane without TLSA under STS enforce: verify");
	is_int(tls_policy_hop(&r, TLSA_UNUSABLE, why, sizeof(why)), CONFIG_TLS_VERIFY,
	    "dane with unusable TLSA under STS enforce: verify, not encrypt");
	is_int(tls_policy_hop(&r, TLSA_USABLE, why, sizeof(why)), CONFIG_TLS_DANE,
	    "usable TLSA under STS enforce: DANE wins");
}

static void
test_tlsa_usable(void)
{
	static const unsigned char h32[32], h64[64];
	struct tls_tlsa t = {3, 1, 1, h32, 32};

	ok(tls_tlsa_usable(&t), "3 1 1");
	t.usage = 2;
	ok(tls_tlsa_usable(&t), "2 1 1");
	t.usage = 1;
	ok(!tls_tlsa_usable(&t), "PKIX-EE(1) unusable (RFC 7672 §3.1.3)");
	t.usage = 0;
	ok(!tls_tlsa_usable(&t), "PKIX-TA(0) unusable");
	t.usage = 3;
	t.len = 31;
	ok(!tls_tlsa_usable(&t), "SHA-256 of the wrong length");
	t.mtype = 2;
	t.data = h64;
	t.len = 64;
	ok(tls_tlsa_usable(&t), "3 1 2");
	t.selector = 2;
	ok(!tls_tlsa_usable(&t), "unknown selector");
	t.selector = 0;
	t.mtype = 3;
	ok(!tls_tlsa_usable(&t), "unknown matching type");
}

/* A reply to (name, TLSA) with the AD bit as given, holding `rr`. */
static size_t
tlsa_reply(const char *name, uint16_t id, bool ad, const char *rr, uint8_t *buf, size_t len)
{
	char fqdn[300];
	ldns_rdf *owner = NULL;
	ldns_pkt *pkt;
	ldns_rr *r = NULL;
	uint8_t *wire = NULL;
	size_t n = 0;

	snprintf(fqdn, sizeof(fqdn), "%s.", name);
	ldns_str2rdf_dname(&owner, fqdn);
	pkt = ldns_pkt_query_new(owner, LDNS_RR_TYPE_TLSA, LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_pkt_set_id(pkt, id);
	ldns_pkt_set_qr(pkt, true);
	ldns_pkt_set_ra(pkt, true);
	ldns_pkt_set_ad(pkt, ad);
	if (ldns_rr_new_frm_str(&r, rr, 300, NULL, NULL) == LDNS_STATUS_OK)
		ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, r);
	if (ldns_pkt2wire(&wire, pkt, &n) != LDNS_STATUS_OK || n > len)
		n = 0;
	else
		memcpy(buf, wire, n);
	free(wire);
	ldns_pkt_free(pkt);
	return n;
}

static void
test_dns_dnssec(void)
{
	static const char name[] = "_25._tcp.mx.example.test";
	static const char hex[] =
	    "8de471faa502360e765eb893ebf35a05791c05e17c3ff109f2850f65d7bc0e3b";
	char rr[300];
	uint8_t q[512], r[1024];
	int qlen;
	size_t rlen;
	ldns_pkt *pkt = NULL;
	struct dns_answer a;
	uint8_t usage, sel, mt;
	const uint8_t *data;
	size_t dlen;

	qlen = dnsmsg_build_query(name, LDNS_RR_TYPE_TLSA, 7, 1232, true, q, sizeof(q));
	ok(qlen > 0 && ldns_wire2pkt(&pkt, q, (size_t)qlen) == LDNS_STATUS_OK, "query built");
	ok(pkt != NULL && ldns_pkt_edns_do(pkt) && ldns_pkt_ad(pkt), "dnssec: DO and AD set");
	ldns_pkt_free(pkt);
	pkt = NULL;
	qlen = dnsmsg_build_query(name, LDNS_RR_TYPE_TLSA, 7, 1232, false, q, sizeof(q));
	ok(qlen > 0 && ldns_wire2pkt(&pkt, q, (size_t)qlen) == LDNS_STATUS_OK, "plain query");
	ok(pkt != NULL && !ldns_pkt_edns_do(pkt) && !ldns_pkt_ad(pkt), "no dnssec: neither");
	ldns_pkt_free(pkt);

	snprintf(rr, sizeof(rr), "%s. 300 IN TLSA 3 1 1 %s", name, hex);
	rlen = tlsa_reply(name, 9, true, rr, r, sizeof(r));
	is_int(dnsmsg_parse_reply(r, rlen, 9, name, LDNS_RR_TYPE_TLSA, &a), 0, "TLSA reply parses");
	ok(a.status == DNS_OK && a.secure, "AD set: secure");
	ok(a.rrs != NULL &&
	        dnsmsg_tlsa(ldns_rr_list_rr(a.rrs, 0), &usage, &sel, &mt, &data, &dlen) == 0,
	    "TLSA fields");
	ok(usage == 3 && sel == 1 && mt == 1 && dlen == 32 && data[0] == 0x8d && data[31] == 0x3b,
	    "3 1 1 and the digest");
	dns_answer_clear(&a);
	rlen = tlsa_reply(name, 9, false, rr, r, sizeof(r));
	dnsmsg_parse_reply(r, rlen, 9, name, LDNS_RR_TYPE_TLSA, &a);
	ok(a.status == DNS_OK && !a.secure, "AD clear: not secure");
	dns_answer_clear(&a);
	{
		ldns_rr *mx = NULL;

		ldns_rr_new_frm_str(&mx, "x.test. 300 IN MX 10 mx.x.test.", 300, NULL, NULL);
		ok(mx != NULL && dnsmsg_tlsa(mx, &usage, &sel, &mt, &data, &dlen) == -1,
		    "an MX record is not TLSA");
		ldns_rr_free(mx);
	}
}

int
main(void)
{
	test_dns_dnssec();
	test_lookup();
	test_defaults();
	test_hop();
	test_tlsa_usable();
	return tap_done();
}
