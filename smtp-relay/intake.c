/* intake.c - whether the relay can take mail now: probes, disk, queue size, pause, sessions. */
#include "smtp-relay/intake.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "common/config.h"
#include "common/log.h"
#include "common/status_http.h"
#include "smtp-relay/disk_pool.h"
#include "smtp-relay/queue.h"

/* Recompute the state this often (seconds): the "at most once a second". */
#define INTAKE_TICK_SEC 1
/* Probe the queue this often while it works, and while it does not. */
#define INTAKE_PROBE_SEC      5
#define INTAKE_PROBE_FAIL_SEC 1
/* A probe not back after this long: the disk hangs, count it unwritable. */
#define INTAKE_PROBE_STUCK_SEC 10
#define INTAKE_DETAIL_MAX      256

static const char *const reason_names[INTAKE_REASON_COUNT] = {
    "ok",
    "queue-unwritable",
    "disk-reserve",
    "queue-full",
    "paused",
    "sessions-full",
};

/* How a transition is logged: "relay: not accepting mail: <label>: <detail>". */
static const char *const reason_labels[INTAKE_REASON_COUNT] = {
    "accepting",
    "queue not writable",
    "disk space below queue-min-free",
    "queue holds queue-max-messages messages",
    "paused by the operator",
    "all sessions in use",
};

/* One probe on a worker thread; the loop reads it only when !busy. */
struct intake_job {
	bool busy;
	bool probe; /* run queue_probe too, not only queue_space */
	time_t started;
	int probe_rc, probe_err;
	const char *probe_step;
	int space_rc;
	uint64_t space;
};

struct intake {
	struct queue *queue;
	struct disk_pool *pool;
	const struct config_relay *relay;
	struct event *tick;
	struct intake_job job;
	time_t next_probe;
	unsigned open;
	bool paused;
	bool has_space;
	uint64_t space;
	char probe_error[INTAKE_DETAIL_MAX];  /* "" when the last probe worked */
	char commit_error[INTAKE_DETAIL_MAX]; /* "" when the last commit worked */
	enum intake_reason reason;
	char detail[INTAKE_DETAIL_MAX];
};

const char *
intake_reason_name(enum intake_reason r)
{
	return (unsigned)r < INTAKE_REASON_COUNT ? reason_names[r] : "unknown";
}

/* Errors that say the queue's storage refuses writes (not a lack of memory). */
static bool
is_storage_error(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
	case EROFS:
	case EIO:
	case ENOSPC:
	case EDQUOT:
	case ENOENT:
	case ENOTDIR:
	case ESTALE:
	case EMFILE:
	case ENFILE: return true;
	default: return false;
	}
}

/* "12.0M": one decimal, binary units, as the size statements read. */
static void
format_size(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	double v = (double)n;
	int u = -1;

	while (v >= 1024.0 && u < 3) {
		v /= 1024.0;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64, n);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
}

/* ---- the state ---- */

/* The queue's trouble, if any, into detail; true when it cannot be written. */
static bool
queue_trouble(const struct intake *in, time_t now, char *detail, size_t len)
{
	if (in->probe_error[0] != '\0') {
		snprintf(detail, len, "%s", in->probe_error);
		return true;
	}
	if (in->commit_error[0] != '\0') {
		snprintf(detail, len, "%s", in->commit_error);
		return true;
	}
	if (in->job.busy && now - in->job.started >= INTAKE_PROBE_STUCK_SEC) {
		snprintf(detail, len, "queue: probe of %s/tmp not back after %lld s",
		    queue_dir(in->queue), (long long)(now - in->job.started));
		return true;
	}
	return false;
}

static bool
is_below_reserve(const struct intake *in)
{
	uint64_t reserve = in->relay->queue_min_free;

	return reserve != 0 && in->has_space && in->space < reserve;
}

static bool
below_reserve(const struct intake *in, char *detail, size_t len)
{
	char have[32], want[32];

	if (!is_below_reserve(in))
		return false;
	format_size(in->space, have, sizeof(have));
	format_size(in->relay->queue_min_free, want, sizeof(want));
	snprintf(detail, len, "%s free, reserve %s", have, want);
	return true;
}

static bool
is_queue_full(const struct intake *in)
{
	unsigned max = in->relay->queue_max_messages;

	return max != 0 && queue_count(in->queue) >= max;
}

