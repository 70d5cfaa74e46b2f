/*
 * fuzz_dns.c - libFuzzer target: brokerd's query path (dnsq_parse and
 * answer_query) on any packet, over UDP and TCP, against a zone with the
 * features that make answers interesting: wildcard, CNAME chain, delegation
 * with glue, a rotated cluster RRset, TXT, MX, AAAA.
 *
 * Checks beyond "no crash": a reply never exceeds the buffer or, over UDP,
 * the client's payload, and always echoes the query ID.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/answer.h"
#include "broker/zone.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct zone *zone;
static uint8_t out[65535];

static const char zone_text[] =
    "$ORIGIN fuzz.test.\n$TTL 300\n"
    "@ IN SOA ns1 hostmaster 1 3600 900 604800 60\n"
    "@ NS ns1\n@ MX 10 smtp\n@ TXT \"v=spf1 -all\"\n"
    "ns1 A 192.0.2.1\nns1 AAAA 2001:db8::1\n"
    "smtp A 192.0.2.11\nsmtp A 192.0.2.12\nsmtp A 192.0.2.13\nsmtp A 192.0.2.14\n"
    "alias CNAME smtp\nchain CNAME alias\nout CNAME elsewhere.example.\n"
    "*.wild A 192.0.2.50\n*.wild TXT \"wildcard\"\n"
    "sub NS ns.sub\nns.sub A 192.0.2.53\n";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[] = "/tmp/fuzz-dns-XXXXXX", err[256];
	int fd = mkstemp(path);

	(void)argc;
	(void)argv;
	if (fd == -1 || write(fd, zone_text, sizeof(zone_text) - 1) != sizeof(zone_text) - 1)
		abort();
	close(fd);
	zone = zone_load("fuzz.test", path, err, sizeof(err));
	unlink(path);
	if (zone == NULL) {
		fprintf(stderr, "fuzz_dns: %s\n", err);
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zone *zones[1] = {zone};
	struct answer_result res;

	for (int tcp = 0; tcp <= 1; tcp++) {
		size_t cap = tcp ? sizeof(out) : ANSWER_EDNS_SIZE;

		if (answer_query(zones, 1, data, size, tcp, out, cap, &res, NULL) != ANSWER_REPLY)
			continue;
		if (res.len > cap || res.len < 12 || memcmp(out, data, 2) != 0)
			abort();
		if (!tcp && res.len > ANSWER_UDP_MIN && !res.q.edns)
			abort();
	}
	return 0;
}
