/* test_zone.c - zone loading, prepared answers, rotation and the zone store. */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "broker/answer.h"
#include "broker/prep.h"
#include "broker/zone.h"
#include "broker/zonestore.h"
#include "common/addr.h"
#include "common/log.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/test_zone.XXXXXX";

static const char *ZONE =
    "$ORIGIN example.test.\n"
    "$TTL 300\n"
    "@ SOA ns1 hostmaster 7 3600 900 604800 60\n"
    "@ NS ns1\n"
    "@ MX 10 mx1\n"
    "ns1 A 192.0.2.1\n"
    "mx1 A 192.0.2.2\n"
    "mx1 AAAA 2001:db8::2\n"
    "www CNAME mx1\n"
    "*.wild A 192.0.2.9\n"
    "sub NS ns.sub\n"
    "ns.sub A 192.0.2.53\n"
    "big TXT \"" /* a long TXT for truncation */
    "0123456789012345678901234567890123456789012345678901234567890123456789"
    "0123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "$INCLUDE inc.zone\n"
    "after A 192.0.2.100\n"
    "alias CNAME smtp\n";

static char *
write_file(const char *name, const char *text)
{
	static char path[4][256];
	static int k;
	char *p = path[k++ % 4];
	FILE *f;

	snprintf(p, 256, "%s/%s", dir, name);
	f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	return p;
}

/* Ask a question; returns the parsed reply (free it) or NULL. */
static ldns_pkt *
ask(struct zone *const *zones, size_t n, const char *name, ldns_rr_type t, bool tcp, uint16_t edns,
    struct answer_result *res)
{
	static uint8_t out[65535];
	ldns_pkt *q = NULL, *r = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;

	if (ldns_pkt_query_new_frm_str(&q, name, t, LDNS_RR_CLASS_IN, 0) != LDNS_STATUS_OK)
		return NULL;
	ldns_pkt_set_id(q, 4242);
	if (edns != 0)
		ldns_pkt_set_edns_udp_size(q, edns);
	ldns_pkt2wire(&wire, q, &len);
	if (answer_query(zones, n, wire, len, tcp, out, tcp ? sizeof(out) : ANSWER_EDNS_SIZE, res,
	        NULL) == ANSWER_REPLY)
		ldns_wire2pkt(&r, out, res->len);
	free(wire);
	ldns_pkt_free(q);
	return r;
}

static void
test_load_errors(void)
{
	char err[512];
	struct zone *z;
	char want[600];

	write_file("bad1.zone",
	    "$ORIGIN example.test.\n@ 300 SOA ns h 1 2 3 4 5\n"
	    "@ NS ns\nx A 1.2.3\n");
	z = zone_load("example.test",
	    write_file("bad1.zone",
	        "$ORIGIN example.test.\n"
	        "@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nx A 1.2.3\n"),
	    err, sizeof(err));
	ok(z == NULL, "a bad address is refused");
	snprintf(want, sizeof(want), "%s/bad1.zone:4:", dir);
	ok(strncmp(err, want, strlen(want)) == 0, "error at file:4 (%s)", err);

	z = zone_load("example.test",
	    write_file("bad2.zone",
	        "$ORIGIN example.test.\n"
	        "@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nwww CNAME x\nwww A 192.0.2.1\n"),
	    err, sizeof(err));
	ok(z == NULL && strstr(err, "CNAME and other data") != NULL, "CNAME conflict: %s", err);
	z = zone_load("example.test",
	    write_file("bad3.zone",
	        "$ORIGIN example.test.\n"
	        "@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nx.other.test. A 192.0.2.1\n"),
	    err, sizeof(err));
	ok(z == NULL && strstr(err, ":4: record outside the zone") != NULL, "out of zone: %s", err);
	z = zone_load("example.test",
	    write_file("bad4.zone",
	        "$ORIGIN example.test.\n"
	        "@ 300 NS ns\n"),
	    err, sizeof(err));
	ok(z == NULL && strstr(err, "no SOA") != NULL, "no SOA: %s", err);
	z = zone_load("example.test",
	    write_file("bad5.zone",
	        "$ORIGIN example.test.\n"
	        "@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\n$INCLUDE nothere.zone\n"),
	    err, sizeof(err));
	ok(z == NULL && strstr(err, "bad5.zone:4: $INCLUDE") != NULL, "missing include: %s", err);
	z = zone_load("example.test", "/nonexistent/x.zone", err, sizeof(err));
	ok(z == NULL && strstr(err, "/nonexistent/x.zone:0: cannot read") != NULL, "%s", err);
}

