/*
 * status_http.h - the monitoring endpoint every daemon serves:
 * GET /status (JSON, json-c) and GET /metrics (Prometheus text format).
 */
#ifndef MXB_STATUS_HTTP_H
#define MXB_STATUS_HTTP_H

#include <stdint.h>

#include "common/addr.h"

struct event_base;
struct evbuffer;
struct json_object;
struct status_http;

/*
 * Fill the /status document: `root` already holds "program", "version",
 * "pid" and "uptime_seconds"; add the daemon's own members.
 */
typedef void (*status_json_fn)(struct json_object *root, void *arg);
/* Append the daemon's metric families to `out` with prom_* below. */
typedef void (*status_metrics_fn)(struct evbuffer *out, void *arg);

/*
 * Bind `listen` (TCP) now, so it can happen before privileges are dropped,
 * and serve on `base`.  Either callback may be NULL.  Returns NULL with the
 * reason logged.  Runs in the thread of `base`; callbacks run there too.
 */
struct status_http *status_http_new(struct event_base *base, const struct addr *listen,
    const char *program, status_json_fn json_cb, status_metrics_fn metrics_cb, void *arg);

/* The address actually bound (port filled in when 0 was asked). */
const struct addr *status_http_addr(const struct status_http *sh);

void status_http_free(struct status_http *sh);

/* Prometheus text helpers; names get the "mxbroker_" prefix added. */
void prom_family(struct evbuffer *out, const char *name, const char *type, const char *help);
/* `labels` is NULL or a ready label set such as `rcode="NOERROR"`. */
void prom_sample(struct evbuffer *out, const char *name, const char *labels, double value);
void prom_sample_u64(struct evbuffer *out, const char *name, const char *labels, uint64_t value);

#endif
