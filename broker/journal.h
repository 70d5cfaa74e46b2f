/*
 * journal.h - a bounded, in-memory history of each zone's recent serial
 * changes, for IXFR out (RFC 1995): per step the records removed and added.
 *
 * The zone store records a step at every publication that moves a serial
 * (a brokered change is a few A/AAAA records; a reload may be more).  A
 * zone keeps at most JOURNAL_MAX_STEPS steps and JOURNAL_MAX_BYTES bytes of
 * records (uncompressed); the oldest steps go first.  A step that cannot be
 * recorded (too large alone, no memory) drops the zone's history, so the
 * history is always an unbroken chain ending at the served serial and an
 * IXFR from before it is answered in full.  Nothing survives a restart:
 * secondaries then fall back to AXFR once.  Owner thread only.
 */
#ifndef MXB_BROKER_JOURNAL_H
#define MXB_BROKER_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

#define JOURNAL_MAX_STEPS 64
#define JOURNAL_MAX_BYTES (1024 * 1024)

struct journal;

/* One serial step of a zone.  Read-only for users of journal_find. */
struct journal_step {
	uint32_t from, to;     /* serials */
	ldns_rr *soa_from;     /* the SOA as served at `from` */
	ldns_rr *soa_to;       /* and at `to` */
	ldns_rr_list *removed; /* records of `from` not in `to` (no SOA) */
	ldns_rr_list *added;   /* records of `to` not in `from` (no SOA) */
	size_t bytes;          /* of all the above, uncompressed */
};

/* An empty journal; NULL when out of memory. */
struct journal *journal_new(void);

/* Frees every zone's history.  NULL is a no-op. */
void journal_free(struct journal *j);

/*
 * Record the step of `zone` (lower case, no trailing dot) from the records
 * `before` to `after` (each SOA first, then the rest, as zone_rrs gives
 * them; borrowed, copied).  A record whose TTL changed counts as removed
 * and added.  When `before`'s serial is not the last recorded `to`, the
 * older history is dropped first.  0, or -1 when the step could not be kept
 * (the zone's history is then empty).  Cost: sorting both lists.
 */
int journal_record(
    struct journal *j, const char *zone, const ldns_rr_list *before, const ldns_rr_list *after);

/* Forget `zone`'s history (the zone is no longer served). */
void journal_drop(struct journal *j, const char *zone);

/*
 * The steps of `zone` that lead from serial `from` to serial `to`, oldest
 * first: *steps (borrowed until the next journal_record or journal_drop of
 * that zone) and *n.  0, or -1 when the history does not reach back to
 * `from` or does not end at `to`.
 */
int journal_find(const struct journal *j, const char *zone, uint32_t from, uint32_t to,
    const struct journal_step **steps, size_t *n);

#endif
