/* test_resolver.c - the route planner's pure parts: local MX and hosts
 * databases, RFC 5321 §5.1 ordering and self-check, Postfix next hops,
 * the socketmap request parser, and the resolver configuration; and the
 * planner's explanation when the gateway overrides a local MX entry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/config.h"
#include "resolver/hostsdb.h"
#include "resolver/localmx.h"
#include "resolver/mxlist.h"
#include "resolver/resolver.h"
#include "resolver/routefmt.h"
#include "resolver/socketmap.h"
#include "tests/unit/tap.h"

static char err[512];

static void
test_localmx(void)
{
	const struct localmx_entry *e;
	struct localmx *db;

	db = localmx_parse("mx.txt",
	    "# comment\n"
	    "Crow.Example.COM 100 merlin.example.com\n"
	    "\n"
	    "crow.example.com 50 owl.example.com  ! trailing comment\n"
	    "other.test 0 gw.other.test.\n",
	    err, sizeof(err));
	ok(db != NULL, "local MX file parses (%s)", err);
	if (db == NULL)
		return;
	is_int(localmx_count(db), 3, "three entries");
	is_int(localmx_lookup(db, "crow.example.com", &e), 2, "two entries for crow");
	is_str(e[0].gateway, "merlin.example.com", "file order kept, lower case");
	is_int(e[0].preference, 100, "preference");
	is_int(e[1].preference, 50, "second entry");
	is_int(localmx_lookup(db, "other.test", &e), 1, "one entry for other.test");
	is_str(e[0].gateway, "gw.other.test", "trailing dot removed");
	is_int(localmx_lookup(db, "nope.test", &e), 0, "no entry");
	localmx_free(db);

	db = localmx_parse("mx.txt", "a.test 10\n", err, sizeof(err));
	ok(db == NULL && strcmp(err, "mx.txt:1: expected 'domain preference gateway'") == 0,
	    "two words refused: %s", err);
	db = localmx_parse("mx.txt", "\na.test 70000 gw.test\n", err, sizeof(err));
	ok(db == NULL && strncmp(err, "mx.txt:2: preference '70000'", 28) == 0,
	    "preference out of range: %s", err);
	db = localmx_parse("mx.txt", "a..test 1 gw.test\n", err, sizeof(err));
	ok(db == NULL && strstr(err, "'a..test' is not a valid domain name") != NULL,
	    "bad domain: %s", err);
	db = localmx_load("/nonexistent/mx.txt", err, sizeof(err));
	ok(db == NULL && strstr(err, "cannot read") != NULL, "missing file: %s", err);
}

static void
test_hostsdb(void)
{
	struct hostsdb *db =
	    hostsdb_parse("127.0.0.1 localhost\n"
	                  "2001:db8::5 Mixed.Example.Test\n"
	                  "192.0.2.5 mixed.example.test alias.example.test # comment\n"
	                  "not-an-address foo\n"
	                  "192.0.2.6 mixed.example.test\n");
	struct addr a[4];
	char buf[ADDR_STRLEN];

	ok(db != NULL, "hosts parse");
	if (db == NULL)
		return;
	is_int(hostsdb_lookup(db, "MIXED.example.test.", a, 4), 3, "three addresses");
	is_str(addr_host_str(&a[0], buf, sizeof(buf)), "192.0.2.5", "IPv4 first");
	is_str(addr_host_str(&a[1], buf, sizeof(buf)), "192.0.2.6", "file order");
	is_str(addr_host_str(&a[2], buf, sizeof(buf)), "2001:db8::5", "IPv6 last");
	is_int(hostsdb_lookup(db, "alias.example.test", a, 4), 1, "alias");
	is_int(hostsdb_lookup(db, "absent.test", a, 4), 0, "absent");
	is_int(hostsdb_lookup(db, "mixed.example.test", a, 1), 3, "count beyond max");
	is_int(hostsdb_skipped(db), 1, "bad line skipped");
	hostsdb_free(db);
}

static void
target(struct mx_target *t, unsigned pref, const char *host, const char *addr)
{
	struct addr a;

	memset(t, 0, sizeof(*t));
	t->pref = pref;
	snprintf(t->host, sizeof(t->host), "%s", host);
	if (addr != NULL && addr_parse(addr, 0, &a) == 0)
		mxlist_add_addr(t, &a);
}

static void
test_mxlist_sort(void)
{
	struct mx_target v[5];
	int seen[3][3] = {{0}};
	bool sorted = true;

	for (int run = 0; run < 300; run++) {
		target(&v[0], 30, "c", NULL);
		target(&v[1], 10, "a0", NULL);
		target(&v[2], 10, "a1", NULL);
		target(&v[3], 20, "b", NULL);
		target(&v[4], 10, "a2", NULL);
		mxlist_sort(v, 5);
		sorted = sorted && v[3].pref == 20 && v[4].pref == 30;
		for (int i = 0; i < 3; i++)
			seen[i][v[i].host[1] - '0']++;
	}
	ok(sorted, "ascending preference");
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			ok(seen[i][j] > 40, "position %d held a%d %d times of 300", i, j,
			    seen[i][j]);
}

static void
test_mxlist_self(void)
{
	struct mx_target v[4];
	struct addr self;

	addr_parse("192.0.2.99", 0, &self);
	target(&v[0], 5, "mx1.test", "192.0.2.1");
	target(&v[1], 10, "me.test", "192.0.2.2");
	target(&v[2], 10, "mx2.test", "192.0.2.3");
	target(&v[3], 20, "mx3.test", "192.0.2.99");
	is_int(mxlist_find_self(v, 4, "ME.test", NULL, 0, false), 1, "self by name");
	is_int(mxlist_keep_before(v, 4, 1), 1, "equal preference dropped with self");
	is_int(mxlist_find_self(v, 4, NULL, &self, 1, true), 3, "self by address");
	is_int(mxlist_keep_before(v, 4, 3), 3, "worse ones dropped");
	is_int(mxlist_find_self(v, 4, "other.test", &self, 0, true), 4, "no self");
	is_int(mxlist_keep_before(v, 4, 4), 4, "all kept");
	is_int(mxlist_keep_before(v, 4, 0), 0, "self best: nothing kept");
	mxlist_clear(v, 4);

	target(&v[0], 0, "dual", "2001:db8::1");
	{
		struct addr a;
		char buf[ADDR_STRLEN];

		addr_parse("192.0.2.1", 0, &a);
		mxlist_add_addr(&v[0], &a);
		is_str(addr_host_str(&v[0].addrs[0], buf, sizeof(buf)), "192.0.2.1",
		    "IPv4 sorted before IPv6");
		is_int(v[0].naddrs, 2, "two addresses");
	}
	mxlist_clear(v, 1);
}

static void
test_postfix_nexthop(void)
{
	struct route_result res;
	struct route_hop hops[2];
	struct addr a[2];
	char out[256];

	memset(&res, 0, sizeof(res));
	memset(hops, 0, sizeof(hops));
	addr_parse("192.0.2.1", 0, &a[0]);
	addr_parse("2001:db8::1", 0, &a[1]);
	hops[0] = (struct route_hop){10, "mx1.test", a, 1, ROUTE_SRC_DNS_MX, false};
	hops[1] = (struct route_hop){0, "h.test", a, 2, ROUTE_SRC_HOSTS, false};
	res.hops = hops;
	res.nhops = 2;
	res.status = ROUTE_OK;
	routefmt_postfix(&res, 25, out, sizeof(out));
	is_str(out, "OK smtp:[mx1.test]:25, [192.0.2.1]:25, [2001:db8::1]:25",
	    "names for DNS hops, addresses for hosts hops");
	res.status = ROUTE_PERMFAIL;
	snprintf(res.dsn, sizeof(res.dsn), "5.1.10");
	res.reason = (char *)"x does not accept mail";
	routefmt_postfix(&res, 25, out, sizeof(out));
	is_str(out, "OK error:5.1.10 x does not accept mail", "permanent -> error transport");
	res.status = ROUTE_TEMPFAIL;
	snprintf(res.dsn, sizeof(res.dsn), "4.4.3");
	routefmt_postfix(&res, 25, out, sizeof(out));
	is_str(out, "TEMP 4.4.3 x does not accept mail", "temporary -> TEMP");
	res.status = ROUTE_LOCAL;
	routefmt_postfix(&res, 25, out, sizeof(out));
	is_str(out, "OK local:", "local");
	res.status = ROUTE_OK;
	is_int(routefmt_postfix(&res, 25, out, 12), 11, "truncated to fit");
}

static void
test_socketmap_parse(void)
{
	char name[16], key[64];
	const char *req = "24:mxroute user@example.com,";

	is_int(socketmap_parse_request(req, strlen(req), name, sizeof(name), key, sizeof(key)), 28,
	    "whole netstring used");
	is_str(name, "mxroute", "name");
	is_str(key, "user@example.com", "key");
	is_int(socketmap_parse_request(req, 10, name, sizeof(name), key, sizeof(key)), 0,
	    "partial: need more");
	is_int(socketmap_parse_request("2", 1, name, sizeof(name), key, sizeof(key)), 0,
	    "length only: need more");
	is_int(socketmap_parse_request("3:a b;", 6, name, sizeof(name), key, sizeof(key)), -1,
	    "missing comma");
	is_int(socketmap_parse_request("x:a b,", 6, name, sizeof(name), key, sizeof(key)), -1,
	    "no length");
	is_int(socketmap_parse_request("03:a b,", 7, name, sizeof(name), key, sizeof(key)), -1,
	    "leading zero");
	is_int(socketmap_parse_request("3:abc,", 6, name, sizeof(name), key, sizeof(key)), -1,
	    "no space");
	is_int(socketmap_parse_request("99999:", 6, name, sizeof(name), key, sizeof(key)), -1,
	    "too long");
	is_int(socketmap_parse_request("2:a ,", 5, name, sizeof(name), key, sizeof(key)), -1,
	    "empty key");
}

static void
test_config_statements(void)
{
	struct config *cfg = config_load_string("t.conf",
	    "resolver { nameservers { 127.0.0.1 port 5300; ::1; }; cache-size 50;\n"
	    "  zones { \"Example.TEST\"; }; gateway \"[IPv6:2001:db8::1]\";\n"
	    "  timeout 2s; attempts 3; };\n",
	    err, sizeof(err));

	ok(cfg != NULL, "resolver block loads (%s)", err);
	if (cfg == NULL)
		return;
	is_int(cfg->resolver.nameservers.n, 2, "two nameservers");
	is_int(addr_port(&cfg->resolver.nameservers.v[0]), 5300, "port given");
	is_int(addr_port(&cfg->resolver.nameservers.v[1]), 53, "default port 53");
	is_int(cfg->resolver.cache_size, 50, "cache-size");
	is_str(cfg->resolver.zones.v[0], "example.test", "zones lower case");
	is_int(cfg->resolver.timeout, 2, "timeout");
	is_int(cfg->resolver.attempts, 3, "attempts");
	config_free(cfg);
	cfg = config_load_string(
	    "t.conf", "resolver { gateway \"[300.1.1.1]\"; };", err, sizeof(err));
	ok(cfg == NULL, "bad literal gateway refused: %s", err);
	config_free(cfg);
}

static void
test_names(void)
{
	is_str(route_source_str(ROUTE_SRC_LOCAL_MX), "local-mx", "source names");
	is_str(route_source_str(ROUTE_SRC_LITERAL), "literal", "literal");
	is_str(route_status_str(ROUTE_TEMPFAIL), "temporary", "status names");
}

static void
route_cb(struct route_result *res, void *arg)
{
	struct route_result **out = arg;

	*out = res;
}

static bool
has_step(const struct route_result *res, const char *text)
{
	for (size_t i = 0; i < res->nsteps; i++)
		if (strstr(res->steps[i], text) != NULL)
			return true;
	return false;
}

/* Route `dest` with RESOLVER_EXPLAIN; the caller frees the result. */
static struct route_result *
route_once(struct event_base *base, struct resolver *r, const char *dest)
{
	struct route_result *res = NULL;

	resolver_route(r, dest, RESOLVER_EXPLAIN, route_cb, &res);
	event_base_loop(base, EVLOOP_ONCE);
	return res;
}

