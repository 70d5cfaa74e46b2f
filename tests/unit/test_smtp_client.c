/*
 * test_smtp_client.c - the reply parser, dot-stuffing, and whole
 * conversations against a scripted server in the same event loop:
 * PIPELINING, per-recipient results, HELO fallback, SIZE, refused connects,
 * and connection reuse (RSET between messages, idle end, a stale peer).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/addr.h"
#include "smtp-relay/smtp_client.h"
#include "tests/unit/tap.h"

static void
test_parse(void)
{
	unsigned code;
	bool more;

	ok(smtp_reply_line_parse("250 ok", 6, &code, &more) == 0 && code == 250 && !more, "250");
	ok(smtp_reply_line_parse("250-SIZE", 8, &code, &more) == 0 && more, "continuation");
	ok(smtp_reply_line_parse("354", 3, &code, &more) == 0 && code == 354, "bare code");
	ok(smtp_reply_line_parse("25 ok", 5, &code, &more) == -1, "two digits");
	ok(smtp_reply_line_parse("650 x", 5, &code, &more) == -1, "class 6");
	ok(smtp_reply_line_parse("250x", 4, &code, &more) == -1, "no separator");
	ok(smtp_reply_line_parse("", 0, &code, &more) == -1, "empty");
}

static char *
stuffed(const char *in)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *out;

	smtp_client_stuff(b, in, strlen(in));
	n = evbuffer_get_length(b);
	out = calloc(1, n + 1);
	evbuffer_remove(b, out, n);
	evbuffer_free(b);
	return out;
}

static void
test_stuff(void)
{
	static const char *const cases[][2] = {
	    {"a\r\n", "a\r\n.\r\n"},
	    {".a\r\n", "..a\r\n.\r\n"},
	    {"x\r\n.\r\n..\r\nb.c\r\n", "x\r\n..\r\n...\r\nb.c\r\n.\r\n"},
	    {"no newline", "no newline\r\n.\r\n"},
	    {"", ".\r\n"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = stuffed(cases[i][0]);

		is_str(s, cases[i][1], "stuff case %zu", i);
		free(s);
	}
	ok(!smtp_client_has_8bit("plain", 5), "7bit");
	ok(smtp_client_has_8bit("caf\xc3\xa9", 5), "8bit");
}

/* ---- a scripted server ---- */

struct server {
	bool ehlo; /* answer EHLO (else 502, HELO follows) */
	bool pipelining;
	const char *size; /* "SIZE 100" or NULL */
	char log[8192];   /* every line received, '|'-separated, data included */
	bool in_data;
	int replies_before_read; /* to check pipelining: lines seen in one read */
	int max_batch;
	int accepts;          /* connections accepted */
	bool close_after_dot; /* hang up right after each message's 250 */
	bool hangup;          /* ... once the 250 went out */
	bool starttls;        /* offer STARTTLS (and refuse it with 454) */
};

/* TLS settings for the next converse(), or NULL. */
static const struct smtp_client_tls *conv_tls;

static void
say(struct bufferevent *bev, const char *line)
{
	evbuffer_add_printf(bufferevent_get_output(bev), "%s\r\n", line);
}

static void
serve_line(struct server *s, struct bufferevent *bev, const char *line)
{
	strncat(s->log, line, sizeof(s->log) - strlen(s->log) - 2);
	strncat(s->log, "|", sizeof(s->log) - strlen(s->log) - 1);
	if (s->in_data) {
		if (strcmp(line, ".") == 0) {
			s->in_data = false;
			say(bev, "250 2.0.0 queued");
			s->hangup = s->close_after_dot;
		}
		return;
	}
	if (strncmp(line, "EHLO", 4) == 0) {
		if (!s->ehlo)
			say(bev, "502 5.5.2 no");
		else {
			say(bev, "250-test.server");
			if (s->size)
				evbuffer_add_printf(
				    bufferevent_get_output(bev), "250-%s\r\n", s->size);
			if (s->starttls)
				say(bev, "250-STARTTLS");
			say(bev, s->pipelining ? "250-PIPELINING\r\n250 8BITMIME" : "250 8BITMIME");
		}
	} else if (strncmp(line, "HELO", 4) == 0 || strncmp(line, "MAIL", 4) == 0)
		say(bev, "250 ok");
	else if (strncmp(line, "RCPT TO:<bad", 12) == 0)
		say(bev, "550 5.1.1 no such user");
	else if (strncmp(line, "RCPT TO:<later", 14) == 0)
		say(bev, "451 4.2.0 greylisted");
	else if (strncmp(line, "RCPT", 4) == 0)
		say(bev, "250 ok");
	else if (strcmp(line, "DATA") == 0) {
		s->in_data = true;
		say(bev, "354 go");
	} else if (strcmp(line, "RSET") == 0)
		say(bev, "250 reset");
	else if (strcmp(line, "QUIT") == 0)
		say(bev, "221 bye");
	else if (strcmp(line, "STARTTLS") == 0)
		say(bev, "454 4.7.0 TLS not available");
	else
		say(bev, "500 what");
}

