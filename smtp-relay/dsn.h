/*
 * dsn.h - delivery status notifications (RFC 3464): the multipart/report
 * a relay sends back when it gives up on recipients, and the enhanced
 * status codes (RFC 3463) taken from an SMTP reply.
 *
 * Pure functions: no I/O, usable from any thread.
 */
#ifndef MXB_DSN_H
#define MXB_DSN_H

#include <stddef.h>
#include <time.h>

struct queue_env;

/* One recipient in a report. */
struct dsn_rcpt {
	const char *address;    /* the recipient as queued */
	const char *action;     /* "failed" or "delayed" */
	const char *status;     /* "5.1.1" */
	const char *remote_mta; /* host name, or NULL (no SMTP peer) */
	const char *diagnostic; /* "550 5.1.1 ..." (SMTP) or NULL */
	time_t last_attempt;    /* 0 = none */
};

/*
 * Find the enhanced status code of `reply` ("550 5.1.1 no such user" ->
 * "5.1.1"); without one, "<class>.0.0" from the reply code (4 or 5; any
 * other code counts as 4).  out must hold 16 octets; returns out.
 */
const char *dsn_status(unsigned code, const char *reply, char *out, size_t outlen);

/*
 * Build the report for message `env` (whose content is `content`, `len`
 * octets) about `rcpts`, as the relay `mta` (its host name) sending to
 * `to` (the original sender, or postmaster).  `id` is the new message's
 * queue ID, used in the Received: and Message-ID: headers.  The original
 * message's header section is attached as text/rfc822-headers.  Returns
 * the content (CRLF lines; malloc'd, *outlen set) or NULL when out of
 * memory.
 */
char *dsn_build(const struct queue_env *env, const char *content, size_t len,
    const struct dsn_rcpt *rcpts, size_t nrcpts, const char *mta, const char *to, const char *id,
    time_t now, size_t *outlen);

/* Format an RFC 5322 date ("Sun, 22 Nov 2026 00:54:39 +0000"); returns buf. */
const char *dsn_date(time_t t, char *buf, size_t len);

#endif
