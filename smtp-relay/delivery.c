/*
 * delivery.c - the queue runner: a run per due message, a job per
 * destination domain (route, then SMTP addresses in order, or Maildir),
 * then one settle step that writes the envelope (and a bounce) on a pool
 * thread before the message is scheduled again.  Connections to next hops
 * are kept idle for the next message to the same address (Postfix's
 * connection cache); deliveries per destination domain follow a slow start
 * window (scheduler_window) and an optional rate delay.
 */
#include "smtp-relay/delivery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"
#include "common/status_http.h"
#include "resolver/dnsclient.h"
#include "resolver/resolver.h"
#include "smtp-relay/address.h"
#include "smtp-relay/disk_pool.h"
#include "smtp-relay/dsn.h"
#include "smtp-relay/maildir.h"
#include "smtp-relay/mta_sts.h"
#include "smtp-relay/queue.h"
#include "smtp-relay/scheduler.h"
#include "smtp-relay/smtp_client.h"
#include "smtp-relay/tls_client.h"
#include "smtp-relay/tls_policy.h"

/* Hops counted one by one on /status; the rest add up under "other". */
#define HOP_STATS_MAX 64
#define DOMAIN_MAX    256
#define CONN_KEY_MAX  (ADDR_STRLEN + DOMAIN_MAX + 16)
#define TLSA_MAX      16 /* TLSA records of one hop given to OpenSSL */

enum outcome { OUT_NONE, OUT_DELIVERED, OUT_PERM, OUT_TEMP };

/* Why an attempt ended as it did: the bounded `reason` label on /metrics. */
enum reason {
	REASON_2XX,     /* the next hop said 2xx */
	REASON_4XX,     /* ... 4xx */
	REASON_5XX,     /* ... 5xx */
	REASON_DNS,     /* no route: the resolver failed or found no address */
	REASON_CONNECT, /* no SMTP answer: refused, reset, closed, protocol error */
	REASON_TIMEOUT, /* no SMTP answer in time */
	REASON_LOCAL,   /* Maildir delivery, or a local failure (memory, disk) */
	REASON_COUNT,
};
static const char *const reason_names[REASON_COUNT] = {
    "2xx", "4xx", "5xx", "dns", "connect", "timeout", "local"};

/* MTA-STS outcomes per job that asked, for /metrics (docs/mta-sts.md). */
enum sts_result {
	STS_R_ENFORCE,     /* a policy in mode enforce applied */
	STS_R_TESTING,     /* a policy in mode testing applied */
	STS_R_NONE,        /* no policy, or mode none */
	STS_R_TEMPFAIL,    /* no policy could be had: delivered as without */
	STS_R_MX_MISMATCH, /* enforce and no MX matched: deferred */
	STS_R_COUNT,
};
static const char *const sts_result_names[STS_R_COUNT] = {
    "enforce", "testing", "none", "tempfail", "mx_mismatch"};

/* Final states per run, counted for /metrics. */
enum result { RESULT_DELIVERED, RESULT_DEFERRED, RESULT_BOUNCED, RESULT_COUNT };
static const char *const result_names[RESULT_COUNT] = {"delivered", "deferred", "bounced"};

/* One recipient attempted in this run. */
struct rcpt_out {
	size_t idx; /* in env->rcpts */
	enum outcome outcome;
	char status[16]; /* "5.1.1" */
	char *diag;      /* "550 5.1.1 ..." or a local reason */
	char *remote;    /* the SMTP peer's host name, or NULL */
	enum reason reason;
	bool forced; /* flushed before its retry time: keeps its backoff step */
};

struct run;

/* One destination domain of one message. */
struct job {
	struct run *run;
	char domain[DOMAIN_MAX]; /* lower case; "" = local */
	bool local;
	size_t *outs; /* indexes into run->out */
	size_t nouts;
	struct resolver_route *rt;
	struct route_result *route;
	size_t hop, addr; /* the next address to try */
	struct smtp_client *client;
	size_t *open; /* outs given to the client */
	const char **names;
	size_t nopen;
	char hopname[DOMAIN_MAX];
	char addrname[ADDR_STRLEN];
	struct dest *dest; /* the destination, from the route until the job ends */
	bool slot;         /* holds a connection slot of dest */
	bool reused;       /* the client runs over a kept connection */
	bool fresh;        /* the kept one was stale: a new connection now */
	bool waiting;
	TAILQ_ENTRY(job) wait;
	/* outbound TLS: the domain's policy, this attempt's level and outcome */
	struct tls_policy_result tls;
	/* MTA-STS: the lookup in flight (no slot is held meanwhile), and the
	 * hops an enforce policy hid at the end of route->hops */
	struct mta_sts_lookup *sts_q;
	size_t sts_hidden;
	int tls_level;    /* effective for the current address */
	bool plain_retry; /* at may the handshake failed: once more in plaintext */
	char tls_log[128];
	/* DANE: what DNS said about hop tlsa_hop - 1 (0: nothing asked yet) */
	size_t tlsa_hop;
	enum tls_tlsa_state tlsa_state;
	struct dnsclient_query *tlsa_q;
	ldns_rr_list *tlsa_rrs; /* the secure TLSA RRset; tlsa[] points into it */
	struct tls_tlsa tlsa[TLSA_MAX];
	size_t ntlsa;
};

/* One message in hand, from load to settle. */
struct run {
	struct delivery *d;
	char id[QUEUE_ID_LEN + 1];
	struct queue_env *env;
	char *content;
	size_t len;
	struct rcpt_out *out;
	size_t nout;
	struct job **jobs;
	size_t njobs, jobs_left;
	char *maildir_root; /* copied: a reload may come meanwhile */
	time_t retry;       /* retry-interval, copied for the pool thread */
	/* the settle step, filled on the pool thread */
	struct queue_env *bounce;
	char *bounce_content;
	size_t bounce_len;
	int bounce_rc, write_rc;
	bool removed; /* gone from the queue (by us or the operator) */
	LIST_ENTRY(run) link;
};

/* Concurrent connections to one destination domain; lives while a job
 * waits for it or holds one of its slots. */
struct dest {
	char domain[DOMAIN_MAX];
	unsigned active, waiting;
	struct scheduler_window win;
	struct timeval next_start; /* destination-rate-delay: no start before */
	LIST_ENTRY(dest) link;
};

/* An idle connection kept for the next message to the same next hop. */
struct conn {
	/* "192.0.2.1:25 may mx.example.com": the TLS level and the name it was
	 * checked against are part of the key, so that a connection is never
	 * reused across a different TLS policy or outcome. */
	char key[CONN_KEY_MAX];
	struct delivery *d;
	struct smtp_client *client;
	LIST_ENTRY(conn) link;
};

struct hop_stat {
	char host[DOMAIN_MAX];
	uint64_t delivered, deferred, failed;
};

struct delivery_stats {
	uint64_t delivered, deferred, bounced; /* recipients, final per run */
	uint64_t attempts;                     /* SMTP connections and Maildir writes */
	uint64_t dsn_sent, dsn_dropped;        /* bounces queued; double bounces dropped */
	uint64_t write_errors;
	uint64_t conn_new, conn_reused; /* SMTP connections opened / kept ones used */
	uint64_t outcomes[RESULT_COUNT][REASON_COUNT];
};

struct delivery {
	struct event_base *base;
	const struct config_relay *relay;
	struct queue *queue;
	struct disk_pool *pool;
	struct resolver *resolver;
	const struct policy *policy; /* borrowed: smtp-relayd.c owns it */
	struct scheduler *sched;
	struct smtp_client_timeouts timeouts;
	bool started; /* the queue is scheduled (not held) */
	unsigned conns;
	TAILQ_HEAD(, job) waiting;
	LIST_HEAD(, dest) dests;
	LIST_HEAD(, conn) idle; /* the connection cache */
	size_t nidle;
	struct event *kick; /* dispatch again when a rate delay is over */
	LIST_HEAD(, run) runs;
	struct delivery_stats st;
	struct hop_stat hops[HOP_STATS_MAX + 1]; /* the last one: "other" */
	size_t nhops;
	SSL_CTX *tls_ctx;    /* outbound STARTTLS */
	struct mta_sts *sts; /* MTA-STS policies; NULL with mta-sts no */
	uint64_t sts_results[STS_R_COUNT];
	struct tls_policy *tls_policy; /* per-destination levels */
	/* SMTP sessions by TLS outcome; the last: the TLS policy was not met */
	uint64_t tls_sessions[TLS_OUT_COUNT + 1];
};

