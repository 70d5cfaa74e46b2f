/*
 * fuzz_zone.c - libFuzzer target: zone_load, brokerd's reader of RFC 1035
 * zone files, on any text as the zone "fuzz.test." (the file lives in a
 * scratch folder; "$INCLUDE zone" includes the file itself, up to
 * ZONE_MAX_INCLUDE_DEPTH), then every prepared answer of the loaded zone.
 *
 * Checks beyond memory safety: a failure says why; a loaded zone starts its
 * RRs with the SOA, its digest is stable, and every prepared answer for the
 * apex and for each owner name keeps its sections inside its body (the
 * bodies are copied, so ASan sees any overrun).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "broker/prep.h"
#include "broker/zone.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NAMES 64

static char dir[] = "/tmp/fuzz-zone-XXXXXX";
static char path[sizeof(dir) + 8];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/zone", dir);
	return 0;
}

static void
check_prep(const struct prep *p)
{
	static uint8_t copy[65536];

	if (p == NULL || p->an_len > p->an_ns_len || p->an_ns_len > p->len)
		abort();
	if (p->rot_count > 1 && (size_t)p->rot_off + (size_t)p->rot_size * p->rot_count > p->an_len)
		abort();
	if (p->len > 0)
		memcpy(copy, p->body, p->len);
	for (uint16_t i = 0; i < p->ar; i++)
		if (p->ar_end[i] > p->len)
			abort();
}

static void
check_name(const struct zone *z, const ldns_rdf *owner)
{
	static const uint16_t types[] = {LDNS_RR_TYPE_SOA, LDNS_RR_TYPE_NS, LDNS_RR_TYPE_A,
	    LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_MX, LDNS_RR_TYPE_CNAME, LDNS_RR_TYPE_TXT,
	    LDNS_RR_TYPE_ANY};
	ldns_rdf *name = ldns_rdf_clone(owner);

	if (name == NULL)
		return;
	ldns_dname2canonical(name);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		check_prep(zone_answer(z, ldns_rdf_data(name), ldns_rdf_size(name), types[i]));
	ldns_rdf_deep_free(name);
}

static void
check_zone(const struct zone *z)
{
	const ldns_rr_list *rrs = zone_rrs(z);
	const uint8_t *apex;
	size_t alen, n;

	if (zone_soa(z) == NULL || rrs == NULL || ldns_rr_list_rr_count(rrs) == 0 ||
	    ldns_rr_get_type(ldns_rr_list_rr(rrs, 0)) != LDNS_RR_TYPE_SOA ||
	    zone_digest(z) != zone_digest(z))
		abort();
	apex = zone_apex(z, &alen);
	check_prep(zone_answer(z, apex, alen, LDNS_RR_TYPE_SOA));
	n = ldns_rr_list_rr_count(rrs);
	for (size_t i = 0; i < n && i < MAX_NAMES; i++)
		check_name(z, ldns_rr_owner(ldns_rr_list_rr(rrs, i)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512] = "";
	struct zone *z;
	FILE *f;

	if (size > 1 << 20)
		return 0;
	if ((f = fopen(path, "w")) == NULL)
		abort();
	if (fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	z = zone_load("fuzz.test", path, err, sizeof(err));
	if (z == NULL) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	check_zone(z);
	zone_free(z);
	return 0;
}
