/*
 * smtp_proto.h - the SMTP command parser: one function turns a client's
 * command line into a validated struct smtp_command; the session trusts its
 * output and nothing else.
 */
#ifndef MXB_SMTP_PROTO_H
#define MXB_SMTP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "smtp-relay/address.h"

/* RFC 5321 4.5.3.1.4 and 4.5.3.1.6: lines including CRLF. */
#define SMTP_COMMAND_LINE_MAX 512
#define SMTP_TEXT_LINE_MAX    1000

enum smtp_verb {
	SMTP_CMD_HELO,
	SMTP_CMD_EHLO,
	SMTP_CMD_MAIL,
	SMTP_CMD_RCPT,
	SMTP_CMD_DATA,
	SMTP_CMD_RSET,
	SMTP_CMD_NOOP,
	SMTP_CMD_QUIT,
	SMTP_CMD_VRFY,
	SMTP_CMD_HELP,
	SMTP_CMD_STARTTLS,      /* RFC 3207; no argument */
	SMTP_CMD_AUTH,          /* RFC 4954; arg = "MECHANISM [initial-response]" */
	SMTP_CMD_UNIMPLEMENTED, /* EXPN, TURN, BDAT, ...: 502 */
	SMTP_CMD_COUNT,
};

enum smtp_body {
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

/* What went wrong with a line; each maps to one reply in the session. */
enum smtp_parse_status {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_UNKNOWN,     /* 500 5.5.2 unrecognised command */
	SMTP_PARSE_SYNTAX,      /* 501 5.5.4 bad arguments */
	SMTP_PARSE_BAD_ADDRESS, /* 501 5.1.3 / 5.1.7 bad path */
	SMTP_PARSE_BAD_PARAM,   /* 555 5.5.4 unknown MAIL/RCPT parameter */
	SMTP_PARSE_TOO_LONG,    /* 500 5.5.2 over a length limit */
};

struct smtp_command {
	enum smtp_verb verb; /* SMTP_CMD_COUNT when no verb was recognised */
	const char *arg;     /* HELO/EHLO domain, VRFY/HELP text: points into the line */
	size_t arglen;
	struct address path; /* MAIL / RCPT */
	bool null_path;      /* MAIL FROM:<> */
	uint64_t size;       /* SIZE=n, 0 when absent */
	enum smtp_body body;
	bool has_auth; /* MAIL ... AUTH=<mailbox> (RFC 4954 5): accepted, not used */
};

/*
 * Parse one command line of `len` bytes (CRLF already removed; `line` need
 * not be terminated and must outlive cmd->arg).  Verbs are case-insensitive;
 * MAIL takes SIZE=, BODY= and AUTH=, RCPT no parameters; HELO/EHLO need a
 * domain or address literal; AUTH a mechanism; DATA, RSET, QUIT and
 * STARTTLS take none.
 */
enum smtp_parse_status smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd);

/* The verb's name in upper case, for logs. */
const char *smtp_verb_name(enum smtp_verb verb);

#endif
