/* relayctl.c - smtp-relayctl commands on the queue directory and the control socket. */
#include "smtp-relay/relayctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "common/config.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "resolver/dnsclient.h"
#include "resolver/resolver.h"
#include "smtp-relay/control.h"
#include "smtp-relay/mta_sts.h"
#include "smtp-relay/queue.h"

#define CTL_TIMEOUT_SEC 10
/* tmp/ files younger than this may be in use by a running daemon. */
#define CTL_STALE_AGE_SEC 3600

struct ctl {
	const struct config_relay *relay;
	const struct relayctl_opts *opts;
	struct queue *queue;
};

/* --json output: one pretty-printed document per command, on opts->out. */
static void
print_json(const struct ctl *c, struct json_object *o)
{
	jsonout_print(c->opts->out, o, true);
}

static int fail(const struct ctl *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Report a failure: "smtp-relayctl: <message>" on stderr and, under
 * --json, {"error": "<message>"} on stdout.  Returns rc, the exit status.
 */
static int
fail(const struct ctl *c, int rc, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "smtp-relayctl: %s\n", msg);
	if (c->opts->json)
		jsonout_error("%s", msg);
	return rc;
}

/* Local time for people reading a terminal; 0 (never, or not set) is "-". */
static void
format_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0) {
		snprintf(buf, len, "-");
		return;
	}
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/*
 * The text form of one message: a line for the envelope, then one indented
 * line per recipient with its own state, so a partly delivered message
 * shows which recipients are still waiting and why.
 */
static void
print_env(const struct ctl *c, const struct queue_env *env)
{
	char when[32], next[32];

	format_time(env->arrival, when, sizeof(when));
	fprintf(c->opts->out, "%s %8" PRIu64 " %s <%s>%s\n", env->id, env->size, when, env->sender,
	    env->is_bounce ? " (bounce)" : "");
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];

		format_time(r->next_retry, next, sizeof(next));
		fprintf(c->opts->out, "    %-9s <%s> attempts=%u next=%s%s%s\n",
		    queue_rcpt_state_name(r->state), r->address, r->attempts, next,
		    r->last_error != NULL ? " last: " : "",
		    r->last_error != NULL ? r->last_error : "");
	}
}

/* ---- list ---- */

struct list_ctx {
	struct ctl *c;
	struct json_object *messages;
	struct json_object *damaged;
	size_t n;
};

/*
 * queue_scan callback: a damaged file is listed by ID (and not printed)
 * but never stops the listing; other load errors (a file removed by the
 * daemon meanwhile) are skipped silently.
 */
static int
list_one(const char *id, void *arg)
{
	struct list_ctx *lc = arg;
	struct queue_env *env;
	enum queue_status st = queue_load(lc->c->queue, id, &env, NULL, NULL);

	if (st == QUEUE_ECORRUPT)
		json_object_array_add(lc->damaged, json_object_new_string(id));
	if (st != QUEUE_OK)
		return 0;
	lc->n++;
	if (lc->c->opts->json)
		json_object_array_add(lc->messages, queue_env_to_json(env));
	else
		print_env(lc->c, env);
	queue_env_free(env);
	return 0;
}

/* list: every message in queue/, read from the files (the daemon is not asked). */
static int
cmd_list(struct ctl *c, int argc, char **argv)
{
	struct list_ctx lc = {c, json_object_new_array(), json_object_new_array(), 0};
	struct json_object *o;
	int rc = RELAYCTL_EXIT_FAIL;

	(void)argv;
	if (argc != 1) {
		rc = fail(c, RELAYCTL_EXIT_USAGE, "list takes no operand");
		goto done;
	}
	if (queue_scan(c->queue, list_one, &lc) == -1) {
		fail(c, rc, "cannot read %s/queue", queue_dir(c->queue));
		goto done;
	}
	if (c->opts->json) {
		o = json_object_new_object();
		json_object_object_add(o, "count", json_object_new_int64((int64_t)lc.n));
		json_object_object_add(o, "messages", json_object_get(lc.messages));
		json_object_object_add(o, "damaged", json_object_get(lc.damaged));
		print_json(c, o);
		json_object_put(o);
	} else {
		fprintf(
		    c->opts->out, "-- %zu message%s in the queue\n", lc.n, lc.n == 1 ? "" : "s");
	}
	rc = 0;
done:
	json_object_put(lc.messages);
	json_object_put(lc.damaged);
	return rc;
}

