/* agent.c - metricd's sampling, rating computation and reporting (see agent.h). */
#include "metrics/agent.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "common/fileio.h"
#include "common/config.h"
#include "common/log.h"
#include "common/status_http.h"
#include "metrics/drain.h"
#include "metrics/rating.h"
#include "metrics/relay.h"
#include "metrics/report.h"
#include "metrics/sysstat.h"

#define PROC_STAT         "/proc/stat"
#define PROC_MEMINFO      "/proc/meminfo"
#define RELAY_TIMEOUT_MAX 5 /* seconds; else compute-interval */
#define RELAY_TIMEOUT_MIN 2 /* seconds: a busy relay is not a dead one */
/*
 * Fetches in a row that must time out before the relay counts as not
 * answering: a refused connection or a bad answer counts at once (a fact),
 * a single slow answer does not (a guess) and keeps the last good figures.
 */
#define RELAY_TIMEOUTS_DOWN 2

struct agent {
	struct event_base *base;
	const struct config *cfg;
	struct event *tick;        /* every second: CPU sample, drain file */
	struct event *compute_ev;  /* every compute-interval */
	struct relay_probe *relay; /* NULL without relay-status */
	struct addr relay_addr;
	struct relay_result relay_last;
	unsigned relay_timeouts; /* fetches in a row that timed out */
	bool relay_tried;
	time_t relay_last_ok;
	struct cpu_times prev;
	bool have_load;
	double load, last_busy;
	unsigned ncpu, cpu_rating;
	uint64_t free_bytes;
	uint64_t page_size;
	bool draining;
	struct drain_info drain; /* when draining */
	uint16_t unavailable;    /* METRIC_F_UNAVAILABLE bits of the last computation */
	struct rating_result res;
	struct metric_values values;
	bool ready;
	time_t computed_at;
	uint64_t computations;
	void (*ready_cb)(void *);
	void *ready_arg;
	struct agent_counters counters;
	struct log_ratelimit rl;
	char procbuf[SYSSTAT_BUF_MAX];
};

static void compute(struct agent *a);

