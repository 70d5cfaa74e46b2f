/* cluster.c - poll members, rank them, publish the answer, fail over. */
#include "broker/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <ldns/ldns.h>

#include "broker/healthcheck.h"
#include "broker/ranker.h"
#include "broker/statefile.h"
#include "broker/updater.h"
#include "broker/zone.h"
#include "broker/zonestore.h"
#include "common/addr.h"
#include "common/config.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "common/status_http.h"
#include "metrics/poll.h"

#define TICK_MS_MAX           250 /* poll scheduler tick, at most */
#define TICK_MS_MIN           10
#define LOG_LINE_MAX          1024
#define TABLE_ROW_MAX         256
#define LOG_WHY_MAX           (STATEFILE_REASON_MAX + STATEFILE_WHO_MAX + 64)
#define FAM_V4                0
#define FAM_V6                1
#define CLUSTER_VERIFY_MIN_MS 60000 /* masters compared at least this far apart */
#define CLUSTER_POLL_RETRIES  2     /* resends inside a poll's timeout (at 1/3, 2/3) */

enum member_state {
	MEMBER_UNKNOWN, /* not yet decided since start */
	MEMBER_UP,
	MEMBER_DOWN,
};

/* Why a member is, or is not, in the answer. */
enum member_why {
	WHY_ANSWER,  /* published */
	WHY_RANK,    /* eligible but ranked below max-members */
	WHY_UNKNOWN, /* no verdict yet */
	WHY_DOWN,    /* its agent stopped answering */
	WHY_DRAINED, /* `drain` in the configuration, or brokerd-ctl drain */
	WHY_AGENT,   /* its agent reports draining */
	WHY_HEALTH,  /* the service check fails */
	WHY_UNAVAIL, /* its agent reports the relay cannot take mail now */
	WHY_WARMING, /* eligible, but the placeholder answer stands until the first round */
};

static const char *const why_names[] = {
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
static const char *const state_names[] = {"unknown", "up", "down"};

struct cluster;

struct member {
	struct cluster *cl;
	struct config_member cm;
	struct addr agent;  /* check address, metric port */
	struct addr target; /* check address, health-check port */
	enum member_state state, hstate;
	unsigned misses, goods, hfails, hgoods;
	bool pending;
	uint32_t handle;
	bool agent_drain;
	uint16_t unavail; /* METRIC_F_UNAVAILABLE bits of the last reply */
	int32_t rating, smoothed;
	struct metric_values last;
	unsigned rtt_us;
	time_t last_reply;
	uint64_t polls, replies, timeouts, refusals, key_mismatches;
	char error[64];
	struct healthcheck *hc;
	char hwhy[HEALTHCHECK_WHY_LEN];
	bool ctl_drain; /* drained by brokerd-ctl (kept in the state file) */
	struct statefile_drain drain;
	bool published;
	enum member_why why;
	size_t rank; /* 1-based within its family, 0 = not ranked */
};

/* The published set of one family. */
struct pubset {
	struct addr *v;
	size_t n;
	bool managed;  /* the cluster has members or a failover of this family */
	bool failover; /* the failover address is what is published */
	bool held;     /* all down, no failover: the last set is kept */
};

struct cluster {
	struct clusters *cs;
	const struct config_cluster *cfg;
	char *name;
	char *status_name; /* _status.<name> */
	struct member *m;
	size_t n;
	/* ranking scratch, n entries each */
	struct ranker_member *rm;
	size_t *idx, *order;
	int64_t *scores;
	struct event *tick, *refresh;
	uint64_t cycle_start;
	size_t cursor;
	unsigned timeout_ms;
	struct pubset pub[2];
	bool in_zone;
	bool warm;                 /* warming up: not every member has a verdict yet */
	size_t unknown;            /* members without a verdict (count_unknown) */
	bool restored;             /* the answer came from the state file or the zone file */
	const char *restored_from; /* "state-file", "zone-file" or NULL */
	uint64_t warm_until;
	uint64_t table_hash; /* of the _status TXT texts last published */
	struct updater *up;
	uint64_t verify_at; /* next comparison with the masters */
	uint64_t changes;
	time_t last_change_at;
	char last_change[LOG_LINE_MAX];
};

struct clusters {
	struct event_base *base;
	const struct config *cfg;
	struct zonestore *zs;
	struct metric_poller *poller;
	unsigned poller_cap;
	struct statefile *sf;
	struct cluster **v;
	size_t n;
	struct log_ratelimit rl;
};

static void cluster_refresh(struct cluster *cl);
static void prune_drains(struct clusters *cs);

/* ---- small helpers ------------------------------------------------------ */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
fam_index(const struct addr *a)
{
	return addr_family(a) == AF_INET ? FAM_V4 : FAM_V6;
}

static const char *
fam_type(int f)
{
	return f == FAM_V4 ? "A" : "AAAA";
}

static const struct addr *
failover_of(const struct cluster *cl, int f)
{
	const struct addr *a = f == FAM_V4 ? &cl->cfg->failover4 : &cl->cfg->failover6;

	return a->len != 0 ? a : NULL;
}

/* Append to a fixed buffer; silently truncates (log lines). */
static void bprintf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
bprintf(char *buf, size_t cap, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, cap - len, fmt, ap);
	va_end(ap);
}

static void
set_list(char *buf, size_t cap, const struct addr *v, size_t n)
{
	char a[ADDR_STRLEN];

	bprintf(buf, cap, "{");
	for (size_t i = 0; i < n; i++)
		bprintf(buf, cap, "%s%s", i ? ", " : "", addr_host_str(&v[i], a, sizeof(a)));
	bprintf(buf, cap, "}");
}

static bool
set_has(const struct addr *v, size_t n, const struct addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (addr_equal_host(&v[i], a))
			return true;
	return false;
}

static bool
set_equal(const struct addr *a, size_t na, const struct addr *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!set_has(b, nb, &a[i]))
			return false;
	return true;
}

