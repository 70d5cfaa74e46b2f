/*
 * smtp_client.c - the outbound SMTP client: one message at a time over one
 * connection, which the caller may keep for more (RSET between messages).
 */
#include "smtp-relay/smtp_client.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "common/addr.h"

const struct smtp_client_timeouts smtp_client_default_timeouts = {
    .connect = 30,
    .greeting = 300,
    .command = 300,
    .data = 120,
    .block = 180,
    .dot = 600,
};

enum client_state {
	C_CONNECT,  /* waiting for the TCP connection */
	C_GREETING, /* waiting for 220 */
	C_EHLO,
	C_HELO,
	C_STARTTLS, /* waiting for STARTTLS's 220 */
	C_TLS,      /* the handshake */
	C_TXN,      /* MAIL, RCPT..., DATA replies (pipelined or not) */
	C_DOT,      /* the content went out: waiting for the final reply */
	C_IDLE,     /* kept between messages (smtp_client_keep) */
	C_RSET,     /* reused: waiting for RSET's 250 before MAIL */
	C_QUIT,     /* results handed over: closing */
};

struct smtp_client {
	struct bufferevent *bev;
	struct event *later; /* reports a failure from the loop */
	struct smtp_client_msg msg;
	struct smtp_client_timeouts t;
	smtp_client_done_fn done;
	void *arg;
	enum client_state state;
	int connect_errno; /* a connect that failed at once */
	char peer[ADDR_STRLEN];
	/* what EHLO offered */
	bool pipelining, eightbit, has_size, starttls;
	/* TLS: the SSL waits here until STARTTLS (then the bufferevent owns it) */
	SSL *ssl;
	enum config_tls_level level;
	bool tls_active, tls_retry_plain, tls_failed;
	enum tls_outcome tls_outcome;
	char tls_info[96];
	const char *tls_verify_error; /* static OpenSSL text, or NULL */
	uint64_t size_max;
	/* the reply being read */
	bool in_reply;
	unsigned code;
	char text[SMTP_CLIENT_TEXT_MAX];
	/* the transaction: command 0 = MAIL, 1..n = RCPT, n + 1 = DATA */
	size_t sent, answered;
	bool mail_failed;
	bool discard; /* "." sent only to end DATA; ignore its reply */
	size_t naccepted;
	bool *accepted;
	bool *decided;
	struct smtp_client_reply *res;
	/* reuse */
	unsigned uses;  /* transactions started on this connection */
	bool reusable;  /* the last one ended cleanly: the connection may be kept */
	bool kept;      /* smtp_client_keep ran inside the callback */
	bool stale;     /* a kept connection failed before MAIL */
	bool rset_wait; /* RSET pipelined with MAIL...DATA: its reply comes first */
	smtp_client_gone_fn gone;
	void *gone_arg;
};

static void client_free(struct smtp_client *c);

int
smtp_reply_line_parse(const char *line, size_t len, unsigned *code, bool *more)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (unsigned)(line[0] - '0') * 100 + (unsigned)(line[1] - '0') * 10 +
	    (unsigned)(line[2] - '0');
	*more = len > 3 && line[3] == '-';
	return 0;
}

bool
smtp_client_has_8bit(const char *content, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)content[i] & 0x80)
			return true;
	return false;
}

int
smtp_client_stuff(struct evbuffer *out, const char *content, size_t len)
{
	size_t start = 0;

	/* Every line that starts with "." gets one more (RFC 5321 §4.5.2). */
	for (size_t i = 0; i < len; i++) {
		if (content[i] != '.' || (i != 0 && content[i - 1] != '\n'))
			continue;
		if (evbuffer_add(out, content + start, i - start) == -1 ||
		    evbuffer_add(out, ".", 1) == -1)
			return -1;
		start = i;
	}
	if (evbuffer_add(out, content + start, len - start) == -1)
		return -1;
	if (len >= 2 && content[len - 2] == '\r' && content[len - 1] == '\n')
		return evbuffer_add(out, ".\r\n", 3);
	return evbuffer_add(out, len == 0 ? ".\r\n" : "\r\n.\r\n", len == 0 ? 3 : 5);
}

/* Printable ASCII only, so that a peer's text is safe in logs and DSNs. */
static void
copy_text(char *dst, size_t size, const char *src, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++)
		dst[n++] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[n] = '\0';
}

