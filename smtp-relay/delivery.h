/*
 * delivery.h - the queue runner of smtp-relayd: takes each queued message
 * when it is due, routes its recipients (resolver), delivers them over
 * SMTP (smtp_client) or into Maildir (maildir), writes every outcome to the
 * envelope, bounces what failed (dsn) and removes what is done.
 *
 * Order on disk (docs/queue-format.md, docs/delivery.md): a recipient is
 * marked delivered only after the next hop's 250; a bounce is committed as
 * a new queue file before the recipients it reports are marked failed; the
 * file goes when every recipient is final.  A crash can deliver twice,
 * never zero times.
 *
 * Runs on one event loop; the disk work (envelope updates, removals,
 * bounces, Maildir files) runs on the disk pool's threads (disk_pool.h).
 * The queue keeps its own message count (queue_count): commits, removals
 * and moves to corrupt/ made here are counted there.
 */
#ifndef MXB_DELIVERY_H
#define MXB_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

struct disk_pool;
struct config;
struct config_relay;
struct event_base;
struct evbuffer;
struct json_object;
struct policy;
struct queue;
struct delivery;

/*
 * A runner for queue `q` using `cfg` (relay and resolver) and `policy`
 * (which domains are local), both borrowed until delivery_reconfigure /
 * delivery_free, and `pool` (borrowed) for disk work.  Nothing runs before
 * delivery_start.  Returns NULL with err filled in.
 */
struct delivery *delivery_new(struct event_base *base, const struct config *cfg, struct queue *q,
    struct disk_pool *pool, const struct policy *policy, char *err, size_t errlen);

/* Stop: cancels routes and connections in flight (no further writes are
 * started; a crash-equivalent for the messages in hand).  Free the disk
 * pool first: its jobs point into runs freed here.  NULL is a no-op. */
void delivery_free(struct delivery *d);

/* Schedule every message in the queue, due now.  0 or -1 (logged). */
int delivery_start(struct delivery *d);

/* A message was just committed (smtp_server_queued_fn; arg = d). */
void delivery_queued(const char *id, void *arg);

/* control_flush_fn: id NULL = everything; -1 with ENOENT for an unknown ID. */
int delivery_flush(const char *id, void *arg);

/* After a reload: new relay settings and policy, borrowed as in
 * delivery_new (the resolver keeps its own settings). */
void delivery_reconfigure(
    struct delivery *d, const struct config *cfg, const struct policy *policy);

/* /status (a "delivery" member) and /metrics; arg = d. */
void delivery_status_json(struct json_object *root, void *arg);
void delivery_metrics(struct evbuffer *out, void *arg);

#endif
