/* smtp_session.c - the SMTP server session state machine (RFC 5321). */
#include "smtp-relay/smtp_session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"
#include "common/tls.h"
#include "smtp-relay/address.h"
#include "smtp-relay/auth.h"
#include "smtp-relay/disk_pool.h"
#include "smtp-relay/intake.h"
#include "smtp-relay/queue.h"
#include "smtp-relay/smtp_proto.h"
#include "smtp-relay/tls_server.h"

/* RFC 5321 6.3: a message with this many Received: lines is a loop. */
#define SMTP_MAX_HOPS 100
/* Replies queued for a client that does not read before we stop reading. */
#define SMTP_OUTPUT_HIGH (64 * 1024)
/*
 * DATA is held in memory up to SMTP_SPOOL_CHUNK octets; beyond that it goes
 * to the queue's tmp/ through the disk pool in pieces of at least that
 * size, and reading stops while SMTP_SPOOL_HIGH octets wait for a write in
 * hand: a session's memory is bounded whatever the message size.
 */
#define SMTP_SPOOL_CHUNK (32 * 1024)
#define SMTP_SPOOL_HIGH  (128 * 1024)
/* Bad commands tolerated before the session is closed. */
#define SMTP_MAX_ERRORS   20
#define SMTP_HELO_MAX     255
#define SMTP_RECEIVED_MAX (SMTP_HELO_MAX + 4 * ADDRESS_PATH_MAX + TLS_DESCRIBE_MAX)
/* Longest reply line we make, the Message-ID kept for the log, and the
 * part of a non-SMTP line that is logged. */
#define SMTP_REPLY_MAX   512
#define SMTP_MSGID_MAX   255
#define SMTP_LOGLINE_MAX 100
/* A 535 waits this long: a password guesser gets fewer tries per connection. */
#define SMTP_AUTH_FAIL_DELAY_MS 1000
/* "unknown[<address>]": the client as Postfix names it (no reverse lookup). */
#define SMTP_CLIENT_NAME_MAX (ADDR_STRLEN + 10)

enum smtp_state {
	SMTP_STATE_HELO,      /* banner sent, waiting for HELO/EHLO */
	SMTP_STATE_IDLE,      /* greeted, no transaction */
	SMTP_STATE_MAIL,      /* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,      /* at least one recipient accepted */
	SMTP_STATE_DATA,      /* reading the message after 354 */
	SMTP_STATE_QUEUEING,  /* final dot read, the commit runs: input waits */
	SMTP_STATE_STARTTLS,  /* 220 to STARTTLS being written; then the handshake */
	SMTP_STATE_AUTH,      /* 334 sent: the next line is an AUTH response */
	SMTP_STATE_AUTH_WAIT, /* the password is being checked, or the 535 delayed: input waits */
	SMTP_STATE_CLOSING,   /* last reply written, close when flushed */
};

/* What the next AUTH response line carries. */
enum auth_step {
	AUTH_STEP_PLAIN,      /* authzid NUL authcid NUL password */
	AUTH_STEP_LOGIN_USER, /* the user name */
	AUTH_STEP_LOGIN_PASS, /* the password */
};

/* Why the message read in DATA cannot be queued (checked at the final dot). */
enum data_flaw {
	DATA_OK,
	DATA_LINE_TOO_LONG,
	DATA_TOO_BIG,
	DATA_SPOOL_FAILED, /* writing to the spool failed: spool_err tells why */
};

struct smtp_session {
	const struct smtp_session_ctx *ctx;
	struct event_base *base;
	struct bufferevent *bev;
	/* Plain sessions write their replies themselves (flush_cb), before
	 * the loop sleeps; TLS ones leave it to the bufferevent. */
	bool direct;
	struct event *flush_ev;
	enum smtp_listener kind;
	bool tls;         /* the handshake is done: everything after it is encrypted */
	bool handshaking; /* bev is TLS, its handshake not finished */
	char tls_info[TLS_DESCRIBE_MAX]; /* "TLSv1.3 with cipher ... (256/256 bits)" */
	char tls_log[TLS_DESCRIBE_MAX];  /* "TLSv1.3/TLS_AES_256_GCM_SHA384" */
	/* AUTH: the user once authenticated ("" before), the exchange in hand. */
	char auth_user[AUTH_NAME_MAX + 1];
	char auth_try[AUTH_NAME_MAX + 1]; /* the user name being checked */
	const char *auth_mech;            /* "PLAIN" or "LOGIN" */
	enum auth_step auth_step;
	struct auth_check *auth_job; /* the check in flight */
	struct event *auth_delay;    /* holds the 535 back */
	struct addr client;
	char client_host[ADDR_STRLEN];
	char client_name[SMTP_CLIENT_NAME_MAX];
	/* For the log: the command in hand (its first reply counts it as
	 * accepted or not; SMTP_CMD_COUNT when none waits), commands seen and
	 * accepted per verb (SMTP_CMD_UNIMPLEMENTED: "unknown"), and the last
	 * command's name for "lost connection after ...". */
	enum smtp_verb cur_cmd;
	unsigned cmd_total[SMTP_CMD_COUNT];
	unsigned cmd_ok[SMTP_CMD_COUNT];
	const char *last_cmd;
	char msgid[SMTP_MSGID_MAX + 1];
	char qid[QUEUE_ID_LEN + 1]; /* the transaction's queue ID, "" before RCPT */
	enum smtp_state state;
	bool esmtp;
	bool paused;       /* reading stopped until the client reads replies */
	bool discard_line; /* inside an over-long command line */
	unsigned errors;
	char helo[SMTP_HELO_MAX + 1];
	/* The transaction. */
	struct queue_env *env;
	struct commit_job *job; /* in the disk pool (state QUEUEING) */
	uint64_t declared_size;
	/* DATA state. */
	struct evbuffer *msg;     /* content not yet handed to the spool */
	struct disk_spool *spool; /* the content beyond SMTP_SPOOL_CHUNK; NULL */
	int spool_err;            /* errno of the failed spool write */
	bool spool_wait;          /* reading stopped: too much waits for the spool */
	uint64_t msg_size;
	unsigned received_lines;
	bool in_headers;
	bool in_long_line;
	enum data_flaw flaw;
	char line[SMTP_TEXT_LINE_MAX + 1];
};

static void session_enter_state(struct smtp_session *s, enum smtp_state state);
static void session_process(struct smtp_session *s);

static const char *
hostname(const struct smtp_session *s)
{
	return s->ctx->relay->hostname;
}

static void reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The first reply to a command says whether it was accepted (2xx, 3xx);
 * the 354 to DATA waits for the reply after the final dot. */
static void
count_reply(struct smtp_session *s, const char *text)
{
	if (s->cur_cmd == SMTP_CMD_COUNT || strncmp(text, "354", 3) == 0)
		return;
	s->cmd_ok[s->cur_cmd] += text[0] == '2' || text[0] == '3';
	s->cur_cmd = SMTP_CMD_COUNT;
}

/* Append one reply line (CRLF added). */
static void
reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char text[SMTP_REPLY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	count_reply(s, text);
	evbuffer_add_printf(out, "%s\r\n", text);
	/* Once for all the replies of this pass of the loop (pipelining). */
	if (s->direct)
		event_active(s->flush_ev, EV_WRITE, 0);
}