static void
set_timeouts(struct smtp_client *c, unsigned rd, unsigned wr)
{
	struct timeval r = {(time_t)rd, 0}, w = {(time_t)wr, 0};

	bufferevent_set_timeouts(c->bev, rd ? &r : NULL, wr ? &w : NULL);
}

/* Every recipient still open gets `code` and `text`. */
static void
decide_rest(struct smtp_client *c, unsigned code, const char *text, bool only_accepted)
{
	for (size_t i = 0; i < c->msg.nrcpts; i++) {
		if (c->decided[i] || (only_accepted && !c->accepted[i]))
			continue;
		c->decided[i] = true;
		c->res[i].code = code;
		snprintf(c->res[i].text, sizeof(c->res[i].text), "%s", text);
	}
}

static void
quit_written_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	client_free(arg);
}

static void
quit_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	client_free(arg);
}

/* Free from the loop, so that no caller up the stack touches freed memory. */
static void
free_later(struct smtp_client *c)
{
	struct timeval now = {0, 0};

	c->state = C_QUIT;
	if (c->bev != NULL) {
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	}
	evtimer_add(c->later, &now);
}

/* Say QUIT, and free once it went out (or the peer went). */
static void
say_quit(struct smtp_client *c)
{
	c->state = C_QUIT;
	bufferevent_disable(c->bev, EV_READ);
	set_timeouts(c, 0, 10);
	bufferevent_setcb(c->bev, NULL, quit_written_cb, quit_event_cb, c);
	if (evbuffer_add(bufferevent_get_output(c->bev), "QUIT\r\n", 6) == -1)
		free_later(c);
}

/*
 * Hand the results over, then say QUIT (when the connection is good) and
 * go -- unless the callback kept the connection (smtp_client_keep).
 */
static void
finish(struct smtp_client *c, bool quit)
{
	decide_rest(c, 0, "connection ended without a reply", false);
	c->state = C_QUIT;
	c->reusable = quit && c->bev != NULL && !c->stale;
	c->kept = false;
	c->done(c->res, c->arg);
	if (c->kept)
		return;
	if (!quit || c->bev == NULL) {
		free_later(c);
		return;
	}
	say_quit(c);
}

/* A session-level failure: every open recipient is temporary (code 0). */
static void
fail(struct smtp_client *c, const char *why)
{
	char text[SMTP_CLIENT_TEXT_MAX + ADDR_STRLEN + 32];

	if (c->state == C_RSET || c->rset_wait)
		c->stale = true;
	snprintf(
	    text, sizeof(text), "%s: %s%s", c->peer, c->stale ? "reused connection: " : "", why);
	text[SMTP_CLIENT_TEXT_MAX - 1] = '\0';
	decide_rest(c, 0, text, false);
	finish(c, false);
}

/* From the loop: a connect that failed at once, or a client to free. */
static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;

	(void)fd;
	(void)what;
	if (c->state == C_QUIT)
		client_free(c);
	else {
		char why[128];

		snprintf(why, sizeof(why), "connect: %s", strerror(c->connect_errno));
		fail(c, why);
	}
}

static int
send_line(struct smtp_client *c, const char *prefix, const char *value, const char *params)
{
	return evbuffer_add_printf(
	           bufferevent_get_output(c->bev), "%s%s%s\r\n", prefix, value, params) < 0
	    ? -1
	    : 0;
}

/* Command k of the transaction (0 = MAIL, 1..n = RCPT, n + 1 = DATA). */
static int
send_txn_command(struct smtp_client *c, size_t k)
{
	char params[64] = ">";

	if (k == 0) {
		if (c->has_size)
			snprintf(params, sizeof(params), "> SIZE=%zu", c->msg.len);
		if (c->msg.body_8bit && c->eightbit)
			strncat(params, " BODY=8BITMIME", sizeof(params) - strlen(params) - 1);
		return send_line(c, "MAIL FROM:<", c->msg.sender, params);
	}
	if (k <= c->msg.nrcpts)
		return send_line(c, "RCPT TO:<", c->msg.rcpts[k - 1], ">");
	return send_line(c, "DATA", "", "");
}

static void
start_txn(struct smtp_client *c)
{
	size_t last = c->msg.nrcpts + 1;

	if (c->has_size && c->size_max != 0 && c->msg.len > c->size_max) {
		decide_rest(c, 552, "552 5.3.4 message size exceeds the peer's SIZE limit", false);
		finish(c, true);
		return;
	}
	c->state = C_TXN;
	c->uses++;
	set_timeouts(c, c->t.command, c->t.command);
	/* RFC 2920: the whole MAIL/RCPT/DATA group in one go when pipelining. */
	for (size_t k = 0; k <= (c->pipelining ? last : 0); k++) {
		if (send_txn_command(c, k) == -1) {
			fail(c, "out of memory");
			return;
		}
		c->sent = k + 1;
	}
}

