/* broker.c - brokerd's parts put together, reload, and status. */
#include "broker/broker.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <ldns/ldns.h>

#include "broker/cluster.h"
#include "broker/ctl.h"
#include "broker/dnssec.h"
#include "broker/server.h"
#include "broker/statefile.h"
#include "broker/xfr.h"
#include "broker/zone.h"
#include "broker/zonestore.h"
#include "common/config.h"
#include "common/log.h"
#include "common/status_http.h"

struct broker {
	struct event_base *base;
	const struct config *cfg;
	struct zonestore *zs;
	struct dns_server *server;
	struct notifier *notifier;
	struct status_http *status;
	struct event *reclaim;
	struct event *resign; /* signed zones: a new signing period re-signs */
	struct clusters *clusters;
	struct ctl *ctl;         /* brokerd-ctl's socket */
	struct statefile *sf;    /* served serials and answers, kept across restarts */
	struct config *reloaded; /* the clusters' configuration after a reload */
	uint64_t reloads, reload_failures;
};

#define RCODE_NAME_MAX 16 /* "RCODE4095" and every name below */

/*
 * The name of an answer's rcode in /status and /metrics: ldns's
 * (ldns_rcodes), except where published names must not move: NOTIMP
 * (IANA's and dig's name; ldns says "NOTIMPL"), BADVERS (an extended rcode,
 * which ldns's table lacks) and RCODE<n> for the unassigned ones.
 */
static const char *
rcode_name(int rcode, char *buf, size_t len)
{
	const ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, rcode);

	if (rcode == LDNS_RCODE_NOTIMPL)
		return "NOTIMP";
	if (rcode == ANSWER_RCODE_BADVERS)
		return "BADVERS";
	if (t != NULL)
		return t->name;
	snprintf(buf, len, "RCODE%d", rcode);
	return buf;
}

/* The rcodes listed in /status and /metrics even at zero. */
static bool
rcode_always_shown(int rcode)
{
	return rcode == LDNS_RCODE_NOERROR || rcode == LDNS_RCODE_NXDOMAIN ||
	    rcode == LDNS_RCODE_REFUSED;
}

/* "2026-12-16T00:00:00Z" for the signatures of `period` (a static buffer). */
static const char *
expiry_text(const struct dnssec_keys *keys, uint64_t period)
{
	static char buf[32];
	time_t t = (time_t)dnssec_expiration(keys, period);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, sizeof(buf), "%lld", (long long)t);
	return buf;
}

/* Load cz's file, signed with the keys of its dnssec block when it has one. */
static struct zone *
load_config_zone(const struct config_zone *cz, bool announce, char *err, size_t errlen)
{
	const struct config_dnssec *d = &cz->dnssec;
	struct dnssec_params p = {d->validity, d->refresh, d->inception_offset};
	struct dnssec_keys *keys;
	struct zone *z;

	if (!d->enabled)
		return zone_load(cz->name, cz->file, err, errlen);
	keys = dnssec_keys_load(cz->name, d->key_directory, &p, err, errlen);
	if (keys == NULL)
		return NULL;
	z = zone_load_signed(cz->name, cz->file, keys, err, errlen);
	if (z != NULL && announce) {
		char desc[512];

		dnssec_keys_describe(keys, desc, sizeof(desc));
		log_info("zone %s: signed with %s; signatures expire %s", cz->name, desc,
		    expiry_text(keys, zone_sign_period(z)));
	}
	dnssec_keys_free(keys);
	return z;
}

int
broker_check_zones(const struct config *cfg)
{
	int rc = clusters_check_config(cfg);

	for (size_t i = 0; i < cfg->broker.nzones; i++) {
		const struct config_zone *cz = &cfg->broker.zones[i];
		char err[1024];
		struct zone *z;

		if (access(cz->file, F_OK) == -1)
			continue;
		z = load_config_zone(cz, false, err, sizeof(err));
		if (z == NULL) {
			fprintf(stderr, "brokerd: %s\n", err);
			rc = -1;
		}
		zone_free(z);
	}
	return rc;
}

