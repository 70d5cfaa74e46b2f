/*
 * test_cluster.c - the cluster statements brokerd relies on, the key check,
 * the state file (broker/statefile.h) and the health checks
 * (broker/healthcheck.h) against loopback listeners, and the rise/fall
 * counter both share (broker/risefall.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "broker/cluster.h"
#include "broker/healthcheck.h"
#include "broker/risefall.h"
#include "broker/statefile.h"
#include "broker/zone.h"
#include "broker/zonestore.h"
#include "common/addr.h"
#include "common/config.h"
#include "tests/unit/tap.h"

#define SECRET "bWVyZ2UgbWUgaW50byBhIHJlYWwga2V5Cg=="

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
test_statements(void)
{
	struct config *cfg =
	    load("key \"k\" { algorithm hmac-sha256; secret \"" SECRET "\"; };\n"
	         "cluster \"SMTP.mail.example.test\" {\n"
	         "  dns-ttl 0; dns-refresh 5; polling-interval 2; max-members 2;\n"
	         "  members { 10.0.0.1 weight 3; 10.0.0.2 drain; 10.0.0.3 check 10.1.0.3; "
	         "2001:db8::1; };\n"
	         "  failover 10.0.0.9; failover 2001:db8::9; masters { 192.0.2.53; };\n"
	         "  key \"k\"; health-check smtp 2525; hysteresis 5; policy weighted;\n"
	         "  fall 2; rise 2;\n};\n");
	const struct config_cluster *c;
	char buf[ADDR_STRLEN];

	ok(cfg != NULL, "cluster with every extension loads");
	if (cfg == NULL)
		return;
	c = &cfg->clusters[0];
	is_str(c->name, "smtp.mail.example.test", "name lower-cased");
	is_int(c->dns_ttl, 0, "TTL 0 allowed");
	is_int(c->nmembers, 4, "members");
	is_int(c->members[0].weight, 3, "weight");
	ok(c->members[1].drain, "drain");
	is_str(addr_host_str(&c->members[2].check, buf, sizeof(buf)), "10.1.0.3", "check address");
	is_str(
	    addr_host_str(&c->members[2].addr, buf, sizeof(buf)), "10.0.0.3", "answered address");
	ok(c->failover4.len != 0 && c->failover6.len != 0, "failover per family");
	is_int(c->health, CONFIG_HEALTH_SMTP, "health-check smtp");
	is_int(c->health_port, 2525, "health port");
	is_int(c->policy, CONFIG_POLICY_WEIGHTED, "policy");
	is_int(c->fall, 2, "fall");
	is_int(c->metric_port, CONFIG_PORT_METRICS, "default metric port");
	is_int(clusters_check_config(cfg), 0, "sha256 key accepted");
	config_free(cfg);
}

static void
test_defaults_and_key(void)
{
	struct config *cfg = load("cluster \"a.test\" { members { 10.0.0.1; }; protocol lbcd; };\n"
	                          "key \"m\" { algorithm hmac-md5; secret \"" SECRET "\"; };\n"
	                          "cluster \"b.test\" { members { 10.0.0.1; }; key \"m\"; };\n");

	ok(cfg != NULL, "OpenVMS-style clusters load");
	if (cfg == NULL)
		return;
	is_int(cfg->clusters[0].dns_ttl, 45, "dns-ttl 45");
	is_int(cfg->clusters[0].dns_refresh, 30, "dns-refresh 30");
	is_int(cfg->clusters[0].polling_interval, 30, "polling-interval 30");
	is_int(cfg->clusters[0].fall, 3, "three misses");
	is_int(cfg->clusters[0].metric_port, CONFIG_PORT_LBCD, "lbcd port");
	fprintf(stderr, "# expected error follows\n");
	is_int(clusters_check_config(cfg), -1, "md5 key refused for metric polls");
	config_free(cfg);
}

static void
test_statefile(void)
{
	char dir[] = "/tmp/test_cluster.XXXXXX", path[128];
	struct statefile *sf;
	struct addr v[3], out[4];

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/brokerd.state", dir);
	sf = statefile_load(path);
	ok(sf != NULL, "missing file: empty state");
	is_int(statefile_get(sf, "smtp.test", AF_INET, out, 4), 0, "nothing saved");
	addr_parse("192.0.2.1", 0, &v[0]);
	addr_parse("192.0.2.2", 0, &v[1]);
	addr_parse("2001:db8::1", 0, &v[2]);
	statefile_set(sf, "smtp.test", AF_INET, v, 2);
	statefile_set(sf, "smtp.test", AF_INET6, &v[2], 1);
	is_int(statefile_save(sf), 0, "saved");
	statefile_free(sf);
	sf = statefile_load(path);
	is_int(statefile_get(sf, "smtp.test", AF_INET, out, 4), 2, "A set back");
	ok(addr_equal_host(&out[1], &v[1]), "in order");
	is_int(statefile_get(sf, "smtp.test", AF_INET, out, 1), 1, "capped by max");
	is_int(statefile_get(sf, "smtp.test", AF_INET6, out, 4), 1, "AAAA set back");
	statefile_free(sf);
	FILE *f = fopen(path, "w");
	fputs("{ not json", f);
	fclose(f);
	fprintf(stderr, "# expected warning follows\n");
	sf = statefile_load(path);
	ok(sf != NULL && statefile_get(sf, "smtp.test", AF_INET, out, 4) == 0,
	    "a corrupt file is ignored, not fatal");
	statefile_free(sf);
	unlink(path);
	rmdir(dir);
}

/* brokerd-ctl drains: kept across a save and load, pruned, cleared. */
static bool
keep_a_cb(const char *cluster, const char *member, void *arg)
{
	(void)arg;
	return strcmp(cluster, "a.test") == 0 && strcmp(member, "192.0.2.1") == 0;
}