/* The transaction's queue ID, or Postfix's "NOQUEUE" before there is one. */
static const char *
queue_id(const struct smtp_session *s)
{
	return s->qid[0] != '\0' ? s->qid : "NOQUEUE";
}

/* RFC 3848's protocol name for Received: and the log. */
static const char *
proto_name(const struct smtp_session *s)
{
	bool authed = s->auth_user[0] != '\0';

	if (!s->esmtp)
		return "SMTP";
	if (s->tls)
		return authed ? "ESMTPSA" : "ESMTPS";
	return authed ? "ESMTPA" : "ESMTP";
}

static void reject(struct smtp_session *s, const char *stage, const char *from, const char *to,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Refuse a MAIL, RCPT, DATA or the message with a reply, logged as
 * Postfix's smtpd does: "<ID|NOQUEUE>: reject: RCPT from unknown[addr]:
 * <reply>; from=<..> to=<..> proto=ESMTP helo=<..>" (from/to when known).
 */
static void
reject(struct smtp_session *s, const char *stage, const char *from, const char *to, const char *fmt,
    ...)
{
	char text[SMTP_REPLY_MAX], envelope[2 * ADDRESS_PATH_MAX + 32];
	va_list ap;
	int n = 0;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply(s, "%s", text);
	if (from != NULL)
		n = snprintf(envelope, sizeof(envelope), "from=<%s> ", from);
	if (to != NULL && n >= 0 && (size_t)n < sizeof(envelope))
		snprintf(envelope + n, sizeof(envelope) - (size_t)n, "to=<%s> ", to);
	else if (n == 0)
		envelope[0] = '\0';
	log_info("smtp: %s: reject: %s from %s: %s; %sproto=%s helo=<%s>", queue_id(s), stage,
	    s->client_name, text, envelope, proto_name(s), s->helo);
}

/* "ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4": Postfix's disconnect counts. */
static void
format_counts(const struct smtp_session *s, char *buf, size_t len)
{
	static const struct {
		enum smtp_verb verb;
		const char *name;
	} order[] = {
	    {SMTP_CMD_HELO, "helo"},
	    {SMTP_CMD_EHLO, "ehlo"},
	    {SMTP_CMD_STARTTLS, "starttls"},
	    {SMTP_CMD_AUTH, "auth"},
	    {SMTP_CMD_MAIL, "mail"},
	    {SMTP_CMD_RCPT, "rcpt"},
	    {SMTP_CMD_DATA, "data"},
	    {SMTP_CMD_RSET, "rset"},
	    {SMTP_CMD_NOOP, "noop"},
	    {SMTP_CMD_VRFY, "vrfy"},
	    {SMTP_CMD_HELP, "help"},
	    {SMTP_CMD_QUIT, "quit"},
	    {SMTP_CMD_UNIMPLEMENTED, "unknown"},
	};
	unsigned total = 0, ok = 0;
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && n < len; i++) {
		unsigned t = s->cmd_total[order[i].verb], k = s->cmd_ok[order[i].verb];

		if (t == 0)
			continue;
		total += t;
		ok += k;
		n +=
		    (size_t)(k == t ? snprintf(buf + n, len - n, "%s=%u ", order[i].name, t)
		                    : snprintf(buf + n, len - n, "%s=%u/%u ", order[i].name, k, t));
	}
	if (n < len && ok == total)
		snprintf(buf + n, len - n, "commands=%u", total);
	else if (n < len)
		snprintf(buf + n, len - n, "commands=%u/%u", ok, total);
}

/* A command is read: count it and remember it for "lost connection after". */
static void
command_begin(struct smtp_session *s, enum smtp_verb verb)
{
	if (verb == SMTP_CMD_COUNT)
		verb = SMTP_CMD_UNIMPLEMENTED;
	s->cur_cmd = verb;
	s->cmd_total[verb]++;
	s->last_cmd = verb == SMTP_CMD_UNIMPLEMENTED ? "UNKNOWN" : smtp_verb_name(verb);
}

/* "timeout" or "lost connection": "after DATA (120 bytes) from unknown[addr]". */
static void
log_session_end(const struct smtp_session *s, const char *what)
{
	char id[QUEUE_ID_LEN + 3] = "";

	if (s->qid[0] != '\0')
		snprintf(id, sizeof(id), "%s: ", s->qid);
	if (s->state == SMTP_STATE_DATA)
		log_info("smtp: %s%s after DATA (%" PRIu64 " bytes) from %s", id, what, s->msg_size,
		    s->client_name);
	else
		log_info("smtp: %s%s after %s from %s", id, what, s->last_cmd, s->client_name);
}

/* The last reply of the session: close once it is written. */
static void
reply_close(struct smtp_session *s, const char *text)
{
	reply(s, "%s", text);
	session_enter_state(s, SMTP_STATE_CLOSING);
}

static void
transaction_reset(struct smtp_session *s)
{
	queue_env_free(s->env);
	s->env = NULL;
	s->qid[0] = '\0';
	s->declared_size = 0;
	disk_spool_free(s->spool);
	s->spool = NULL;
	if (s->msg != NULL)
		evbuffer_drain(s->msg, evbuffer_get_length(s->msg));
}