/* ---- show ---- */

/* show ID: the envelope and the stored content, checksum verified by queue_load. */
static int
cmd_show(struct ctl *c, int argc, char **argv)
{
	struct queue_env *env;
	enum queue_status st;
	struct json_object *o;
	char *content;
	size_t len;

	if (argc != 2)
		return fail(c, RELAYCTL_EXIT_USAGE, "usage: show ID");
	st = queue_load(c->queue, argv[1], &env, &content, &len);
	if (st != QUEUE_OK)
		return fail(c, RELAYCTL_EXIT_FAIL, "%s: %s", argv[1], queue_strerror(st));
	if (c->opts->json) {
		o = queue_env_to_json(env);
		json_object_object_add(o, "content", json_object_new_string_len(content, (int)len));
		print_json(c, o);
		json_object_put(o);
	} else {
		print_env(c, env);
		fprintf(c->opts->out, "\n");
		fwrite(content, 1, len, c->opts->out);
	}
	free(content);
	queue_env_free(env);
	return 0;
}

/* ---- remove and flush: through the daemon when it runs ---- */

/*
 * control_call failed because no daemon listens (socket missing or nobody
 * behind it), as opposed to a daemon that is there but does not answer:
 * only then may we touch the queue ourselves.
 */
static bool
daemon_absent(int err)
{
	return err == ECONNREFUSED || err == ENOENT;
}

/*
 * The daemon's reply (or one made up here in the same shape): "what: ok",
 * or the error as a failure.  Returns the exit status.
 */
static int
print_reply(struct ctl *c, const char *what, struct json_object *r)
{
	struct json_object *ok, *err;

	if (json_object_object_get_ex(r, "ok", &ok) && json_object_get_boolean(ok)) {
		if (c->opts->json)
			print_json(c, r);
		else
			fprintf(c->opts->out, "%s: ok\n", what);
		return 0;
	}
	json_object_object_get_ex(r, "error", &err);
	return fail(c, RELAYCTL_EXIT_FAIL, "%s: %s", what,
	    err != NULL ? json_object_get_string(err) : "refused");
}

/*
 * remove ID: through the daemon when it runs, so that it forgets the message
 * (scheduler, queue count) instead of finding the file gone under a delivery
 * in flight; directly on the files only when no daemon listens.
 */
static int
cmd_remove(struct ctl *c, int argc, char **argv)
{
	char req[CONTROL_LINE_MAX];
	struct json_object *r;
	enum queue_status st;
	int rc;

	if (argc != 2 || !queue_id_valid(argv[1]))
		return fail(c, RELAYCTL_EXIT_USAGE, "usage: remove ID (16 hex digits)");
	snprintf(req, sizeof(req), "remove %s", argv[1]);
	if ((r = control_call(c->relay->control_socket, req, CTL_TIMEOUT_SEC)) != NULL) {
		rc = print_reply(c, argv[1], r);
		json_object_put(r);
		return rc;
	}
	if (!daemon_absent(errno))
		return fail(c, RELAYCTL_EXIT_UNAVAILABLE, "%s: %s", c->relay->control_socket,
		    strerror(errno));
	/* No daemon: nobody else touches the queue, remove the file here. */
	r = json_object_new_object();
	st = queue_remove(c->queue, argv[1]);
	json_object_object_add(r, "ok", json_object_new_boolean(st == QUEUE_OK));
	if (st == QUEUE_OK)
		json_object_object_add(r, "removed", json_object_new_string(argv[1]));
	else
		json_object_object_add(r, "error", json_object_new_string(queue_strerror(st)));
	rc = print_reply(c, argv[1], r);
	json_object_put(r);
	return rc;
}

