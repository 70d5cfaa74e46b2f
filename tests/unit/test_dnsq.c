/* test_dnsq.c - the query parser against malformed and random packets. */
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "broker/answer.h"
#include "broker/dnsq.h"
#include "tests/unit/tap.h"

/* A query for a.example.test/A with id 0x1234, optionally with OPT. */
static size_t
query(uint8_t *p, bool opt)
{
	static const uint8_t q[] = {
	    0x12,
	    0x34,
	    0x01,
	    0x00,
	    0,
	    1,
	    0,
	    0,
	    0,
	    0,
	    0,
	    0,
	    1,
	    'a',
	    7,
	    'e',
	    'x',
	    'a',
	    'm',
	    'p',
	    'l',
	    'e',
	    4,
	    't',
	    'e',
	    's',
	    't',
	    0,
	    0,
	    1,
	    0,
	    1,
	};
	static const uint8_t o[] = {0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0};

	memcpy(p, q, sizeof(q));
	if (!opt)
		return sizeof(q);
	p[11] = 1;
	memcpy(p + sizeof(q), o, sizeof(o));
	return sizeof(q) + sizeof(o);
}

static void
test_good(void)
{
	uint8_t p[512];
	struct dnsq q;
	size_t n = query(p, true);

	p[13] = 'A'; /* case is folded in qname, kept in the packet */
	is_int(dnsq_parse(p, n, &q), DNSQ_OK, "good query");
	ok(q.qname_len == 16 && q.qname[1] == 'a', "qname lower-cased");
	ok(q.qtype == 1 && q.qclass == 1 && q.qend == 32, "type, class, end");
	ok(q.edns && q.udp_size == 4096 && q.edns_do && q.edns_version == 0, "EDNS parsed");
	n = query(p, false);
	is_int(dnsq_parse(p, n, &q), DNSQ_OK, "no EDNS");
	ok(!q.edns, "no OPT seen");
}

static void
test_bad(void)
{
	uint8_t p[600];
	struct dnsq q;
	size_t n;

	n = query(p, false);
	is_int(dnsq_parse(p, 11, &q), DNSQ_DROP, "truncated header dropped");
	p[2] |= 0x80;
	is_int(dnsq_parse(p, n, &q), DNSQ_DROP, "responses dropped");
	n = query(p, false);
	p[5] = 0;
	is_int(dnsq_parse(p, n, &q), DNSQ_FORMERR, "qdcount 0");
	p[5] = 2;
	is_int(dnsq_parse(p, n, &q), DNSQ_FORMERR, "qdcount 2");
	n = query(p, false);
	is_int(dnsq_parse(p, n - 1, &q), DNSQ_FORMERR, "question cut short");
	is_int(dnsq_parse(p, 20, &q), DNSQ_FORMERR, "name cut short");
	p[12] = 0xc0;
	p[13] = 12;
	is_int(dnsq_parse(p, n, &q), DNSQ_FORMERR, "pointer loop in question");
	n = query(p, false);
	p[12] = 64;
	is_int(dnsq_parse(p, n, &q), DNSQ_FORMERR, "label over 63");
	/* 5 labels of 63 = 320 octets: over 255. */
	memset(p + 12, 0, sizeof(p) - 12);
	for (int i = 0; i < 5; i++) {
		p[12 + i * 64] = 63;
		memset(p + 13 + i * 64, 'x', 63);
	}
	p[4] = 0;
	p[5] = 1;
	is_int(dnsq_parse(p, 12 + 5 * 64 + 5, &q), DNSQ_FORMERR, "name over 255");
	n = query(p, true);
	p[n - 11] = 1; /* OPT owner not root */
	is_int(dnsq_parse(p, n, &q), DNSQ_FORMERR, "OPT not at the root");
	n = query(p, true);
	memcpy(p + n, p + n - 11, 11);
	p[11] = 2;
	is_int(dnsq_parse(p, n + 11, &q), DNSQ_FORMERR, "two OPT records");
	n = query(p, true);
	p[n - 1] = 5; /* rdlen past the end */
	is_int(dnsq_parse(p, n, &q), DNSQ_FORMERR, "OPT rdata past the end");
	n = query(p, false);
	p[7] = 1;
	is_int(dnsq_parse(p, n, &q), DNSQ_FORMERR, "answer records in a query");
	n = query(p, false);
	p[2] = 0x28; /* opcode UPDATE */
	is_int(dnsq_parse(p, n, &q), DNSQ_NOTIMP, "UPDATE not implemented");
}

