/* relayctl.c - smtp-relayctl commands on the queue directory and the control socket. */
#include "smtp-relay/relayctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/config.h"
#include "common/log.h"
#include "smtp-relay/control.h"
#include "smtp-relay/queue.h"

#define CTL_TIMEOUT_SEC 10
/* tmp/ files younger than this may be in use by a running daemon. */
#define CTL_STALE_AGE_SEC 3600

struct ctl {
	const struct config_relay *relay;
	const struct relayctl_opts *opts;
	struct queue *queue;
};

static void
print_json(const struct ctl *c, struct json_object *o)
{
	fprintf(c->opts->out, "%s\n",
	    json_object_to_json_string_ext(
	        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

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

static int
cmd_list(struct ctl *c, int argc, char **argv)
{
	struct list_ctx lc = {c, json_object_new_array(), json_object_new_array(), 0};
	struct json_object *o;
	int rc = RELAYCTL_EXIT_FAIL;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "smtp-relayctl: list takes no operand\n");
		rc = RELAYCTL_EXIT_USAGE;
		goto done;
	}
	if (queue_scan(c->queue, list_one, &lc) == -1)
		goto done;
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

static int
cmd_show(struct ctl *c, int argc, char **argv)
{
	struct queue_env *env;
	enum queue_status st;
	struct json_object *o;
	char *content;
	size_t len;

	if (argc != 2) {
		fprintf(stderr, "smtp-relayctl: usage: show ID\n");
		return RELAYCTL_EXIT_USAGE;
	}
	st = queue_load(c->queue, argv[1], &env, &content, &len);
	if (st != QUEUE_OK) {
		fprintf(stderr, "smtp-relayctl: %s: %s\n", argv[1], queue_strerror(st));
		return RELAYCTL_EXIT_FAIL;
	}
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

static bool
daemon_absent(int err)
{
	return err == ECONNREFUSED || err == ENOENT;
}

static int
print_reply(struct ctl *c, const char *what, struct json_object *r)
{
	struct json_object *ok, *err;

	if (c->opts->json)
		print_json(c, r);
	if (json_object_object_get_ex(r, "ok", &ok) && json_object_get_boolean(ok)) {
		if (!c->opts->json)
			fprintf(c->opts->out, "%s: ok\n", what);
		return 0;
	}
	json_object_object_get_ex(r, "error", &err);
	fprintf(stderr, "smtp-relayctl: %s: %s\n", what,
	    err != NULL ? json_object_get_string(err) : "refused");
	return RELAYCTL_EXIT_FAIL;
}

static int
cmd_remove(struct ctl *c, int argc, char **argv)
{
	char req[CONTROL_LINE_MAX];
	struct json_object *r;
	enum queue_status st;
	int rc;

	if (argc != 2 || !queue_id_valid(argv[1])) {
		fprintf(stderr, "smtp-relayctl: usage: remove ID (16 hex digits)\n");
		return RELAYCTL_EXIT_USAGE;
	}
	snprintf(req, sizeof(req), "remove %s", argv[1]);
	if ((r = control_call(c->relay->control_socket, req, CTL_TIMEOUT_SEC)) != NULL) {
		rc = print_reply(c, argv[1], r);
		json_object_put(r);
		return rc;
	}
	if (!daemon_absent(errno)) {
		fprintf(
		    stderr, "smtp-relayctl: %s: %s\n", c->relay->control_socket, strerror(errno));
		return RELAYCTL_EXIT_UNAVAILABLE;
	}
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

static int
cmd_flush(struct ctl *c, int argc, char **argv)
{
	char req[CONTROL_LINE_MAX];
	struct json_object *r;
	int rc;

	if (argc > 2 || (argc == 2 && !queue_id_valid(argv[1]))) {
		fprintf(stderr, "smtp-relayctl: usage: flush [ID]\n");
		return RELAYCTL_EXIT_USAGE;
	}
	snprintf(req, sizeof(req), "flush%s%s", argc == 2 ? " " : "", argc == 2 ? argv[1] : "");
	if ((r = control_call(c->relay->control_socket, req, CTL_TIMEOUT_SEC)) == NULL) {
		fprintf(stderr, "smtp-relayctl: flush: smtp-relayd does not answer on %s: %s\n",
		    c->relay->control_socket, strerror(errno));
		return RELAYCTL_EXIT_UNAVAILABLE;
	}
	rc = print_reply(c, argc == 2 ? argv[1] : "flush", r);
	json_object_put(r);
	return rc;
}

/* ---- pause and resume: the daemon's intake ---- */

static int
cmd_pause(struct ctl *c, int argc, char **argv)
{
	struct json_object *r;
	int rc;

	if (argc != 1) {
		fprintf(stderr, "smtp-relayctl: %s takes no operand\n", argv[0]);
		return RELAYCTL_EXIT_USAGE;
	}
	if ((r = control_call(c->relay->control_socket, argv[0], CTL_TIMEOUT_SEC)) == NULL) {
		fprintf(stderr, "smtp-relayctl: %s: smtp-relayd does not answer on %s: %s\n",
		    argv[0], c->relay->control_socket, strerror(errno));
		return RELAYCTL_EXIT_UNAVAILABLE;
	}
	rc = print_reply(c, argv[0], r);
	json_object_put(r);
	return rc;
}

/* ---- analyze ---- */

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

static bool
daemon_running(const struct ctl *c)
{
	struct json_object *r = control_call(c->relay->control_socket, "stats", 2);

	json_object_put(r);
	return r != NULL;
}

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

static int
cmd_analyze(struct ctl *c, int argc, char **argv)
{
	struct json_object *findings = json_object_new_array(), *o;
	struct queue_recovery rec;
	unsigned min_age = daemon_running(c) ? CTL_STALE_AGE_SEC : 0;
	int rc = RELAYCTL_EXIT_FAIL;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "smtp-relayctl: analyze takes no operand\n");
		rc = RELAYCTL_EXIT_USAGE;
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

/* "accepting: yes" or "accepting: no (reason: detail)" from the daemon's stats. */
static void
print_accepting(const struct ctl *c, struct json_object *d)
{
	struct json_object *a, *ok, *reason, *detail;

	if (d == NULL || !json_object_object_get_ex(d, "accepting", &a) ||
	    !json_object_object_get_ex(a, "ok", &ok))
		return;
	if (json_object_get_boolean(ok)) {
		fprintf(c->opts->out, "accepting: yes\n");
		return;
	}
	json_object_object_get_ex(a, "reason", &reason);
	json_object_object_get_ex(a, "detail", &detail);
	fprintf(c->opts->out, "accepting: no (%s: %s)\n", json_object_get_string(reason),
	    json_object_get_string(detail));
}

static int
cmd_stats(struct ctl *c, int argc, char **argv)
{
	struct stats_ctx sc = {c->queue, 0, 0, {0, 0, 0}, 0, 0};
	struct json_object *o = json_object_new_object(), *d;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "smtp-relayctl: stats takes no operand\n");
		json_object_put(o);
		return RELAYCTL_EXIT_USAGE;
	}
	queue_scan(c->queue, stats_one, &sc);
	d = control_call(c->relay->control_socket, "stats", 2);
	json_object_object_add(o, "queue", stats_json(&sc));
	json_object_object_add(o, "daemon", d);
	if (c->opts->json)
		print_json(c, o);
	else {
		fprintf(c->opts->out,
		    "queue: %zu messages, %" PRIu64 " bytes, recipients: "
		    "%zu pending, %zu delivered, %zu failed; %zu damaged\n",
		    sc.messages, sc.bytes, sc.rcpt[0], sc.rcpt[1], sc.rcpt[2], sc.damaged);
		print_accepting(c, d);
		fprintf(c->opts->out, "daemon: %s\n",
		    d != NULL ? json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN)
		              : "not running");
	}
	json_object_put(o);
	return 0;
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
};

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
		    (c.queue = queue_open(relay->queue_directory, false)) == NULL)
			return RELAYCTL_EXIT_FAIL;
		rc = commands[i].fn(&c, argc, argv);
		queue_close(c.queue);
		return rc;
	}
	fprintf(stderr, "smtp-relayctl: unknown command '%s'\n", argv[0]);
	return RELAYCTL_EXIT_USAGE;
}