static void
session_enter_state(struct smtp_session *s, enum smtp_state state)
{
	const struct config_relay *r = s->ctx->relay;
	struct timeval tv = {r->command_timeout, 0};

	s->state = state;
	switch (state) {
	case SMTP_STATE_DATA:
		tv.tv_sec = r->data_timeout;
		s->msg_size = 0;
		s->received_lines = 0;
		s->in_headers = true;
		s->in_long_line = false;
		s->flaw = DATA_OK;
		s->spool_err = 0;
		s->spool_wait = false;
		break;
	case SMTP_STATE_CLOSING:
	case SMTP_STATE_STARTTLS:
	case SMTP_STATE_AUTH_WAIT:
	case SMTP_STATE_QUEUEING: bufferevent_disable(s->bev, EV_READ); break;
	case SMTP_STATE_AUTH: break;
	case SMTP_STATE_HELO:
	case SMTP_STATE_IDLE: transaction_reset(s); break;
	case SMTP_STATE_MAIL:
	case SMTP_STATE_RCPT: break;
	}
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* Count a protocol error; too many end the session. */
static void
protocol_error(struct smtp_session *s)
{
	s->ctx->stats->protocol_errors++;
	if (++s->errors >= SMTP_MAX_ERRORS) {
		log_info("smtp: too many errors after %s from %s", s->last_cmd, s->client_name);
		reply(s, "421 4.7.0 %s Error: too many errors", hostname(s));
		session_enter_state(s, SMTP_STATE_CLOSING);
	}
}

/* ---- command handlers: one per verb ---- */

/* Does this listener do AUTH here at all (TLS or not yet)? */
static bool
auth_available(const struct smtp_session *s)
{
	return s->ctx->auth != NULL &&
	    (s->kind != SMTP_LISTENER_SMTP || s->ctx->relay->auth_on_listen);
}

/* AUTH is listed in EHLO only over TLS (RFC 4954 4: no plaintext passwords). */
static bool
auth_offered(const struct smtp_session *s)
{
	return auth_available(s) && s->tls && s->auth_user[0] == '\0';
}

static void
cmd_greet(struct smtp_session *s, const struct smtp_command *cmd, bool esmtp)
{
	size_t n = cmd->arglen < SMTP_HELO_MAX ? cmd->arglen : SMTP_HELO_MAX;
	const struct config_relay *r = s->ctx->relay;

	memcpy(s->helo, cmd->arg, n);
	s->helo[n] = '\0';
	s->esmtp = esmtp;
	session_enter_state(s, SMTP_STATE_IDLE);
	if (!esmtp) {
		reply(s, "250 %s", r->hostname);
		return;
	}
	reply(s, "250-%s", r->hostname);
	reply(s, "250-SIZE %" PRIu64, r->max_message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-PIPELINING");
	if (s->ctx->tls != NULL && !s->tls)
		reply(s, "250-STARTTLS");
	if (auth_offered(s))
		reply(s, "250-AUTH PLAIN LOGIN");
	reply(s, "250-HELP");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
cmd_helo(struct smtp_session *s, const struct smtp_command *cmd)
{
	cmd_greet(s, cmd, false);
}

static void
cmd_ehlo(struct smtp_session *s, const struct smtp_command *cmd)
{
	cmd_greet(s, cmd, true);
}

/*
 * Nothing is accepted that cannot be stored: while the queue cannot be
 * written, the disk is below queue-min-free or the queue holds
 * queue-max-messages messages, MAIL is deferred (as Postfix
 * does).  True when a reply was given.
 */
static bool
mail_deferred(struct smtp_session *s, const char *sender)
{
	const char *detail;

	switch (intake_state(s->ctx->intake, &detail)) {
	case INTAKE_QUEUE_UNWRITABLE:
		reject(s, "MAIL", sender, NULL,
		    "451 4.3.0 Error: queue file write error, try again later");
		break;
	case INTAKE_DISK_RESERVE:
	case INTAKE_QUEUE_FULL:
		reject(s, "MAIL", sender, NULL, "452 4.3.1 Insufficient system storage");
		break;
	default: return false;
	}
	s->ctx->stats->mail_deferred++;
	log_debug("smtp: %s: MAIL deferred: %s", s->client_name, detail);
	return true;
}

static void
cmd_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	const struct config_relay *r = s->ctx->relay;
	char sender[ADDRESS_PATH_MAX + 1];

	if (s->state == SMTP_STATE_HELO) {
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		protocol_error(s);
		return;
	}
	if (s->state != SMTP_STATE_IDLE) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		protocol_error(s);
		return;
	}
	address_str(&cmd->path, sender, sizeof(sender));
	if (mail_deferred(s, sender))
		return;
	if (cmd->size > r->max_message_size) {
		reject(s, "MAIL", sender, NULL,
		    "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	if ((s->env = queue_env_new()) == NULL || queue_env_set(&s->env->sender, sender) == -1 ||
	    queue_env_set(&s->env->client_addr, s->client_host) == -1 ||
	    queue_env_set(&s->env->client_helo, s->helo) == -1) {
		transaction_reset(s);
		reject(s, "MAIL", sender, NULL, "451 4.3.0 Error: out of memory");
		return;
	}
	s->env->body_8bit = cmd->body == SMTP_BODY_8BITMIME;
	s->declared_size = cmd->size;
	session_enter_state(s, SMTP_STATE_MAIL);
	reply(s, "250 2.1.0 Ok");
}

static bool
has_rcpt(const struct queue_env *env, const char *address)
{
	for (size_t i = 0; i < env->nrcpts; i++)
		if (strcmp(env->rcpts[i].address, address) == 0)
			return true;
	return false;
}

/* The reply to a refused recipient ("code text"); NULL when accepted. */
static const char *
verdict_reply(enum policy_verdict v, const char **text)
{
	switch (v) {
	case POLICY_LOCAL:
	case POLICY_RELAY: return NULL;
	case POLICY_DENY_RELAY: *text = "Relay access denied"; return "550 5.7.1";
	case POLICY_DENY_ROUTING: *text = "Sender-specified routing refused"; return "550 5.7.1";
	case POLICY_UNKNOWN_USER:
		*text = "Recipient address rejected: user unknown";
		return "550 5.1.1";
	}
	*text = "refused";
	return "550 5.7.1";
}

/*
 * The first recipient opens the transaction, as in Postfix: the message gets
 * its queue ID now (the Received: header and the file use it) and the log
 * says which client it came from.
 */
static void
transaction_open(struct smtp_session *s)
{
	if (s->qid[0] != '\0')
		return;
	queue_id_new(s->qid);
	memcpy(s->env->id, s->qid, sizeof(s->qid));
	if (s->auth_user[0] != '\0')
		log_info("smtp: %s: client=%s, sasl_method=%s, sasl_username=%s", s->qid,
		    s->client_name, s->auth_mech, s->auth_user);
	else
		log_info("smtp: %s: client=%s", s->qid, s->client_name);
}

static void
cmd_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	const struct config_relay *r = s->ctx->relay;
	struct smtp_stats *st = s->ctx->stats;
	char rcpt[ADDRESS_PATH_MAX + 1];
	enum policy_verdict v;
	const char *refusal, *text;

	if (s->state != SMTP_STATE_MAIL && s->state != SMTP_STATE_RCPT) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		protocol_error(s);
		return;
	}
	address_str(&cmd->path, rcpt, sizeof(rcpt));
	if (s->env->nrcpts >= r->max_recipients) {
		st->recipients_refused++;
		reject(s, "RCPT", s->env->sender, rcpt, "452 4.5.3 Error: too many recipients");
		return;
	}
	/* An authenticated client relays anywhere, as a trusted network does. */
	v = policy_check_rcpt(s->ctx->policy, &cmd->path,
	    s->auth_user[0] != '\0' || policy_is_trusted(s->ctx->policy, &s->client));
	if ((refusal = verdict_reply(v, &text)) != NULL) {
		st->recipients_refused++;
		st->relay_denied += v == POLICY_DENY_RELAY || v == POLICY_DENY_ROUTING;
		reject(s, "RCPT", s->env->sender, rcpt, "%s <%s>: %s", refusal, rcpt, text);
		return;
	}
	if (!has_rcpt(s->env, rcpt) && queue_env_add_rcpt(s->env, rcpt, time(NULL)) == -1) {
		reject(s, "RCPT", s->env->sender, rcpt,
		    "452 4.3.1 Error: insufficient system resources");
		return;
	}
	transaction_open(s);
	st->recipients_accepted++;
	session_enter_state(s, SMTP_STATE_RCPT);
	reply(s, "250 2.1.5 Ok");
}

static void
cmd_data(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	if (s->state == SMTP_STATE_MAIL) {
		reject(s, "DATA", s->env->sender, NULL, "554 5.5.1 Error: no valid recipients");
		return;
	}
	if (s->state != SMTP_STATE_RCPT) {
		reply(s, "503 5.5.1 Error: need RCPT command");
		protocol_error(s);
		return;
	}
	if (s->msg == NULL && (s->msg = evbuffer_new()) == NULL) {
		reject(s, "DATA", s->env->sender, s->env->rcpts[0].address,
		    "451 4.3.0 Error: out of memory");
		return;
	}
	s->msgid[0] = '\0';
	session_enter_state(s, SMTP_STATE_DATA);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
cmd_rset(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	session_enter_state(s, s->state == SMTP_STATE_HELO ? SMTP_STATE_HELO : SMTP_STATE_IDLE);
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "221 2.0.0 Bye");
	session_enter_state(s, SMTP_STATE_CLOSING);
}

