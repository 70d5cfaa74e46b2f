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
struct listener;

/*
 * A guarded listener owned by its caller.  Its guard (pause timer, rate
 * limiter, service name) travels as libevent's callback argument, so no
 * process-wide list is searched or locked: use these for every listener
 * you make.
 *
 * listener_open binds and listens on `a` now (before privileges are
 * dropped); listener_open_fd takes a socket already bound and listening
 * and owns it from the call on (closed on failure too).  Every accepted
 * connection goes to cb(<the evconnlistener>, fd, …, arg) on `base`.
 * `what` names the service in log lines ("smtp", "dns").  NULL with the
 * reason logged.  Each listener is used by the thread of its base only.
 */
struct listener *listener_open(struct event_base *base, const struct addr *a, evconnlistener_cb cb,
    void *arg, const char *what);
struct listener *listener_open_fd(
    struct event_base *base, int fd, evconnlistener_cb cb, void *arg, const char *what);

/* The libevent listener (borrowed), e.g. for evconnlistener_get_fd. */
struct evconnlistener *listener_evconn(const struct listener *l);

/* Stop listening, close the socket and free; NULL is a no-op. */
void listener_close(struct listener *l);

/*
 * The older interface, kept until its callers move to the one above: the
 * guard of a listener made here or elsewhere is found by the listener
 * pointer in a process-wide list, under a lock.
 *
 * listener_new: as listener_open, but returns libevent's listener; free
 * it with listener_free (unguard and free; NULL is a no-op).
 */
struct evconnlistener *listener_new(struct event_base *base, const struct addr *a,
    evconnlistener_cb cb, void *arg, const char *what);
void listener_free(struct evconnlistener *l);

/*
 * Guard a listener made elsewhere (evhttp's, via
 * evhttp_bound_socket_get_listener, whose callback argument is not ours
 * to choose; a unix control socket): sets its error callback.  Call
 * listener_unguard before the listener is freed (a no-op for a listener
 * never guarded).  0 or -1 (logged).  Thread-safe.
 */
int listener_guard(struct evconnlistener *l, const char *what);
void listener_unguard(struct evconnlistener *l);

#endif
