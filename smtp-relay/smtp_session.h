/*
 * smtp_session.h - one SMTP server session: an explicit state machine on a
 * bufferevent, one handler per command, DATA read line by line with
 * dot-unstuffing, bare-LF/CR refusal, size and loop checks, and the queue
 * commit before "250 queued"; STARTTLS (RFC 3207) or TLS from the first
 * octet, and AUTH PLAIN/LOGIN (RFC 4954) over TLS.
 *
 * A session knows nothing of the server that accepted it: it gets all it
 * needs in a struct smtp_session_ctx.  Everything runs on the thread of
 * the event base given to smtp_session_new.
 */
#ifndef MXB_SMTP_SESSION_H
#define MXB_SMTP_SESSION_H

#include <stdbool.h>
#include <stdint.h>

struct addr;
struct config_relay;
struct disk_pool;
struct event_base;
struct intake;
struct policy;
struct smtp_session;
struct tls_server;
struct auth;

/* Which kind of listener accepted the connection. */
enum smtp_listener {
	SMTP_LISTENER_SMTP,       /* listen (port 25): STARTTLS when TLS is configured */
	SMTP_LISTENER_SUBMISSION, /* submission-listen (587): STARTTLS, then AUTH */
	SMTP_LISTENER_SMTPS,      /* smtps-listen (465): TLS from the first octet, AUTH */
};

/* Counters since start (plain values; see docs/smtp-relay.md), kept by the
 * sessions and the server that accepts them. */
struct smtp_stats {
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
	uint64_t tls_sessions;    /* TLS handshakes completed (STARTTLS and smtps) */
	uint64_t tls_failures;    /* TLS handshakes that failed */
	uint64_t auth_successes;  /* AUTH that ended in 235 */
	uint64_t auth_failures;   /* AUTH that ended in 535 */
	uint64_t auth_blocked;    /* AUTH refused with 421: too many failures from the address */
};

/*
 * What a session uses, all borrowed for the session's whole life.  The
 * owner may replace relay and policy in place (a reload): each command
 * reads them anew.
 */
struct smtp_session_ctx {
	const struct config_relay *relay; /* hostname, limits, timeouts */
	const struct policy *policy;      /* who may relay to whom */
	struct disk_pool *pool;           /* where the message is committed */
	struct intake *intake;            /* asked at MAIL whether mail is taken */
	struct smtp_stats *stats;         /* counted into */
	struct tls_server *tls;           /* NULL: no TLS (no STARTTLS, no smtps) */
	struct auth *auth;                /* NULL: no AUTH (no auth-file) */
	/* A message was committed with this ID, after its 250; NULL: nobody. */
	void (*queued)(const char *id, void *arg);
	void *queued_arg;
	/* The session ended by itself and is about to free itself; NULL: nobody. */
	void (*gone)(struct smtp_session *s, void *arg);
	void *gone_arg;
};

/*
 * Start a session on the accepted socket `fd` (owned from here on: closed
 * with the session) for `client`, accepted by a listener of `kind`, and
 * send the banner (SMTP_LISTENER_SMTPS: after the TLS handshake, which
 * needs ctx->tls).  With `refuse` set the session only says `refuse` (a
 * complete "421 ..." line) and closes.  Returns NULL (fd closed) when out
 * of memory.  The session frees itself when it ends, after calling
 * ctx->gone.
 */
struct smtp_session *smtp_session_new(const struct smtp_session_ctx *ctx, struct event_base *base,
    int fd, const struct addr *client, enum smtp_listener kind, const char *refuse);

/* End the session now (server shutdown): its commit in flight is
 * cancelled, ctx->gone is not called.  NULL is a no-op. */
void smtp_session_free(struct smtp_session *s);

/* Has the client authenticated (AUTH, 235)?  Such sessions may relay
 * anywhere and do not count against max-sessions-per-client. */
bool smtp_session_is_authenticated(const struct smtp_session *s);

/* The client's address (borrowed). */
const struct addr *smtp_session_client(const struct smtp_session *s);

#endif