static void
cmd_vrfy(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_help(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
}

/*
 * RFC 3207: 220, then nothing more in plaintext.  What the client sent
 * after the STARTTLS line is thrown away unread (CVE-2011-0411: a command
 * injected there must not run as if it came over TLS), and reading stops
 * until the 220 is written; the handshake then begins on the socket
 * itself (write_cb), so bytes still in the kernel are read as TLS only.
 */
static void
cmd_starttls(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);

	(void)cmd;
	if (s->ctx->tls == NULL) {
		reply(s, "502 5.5.1 Error: command not implemented");
		protocol_error(s);
		return;
	}
	if (s->tls) {
		reply(s, "503 5.5.1 Error: TLS already active");
		protocol_error(s);
		return;
	}
	if (s->state != SMTP_STATE_HELO && s->state != SMTP_STATE_IDLE) {
		reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		protocol_error(s);
		return;
	}
	if (junk > 0) {
		log_warnx("smtp: %s: %zu octets pipelined after STARTTLS discarded", s->client_name,
		    junk);
		evbuffer_drain(in, junk);
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	session_enter_state(s, SMTP_STATE_STARTTLS);
}

/* ---- AUTH (RFC 4954) ---- */

/*
 * Keep the user name being tried, printable ASCII only (it is the client's
 * text and goes to the log).  False when anything had to be replaced: such
 * a name is refused, never checked.
 */
static bool
auth_keep_user(struct smtp_session *s, const unsigned char *name, size_t len)
{
	size_t n = len < AUTH_NAME_MAX ? len : AUTH_NAME_MAX;
	bool clean = n == len;

	for (size_t i = 0; i < n; i++) {
		bool printable = name[i] > 32 && name[i] < 127;

		s->auth_try[i] = printable ? (char)name[i] : '?';
		clean = clean && printable;
	}
	s->auth_try[n] = '\0';
	return clean;
}

/* The exchange is over (whatever its outcome): back to commands. */
static void
auth_end(struct smtp_session *s)
{
	session_enter_state(s, SMTP_STATE_IDLE);
	if (!s->paused)
		bufferevent_enable(s->bev, EV_READ);
}

/* The delayed 535 (auth_done_cb). */
static void
auth_fail_reply_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	reply(s, "535 5.7.8 Error: authentication failed");
	auth_end(s);
	session_process(s);
}

/* Back from the check on the pool: 235, or 535 after a pause. */
static void
auth_done_cb(enum auth_result r, void *arg)
{
	struct smtp_session *s = arg;
	struct timeval tv = {
	    SMTP_AUTH_FAIL_DELAY_MS / 1000, (SMTP_AUTH_FAIL_DELAY_MS % 1000) * 1000};

	s->auth_job = NULL;
	auth_note_result(s->ctx->auth, &s->client, r == AUTH_OK);
	if (r == AUTH_OK) {
		s->ctx->stats->auth_successes++;
		memcpy(s->auth_user, s->auth_try, sizeof(s->auth_user));
		log_info("smtp: %s: AUTH %s succeeded: sasl_username=%s", s->client_name,
		    s->auth_mech, s->auth_user);
		reply(s, "235 2.7.0 Authentication successful");
		auth_end(s);
		session_process(s);
		return;
	}
	s->ctx->stats->auth_failures++;
	log_warnx("smtp: %s: SASL %s authentication failed: sasl_username=%s", s->client_name,
	    s->auth_mech, s->auth_try);
	if (s->auth_delay == NULL &&
	    (s->auth_delay = evtimer_new(s->base, auth_fail_reply_cb, s)) == NULL) {
		auth_fail_reply_cb(-1, 0, s);
		return;
	}
	evtimer_add(s->auth_delay, &tv);
}

/* Hand user and password to the check; the reply waits for auth_done_cb. */
static void
auth_start(
    struct smtp_session *s, const unsigned char *user, size_t ulen, const char *pass, size_t plen)
{
	if (ulen == 0 || !auth_keep_user(s, user, ulen)) {
		reply(s, "501 5.5.2 Error: bad user name");
		auth_end(s);
		return;
	}
	s->auth_job = auth_check(s->ctx->auth, s->auth_try, pass, plen, auth_done_cb, s);
	if (s->auth_job == NULL) {
		reply(s, "454 4.7.0 Temporary authentication failure");
		auth_end(s);
		return;
	}
	session_enter_state(s, SMTP_STATE_AUTH_WAIT);
}

/* PLAIN: "authzid NUL authcid NUL password"; authzid empty or the same user. */
static void
auth_plain(struct smtp_session *s, const unsigned char *msg, size_t len)
{
	const unsigned char *nul1 = memchr(msg, '\0', len), *user, *nul2;

	if (nul1 == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg))) == NULL) {
		reply(s, "501 5.5.2 Error: malformed PLAIN response");
		auth_end(s);
		return;
	}
	user = nul1 + 1;
	if (nul1 != msg &&
	    ((size_t)(nul1 - msg) != (size_t)(nul2 - user) ||
	        memcmp(msg, user, (size_t)(nul1 - msg)) != 0)) {
		(void)auth_keep_user(s, user, (size_t)(nul2 - user));
		auth_done_cb(AUTH_FAILED, s);
		return;
	}
	auth_start(
	    s, user, (size_t)(nul2 - user), (const char *)nul2 + 1, len - (size_t)(nul2 + 1 - msg));
}

/* One step of the exchange with the decoded response. */
static void
auth_step(struct smtp_session *s, const unsigned char *msg, size_t len)
{
	switch (s->auth_step) {
	case AUTH_STEP_PLAIN: auth_plain(s, msg, len); break;
	case AUTH_STEP_LOGIN_USER:
		if (len == 0 || !auth_keep_user(s, msg, len)) {
			reply(s, "501 5.5.2 Error: bad user name");
			auth_end(s);
			break;
		}
		s->auth_step = AUTH_STEP_LOGIN_PASS;
		reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
		session_enter_state(s, SMTP_STATE_AUTH);
		break;
	case AUTH_STEP_LOGIN_PASS:
		auth_start(s, (const unsigned char *)s->auth_try, strlen(s->auth_try),
		    (const char *)msg, len);
		break;
	}
}

/* A response line (base64, "=" for empty, "*" to cancel); wiped after use. */
static void
auth_response(struct smtp_session *s, char *text, size_t len)
{
	unsigned char msg[AUTH_NAME_MAX * 2 + AUTH_PASS_MAX + 4];
	long n = 0;

	if (len == 1 && text[0] == '*') {
		reply(s, "501 5.7.0 Error: authentication aborted");
		auth_end(s);
		return;
	}
	if (!(len == 1 && text[0] == '=') &&
	    (n = auth_base64_decode(text, len, msg, sizeof(msg))) < 0) {
		reply(s, "501 5.5.2 Error: malformed response (not base64)");
		protocol_error(s);
		auth_end(s);
		return;
	}
	auth_step(s, msg, (size_t)n);
	explicit_bzero(msg, sizeof(msg));
}