/* A query for example.test with the records `auth` in its authority section. */
static uint8_t *
with_authority(ldns_rr_type qtype, const char *const *auth, size_t *len)
{
	ldns_rdf *name = NULL;
	ldns_pkt *p;
	uint8_t *wire = NULL;

	*len = 0;
	if (ldns_str2rdf_dname(&name, "example.test.") != LDNS_STATUS_OK ||
	    (p = ldns_pkt_query_new(name, qtype, LDNS_RR_CLASS_IN, 0)) == NULL)
		return NULL;
	for (size_t i = 0; auth[i] != NULL; i++) {
		ldns_rr *rr = NULL;

		if (ldns_rr_new_frm_str(&rr, auth[i], 0, NULL, NULL) == LDNS_STATUS_OK)
			ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, rr);
	}
	if (ldns_pkt2wire(&wire, p, len) != LDNS_STATUS_OK)
		*len = 0;
	ldns_pkt_free(p);
	return wire;
}

/* IXFR carries the client's SOA in the authority section (RFC 1995 3). */
static void
test_ixfr_authority(void)
{
	static const char *const soa[] = {"example.test. 0 IN SOA a. b. 5 1 1 1 1", NULL};
	static const char *const two[] = {"example.test. 0 IN SOA a. b. 5 1 1 1 1",
	    "example.test. 0 IN SOA a. b. 6 1 1 1 1", NULL};
	static const char *const ns[] = {"example.test. 0 IN NS a.", NULL};
	struct dnsq q;
	size_t n;
	uint8_t *w;

	w = with_authority(LDNS_RR_TYPE_IXFR, soa, &n);
	is_int(dnsq_parse(w, n, &q), DNSQ_OK, "IXFR with its SOA");
	is_int(q.qtype, LDNS_RR_TYPE_IXFR, "IXFR qtype");
	is_int(dnsq_parse(w, n - 1, &q), DNSQ_FORMERR, "IXFR SOA cut short");
	free(w);
	w = with_authority(LDNS_RR_TYPE_A, soa, &n);
	is_int(dnsq_parse(w, n, &q), DNSQ_FORMERR, "an SOA in an A query");
	free(w);
	w = with_authority(LDNS_RR_TYPE_IXFR, two, &n);
	is_int(dnsq_parse(w, n, &q), DNSQ_FORMERR, "IXFR with two authority records");
	free(w);
	w = with_authority(LDNS_RR_TYPE_IXFR, ns, &n);
	is_int(dnsq_parse(w, n, &q), DNSQ_FORMERR, "IXFR with an NS in authority");
	free(w);
}

static void
test_random(void)
{
	uint8_t p[600], out[ANSWER_EDNS_SIZE];
	struct answer_result res;
	unsigned seed = 20261122;
	int replies = 0;

	for (int i = 0; i < 200000; i++) {
		size_t n = (size_t)rand_r(&seed) % sizeof(p);

		if (i % 2)
			n = query(p, i % 4 == 1); /* mutate a good query */
		for (size_t k = 0; k < n; k++)
			if (i % 2 == 0 || rand_r(&seed) % 8 == 0)
				p[k] = (uint8_t)rand_r(&seed);
		if (answer_query(NULL, 0, p, n, false, out, sizeof(out), &res, NULL) ==
		    ANSWER_REPLY)
			replies++;
	}
	ok(replies > 0, "random packets: %d replies, no crash", replies);
}

int
main(void)
{
	test_good();
	test_bad();
	test_ixfr_authority();
	test_random();
	return tap_done();
}
