/* test_dnssec.c - key loading, zone signing, the NSEC chain and signed answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "broker/answer.h"
#include "broker/dnssec.h"
#include "broker/prep.h"
#include "broker/zone.h"
#include "broker/zone_int.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/test_dnssec.XXXXXX";
static const struct dnssec_params PARAMS = {14 * 86400, 7 * 86400, 3600};

static const char *ZONE = "$ORIGIN example.test.\n"
                          "$TTL 300\n"
                          "@ SOA ns1 hostmaster 7 3600 900 604800 60\n"
                          "@ NS ns1\n"
                          "@ MX 10 smtp\n"
                          "ns1 A 192.0.2.1\n"
                          "smtp A 192.0.2.11\n"
                          "smtp A 192.0.2.12\n"
                          "e.nt A 192.0.2.77\n"
                          "sub NS ns.sub\n"
                          "ns.sub A 192.0.2.53\n";

static char *
path_in(const char *sub, const char *name)
{
	static char p[4][512];
	static int k;
	char *r = p[k++ % 4];

	snprintf(r, 512, "%s/%s%s%s", dir, sub, name[0] ? "/" : "", name);
	return r;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

/* What ldns-keygen does: a key pair K<zone>.+alg+tag.key/.private in sub. */
static void
make_key(const char *sub, ldns_signing_algorithm alg, bool ksk)
{
	ldns_key *k = ldns_key_new_frm_algorithm(alg, alg == LDNS_SIGN_RSASHA256 ? 1024 : 256);
	ldns_rdf *owner = NULL;
	ldns_rr *rr;
	char base[256];
	FILE *f;

	ldns_str2rdf_dname(&owner, "example.test.");
	ldns_key_set_pubkey_owner(k, owner);
	ldns_key_set_flags(k, ksk ? 257 : 256);
	rr = ldns_key2rr(k);
	snprintf(
	    base, sizeof(base), "Kexample.test.+%03u+%05u", (unsigned)alg, ldns_calc_keytag(rr));
	f = fopen(path_in(sub, strcat(strcpy((char[300]){0}, base), ".key")), "w");
	ldns_rr_print(f, rr);
	fclose(f);
	f = fopen(path_in(sub, strcat(strcpy((char[300]){0}, base), ".private")), "w");
	ldns_key_print(f, k);
	fclose(f);
	ldns_rr_free(rr);
	ldns_key_deep_free(k);
}

static struct dnssec_keys *
load(const char *sub, char *err, size_t len)
{
	return dnssec_keys_load("example.test", path_in(sub, ""), &PARAMS, err, len);
}

static void
test_keys(void)
{
	char err[512];
	struct dnssec_keys *k;

	mkdir(path_in("empty", ""), 0700);
	k = load("empty", err, sizeof(err));
	ok(k == NULL && strstr(err, "no KSK") != NULL, "no key: %s", err);
	k = load("missing", err, sizeof(err));
	ok(k == NULL && strstr(err, "missing") != NULL, "no folder: %s", err);
	mkdir(path_in("rsa", ""), 0700);
	make_key("rsa", LDNS_SIGN_RSASHA256, true);
	k = load("rsa", err, sizeof(err));
	ok(k == NULL && strstr(err, "algorithm 8 is not supported") != NULL, "RSA: %s", err);
	mkdir(path_in("pair", ""), 0700);
	make_key("pair", LDNS_SIGN_ECDSAP256SHA256, true);
	make_key("pair", LDNS_SIGN_ECDSAP256SHA256, false);
	k = load("pair", err, sizeof(err));
	ok(k != NULL && dnssec_keys_count(k) == 2, "KSK + ZSK");
	if (k != NULL) {
		char desc[256];

		dnssec_keys_describe(k, desc, sizeof(desc));
		ok(strstr(desc, "(alg 13, KSK)") != NULL && strstr(desc, "(alg 13, ZSK)") != NULL,
		    "described: %s", desc);
	}
	dnssec_keys_free(k);
	mkdir(path_in("csk", ""), 0700);
	make_key("csk", LDNS_SIGN_ED25519, true);
	k = load("csk", err, sizeof(err));
	ok(k != NULL && dnssec_keys_count(k) == 1, "Ed25519 CSK");
	if (k != NULL) {
		char desc[256];

		dnssec_keys_describe(k, desc, sizeof(desc));
		ok(strstr(desc, "(alg 15, CSK)") != NULL, "described: %s", desc);
	}
	dnssec_keys_free(k);
	is_int(zone_name_cmp(
	           (const uint8_t *)"\1a\7example\0", 11, (const uint8_t *)"\1z\1a\7example\0", 13),
	    -1, "a.example < z.a.example");
	is_int(zone_name_cmp(
	           (const uint8_t *)"\1z\1a\7example\0", 13, (const uint8_t *)"\1b\7example\0", 11),
	    -1, "z.a.example < b.example (RFC 4034 6.1)");
}