static void
changed_cb(const struct zone *z, uint32_t old_serial, void *arg)
{
	struct broker *b = arg;

	log_info("zone %s: serving serial %u (was %u), %zu records", zone_name(z), zone_serial(z),
	    old_serial, zone_rr_count(z));
	if (b->sf != NULL &&
	    (statefile_set_serial(b->sf, zone_name(z), zone_serial(z), zone_digest(z)) == -1 ||
	        statefile_save(b->sf) == -1))
		log_warnx("zone %s: serial %u not saved: a restart may serve a lower one",
		    zone_name(z), zone_serial(z));
	if (b->notifier != NULL)
		notifier_zone_changed(b->notifier, z);
}

/* Continue every zone's serial from what the last run served. */
static int
restore_serials(struct broker *b)
{
	for (size_t i = 0; i < b->cfg->broker.nzones; i++) {
		const char *name = b->cfg->broker.zones[i].name;
		uint32_t serial;
		uint64_t digest;

		if (statefile_get_serial(b->sf, name, &serial, &digest) == 0 &&
		    zonestore_restore_serial(b->zs, name, serial, digest) == -1)
			return -1;
	}
	return 0;
}

static void
reclaim_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	zonestore_reclaim(arg);
}

static int
load_zones(struct broker *b)
{
	for (size_t i = 0; i < b->cfg->broker.nzones; i++) {
		const struct config_zone *cz = &b->cfg->broker.zones[i];
		char err[1024];
		struct zone *z = load_config_zone(cz, true, err, sizeof(err));

		if (z == NULL) {
			log_warnx("%s", err);
			return -1;
		}
		if (zonestore_set_zone(b->zs, z) == -1)
			return -1;
	}
	return 0;
}

/* The configuration in force: the last one a reload adopted, else the start's. */
static const struct config *
current_config(const struct broker *b)
{
	return b->reloaded != NULL ? b->reloaded : b->cfg;
}

/* Load one zone of cfg into the store; an added zone continues its saved serial. */
static bool
reload_zone(struct broker *b, const struct config_zone *cz)
{
	const struct zone *old = zonestore_find(b->zs, cz->name);
	char err[1024];
	struct zone *z;
	uint32_t serial;
	uint64_t digest;

	if (old == NULL && b->sf != NULL &&
	    statefile_get_serial(b->sf, cz->name, &serial, &digest) == 0)
		zonestore_restore_serial(b->zs, cz->name, serial, digest);
	z = load_config_zone(cz, true, err, sizeof(err));
	if (z == NULL || zonestore_set_zone(b->zs, z) == -1) {
		if (old != NULL)
			log_warnx("%s; zone %s keeps serving serial %u",
			    z == NULL ? err : "reload failed", cz->name, zone_serial(old));
		else
			log_warnx(
			    "%s; zone %s is not served", z == NULL ? err : "load failed", cz->name);
		zonestore_serving(b->zs);
		return false;
	}
	zonestore_serving(b->zs); /* a restored serial counts from now on */
	if (old == NULL)
		log_info("zone %s: added", cz->name);
	return true;
}

/*
 * Signed zones whose signing period ended are loaded again (keys and file):
 * fresh signatures, one serial step (zone_sign), brokered RRsets re-applied
 * on top by the store.
 */
static void
resign_cb(evutil_socket_t fd, short what, void *arg)
{
	struct broker *b = arg;
	const struct config *cfg = current_config(b);
	time_t now = time(NULL);

	(void)fd;
	(void)what;
	for (size_t i = 0; i < cfg->broker.nzones; i++) {
		const struct config_zone *cz = &cfg->broker.zones[i];
		const struct zone *z = zonestore_find(b->zs, cz->name);

		if (z != NULL && zone_resign_due(z, now)) {
			log_info("zone %s: signing period over: signing again", cz->name);
			reload_zone(b, cz);
		}
	}
}