/* Read one AUTH response line; false when more input is needed. */
static bool
read_auth(struct smtp_session *s, struct evbuffer *in)
{
	size_t eol_len, total;
	struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);

	if (p.pos == -1) {
		if (evbuffer_get_length(in) <= SMTP_TEXT_LINE_MAX)
			return false;
		/* read_command answers 500 when the rest of the line is in. */
		evbuffer_drain(in, evbuffer_get_length(in));
		s->discard_line = true;
		auth_end(s);
		return true;
	}
	total = (size_t)p.pos + 1;
	if (total > SMTP_TEXT_LINE_MAX) {
		evbuffer_drain(in, total);
		reply(s, "500 5.5.6 Error: authentication exchange line too long");
		auth_end(s);
		return true;
	}
	evbuffer_remove(in, s->line, total);
	total -= total >= 2 && s->line[total - 2] == '\r' ? 2 : 1;
	auth_response(s, s->line, total);
	explicit_bzero(s->line, sizeof(s->line));
	return true;
}

/* Why AUTH cannot start now, as the reply to give; NULL: it can. */
static const char *
auth_refusal(struct smtp_session *s)
{
	if (!auth_available(s))
		return "502 5.5.1 Error: command not implemented";
	if (!s->tls)
		return "538 5.7.11 Encryption required for requested authentication mechanism";
	if (s->auth_user[0] != '\0')
		return "503 5.5.1 Error: already authenticated";
	if (s->state == SMTP_STATE_HELO)
		return "503 5.5.1 Error: send HELO/EHLO first";
	if (s->state != SMTP_STATE_IDLE)
		return "503 5.5.1 Error: MAIL transaction in progress";
	return NULL;
}

/* AUTH PLAIN [initial-response] | AUTH LOGIN [initial-response]. */
static void
cmd_auth(struct smtp_session *s, const struct smtp_command *cmd)
{
	const char *refusal = auth_refusal(s), *sp;
	size_t mlen;

	if (refusal != NULL) {
		reply(s, "%s", refusal);
		protocol_error(s);
		return;
	}
	if (auth_is_blocked(s->ctx->auth, &s->client)) {
		s->ctx->stats->auth_blocked++;
		log_warnx("smtp: %s: AUTH refused: %d failures within %d s", s->client_name,
		    AUTH_MAX_FAILURES, AUTH_WINDOW);
		reply_close(s, "421 4.7.0 Error: too many failed authentications, try again later");
		return;
	}
	sp = memchr(cmd->arg, ' ', cmd->arglen);
	mlen = sp != NULL ? (size_t)(sp - cmd->arg) : cmd->arglen;
	if (mlen == 5 && strncasecmp(cmd->arg, "PLAIN", 5) == 0) {
		s->auth_mech = "PLAIN";
		s->auth_step = AUTH_STEP_PLAIN;
	} else if (mlen == 5 && strncasecmp(cmd->arg, "LOGIN", 5) == 0) {
		s->auth_mech = "LOGIN";
		s->auth_step = AUTH_STEP_LOGIN_USER;
	} else {
		reply(s, "504 5.5.4 Error: unsupported authentication mechanism");
		protocol_error(s);
		return;
	}
	s->auth_try[0] = '\0';
	session_enter_state(s, SMTP_STATE_AUTH);
	if (sp != NULL) {
		/* The initial response (RFC 4954 4): the first step at once. */
		char ir[SMTP_COMMAND_LINE_MAX];
		size_t len = cmd->arglen - mlen - 1;

		memcpy(ir, sp + 1, len);
		auth_response(s, ir, len);
		explicit_bzero(ir, sizeof(ir));
		return;
	}
	reply(s, s->auth_step == AUTH_STEP_PLAIN ? "334 " : "334 VXNlcm5hbWU6"); /* "Username:" */
}

static void
cmd_unimplemented(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "502 5.5.1 Error: command not implemented");
	protocol_error(s);
}

typedef void (*cmd_handler)(struct smtp_session *, const struct smtp_command *);

static const cmd_handler handlers[SMTP_CMD_COUNT] = {
    [SMTP_CMD_HELO] = cmd_helo,
    [SMTP_CMD_EHLO] = cmd_ehlo,
    [SMTP_CMD_MAIL] = cmd_mail,
    [SMTP_CMD_RCPT] = cmd_rcpt,
    [SMTP_CMD_DATA] = cmd_data,
    [SMTP_CMD_RSET] = cmd_rset,
    [SMTP_CMD_NOOP] = cmd_noop,
    [SMTP_CMD_QUIT] = cmd_quit,
    [SMTP_CMD_VRFY] = cmd_vrfy,
    [SMTP_CMD_HELP] = cmd_help,
    [SMTP_CMD_STARTTLS] = cmd_starttls,
    [SMTP_CMD_AUTH] = cmd_auth,
    [SMTP_CMD_UNIMPLEMENTED] = cmd_unimplemented,
};

/* A refused line: the reply the parser's verdict calls for. */
static void
reply_parse_error(struct smtp_session *s, enum smtp_parse_status st, const struct smtp_command *cmd)
{
	switch (st) {
	case SMTP_PARSE_UNKNOWN: reply(s, "500 5.5.2 Error: command not recognized"); break;
	case SMTP_PARSE_TOO_LONG: reply(s, "500 5.5.2 Error: line too long"); break;
	case SMTP_PARSE_BAD_ADDRESS:
		reply(
		    s, "501 5.1.%d Error: bad address syntax", cmd->verb == SMTP_CMD_MAIL ? 7 : 3);
		break;
	case SMTP_PARSE_BAD_PARAM: reply(s, "555 5.5.4 Error: unsupported parameter"); break;
	case SMTP_PARSE_SYNTAX:
	case SMTP_PARSE_OK: reply(s, "501 5.5.4 Error: syntax error in parameters"); break;
	}
	protocol_error(s);
}

/*
 * A line no SMTP client sends: an HTTP or proxy request, a mail header, or
 * one that does not start with a letter (Postfix's smtpd_forbidden_commands).
 */
static bool
is_non_smtp(const char *line, size_t len)
{
	static const char *const http[] = {"CONNECT ", "GET ", "POST ", "PUT ", "HEAD "};
	size_t word = 0;

	if (len == 0 || !((line[0] >= 'A' && line[0] <= 'Z') || (line[0] >= 'a' && line[0] <= 'z')))
		return true;
	for (size_t i = 0; i < sizeof(http) / sizeof(http[0]); i++)
		if (len >= strlen(http[i]) && strncasecmp(line, http[i], strlen(http[i])) == 0)
			return true;
	while (word < len && line[word] != ' ' && line[word] != ':')
		word++;
	return word < len && line[word] == ':';
}

/* Log "non-SMTP command from unknown[addr]: <line>" and hang up, as Postfix does. */
static void
non_smtp(struct smtp_session *s, const char *line, size_t len)
{
	char shown[SMTP_LOGLINE_MAX + 1];
	size_t n = len < SMTP_LOGLINE_MAX ? len : SMTP_LOGLINE_MAX;

	for (size_t i = 0; i < n; i++)
		shown[i] = (line[i] >= 32 && line[i] < 127) ? line[i] : '?';
	shown[n] = '\0';
	s->ctx->stats->protocol_errors++;
	log_warnx("smtp: non-SMTP command from %s: %s", s->client_name, shown);
	reply_close(s, "521 5.7.0 Error: I can break rules, too. Goodbye.");
}

