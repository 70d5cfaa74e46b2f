/* test_rrl.c - response rate limiting: buckets, slip, prefixes, a full table. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "broker/rrl.h"
#include "common/config.h"
#include "tests/unit/tap.h"

static struct sockaddr_storage
sa(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, text, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, text, &s4->sin_addr);
	}
	return ss;
}

static enum rrl_action
check(struct rrl *r, const char *addr, uint64_t now)
{
	struct sockaddr_storage ss = sa(addr);

	return rrl_check(r, (struct sockaddr *)&ss, now);
}

static void
test_bucket_and_slip(void)
{
	struct config_rrl cfg = {10, 2, 24, 56, 1024};
	struct rrl *r = rrl_new(&cfg);
	unsigned sent = 0, slipped = 0, dropped = 0;

	ok(r != NULL, "table created");
	for (int i = 0; i < 30; i++) {
		switch (check(r, "192.0.2.7", 1000)) {
		case RRL_SEND: sent++; break;
		case RRL_SLIP: slipped++; break;
		case RRL_DROP: dropped++; break;
		}
	}
	is_int(sent, 10, "one second of burst is sent");
	is_int(slipped, 10, "every 2nd response over the rate slips");
	is_int(dropped, 10, "the others are dropped");
	is_int(check(r, "192.0.2.200", 1000), RRL_DROP, "the same /24 shares the bucket");
	is_int(check(r, "192.0.3.1", 1000), RRL_SEND, "another /24 has its own");
	is_int(check(r, "192.0.2.7", 1100), RRL_SEND, "100 ms later one more is allowed");
	is_int(check(r, "192.0.2.7", 1100), RRL_DROP, "and no more");
	for (int i = 0; i < 10; i++)
		(void)check(r, "192.0.2.7", 1100);
	sent = 0;
	for (int i = 0; i < 30; i++)
		sent += check(r, "192.0.2.7", 60000) == RRL_SEND;
	is_int(sent, 10, "refill is capped at one second of burst");
	rrl_free(r);
}

static void
test_ipv6_and_off(void)
{
	struct config_rrl cfg = {1, 0, 24, 56, 1024};
	struct rrl *r = rrl_new(&cfg);

	is_int(check(r, "2001:db8:0:1::1", 5), RRL_SEND, "v6 first");
	is_int(check(r, "2001:db8:0:ff::2", 5), RRL_DROP, "same /56: limited, slip 0 never slips");
	is_int(check(r, "2001:db8:0:100::1", 5), RRL_SEND, "another /56");
	rrl_free(r);
	cfg.responses_per_second = 0;
	r = rrl_new(&cfg);
	for (int i = 0; i < 100; i++)
		if (check(r, "192.0.2.1", 5) != RRL_SEND)
			break;
	is_int(check(r, "192.0.2.1", 5), RRL_SEND, "rate 0: never limited");
	rrl_free(r);
	rrl_free(NULL);
}

static void
test_full_table(void)
{
	struct config_rrl cfg = {5, 2, 32, 128, 64};
	struct rrl *r = rrl_new(&cfg);
	char addr[32];
	unsigned sent = 0;

	/* Far more prefixes than slots: entries are reused, nothing grows. */
	for (int i = 0; i < 5000; i++) {
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		sent += check(r, addr, (uint64_t)i) == RRL_SEND;
	}
	is_int(sent, 5000, "a new prefix starts with a full bucket");
	for (int i = 0; i < 5; i++)
		(void)check(r, "198.51.100.1", 10000);
	is_int(check(r, "198.51.100.1", 10000), RRL_DROP, "a hot prefix stays limited");
	rrl_free(r);
}

int
main(void)
{
	test_bucket_and_slip();
	test_ipv6_and_off();
	test_full_table();
	return tap_done();
}