/* Zones of cfg loaded (added or again), zones no longer in it removed. */
static unsigned
reload_zones(struct broker *b, const struct config *cfg)
{
	const struct zsnap *snap = zonestore_snapshot(b->zs);
	char **gone = calloc(snap->n + 1, sizeof(*gone));
	size_t ngone = 0;
	unsigned failures = 0;

	for (size_t i = 0; gone != NULL && i < snap->n; i++)
		if (config_zone_find(cfg, zone_name(snap->zones[i])) == NULL &&
		    (gone[ngone] = strdup(zone_name(snap->zones[i]))) != NULL)
			ngone++;
	for (size_t i = 0; i < ngone; i++) {
		if (zonestore_remove_zone(b->zs, gone[i]) == 0)
			log_info("zone %s: removed: its names are REFUSED from now on", gone[i]);
		else
			failures++;
		free(gone[i]);
	}
	free(gone);
	for (size_t i = 0; i < cfg->broker.nzones; i++)
		failures += !reload_zone(b, &cfg->broker.zones[i]);
	return failures;
}

/* The DNS sockets follow the listen addresses; the first zone opens them. */
static int
reload_server(struct broker *b, const struct config *cfg)
{
	if (b->server != NULL)
		return dns_server_reconfigure(b->server, &cfg->broker);
	if (cfg->broker.nzones == 0)
		return 0;
	if (cfg->broker.threads != b->cfg->broker.threads)
		log_warnx("reload: threads changes at the next restart");
	if ((b->server = dns_server_new(b->base, &cfg->broker, b->zs)) == NULL ||
	    dns_server_start(b->server) == -1) {
		dns_server_free(b->server);
		b->server = NULL;
		log_warnx("reload: no DNS socket: privileged ports need a restart");
		return -1;
	}
	return 0;
}

/*
 * SIGHUP, as `nsd-control reconfig`: read the file again; when it loads,
 * zones are added, loaded again and removed, clusters and members follow,
 * and the DNS sockets follow the listen addresses (unchanged ones are
 * never closed).  A file that does not load changes nothing.  What stays
 * as started: threads, rate-limit, status-listen, state-file, user.
 */
void
broker_reload(struct broker *b)
{
	char err[1024];
	const struct config *prev = current_config(b);
	struct config *cfg;
	unsigned failures;

	b->reloads++;
	cfg = config_load(b->cfg->path, err, sizeof(err));
	if (cfg == NULL || clusters_check_config(cfg) == -1) {
		b->reload_failures++;
		log_warnx("reload: %s; the running configuration stays in force",
		    cfg == NULL ? err : "invalid cluster key");
		config_free(cfg);
		return;
	}
	/* Peers first: the zones loaded next NOTIFY them (an added one too). */
	failures = notifier_reload(b->notifier, &cfg->broker) == -1;
	failures += reload_zones(b, cfg);
	if (b->clusters != NULL && clusters_reload(b->clusters, cfg) == -1) {
		b->reload_failures++;
		log_warnx("reload: out of memory: clusters and listen addresses unchanged");
		notifier_reload(b->notifier, &prev->broker);
		config_free(cfg);
		return;
	}
	failures += reload_server(b, cfg) == -1;
	config_free(b->reloaded);
	b->reloaded = cfg;
	b->reload_failures += failures;
	log_info("reload: %zu zones, %zu clusters%s", cfg->broker.nzones, cfg->nclusters,
	    failures ? " (with errors, logged)" : "");
}

/* "refused" for REFUSED: the result label of an error answer to NOTIFY. */
static const char *
notify_result(int rcode, char *buf, size_t len)
{
	char tmp[RCODE_NAME_MAX];
	const char *name = rcode_name(rcode, tmp, sizeof(tmp));
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < len; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[i] = '\0';
	return buf;
}

