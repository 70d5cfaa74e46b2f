/* test_dsn.c - RFC 3463 status extraction and the RFC 3464 report. */
#include <stdlib.h>
#include <string.h>

#include "smtp-relay/dsn.h"
#include "smtp-relay/queue.h"
#include "tests/unit/tap.h"

static void
test_status(void)
{
	char buf[16];

	is_str(dsn_status(550, "550 5.1.1 no such user", buf, sizeof(buf)), "5.1.1", "5.1.1");
	is_str(dsn_status(451, "451 4.3.0 later", buf, sizeof(buf)), "4.3.0", "4.3.0");
	is_str(dsn_status(552, "552 5.3.4", buf, sizeof(buf)), "5.3.4", "code at the end");
	is_str(dsn_status(550, "550 no enhanced code", buf, sizeof(buf)), "5.0.0", "derived 5");
	is_str(dsn_status(421, "421 4.1.1 x", buf, sizeof(buf)), "4.1.1", "421");
	is_str(dsn_status(550, "550 4.1.1 class mismatch", buf, sizeof(buf)), "5.0.0",
	    "class must match the reply code");
	is_str(dsn_status(0, "127.0.0.1:25: connection refused", buf, sizeof(buf)), "4.0.0",
	    "no reply: temporary");
	is_str(dsn_status(550, "550 5.1.1000 too long", buf, sizeof(buf)), "5.0.0",
	    "at most three digits");
	is_str(dsn_status(550, "550 5.12.123 ok", buf, sizeof(buf)), "5.12.123", "wide");
	is_str(dsn_status(550, NULL, buf, sizeof(buf)), "5.0.0", "no text");
}

static void
test_build(void)
{
	struct queue_env *env = queue_env_new();
	static const char content[] = "Received: by x\r\nSubject: hello\r\n\r\nbody line\r\n";
	struct dsn_rcpt r[2] = {
	    {"bad@remote.test", "failed", "5.1.1", "mx.remote.test", "550 5.1.1 no", 100},
	    {"nx@nx.test", "failed", "5.1.2", NULL, "550 5.1.2 no such domain", 0},
	};
	size_t len = 0;
	char *out;

	queue_env_set(&env->sender, "alice@sender.test");
	memcpy(env->id, "0123456789abcdef", QUEUE_ID_LEN + 1);
	env->arrival = 1;
	out = dsn_build(env, content, strlen(content), r, 2, "relay.test", "alice@sender.test",
	    "fedcba9876543210", 1000, &len);
	ok(out != NULL && len == strlen(out), "built");
	ok(strstr(out, "Content-Type: multipart/report; report-type=delivery-status;") != NULL,
	    "multipart/report");
	ok(strstr(out, "\r\nFrom: Mail Delivery System <MAILER-DAEMON@relay.test>\r\n") != NULL,
	    "From");
	ok(strstr(out, "\r\nTo: <alice@sender.test>\r\n") != NULL, "To");
	ok(strstr(out, "Reporting-MTA: dns; relay.test\r\n") != NULL, "Reporting-MTA");
	ok(strstr(out,
	       "Final-Recipient: rfc822; bad@remote.test\r\nOriginal-Recipient: "
	       "rfc822; bad@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; "
	       "mx.remote.test\r\nDiagnostic-Code: smtp; 550 5.1.1 no\r\n") != NULL,
	    "per-recipient fields");
	ok(strstr(out,
	       "Final-Recipient: rfc822; nx@nx.test\r\nOriginal-Recipient: rfc822; "
	       "nx@nx.test\r\nAction: failed\r\nStatus: 5.1.2\r\nDiagnostic-Code: X-mxbroker; "
	       "550 5.1.2 no such domain\r\n") != NULL,
	    "a routing failure: no Remote-MTA");
	ok(strstr(out,
	       "Content-Type: text/rfc822-headers\r\n\r\nReceived: by x\r\nSubject: "
	       "hello\r\n\r\n--") != NULL,
	    "original headers attached");
	ok(strstr(out, "body line") == NULL, "the body is not");
	ok(strncmp(out, "Received: by relay.test (mxbroker) id fedcba9876543210;", 55) == 0,
	    "our Received: first");
	ok(strstr(out, "--fedcba9876543210/relay.test--\r\n") != NULL, "closing boundary");
	for (size_t i = 0; i < len; i++)
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r')) {
			ok(false, "bare LF at %zu", i);
			break;
		}
	ok(strstr(out, "Subject: Undelivered Mail Returned to Sender\r\n") != NULL,
	    "failure subject");
	free(out);
	r[0].action = "delayed";
	out = dsn_build(env, content, strlen(content), r, 1, "relay.test", "alice@sender.test",
	    "fedcba9876543210", 1000, &len);
	ok(out != NULL && strstr(out, "Subject: Delayed Mail (still being retried)\r\n") != NULL,
	    "delay-only subject");
	ok(out != NULL && strstr(out, "Action: delayed\r\n") != NULL, "Action: delayed");
	free(out);
	r[0].action = "failed";
	queue_env_free(env);
}

int
main(void)
{
	test_status();
	test_build();
	return tap_done();
}
