/* cluster_status.c - clusters in /status, /metrics and brokerd-ctl show. */
#include "broker/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "broker/updater.h"
#include "common/jsonout.h"
#include "common/status_http.h"

const char *const cluster_why_names[] = {
    "in-answer",
    "ranked-out",
    "unknown",
    "down",
    "drained",
    "agent-draining",
    "health-failed",
    "not-accepting",
    "warming-up",
};
const char *const cluster_state_names[] = {"unknown", "up", "down"};

/* RFC 3339 UTC, e.g. 2026-01-02T03:04:05Z. */
static void
utc_text(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
}

/* "drained by root at 2026-...Z: disk swap", or by the configuration. */
static void
drain_text(const struct member *m, char *buf, size_t len)
{
	char when[32];

	if (!m->ctl_drain) {
		snprintf(buf, len, "drained by the configuration");
		return;
	}
	utc_text(m->drain.since, when, sizeof(when));
	snprintf(buf, len, "drained by %s at %s%s%s", m->drain.who[0] ? m->drain.who : "?", when,
	    m->drain.reason[0] ? ": " : "", m->drain.reason);
}

void
cluster_why_text(const struct member *m, char *buf, size_t len)
{
	switch (m->why) {
	case WHY_ANSWER:
		snprintf(buf, len, "rank %zu, rating %.3f", m->rank, m->smoothed / 1000.0);
		break;
	case WHY_RANK:
		snprintf(
		    buf, len, "rank %zu, below max-members %u", m->rank, m->cl->cfg->max_members);
		break;
	case WHY_UNKNOWN: snprintf(buf, len, "no verdict yet"); break;
	case WHY_DOWN:
		snprintf(buf, len, "down: %u polls failed (%s)", m->polled.bads,
		    m->error[0] ? m->error : "timeout");
		break;
	case WHY_DRAINED: drain_text(m, buf, len); break;
	case WHY_AGENT: snprintf(buf, len, "its agent reports draining"); break;
	case WHY_HEALTH:
		snprintf(
		    buf, len, "health check failed: %s", m->hwhy[0] ? m->hwhy : "no result yet");
		break;
	case WHY_WARMING:
		snprintf(buf, len, "eligible; the %s answer stands until the first poll round",
		    m->cl->restored_from != NULL && strcmp(m->cl->restored_from, "zone-file") == 0
		        ? "zone file's"
		        : "saved");
		break;
	case WHY_UNAVAIL:
		snprintf(buf, len, "not accepting mail: %s", metric_unavailable_str(m->unavail));
		break;
	}
}

