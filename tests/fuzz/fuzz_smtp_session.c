/*
 * fuzz_smtp_session.c - libFuzzer target: a whole SMTP server session
 * (smtp_session.c) driven through a socketpair: command dispatch and
 * sequencing, pipelining, and the DATA state machine (dot-unstuffing,
 * bare <CR>/<LF> refusal, over-long lines, the size limit, the hop count,
 * the commit through the disk pool into a scratch queue on /dev/shm).
 *
 * The first input byte picks the client (even: trusted 127.0.0.1, odd: the
 * untrusted 192.0.2.7); the rest is what the client sends, followed by EOF.
 * The session must end on its own (EOF seen, or it closes after a final
 * reply) within a bounded number of loop turns, and every reply line it
 * writes must be "DDD" followed by ' ' or '-' and end in CRLF.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"
#include "smtp-relay/address.h"
#include "smtp-relay/disk_pool.h"
#include "smtp-relay/intake.h"
#include "smtp-relay/queue.h"
#include "smtp-relay/smtp_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TURNS 200000

static struct event_base *base;
static struct config *cfg;
static struct queue *queue;
static struct policy *policy;
static struct disk_pool *pool;
static struct intake *intake;
static struct smtp_stats stats;
/* What a session borrows; no server: the session is driven directly. */
static struct smtp_session_ctx ctx;
static struct addr trusted, untrusted;
static char dir[128];

static int
remove_cb(const char *id, void *arg)
{
	(void)queue_remove(arg, id);
	return 0;
}

/* Leave nothing behind on /dev/shm (the queue is empty between inputs). */
static void
cleanup(void)
{
	static const char *const sub[] = {"/tmp", "/queue", "/corrupt", ""};
	char p[256];

	disk_pool_free(pool);
	intake_free(intake);
	policy_free(policy);
	queue_scan(queue, remove_cb, queue);
	queue_close(queue);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", dir, sub[i]);
		rmdir(p);
	}
}

static void
setup(void)
{
	static const char conf[] = "relay {\n"
	                           "  hostname \"relay.example.test\";\n"
	                           "  local-aliases { \"mail.example.test\"; };\n"
	                           "  relay-domains { \"example.test\"; };\n"
	                           "  trusted-networks { 127.0.0.1/32; };\n"
	                           "  max-message-size 4K; max-recipients 5;\n"
	                           "};\n";
	char err[512];

	log_init("fuzz", LOG_LEVEL_ERR, false);
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/dev/shm/mxb-fuzz-session.%ld", (long)getpid());
	if ((cfg = config_load_string("fuzz.conf", conf, err, sizeof(err))) == NULL ||
	    (policy = policy_new(&cfg->relay)) == NULL || (base = event_base_new()) == NULL ||
	    (queue = queue_open(dir, true)) == NULL ||
	    (pool = disk_pool_new(base, queue, DISK_POOL_THREADS)) == NULL ||
	    (intake = intake_new(base, queue, pool, &cfg->relay)) == NULL ||
	    addr_parse("127.0.0.1", 0, &trusted) == -1 ||
	    addr_parse("192.0.2.7", 0, &untrusted) == -1)
		abort();
	disk_pool_set_observer(pool, intake_commit_cb, intake);
	ctx = (struct smtp_session_ctx){.relay = &cfg->relay,
	    .policy = policy,
	    .pool = pool,
	    .intake = intake,
	    .stats = &stats};
	atexit(cleanup);
}

/* Reply lines: "DDD" then ' ' or '-', CRLF-terminated, none over 512 octets. */
static void
check_replies(const char *out, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(out + i, '\n', len - i);
		size_t n;

		if (nl == NULL)
			abort(); /* a partial line at close */
		n = (size_t)(nl - (out + i)) + 1;
		if (n < 6 || n > 512 || out[i + n - 2] != '\r' || out[i] < '2' || out[i] > '5' ||
		    out[i + 1] < '0' || out[i + 1] > '9' || out[i + 2] < '0' || out[i + 2] > '9' ||
		    (out[i + 3] != ' ' && out[i + 3] != '-'))
			abort();
		i += n;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[1 << 20], chunk[1 << 16];
	size_t off = 1, outlen = 0;
	bool shut = false, closed = false, overflow = false;
	int sv[2];

	if (pool == NULL)
		setup();
	if (size < 1)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	if (smtp_session_new(&ctx, base, sv[0], (data[0] & 1) ? &untrusted : &trusted,
	        SMTP_LISTENER_SMTP, NULL) == NULL)
		abort();
	for (int turn = 0; turn < MAX_TURNS && !closed; turn++) {
		bool progress = false;
		ssize_t n;

		if (off < size) {
			n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);
			if (n > 0) {
				off += (size_t)n;
				progress = true;
			} else if (n == -1 && errno == EPIPE)
				off = size;
		} else if (!shut) {
			shutdown(sv[1], SHUT_WR);
			shut = true;
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		while ((n = read(sv[1], chunk, sizeof(chunk))) > 0) {
			if (outlen + (size_t)n <= sizeof(out)) {
				memcpy(out + outlen, chunk, (size_t)n);
				outlen += (size_t)n;
			} else {
				overflow = true;
			}
			progress = true;
		}
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			closed = true;
		else if (!progress)
			poll(NULL, 0, 1); /* a commit thread is working */
	}
	if (!closed)
		abort(); /* the session did not end after EOF */
	close(sv[1]);
	if (!overflow)
		check_replies(out, outlen);
	queue_scan(queue, remove_cb, queue);
	return 0;
}
