/* cluster_member.c - member state: polls, health checks, rise/fall, drains. */
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

#include <event2/event.h>

#include "broker/healthcheck.h"
#include "common/clock.h"

int
cluster_fam_index(const struct addr *a)
{
	return addr_family(a) == AF_INET ? FAM_V4 : FAM_V6;
}

struct member *
cluster_member_find(struct cluster *cl, const struct addr *a)
{
	for (size_t i = 0; i < cl->n; i++)
		if (addr_equal_host(&cl->m[i].cm.addr, a))
			return &cl->m[i];
	return NULL;
}

bool
cluster_member_eligible(const struct member *m)
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
enum member_why
cluster_member_exclusion(const struct member *m)
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
		    addr_host_str(&m->cm.addr, a, sizeof(a)), cluster_state_names[s], why);
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
	if (risefall_good(&m->polled, m->cl->cfg->rise)) {
		snprintf(why, sizeof(why), "answered, rating %.3f", v->rating / 1000.0);
		member_set_state(m, MEMBER_UP, why);
	}
}

static void
member_miss(struct member *m, const char *error)
{
	char why[128];

	snprintf(m->error, sizeof(m->error), "%s", error);
	if (risefall_bad(&m->polled, m->cl->cfg->fall)) {
		snprintf(why, sizeof(why), "%u polls failed (%s)", m->polled.bads, error);
		member_set_state(m, MEMBER_DOWN, why);
	}
}

/* Members still without a verdict (drained ones are never polled). */
size_t
cluster_count_unknown(const struct cluster *cl)
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
	if (cl->warm && (cl->unknown == 0 || clock_ms() >= cl->warm_until)) {
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

void
cluster_health_cb(bool ok, const char *why, void *arg)
{
	struct member *m = arg;
	char a[ADDR_STRLEN];
	enum member_state old = m->hstate;

	snprintf(m->hwhy, sizeof(m->hwhy), "%s", why);
	if (ok && risefall_good(&m->health, m->cl->cfg->rise))
		m->hstate = MEMBER_UP;
	else if (!ok && risefall_bad(&m->health, m->cl->cfg->fall))
		m->hstate = MEMBER_DOWN;
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
void
cluster_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *cl = arg;
	uint64_t now = clock_ms(), interval = (uint64_t)cl->cfg->polling_interval * 1000;
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

void
cluster_member_stop(struct member *m)
{
	if (m->pending)
		metric_poll_cancel(m->cl->cs->poller, m->handle);
	m->pending = false;
	healthcheck_free(m->hc);
	m->hc = NULL;
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
	struct member *m = cl != NULL ? cluster_member_find(cl, member) : NULL;
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
		cluster_jadd(reply, "member", cluster_member_json(m, time(NULL)));
	return rc == 0 ? CLUSTERS_OK : CLUSTERS_ESAVE;
}
