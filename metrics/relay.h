/*
 * relay.h - read sessions and capacity from the SMTP relay's /status.
 *
 * The relay (smtp-relayd) publishes `"sessions": {"open": N, "max": M}` at
 * the top level of its GET /status JSON: the modern IJOBCNT / IJOBLIM, and
 * `"accepting": {"ok": true}` or `{"ok": false, "reason": R, "detail": D}`:
 * whether it takes new mail right now.  metricd fetches it once per compute
 * interval on its event loop.
 */
#ifndef MXB_METRICS_RELAY_H
#define MXB_METRICS_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

struct event_base;
struct relay_probe;

/* Largest /status document accepted from the relay. */
#define RELAY_STATUS_MAX (256 * 1024)

/* The reasons smtp-relayd gives in accepting.reason. */
#define RELAY_REASON_FULL   "sessions-full"
#define RELAY_REASON_QUEUE  "queue-unwritable"
#define RELAY_REASON_DISK   "disk-reserve"
#define RELAY_REASON_PAUSED "paused"

struct relay_result {
	bool ok;        /* fetched and valid; the rest holds only then */
	bool timed_out; /* !ok: no answer in time (not refused, not invalid) */
	unsigned open;  /* sessions.open */
	unsigned max;   /* sessions.max */
	/*
	 * Why the relay takes no mail, as proto.h flags: METRIC_F_RELAY_FULL,
	 * _QUEUE_FAIL, _DISK_RESERVE or _PAUSED (also for a reason we do not
	 * know); 0 when it accepts.
	 */
	uint16_t unavailable;
	char reason[32];  /* accepting.reason as sent (printable ASCII), or "" */
	char detail[128]; /* accepting.detail, printable ASCII, maybe cut; or "" */
	char error[128];  /* when !ok: why, for /status and the log */
};

/*
 * The validating function for the relay's answer: parse a /status body.
 * Fills r and returns 0, or -1 (r->error says why) when the body is not
 * JSON, lacks integer sessions.open / sessions.max in 0..2^31-1, or has an
 * `accepting` that is not an object with a boolean `ok` (and string
 * `reason`/`detail` when present).  No `accepting` (older relays) means
 * accepting; sessions.open >= sessions.max > 0 means full either way.
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
