/* smtp_server.c - SMTP listeners, session limits, counters and status. */
#include "smtp-relay/smtp_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/listener.h"
#include "common/log.h"
#include "common/status_http.h"
#include "smtp-relay/address.h"
#include "smtp-relay/intake.h"
#include "smtp-relay/queue.h"
#include "smtp-relay/smtp_session.h"

struct session_entry {
	struct smtp_session *s;
	bool counted; /* false: refused at connect, only saying 421 */
	TAILQ_ENTRY(session_entry) link;
};

struct listener_entry {
	struct listener *l;
	struct smtp_server *srv;
	enum smtp_listener kind;
	SLIST_ENTRY(listener_entry) link;
};

struct smtp_server {
	struct event_base *base;
	struct queue *queue;
	struct intake *intake;
	/* What every session borrows; relay and policy replaced on reload. */
	struct smtp_session_ctx ctx;
	TAILQ_HEAD(, session_entry) sessions;
	SLIST_HEAD(, listener_entry) listeners;
	unsigned open;
	struct smtp_stats stats;
};

static void session_gone_cb(struct smtp_session *s, void *arg);

struct smtp_server *
smtp_server_new(struct event_base *base, const struct config_relay *relay, const struct policy *p,
    struct queue *q, struct disk_pool *pool, struct intake *intake)
{
	struct smtp_server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL) {
		log_warnx("smtp: out of memory");
		return NULL;
	}
	srv->base = base;
	srv->queue = q;
	srv->intake = intake;
	srv->ctx = (struct smtp_session_ctx){.relay = relay,
	    .policy = p,
	    .pool = pool,
	    .intake = intake,
	    .stats = &srv->stats,
	    .gone = session_gone_cb,
	    .gone_arg = srv};
	TAILQ_INIT(&srv->sessions);
	SLIST_INIT(&srv->listeners);
	return srv;
}

/* Sessions from the same host as `client`; authenticated ones are exempt
 * (a user's mail client may hold several connections from behind a NAT). */
static unsigned
sessions_from(const struct smtp_server *srv, const struct addr *client)
{
	const struct session_entry *e;
	unsigned n = 0;

	TAILQ_FOREACH(e, &srv->sessions, link)
		n += e->counted && !smtp_session_is_authenticated(e->s) &&
		    addr_equal_host(smtp_session_client(e->s), client);
	return n;
}

/* The 421 for a connection while paused or over a limit, or NULL to serve it. */
static const char *
limit_reply(const struct smtp_server *srv, const struct addr *client)
{
	if (intake_is_paused(srv->intake))
		return "421 4.3.2 Service not available, closing transmission channel";
	if (srv->open >= srv->ctx.relay->max_sessions)
		return "421 4.7.0 Error: too many connections, try again later";
	/* Trusted networks are exempt, as Postfix's smtpd_client_event_limit_exceptions
	 * = $mynetworks: an internal MTA sends with many parallel connections. */
	if (!policy_is_trusted(srv->ctx.policy, client) &&
	    sessions_from(srv, client) >= srv->ctx.relay->max_sessions_per_client)
		return "421 4.7.0 Error: too many connections from your address";
	return NULL;
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener_entry *le = arg;
	struct smtp_server *srv = le->srv;
	struct session_entry *e;
	const char *refuse;
	struct addr client;

	(void)l;
	evutil_make_socket_nonblocking(fd);
	if (addr_from_sockaddr(sa, (socklen_t)salen, &client) == -1) {
		close(fd);
		return;
	}
	refuse = limit_reply(srv, &client);
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		close(fd);
		return;
	}
	if ((e->s = smtp_session_new(&srv->ctx, srv->base, fd, &client, le->kind, refuse)) ==
	    NULL) {
		free(e);
		return;
	}
	TAILQ_INSERT_TAIL(&srv->sessions, e, link);
	if (refuse != NULL) {
		srv->stats.connections_refused++;
		return;
	}
	e->counted = true;
	srv->open++;
	srv->stats.connections++;
	intake_set_sessions(srv->intake, srv->open);
}

int
smtp_server_listen(struct smtp_server *srv, const struct addr *a, enum smtp_listener kind)
{
	static const char *const names[] = {"smtp", "submission", "smtps"};
	char buf[ADDR_STRLEN];
	struct listener_entry *le = calloc(1, sizeof(*le));

	if (le == NULL) {
		log_warnx("smtp: out of memory");
		return -1;
	}
	le->srv = srv;
	le->kind = kind;
	le->l = listener_open(srv->base, a, accept_cb, le, names[kind]);
	if (le->l == NULL) {
		free(le);
		return -1;
	}
	SLIST_INSERT_HEAD(&srv->listeners, le, link);
	log_info("%s: listening on %s", names[kind], addr_str(a, buf, sizeof(buf)));
	return 0;
}

void
smtp_server_set_tls(struct smtp_server *srv, struct tls_server *tls)
{
	srv->ctx.tls = tls;
}

void
smtp_server_set_auth(struct smtp_server *srv, struct auth *auth)
{
	srv->ctx.auth = auth;
}