static void job_try(struct job *j);
static void job_done(struct job *j);
static void dispatch(struct delivery *d);

static struct hop_stat *
hop_stat(struct delivery *d, const char *host)
{
	for (size_t i = 0; i < d->nhops; i++)
		if (strcmp(d->hops[i].host, host) == 0)
			return &d->hops[i];
	if (d->nhops == HOP_STATS_MAX) {
		snprintf(d->hops[HOP_STATS_MAX].host, DOMAIN_MAX, "other");
		return &d->hops[HOP_STATS_MAX];
	}
	snprintf(d->hops[d->nhops].host, DOMAIN_MAX, "%s", host);
	return &d->hops[d->nhops++];
}

static const char *
outcome_name(enum outcome o)
{
	return o == OUT_DELIVERED ? "delivered" : o == OUT_PERM ? "failed" : "deferred";
}

/*
 * The reason label of an outcome: an SMTP reply by its class; without one,
 * the texts of smtp_client.c (": timeout ...") and of this file tell.
 */
static enum reason
classify(const struct job *j, unsigned code, const char *text, const char *remote)
{
	if (j->local || strstr(text, "out of memory") != NULL)
		return REASON_LOCAL;
	if (remote != NULL)
		return code / 100 == 2 ? REASON_2XX : code / 100 == 5 ? REASON_5XX : REASON_4XX;
	if (code != 0 || strstr(text, "no address to deliver to") != NULL)
		return REASON_DNS;
	return strstr(text, ": timeout ") != NULL ? REASON_TIMEOUT : REASON_CONNECT;
}

/* Record one recipient's outcome at one hop and address, with its log line. */
static void
record(struct job *j, size_t k, enum outcome o, unsigned code, const char *text, const char *remote)
{
	struct run *r = j->run;
	struct rcpt_out *out = &r->out[k];
	struct hop_stat *hs = hop_stat(r->d, j->hopname[0] ? j->hopname : "-");
	char *diag = strdup(text), *rem = remote != NULL ? strdup(remote) : NULL;

	out->outcome = o;
	out->reason = classify(j, code, text, remote);
	dsn_status(code, text, out->status, sizeof(out->status));
	free(out->diag);
	free(out->remote);
	out->diag = diag;
	out->remote = rem;
	if (o == OUT_DELIVERED)
		hs->delivered++;
	else if (o == OUT_PERM)
		hs->failed++;
	else
		hs->deferred++;
	log_info(
	    "delivery: %s: to=<%s> hop=%s addr=%s result=%s status=%s delay=%llds tls=%s%s: %s",
	    r->id, r->env->rcpts[out->idx].address, j->hopname[0] ? j->hopname : "-",
	    j->addrname[0] ? j->addrname : "-", outcome_name(o), out->status,
	    (long long)(time(NULL) - r->env->arrival), j->tls_log[0] ? j->tls_log : "none",
	    j->tls.sts_mode == TLS_STS_ENFORCE       ? " sts=enforce"
	        : j->tls.sts_mode == TLS_STS_TESTING ? " sts=testing"
	                                             : "",
	    text);
}

static enum outcome
outcome_of(unsigned code)
{
	return code / 100 == 2 ? OUT_DELIVERED : code / 100 == 5 ? OUT_PERM : OUT_TEMP;
}

/* ---- destinations and connection slots ---- */

/* The destination `domain`, made (at the initial concurrency) when missing. */
static struct dest *
dest_get(struct delivery *d, const char *domain)
{
	const struct config_relay *relay = d->relay;
	struct dest *x;

	LIST_FOREACH(x, &d->dests, link)
		if (strcmp(x->domain, domain) == 0)
			return x;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	snprintf(x->domain, sizeof(x->domain), "%s", domain);
	scheduler_window_init(&x->win, relay->initial_destination_concurrency,
	    relay->max_per_destination, relay->destination_rate_delay);
	LIST_INSERT_HEAD(&d->dests, x, link);
	return x;
}

/* The job lets go of its destination (slot and all); freed when unused. */
static void
dest_put(struct job *j)
{
	struct dest *x = j->dest;

	if (x == NULL)
		return;
	if (j->slot) {
		j->run->d->conns--;
		x->active--;
	}
	if (j->waiting) {
		TAILQ_REMOVE(&j->run->d->waiting, j, wait);
		x->waiting--;
	}
	j->slot = j->waiting = false;
	j->dest = NULL;
	if (x->active == 0 && x->waiting == 0) {
		LIST_REMOVE(x, link);
		free(x);
	}
}

static void
slot_release(struct job *j)
{
	struct delivery *d = j->run->d;

	if (!j->slot)
		return;
	dest_put(j);
	dispatch(d);
}

/* Slow start feedback: a delivery grows the window; no SMTP answer at all
 * (refused, timed out, 4xx greeting) shrinks it. */
static void
dest_feedback(struct job *j, const struct smtp_client_reply *res, size_t n)
{
	struct dest *x = j->dest;
	bool any_reply = false, delivered = false;

	for (size_t i = 0; i < n; i++) {
		any_reply |= res[i].code != 0;
		delivered |= res[i].code / 100 == 2;
	}
	if (x == NULL || n == 0)
		return;
	if (delivered)
		scheduler_window_grow(&x->win, j->run->d->relay->destination_rate_delay);
	else if (!any_reply)
		scheduler_window_shrink(&x->win);
}

/* May a delivery to x start now?  Sets *wake to when it may, if later. */
static bool
dest_may_start(struct delivery *d, struct dest *x, const struct timeval *now, struct timeval *wake)
{
	x->win.max = d->relay->max_per_destination; /* a reload may change the cap */
	if (!scheduler_window_has_room(&x->win, x->active))
		return false;
	if (d->relay->destination_rate_delay == 0 || !evutil_timercmp(now, &x->next_start, <))
		return true;
	if ((wake->tv_sec == 0 && wake->tv_usec == 0) || evutil_timercmp(&x->next_start, wake, <))
		*wake = x->next_start;
	return false;
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dispatch(arg);
}

/* Start waiting jobs while there are connection slots, overall and per domain. */
static void
dispatch(struct delivery *d)
{
	struct job *j, *next;
	struct timeval now, wake = {0, 0};

	evutil_gettimeofday(&now, NULL);
	for (j = TAILQ_FIRST(&d->waiting); j != NULL && d->conns < d->relay->max_deliveries;
	     j = next) {
		struct dest *x = j->dest;

		next = TAILQ_NEXT(j, wait);
		if (!dest_may_start(d, x, &now, &wake))
			continue;
		TAILQ_REMOVE(&d->waiting, j, wait);
		j->waiting = false;
		x->waiting--;
		j->slot = true;
		x->active++;
		d->conns++;
		if (d->relay->destination_rate_delay > 0) {
			struct timeval delay = {(time_t)d->relay->destination_rate_delay, 0};

			evutil_timeradd(&now, &delay, &x->next_start);
		}
		job_try(j);
	}
	if (wake.tv_sec != 0 || wake.tv_usec != 0) {
		struct timeval in;

		evutil_timersub(&wake, &now, &in);
		evtimer_add(d->kick, &in);
	}
}

/* ---- the connection cache ---- */

/* smtp_client_gone_fn: a kept connection ended while idle. */
static void
conn_gone_cb(struct smtp_client *c, void *arg)
{
	struct conn *cn = arg;

	(void)c;
	LIST_REMOVE(cn, link);
	cn->d->nidle--;
	free(cn);
}

/* From the done callback: keep the client for the next message to `key`,
 * within connection-reuse-time and -limit and at most max-deliveries idle. */
static void
conn_keep(struct delivery *d, struct smtp_client *c, const char *key)
{
	const struct config_relay *relay = d->relay;
	struct conn *cn;

	if (relay->connection_reuse_time == 0 ||
	    smtp_client_uses(c) >= relay->connection_reuse_limit ||
	    d->nidle >= relay->max_deliveries || !smtp_client_is_reusable(c) ||
	    (cn = calloc(1, sizeof(*cn))) == NULL)
		return;
	snprintf(cn->key, sizeof(cn->key), "%s", key);
	cn->d = d;
	cn->client = c;
	if (smtp_client_keep(c, relay->connection_reuse_time, conn_gone_cb, cn) == -1) {
		free(cn);
		return;
	}
	LIST_INSERT_HEAD(&d->idle, cn, link);
	d->nidle++;
}