/*
 * Only regular files are zones: a FIFO would block the reload for ever
 * (alarm() turns a hang into a failure), a folder is no zone.
 */
static void
test_special_files(void)
{
	char err[512], fifo[300], sub[300];
	struct zone *z;

	snprintf(fifo, sizeof(fifo), "%s/fifo.zone", dir);
	snprintf(sub, sizeof(sub), "%s/folder.zone", dir);
	if (mkfifo(fifo, 0600) == -1 || mkdir(sub, 0700) == -1) {
		ok(false, "mkfifo/mkdir");
		return;
	}
	alarm(10);
	z = zone_load("example.test", fifo, err, sizeof(err));
	ok(z == NULL && strstr(err, "fifo.zone:0: cannot read: not a regular file") != NULL,
	    "a FIFO is refused, not read: %s", err);
	z = zone_load("example.test", sub, err, sizeof(err));
	ok(z == NULL && strstr(err, "folder.zone:0: cannot read: not a regular file") != NULL,
	    "a folder is refused: %s", err);
	z = zone_load("example.test",
	    write_file("incfifo.zone",
	        "$ORIGIN example.test.\n"
	        "@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\n$INCLUDE fifo.zone\n"),
	    err, sizeof(err));
	ok(z == NULL && strstr(err, "incfifo.zone:4: $INCLUDE") != NULL &&
	        strstr(err, "not a regular file") != NULL,
	    "an $INCLUDEd FIFO is refused at its line: %s", err);
	alarm(0);
	unlink(fifo);
	rmdir(sub);
}

struct build_arg {
	const char *file;
	uint64_t digest;
	size_t nxlen;
	int failures;
};

/* Load and compile the zone many times over (zone_prep.c keeps no statics). */
static void *
build_many_cb(void *arg)
{
	struct build_arg *a = arg;
	char err[512];

	for (int i = 0; i < 20; i++) {
		struct zone *z = zone_load("example.test", a->file, err, sizeof(err));
		const struct prep *p = z != NULL ? zone_answer(z,
		                                       (const uint8_t *)"\x02no\x07"
		                                                        "example\x04test",
		                                       17, 1)
		                                 : NULL;

		if (z == NULL || p == NULL || (a->digest != 0 && zone_digest(z) != a->digest) ||
		    (a->nxlen != 0 && p->len != a->nxlen))
			a->failures++;
		else {
			a->digest = zone_digest(z);
			a->nxlen = p->len;
		}
		zone_free(z);
	}
	return NULL;
}

/* Two threads build zones at once and get the same answers. */
static void
test_parallel_builds(const char *file)
{
	struct build_arg a = {file, 0, 0, 0}, b = {file, 0, 0, 0};
	pthread_t ta, tb;

	ok(pthread_create(&ta, NULL, build_many_cb, &a) == 0 &&
	        pthread_create(&tb, NULL, build_many_cb, &b) == 0,
	    "two builder threads");
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ok(a.failures == 0 && b.failures == 0 && a.digest == b.digest && a.nxlen == b.nxlen &&
	        a.nxlen > 0,
	    "parallel builds agree (%d, %d failures)", a.failures, b.failures);
}