static void
notify_metrics(const struct notifier *n, struct evbuffer *out)
{
	struct notifier_stats ns;
	char labels[64], name[RCODE_NAME_MAX];

	notifier_stats(n, &ns);
	prom_family(out, "dns_notify_total", "counter",
	    "NOTIFY messages sent, and their outcome: acked (NOERROR), an error rcode, "
	    "timeout (no answer); failed counts NOTIFYs given up after every retry.");
	prom_sample_u64(out, "dns_notify_total", "result=\"sent\"", ns.sent);
	prom_sample_u64(out, "dns_notify_total", "result=\"acked\"", ns.acked);
	for (int i = 1; i < NOTIFY_RCODES; i++) {
		if (ns.rcode[i] == 0 && i != LDNS_RCODE_REFUSED)
			continue;
		snprintf(
		    labels, sizeof(labels), "result=\"%s\"", notify_result(i, name, sizeof(name)));
		prom_sample_u64(out, "dns_notify_total", labels, ns.rcode[i]);
	}
	prom_sample_u64(out, "dns_notify_total", "result=\"timeout\"", ns.timeout);
	prom_sample_u64(out, "dns_notify_total", "result=\"failed\"", ns.failed);
}

static struct json_object *
notify_json(const struct notifier *n)
{
	struct notifier_stats ns;
	struct json_object *o = json_object_new_object();
	char name[RCODE_NAME_MAX];

	notifier_stats(n, &ns);
	json_object_object_add(o, "sent", json_object_new_int64((int64_t)ns.sent));
	json_object_object_add(o, "acked", json_object_new_int64((int64_t)ns.acked));
	for (int i = 1; i < NOTIFY_RCODES; i++)
		if (ns.rcode[i] != 0 || i == LDNS_RCODE_REFUSED)
			json_object_object_add(o, notify_result(i, name, sizeof(name)),
			    json_object_new_int64((int64_t)ns.rcode[i]));
	json_object_object_add(o, "timeout", json_object_new_int64((int64_t)ns.timeout));
	json_object_object_add(o, "failed", json_object_new_int64((int64_t)ns.failed));
	return o;
}

static void
status_json_cb(struct json_object *root, void *arg)
{
	struct broker *b = arg;
	const struct zsnap *snap = zonestore_snapshot(b->zs);
	struct json_object *zones = json_object_new_array();
	struct json_object *q = json_object_new_object(), *rc = json_object_new_object();
	struct dns_counters c;
	char name[RCODE_NAME_MAX];

	for (size_t i = 0; i < snap->n; i++) {
		struct json_object *z = json_object_new_object();

		json_object_object_add(
		    z, "name", json_object_new_string(zone_name(snap->zones[i])));
		json_object_object_add(
		    z, "serial", json_object_new_int64(zone_serial(snap->zones[i])));
		json_object_object_add(
		    z, "records", json_object_new_int64((int64_t)zone_rr_count(snap->zones[i])));
		json_object_object_add(
		    z, "names", json_object_new_int64((int64_t)zone_name_count(snap->zones[i])));
		json_object_array_add(zones, z);
	}
	json_object_object_add(root, "zones", zones);
	dns_server_counters(b->server, &c);
	for (int i = 0; i < ANSWER_NRCODES; i++)
		if (c.rcode[i] != 0 || rcode_always_shown(i))
			json_object_object_add(rc, rcode_name(i, name, sizeof(name)),
			    json_object_new_int64((int64_t)c.rcode[i]));
	json_object_object_add(q, "udp", json_object_new_int64((int64_t)c.udp));
	json_object_object_add(q, "tcp", json_object_new_int64((int64_t)c.tcp));
	json_object_object_add(q, "dropped", json_object_new_int64((int64_t)c.dropped));
	json_object_object_add(q, "truncated", json_object_new_int64((int64_t)c.truncated));
	json_object_object_add(
	    q, "rate_limited_dropped", json_object_new_int64((int64_t)c.rrl_dropped));
	json_object_object_add(
	    q, "rate_limited_slipped", json_object_new_int64((int64_t)c.rrl_slipped));
	json_object_object_add(q, "axfr", json_object_new_int64((int64_t)c.xfr));
	json_object_object_add(q, "axfr_refused", json_object_new_int64((int64_t)c.xfr_refused));
	json_object_object_add(q, "by_rcode", rc);
	json_object_object_add(root, "queries", q);
	if (b->notifier != NULL)
		json_object_object_add(root, "notify", notify_json(b->notifier));
	json_object_object_add(root, "tcp_clients", json_object_new_int64((int64_t)c.tcp_clients));
	json_object_object_add(root, "reloads", json_object_new_int64((int64_t)b->reloads));
	json_object_object_add(
	    root, "reload_failures", json_object_new_int64((int64_t)b->reload_failures));
	if (b->clusters != NULL)
		clusters_status_json(b->clusters, root);
}