/* flush [ID]: only the daemon schedules deliveries, so without it this fails. */
static int
cmd_flush(struct ctl *c, int argc, char **argv)
{
	char req[CONTROL_LINE_MAX];
	struct json_object *r;
	int rc;

	if (argc > 2 || (argc == 2 && !queue_id_valid(argv[1])))
		return fail(c, RELAYCTL_EXIT_USAGE, "usage: flush [ID]");
	snprintf(req, sizeof(req), "flush%s%s", argc == 2 ? " " : "", argc == 2 ? argv[1] : "");
	if ((r = control_call(c->relay->control_socket, req, CTL_TIMEOUT_SEC)) == NULL)
		return fail(c, RELAYCTL_EXIT_UNAVAILABLE,
		    "flush: smtp-relayd does not answer on %s: %s", c->relay->control_socket,
		    strerror(errno));
	rc = print_reply(c, argc == 2 ? argv[1] : "flush", r);
	json_object_put(r);
	return rc;
}

/* ---- pause and resume: the daemon's intake ---- */

/* pause / resume (argv[0] is the request itself): the intake lives in the daemon only. */
static int
cmd_pause(struct ctl *c, int argc, char **argv)
{
	struct json_object *r;
	int rc;

	if (argc != 1)
		return fail(c, RELAYCTL_EXIT_USAGE, "%s takes no operand", argv[0]);
	if ((r = control_call(c->relay->control_socket, argv[0], CTL_TIMEOUT_SEC)) == NULL)
		return fail(c, RELAYCTL_EXIT_UNAVAILABLE,
		    "%s: smtp-relayd does not answer on %s: %s", argv[0], c->relay->control_socket,
		    strerror(errno));
	rc = print_reply(c, argv[0], r);
	json_object_put(r);
	return rc;
}

/* ---- analyze ---- */

/* queue_recover callback: each finding kept as JSON, printed after the summary is known. */
static void
analyze_finding(const char *kind, const char *name, const char *why, void *arg)
{
	struct json_object *findings = arg;
	struct json_object *f = json_object_new_object();

	json_object_object_add(f, "kind", json_object_new_string(kind));
	json_object_object_add(f, "name", json_object_new_string(name));
	json_object_object_add(f, "reason", json_object_new_string(why));
	json_object_array_add(findings, f);
}

/* The counters of queue_recover under the names docs/queue-format.md uses. */
static struct json_object *
recovery_json(const struct queue_recovery *rec)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "messages", json_object_new_int64((int64_t)rec->messages));
	json_object_object_add(
	    o, "recipients_pending", json_object_new_int64((int64_t)rec->recipients_pending));
	json_object_object_add(o, "stale", json_object_new_int64((int64_t)rec->stale));
	json_object_object_add(o, "damaged", json_object_new_int64((int64_t)rec->damaged));
	json_object_object_add(o, "orphans", json_object_new_int64((int64_t)rec->orphans));
	json_object_object_add(o, "stray", json_object_new_int64((int64_t)rec->stray));
	json_object_object_add(
	    o, "corrupt_total", json_object_new_int64((int64_t)rec->corrupt_total));
	return o;
}

/*
 * Whether smtp-relayd answers now.  analyze then leaves young tmp/ files
 * alone: they may be commits in progress, not leftovers of a crash.
 */
static bool
daemon_running(const struct ctl *c)
{
	struct json_object *r = control_call(c->relay->control_socket, "stats", 2);

	json_object_put(r);
	return r != NULL;
}

/* The text form of analyze: one line per finding, then the totals. */
static void
print_analysis(struct ctl *c, const struct queue_recovery *rec, struct json_object *findings)
{
	size_t n = json_object_array_length(findings);

	for (size_t i = 0; i < n; i++) {
		struct json_object *f = json_object_array_get_idx(findings, i), *k, *nm, *w;

		json_object_object_get_ex(f, "kind", &k);
		json_object_object_get_ex(f, "name", &nm);
		json_object_object_get_ex(f, "reason", &w);
		fprintf(c->opts->out, "%-8s %s: %s\n", json_object_get_string(k),
		    json_object_get_string(nm), json_object_get_string(w));
	}
	fprintf(c->opts->out,
	    "%zu messages (%zu recipients pending); %zu stale, %zu damaged, "
	    "%zu orphans, %zu stray%s; %zu files in corrupt/\n",
	    rec->messages, rec->recipients_pending, rec->stale, rec->damaged, rec->orphans,
	    rec->stray, c->opts->repair ? " (repaired)" : "", rec->corrupt_total);
}

