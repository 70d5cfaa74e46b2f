/*
 * broker.h - brokerd assembled: the zone store loaded from the
 * configuration, the DNS server, NOTIFY, reloads and the status endpoint.
 * Everything here runs on the main thread.
 */
#ifndef MXB_BROKER_BROKER_H
#define MXB_BROKER_BROKER_H

struct broker;
struct config;
struct event_base;
struct zonestore;

#define BROKER_RECLAIM_MS     200 /* how often retired zones are freed */
#define BROKER_RESIGN_CHECK_S 60  /* how often signed zones look for a new signing period */

/*
 * Check every zone of cfg whose file exists (file:line errors printed on
 * stderr); used by `brokerd -t`.  Zone files that do not exist yet are not
 * an error here: they are at start.  Returns 0 or -1.
 */
int broker_check_zones(const struct config *cfg);

/*
 * Load every zone (a zone that does not load is logged with file:line and
 * is fatal: NULL), bind the DNS sockets and the status endpoint on `base`.
 * cfg is borrowed and must outlive the broker.
 */
struct broker *broker_new(struct event_base *base, const struct config *cfg);

/* Start the query threads (after dropping privileges), then NOTIFY every
 * zone to its also-notify peers; 0 or -1. */
int broker_start(struct broker *b);

/* SIGHUP: load every zone again; a zone that fails keeps its old data. */
void broker_reload(struct broker *b);

/* The zone store, for the load brokering code (zonestore.h). */
struct zonestore *broker_zonestore(struct broker *b);

void broker_free(struct broker *b);

#endif