/* Read one /proc file into the agent's buffer; -1 logged (rate-limited). */
static int
read_proc(struct agent *a, const char *path)
{
	if (file_read_buf(path, a->procbuf, sizeof(a->procbuf)) == -1) {
		log_warnx_rl(&a->rl, "metrics: %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
sample_cpu(struct agent *a, bool first)
{
	struct cpu_times now;
	unsigned ncpu;

	if (read_proc(a, PROC_STAT) == -1)
		return -1;
	if (sysstat_parse_stat(a->procbuf, &now, &ncpu) == -1) {
		log_warnx_rl(&a->rl, "metrics: %s: no aggregate cpu line", PROC_STAT);
		return -1;
	}
	a->ncpu = ncpu;
	if (!first) {
		a->last_busy = sysstat_busy_percent(&a->prev, &now);
		/* Seed with the first sample rather than claim an idle host. */
		a->load = a->have_load ? rating_load_step(a->load, a->last_busy) : a->last_busy;
		a->have_load = true;
	}
	a->prev = now;
	return 0;
}

static int
read_memory(struct agent *a)
{
	if (read_proc(a, PROC_MEMINFO) == -1)
		return -1;
	if (sysstat_parse_meminfo(a->procbuf, &a->free_bytes) == -1) {
		log_warnx_rl(&a->rl, "metrics: %s: no MemAvailable or MemFree", PROC_MEMINFO);
		return -1;
	}
	return 0;
}

/* Where sessions and capacity come from right now. */
static void
session_figures(const struct agent *a, unsigned *sessions, unsigned *capacity, bool *relay)
{
	*relay = a->relay != NULL && a->relay_last.ok;
	if (*relay) {
		*sessions = a->relay_last.open;
		*capacity = a->relay_last.max;
	} else {
		*sessions = a->cfg->metrics.sessions;
		*capacity = a->cfg->metrics.capacity;
	}
}

static int32_t
milli(double v)
{
	return (int32_t)llround(v * 1000.0);
}

/*
 * Why this member cannot take mail, as METRIC_F_UNAVAILABLE bits: only the
 * relay can tell, so without relay-status the host is taken as available.
 */
static uint16_t
unavailable_flags(const struct agent *a)
{
	if (a->relay == NULL)
		return 0;
	if (!a->relay_last.ok)
		return METRIC_F_RELAY_DOWN;
	return a->relay_last.unavailable;
}

/*
 * The reason for the log and /status: metric_unavailable_str, except that
 * a relay reason other than "paused" (carried as METRIC_F_PAUSED) is named.
 */
static const char *
unavailable_text(const struct agent *a, char *buf, size_t len)
{
	const char *why = metric_unavailable_str(a->unavailable);
	const char *relay_reason = a->relay_last.reason;

	if (why == NULL)
		return NULL;
	if ((a->unavailable & METRIC_F_UNAVAILABLE) == METRIC_F_PAUSED &&
	    strcmp(relay_reason, RELAY_REASON_PAUSED) != 0)
		snprintf(buf, len, "relay not accepting%s%s", relay_reason[0] != '\0' ? ": " : "",
		    relay_reason);
	else
		snprintf(buf, len, "%s", why);
	return buf;
}

/* One log line per change of availability. */
static void
log_availability(struct agent *a, uint16_t now)
{
	char why[96];
	const char *detail = a->relay_last.detail;

	if (now == a->unavailable)
		return;
	a->unavailable = now;
	if (now == 0)
		log_info("metrics: available: the relay takes mail again");
	else
		log_warnx("metrics: not available: %s%s%s", unavailable_text(a, why, sizeof(why)),
		    detail[0] != '\0' ? ": " : "", detail);
}

static uint16_t
value_flags(const struct agent *a, bool relay)
{
	uint16_t f = a->unavailable;

	if (a->draining)
		f |= METRIC_F_DRAINING;
	if (relay)
		f |= METRIC_F_RELAY;
	if (a->cfg->metrics.cpu_rating == 0)
		f |= METRIC_F_CPU_DERIVED;
	if (a->res.penalty > 0.0)
		f |= METRIC_F_PENALTY;
	return f;
}

static void
compute(struct agent *a)
{
	const struct config_metrics *m = &a->cfg->metrics;
	struct rating_input in;
	struct metric_values *v = &a->values;
	struct timespec now;
	bool relay;

	(void)read_memory(a); /* on failure the last figure stays */
	memset(&in, 0, sizeof(in));
	session_figures(a, &in.sessions, &in.capacity, &relay);
	a->cpu_rating = m->cpu_rating != 0 ? m->cpu_rating : rating_cpu_derive(a->ncpu);
	in.cpu_rating = a->cpu_rating;
	in.load = a->load;
	in.free_pages = a->free_bytes / a->page_size;
	in.goal_pages = m->memory_goal / a->page_size;
	in.draining = a->draining;
	log_availability(a, unavailable_flags(a));
	in.unavailable = a->unavailable != 0;
	rating_compute(&in, &a->res);
	clock_gettime(CLOCK_REALTIME, &now);
	v->rating = milli(a->res.rating);
	v->availability = milli(a->res.availability);
	v->workload = milli(a->res.workload);
	v->penalty = milli(a->res.penalty);
	v->load = (uint32_t)llround(a->load * 1000.0);
	v->cpu_rating = (uint16_t)a->cpu_rating;
	v->flags = value_flags(a, relay);
	v->sessions = in.sessions;
	v->capacity = in.capacity;
	v->free_bytes = a->free_bytes;
	v->goal_bytes = m->memory_goal;
	v->computed_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	v->interval = m->compute_interval;
	a->computed_at = now.tv_sec;
	a->computations++;
	log_debug("metrics: rating %.3f = availability %.3f + workload %.3f - penalty %.3f "
	          "(load %.2f%%, %u/%u sessions)%s%s",
	    a->res.rating, a->res.availability, a->res.workload, a->res.penalty, a->load,
	    in.sessions, in.capacity, a->draining ? ", draining" : "",
	    a->unavailable != 0 ? ", unavailable" : "");
	if (!a->ready) {
		a->ready = true;
		log_info("metrics: first rating %.3f", a->res.rating);
		if (a->ready_cb != NULL)
			a->ready_cb(a->ready_arg);
	}
}

static void
relay_fetched_cb(const struct relay_result *r, void *arg)
{
	struct agent *a = arg;
	char where[ADDR_STRLEN];

	addr_str(&a->relay_addr, where, sizeof(where));
	a->relay_timeouts = r->timed_out ? a->relay_timeouts + 1 : 0;
	if (r->timed_out && a->relay_last.ok && a->relay_timeouts < RELAY_TIMEOUTS_DOWN) {
		log_debug(
		    "metrics: relay-status %s: %s; keeping its last figures", where, r->error);
		compute(a);
		return;
	}
	if (r->ok && (!a->relay_last.ok || !a->relay_tried))
		log_info("metrics: relay-status %s: %u of %u sessions", where, r->open, r->max);
	else if (!r->ok && (a->relay_last.ok || !a->relay_tried))
		log_warnx("metrics: relay-status %s: %s; using the configured capacity %u", where,
		    r->error, a->cfg->metrics.capacity);
	a->relay_last = *r;
	a->relay_tried = true;
	if (r->ok)
		a->relay_last_ok = time(NULL);
	compute(a);
}

/* A compute cycle: fetch the relay's figures first when configured. */
static void
compute_cycle(struct agent *a)
{
	unsigned timeout = a->cfg->metrics.compute_interval;

	if (timeout > RELAY_TIMEOUT_MAX)
		timeout = RELAY_TIMEOUT_MAX;
	if (timeout < RELAY_TIMEOUT_MIN)
		timeout = RELAY_TIMEOUT_MIN;
	if (a->relay == NULL || relay_probe_busy(a->relay) ||
	    relay_probe_start(a->relay, timeout, relay_fetched_cb, a) == -1)
		compute(a);
}

static void
compute_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)fd;
	(void)what;
	if (a->ready) /* the first computation follows the first CPU sample */
		compute_cycle(a);
}

/*
 * Read the drain file (every second): a change of state recomputes the
 * rating at once; a new reason, user or time while drained is logged.
 */
static void
check_drain(struct agent *a)
{
	struct drain_info info;
	bool now = drain_check(a->cfg->metrics.drain_file, &info);
	char text[DRAIN_REASON_MAX + DRAIN_WHO_MAX + DRAIN_WHEN_MAX + 16];

	if (now == a->draining && (!now || memcmp(&info, &a->drain, sizeof(info)) == 0))
		return;
	if (now) {
		drain_describe(&info, text, sizeof(text));
		log_info("metrics: %s (%s): %s", a->draining ? "drain changed" : "draining",
		    a->cfg->metrics.drain_file, text);
		a->drain = info;
	} else {
		memset(&a->drain, 0, sizeof(a->drain));
		log_info("metrics: drain ended (%s removed)", a->cfg->metrics.drain_file);
	}
	if (now == a->draining)
		return;
	a->draining = now;
	if (a->ready)
		compute(a);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)fd;
	(void)what;
	(void)sample_cpu(a, false);
	check_drain(a);
	if (!a->ready && a->have_load && !a->relay_tried &&
	    (a->relay == NULL || !relay_probe_busy(a->relay)))
		compute_cycle(a);
}