/*
 * analyze [--repair]: the start-up recovery run on demand; without --repair
 * nothing changes, so it is safe beside a running daemon.
 */
static int
cmd_analyze(struct ctl *c, int argc, char **argv)
{
	struct json_object *findings = json_object_new_array(), *o;
	struct queue_recovery rec;
	unsigned min_age = daemon_running(c) ? CTL_STALE_AGE_SEC : 0;
	int rc = RELAYCTL_EXIT_FAIL;

	(void)argv;
	if (argc != 1) {
		rc = fail(c, RELAYCTL_EXIT_USAGE, "analyze takes no operand");
	} else if (queue_recover(
	               c->queue, c->opts->repair, min_age, &rec, analyze_finding, findings) == 0) {
		rc = 0;
		if (c->opts->json) {
			o = recovery_json(&rec);
			json_object_object_add(
			    o, "repaired", json_object_new_boolean(c->opts->repair));
			json_object_object_add(o, "findings", json_object_get(findings));
			print_json(c, o);
			json_object_put(o);
		} else {
			print_analysis(c, &rec, findings);
		}
	} else {
		fail(c, rc, "cannot analyze %s", queue_dir(c->queue));
	}
	json_object_put(findings);
	return rc;
}

/* ---- stats ---- */

struct stats_ctx {
	struct queue *queue;
	size_t messages, damaged, rcpt[3];
	uint64_t bytes;
	time_t oldest;
};

/* queue_scan callback: add one message to the totals (damaged files counted apart). */
static int
stats_one(const char *id, void *arg)
{
	struct stats_ctx *sc = arg;
	struct queue_env *env;
	enum queue_status st = queue_load(sc->queue, id, &env, NULL, NULL);

	sc->damaged += st == QUEUE_ECORRUPT;
	if (st != QUEUE_OK)
		return 0;
	sc->messages++;
	sc->bytes += env->size;
	if (sc->oldest == 0 || env->arrival < sc->oldest)
		sc->oldest = env->arrival;
	for (size_t i = 0; i < env->nrcpts; i++)
		sc->rcpt[env->rcpts[i].state]++;
	queue_env_free(env);
	return 0;
}

/* The queue part of stats --json; rcpt[] is indexed by enum queue_rcpt_state. */
static struct json_object *
stats_json(const struct stats_ctx *sc)
{
	struct json_object *o = json_object_new_object();
	struct json_object *r = json_object_new_object();

	json_object_object_add(o, "messages", json_object_new_int64((int64_t)sc->messages));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)sc->bytes));
	json_object_object_add(o, "damaged", json_object_new_int64((int64_t)sc->damaged));
	json_object_object_add(o, "oldest_arrival", json_object_new_int64(sc->oldest));
	for (int i = 0; i < 3; i++)
		json_object_object_add(r, queue_rcpt_state_name((enum queue_rcpt_state)i),
		    json_object_new_int64((int64_t)sc->rcpt[i]));
	json_object_object_add(o, "recipients", r);
	return o;
}

/*
 * The text form of stats: "name: value" lines, names right-aligned so that
 * the colons and values line up and "accepting: yes" reads as one phrase.
 */
#define STATS_ROWS_MAX 64
struct stats_rows {
	size_t n;
	struct {
		char name[64];
		char value[256];
	} row[STATS_ROWS_MAX];
};

