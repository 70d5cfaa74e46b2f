/*
 * ctlsock.h - a daemon's control socket and its client: a unix stream
 * socket where each connection carries one request line and gets one JSON
 * object line back ({"ok": true, ...} or {"ok": false, "error": "..."}),
 * then the daemon closes it.  Used by brokerd/brokerd-ctl; the pattern of
 * smtp-relayd/smtp-relayctl (smtp-relay/control.c).
 *
 * Server side runs on the caller's event_base (main thread); the client
 * side blocks.
 */
#ifndef MXB_COMMON_CTLSOCK_H
#define MXB_COMMON_CTLSOCK_H

#include <sys/types.h>

#define CTLSOCK_LINE_MAX  512       /* octets of one request, newline excluded */
#define CTLSOCK_REPLY_MAX (1 << 22) /* octets of one reply the client accepts */

struct ctlsock;
struct event_base;
struct json_object;

/* Who is on the other end of a request (SO_PEERCRED). */
struct ctlsock_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/*
 * Handle one request: `line` (NUL-terminated, no newline, at most
 * CTLSOCK_LINE_MAX octets, may be modified) from `peer`; fill `reply`
 * (an empty object, owned by the caller) with "ok" and the result or
 * "error".
 */
typedef void (*ctlsock_handler_fn)(
    char *line, const struct ctlsock_peer *peer, struct json_object *reply, void *arg);

/*
 * Serve the control socket at `path` on `base` (a stale socket there is
 * replaced).  Binds now, so call before privileges are dropped; the socket
 * is mode 0660 and, when `uid` is not -1, chowned to uid:gid (the run
 * user, who must be able to remove it at exit).  `what` names the daemon's
 * socket in log lines ("control").  NULL (logged) on failure.
 */
struct ctlsock *ctlsock_new(struct event_base *base, const char *path, int uid, int gid,
    ctlsock_handler_fn fn, void *arg, const char *what);

/* The socket's path (borrowed). */
const char *ctlsock_path(const struct ctlsock *c);

/* Close the listener and every connection, remove the socket file; NULL is a no-op. */
void ctlsock_free(struct ctlsock *c);

/*
 * Client side: send `request` (no newline) to the daemon at `path` and
 * return its reply (json_object_put it), or NULL with errno set:
 * ECONNREFUSED / ENOENT when no daemon listens, EINVAL for a request over
 * CTLSOCK_LINE_MAX, EPROTO for a reply that is not a JSON object, EAGAIN on
 * timeout.  Blocks at most about `timeout_sec` seconds per read.
 */
struct json_object *ctlsock_call(const char *path, const char *request, int timeout_sec);

#endif