/* An idle connection to `key`, now the caller's; NULL when none. */
static struct smtp_client *
conn_take(struct delivery *d, const char *key)
{
	struct conn *cn;
	struct smtp_client *c;

	LIST_FOREACH(cn, &d->idle, link)
		if (strcmp(cn->key, key) == 0)
			break;
	if (cn == NULL)
		return NULL;
	c = cn->client;
	LIST_REMOVE(cn, link);
	d->nidle--;
	free(cn);
	return c;
}

/* ---- SMTP ---- */

static void
client_done_cb(const struct smtp_client_reply *res, void *arg)
{
	struct job *j = arg;
	struct smtp_client *c = j->client;
	struct delivery *d = j->run->d;
	bool retry = false;
	char key[CONN_KEY_MAX];
	enum tls_outcome to = smtp_client_tls_outcome(c);

	j->client = NULL;
	if (j->reused && smtp_client_is_stale(c)) {
		/* Closed by the peer while idle, or RSET failed: not the
		 * message's fault.  The same address again, on a new connection. */
		log_info("delivery: %s: kept connection to %s[%s] is gone (%s): opening a new one",
		    j->run->id, j->hopname, j->addrname, res[0].text);
		j->addr--;
		j->fresh = true;
		job_try(j);
		return;
	}
	if (smtp_client_tls_retry_plain(c) && !j->plain_retry) {
		/* Level may and the handshake failed: the same host once more,
		 * without STARTTLS. */
		log_info("delivery: %s: %s[%s]: %s: retrying in plaintext", j->run->id, j->hopname,
		    j->addrname, res[0].text);
		j->addr--;
		j->plain_retry = true;
		job_try(j);
		return;
	}
	j->plain_retry = false;
	d->tls_sessions[smtp_client_tls_failed(c) ? TLS_OUT_COUNT : to]++;
	if (to == TLS_OUT_NONE)
		snprintf(j->tls_log, sizeof(j->tls_log), "%s",
		    smtp_client_tls_failed(c) ? "failed" : "none");
	else
		snprintf(j->tls_log, sizeof(j->tls_log), "%s (%s)", tls_outcome_name(to),
		    smtp_client_tls_info(c));
	if (j->tls.sts_mode == TLS_STS_TESTING && to != TLS_OUT_VERIFIED && to != TLS_OUT_DANE &&
	    smtp_client_tls_verify_error(c) != NULL)
		log_info("delivery: %s: mta-sts=testing: would have failed: %s[%s]: certificate "
		         "not verified (%s)",
		    j->run->id, j->hopname, j->addrname, smtp_client_tls_verify_error(c));
	snprintf(key, sizeof(key), "%s %d %s", smtp_client_peer(c), j->tls_level, j->hopname);
	dest_feedback(j, res, j->nopen);
	for (size_t i = 0; i < j->nopen; i++) {
		enum outcome o = res[i].code == 0 ? OUT_TEMP : outcome_of(res[i].code);
		char stext[SMTP_CLIENT_TEXT_MAX + 40];
		const char *text = res[i].text;

		if (smtp_client_tls_failed(c) && j->tls.sts_mode == TLS_STS_ENFORCE) {
			/* The DSN and the log say which policy asked for it. */
			snprintf(stext, sizeof(stext), "451 4.7.5 MTA-STS enforce: %s", text);
			text = stext;
		}
		record(j, j->open[i], o, res[i].code, text, res[i].code != 0 ? j->hopname : NULL);
		retry |= o == OUT_TEMP;
	}
	/* The results are used up: the client may take the next message now. */
	conn_keep(j->run->d, c, key);
	/* 4xx, refused or timed out: the next address, then the next hop. */
	if (retry) {
		job_try(j);
		return;
	}
	slot_release(j);
	job_done(j);
}

/* False when relay { outbound-family } excludes `a`: never tried. */
static bool
family_allowed(const struct config_relay *relay, const struct addr *a)
{
	if (relay->outbound_family == CONFIG_FAMILY_ANY)
		return true;
	return addr_family(a) ==
	    (relay->outbound_family == CONFIG_FAMILY_IPV4 ? AF_INET : AF_INET6);
}

/* relay { outbound-source } of to's family, or NULL (the kernel chooses). */
static const struct addr *
source_for(const struct config_relay *relay, const struct addr *to)
{
	const struct addr *s =
	    addr_family(to) == AF_INET ? &relay->outbound_source4 : &relay->outbound_source6;

	return s->len != 0 ? s : NULL;
}

/* The next address of the route, or NULL when every one was tried. */
static const struct addr *
next_address(struct job *j)
{
	while (j->hop < j->route->nhops) {
		struct route_hop *h = &j->route->hops[j->hop];

		while (j->addr < h->naddrs && !family_allowed(j->run->d->relay, &h->addrs[j->addr]))
			j->addr++; /* outbound-family excludes it */
		if (j->addr < h->naddrs) {
			snprintf(j->hopname, sizeof(j->hopname), "%s", h->host);
			return &h->addrs[j->addr++];
		}
		j->hop++;
		j->addr = 0;
	}
	return NULL;
}

/*
 * The TLS level for the address next_address just chose: the domain's,
 * narrowed by what DNS said about the hop (tls_policy_hop), or none for
 * the plaintext retry.  -1 when the hop must not be used (recorded: every
 * open recipient is deferred with the reason).
 */
static int
job_tls_level(struct job *j)
{
	char why[200], text[SMTP_CLIENT_TEXT_MAX];

	j->tls_log[0] = '\0';
	if (j->plain_retry) {
		j->tls_level = CONFIG_TLS_NONE;
		return 0;
	}
	j->tls_level = tls_policy_hop(
	    &j->tls, j->tlsa_hop == j->hop + 1 ? j->tlsa_state : TLSA_NOT_ASKED, why, sizeof(why));
	if (j->tls_level != -1)
		return 0;
	snprintf(j->tls_log, sizeof(j->tls_log), "failed");
	snprintf(text, sizeof(text), "451 4.7.5 %s: %s", j->hopname, why);
	j->run->d->tls_sessions[TLS_OUT_COUNT]++;
	for (size_t i = 0; i < j->nopen; i++)
		record(j, j->open[i], OUT_TEMP, 0, text, NULL);
	return -1;
}

/* The TLSA answer for the hop (RFC 7672 §2.2): then the same address again. */
static void
tlsa_cb(const struct dns_answer *a, const struct dnsclient_info *info, void *arg)
{
	struct job *j = arg;
	size_t usable = 0, n;

	(void)info;
	j->tlsa_q = NULL;
	if (a->status == DNS_OK && a->secure && a->rrs != NULL &&
	    (j->tlsa_rrs = ldns_rr_list_clone(a->rrs)) != NULL) {
		n = ldns_rr_list_rr_count(j->tlsa_rrs);
		for (size_t i = 0; i < n && j->ntlsa < TLSA_MAX; i++) {
			struct tls_tlsa *t = &j->tlsa[j->ntlsa];

			if (dnsmsg_tlsa(ldns_rr_list_rr(j->tlsa_rrs, i), &t->usage, &t->selector,
			        &t->mtype, &t->data, &t->len) == -1)
				continue;
			j->ntlsa++;
			usable += tls_tlsa_usable(t);
		}
		j->tlsa_state = usable > 0 ? TLSA_USABLE : TLSA_UNUSABLE;
	} else if (a->status == DNS_OK || a->status == DNS_NODATA || a->status == DNS_NXDOMAIN ||
	    a->status == DNS_CNAME)
		/* None, or an insecure answer: as none (RFC 7672 §2.2). */
		j->tlsa_state = TLSA_NONE;
	else
		j->tlsa_state = TLSA_TEMPFAIL; /* SERVFAIL (bogus), timeout */
	log_info("delivery: %s: %s: TLSA _%u._tcp.%s: %s%s (%zu usable of %zu)", j->run->id,
	    j->hopname, (unsigned)j->run->d->relay->remote_port, j->hopname,
	    dns_status_str(a->status), a->secure ? ", DNSSEC-secure" : "", usable, j->ntlsa);
	job_try(j);
}

/*
 * A dane level and a hop not looked at yet: its TLSA records, when its MX
 * and address answers were secure.  True when a lookup was started (the
 * same address is tried from tlsa_cb).
 */
