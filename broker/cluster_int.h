/*
 * cluster_int.h - what the parts of cluster.h's implementation share, and
 * nothing else includes: the member and cluster structs, and the functions
 * one part calls in another.
 *   cluster.c          life cycle: start, reload, free; saved drains
 *   cluster_member.c   member state: polls, health checks, rise/fall, drains
 *   cluster_publish.c  ranking and publishing: zone, masters, state file
 *   cluster_status.c   status output: /status, /metrics, brokerd-ctl show,
 *                      the _status TXT table's texts
 * Main thread only, like cluster.h.
 */
#ifndef MXB_BROKER_CLUSTER_INT_H
#define MXB_BROKER_CLUSTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/util.h>
#include <ldns/ldns.h>

#include "broker/cluster.h"
#include "broker/healthcheck.h"
#include "broker/risefall.h"
#include "broker/statefile.h"
#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"
#include "metrics/poll.h"

struct json_object;

#define TICK_MS_MAX           250 /* poll scheduler tick, at most */
#define TICK_MS_MIN           10
#define LOG_LINE_MAX          1024
#define TABLE_ROW_MAX         256
#define LOG_WHY_MAX           (STATEFILE_REASON_MAX + STATEFILE_WHO_MAX + 64)
#define FAM_V4                0
#define FAM_V6                1
#define CLUSTER_VERIFY_MIN_MS 60000 /* masters compared at least this far apart */
#define CLUSTER_POLL_RETRIES  2     /* resends inside a poll's timeout (at 1/3, 2/3) */

enum member_state {
	MEMBER_UNKNOWN, /* not yet decided since start */
	MEMBER_UP,
	MEMBER_DOWN,
};

/* Why a member is, or is not, in the answer. */
enum member_why {
	WHY_ANSWER,  /* published */
	WHY_RANK,    /* eligible but ranked below max-members */
	WHY_UNKNOWN, /* no verdict yet */
	WHY_DOWN,    /* its agent stopped answering */
	WHY_DRAINED, /* `drain` in the configuration, or brokerd-ctl drain */
	WHY_AGENT,   /* its agent reports draining */
	WHY_HEALTH,  /* the service check fails */
	WHY_UNAVAIL, /* its agent reports the relay cannot take mail now */
	WHY_WARMING, /* eligible, but the placeholder answer stands until the first round */
};

struct cluster;

struct member {
	struct cluster *cl;
	struct config_member cm;
	struct addr agent;  /* check address, metric port */
	struct addr target; /* check address, health-check port */
	enum member_state state, hstate;
	struct risefall polled; /* metric polls answered / missed in a row */
	struct risefall health; /* service checks passed / failed in a row */
	bool pending;
	uint32_t handle;
	bool agent_drain;
	uint16_t unavail; /* METRIC_F_UNAVAILABLE bits of the last reply */
	int32_t rating, smoothed;
	struct metric_values last;
	unsigned rtt_us;
	time_t last_reply;
	uint64_t polls, replies, timeouts, refusals, key_mismatches;
	char error[64];
	struct healthcheck *hc;
	char hwhy[HEALTHCHECK_WHY_LEN];
	bool ctl_drain; /* drained by brokerd-ctl (kept in the state file) */
	struct statefile_drain drain;
	bool published;
	enum member_why why;
	size_t rank; /* 1-based within its family, 0 = not ranked */
};

/* The published set of one family. */
struct pubset {
	struct addr *v;
	size_t n;
	bool managed;  /* the cluster has members or a failover of this family */
	bool failover; /* the failover address is what is published */
	bool held;     /* all down, no failover: the last set is kept */
};

struct cluster {
	struct clusters *cs;
	const struct config_cluster *cfg;
	char *name;
	char *status_name; /* _status.<name> */
	struct member *m;
	size_t n;
	/* ranking scratch, n entries each */
	struct ranker_member *rm;
	size_t *idx, *order;
	int64_t *scores;
	struct event *tick, *refresh;
	uint64_t cycle_start;
	size_t cursor;
	unsigned timeout_ms;
	struct pubset pub[2];
	bool in_zone;
	bool warm;                 /* warming up: not every member has a verdict yet */
	size_t unknown;            /* members without a verdict (count_unknown) */
	bool restored;             /* the answer came from the state file or the zone file */
	const char *restored_from; /* "state-file", "zone-file" or NULL */
	uint64_t warm_until;
	uint64_t table_hash; /* of the _status TXT texts last published */
	struct updater *up;
	uint64_t verify_at; /* next comparison with the masters */
	uint64_t changes;
	time_t last_change_at;
	char last_change[LOG_LINE_MAX];
};

