/*
 * listener.h - a TCP listening socket on libevent that survives running out
 * of descriptors: when accept() fails (EMFILE, ENFILE, ENOBUFS, ...) it logs
 * (rate-limited), stops accepting for a second and tries again, instead of
 * spinning on a readable socket it cannot drain.
 */
#ifndef MXB_LISTENER_H
#define MXB_LISTENER_H

#include <event2/listener.h>

#include "common/addr.h"

struct event_base;
struct listener;

/*
 * Bind and listen on `a` now (before privileges are dropped) and hand every
 * accepted connection to cb on `base`.  `what` names the service in log
 * lines ("smtp", "dns").  Returns NULL with the reason logged.
 */
struct listener *listener_new(struct event_base *base, const struct addr *a,
    evconnlistener_cb cb, void *arg, const char *what);

/* Stop or resume accepting (e.g. at a session limit). */
void listener_enable(struct listener *l, int on);

void listener_free(struct listener *l);

#endif