static int
set_relay(struct agent *a, const struct config *cfg)
{
	const struct addr *where = &cfg->metrics.relay_status;

	if (a->relay != NULL && where->len != 0 && addr_equal(where, &a->relay_addr))
		return 0;
	relay_probe_free(a->relay);
	a->relay = NULL;
	memset(&a->relay_last, 0, sizeof(a->relay_last));
	a->relay_tried = false;
	a->relay_addr = *where;
	if (where->len == 0)
		return 0;
	a->relay = relay_probe_new(a->base, where);
	return a->relay != NULL ? 0 : -1;
}

struct agent *
agent_new(struct event_base *base, const struct config *cfg)
{
	struct agent *a = calloc(1, sizeof(*a));
	long pg = sysconf(_SC_PAGESIZE);

	if (a == NULL) {
		log_warnx("metrics: out of memory");
		return NULL;
	}
	a->base = base;
	a->cfg = cfg;
	a->page_size = pg > 0 ? (uint64_t)pg : 4096;
	a->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 60);
	a->tick = event_new(base, -1, EV_PERSIST, tick_cb, a);
	a->compute_ev = event_new(base, -1, EV_PERSIST, compute_cb, a);
	if (a->tick == NULL || a->compute_ev == NULL || set_relay(a, cfg) == -1 ||
	    sample_cpu(a, true) == -1 || read_memory(a) == -1) {
		agent_free(a);
		return NULL;
	}
	a->draining = drain_check(cfg->metrics.drain_file, &a->drain);
	if (a->draining) {
		char text[DRAIN_REASON_MAX + DRAIN_WHO_MAX + DRAIN_WHEN_MAX + 16];

		drain_describe(&a->drain, text, sizeof(text));
		log_info("metrics: starting drained (%s): %s", cfg->metrics.drain_file, text);
	}
	return a;
}

