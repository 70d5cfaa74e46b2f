/* socketmap.c - Postfix socketmap server on top of the route planner. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/listener.h"
#include "common/log.h"
#include "resolver/resolver.h"
#include "resolver/routefmt.h"
#include "resolver/socketmap.h"

#define SOCKETMAP_NAME     "mxroute"
#define SOCKETMAP_TLS_NAME "tlspolicy"
/* Replies waiting for a client before its requests are no longer read. */
#define SOCKETMAP_OUTPUT_HIGH (64 * 1024)

struct sm_conn {
	struct socketmap *sm;
	struct bufferevent *bev;
	struct resolver_route *route;        /* the request being answered */
	char key[SOCKETMAP_REQUEST_MAX + 1]; /* its key, to ask again on reload */
	struct sm_conn *prev, *next;
};

struct socketmap {
	struct event_base *base;
	struct resolver *r;
	uint16_t port;
	struct evconnlistener *listener;
	struct sm_conn *conns;
	size_t nconns;
	struct log_ratelimit rl;
	socketmap_tls_fn tls_fn; /* "tlspolicy" lookups, or NULL */
	void *tls_arg;
};

static void conn_process(struct sm_conn *c);

int
socketmap_parse_request(
    const char *buf, size_t len, char *name, size_t namelen, char *key, size_t keylen)
{
	size_t n = 0, i = 0, digits;
	const char *data, *sp;

	while (i < len && buf[i] >= '0' && buf[i] <= '9') {
		n = n * 10 + (size_t)(buf[i] - '0');
		if (++i > 5 || n > SOCKETMAP_REQUEST_MAX)
			return -1;
	}
	digits = i;
	if (i == len)
		return 0;
	if (digits == 0 || buf[i] != ':' || (digits > 1 && buf[0] == '0'))
		return -1;
	if (len < i + 1 + n + 1)
		return 0;
	data = buf + i + 1;
	if (data[n] != ',' || memchr(data, '\0', n) != NULL)
		return -1;
	sp = memchr(data, ' ', n);
	if (sp == NULL || sp == data || (size_t)(sp - data) >= namelen ||
	    n - (size_t)(sp - data) - 1 >= keylen || sp + 1 == data + n)
		return -1;
	memcpy(name, data, (size_t)(sp - data));
	name[sp - data] = '\0';
	memcpy(key, sp + 1, n - (size_t)(sp - data) - 1);
	key[n - (size_t)(sp - data) - 1] = '\0';
	return (int)(i + 1 + n + 1);
}

static void
conn_free(struct sm_conn *c)
{
	struct socketmap *sm = c->sm;

	resolver_route_cancel(c->route);
	bufferevent_free(c->bev);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		sm->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	sm->nconns--;
	free(c);
}

static void
conn_reply(struct sm_conn *c, const char *text)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "%zu:%s,", strlen(text), text);
}

static void
route_cb(struct route_result *res, void *arg)
{
	struct sm_conn *c = arg;
	char reply[SOCKETMAP_REPLY_MAX];

	c->route = NULL;
	routefmt_postfix(res, c->sm->port, reply, sizeof(reply));
	resolver_result_free(res);
	conn_reply(c, reply);
	conn_process(c); /* the next pipelined request, if any */
}

/* A key we do not route: ".parent" lookups, bare local parts. */
static bool
key_is_routable(const char *key)
{
	const char *at = strrchr(key, '@'), *d = at != NULL ? at + 1 : key;

	return d[0] == '[' || (d[0] != '.' && d[0] != '\0' && strchr(d, '.') != NULL);
}

/*
 * Answer the complete requests in the input, one at a time, in a loop (a
 * recursion per pipelined request overflowed the stack).  Input is read
 * only while it can be answered: not while a lookup is in flight, not while
 * more than SOCKETMAP_OUTPUT_HIGH of replies wait for a client that does not
 * read them; so a connection holds at most one request and that much output.
 */
