/* smtp_proto.c - SMTP command-line parser (the protocol's input boundary). */
#include "smtp-relay/smtp_proto.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum arg_kind {
	ARG_NONE,     /* nothing may follow the verb */
	ARG_ANY,      /* optional free text */
	ARG_REQUIRED, /* free text, at least one character */
	ARG_MAIL,     /* FROM:<path> [params] */
	ARG_RCPT,     /* TO:<path> [params] */
};

static const struct verb {
	const char *name;
	enum smtp_verb verb;
	enum arg_kind arg;
} verbs[] = {
    {"HELO", SMTP_CMD_HELO, ARG_REQUIRED},
    {"EHLO", SMTP_CMD_EHLO, ARG_REQUIRED},
    {"MAIL", SMTP_CMD_MAIL, ARG_MAIL},
    {"RCPT", SMTP_CMD_RCPT, ARG_RCPT},
    {"DATA", SMTP_CMD_DATA, ARG_NONE},
    {"RSET", SMTP_CMD_RSET, ARG_NONE},
    {"NOOP", SMTP_CMD_NOOP, ARG_ANY},
    {"QUIT", SMTP_CMD_QUIT, ARG_NONE},
    {"VRFY", SMTP_CMD_VRFY, ARG_REQUIRED},
    {"HELP", SMTP_CMD_HELP, ARG_ANY},
    {"EXPN", SMTP_CMD_UNIMPLEMENTED, ARG_ANY},
    {"TURN", SMTP_CMD_UNIMPLEMENTED, ARG_ANY},
    {"ETRN", SMTP_CMD_UNIMPLEMENTED, ARG_ANY},
    {"STARTTLS", SMTP_CMD_STARTTLS, ARG_NONE},
    {"AUTH", SMTP_CMD_AUTH, ARG_REQUIRED},
    {"BDAT", SMTP_CMD_UNIMPLEMENTED, ARG_ANY},
};

const char *
smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "?";
}

/* The end of a "<...>" path starting at p: '>' outside a quoted string. */
static const char *
path_end(const char *p, const char *end)
{
	bool quoted = false;

	for (; p < end; p++) {
		if (quoted && *p == '\\' && p + 1 < end)
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '>' && !quoted)
			return p + 1;
	}
	return NULL;
}

/* Parse one decimal parameter value into *out, no sign, no overflow. */
static int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]) || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* One MAIL parameter "KEY=value"; each may appear once. */
static enum smtp_parse_status
parse_mail_param(const char *p, size_t len, struct smtp_command *cmd, unsigned *seen)
{
	const char *eq = memchr(p, '=', len);
	size_t klen = eq != NULL ? (size_t)(eq - p) : len;
	const char *v = eq != NULL ? eq + 1 : p + len;
	size_t vlen = (size_t)(p + len - v);

	if (klen == 4 && strncasecmp(p, "SIZE", 4) == 0 && eq != NULL) {
		if ((*seen & 1) || parse_u64(v, vlen, &cmd->size) == -1)
			return SMTP_PARSE_SYNTAX;
		*seen |= 1;
		return SMTP_PARSE_OK;
	}
	if (klen == 4 && strncasecmp(p, "BODY", 4) == 0 && eq != NULL) {
		if (*seen & 2)
			return SMTP_PARSE_SYNTAX;
		*seen |= 2;
		if (vlen == 4 && strncasecmp(v, "7BIT", 4) == 0)
			cmd->body = SMTP_BODY_7BIT;
		else if (vlen == 8 && strncasecmp(v, "8BITMIME", 8) == 0)
			cmd->body = SMTP_BODY_8BITMIME;
		else
			return SMTP_PARSE_BAD_PARAM;
		return SMTP_PARSE_OK;
	}
	if (klen == 4 && strncasecmp(p, "AUTH", 4) == 0 && eq != NULL && vlen > 0) {
		/* xtext (RFC 3461 4) of a mailbox or "<>": kept by nobody, so only
		 * its characters are checked. */
		if (*seen & 4)
			return SMTP_PARSE_SYNTAX;
		for (size_t i = 0; i < vlen; i++)
			if (v[i] <= ' ' || v[i] > '~' || v[i] == '=')
				return SMTP_PARSE_SYNTAX;
		*seen |= 4;
		cmd->has_auth = true;
		return SMTP_PARSE_OK;
	}
	return SMTP_PARSE_BAD_PARAM;
}