/* Rows of the TXT table: by family, ranked members first, by rank. */
static int
row_cmp(const void *pa, const void *pb)
{
	const struct member *a = *(const struct member *const *)pa;
	const struct member *b = *(const struct member *const *)pb;
	int fa = cluster_fam_index(&a->cm.addr), fb = cluster_fam_index(&b->cm.addr);
	size_t ra = a->rank ? a->rank : SIZE_MAX, rb = b->rank ? b->rank : SIZE_MAX;

	if (fa != fb)
		return fa - fb;
	if (ra != rb)
		return ra < rb ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* The members in table order (row_cmp); NULL when out of memory.  Free it. */
const struct member **
cluster_sorted_rows(const struct cluster *cl)
{
	const struct member **rows = calloc(cl->n ? cl->n : 1, sizeof(*rows));

	if (rows == NULL)
		return NULL;
	for (size_t i = 0; i < cl->n; i++)
		rows[i] = &cl->m[i];
	qsort(rows, cl->n, sizeof(*rows), row_cmp);
	return rows;
}

/* "cluster NAME policy ranked max-members 2 members 3 answer A {...}" */
void
cluster_table_header(const struct cluster *cl, char *text, size_t len)
{
	text[0] = '\0';
	cluster_bprintf(text, len, "cluster %s policy %s max-members %u members %zu answer ",
	    cl->name, cl->cfg->policy == CONFIG_POLICY_WEIGHTED ? "weighted" : "ranked",
	    cl->cfg->max_members, cl->n);
	for (int f = 0; f < 2; f++)
		if (cl->pub[f].managed) {
			cluster_bprintf(text, len, "%s ", cluster_fam_type(f));
			cluster_set_list(text, len, cl->pub[f].v, cl->pub[f].n);
		}
}

/* "rank 1 127.0.0.13 in-answer up rating=70.576 weight=1" */
void
cluster_table_row(const struct member *m, char *text, size_t len)
{
	char a[ADDR_STRLEN];

	snprintf(text, len, "rank %zu %s %s %s rating=%.3f weight=%u", m->rank,
	    addr_host_str(&m->cm.addr, a, sizeof(a)), cluster_why_names[m->why],
	    cluster_state_names[m->state], m->smoothed / 1000.0, m->cm.weight);
}

void
cluster_jadd(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

static struct json_object *
json_set(const struct addr *v, size_t n)
{
	struct json_object *a = json_object_new_array();
	char buf[ADDR_STRLEN];

	for (size_t i = 0; i < n; i++)
		json_object_array_add(
		    a, json_object_new_string(addr_host_str(&v[i], buf, sizeof(buf))));
	return a;
}

/*
 * The same keys as metricd's drain (metrics/drain.h): reason, by (who),
 * at (RFC 3339), plus via: "brokerd-ctl" or "configuration".  NULL when
 * the member is not drained by the operator.
 */
static struct json_object *
drain_json(const struct member *m)
{
	struct json_object *o;
	char when[32];

	if (!m->cm.drain && !m->ctl_drain)
		return NULL;
	o = json_object_new_object();
	if (!m->ctl_drain) {
		cluster_jadd(o, "via", json_object_new_string("configuration"));
		return o;
	}
	utc_text(m->drain.since, when, sizeof(when));
	cluster_jadd(o, "via", json_object_new_string("brokerd-ctl"));
	cluster_jadd(o, "reason", json_object_new_string(m->drain.reason));
	cluster_jadd(o, "by", json_object_new_string(m->drain.who));
	cluster_jadd(o, "at", json_object_new_string(when));
	cluster_jadd(o, "also_in_configuration", json_object_new_boolean(m->cm.drain));
	return o;
}

struct json_object *
cluster_member_json(const struct member *m, time_t now)
{
	struct json_object *o = json_object_new_object(), *in = json_object_new_object();
	char buf[ADDR_STRLEN], why[LOG_WHY_MAX];

	cluster_jadd(
	    o, "address", json_object_new_string(addr_host_str(&m->cm.addr, buf, sizeof(buf))));
	cluster_jadd(o, "check", json_object_new_string(addr_str(&m->agent, buf, sizeof(buf))));
	cluster_jadd(o, "state", json_object_new_string(cluster_state_names[m->state]));
	cluster_jadd(o, "operator",
	    json_object_new_string(m->cm.drain || m->ctl_drain ? "drained" : "active"));
	cluster_jadd(o, "drain", drain_json(m));
	cluster_jadd(o, "agent_draining", json_object_new_boolean(m->agent_drain));
	if (m->cl->cfg->health != CONFIG_HEALTH_NONE) {
		cluster_jadd(o, "health", json_object_new_string(cluster_state_names[m->hstate]));
		cluster_jadd(o, "health_detail", json_object_new_string(m->hwhy));
	}
	cluster_jadd(o, "eligible", json_object_new_boolean(cluster_member_eligible(m)));
	cluster_jadd(o, "published", json_object_new_boolean(m->published));
	cluster_jadd(o, "rank", json_object_new_int64((int64_t)m->rank));
	cluster_jadd(o, "why", json_object_new_string(cluster_why_names[m->why]));
	cluster_why_text(m, why, sizeof(why));
	cluster_jadd(o, "reason", json_object_new_string(why));
	cluster_jadd(o, "rating", jsonout_fixed(m->rating / 1000.0, JSONOUT_DECIMALS));
	cluster_jadd(o, "rating_smoothed", jsonout_fixed(m->smoothed / 1000.0, JSONOUT_DECIMALS));
	cluster_jadd(o, "weight", json_object_new_int((int)m->cm.weight));
	cluster_jadd(
	    in, "availability", jsonout_fixed(m->last.availability / 1000.0, JSONOUT_DECIMALS));
	cluster_jadd(in, "workload", jsonout_fixed(m->last.workload / 1000.0, JSONOUT_DECIMALS));
	cluster_jadd(in, "penalty", jsonout_fixed(m->last.penalty / 1000.0, JSONOUT_DECIMALS));
	cluster_jadd(in, "load", jsonout_fixed(m->last.load / 1000.0, JSONOUT_DECIMALS));
	cluster_jadd(in, "cpu_rating", json_object_new_int(m->last.cpu_rating));
	cluster_jadd(in, "sessions", json_object_new_int64(m->last.sessions));
	cluster_jadd(in, "capacity", json_object_new_int64(m->last.capacity));
	cluster_jadd(in, "flags", json_object_new_int(m->last.flags));
	cluster_jadd(o, "inputs", in);
	cluster_jadd(o, "last_reply", json_object_new_int64((int64_t)m->last_reply));
	cluster_jadd(o, "last_reply_age_seconds",
	    m->last_reply ? json_object_new_int64((int64_t)(now - m->last_reply)) : NULL);
	cluster_jadd(o, "rtt_us", json_object_new_int64(m->rtt_us));
	cluster_jadd(o, "consecutive_misses", json_object_new_int64(m->polled.bads));
	cluster_jadd(o, "last_error", json_object_new_string(m->error));
	cluster_jadd(o, "polls", json_object_new_int64((int64_t)m->polls));
	cluster_jadd(o, "replies", json_object_new_int64((int64_t)m->replies));
	cluster_jadd(o, "timeouts", json_object_new_int64((int64_t)m->timeouts));
	cluster_jadd(o, "key_mismatches", json_object_new_int64((int64_t)m->key_mismatches));
	cluster_jadd(
	    o, "accepting_mail", m->last_reply ? json_object_new_boolean(m->unavail == 0) : NULL);
	cluster_jadd(o, "not_accepting_reason",
	    m->unavail ? json_object_new_string(metric_unavailable_str(m->unavail)) : NULL);
	return o;
}

static struct json_object *
cluster_json(const struct cluster *cl, time_t now)
{
	struct json_object *o = json_object_new_object(), *pub = json_object_new_object();
	struct json_object *fo = json_object_new_object(), *ms = json_object_new_array();

	cluster_jadd(o, "name", json_object_new_string(cl->name));
	cluster_jadd(o, "in_zone", json_object_new_boolean(cl->in_zone));
	cluster_jadd(
	    o, "status_name", cl->in_zone ? json_object_new_string(cl->status_name) : NULL);
	cluster_jadd(o, "policy",
	    json_object_new_string(
	        cl->cfg->policy == CONFIG_POLICY_WEIGHTED ? "weighted" : "ranked"));
	cluster_jadd(o, "max_members", json_object_new_int((int)cl->cfg->max_members));
	cluster_jadd(o, "polling_interval", json_object_new_int((int)cl->cfg->polling_interval));
	cluster_jadd(o, "dns_refresh", json_object_new_int((int)cl->cfg->dns_refresh));
	cluster_jadd(o, "warming_up", json_object_new_boolean(cl->warm));
	cluster_jadd(o, "restored_from_state_file",
	    json_object_new_boolean(
	        cl->restored_from != NULL && strcmp(cl->restored_from, "state-file") == 0));
	cluster_jadd(o, "placeholder_answer",
	    cl->restored_from ? json_object_new_string(cl->restored_from) : NULL);
	for (int f = 0; f < 2; f++)
		if (cl->pub[f].managed) {
			cluster_jadd(
			    pub, cluster_fam_type(f), json_set(cl->pub[f].v, cl->pub[f].n));
			cluster_jadd(fo, cluster_fam_type(f),
			    json_object_new_string(cl->pub[f].failover ? "failover"
			            : cl->pub[f].held                  ? "all-down-kept-last"
			                                               : "members"));
		}
	cluster_jadd(o, "published", pub);
	cluster_jadd(o, "answer_source", fo);
	cluster_jadd(o, "changes", json_object_new_int64((int64_t)cl->changes));
	cluster_jadd(o, "last_change", json_object_new_string(cl->last_change));
	cluster_jadd(o, "last_change_time", json_object_new_int64((int64_t)cl->last_change_at));
	if (cl->up != NULL) {
		struct updater_stats us;
		struct json_object *u = json_object_new_object();

		updater_get_stats(cl->up, &us);
		cluster_jadd(u, "in_sync", json_object_new_boolean(us.in_sync));
		cluster_jadd(u, "rounds", json_object_new_int64((int64_t)us.rounds));
		cluster_jadd(u, "updates", json_object_new_int64((int64_t)us.updates));
		cluster_jadd(u, "updates_ok", json_object_new_int64((int64_t)us.updates_ok));
		cluster_jadd(u, "failures", json_object_new_int64((int64_t)us.failures));
		cluster_jadd(u, "last_error", json_object_new_string(us.last_error));
		cluster_jadd(o, "masters", u);
	}
	for (size_t i = 0; i < cl->n; i++)
		json_object_array_add(ms, cluster_member_json(&cl->m[i], now));
	cluster_jadd(o, "members", ms);
	return o;
}

void
clusters_status_json(struct clusters *cs, struct json_object *root)
{
	struct json_object *a = json_object_new_array();
	struct metric_poller_stats ps;
	struct json_object *p;
	time_t now = time(NULL);

	for (size_t i = 0; i < cs->n; i++)
		json_object_array_add(a, cluster_json(cs->v[i], now));
	cluster_jadd(root, "clusters", a);
	if (cs->poller == NULL)
		return;
	metric_poller_stats(cs->poller, &ps);
	p = json_object_new_object();
	cluster_jadd(p, "sent", json_object_new_int64((int64_t)ps.sent));
	cluster_jadd(p, "answered", json_object_new_int64((int64_t)ps.answered));
	cluster_jadd(p, "refused", json_object_new_int64((int64_t)ps.refused));
	cluster_jadd(p, "timeouts", json_object_new_int64((int64_t)ps.timeouts));
	cluster_jadd(p, "discarded", json_object_new_int64((int64_t)ps.discarded));
	cluster_jadd(p, "unmatched", json_object_new_int64((int64_t)ps.unmatched));
	cluster_jadd(p, "send_errors", json_object_new_int64((int64_t)ps.send_errors));
	cluster_jadd(p, "outstanding", json_object_new_int64(ps.outstanding));
	cluster_jadd(root, "poller", p);
}

static void
metrics_cluster(struct evbuffer *out, const struct cluster *cl, const char *family)
{
	char labels[512], a[ADDR_STRLEN];

	for (size_t i = 0; i < cl->n; i++) {
		const struct member *m = &cl->m[i];

		snprintf(labels, sizeof(labels), "cluster=\"%s\",member=\"%s\"", cl->name,
		    addr_host_str(&m->cm.addr, a, sizeof(a)));
		if (strcmp(family, "cluster_member_up") == 0)
			prom_sample_u64(out, family, labels, m->state == MEMBER_UP);
		else if (strcmp(family, "cluster_member_published") == 0)
			prom_sample_u64(out, family, labels, m->published);
		else if (strcmp(family, "cluster_member_rating") == 0)
			prom_sample(out, family, labels, m->smoothed / 1000.0);
		else
			prom_sample_u64(out, family, labels, m->polls);
	}
}

void
clusters_metrics(struct clusters *cs, struct evbuffer *out)
{
	static const char *const fams[][3] = {
	    {"cluster_member_up", "gauge", "1 when the member's agent answers."},
	    {"cluster_member_published", "gauge", "1 when the member is in the answer."},
	    {"cluster_member_rating", "gauge", "The member's smoothed rating."},
	    {"cluster_member_polls_total", "counter", "Polls sent to the member."},
	};
	struct metric_poller_stats ps;
	char labels[300];

	prom_family(out, "cluster_changes_total", "counter", "Changes of the published set.");
	for (size_t i = 0; i < cs->n; i++) {
		snprintf(labels, sizeof(labels), "cluster=\"%s\"", cs->v[i]->name);
		prom_sample_u64(out, "cluster_changes_total", labels, cs->v[i]->changes);
	}
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		prom_family(out, fams[f][0], fams[f][1], fams[f][2]);
		for (size_t i = 0; i < cs->n; i++)
			metrics_cluster(out, cs->v[i], fams[f][0]);
	}
	if (cs->poller == NULL)
		return;
	metric_poller_stats(cs->poller, &ps);
	prom_family(out, "broker_polls_total", "counter", "Metric polls by outcome.");
	prom_sample_u64(out, "broker_polls_total", "result=\"answered\"", ps.answered);
	prom_sample_u64(out, "broker_polls_total", "result=\"refused\"", ps.refused);
	prom_sample_u64(out, "broker_polls_total", "result=\"timeout\"", ps.timeouts);
	prom_family(out, "broker_poll_replies_discarded_total", "counter",
	    "Replies that failed validation (forged, unsigned, stale).");
	prom_sample_u64(out, "broker_poll_replies_discarded_total", NULL, ps.discarded);
}

static struct json_object *
show_row(const struct member *m)
{
	struct json_object *o = json_object_new_object();
	char buf[LOG_WHY_MAX];

	cluster_jadd(o, "rank", json_object_new_int64((int64_t)m->rank));
	cluster_jadd(
	    o, "address", json_object_new_string(addr_host_str(&m->cm.addr, buf, sizeof(buf))));
	cluster_jadd(o, "why", json_object_new_string(cluster_why_names[m->why]));
	cluster_why_text(m, buf, sizeof(buf));
	cluster_jadd(o, "reason", json_object_new_string(buf));
	cluster_jadd(o, "state", json_object_new_string(cluster_state_names[m->state]));
	cluster_jadd(o, "rating", jsonout_fixed(m->smoothed / 1000.0, JSONOUT_DECIMALS));
	cluster_jadd(o, "weight", json_object_new_int((int)m->cm.weight));
	cluster_jadd(o, "published", json_object_new_boolean(m->published));
	cluster_jadd(o, "drain", drain_json(m));
	return o;
}

static struct json_object *
show_cluster(const struct cluster *cl)
{
	struct json_object *o = json_object_new_object(), *pub = json_object_new_object();
	struct json_object *table = json_object_new_array(), *ms = json_object_new_array();
	const struct member **rows = cluster_sorted_rows(cl);
	char text[TABLE_ROW_MAX + LOG_WHY_MAX];

	cluster_jadd(o, "name", json_object_new_string(cl->name));
	for (int f = 0; f < 2; f++)
		if (cl->pub[f].managed)
			cluster_jadd(
			    pub, cluster_fam_type(f), json_set(cl->pub[f].v, cl->pub[f].n));
	cluster_jadd(o, "published", pub);
	cluster_table_header(cl, text, sizeof(text));
	json_object_array_add(table, json_object_new_string(text));
	for (size_t i = 0; rows != NULL && i < cl->n; i++) {
		cluster_table_row(rows[i], text, sizeof(text));
		if (rows[i]->why == WHY_DRAINED) {
			cluster_bprintf(text, sizeof(text), " (");
			drain_text(rows[i], text + strlen(text), sizeof(text) - strlen(text));
			cluster_bprintf(text, sizeof(text), ")");
		}
		json_object_array_add(table, json_object_new_string(text));
		json_object_array_add(ms, show_row(rows[i]));
	}
	free(rows);
	cluster_jadd(o, "table", table);
	cluster_jadd(o, "members", ms);
	return o;
}

enum clusters_status
clusters_show_json(struct clusters *cs, const char *cluster, struct json_object *reply)
{
	struct json_object *a;
	const struct cluster *one = NULL;

	if (cluster != NULL && (one = cluster_find_in(cs->v, cs->n, cluster)) == NULL)
		return CLUSTERS_ENOCLUSTER;
	if ((a = json_object_new_array()) == NULL)
		return CLUSTERS_ENOMEM;
	for (size_t i = 0; i < cs->n; i++)
		if (one == NULL || cs->v[i] == one)
			json_object_array_add(a, show_cluster(cs->v[i]));
	cluster_jadd(reply, "clusters", a);
	return CLUSTERS_OK;
}