static bool
name_in_zone(const char *name, const char *zone)
{
	size_t ln = strlen(name), lz = strlen(zone);

	if (ln == lz)
		return strcasecmp(name, zone) == 0;
	return ln > lz && name[ln - lz - 1] == '.' && strcasecmp(name + ln - lz, zone) == 0;
}

static struct member *
member_find(struct cluster *cl, const struct addr *a)
{
	for (size_t i = 0; i < cl->n; i++)
		if (addr_equal_host(&cl->m[i].cm.addr, a))
			return &cl->m[i];
	return NULL;
}

static bool
member_eligible(const struct member *m)
{
	return m->state == MEMBER_UP && !m->cm.drain && !m->ctl_drain && !m->agent_drain &&
	    m->unavail == 0 && (m->cl->cfg->health == CONFIG_HEALTH_NONE || m->hstate == MEMBER_UP);
}

/*
 * A member's eligibility moved (up, down, draining, accepting mail or not):
 * rank and publish now rather than at the next dns-refresh.  Rating noise
 * still waits for the refresh timer.
 */
static void
cluster_refresh_soon(struct cluster *cl)
{
	if (!cl->warm && cl->refresh != NULL)
		event_active(cl->refresh, EV_TIMEOUT, 0);
}

/* Why m is out, before ranking; WHY_ANSWER when it may be published. */
static enum member_why
member_exclusion(const struct member *m)
{
	if (m->cm.drain || m->ctl_drain)
		return WHY_DRAINED;
	if (m->state == MEMBER_UNKNOWN)
		return WHY_UNKNOWN;
	if (m->state == MEMBER_DOWN)
		return WHY_DOWN;
	if (m->agent_drain)
		return WHY_AGENT;
	if (m->unavail != 0)
		return WHY_UNAVAIL;
	if (m->cl->cfg->health != CONFIG_HEALTH_NONE && m->hstate != MEMBER_UP)
		return WHY_HEALTH;
	return WHY_ANSWER;
}

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

