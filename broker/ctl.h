/*
 * ctl.h - brokerd's control socket: the requests of brokerd-ctl (drain,
 * undrain, show), validated here and carried out by the clusters
 * (cluster.h).  Main thread only.
 *
 * Requests, one line each (CTLSOCK_LINE_MAX octets at most):
 *   drain CLUSTER MEMBER [REASON...]   REASON: printable text, up to
 *                                      CTL_REASON_MAX octets
 *   undrain CLUSTER MEMBER
 *   show [CLUSTER]
 * Reply: {"ok": true, ...} or {"ok": false, "error": "..."}.  Who drained
 * is the connecting user's name (SO_PEERCRED), never what the client says.
 */
#ifndef MXB_BROKER_CTL_H
#define MXB_BROKER_CTL_H

#include <stddef.h>

struct clusters;
struct config;
struct ctl;
struct event_base;

#define CTL_REASON_MAX 150 /* octets of a drain reason */

/*
 * The control socket's path for cfg: broker { control-socket } (default
 * <directory>/brokerd.sock).  0, or -1 when it does not fit buf.
 */
int ctl_socket_path(const struct config *cfg, char *buf, size_t len);

/*
 * Serve the control socket of cfg on base, acting on *clusters (the
 * pointer is read at every request: it may change, and may be NULL while
 * there is none).  Binds now (before privileges are dropped): mode 0660,
 * owned by options { user } when running as root.  NULL (logged).
 */
struct ctl *ctl_new(struct event_base *base, const struct config *cfg, struct clusters **clusters);

/* Close and remove the socket; NULL is a no-op. */
void ctl_free(struct ctl *c);

#endif