static bool
queue_full(const struct intake *in, char *detail, size_t len)
{
	if (!is_queue_full(in))
		return false;
	snprintf(detail, len, "%zu messages queued, limit %u", queue_count(in->queue),
	    in->relay->queue_max_messages);
	return true;
}

/* The reason of highest priority that applies now, with its detail. */
static enum intake_reason
decide(const struct intake *in, time_t now, char *detail, size_t len)
{
	detail[0] = '\0';
	if (queue_trouble(in, now, detail, len))
		return INTAKE_QUEUE_UNWRITABLE;
	if (below_reserve(in, detail, len))
		return INTAKE_DISK_RESERVE;
	if (queue_full(in, detail, len))
		return INTAKE_QUEUE_FULL;
	if (in->paused) {
		snprintf(detail, len, "intake paused with smtp-relayctl pause");
		return INTAKE_PAUSED;
	}
	if (in->open >= in->relay->max_sessions) {
		snprintf(detail, len, "%u of %u sessions open", in->open, in->relay->max_sessions);
		return INTAKE_SESSIONS_FULL;
	}
	return INTAKE_OK;
}

/* Recompute and log a transition once. */
static void
refresh(struct intake *in)
{
	enum intake_reason was = in->reason;

	in->reason = decide(in, time(NULL), in->detail, sizeof(in->detail));
	if (in->reason == was)
		return;
	if (in->reason == INTAKE_OK)
		log_info("relay: accepting mail again");
	else
		log_warnx(
		    "relay: not accepting mail: %s: %s", reason_labels[in->reason], in->detail);
}

/* ---- probes on the disk pool ---- */

/* Worker thread: only in->job and the queue (thread-safe) are touched. */
static void
probe_run(void *arg)
{
	struct intake *in = arg;
	struct intake_job *j = &in->job;

	j->space_rc = queue_space(in->queue, &j->space);
	/* Removals by delivery are durable within a tick even when no
	 * commit's fsync of queue/ came after them. */
	if (queue_dirsync_flush(in->queue) == -1)
		log_warn("queue: fsync %s/queue", queue_dir(in->queue));
	if (!j->probe)
		return;
	j->probe_rc = queue_probe(in->queue, &j->probe_step);
	j->probe_err = errno;
}

static void
probe_after(void *arg)
{
	struct intake *in = arg;
	struct intake_job *j = &in->job;
	time_t now = time(NULL);

	j->busy = false;
	in->has_space = j->space_rc == 0;
	in->space = j->space;
	if (j->probe && j->probe_rc == 0) {
		in->probe_error[0] = '\0';
		in->commit_error[0] = '\0';
	} else if (j->probe) {
		snprintf(in->probe_error, sizeof(in->probe_error), "queue: %s %s/tmp/probe: %s",
		    j->probe_step, queue_dir(in->queue), strerror(j->probe_err));
	}
	if (j->probe) {
		bool failing = in->probe_error[0] != '\0' || in->commit_error[0] != '\0';

		in->next_probe = now + (failing ? INTAKE_PROBE_FAIL_SEC : INTAKE_PROBE_SEC);
	}
	refresh(in);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct intake *in = arg;
	time_t now = time(NULL);

	(void)fd;
	(void)what;
	if (!in->job.busy) {
		in->job.probe = now >= in->next_probe;
		in->job.started = now;
		in->job.busy = disk_pool_run(in->pool, probe_run, probe_after, in) == 0;
	}
	refresh(in);
}

/* ---- API ---- */

struct intake *
intake_new(struct event_base *base, struct queue *q, struct disk_pool *pool,
    const struct config_relay *relay)
{
	struct timeval every = {INTAKE_TICK_SEC, 0};
	struct intake *in = calloc(1, sizeof(*in));

	if (in == NULL) {
		log_warnx("relay: out of memory");
		return NULL;
	}
	in->queue = q;
	in->pool = pool;
	in->relay = relay;
	in->tick = event_new(base, -1, EV_PERSIST, tick_cb, in);
	if (in->tick == NULL || event_add(in->tick, &every) == -1) {
		log_warnx("relay: cannot create the intake timer");
		intake_free(in);
		return NULL;
	}
	/* The first look as soon as the loop runs, after the privilege drop. */
	event_active(in->tick, EV_TIMEOUT, 0);
	return in;
}

