/*
 * cluster.h - load brokering: every `cluster` of the configuration, its
 * members polled (metrics/poll.h) and health-checked, ranked (ranker.h)
 * every dns-refresh, and the answer published into the zone store (serial
 * bump, NOTIFY), to the `masters` (updater.h) and to the state file
 * (statefile.h).
 *
 * A member carries three layers of state:
 *   operator  active, or drained by `drain` in the configuration, by
 *             brokerd-ctl (clusters_drain; kept in the state file), or by
 *             its agent (metricd --drain: the reply's draining flag);
 *   health    unknown, up or down: down after `fall` unanswered polls in a
 *             row, up after `rise` answered ones; with `health-check` the
 *             service port must also pass (same fall/rise counts);
 *   load      the rating of the last reply (thousandths), smoothed as the
 *             mean of the last two replies.
 * A drained member leaves the answer but is not down.  Every member's place
 * (in the answer, or why not) is kept for /status, the TXT table and the
 * logs.
 *
 * The ranked table is also served over DNS as TXT records at
 * CLUSTER_STATUS_LABEL.<cluster name> (e.g. _status.smtp.mail.example.test)
 * when the cluster lies in a zone brokerd serves.
 *
 * Main thread only (the zone store's owner thread).
 */
#ifndef MXB_BROKER_CLUSTER_H
#define MXB_BROKER_CLUSTER_H

#include <stdbool.h>

struct addr;
struct clusters;
struct config;
struct event_base;
struct evbuffer;
struct json_object;
struct statefile;
struct zonestore;

#define CLUSTER_STATUS_LABEL "_status" /* TXT table: _status.<cluster> */
#define CLUSTER_TXT_ROWS     64        /* members listed in the TXT table */
#define CLUSTER_TIMEOUT_MAX  5000      /* ms: longest poll/check timeout */

/*
 * Check what the configuration reader cannot: a cluster polled with our
 * protocol and a key needs an hmac-sha256 key; the state file's folder must
 * take new files (serials and answers are kept there).  Prints
 * "file:line: ..." on stderr; returns 0 or -1.  Used by `brokerd -t` and
 * at start.
 */
int clusters_check_config(const struct config *cfg);

/*
 * Start brokering every cluster of cfg (borrowed: must stay valid until
 * clusters_reload replaces it or clusters_free).  Until the first round of
 * polls returns (at most rise polling intervals), each cluster name is
 * answered with its dns-ttl from the set saved in `sf` (the state file,
 * borrowed, may be NULL), else from the zone file's records for the name.
 * NULL on error (logged).
 */
struct clusters *clusters_new(
    struct event_base *base, const struct config *cfg, struct zonestore *zs, struct statefile *sf);

/*
 * Switch to a new configuration (same borrowing rule; the old one may be
 * freed when this returns): clusters and members are added and removed;
 * unchanged members keep their state, so the answer does not move.
 * Returns 0 or -1 (the old configuration then stays in use).
 */
int clusters_reload(struct clusters *cs, const struct config *cfg);

/* What clusters_drain and clusters_show_json can fail with. */
enum clusters_status {
	CLUSTERS_OK,
	CLUSTERS_ENOCLUSTER, /* no cluster of that name */
	CLUSTERS_ENOMEMBER,  /* no member of that address in the cluster */
	CLUSTERS_ECONFIG,    /* undrain: drained by `drain` in the configuration */
	CLUSTERS_ESAVE,      /* done, but the state file was not written */
	CLUSTERS_ENOMEM,
};

/* A sentence for st ("no such cluster", ...); never NULL. */
const char *clusters_strerror(enum clusters_status st);

/*
 * The operator drains (drain true) or undrains `member` of `cluster`
 * (lower case, no trailing dot): a drained member leaves the answer at
 * once (published now, also while warming up), is shown with why
 * "drained", `reason` (may be NULL), `who` and the time in /status, the
 * TXT table and the log, and stays drained across SIGHUP and restarts (the
 * state file) until undrained.  Draining again replaces reason and who.
 * The member's /status object is added to `reply` (may be NULL) under
 * "member".  CLUSTERS_ESAVE: in effect, but a restart would forget it.
 */
enum clusters_status clusters_drain(struct clusters *cs, const char *cluster,
    const struct addr *member, bool drain, const char *reason, const char *who,
    struct json_object *reply);

/*
 * The ranked table of `cluster` (NULL: every cluster) added to `reply` as
 * "clusters": [{"name", "published", "table": [the _status TXT texts, a
 * drained member's row followed by its drain], "members": [in table
 * order: rank, address, why, reason, state, rating, weight, published,
 * drain]}].
 */
enum clusters_status clusters_show_json(
    struct clusters *cs, const char *cluster, struct json_object *reply);

/* Add "clusters" to a /status document, and the metric families. */
void clusters_status_json(struct clusters *cs, struct json_object *root);
void clusters_metrics(struct clusters *cs, struct evbuffer *out);

/* Stop polling and free; the zone keeps the last published sets. */
void clusters_free(struct clusters *cs);

#endif