static bool
job_need_tlsa(struct job *j)
{
	const struct route_hop *h = &j->route->hops[j->hop];
	char name[DOMAIN_MAX + 16];

	if (j->plain_retry || j->tlsa_hop == j->hop + 1 ||
	    (j->tls.level != CONFIG_TLS_DANE && j->tls.level != CONFIG_TLS_DANE_ONLY))
		return false;
	ldns_rr_list_deep_free(j->tlsa_rrs);
	j->tlsa_rrs = NULL;
	j->ntlsa = 0;
	j->tlsa_hop = j->hop + 1;
	j->tlsa_state = TLSA_INSECURE;
	if (!h->secure)
		return false;
	/* The port actually used: 25 in production (RFC 7672 §2.2.3). */
	snprintf(
	    name, sizeof(name), "_%u._tcp.%s", (unsigned)j->run->d->relay->remote_port, h->host);
	j->tlsa_state = TLSA_TEMPFAIL;
	if ((j->tlsa_q = resolver_query(
	         j->run->d->resolver, name, LDNS_RR_TYPE_TLSA, tlsa_cb, j)) == NULL)
		return false;
	j->addr--;
	return true;
}

/* A new client gets the level job_tls_level chose: 0, or -1 when TLS is
 * required and cannot be set up (recorded). */
static int
job_set_tls(struct job *j)
{
	bool dane = j->tls_level == CONFIG_TLS_DANE || j->tls_level == CONFIG_TLS_DANE_ONLY;
	struct smtp_client_tls t = {j->run->d->tls_ctx, (enum config_tls_level)j->tls_level,
	    j->hopname, dane ? j->tlsa : NULL, dane ? j->ntlsa : 0};
	char err[200], text[SMTP_CLIENT_TEXT_MAX];

	if (smtp_client_set_tls(j->client, &t, err, sizeof(err)) == 0)
		return 0;
	log_warnx("delivery: %s: %s[%s]: TLS setup: %s", j->run->id, j->hopname, j->addrname, err);
	if (j->tls_level < CONFIG_TLS_ENCRYPT)
		return 0; /* may: plaintext then */
	snprintf(text, sizeof(text), "451 4.7.5 %s: TLS required by policy %s but %s", j->hopname,
	    tls_level_name((enum config_tls_level)j->tls_level), err);
	snprintf(j->tls_log, sizeof(j->tls_log), "failed");
	for (size_t i = 0; i < j->nopen; i++)
		record(j, j->open[i], OUT_TEMP, 0, text, NULL);
	return -1;
}

/* Send over a kept connection to `to`: 0, or -1 when there is none. */
static int
job_reuse(struct job *j, const struct addr *to, const struct smtp_client_msg *m)
{
	struct delivery *d = j->run->d;
	char key[CONN_KEY_MAX], peer[ADDR_STRLEN];
	struct smtp_client *c;

	j->reused = false;
	if (j->fresh) {
		j->fresh = false;
		return -1;
	}
	snprintf(key, sizeof(key), "%s %d %s", addr_str(to, peer, sizeof(peer)), j->tls_level,
	    j->hopname);
	while ((c = conn_take(d, key)) != NULL) {
		/* Counted before the send: with PIPELINING it starts the
		 * transaction (and counts it) at once. */
		unsigned use = smtp_client_uses(c) + 1;

		if (smtp_client_send(c, m, client_done_cb, j) == 0) {
			log_info("delivery: reusing connection to %s[%s]:%u (use %u)", j->hopname,
			    j->addrname, (unsigned)d->relay->remote_port, use);
			j->client = c;
			j->reused = true;
			d->st.conn_reused++;
			return 0;
		}
		smtp_client_cancel(c);
	}
	return -1;
}

/* Recipients still open (never tried, or temporary so far) go to the next address. */
static void
job_try(struct job *j)
{
	struct run *r = j->run;
	const struct addr *a;
	struct addr to;
	struct smtp_client_msg m = {0};

	j->nopen = 0;
	for (size_t i = 0; i < j->nouts; i++)
		if (r->out[j->outs[i]].outcome == OUT_NONE ||
		    r->out[j->outs[i]].outcome == OUT_TEMP) {
			j->open[j->nopen] = j->outs[i];
			j->names[j->nopen++] = r->env->rcpts[r->out[j->outs[i]].idx].address;
		}
	if ((a = next_address(j)) == NULL) {
		for (size_t i = 0; i < j->nopen; i++)
			if (r->out[j->open[i]].outcome == OUT_NONE)
				record(j, j->open[i], OUT_TEMP, 0,
				    "451 4.4.4 no address to deliver to", NULL);
		slot_release(j);
		job_done(j);
		return;
	}
	to = *a;
	addr_set_port(&to, r->d->relay->remote_port);
	addr_host_str(&to, j->addrname, sizeof(j->addrname));
	if (job_need_tlsa(j))
		return; /* tlsa_cb goes on */
	if (job_tls_level(j) == -1) {
		job_try(j); /* recorded: the next address */
		return;
	}
	m.helo = r->d->relay->hostname;
	m.sender = r->env->sender;
	m.rcpts = j->names;
	m.nrcpts = j->nopen;
	m.content = r->content;
	m.len = r->len;
	m.body_8bit = r->env->body_8bit;
	r->d->st.attempts++;
	if (job_reuse(j, &to, &m) == 0)
		return;
	r->d->st.conn_new++;
	if ((j->client = smtp_client_start(r->d->base, &to, source_for(r->d->relay, &to), &m,
	         &r->d->timeouts, client_done_cb, j)) == NULL) {
		for (size_t i = 0; i < j->nopen; i++)
			record(j, j->open[i], OUT_TEMP, 0, "451 4.3.0 out of memory", NULL);
		slot_release(j);
		job_done(j);
		return;
	}
	if (job_set_tls(j) == -1) {
		smtp_client_cancel(j->client);
		j->client = NULL;
		job_try(j);
	}
}

/* ---- routing ---- */

/* The resolver said no: every recipient of the job gets its verdict. */
static void
route_failed(struct job *j, const struct route_result *res)
{
	char text[SMTP_CLIENT_TEXT_MAX];

	snprintf(text, sizeof(text), "%u %s %s", res->smtp_code, res->dsn,
	    res->reason != NULL ? res->reason : route_status_str(res->status));
	for (size_t i = 0; i < j->nouts; i++)
		record(j, j->outs[i], res->status == ROUTE_PERMFAIL ? OUT_PERM : OUT_TEMP,
		    res->smtp_code, text, NULL);
}

static void local_start(struct job *j);

/* The route and the TLS level are known: wait for a connection slot. */
static void
job_queue(struct job *j)
{
	if ((j->dest = dest_get(j->run->d, j->domain)) == NULL) {
		for (size_t i = 0; i < j->nouts; i++)
			record(j, j->outs[i], OUT_TEMP, 0, "451 4.3.0 out of memory", NULL);
		job_done(j);
		return;
	}
	j->dest->waiting++;
	j->waiting = true;
	TAILQ_INSERT_TAIL(&j->run->d->waiting, j, wait);
	dispatch(j->run->d);
}

/*
 * Enforce: the hops whose host matches no mx pattern of the policy move to
 * the end of route->hops, hidden (route->nhops shrinks; job_free restores
 * it so that they are freed).  The order of the others is kept.  `skipped`
 * gets their names.  Returns how many hops are left.
 */
static size_t
sts_filter_hops(struct job *j, const struct mta_sts_policy *p, char *skipped, size_t len)
{
	struct route_result *rt = j->route;
	size_t n = rt->nhops, k = 0;

	skipped[0] = '\0';
	while (k < n) {
		struct route_hop h = rt->hops[k];

		if (mta_sts_mx_matches(p, h.host)) {
			k++;
			continue;
		}
		snprintf(skipped + strlen(skipped), len - strlen(skipped), "%s%s",
		    skipped[0] ? ", " : "", h.host);
		memmove(&rt->hops[k], &rt->hops[k + 1], (rt->nhops - k - 1) * sizeof(h));
		rt->hops[rt->nhops - 1] = h;
		n--;
	}
	j->sts_hidden = rt->nhops - n;
	rt->nhops = n;
	return n;
}