void
intake_free(struct intake *in)
{
	if (in == NULL)
		return;
	if (in->tick != NULL)
		event_free(in->tick);
	free(in);
}

void
intake_reconfigure(struct intake *in, const struct config_relay *relay)
{
	in->relay = relay;
}

void
intake_set_sessions(struct intake *in, unsigned open)
{
	in->open = open;
	/* Room again: say so now; becoming full waits for the tick (no flapping). */
	if (in->reason == INTAKE_SESSIONS_FULL && open < in->relay->max_sessions)
		refresh(in);
}

/*
 * Count a commit against the space seen at the last statvfs, so that a fast
 * sender cannot fill the disk past queue-min-free within one tick; crossing
 * the reserve or queue-max-messages is a transition and is acted on at once.
 */
static void
commit_space(struct intake *in, uint64_t size)
{
	bool was_below = is_below_reserve(in);

	in->space = in->space > size ? in->space - size : 0;
	if ((!was_below && is_below_reserve(in)) ||
	    (in->reason != INTAKE_QUEUE_FULL && is_queue_full(in)))
		refresh(in);
}

void
intake_commit_cb(int rc, int err, const struct queue_env *env, void *arg)
{
	struct intake *in = arg;

	if (rc == 0) {
		in->commit_error[0] = '\0';
		in->probe_error[0] = '\0';
		commit_space(in, env->size);
		return;
	}
	intake_write_failed(in, err);
}

void
intake_write_failed(struct intake *in, int err)
{
	if (in == NULL || !is_storage_error(err))
		return;
	snprintf(in->commit_error, sizeof(in->commit_error), "queue: write into %s: %s",
	    queue_dir(in->queue), strerror(err));
	/* Look again at the next tick: the probe tells whether it lasts. */
	in->next_probe = 0;
}

void
intake_pause(struct intake *in, bool paused)
{
	in->paused = paused;
	refresh(in);
}

bool
intake_is_paused(const struct intake *in)
{
	return in->paused;
}

enum intake_reason
intake_state(const struct intake *in, const char **detail)
{
	if (detail != NULL)
		*detail = in->detail;
	return in->reason;
}

void
intake_status_json(const struct intake *in, struct json_object *root)
{
	struct json_object *a = json_object_new_object();

	json_object_object_add(a, "ok", json_object_new_boolean(in->reason == INTAKE_OK));
	if (in->reason != INTAKE_OK) {
		json_object_object_add(
		    a, "reason", json_object_new_string(intake_reason_name(in->reason)));
		json_object_object_add(a, "detail", json_object_new_string(in->detail));
	}
	json_object_object_add(root, "accepting", a);
}

void
intake_space_json(const struct intake *in, struct json_object *queue)
{
	json_object_object_add(queue, "free_bytes", json_object_new_int64((int64_t)in->space));
	json_object_object_add(
	    queue, "min_free_bytes", json_object_new_int64((int64_t)in->relay->queue_min_free));
	json_object_object_add(
	    queue, "max_messages", json_object_new_int64(in->relay->queue_max_messages));
}

void
intake_metrics(const struct intake *in, struct evbuffer *out)
{
	char label[64];

	prom_family(out, "smtp_accepting", "gauge", "1 when the relay takes mail now");
	prom_sample_u64(out, "smtp_accepting", NULL, in->reason == INTAKE_OK);
	prom_family(out, "smtp_not_accepting", "gauge",
	    "1 for the reason the relay takes no mail now (highest priority only)");
	for (int r = INTAKE_OK + 1; r < INTAKE_REASON_COUNT; r++) {
		snprintf(label, sizeof(label), "reason=\"%s\"", reason_names[r]);
		prom_sample_u64(
		    out, "smtp_not_accepting", label, in->reason == (enum intake_reason)r);
	}
	prom_family(out, "relay_queue_free_bytes", "gauge",
	    "Octets available on the queue's file system at the last look");
	prom_sample_u64(out, "relay_queue_free_bytes", NULL, in->space);
	prom_family(out, "relay_queue_min_free_bytes", "gauge", "queue-min-free (0 = off)");
	prom_sample_u64(out, "relay_queue_min_free_bytes", NULL, in->relay->queue_min_free);
	prom_family(out, "relay_queue_max_messages", "gauge", "queue-max-messages (0 = no limit)");
	prom_sample_u64(out, "relay_queue_max_messages", NULL, in->relay->queue_max_messages);
}
