/*
 * dnscache.h - the resolver's answer cache: (name, type) -> dns_answer,
 * honouring TTLs (positive and RFC 2308 negative), bounded in entries with
 * least-recently-used eviction.
 *
 * Entries are reference counted so that a lookup may hand one to a caller
 * that uses it later (a deferred callback) even if it is evicted meanwhile.
 * Time is passed in (monotonic seconds) so tests control the clock.  One
 * cache belongs to one event loop: not thread-safe.
 */
#ifndef MXB_DNSCACHE_H
#define MXB_DNSCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "resolver/dnsmsg.h"

struct dnscache;
struct dnscache_entry;

/* A cache of at most `max_entries` answers; 0 disables caching (every
 * insert is refused).  NULL on allocation failure. */
struct dnscache *dnscache_new(size_t max_entries);
/* Frees the cache; entries still referenced stay valid until released. */
void dnscache_free(struct dnscache *c);

/*
 * Find a live entry for (name, type) at time `now`; an expired one is
 * dropped.  On a hit the entry is returned with a reference the caller must
 * give back with dnscache_release.  NULL on a miss.
 */
struct dnscache_entry *dnscache_lookup(
    struct dnscache *c, const char *name, uint16_t type, uint64_t now);

/*
 * Store `a` (ownership of its records moves to the cache; `a` is left
 * cleared) for a->ttl seconds from `now`, replacing any entry with the same
 * key and evicting the least recently used beyond the bound.  Uncacheable
 * answers (a->cacheable false, TTL 0, cache disabled) and an allocation
 * failure are refused: NULL, and `a` is left as it was (still the caller's
 * to use and clear).  Otherwise the new entry, with one reference for the
 * caller.
 */
struct dnscache_entry *dnscache_insert(struct dnscache *c, struct dns_answer *a, uint64_t now);

/* The answer inside an entry (borrowed while the reference is held). */
const struct dns_answer *dnscache_answer(const struct dnscache_entry *e);
/* Seconds of life left at `now` (0 when expired). */
uint32_t dnscache_ttl_left(const struct dnscache_entry *e, uint64_t now);

void dnscache_retain(struct dnscache_entry *e);
void dnscache_release(struct dnscache_entry *e);

/* Counters for status pages and tests. */
struct dnscache_stats {
	size_t entries;
	uint64_t hits, misses, inserts, evictions, expired;
};
void dnscache_get_stats(const struct dnscache *c, struct dnscache_stats *out);

#endif