static void
why_text(const struct member *m, char *buf, size_t len)
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
		snprintf(buf, len, "down: %u polls failed (%s)", m->misses,
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

/* ---- polling and health checks ----------------------------------------- */

static void
member_set_state(struct member *m, enum member_state s, const char *why)
{
	char a[ADDR_STRLEN];

	if (m->state == s)
		return;
	if (m->state == MEMBER_UNKNOWN && m->cl->unknown > 0)
		m->cl->unknown--;
	if (s == MEMBER_DOWN || m->state != MEMBER_UNKNOWN || log_get_level() >= LOG_LEVEL_DEBUG)
		log_info("cluster %s: member %s %s: %s", m->cl->name,
		    addr_host_str(&m->cm.addr, a, sizeof(a)), state_names[s], why);
	m->state = s;
	cluster_refresh_soon(m->cl);
}

/* What the agent says of the relay: a reported state counts at once. */
static void
member_set_unavail(struct member *m, uint16_t unavail)
{
	char a[ADDR_STRLEN];

	if (unavail == m->unavail)
		return;
	if (unavail != 0)
		log_info("cluster %s: member %s not accepting mail: %s", m->cl->name,
		    addr_host_str(&m->cm.addr, a, sizeof(a)), metric_unavailable_str(unavail));
	else
		log_info("cluster %s: member %s accepting mail again", m->cl->name,
		    addr_host_str(&m->cm.addr, a, sizeof(a)));
	m->unavail = unavail;
	cluster_refresh_soon(m->cl);
}

static void
member_good(struct member *m, const struct metric_values *v, unsigned rtt_us)
{
	char why[64];
	bool drain = (v->flags & METRIC_F_DRAINING) != 0;
	char a[ADDR_STRLEN];

	m->replies++;
	m->misses = 0;
	m->goods++;
	m->error[0] = '\0';
	m->smoothed =
	    m->last_reply != 0 ? (int32_t)(((int64_t)m->rating + v->rating) / 2) : v->rating;
	m->rating = v->rating;
	m->last = *v;
	m->rtt_us = rtt_us;
	m->last_reply = time(NULL);
	if (drain != m->agent_drain)
		log_info("cluster %s: member %s %s by its agent", m->cl->name,
		    addr_host_str(&m->cm.addr, a, sizeof(a)),
		    drain ? "draining" : "no longer draining");
	if (drain != m->agent_drain)
		cluster_refresh_soon(m->cl);
	m->agent_drain = drain;
	member_set_unavail(m, v->flags & METRIC_F_UNAVAILABLE);
	if (m->goods >= m->cl->cfg->rise) {
		snprintf(why, sizeof(why), "answered, rating %.3f", v->rating / 1000.0);
		member_set_state(m, MEMBER_UP, why);
	}
}

static void
member_miss(struct member *m, const char *error)
{
	char why[128];

	snprintf(m->error, sizeof(m->error), "%s", error);
	m->goods = 0;
	m->misses++;
	if (m->misses >= m->cl->cfg->fall) {
		snprintf(why, sizeof(why), "%u polls failed (%s)", m->misses, error);
		member_set_state(m, MEMBER_DOWN, why);
	}
}

/* Members still without a verdict (drained ones are never polled). */
static size_t
count_unknown(const struct cluster *cl)
{
	size_t n = 0;

	for (size_t i = 0; i < cl->n; i++)
		n += cl->m[i].state == MEMBER_UNKNOWN && !cl->m[i].cm.drain;
	return n;
}

/* Every member has a verdict, or the deadline passed: the warm-up is over. */
static void
end_warmup_if_ready(struct cluster *cl)
{
	if (cl->warm && (cl->unknown == 0 || now_ms() >= cl->warm_until)) {
		cl->warm = false;
		cluster_refresh(cl);
	}
}

static void
poll_cb(const struct metric_poll_result *res, void *arg)
{
	struct member *m = arg;
	char why[64];

	m->pending = false;
	switch (res->status) {
	case METRIC_POLL_OK: member_good(m, &res->values, res->rtt_us); break;
	case METRIC_POLL_TIMEOUT:
		m->timeouts++;
		member_miss(m, res->discarded ? "timeout; invalid replies discarded" : "timeout");
		break;
	case METRIC_POLL_REFUSED:
		m->refusals++;
		member_miss(m, "refused by the agent");
		break;
	case METRIC_POLL_KEY_MISMATCH:
		/* Unauthenticated: never a good reply, but named, not a timeout. */
		m->key_mismatches++;
		snprintf(why, sizeof(why), "key mismatch: %s", metric_code_str(res->code));
		member_miss(m, why);
		break;
	}
	end_warmup_if_ready(m->cl);
}

static void
health_cb(bool ok, const char *why, void *arg)
{
	struct member *m = arg;
	char a[ADDR_STRLEN];
	enum member_state old = m->hstate;

	snprintf(m->hwhy, sizeof(m->hwhy), "%s", why);
	if (ok) {
		m->hfails = 0;
		if (++m->hgoods >= m->cl->cfg->rise)
			m->hstate = MEMBER_UP;
	} else {
		m->hgoods = 0;
		if (++m->hfails >= m->cl->cfg->fall)
			m->hstate = MEMBER_DOWN;
	}
	if (old != m->hstate && (old != MEMBER_UNKNOWN || m->hstate == MEMBER_DOWN))
		log_info("cluster %s: member %s health check %s%s%s", m->cl->name,
		    addr_host_str(&m->cm.addr, a, sizeof(a)),
		    m->hstate == MEMBER_UP ? "passes" : "fails", ok ? "" : ": ", why);
}

static void
member_poll(struct member *m)
{
	struct cluster *cl = m->cl;
	struct metric_poll_target t;

	if (m->cm.drain)
		return; /* the operator took it out: no traffic, not a failure */
	if (cl->cfg->health != CONFIG_HEALTH_NONE && m->hc != NULL &&
	    !healthcheck_is_running(m->hc))
		healthcheck_start(m->hc, cl->cfg->health, &m->target, cl->timeout_ms);
	if (m->pending)
		return; /* still waiting: its timeout is shorter than the interval */
	memset(&t, 0, sizeof(t));
	t.agent = m->agent;
	t.proto = cl->cfg->protocol == CONFIG_PROTO_LBCD ? METRIC_POLL_LBCD : METRIC_POLL_NATIVE;
	t.key = t.proto == METRIC_POLL_NATIVE ? cl->cfg->key : NULL;
	t.timeout_ms = cl->timeout_ms;
	t.retries = CLUSTER_POLL_RETRIES;
	m->polls++;
	if (metric_poll_start(cl->cs->poller, &t, poll_cb, m, &m->handle) == -1) {
		log_warnx_rl(
		    &cl->cs->rl, "cluster %s: cannot poll a member: %s", cl->name, strerror(errno));
		member_miss(m, "send failed");
		return;
	}
	m->pending = true;
}

/*
 * Spread the polls of one interval evenly: member i is due at
 * cycle_start + i * interval / n.  Late ticks catch up, never burst more
 * than what fell due.
 */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *cl = arg;
	uint64_t now = now_ms(), interval = (uint64_t)cl->cfg->polling_interval * 1000;
	size_t target;

	(void)fd;
	(void)what;
	if (now - cl->cycle_start >= interval) {
		while (cl->cursor < cl->n)
			member_poll(&cl->m[cl->cursor++]);
		cl->cycle_start =
		    now - cl->cycle_start >= 2 * interval ? now : cl->cycle_start + interval;
		cl->cursor = 0;
	}
	target = (size_t)((uint64_t)cl->n * (now - cl->cycle_start) / interval) + 1;
	if (target > cl->n)
		target = cl->n;
	while (cl->cursor < target)
		member_poll(&cl->m[cl->cursor++]);
	if (cl->warm)
		end_warmup_if_ready(cl);
}

static void
member_stop(struct member *m)
{
	if (m->pending)
		metric_poll_cancel(m->cl->cs->poller, m->handle);
	m->pending = false;
	healthcheck_free(m->hc);
	m->hc = NULL;
}

/* ---- ranking and publishing -------------------------------------------- */

/*
 * Rank the members of family f; the chosen addresses go to out (room for
 * max-members), best first.  Sets every member's rank and why.
 */
static size_t
rank_family(struct cluster *cl, int f, struct addr *out)
{
	size_t nf = 0, chosen;

	for (size_t i = 0; i < cl->n; i++) {
		struct member *m = &cl->m[i];

		if (fam_index(&m->cm.addr) != f)
			continue;
		cl->idx[nf] = i;
		cl->rm[nf] = (struct ranker_member){
		    m->smoothed, m->cm.weight, member_eligible(m), m->published};
		nf++;
	}
	chosen = ranker_rank(cl->rm, nf, cl->cfg->policy, cl->cfg->hysteresis, cl->cfg->max_members,
	    cl->order, cl->scores);
	for (size_t r = 0; r < nf; r++) {
		struct member *m = &cl->m[cl->idx[cl->order[r]]];

		m->why = member_exclusion(m);
		m->rank = m->why == WHY_ANSWER ? r + 1 : 0;
		if (m->why == WHY_ANSWER && r >= chosen)
			m->why = WHY_RANK;
		if (r < chosen)
			out[r] = m->cm.addr;
	}
	return chosen;
}

