/* listener.c - TCP listeners that back off when accept() fails. */
#include "common/listener.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"

#define LISTENER_BACKOFF_SEC 1

struct listener {
	struct evconnlistener *l;
	evconnlistener_cb cb;	/* the owner's */
	void *arg;
	struct event *backoff;
	struct log_ratelimit rl;
	char what[16];
	int enabled;		/* what the owner wants */
};

static void
backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	if (l->enabled)
		evconnlistener_enable(l->l);
}

/* Both callbacks get this struct; the owner's callback gets its own arg. */
static void
accept_cb(struct evconnlistener *el, evutil_socket_t fd, struct sockaddr *sa, int len,
    void *arg)
{
	struct listener *l = arg;

	l->cb(el, fd, sa, len, l->arg);
}

static void
error_cb(struct evconnlistener *el, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = { LISTENER_BACKOFF_SEC, 0 };

	log_warnx_rl(&l->rl, "%s: accept: %s: pausing for %d s", l->what,
	    strerror(errno), LISTENER_BACKOFF_SEC);
	evconnlistener_disable(el);
	evtimer_add(l->backoff, &tv);
}

struct listener *
listener_new(struct event_base *base, const struct addr *a, evconnlistener_cb cb, void *arg,
    const char *what)
{
	struct listener *l = calloc(1, sizeof(*l));
	char where[ADDR_STRLEN];
	int fd;

	addr_str(a, where, sizeof(where));
	if (l == NULL || (l->backoff = evtimer_new(base, backoff_cb, l)) == NULL) {
		log_warnx("%s: %s: out of memory", what, where);
		free(l);
		return NULL;
	}
	snprintf(l->what, sizeof(l->what), "%s", what);
	l->cb = cb;
	l->arg = arg;
	l->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(1, 60);
	l->enabled = 1;
	fd = sock_bind(a, SOCK_STREAM, SOCK_F_LISTEN);
	if (fd == -1) {
		log_warn("%s: cannot listen on %s", what, where);
		goto fail;
	}
	/* Backlog 0: sock_bind already listens with its own backlog. */
	l->l = evconnlistener_new(base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (l->l == NULL) {
		log_warnx("%s: %s: cannot watch the socket", what, where);
		close(fd);
		goto fail;
	}
	evconnlistener_set_error_cb(l->l, error_cb);
	return l;
fail:
	listener_free(l);
	return NULL;
}

void
listener_enable(struct listener *l, int on)
{
	l->enabled = on;
	if (on)
		evconnlistener_enable(l->l);
	else
		evconnlistener_disable(l->l);
}

void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	if (l->l != NULL)
		evconnlistener_free(l->l);
	if (l->backoff != NULL)
		event_free(l->backoff);
	free(l);
}
