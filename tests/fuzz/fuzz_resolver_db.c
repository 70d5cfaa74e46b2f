/*
 * fuzz_resolver_db.c - libFuzzer target: the resolver's two database
 * readers, the local MX table (localmx_parse) and the hosts file
 * (hostsdb_parse), on the same text, then lookups of the names it contains.
 *
 * Checks: localmx either loads or writes "name:line: message"; every entry a
 * lookup returns belongs to the name asked for and has a preference that
 * fits 16 bits; hostsdb lookups never report fewer addresses than they copy.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "resolver/dnsmsg.h"
#include "resolver/hostsdb.h"
#include "resolver/localmx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LOOKUPS 32

static void
lookups(const char *text, const struct localmx *mx, const struct hostsdb *hosts)
{
	char *copy = strdup(text), *save = NULL, name[DNSMSG_NAME_MAX];
	struct addr out[4];
	int n = 0;

	if (copy == NULL)
		return;
	for (char *w = strtok_r(copy, " \t\r\n#!", &save); w != NULL && n < MAX_LOOKUPS;
	     w = strtok_r(NULL, " \t\r\n#!", &save), n++) {
		const struct localmx_entry *e;
		size_t k;

		if (hosts != NULL) {
			k = hostsdb_lookup(hosts, w, out, 4);
			(void)k;
		}
		if (mx == NULL || dnsmsg_name_normalize(w, name, sizeof(name)) == -1)
			continue;
		k = localmx_lookup(mx, name, &e);
		for (size_t i = 0; i < k; i++)
			if (strcmp(e[i].domain, name) != 0 || e[i].preference > 65535 ||
			    e[i].gateway == NULL || e[i].line < 1)
				abort();
	}
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	char *text = malloc(size + 1);
	struct localmx *mx;
	struct hostsdb *hosts;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	mx = localmx_parse("fuzz-mx", text, err, sizeof(err));
	if ((mx == NULL) != (strncmp(err, "fuzz-mx:", 8) == 0))
		abort();
	if (mx != NULL && localmx_count(mx) > size)
		abort();
	hosts = hostsdb_parse(text);
	if (hosts == NULL)
		abort(); /* only out of memory may fail */
	lookups(text, mx, hosts);
	localmx_free(mx);
	hostsdb_free(hosts);
	free(text);
	return 0;
}