void
smtp_server_reconfigure(
    struct smtp_server *srv, const struct config_relay *relay, const struct policy *p)
{
	srv->ctx.relay = relay;
	srv->ctx.policy = p;
}

void
smtp_server_free(struct smtp_server *srv)
{
	struct session_entry *e;
	struct listener_entry *le;

	if (srv == NULL)
		return;
	while ((le = SLIST_FIRST(&srv->listeners)) != NULL) {
		SLIST_REMOVE_HEAD(&srv->listeners, link);
		listener_close(le->l);
		free(le);
	}
	while ((e = TAILQ_FIRST(&srv->sessions)) != NULL) {
		TAILQ_REMOVE(&srv->sessions, e, link);
		smtp_session_free(e->s);
		free(e);
	}
	free(srv);
}

void
smtp_server_set_queued(struct smtp_server *srv, smtp_server_queued_fn fn, void *arg)
{
	srv->ctx.queued = fn;
	srv->ctx.queued_arg = arg;
}

struct intake *
smtp_server_intake(struct smtp_server *srv)
{
	return srv->intake;
}

/* A session ended by itself (smtp_session_ctx.gone): forget it; it frees itself. */
static void
session_gone_cb(struct smtp_session *s, void *arg)
{
	struct smtp_server *srv = arg;
	struct session_entry *e;

	TAILQ_FOREACH(e, &srv->sessions, link) {
		if (e->s == s) {
			TAILQ_REMOVE(&srv->sessions, e, link);
			srv->open -= e->counted;
			intake_set_sessions(srv->intake, srv->open);
			free(e);
			return;
		}
	}
}

/* ---- status ---- */

static const struct counter {
	const char *name;
	size_t off;
	const char *help;
} counters[] = {
#define C(n, h)                                                                                    \
	{                                                                                          \
#n, offsetof(struct smtp_stats, n), h                                              \
	}
    C(connections, "SMTP connections served"),
    C(connections_refused, "SMTP connections refused with 421 (session limits)"),
    C(messages_queued, "Messages queued (250 after DATA)"),
    C(messages_refused, "Messages refused after DATA"),
    C(recipients_accepted, "Recipients accepted"),
    C(recipients_refused, "Recipients refused"),
    C(relay_denied, "Recipients refused by the relay policy"),
    C(bytes_queued, "Content octets queued"),
    C(timeouts, "Sessions closed on a timeout"),
    C(protocol_errors, "SMTP protocol errors"),
    C(queue_errors, "Queue commits that failed"),
    C(mail_deferred, "MAIL refused with 451/452: queue not writable or below queue-min-free"),
    C(tls_sessions, "TLS handshakes completed (STARTTLS and smtps-listen)"),
    C(tls_failures, "TLS handshakes that failed"),
    C(auth_successes, "AUTH exchanges that succeeded (235)"),
    C(auth_failures, "AUTH exchanges that failed (535)"),
    C(auth_blocked, "AUTH refused with 421 after too many failures from the address"),
#undef C
};

static uint64_t
counter_value(const struct smtp_server *srv, const struct counter *c)
{
	uint64_t v;

	memcpy(&v, (const char *)&srv->stats + c->off, sizeof(v));
	return v;
}

void
smtp_server_status_json(struct json_object *root, void *arg)
{
	struct smtp_server *srv = arg;
	struct json_object *sessions = json_object_new_object();
	struct json_object *queue = json_object_new_object();
	struct json_object *ctr = json_object_new_object();

	json_object_object_add(sessions, "open", json_object_new_int64(srv->open));
	json_object_object_add(
	    sessions, "max", json_object_new_int64(srv->ctx.relay->max_sessions));
	json_object_object_add(sessions, "max_per_client",
	    json_object_new_int64(srv->ctx.relay->max_sessions_per_client));
	json_object_object_add(root, "sessions", sessions);
	json_object_object_add(
	    queue, "messages", json_object_new_int64((int64_t)queue_count(srv->queue)));
	json_object_object_add(queue, "spare_files_reused",
	    json_object_new_int64((int64_t)queue_spares_reused(srv->queue)));
	intake_space_json(srv->intake, queue);
	json_object_object_add(root, "queue", queue);
	intake_status_json(srv->intake, root);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		json_object_object_add(ctr, counters[i].name,
		    json_object_new_int64((int64_t)counter_value(srv, &counters[i])));
	json_object_object_add(root, "counters", ctr);
}

void
smtp_server_metrics(struct evbuffer *out, void *arg)
{
	struct smtp_server *srv = arg;
	char name[64];

	prom_family(out, "smtp_sessions_open", "gauge", "SMTP sessions open");
	prom_sample_u64(out, "smtp_sessions_open", NULL, srv->open);
	prom_family(out, "smtp_sessions_max", "gauge", "max-sessions");
	prom_sample_u64(out, "smtp_sessions_max", NULL, srv->ctx.relay->max_sessions);
	intake_metrics(srv->intake, out);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		snprintf(name, sizeof(name), "smtp_%s_total", counters[i].name);
		prom_family(out, name, "counter", counters[i].help);
		prom_sample_u64(out, name, NULL, counter_value(srv, &counters[i]));
	}
}
