/* listener.c - TCP listeners that pause when accept() fails. */
#include "common/listener.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "common/log.h"

#define GUARD_PAUSE_SEC 1
#define GUARD_WHAT_MAX  64

/* What pausing a listener needs: its timer, its name and its log budget. */
struct guard {
	struct evconnlistener *l;
	struct event *resume;
	char what[GUARD_WHAT_MAX];
	struct log_ratelimit rl;
};

/* An owned listener: the guard, and the caller's callback it forwards to. */
struct listener {
	struct guard g;
	evconnlistener_cb cb;
	void *arg;
};

static void
guard_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct guard *g = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(g->l);
}

/* Timer and rate limiter for l; -1 (logged) when out of memory. */
static int
guard_init(struct guard *g, struct evconnlistener *l, const char *what)
{
	struct log_ratelimit rl = LOG_RATELIMIT_INIT(5, 60);

	g->l = l;
	g->rl = rl;
	snprintf(g->what, sizeof(g->what), "%s", what);
	g->resume = evtimer_new(evconnlistener_get_base(l), guard_resume_cb, g);
	if (g->resume == NULL) {
		log_warnx("%s: out of memory", what);
		return -1;
	}
	return 0;
}

/*
 * accept() failed (errno-style error err): stop accepting for a second
 * rather than letting libevent retry at once, which would spin while the
 * descriptors are gone.
 */
static void
guard_pause(struct guard *g, int err)
{
	struct timeval tv = {GUARD_PAUSE_SEC, 0};

	log_warnx_rl(&g->rl, "%s: accept: %s: pausing for %ds", g->what,
	    evutil_socket_error_to_string(err), GUARD_PAUSE_SEC);
	evtimer_add(g->resume, &tv);
}

/* ---- owned listeners: the guard is libevent's callback argument ---- */

static void
listener_accept_cb(
    struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;

	l->cb(evl, fd, sa, salen, l->arg);
}

static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	evconnlistener_disable(evl);
	guard_pause(&l->g, err);
}

/* listener_open_fd; `where` (may be NULL) names the address in a log line. */
static struct listener *
listener_wrap(struct event_base *base, int fd, evconnlistener_cb cb, void *arg, const char *what,
    const char *where)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct evconnlistener *evl = NULL;

	if (l == NULL) {
		log_warnx("%s: out of memory", what);
		close(fd);
		return NULL;
	}
	l->cb = cb;
	l->arg = arg;
	/* Backlog 0: the socket already listens with its own backlog. */
	evl = evconnlistener_new(base, listener_accept_cb, l, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (evl == NULL) {
		if (where != NULL)
			log_warnx("%s: %s: cannot watch the socket", what, where);
		else
			log_warnx("%s: cannot watch the socket", what);
		close(fd);
		free(l);
		return NULL;
	}
	if (guard_init(&l->g, evl, what) == -1) {
		evconnlistener_free(evl);
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(evl, listener_error_cb);
	return l;
}

struct listener *
listener_open_fd(struct event_base *base, int fd, evconnlistener_cb cb, void *arg, const char *what)
{
	return listener_wrap(base, fd, cb, arg, what, NULL);
}

struct listener *
listener_open(struct event_base *base, const struct addr *a, evconnlistener_cb cb, void *arg,
    const char *what)
{
	char where[ADDR_STRLEN];
	int fd = sock_bind(a, SOCK_STREAM, SOCK_F_LISTEN);

	addr_str(a, where, sizeof(where));
	if (fd == -1) {
		log_warn("%s: cannot listen on %s", what, where);
		return NULL;
	}
	return listener_wrap(base, fd, cb, arg, what, where);
}

struct evconnlistener *
listener_evconn(const struct listener *l)
{
	return l->g.l;
}

void
listener_close(struct listener *l)
{
	if (l == NULL)
		return;
	event_free(l->g.resume);
	evconnlistener_free(l->g.l);
	free(l);
}

/*
 * ---- the older interface ----
 * libevent hands the error callback only the accept callback's argument,
 * which for a listener made elsewhere (evhttp's) is not ours: its guard
 * can only be found by the listener pointer, in a short list (a handful of
 * listeners per process), under a lock because some programs run
 * listeners on several threads.
 */
struct guard_entry {
	struct guard g;
	struct guard_entry *next;
};

static pthread_mutex_t guards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct guard_entry *guards;

static void
guard_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct guard_entry *e;

	(void)arg;
	pthread_mutex_lock(&guards_lock);
	for (e = guards; e != NULL && e->g.l != l; e = e->next)
		;
	pthread_mutex_unlock(&guards_lock);
	evconnlistener_disable(l);
	if (e != NULL)
		guard_pause(&e->g, err);
}

int
listener_guard(struct evconnlistener *l, const char *what)
{
	struct guard_entry *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		log_warnx("%s: out of memory", what);
		return -1;
	}
	if (guard_init(&e->g, l, what) == -1) {
		free(e);
		return -1;
	}
	pthread_mutex_lock(&guards_lock);
	e->next = guards;
	guards = e;
	pthread_mutex_unlock(&guards_lock);
	evconnlistener_set_error_cb(l, guard_error_cb);
	return 0;
}

void
listener_unguard(struct evconnlistener *l)
{
	struct guard_entry **pp, *e = NULL;

	pthread_mutex_lock(&guards_lock);
	for (pp = &guards; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->g.l == l) {
			e = *pp;
			*pp = e->next;
			break;
		}
	}
	pthread_mutex_unlock(&guards_lock);
	if (e == NULL)
		return;
	evconnlistener_set_error_cb(l, NULL);
	event_free(e->g.resume);
	free(e);
}

struct evconnlistener *
listener_new(struct event_base *base, const struct addr *a, evconnlistener_cb cb, void *arg,
    const char *what)
{
	char where[ADDR_STRLEN];
	struct evconnlistener *l;
	int fd = sock_bind(a, SOCK_STREAM, SOCK_F_LISTEN);

	addr_str(a, where, sizeof(where));
	if (fd == -1) {
		log_warn("%s: cannot listen on %s", what, where);
		return NULL;
	}
	/* Backlog 0: sock_bind already listens with its own backlog. */
	l = evconnlistener_new(base, cb, arg, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (l == NULL) {
		log_warnx("%s: %s: cannot watch the socket", what, where);
		close(fd);
		return NULL;
	}
	if (listener_guard(l, what) == -1) {
		evconnlistener_free(l);
		return NULL;
	}
	return l;
}

void
listener_free(struct evconnlistener *l)
{
	if (l == NULL)
		return;
	listener_unguard(l);
	evconnlistener_free(l);
}
