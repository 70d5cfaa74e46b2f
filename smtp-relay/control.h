/*
 * control.h - the control socket between smtp-relayctl and smtp-relayd.
 *
 * A unix stream socket; each connection carries one request line
 * ("flush", "flush ID", "remove ID", "stats", "pause", "resume") and gets
 * one JSON object line back: {"ok": true, ...} or {"ok": false, "error":
 * "..."}; then the daemon closes it.  Requests are at most CONTROL_LINE_MAX octets.
 */
#ifndef MXB_CONTROL_H
#define MXB_CONTROL_H

#include <stdbool.h>

#define CONTROL_LINE_MAX 256

struct event_base;
struct json_object;
struct queue;
struct smtp_server;
struct control;

/*
 * Serve the control socket at `path` (a stale socket there is replaced) on
 * `base`, acting on `q` and `srv` (both borrowed).  Bind happens now, before
 * privileges are dropped; the socket is mode 0660 and, when `uid` is not
 * -1, chowned to uid/gid.  Returns NULL (logged) on failure.
 */
struct control *control_new(struct event_base *base, const char *path, struct queue *q,
    struct smtp_server *srv, int uid, int gid);

/* Remove the socket file and close every connection; NULL is a no-op. */
void control_free(struct control *c);

/*
 * What "flush [ID]" does: delivery installs its handler here (id is NULL for
 * the whole queue; returns 0, or -1 with ENOENT for an unknown ID).  Without
 * one, a flush is acknowledged and logged only.
 */
typedef int (*control_flush_fn)(const char *id, void *arg);
void control_set_flush(struct control *c, control_flush_fn fn, void *arg);

/*
 * Client side: send `request` (no newline) to the daemon at `path` and
 * return its reply (json_object_put it), or NULL with errno set
 * (ECONNREFUSED / ENOENT when no daemon listens) or EPROTO for a bad reply.
 * Blocks at most `timeout_sec` seconds.
 */
struct json_object *control_call(const char *path, const char *request, int timeout_sec);

#endif
