/* cluster.c - clusters started, reloaded and freed (cluster.h). */
#include "broker/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <ldns/ldns.h>

#include "broker/cluster_int.h"
#include "broker/ranker.h"
#include "broker/updater.h"
#include "broker/zone.h"
#include "broker/zonestore.h"
#include "common/clock.h"

static void prune_drains(struct clusters *cs);

static bool
name_in_zone(const char *name, const char *zone)
{
	size_t ln = strlen(name), lz = strlen(zone);

	if (ln == lz)
		return strcasecmp(name, zone) == 0;
	return ln > lz && name[ln - lz - 1] == '.' && strcasecmp(name + ln - lz, zone) == 0;
}

static void
cluster_free(struct cluster *cl)
{
	if (cl == NULL)
		return;
	for (size_t i = 0; i < cl->n; i++)
		cluster_member_stop(&cl->m[i]);
	if (cl->tick != NULL)
		event_free(cl->tick);
	if (cl->refresh != NULL)
		event_free(cl->refresh);
	updater_free(cl->up);
	for (int f = 0; f < 2; f++)
		free(cl->pub[f].v);
	free(cl->m);
	free(cl->rm);
	free(cl->idx);
	free(cl->order);
	free(cl->scores);
	free(cl->status_name);
	free(cl->name);
	free(cl);
}

static bool
cluster_in_zone(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->broker.nzones; i++)
		if (name_in_zone(name, cfg->broker.zones[i].name))
			return true;
	return false;
}

/* A new member drained by brokerd-ctl before a restart stays drained. */
static void
restore_drain(struct cluster *cl, struct member *m, const struct addr *a)
{
	char text[ADDR_STRLEN];

	if (cl->cs->sf == NULL ||
	    statefile_get_drain(
	        cl->cs->sf, cl->cfg->name, addr_host_str(a, text, sizeof(text)), &m->drain) == -1)
		return;
	m->ctl_drain = true;
	log_info("cluster %s: member %s stays drained (by %s: %s)", cl->cfg->name, text,
	    m->drain.who, m->drain.reason[0] ? m->drain.reason : "no reason given");
}

/* Members from the configuration; state carried over from `old`. */
static int
build_members(struct cluster *cl, const struct cluster *old)
{
	const struct config_cluster *cc = cl->cfg;

	for (size_t i = 0; i < cl->n; i++) {
		struct member *m = &cl->m[i];
		const struct member *prev = old != NULL
		    ? cluster_member_find((struct cluster *)old, &cc->members[i].addr)
		    : NULL;

		if (prev != NULL) {
			*m = *prev;
			m->pending = false;
		}
		m->cl = cl;
		m->cm = cc->members[i];
		if (prev == NULL) {
			restore_drain(cl, m, &cc->members[i].addr);
			m->why = cluster_member_exclusion(m); /* until the first ranking */
		}
		m->agent = m->cm.check;
		addr_set_port(&m->agent, cc->metric_port);
		m->target = m->cm.check;
		addr_set_port(&m->target, cc->health_port);
		m->hc = NULL;
		if (prev == NULL || !addr_equal_host(&prev->cm.check, &m->cm.check)) {
			m->hstate = MEMBER_UNKNOWN;
			risefall_reset(&m->health);
		}
		if (cc->health != CONFIG_HEALTH_NONE &&
		    (m->hc = healthcheck_new(cl->cs->base, cluster_health_cb, m)) == NULL)
			return -1;
	}
	return 0;
}

/*
 * The addresses of family f the zone file gives the cluster name (the
 * placeholder answer before the first polls), up to max into out.
 */
static size_t
zone_file_set(const struct cluster *cl, int f, struct addr *out, size_t max)
{
	const struct config_broker *b = &cl->cs->cfg->broker;
	const char *best = NULL;
	const struct zone *z;
	ldns_rdf *owner = NULL;
	size_t n = 0;

	for (size_t i = 0; i < b->nzones; i++)
		if (name_in_zone(cl->name, b->zones[i].name) &&
		    (best == NULL || strlen(b->zones[i].name) > strlen(best)))
			best = b->zones[i].name;
	if (best == NULL || (z = zonestore_find(cl->cs->zs, best)) == NULL ||
	    ldns_str2rdf_dname(&owner, cl->name) != LDNS_STATUS_OK)
		return 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(zone_rrs(z)) && n < max; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(zone_rrs(z), i);
		char *text;

		if (ldns_rr_get_type(rr) != (f == FAM_V4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA) ||
		    ldns_dname_compare(ldns_rr_owner(rr), owner) != 0 ||
		    (text = ldns_rdf2str(ldns_rr_rdf(rr, 0))) == NULL)
			continue;
		n += addr_parse(text, 0, &out[n]) == 0;
		free(text);
	}
	ldns_rdf_deep_free(owner);
	return n;
}

