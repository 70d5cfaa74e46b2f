/* journal.c - recent serial steps of each zone, for IXFR out. */
#include "broker/journal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One zone's history: steps[0] is the oldest. */
struct history {
	char *zone;
	struct journal_step *steps;
	size_t n;
	size_t bytes;
};

struct journal {
	struct history *v;
	size_t n;
};

struct journal *
journal_new(void)
{
	return calloc(1, sizeof(struct journal));
}

static void
step_clear(struct journal_step *s)
{
	ldns_rr_free(s->soa_from);
	ldns_rr_free(s->soa_to);
	ldns_rr_list_deep_free(s->removed);
	ldns_rr_list_deep_free(s->added);
	memset(s, 0, sizeof(*s));
}

static void
history_clear(struct history *h)
{
	for (size_t i = 0; i < h->n; i++)
		step_clear(&h->steps[i]);
	h->n = 0;
	h->bytes = 0;
}

void
journal_free(struct journal *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; i < j->n; i++) {
		history_clear(&j->v[i]);
		free(j->v[i].steps);
		free(j->v[i].zone);
	}
	free(j->v);
	free(j);
}

static struct history *
history_find(const struct journal *j, const char *zone)
{
	for (size_t i = 0; i < j->n; i++)
		if (strcmp(j->v[i].zone, zone) == 0)
			return &j->v[i];
	return NULL;
}

/* The history of zone, made empty on first use; NULL when out of memory. */
static struct history *
history_get(struct journal *j, const char *zone)
{
	struct history *h = history_find(j, zone), *v;

	if (h != NULL)
		return h;
	v = reallocarray(j->v, j->n + 1, sizeof(*v));
	if (v == NULL)
		return NULL;
	j->v = v;
	h = &v[j->n];
	memset(h, 0, sizeof(*h));
	h->steps = calloc(JOURNAL_MAX_STEPS, sizeof(*h->steps));
	h->zone = strdup(zone);
	if (h->steps == NULL || h->zone == NULL) {
		free(h->steps);
		free(h->zone);
		return NULL;
	}
	j->n++;
	return h;
}

void
journal_drop(struct journal *j, const char *zone)
{
	struct history *h = history_find(j, zone);

	if (h != NULL)
		history_clear(h);
}

static uint32_t
soa_serial(const ldns_rr *soa)
{
	return ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
}

static int
rr_order(const void *a, const void *b)
{
	return ldns_rr_compare(*(const ldns_rr *const *)a, *(const ldns_rr *const *)b);
}

/* The records of l after its SOA, sorted canonically (borrowed pointers). */
static const ldns_rr **
sorted_body(const ldns_rr_list *l, size_t *n)
{
	size_t count = ldns_rr_list_rr_count(l);
	const ldns_rr **v = calloc(count + 1, sizeof(*v));

	*n = 0;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(l, i);

		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA)
			v[(*n)++] = rr;
	}
	qsort(v, *n, sizeof(*v), rr_order);
	return v;
}

/* Append a copy of rr to l, counting its size; false when out of memory. */
static bool
keep(ldns_rr_list *l, const ldns_rr *rr, size_t *bytes)
{
	ldns_rr *c = ldns_rr_clone(rr);

	if (c == NULL || !ldns_rr_list_push_rr(l, c)) {
		ldns_rr_free(c);
		return false;
	}
	*bytes += ldns_rr_uncompressed_size(rr);
	return true;
}

/*
 * Merge the two sorted bodies: what only a has was removed, what only b has
 * was added; the same record with another TTL is both (RFC 1995 has no
 * "change").  Stops early (false) past JOURNAL_MAX_BYTES.
 */
static bool
diff(const ldns_rr **a, size_t na, const ldns_rr **b, size_t nb, struct journal_step *s)
{
	size_t i = 0, k = 0;

	while ((i < na || k < nb) && s->bytes <= JOURNAL_MAX_BYTES) {
		int c = i == na ? 1 : k == nb ? -1 : ldns_rr_compare(a[i], b[k]);
		bool ok = true;

		if (c == 0 && ldns_rr_ttl(a[i]) == ldns_rr_ttl(b[k])) {
			i++;
			k++;
			continue;
		}
		if (c <= 0)
			ok = keep(s->removed, a[i++], &s->bytes);
		if (c >= 0 && ok)
			ok = keep(s->added, b[k++], &s->bytes);
		if (!ok)
			return false;
	}
	return s->bytes <= JOURNAL_MAX_BYTES;
}

/* The step before -> after in s; false when it cannot be had or is too large. */
static bool
step_make(struct journal_step *s, const ldns_rr_list *before, const ldns_rr_list *after)
{
	size_t na = 0, nb = 0;
	const ldns_rr **a = sorted_body(before, &na), **b = sorted_body(after, &nb);
	bool ok = false;

	s->soa_from = ldns_rr_clone(ldns_rr_list_rr(before, 0));
	s->soa_to = ldns_rr_clone(ldns_rr_list_rr(after, 0));
	s->removed = ldns_rr_list_new();
	s->added = ldns_rr_list_new();
	if (a != NULL && b != NULL && s->soa_from != NULL && s->soa_to != NULL &&
	    s->removed != NULL && s->added != NULL) {
		s->from = soa_serial(s->soa_from);
		s->to = soa_serial(s->soa_to);
		s->bytes =
		    ldns_rr_uncompressed_size(s->soa_from) + ldns_rr_uncompressed_size(s->soa_to);
		ok = diff(a, na, b, nb, s);
	}
	free(a);
	free(b);
	return ok;
}

/* Drop the oldest steps until `more` bytes and one more step fit. */
static void
history_trim(struct history *h, size_t more)
{
	size_t drop = 0;

	while (drop < h->n &&
	    (h->n - drop >= JOURNAL_MAX_STEPS || h->bytes + more > JOURNAL_MAX_BYTES)) {
		h->bytes -= h->steps[drop].bytes;
		step_clear(&h->steps[drop]);
		drop++;
	}
	memmove(h->steps, h->steps + drop, (h->n - drop) * sizeof(*h->steps));
	h->n -= drop;
}

int
journal_record(
    struct journal *j, const char *zone, const ldns_rr_list *before, const ldns_rr_list *after)
{
	struct history *h = history_get(j, zone);
	struct journal_step s = {0};

	if (h == NULL)
		return -1;
	if (ldns_rr_list_rr_count(before) == 0 || ldns_rr_list_rr_count(after) == 0 ||
	    ldns_rr_get_type(ldns_rr_list_rr(before, 0)) != LDNS_RR_TYPE_SOA ||
	    ldns_rr_get_type(ldns_rr_list_rr(after, 0)) != LDNS_RR_TYPE_SOA ||
	    !step_make(&s, before, after)) {
		step_clear(&s);
		history_clear(h);
		return -1;
	}
	/* A gap (a step we did not see): what came before it is no chain. */
	if (h->n > 0 && h->steps[h->n - 1].to != s.from)
		history_clear(h);
	history_trim(h, s.bytes);
	h->steps[h->n++] = s;
	h->bytes += s.bytes;
	return 0;
}

int
journal_find(const struct journal *j, const char *zone, uint32_t from, uint32_t to,
    const struct journal_step **steps, size_t *n)
{
	const struct history *h = history_find(j, zone);

	if (h == NULL || h->n == 0 || h->steps[h->n - 1].to != to)
		return -1;
	for (size_t i = h->n; i-- > 0;)
		if (h->steps[i].from == from) {
			*steps = &h->steps[i];
			*n = h->n - i;
			return 0;
		}
	return -1;
}