static void row_add(struct stats_rows *t, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append one row; rows past STATS_ROWS_MAX are dropped rather than failing stats. */
static void
row_add(struct stats_rows *t, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (t->n == STATS_ROWS_MAX)
		return;
	snprintf(t->row[t->n].name, sizeof(t->row[t->n].name), "%s", name);
	va_start(ap, fmt);
	vsnprintf(t->row[t->n].value, sizeof(t->row[t->n].value), fmt, ap);
	va_end(ap);
	t->n++;
}

/* Print the rows with the names right-aligned to the longest one. */
static void
rows_print(FILE *out, const struct stats_rows *t)
{
	int width = 0;

	for (size_t i = 0; i < t->n; i++)
		if ((int)strlen(t->row[i].name) > width)
			width = (int)strlen(t->row[i].name);
	for (size_t i = 0; i < t->n; i++)
		fprintf(out, "%*s: %s\n", width, t->row[i].name, t->row[i].value);
}

/* "accepting: yes" or "accepting: no (reason: detail)" from the daemon's stats. */
static void
accepting_row(struct stats_rows *t, struct json_object *a)
{
	struct json_object *ok, *reason, *detail;

	if (!json_object_object_get_ex(a, "ok", &ok))
		return;
	if (json_object_get_boolean(ok)) {
		row_add(t, "accepting", "yes");
		return;
	}
	json_object_object_get_ex(a, "reason", &reason);
	json_object_object_get_ex(a, "detail", &detail);
	row_add(t, "accepting", "no (%s: %s)", json_object_get_string(reason),
	    json_object_get_string(detail));
}

/*
 * The daemon's stats as rows: nested members joined with '_'
 * ("sessions_open"), counters under their own names, "ok" left out.
 */
static void
daemon_rows(struct stats_rows *t, const char *prefix, struct json_object *o)
{
	char name[64];

	json_object_object_foreach(o, key, v)
	{
		if (prefix[0] == '\0' && strcmp(key, "ok") == 0)
			continue;
		if (prefix[0] == '\0' && strcmp(key, "accepting") == 0) {
			accepting_row(t, v);
			continue;
		}
		if (prefix[0] == '\0' && strcmp(key, "counters") == 0)
			snprintf(name, sizeof(name), "%s", "");
		else
			snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "_" : "", key);
		if (json_object_is_type(v, json_type_object))
			daemon_rows(t, name, v);
		else if (json_object_is_type(v, json_type_boolean))
			row_add(t, name, "%s", json_object_get_boolean(v) ? "yes" : "no");
		else
			row_add(t, name, "%s", v != NULL ? json_object_get_string(v) : "-");
	}
}

/*
 * stats in text: the queue as read from the files, then the daemon's own
 * view (d, NULL when it does not run) flattened into rows.
 */
static void
stats_text(const struct ctl *c, const struct stats_ctx *sc, struct json_object *d)
{
	struct stats_rows *t = calloc(1, sizeof(*t));
	char when[32];

	if (t == NULL)
		return;
	format_time(sc->oldest, when, sizeof(when));
	row_add(t, "messages", "%zu", sc->messages);
	row_add(t, "bytes", "%" PRIu64, sc->bytes);
	row_add(t, "recipients_pending", "%zu", sc->rcpt[QUEUE_RCPT_PENDING]);
	row_add(t, "recipients_delivered", "%zu", sc->rcpt[QUEUE_RCPT_DELIVERED]);
	row_add(t, "recipients_failed", "%zu", sc->rcpt[QUEUE_RCPT_FAILED]);
	row_add(t, "damaged", "%zu", sc->damaged);
	row_add(t, "oldest_arrival", "%s", when);
	row_add(t, "daemon", "%s", d != NULL ? "running" : "not running");
	if (d != NULL)
		daemon_rows(t, "", d);
	rows_print(c->opts->out, t);
	free(t);
}

/*
 * stats: the files are read here (they are the truth even when no daemon
 * runs); the daemon is asked for its counters with a short timeout so that
 * a hung daemon does not hang the command.
 */