static void
test_statefile_drains(void)
{
	char dir[] = "/tmp/test_cluster.XXXXXX", path[128], big[400];
	struct statefile_drain d = {"disk swap", "root", 1700000000}, out;
	struct statefile *sf;

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/brokerd.state", dir);
	sf = statefile_load(path);
	ok(statefile_get_drain(sf, "a.test", "192.0.2.1", &out) == -1, "no drain saved");
	is_int(statefile_set_drain(sf, "a.test", "192.0.2.1", &d), 0, "drain set");
	is_int(statefile_set_drain(sf, "a.test", "192.0.2.2", &d), 0, "second drain set");
	is_int(statefile_set_drain(sf, "b.test", "192.0.2.1", &d), 0, "other cluster");
	is_int(statefile_save(sf), 0, "saved");
	statefile_free(sf);
	sf = statefile_load(path);
	ok(statefile_get_drain(sf, "a.test", "192.0.2.1", &out) == 0 &&
	        strcmp(out.reason, "disk swap") == 0 && strcmp(out.who, "root") == 0 &&
	        out.since == 1700000000,
	    "drain back after a restart");
	is_int((long long)statefile_prune_drains(sf, keep_a_cb, NULL), 2, "two pruned");
	ok(statefile_get_drain(sf, "a.test", "192.0.2.2", &out) == -1, "pruned one gone");
	ok(statefile_get_drain(sf, "a.test", "192.0.2.1", &out) == 0, "kept one stays");
	is_int(statefile_set_drain(sf, "a.test", "192.0.2.1", NULL), 0, "undrained");
	ok(statefile_get_drain(sf, "a.test", "192.0.2.1", &out) == -1, "gone");
	is_int(statefile_set_drain(sf, "x.test", "192.0.2.9", NULL), 0, "undrain of none: ok");
	statefile_free(sf);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	FILE *f = fopen(path, "w");
	fprintf(f,
	    "{\"version\": 1, \"clusters\": {}, \"drains\": {\"a.test\": {\"192.0.2.1\": "
	    "{\"reason\": \"%s\", \"who\": 7}}}}",
	    big);
	fclose(f);
	sf = statefile_load(path);
	ok(statefile_get_drain(sf, "a.test", "192.0.2.1", &out) == 0 &&
	        strlen(out.reason) == STATEFILE_REASON_MAX - 1 && out.who[0] == '\0' &&
	        out.since == 0,
	    "a long reason is cut, a bad who or since is empty");
	statefile_free(sf);
	unlink(path);
	rmdir(dir);
}

