/*
 * test_mta_sts.c - the MTA-STS TXT record and policy parsers (good, bad,
 * edge cases), the §4.1 MX pattern rule, and the policy cache file (write,
 * read back, damage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp-relay/mta_sts.h"
#include "tests/unit/tap.h"

static int
txt(const char *s, char *id)
{
	return mta_sts_txt_parse(s, strlen(s), id);
}

static void
test_txt(void)
{
	char id[MTA_STS_ID_MAX + 1];

	is_int(txt("v=STSv1; id=20160831085700Z;", id), 1, "record with id");
	is_str(id, "20160831085700Z", "id");
	is_int(txt("v=STSv1;id=abc", id), 1, "no spaces, no final ';'");
	is_str(id, "abc", "id without final ';'");
	is_int(txt("v=STSv1 ;  id=x1 ; ext=foo.bar ;", id), 1, "spaces around ';', extension");
	is_int(txt("v=STSv1; id=first; id=second;", id), 1, "repeated id");
	is_str(id, "first", "the first id wins");
	is_int(txt("v=spf1 -all", id), 0, "another kind of record");
	is_int(txt("v=STSv10; id=1", id), 0, "another version");
	is_int(txt("", id), 0, "empty");
	is_int(txt("v=STSv1;", id), -1, "no id");
	is_int(txt("v=STSv1", id), -1, "version only");
	is_int(txt("v=STSv1; id=", id), -1, "empty id");
	is_int(txt("v=STSv1; id=abc-def", id), -1, "id with '-'");
	is_int(txt("v=STSv1; id=123456789012345678901234567890123", id), -1, "33-char id");
	is_int(txt("v=STSv1; id=12345678901234567890123456789012", id), 1, "32-char id");
	is_int(txt("v=STSv1; id=1 2", id), -1, "space inside a value");
	is_int(txt("v=STSv1; junk; id=1", id), -1, "field without '='");
	is_int(txt("v=STSv1; _x=1; id=1", id), -1, "bad extension name");
}

static int
parse(const char *s, struct mta_sts_policy *p)
{
	char err[128];
	int rc = mta_sts_policy_parse(s, strlen(s), p, err, sizeof(err));

	if (rc == -1)
		tap_diag("parse: %s", err);
	return rc;
}

static void
test_policy_good(void)
{
	struct mta_sts_policy p;

	ok(parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
	         "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
	       &p) == 0,
	    "RFC 8461 example (CRLF)");
	is_int(p.mode, MTA_STS_MODE_ENFORCE, "mode enforce");
	is_int(p.max_age, 604800, "max_age");
	is_int((long long)p.nmx, 3, "three mx");
	is_str(p.nmx == 3 ? p.mx[1] : NULL, "*.example.net", "wildcard kept");
	mta_sts_policy_clear(&p);

	ok(parse("version: STSv1\nmode: testing\nmx: MX.Example.COM.\nmax_age: 86400", &p) == 0,
	    "LF, no final line end");
	is_int(p.mode, MTA_STS_MODE_TESTING, "mode testing");
	is_str(p.nmx == 1 ? p.mx[0] : NULL, "mx.example.com", "mx lower case, no final dot");
	mta_sts_policy_clear(&p);

	ok(parse("version: STSv1\nmode: none\nmax_age: 0\n", &p) == 0, "mode none without mx");
	is_int(p.mode, MTA_STS_MODE_NONE, "mode none");
	mta_sts_policy_clear(&p);

	ok(parse("version:STSv1\n\nfoo: bar baz\nmode:   enforce  \nmode: testing\n"
	         "mx: a.example\nmax_age: 31557600\n",
	       &p) == 0,
	    "no space after ':', blank line, unknown key, repeated mode");
	is_int(p.mode, MTA_STS_MODE_ENFORCE, "the first mode wins");
	is_int(p.max_age, 31557600, "max_age at the limit");
	mta_sts_policy_clear(&p);
}

static void
test_policy_bad(void)
{
	static const char *const bad[] = {
	    "mode: enforce\nmx: a.example\nmax_age: 1\n",                        /* no version */
	    "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",        /* version */
	    "version: STSv1\nmx: a.example\nmax_age: 1\n",                       /* no mode */
	    "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",         /* mode */
	    "version: STSv1\nmode: enforce\nmx: a.example\n",                    /* no max_age */
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n", /* too long */
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 99999999999\n",
	    "version: STSv1\nmode: enforce\nmax_age: 1\n",                       /* no mx */
	    "version: STSv1\nmode: testing\nmx: a..example\nmax_age: 1\n",       /* empty label */
	    "version: STSv1\nmode: testing\nmx: *.*.example\nmax_age: 1\n",      /* two stars */
	    "version: STSv1\nmode: testing\nmx: mx*.example\nmax_age: 1\n",      /* inner star */
	    "version: STSv1\nmode: testing\nmx: *\nmax_age: 1\n",                /* star alone */
	    "version: STSv1\nmode: testing\nmx:\nmax_age: 1\n",                  /* empty mx */
	    "version: STSv1\nmode testing\nmx: a.example\nmax_age: 1\n",         /* no ':' */
	    "version: STSv1\n_mode: testing\nmx: a.example\nmax_age: 1\n",       /* bad key */
	    "version: STSv1\nmode: testing\nmx: a.example\r\r\nmax_age: 1\n",    /* bare CR */
	    "version: STSv1\nmode: testing\nmx: \xc3\xa9.example\nmax_age: 1\n", /* non-ASCII */
	    "",
	};
	static const char nul[] = "version: STSv1\nmode: none\nmax_age: 1\nx: \0y\n";
	struct mta_sts_policy p;
	char text[8192];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(parse(bad[i], &p) == -1 && p.mx == NULL && p.nmx == 0, "bad policy %zu", i);

	n = (size_t)snprintf(text, sizeof(text), "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (int i = 0; i <= MTA_STS_MX_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "mx: m%d.example\n", i);
	ok(parse(text, &p) == -1, "more than %d mx", MTA_STS_MX_MAX);
	/* A NUL inside the text is a control octet, not the end. */
	ok(mta_sts_policy_parse(nul, sizeof(nul) - 1, &p, text, sizeof(text)) == -1, "NUL octet");
}

