/* dnscache.c - bounded, TTL-honouring answer cache (hash table + LRU list). */
#include <stdlib.h>
#include <string.h>

#include "resolver/dnscache.h"

struct dnscache_entry {
	struct dns_answer ans;
	uint64_t expires; /* monotonic seconds */
	unsigned refs;
	bool linked;                        /* in the table and the LRU list */
	struct dnscache_entry *chain;       /* hash bucket */
	struct dnscache_entry *prev, *next; /* LRU: head = most recent */
};

struct dnscache {
	struct dnscache_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t max, count;
	struct dnscache_entry *head, *tail;
	struct dnscache_stats stats;
};

#define DNSCACHE_MAX_BUCKETS (1u << 20)

static uint32_t
key_hash(const char *name, uint16_t type)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *name != '\0'; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	h = (h ^ (type & 0xff)) * 16777619u;
	return (h ^ (type >> 8)) * 16777619u;
}

struct dnscache *
dnscache_new(size_t max_entries)
{
	struct dnscache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->max = max_entries;
	c->nbuckets = 64;
	while (c->nbuckets < max_entries && c->nbuckets < DNSCACHE_MAX_BUCKETS)
		c->nbuckets <<= 1;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (c->buckets == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
dnscache_retain(struct dnscache_entry *e)
{
	e->refs++;
}

void
dnscache_release(struct dnscache_entry *e)
{
	if (e == NULL || --e->refs > 0)
		return;
	dns_answer_clear(&e->ans);
	free(e);
}

static void
lru_unlink(struct dnscache *c, struct dnscache_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push_front(struct dnscache *c, struct dnscache_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

/* Take an entry out of the table and the list; drops the cache's reference. */
static void
entry_remove(struct dnscache *c, struct dnscache_entry *e)
{
	struct dnscache_entry **pp;
	size_t b = key_hash(e->ans.qname, e->ans.qtype) & (c->nbuckets - 1);

	for (pp = &c->buckets[b]; *pp != NULL; pp = &(*pp)->chain) {
		if (*pp == e) {
			*pp = e->chain;
			break;
		}
	}
	lru_unlink(c, e);
	e->linked = false;
	c->count--;
	dnscache_release(e);
}

void
dnscache_free(struct dnscache *c)
{
	if (c == NULL)
		return;
	while (c->head != NULL)
		entry_remove(c, c->head);
	free(c->buckets);
	free(c);
}

static struct dnscache_entry *
find(const struct dnscache *c, const char *name, uint16_t type)
{
	struct dnscache_entry *e;

	e = c->buckets[key_hash(name, type) & (c->nbuckets - 1)];
	for (; e != NULL; e = e->chain)
		if (e->ans.qtype == type && strcmp(e->ans.qname, name) == 0)
			return e;
	return NULL;
}

struct dnscache_entry *
dnscache_lookup(struct dnscache *c, const char *name, uint16_t type, uint64_t now)
{
	struct dnscache_entry *e = find(c, name, type);

	if (e != NULL && e->expires <= now) {
		entry_remove(c, e);
		c->stats.expired++;
		e = NULL;
	}
	if (e == NULL) {
		c->stats.misses++;
		return NULL;
	}
	c->stats.hits++;
	lru_unlink(c, e);
	lru_push_front(c, e);
	e->refs++;
	return e;
}

struct dnscache_entry *
dnscache_insert(struct dnscache *c, struct dns_answer *a, uint64_t now)
{
	struct dnscache_entry *e, *old;
	size_t b;

	/* Refused: `a` stays the caller's, untouched (it may still be handed
	 * to waiters, as dnsclient's tx_deliver does with cache-size 0). */
	if (c->max == 0 || !a->cacheable || a->ttl == 0 || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->ans = *a;
	a->rrs = NULL;
	e->expires = now + a->ttl;
	e->refs = 2; /* the table's and the caller's */
	if ((old = find(c, e->ans.qname, e->ans.qtype)) != NULL)
		entry_remove(c, old);
	b = key_hash(e->ans.qname, e->ans.qtype) & (c->nbuckets - 1);
	e->chain = c->buckets[b];
	c->buckets[b] = e;
	e->linked = true;
	lru_push_front(c, e);
	c->count++;
	c->stats.inserts++;
	while (c->count > c->max) {
		entry_remove(c, c->tail);
		c->stats.evictions++;
	}
	return e;
}

const struct dns_answer *
dnscache_answer(const struct dnscache_entry *e)
{
	return &e->ans;
}

uint32_t
dnscache_ttl_left(const struct dnscache_entry *e, uint64_t now)
{
	return e->expires > now ? (uint32_t)(e->expires - now) : 0;
}

void
dnscache_get_stats(const struct dnscache *c, struct dnscache_stats *out)
{
	*out = c->stats;
	out->entries = c->count;
}