static void
handle_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	enum smtp_parse_status st = smtp_parse_command(line, len, &cmd);

	command_begin(s, cmd.verb);
	if (st == SMTP_PARSE_UNKNOWN && is_non_smtp(line, len)) {
		non_smtp(s, line, len);
		return;
	}
	if (st != SMTP_PARSE_OK) {
		reply_parse_error(s, st, &cmd);
		return;
	}
	handlers[cmd.verb](s, &cmd);
}

/* Read complete command lines; false when more input is needed. */
static bool
read_command(struct smtp_session *s, struct evbuffer *in)
{
	size_t eol_len, total;
	struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);

	if (p.pos == -1) {
		if (evbuffer_get_length(in) > SMTP_COMMAND_LINE_MAX) {
			s->discard_line = true;
			evbuffer_drain(in, evbuffer_get_length(in));
		}
		return false;
	}
	total = (size_t)p.pos + 1;
	if (s->discard_line || total > SMTP_COMMAND_LINE_MAX) {
		s->discard_line = false;
		evbuffer_drain(in, total);
		command_begin(s, SMTP_CMD_COUNT);
		reply(s, "500 5.5.2 Error: line too long");
		protocol_error(s);
		return true;
	}
	evbuffer_remove(in, s->line, total);
	if (total < 2 || s->line[total - 2] != '\r') {
		command_begin(s, SMTP_CMD_COUNT);
		reply(s, "500 5.5.2 Error: bare <LF> received");
		protocol_error(s);
		return true;
	}
	handle_command(s, s->line, total - 2);
	return true;
}

/* ---- DATA ---- */

/*
 * Postfix's form: the TLS comment, "with ESMTPS" (RFC 3848) and the single
 * recipient, e.g.
 *   Received: from client.test (unknown [192.0.2.1])
 *   	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
 *   	by relay.test (mxbroker) with ESMTPS id 0123456789abcdef
 *   	for <bob@example.test>; Tue, 1 Dec 2026 10:00:00 +0000
 */
static void
build_received(struct smtp_session *s, char *buf, size_t len)
{
	char date[64], using[TLS_DESCRIBE_MAX + 16] = "", rcpt[ADDRESS_PATH_MAX + 16] = "";
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (s->tls)
		snprintf(using, sizeof(using), "\r\n\t(using %s)", s->tls_info);
	if (s->env->nrcpts == 1)
		snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>", s->env->rcpts[0].address);
	snprintf(buf, len,
	    "Received: from %s (unknown [%s])%s\r\n\tby %s (mxbroker) with %s id %s%s; %s\r\n",
	    s->helo, s->client_host, using, hostname(s), proto_name(s), s->env->id, rcpt, date);
}

/* Back from the disk pool: only now may the client hear "queued". */
static void
commit_done_cb(int rc, int err, const struct queue_env *env, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_stats *st = s->ctx->stats;

	s->job = NULL;
	if (rc == -1) {
		st->queue_errors++;
		if (err == ENOSPC || err == EDQUOT)
			reject(s, "END-OF-MESSAGE", env->sender, env->rcpts[0].address,
			    "452 4.3.1 Error: insufficient system storage");
		else
			reject(s, "END-OF-MESSAGE", env->sender, env->rcpts[0].address,
			    "451 4.3.0 Error: queue file write error");
	} else {
		st->messages_queued++;
		st->bytes_queued += env->size;
		log_info("smtp: %s: message-id=<%s>", env->id, s->msgid);
		log_info("smtp: %s: from=<%s>, size=%" PRIu64 ", nrcpt=%zu (queue active)", env->id,
		    env->sender, env->size, env->nrcpts);
		reply(s, "250 2.0.0 Ok: queued as %s", env->id);
		if (s->ctx->queued != NULL)
			s->ctx->queued(env->id, s->ctx->queued_arg);
	}
	session_enter_state(s, SMTP_STATE_IDLE);
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/* Hand the message to the disk pool; the reply waits for commit_done_cb. */
static void
message_commit(struct smtp_session *s)
{
	char *received = malloc(SMTP_RECEIVED_MAX);

	if (received == NULL) {
		s->ctx->stats->queue_errors++;
		reject(s, "END-OF-MESSAGE", s->env->sender, s->env->rcpts[0].address,
		    "451 4.3.0 Error: out of memory");
		return;
	}
	s->env->arrival = time(NULL);
	build_received(s, received, SMTP_RECEIVED_MAX);
	if (s->spool != NULL)
		s->job = disk_pool_commit_spool(
		    s->ctx->pool, s->env, received, s->spool, s->msg, commit_done_cb, s);
	else
		s->job =
		    disk_pool_commit(s->ctx->pool, s->env, received, s->msg, commit_done_cb, s);
	if (s->job == NULL) {
		free(received);
		s->ctx->stats->queue_errors++;
		reject(s, "END-OF-MESSAGE", s->env->sender, s->env->rcpts[0].address,
		    "451 4.3.0 Error: out of memory");
		return;
	}
	s->env = NULL;
	s->msg = NULL;
	s->spool = NULL;
}

static void
message_end(struct smtp_session *s)
{
	struct smtp_stats *st = s->ctx->stats;
	const char *refusal = NULL;

	s->last_cmd = "END-OF-MESSAGE";
	if (s->spool != NULL && disk_spool_is_busy(s->spool)) {
		/* spool_done_cb comes back here when the write in hand is done. */
		session_enter_state(s, SMTP_STATE_QUEUEING);
		return;
	}
	if (s->flaw == DATA_SPOOL_FAILED) {
		st->queue_errors++;
		refusal = s->spool_err == ENOSPC || s->spool_err == EDQUOT
		    ? "452 4.3.1 Error: insufficient system storage"
		    : "451 4.3.0 Error: queue file write error";
	} else if (s->flaw == DATA_LINE_TOO_LONG)
		refusal = "500 5.5.2 Error: line too long (RFC 5321 limit is 1000 octets)";
	else if (s->flaw == DATA_TOO_BIG)
		refusal = "552 5.3.4 Message size exceeds fixed maximum message size";
	else if (s->received_lines >= SMTP_MAX_HOPS)
		refusal = "554 5.4.6 Error: too many hops (mail loop)";
	if (refusal != NULL) {
		st->messages_refused += s->flaw != DATA_SPOOL_FAILED;
		reject(
		    s, "END-OF-MESSAGE", s->env->sender, s->env->rcpts[0].address, "%s", refusal);
	} else {
		message_commit(s);
	}
	session_enter_state(s, s->job != NULL ? SMTP_STATE_QUEUEING : SMTP_STATE_IDLE);
}

/* A bare CR or LF in DATA: the smuggling case; no resynchronisation is tried. */
static void
data_bare_newline(struct smtp_session *s)
{
	s->ctx->stats->messages_refused++;
	s->ctx->stats->protocol_errors++;
	reject(s, "END-OF-MESSAGE", s->env->sender, s->env->rcpts[0].address,
	    "521 5.5.2 Error: bare <CR> or <LF> received in message");
	session_enter_state(s, SMTP_STATE_CLOSING);
}

/* The Message-ID header's value without <>, blanks and CRLF, for the log. */
static void
keep_message_id(struct smtp_session *s, const char *v, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n < SMTP_MSGID_MAX; i++)
		if (v[i] > 32 && v[i] < 127 && v[i] != '<' && v[i] != '>')
			s->msgid[n++] = v[i];
	s->msgid[n] = '\0';
}