static int
cmd_stats(struct ctl *c, int argc, char **argv)
{
	struct stats_ctx sc = {c->queue, 0, 0, {0, 0, 0}, 0, 0};
	struct json_object *o, *d;

	(void)argv;
	if (argc != 1)
		return fail(c, RELAYCTL_EXIT_USAGE, "stats takes no operand");
	if (queue_scan(c->queue, stats_one, &sc) == -1)
		return fail(c, RELAYCTL_EXIT_FAIL, "cannot read %s/queue", queue_dir(c->queue));
	d = control_call(c->relay->control_socket, "stats", 2);
	if (!c->opts->json) {
		stats_text(c, &sc, d);
		json_object_put(d);
		return 0;
	}
	o = json_object_new_object();
	json_object_object_add(o, "queue", stats_json(&sc));
	json_object_object_add(o, "daemon", d);
	print_json(c, o);
	json_object_put(o);
	return 0;
}

/* ---- sts-fetch ---- */

struct sts_run {
	struct event_base *base;
	enum mta_sts_status st;
	char detail[1024];
	struct mta_sts_policy policy; /* a copy, when st is MTA_STS_POLICY */
};

static void
sts_fetch_cb(const struct mta_sts_policy *p, enum mta_sts_status st, const char *detail, void *arg)
{
	struct sts_run *r = arg;

	r->st = st;
	snprintf(r->detail, sizeof(r->detail), "%s", detail);
	if (p != NULL && mta_sts_policy_copy(&r->policy, p) == -1) {
		r->st = MTA_STS_TEMPFAIL;
		snprintf(r->detail, sizeof(r->detail), "out of memory");
	}
	event_base_loopbreak(r->base);
}

/* DNS as smtp-relayd asks it (resolver_dnsclient_new), with a small cache
 * when the configuration has none or sets cache-size 0. */
static struct dnsclient *
sts_dns_new(struct event_base *base, const struct config_resolver *res)
{
	struct config_resolver dflt = {.timeout = 5, .attempts = 2, .cache_size = 64};
	struct config_resolver cfg = res != NULL ? *res : dflt;
	char err[256];
	struct dnsclient *dns;

	if ((dns = resolver_dnsclient_new(base, &cfg, err, sizeof(err))) == NULL)
		log_err("sts-fetch: %s", err);
	return dns;
}

static void
sts_print_text(struct ctl *c, const char *domain, const struct sts_run *r, int nmx, char **mx)
{
	FILE *out = c->opts->out;
	const struct mta_sts_policy *p = &r->policy;
	char when[32];

	fprintf(out, "domain: %s\nstatus: %s\ndetail: %s\n", domain, mta_sts_status_str(r->st),
	    r->detail);
	if (r->st == MTA_STS_POLICY) {
		format_time(p->fetched, when, sizeof(when));
		fprintf(out, "mode: %s\nid: %s\nmax_age: %u\nfetched: %s\n",
		    mta_sts_mode_str(p->mode), p->id, p->max_age, when);
		for (size_t i = 0; i < p->nmx; i++)
			fprintf(out, "mx: %s\n", p->mx[i]);
	}
	for (int i = 0; i < nmx; i++)
		fprintf(out, "match %s: %s\n", mx[i],
		    mta_sts_mx_matches(r->st == MTA_STS_POLICY ? p : NULL, mx[i]) ? "yes" : "no");
}

static void
sts_print_json(struct ctl *c, const char *domain, const struct sts_run *r, int nmx, char **mx)
{
	struct json_object *o = json_object_new_object(), *pol, *arr, *m;
	const struct mta_sts_policy *p = &r->policy;

	json_object_object_add(o, "domain", json_object_new_string(domain));
	json_object_object_add(o, "status", json_object_new_string(mta_sts_status_str(r->st)));
	json_object_object_add(o, "detail", json_object_new_string(r->detail));
	if (r->st == MTA_STS_POLICY) {
		pol = json_object_new_object();
		json_object_object_add(
		    pol, "mode", json_object_new_string(mta_sts_mode_str(p->mode)));
		json_object_object_add(pol, "id", json_object_new_string(p->id));
		json_object_object_add(pol, "max_age", json_object_new_int64(p->max_age));
		json_object_object_add(pol, "fetched", json_object_new_int64((int64_t)p->fetched));
		arr = json_object_new_array();
		for (size_t i = 0; i < p->nmx; i++)
			json_object_array_add(arr, json_object_new_string(p->mx[i]));
		json_object_object_add(pol, "mx", arr);
		json_object_object_add(o, "policy", pol);
	}
	m = json_object_new_object();
	for (int i = 0; i < nmx; i++)
		json_object_object_add(m, mx[i],
		    json_object_new_boolean(
		        mta_sts_mx_matches(r->st == MTA_STS_POLICY ? p : NULL, mx[i])));
	json_object_object_add(o, "matches", m);
	print_json(c, o);
	json_object_put(o);
}