static void
server_read_cb(struct bufferevent *bev, void *arg)
{
	struct server *s = arg;
	char *line;
	size_t len;
	int batch = 0;

	while ((line = evbuffer_readln(
	            bufferevent_get_input(bev), &len, EVBUFFER_EOL_CRLF_STRICT)) != NULL) {
		if (!s->in_data)
			batch++;
		serve_line(s, bev, line);
		free(line);
	}
	if (batch > s->max_batch)
		s->max_batch = batch;
}

static void
server_write_cb(struct bufferevent *bev, void *arg)
{
	struct server *s = arg;

	if (s->hangup) {
		s->hangup = false;
		bufferevent_free(bev);
	}
}

static void
server_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct bufferevent *bev =
	    bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);

	(void)sa;
	(void)len;
	((struct server *)arg)->accepts++;
	bufferevent_setcb(bev, server_read_cb, server_write_cb, server_event_cb, arg);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	say(bev, "220 test.server ESMTP");
}

struct outcome {
	bool done;
	size_t n; /* recipients in the message */
	struct smtp_client_reply res[4];
	struct event_base *base;
};

static void
done_cb(const struct smtp_client_reply *res, void *arg)
{
	struct outcome *o = arg;

	memcpy(o->res, res, sizeof(o->res[0]) * o->n);
	o->done = true;
	event_base_loopexit(o->base, &(struct timeval){0, 100000});
}

/* Deliver msg to a fresh scripted server; fills o. */
static void
converse(struct server *srv, const struct smtp_client_msg *m, struct outcome *o, bool listen)
{
	struct event_base *base = event_base_new();
	struct addr a;
	struct evconnlistener *l = NULL;
	struct sockaddr_in sin = {.sin_family = AF_INET};

	sin.sin_addr.s_addr = htonl(0x7f000001);
	if (listen)
		l = evconnlistener_new_bind(base, accept_cb, srv,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16, (struct sockaddr *)&sin,
		    sizeof(sin));
	if (l != NULL) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl);
		addr_from_sockaddr((struct sockaddr *)&ss, sl, &a);
	} else {
		addr_parse("127.0.0.1", 1, &a); /* nothing listens on port 1 */
	}
	memset(o, 0, sizeof(*o));
	o->base = base;
	o->n = m->nrcpts;
	{
		struct smtp_client *c = smtp_client_start(base, &a, NULL, m, NULL, done_cb, o);
		char err[200] = "";

		ok(c != NULL, "client started");
		if (c != NULL && conv_tls != NULL)
			ok(smtp_client_set_tls(c, conv_tls, err, sizeof(err)) == 0, "TLS set: %s",
			    err);
	}
	event_base_dispatch(base);
	if (l != NULL)
		evconnlistener_free(l);
	event_base_free(base);
}

static void
test_conversations(void)
{
	static const char *const rcpts[] = {"good@x.test", "bad@x.test", "later@x.test"};
	static const char content[] = "Subject: t\r\n\r\n.dot\r\nend\r\n";
	struct smtp_client_msg m = {
	    "relay.test", "s@x.test", rcpts, 3, content, sizeof(content) - 1, true};
	struct server srv = {.ehlo = true, .pipelining = true, .size = "SIZE 1000"};
	struct outcome o;

	converse(&srv, &m, &o, true);
	ok(o.done, "pipelined: done");
	is_int(o.res[0].code, 250, "good: 250");
	is_str(o.res[0].text, "250 2.0.0 queued", "good: the final reply");
	is_int(o.res[1].code, 550, "bad: 550");
	is_str(o.res[1].text, "550 5.1.1 no such user", "bad: text");
	is_int(o.res[2].code, 451, "later: 451");
	ok(strstr(srv.log, "MAIL FROM:<s@x.test> SIZE=25 BODY=8BITMIME|") != NULL,
	    "SIZE and BODY declared: %s", srv.log);
	ok(strstr(srv.log, "DATA|Subject: t||..dot|end|.|QUIT|") != NULL, "dot-stuffed body");
	ok(srv.max_batch >= 5, "MAIL, 3 RCPT and DATA in one batch (%d)", srv.max_batch);

	memset(&srv, 0, sizeof(srv));
	srv.ehlo = false;
	converse(&srv, &m, &o, true);
	is_int(o.res[0].code, 250, "HELO fallback: delivered");
	ok(strstr(srv.log, "EHLO relay.test|HELO relay.test|MAIL FROM:<s@x.test>|") != NULL,
	    "HELO after 502, no ESMTP parameters: %s", srv.log);
	ok(srv.max_batch == 1, "lock-step without PIPELINING");

	memset(&srv, 0, sizeof(srv));
	srv.ehlo = true;
	srv.size = "SIZE 10";
	converse(&srv, &m, &o, true);
	is_int(o.res[0].code, 552, "over the peer's SIZE: 552");
	ok(strstr(srv.log, "MAIL") == NULL, "nothing sent");

	{
		static const char *const bad[] = {"bad@x.test"};
		struct smtp_client_msg m2 = m;

		m2.rcpts = bad;
		m2.nrcpts = 1;
		memset(&srv, 0, sizeof(srv));
		srv.ehlo = true;
		converse(&srv, &m2, &o, true);
		is_int(o.res[0].code, 550, "the only recipient refused");
		ok(strstr(srv.log, "DATA") == NULL, "no DATA without recipients");
	}

	converse(&srv, &m, &o, false);
	ok(o.done, "refused: done");
	is_int(o.res[0].code, 0, "refused: code 0");
	ok(strstr(o.res[0].text, "127.0.0.1:1") != NULL, "refused: names the peer: %s",
	    o.res[0].text);
}