/* Say what changed in family f and why, e.g. "+127.0.0.12 (rank 2, ...)". */
static void
log_change(struct cluster *cl, int f, const struct addr *next, size_t nn)
{
	const struct pubset *p = &cl->pub[f];
	char line[LOG_LINE_MAX] = "", why[LOG_WHY_MAX], a[ADDR_STRLEN];

	bprintf(line, sizeof(line), "%s set now ", fam_type(f));
	set_list(line, sizeof(line), next, nn);
	bprintf(line, sizeof(line), " (was ");
	set_list(line, sizeof(line), p->v, p->n);
	bprintf(line, sizeof(line), "):");
	for (size_t i = 0; i < nn; i++) {
		const struct member *m = member_find(cl, &next[i]);

		if (set_has(p->v, p->n, &next[i]))
			continue;
		if (m != NULL)
			why_text(m, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "failover: no member is up");
		bprintf(
		    line, sizeof(line), " +%s (%s);", addr_host_str(&next[i], a, sizeof(a)), why);
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct member *m = member_find(cl, &p->v[i]);

		if (set_has(next, nn, &p->v[i]))
			continue;
		if (m != NULL)
			why_text(m, why, sizeof(why));
		else if (failover_of(cl, f) != NULL &&
		    addr_equal_host(failover_of(cl, f), &p->v[i]))
			snprintf(why, sizeof(why), "failover no longer needed");
		else
			snprintf(why, sizeof(why), "no longer a member");
		bprintf(
		    line, sizeof(line), " -%s (%s);", addr_host_str(&p->v[i], a, sizeof(a)), why);
	}
	log_info("cluster %s: %s", cl->name, line);
	snprintf(cl->last_change, sizeof(cl->last_change), "%s", line);
	cl->last_change_at = time(NULL);
	cl->changes++;
}

static void
update_published_flags(struct cluster *cl)
{
	for (size_t i = 0; i < cl->n; i++) {
		struct member *m = &cl->m[i];
		const struct pubset *p = &cl->pub[fam_index(&m->cm.addr)];

		m->published = set_has(p->v, p->n, &m->cm.addr);
	}
}

/* All down in family f: the failover address, else keep the last set. */
static size_t
all_down(struct cluster *cl, int f, struct addr *next)
{
	const struct addr *fo = failover_of(cl, f);
	struct pubset *p = &cl->pub[f];
	char line[LOG_LINE_MAX] = "";

	if (fo != NULL) {
		next[0] = *fo;
		return 1;
	}
	if (p->n > 0 && !p->held) {
		set_list(line, sizeof(line), p->v, p->n);
		log_warnx("cluster %s: no member is up and no failover address: keeping the last "
		          "published %s set %s",
		    cl->name, fam_type(f), line);
		p->held = true;
	}
	return 0;
}

/*
 * While warming up, the placeholder set still leaves out a member the
 * operator drained (an answer must never wait for a drain); the set is
 * kept whole when it would become empty.  True when it changed.
 */
static bool
placeholder_without_drained(struct cluster *cl, int f, struct addr *next)
{
	struct pubset *p = &cl->pub[f];
	size_t nn = 0;

	for (size_t i = 0; i < p->n && nn < cl->cfg->max_members; i++) {
		const struct member *m = member_find(cl, &p->v[i]);

		if (m == NULL || (!m->ctl_drain && !m->cm.drain))
			next[nn++] = p->v[i];
	}
	if (nn == 0 || nn == p->n)
		return false;
	log_change(cl, f, next, nn);
	memcpy(p->v, next, nn * sizeof(*next));
	p->n = nn;
	if (cl->cs->sf != NULL)
		statefile_set(cl->cs->sf, cl->name, f == FAM_V4 ? AF_INET : AF_INET6, p->v, p->n);
	return true;
}

/* Recompute family f; true when its published set changed. */
static bool
refresh_family(struct cluster *cl, int f, struct addr *next)
{
	struct pubset *p = &cl->pub[f];
	size_t nn = rank_family(cl, f, next);

	if (cl->warm && (cl->restored || nn == 0)) {
		/* Keep what we have until the first verdicts; say so. */
		for (size_t i = 0; i < cl->n; i++)
			if (fam_index(&cl->m[i].cm.addr) == f && cl->m[i].why == WHY_ANSWER &&
			    !set_has(p->v, p->n, &cl->m[i].cm.addr))
				cl->m[i].why = WHY_WARMING;
		return placeholder_without_drained(cl, f, next);
	}
	if (nn == 0 && (nn = all_down(cl, f, next)) == 0)
		return false;
	p->held = false;
	if (set_equal(next, nn, p->v, p->n))
		return false;
	log_change(cl, f, next, nn);
	memcpy(p->v, next, nn * sizeof(*next));
	p->n = nn;
	p->failover = failover_of(cl, f) != NULL && member_find(cl, &next[0]) == NULL;
	if (cl->cs->sf != NULL)
		statefile_set(cl->cs->sf, cl->name, f == FAM_V4 ? AF_INET : AF_INET6, p->v, p->n);
	return true;
}