/*
 * The message will be refused at its final dot: nothing more is kept, and
 * the spool (its file) goes now.
 */
static void
data_refused(struct smtp_session *s, enum data_flaw flaw, int err)
{
	s->flaw = flaw;
	s->spool_err = err;
	evbuffer_drain(s->msg, evbuffer_get_length(s->msg));
	disk_spool_free(s->spool);
	s->spool = NULL;
}

static void spool_done_cb(int err, void *arg);

/* Hand what is held to the spool once there is a chunk and no write in hand. */
static void
spool_flush(struct smtp_session *s)
{
	if (s->flaw != DATA_OK || evbuffer_get_length(s->msg) < SMTP_SPOOL_CHUNK)
		return;
	if (s->spool == NULL && (s->spool = disk_spool_new(s->ctx->pool, s->qid)) == NULL) {
		log_warnx("smtp: %s: spool: out of memory", queue_id(s));
		data_refused(s, DATA_SPOOL_FAILED, ENOMEM);
		return;
	}
	if (disk_spool_is_busy(s->spool))
		return;
	if (disk_spool_write(s->spool, s->msg, spool_done_cb, s) == -1) {
		log_warnx("smtp: %s: spool: out of memory", queue_id(s));
		data_refused(s, DATA_SPOOL_FAILED, ENOMEM);
	}
}

/* A spool write is done: the next one, the final dot, or reading again. */
static void
spool_done_cb(int err, void *arg)
{
	struct smtp_session *s = arg;

	if (err != 0)
		intake_write_failed(s->ctx->intake, err);
	if (err != 0 && s->flaw == DATA_OK)
		data_refused(s, DATA_SPOOL_FAILED, err);
	if (s->state == SMTP_STATE_QUEUEING && s->job == NULL) {
		message_end(s);
		if (s->state == SMTP_STATE_QUEUEING)
			return;
	} else {
		spool_flush(s);
		if (!s->spool_wait)
			return;
	}
	s->spool_wait = false;
	if (!s->paused)
		bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/* One complete line of content (with its CRLF) that is not the final dot. */
static void
data_line(struct smtp_session *s, const char *line, size_t len)
{
	const struct config_relay *r = s->ctx->relay;

	if (line[0] == '.') {
		line++;
		len--;
	}
	if (s->in_headers) {
		if (len == 2)
			s->in_headers = false;
		else if (len >= 9 && strncasecmp(line, "Received:", 9) == 0)
			s->received_lines++;
		else if (len >= 11 && strncasecmp(line, "Message-ID:", 11) == 0)
			keep_message_id(s, line + 11, len - 11);
	}
	s->msg_size += len;
	if (s->flaw != DATA_OK)
		return;
	if (s->msg_size > r->max_message_size) {
		data_refused(s, DATA_TOO_BIG, 0);
		return;
	}
	evbuffer_add(s->msg, line, len);
	spool_flush(s);
}

/* An over-long line: drop it, but still refuse a bare LF at its end. */
static bool
data_long_line(struct smtp_session *s, struct evbuffer *in, ssize_t lf)
{
	struct evbuffer_ptr p;
	char cr = '\0';

	if (s->flaw == DATA_OK)
		data_refused(s, DATA_LINE_TOO_LONG, 0);
	if (lf == -1) {
		if (evbuffer_get_length(in) < 2)
			return false;
		/* Keep the last byte: it may be the CR of the coming CRLF. */
		evbuffer_drain(in, evbuffer_get_length(in) - 1);
		s->in_long_line = true;
		return false;
	}
	if (lf > 0 && evbuffer_ptr_set(in, &p, (size_t)lf - 1, EVBUFFER_PTR_SET) == 0)
		evbuffer_copyout_from(in, &p, &cr, 1);
	evbuffer_drain(in, (size_t)lf + 1);
	s->in_long_line = false;
	if (cr != '\r') {
		data_bare_newline(s);
		return false;
	}
	return true;
}

/* Consume content lines; false when more input is needed or the session ends. */
static bool
read_data(struct smtp_session *s, struct evbuffer *in)
{
	size_t eol_len, total;
	struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);

	if (p.pos == -1) {
		if (s->in_long_line || evbuffer_get_length(in) > SMTP_TEXT_LINE_MAX)
			return data_long_line(s, in, -1);
		return false;
	}
	total = (size_t)p.pos + 1;
	if (s->in_long_line || total > SMTP_TEXT_LINE_MAX)
		return data_long_line(s, in, p.pos);
	evbuffer_remove(in, s->line, total);
	if (total < 2 || s->line[total - 2] != '\r' || memchr(s->line, '\r', total - 2)) {
		data_bare_newline(s);
		return false;
	}
	if (total == 3 && s->line[0] == '.')
		message_end(s);
	else
		data_line(s, s->line, total);
	return true;
}

/* ---- events ---- */

/* Handle every complete line in the input, pipelined commands included. */
static void
session_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	bool more = true;

	while (more && s->state != SMTP_STATE_CLOSING && s->state != SMTP_STATE_QUEUEING &&
	    s->state != SMTP_STATE_STARTTLS && s->state != SMTP_STATE_AUTH_WAIT) {
		if (evbuffer_get_length(out) > SMTP_OUTPUT_HIGH) {
			s->paused = true;
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (s->state == SMTP_STATE_DATA && s->spool != NULL &&
		    evbuffer_get_length(s->msg) >= SMTP_SPOOL_HIGH) {
			s->spool_wait = true;
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (s->state == SMTP_STATE_DATA)
			more = read_data(s, in);
		else if (s->state == SMTP_STATE_AUTH)
			more = read_auth(s, in);
		else
			more = read_command(s, in);
	}
}

/* The session ended by itself: tell the owner, then free it. */
static void
session_gone(struct smtp_session *s)
{
	if (s->ctx->gone != NULL)
		s->ctx->gone(s, s->ctx->gone_arg);
	smtp_session_free(s);
}

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

/*
 * A plain session's replies go out here, once the pass of the loop that
 * made them is over: straight to the socket, so the bufferevent need not
 * ask epoll whether it is writable (two epoll_ctl and a pass of the loop
 * per reply otherwise).  What the socket does not take, and any error, is
 * left to the bufferevent, which writes it and calls write_cb as before.
 */
static void
flush_cb(evutil_socket_t unused, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct evbuffer *out;
	int fd;

	(void)unused;
	(void)what;
	if (!s->direct)
		return;
	out = bufferevent_get_output(s->bev);
	fd = (int)bufferevent_getfd(s->bev);
	/* The bufferevent keeps its output frozen at the start (only it
	 * drains it); we drain it here as its own writer does. */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0) {
		struct evbuffer_iovec v[8];
		int n = evbuffer_peek(out, -1, NULL, v, 8);
		/* evbuffer_iovec is laid out as struct iovec (libevent says so). */
		struct msghdr mh = {
		    .msg_iov = (struct iovec *)v, .msg_iovlen = (size_t)(n < 8 ? n : 8)};
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0 || evbuffer_drain(out, (size_t)w) == -1)
			break;
	}
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) > 0)
		bufferevent_enable(s->bev, EV_WRITE);
	else
		write_cb(s->bev, s); /* all out: what the bufferevent would say */
}

