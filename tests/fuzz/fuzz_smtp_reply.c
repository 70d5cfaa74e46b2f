/*
 * fuzz_smtp_reply.c - libFuzzer target: what a remote SMTP server says to
 * smtp-relayd's delivery client.
 *
 * Each line of the input goes through smtp_reply_line_parse, the client's
 * one validating parser of peer input.  Then the whole input is the byte
 * stream of a server on loopback: greeting, EHLO reply with its extension
 * keywords (PIPELINING, 8BITMIME, SIZE n), MAIL/RCPT/DATA replies, the
 * final reply, split and joined at any place.  The first octet chooses the
 * message: bit 0 marks it 8BITMIME, bits 1-2 give 1 to 4 recipients.
 *
 * Checks beyond memory safety: an accepted line starts with its code
 * (200-599); the client ends by itself after the server's EOF, calls back
 * once, with one reply per recipient, each code 0 or 200-599 and its text
 * terminated inside its buffer.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/addr.h"
#include "smtp-relay/smtp_client.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct addr server;
static int lfd = -1;

struct outcome {
	unsigned calls;
	size_t nrcpts;
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	(void)argc;
	(void)argv;
	/* The server side closes while the client may still be writing. */
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (base == NULL || addr_parse("127.0.0.1", 0, &server) == -1)
		abort();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd == -1 || bind(lfd, addr_sa(&server), server.len) == -1 || listen(lfd, 16) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&ss, &len) == -1 ||
	    addr_from_sockaddr((struct sockaddr *)&ss, len, &server) == -1)
		abort();
	return 0;
}

static void
check_lines(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl != NULL ? nl : end) - p);
		unsigned code = 0;
		bool more = false;

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (smtp_reply_line_parse(p, len, &code, &more) == 0 &&
		    (code < 200 || code > 599 || (unsigned)(p[0] - '0') != code / 100))
			abort();
		p = nl != NULL ? nl + 1 : end;
	}
}

static void
done_cb(const struct smtp_client_reply *results, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	for (size_t i = 0; i < o->nrcpts; i++) {
		unsigned code = results[i].code;

		if ((code != 0 && (code < 200 || code > 599)) ||
		    memchr(results[i].text, '\0', sizeof(results[i].text)) == NULL)
			abort();
	}
}

/* Play the server: all of the input, then EOF; never read the client. */
static void
run_session(uint8_t flags, const uint8_t *data, size_t size)
{
	static const char *const rcpts[] = {
	    "a@example.test", "b@example.test", "c@example.test", "d@example.test"};
	static const char content[] = "Subject: fuzz\r\n\r\nbody\r\n.leading dot\r\n";
	struct smtp_client_timeouts t = {1, 1, 1, 1, 1, 1};
	struct smtp_client_msg msg = {.helo = "relay.example.test",
	    .sender = "s@example.test",
	    .rcpts = rcpts,
	    .nrcpts = 1 + ((flags >> 1) & 3),
	    .content = content,
	    .len = sizeof(content) - 1,
	    .body_8bit = flags & 1};
	struct outcome o = {0, msg.nrcpts};
	struct smtp_client *c;
	int fd;

	c = smtp_client_start(base, &server, NULL, &msg, &t, done_cb, &o);
	if (c == NULL)
		return;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd == -1)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	shutdown(fd, SHUT_WR);
	/* Returns once the client freed itself: it holds the only events. */
	event_base_dispatch(base);
	close(fd);
	if (o.calls != 1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 65536)
		return 0;
	check_lines(data + 1, size - 1);
	run_session(data[0], data + 1, size - 1);
	return 0;
}