/* STARTTLS decisions that need no handshake: what a peer without it, or
 * one that refuses it, gets at may and at encrypt. */
static void
test_starttls_policy(void)
{
	static const char *const rcpts[] = {"good@x.test"};
	static const char content[] = "Subject: t\r\n\r\nbody\r\n";
	struct smtp_client_msg m = {
	    "relay.test", "s@x.test", rcpts, 1, content, sizeof(content) - 1, false};
	char err[256] = "";
	SSL_CTX *ctx = tls_client_ctx_new(NULL, err, sizeof(err));
	struct smtp_client_tls t = {ctx, CONFIG_TLS_ENCRYPT, "mx.x.test", NULL, 0};
	struct server srv = {.ehlo = true};
	struct outcome o;

	ok(ctx != NULL, "client context: %s", err);
	conv_tls = &t;
	converse(&srv, &m, &o, true);
	is_int(o.res[0].code, 0, "encrypt, no STARTTLS offered: no delivery");
	ok(strstr(o.res[0].text,
	       "TLS required by policy encrypt but the peer does not offer STARTTLS") != NULL,
	    "says why: %s", o.res[0].text);
	ok(strstr(srv.log, "MAIL") == NULL && strstr(srv.log, "STARTTLS") == NULL,
	    "nothing sent: %s", srv.log);

	memset(&srv, 0, sizeof(srv));
	srv.ehlo = srv.starttls = true;
	converse(&srv, &m, &o, true);
	is_int(o.res[0].code, 0, "encrypt, STARTTLS refused: no delivery");
	ok(strstr(o.res[0].text, "STARTTLS refused: 454 4.7.0") != NULL, "why: %s", o.res[0].text);
	ok(strstr(srv.log, "EHLO relay.test|STARTTLS|") != NULL && strstr(srv.log, "MAIL") == NULL,
	    "STARTTLS asked, no MAIL: %s", srv.log);

	t.level = CONFIG_TLS_MAY;
	memset(&srv, 0, sizeof(srv));
	srv.ehlo = srv.starttls = true;
	converse(&srv, &m, &o, true);
	is_int(o.res[0].code, 250, "may, STARTTLS refused: delivered in plaintext");
	ok(strstr(srv.log, "STARTTLS|MAIL FROM:<s@x.test>") != NULL, "then MAIL: %s", srv.log);

	memset(&srv, 0, sizeof(srv));
	srv.ehlo = true;
	converse(&srv, &m, &o, true);
	is_int(o.res[0].code, 250, "may, no STARTTLS: delivered in plaintext");
	conv_tls = NULL;
	SSL_CTX_free(ctx);
}

/* ---- reuse: two messages, one connection ---- */

struct reuse {
	struct event_base *base;
	struct smtp_client_msg m;
	int dones, gones;
	unsigned codes[2];
	char text[2][SMTP_CLIENT_TEXT_MAX];
	bool stale[2], send_in_done;
	struct smtp_client *kept;
};

static void reuse_done_cb(const struct smtp_client_reply *res, void *arg);

static void
reuse_gone_cb(struct smtp_client *c, void *arg)
{
	struct reuse *r = arg;

	(void)c;
	r->gones++;
	r->kept = NULL;
	event_base_loopexit(r->base, NULL);
}

