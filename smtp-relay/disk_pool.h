/*
 * disk_pool.h - the disk work of smtp-relayd off the event loop: a few
 * threads run queue commits (write, fsync, rename, fsync of the directory)
 * so that many sessions' fsyncs overlap and the file system can group them,
 * and delivery's envelope updates, removals, bounces and Maildir files, and
 * the intake's probe, while the loop keeps serving.  Results come back on
 * the loop's thread.
 *
 * One pool per process, owned by smtp-relayd.c and lent to the SMTP server,
 * its sessions, delivery and the intake.  Its users free their jobs' owners
 * only after disk_pool_free (which joins the threads), sessions excepted:
 * they cancel their commits first.
 */
#ifndef MXB_DISK_POOL_H
#define MXB_DISK_POOL_H

#include <stdbool.h>

struct event_base;
struct evbuffer;
struct queue;
struct queue_env;
struct disk_pool;
struct commit_job;
struct disk_spool;

/* Worker threads; most of their time is spent waiting in fsync. */
#define DISK_POOL_THREADS 16

/*
 * Called on the loop's thread when a commit is done: rc 0 (env->id holds
 * the queue ID; the message is durable) or -1 with err = errno.  env is
 * borrowed for the call only.
 */
typedef void (*commit_done_fn)(int rc, int err, const struct queue_env *env, void *arg);

/* Start `nthreads` threads committing into q (borrowed).  NULL (logged) on failure. */
struct disk_pool *disk_pool_new(struct event_base *base, struct queue *q, unsigned nthreads);

/*
 * Commit `env` with content = `head` (may be NULL) followed by `body`.  The
 * pool takes ownership of env, head (malloc'd) and body; done(arg) runs
 * later on the loop thread unless the job is cancelled.  Returns the job, or
 * NULL when out of memory (nothing taken over then).
 */
struct commit_job *disk_pool_commit(struct disk_pool *p, struct queue_env *env, char *head,
    struct evbuffer *body, commit_done_fn done, void *arg);

/*
 * Spools: a message's content written to the queue's tmp/<id>.data as it
 * arrives, by the pool's threads, so that neither the loop nor memory waits
 * for the final dot.  disk_spool_new does no I/O; the file is created by
 * the first write.  One write at a time: the caller waits for done before
 * the next write or the commit.
 */
typedef void (*spool_done_fn)(int err, void *arg);

/* A spool for message `id`; NULL when out of memory. */
struct disk_spool *disk_spool_new(struct disk_pool *p, const char *id);

/*
 * Append `buf` (taken over; drained by the write) to the spool; done(err,
 * arg) runs later on the loop's thread with err 0 or an errno (ENOSPC...),
 * unless the spool was freed meanwhile.  Returns 0, or -1 when out of
 * memory (buf not taken then).
 */
int disk_spool_write(struct disk_spool *sp, struct evbuffer *buf, spool_done_fn done, void *arg);

/* True while a write is in hand. */
bool disk_spool_is_busy(const struct disk_spool *sp);

/*
 * The caller goes away or the message is refused: no more done calls, the
 * file is removed (on a worker thread once the write in hand finished);
 * NULL is a no-op.
 */
void disk_spool_free(struct disk_spool *sp);

/*
 * disk_pool_commit with content = `head`, the spool's octets, then `tail`
 * (may be NULL).  Takes ownership of env, head, sp (which must not be busy)
 * and tail; the spool file is removed after the commit, whatever its
 * outcome.  Returns the job, or NULL when out of memory (nothing taken over
 * then).
 */
struct commit_job *disk_pool_commit_spool(struct disk_pool *p, struct queue_env *env, char *head,
    struct disk_spool *sp, struct evbuffer *tail, commit_done_fn done, void *arg);

/*
 * Other disk work off the loop (delivery: queue_update, queue_remove,
 * Maildir writes): run(arg) on a worker thread, then after(arg) on the
 * loop's thread.  Jobs are not cancellable; arg must live until after()
 * ran.  Returns 0, or -1 when out of memory (nothing runs then).
 */
typedef void (*disk_run_fn)(void *arg);
typedef void (*disk_after_fn)(void *arg);
int disk_pool_run(struct disk_pool *p, disk_run_fn run, disk_after_fn after, void *arg);

/*
 * Also tell `fn` (NULL: nobody) the outcome of every disk_pool_commit
 * job, cancelled ones included, on the loop's thread before the job's own
 * done: how smtp-relayd's intake learns that the queue stopped (or started
 * again) taking writes.
 */
void disk_pool_set_observer(struct disk_pool *p, commit_done_fn fn, void *arg);

/*
 * The caller goes away: done will not be called.  The commit itself still
 * completes (a message may be queued that its client never saw acknowledged;
 * it is never half-written).
 */
void disk_pool_cancel(struct disk_pool *p, struct commit_job *job);

/* Finish the jobs in hand, stop the threads; NULL is a no-op.  Cancel
 * every job first: no callback runs from here. */
void disk_pool_free(struct disk_pool *p);

#endif