struct hc_result {
	int done;
	bool ok;
	char why[HEALTHCHECK_WHY_LEN];
	struct event_base *base;
};

static void
hc_cb(bool okay, const char *why, void *arg)
{
	struct hc_result *r = arg;

	r->done++;
	r->ok = okay;
	snprintf(r->why, sizeof(r->why), "%s", why);
	event_base_loopbreak(r->base);
}

static void
banner_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	const char *banner = arg;

	(void)l;
	(void)sa;
	(void)len;
	if (write(fd, banner, strlen(banner)) < 0)
		tap_diag("write failed");
	close(fd);
}

static void
run_check(struct event_base *base, enum config_health kind, const char *banner, bool listening,
    struct hc_result *r)
{
	struct addr a;
	struct evconnlistener *l = NULL;
	struct healthcheck *hc = healthcheck_new(base, hc_cb, r);
	struct timeval limit = {5, 0};
	int fd = sock_bind(
	    (addr_parse("127.0.0.1", 0, &a), &a), SOCK_STREAM, listening ? SOCK_F_LISTEN : 0);

	sock_local_addr(fd, &a);
	if (listening)
		l = evconnlistener_new(
		    base, banner_cb, (void *)banner, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	else
		close(fd); /* a port nobody listens on */
	memset(r, 0, sizeof(*r));
	r->base = base;
	healthcheck_start(hc, kind, &a, 2000);
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	if (l != NULL)
		evconnlistener_free(l);
	healthcheck_free(hc);
}

static void
test_healthcheck(void)
{
	struct event_base *base = event_base_new();
	struct hc_result r;

	run_check(base, CONFIG_HEALTH_TCP, "", true, &r);
	ok(r.done == 1 && r.ok, "tcp: listening port passes (%s)", r.why);
	run_check(base, CONFIG_HEALTH_TCP, "", false, &r);
	ok(r.done == 1 && !r.ok && strstr(r.why, "refused") != NULL, "tcp: closed port fails (%s)",
	    r.why);
	run_check(base, CONFIG_HEALTH_SMTP, "220 mx ESMTP\r\n", true, &r);
	ok(r.done == 1 && r.ok, "smtp: 220 passes (%s)", r.why);
	run_check(base, CONFIG_HEALTH_SMTP, "220-first\r\n220 last\r\n", true, &r);
	ok(r.done == 1 && r.ok, "smtp: multi-line 220 passes");
	run_check(base, CONFIG_HEALTH_SMTP, "554 no service\r\n", true, &r);
	ok(r.done == 1 && !r.ok && strstr(r.why, "554") != NULL, "smtp: 554 fails (%s)", r.why);
	run_check(base, CONFIG_HEALTH_SMTP, "", true, &r);
	ok(r.done == 1 && !r.ok, "smtp: closed without banner fails (%s)", r.why);
	event_base_free(base);
}

/* How many records of `type` owned by `owner` the zone holds. */
static size_t
count_rrs(const struct zone *z, const char *owner, ldns_rr_type type)
{
	const ldns_rr_list *l = zone_rrs(z);
	ldns_rdf *name = NULL;
	size_t n = 0;

	ldns_str2rdf_dname(&name, owner);
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		n += ldns_rr_get_type(ldns_rr_list_rr(l, i)) == type &&
		    ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(l, i)), name) == 0;
	ldns_rdf_deep_free(name);
	return n;
}

