/* status_http.c - GET /status (JSON) and GET /metrics (Prometheus) on evhttp. */
#include "common/status_http.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "common/jsonout.h"
#include "common/listener.h"
#include "common/log.h"

/*
 * Connections held at once; at the cap the oldest is closed to make room, so
 * idle or slow clients can delay a new request but never shut it out.
 */
#define STATUS_HTTP_MAX_CONNS 32
/* Seconds a connection has to send a whole request, from its accept or its
 * previous reply, and to read the reply: a client that trickles bytes is
 * closed all the same (evhttp's own timeout restarts on every byte). */
#define STATUS_HTTP_TIMEOUT_SEC 5

/* One connection, known from its bufferevent (evhttp_set_bevcb). */
struct status_conn {
	struct status_http *sh;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* NULL until adopted */
	struct event *timer;             /* adopt at once, then the deadline */
	TAILQ_ENTRY(status_conn) link;   /* oldest first */
};

struct status_http {
	struct event_base *base;
	TAILQ_HEAD(, status_conn) conns;
	unsigned nconns;
	struct evhttp *http;
	struct evconnlistener *listener; /* evhttp's, guarded */
	struct addr bound;
	char program[32];
	time_t started;
	status_json_fn json_cb;
	status_metrics_fn metrics_cb;
	void *arg;
};

void
prom_family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(
	    out, "# HELP mxbroker_%s %s\n# TYPE mxbroker_%s %s\n", name, help, name, type);
}

void
prom_sample(struct evbuffer *out, const char *name, const char *labels, double value)
{
	if (labels != NULL && labels[0] != '\0')
		evbuffer_add_printf(out, "mxbroker_%s{%s} %.15g\n", name, labels, value);
	else
		evbuffer_add_printf(out, "mxbroker_%s %.15g\n", name, value);
}

void
prom_sample_u64(struct evbuffer *out, const char *name, const char *labels, uint64_t value)
{
	if (labels != NULL && labels[0] != '\0')
		evbuffer_add_printf(out, "mxbroker_%s{%s} %" PRIu64 "\n", name, labels, value);
	else
		evbuffer_add_printf(out, "mxbroker_%s %" PRIu64 "\n", name, value);
}

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *type,
    struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

static void
serve_status(struct status_http *sh, struct evhttp_request *req, struct evbuffer *body)
{
	struct json_object *root = json_object_new_object();
	const char *text;

	json_object_object_add(root, "program", json_object_new_string(sh->program));
	json_object_object_add(root, "version", json_object_new_string(MXB_VERSION));
	json_object_object_add(root, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(
	    root, "uptime_seconds", json_object_new_int64((int64_t)(time(NULL) - sh->started)));
	if (sh->json_cb != NULL)
		sh->json_cb(root, sh->arg);
	text = jsonout_text(root, true);
	evbuffer_add(body, text, strlen(text));
	evbuffer_add(body, "\n", 1);
	json_object_put(root);
	reply(req, HTTP_OK, "OK", "application/json", body);
}

static void
serve_metrics(struct status_http *sh, struct evhttp_request *req, struct evbuffer *body)
{
	char labels[96];

	snprintf(labels, sizeof(labels), "program=\"%s\",version=\"%s\"", sh->program, MXB_VERSION);
	prom_family(body, "build_info", "gauge", "Program and version; always 1.");
	prom_sample(body, "build_info", labels, 1);
	prom_family(body, "start_time_seconds", "gauge", "Unix time the daemon started.");
	prom_sample_u64(body, "start_time_seconds", NULL, (uint64_t)sh->started);
	if (sh->metrics_cb != NULL)
		sh->metrics_cb(body, sh->arg);
	reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
}

/* ---- connection cap and deadlines ---- */

static void
conn_forget(struct status_conn *c)
{
	TAILQ_REMOVE(&c->sh->conns, c, link);
	c->sh->nconns--;
	event_free(c->timer);
	free(c);
}

/* evhttp frees the connection (its end, our deadline or the cap). */
static void
conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	conn_forget(arg);
}

static void
conn_arm(struct status_conn *c)
{
	struct timeval tv = {STATUS_HTTP_TIMEOUT_SEC, 0};

	event_add(c->timer, &tv);
}

/* Close the oldest adopted connections until the cap holds. */
static void
conns_trim(struct status_http *sh)
{
	struct status_conn *c, *next;

	for (c = TAILQ_FIRST(&sh->conns); c != NULL && sh->nconns > STATUS_HTTP_MAX_CONNS;
	     c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->evcon != NULL)
			evhttp_connection_free(c->evcon); /* conn_closed_cb frees c */
	}
}

/*
 * First run, right after evhttp's accept built the connection around our
 * bufferevent (before any of its I/O can run): learn the connection, which
 * is the bufferevent's callback argument, then enforce the cap.  Later runs
 * are the deadline.
 */
