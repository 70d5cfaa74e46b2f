/*
 * test_mta_sts.c - the MTA-STS TXT record and policy parsers (good, bad,
 * edge cases), the §4.1 MX pattern rule, the policy cache file (write,
 * read back, damage), and the asynchronous lookup against an in-process DNS
 * server: no record, a cached policy with the same id, a failed fetch with
 * and without a cached policy, shared and cancelled lookups, an invalid
 * domain, and freeing with lookups in flight.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <ldns/ldns.h>

#include "common/addr.h"
#include "resolver/dnsclient.h"
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

/* ---- the lookup, against a DNS server in the same loop ---- */

/* What the server answers: owner, type, record text (NULL type 0 ends). */
static const struct zone_rr {
	const char *owner;
	uint16_t type;
	const char *rr;
} zone[] = {
    {"_mta-sts.same.test.", LDNS_RR_TYPE_TXT, "_mta-sts.same.test. 60 IN TXT \"v=STSv1; id=s1;\""},
    {"_mta-sts.newid.test.", LDNS_RR_TYPE_TXT,
        "_mta-sts.newid.test. 60 IN TXT \"v=STSv1; id=n2;\""},
    {"mta-sts.newid.test.", LDNS_RR_TYPE_A, "mta-sts.newid.test. 60 IN A 127.0.0.1"},
    {"_mta-sts.fresh.test.", LDNS_RR_TYPE_TXT,
        "_mta-sts.fresh.test. 60 IN TXT \"v=STSv1; id=f1;\""},
    {"mta-sts.fresh.test.", LDNS_RR_TYPE_A, "mta-sts.fresh.test. 60 IN A 127.0.0.1"},
    {"_mta-sts.two.test.", LDNS_RR_TYPE_TXT, "_mta-sts.two.test. 60 IN TXT \"v=STSv1; id=a;\""},
    {"_mta-sts.two.test.", LDNS_RR_TYPE_TXT, "_mta-sts.two.test. 60 IN TXT \"v=STSv1; id=b;\""},
    {NULL, 0, NULL},
};

struct dns_server {
	int fd;
	struct event *ev;
	unsigned queries;
};

/* Answer one query from `zone` (NXDOMAIN when nothing matches the owner). */
static void
dns_server_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_server *srv = arg;
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	uint8_t buf[1500], *wire = NULL;
	ldns_pkt *q = NULL, *r;
	ldns_rr *qrr;
	char *owner;
	bool known = false;
	size_t len;
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);

	(void)what;
	if (n <= 0 || ldns_wire2pkt(&q, buf, (size_t)n) != LDNS_STATUS_OK)
		return;
	srv->queries++;
	qrr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
	owner = ldns_rdf2str(ldns_rr_owner(qrr));
	r = ldns_pkt_clone(q);
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_aa(r, true);
	for (const struct zone_rr *z = zone; z->owner != NULL; z++) {
		ldns_rr *rr = NULL;

		if (strcasecmp(z->owner, owner) != 0)
			continue;
		known = true;
		if (z->type == ldns_rr_get_type(qrr) &&
		    ldns_rr_new_frm_str(&rr, z->rr, 0, NULL, NULL) == LDNS_STATUS_OK)
			ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
	}
	if (!known)
		ldns_pkt_set_rcode(r, LDNS_RCODE_NXDOMAIN);
	if (ldns_pkt2wire(&wire, r, &len) == LDNS_STATUS_OK)
		sendto(fd, wire, len, 0, (struct sockaddr *)&from, fromlen);
	free(wire);
	free(owner);
	ldns_pkt_free(r);
	ldns_pkt_free(q);
}

struct answer {
	int calls;
	enum mta_sts_status st;
	char id[MTA_STS_ID_MAX + 1];
	char detail[512];
	struct event_base *base;
	int *pending; /* loop ends when it reaches 0 */
};

static void
answer_cb(const struct mta_sts_policy *p, enum mta_sts_status st, const char *detail, void *arg)
{
	struct answer *a = arg;

	a->calls++;
	a->st = st;
	snprintf(a->id, sizeof(a->id), "%s", p != NULL ? p->id : "");
	snprintf(a->detail, sizeof(a->detail), "%s", detail);
	if (--*a->pending == 0)
		event_base_loopbreak(a->base);
}

/* A cache file for `domain` fetched `age` seconds ago with `id`. */
static void
put_cached(const char *dir, const char *domain, const char *id, time_t age)
{
	struct mta_sts_policy p;

	if (parse("version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx.cached.test\n", &p) == 0) {
		p.fetched = time(NULL) - age;
		snprintf(p.id, sizeof(p.id), "%s", id);
		mta_sts_cache_write(dir, domain, &p);
		mta_sts_policy_clear(&p);
	}
}