void
agent_free(struct agent *a)
{
	if (a == NULL)
		return;
	if (a->tick != NULL)
		event_free(a->tick);
	if (a->compute_ev != NULL)
		event_free(a->compute_ev);
	relay_probe_free(a->relay);
	free(a);
}

int
agent_start(struct agent *a, void (*ready_cb)(void *), void *arg)
{
	struct timeval second = {1, 0};
	struct timeval every = {(time_t)a->cfg->metrics.compute_interval, 0};

	a->ready_cb = ready_cb;
	a->ready_arg = arg;
	if (event_add(a->tick, &second) == -1 || event_add(a->compute_ev, &every) == -1) {
		log_warnx("metrics: cannot start the timers");
		return -1;
	}
	return 0;
}

int
agent_reconfigure(struct agent *a, const struct config *cfg)
{
	struct timeval every = {(time_t)cfg->metrics.compute_interval, 0};

	if (set_relay(a, cfg) == -1)
		return -1;
	a->cfg = cfg;
	event_del(a->compute_ev);
	if (event_add(a->compute_ev, &every) == -1) {
		log_warnx("metrics: cannot restart the compute timer");
		return -1;
	}
	check_drain(a);
	if (a->ready)
		compute_cycle(a);
	return 0;
}

const struct metric_values *
agent_values(const struct agent *a)
{
	return &a->values;
}

const struct config_key *
agent_key(const struct agent *a)
{
	return a->cfg->metrics.key;
}

struct agent_counters *
agent_counters(struct agent *a)
{
	return &a->counters;
}

static void
json_add(struct json_object *o, const char *name, struct json_object *v)
{
	json_object_object_add(o, name, v);
}

/* The relay's own words: {"ok": true} or {"ok": false, "reason", "detail"}. */
static struct json_object *
accepting_json(const struct relay_result *r)
{
	struct json_object *o = json_object_new_object();

	json_add(o, "ok", json_object_new_boolean(r->unavailable == 0));
	if (r->unavailable != 0) {
		json_add(o, "reason", json_object_new_string(r->reason));
		json_add(o, "detail", json_object_new_string(r->detail));
	}
	return o;
}

static struct json_object *
relay_json(const struct agent *a)
{
	struct json_object *o = json_object_new_object();
	char where[ADDR_STRLEN];

	json_add(
	    o, "address", json_object_new_string(addr_str(&a->relay_addr, where, sizeof(where))));
	json_add(o, "ok", json_object_new_boolean(a->relay_last.ok));
	if (a->relay_last.ok) {
		json_add(o, "open", json_object_new_int64(a->relay_last.open));
		json_add(o, "max", json_object_new_int64(a->relay_last.max));
		json_add(o, "accepting", accepting_json(&a->relay_last));
	} else {
		json_add(o, "error",
		    json_object_new_string(a->relay_tried ? a->relay_last.error : "not asked yet"));
	}
	json_add(o, "last_ok",
	    a->relay_last_ok != 0 ? json_object_new_int64((int64_t)a->relay_last_ok) : NULL);
	return o;
}

