/*
 * agent.h - metricd's engine: samples the CPU every second, computes the
 * rating every compute-interval, follows the drain file and the relay's
 * session counts, and reports all of it (poll replies, /status, /metrics).
 *
 * One agent per process, on one event_base.  The configuration is borrowed:
 * it must outlive the agent or be replaced with agent_reconfigure.
 */
#ifndef MXB_METRICS_AGENT_H
#define MXB_METRICS_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics/proto.h"

struct config;
struct event_base;
struct evbuffer;
struct json_object;
struct agent;

/* Counters the poll servers (server.h) keep in the agent, for reporting. */
struct agent_counters {
	uint64_t requests;          /* native requests received */
	uint64_t answered;          /* native replies sent */
	uint64_t errors_sent;       /* native error packets sent */
	uint64_t dropped_malformed; /* not ours, or malformed */
	/* Key mismatches, each answered with an unsigned error (in errors_sent): */
	uint64_t signature_required; /* unsigned while a key is set */
	uint64_t bad_signature;      /* HMAC did not verify */
	uint64_t signed_without_key; /* signed, and we have no key */
	uint64_t lbcd_requests;
	uint64_t lbcd_answered;
	uint64_t lbcd_errors_sent;
	uint64_t lbcd_dropped;
};

/*
 * Create the agent and read /proc once (an unreadable /proc/stat or
 * /proc/meminfo is an error).  Returns NULL with the reason logged.
 */
struct agent *agent_new(struct event_base *base, const struct config *cfg);

void agent_free(struct agent *a);

/*
 * Start the timers.  The first rating is computed one second later (after
 * the first CPU sample); `ready_cb` is then called once, so the servers
 * start answering only with a real rating.  Returns 0 or -1 (logged).
 */
int agent_start(struct agent *a, void (*ready_cb)(void *), void *arg);

/*
 * Use a new configuration (SIGHUP): compute-interval, cpu-rating, capacity,
 * sessions, memory-goal, relay-status, key and drain-file take effect at
 * once; listen addresses need a restart.  `cfg` is borrowed as in agent_new.
 * Returns 0 or -1 (logged; the old configuration stays in use).
 */
int agent_reconfigure(struct agent *a, const struct config *cfg);

/* The current values (valid once ready) and key (NULL = unsigned). */
const struct metric_values *agent_values(const struct agent *a);
const struct config_key *agent_key(const struct agent *a);

/* Mutable counters for the servers. */
struct agent_counters *agent_counters(struct agent *a);

/* status_http callbacks: arg is the agent. */
void agent_status_json(struct json_object *root, void *arg);
void agent_metrics_prom(struct evbuffer *out, void *arg);

#endif
