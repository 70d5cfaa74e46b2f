/*
 * test_cluster.c - the cluster statements brokerd relies on, the key check,
 * the state file (broker/statefile.h) and the health checks
 * (broker/healthcheck.h) against loopback listeners.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "broker/cluster.h"
#include "broker/healthcheck.h"
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

int
main(void)
{
	test_statements();
	test_defaults_and_key();
	test_statefile();
	test_healthcheck();
	test_batch();
	return tap_done();
}