static void
test_batch(void)
{
	char dir[] = "/tmp/test_cluster.XXXXXX", path[128], err[256];
	struct zonestore *zs = zonestore_new(1);
	struct addr a[2];
	ldns_rr_list *al, *txt = ldns_rr_list_new();
	ldns_rr *rr = NULL;
	struct zone *z;
	FILE *f;

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/zone", dir);
	f = fopen(path, "w");
	fputs("$ORIGIN example.test.\n@ 300 IN SOA ns hm 7 3600 900 604800 60\n@ 300 IN NS ns\n"
	      "ns 300 IN A 192.0.2.1\nsmtp 300 IN A 192.0.2.9\n",
	    f);
	fclose(f);
	z = zone_load("example.test", path, err, sizeof(err));
	ok(z != NULL && zonestore_set_zone(zs, z) == 0, "zone loaded");
	addr_parse("192.0.2.11", 0, &a[0]);
	addr_parse("192.0.2.12", 0, &a[1]);
	al = zonestore_addr_rrs("smtp.example.test", LDNS_RR_TYPE_A, 45, a, 2);
	ldns_rr_new_frm_str(&rr, "_status.smtp.example.test. 0 IN TXT \"rank 1\"", 0, NULL, NULL);
	ldns_rr_list_push_rr(txt, rr);
	struct zonestore_rrset sets[] = {
	    {"smtp.example.test", LDNS_RR_TYPE_A, al, ZONE_RRSET_ROTATE | ZONE_RRSET_TRIM},
	    {"_status.smtp.example.test", LDNS_RR_TYPE_TXT, txt, 0},
	};
	is_int(zonestore_replace_batch(zs, sets, 2), 0, "batch of A and TXT");
	z = (struct zone *)zonestore_find(zs, "example.test");
	is_int(zone_serial(z), 8, "one serial bump for the batch");
	is_int(count_rrs(z, "smtp.example.test", LDNS_RR_TYPE_A), 2, "A replaced");
	is_int(count_rrs(z, "_status.smtp.example.test", LDNS_RR_TYPE_TXT), 1, "TXT added");
	sets[1].owner = "smtp.other.test";
	fprintf(stderr, "# expected warning follows\n");
	is_int(zonestore_replace_batch(zs, sets, 2), -1, "owners outside the zone refused");
	is_int(zone_serial(zonestore_find(zs, "example.test")), 8, "nothing changed");
	ok(zonestore_addr_rrs("smtp.example.test", LDNS_RR_TYPE_AAAA, 45, a, 1) == NULL,
	    "AAAA of an IPv4 address refused");
	ldns_rr_list_deep_free(al);
	ldns_rr_list_deep_free(txt);
	zonestore_free(zs);
	unlink(path);
	rmdir(dir);
}

/* Write a zone file: serial, and the address of smtp (the content). */
static struct zone *
write_zone(const char *path, unsigned serial, const char *smtp)
{
	char err[256];
	FILE *f = fopen(path, "w");
	struct zone *z;

	fprintf(f,
	    "$ORIGIN example.test.\n@ 300 IN SOA ns hm %u 3600 900 604800 60\n@ 300 IN NS ns\n"
	    "ns 300 IN A 192.0.2.1\nsmtp 300 IN A %s\n",
	    serial, smtp);
	fclose(f);
	z = zone_load("example.test", path, err, sizeof(err));
	if (z == NULL)
		tap_diag("%s", err);
	return z;
}

static uint32_t
serial_of(const struct zonestore *zs)
{
	return zone_serial(zonestore_find(zs, "example.test"));
}