static struct json_object *
inputs_json(const struct agent *a)
{
	const struct metric_values *v = &a->values;
	struct json_object *o = json_object_new_object();

	json_add(o, "load_percent", metric_json_milli(v->load));
	json_add(o, "cpu_busy_percent", metric_json_milli(llround(a->last_busy * 1000.0)));
	json_add(o, "cpu_rating", json_object_new_int(v->cpu_rating));
	json_add(o, "cpu_rating_source",
	    json_object_new_string(a->cfg->metrics.cpu_rating != 0 ? "configured" : "derived"));
	json_add(o, "cpus", json_object_new_int((int)a->ncpu));
	json_add(o, "sessions", json_object_new_int64(v->sessions));
	json_add(o, "capacity", json_object_new_int64(v->capacity));
	json_add(o, "sessions_source",
	    json_object_new_string((v->flags & METRIC_F_RELAY) != 0 ? "relay" : "configured"));
	json_add(o, "free_memory_bytes", json_object_new_int64((int64_t)v->free_bytes));
	json_add(o, "free_pages", json_object_new_int64((int64_t)(v->free_bytes / a->page_size)));
	json_add(o, "memory_goal_bytes", json_object_new_int64((int64_t)v->goal_bytes));
	json_add(o, "goal_pages", json_object_new_int64((int64_t)(v->goal_bytes / a->page_size)));
	json_add(o, "page_size", json_object_new_int64((int64_t)a->page_size));
	return o;
}

static struct json_object *
polls_json(const struct agent_counters *c)
{
	struct json_object *o = json_object_new_object();

	json_add(o, "requests", json_object_new_int64((int64_t)c->requests));
	json_add(o, "answered", json_object_new_int64((int64_t)c->answered));
	json_add(o, "errors_sent", json_object_new_int64((int64_t)c->errors_sent));
	json_add(o, "dropped_malformed", json_object_new_int64((int64_t)c->dropped_malformed));
	json_add(o, "signature_required", json_object_new_int64((int64_t)c->signature_required));
	json_add(o, "bad_signature", json_object_new_int64((int64_t)c->bad_signature));
	json_add(o, "signed_without_key", json_object_new_int64((int64_t)c->signed_without_key));
	json_add(o, "lbcd_requests", json_object_new_int64((int64_t)c->lbcd_requests));
	json_add(o, "lbcd_answered", json_object_new_int64((int64_t)c->lbcd_answered));
	json_add(o, "lbcd_errors_sent", json_object_new_int64((int64_t)c->lbcd_errors_sent));
	json_add(o, "lbcd_dropped", json_object_new_int64((int64_t)c->lbcd_dropped));
	return o;
}

void
agent_status_json(struct json_object *root, void *arg)
{
	const struct agent *a = arg;
	const struct metric_values *v = &a->values;
	char why[96];
	const char *reason = unavailable_text(a, why, sizeof(why));

	json_add(root, "ready", json_object_new_boolean(a->ready));
	metric_json_terms(root, v);
	json_add(root, "available", json_object_new_boolean(reason == NULL));
	json_add(
	    root, "unavailable_reason", reason != NULL ? json_object_new_string(reason) : NULL);
	json_add(root, "draining", json_object_new_boolean(a->draining));
	if (a->draining)
		json_add(root, "drain_reason", json_object_new_string(a->drain.reason));
	json_add(root, "drain", a->draining ? drain_to_json(&a->drain) : NULL);
	json_add(root, "drain_file", json_object_new_string(a->cfg->metrics.drain_file));
	json_add(root, "flags", json_object_new_int(v->flags));
	json_add(root, "computed_at", json_object_new_int64((int64_t)a->computed_at));
	json_add(root, "compute_interval", json_object_new_int((int)v->interval));
	json_add(root, "signed", json_object_new_boolean(a->cfg->metrics.key != NULL));
	json_add(root, "inputs", inputs_json(a));
	json_add(root, "relay", a->relay != NULL ? relay_json(a) : NULL);
	json_add(root, "polls", polls_json(&a->counters));
}

static void
gauge(struct evbuffer *out, const char *name, const char *help, double v)
{
	prom_family(out, name, "gauge", help);
	prom_sample(out, name, NULL, v);
}

