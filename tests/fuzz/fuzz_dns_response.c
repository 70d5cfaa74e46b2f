/*
 * fuzz_dns_response.c - libFuzzer target: what DNS servers answer to
 * brokerd's UPDATE and NOTIFY messages.
 *
 * Flag octet bit 7 clear: the answers of a DNS primary to the updater
 * (updater.h), through its public API.  The target plays the master on a
 * loopback UDP socket.  The updater asks for the SOA of the cluster name,
 * then its A and AAAA RRsets, then sends an UPDATE; each of those gets the
 * next answer from the input.  Flag bits: 0 the cluster has a TSIG key,
 * 1 manage A, 2 manage AAAA, 3 keep the answer's ID as it is instead of
 * copying the query's; then answers as <2-octet length><message>, as over
 * TCP.  This reaches the updater's checks of the SOA answer, the RRset
 * comparison, the UPDATE's rcode, the refusal's TSIG error and the TSIG
 * verification of the answer.
 *
 * Bit 7 set: the rest is one datagram on a NOTIFY socket, for
 * notify_reply_parse and notify_reply_answers (xfr.h) against the ID in
 * its first two octets and the zone "fuzz.test".
 *
 * Checks beyond memory safety: an accepted UPDATE was sent; in sync means
 * no last error; a parsed NOTIFY reply has a valid rcode and a terminated
 * name, and a NOERROR one that answers us echoes the zone.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "broker/updater.h"
#include "broker/xfr.h"
#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ANSWERS 8

static struct event_base *base;
static struct addr master;
static struct config_addrs masters = {&master, 1};
static struct addr want4[2], want6[1];
static int mfd = -1;
static char key_name[] = "update-key.fuzz.test.";
static char key_secret[] = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAx";
static struct config_key key = {
    .name = key_name, .algorithm_name = "hmac-sha256", .secret_b64 = key_secret};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	(void)argc;
	(void)argv;
	log_init("fuzz_dns_response", LOG_LEVEL_ERR, false);
	key.algorithm = CONFIG_HMAC_SHA256;
	base = event_base_new();
	if (base == NULL || addr_parse("127.0.0.1", 0, &master) == -1 ||
	    addr_parse("192.0.2.1", 0, &want4[0]) == -1 ||
	    addr_parse("192.0.2.2", 0, &want4[1]) == -1 ||
	    addr_parse("2001:db8::1", 0, &want6[0]) == -1)
		abort();
	mfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (mfd == -1 || bind(mfd, addr_sa(&master), master.len) == -1 ||
	    getsockname(mfd, (struct sockaddr *)&ss, &len) == -1 ||
	    addr_from_sockaddr((struct sockaddr *)&ss, len, &master) == -1)
		abort();
	return 0;
}

/*
 * Answer the updater's pending message with `msg`, then let it read the
 * answer.  False when it has nothing pending (it finished or gave up).
 */
static bool
answer(const uint8_t *msg, size_t len, bool keep_id)
{
	uint8_t q[4096], a[65535];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	ssize_t n = recvfrom(mfd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);

	if (n < 2)
		return false;
	memcpy(a, msg, len);
	if (!keep_id && len >= 2)
		memcpy(a, q, 2);
	sendto(mfd, a, len, 0, (struct sockaddr *)&from, flen);
	/* Loopback delivers at once: one pass reads the answer. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	return true;
}

static void
check_notify_reply(const uint8_t *data, size_t size)
{
	struct notify_reply r;
	uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;

	if (notify_reply_parse(data, size, &r) == -1)
		return;
	if (r.rcode >= NOTIFY_RCODES || memchr(r.qname, '\0', sizeof(r.qname)) == NULL)
		abort();
	/* RFC 1996 4.7: only an error may answer without the question. */
	if (notify_reply_answers(&r, id, "fuzz.test") && r.rcode == 0 &&
	    (!r.has_question || strcasecmp(r.qname, "fuzz.test") != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct updater_stats st;
	struct updater *u;
	uint8_t flags;
	uint8_t drain[4096];

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	if (flags & 0x80) {
		check_notify_reply(data, size);
		return 0;
	}
	u = updater_new(base, "mx.fuzz.test", &masters, (flags & 1) ? &key : NULL);
	if (u == NULL)
		return 0;
	updater_set(u, want4, 2, (flags & 2) || !(flags & 4), want6, 1, flags & 4, 300);
	for (int i = 0; i < MAX_ANSWERS && size >= 2; i++) {
		size_t len = (size_t)data[0] << 8 | data[1];

		if (len > size - 2)
			len = size - 2;
		if (!answer(data + 2, len, flags & 8))
			break;
		data += 2 + len;
		size -= 2 + len;
	}
	updater_get_stats(u, &st);
	if (st.updates_ok > st.updates || (st.in_sync && st.last_error[0] != '\0'))
		abort();
	updater_free(u);
	while (recv(mfd, drain, sizeof(drain), 0) > 0)
		continue;
	return 0;
}