/* mta_sts_cb: the domain's MTA-STS answer, applied to the job's route. */
static void
sts_cb(const struct mta_sts_policy *p, enum mta_sts_status st, const char *detail, void *arg)
{
	struct job *j = arg;
	struct delivery *d = j->run->d;
	char skipped[512], text[SMTP_CLIENT_TEXT_MAX];

	j->sts_q = NULL;
	if (st == MTA_STS_TEMPFAIL) {
		/* RFC 8461 §5.1: as without a policy; never a deferral. */
		d->sts_results[STS_R_TEMPFAIL]++;
		log_info("delivery: %s: %s: mta-sts=tempfail (delivering as without a policy): %s",
		    j->run->id, j->domain, detail);
	} else if (st == MTA_STS_NONE || p->mode == MTA_STS_MODE_NONE) {
		d->sts_results[STS_R_NONE]++;
	} else if (p->mode == MTA_STS_MODE_TESTING) {
		struct route_result *rt = j->route;

		d->sts_results[STS_R_TESTING]++;
		tls_policy_apply_sts(&j->tls, TLS_STS_TESTING);
		skipped[0] = '\0';
		for (size_t i = 0; i < rt->nhops; i++)
			if (!mta_sts_mx_matches(p, rt->hops[i].host))
				snprintf(skipped + strlen(skipped),
				    sizeof(skipped) - strlen(skipped), "%s%s",
				    skipped[0] ? ", " : "", rt->hops[i].host);
		if (skipped[0] != '\0')
			log_info(
			    "delivery: %s: %s: mta-sts=testing: would have failed: MX %s not in "
			    "the policy (id %s)",
			    j->run->id, j->domain, skipped, p->id);
	} else if (sts_filter_hops(j, p, skipped, sizeof(skipped)) == 0) {
		d->sts_results[STS_R_MX_MISMATCH]++;
		tls_policy_apply_sts(&j->tls, TLS_STS_ENFORCE);
		snprintf(text, sizeof(text),
		    "451 4.7.5 MTA-STS enforce (policy id %s): MX %.380s does not match the "
		    "policy's "
		    "mx patterns",
		    p->id, skipped);
		for (size_t i = 0; i < j->nouts; i++)
			record(j, j->outs[i], OUT_TEMP, 0, text, NULL);
		job_done(j);
		return;
	} else {
		d->sts_results[STS_R_ENFORCE]++;
		tls_policy_apply_sts(&j->tls, TLS_STS_ENFORCE);
		if (skipped[0] != '\0')
			log_info("delivery: %s: %s: mta-sts=enforce: skipping MX %s (not in the "
			         "policy, id %s)",
			    j->run->id, j->domain, skipped, p->id);
	}
	job_queue(j);
}

/*
 * Does MTA-STS apply to this route?  As Postfix with postfix-mta-sts-resolver:
 * only to routes found by MX (or the implicit MX of the domain itself) and
 * only when the operator did not set the domain's level explicitly
 * (tls-policy, tls-policy-file).  Gateways, address literals, the local MX
 * and hosts databases are the operator's own routes: no MTA-STS.
 */
static bool
sts_applies(const struct job *j)
{
	const struct route_result *rt = j->route;

	if (j->run->d->sts == NULL || !j->run->d->relay->mta_sts || j->tls.configured ||
	    j->tls.level == CONFIG_TLS_NONE || rt->nhops == 0)
		return false;
	for (size_t i = 0; i < rt->nhops; i++)
		if (rt->hops[i].source != ROUTE_SRC_DNS_MX && rt->hops[i].source != ROUTE_SRC_DNS_A)
			return false;
	return true;
}

static void
route_cb(struct route_result *res, void *arg)
{
	struct job *j = arg;

	j->rt = NULL;
	switch (res->status) {
	case ROUTE_OK:
		j->route = res;
		/* The domain's TLS level; then MTA-STS, looked up before a
		 * connection slot is asked for (a job waiting for the policy
		 * holds none).  DANE still wins per hop (tls_policy_hop). */
		tls_policy_lookup(j->run->d->tls_policy, j->domain, &j->tls);
		if (sts_applies(j) &&
		    (j->sts_q = mta_sts_lookup(j->run->d->sts, j->domain, sts_cb, j)) != NULL)
			return;
		job_queue(j);
		return;
	case ROUTE_LOCAL:
		resolver_result_free(res);
		local_start(j);
		return;
	default:
		route_failed(j, res);
		resolver_result_free(res);
		job_done(j);
	}
}

/* ---- Maildir ---- */

static const char *
local_part(const char *address, char *buf, size_t len)
{
	const char *at = strrchr(address, '@');
	size_t n = at != NULL ? (size_t)(at - address) : strlen(address);

	snprintf(buf, len, "%.*s", (int)n, address);
	return buf;
}

/* On a pool thread: one file per recipient.  Touches only this job's outs. */
static void
local_run(void *arg)
{
	struct job *j = arg;
	struct run *r = j->run;

	for (size_t i = 0; i < j->nouts; i++) {
		struct rcpt_out *o = &r->out[j->outs[i]];
		const char *rcpt = r->env->rcpts[o->idx].address;
		char lp[ADDRESS_LOCAL_MAX + 8], user[MAILDIR_USER_MAX + 1], text[300];

		if (maildir_user(local_part(rcpt, lp, sizeof(lp)), user, sizeof(user)) == -1) {
			o->outcome = OUT_PERM;
			o->diag = strdup("550 5.1.3 local part cannot name a mailbox");
		} else if (maildir_deliver(r->maildir_root, user, r->env->sender, rcpt, r->content,
		               r->len) == -1) {
			snprintf(text, sizeof(text), "%s maildir %s/%s: %s",
			    errno == ENOSPC || errno == EDQUOT ? "452 4.3.1" : "451 4.3.0",
			    r->maildir_root, user, strerror(errno));
			o->outcome = OUT_TEMP;
			o->diag = strdup(text);
		} else {
			snprintf(text, sizeof(text), "250 2.0.0 delivered to maildir %s/%s/new",
			    r->maildir_root, user);
			o->outcome = OUT_DELIVERED;
			o->diag = strdup(text);
		}
	}
}

/* Back on the loop: the log lines and counters. */
static void
local_after(void *arg)
{
	struct job *j = arg;

	for (size_t i = 0; i < j->nouts; i++) {
		struct rcpt_out *o = &j->run->out[j->outs[i]];
		char *diag = o->diag;
		enum outcome oc = o->outcome;
		unsigned code = oc == OUT_DELIVERED ? 250 : oc == OUT_PERM ? 550 : 451;

		o->diag = NULL;
		record(
		    j, j->outs[i], oc, code, diag != NULL ? diag : "451 4.3.0 out of memory", NULL);
		free(diag);
	}
	job_done(j);
}

static void
local_start(struct job *j)
{
	j->local = true;
	snprintf(j->hopname, sizeof(j->hopname), "local");
	snprintf(j->addrname, sizeof(j->addrname), "maildir");
	j->run->d->st.attempts++;
	if (disk_pool_run(j->run->d->pool, local_run, local_after, j) == -1) {
		for (size_t i = 0; i < j->nouts; i++)
			record(j, j->outs[i], OUT_TEMP, 0, "451 4.3.0 out of memory", NULL);
		job_done(j);
	}
}

/* ---- runs: load, group, settle ---- */

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	if (j->rt != NULL)
		resolver_route_cancel(j->rt);
	if (j->client != NULL)
		smtp_client_cancel(j->client);
	resolver_query_cancel(j->tlsa_q);
	if (j->sts_q != NULL)
		mta_sts_cancel(j->sts_q);
	ldns_rr_list_deep_free(j->tlsa_rrs);
	dest_put(j);
	if (j->route != NULL)
		j->route->nhops += j->sts_hidden; /* freed with the rest */
	resolver_result_free(j->route);
	free(j->outs);
	free(j->open);
	free(j->names);
	free(j);
}

static void
run_free(struct run *r)
{
	if (r == NULL)
		return;
	LIST_REMOVE(r, link);
	for (size_t i = 0; i < r->njobs; i++)
		job_free(r->jobs[i]);
	for (size_t i = 0; i < r->nout; i++) {
		free(r->out[i].diag);
		free(r->out[i].remote);
	}
	free(r->jobs);
	free(r->out);
	queue_env_free(r->env);
	queue_env_free(r->bounce);
	free(r->bounce_content);
	free(r->content);
	free(r->maildir_root);
	free(r);
}

/* Backoff: retry-interval doubled per step, at most max-retry-interval. */
static time_t
backoff(const struct config_relay *relay, unsigned step)
{
	time_t t = relay->retry_interval ? relay->retry_interval : 1;

	for (unsigned i = 1; i < step && t < (time_t)relay->max_retry_interval; i++)
		t *= 2;
	return t < (time_t)relay->max_retry_interval ? t : (time_t)relay->max_retry_interval;
}

/* The earliest retry among pending recipients, or 0 when none is pending. */
static time_t
next_due(const struct queue_env *env)
{
	time_t next = 0;

	for (size_t i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].state == QUEUE_RCPT_PENDING &&
		    (next == 0 || env->rcpts[i].next_retry < next))
			next = env->rcpts[i].next_retry;
	return next > 0 ? next : 1;
}