static void
reuse_done_cb(const struct smtp_client_reply *res, void *arg)
{
	struct reuse *r = arg;
	struct smtp_client *c = r->kept;

	r->codes[r->dones] = res[0].code;
	snprintf(r->text[r->dones], sizeof(r->text[0]), "%s", res[0].text);
	r->stale[r->dones] = smtp_client_is_stale(c);
	if (r->dones++ == 0 && smtp_client_keep(c, 1, reuse_gone_cb, r) == 0 && r->send_in_done) {
		/* At once, before the loop sees the peer's close. */
		ok(smtp_client_send(c, &r->m, reuse_done_cb, r) == 0,
		    "sent over the kept connection");
		return;
	}
	if (r->dones == 1)
		event_base_loopexit(r->base, NULL);
}

/* Listen on loopback; the address into *a.  NULL on failure. */
static struct evconnlistener *
listen_any(struct event_base *base, struct server *srv, struct addr *a)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct evconnlistener *l;

	sin.sin_addr.s_addr = htonl(0x7f000001);
	l = evconnlistener_new_bind(base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	    16, (struct sockaddr *)&sin, sizeof(sin));
	if (l != NULL) {
		getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl);
		addr_from_sockaddr((struct sockaddr *)&ss, sl, a);
	}
	return l;
}

static void
test_reuse(void)
{
	static const char *const rcpts[] = {"good@x.test"};
	static const char content[] = "Subject: r\r\n\r\nbody\r\n";
	struct server srv = {.ehlo = true, .pipelining = true};
	struct reuse r = {
	    .m = {"relay.test", "s@x.test", rcpts, 1, content, sizeof(content) - 1, false}};
	struct addr a;
	struct evconnlistener *l;

	r.base = event_base_new();
	l = listen_any(r.base, &srv, &a);
	r.kept = smtp_client_start(r.base, &a, NULL, &r.m, NULL, reuse_done_cb, &r);
	event_base_dispatch(r.base);
	ok(r.dones == 1 && r.codes[0] == 250 && r.kept != NULL, "first message, connection kept");
	ok(smtp_client_uses(r.kept) == 1, "one use");
	srv.max_batch = 0;
	ok(smtp_client_send(r.kept, &r.m, reuse_done_cb, &r) == 0, "second message sent");
	event_base_loopexit(r.base, &(struct timeval){0, 500000});
	event_base_dispatch(r.base);
	is_int(r.dones, 2, "second message: done");
	is_int(r.codes[1], 250, "second message: 250");
	ok(!r.stale[1], "not stale");
	is_int(srv.accepts, 1, "one connection for two messages");
	ok(strstr(srv.log, "|.|RSET|MAIL FROM:<s@x.test>|") != NULL, "RSET before MAIL: %s",
	    srv.log);
	is_int(srv.max_batch, 4, "PIPELINING: RSET goes with MAIL, RCPT and DATA");
	is_int(r.gones, 0, "second not kept: not gone");
	ok(strstr(srv.log, "|.|QUIT|") != NULL, "QUIT at the end");

	/* Kept, idle: the idle time ends it with QUIT. */
	memset(srv.log, 0, sizeof(srv.log));
	r.dones = 0;
	r.kept = smtp_client_start(r.base, &a, NULL, &r.m, NULL, reuse_done_cb, &r);
	event_base_dispatch(r.base);
	event_base_dispatch(r.base); /* until gone */
	is_int(r.gones, 1, "idle time over: gone");
	event_base_loopexit(r.base, &(struct timeval){0, 200000});
	event_base_dispatch(r.base);
	ok(strstr(srv.log, "|.|QUIT|") != NULL, "idle end says QUIT: %s", srv.log);

	/* The peer hangs up after the message: the next one sees a stale connection. */
	srv.close_after_dot = true;
	r.dones = r.gones = 0;
	r.send_in_done = true;
	r.kept = smtp_client_start(r.base, &a, NULL, &r.m, NULL, reuse_done_cb, &r);
	event_base_loopexit(r.base, &(struct timeval){2, 0});
	event_base_dispatch(r.base);
	tap_diag("stale: %s / %s", r.text[0], r.text[1]);
	is_int(r.dones, 2, "stale: both callbacks ran");
	ok(r.stale[1] && r.codes[1] == 0, "stale: code 0, marked stale");
	event_base_loopexit(r.base, &(struct timeval){0, 200000});
	event_base_dispatch(r.base);
	evconnlistener_free(l);
	event_base_free(r.base);
}

int
main(void)
{
	test_parse();
	test_stuff();
	test_conversations();
	test_starttls_policy();
	signal(SIGPIPE, SIG_IGN); /* as smtp-relayd: a write to a closed peer */
	test_reuse();
	return tap_done();
}