struct clusters {
	struct event_base *base;
	const struct config *cfg;
	struct zonestore *zs;
	struct metric_poller *poller;
	unsigned poller_cap;
	struct statefile *sf;
	struct cluster **v;
	size_t n;
	struct log_ratelimit rl;
};

/* Names of enum member_why and enum member_state, for the table and logs. */
extern const char *const cluster_why_names[];
extern const char *const cluster_state_names[];

/* ---- cluster.c: life cycle ---- */

/* The cluster named `name` (lower case) among v[0..n), or NULL. */
struct cluster *cluster_find_in(struct cluster *const *v, size_t n, const char *name);

/* ---- cluster_member.c: member state and polling ---- */

/* FAM_V4 or FAM_V6: the index into struct cluster's pub[] for a's family. */
int cluster_fam_index(const struct addr *a);

/* The member of cl answered at address a (port ignored), or NULL. */
struct member *cluster_member_find(struct cluster *cl, const struct addr *a);

/* Up, healthy (when checked), accepting mail and drained by nobody. */
bool cluster_member_eligible(const struct member *m);

/* Why m is out, before ranking; WHY_ANSWER when it may be published. */
enum member_why cluster_member_exclusion(const struct member *m);

/* Members still without a verdict (drained ones are never polled). */
size_t cluster_count_unknown(const struct cluster *cl);

/* healthcheck.h's callback for one member (arg), counted with rise/fall. */
void cluster_health_cb(bool ok, const char *why, void *arg);

/*
 * Spread the polls of one interval evenly: member i is due at
 * cycle_start + i * interval / n.  Late ticks catch up, never burst more
 * than what fell due.
 */
void cluster_tick_cb(evutil_socket_t fd, short what, void *arg);

/* Cancel a member's pending poll and free its health check. */
void cluster_member_stop(struct member *m);

/* ---- cluster_publish.c: ranking and publishing ---- */

/* "A" or "AAAA" for a FAM_ index. */
const char *cluster_fam_type(int f);

/* Append to a fixed buffer; silently truncates (log lines). */
void cluster_bprintf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append "{a, b}" for the n addresses of v (cluster_bprintf). */
void cluster_set_list(char *buf, size_t cap, const struct addr *v, size_t n);

/* Mark each member published or not from cl's published sets. */
void cluster_update_published_flags(struct cluster *cl);

/* A hash of the table's texts (FNV-1a), to publish only what changed. */
uint64_t cluster_table_hash(const ldns_rr_list *l);

/*
 * Put what changed into the zone in one step: the A and/or AAAA set of the
 * families in fam[] and the status table when it changed; one rebuild, one
 * serial bump, one NOTIFY.
 */
void cluster_publish_zone(struct cluster *cl, const bool fam[2]);

/*
 * Hand the published sets to the updater.  A family with nothing published
 * yet is left alone on the master: an empty set is never pushed.
 */
void cluster_push_masters(struct cluster *cl);

/*
 * Rank every family and publish what changed (zone, state file); the
 * masters get the sets on a change and every verify period anyway.
 */
void cluster_refresh(struct cluster *cl);

/* The dns-refresh timer (arg: the cluster), also made active at once by a member. */
void cluster_refresh_cb(evutil_socket_t fd, short what, void *arg);

/* ---- cluster_status.c: status output ---- */

/* Why m is where it is, in words ("down: 3 polls failed (timeout)"). */
void cluster_why_text(const struct member *m, char *buf, size_t len);

/* The members in table order (row_cmp); NULL when out of memory.  Free it. */
const struct member **cluster_sorted_rows(const struct cluster *cl);

/* "cluster NAME policy ranked max-members 2 members 3 answer A {...}" */
void cluster_table_header(const struct cluster *cl, char *text, size_t len);

/* "rank 1 127.0.0.13 in-answer up rating=70.576 weight=1" */
void cluster_table_row(const struct member *m, char *text, size_t len);

/* json_object_object_add, for shorter lines. */
void cluster_jadd(struct json_object *o, const char *k, struct json_object *v);

/* m's object in /status and in brokerd-ctl drain's reply (a new reference). */
struct json_object *cluster_member_json(const struct member *m, time_t now);

#endif