static void
counter_family(struct evbuffer *out, const char *name, const char *help, const char *const *labels,
    const uint64_t *values, size_t n)
{
	prom_family(out, name, "counter", help);
	for (size_t i = 0; i < n; i++)
		prom_sample_u64(out, name, labels[i], values[i]);
}

/* metric_available, and one metric_unavailable sample per reason (a state set). */
static void
availability_prom(struct evbuffer *out, uint16_t unavailable)
{
	static const struct {
		uint16_t bit;
		const char *label;
	} reasons[] = {
	    {METRIC_F_RELAY_DOWN, "reason=\"relay-down\""},
	    {METRIC_F_RELAY_FULL, "reason=\"sessions-full\""},
	    {METRIC_F_QUEUE_FAIL, "reason=\"queue-unwritable\""},
	    {METRIC_F_DISK_RESERVE, "reason=\"disk-reserve\""},
	    {METRIC_F_PAUSED, "reason=\"paused\""},
	};

	gauge(out, "metric_available", "1 when this member can take mail (relay-status says so).",
	    unavailable == 0 ? 1 : 0);
	prom_family(out, "metric_unavailable", "gauge",
	    "1 for each reason this member cannot take mail right now.");
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		prom_sample(out, "metric_unavailable", reasons[i].label,
		    (unavailable & reasons[i].bit) != 0 ? 1 : 0);
}

void
agent_metrics_prom(struct evbuffer *out, void *arg)
{
	const struct agent *a = arg;
	const struct metric_values *v = &a->values;
	const struct agent_counters *c = &a->counters;
	static const char *const native_labels[] = {"result=\"answered\"", "result=\"error_sent\"",
	    "result=\"dropped_malformed\"", "result=\"signature_required\"",
	    "result=\"bad_signature\"", "result=\"signed_without_key\""};
	static const char *const lbcd_labels[] = {
	    "result=\"answered\"", "result=\"error_sent\"", "result=\"dropped\""};
	uint64_t native[] = {c->answered, c->errors_sent, c->dropped_malformed,
	    c->signature_required, c->bad_signature, c->signed_without_key};
	uint64_t lbcd[] = {c->lbcd_answered, c->lbcd_errors_sent, c->lbcd_dropped};

	gauge(out, "metric_rating", "Load rating (higher is better; 0 when draining).",
	    v->rating / 1000.0);
	gauge(out, "metric_availability", "Availability term: 20 * free sessions / capacity.",
	    v->availability / 1000.0);
	gauge(out, "metric_workload",
	    "Workload term: free sessions / capacity * cpu_rating * 100 / (100 + load).",
	    v->workload / 1000.0);
	gauge(
	    out, "metric_penalty", "Memory penalty term as applied (0..40).", v->penalty / 1000.0);
	gauge(out, "metric_load_percent", "Smoothed CPU busy percentage.", v->load / 1000.0);
	gauge(out, "metric_cpu_rating", "CPU rating used by the formula (1..100).", v->cpu_rating);
	gauge(out, "metric_sessions", "Open sessions used by the formula.", v->sessions);
	gauge(out, "metric_capacity", "Session capacity used by the formula.", v->capacity);
	gauge(out, "metric_free_memory_bytes", "Memory available (MemAvailable).",
	    (double)v->free_bytes);
	gauge(
	    out, "metric_memory_goal_bytes", "Configured free-memory goal.", (double)v->goal_bytes);
	gauge(out, "metric_draining", "1 when the operator drained this member.",
	    a->draining ? 1 : 0);
	if (a->relay != NULL)
		gauge(out, "metric_relay_up", "1 when the relay's status endpoint answered.",
		    a->relay_last.ok ? 1 : 0);
	availability_prom(out, a->unavailable);
	gauge(out, "metric_last_compute_timestamp_seconds",
	    "Unix time of the last rating computation.", (double)a->computed_at);
	counter_family(out, "metric_poll_requests_total", "Poll requests received, by outcome.",
	    native_labels, native, 6);
	counter_family(out, "metric_lbcd_requests_total", "lbcd requests received, by outcome.",
	    lbcd_labels, lbcd, 3);
}
