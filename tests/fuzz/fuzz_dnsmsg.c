/*
 * fuzz_dnsmsg.c - libFuzzer target: the resolver's DNS reply handling
 * (dnsmsg_parse_reply, the one validating function for replies), then the
 * answer cache that stores what it returns.
 *
 * The input is a reply as it came off the wire.  It is checked twice: once
 * against the question the packet itself carries (ID and first question
 * taken from the input, so the fuzzer reaches the answer logic) and once
 * against a fixed question (example.test MX, ID 0x1234), the usual case of
 * a spoofed or stray packet.  Checks: an accepted reply names the asked
 * question, its TTL is capped, its records are of the asked type, and a
 * deep copy is equal in size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "resolver/dnscache.h"
#include "resolver/dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dnscache *cache;
static uint64_t now;

static void
check_answer(const uint8_t *wire, size_t len, uint16_t id, const char *name, uint16_t type)
{
	struct dns_answer a, copy;

	if (dnsmsg_parse_reply(wire, len, id, name, type, &a) == -1)
		return;
	if (a.qtype != type || strcmp(a.qname, name) != 0 || a.ttl > DNSMSG_TTL_MAX ||
	    a.status > DNS_TRUNCATED)
		abort();
	(void)dns_status_str(a.status);
	(void)dns_status_is_temporary(a.status);
	if (a.rrs != NULL)
		for (size_t i = 0; i < ldns_rr_list_rr_count(a.rrs); i++)
			if (ldns_rr_get_type(ldns_rr_list_rr(a.rrs, i)) != type)
				abort();
	if (dns_answer_copy(&copy, &a) == 0) {
		if ((copy.rrs == NULL) != (a.rrs == NULL) ||
		    (a.rrs != NULL &&
		        ldns_rr_list_rr_count(copy.rrs) != ldns_rr_list_rr_count(a.rrs)))
			abort();
		dns_answer_clear(&copy);
	}
	/* The cache takes the answer over (or leaves it to us on failure). */
	if (a.cacheable) {
		struct dnscache_entry *e = dnscache_insert(cache, &a, now);

		if (e != NULL) {
			dnscache_release(e);
			if ((e = dnscache_lookup(cache, name, type, now)) != NULL)
				dnscache_release(e);
		}
	}
	dns_answer_clear(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *wire;
	ldns_rdf *qname = NULL;
	size_t pos = 12;
	char name[DNSMSG_NAME_MAX];

	if (cache == NULL && (cache = dnscache_new(64)) == NULL)
		abort();
	now += 1000;
	if ((wire = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(wire, data, size);
	check_answer(wire, size, 0x1234, "example.test", LDNS_RR_TYPE_MX);
	if (size >= 12 && ldns_wire2dname(&qname, wire, size, &pos) == LDNS_STATUS_OK &&
	    pos + 4 <= size) {
		char *text = ldns_rdf2str(qname);
		uint16_t id = (uint16_t)(wire[0] << 8 | wire[1]);
		uint16_t type = (uint16_t)(wire[pos] << 8 | wire[pos + 1]);

		if (text != NULL && dnsmsg_name_normalize(text, name, sizeof(name)) == 0)
			check_answer(wire, size, id, name, type);
		free(text);
	}
	ldns_rdf_deep_free(qname);
	free(wire);
	return 0;
}
