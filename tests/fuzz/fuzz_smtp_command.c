/*
 * fuzz_smtp_command.c - libFuzzer target: the SMTP command line parser
 * (smtp_parse_command), the envelope address parser (address_parse) and the
 * relay policy that judges a parsed recipient.
 *
 * The input is one command line without its CRLF.  Besides memory safety the
 * target checks the parsers' promises: an accepted line respects the RFC 5321
 * limits, arg points into the line, an accepted address re-parses to itself
 * when written back as "<local@domain>".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"
#include "smtp-relay/address.h"
#include "smtp-relay/smtp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config *cfg;
static struct policy *policy;

static void
setup(void)
{
	static const char conf[] = "relay {\n"
	                           "  hostname \"relay.example.test\";\n"
	                           "  local-aliases { \"mail.example.test\"; \"example.org\"; };\n"
	                           "  relay-domains { \"example.test\"; };\n"
	                           "  trusted-networks { 127.0.0.1/32; 10.0.0.0/8; };\n"
	                           "};\n";
	char err[512];

	log_init("fuzz", LOG_LEVEL_ERR, false);
	if ((cfg = config_load_string("fuzz.conf", conf, err, sizeof(err))) == NULL ||
	    (policy = policy_new(&cfg->relay)) == NULL)
		abort();
}

/* An accepted address must survive being written and parsed again. */
static void
check_address(const struct address *a)
{
	char text[ADDRESS_PATH_MAX + 8], back[ADDRESS_PATH_MAX + 8];
	struct address again;
	size_t n;

	if (strlen(a->local) > ADDRESS_LOCAL_MAX || strlen(a->domain) > ADDRESS_DOMAIN_MAX)
		abort();
	if (a->domain[0] != '\0' && !(a->flags & ADDRESS_F_LITERAL) &&
	    !address_domain_valid(a->domain))
		abort();
	(void)policy_check_rcpt(policy, a, false);
	(void)policy_check_rcpt(policy, a, true);
	(void)address_is_postmaster(a);
	address_str(a, back, sizeof(back));
	if (a->local[0] == '\0' || a->domain[0] == '\0')
		return;
	n = (size_t)snprintf(text, sizeof(text), "<%s@%s>", a->local, a->domain);
	if (n >= sizeof(text))
		return;
	if (address_parse(text, n, &again) != ADDRESS_OK || strcmp(again.local, a->local) != 0 ||
	    strcmp(again.domain, a->domain) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command cmd;
	struct address a;
	enum address_status as;
	char *line;

	if (policy == NULL)
		setup();
	/* An exact-size copy: ASan sees any read past `size`. */
	if ((line = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(line, data, size);
	memset(&cmd, 0, sizeof(cmd));
	if (smtp_parse_command(line, size, &cmd) == SMTP_PARSE_OK) {
		if (cmd.verb >= SMTP_CMD_COUNT || size + 2 > SMTP_COMMAND_LINE_MAX)
			abort();
		if (cmd.arg != NULL && (cmd.arg < line || cmd.arg + cmd.arglen > line + size))
			abort();
		(void)smtp_verb_name(cmd.verb);
		if ((cmd.verb == SMTP_CMD_MAIL && !cmd.null_path) || cmd.verb == SMTP_CMD_RCPT)
			check_address(&cmd.path);
	}
	as = address_parse(line, size, &a);
	if (as == ADDRESS_OK)
		check_address(&a);
	else if (as != ADDRESS_NULL && as != ADDRESS_ESYNTAX && as != ADDRESS_ETOOLONG)
		abort();
	free(line);
	return 0;
}
