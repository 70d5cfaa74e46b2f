/*
 * smtp_server.h - the SMTP listener: accepts connections on libevent,
 * enforces max-sessions and max-sessions-per-client, owns the sessions
 * (smtp_session.h) and the counters the status endpoint shows.
 *
 * Everything runs in the thread of the event base given to smtp_server_new.
 */
#ifndef MXB_SMTP_SERVER_H
#define MXB_SMTP_SERVER_H

#include <stdint.h>

struct addr;
struct commit_pool;
struct config_relay;
struct event_base;
struct evbuffer;
struct intake;
struct json_object;
struct policy;
struct queue;
struct smtp_server;
struct smtp_session;

/* Counters since start (plain values; see docs/smtp-relay.md). */
struct smtp_server_stats {
	uint64_t connections;         /* accepted and served */
	uint64_t connections_refused; /* 421 at connect: a session limit or paused */
	uint64_t messages_queued;     /* 250 after DATA */
	uint64_t messages_refused;    /* 5xx/4xx after DATA (size, loop, line, queue) */
	uint64_t recipients_accepted;
	uint64_t recipients_refused;
	uint64_t relay_denied; /* recipients refused by the relay policy */
	uint64_t bytes_queued; /* content octets committed */
	uint64_t timeouts;
	uint64_t protocol_errors; /* bad commands, bare LF/CR, sequencing */
	uint64_t queue_errors;    /* commits that failed (451/452) */
	uint64_t mail_deferred;   /* MAIL refused 451/452: queue not writable, disk reserve */
};

/*
 * A server for `relay` (borrowed: must stay valid until the next
 * smtp_server_reconfigure or smtp_server_free), committing into `q`
 * (borrowed) through a commit pool of its own, and deciding with `p`
 * (owned from here on).  Returns NULL
 * (logged) on failure; `p` is freed then too.
 */
struct smtp_server *smtp_server_new(
    struct event_base *base, const struct config_relay *relay, struct queue *q, struct policy *p);

/* Listen on `a` (bound now, before privileges are dropped); 0 or -1 (logged). */
int smtp_server_listen(struct smtp_server *srv, const struct addr *a);

/* Swap in a new configuration and policy (takes ownership of p) after a reload. */
void smtp_server_reconfigure(
    struct smtp_server *srv, const struct config_relay *relay, struct policy *p);

/* Close every session and listener; NULL is a no-op. */
void smtp_server_free(struct smtp_server *srv);

/* Number of messages in the queue as this process knows it; adjust by delta. */
void smtp_server_queue_adjust(struct smtp_server *srv, long delta);

/*
 * Tell `fn` about every message committed from now on (delivery schedules
 * it); called on the loop's thread right after the 250.  fn NULL: nobody.
 */
typedef void (*smtp_server_queued_fn)(const char *id, void *arg);
void smtp_server_set_queued(struct smtp_server *srv, smtp_server_queued_fn fn, void *arg);

/* /status and /metrics callbacks (status_json_fn, status_metrics_fn); arg = srv. */
void smtp_server_status_json(struct json_object *root, void *arg);
void smtp_server_metrics(struct evbuffer *out, void *arg);

/*
 * Whether mail is taken now (intake.h): sessions ask it at MAIL, the control
 * socket pauses and resumes it.  Borrowed; lives as long as srv.
 */
struct intake *smtp_server_intake(struct smtp_server *srv);

/* ---- for smtp_session.c only ---- */

const struct config_relay *smtp_server_relay(const struct smtp_server *srv);
const struct policy *smtp_server_policy(const struct smtp_server *srv);
struct commit_pool *smtp_server_pool(struct smtp_server *srv);
struct smtp_server_stats *smtp_server_counters(struct smtp_server *srv);
/* A message was committed with this ID: passed on to the queued hook. */
void smtp_server_message_queued(struct smtp_server *srv, const char *id);
/* A session ends: the server forgets it (the session frees itself). */
void smtp_server_session_gone(struct smtp_server *srv, struct smtp_session *s);

#endif
