/*
 * healthcheck.h - is the service itself alive, not only its metric agent:
 * an asynchronous TCP connect (`health-check tcp PORT`) or an SMTP banner
 * check (`health-check smtp PORT`: the first reply line must be a 220; the
 * check then says QUIT and closes).  Runs on the caller's event_base.
 */
#ifndef MXB_BROKER_HEALTHCHECK_H
#define MXB_BROKER_HEALTHCHECK_H

#include <stdbool.h>

#include "common/config.h"

struct event_base;
struct healthcheck;

#define HEALTHCHECK_WHY_LEN 96

/*
 * Called once per check with the outcome; `why` says what failed ("connect:
 * Connection refused", "banner 554 ...", "timeout") or is "" on success.
 * Valid only during the call.  The callback may start another check on the
 * same healthcheck.
 */
typedef void (*healthcheck_cb)(bool ok, const char *why, void *arg);

/* A reusable checker for one target; NULL on out of memory. */
struct healthcheck *healthcheck_new(struct event_base *base, healthcheck_cb cb, void *arg);

/*
 * Start a check of `kind` (TCP or SMTP) against `target` (address and port)
 * with a deadline of timeout_ms.  A check still running is abandoned first
 * (its callback never runs).  Returns 0; -1 when the socket cannot be
 * created (the callback has then already been called with ok = false).
 */
int healthcheck_start(struct healthcheck *hc, enum config_health kind, const struct addr *target,
    unsigned timeout_ms);

/* True while a check is in flight. */
bool healthcheck_is_running(const struct healthcheck *hc);

/* Abandon any running check and free; NULL is a no-op. */
void healthcheck_free(struct healthcheck *hc);

#endif
