/*
 * relay.h - read sessions and capacity from the SMTP relay's /status.
 *
 * The relay (smtp-relayd) publishes `"sessions": {"open": N, "max": M}` at
 * the top level of its GET /status JSON: the modern IJOBCNT / IJOBLIM.
 * metricd fetches it once per compute interval on its event loop.
 */
#ifndef MXB_METRICS_RELAY_H
#define MXB_METRICS_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/addr.h"

struct event_base;
struct relay_probe;

/* Largest /status document accepted from the relay. */
#define RELAY_STATUS_MAX (256 * 1024)

struct relay_result {
	bool ok;
	unsigned open;   /* sessions.open */
	unsigned max;    /* sessions.max */
	char error[128]; /* when !ok: why, for /status and the log */
};

/*
 * The validating function for the relay's answer: parse a /status body.
 * Fills r (ok, open, max; or error) and returns 0, or -1 when the body is
 * not JSON or lacks integer sessions.open / sessions.max in 0..2^31-1.
 */
int relay_status_parse(const char *body, size_t len, struct relay_result *r);

typedef void (*relay_done_cb)(const struct relay_result *r, void *arg);

/* A reusable client for GET /status at `where`; NULL on failure (logged). */
struct relay_probe *relay_probe_new(struct event_base *base, const struct addr *where);

/*
 * Start one fetch; `done` is called exactly once from the loop.  Returns 0,
 * or -1 when a fetch is still running (nothing is called then).
 */
int relay_probe_start(struct relay_probe *rp, unsigned timeout_s, relay_done_cb done, void *arg);

bool relay_probe_busy(const struct relay_probe *rp);

/* Free the client; a running fetch ends without its callback.  NULL: no-op. */
void relay_probe_free(struct relay_probe *rp);

#endif