/* Every RRSIG of the zone verifies against its DNSKEYs; the count verified. */
static size_t
verify_all(const ldns_rr_list *rrs)
{
	ldns_rr_list *keys = ldns_rr_list_new();
	size_t good = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(rrs, i)) == LDNS_RR_TYPE_DNSKEY)
			ldns_rr_list_push_rr(keys, ldns_rr_list_rr(rrs, i));
	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
		ldns_rr *sig = ldns_rr_list_rr(rrs, i);
		ldns_rr_list *set = ldns_rr_list_new(), *goodk = ldns_rr_list_new();

		if (ldns_rr_get_type(sig) != LDNS_RR_TYPE_RRSIG)
			goto next;
		for (size_t j = 0; j < ldns_rr_list_rr_count(rrs); j++) {
			ldns_rr *rr = ldns_rr_list_rr(rrs, j);

			if (ldns_rr_get_type(rr) ==
			        ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(sig)) &&
			    ldns_dname_compare(ldns_rr_owner(rr), ldns_rr_owner(sig)) == 0)
				ldns_rr_list_push_rr(set, rr);
		}
		if (ldns_verify_rrsig_keylist(set, sig, keys, goodk) == LDNS_STATUS_OK)
			good++;
		else
			tap_diag("bad RRSIG: %s", ldns_rr2str(sig));
	next:
		ldns_rr_list_free(set);
		ldns_rr_list_free(goodk);
	}
	ldns_rr_list_free(keys);
	return good;
}

static size_t
count_type(const ldns_rr_list *rrs, ldns_rr_type t)
{
	size_t n = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++)
		n += ldns_rr_get_type(ldns_rr_list_rr(rrs, i)) == t;
	return n;
}

static const ldns_rr *
sig_of(const struct zone *z, const uint8_t *name, size_t len, uint16_t type)
{
	const struct znode *n = zone_node_find(z, name, len);
	const struct zrrset *s = n != NULL ? zone_node_set(n, type) : NULL;

	return s != NULL && s->sigs != NULL ? ldns_rr_list_rr(s->sigs, 0) : NULL;
}