static void
send_helo(struct smtp_client *c, const char *verb, enum client_state next)
{
	c->state = next;
	set_timeouts(c, c->t.command, c->t.command);
	if (send_line(c, verb, c->msg.helo, "") == -1)
		fail(c, "out of memory");
}

/* One line of EHLO's reply after the first: a service extension keyword. */
static void
ehlo_keyword(struct smtp_client *c, const char *kw, size_t len)
{
	char buf[64];
	char *end;
	unsigned long long v;

	copy_text(buf, sizeof(buf), kw, len);
	if (strcasecmp(buf, "PIPELINING") == 0)
		c->pipelining = true;
	else if (strcasecmp(buf, "STARTTLS") == 0)
		c->starttls = true;
	else if (strcasecmp(buf, "8BITMIME") == 0)
		c->eightbit = true;
	else if (strncasecmp(buf, "SIZE", 4) == 0 && (buf[4] == '\0' || buf[4] == ' ')) {
		c->has_size = true;
		errno = 0;
		v = buf[4] == ' ' ? strtoull(buf + 5, &end, 10) : 0;
		c->size_max = (errno == 0 && buf[4] == ' ' && *end == '\0') ? v : 0;
	}
}

static void
send_body(struct smtp_client *c)
{
	c->state = C_DOT;
	set_timeouts(c, c->t.dot, c->t.block);
	if (c->discard || c->naccepted == 0) {
		c->discard = true;
		evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3);
		return;
	}
	if (smtp_client_stuff(bufferevent_get_output(c->bev), c->msg.content, c->msg.len) == -1)
		fail(c, "out of memory");
}

/* The reply to RCPT number i (0-based). */
static void
rcpt_reply(struct smtp_client *c, size_t i)
{
	if (c->mail_failed)
		return;
	if (c->code / 100 == 2) {
		c->accepted[i] = true;
		c->naccepted++;
		return;
	}
	c->decided[i] = true;
	c->res[i].code = c->code;
	snprintf(c->res[i].text, sizeof(c->res[i].text), "%s", c->text);
}

/* A reply in the transaction. */
static void
txn_reply(struct smtp_client *c)
{
	size_t k = c->answered++, n = c->msg.nrcpts;

	if (k == 0 && c->code / 100 != 2) {
		decide_rest(c, c->code, c->text, false);
		c->mail_failed = true;
	} else if (k >= 1 && k <= n)
		rcpt_reply(c, k - 1);
	else if (k == n + 1) {
		if (c->code == 354) {
			send_body(c);
			return;
		}
		if (!c->mail_failed)
			decide_rest(c, c->code, c->text, true);
		finish(c, true);
		return;
	}
	if (c->answered < c->sent)
		return;
	/* Lock-step: the next command, unless nothing is left to say. */
	if (c->mail_failed || (k == n && c->naccepted == 0)) {
		finish(c, true);
		return;
	}
	if (send_txn_command(c, c->sent) == -1)
		fail(c, "out of memory");
	c->sent++;
	if (c->sent == n + 2)
		set_timeouts(c, c->t.data, c->t.command);
}

/* ---- STARTTLS ---- */

static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

static bool
tls_required(const struct smtp_client *c)
{
	return c->ssl != NULL && c->level >= CONFIG_TLS_ENCRYPT;
}

/* The session fails the policy (or, at may, the handshake failed). */
static void
tls_fail(struct smtp_client *c, const char *why, bool retry_plain)
{
	char text[SMTP_CLIENT_TEXT_MAX];

	c->tls_failed = !retry_plain;
	c->tls_retry_plain = retry_plain;
	if (!retry_plain && strncmp(why, "TLS required", 12) != 0)
		snprintf(text, sizeof(text), "TLS required by policy %s but %s",
		    config_tls_level_names[c->level], why);
	else
		snprintf(text, sizeof(text), "%s", why);
	fail(c, text);
}