/* Issue 13 item 2: a restart, a reload or an edit never lowers the serial. */
static void
test_serial_continuity(void)
{
	char dir[] = "/tmp/test_serial.XXXXXX", path[128];
	struct zonestore *zs;
	struct zone *z;
	uint64_t digest_a;
	struct addr a;
	ldns_rr_list *al, *txt = ldns_rr_list_new();
	ldns_rr *rr = NULL;

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/zone", dir);
	z = write_zone(path, 6, "192.0.2.9");
	digest_a = zone_digest(z);
	zone_free(z);
	z = write_zone(path, 7, "192.0.2.9");
	is_int(zone_digest(z) == digest_a, 1, "the digest leaves the serial out");
	zone_free(z);

	/* Restart after serving 9 for this content: 9 again, not the file's 6. */
	zs = zonestore_new(1);
	ok(zonestore_restore_serial(zs, "example.test", 9, digest_a) == 0, "floor 9 restored");
	zonestore_set_zone(zs, write_zone(path, 6, "192.0.2.9"));
	is_int(serial_of(zs), 9, "same content after a restart: the served serial");
	zonestore_free(zs);

	/* Restart with other content behind the file's serial: one more than served. */
	zs = zonestore_new(1);
	zonestore_restore_serial(zs, "example.test", 9, digest_a);
	zonestore_set_zone(zs, write_zone(path, 6, "192.0.2.10"));
	is_int(serial_of(zs), 10, "other content after a restart: served + 1");
	zonestore_set_zone(zs, write_zone(path, 6, "192.0.2.9"));
	is_int(serial_of(zs), 9, "not served yet: the last run's content, its serial");
	zonestore_set_zone(zs, write_zone(path, 6, "192.0.2.10"));
	zonestore_serving(zs);
	/* An edit whose serial is still behind: +1 again; one ahead: the file's. */
	zonestore_set_zone(zs, write_zone(path, 7, "192.0.2.11"));
	is_int(serial_of(zs), 11, "edit behind the served serial: served + 1");
	zonestore_set_zone(zs, write_zone(path, 7, "192.0.2.11"));
	is_int(serial_of(zs), 11, "reload without a change keeps the serial");
	zonestore_set_zone(zs, write_zone(path, 50, "192.0.2.11"));
	is_int(serial_of(zs), 50, "a file serial ahead wins");
	zonestore_set_zone(zs, write_zone(path, 2000000000u, "192.0.2.12"));
	zonestore_set_zone(zs, write_zone(path, 4000000000u, "192.0.2.12"));
	zonestore_set_zone(zs, write_zone(path, 4294967295u, "192.0.2.12"));
	is_int(serial_of(zs), 4294967295u, "up to 2^32-1");
	zonestore_set_zone(zs, write_zone(path, 4294967290u, "192.0.2.13"));
	is_int(serial_of(zs), 0, "a file serial behind: wraps to 0 (RFC 1982)");

	/* The live status table: answered, never transferred, no serial move. */
	ldns_rr_new_frm_str(&rr, "_status.smtp.example.test. 0 IN TXT \"rank 1\"", 0, NULL, NULL);
	ldns_rr_list_push_rr(txt, rr);
	struct zonestore_rrset local = {
	    "_status.smtp.example.test", LDNS_RR_TYPE_TXT, txt, ZONE_RRSET_LOCAL};
	is_int(zonestore_replace_batch(zs, &local, 1), 0, "LOCAL TXT replaced");
	is_int(serial_of(zs), 0, "LOCAL RRset: the serial stays");
	is_int(count_rrs(zonestore_find(zs, "example.test"), "_status.smtp.example.test",
	           LDNS_RR_TYPE_TXT),
	    0, "LOCAL RRset: not among the transferred RRs");
	addr_parse("192.0.2.13", 0, &a);
	al = zonestore_addr_rrs("smtp.example.test", LDNS_RR_TYPE_A, 300, &a, 1);
	struct zonestore_rrset same = {"smtp.example.test", LDNS_RR_TYPE_A, al, 0};
	is_int(zonestore_replace_batch(zs, &same, 1), 0, "the same A set again");
	is_int(serial_of(zs), 0, "the same data: the serial stays");
	ldns_rr_list_deep_free(al);
	addr_parse("192.0.2.14", 0, &a);
	al = zonestore_addr_rrs("smtp.example.test", LDNS_RR_TYPE_A, 300, &a, 1);
	same.rrs = al;
	is_int(zonestore_replace_batch(zs, &same, 1), 0, "a new A set");
	is_int(serial_of(zs), 1, "new data: +1");
	ldns_rr_list_deep_free(al);
	ldns_rr_list_deep_free(txt);
	zonestore_free(zs);
	unlink(path);
	rmdir(dir);
}