static bool
is_postmaster(const struct config_relay *relay, const char *address)
{
	char lp[ADDRESS_LOCAL_MAX + 8];

	return strcasecmp(address, relay->postmaster) == 0 ||
	    strcasecmp(local_part(address, lp, sizeof(lp)), "postmaster") == 0;
}

/* On a pool thread: the bounce first, then the envelope (or its removal). */
static void
settle_run(void *arg)
{
	struct run *r = arg;
	struct queue *q = r->d->queue;

	if (r->bounce != NULL) {
		struct iovec iov = {r->bounce_content, r->bounce_len};

		if ((r->bounce_rc = queue_commit(q, r->bounce, &iov, 1)) == -1) {
			/* No bounce, no failure: the recipients wait and fail again. */
			for (size_t i = 0; i < r->nout; i++) {
				struct queue_rcpt *qr = &r->env->rcpts[r->out[i].idx];

				if (qr->state == QUEUE_RCPT_FAILED) {
					qr->state = QUEUE_RCPT_PENDING;
					qr->next_retry = time(NULL) + r->retry;
				}
			}
		}
	}
	if (queue_env_is_done(r->env)) {
		/* Not waiting for the fsync of queue/: a crash before the next
		 * one delivers this message again, never loses one. */
		enum queue_status st = queue_remove_lazy(q, r->id);

		r->removed = st == QUEUE_OK || st == QUEUE_ENOTFOUND;
		r->write_rc = r->removed ? 0 : -1;
	} else
		r->write_rc = queue_update(q, r->env);
}

/* Back on the loop: count, log, schedule the bounce and the message's next run. */
static void
settle_after(void *arg)
{
	struct run *r = arg;
	struct delivery *d = r->d;
	time_t now = time(NULL);

	if (r->bounce != NULL && r->bounce_rc == 0) {
		d->st.dsn_sent++;
		log_info("delivery: %s: report queued as %s to <%s>", r->id, r->bounce->id,
		    r->bounce->rcpts[0].address);
		if (scheduler_add(d->sched, r->bounce->id, 0) == -1)
			log_warnx("delivery: %s: out of memory: scheduled at the next start",
			    r->bounce->id);
	}
	for (size_t i = 0; i < r->nout; i++) {
		enum queue_rcpt_state s = r->env->rcpts[r->out[i].idx].state;
		enum result res = s == QUEUE_RCPT_FAILED ? RESULT_BOUNCED
		    : s == QUEUE_RCPT_PENDING            ? RESULT_DEFERRED
		                                         : RESULT_DELIVERED;

		d->st.outcomes[res][r->out[i].reason]++;
		if (res == RESULT_BOUNCED)
			d->st.bounced++;
		else if (res == RESULT_DEFERRED)
			d->st.deferred++;
		else
			d->st.delivered++;
	}
	if (r->removed) {
		log_info("delivery: %s: removed: every recipient is final", r->id);
		scheduler_done(d->sched, r->id, 0);
	} else if (r->write_rc == -1) {
		d->st.write_errors++;
		scheduler_done(d->sched, r->id, now + (time_t)d->relay->retry_interval);
	} else
		scheduler_done(d->sched, r->id, next_due(r->env));
	run_free(r);
}

/* The DSN for the recipients marked failed; NULL content when none is due. */
static int
make_bounce(struct run *r, struct dsn_rcpt *fails, size_t nfail, time_t now)
{
	const struct config_relay *relay = r->d->relay;
	const char *to = r->env->sender[0] != '\0' ? r->env->sender : relay->postmaster;
	bool all_pm = true;

	for (size_t i = 0; i < nfail; i++)
		all_pm &= is_postmaster(relay, fails[i].address);
	/* Never bounce a bounce: a null-sender failure goes to postmaster, and
	 * a failure to postmaster itself is only logged. */
	if (r->env->sender[0] == '\0' && all_pm) {
		r->d->st.dsn_dropped++;
		log_warnx("delivery: %s: undeliverable mail to postmaster from <>: dropped", r->id);
		return 0;
	}
	if ((r->bounce = queue_env_new()) == NULL || queue_env_set(&r->bounce->sender, "") == -1 ||
	    queue_env_set(&r->bounce->client_addr, "local") == -1 ||
	    queue_env_add_rcpt(r->bounce, to, now) == -1)
		return -1;
	r->bounce->is_bounce = true;
	r->bounce->arrival = now;
	queue_id_new(r->bounce->id);
	r->bounce_content = dsn_build(r->env, r->content, r->len, fails, nfail, relay->hostname, to,
	    r->bounce->id, now, &r->bounce_len);
	return r->bounce_content != NULL ? 0 : -1;
}

/*
 * One recipient's outcome into the envelope.  A report line is added when
 * it failed, or when it is deferred at its first attempt after
 * delay-warning passed (a delay notice: once, with no state of its own).
 */
static void
apply_outcome(
    struct run *r, const struct rcpt_out *o, time_t now, struct dsn_rcpt *rep, size_t *nrep)
{
	const struct config_relay *relay = r->d->relay;
	struct queue_rcpt *q = &r->env->rcpts[o->idx];
	time_t age = now - r->env->arrival, dw = (time_t)relay->delay_warning;
	bool warned = q->last_attempt != 0 && q->last_attempt - r->env->arrival >= dw;
	const char *action = "failed";

	q->attempts++;
	q->last_attempt = now;
	if (o->diag != NULL)
		queue_env_set(&q->last_error, o->diag);
	if (o->outcome == OUT_DELIVERED) {
		q->state = QUEUE_RCPT_DELIVERED;
		return;
	}
	/* Whole seconds on both sides: a message that arrived at x.95 is "1 s
	 * old" at x+1.05; give up only when it is surely past the lifetime. */
	if (o->outcome != OUT_PERM && age <= (time_t)relay->queue_lifetime) {
		/* A flush is an extra attempt, not a step: retrying now must not
		 * double the wait after it. */
		if (!o->forced)
			q->backoff++;
		q->next_retry = now + backoff(relay, q->backoff > 0 ? q->backoff : 1);
		if (dw == 0 || age < dw || warned || r->env->sender[0] == '\0')
			return;
		action = "delayed";
	} else
		q->state = QUEUE_RCPT_FAILED;
	if (rep != NULL)
		rep[(*nrep)++] =
		    (struct dsn_rcpt){q->address, action, o->status, o->remote, o->diag, now};
}

/* Every job is done: apply the outcomes to the envelope, then write (pool). */
static void
run_settle(struct run *r)
{
	const struct config_relay *relay = r->d->relay;
	time_t now = time(NULL);
	struct dsn_rcpt *fails = calloc(r->nout + 1, sizeof(*fails));
	size_t nfail = 0;

	for (size_t i = 0; i < r->nout; i++)
		apply_outcome(r, &r->out[i], now, fails, &nfail);
	if (nfail > 0 && make_bounce(r, fails, nfail, now) == -1) {
		log_warnx("delivery: %s: out of memory building the bounce", r->id);
		r->d->st.write_errors++;
		for (size_t i = 0; i < r->nout; i++)
			if (r->env->rcpts[r->out[i].idx].state == QUEUE_RCPT_FAILED) {
				r->env->rcpts[r->out[i].idx].state = QUEUE_RCPT_PENDING;
				r->env->rcpts[r->out[i].idx].next_retry =
				    now + relay->retry_interval;
			}
		queue_env_free(r->bounce);
		r->bounce = NULL;
	}
	free(fails);
	r->retry = (time_t)relay->retry_interval;
	if (disk_pool_run(r->d->pool, settle_run, settle_after, r) == -1) {
		log_warnx("delivery: %s: out of memory: retried later", r->id);
		scheduler_done(r->d->sched, r->id, now + (time_t)relay->retry_interval);
		run_free(r);
	}
}

static void
job_done(struct job *j)
{
	struct run *r = j->run;

	if (--r->jobs_left == 0)
		run_settle(r);
}

/* The job for `domain` in this run ("" = local), made when missing. */
static struct job *
job_for(struct run *r, const char *domain, bool local)
{
	struct job *j;

	for (size_t i = 0; i < r->njobs; i++)
		if (strcmp(r->jobs[i]->domain, domain) == 0)
			return r->jobs[i];
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->outs = calloc(r->nout, sizeof(size_t))) == NULL ||
	    (j->open = calloc(r->nout, sizeof(size_t))) == NULL ||
	    (j->names = calloc(r->nout, sizeof(char *))) == NULL) {
		job_free(j);
		return NULL;
	}
	j->run = r;
	j->local = local;
	snprintf(j->domain, sizeof(j->domain), "%s", domain);
	r->jobs[r->njobs++] = j;
	return j;
}