/* EHLO said 2xx: STARTTLS first when wanted and not done yet. */
static void
after_ehlo(struct smtp_client *c)
{
	if (c->ssl == NULL || c->tls_active) {
		start_txn(c);
		return;
	}
	if (!c->starttls) {
		if (tls_required(c))
			tls_fail(c, "the peer does not offer STARTTLS", false);
		else
			start_txn(c);
		return;
	}
	c->state = C_STARTTLS;
	set_timeouts(c, c->t.command, c->t.command);
	if (send_line(c, "STARTTLS", "", "") == -1)
		fail(c, "out of memory");
}

/* STARTTLS said 220: wrap the connection; EHLO again once it is up. */
static void
start_tls(struct smtp_client *c)
{
	struct bufferevent *tls;
	struct evbuffer *in = bufferevent_get_input(c->bev);

	/* Anything the peer sent after the 220 came in plaintext: dropped
	 * (the client side of CVE-2011-0411). */
	evbuffer_drain(in, evbuffer_get_length(in));
	tls = bufferevent_openssl_filter_new(bufferevent_get_base(c->bev), c->bev, c->ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		fail(c, "out of memory");
		return;
	}
	c->ssl = NULL; /* the bufferevent's now */
	c->bev = tls;
	c->state = C_TLS;
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	bufferevent_setcb(tls, read_cb, NULL, event_cb, c);
	set_timeouts(c, c->t.command, c->t.command);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* The handshake is done: check the policy, then EHLO again (RFC 3207 §4.2). */
static void
tls_up(struct smtp_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	char why[SMTP_CLIENT_TEXT_MAX];

	tls_client_describe(ssl, c->tls_info, sizeof(c->tls_info));
	c->tls_verify_error = tls_client_verify_error(ssl);
	if (tls_client_check(ssl, c->level, &c->tls_outcome, why, sizeof(why)) == -1) {
		c->tls_outcome = TLS_OUT_NONE;
		tls_fail(c, why, false);
		return;
	}
	c->tls_active = true;
	c->pipelining = c->eightbit = c->has_size = c->starttls = false;
	c->size_max = 0;
	send_helo(c, "EHLO ", C_EHLO);
}

/* The handshake failed: at may, the same host again in plaintext. */
static void
tls_handshake_failed(struct smtp_client *c, short what)
{
	char why[256], ssl_err[160] = "";
	unsigned long e;

	/* The first OpenSSL error says what went wrong; libevent also queues
	 * bare codes without a library (system errors): not informative. */
	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (ssl_err[0] == '\0' && ERR_GET_LIB(e) != 0)
			ERR_error_string_n(e, ssl_err, sizeof(ssl_err));
	snprintf(why, sizeof(why), "TLS handshake failed: %s",
	    ssl_err[0]                     ? ssl_err
	        : what & BEV_EVENT_TIMEOUT ? "timeout"
	        : what & BEV_EVENT_EOF     ? "connection closed by the peer"
	                                   : "error");
	tls_fail(c, why, c->level < CONFIG_TLS_ENCRYPT);
}

/* A complete reply (the last line read); dispatch on the state. */
static void
handle_reply(struct smtp_client *c)
{
	if (c->rset_wait) {
		/* RSET's reply, pipelined before the transaction's. */
		c->rset_wait = false;
		if (c->code / 100 == 2)
			return;
		c->rset_wait = true; /* a failed RSET: the kept connection is stale */
		goto failed;
	}
	switch (c->state) {
	case C_GREETING:
		if (c->code / 100 != 2)
			break;
		send_helo(c, "EHLO ", C_EHLO);
		return;
	case C_EHLO:
		if (c->code / 100 == 2)
			after_ehlo(c);
		else if (c->code / 100 == 5 && !tls_required(c))
			send_helo(c, "HELO ", C_HELO);
		else if (c->code / 100 == 5)
			tls_fail(c, "the peer refused EHLO", false);
		else
			break;
		return;
	case C_HELO:
		if (c->code / 100 != 2)
			break;
		start_txn(c);
		return;
	case C_STARTTLS:
		if (c->code == 220)
			start_tls(c);
		else if (tls_required(c)) {
			char why[SMTP_CLIENT_TEXT_MAX + 64];

			snprintf(why, sizeof(why), "STARTTLS refused: %s", c->text);
			tls_fail(c, why, false);
		} else
			start_txn(c); /* may: on in plaintext, as before */
		return;
	case C_RSET:
		if (c->code / 100 != 2)
			break;
		start_txn(c);
		return;
	case C_TXN: txn_reply(c); return;
	case C_DOT:
		if (!c->discard)
			decide_rest(c, c->code, c->text, true);
		finish(c, true);
		return;
	default: return;
	}
failed:
	/* The greeting, EHLO, HELO or RSET failed: this host will not take mail now. */
	{
		char why[SMTP_CLIENT_TEXT_MAX + 16];

		snprintf(why, sizeof(why), "said: %s", c->text);
		fail(c, why);
	}
}

/* One line of a reply; returns -1 on a protocol error. */
static int
handle_line(struct smtp_client *c, const char *line, size_t len)
{
	unsigned code;
	bool more;

	if (smtp_reply_line_parse(line, len, &code, &more) == -1 ||
	    (c->in_reply && code != c->code))
		return -1;
	if (!c->in_reply) {
		c->code = code;
		copy_text(c->text, sizeof(c->text), line, len);
	} else if (c->state == C_EHLO && len > 4)
		ehlo_keyword(c, line + 4, len - 4);
	c->in_reply = more;
	if (!more)
		handle_reply(c);
	return 0;
}

/* A kept connection ends while idle: tell the owner, then go (QUIT when
 * the idle time ran out and the peer is still there). */
static void
idle_end(struct smtp_client *c, bool timed_out)
{
	if (c->gone != NULL)
		c->gone(c, c->gone_arg);
	if (timed_out)
		say_quit(c);
	else
		free_later(c);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	if (c->state == C_IDLE) {
		/* Nothing is due from an idle peer: a 421 or junk ends it. */
		idle_end(c, false);
		return;
	}
	while (c->state != C_QUIT && c->state != C_CONNECT && c->state != C_TLS &&
	    (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		int rc = handle_line(c, line, len);

		free(line);
		if (rc == -1) {
			fail(c, "protocol error: a bad reply line");
			return;
		}
	}
	if (c->state != C_QUIT && evbuffer_get_length(in) > SMTP_CLIENT_LINE_MAX)
		fail(c, "protocol error: reply line too long");
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;
	char why[128];

	(void)bev;
	if (c->state == C_IDLE) {
		idle_end(c, (what & BEV_EVENT_TIMEOUT) != 0);
		return;
	}
	if (c->state == C_TLS) {
		if (what & BEV_EVENT_CONNECTED)
			tls_up(c);
		else
			tls_handshake_failed(c, what);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		c->state = C_GREETING;
		set_timeouts(c, c->t.greeting, c->t.command);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "timeout %s",
		    c->state == C_CONNECT ? "connecting" : "waiting for a reply");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by the peer");
	else
		snprintf(why, sizeof(why), "%s%s", c->state == C_CONNECT ? "connect: " : "",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	fail(c, why);
}

static void
client_free(struct smtp_client *c)
{
	if (c == NULL)
		return;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->later != NULL)
		event_free(c->later);
	SSL_free(c->ssl);
	free(c->accepted);
	free(c->decided);
	free(c->res);
	free(c);
}

/*
 * The socket for `to`, bound to `source` when it is set (an address of the
 * same family), for bufferevent_socket_connect; -1 with errno set.
 */
static int
outbound_socket(const struct addr *to, const struct addr *source)
{
	int fd, err;

	fd = socket(addr_family(to), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || source == NULL || source->len == 0)
		return fd;
	if (bind(fd, addr_sa(source), source->len) == -1) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

struct smtp_client *
smtp_client_start(struct event_base *base, const struct addr *to, const struct addr *source,
    const struct smtp_client_msg *msg, const struct smtp_client_timeouts *t,
    smtp_client_done_fn done, void *arg)
{
	struct smtp_client *c = calloc(1, sizeof(*c));
	size_t n = msg->nrcpts;
	int fd = -1;

	if (c == NULL || (c->accepted = calloc(n, sizeof(bool))) == NULL ||
	    (c->decided = calloc(n, sizeof(bool))) == NULL ||
	    (c->res = calloc(n, sizeof(*c->res))) == NULL ||
	    (c->later = evtimer_new(base, later_cb, c)) == NULL ||
	    (c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		client_free(c);
		return NULL;
	}
	c->msg = *msg;
	c->t = t != NULL ? *t : smtp_client_default_timeouts;
	c->done = done;
	c->arg = arg;
	addr_str(to, c->peer, sizeof(c->peer));
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	set_timeouts(c, 0, c->t.connect);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if ((fd = outbound_socket(to, source)) == -1 || bufferevent_setfd(c->bev, fd) == -1 ||
	    bufferevent_socket_connect(
	        c->bev, (struct sockaddr *)(uintptr_t)addr_sa(to), (int)to->len) == -1) {
		struct timeval now = {0, 0};

		/* Reported from the loop, as promised. */
		c->connect_errno = errno;
		if (fd != -1 && bufferevent_getfd(c->bev) != fd)
			close(fd);
		bufferevent_free(c->bev);
		c->bev = NULL;
		evtimer_add(c->later, &now);
	}
	return c;
}

void
smtp_client_cancel(struct smtp_client *c)
{
	client_free(c);
}

int
smtp_client_keep(struct smtp_client *c, unsigned idle, smtp_client_gone_fn gone, void *arg)
{
	if (!c->reusable || c->state != C_QUIT || idle == 0)
		return -1;
	c->kept = true;
	c->state = C_IDLE;
	c->gone = gone;
	c->gone_arg = arg;
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	set_timeouts(c, idle, 0);
	bufferevent_enable(c->bev, EV_READ);
	return 0;
}

/* Room for a message of n recipients, the per-recipient state cleared. */
static int
reset_rcpts(struct smtp_client *c, size_t n)
{
	bool *acc = calloc(n ? n : 1, sizeof(bool)), *dec = calloc(n ? n : 1, sizeof(bool));
	struct smtp_client_reply *res = calloc(n ? n : 1, sizeof(*res));

	if (acc == NULL || dec == NULL || res == NULL) {
		free(acc);
		free(dec);
		free(res);
		return -1;
	}
	free(c->accepted);
	free(c->decided);
	free(c->res);
	c->accepted = acc;
	c->decided = dec;
	c->res = res;
	c->sent = c->answered = c->naccepted = 0;
	c->mail_failed = c->discard = c->in_reply = false;
	return 0;
}

int
smtp_client_send(
    struct smtp_client *c, const struct smtp_client_msg *msg, smtp_client_done_fn done, void *arg)
{
	if (c->state != C_IDLE || reset_rcpts(c, msg->nrcpts) == -1 ||
	    evbuffer_add(bufferevent_get_output(c->bev), "RSET\r\n", 6) == -1)
		return -1;
	c->msg = *msg;
	c->done = done;
	c->arg = arg;
	c->gone = NULL;
	c->state = C_RSET;
	c->rset_wait = false;
	/* RFC 2920: with PIPELINING, RSET goes with the MAIL/RCPT/DATA group
	 * (one round trip less per message); a message over the peer's SIZE
	 * waits for RSET's reply as without, and is refused then. */
	if (c->pipelining && !(c->has_size && c->size_max != 0 && msg->len > c->size_max)) {
		for (size_t k = 0; k <= msg->nrcpts + 1; k++)
			if (send_txn_command(c, k) == -1)
				return -1;
		c->state = C_TXN;
		c->uses++;
		c->sent = msg->nrcpts + 2;
		c->rset_wait = true;
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	set_timeouts(c, c->t.command, c->t.command);
	return 0;
}

int
smtp_client_set_tls(
    struct smtp_client *c, const struct smtp_client_tls *tls, char *err, size_t errlen)
{
	SSL *ssl;

	if (tls->ctx == NULL || tls->level == CONFIG_TLS_NONE)
		return 0;
	ssl =
	    tls_client_ssl_new(tls->ctx, tls->host, tls->level, tls->tlsa, tls->ntlsa, err, errlen);
	if (ssl == NULL)
		return -1;
	SSL_free(c->ssl);
	c->ssl = ssl;
	c->level = tls->level;
	return 0;
}

enum tls_outcome
smtp_client_tls_outcome(const struct smtp_client *c)
{
	return c->tls_active ? c->tls_outcome : TLS_OUT_NONE;
}

const char *
smtp_client_tls_info(const struct smtp_client *c)
{
	return c->tls_active ? c->tls_info : "";
}

const char *
smtp_client_tls_verify_error(const struct smtp_client *c)
{
	return !c->tls_active ? "no TLS" : c->tls_verify_error;
}

bool
smtp_client_tls_retry_plain(const struct smtp_client *c)
{
	return c->tls_retry_plain;
}

bool
smtp_client_tls_failed(const struct smtp_client *c)
{
	return c->tls_failed;
}

bool
smtp_client_is_reusable(const struct smtp_client *c)
{
	return c->reusable;
}

bool
smtp_client_is_stale(const struct smtp_client *c)
{
	return c->stale;
}

unsigned
smtp_client_uses(const struct smtp_client *c)
{
	return c->uses;
}

const char *
smtp_client_peer(const struct smtp_client *c)
{
	return c->peer;
}
