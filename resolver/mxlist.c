/* mxlist.c - RFC 5321 §5.1 ordering and self-check of MX candidates. */
#include <stdlib.h>
#include <string.h>

#include "common/random.h"
#include "resolver/mxlist.h"

static int
pref_cmp(const void *a, const void *b)
{
	const struct mx_target *x = a, *y = b;

	return (x->pref > y->pref) - (x->pref < y->pref);
}

void
mxlist_sort(struct mx_target *v, size_t n)
{
	struct mx_target tmp;
	size_t i = 0;

	if (n < 2)
		return;
	qsort(v, n, sizeof(*v), pref_cmp);
	while (i < n) { /* Fisher-Yates within each preference run */
		size_t j = i;

		while (j < n && v[j].pref == v[i].pref)
			j++;
		for (size_t k = j - 1; k > i; k--) {
			size_t r = i + random_uniform((uint32_t)(k - i + 1));

			tmp = v[k];
			v[k] = v[r];
			v[r] = tmp;
		}
		i = j;
	}
}

static bool
has_self_addr(const struct mx_target *t, const struct addr *self, size_t nself)
{
	for (size_t i = 0; i < t->naddrs; i++)
		for (size_t j = 0; j < nself; j++)
			if (addr_equal_host(&t->addrs[i], &self[j]))
				return true;
	return false;
}

size_t
mxlist_find_self(const struct mx_target *v, size_t n, const char *hostname, const struct addr *self,
    size_t nself, bool use_addrs)
{
	for (size_t i = 0; i < n; i++) {
		if (hostname != NULL && strcasecmp(v[i].host, hostname) == 0)
			return i;
		if (use_addrs && has_self_addr(&v[i], self, nself))
			return i;
	}
	return n;
}

size_t
mxlist_keep_before(const struct mx_target *v, size_t n, size_t self)
{
	size_t k = 0;

	if (self >= n)
		return n;
	while (k < n && v[k].pref < v[self].pref)
		k++;
	return k;
}

int
mxlist_add_addr(struct mx_target *t, const struct addr *a)
{
	if (t->naddrs == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4;
		struct addr *v = reallocarray(t->addrs, cap, sizeof(*v));

		if (v == NULL)
			return -1;
		t->addrs = v;
		t->cap = cap;
	}
	if (addr_family(a) == AF_INET) {
		memmove(
		    &t->addrs[t->nv4 + 1], &t->addrs[t->nv4], (t->naddrs - t->nv4) * sizeof(*a));
		t->addrs[t->nv4++] = *a;
	} else {
		t->addrs[t->naddrs] = *a;
	}
	t->naddrs++;
	return 0;
}

void
mxlist_clear(struct mx_target *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].addrs);
		v[i].addrs = NULL;
		v[i].naddrs = v[i].nv4 = v[i].cap = 0;
	}
}