static void
test_sign_zone(void)
{
	char err[512];
	struct dnssec_keys *k = load("pair", err, sizeof(err));
	char *file = path_in("", "z.zone");
	struct zone *z, *z2, *plain, *applied;
	const ldns_rr_list *rrs;
	size_t sigs;
	const uint8_t smtp[] = "\4smtp\7example\4test", ns1[] = "\3ns1\7example\4test";

	write_file(file, ZONE);
	z = zone_load_signed("example.test", file, k, err, sizeof(err));
	ok(z != NULL, "signed zone loads: %s", z ? "" : err);
	if (z == NULL)
		return;
	rrs = zone_rrs(z);
	is_int(count_type(rrs, LDNS_RR_TYPE_DNSKEY), 2, "two DNSKEYs");
	is_int(count_type(rrs, LDNS_RR_TYPE_CDS), 1, "CDS of the KSK");
	is_int(count_type(rrs, LDNS_RR_TYPE_CDNSKEY), 1, "CDNSKEY of the KSK");
	/* apex, ns1, smtp, e.nt, sub (a cut): nt is empty, ns.sub is glue */
	is_int(count_type(rrs, LDNS_RR_TYPE_NSEC), 5, "an NSEC per name with data");
	sigs = count_type(rrs, LDNS_RR_TYPE_RRSIG);
	/* apex SOA NS MX DNSKEY CDS CDNSKEY NSEC, ns1 A NSEC, smtp A NSEC,
	 * e.nt A NSEC, sub NSEC (NS and glue unsigned) */
	is_int(sigs, 14, "one RRSIG per authoritative RRset");
	is_int(verify_all(rrs), sigs, "every RRSIG verifies");
	plain = zone_load("example.test", file, err, sizeof(err));
	z2 = zone_load_signed("example.test", file, k, err, sizeof(err));
	ok(zone_digest(z2) == zone_digest(z), "the digest leaves out the signatures");
	ok(zone_digest(plain) != zone_digest(z), "the digest counts the signing period");
	ok(!zone_resign_due(z, time(NULL)) && zone_resign_due(z, time(NULL) + 8 * 86400),
	    "a new signing period is due after signature-refresh");

	/* A publish: the changed RRset is signed anew, the others keep theirs. */
	{
		ldns_rdf *owner = NULL;
		ldns_rr *a = NULL;
		ldns_rr_list *l = ldns_rr_list_new();
		struct zone_change ch;

		ldns_str2rdf_dname(&owner, "smtp.example.test.");
		ldns_rr_new_frm_str(&a, "smtp.example.test. 5 IN A 192.0.2.13", 0, NULL, NULL);
		ldns_rr_list_push_rr(l, a);
		ch = (struct zone_change){owner, LDNS_RR_TYPE_A, l, ZONE_RRSET_ROTATE};
		applied = zone_apply(z, &ch, 1, 8, err, sizeof(err));
		ok(applied != NULL, "zone_apply on a signed zone: %s", applied ? "" : err);
		ldns_rr_list_deep_free(l);
		ldns_rdf_deep_free(owner);
	}
	if (applied != NULL) {
		ok(ldns_rr_compare(sig_of(applied, ns1, sizeof(ns1), LDNS_RR_TYPE_A),
		       sig_of(z, ns1, sizeof(ns1), LDNS_RR_TYPE_A)) == 0,
		    "an unchanged RRset keeps its signature");
		ok(ldns_rr_compare(sig_of(applied, smtp, sizeof(smtp), LDNS_RR_TYPE_A),
		       sig_of(z, smtp, sizeof(smtp), LDNS_RR_TYPE_A)) != 0,
		    "the published RRset is signed anew");
		is_int(verify_all(zone_rrs(applied)),
		    count_type(zone_rrs(applied), LDNS_RR_TYPE_RRSIG),
		    "every RRSIG of the new zone verifies");
	}
	zone_free(applied);
	zone_free(z2);
	zone_free(plain);
	zone_free(z);
	dnssec_keys_free(k);
}

/* Ask z (DO when `dnssec`) and parse the reply. */
static ldns_pkt *
ask(struct zone *z, const char *name, ldns_rr_type t, bool dnssec)
{
	ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str(name), t, LDNS_RR_CLASS_IN, 0);
	static uint8_t out[65535];
	struct answer_result res;
	uint8_t *wire;
	size_t len;
	ldns_pkt *r = NULL;

	ldns_pkt_set_edns_udp_size(q, 1232);
	ldns_pkt_set_edns_do(q, dnssec);
	ldns_pkt_set_edns_data(q, NULL);
	ldns_pkt2wire(&wire, q, &len);
	if (answer_query(&z, 1, wire, len, true, out, sizeof(out), &res, NULL) == ANSWER_REPLY)
		ldns_wire2pkt(&r, out, res.len);
	free(wire);
	ldns_pkt_free(q);
	return r;
}

static size_t
count_in(const ldns_rr_list *l, ldns_rr_type t)
{
	return count_type(l, t);
}

