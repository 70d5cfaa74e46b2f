/*
 * scheduler.h - the queue runner's clock: which message is due next.
 *
 * Messages (by queue ID) wait with a due time in a heap; when one is due
 * and fewer than `max_active` are running, the scheduler hands its ID to
 * the run callback.  The runner reports back with scheduler_done and the
 * next due time (or 0 when the message left the queue).  A flush makes
 * waiting messages due now; a flush of a running message makes it run
 * again right after it finished.  Everything runs on one event loop.
 */
#ifndef MXB_SCHEDULER_H
#define MXB_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct event_base;
struct scheduler;

/* Run message `id` now (`forced`: flushed, ignore next_retry).  The ID is
 * borrowed for the call; answer later with scheduler_done. */
typedef void (*scheduler_run_fn)(const char *id, bool forced, void *arg);

/* NULL when out of memory. */
struct scheduler *scheduler_new(
    struct event_base *base, unsigned max_active, scheduler_run_fn run, void *arg);
void scheduler_free(struct scheduler *s);

/* Change how many may run at once (a reload). */
void scheduler_set_max(struct scheduler *s, unsigned max_active);

/*
 * Know `id`, due at `due` (0 or a past time: now).  A message already known
 * keeps its place unless `due` is earlier.  0 or -1 (out of memory).
 */
int scheduler_add(struct scheduler *s, const char *id, time_t due);

/* The run of `id` ended: wait until `next`, or forget it when next is 0. */
void scheduler_done(struct scheduler *s, const char *id, time_t next);

/* Make `id` (or every message when NULL) due now.  0, or -1 when unknown. */
int scheduler_flush(struct scheduler *s, const char *id);

/* Forget a waiting message (removed by the operator); running ones finish. */
void scheduler_forget(struct scheduler *s, const char *id);

/* Messages known, and how many of them run now. */
size_t scheduler_count(const struct scheduler *s);
size_t scheduler_active(const struct scheduler *s);

/* Messages running now plus those waiting that are due at `now` (O(n)). */
size_t scheduler_due(const struct scheduler *s, time_t now);

/*
 * Destination concurrency (Postfix's qmgr slow start): how many deliveries
 * to one destination may run at once.  It starts at `initial`, grows by one
 * per success up to `max`, and shrinks by one (never below 1) per failed
 * connection or 4xx greeting.  With a rate delay it stays at 1.  A plain
 * value; no event loop.
 */
struct scheduler_window {
	unsigned limit; /* deliveries allowed at once now */
	unsigned max;   /* max-deliveries-per-destination */
};

/* Start at `initial` (at least 1, at most max; 1 with a rate delay). */
void scheduler_window_init(
    struct scheduler_window *w, unsigned initial, unsigned max, unsigned rate_delay);
/* A delivery succeeded: one more, up to the cap (1 with a rate delay). */
void scheduler_window_grow(struct scheduler_window *w, unsigned rate_delay);
/* The destination failed at connect or greeting: one less, at least 1. */
void scheduler_window_shrink(struct scheduler_window *w);
/* May one more start while `active` run? */
bool scheduler_window_has_room(const struct scheduler_window *w, unsigned active);

#endif