/*
 * A TLS bufferevent accepting on `fd` (closed with it, or now on failure)
 * with a new SSL from the current context: s->bev, handshaking.  0 or -1.
 */
static int
tls_bev_new(struct smtp_session *s, int fd)
{
	SSL *ssl = tls_server_ssl_new(s->ctx->tls);

	if (ssl == NULL) {
		close(fd);
		return -1;
	}
	/* With BEV_OPT_CLOSE_ON_FREE the bufferevent frees the SSL and closes fd. */
	s->bev = bufferevent_openssl_socket_new(
	    s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		log_warnx("smtp: %s: TLS: out of memory", s->client_name);
		SSL_free(ssl);
		close(fd);
		return -1;
	}
	/* Many clients close after QUIT without a TLS close_notify. */
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->handshaking = true;
	s->direct = false;
	return 0;
}

/*
 * The 220 to STARTTLS is written: the plaintext bufferevent gives up the
 * socket (its input was discarded, reading stopped with the 220) and TLS
 * takes over.  RFC 3207 4.2: the session starts afresh, no HELO, no
 * transaction.
 */
static void
tls_begin(struct smtp_session *s)
{
	int fd = (int)bufferevent_getfd(s->bev);

	bufferevent_setfd(s->bev, -1); /* keep the socket open through the free */
	bufferevent_free(s->bev);
	s->bev = NULL;
	if (tls_bev_new(s, fd) == -1) {
		session_gone(s);
		return;
	}
	s->helo[0] = '\0';
	s->esmtp = false;
	session_enter_state(s, SMTP_STATE_HELO);
}

/* The handshake is done: remember what was agreed for Received: and the log. */
static void
tls_established(struct smtp_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	s->handshaking = false;
	s->tls = true;
	s->ctx->stats->tls_sessions++;
	tls_describe(ssl, s->tls_info, sizeof(s->tls_info));
	snprintf(
	    s->tls_log, sizeof(s->tls_log), "%s/%s", tls_version_name(ssl), tls_cipher_name(ssl));
	log_info("smtp: TLS connection established from %s: %s", s->client_name, s->tls_info);
}

/* The handshake failed or the client left during it: log OpenSSL's reason. */
static void
tls_failed(struct smtp_session *s, short what)
{
	char why[256] = "";
	size_t n = 0;
	unsigned long e;

	while ((e = bufferevent_get_openssl_error(s->bev)) != 0 && n < sizeof(why)) {
		const char *r = ERR_reason_error_string(e);

		n += (size_t)snprintf(why + n, sizeof(why) - n, "%s%s", n > 0 ? "; " : "",
		    r != NULL ? r : "unknown error");
	}
	if (why[0] == '\0')
		snprintf(why, sizeof(why), "%s",
		    (what & BEV_EVENT_TIMEOUT) ? "timeout"
		        : (what & BEV_EVENT_EOF)
		        ? "connection closed by the client"
		        : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	s->ctx->stats->tls_failures++;
	log_warnx("smtp: TLS handshake failed from %s: %s", s->client_name, why);
	session_gone(s);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	/* Written out: a plain session writes its next replies itself again. */
	if (s->direct && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		bufferevent_disable(s->bev, EV_WRITE);
	if (s->state == SMTP_STATE_CLOSING) {
		/* The last reply is out: say close_notify (best effort, the
		 * socket is non-blocking) so the client sees a clean end. */
		if (s->tls)
			SSL_shutdown(bufferevent_openssl_get_ssl(s->bev));
		session_gone(s);
		return;
	}
	if (s->state == SMTP_STATE_STARTTLS) {
		tls_begin(s);
		return;
	}
	if (s->paused && s->state != SMTP_STATE_QUEUEING && !s->spool_wait) {
		s->paused = false;
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		return;
	}
	if (s->handshaking) {
		tls_failed(s, what);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && s->state != SMTP_STATE_CLOSING) {
		s->ctx->stats->timeouts++;
		log_session_end(s, "timeout");
		bufferevent_enable(s->bev, EV_WRITE);
		reply_close(s, "421 4.4.2 Error: timeout exceeded");
		return;
	}
	if (what & BEV_EVENT_ERROR)
		log_debug("smtp: %s: %s", s->client_name,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (s->state != SMTP_STATE_CLOSING)
		log_session_end(s, "lost connection");
	session_gone(s);
}

struct smtp_session *
smtp_session_new(const struct smtp_session_ctx *ctx, struct event_base *base, int fd,
    const struct addr *client, enum smtp_listener kind, const char *refuse)
{
	struct smtp_session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		close(fd);
		return NULL;
	}
	s->ctx = ctx;
	s->base = base;
	s->kind = kind;
	s->client = *client;
	s->cur_cmd = SMTP_CMD_COUNT;
	s->last_cmd = "CONNECT";
	addr_host_str(client, s->client_host, sizeof(s->client_host));
	snprintf(s->client_name, sizeof(s->client_name), "unknown[%s]", s->client_host);
	if (kind == SMTP_LISTENER_SMTPS) {
		/* The banner waits in the output until the handshake is done. */
		if (tls_bev_new(s, fd) == -1) {
			free(s);
			return NULL;
		}
	} else if ((s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		free(s);
		return NULL;
	} else {
		bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
		s->flush_ev = event_new(base, -1, 0, flush_cb, s);
		s->direct = s->flush_ev != NULL;
		bufferevent_enable(s->bev, s->direct ? EV_READ : EV_READ | EV_WRITE);
	}
	session_enter_state(s, SMTP_STATE_HELO);
	log_info("smtp: connect from %s", s->client_name);
	if (refuse != NULL) {
		reject(s, "CONNECT", NULL, NULL, "%s", refuse);
		session_enter_state(s, SMTP_STATE_CLOSING);
	} else
		reply(s, "220 %s ESMTP mxbroker", hostname(s));
	return s;
}

void
smtp_session_free(struct smtp_session *s)
{
	char counts[256];

	if (s == NULL)
		return;
	format_counts(s, counts, sizeof(counts));
	log_info("smtp: disconnect from %s %s%s%s", s->client_name, counts, s->tls ? " tls=" : "",
	    s->tls_log);
	if (s->job != NULL)
		disk_pool_cancel(s->ctx->pool, s->job);
	auth_check_cancel(s->auth_job);
	if (s->auth_delay != NULL)
		event_free(s->auth_delay);
	if (s->flush_ev != NULL)
		event_free(s->flush_ev);
	disk_spool_free(s->spool);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	queue_env_free(s->env);
	if (s->msg != NULL)
		evbuffer_free(s->msg);
	free(s);
}

bool
smtp_session_is_authenticated(const struct smtp_session *s)
{
	return s->auth_user[0] != '\0';
}

const struct addr *
smtp_session_client(const struct smtp_session *s)
{
	return &s->client;
}