/* "FROM:<path> params" or "TO:<path> params" (spaces after ':' tolerated). */
static enum smtp_parse_status
parse_path_arg(const char *p, const char *end, bool mail, struct smtp_command *cmd)
{
	const char *prefix = mail ? "FROM:" : "TO:";
	size_t plen = strlen(prefix);
	const char *pe;
	enum address_status st;
	unsigned seen = 0;

	if ((size_t)(end - p) < plen || strncasecmp(p, prefix, plen) != 0)
		return SMTP_PARSE_SYNTAX;
	for (p += plen; p < end && *p == ' '; p++)
		;
	if (p == end || *p != '<' || (pe = path_end(p, end)) == NULL)
		return SMTP_PARSE_BAD_ADDRESS;
	st = address_parse(p, (size_t)(pe - p), &cmd->path);
	if (st == ADDRESS_NULL && mail)
		cmd->null_path = true;
	else if (st != ADDRESS_OK)
		return st == ADDRESS_ETOOLONG ? SMTP_PARSE_TOO_LONG : SMTP_PARSE_BAD_ADDRESS;
	for (p = pe; p < end;) {
		const char *q;
		enum smtp_parse_status ps;

		if (*p++ != ' ')
			return SMTP_PARSE_SYNTAX;
		if (p < end && *p == ' ')
			continue;
		if ((q = memchr(p, ' ', (size_t)(end - p))) == NULL)
			q = end;
		if (!mail)
			return SMTP_PARSE_BAD_PARAM;
		if (q > p &&
		    (ps = parse_mail_param(p, (size_t)(q - p), cmd, &seen)) != SMTP_PARSE_OK)
			return ps;
		p = q;
	}
	return SMTP_PARSE_OK;
}

static const struct verb *
find_verb(const char *line, size_t len)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		size_t n = strlen(verbs[i].name);

		if (len == n && strncasecmp(line, verbs[i].name, n) == 0)
			return &verbs[i];
	}
	return NULL;
}

enum smtp_parse_status
smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd)
{
	const char *sp, *arg, *end = line + len;
	const struct verb *v;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = SMTP_CMD_COUNT;
	if (len + 2 > SMTP_COMMAND_LINE_MAX)
		return SMTP_PARSE_TOO_LONG;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] > 126 ||
		    ((unsigned char)line[i] < 32 && line[i] != '\t'))
			return SMTP_PARSE_SYNTAX;
	while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	sp = memchr(line, ' ', (size_t)(end - line));
	if ((v = find_verb(line, (size_t)((sp != NULL ? sp : end) - line))) == NULL)
		return SMTP_PARSE_UNKNOWN;
	cmd->verb = v->verb;
	arg = sp != NULL ? sp + 1 : end;
	cmd->arg = arg;
	cmd->arglen = (size_t)(end - arg);
	switch (v->arg) {
	case ARG_NONE: return cmd->arglen == 0 ? SMTP_PARSE_OK : SMTP_PARSE_SYNTAX;
	case ARG_ANY: return SMTP_PARSE_OK;
	case ARG_REQUIRED: return cmd->arglen > 0 ? SMTP_PARSE_OK : SMTP_PARSE_SYNTAX;
	case ARG_MAIL:
	case ARG_RCPT: return parse_path_arg(arg, end, v->arg == ARG_MAIL, cmd);
	}
	return SMTP_PARSE_SYNTAX;
}
