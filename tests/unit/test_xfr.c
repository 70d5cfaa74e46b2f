/*
 * test_xfr.c - the NOTIFY response parser and matcher (broker/xfr.h):
 * what a secondary, or anyone who can send us a datagram, may answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "broker/xfr.h"
#include "tests/unit/tap.h"

#define ZONE "example.test"
#define ID   0x4242

/* A response to our NOTIFY, built with ldns; *len 0 when it failed. */
static uint8_t *
reply_wire(const char *qname, ldns_rr_type qtype, ldns_rr_class qclass, uint16_t id,
    ldns_pkt_rcode rcode, ldns_pkt_opcode opcode, bool qr, size_t *len)
{
	ldns_rdf *name = NULL;
	ldns_pkt *p;
	uint8_t *wire = NULL;

	*len = 0;
	if (qname != NULL) {
		if (ldns_str2rdf_dname(&name, qname) != LDNS_STATUS_OK)
			return NULL;
		p = ldns_pkt_query_new(name, qtype, qclass, LDNS_AA);
	} else {
		p = ldns_pkt_new();
	}
	if (p == NULL)
		return NULL;
	ldns_pkt_set_id(p, id);
	ldns_pkt_set_qr(p, qr);
	ldns_pkt_set_opcode(p, opcode);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	if (ldns_pkt2wire(&wire, p, len) != LDNS_STATUS_OK) {
		free(wire);
		wire = NULL;
		*len = 0;
	}
	ldns_pkt_free(p);
	return wire;
}

static uint8_t *
ack(uint16_t id, ldns_pkt_rcode rcode, size_t *len)
{
	return reply_wire(
	    ZONE ".", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, id, rcode, LDNS_PACKET_NOTIFY, true, len);
}

static void
test_noerror(void)
{
	struct notify_reply r;
	size_t len;
	uint8_t *w = ack(ID, LDNS_RCODE_NOERROR, &len);

	ok(w != NULL, "built a NOERROR response");
	is_int(notify_reply_parse(w, len, &r), 0, "NOERROR response parses");
	is_int(r.id, ID, "its ID");
	is_int(r.rcode, LDNS_RCODE_NOERROR, "its rcode");
	ok(r.has_question, "its question");
	is_str(r.qname, ZONE, "question name without the trailing dot");
	is_int(r.qtype, LDNS_RR_TYPE_SOA, "question type");
	is_int(r.qclass, LDNS_RR_CLASS_IN, "question class");
	ok(notify_reply_answers(&r, ID, ZONE), "acknowledges our NOTIFY");
	ok(notify_reply_answers(&r, ID, "EXAMPLE.Test"), "names compared without case");
	ok(!notify_reply_answers(&r, ID + 1, ZONE), "wrong ID: not ours");
	ok(!notify_reply_answers(&r, ID, "other.test"), "another zone: not ours");
	free(w);
}

static void
test_truncated(void)
{
	struct notify_reply r;
	size_t len;
	uint8_t *w = ack(ID, LDNS_RCODE_NOERROR, &len);

	ok(w != NULL && len > LDNS_HEADER_SIZE, "built a response");
	is_int(notify_reply_parse(w, 0, &r), -1, "empty datagram");
	is_int(notify_reply_parse(NULL, 0, &r), -1, "no datagram");
	is_int(notify_reply_parse(w, 2, &r), -1, "two bytes (the ID only)");
	is_int(notify_reply_parse(w, LDNS_HEADER_SIZE - 1, &r), -1, "one short of a header");
	is_int(notify_reply_parse(w, LDNS_HEADER_SIZE, &r), -1, "header whose question is missing");
	is_int(notify_reply_parse(w, len - 1, &r), -1, "question cut short");
	is_int(notify_reply_parse(w, len, &r), 0, "the whole of it parses");
	free(w);
}

static void
test_garbage(void)
{
	struct notify_reply r;
	uint8_t junk[64];

	memset(junk, 0xff, sizeof(junk));
	is_int(notify_reply_parse(junk, sizeof(junk), &r), -1, "0xff bytes");
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	is_int(notify_reply_parse(junk, sizeof(junk), &r), -1, "noise");
	memset(junk, 0, sizeof(junk));
	is_int(notify_reply_parse(junk, LDNS_HEADER_SIZE, &r), -1,
	    "an all-zero header is a query, not a response");
}