static void
test_answers(struct zone *z)
{
	struct zone *zones[1] = {z};
	struct answer_result res;
	ldns_rdf *wname;
	ldns_pkt *r;

	r = ask(zones, 1, "MX1.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	ok(r != NULL && ldns_pkt_get_rcode(r) == LDNS_RCODE_NOERROR && ldns_pkt_aa(r) &&
	        ldns_pkt_ancount(r) == 1 && ldns_pkt_nscount(r) == 1,
	    "exact A answer");
	ok(r != NULL && ldns_pkt_id(r) == 4242 && !ldns_pkt_ra(r), "id echoed, RA clear");
	ldns_pkt_free(r);
	r = ask(zones, 1, "nope.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	ok(r != NULL && ldns_pkt_get_rcode(r) == LDNS_RCODE_NXDOMAIN && ldns_pkt_nscount(r) == 1 &&
	        ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_authority(r), 0)) == 60,
	    "NXDOMAIN, SOA TTL 60");
	ldns_pkt_free(r);
	r = ask(zones, 1, "a.b.wild.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	wname = ldns_dname_new_frm_str("a.b.wild.example.test.");
	ok(r != NULL && ldns_pkt_ancount(r) == 1 &&
	        ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(r), 0)), wname) ==
	            0,
	    "wildcard synthesised with the query name");
	ldns_rdf_deep_free(wname);
	ldns_pkt_free(r);
	r = ask(zones, 1, "www.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	ok(r != NULL && ldns_pkt_ancount(r) == 2, "CNAME followed");
	ldns_pkt_free(r);
	r = ask(zones, 1, "x.ns.sub.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	ok(r != NULL && !ldns_pkt_aa(r) && ldns_pkt_ancount(r) == 0 && ldns_pkt_nscount(r) == 1 &&
	        ldns_pkt_arcount(r) == 1,
	    "referral with glue");
	ldns_pkt_free(r);
	r = ask(zones, 1, "after.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	ok(r != NULL && ldns_pkt_ancount(r) == 1, "record after $INCLUDE");
	ldns_pkt_free(r);
	r = ask(zones, 1, "inc.example.test.", LDNS_RR_TYPE_TXT, false, 0, &res);
	ok(r != NULL && ldns_pkt_ancount(r) == 1, "record from the included file");
	ldns_pkt_free(r);
	r = ask(zones, 1, "other.test.", LDNS_RR_TYPE_A, false, 0, &res);
	ok(r != NULL && ldns_pkt_get_rcode(r) == LDNS_RCODE_REFUSED && !ldns_pkt_aa(r), "REFUSED");
	ldns_pkt_free(r);
	r = ask(zones, 1, "big.example.test.", LDNS_RR_TYPE_TXT, false, 0, &res);
	ok(r != NULL && ldns_pkt_tc(r) == false && ldns_pkt_ancount(r) == 1, "big TXT fits 512");
	ldns_pkt_free(r);
}

static void
test_rotation(struct zonestore *zs)
{
	struct addr a[40];
	const struct zsnap *s;
	struct answer_result res;
	ldns_pkt *r, *r2;
	char text[32];

	for (int i = 0; i < 40; i++) {
		snprintf(text, sizeof(text), "198.51.100.%d", i + 1);
		addr_parse(text, 0, &a[i]);
	}
	ok(zonestore_replace_addrs(zs, "smtp.example.test", LDNS_RR_TYPE_A, 45, a, 6,
	       ZONE_RRSET_ROTATE | ZONE_RRSET_TRIM) == 0,
	    "publish 6 addresses");
	s = zonestore_snapshot(zs);
	is_int(zone_serial(s->zones[0]), 8, "serial bumped");
	r = ask(s->zones, s->n, "smtp.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	r2 = ask(s->zones, s->n, "smtp.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	ok(r != NULL && r2 != NULL && ldns_pkt_ancount(r) == 6 && ldns_pkt_ancount(r2) == 6,
	    "six A records");
	if (r != NULL && r2 != NULL) {
		const ldns_rr_list *x = ldns_pkt_answer(r), *y = ldns_pkt_answer(r2);

		ok(ldns_rdf_compare(ldns_rr_rdf(ldns_rr_list_rr(x, 1), 0),
		       ldns_rr_rdf(ldns_rr_list_rr(y, 0), 0)) == 0,
		    "rotated by one");
		ok(ldns_rr_ttl(ldns_rr_list_rr(x, 0)) == 45, "TTL 45");
	}
	ldns_pkt_free(r);
	ldns_pkt_free(r2);
	r = ask(s->zones, s->n, "alias.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	r2 = ask(s->zones, s->n, "alias.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	ok(r != NULL && r2 != NULL && ldns_pkt_ancount(r) == 7 && ldns_pkt_ancount(r2) == 7,
	    "CNAME to the published name");
	if (r != NULL && r2 != NULL)
		ok(ldns_rdf_compare(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(r), 2), 0),
		       ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(r2), 1), 0)) == 0,
		    "rotated behind the CNAME too");
	ldns_pkt_free(r);
	ldns_pkt_free(r2);
	ok(zonestore_replace_addrs(zs, "smtp.example.test", LDNS_RR_TYPE_A, 45, a, 40,
	       ZONE_RRSET_ROTATE | ZONE_RRSET_TRIM) == 0,
	    "publish 40 addresses");
	s = zonestore_snapshot(zs);
	r = ask(s->zones, s->n, "smtp.example.test.", LDNS_RR_TYPE_A, false, 0, &res);
	ok(r != NULL && !ldns_pkt_tc(r) && ldns_pkt_ancount(r) < 40 && ldns_pkt_ancount(r) > 20 &&
	        res.len <= 512,
	    "trimmed to 512 without TC (%zu bytes)", res.len);
	ldns_pkt_free(r);
	r = ask(s->zones, s->n, "smtp.example.test.", LDNS_RR_TYPE_A, true, 0, &res);
	ok(r != NULL && ldns_pkt_ancount(r) == 40, "whole over TCP");
	ldns_pkt_free(r);
	ok(zonestore_replace_addrs(zs, "smtp.other.test", LDNS_RR_TYPE_A, 45, a, 1, 0) == -1,
	    "a name outside every zone is refused");
	ok(zonestore_replace_addrs(zs, "smtp.example.test", LDNS_RR_TYPE_AAAA, 45, a, 1, 0) == -1,
	    "IPv4 address for AAAA is refused");
}

