/*
 * server.h - metricd's UDP responders: the native poll protocol (proto.h)
 * and, on `lbcd-listen`, lbcd v3 (lbcd.h).  Both answer from the agent's
 * current values; replies go back from the address the request came to
 * (each server binds one address), never larger than 1.7x the request.
 */
#ifndef MXB_METRICS_SERVER_H
#define MXB_METRICS_SERVER_H

#include "common/addr.h"

struct agent;
struct event_base;
struct metric_server;

enum metric_server_kind {
	METRIC_SERVER_NATIVE,
	METRIC_SERVER_LBCD,
};

/*
 * Bind `listen` (UDP) now, before privileges are dropped; reading starts
 * with metric_server_enable.  The agent is borrowed.  NULL on failure
 * (logged with the address).
 */
struct metric_server *metric_server_new(struct event_base *base, const struct addr *listen,
    enum metric_server_kind kind, struct agent *agent);

/* Start answering (once the agent has its first rating).  0 or -1. */
int metric_server_enable(struct metric_server *s);

/* The address actually bound (port filled in when 0 was asked). */
const struct addr *metric_server_addr(const struct metric_server *s);

void metric_server_free(struct metric_server *s);

#endif