/*
 * The published sets: carried over from `old`; else from the state file;
 * else the zone file's records, answered with dns-ttl until the first poll
 * round (a resolver must not cache a placeholder for the file's TTL).
 */
static void
restore_sets(struct cluster *cl, const struct cluster *old)
{
	size_t cap = cl->cfg->max_members;
	bool restored[2] = {false, false};

	for (int f = 0; f < 2; f++) {
		struct pubset *p = &cl->pub[f];
		const char *from = "saved";
		size_t n = 0;

		if (old != NULL) {
			n = old->pub[f].n < cap ? old->pub[f].n : cap;
			memcpy(p->v, old->pub[f].v, n * sizeof(*p->v));
		} else if (p->managed) {
			if (cl->cs->sf != NULL)
				n = statefile_get(cl->cs->sf, cl->name,
				    f == FAM_V4 ? AF_INET : AF_INET6, p->v, cap);
			if (n == 0 && cl->in_zone) {
				n = zone_file_set(cl, f, p->v, cap);
				from = "zone file's";
			}
		}
		p->n = n;
		if (old == NULL && n > 0) {
			char line[LOG_LINE_MAX] = "";

			cluster_set_list(line, sizeof(line), p->v, n);
			log_info("cluster %s: answering the %s %s set %s (ttl %u) until the first "
			         "polls return",
			    cl->name, from, cluster_fam_type(f), line, cl->cfg->dns_ttl);
			restored[f] = true;
			cl->restored = true;
			cl->restored_from = strcmp(from, "saved") == 0 ? "state-file" : "zone-file";
		}
	}
	cluster_publish_zone(cl, restored);
}

static int
cluster_timers(struct cluster *cl)
{
	uint64_t interval = (uint64_t)cl->cfg->polling_interval * 1000;
	uint64_t tick = cl->n ? interval / cl->n : interval;
	struct timeval tv, rv = {cl->cfg->dns_refresh, 0};

	tick = tick < TICK_MS_MIN ? TICK_MS_MIN : tick > TICK_MS_MAX ? TICK_MS_MAX : tick;
	tv.tv_sec = (time_t)(tick / 1000);
	tv.tv_usec = (suseconds_t)(tick % 1000) * 1000;
	cl->tick = event_new(cl->cs->base, -1, EV_PERSIST, cluster_tick_cb, cl);
	cl->refresh = event_new(cl->cs->base, -1, EV_PERSIST, cluster_refresh_cb, cl);
	if (cl->tick == NULL || cl->refresh == NULL || event_add(cl->tick, &tv) == -1 ||
	    event_add(cl->refresh, &rv) == -1)
		return -1;
	return 0;
}

/* The name, the member array, the ranking scratch and the published sets. */
static int
cluster_alloc(struct cluster *cl, const struct config_cluster *cc)
{
	size_t cap = cc->max_members;

	cl->n = cc->nmembers;
	cl->name = strdup(cc->name);
	if (cl->name != NULL &&
	    asprintf(&cl->status_name, "%s.%s", CLUSTER_STATUS_LABEL, cc->name) == -1)
		cl->status_name = NULL;
	cl->m = calloc(cl->n, sizeof(*cl->m));
	cl->rm = calloc(cl->n, sizeof(*cl->rm));
	cl->idx = calloc(cl->n, sizeof(*cl->idx));
	cl->order = calloc(cl->n, sizeof(*cl->order));
	cl->scores = calloc(cl->n, sizeof(*cl->scores));
	cl->pub[0].v = calloc(cap, sizeof(struct addr));
	cl->pub[1].v = calloc(cap, sizeof(struct addr));
	if (cl->name == NULL || cl->status_name == NULL || cl->m == NULL || cl->rm == NULL ||
	    cl->idx == NULL || cl->order == NULL || cl->scores == NULL || cl->pub[0].v == NULL ||
	    cl->pub[1].v == NULL)
		return -1;
	return 0;
}