/* The gateway (outside the zones) comes before the local MX database: an
 * entry it overrides is named in the explanation, never silently ignored. */
static void
test_localmx_overridden_by_gateway(void)
{
	char path[] = "/tmp/test_resolver.XXXXXX", text[512];
	const char *mx = "outside.example 5 gw.outside.example\ninside.test 7 gw.inside.test\n";
	struct resolver_local local = {.hostname = "relay.inside.test"};
	struct event_base *base = event_base_new();
	struct route_result *res;
	struct config *cfg;
	struct resolver *r;
	int fd = mkstemp(path);

	ok(fd != -1 && write(fd, mx, strlen(mx)) == (ssize_t)strlen(mx), "local MX file");
	close(fd);
	snprintf(text, sizeof(text),
	    "resolver { nameservers { 127.0.0.1 port 9; }; local-mx \"%s\";\n"
	    "  zones { \"inside.test\"; }; gateway \"[192.0.2.9]\"; };\n",
	    path);
	cfg = config_load_string("t.conf", text, err, sizeof(err));
	r = cfg != NULL ? resolver_new(base, &cfg->resolver, &local, err, sizeof(err)) : NULL;
	ok(r != NULL, "resolver with a gateway and a local MX file (%s)", err);
	if (r == NULL)
		goto out;
	res = route_once(base, r, "user@outside.example");
	ok(res != NULL && res->nhops == 1 && res->hops[0].source == ROUTE_SRC_GATEWAY,
	    "outside the zones: the gateway");
	ok(res != NULL &&
	        has_step(res,
	            "local MX database: 1 entry for outside.example (line 1: "
	            "preference 5, gw.outside.example) overridden by gateway "
	            "[192.0.2.9]"),
	    "the overridden local MX entry is explained");
	resolver_result_free(res);
	res = route_once(base, r, "no-entry.example");
	ok(res != NULL && !has_step(res, "overridden"), "no entry: nothing overridden");
	resolver_result_free(res);
out:
	resolver_free(r);
	config_free(cfg);
	event_base_free(base);
	unlink(path);
}

int
main(void)
{
	test_localmx();
	test_hostsdb();
	test_mxlist_sort();
	test_mxlist_self();
	test_postfix_nexthop();
	test_socketmap_parse();
	test_config_statements();
	test_names();
	test_localmx_overridden_by_gateway();
	return tap_done();
}