/* Rows of the TXT table: by family, ranked members first, by rank. */
static int
row_cmp(const void *pa, const void *pb)
{
	const struct member *a = *(const struct member *const *)pa;
	const struct member *b = *(const struct member *const *)pb;
	int fa = fam_index(&a->cm.addr), fb = fam_index(&b->cm.addr);
	size_t ra = a->rank ? a->rank : SIZE_MAX, rb = b->rank ? b->rank : SIZE_MAX;

	if (fa != fb)
		return fa - fb;
	if (ra != rb)
		return ra < rb ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* The members in table order (row_cmp); NULL when out of memory.  Free it. */
static const struct member **
sorted_rows(const struct cluster *cl)
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
static void
table_header(const struct cluster *cl, char *text, size_t len)
{
	text[0] = '\0';
	bprintf(text, len, "cluster %s policy %s max-members %u members %zu answer ", cl->name,
	    cl->cfg->policy == CONFIG_POLICY_WEIGHTED ? "weighted" : "ranked", cl->cfg->max_members,
	    cl->n);
	for (int f = 0; f < 2; f++)
		if (cl->pub[f].managed) {
			bprintf(text, len, "%s ", fam_type(f));
			set_list(text, len, cl->pub[f].v, cl->pub[f].n);
		}
}

/* "rank 1 127.0.0.13 in-answer up rating=70.576 weight=1" */
static void
table_row(const struct member *m, char *text, size_t len)
{
	char a[ADDR_STRLEN];

	snprintf(text, len, "rank %zu %s %s %s rating=%.3f weight=%u", m->rank,
	    addr_host_str(&m->cm.addr, a, sizeof(a)), why_names[m->why], state_names[m->state],
	    m->smoothed / 1000.0, m->cm.weight);
}

static ldns_rr *
txt_rr(const char *owner, const char *text)
{
	char buf[512];
	ldns_rr *rr = NULL;

	snprintf(buf, sizeof(buf), "%s. 0 IN TXT \"%s\"", owner, text);
	if (ldns_rr_new_frm_str(&rr, buf, 0, NULL, NULL) != LDNS_STATUS_OK)
		return NULL;
	return rr;
}

static void
push_txt(ldns_rr_list *l, const char *owner, const char *text)
{
	ldns_rr *rr = txt_rr(owner, text);

	if (rr != NULL && !ldns_rr_list_push_rr(l, rr))
		ldns_rr_free(rr);
}

/* A hash of the table's texts (FNV-1a), to publish only what changed. */
static uint64_t
table_hash(const ldns_rr_list *l)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(l, i);
		const ldns_rdf *rd = ldns_rr_rd_count(rr) > 0 ? ldns_rr_rdf(rr, 0) : NULL;

		for (size_t k = 0; rd != NULL && k < ldns_rdf_size(rd); k++)
			h = (h ^ ldns_rdf_data(rd)[k]) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL; /* row separator */
	}
	return h;
}

/*
 * The ranked table as TXT records at _status.<cluster>: a header row, then one
 * row per member ("rank 1 127.0.0.13 in-answer up rating=90.000 weight=1").
 * A ZONE_RRSET_LOCAL RRset: answered by this broker only, replaced at every
 * refresh whose text differs, never a reason for a serial bump, a NOTIFY or
 * a transfer.
 */
static ldns_rr_list *
build_table(struct cluster *cl)
{
	const struct member **rows = sorted_rows(cl);
	ldns_rr_list *l = ldns_rr_list_new();
	char text[TABLE_ROW_MAX];
	size_t nrows = cl->n < CLUSTER_TXT_ROWS ? cl->n : CLUSTER_TXT_ROWS;

	if (rows == NULL || l == NULL) {
		free(rows);
		ldns_rr_list_free(l);
		return NULL;
	}
	table_header(cl, text, sizeof(text));
	push_txt(l, cl->status_name, text);
	for (size_t i = 0; i < nrows; i++) {
		table_row(rows[i], text, sizeof(text));
		push_txt(l, cl->status_name, text);
	}
	free(rows);
	return l;
}

/*
 * Put what changed into the zone in one step: the A and/or AAAA set of the
 * families in fam[] and the status table when it changed; one rebuild, one
 * serial bump, one NOTIFY.
 */
static void
publish_zone(struct cluster *cl, const bool fam[2])
{
	struct zonestore_rrset sets[3];
	ldns_rr_list *lists[3] = {NULL, NULL, NULL};
	uint64_t h = 0;
	size_t n = 0;

	if (!cl->in_zone)
		return;
	for (int f = 0; f < 2; f++) {
		uint16_t type = f == FAM_V4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA;

		if (!fam[f] || cl->pub[f].n == 0 ||
		    (lists[n] = zonestore_addr_rrs(
		         cl->name, type, cl->cfg->dns_ttl, cl->pub[f].v, cl->pub[f].n)) == NULL)
			continue;
		sets[n] = (struct zonestore_rrset){
		    cl->name, type, lists[n], ZONE_RRSET_ROTATE | ZONE_RRSET_TRIM};
		n++;
	}
	if ((lists[n] = build_table(cl)) != NULL && (h = table_hash(lists[n])) != cl->table_hash) {
		sets[n] = (struct zonestore_rrset){
		    cl->status_name, LDNS_RR_TYPE_TXT, lists[n], ZONE_RRSET_LOCAL};
		n++;
	} else {
		ldns_rr_list_deep_free(lists[n]);
		lists[n] = NULL;
		h = cl->table_hash;
	}
	if (n > 0 && zonestore_replace_batch(cl->cs->zs, sets, n) == 0)
		cl->table_hash = h;
	for (size_t i = 0; i < n; i++)
		ldns_rr_list_deep_free(lists[i]);
}

/* How often the masters are compared when nothing changed. */
static uint64_t
verify_period(const struct cluster *cl)
{
	uint64_t ms = (uint64_t)cl->cfg->dns_refresh * 10 * 1000;

	return ms < CLUSTER_VERIFY_MIN_MS ? CLUSTER_VERIFY_MIN_MS : ms;
}

/*
 * Hand the published sets to the updater.  A family with nothing published
 * yet is left alone on the master: an empty set is never pushed.
 */
static void
push_masters(struct cluster *cl)
{
	const struct pubset *p = cl->pub;

	if (p[0].n > 0 || p[1].n > 0)
		updater_set(cl->up, p[0].v, p[0].n, p[0].n > 0, p[1].v, p[1].n, p[1].n > 0,
		    cl->cfg->dns_ttl);
	cl->verify_at = now_ms() + verify_period(cl);
}

