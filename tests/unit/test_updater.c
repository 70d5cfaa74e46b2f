/* test_updater.c - the RFC 2136 UPDATE message and its TSIG (broker/updater.h). */
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "broker/updater.h"
#include "common/addr.h"
#include "common/config.h"
#include "tests/unit/tap.h"

static const char *conf_text =
    "key \"lb-key\" { algorithm hmac-sha256; secret \"bWVyZ2UgbWUgaW50byBhIHJlYWwga2V5Cg==\"; };\n"
    "key \"old\" { algorithm hmac-md5; secret \"bWVyZ2UgbWUgaW50byBhIHJlYWwga2V5Cg==\"; };\n";

static void
test_build(const struct config_key *key)
{
	struct addr v4[2], v6[1];
	ldns_pkt *p;
	const ldns_rr_list *up;
	uint8_t *wire = NULL;
	size_t len = 0;

	addr_parse("192.0.2.1", 0, &v4[0]);
	addr_parse("192.0.2.2", 0, &v4[1]);
	addr_parse("2001:db8::1", 0, &v6[0]);
	p = updater_build(
	    "mail.example.test.", "smtp.mail.example.test", 45, v4, 2, true, v6, 1, false, key);
	ok(p != NULL, "built");
	if (p == NULL)
		return;
	is_int(ldns_pkt_get_opcode(p), LDNS_PACKET_UPDATE, "opcode UPDATE");
	is_int(ldns_update_zocount(p), 1, "one zone");
	/* ldns keeps the update section where the authority section is. */
	up = ldns_pkt_authority(p);
	is_int(ldns_rr_list_rr_count(up), 3, "delete + two adds, AAAA untouched");
	is_int(ldns_rr_get_class(ldns_rr_list_rr(up, 0)), LDNS_RR_CLASS_ANY, "delete is class ANY");
	is_int(ldns_rr_get_type(ldns_rr_list_rr(up, 0)), LDNS_RR_TYPE_A, "delete of the A RRset");
	is_int(ldns_rr_rd_count(ldns_rr_list_rr(up, 0)), 0, "delete has no rdata");
	is_int(ldns_rr_ttl(ldns_rr_list_rr(up, 0)), 0, "delete has TTL 0");
	is_int(ldns_rr_get_class(ldns_rr_list_rr(up, 1)), LDNS_RR_CLASS_IN, "add is class IN");
	is_int(ldns_rr_ttl(ldns_rr_list_rr(up, 2)), 45, "add has the dns-ttl");
	ok(ldns_pkt2wire(&wire, p, &len) == LDNS_STATUS_OK, "to wire");
	if (key != NULL) {
		ldns_pkt *back = NULL;

		ok(ldns_pkt_tsig(p) != NULL, "signed (%s)", key->algorithm_name);
		ok(ldns_wire2pkt(&back, wire, len) == LDNS_STATUS_OK, "parsed back");
		ok(back != NULL &&
		        ldns_pkt_tsig_verify(back, wire, len, key->name, key->secret_b64, NULL),
		    "TSIG verifies with the same key (%s)", key->algorithm_name);
		ldns_pkt_free(back);
	} else
		ok(ldns_pkt_tsig(p) == NULL, "unsigned without a key");
	free(wire);
	ldns_pkt_free(p);
}

static void
test_delete_only(void)
{
	ldns_pkt *p = updater_build(
	    "mail.example.test.", "smtp.mail.example.test", 0, NULL, 0, true, NULL, 0, true, NULL);

	ok(p != NULL && ldns_rr_list_rr_count(ldns_pkt_authority(p)) == 2,
	    "empty sets: one delete per family");
	ldns_pkt_free(p);
}

int
main(void)
{
	char err[256];
	struct config *cfg = config_load_string("t.conf", conf_text, err, sizeof(err));

	ok(cfg != NULL, "config: %s", cfg ? "ok" : err);
	if (cfg == NULL)
		return tap_done();
	is_str(updater_tsig_algorithm(config_key_find(cfg, "lb-key")), "hmac-sha256.", "alg name");
	is_str(updater_tsig_algorithm(config_key_find(cfg, "old")), "hmac-md5.sig-alg.reg.int.",
	    "md5 name");
	test_build(NULL);
	test_build(config_key_find(cfg, "lb-key"));
	test_build(config_key_find(cfg, "old"));
	test_delete_only();
	config_free(cfg);
	return tap_done();
}