/* Group the due recipients by destination: local ones together, others by domain. */
static int
run_group(struct run *r)
{
	if ((r->jobs = calloc(r->nout, sizeof(*r->jobs))) == NULL)
		return -1;
	for (size_t i = 0; i < r->nout; i++) {
		const char *addr = r->env->rcpts[r->out[i].idx].address;
		const char *at = strrchr(addr, '@');
		char domain[DOMAIN_MAX];
		bool local;
		struct job *j;

		snprintf(domain, sizeof(domain), "%s", at != NULL ? at + 1 : "");
		for (char *p = domain; *p != '\0'; p++)
			*p = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
		local = domain[0] == '\0' || policy_is_local_domain(r->d->policy, domain);
		if ((j = job_for(r, local ? "" : domain, local)) == NULL)
			return -1;
		j->outs[j->nouts++] = i;
	}
	return 0;
}

static void
run_start_jobs(struct run *r)
{
	r->jobs_left = r->njobs;
	for (size_t i = 0; i < r->njobs; i++) {
		struct job *j = r->jobs[i];

		if (j->local) {
			local_start(j);
			continue;
		}
		if ((j->rt = resolver_route(r->d->resolver, j->domain, 0, route_cb, j)) == NULL) {
			for (size_t k = 0; k < j->nouts; k++)
				record(j, j->outs[k], OUT_TEMP, 0, "451 4.3.0 out of memory", NULL);
			job_done(j);
		}
	}
}

/* Load the message; false (and the scheduler told) when there is nothing to do. */
static bool
run_load(struct run *r)
{
	struct delivery *d = r->d;
	enum queue_status st = queue_load(d->queue, r->id, &r->env, &r->content, &r->len);

	if (st == QUEUE_OK)
		return true;
	if (st == QUEUE_ECORRUPT)
		(void)queue_move_corrupt(d->queue, r->id, "failed to load");
	if (st == QUEUE_EIO)
		scheduler_done(d->sched, r->id, time(NULL) + (time_t)d->relay->retry_interval);
	else
		scheduler_done(d->sched, r->id, 0);
	return false;
}

/* scheduler_run_fn: one message is due. */
static void
run_cb(const char *id, bool forced, void *arg)
{
	struct delivery *d = arg;
	struct run *r = calloc(1, sizeof(*r));
	time_t now = time(NULL);

	if (r == NULL || (r->maildir_root = strdup(d->relay->maildir_root)) == NULL) {
		free(r);
		scheduler_done(d->sched, id, now + (time_t)d->relay->retry_interval);
		return;
	}
	r->d = d;
	snprintf(r->id, sizeof(r->id), "%s", id);
	LIST_INSERT_HEAD(&d->runs, r, link);
	if (!run_load(r)) {
		run_free(r);
		return;
	}
	if ((r->out = calloc(r->env->nrcpts, sizeof(*r->out))) == NULL)
		goto later;
	for (size_t i = 0; i < r->env->nrcpts; i++)
		if (r->env->rcpts[i].state == QUEUE_RCPT_PENDING &&
		    (forced || r->env->rcpts[i].next_retry <= now)) {
			r->out[r->nout].forced = r->env->rcpts[i].next_retry > now;
			r->out[r->nout++].idx = i;
		}
	if (r->nout == 0 && !queue_env_is_done(r->env)) {
		scheduler_done(d->sched, id, next_due(r->env));
		run_free(r);
		return;
	}
	if (run_group(r) == -1)
		goto later;
	if (r->njobs == 0)
		run_settle(r);
	else
		run_start_jobs(r);
	return;
later:
	log_warnx("delivery: %s: out of memory: retried later", id);
	scheduler_done(d->sched, id, now + (time_t)d->relay->retry_interval);
	run_free(r);
}

/* ---- the public side ---- */

/* The MTA-STS module on the resolver's DNS client; made even with mta-sts
 * no, so that a reload may switch it on (it reads its cache folder now).
 * Failing to make it is fatal only when mta-sts is on. */
static int
sts_init(struct delivery *d, char *err, size_t errlen)
{
	const struct config_relay *rl = d->relay;
	struct mta_sts_params sp = {
	    rl->mta_sts_cache, rl->mta_sts_ca_file, rl->mta_sts_port, rl->mta_sts_cache_size};

	if ((d->sts = mta_sts_new(d->base, resolver_dnsclient(d->resolver), &sp)) != NULL)
		return 0;
	if (!rl->mta_sts) { /* not used now: a reload cannot switch it on */
		log_warnx("delivery: MTA-STS not available (cache or CA file, see above)");
		return 0;
	}
	snprintf(err, errlen, "MTA-STS: cannot set up (cache %s, CA file %s)",
	    rl->mta_sts_cache != NULL ? rl->mta_sts_cache : "(memory)",
	    rl->mta_sts_ca_file != NULL ? rl->mta_sts_ca_file : "(system)");
	return -1;
}

struct delivery *
delivery_new(struct event_base *base, const struct config *cfg, struct queue *q,
    struct disk_pool *pool, const struct policy *policy, char *err, size_t errlen)
{
	struct delivery *d = calloc(1, sizeof(*d));
	const struct config_relay *relay = &cfg->relay;
	struct resolver_local local = {relay->hostname, (const char *const *)relay->local_aliases.v,
	    relay->local_aliases.n, relay->listen.v, relay->listen.n};

	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->base = base;
	d->relay = relay;
	d->queue = q;
	d->pool = pool;
	d->policy = policy;
	d->timeouts = smtp_client_default_timeouts;
	TAILQ_INIT(&d->waiting);
	LIST_INIT(&d->dests);
	LIST_INIT(&d->idle);
	LIST_INIT(&d->runs);
	if ((d->kick = evtimer_new(base, kick_cb, d)) == NULL ||
	    (d->tls_ctx = tls_client_ctx_new(relay->tls_ca_file, err, errlen)) == NULL ||
	    (d->tls_policy = tls_policy_new(cfg, err, errlen)) == NULL ||
	    (d->resolver = resolver_new(base, &cfg->resolver, &local, err, errlen)) == NULL ||
	    (d->sched = scheduler_new(base, relay->max_deliveries * 2, run_cb, d)) == NULL ||
	    sts_init(d, err, errlen) == -1) {
		if ((d->resolver != NULL && d->sched == NULL) || d->kick == NULL)
			snprintf(err, errlen, "cannot set up delivery");
		/* else err says what (CA file, policy file, resolver) */
		delivery_free(d);
		return NULL;
	}
	return d;
}

void
delivery_free(struct delivery *d)
{
	struct run *r;
	struct dest *x;
	struct conn *cn;

	if (d == NULL)
		return;
	while ((r = LIST_FIRST(&d->runs)) != NULL)
		run_free(r);
	while ((x = LIST_FIRST(&d->dests)) != NULL) {
		LIST_REMOVE(x, link);
		free(x);
	}
	while ((cn = LIST_FIRST(&d->idle)) != NULL) {
		LIST_REMOVE(cn, link);
		smtp_client_cancel(cn->client);
		free(cn);
	}
	if (d->kick != NULL)
		event_free(d->kick);
	scheduler_free(d->sched);
	mta_sts_free(d->sts); /* before the resolver: it borrows its DNS client */
	resolver_free(d->resolver);
	tls_policy_free(d->tls_policy);
	SSL_CTX_free(d->tls_ctx);
	free(d);
}

static int
schedule_cb(const char *id, void *arg)
{
	return scheduler_add(arg, id, 0) == -1 ? -1 : 0;
}

int
delivery_start(struct delivery *d)
{
	if (d->relay->hold_delivery) {
		log_info("delivery: held (hold-delivery yes): messages are queued, not delivered");
		return 0;
	}
	if (queue_scan(d->queue, schedule_cb, d->sched) != 0) {
		log_warnx("delivery: cannot schedule the queue");
		return -1;
	}
	d->started = true;
	log_info("delivery: %zu messages scheduled", scheduler_count(d->sched));
	return 0;
}

void
delivery_queued(const char *id, void *arg)
{
	struct delivery *d = arg;

	if (d->started && scheduler_add(d->sched, id, 0) == -1)
		log_warnx("delivery: %s: out of memory: scheduled at the next start", id);
}

