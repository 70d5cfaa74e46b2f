/* test_smtp_proto.c - the SMTP command-line parser. */
#include <string.h>

#include "common/log.h"
#include "smtp-relay/smtp_proto.h"
#include "tests/unit/tap.h"

static enum smtp_parse_status
parse(const char *line, struct smtp_command *cmd)
{
	return smtp_parse_command(line, strlen(line), cmd);
}

static void
test_verbs(void)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
	} cases[] = {
	    {"HELO client.test", SMTP_CMD_HELO},
	    {"ehlo client.test", SMTP_CMD_EHLO},
	    {"EHLO [127.0.0.1]", SMTP_CMD_EHLO},
	    {"DATA", SMTP_CMD_DATA},
	    {"rset", SMTP_CMD_RSET},
	    {"NOOP", SMTP_CMD_NOOP},
	    {"NOOP anything", SMTP_CMD_NOOP},
	    {"QUIT", SMTP_CMD_QUIT},
	    {"VRFY user", SMTP_CMD_VRFY},
	    {"HELP", SMTP_CMD_HELP},
	    {"HELP MAIL", SMTP_CMD_HELP},
	    {"EXPN list", SMTP_CMD_UNIMPLEMENTED},
	    {"STARTTLS", SMTP_CMD_STARTTLS},
	    {"AUTH PLAIN AGFsaWNlAHNlY3JldA==", SMTP_CMD_AUTH},
	    {"auth login", SMTP_CMD_AUTH},
	    {"MAIL FROM:<a@b.test> AUTH=<>", SMTP_CMD_MAIL},
	    {"MAIL FROM:<a@b.test> AUTH=a+2Bb@b.test SIZE=10", SMTP_CMD_MAIL},
	    {"QUIT  ", SMTP_CMD_QUIT},
	};
	struct smtp_command cmd;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		is_int(parse(cases[i].line, &cmd), SMTP_PARSE_OK, "parses: %s", cases[i].line);
		is_int(cmd.verb, cases[i].verb, "verb of: %s", cases[i].line);
	}
	parse("HELO client.test", &cmd);
	ok(cmd.arglen == 11 && memcmp(cmd.arg, "client.test", 11) == 0, "HELO argument");
	is_str(smtp_verb_name(SMTP_CMD_RCPT), "RCPT", "verb name");
}

static void
test_errors(void)
{
	static const struct {
		const char *line;
		enum smtp_parse_status st;
	} cases[] = {
	    {"", SMTP_PARSE_UNKNOWN},
	    {"FOO", SMTP_PARSE_UNKNOWN},
	    {"MAILFROM:<a@b>", SMTP_PARSE_UNKNOWN},
	    {"HELO", SMTP_PARSE_SYNTAX},
	    {"EHLO ", SMTP_PARSE_SYNTAX},
	    {"DATA x", SMTP_PARSE_SYNTAX},
	    {"STARTTLS now", SMTP_PARSE_SYNTAX},
	    {"AUTH", SMTP_PARSE_SYNTAX},
	    {"MAIL FROM:<a@b.test> AUTH=<> AUTH=<>", SMTP_PARSE_SYNTAX},
	    {"QUIT now", SMTP_PARSE_SYNTAX},
	    {"VRFY", SMTP_PARSE_SYNTAX},
	    {"MAIL", SMTP_PARSE_SYNTAX},
	    {"MAIL TO:<a@b>", SMTP_PARSE_SYNTAX},
	    {"MAIL FROM:a@b", SMTP_PARSE_BAD_ADDRESS},
	    {"MAIL FROM:<a@b", SMTP_PARSE_BAD_ADDRESS},
	    {"MAIL FROM:<a@b> SIZE=abc", SMTP_PARSE_SYNTAX},
	    {"MAIL FROM:<a@b> SIZE=1 SIZE=2", SMTP_PARSE_SYNTAX},
	    {"MAIL FROM:<a@b> SIZE=99999999999999999999999", SMTP_PARSE_SYNTAX},
	    {"MAIL FROM:<a@b> BODY=BINARYMIME", SMTP_PARSE_BAD_PARAM},
	    {"MAIL FROM:<a@b> SMTPUTF8", SMTP_PARSE_BAD_PARAM},
	    {"MAIL FROM:<a@b>X", SMTP_PARSE_SYNTAX},
	    {"RCPT TO:<>", SMTP_PARSE_BAD_ADDRESS},
	    {"RCPT TO:<a@b> NOTIFY=NEVER", SMTP_PARSE_BAD_PARAM},
	    {"RCPT FROM:<a@b>", SMTP_PARSE_SYNTAX},
	    {"NOOP \x01", SMTP_PARSE_SYNTAX},
	    {"HELO caf\xc3\xa9", SMTP_PARSE_SYNTAX},
	};
	struct smtp_command cmd;
	char longline[600];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(parse(cases[i].line, &cmd), cases[i].st, "refused: '%s'", cases[i].line);
	memset(longline, 'x', sizeof(longline) - 1);
	memcpy(longline, "NOOP ", 5);
	longline[sizeof(longline) - 1] = '\0';
	is_int(parse(longline, &cmd), SMTP_PARSE_TOO_LONG, "over 512 octets");
	longline[510] = '\0';
	is_int(parse(longline, &cmd), SMTP_PARSE_OK, "510 octets + CRLF = 512 accepted");
}

static void
test_mail_rcpt(void)
{
	struct smtp_command cmd;

	is_int(parse("MAIL FROM:<a@example.test>", &cmd), SMTP_PARSE_OK, "MAIL");
	is_str(cmd.path.local, "a", "sender local part");
	ok(!cmd.null_path && cmd.size == 0 && cmd.body == SMTP_BODY_7BIT, "MAIL defaults");
	is_int(parse("mail from:<>", &cmd), SMTP_PARSE_OK, "null sender");
	ok(cmd.null_path, "null path flagged");
	is_int(parse("MAIL FROM: <a@b.test> SIZE=12345 BODY=8BITMIME", &cmd), SMTP_PARSE_OK,
	    "MAIL with SIZE and BODY (space after colon tolerated)");
	is_int((long long)cmd.size, 12345, "SIZE value");
	is_int(cmd.body, SMTP_BODY_8BITMIME, "BODY value");
	is_int(parse("MAIL FROM:<a@b.test> body=7bit size=0", &cmd), SMTP_PARSE_OK,
	    "parameters are case-insensitive");
	is_int(parse("RCPT TO:<u@example.test>", &cmd), SMTP_PARSE_OK, "RCPT");
	is_str(cmd.path.domain, "example.test", "recipient domain");
	is_int(parse("RCPT TO:<postmaster>", &cmd), SMTP_PARSE_OK, "RCPT postmaster");
	is_int(parse("RCPT TO:<\"a>b\"@example.test>", &cmd), SMTP_PARSE_OK,
	    "'>' inside a quoted local part");
	is_int(parse("RCPT TO:<@a.test,@b.test:u@c.test>", &cmd), SMTP_PARSE_OK,
	    "source route accepted syntactically");
	ok(cmd.path.flags & ADDRESS_F_ROUTE, "source route flagged");
}

int
main(void)
{
	log_init("test_smtp_proto", LOG_LEVEL_ERR, false);
	test_verbs();
	test_errors();
	test_mail_rcpt();
	return tap_done();
}
