/*
 * smtp_client.h - an asynchronous SMTP client (RFC 5321) for delivery: one
 * connection to one address carrying one message to some recipients, and
 * then, when the caller keeps it (smtp_client_keep), more messages over the
 * same connection with RSET between them (smtp_client_send).
 *
 * EHLO with a HELO fallback, PIPELINING when offered (RFC 2920), SIZE
 * declared (RFC 1870), BODY=8BITMIME when the message says so and the peer
 * offers it, dot-stuffing, the timeouts of RFC 5321 §4.5.3.2.  A message
 * marked 8BITMIME goes to a peer without 8BITMIME unchanged and without the
 * BODY parameter (no MIME down-conversion: see docs/delivery.md).
 *
 * The outcome is one reply per recipient: code 2xx (delivered), 5xx
 * (permanent), 4xx (temporary), or 0 when the connection failed, timed out
 * or the peer broke the protocol (temporary: try the next address).
 * Everything runs on the caller's event base; the callback runs from the
 * loop, never from inside smtp_client_start.
 */
#ifndef MXB_SMTP_CLIENT_H
#define MXB_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp-relay/tls_client.h"

struct addr;
struct event_base;
struct evbuffer;
struct smtp_client;

/* A reply line is at most 512 octets (RFC 5321 §4.5.3.1.5); we keep this much. */
#define SMTP_CLIENT_TEXT_MAX 512
/* Longer reply lines than this are a protocol error. */
#define SMTP_CLIENT_LINE_MAX 4096

/* Seconds; RFC 5321 §4.5.3.2 minimums, plus a connect timeout. */
struct smtp_client_timeouts {
	unsigned connect;  /* 30 */
	unsigned greeting; /* 300: initial 220 */
	unsigned command;  /* 300: EHLO, MAIL, RCPT */
	unsigned data;     /* 120: DATA initiation */
	unsigned block;    /* 180: each data block sent */
	unsigned dot;      /* 600: final reply after "." */
};
extern const struct smtp_client_timeouts smtp_client_default_timeouts;

/* The message to send: all borrowed until the callback ran. */
struct smtp_client_msg {
	const char *helo;         /* our host name for EHLO/HELO */
	const char *sender;       /* "" for <> */
	const char *const *rcpts; /* mailboxes without brackets */
	size_t nrcpts;
	const char *content; /* canonical CRLF lines, not dot-stuffed */
	size_t len;
	bool body_8bit; /* BODY=8BITMIME */
};

/* One recipient's outcome. */
struct smtp_client_reply {
	unsigned code;                   /* 0: no SMTP answer (see above) */
	char text[SMTP_CLIENT_TEXT_MAX]; /* "550 5.1.1 ..." or the local reason */
};

/* results[i] belongs to msg->rcpts[i]; borrowed for the call only. */
typedef void (*smtp_client_done_fn)(const struct smtp_client_reply *results, void *arg);

/*
 * Connect to `to` (port set), from `source` when it is not NULL and set
 * (relay { outbound-source }: an address of to's family, port 0), and
 * deliver.  Returns NULL when out of memory (the callback never runs then).
 * The client frees itself after the callback returned.
 */
struct smtp_client *smtp_client_start(struct event_base *base, const struct addr *to,
    const struct addr *source, const struct smtp_client_msg *msg,
    const struct smtp_client_timeouts *t, smtp_client_done_fn done, void *arg);

/*
 * Outbound TLS (RFC 3207) for a client just started, before the loop runs:
 * after EHLO, STARTTLS when the peer offers it and `level` is not none,
 * then EHLO again over TLS.  At encrypt and above a peer without STARTTLS
 * or a failed handshake or check ends the session (code 0, the reason in
 * the text: never plaintext).  At may a failed handshake ends it too and
 * smtp_client_tls_retry_plain says so: the caller retries the same host
 * once with level none.  `tls` and what it points to are copied.
 * 0, or -1 with err (a bad TLSA set, no memory): the client is unchanged.
 */