static void
cluster_refresh(struct cluster *cl)
{
	struct addr *next = calloc(cl->cfg->max_members + 1, sizeof(*next));
	bool fam[2] = {false, false}, changed;

	if (next == NULL) {
		log_warnx("cluster %s: out of memory ranking", cl->name);
		return;
	}
	for (int f = 0; f < 2; f++)
		fam[f] = cl->pub[f].managed && refresh_family(cl, f, next);
	free(next);
	changed = fam[0] || fam[1];
	update_published_flags(cl);
	publish_zone(cl, fam);
	if (changed && cl->cs->sf != NULL)
		statefile_save(cl->cs->sf);
	if (!cl->warm) {
		cl->restored = false; /* the ranked answer stands, whatever it is */
		cl->restored_from = NULL;
	}
	/* Masters are compared on every change, and now and then anyway, so a
	 * primary that lost our records (reloaded its file) gets them back. */
	if (cl->up != NULL && (changed || now_ms() >= cl->verify_at))
		push_masters(cl);
}

static void
refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cluster_refresh(arg);
}

/* ---- life cycle ---------------------------------------------------------- */

static void
cluster_free(struct cluster *cl)
{
	if (cl == NULL)
		return;
	for (size_t i = 0; i < cl->n; i++)
		member_stop(&cl->m[i]);
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
		const struct member *prev =
		    old != NULL ? member_find((struct cluster *)old, &cc->members[i].addr) : NULL;

		if (prev != NULL) {
			*m = *prev;
			m->pending = false;
		}
		m->cl = cl;
		m->cm = cc->members[i];
		if (prev == NULL) {
			restore_drain(cl, m, &cc->members[i].addr);
			m->why = member_exclusion(m); /* until the first ranking */
		}
		m->agent = m->cm.check;
		addr_set_port(&m->agent, cc->metric_port);
		m->target = m->cm.check;
		addr_set_port(&m->target, cc->health_port);
		m->hc = NULL;
		if (prev == NULL || !addr_equal_host(&prev->cm.check, &m->cm.check)) {
			m->hstate = MEMBER_UNKNOWN;
			m->hfails = m->hgoods = 0;
		}
		if (cc->health != CONFIG_HEALTH_NONE &&
		    (m->hc = healthcheck_new(cl->cs->base, health_cb, m)) == NULL)
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

			set_list(line, sizeof(line), p->v, n);
			log_info("cluster %s: answering the %s %s set %s (ttl %u) until the first "
			         "polls return",
			    cl->name, from, fam_type(f), line, cl->cfg->dns_ttl);
			restored[f] = true;
			cl->restored = true;
			cl->restored_from = strcmp(from, "saved") == 0 ? "state-file" : "zone-file";
		}
	}
	publish_zone(cl, restored);
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
	cl->tick = event_new(cl->cs->base, -1, EV_PERSIST, tick_cb, cl);
	cl->refresh = event_new(cl->cs->base, -1, EV_PERSIST, refresh_cb, cl);
	if (cl->tick == NULL || cl->refresh == NULL || event_add(cl->tick, &tv) == -1 ||
	    event_add(cl->refresh, &rv) == -1)
		return -1;
	return 0;
}

static struct cluster *
cluster_new(struct clusters *cs, const struct config_cluster *cc, const struct cluster *old)
{
	struct cluster *cl = calloc(1, sizeof(*cl));
	size_t cap = cc->max_members;
	uint64_t interval = (uint64_t)cc->polling_interval * 1000;

	if (cl == NULL)
		return NULL;
	cl->cs = cs;
	cl->cfg = cc;
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
	    cl->pub[1].v == NULL || build_members(cl, old) == -1)
		goto fail;
	cl->in_zone = cluster_in_zone(cs->cfg, cc->name);
	for (size_t i = 0; i < cl->n; i++)
		cl->pub[fam_index(&cl->m[i].cm.addr)].managed = true;
	cl->pub[FAM_V4].managed |= cc->failover4.len != 0;
	cl->pub[FAM_V6].managed |= cc->failover6.len != 0;
	cl->warm = old != NULL ? old->warm : true;
	cl->unknown = count_unknown(cl);
	cl->timeout_ms = interval * 3 / 4 < CLUSTER_TIMEOUT_MAX ? (unsigned)(interval * 3 / 4)
	                                                        : CLUSTER_TIMEOUT_MAX;
	/* The first round of polls, with room for `rise` answers. */
	cl->warm_until = now_ms() + (uint64_t)cc->rise * interval + cl->timeout_ms;
	cl->cycle_start = now_ms();
	if (old != NULL) {
		cl->changes = old->changes;
		cl->last_change_at = old->last_change_at;
		memcpy(cl->last_change, old->last_change, sizeof(cl->last_change));
		cl->warm_until = old->warm_until;
		cl->table_hash = old->table_hash;
		cl->restored = old->restored;
		cl->restored_from = old->restored_from;
	}
	if (cc->masters.n > 0 &&
	    (cl->up = updater_new(cs->base, cc->name, &cc->masters, cc->key)) == NULL)
		goto fail;
	restore_sets(cl, old);
	update_published_flags(cl);
	if (cl->up != NULL)
		push_masters(cl);
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

static struct cluster *
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

/* ---- /status and /metrics ------------------------------------------------ */

static void
jadd(struct json_object *o, const char *k, struct json_object *v)
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
		jadd(o, "via", json_object_new_string("configuration"));
		return o;
	}
	utc_text(m->drain.since, when, sizeof(when));
	jadd(o, "via", json_object_new_string("brokerd-ctl"));
	jadd(o, "reason", json_object_new_string(m->drain.reason));
	jadd(o, "by", json_object_new_string(m->drain.who));
	jadd(o, "at", json_object_new_string(when));
	jadd(o, "also_in_configuration", json_object_new_boolean(m->cm.drain));
	return o;
}

