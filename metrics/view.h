/*
 * view.h - metricview's logic: poll a list of agents once, rank them, and
 * print a Host / Rating table (TCPIP$METRICVIEW), JSON, or one
 * Nagios/Icinga status line.  Polling uses the library poller (poll.h);
 * who drained a host, why and when comes from its HTTP /status.
 */
#ifndef MXB_METRICS_VIEW_H
#define MXB_METRICS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"
#include "common/config.h"
#include "metrics/drain.h"
#include "metrics/poll.h"

#define VIEW_NAME_MAX 256

/* Default plugin thresholds: a rating below them warns / is critical. */
#define VIEW_WARN_DEFAULT 20.0
#define VIEW_CRIT_DEFAULT 10.0
#define VIEW_RATING_MAX   120.0 /* availability 20 + workload 100 (rating.h) */
#define VIEW_LBCD_MAX     100.0 /* an lbcd weight of 0 */

/* Plugin exit codes (Nagios plugin guidelines). */
enum view_check_state {
	VIEW_OK = 0,
	VIEW_WARNING = 1,
	VIEW_CRITICAL = 2,
	VIEW_UNKNOWN = 3,
};

struct view_host {
	char name[VIEW_NAME_MAX]; /* as given on the command line */
	struct addr addr;
	bool done;
	bool ok;           /* answered with values */
	bool key_mismatch; /* !ok: the agent said our keys disagree */
	char error[96];    /* when !ok */
	struct metric_values v;
	unsigned rtt_us;
	/* Draining hosts, after view_fetch_drain: */
	bool drain_known; /* drain holds what the agent's /status says */
	struct drain_info drain;
	char drain_error[96]; /* why not, when !drain_known */
};

/* The plugin's thresholds: low is bad (a rating below warn warns). */
struct view_check {
	double warn, crit; /* crit <= warn */
	double max;        /* the highest rating possible, for perfdata */
};

/* A key read from --key-file, owning its secret. */
struct view_key {
	struct config_key key;
	char name[64];
	uint8_t secret[512];
};

/*
 * Parse "HOST", "HOST:PORT", "[V6]:PORT" or a bare IPv6 address; a name is
 * resolved (first address).  Returns 0, or -1 with a message in err.
 */
int view_parse_target(
    const char *arg, uint16_t default_port, struct view_host *h, char *err, size_t errlen);

/*
 * Read a key file: either mxbroker.conf text with key statements or a
 * single line holding the base64 secret.  Of several keys, `name` picks one
 * (NULL: the metrics { key }, else the only key); a bare secret takes no
 * name.  Returns 0, or -1 with a message in err.
 */
int view_load_key(
    const char *path, const char *name, struct view_key *out, char *err, size_t errlen);

/*
 * A plugin threshold, low-is-bad: "N" or the range form "N:" (alert below
 * N), N a number >= 0.  Other range forms ("N:M", "~:N", "@N") are refused
 * because a rating alerts only when low.  Returns 0 or -1.
 */
int view_parse_threshold(const char *s, double *out);

/*
 * Poll every host once, all at the same time, each with `timeout_ms`.
 * Fills done/ok/error/v/rtt_us.  Returns 0, or -1 when polling could not
 * start at all (logged).
 */
int view_poll(struct view_host *hosts, size_t n, enum metric_poll_proto proto,
    const struct config_key *key, unsigned timeout_ms);

/* Order by rating, highest first; hosts that did not answer go last. */
void view_sort(struct view_host *hosts, size_t n);

/*
 * metricview's exit status without --check: 3 when a host did not answer,
 * else 2 when one reported a key mismatch, else 0.
 */
int view_exit_status(const struct view_host *hosts, size_t n);

/*
 * For every host that answered with the draining flag, GET /status from its
 * address on `http_port` (metrics { http-listen }) and fill drain_known,
 * drain and drain_error; all at once, each within `timeout_ms`.  Returns 0,
 * or -1 when it could not start at all (logged).
 */
int view_fetch_drain(struct view_host *hosts, size_t n, uint16_t http_port, unsigned timeout_ms);

void view_print_table(FILE *out, const struct view_host *hosts, size_t n);

/* Print {"hosts": [...]} in the house JSON style (common/jsonout.h). */
void view_print_json(FILE *out, const struct view_host *hosts, size_t n);

/*
 * The plugin state: UNKNOWN when a host did not answer, else CRITICAL when
 * a host reported a key mismatch or a rating is below crit, WARNING below
 * warn, OK otherwise.  A draining host is reported but raises no alarm (the
 * drain is deliberate); an unavailable one rates 0 and does.
 */
enum view_check_state view_check_state(
    const struct view_host *hosts, size_t n, const struct view_check *c);

/*
 * Print the one status line, "METRIC OK - ... | 'host'=37;40:;30:;0;120 ...",
 * with low-is-bad perfdata ('host'=U for a host that did not answer);
 * returns view_check_state().
 */
enum view_check_state view_print_check(
    FILE *out, const struct view_host *hosts, size_t n, const struct view_check *c);

/* Print "METRIC UNKNOWN - <message>" (the plugin's error line); returns VIEW_UNKNOWN. */
enum view_check_state view_print_unknown(FILE *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
