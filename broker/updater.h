/*
 * updater.h - keep a cluster's address RRsets on external primaries
 * (`masters`) with RFC 2136 dynamic UPDATE, TSIG-signed (RFC 8945) with the
 * cluster's key when one is set.
 *
 * For each new desired set the updater asks the master (UDP): SOA of the
 * cluster name, which names the zone to update; then the A and AAAA
 * RRsets.  When the master's data differs it sends one UPDATE that deletes
 * each differing RRset and adds the new records, and checks the answer
 * (rcode, and the TSIG of the answer when signed).  A failure (timeout,
 * refusal, bad signature) is logged with its cause and the next master is
 * tried; when every master failed the round is retried after a backoff that
 * doubles from 1 s up to UPDATER_BACKOFF_MAX.  A newer desired set replaces
 * the pending one.  Runs on the caller's event_base (main thread).
 */
#ifndef MXB_BROKER_UPDATER_H
#define MXB_BROKER_UPDATER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addr;
struct config_addrs;
struct config_key;
struct event_base;
struct updater;

#define UPDATER_TIMEOUT_MS  2000 /* per query or UPDATE */
#define UPDATER_BACKOFF_MAX 60   /* seconds */
#define UPDATER_MAX_ADDRS   1000

struct updater_stats {
	uint64_t rounds;      /* desired sets compared with a master */
	uint64_t updates;     /* UPDATE messages sent */
	uint64_t updates_ok;  /* answered NOERROR (and verified) */
	uint64_t failures;    /* timeouts, refusals, bad answers */
	bool in_sync;         /* the last round ended with the master agreeing */
	char last_error[256]; /* "" when none */
};

/*
 * An updater for cluster `name` towards `masters` (copied), signing with
 * `key` (borrowed: must outlive the updater; NULL = unsigned).  NULL on
 * out of memory.
 */
struct updater *updater_new(struct event_base *base, const char *name,
    const struct config_addrs *masters, const struct config_key *key);

/*
 * Set what the master should hold: for each family with manage4/manage6,
 * exactly the given addresses (n may be 0: the RRset is deleted), with
 * `ttl`.  Families not managed are never touched.  Starts a round now
 * (or as soon as the running one ends).  Addresses are copied.
 */
void updater_set(struct updater *u, const struct addr *v4, size_t n4, bool manage4,
    const struct addr *v6, size_t n6, bool manage6, uint32_t ttl);

void updater_get_stats(const struct updater *u, struct updater_stats *out);

/* Cancel everything in flight; NULL is a no-op. */
void updater_free(struct updater *u);

/* Pure helpers, exposed for tests/unit/test_updater.c. */

/*
 * Build the UPDATE for `zone` replacing the RRsets of `name`: for each
 * managed family a delete-RRset record, then the new records.  Signed
 * with `key` when not NULL.  Returns the packet (caller frees with
 * ldns_pkt_free) or NULL.
 */
struct ldns_struct_pkt;
struct ldns_struct_pkt *updater_build(const char *zone, const char *name, uint32_t ttl,
    const struct addr *v4, size_t n4, bool manage4, const struct addr *v6, size_t n6, bool manage6,
    const struct config_key *key);

/* The TSIG algorithm name ldns wants for a key ("hmac-sha256."). */
const char *updater_tsig_algorithm(const struct config_key *key);

#endif
