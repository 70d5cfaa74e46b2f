/* test_tls_policy.c - per-destination outbound TLS levels, the policy
 * file, the DANE narrowing per hop (RFC 7672 §2.2) and TLSA usability. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/config.h"
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
	tls_policy_lookup(p, "a.b.wild.test", &r);
	is_int(r.level, CONFIG_TLS_DANE_ONLY, "suffix entry matches subdomains");
	tls_policy_lookup(p, "wild.test", &r);
	is_int(r.level, CONFIG_TLS_MAY, "not the parent itself: the default");
	ok(strstr(r.reason, "default") != NULL, "default reason");
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
	struct tls_policy_result r = {CONFIG_TLS_DANE, "", 0};
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

int
main(void)
{
	test_lookup();
	test_defaults();
	test_hop();
	test_tlsa_usable();
	return tap_done();
}