/* A reload keeps the warm-up, the change log and the table's hash. */
static void
cluster_carry_over(struct cluster *cl, const struct cluster *old)
{
	cl->changes = old->changes;
	cl->last_change_at = old->last_change_at;
	memcpy(cl->last_change, old->last_change, sizeof(cl->last_change));
	cl->warm_until = old->warm_until;
	cl->table_hash = old->table_hash;
	cl->restored = old->restored;
	cl->restored_from = old->restored_from;
}

static struct cluster *
cluster_new(struct clusters *cs, const struct config_cluster *cc, const struct cluster *old)
{
	struct cluster *cl = calloc(1, sizeof(*cl));
	uint64_t interval = (uint64_t)cc->polling_interval * 1000;

	if (cl == NULL)
		return NULL;
	cl->cs = cs;
	cl->cfg = cc;
	if (cluster_alloc(cl, cc) == -1 || build_members(cl, old) == -1)
		goto fail;
	cl->in_zone = cluster_in_zone(cs->cfg, cc->name);
	for (size_t i = 0; i < cl->n; i++)
		cl->pub[cluster_fam_index(&cl->m[i].cm.addr)].managed = true;
	cl->pub[FAM_V4].managed |= cc->failover4.len != 0;
	cl->pub[FAM_V6].managed |= cc->failover6.len != 0;
	cl->warm = old != NULL ? old->warm : true;
	cl->unknown = cluster_count_unknown(cl);
	cl->timeout_ms = interval * 3 / 4 < CLUSTER_TIMEOUT_MAX ? (unsigned)(interval * 3 / 4)
	                                                        : CLUSTER_TIMEOUT_MAX;
	/* The first round of polls, with room for `rise` answers. */
	cl->warm_until = clock_ms() + (uint64_t)cc->rise * interval + cl->timeout_ms;
	cl->cycle_start = clock_ms();
	if (old != NULL)
		cluster_carry_over(cl, old);
	if (cc->masters.n > 0 &&
	    (cl->up = updater_new(cs->base, cc->name, &cc->masters, cc->key)) == NULL)
		goto fail;
	restore_sets(cl, old);
	cluster_update_published_flags(cl);
	if (cl->up != NULL)
		cluster_push_masters(cl);
	if (!cl->in_zone && cc->masters.n == 0)
		log_warnx("cluster %s: in no zone brokerd serves and no masters: the answer is "
		          "computed but published nowhere",
		    cc->name);
	if (cluster_timers(cl) == -1)
		goto fail;
	return cl;
fail:
	log_warnx("cluster %s: cannot start: out of memory", cc->name);
	cluster_free(cl);
	return NULL;
}

static size_t
total_members(const struct config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->nclusters; i++)
		n += cfg->clusters[i].nmembers;
	return n;
}

/* Room for two polls per member (one late, one new) and some slack. */
static unsigned
poller_size(const struct config *cfg)
{
	size_t n = total_members(cfg) * 2 + 64;

	return n > METRIC_POLLER_MAX ? METRIC_POLLER_MAX : (unsigned)n;
}

int
clusters_check_config(const struct config *cfg)
{
	char why[512];

	if ((cfg->nclusters > 0 || cfg->broker.nzones > 0) && cfg->broker.state_file != NULL &&
	    statefile_check_dir(cfg->broker.state_file, cfg->options.user, why, sizeof(why)) ==
	        -1) {
		fprintf(stderr,
		    "%s: broker state-file %s: %s (brokerd keeps the served serials and "
		    "answers there; fix the folder's owner or permissions, or set state-file)\n",
		    cfg->path, cfg->broker.state_file, why);
		return -1;
	}
	for (size_t i = 0; i < cfg->nclusters; i++) {
		const struct config_cluster *cc = &cfg->clusters[i];

		if (cc->key != NULL && cc->protocol == CONFIG_PROTO_NATIVE &&
		    cc->key->algorithm != CONFIG_HMAC_SHA256) {
			fprintf(stderr,
			    "%s:%d: cluster '%s': key '%s' must be hmac-sha256 to sign "
			    "metric polls (it is %s)\n",
			    cfg->path, cc->line, cc->name, cc->key->name, cc->key->algorithm_name);
			return -1;
		}
	}
	return 0;
}

struct clusters *
clusters_new(
    struct event_base *base, const struct config *cfg, struct zonestore *zs, struct statefile *sf)
{
	struct clusters *cs = calloc(1, sizeof(*cs));