static void
test_epochs(struct zonestore *zs, const char *file)
{
	char err[256];
	const struct zsnap *s = zonestore_enter(zs, 0);
	struct zone *z;

	zonestore_reclaim(zs);
	is_int((long long)zonestore_pending(zs), 0, "nothing pending while quiet");
	z = zone_load("example.test", file, err, sizeof(err));
	ok(zonestore_set_zone(zs, z) == 0, "reload of the same file published");
	is_int(zone_serial(zonestore_snapshot(zs)->zones[0]), 9, "same file: serial kept");
	write_file("example.zone",
	    "$ORIGIN example.test.\n@ 300 SOA ns1 h 20 1 1 1 60\n"
	    "@ NS ns1\nns1 A 192.0.2.1\n");
	z = zone_load("example.test", file, err, sizeof(err));
	ok(zonestore_set_zone(zs, z) == 0, "reload published");
	ok(zonestore_pending(zs) > 0, "old snapshot kept while a reader is inside");
	ok(s->n == 1 && zone_serial(s->zones[0]) == 9, "reader still sees its snapshot");
	zonestore_leave(zs, 0);
	zonestore_reclaim(zs);
	is_int((long long)zonestore_pending(zs), 0, "freed after the reader left");
	s = zonestore_snapshot(zs);
	is_int(zone_serial(s->zones[0]), 20, "new file serial served");
	ok(zone_answer(
	       s->zones[0], (const uint8_t *)"\004smtp\007example\004test", 19, LDNS_RR_TYPE_A)
	            ->an == 40,
	    "published RRset kept over the reload");
}

/* SIGHUP removed a zone: gone for new readers, kept for one still inside. */
static void
test_remove(struct zonestore *zs, const char *file)
{
	char err[256];
	const struct zsnap *s;

	s = zonestore_enter(zs, 0);
	ok(zonestore_remove_zone(zs, "nope.test") == 0, "removing an unknown zone: no-op");
	ok(zonestore_remove_zone(zs, "example.test") == 0, "zone removed");
	is_int((long long)zonestore_snapshot(zs)->n, 0, "no zone served");
	ok(zonestore_find(zs, "example.test") == NULL, "not found any more");
	ok(s->n == 1 && zone_serial(s->zones[0]) == 20, "a reader inside still sees it");
	zonestore_leave(zs, 0);
	zonestore_reclaim(zs);
	is_int((long long)zonestore_pending(zs), 0, "freed after the reader left");
	ok(zonestore_set_zone(zs, zone_load("example.test", file, err, sizeof(err))) == 0,
	    "added back");
	ok(zone_answer(zonestore_snapshot(zs)->zones[0],
	       (const uint8_t *)"\004smtp\007example\004test", 19, LDNS_RR_TYPE_A)
	            ->an == 40,
	    "published RRset applied again when added back");
}

int
main(void)
{
	char err[512];
	struct zone *z;
	struct zonestore *zs;
	const char *file;

	log_init("test_zone", LOG_LEVEL_ERR, false);
	if (mkdtemp(dir) == NULL)
		return 1;
	test_load_errors();
	test_special_files();
	write_file("inc.zone", "inc TXT \"included\"\n");
	file = write_file("example.zone", ZONE);
	z = zone_load("example.test", file, err, sizeof(err));
	ok(z != NULL, "zone loads (%s)", z ? "" : err);
	if (z == NULL)
		return tap_done();
	is_int(zone_serial(z), 7, "serial");
	is_int((long long)zone_rr_count(z), 14, "record count");
	test_answers(z);
	test_parallel_builds(file);
	zs = zonestore_new(1);
	ok(zonestore_set_zone(zs, z) == 0, "zone published");
	test_rotation(zs);
	test_epochs(zs, file);
	test_remove(zs, file);
	zonestore_free(zs);
	return tap_done();
}