int
delivery_flush(const char *id, void *arg)
{
	struct delivery *d = arg;

	if (!d->started) {
		log_info("delivery: flush %s: ignored: hold-delivery yes", id != NULL ? id : "all");
		return 0;
	}
	if (scheduler_flush(d->sched, id) == 0)
		return 0;
	errno = ENOENT;
	return -1;
}

void
delivery_reconfigure(struct delivery *d, const struct config *cfg, const struct policy *policy)
{
	struct tls_policy *tp;
	SSL_CTX *ctx;
	char err[512];

	d->relay = &cfg->relay;
	d->policy = policy;
	/* Jobs in flight keep the level they looked up; new ones get the new
	 * policy.  A broken file keeps the old one (and -t says why). */
	if ((tp = tls_policy_new(cfg, err, sizeof(err))) == NULL)
		log_warnx("delivery: TLS policy not reloaded: %s", err);
	else {
		tls_policy_free(d->tls_policy);
		d->tls_policy = tp;
	}
	if ((ctx = tls_client_ctx_new(d->relay->tls_ca_file, err, sizeof(err))) == NULL)
		log_warnx("delivery: TLS client context not reloaded: %s", err);
	else {
		SSL_CTX_free(d->tls_ctx); /* SSLs in flight hold their own reference */
		d->tls_ctx = ctx;
	}
	scheduler_set_max(d->sched, d->relay->max_deliveries * 2);
	dispatch(d);
	/* Released by a reload: schedule the whole queue now.  (Holding again
	 * only takes effect at the next start.) */
	if (!d->started && !d->relay->hold_delivery)
		delivery_start(d);
}

static void
add_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

/* Each active destination: its slow start window, slots in use, jobs waiting. */
static void
dests_json(const struct delivery *d, struct json_object *o)
{
	struct json_object *all = json_object_new_object();
	const struct dest *x;

	LIST_FOREACH(x, &d->dests, link) {
		struct json_object *xo = json_object_new_object();

		add_u64(xo, "concurrency", x->win.limit);
		add_u64(xo, "active", x->active);
		add_u64(xo, "waiting", x->waiting);
		json_object_object_add(all, x->domain, xo);
	}
	json_object_object_add(o, "destinations", all);
}

void
delivery_status_json(struct json_object *root, void *arg)
{
	struct delivery *d = arg;
	struct json_object *o = json_object_new_object(), *hops = json_object_new_object();

	add_u64(o, "delivered", d->st.delivered);
	add_u64(o, "deferred", d->st.deferred);
	add_u64(o, "bounced", d->st.bounced);
	add_u64(o, "attempts", d->st.attempts);
	add_u64(o, "dsn_sent", d->st.dsn_sent);
	add_u64(o, "dsn_dropped", d->st.dsn_dropped);
	add_u64(o, "write_errors", d->st.write_errors);
	add_u64(o, "scheduled", scheduler_count(d->sched));
	add_u64(o, "active", scheduler_active(d->sched));
	add_u64(o, "connections", d->conns);
	add_u64(o, "connections_new", d->st.conn_new);
	add_u64(o, "connections_reused", d->st.conn_reused);
	add_u64(o, "connections_idle", d->nidle);
	dests_json(d, o);
	for (size_t i = 0; i <= HOP_STATS_MAX; i++) {
		struct hop_stat *h = &d->hops[i];
		struct json_object *ho;

		if (i >= d->nhops && (i < HOP_STATS_MAX || h->host[0] == '\0'))
			continue;
		ho = json_object_new_object();
		add_u64(ho, "delivered", h->delivered);
		add_u64(ho, "deferred", h->deferred);
		add_u64(ho, "failed", h->failed);
		json_object_object_add(hops, h->host, ho);
	}
	json_object_object_add(o, "hops", hops);
	json_object_object_add(root, "delivery", o);
}

/* What /metrics says about the queue, from its directory (names only). */
struct queue_census {
	size_t messages;
	char oldest[QUEUE_ID_LEN + 1]; /* IDs sort by arrival */
};

static int
census_cb(const char *id, void *arg)
{
	struct queue_census *qc = arg;

	qc->messages++;
	if (qc->oldest[0] == '\0' || strcmp(id, qc->oldest) < 0)
		memcpy(qc->oldest, id, sizeof(qc->oldest));
	return 0;
}

/*
 * Queue size by state and the oldest message's age: enough to alert on a
 * stuck queue.  active: in a delivery run or due now; deferred: waiting
 * for a retry; hold: everything while hold-delivery keeps the queue.
 */
static void
queue_metrics(struct delivery *d, struct evbuffer *out)
{
	struct queue_census qc = {0, ""};
	struct timeval now;
	size_t active = 0;
	double age = 0;

	queue_scan(d->queue, census_cb, &qc);
	gettimeofday(&now, NULL);
	if (d->started)
		active = scheduler_due(d->sched, now.tv_sec);
	if (active > qc.messages)
		active = qc.messages;
	if (qc.messages > 0)
		age = (double)now.tv_sec + now.tv_usec / 1e6 - queue_id_arrival(qc.oldest);
	prom_family(out, "relay_queue_messages", "gauge", "Messages in the queue by state");
	prom_sample_u64(out, "relay_queue_messages", "state=\"active\"", active);
	prom_sample_u64(out, "relay_queue_messages", "state=\"deferred\"",
	    d->started ? qc.messages - active : 0);
	prom_sample_u64(
	    out, "relay_queue_messages", "state=\"hold\"", d->started ? 0 : qc.messages);
	prom_family(out, "relay_queue_oldest_message_age_seconds", "gauge",
	    "Age of the oldest message in the queue (0 when empty)");
	prom_sample(out, "relay_queue_oldest_message_age_seconds", NULL, age > 0 ? age : 0);
}

void
delivery_metrics(struct evbuffer *out, void *arg)
{
	struct delivery *d = arg;
	static const char *const names[] = {"delivered", "deferred", "failed"};
	char labels[DOMAIN_MAX + 32];

	queue_metrics(d, out);
	prom_family(out, "relay_deliveries_total", "counter",
	    "Recipient outcomes per delivery run, by result and reason");
	for (int res = 0; res < RESULT_COUNT; res++)
		for (int rs = 0; rs < REASON_COUNT; rs++) {
			snprintf(labels, sizeof(labels), "result=\"%s\",reason=\"%s\"",
			    result_names[res], reason_names[rs]);
			prom_sample_u64(
			    out, "relay_deliveries_total", labels, d->st.outcomes[res][rs]);
		}
	prom_family(out, "relay_delivery_attempts_total", "counter",
	    "SMTP connections and Maildir deliveries");
	prom_sample_u64(out, "relay_delivery_attempts_total", NULL, d->st.attempts);
	prom_family(out, "relay_connections_total", "counter",
	    "Outbound SMTP connections: opened, or kept ones used again");
	prom_sample_u64(out, "relay_connections_total", "kind=\"new\"", d->st.conn_new);
	prom_sample_u64(out, "relay_connections_total", "kind=\"reused\"", d->st.conn_reused);
	prom_family(out, "relay_deliveries_tls_total", "counter",
	    "Outbound SMTP sessions by TLS outcome (failed: the TLS policy was not met)");
	for (int k = 0; k <= TLS_OUT_COUNT; k++) {
		snprintf(labels, sizeof(labels), "outcome=\"%s\"",
		    k == TLS_OUT_COUNT ? "failed" : tls_outcome_name((enum tls_outcome)k));
		prom_sample_u64(out, "relay_deliveries_tls_total", labels, d->tls_sessions[k]);
	}
	prom_family(out, "relay_mta_sts_total", "counter",
	    "MTA-STS answers for routed domains (mx_mismatch: enforce, no MX matched, deferred)");
	for (int k = 0; k < STS_R_COUNT; k++) {
		snprintf(labels, sizeof(labels), "result=\"%s\"", sts_result_names[k]);
		prom_sample_u64(out, "relay_mta_sts_total", labels, d->sts_results[k]);
	}
	prom_family(out, "relay_hop_results_total", "counter", "Outcomes per next hop");
	for (size_t i = 0; i <= HOP_STATS_MAX; i++) {
		const struct hop_stat *h = &d->hops[i];
		uint64_t v[3] = {h->delivered, h->deferred, h->failed};

		if (i >= d->nhops && (i < HOP_STATS_MAX || h->host[0] == '\0'))
			continue;
		for (size_t k = 0; k < 3; k++) {
			snprintf(
			    labels, sizeof(labels), "hop=\"%s\",result=\"%s\"", h->host, names[k]);
			prom_sample_u64(out, "relay_hop_results_total", labels, v[k]);
		}
	}
}