struct smtp_client_tls {
	SSL_CTX *ctx;
	enum config_tls_level level; /* the hop's effective level */
	const char *host;            /* SNI and the name to verify */
	const struct tls_tlsa *tlsa; /* dane: the hop's TLSA records */
	size_t ntlsa;
};
int smtp_client_set_tls(
    struct smtp_client *c, const struct smtp_client_tls *tls, char *err, size_t errlen);
/* In the done callback: what TLS the session had, "TLSv1.3 cipher" or "". */
enum tls_outcome smtp_client_tls_outcome(const struct smtp_client *c);
const char *smtp_client_tls_info(const struct smtp_client *c);
/* In the done callback: NULL when the session had TLS with a certificate
 * that verified (chain and the hop's name), else why not ("no TLS", or
 * OpenSSL's reason); at may and encrypt it is only reported. */
const char *smtp_client_tls_verify_error(const struct smtp_client *c);
/* In the done callback: the handshake failed at level may. */
bool smtp_client_tls_retry_plain(const struct smtp_client *c);
/* In the done callback: the session failed the TLS policy (DSN text says why). */
bool smtp_client_tls_failed(const struct smtp_client *c);

/* Abandon the delivery, or drop a kept connection without QUIT: no
 * callback; NULL is a no-op. */
void smtp_client_cancel(struct smtp_client *c);

/* ---- connection reuse ---- */

/* A kept connection ended while idle (the peer closed it or said something
 * unasked, or `idle` seconds passed: then QUIT is sent).  The client frees
 * itself after this returns; the owner forgets it here. */
typedef void (*smtp_client_gone_fn)(struct smtp_client *c, void *arg);

/*
 * Only from inside the done callback: keep the connection open for another
 * message instead of saying QUIT, for at most `idle` seconds.  The caller
 * owns the client from then on: smtp_client_send, smtp_client_cancel, or
 * `gone`.  Returns -1 (and the client QUITs and frees itself as before)
 * when the transaction did not end cleanly (smtp_client_is_reusable) or
 * idle is 0.
 */
int smtp_client_keep(struct smtp_client *c, unsigned idle, smtp_client_gone_fn gone, void *arg);

/*
 * Another message over a kept connection: RSET, then the transaction as in
 * smtp_client_start (results, callback, freeing).  The results of the last
 * callback are invalid from here on.  -1 when out of memory: the client is
 * still kept, idle.  When the peer closed the connection or RSET fails,
 * every result is code 0 and smtp_client_is_stale is true in the callback:
 * not the message's fault, send it over a new connection.
 */
int smtp_client_send(
    struct smtp_client *c, const struct smtp_client_msg *msg, smtp_client_done_fn done, void *arg);

/* In the done callback: may the connection be kept (the last transaction
 * ended with every reply read, the peer still there)? */
bool smtp_client_is_reusable(const struct smtp_client *c);
/* In the done callback: a kept connection failed before MAIL (see above). */
bool smtp_client_is_stale(const struct smtp_client *c);
/* Transactions started over this connection so far. */
unsigned smtp_client_uses(const struct smtp_client *c);
/* "192.0.2.1:25": the peer, borrowed. */
const char *smtp_client_peer(const struct smtp_client *c);

/* ---- the parts below are exposed for unit tests ---- */

/*
 * Parse one reply line (no CRLF): "250-SIZE 100" or "250 ok".  Sets *code
 * and *more (a '-' continuation).  Returns 0, or -1 when the line is not
 * a reply line.  This is the one validating parser of peer input.
 */
int smtp_reply_line_parse(const char *line, size_t len, unsigned *code, bool *more);

/* Append `len` octets of content to out, dot-stuffed, then ".\r\n" (a
 * final CRLF is added when the content lacks one).  0 or -1. */
int smtp_client_stuff(struct evbuffer *out, const char *content, size_t len);

/* True when some octet of the content is outside US-ASCII. */
bool smtp_client_has_8bit(const char *content, size_t len);

#endif