/* The state file keeps zone serials; its folder must take files. */
static void
test_statefile_serials(void)
{
	char dir[] = "/tmp/test_sfser.XXXXXX", path[128], why[256];
	struct statefile *sf;
	uint32_t serial = 0;
	uint64_t digest = 0;

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/brokerd.state", dir);
	sf = statefile_load(path);
	is_int(statefile_get_serial(sf, "a.test", &serial, &digest), -1, "no serial saved yet");
	statefile_set_serial(sf, "a.test", 4000000000u, 0xfedcba9876543210ULL);
	statefile_set_serial(sf, "b.test", 7, 1);
	statefile_set_serial(sf, "c.test", 8, 2);
	ok(statefile_save(sf) == 0, "saved");
	statefile_free(sf);
	sf = statefile_load(path);
	ok(statefile_get_serial(sf, "a.test", &serial, &digest) == 0 && serial == 4000000000u &&
	        digest == 0xfedcba9876543210ULL,
	    "first zone's serial and digest back");
	ok(statefile_get_serial(sf, "c.test", &serial, &digest) == 0 && serial == 8 && digest == 2,
	    "last zone's serial and digest back");
	statefile_free(sf);
	is_int(statefile_check_dir(path, NULL, why, sizeof(why)), 0, "writable folder passes");
	snprintf(path, sizeof(path), "%s/missing/brokerd.state", dir);
	is_int(statefile_check_dir(path, NULL, why, sizeof(why)), -1, "missing folder fails");
	ok(strstr(why, "missing") != NULL, "the reason names the folder (%s)", why);
	snprintf(path, sizeof(path), "%s/brokerd.state", dir);
	chmod(dir, 0755);
	if (geteuid() == 0) {
		is_int(statefile_check_dir(path, "nobody", why, sizeof(why)), -1,
		    "root checking for user nobody: a 0755 root folder fails");
		ok(strstr(why, "nobody") != NULL, "the reason names the user (%s)", why);
		chmod(dir, 0777);
		is_int(statefile_check_dir(path, "nobody", why, sizeof(why)), 0,
		    "a folder nobody may write passes");
	} else {
		ok(1, "# skip not root");
		ok(1, "# skip not root");
		ok(1, "# skip not root");
	}
	snprintf(path, sizeof(path), "%s/brokerd.state", dir);
	unlink(path);
	rmdir(dir);
}

/* rise 2, fall 3: the verdict needs a run, and the other kind breaks it. */
static void
test_risefall(void)
{
	struct risefall rf = {0, 0};

	ok(!risefall_good(&rf, 2), "one good result is not up yet");
	ok(risefall_good(&rf, 2), "the second in a row is");
	ok(risefall_good(&rf, 2), "and every one after it");
	is_int(rf.goods, 3, "goods counted");
	ok(!risefall_bad(&rf, 3), "one bad result is not down");
	is_int(rf.goods, 0, "a bad result ends the good run");
	ok(!risefall_bad(&rf, 3), "two are not down");
	ok(!risefall_good(&rf, 2), "a good one in between");
	is_int(rf.bads, 0, "ends the bad run");
	ok(!risefall_bad(&rf, 3), "so counting starts again: one");
	ok(!risefall_bad(&rf, 3), "two");
	ok(risefall_bad(&rf, 3), "three in a row: down");
	is_int(rf.bads, 3, "the run is reported (\"3 polls failed\")");
	ok(risefall_bad(&rf, 1), "fall 1: any bad result");
	risefall_reset(&rf);
	is_int(rf.goods + rf.bads, 0, "reset forgets both runs");
	ok(risefall_good(&rf, 1), "rise 1: the first good result");
	ok(risefall_good(&rf, 0), "rise 0 never holds back");
}

int
main(void)
{
	test_risefall();
	test_statements();
	test_defaults_and_key();
	test_statefile();
	test_statefile_drains();
	test_healthcheck();
	test_batch();
	test_serial_continuity();
	test_statefile_serials();
	return tap_done();
}
