/*
 * intake.h - whether smtp-relayd can take mail right now ("accepting"), for
 * the SMTP server, GET /status, /metrics and metricd (docs/smtp-relay.md).
 *
 * Not accepting, in this order of priority when several apply:
 *   queue-unwritable  the last commit failed with a storage error and none
 *                     succeeded since, or the periodic probe (queue_probe)
 *                     fails or has hung;
 *   disk-reserve      the queue's file system has less than queue-min-free
 *                     octets available;
 *   queue-full        the queue holds queue-max-messages messages or more;
 *   paused            the operator said `smtp-relayctl pause`;
 *   sessions-full     max-sessions sessions are open.
 *
 * The state is recomputed at most once a second from values cached here
 * (the probe and statvfs run on the disk pool, never on the loop), and on
 * pause/resume; each transition is logged once.  Everything but the probe
 * runs on the loop's thread.
 */
#ifndef MXB_INTAKE_H
#define MXB_INTAKE_H

#include <stdbool.h>

struct disk_pool;
struct config_relay;
struct event_base;
struct evbuffer;
struct json_object;
struct queue;
struct queue_env;
struct intake;

enum intake_reason {
	INTAKE_OK,
	INTAKE_QUEUE_UNWRITABLE,
	INTAKE_DISK_RESERVE,
	INTAKE_QUEUE_FULL,
	INTAKE_PAUSED,
	INTAKE_SESSIONS_FULL,
};
#define INTAKE_REASON_COUNT 6

/* "ok", "queue-unwritable", "disk-reserve", "queue-full", "paused",
 * "sessions-full". */
const char *intake_reason_name(enum intake_reason r);

/*
 * Watch `q` through probes run on `pool` (both borrowed; the pool must be
 * freed before the intake, so that no probe still runs) under `relay`
 * (borrowed until intake_reconfigure or intake_free).  The first probe runs
 * once the loop runs, i.e. after the privilege drop.  NULL (logged) on
 * failure.
 */
struct intake *intake_new(struct event_base *base, struct queue *q, struct disk_pool *pool,
    const struct config_relay *relay);

/* NULL is a no-op. */
void intake_free(struct intake *in);

void intake_reconfigure(struct intake *in, const struct config_relay *relay);

/* The number of SMTP sessions open now (cheap: stored; recomputed only
 * when it ends a sessions-full state). */
void intake_set_sessions(struct intake *in, unsigned open);

/* A disk_pool observer (disk_pool_set_observer; arg = the intake). */
void intake_commit_cb(int rc, int err, const struct queue_env *env, void *arg);

/*
 * A write into the queue failed with `err` outside a commit (a DATA spool):
 * a storage error (ENOSPC, EIO, EROFS...) marks the queue unwritable until
 * the next successful probe or commit, as a failed commit does.
 */
void intake_write_failed(struct intake *in, int err);

/* The operator's pause (true) or resume (false); takes effect at once. */
void intake_pause(struct intake *in, bool paused);
bool intake_is_paused(const struct intake *in);

/*
 * The cached state; *detail (when detail is not NULL) gets a borrowed
 * human text such as "100 of 100 sessions open", "" when accepting.
 */
enum intake_reason intake_state(const struct intake *in, const char **detail);

/* "accepting": {"ok": true} or {"ok": false, "reason": ..., "detail": ...}
 * added to root; and the smtp_accepting / smtp_not_accepting families. */
void intake_status_json(const struct intake *in, struct json_object *root);
void intake_metrics(const struct intake *in, struct evbuffer *out);

/* Available octets at the last look (0 before the first), queue-min-free and
 * queue-max-messages. */
void intake_space_json(const struct intake *in, struct json_object *queue);

#endif
