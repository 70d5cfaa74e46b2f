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

/*
 * Guarded listeners.  libevent hands the error callback only the accept
 * callback's argument, so the guard is found by the listener pointer in a
 * short list (a handful of listeners per process), under a lock because
 * some programs run listeners on several threads.
 */
#define GUARD_PAUSE_SEC 1

struct listener_guard {
	struct evconnlistener *l;
	struct event *resume;
	char what[64];
	struct log_ratelimit rl;
	struct listener_guard *next;
};

static pthread_mutex_t guards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct listener_guard *guards;

static void
guard_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener_guard *g = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(g->l);
}

static void
guard_error_cb(struct evconnlistener *l, void *arg)
{
	struct timeval tv = {GUARD_PAUSE_SEC, 0};
	int err = EVUTIL_SOCKET_ERROR();
	struct listener_guard *g;

	(void)arg;
	pthread_mutex_lock(&guards_lock);
	for (g = guards; g != NULL && g->l != l; g = g->next)
		;
	pthread_mutex_unlock(&guards_lock);
	evconnlistener_disable(l);
	if (g == NULL)
		return;
	log_warnx_rl(&g->rl, "%s: accept: %s: pausing for %ds", g->what,
	    evutil_socket_error_to_string(err), GUARD_PAUSE_SEC);
	evtimer_add(g->resume, &tv);
}

int
listener_guard(struct evconnlistener *l, const char *what)
{
	struct listener_guard *g = calloc(1, sizeof(*g));
	struct log_ratelimit rl = LOG_RATELIMIT_INIT(5, 60);

	if (g == NULL ||
	    (g->resume = evtimer_new(evconnlistener_get_base(l), guard_resume_cb, g)) == NULL) {
		free(g);
		log_warnx("%s: out of memory", what);
		return -1;
	}
	g->l = l;
	g->rl = rl;
	snprintf(g->what, sizeof(g->what), "%s", what);
	pthread_mutex_lock(&guards_lock);
	g->next = guards;
	guards = g;
	pthread_mutex_unlock(&guards_lock);
	evconnlistener_set_error_cb(l, guard_error_cb);
	return 0;
}

void
listener_unguard(struct evconnlistener *l)
{
	struct listener_guard **pp, *g = NULL;

	pthread_mutex_lock(&guards_lock);
	for (pp = &guards; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->l == l) {
			g = *pp;
			*pp = g->next;
			break;
		}
	}
	pthread_mutex_unlock(&guards_lock);
	if (g == NULL)
		return;
	evconnlistener_set_error_cb(l, NULL);
	event_free(g->resume);
	free(g);
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