/* A TCP port on 127.0.0.1 nothing listens on (bound, closed at once). */
static uint16_t
closed_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	if (fd != -1 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd != -1)
		close(fd);
	return port;
}

static void
test_lookup(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sin);
	char dir[] = "/tmp/test_mta_sts_lookup.XXXXXX", cmd[128];
	struct event_base *base = event_base_new();
	struct dns_server srv = {socket(AF_INET, SOCK_DGRAM, 0), NULL, 0};
	struct dnsclient_params dp = {
	    .nservers = 1, .timeout_ms = 2000, .attempts = 1, .cache_size = 64};
	struct addr ns;
	struct dnsclient *dns = NULL;
	struct mta_sts *s = NULL;
	struct mta_sts_params sp = {dir, NULL, closed_port(), 0};
	struct answer a[6];
	struct mta_sts_lookup *l[6];
	int pending;

	memset(a, 0, sizeof(a));
	if (base == NULL || srv.fd == -1 || mkdtemp(dir) == NULL ||
	    bind(srv.fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(srv.fd, (struct sockaddr *)&sin, &slen) == -1 ||
	    addr_parse("127.0.0.1", ntohs(sin.sin_port), &ns) == -1) {
		ok(false, "set up the DNS server");
		return;
	}
	srv.ev = event_new(base, srv.fd, EV_READ | EV_PERSIST, dns_server_cb, &srv);
	event_add(srv.ev, NULL);
	dp.servers = &ns;
	put_cached(dir, "same.test", "s1", 10);      /* same id, fresh: no fetch */
	put_cached(dir, "fresh.test", "old", 10);    /* other id, fresh: fallback */
	put_cached(dir, "newid.test", "old", 90000); /* other id, expired */
	dns = dnsclient_new(base, &dp);
	s = dns != NULL ? mta_sts_new(base, dns, &sp) : NULL;
	ok(s != NULL, "mta_sts_new");
	if (s == NULL)
		goto out;

	for (int i = 0; i < 6; i++) {
		a[i].base = base;
		a[i].pending = &pending;
	}
	pending = 6;
	l[0] = mta_sts_lookup(s, "none.test", answer_cb, &a[0]);
	l[1] = mta_sts_lookup(s, "Same.Test.", answer_cb, &a[1]);
	l[2] = mta_sts_lookup(s, "same.test", answer_cb, &a[2]);
	l[3] = mta_sts_lookup(s, "same.test", answer_cb, &a[3]);
	l[4] = mta_sts_lookup(s, "not a domain", answer_cb, &a[4]);
	l[5] = mta_sts_lookup(s, "two.test", answer_cb, &a[5]);
	ok(l[0] && l[1] && l[2] && l[3] && l[4] && l[5], "lookups started");
	ok(a[4].calls == 0, "no callback from inside mta_sts_lookup");
	mta_sts_cancel(l[3]);
	pending--;
	event_base_dispatch(base);
	is_int(a[0].st, MTA_STS_NONE, "no record: none (%s)", a[0].detail);
	is_int(a[1].st, MTA_STS_POLICY, "same id: policy (%s)", a[1].detail);
	is_str(a[1].id, "s1", "the cached policy");
	ok(strstr(a[1].detail, "unchanged") != NULL, "taken from the cache");
	ok(a[2].calls == 1 && a[2].st == MTA_STS_POLICY, "a second lookup of the domain answered");
	is_int(a[3].calls, 0, "a cancelled lookup is not called");
	is_int(a[4].st, MTA_STS_NONE, "invalid domain: none");
	is_int(a[5].st, MTA_STS_NONE, "two records: none (%s)", a[5].detail);
	is_int(srv.queries, 3, "one TXT query per domain, none for the invalid one");

	pending = 2;
	memset(a, 0, 2 * sizeof(a[0]));
	a[0].base = a[1].base = base;
	a[0].pending = a[1].pending = &pending;
	mta_sts_lookup(s, "fresh.test", answer_cb, &a[0]);
	mta_sts_lookup(s, "newid.test", answer_cb, &a[1]);
	event_base_dispatch(base);
	ok(a[0].st == MTA_STS_POLICY && strcmp(a[0].id, "old") == 0,
	    "new id, fetch failed, fresh cache: the cached policy (%s)", a[0].detail);
	ok(a[1].st == MTA_STS_TEMPFAIL, "new id, fetch failed, expired cache: tempfail (%s)",
	    a[1].detail);

	/* Freed with a lookup in flight: no callback, nothing left behind. */
	a[0].calls = 0;
	mta_sts_lookup(s, "same.test", answer_cb, &a[0]);
out:
	mta_sts_free(s);
	is_int(a[0].calls, 0, "mta_sts_free: no callback for a lookup in flight");
	dnsclient_free(dns);
	if (srv.ev != NULL)
		event_free(srv.ev);
	close(srv.fd);
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
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
	test_lookup();
	return tap_done();
}
