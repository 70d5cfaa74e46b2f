/*
 * smtp_server.h - the SMTP listener: accepts connections on libevent,
 * enforces max-sessions and max-sessions-per-client, owns the sessions
 * (smtp_session.h) and the counters the status endpoint shows.  The relay
 * configuration, policy, queue, disk pool and intake are lent to it by
 * smtp-relayd.c.
 *
 * Everything runs in the thread of the event base given to smtp_server_new.
 */
#ifndef MXB_SMTP_SERVER_H
#define MXB_SMTP_SERVER_H

#include "smtp-relay/smtp_session.h"

struct addr;
struct config_relay;
struct disk_pool;
struct event_base;
struct evbuffer;
struct intake;
struct json_object;
struct policy;
struct queue;
struct smtp_server;
struct tls_server;
struct auth;

/*
 * A server for `relay` and `p` (both borrowed: they must stay valid until
 * the next smtp_server_reconfigure or smtp_server_free), whose sessions
 * commit into `q` through `pool` and ask `intake` whether mail is taken
 * (all three borrowed; free the server before the pool: its sessions
 * cancel their commits).  Returns NULL (logged) on failure.
 */
struct smtp_server *smtp_server_new(struct event_base *base, const struct config_relay *relay,
    const struct policy *p, struct queue *q, struct disk_pool *pool, struct intake *intake);

/* Listen on `a` (bound now, before privileges are dropped) for sessions of
 * `kind` (SMTP_LISTENER_SMTPS needs smtp_server_set_tls first); 0 or -1
 * (logged). */
int smtp_server_listen(struct smtp_server *srv, const struct addr *a, enum smtp_listener kind);

/* The inbound TLS context (borrowed; NULL: no TLS): STARTTLS is offered
 * and smtps listeners work once it is set. */
void smtp_server_set_tls(struct smtp_server *srv, struct tls_server *tls);

/* The AUTH credentials (borrowed; NULL: no AUTH). */
void smtp_server_set_auth(struct smtp_server *srv, struct auth *auth);

/* Swap in a new configuration and policy after a reload (borrowed as in
 * smtp_server_new); open sessions use them from their next command. */
void smtp_server_reconfigure(
    struct smtp_server *srv, const struct config_relay *relay, const struct policy *p);

/* Close every session and listener; NULL is a no-op. */
void smtp_server_free(struct smtp_server *srv);

/*
 * Tell `fn` about every message committed from now on (delivery schedules
 * it); called on the loop's thread right after the 250.  fn NULL: nobody.
 */
typedef void (*smtp_server_queued_fn)(const char *id, void *arg);
void smtp_server_set_queued(struct smtp_server *srv, smtp_server_queued_fn fn, void *arg);

/* /status and /metrics callbacks (status_json_fn, status_metrics_fn); arg = srv.
 * The queue's size is queue_count's. */
void smtp_server_status_json(struct json_object *root, void *arg);
void smtp_server_metrics(struct evbuffer *out, void *arg);

/* The intake given to smtp_server_new (borrowed): the control socket
 * pauses and resumes it. */
struct intake *smtp_server_intake(struct smtp_server *srv);

#endif