static void
test_not_a_notify_response(void)
{
	struct notify_reply r;
	size_t len;
	uint8_t *w;

	w = reply_wire(ZONE ".", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, ID, LDNS_RCODE_NOERROR,
	    LDNS_PACKET_NOTIFY, false, &len);
	is_int(notify_reply_parse(w, len, &r), -1, "QR clear: a NOTIFY, not its answer");
	free(w);
	w = reply_wire(ZONE ".", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, ID, LDNS_RCODE_NOERROR,
	    LDNS_PACKET_QUERY, true, &len);
	is_int(notify_reply_parse(w, len, &r), -1, "opcode QUERY");
	free(w);
	/* Two questions: append the first one again and bump QDCOUNT. */
	w = ack(ID, LDNS_RCODE_NOERROR, &len);
	if (w != NULL) {
		size_t qlen = len - LDNS_HEADER_SIZE;
		uint8_t *two = malloc(len + qlen);

		if (two != NULL) {
			memcpy(two, w, len);
			memcpy(two + len, w + LDNS_HEADER_SIZE, qlen);
			ldns_write_uint16(two + 4, 2); /* QDCOUNT, RFC 1035 4.1.1 */
			is_int(notify_reply_parse(two, len + qlen, &r), -1, "two questions");
			free(two);
		}
	}
	free(w);
}

static void
test_wrong_question(void)
{
	struct notify_reply r;
	size_t len;
	uint8_t *w;

	w = reply_wire("other.test.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, ID, LDNS_RCODE_NOERROR,
	    LDNS_PACKET_NOTIFY, true, &len);
	is_int(notify_reply_parse(w, len, &r), 0, "another zone's answer parses");
	ok(!notify_reply_answers(&r, ID, ZONE), "but does not acknowledge ours");
	free(w);
	w = reply_wire(ZONE ".", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, ID, LDNS_RCODE_NOERROR,
	    LDNS_PACKET_NOTIFY, true, &len);
	is_int(notify_reply_parse(w, len, &r), 0, "type A parses");
	ok(!notify_reply_answers(&r, ID, ZONE), "type A: not ours");
	free(w);
	w = reply_wire(ZONE ".", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_CH, ID, LDNS_RCODE_NOERROR,
	    LDNS_PACKET_NOTIFY, true, &len);
	is_int(notify_reply_parse(w, len, &r), 0, "class CH parses");
	ok(!notify_reply_answers(&r, ID, ZONE), "class CH: not ours");
	free(w);
	w = reply_wire(NULL, 0, 0, ID, LDNS_RCODE_NOERROR, LDNS_PACKET_NOTIFY, true, &len);
	is_int(notify_reply_parse(w, len, &r), 0, "no question parses");
	ok(!r.has_question, "and has none");
	ok(!notify_reply_answers(&r, ID, ZONE), "NOERROR without the question: no ack");
	free(w);
}

static void
test_refused(void)
{
	struct notify_reply r;
	size_t len;
	uint8_t *w = ack(ID, LDNS_RCODE_REFUSED, &len);

	is_int(notify_reply_parse(w, len, &r), 0, "REFUSED parses");
	is_int(r.rcode, LDNS_RCODE_REFUSED, "rcode REFUSED");
	ok(notify_reply_answers(&r, ID, ZONE), "answers our NOTIFY (as an error)");
	ok(!notify_reply_answers(&r, ID ^ 1, ZONE), "not with another ID");
	free(w);
	w = reply_wire(NULL, 0, 0, ID, LDNS_RCODE_NOTAUTH, LDNS_PACKET_NOTIFY, true, &len);
	is_int(notify_reply_parse(w, len, &r), 0, "NOTAUTH without a question parses");
	is_int(r.rcode, LDNS_RCODE_NOTAUTH, "rcode NOTAUTH");
	ok(notify_reply_answers(&r, ID, ZONE), "an error may omit the question (RFC 1996 4.7)");
	free(w);
}

int
main(void)
{
	test_noerror();
	test_truncated();
	test_garbage();
	test_not_a_notify_response();
	test_wrong_question();
	test_refused();
	return tap_done();
}