static struct json_object *
member_json(const struct member *m, time_t now)
{
	struct json_object *o = json_object_new_object(), *in = json_object_new_object();
	char buf[ADDR_STRLEN], why[LOG_WHY_MAX];

	jadd(o, "address", json_object_new_string(addr_host_str(&m->cm.addr, buf, sizeof(buf))));
	jadd(o, "check", json_object_new_string(addr_str(&m->agent, buf, sizeof(buf))));
	jadd(o, "state", json_object_new_string(state_names[m->state]));
	jadd(o, "operator",
	    json_object_new_string(m->cm.drain || m->ctl_drain ? "drained" : "active"));
	jadd(o, "drain", drain_json(m));
	jadd(o, "agent_draining", json_object_new_boolean(m->agent_drain));
	if (m->cl->cfg->health != CONFIG_HEALTH_NONE) {
		jadd(o, "health", json_object_new_string(state_names[m->hstate]));
		jadd(o, "health_detail", json_object_new_string(m->hwhy));
	}
	jadd(o, "eligible", json_object_new_boolean(member_eligible(m)));
	jadd(o, "published", json_object_new_boolean(m->published));
	jadd(o, "rank", json_object_new_int64((int64_t)m->rank));
	jadd(o, "why", json_object_new_string(why_names[m->why]));
	why_text(m, why, sizeof(why));
	jadd(o, "reason", json_object_new_string(why));
	jadd(o, "rating", jsonout_fixed(m->rating / 1000.0, JSONOUT_DECIMALS));
	jadd(o, "rating_smoothed", jsonout_fixed(m->smoothed / 1000.0, JSONOUT_DECIMALS));
	jadd(o, "weight", json_object_new_int((int)m->cm.weight));
	jadd(in, "availability", jsonout_fixed(m->last.availability / 1000.0, JSONOUT_DECIMALS));
	jadd(in, "workload", jsonout_fixed(m->last.workload / 1000.0, JSONOUT_DECIMALS));
	jadd(in, "penalty", jsonout_fixed(m->last.penalty / 1000.0, JSONOUT_DECIMALS));
	jadd(in, "load", jsonout_fixed(m->last.load / 1000.0, JSONOUT_DECIMALS));
	jadd(in, "cpu_rating", json_object_new_int(m->last.cpu_rating));
	jadd(in, "sessions", json_object_new_int64(m->last.sessions));
	jadd(in, "capacity", json_object_new_int64(m->last.capacity));
	jadd(in, "flags", json_object_new_int(m->last.flags));
	jadd(o, "inputs", in);
	jadd(o, "last_reply", json_object_new_int64((int64_t)m->last_reply));
	jadd(o, "last_reply_age_seconds",
	    m->last_reply ? json_object_new_int64((int64_t)(now - m->last_reply)) : NULL);
	jadd(o, "rtt_us", json_object_new_int64(m->rtt_us));
	jadd(o, "consecutive_misses", json_object_new_int64(m->misses));
	jadd(o, "last_error", json_object_new_string(m->error));
	jadd(o, "polls", json_object_new_int64((int64_t)m->polls));
	jadd(o, "replies", json_object_new_int64((int64_t)m->replies));
	jadd(o, "timeouts", json_object_new_int64((int64_t)m->timeouts));
	jadd(o, "key_mismatches", json_object_new_int64((int64_t)m->key_mismatches));
	jadd(o, "accepting_mail", m->last_reply ? json_object_new_boolean(m->unavail == 0) : NULL);
	jadd(o, "not_accepting_reason",
	    m->unavail ? json_object_new_string(metric_unavailable_str(m->unavail)) : NULL);
	return o;
}

