/*
 * test_regress_smtp.c - inputs the fuzzers (tests/fuzz/fuzz_smtp_*.c) found
 * to break the SMTP relay's parsers, kept so the fixes stay fixed.
 */
#include <stdio.h>
#include <string.h>

#include "smtp-relay/address.h"
#include "smtp-relay/smtp_proto.h"
#include "tests/unit/tap.h"

/*
 * fuzz_smtp_command crash-91cfebd8f7b644a8a42bb35a9b43014b4cf61572: an
 * address literal with NUL bytes before the "]" was accepted (inet_pton stops
 * at the NUL) and left the domain "[9.0.2.1" without its bracket.  The
 * command parser already refuses control characters in a line, so SMTP
 * clients could not reach it; other callers of address_parse could.
 */
static void
test_literal_with_nul(void)
{
	static const char crash[] = "<u@[9.0.2.1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
	                            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0]>";
	static const char rcpt[] = "RCPT TO:<u@[192.0.2.1\0]>";
	static const char v6[] = "<u@[IPv6:2001:db8::1\0x]>";
	struct smtp_command cmd;
	struct address a;

	is_int(sizeof(crash) - 1, 49, "the crash input is 49 octets");
	is_int(address_parse(crash, sizeof(crash) - 1, &a), ADDRESS_ESYNTAX,
	    "literal with NUL octets refused");
	is_int(address_parse(v6, sizeof(v6) - 1, &a), ADDRESS_ESYNTAX,
	    "IPv6 literal with a NUL refused");
	ok(smtp_parse_command(rcpt, sizeof(rcpt) - 1, &cmd) != SMTP_PARSE_OK,
	    "RCPT TO with a NUL in the literal refused");
	/* The same literals without the NULs still parse. */
	is_int(address_parse("<u@[9.0.2.1]>", 13, &a), ADDRESS_OK, "plain literal accepted");
	is_str(a.domain, "[9.0.2.1]", "domain keeps its brackets");
}

int
main(void)
{
	test_literal_with_nul();
	return tap_done();
}