static void
test_answers(void)
{
	char err[512];
	struct dnssec_keys *k = load("csk", err, sizeof(err));
	char *file = path_in("", "z.zone");
	struct zone *z = zone_load_signed("example.test", file, k, err, sizeof(err));
	ldns_pkt *r;

	ok(z != NULL, "CSK zone: %s", z ? "" : err);
	if (z == NULL)
		return;
	r = ask(z, "smtp.example.test.", LDNS_RR_TYPE_A, false);
	ok(r && count_in(ldns_pkt_answer(r), LDNS_RR_TYPE_RRSIG) == 0, "DO=0: no RRSIG");
	ldns_pkt_free(r);
	r = ask(z, "smtp.example.test.", LDNS_RR_TYPE_A, true);
	ok(r && count_in(ldns_pkt_answer(r), LDNS_RR_TYPE_A) == 2 &&
	        count_in(ldns_pkt_answer(r), LDNS_RR_TYPE_RRSIG) == 1,
	    "DO=1: the A set and its RRSIG");
	ldns_pkt_free(r);
	r = ask(z, "smtp.example.test.", LDNS_RR_TYPE_TXT, true);
	ok(r && ldns_pkt_ancount(r) == 0 && count_in(ldns_pkt_authority(r), LDNS_RR_TYPE_NSEC) == 1,
	    "NODATA: the NSEC at the name");
	ldns_pkt_free(r);
	r = ask(z, "x.y.pa.example.test.", LDNS_RR_TYPE_A, true);
	ok(r && ldns_pkt_get_rcode(r) == LDNS_RCODE_NXDOMAIN &&
	        count_in(ldns_pkt_authority(r), LDNS_RR_TYPE_NSEC) == 2 &&
	        count_in(ldns_pkt_authority(r), LDNS_RR_TYPE_RRSIG) == 3,
	    "NXDOMAIN: SOA, covering NSEC, wildcard NSEC, their RRSIGs");
	if (r != NULL) {
		/* pa sorts after e.nt: the NSEC e.nt -> smtp covers it; *.example.test
		 * is covered by the apex NSEC (apex -> ns1). */
		char *a = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_authority(r), 2)));
		is_str(a, "e.nt.example.test.", "the covering NSEC");
		free(a);
	}
	ldns_pkt_free(r);
	r = ask(z, "nope.example.test.", LDNS_RR_TYPE_A, false);
	ok(r && ldns_pkt_get_rcode(r) == LDNS_RCODE_NXDOMAIN && ldns_pkt_nscount(r) == 1,
	    "NXDOMAIN without DO: the SOA alone");
	ldns_pkt_free(r);
	r = ask(z, "www.sub.example.test.", LDNS_RR_TYPE_A, true);
	ok(r && count_in(ldns_pkt_authority(r), LDNS_RR_TYPE_NSEC) == 1 &&
	        count_in(ldns_pkt_authority(r), LDNS_RR_TYPE_NS) == 1,
	    "referral without DS: the NSEC of the cut");
	ldns_pkt_free(r);
	r = ask(z, "example.test.", LDNS_RR_TYPE_DNSKEY, true);
	ok(r && count_in(ldns_pkt_answer(r), LDNS_RR_TYPE_DNSKEY) == 1 &&
	        count_in(ldns_pkt_answer(r), LDNS_RR_TYPE_RRSIG) == 1,
	    "DNSKEY and its RRSIG");
	ldns_pkt_free(r);
	zone_free(z);
	dnssec_keys_free(k);
}

static void
test_refusals(void)
{
	char err[512];
	struct dnssec_keys *k = load("pair", err, sizeof(err));
	char *file = path_in("", "w.zone");
	char text[2048];
	struct zone *z;

	snprintf(text, sizeof(text), "%s*.wild A 192.0.2.1\n", ZONE);
	write_file(file, text);
	z = zone_load_signed("example.test", file, k, err, sizeof(err));
	ok(z == NULL &&
	        strstr(err,
	            "wildcard *.wild.example.test. is not supported in a signed "
	            "zone") != NULL,
	    "wildcard refused: %s", err);
	zone_free(z);
	snprintf(text, sizeof(text), "%sns1 NSEC smtp A\n", ZONE);
	write_file(file, text);
	z = zone_load_signed("example.test", file, k, err, sizeof(err));
	ok(z == NULL && strstr(err, "w.zone:12: DNSSEC record") != NULL, "NSEC in the file: %s",
	    err);
	zone_free(z);
	dnssec_keys_free(k);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	test_keys();
	test_sign_zone();
	test_answers();
	test_refusals();
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done();
}
