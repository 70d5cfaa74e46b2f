/*
 * socketmap.h - a Postfix socketmap(5)-protocol server that answers
 * transport_maps lookups with the resolver's routes, so a Postfix relay
 * routes exactly as mxbroker does:
 *
 *   transport_maps = socketmap:inet:127.0.0.1:PORT:mxroute
 *
 * Requests and replies are netstrings ("LEN:DATA,"); a request is
 * "NAME KEY", the map NAME is "mxroute", KEY an address or domain; or,
 * when a TLS policy answerer is set (socketmap_set_tls_policy), the map
 * "tlspolicy" answers smtp_tls_policy_maps lookups:
 *
 *   smtp_tls_policy_maps = socketmap:inet:127.0.0.1:PORT:tlspolicy
 * Connections are persistent; requests on one are answered in order.
 */
#ifndef MXB_SOCKETMAP_H
#define MXB_SOCKETMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

struct event_base;
struct resolver;
struct socketmap;

/* Longest request we accept (Postfix keys are addresses: 256 octets). */
#define SOCKETMAP_REQUEST_MAX 1024
/* Longest reply we send (Postfix accepts 100000). */
#define SOCKETMAP_REPLY_MAX 4096
/* Concurrent connections; more are closed at once. */
#define SOCKETMAP_MAX_CLIENTS 256
/* Seconds a connection may stay idle. */
#define SOCKETMAP_IDLE_TIMEOUT 300

/*
 * Listen on `listen` (TCP) and answer with routes from `r` (borrowed; must
 * outlive the server), SMTP hops on `smtp_port`.  NULL after writing the
 * reason into err.
 */
struct socketmap *socketmap_new(struct event_base *base, struct resolver *r,
    const struct addr *listen, uint16_t smtp_port, char *err, size_t errlen);

/*
 * Answer from `r` from now on (a reload).  Lookups in flight on the old
 * resolver are asked again on the new one, so the caller may free the old
 * resolver as soon as this returns.
 */
void socketmap_set_resolver(struct socketmap *sm, struct resolver *r);

/*
 * Answer "tlspolicy" lookups with fn(key, reply, len, arg): the reply is a
 * complete socketmap answer ("OK dane", "NOTFOUND ").  fn NULL: the map
 * name is unknown (PERM), as before.
 */
typedef void (*socketmap_tls_fn)(const char *key, char *reply, size_t len, void *arg);
void socketmap_set_tls_policy(struct socketmap *sm, socketmap_tls_fn fn, void *arg);

/* Close the listener and every connection; NULL is a no-op. */
void socketmap_free(struct socketmap *sm);

/*
 * The one parse-and-validate function of the protocol: read one netstring
 * request from buf[0..len).  Returns the octets it used (> 0) with the map
 * name and key copied out (NUL-terminated), 0 when more input is needed,
 * or -1 when the input is not a valid request (the connection is closed).
 */
int socketmap_parse_request(
    const char *buf, size_t len, char *name, size_t namelen, char *key, size_t keylen);

#endif