static void
conn_process(struct sm_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char name[64], key[SOCKETMAP_REQUEST_MAX + 1];
	size_t len;
	const char *buf;
	int used;

	while (c->route == NULL && evbuffer_get_length(out) < SOCKETMAP_OUTPUT_HIGH &&
	    (len = evbuffer_get_length(in)) > 0) {
		if (len > SOCKETMAP_REQUEST_MAX + 8)
			len = SOCKETMAP_REQUEST_MAX + 8;
		buf = (const char *)evbuffer_pullup(in, (ssize_t)len);
		used = socketmap_parse_request(buf, len, name, sizeof(name), key, sizeof(key));
		if (used == 0)
			break;
		if (used < 0) {
			log_warnx_rl(&c->sm->rl, "socketmap: malformed request: closing");
			conn_free(c);
			return;
		}
		evbuffer_drain(in, (size_t)used);
		if (c->sm->tls_fn != NULL && strcmp(name, SOCKETMAP_TLS_NAME) == 0) {
			char reply[512];

			c->sm->tls_fn(key, reply, sizeof(reply), c->sm->tls_arg);
			conn_reply(c, reply);
		} else if (strcmp(name, SOCKETMAP_NAME) != 0)
			conn_reply(c, "PERM unknown map name (only \"" SOCKETMAP_NAME "\")");
		else if (!key_is_routable(key))
			conn_reply(c, "NOTFOUND ");
		else if ((c->route = resolver_route(c->sm->r, key, 0, route_cb, c)) == NULL)
			conn_reply(c, "TEMP out of memory");
		else
			snprintf(c->key, sizeof(c->key), "%s", key);
	}
	if (c->route != NULL || evbuffer_get_length(out) >= SOCKETMAP_OUTPUT_HIGH)
		bufferevent_disable(c->bev, EV_READ);
	else
		bufferevent_enable(c->bev, EV_READ);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

/* The replies were written: take the next requests. */
static void
write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct socketmap *sm = arg;
	struct sm_conn *c;
	struct timeval idle = {SOCKETMAP_IDLE_TIMEOUT, 0};

	(void)l;
	(void)sa;
	(void)salen;
	if (sm->nconns >= SOCKETMAP_MAX_CLIENTS || (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx_rl(&sm->rl, "socketmap: too many connections: closing one");
		close(fd);
		return;
	}
	c->sm = sm;
	c->bev = bufferevent_socket_new(sm->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = sm->conns;
	if (sm->conns != NULL)
		sm->conns->prev = c;
	sm->conns = c;
	sm->nconns++;
}

struct socketmap *
socketmap_new(struct event_base *base, struct resolver *r, const struct addr *listen,
    uint16_t smtp_port, char *err, size_t errlen)
{
	struct socketmap *sm = calloc(1, sizeof(*sm));
	char a[ADDR_STRLEN];
	int fd;

	if (sm == NULL) {
		snprintf(err, errlen, "socketmap: out of memory");
		return NULL;
	}
	sm->base = base;
	sm->r = r;
	sm->port = smtp_port;
	sm->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 60);
	if ((fd = sock_bind(listen, SOCK_STREAM, SOCK_F_LISTEN)) == -1) {
		snprintf(err, errlen, "socketmap: %s: %s", addr_str(listen, a, sizeof(a)),
		    strerror(errno));
		free(sm);
		return NULL;
	}
	sm->listener = evconnlistener_new(base, accept_cb, sm, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (sm->listener == NULL) {
		snprintf(err, errlen, "socketmap: cannot listen");
		close(fd);
		free(sm);
		return NULL;
	}
	/* Out of descriptors: pause accepting, do not spin. */
	if (listener_guard(sm->listener, "socketmap") == -1) {
		snprintf(err, errlen, "socketmap: out of memory");
		evconnlistener_free(sm->listener);
		free(sm);
		return NULL;
	}
	return sm;
}

void
socketmap_set_resolver(struct socketmap *sm, struct resolver *r)
{
	sm->r = r;
	for (struct sm_conn *c = sm->conns; c != NULL; c = c->next) {
		if (c->route == NULL)
			continue;
		resolver_route_cancel(c->route);
		c->route = resolver_route(r, c->key, 0, route_cb, c);
		if (c->route == NULL)
			conn_reply(c, "TEMP out of memory");
	}
}

void
socketmap_free(struct socketmap *sm)
{
	if (sm == NULL)
		return;
	while (sm->conns != NULL)
		conn_free(sm->conns);
	listener_unguard(sm->listener);
	evconnlistener_free(sm->listener);
	free(sm);
}

void
socketmap_set_tls_policy(struct socketmap *sm, socketmap_tls_fn fn, void *arg)
{
	sm->tls_fn = fn;
	sm->tls_arg = arg;
}