	if (cs == NULL)
		return NULL;
	cs->base = base;
	cs->cfg = cfg;
	cs->zs = zs;
	cs->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 10);
	cs->sf = sf; /* also for clusters a reload adds */
	if (cfg->nclusters == 0)
		return cs;
	cs->poller_cap = poller_size(cfg);
	cs->poller = metric_poller_new(base, cs->poller_cap, NULL, NULL);
	cs->v = calloc(cfg->nclusters, sizeof(*cs->v));
	if (cs->sf == NULL || cs->poller == NULL || cs->v == NULL)
		goto fail;
	for (size_t i = 0; i < cfg->nclusters; i++) {
		if ((cs->v[i] = cluster_new(cs, &cfg->clusters[i], NULL)) == NULL)
			goto fail;
		cs->n++;
		log_info("cluster %s: %zu members, polling every %u s, answer every %u s",
		    cfg->clusters[i].name, cfg->clusters[i].nmembers,
		    cfg->clusters[i].polling_interval, cfg->clusters[i].dns_refresh);
	}
	prune_drains(cs);
	return cs;
fail:
	clusters_free(cs);
	return NULL;
}

struct cluster *
cluster_find_in(struct cluster *const *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] != NULL && strcmp(v[i]->name, name) == 0)
			return v[i];
	return NULL;
}

/* A poller large enough for cfg; polls of the old one must be cancelled. */
static int
resize_poller(struct clusters *cs, const struct config *cfg)
{
	unsigned want = poller_size(cfg);
	struct metric_poller *p;

	if (cs->poller != NULL && want <= cs->poller_cap)
		return 0;
	if ((p = metric_poller_new(cs->base, want, NULL, NULL)) == NULL)
		return -1;
	metric_poller_free(cs->poller);
	cs->poller = p;
	cs->poller_cap = want;
	return 0;
}

int
clusters_reload(struct clusters *cs, const struct config *cfg)
{
	struct cluster **v = calloc(cfg->nclusters ? cfg->nclusters : 1, sizeof(*v));
	const struct config *oldcfg = cs->cfg;
	size_t n = 0;

	if (v == NULL)
		return -1;
	cs->cfg = cfg;
	for (; n < cfg->nclusters; n++)
		if ((v[n] = cluster_new(cs, &cfg->clusters[n],
		         cluster_find_in(cs->v, cs->n, cfg->clusters[n].name))) == NULL)
			goto fail;
	for (size_t i = 0; i < cs->n; i++) {
		if (cluster_find_in(v, n, cs->v[i]->name) == NULL)
			log_info("cluster %s: removed; its records stay as last published",
			    cs->v[i]->name);
		cluster_free(cs->v[i]); /* cancels its polls on the current poller */
	}
	free(cs->v);
	cs->v = v;
	cs->n = n;
	if (resize_poller(cs, cfg) == -1)
		log_warnx("clusters: cannot grow the poller: some polls will fail");
	log_info("clusters: %zu clusters, %zu members after reload", n, total_members(cfg));
	prune_drains(cs);
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		cluster_free(v[i]);
	free(v);
	cs->cfg = oldcfg;
	return -1;
}

void
clusters_free(struct clusters *cs)
{
	if (cs == NULL)
		return;
	for (size_t i = 0; i < cs->n; i++)
		cluster_free(cs->v[i]);
	free(cs->v);
	metric_poller_free(cs->poller);
	free(cs);
}

static bool
drain_kept_cb(const char *cluster, const char *member, void *arg)
{
	struct clusters *cs = arg;
	struct cluster *cl = cluster_find_in(cs->v, cs->n, cluster);
	struct addr a;

	return cl != NULL && addr_parse(member, 0, &a) == 0 && cluster_member_find(cl, &a) != NULL;
}

/* Saved drains of members no longer configured are forgotten (logged). */
static void
prune_drains(struct clusters *cs)
{
	size_t n;

	if (cs->sf == NULL || (n = statefile_prune_drains(cs->sf, drain_kept_cb, cs)) == 0)
		return;
	log_info("clusters: %zu saved drains of members no longer configured forgotten", n);
	statefile_save(cs->sf);
}

const char *
clusters_strerror(enum clusters_status st)
{
	switch (st) {
	case CLUSTERS_OK: return "ok";
	case CLUSTERS_ENOCLUSTER: return "no such cluster";
	case CLUSTERS_ENOMEMBER: return "no such member in the cluster";
	case CLUSTERS_ECONFIG:
		return "drained by the configuration: remove `drain` from its member line and "
		       "reload";
	case CLUSTERS_ESAVE:
		return "done, but the state file could not be written: a restart forgets it";
	case CLUSTERS_ENOMEM: return "out of memory";
	}
	return "unknown error";
}
