/*
 * listener.h - TCP listening sockets on libevent that survive running out of
 * descriptors.  Without an error callback, libevent retries a failing
 * accept() (EMFILE, ENFILE, ENOBUFS, ...) at once, forever, logging each
 * time: a busy loop that fills the disk.  A guarded listener logs
 * (rate-limited), pauses for a second and tries again.
 */
#ifndef MXB_LISTENER_H
#define MXB_LISTENER_H

#include <event2/listener.h>

#include "common/addr.h"

struct event_base;

/*
 * Bind and listen on `a` now (before privileges are dropped) and hand every
 * accepted connection to cb(…, arg) on `base`, guarded.  `what` names the
 * service in log lines ("smtp", "dns").  Returns NULL with the reason logged.
 * Free with listener_free.
 */
struct evconnlistener *listener_new(struct event_base *base, const struct addr *a,
    evconnlistener_cb cb, void *arg, const char *what);

/* Unguard and free; NULL is a no-op. */
void listener_free(struct evconnlistener *l);

/*
 * Guard a listener made elsewhere (evhttp's, via
 * evhttp_bound_socket_get_listener; a unix control socket): sets its error
 * callback.  Call listener_unguard before the listener is freed (a no-op for
 * a listener never guarded).  0 or -1 (logged).  Thread-safe.
 */
int listener_guard(struct evconnlistener *l, const char *what);
void listener_unguard(struct evconnlistener *l);

#endif
