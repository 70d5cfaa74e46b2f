/*
 * zonestore.h - the zones brokerd serves, published to the query threads
 * without locks, and the run-time API that replaces one RRset (cluster
 * answers, issue "load brokering").
 *
 * Thread model.  The store keeps an immutable snapshot: an array of
 * compiled zones (zone.h).  A change builds a new zone off to the side, a
 * new snapshot array, and publishes it with one atomic pointer store.  Query
 * threads read the snapshot inside zonestore_enter/zonestore_leave, which
 * only store their epoch in their own cache line (quiescent-state epochs):
 * no lock, no reference count, no shared write on the query path.  The old
 * zone and array are retired with the epoch of the swap and freed by
 * zonestore_reclaim once every reader has left or entered a later epoch.
 *
 * Every function except zonestore_enter/zonestore_leave must be called on
 * the owner thread (brokerd's main thread), which may also read
 * zonestore_snapshot directly: it never frees while it is itself reading.
 */
#ifndef MXB_BROKER_ZONESTORE_H
#define MXB_BROKER_ZONESTORE_H

#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

struct addr;
struct journal;
struct zone;
struct zonestore;

/* A published set of zones; read-only for everyone. */
struct zsnap {
	size_t n;
	struct zone *zones[];
};

/*
 * Called on the owner thread after a publication moved the serial of `z`
 * (old_serial is 0 for a zone seen for the first time): send NOTIFY.
 */
typedef void (*zonestore_change_fn)(const struct zone *z, uint32_t old_serial, void *arg);

/* A store for `nreaders` query threads (reader ids 0..nreaders-1). */
struct zonestore *zonestore_new(unsigned nreaders);

/* Frees every zone; no reader may be inside. */
void zonestore_free(struct zonestore *zs);

void zonestore_on_change(struct zonestore *zs, zonestore_change_fn fn, void *arg);

/*
 * What an earlier run served of `zone` (the state file): its serial and the
 * zone_digest of that content; call before the zone is first set.  The
 * first zonestore_set_zone of that zone then continues from it (see
 * there), so a restart never serves a lower serial.  0 or -1 (no memory).
 */
int zonestore_restore_serial(
    struct zonestore *zs, const char *zone, uint32_t serial, uint64_t digest);

/*
 * Answers go out from now on.  Until this call, every publication of a
 * restored zone (the file, then the saved cluster answers on top) is
 * numbered from the last run's serial, so a restart that ends up serving
 * what was served before keeps that serial; after it, from what is served.
 */
void zonestore_serving(struct zonestore *zs);

/*
 * Publish `z` (ownership taken, also on error), replacing the zone of the
 * same name or adding it.  RRsets set with zonestore_replace_* are applied
 * again on top of it.  The serial never goes back (RFC 1982): when the
 * zone was served before (by this process, or as given to
 * zonestore_restore_serial), a file serial ahead of the served one is
 * taken; else the same content keeps the serial it was served with and
 * changed content gets one more.  Returns 0 or -1 (logged).
 */
int zonestore_set_zone(struct zonestore *zs, struct zone *z);

/*
 * Stop serving the zone `name` (SIGHUP removed it): from the next query
 * on, names in it are REFUSED; the zone is freed once no reader can see
 * it.  Replaced RRsets in it are remembered (a zone added back gets them).
 * 0 (also when no such zone is served) or -1 (no memory; still served).
 */
int zonestore_remove_zone(struct zonestore *zs, const char *name);

/*
 * Replace the RRset (owner, type) of the zone that holds `owner` (an
 * absolute or relative-to-nothing name such as "smtp.mail.example.test"),
 * atomically for the query threads, and bump that zone's SOA serial by one
 * (RFC 1982); NOTIFY follows through the change callback.  A change that
 * leaves zone_digest as it was (ZONE_RRSET_LOCAL RRsets only, or the same
 * data again) keeps the serial: no NOTIFY, no transfer.  The change is
 * remembered and survives zone reloads (SIGHUP) until replaced again.
 *
 * zonestore_replace_addrs: `n` addresses of one family (AF_INET for type A,
 * AF_INET6 for AAAA; ports ignored) with `ttl`; n == 0 deletes the RRset.
 * `flags`: ZONE_RRSET_ROTATE (each answer starts one record further: round
 * robin, no allocation) and ZONE_RRSET_TRIM (over UDP, drop records that do
 * not fit the client's size instead of setting TC).
 * zonestore_replace_rrs: any type but SOA; `rrs` is borrowed (cloned), all
 * owned by `owner` with that type; NULL or empty deletes.
 *
 * Both return 0, or -1 with the reason logged (no zone holds the name,
 * CNAME conflict, wrong family, out of memory); the old data keeps serving.
 * Cost: the zone's answers are all prepared again (fine for the few
 * hundred names of a mail subdomain; call at most once per refresh).
 */
int zonestore_replace_addrs(struct zonestore *zs, const char *owner, uint16_t type, uint32_t ttl,
    const struct addr *addrs, size_t n, unsigned flags);
int zonestore_replace_rrs(struct zonestore *zs, const char *owner, uint16_t type,
    const ldns_rr_list *rrs, unsigned flags);

/*
 * Several RRsets of one zone replaced at once, as zonestore_replace_rrs
 * does for one: one rebuild, one serial bump, one NOTIFY (a cluster's A,
 * AAAA and status TXT change together).  Every owner must lie in the same
 * zone; n is 1..ZONESTORE_BATCH_MAX.  0 or -1 (logged, nothing changed).
 */
#define ZONESTORE_BATCH_MAX 8
struct zonestore_rrset {
	const char *owner;
	uint16_t type;
	const ldns_rr_list *rrs; /* borrowed (cloned); NULL or empty deletes */
	unsigned flags;          /* ZONE_RRSET_* */
};
int zonestore_replace_batch(struct zonestore *zs, const struct zonestore_rrset *sets, size_t n);

/*
 * The A or AAAA records (class IN, `ttl`) of `owner` for n addresses of the
 * type's family, for zonestore_replace_batch and RFC 2136 updates; NULL
 * (logged) on a wrong family or no memory.  Free with ldns_rr_list_deep_free.
 */
ldns_rr_list *zonestore_addr_rrs(
    const char *owner, uint16_t type, uint32_t ttl, const struct addr *addrs, size_t n);

/* The current snapshot, for the owner thread (borrowed until it changes). */
const struct zsnap *zonestore_snapshot(const struct zonestore *zs);

/* The zone named `name` in the current snapshot, or NULL. */
const struct zone *zonestore_find(const struct zonestore *zs, const char *name);

/* Query threads: enter before reading, leave after the last use. */
const struct zsnap *zonestore_enter(struct zonestore *zs, unsigned reader);
void zonestore_leave(struct zonestore *zs, unsigned reader);

/* Free what no reader can still see; call periodically (owner thread). */
void zonestore_reclaim(struct zonestore *zs);

/*
 * The IXFR history (journal.h) of every zone: each publication that moves
 * a serial records its step there (owner thread; borrowed).
 */
const struct journal *zonestore_journal(const struct zonestore *zs);

/* Retired objects not yet freed (for tests and /status). */
size_t zonestore_pending(const struct zonestore *zs);

#endif