static struct json_object *
cluster_json(const struct cluster *cl, time_t now)
{
	struct json_object *o = json_object_new_object(), *pub = json_object_new_object();
	struct json_object *fo = json_object_new_object(), *ms = json_object_new_array();

	jadd(o, "name", json_object_new_string(cl->name));
	jadd(o, "in_zone", json_object_new_boolean(cl->in_zone));
	jadd(o, "status_name", cl->in_zone ? json_object_new_string(cl->status_name) : NULL);
	jadd(o, "policy",
	    json_object_new_string(
	        cl->cfg->policy == CONFIG_POLICY_WEIGHTED ? "weighted" : "ranked"));
	jadd(o, "max_members", json_object_new_int((int)cl->cfg->max_members));
	jadd(o, "polling_interval", json_object_new_int((int)cl->cfg->polling_interval));
	jadd(o, "dns_refresh", json_object_new_int((int)cl->cfg->dns_refresh));
	jadd(o, "warming_up", json_object_new_boolean(cl->warm));
	jadd(o, "restored_from_state_file",
	    json_object_new_boolean(
	        cl->restored_from != NULL && strcmp(cl->restored_from, "state-file") == 0));
	jadd(o, "placeholder_answer",
	    cl->restored_from ? json_object_new_string(cl->restored_from) : NULL);
	for (int f = 0; f < 2; f++)
		if (cl->pub[f].managed) {
			jadd(pub, fam_type(f), json_set(cl->pub[f].v, cl->pub[f].n));
			jadd(fo, fam_type(f),
			    json_object_new_string(cl->pub[f].failover ? "failover"
			            : cl->pub[f].held                  ? "all-down-kept-last"
			                                               : "members"));
		}
	jadd(o, "published", pub);
	jadd(o, "answer_source", fo);
	jadd(o, "changes", json_object_new_int64((int64_t)cl->changes));
	jadd(o, "last_change", json_object_new_string(cl->last_change));
	jadd(o, "last_change_time", json_object_new_int64((int64_t)cl->last_change_at));
	if (cl->up != NULL) {
		struct updater_stats us;
		struct json_object *u = json_object_new_object();

		updater_get_stats(cl->up, &us);
		jadd(u, "in_sync", json_object_new_boolean(us.in_sync));
		jadd(u, "rounds", json_object_new_int64((int64_t)us.rounds));
		jadd(u, "updates", json_object_new_int64((int64_t)us.updates));
		jadd(u, "updates_ok", json_object_new_int64((int64_t)us.updates_ok));
		jadd(u, "failures", json_object_new_int64((int64_t)us.failures));
		jadd(u, "last_error", json_object_new_string(us.last_error));
		jadd(o, "masters", u);
	}
	for (size_t i = 0; i < cl->n; i++)
		json_object_array_add(ms, member_json(&cl->m[i], now));
	jadd(o, "members", ms);
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
	jadd(root, "clusters", a);
	if (cs->poller == NULL)
		return;
	metric_poller_stats(cs->poller, &ps);
	p = json_object_new_object();
	jadd(p, "sent", json_object_new_int64((int64_t)ps.sent));
	jadd(p, "answered", json_object_new_int64((int64_t)ps.answered));
	jadd(p, "refused", json_object_new_int64((int64_t)ps.refused));
	jadd(p, "timeouts", json_object_new_int64((int64_t)ps.timeouts));
	jadd(p, "discarded", json_object_new_int64((int64_t)ps.discarded));
	jadd(p, "unmatched", json_object_new_int64((int64_t)ps.unmatched));
	jadd(p, "send_errors", json_object_new_int64((int64_t)ps.send_errors));
	jadd(p, "outstanding", json_object_new_int64(ps.outstanding));
	jadd(root, "poller", p);
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

/* ---- the operator: brokerd-ctl ---------------------------------------------- */

static bool
drain_kept_cb(const char *cluster, const char *member, void *arg)
{
	struct clusters *cs = arg;
	struct cluster *cl = cluster_find_in(cs->v, cs->n, cluster);
	struct addr a;

	return cl != NULL && addr_parse(member, 0, &a) == 0 && member_find(cl, &a) != NULL;
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

static void
set_ctl_drain(struct member *m, bool drain, const char *reason, const char *who)
{
	if (!drain) {
		m->ctl_drain = false;
		memset(&m->drain, 0, sizeof(m->drain));
		return;
	}
	if (!m->ctl_drain)
		m->drain.since = (int64_t)time(NULL);
	snprintf(m->drain.reason, sizeof(m->drain.reason), "%s", reason != NULL ? reason : "");
	snprintf(m->drain.who, sizeof(m->drain.who), "%s", who != NULL ? who : "");
	m->ctl_drain = true;
}

enum clusters_status
clusters_drain(struct clusters *cs, const char *cluster, const struct addr *member, bool drain,
    const char *reason, const char *who, struct json_object *reply)
{
	struct cluster *cl = cluster_find_in(cs->v, cs->n, cluster);
	struct member *m = cl != NULL ? member_find(cl, member) : NULL;
	char a[ADDR_STRLEN];
	int rc;

	if (cl == NULL)
		return CLUSTERS_ENOCLUSTER;
	if (m == NULL)
		return CLUSTERS_ENOMEMBER;
	if (!drain && m->cm.drain && !m->ctl_drain)
		return CLUSTERS_ECONFIG;
	addr_host_str(&m->cm.addr, a, sizeof(a));
	set_ctl_drain(m, drain, reason, who);
	if (drain)
		log_info("cluster %s: member %s drained by %s: %s", cl->name, a, m->drain.who,
		    m->drain.reason[0] ? m->drain.reason : "no reason given");
	else
		log_info("cluster %s: member %s undrained by %s", cl->name, a, who);
	rc = cs->sf == NULL ? -1
	                    : statefile_set_drain(cs->sf, cl->name, a, drain ? &m->drain : NULL);
	cluster_refresh(cl); /* leaves (or may come back into) the answer now */
	if (rc == 0)
		rc = statefile_save(cs->sf);
	if (reply != NULL)
		jadd(reply, "member", member_json(m, time(NULL)));
	return rc == 0 ? CLUSTERS_OK : CLUSTERS_ESAVE;
}

static struct json_object *
show_row(const struct member *m)
{
	struct json_object *o = json_object_new_object();
	char buf[LOG_WHY_MAX];

	jadd(o, "rank", json_object_new_int64((int64_t)m->rank));
	jadd(o, "address", json_object_new_string(addr_host_str(&m->cm.addr, buf, sizeof(buf))));
	jadd(o, "why", json_object_new_string(why_names[m->why]));
	why_text(m, buf, sizeof(buf));
	jadd(o, "reason", json_object_new_string(buf));
	jadd(o, "state", json_object_new_string(state_names[m->state]));
	jadd(o, "rating", jsonout_fixed(m->smoothed / 1000.0, JSONOUT_DECIMALS));
	jadd(o, "weight", json_object_new_int((int)m->cm.weight));
	jadd(o, "published", json_object_new_boolean(m->published));
	jadd(o, "drain", drain_json(m));
	return o;
}

static struct json_object *
show_cluster(const struct cluster *cl)
{
	struct json_object *o = json_object_new_object(), *pub = json_object_new_object();
	struct json_object *table = json_object_new_array(), *ms = json_object_new_array();
	const struct member **rows = sorted_rows(cl);
	char text[TABLE_ROW_MAX + LOG_WHY_MAX];

	jadd(o, "name", json_object_new_string(cl->name));
	for (int f = 0; f < 2; f++)
		if (cl->pub[f].managed)
			jadd(pub, fam_type(f), json_set(cl->pub[f].v, cl->pub[f].n));
	jadd(o, "published", pub);
	table_header(cl, text, sizeof(text));
	json_object_array_add(table, json_object_new_string(text));
	for (size_t i = 0; rows != NULL && i < cl->n; i++) {
		table_row(rows[i], text, sizeof(text));
		if (rows[i]->why == WHY_DRAINED) {
			bprintf(text, sizeof(text), " (");
			drain_text(rows[i], text + strlen(text), sizeof(text) - strlen(text));
			bprintf(text, sizeof(text), ")");
		}
		json_object_array_add(table, json_object_new_string(text));
		json_object_array_add(ms, show_row(rows[i]));
	}
	free(rows);
	jadd(o, "table", table);
	jadd(o, "members", ms);
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
	jadd(reply, "clusters", a);
	return CLUSTERS_OK;
}