/*
 * sts-fetch DOMAIN [MX...]: the MTA-STS module alone, on its own event loop,
 * with the cache folder delivery uses (so it also warms or refreshes it).
 */
static int
cmd_sts_fetch(struct ctl *c, int argc, char **argv)
{
	const struct config_relay *rl = c->relay;
	struct mta_sts_params sp = {
	    rl->mta_sts_cache, rl->mta_sts_ca_file, rl->mta_sts_port, rl->mta_sts_cache_size};
	struct sts_run r = {NULL, MTA_STS_TEMPFAIL, "no answer", {0}};
	struct dnsclient *dns = NULL;
	struct mta_sts *sts = NULL;
	int rc = RELAYCTL_EXIT_FAIL;

	if (argc < 2)
		return fail(c, RELAYCTL_EXIT_USAGE, "sts-fetch needs a domain");
	if ((r.base = event_base_new()) == NULL ||
	    (dns = sts_dns_new(r.base, c->opts->resolver)) == NULL ||
	    (sts = mta_sts_new(r.base, dns, &sp)) == NULL) {
		rc = fail(c, RELAYCTL_EXIT_FAIL, "cannot set up MTA-STS (see above)");
		goto out;
	}
	if (mta_sts_lookup(sts, argv[1], sts_fetch_cb, &r) == NULL) {
		rc = fail(c, RELAYCTL_EXIT_FAIL, "out of memory");
		goto out;
	}
	event_base_dispatch(r.base);
	if (c->opts->json)
		sts_print_json(c, argv[1], &r, argc - 2, argv + 2);
	else
		sts_print_text(c, argv[1], &r, argc - 2, argv + 2);
	rc = r.st == MTA_STS_TEMPFAIL ? RELAYCTL_EXIT_TEMPFAIL : 0;
out:
	mta_sts_policy_clear(&r.policy);
	mta_sts_free(sts);
	dnsclient_free(dns);
	if (r.base != NULL)
		event_base_free(r.base);
	return rc;
}

static const struct command {
	const char *name;
	int (*fn)(struct ctl *, int, char **);
	bool queue; /* opens the queue directory (pause/resume only talk to the daemon) */
} commands[] = {
    {"list", cmd_list, true},
    {"show", cmd_show, true},
    {"remove", cmd_remove, true},
    {"flush", cmd_flush, true},
    {"analyze", cmd_analyze, true},
    {"stats", cmd_stats, true},
    {"pause", cmd_pause, false},
    {"resume", cmd_pause, false},
    {"sts-fetch", cmd_sts_fetch, false},
};

/*
 * Find the command and run it; the queue is opened (never created) only for
 * the commands that read it, so pause and resume work without access to
 * the spool.
 */
int
relayctl_run(
    const struct config_relay *relay, const struct relayctl_opts *opts, int argc, char **argv)
{
	struct ctl c = {relay, opts, NULL};
	int rc;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		if (commands[i].queue &&
		    (c.queue = queue_open(relay->queue_directory, false)) == NULL) {
			/* queue_open logged why on stderr; --json wants it on stdout too. */
			if (opts->json)
				jsonout_error("cannot open the queue %s", relay->queue_directory);
			return RELAYCTL_EXIT_FAIL;
		}
		rc = commands[i].fn(&c, argc, argv);
		queue_close(c.queue);
		return rc;
	}
	return fail(&c, RELAYCTL_EXIT_USAGE, "unknown command '%s'", argv[0]);
}
