/*
 * test_journal.c - the IXFR history (broker/journal.h): the diff of two
 * versions, the chain of steps, its bounds, and a gap or an oversize step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "broker/journal.h"
#include "tests/unit/tap.h"

#define ZONE "example.test"

/* A version of the zone: its SOA with `serial`, then the records given. */
static ldns_rr_list *
version(uint32_t serial, const char *const *rrs)
{
	ldns_rr_list *l = ldns_rr_list_new();
	char soa[128];
	ldns_rr *rr = NULL;

	snprintf(soa, sizeof(soa), ZONE ". 300 IN SOA ns. host. %u 3600 900 604800 60", serial);
	if (ldns_rr_new_frm_str(&rr, soa, 0, NULL, NULL) == LDNS_STATUS_OK)
		ldns_rr_list_push_rr(l, rr);
	for (size_t i = 0; rrs != NULL && rrs[i] != NULL; i++) {
		rr = NULL;
		if (ldns_rr_new_frm_str(&rr, rrs[i], 0, NULL, NULL) == LDNS_STATUS_OK)
			ldns_rr_list_push_rr(l, rr);
	}
	return l;
}

/* The text of a list's records, ";"-joined, for comparisons. */
static const char *
text(const ldns_rr_list *l, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ldns_rr_list_rr_count(l) && n < len; i++) {
		char *s = ldns_rr2str(ldns_rr_list_rr(l, i));

		if (s == NULL)
			break;
		s[strcspn(s, "\n")] = '\0';
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ";" : "", s);
		free(s);
	}
	return buf;
}

static void
record(struct journal *j, uint32_t a, const char *const *ra, uint32_t b, const char *const *rb,
    int want, const char *what)
{
	ldns_rr_list *x = version(a, ra), *y = version(b, rb);

	is_int(journal_record(j, ZONE, x, y), want, "%s", what);
	ldns_rr_list_deep_free(x);
	ldns_rr_list_deep_free(y);
}

static const char *const v1[] = {"smtp.example.test. 30 IN A 192.0.2.1",
    "smtp.example.test. 30 IN A 192.0.2.2", "www.example.test. 300 IN A 192.0.2.9", NULL};
static const char *const v2[] = {"www.example.test. 300 IN A 192.0.2.9",
    "smtp.example.test. 30 IN A 192.0.2.3", "smtp.example.test. 30 IN A 192.0.2.2", NULL};
static const char *const v3[] = {"smtp.example.test. 30 IN A 192.0.2.3",
    "smtp.example.test. 30 IN A 192.0.2.2", "www.example.test. 600 IN A 192.0.2.9", NULL};

static void
test_diff(void)
{
	struct journal *j = journal_new();
	const struct journal_step *s;
	size_t n = 0;
	char buf[1024];

	record(j, 1, v1, 2, v2, 0, "step 1 -> 2");
	ok(journal_find(j, ZONE, 1, 2, &s, &n) == 0 && n == 1, "one step from 1");
	is_str(text(s->removed, buf, sizeof(buf)), "smtp.example.test.\t30\tIN\tA\t192.0.2.1",
	    "removed: the old address only (order in the file does not matter)");
	is_str(text(s->added, buf, sizeof(buf)), "smtp.example.test.\t30\tIN\tA\t192.0.2.3",
	    "added: the new address only");
	is_int(s->from, 1, "from serial");
	is_int(s->to, 2, "to serial");
	record(j, 2, v2, 3, v3, 0, "step 2 -> 3 (a TTL change)");
	ok(journal_find(j, ZONE, 2, 3, &s, &n) == 0 && n == 1, "one step from 2");
	is_str(text(s->removed, buf, sizeof(buf)), "www.example.test.\t300\tIN\tA\t192.0.2.9",
	    "TTL change: the old record removed");
	is_str(text(s->added, buf, sizeof(buf)), "www.example.test.\t600\tIN\tA\t192.0.2.9",
	    "and the new one added");
	ok(journal_find(j, ZONE, 1, 3, &s, &n) == 0 && n == 2 && s[0].from == 1 && s[1].to == 3,
	    "two steps from 1, oldest first");
	ok(journal_find(j, ZONE, 0, 3, &s, &n) == -1, "a serial before the history");
	ok(journal_find(j, ZONE, 1, 4, &s, &n) == -1, "history not at the asked end");
	ok(journal_find(j, "other.test", 1, 3, &s, &n) == -1, "another zone");
	/* A step from a serial we did not end at: the chain restarts. */
	record(j, 7, v3, 8, v1, 0, "step 7 -> 8 after a gap");
	ok(journal_find(j, ZONE, 1, 8, &s, &n) == -1, "no chain across the gap");
	ok(journal_find(j, ZONE, 7, 8, &s, &n) == 0 && n == 1, "the new step alone");
	journal_drop(j, ZONE);
	ok(journal_find(j, ZONE, 7, 8, &s, &n) == -1, "dropped");
	journal_free(j);
	journal_free(NULL);
}

static void
test_bounds(void)
{
	struct journal *j = journal_new();
	const struct journal_step *s;
	size_t n = 0;
	static char big[JOURNAL_MAX_BYTES / 500][700];
	static const char *bigv[JOURNAL_MAX_BYTES / 500 + 1];
	size_t nb = sizeof(big) / sizeof(big[0]);

	for (uint32_t i = 1; i <= JOURNAL_MAX_STEPS + 10; i++)
		record(j, i, i % 2 ? v1 : v2, i + 1, i % 2 ? v2 : v1, 0, "a small step");
	ok(journal_find(j, ZONE, 11, JOURNAL_MAX_STEPS + 11, &s, &n) == 0 && n == JOURNAL_MAX_STEPS,
	    "the last %d steps kept", JOURNAL_MAX_STEPS);
	ok(journal_find(j, ZONE, 10, JOURNAL_MAX_STEPS + 11, &s, &n) == -1, "the oldest gone");
	/* One step of more than JOURNAL_MAX_BYTES: not kept, and nothing before it. */
	for (size_t i = 0; i < nb; i++) {
		snprintf(big[i], sizeof(big[i]),
		    "t%zu.example.test. 300 IN TXT \"%0200zu\" \"%0200zu\" \"%0200zu\"", i, i, i,
		    i);
		bigv[i] = big[i];
	}
	bigv[nb] = NULL;
	record(j, JOURNAL_MAX_STEPS + 11, v1, JOURNAL_MAX_STEPS + 12, bigv, -1,
	    "a step over the byte bound is refused");
	ok(journal_find(j, ZONE, JOURNAL_MAX_STEPS + 10, JOURNAL_MAX_STEPS + 11, &s, &n) == -1,
	    "and the history is dropped (AXFR next)");
	record(j, JOURNAL_MAX_STEPS + 12, v1, JOURNAL_MAX_STEPS + 13, v2, 0, "then a small step");
	ok(journal_find(j, ZONE, JOURNAL_MAX_STEPS + 12, JOURNAL_MAX_STEPS + 13, &s, &n) == 0,
	    "is kept again");
	journal_free(j);
}

int
main(void)
{
	test_diff();
	test_bounds();
	return tap_done();
}