static void
status_metrics_cb(struct evbuffer *out, void *arg)
{
	struct broker *b = arg;
	const struct zsnap *snap = zonestore_snapshot(b->zs);
	struct dns_counters c;
	char labels[300], name[RCODE_NAME_MAX];

	dns_server_counters(b->server, &c);
	prom_family(out, "dns_queries_total", "counter", "DNS queries answered, by protocol.");
	prom_sample_u64(out, "dns_queries_total", "proto=\"udp\"", c.udp);
	prom_sample_u64(out, "dns_queries_total", "proto=\"tcp\"", c.tcp);
	prom_family(out, "dns_responses_total", "counter", "DNS responses by rcode.");
	for (int i = 0; i < ANSWER_NRCODES; i++) {
		snprintf(labels, sizeof(labels), "rcode=\"%s\"", rcode_name(i, name, sizeof(name)));
		if (c.rcode[i] != 0 || rcode_always_shown(i))
			prom_sample_u64(out, "dns_responses_total", labels, c.rcode[i]);
	}
	prom_family(out, "dns_dropped_total", "counter", "Packets dropped without an answer.");
	prom_sample_u64(out, "dns_dropped_total", NULL, c.dropped);
	prom_family(out, "dns_truncated_total", "counter", "UDP answers sent with TC.");
	prom_sample_u64(out, "dns_truncated_total", NULL, c.truncated);
	prom_family(out, "dns_rate_limited_total", "counter",
	    "UDP answers held back by response rate limiting, by action.");
	prom_sample_u64(out, "dns_rate_limited_total", "action=\"drop\"", c.rrl_dropped);
	prom_sample_u64(out, "dns_rate_limited_total", "action=\"slip\"", c.rrl_slipped);
	prom_family(out, "dns_axfr_total", "counter", "Zone transfers asked for, by result.");
	prom_sample_u64(out, "dns_axfr_total", "result=\"served\"", c.xfr - c.xfr_refused);
	prom_sample_u64(out, "dns_axfr_total", "result=\"refused\"", c.xfr_refused);
	prom_family(out, "dns_tcp_clients", "gauge", "Open DNS TCP connections.");
	prom_sample_u64(out, "dns_tcp_clients", NULL, c.tcp_clients);
	prom_family(out, "zone_serial", "gauge", "SOA serial served, by zone.");
	for (size_t i = 0; i < snap->n; i++) {
		snprintf(labels, sizeof(labels), "zone=\"%s\"", zone_name(snap->zones[i]));
		prom_sample_u64(out, "zone_serial", labels, zone_serial(snap->zones[i]));
	}
	prom_family(out, "zone_records", "gauge", "Records served, by zone.");
	for (size_t i = 0; i < snap->n; i++) {
		snprintf(labels, sizeof(labels), "zone=\"%s\"", zone_name(snap->zones[i]));
		prom_sample_u64(out, "zone_records", labels, zone_rr_count(snap->zones[i]));
	}
	if (b->notifier != NULL)
		notify_metrics(b->notifier, out);
	if (b->clusters != NULL)
		clusters_metrics(b->clusters, out);
}