static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct status_conn *c = arg;
	void *evcon = NULL;

	(void)fd;
	(void)what;
	if (c->evcon != NULL) {
		evhttp_connection_free(c->evcon); /* conn_closed_cb frees c */
		return;
	}
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
	if (evcon == NULL) {
		conn_forget(c);
		return;
	}
	c->evcon = evcon;
	evhttp_connection_set_closecb(c->evcon, conn_closed_cb, c);
	conn_arm(c);
	conns_trim(c->sh);
}

/* evhttp's accept asks for the bufferevent of a new connection: note it. */
static struct bufferevent *
conn_bev_cb(struct event_base *base, void *arg)
{
	struct status_http *sh = arg;
	struct status_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->sh = sh;
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(base, conn_timer_cb, c);
	if (c->bev == NULL || c->timer == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return NULL; /* evhttp makes its own: served, not counted */
	}
	TAILQ_INSERT_TAIL(&sh->conns, c, link);
	sh->nconns++;
	event_active(c->timer, EV_TIMEOUT, 0);
	return c->bev;
}

/* A request arrived whole: its connection gets a new deadline for the reply
 * and the next request. */
static void
conn_request_seen(struct status_http *sh, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct status_conn *c;

	TAILQ_FOREACH(c, &sh->conns, link)
		if (c->evcon == evcon && evcon != NULL) {
			conn_arm(c);
			return;
		}
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct status_http *sh = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evbuffer *body = evbuffer_new();

	conn_request_seen(sh, req);
	if (body == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evbuffer_add_printf(body, "only GET is served here\n");
		reply(req, 405, "Method Not Allowed", "text/plain", body);
	} else if (path != NULL && strcmp(path, "/status") == 0) {
		serve_status(sh, req, body);
	} else if (path != NULL && strcmp(path, "/metrics") == 0) {
		serve_metrics(sh, req, body);
	} else {
		evbuffer_add_printf(body, "not found; try /status or /metrics\n");
		reply(req, HTTP_NOTFOUND, "Not Found", "text/plain", body);
	}
	evbuffer_free(body);
}

struct status_http *
status_http_new(struct event_base *base, const struct addr *listen, const char *program,
    status_json_fn json_cb, status_metrics_fn metrics_cb, void *arg)
{
	struct status_http *sh = calloc(1, sizeof(*sh));
	struct evhttp_bound_socket *bound;
	char where[ADDR_STRLEN];
	int fd;

	addr_str(listen, where, sizeof(where));
	if (sh == NULL) {
		log_warnx("status: %s: out of memory", where);
		return NULL;
	}
	sh->base = base;
	TAILQ_INIT(&sh->conns);
	snprintf(sh->program, sizeof(sh->program), "%s", program);
	sh->started = time(NULL);
	sh->json_cb = json_cb;
	sh->metrics_cb = metrics_cb;
	sh->arg = arg;
	fd = sock_bind(listen, SOCK_STREAM, SOCK_F_LISTEN);
	if (fd == -1) {
		log_warn("status: cannot listen on %s", where);
		goto fail;
	}
	if (sock_local_addr(fd, &sh->bound) == -1)
		sh->bound = *listen;
	sh->http = evhttp_new(base);
	if (sh->http == NULL || (bound = evhttp_accept_socket_with_handle(sh->http, fd)) == NULL) {
		log_warnx("status: %s: cannot start the HTTP server", where);
		close(fd);
		goto fail;
	}
	/* Out of descriptors, evhttp's listener would spin: pause it instead. */
	if (listener_guard(evhttp_bound_socket_get_listener(bound), "status") == -1)
		goto fail;
	sh->listener = evhttp_bound_socket_get_listener(bound);
	evhttp_set_allowed_methods(sh->http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	        EVHTTP_REQ_DELETE);
	evhttp_set_timeout(sh->http, STATUS_HTTP_TIMEOUT_SEC);
	evhttp_set_bevcb(sh->http, conn_bev_cb, sh);
	evhttp_set_max_headers_size(sh->http, 8192);
	evhttp_set_max_body_size(sh->http, 0);
	evhttp_set_gencb(sh->http, request_cb, sh);
	return sh;
fail:
	status_http_free(sh);
	return NULL;
}

const struct addr *
status_http_addr(const struct status_http *sh)
{
	return &sh->bound;
}

void
status_http_free(struct status_http *sh)
{
	if (sh == NULL)
		return;
	if (sh->listener != NULL)
		listener_unguard(sh->listener);
	if (sh->http != NULL)
		evhttp_free(sh->http); /* closes every connection: conn_closed_cb */
	while (!TAILQ_EMPTY(&sh->conns))
		conn_forget(TAILQ_FIRST(&sh->conns)); /* not adopted yet */
	free(sh);
}