static void
test_mx(void)
{
	struct mta_sts_policy p;

	if (parse("version: STSv1\nmode: enforce\nmax_age: 1\nmx: mail.example.com\n"
	          "mx: *.example.net\n",
	        &p) == -1)
		return;
	ok(mta_sts_mx_matches(&p, "mail.example.com"), "exact");
	ok(mta_sts_mx_matches(&p, "MAIL.Example.Com."), "any case, trailing dot");
	ok(!mta_sts_mx_matches(&p, "mail2.example.com"), "another host");
	ok(!mta_sts_mx_matches(&p, "x.mail.example.com"), "a subdomain of an exact name");
	ok(mta_sts_mx_matches(&p, "mx1.example.net"), "wildcard: one label");
	ok(!mta_sts_mx_matches(&p, "example.net"), "wildcard: not the domain itself");
	ok(!mta_sts_mx_matches(&p, "a.b.example.net"), "wildcard: not two labels");
	ok(!mta_sts_mx_matches(&p, "xexample.net"), "wildcard: label boundary");
	ok(!mta_sts_mx_matches(&p, ".example.net"), "wildcard: empty label");
	ok(!mta_sts_mx_matches(&p, ""), "empty host");
	ok(!mta_sts_mx_matches(NULL, "mail.example.com"), "no policy");
	mta_sts_policy_clear(&p);
}

static void
test_copy_fresh(void)
{
	struct mta_sts_policy p, q;

	if (parse("version: STSv1\nmode: testing\nmax_age: 100\nmx: a.example\nmx: *.b.example\n",
	        &p) == -1)
		return;
	p.fetched = 1000;
	ok(mta_sts_policy_copy(&q, &p) == 0 && q.nmx == 2 && q.mx != p.mx &&
	        strcmp(q.mx[1], "*.b.example") == 0 && q.max_age == 100,
	    "deep copy");
	ok(mta_sts_policy_is_fresh(&p, 1099), "fresh before fetched + max_age");
	ok(!mta_sts_policy_is_fresh(&p, 1100), "stale at fetched + max_age");
	mta_sts_policy_clear(&q);
	mta_sts_policy_clear(&p);
}

static void
test_cache(void)
{
	char dir[] = "/tmp/test_mta_sts.XXXXXX", path[256];
	struct mta_sts_policy p, q;
	FILE *f;

	if (mkdtemp(dir) == NULL ||
	    parse("version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx.example.org\n"
	          "mx: *.mx.example.org\n",
	        &p) == -1) {
		ok(false, "set up the cache test");
		return;
	}
	p.fetched = 1700000000;
	strcpy(p.id, "2026abc");
	ok(mta_sts_cache_read(dir, "example.org", &q) == -1, "no file yet");
	ok(mta_sts_cache_write(dir, "example.org", &p) == 0, "write");
	ok(mta_sts_cache_read(dir, "example.org", &q) == 0, "read back");
	is_str(q.id, "2026abc", "id kept");
	is_int((long long)q.fetched, 1700000000, "fetched kept");
	is_int(q.mode, MTA_STS_MODE_ENFORCE, "mode kept");
	is_int(q.max_age, 86400, "max_age kept");
	ok(q.nmx == 2 && strcmp(q.mx[0], "mx.example.org") == 0 &&
	        strcmp(q.mx[1], "*.mx.example.org") == 0,
	    "mx kept in order");
	mta_sts_policy_clear(&q);
	ok(mta_sts_cache_read(dir, "example.net", &q) == -1, "another domain: no file");

	/* A file for one domain under another's name is refused (and removed). */
	snprintf(path, sizeof(path), "%s/example.org.policy", dir);
	ok(access(path, R_OK) == 0, "file named <domain>.policy");
	snprintf(path, sizeof(path), "%s/example.com.policy", dir);
	if ((f = fopen(path, "w")) != NULL) {
		fputs("mxbroker-mta-sts 1\ndomain: example.org\nfetched: 1\nid: a\n\n"
		      "version: STSv1\nmode: none\nmax_age: 1\n",
		    f);
		fclose(f);
	}
	ok(mta_sts_cache_read(dir, "example.com", &q) == -1, "domain mismatch refused");
	ok(access(path, F_OK) == -1, "damaged file removed");
	if ((f = fopen(path, "w")) != NULL) {
		fputs("mxbroker-mta-sts 1\ndomain: example.com\nfetched: 1\nid: a\n\nversion: x\n",
		    f);
		fclose(f);
	}
	ok(mta_sts_cache_read(dir, "example.com", &q) == -1, "bad policy in the file refused");
	ok(mta_sts_cache_parse("x", 1, "a", &q) == -1, "no magic");
	mta_sts_policy_clear(&p);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		tap_diag("could not remove %s", dir);
}

int
main(void)
{
	test_txt();
	test_policy_good();
	test_policy_bad();
	test_mx();
	test_copy_fresh();
	test_cache();
	return tap_done();
}