struct broker *
broker_new(struct event_base *base, const struct config *cfg)
{
	struct broker *b = calloc(1, sizeof(*b));
	struct timeval tv = {0, BROKER_RECLAIM_MS * 1000};
	struct timeval resign_tv = {BROKER_RESIGN_CHECK_S, 0};

	if (b == NULL)
		return NULL;
	b->base = base;
	b->cfg = cfg;
	b->zs = zonestore_new(cfg->broker.threads);
	if (b->zs == NULL)
		goto fail;
	if (cfg->broker.status_listen.len != 0) {
		b->status = status_http_new(base, &cfg->broker.status_listen, "brokerd",
		    status_json_cb, status_metrics_cb, b);
		if (b->status == NULL)
			goto fail;
	}
	/* Before the zones: each continues from the serial it was served with. */
	if (cfg->broker.state_file != NULL &&
	    ((b->sf = statefile_load(cfg->broker.state_file)) == NULL || restore_serials(b) == -1))
		goto fail;
	zonestore_on_change(b->zs, changed_cb, b);
	if (load_zones(b) == -1)
		goto fail;
	b->notifier = notifier_new(base, &cfg->broker);
	b->reclaim = event_new(base, -1, EV_PERSIST, reclaim_cb, b->zs);
	if (b->notifier == NULL || b->reclaim == NULL || event_add(b->reclaim, &tv) == -1)
		goto fail;
	b->resign = event_new(base, -1, EV_PERSIST, resign_cb, b);
	if (b->resign == NULL || event_add(b->resign, &resign_tv) == -1)
		goto fail;
	/* After the zones: saved cluster answers are published into them. */
	if (clusters_check_config(cfg) == -1 ||
	    (b->clusters = clusters_new(base, cfg, b->zs, b->sf)) == NULL)
		goto fail;
	/* Bound now, while the socket's folder may still need root. */
	if ((b->ctl = ctl_new(base, cfg, &b->clusters)) == NULL)
		goto fail;
	/* With no zone there is nothing to answer: no DNS sockets are opened. */
	if (cfg->broker.nzones == 0)
		log_info("no zone configured: not listening for DNS");
	else if ((b->server = dns_server_new(base, &cfg->broker, b->zs)) == NULL)
		goto fail;
	return b;
fail:
	broker_free(b);
	return NULL;
}

/*
 * NOTIFY every zone once it is served: a secondary that missed changes
 * while brokerd was down (or a restart that moved the serial) catches up
 * now instead of at its next refresh.
 */
static void
notify_all(struct broker *b)
{
	const struct zsnap *snap = zonestore_snapshot(b->zs);

	for (size_t i = 0; i < snap->n; i++)
		notifier_zone_changed(b->notifier, snap->zones[i]);
}

int
broker_start(struct broker *b)
{
	zonestore_serving(b->zs);
	if (b->server != NULL && dns_server_start(b->server) == -1)
		return -1;
	notify_all(b);
	return 0;
}

struct zonestore *
broker_zonestore(struct broker *b)
{
	return b->zs;
}

void
broker_free(struct broker *b)
{
	if (b == NULL)
		return;
	ctl_free(b->ctl);
	clusters_free(b->clusters);
	statefile_free(b->sf);
	config_free(b->reloaded);
	dns_server_free(b->server);
	if (b->reclaim != NULL)
		event_free(b->reclaim);
	if (b->resign != NULL)
		event_free(b->resign);
	notifier_free(b->notifier);
	status_http_free(b->status);
	zonestore_free(b->zs);
	free(b);
}
